"""Settings: the knobs of an index, as one frozen dataclass, and the fitted parameters shipped in params.json.

Settings that change what is stored (model, shingling, MinHash size) are recorded in the index manifest when the
index is created and read back from it afterwards; the scoring parameters come from the package's params.json,
written by scripts/calibrate.py (see the README for where each number comes from).
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from .vectors import orthonormal_rows

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: a text of at most this many sentences is a brief for the neighbour floors (the longest brief they are set on).
BRIEF_SENTENCES = 5
#: how specific a term must be (evidence.term_weight: 0.5 is a word about once a million words of English or rarer;
#: dates weigh 1) to count towards Settings.rare_terms; numbers never count (evidence.rare_name_terms).
RARE_TERM_MIN_WEIGHT = 0.5
#: the fast profile's model: static token embeddings distilled from the bundled MiniLM with model2vec (offline,
#: once, into the cache folder; see encoders.py).
FAST_MODEL = "minilm-static-256"


@dataclass(frozen=True)
class Profile:
    """What a profile fixes when an index is created: the encoder, the sentence splitter, the fitted parameters."""

    name: str
    model: str
    #: "pysbd" (rule-based, handles quotations and abbreviations) or "blingfire" (compiled, ~100x faster).
    splitter: str
    params_file: str
    #: document cosine below which a nearest document is not a candidate (the encoder's cosines differ).
    neighbor_min_cosine: float
    description: str
    #: whether document vectors lose the encoder's common direction (fitted into the params file; see
    #: vectors.document_vector): static-model vectors need it, MiniLM's do not.
    remove_common_direction: bool = False
    #: the floor for a pair of which neither text is a brief (more than BRIEF_SENTENCES sentences each), whose
    #: document vectors wander less; None: neighbor_min_cosine for every pair.
    full_neighbor_min_cosine: float | None = None
    #: Settings.rare_terms of its new indexes (0: no rare-term candidates).
    rare_terms: int = 0


# The neighbour floors keep 95% of the same-event pairs of NewsWCL50 briefs (articles cut to their first 2, 3 or 5
# sentences: a short report's document vector, the mean of a few sentences, wanders further than a long one's) and
# every same-event pair of the full articles, rounded down to 0.05. A pair of two texts longer than a brief has a
# floor of its own (full_neighbor_min_cosine): the lowest same-story pair of the full development texts (NewsWCL50
# events, Clough-Stevenson's derived answers), less 0.02, rounded down to 0.05, never below the brief floor. The
# neighbour count bounds the cost; the floors decide how many of a document's nearest are compared at all
# (scripts/calibrate.py prints and records the figures and the floors this rule suggests).
PROFILES = {
    # full articles: same-event pairs from 0.70, derived answers from 0.55; briefs: 5th percentile 0.5499
    # (2 sentences)
    "accurate": Profile("accurate", DEFAULT_MODEL, "pysbd", "params.json", 0.5,
                        "MiniLM sentence embeddings of every sentence, pysbd sentences",
                        full_neighbor_min_cosine=0.5),
    # static-model document vectors crowd together (NewsWCL50's other-event pairs: median cosine 0.79); without
    # their common direction and three directions of most variance they spread (median 0.17); full articles:
    # same-event pairs from 0.427, derived answers from 0.499; briefs: 5th percentile 0.36 (3 sentences)
    # rare-term candidates: the static model's document vectors miss same-event reports that MiniLM's find (the
    # README's "Candidates"); the accurate profile's own candidates hold nearly all of them already
    "fast": Profile("fast", FAST_MODEL, "blingfire", "params-fast.json", 0.35,
                    "static embeddings distilled from MiniLM (model2vec), blingfire sentences",
                    remove_common_direction=True, full_neighbor_min_cosine=0.4, rare_terms=2),
}
DEFAULT_PROFILE = "accurate"


@functools.lru_cache(maxsize=16)
def _directions(direction: tuple[float, ...] | None, components: tuple[tuple[float, ...], ...] | None
                ) -> np.ndarray | None:
    """Settings.directions, worked out once for each pair of them (a query asks at every call). The direction alone
    is used as stored (an index made before components keeps its vectors bit for bit); with components, the rows
    are made exactly orthonormal (they are stored rounded)."""
    if direction is None:
        return None
    if not components:
        result = np.array([direction], dtype=np.float32)
    else:
        result = orthonormal_rows(np.array((direction,) + components, dtype=np.float64)).astype(np.float32)
    result.flags.writeable = False  # shared by every caller
    return result


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}") from None


@dataclass(frozen=True)
class ScoringParams:
    """Fitted parameters of the pair score: a logistic model over evidence features, and its thresholds."""

    #: cosine similarity above which two sentences count as aligned (fitted on MRPC train).
    align_threshold: float
    #: feature name -> weight of the logistic model; intercept separately.
    weights: dict[str, float]
    intercept: float
    #: probability at or above which a pair is the same story.
    same_story_threshold: float
    #: word 3-gram containment at or above which a same-story pair is a duplicate (copied, light edits).
    duplicate_containment: float = 1.01
    #: sentence coverage (the better-covered side) at or above which a same-story pair is a rewrite.
    rewrite_coverage: float = 1.01
    #: independent reports more than this many days apart are not the same story (when both have a date).
    time_window_days: float | None = None
    #: the sentence-pair model: features, standardisation, weights of products ("a*b"), intercept, threshold.
    sentence: dict[str, Any] | None = None
    #: the mean probability over all pairs of two groups at or above which story grouping joins them (average
    #: linkage); None: same_story_threshold. A group pools the evidence of many pairs, so it can ask less of each.
    story_threshold: float | None = None
    #: the encoder's common direction (a unit vector: the normalised mean of MRPC train sentence vectors), for
    #: profiles that remove it from document vectors (Profile.remove_common_direction).
    common_direction: tuple[float, ...] | None = None
    #: removed with it: the directions along which those sentence vectors vary most (their top principal components,
    #: orthogonal to the common direction; see scripts/calibrate.py).
    common_components: tuple[tuple[float, ...], ...] | None = None
    #: where these numbers come from (data, method, cross-validated figures).
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def grouping_threshold(self) -> float:
        """The average-linkage threshold of story grouping."""
        return self.same_story_threshold if self.story_threshold is None else self.story_threshold

    @classmethod
    def shipped(cls, profile_name: str = DEFAULT_PROFILE) -> "ScoringParams":
        """The parameters fitted for a profile's encoder and splitter (scripts/calibrate.py --profile)."""
        file = profile(profile_name).params_file
        raw = json.loads(resources.files("detector").joinpath(file).read_text(encoding="utf-8"))
        return cls(
            align_threshold=float(raw["align_threshold"]),
            weights={k: float(v) for k, v in raw["weights"].items()},
            intercept=float(raw["intercept"]),
            same_story_threshold=float(raw["same_story_threshold"]),
            duplicate_containment=float(raw.get("duplicate_containment", 1.01)),
            rewrite_coverage=float(raw.get("rewrite_coverage", 1.01)),
            time_window_days=raw.get("time_window_days"),
            sentence=raw.get("sentence"),
            story_threshold=raw.get("story_threshold"),
            common_direction=tuple(raw["common_direction"]) if raw.get("common_direction") else None,
            common_components=tuple(tuple(c) for c in raw["common_components"]) if raw.get("common_components")
            else None,
            provenance=raw.get("provenance", {}),
        )


