"""Scoring pairs of texts that are not in any index: sentences or whole articles (`detector score-pairs`)."""

from __future__ import annotations

from dataclasses import dataclass

from .compare import compare, encode_short_texts, sentence_features, views_of_texts
from .config import ScoringParams, Settings
from .encoders import Encoder
from .evidence import TermStats
from .scoring import Scorer
from .sentences import words

SENTENCE, DOCUMENT = "sentence", "document"
#: texts of at most this many words are compared as sentences (whole, by the sentence model): a news sentence, or a
#: pair of them, is under it; an article is far over it.
SHORT_TEXT_WORDS = 64


@dataclass(frozen=True)
class PairScore:
    """A calibrated probability that the two texts tell the same story (for sentences: say the same thing)."""

    score: float
    relation: str
    #: "sentence" when both texts are short (the sentence model), else "document".
    level: str
    components: dict[str, float]

    def to_dict(self) -> dict:
        return {"score": round(self.score, 4), "relation": self.relation, "level": self.level,
                "components": {k: round(v, 4) for k, v in self.components.items()}}


def score_pairs(pairs: list[tuple[str, str]], *, encoder: Encoder, settings: Settings | None = None,
                params: ScoringParams | None = None) -> list[PairScore]:
    """Score each (a, b). Specific terms are weighted by their rarity among all the texts given, as in an index."""
    settings = settings or Settings(model=encoder.name)
    scorer = Scorer(params or ScoringParams.shipped(settings.profile))
    short = [len(words(a)) <= SHORT_TEXT_WORDS and len(words(b)) <= SHORT_TEXT_WORDS for a, b in pairs]
    short_texts = list(dict.fromkeys(t for pair, is_short in zip(pairs, short) if is_short for t in pair))
    whole, tokens = {}, {}
    if short_texts:
        vectors, token_vectors = encode_short_texts(encoder, short_texts)
        whole = dict(zip(short_texts, vectors))
        tokens = dict(zip(short_texts, token_vectors)) if token_vectors is not None else {}
    texts = list(dict.fromkeys(t for pair, is_short in zip(pairs, short) if not is_short for t in pair))
    views = dict(zip(texts, views_of_texts(texts, encoder, settings))) if texts else {}
    df: dict[str, int] = {}
    for view in views.values():
        for term in view.terms.counts:
            df[term] = df.get(term, 0) + 1
    stats = TermStats(len(texts), df)
    results = []
    for (a, b), is_short in zip(pairs, short):
        if is_short:
            features = sentence_features(a, b, whole[a], whole[b], (tokens[a], tokens[b]) if tokens else None)
            score = scorer.score_sentences(features)
            results.append(PairScore(score.probability, score.relation, SENTENCE, features))
        else:
            features = compare(views[a], views[b], align_threshold=scorer.params.align_threshold, stats=stats,
                               indexed=(True, True)).features()
            score = scorer.score(features)
            results.append(PairScore(score.probability, score.relation, DOCUMENT, features))
    return results
