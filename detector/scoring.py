"""Evidence features -> a probability that two texts tell the same story, and a graded relation.

Documents: a logistic model over the confirmation features. Sentences (both texts one sentence): a logistic model
over standardised sentence features and their products, each term a product of named factors ("cosine*cosine",
"specific*word_jaccard*word_order"): the embedding's cosine and token alignment always, the others only when both
sentences carry specific terms
(the 0/1 feature `specific`; scripts/calibrate.py, sentence_design). Relations: thresholds on containment (copying) and
sentence coverage (a rewrite's sentences correspond). Every number is fitted by scripts/calibrate.py on the
labelled development sets and shipped in params.json; nothing here is hand-tuned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import ScoringParams

SAME_STORY = "same story"
DIFFERENT = "different"

DUPLICATE = "duplicate"
REWRITE = "rewrite"
STORY = "same_story"
UNRELATED = "different"
#: from the closest relation to the loosest; story clusters join all but "different".
RELATIONS = (DUPLICATE, REWRITE, STORY, UNRELATED)
Z_LIMIT = 4.0


@dataclass(frozen=True)
class Score:
    probability: float
    #: duplicate (copied, light edits), rewrite (paraphrased, sentences correspond), same_story, different.
    relation: str
    #: the weight of the pair in the story graph: the probability, or 0 when a rule says different (time window).
    link: float

    @property
    def verdict(self) -> str:
        return DIFFERENT if self.relation == UNRELATED else SAME_STORY

    @property
    def same_story(self) -> bool:
        return self.relation != UNRELATED


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


class Scorer:
    def __init__(self, params: ScoringParams) -> None:
        self.params = params

    def probability(self, features: dict[str, float]) -> float:
        missing = set(self.params.weights) - set(features)
        if missing:
            raise ValueError(f"features {sorted(missing)} are needed by the fitted parameters but were not measured")
        return _sigmoid(self.params.intercept + sum(w * features[name] for name, w in self.params.weights.items()))

    def score(self, features: dict[str, float], *, exact: bool = False) -> Score:
        """Score a document pair. `features` may hold `days_apart` when both texts have a published date; `exact`:
        the two have the same normalised text, a duplicate whatever the features say."""
        p = self.probability(features)
        relation = DUPLICATE if exact else self._relation(p, features)
        return Score(p, relation, self.link(p, relation))

    def could_cross(self, features: dict[str, float], name: str) -> bool:
        """Whether some value of feature `name` in [0, 1] would put the pair on the other side of the same-story
        threshold, or of story grouping's, than another value would (the model is linear in each feature, so the
        two ends decide)."""
        low = self.probability({**features, name: 0.0})
        high = self.probability({**features, name: 1.0})
        return any((low >= t) != (high >= t)
                   for t in (self.params.same_story_threshold, self.params.grouping_threshold))

    def link(self, probability: float, relation: str) -> float:
        """A pair's weight in the story graph: its probability, except where a rule overrode it (a likely pair
        ruled different by the time window: 0; an exact duplicate: at least the threshold)."""
        threshold = self.params.same_story_threshold
        if relation == UNRELATED:
            return 0.0 if probability >= threshold else probability
        return max(probability, threshold)

    def _relation(self, p: float, features: dict[str, float]) -> str:
        params = self.params
        if p < params.same_story_threshold:
            return UNRELATED
        if features.get("containment", 0.0) >= params.duplicate_containment:
            return DUPLICATE
        if features.get("coverage_max", 0.0) >= params.rewrite_coverage:
            return REWRITE
        days = features.get("days_apart")
        if days is not None and params.time_window_days is not None and days > params.time_window_days:
            return UNRELATED  # independent reports of one event are published close together
        return STORY

    def score_sentences(self, features: dict[str, float]) -> Score:
        """Score a pair of single sentences: same meaning (paraphrase) or not; identical wording is a duplicate."""
        model = self.params.sentence
        if model is None:
            raise ValueError("the shipped parameters have no sentence model: run scripts/calibrate.py --write")
        # clipped: far outside the fitted range, products of standardised features would extrapolate wildly
        z = [max(-Z_LIMIT, min(Z_LIMIT, (features[name] - mean) / scale))
             for name, mean, scale in zip(model["features"], model["means"], model["scales"])]
        names = list(model["features"])
        total = model["intercept"]
        for term, weight in model["weights"].items():
            value = 1.0
            for factor in term.split("*"):
                value *= z[names.index(factor)]
            total += weight * value
        p = _sigmoid(total)
        if p < model["threshold"]:
            return Score(p, UNRELATED, p)
        same_words = features["token_set_ratio"] >= 0.99 and features.get("word_order", 1.0) >= 0.99
        return Score(p, DUPLICATE if same_words else REWRITE, p)  # the same words in another order: a rewrite