@dataclass(frozen=True)
class Settings:
    """How an index is built. Keyword-only, validated here so every entry point gets the same checks."""

    model: str = DEFAULT_MODEL
    #: the profile the index was created with (config.PROFILES): its splitter and its fitted parameters.
    profile: str = DEFAULT_PROFILE
    #: sentence splitter: "pysbd" or "blingfire" (set by the profile).
    splitter: str = "pysbd"
    #: MinHash permutations: more is a finer Jaccard estimate, more memory and time.
    num_perm: int = 128
    #: word n-gram size of the shingles (after stop-word removal); 1 finds the most rewrites for the fewest
    #: same-topic false candidates (scripts/measure_shingles.py, figures in the README).
    shingle_size: int = 1
    #: Jaccard estimate above which the LSH proposes a candidate pair.
    lsh_threshold: float = 0.2
    #: nearest documents by embedding considered as candidates for each new document.
    neighbors: int = 20
    #: document cosine below which a nearest document is not a candidate (the profile's: see PROFILES).
    neighbor_min_cosine: float = PROFILES[DEFAULT_PROFILE].neighbor_min_cosine
    #: the floor instead for two texts longer than BRIEF_SENTENCES sentences each (None: neighbor_min_cosine).
    full_neighbor_min_cosine: float | None = PROFILES[DEFAULT_PROFILE].full_neighbor_min_cosine
    #: a unit vector removed from every document vector before documents are compared (the profile's fitted common
    #: direction, recorded in the manifest so an index keeps the one it was built with), or None.
    common_direction: tuple[float, ...] | None = None
    #: removed from document vectors with common_direction: the encoder's directions of most variance (the profile's
    #: fitted ones, kept in the manifest likewise; none in an index made before there were any), or None.
    common_components: tuple[tuple[float, ...], ...] | None = None
    #: documents sharing at least this many rare specific terms are candidates, whatever their wording and document
    #: vectors (0: none; the profile's, see PROFILES). Rare: a name, place or date of at least RARE_TERM_MIN_WEIGHT
    #: by evidence.term_weight (rare in general English) held by at most rare_term_texts distinct texts of the
    #: index. Independent reports of one event repeat its names where MinHash sees a reworded text and the vectors
    #: of a static model put them apart (figures in the README).
    rare_terms: int = 0
    #: a term held by more distinct texts than this is no longer rare (its list of holders is dropped for good);
    #: likewise a sentence for shared_sentences.
    rare_term_texts: int = 10
    #: documents of which at least half of the shorter one's sentences are in the other word for word are
    #: candidates (an excerpt and its source, a brief and the roundup that quotes it), whatever the MinHash Jaccard
    #: and the document vectors of two texts of very different lengths say. Only sentences held by at most
    #: rare_term_texts distinct texts count (others are boilerplate). False in an index made before there were
    #: such candidates (its database has no lists of them).
    shared_sentences: bool = True
    #: sentences held word for word by more than rare_term_texts distinct texts are boilerplate (a sign-off, a
    #: copyright line, a newsletter prompt) and are set aside when two texts are compared (see boilerplate.py).
    #: Needs shared_sentences, whose table counts the texts. False in an index made before.
    boilerplate: bool = True

    def __post_init__(self) -> None:
        profile(self.profile)
        if self.splitter not in ("pysbd", "blingfire"):
            raise ValueError(f"splitter={self.splitter!r} must be pysbd or blingfire")
        if not 16 <= self.num_perm <= 1024:
            raise ValueError(f"num_perm={self.num_perm} must be between 16 and 1024")
        if not 1 <= self.shingle_size <= 5:
            raise ValueError(f"shingle_size={self.shingle_size} must be between 1 and 5")
        if not 0.0 < self.lsh_threshold < 1.0:
            raise ValueError(f"lsh_threshold={self.lsh_threshold} must be strictly between 0 and 1")
        if self.neighbors < 0:
            raise ValueError(f"neighbors={self.neighbors} must be 0 or more")
        if not -1.0 <= self.neighbor_min_cosine <= 1.0:
            raise ValueError(f"neighbor_min_cosine={self.neighbor_min_cosine} must be between -1 and 1")
        if self.full_neighbor_min_cosine is not None and not (
                self.neighbor_min_cosine <= self.full_neighbor_min_cosine <= 1.0):
            raise ValueError(f"full_neighbor_min_cosine={self.full_neighbor_min_cosine} must be between "
                             f"neighbor_min_cosine ({self.neighbor_min_cosine}) and 1")
        if self.rare_terms < 0:
            raise ValueError(f"rare_terms={self.rare_terms} must be 0 (off) or more")
        if self.rare_term_texts < 1:
            raise ValueError(f"rare_term_texts={self.rare_term_texts} must be 1 or more")
        if not isinstance(self.shared_sentences, bool):
            raise ValueError(f"shared_sentences={self.shared_sentences!r} must be true or false")
        if not isinstance(self.boilerplate, bool):
            raise ValueError(f"boilerplate={self.boilerplate!r} must be true or false")
        if self.boilerplate and not self.shared_sentences:
            raise ValueError("boilerplate=True needs shared_sentences=True (its table counts the texts that hold "
                             "each sentence): turn both on, or boilerplate off")
        if self.common_direction is not None:
            object.__setattr__(self, "common_direction", tuple(float(x) for x in self.common_direction))
            norm = sum(x * x for x in self.common_direction) ** 0.5
            if not abs(norm - 1.0) <= 1e-3:  # NaN too
                raise ValueError(f"common_direction must be a unit vector (its norm is {norm:.4f})")
        if self.common_components is not None:
            if not all(isinstance(c, (list, tuple)) for c in self.common_components):
                raise ValueError("common_components must be a list of vectors (a list of lists of numbers)")
            components = tuple(tuple(float(x) for x in c) for c in self.common_components)
            object.__setattr__(self, "common_components", components or None)
            if components:
                self._check_components(components)

    def _check_components(self, components: tuple[tuple[float, ...], ...]) -> None:
        if self.common_direction is None:
            raise ValueError("common_components are removed with a common_direction: give one too")
        dimension = len(self.common_direction)
        if any(len(c) != dimension for c in components):
            raise ValueError(f"each of common_components must have the {dimension} dimensions of common_direction")
        if len(components) >= dimension - 1:
            raise ValueError(f"{len(components)} common_components with the direction would leave a "
                             f"{dimension}-dimensional document vector almost nothing: give fewer")
        rows = np.array((self.common_direction,) + components, dtype=np.float64)
        if not np.allclose(rows @ rows.T, np.eye(len(rows)), atol=1e-3):  # NaN fails too
            raise ValueError("common_direction and common_components must be orthonormal (unit vectors, each "
                             "orthogonal to the others), as scripts/calibrate.py writes them")

    def directions(self) -> np.ndarray | None:
        """What document vectors lose (vectors.document_vector): orthonormal rows, common_direction first and then
        the space of common_components; None where nothing is removed."""
        return _directions(self.common_direction, self.common_components)

    @classmethod
    def for_profile(cls, name: str = DEFAULT_PROFILE, *, model: str | None = None) -> "Settings":
        """The settings of a new index with profile `name` (and another model than the profile's, if given)."""
        chosen = profile(name)
        direction = components = None
        if chosen.remove_common_direction and (model is None or model == chosen.model):  # fitted for its model
            shipped = ScoringParams.shipped(name)
            direction, components = shipped.common_direction, shipped.common_components
        return cls(model=model or chosen.model, profile=name, splitter=chosen.splitter,
                   neighbor_min_cosine=chosen.neighbor_min_cosine,
                   full_neighbor_min_cosine=chosen.full_neighbor_min_cosine, common_direction=direction,
                   common_components=components, rare_terms=chosen.rare_terms)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def neighbor_floor(self, sentences_a: int, sentences_b: int) -> float:
        """The document cosine a pair of texts of these lengths (in sentences) must reach to be a candidate."""
        if self.full_neighbor_min_cosine is None or min(sentences_a, sentences_b) <= BRIEF_SENTENCES:
            return self.neighbor_min_cosine
        return self.full_neighbor_min_cosine

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Settings":
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        if "full_neighbor_min_cosine" not in raw:  # an index made before there were two floors keeps its one
            known["full_neighbor_min_cosine"] = None
        if "shared_sentences" not in raw:  # nor lists of the texts that hold each sentence
            known["shared_sentences"] = False
        if "boilerplate" not in raw:  # nor sentences set aside as boilerplate
            known["boilerplate"] = False
        return cls(**known)
