"""The dedup step: for each arriving document, the earlier document it is closest to, and whether it counts as a
duplicate under a policy (which relations the user treats as duplicates)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from . import clusters as story_clusters
from .documents import Document
from .scoring import DUPLICATE, RELATIONS, REWRITE, STORY
from .config import ScoringParams
from .records import StoredDecision
from .store import Store

#: policy -> the relations that make a document a duplicate of an earlier one.
POLICIES: dict[str, frozenset[str]] = {
    "duplicate": frozenset({DUPLICATE}),
    "rewrite": frozenset({DUPLICATE, REWRITE}),
    "same_story": frozenset({DUPLICATE, REWRITE, STORY}),
}
NEW, DUPLICATE_STATUS = "new", "duplicate"


@dataclass(frozen=True)
class Decision:
    """What the dedup step says of one document."""

    id: str
    #: "new", or "duplicate" when its closest earlier document is related closely enough for the policy.
    status: str
    #: how it relates to `matched_id`: duplicate, rewrite or same_story; None when no earlier document is related.
    relation: str | None
    #: the earlier document it is closest to (lineage), or None.
    matched_id: str | None
    #: its story cluster.
    cluster: str
    #: probability of the same story with `matched_id` (None when there is no match).
    score: float | None
    #: the canonical member of its story (earliest published, else first seen; or the longest, on request).
    canonical_id: str

    @property
    def is_duplicate(self) -> bool:
        return self.status == DUPLICATE_STATUS

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "relation": self.relation, "matched_id": self.matched_id,
                "cluster": self.cluster, "score": None if self.score is None else round(self.score, 4),
                "canonical_id": self.canonical_id}


def check_policy(policy: str) -> frozenset[str]:
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r} is not one of {sorted(POLICIES)}")
    return POLICIES[policy]


def record_decision(store: Store, key: int, params: ScoringParams,
                    ngram_counts: Callable[[int, int], tuple[int, int]]) -> None:
    """Store the decision for a document just indexed and clustered: the earlier document of its own story that it
    is most closely related to, if any (a closer document that the clustering put in another story does not count,
    so that decisions agree with the clusters). A `duplicate` pair counts as the newcomer's duplicate only while
    enough of the newcomer is in the earlier text (decision_relation; `ngram_counts`: (key, other) -> how many
    distinct word 3-grams each of the two has, as the pair compares them)."""
    # keys grow with every arrival (a replaced text gets a new key), so a smaller key arrived earlier
    rank = {relation: i for i, relation in enumerate(RELATIONS)}
    best = None
    pairs = store.pairs_of(key)
    cluster_of = store.clusters_of([key, *{p.b_key if p.a_key == key else p.a_key for p in pairs}])
    for pair in pairs:
        other = pair.b_key if pair.a_key == key else pair.a_key
        if pair.relation not in (DUPLICATE, REWRITE, STORY) or cluster_of.get(other) != cluster_of.get(key):
            continue
        if other >= key:
            continue  # only documents that were there first
        relation = decision_relation(pair.features, *ngram_counts(key, other), params, relation=pair.relation) \
            if pair.relation in (DUPLICATE, REWRITE) else pair.relation
        option = (rank[relation], -pair.probability, other, pair, relation)
        best = option if best is None or option[:3] < best[:3] else best
    if best is None:
        store.put_decision(key, None, None, None, None)
    else:
        pair, other, relation = best[3], best[2], best[4]
        store.put_decision(key, other, store.summaries_by_key([other])[other].id, relation, pair.probability)


def decision_relation(features: dict[str, float], newcomer_ngrams: int, earlier_ngrams: int,
                      params: ScoringParams, relation: str = DUPLICATE) -> str:
    """What a `duplicate` or `rewrite` pair (`relation`) says of its later text. `duplicate` is measured on the
    shorter text: the share of its distinct word 3-grams found in the other (`containment`), so a full article is a
    duplicate of an excerpt of it that came first. As the newcomer's decision it must hold the other way too: the
    share of the newcomer's own 3-grams found in the earlier text, containment x min(n_newcomer, n_earlier) /
    n_newcomer, must reach `duplicate_containment` (it does whenever the newcomer has no more 3-grams than the
    earlier text: reformatted, trimmed, repeated, an exact copy). A newcomer with more new text than that extends the
    earlier text rather than copies it: a `rewrite` of it if its own sentences align with it as a rewrite's do
    (coverage_min, the less covered side, is the longer text's), else the `same_story`. A `rewrite` pair is read the
    same way: a pair is a rewrite when the sentences of either side align, and a newcomer longer than the earlier
    text (more 3-grams) is its rewrite only when its own do (a full story that retells its flash)."""
    extends = newcomer_ngrams > earlier_ngrams
    if relation == REWRITE:
        return STORY if extends and features.get("coverage_min", 0.0) < params.rewrite_coverage else REWRITE
    shared = features.get("containment", 0.0) * min(newcomer_ngrams, earlier_ngrams)
    # (a limit above 1 turns the containment rule off: then only exact copies are duplicates, and they stay so)
    if newcomer_ngrams <= 0 or shared / newcomer_ngrams >= min(1.0, params.duplicate_containment):
        return DUPLICATE
    return REWRITE if features.get("coverage_min", 0.0) >= params.rewrite_coverage else STORY


def decision_for(stored: StoredDecision | None, *, doc_id: str, policy: frozenset[str], cluster: str,
                 canonical_id: str) -> Decision:
    relation = stored.relation if stored else None
    status = DUPLICATE_STATUS if relation in policy else NEW
    return Decision(doc_id, status, relation, stored.matched_id if stored else None, cluster,
                    stored.score if stored else None, canonical_id)


class DedupSteps:
    """The dedup step of a Detector (mixed into it): add, add_many and stored decisions."""

    def add(self, document: Document, *, policy: str = "rewrite", canonical: str = "earliest",
            lock_timeout: float = 60.0) -> Decision:
        """Index one document and say whether it duplicates one seen before (see add_many)."""
        return self.add_many([document], policy=policy, canonical=canonical, lock_timeout=lock_timeout)[0]

    def add_many(self, documents: Iterable[Document], *, policy: str = "rewrite", canonical: str = "earliest",
                 batch_size: int = 64, lock_timeout: float = 60.0,
                 decided: Callable[[list[Decision]], None] | None = None) -> list[Decision]:
        """Index documents and return a Decision for each, in order. A document is a duplicate when the earlier
        document it is closest to (indexed before it, or earlier in this call) has a relation in `policy`:
        "duplicate" (copies), "rewrite" (copies and rewrites) or "same_story" (any report of the same story).
        `canonical`: "earliest" (published, else first seen) or "longest". Each batch's decisions are stored in
        the index when it commits, and handed to `decided` then: a decision given out is never lost."""
        allowed = check_policy(policy)
        story_clusters.check_canonical(canonical)
        decisions: list[Decision] = []

        def emit(batch: list[Document]) -> None:
            made = self.decisions([doc.id for doc in batch], policy=policy, canonical=canonical, allowed=allowed)
            decisions.extend(made)
            if decided:
                decided(made)

        self.index(documents, batch_size=batch_size, lock_timeout=lock_timeout, committed=emit)
        return decisions

    def decisions(self, ids: list[str], *, policy: str = "rewrite", canonical: str = "earliest",
                  allowed: frozenset[str] | None = None) -> list[Decision]:
        """The stored decisions of indexed documents, under `policy`."""
        with self._consistent():
            allowed = allowed or check_policy(policy)
            docs = {doc_id: self._require(doc_id) for doc_id in ids}
            cluster_of = {doc.key: self.store.cluster_of(doc.key) or "?" for doc in docs.values()}
            members = self.store.members(sorted(set(cluster_of.values())))
            made = []
            for doc_id in ids:
                doc = docs[doc_id]
                cluster = cluster_of[doc.key]
                made.append(decision_for(self.store.decision(doc.key), doc_id=doc_id, policy=allowed, cluster=cluster,
                                         canonical_id=story_clusters.representative(members[cluster], canonical).id))
            return made
