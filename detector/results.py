"""Result dataclasses returned by the Detector: what an indexing run did, query matches, pair reports, clusters."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class IndexResult:
    """What one `index` call did."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: same text, new metadata (title, published, ...): stored without any model run.
    metadata_updated: list[str] = field(default_factory=list)
    #: (new id, id of the indexed document with the same normalised text)
    exact_duplicates: list[tuple[str, str]] = field(default_factory=list)
    candidate_pairs: int = 0
    confirmed_pairs: int = 0
    #: distinct sentences the model ran on (a sentence repeated within a batch is encoded once).
    sentences_encoded: int = 0
    seconds: float = 0.0

    def merged(self, other: "IndexResult") -> "IndexResult":
        """Field by field: lists concatenate, counts and seconds add up."""
        return IndexResult(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(IndexResult)})

    @property
    def processed(self) -> int:
        return len(self.added) + len(self.replaced)

    @property
    def confirmation_rate(self) -> float:
        """Share of candidate pairs confirmed as the same story."""
        return self.confirmed_pairs / self.candidate_pairs if self.candidate_pairs else 0.0


@dataclass(frozen=True)
class AlignedSentences:
    a_index: int
    b_index: int
    a_text: str
    b_text: str
    similarity: float
    #: the quotation both sentences carry, when they align because of it.
    quote: str | None = None


@dataclass(frozen=True)
class PairReport:
    """Everything about one pair: every score, aligned sentences, which candidate sources found it, the verdict."""

    a_id: str
    b_id: str
    probability: float
    verdict: str
    #: duplicate, rewrite, same_story or different
    relation: str
    features: dict[str, float]
    #: "exact", "minhash", "embedding", "rare_terms", "sentences"; empty when no candidate source proposed the pair.
    sources: list[str]
    aligned: list[AlignedSentences]
    shared_terms: list[str]
    a_sentences: int
    b_sentences: int
    a_cluster: str | None = None
    b_cluster: str | None = None
    align_threshold: float = 0.0
    #: closest sentence correspondences below the alignment threshold (mutual best matches), for reading.
    near: list[AlignedSentences] = field(default_factory=list)
    #: how each of the two arrived: "B arrived as a rewrite of A" (the dedup lineage).
    lineage: list[str] = field(default_factory=list)
    #: the sentence numbers of A and of B set aside as boilerplate (boilerplate.pair_positions) before comparing.
    set_aside: list[list[int]] = field(default_factory=lambda: [[], []])

    @property
    def same_story(self) -> bool:
        return self.verdict == "same story"

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a_id, "b": self.b_id, "verdict": self.verdict, "relation": self.relation,
            "probability": round(self.probability, 4),
            "features": {k: round(v, 4) for k, v in self.features.items()},
            "sources": self.sources, "a_cluster": self.a_cluster, "b_cluster": self.b_cluster,
            "lineage": self.lineage,
            "sentences": {"a": self.a_sentences, "b": self.b_sentences},
            "set_aside_as_boilerplate": {"a": self.set_aside[0], "b": self.set_aside[1]},
            "align_threshold": self.align_threshold,
            "shared_terms": self.shared_terms,
            "aligned": [{"a_index": p.a_index, "b_index": p.b_index, "similarity": round(p.similarity, 4),
                         "quote": p.quote, "a": p.a_text, "b": p.b_text} for p in self.aligned],
            "closest_unaligned": [{"a_index": p.a_index, "b_index": p.b_index, "similarity": round(p.similarity, 4),
                                   "a": p.a_text, "b": p.b_text} for p in self.near],
        }


@dataclass(frozen=True)
class Match:
    """An indexed document found by a query."""

    id: str
    probability: float
    verdict: str
    relation: str
    features: dict[str, float]
    sources: list[str]
    cluster: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "probability": round(self.probability, 4), "verdict": self.verdict,
                "relation": self.relation,
                "cluster": self.cluster, "sources": self.sources,
                "features": {k: round(v, 4) for k, v in self.features.items()}}


@dataclass(frozen=True)
class Cluster:
    """A story: its stable id, members (in indexing order) and representative."""

    id: str
    members: list[str]
    representative: str

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class RemoveResult:
    removed: list[str]
    #: ids that were not in the index.
    missing: list[str]
