"""Evidence features -> a probability that two texts tell the same story, and the verdict.

The combination is a logistic model whose weights, intercept and threshold are fitted by scripts/calibrate.py on
the labelled development sets and shipped in params.json; nothing here is hand-tuned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import ScoringParams

SAME_STORY = "same story"
DIFFERENT = "different"


@dataclass(frozen=True)
class Score:
    probability: float
    verdict: str

    @property
    def same_story(self) -> bool:
        return self.verdict == SAME_STORY


class Scorer:
    def __init__(self, params: ScoringParams) -> None:
        self.params = params

    def probability(self, features: dict[str, float]) -> float:
        missing = set(self.params.weights) - set(features)
        if missing:
            raise ValueError(f"features {sorted(missing)} are needed by the fitted parameters but were not measured")
        z = self.params.intercept + sum(w * features[name] for name, w in self.params.weights.items())
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def score(self, features: dict[str, float]) -> Score:
        p = self.probability(features)
        return Score(p, SAME_STORY if p >= self.params.same_story_threshold else DIFFERENT)
