"""Comparing two texts: what evidence needs of each side (a TextView), and the evidence of a pair.

Used by the Detector for indexed documents and queries, and directly for texts that are never indexed
(calibration, evaluation, scoring pairs).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz

from .config import RARE_TERM_MIN_WEIGHT, Settings
from .encoders import Encoder, TokenEncoder
from .evidence import (PairEvidence, Terms, TermStats, align, containments, lead_cosine, quotations_of,
                       rare_name_terms, sentence_hash, specific_terms, term_overlap, word_ngrams)
from .minhash import content_words, jaccard, shingles, signature
from .sentences import split_sentences, words
from .vectors import as_stored, cosine_from_inner_product, cosine_matrix, document_vector

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass
class TextView:
    """One side of a comparison: sentences, their vectors, the MinHash signature; specific terms on demand."""

    sentences: list[str]
    vectors: np.ndarray
    signature: object
    #: removed from the document vector (Settings.directions), or None.
    common_directions: np.ndarray | None = field(default=None, repr=False)
    vector: np.ndarray = field(init=False)
    _terms: Terms | None = field(default=None, repr=False)
    _ngrams: set[str] | None = field(default=None, repr=False)
    _quotes: list[tuple[int, str]] | None = field(default=None, repr=False)
    _sentence_hashes: list[int] | None = field(default=None, repr=False)
    _rare_names: list[str] | None = field(default=None, repr=False)
    _sentence_keys: list[int | None] | None = field(default=None, repr=False)
    #: where each sentence stands in the whole text, for a view of part of it (boilerplate.without); else None.
    positions: list[int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.vector = document_vector(self.vectors, self.common_directions)

    @property
    def terms(self) -> Terms:
        if self._terms is None:
            self._terms = specific_terms(self.sentences)
        return self._terms

    def prepare(self) -> None:
        """Work out now what comparisons read lazily (terms, word n-grams, quotations)."""
        _ = self.terms, self.ngrams, self.quotes

    @property
    def quotes(self) -> list[tuple[int, str]]:
        if self._quotes is None:
            self._quotes = quotations_of(self.sentences)
        return self._quotes

    @property
    def rare_names(self) -> list[str]:
        """Its specific terms that are names, places or dates of at least RARE_TERM_MIN_WEIGHT (the rare-term
        candidates' terms: evidence.rare_name_terms)."""
        if self._rare_names is None:
            self._rare_names = rare_name_terms(self.terms.counts, RARE_TERM_MIN_WEIGHT)
        return self._rare_names

    @property
    def sentence_hashes(self) -> list[int]:
        """evidence.sentence_hashes of its sentences (distinct, in order)."""
        if self._sentence_hashes is None:
            self._sentence_hashes = list(dict.fromkeys(k for k in self.sentence_keys if k is not None))
        return self._sentence_hashes

    @property
    def sentence_keys(self) -> list[int | None]:
        """evidence.sentence_hash of each sentence, in order (None for one of fewer than NGRAM words)."""
        if self._sentence_keys is None:
            self._sentence_keys = [sentence_hash(s) for s in self.sentences]
        return self._sentence_keys

    def position(self, index: int) -> int:
        """Where its sentence `index` stands in the whole text."""
        return index if self.positions is None else self.positions[index]

    @property
    def ngrams(self) -> set[str]:
        if self._ngrams is None:
            self._ngrams = word_ngrams(self.sentences)
        return self._ngrams

    @classmethod
    def of_text(cls, text: str, encoder: Encoder, settings: Settings) -> "TextView":
        sentences = split_sentences(text, settings.splitter)
        return cls(sentences, as_stored(encoder.encode(sentences)),
                   signature(shingles(text, settings.shingle_size), settings.num_perm), settings.directions())


def encode_short_texts(encoder: Encoder, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Whole-text vectors of short texts (sentences), with their token vectors when the encoder gives them."""
    vectors, tokens = encoder.encode_with_tokens(texts) if isinstance(encoder, TokenEncoder) else (
        encoder.encode(texts), None)
    if tokens is None and encoder.name not in _WARNED:
        _WARNED.add(encoder.name)
        logging.getLogger(__name__).warning(
            "the encoder %r gives no token vectors: token alignment is taken to be the cosine, which the sentence "
            "model was not fitted on, so scores of short texts are only approximate", encoder.name)
    return vectors, tokens


_WARNED: set[str] = set()  # encoders already warned about (once a process)


def views_of_texts(texts: list[str], encoder: Encoder, settings: Settings) -> list[TextView]:
    """TextViews of many texts with one encoder call (the encoder batches by length)."""
    split = [split_sentences(t, settings.splitter) for t in texts]
    flat = [s for sentences in split for s in sentences]
    vectors = as_stored(encoder.encode(flat))
    direction = settings.directions()
    views, start = [], 0
    for text, sentences in zip(texts, split):
        views.append(TextView(sentences, vectors[start:start + len(sentences)],
                              signature(shingles(text, settings.shingle_size), settings.num_perm), direction))
        start += len(sentences)
    return views


def compare(a: TextView, b: TextView, *, align_threshold: float, stats: TermStats | None = None,
            indexed: tuple[bool, bool] = (False, False), explain: bool = True) -> PairEvidence:
    """All evidence about a pair; symmetric up to swapping the A and B sides. `stats`: term frequencies of the
    collection the texts belong to (`indexed`: which of the two are counted in it), to weight terms by rarity.
    `explain`: list the shared terms (for reports)."""
    sims = cosine_matrix(a.vectors, b.vectors) if len(a.vectors) and len(b.vectors) else None
    shorter, longer = containments(a.ngrams, b.ngrams)
    return PairEvidence(
        jaccard=jaccard(a.signature, b.signature),
        doc_cosine=float(cosine_from_inner_product(np.float32(a.vector @ b.vector))),
        alignment=align(a.vectors, b.vectors, threshold=align_threshold, a_sentences=a.sentences,
                        b_sentences=b.sentences, explain=explain, sims=sims, a_quotes=a.quotes, b_quotes=b.quotes),
        terms=term_overlap(a.terms, b.terms, stats=stats, indexed=indexed, explain=explain),
        containment=shorter,
        lead_cosine=lead_cosine(a.vectors, b.vectors, sims=sims),
        containment_longer=longer,
    )


SENTENCE_FEATURES = ("cosine", "token_alignment", "word_jaccard", "bigram_jaccard", "term_cosine", "number_mismatch",
                     "length_ratio", "token_set_ratio", "word_order", "specific")
#: 1 when both sentences carry specific terms (a capitalised word past the first, or a number): the sentence model
#: weighs shared wording, numbers and word order only then (scripts/calibrate.py, sentence_design).
SPECIFIC = "specific"


def carries_specific_terms(text: str) -> bool:
    """A capitalised word other than the first (a name, a place, an organisation) or a digit: the marks of reporting
    ("Shares of Mandalay closed down 8 cents") rather than of a plain description ("A man is playing a guitar")."""
    if any(c.isdigit() for c in text):
        return True
    tokens = text.split()
    return any(t[:1].isupper() and t not in ("I", "I'm", "I've", "I'd", "I'll") for t in tokens[1:])


def _content_or_all_words(text: str) -> list[str]:
    """Content words; for a text made only of stop words ("It is what it is."), all its words."""
    return content_words(text) or [w.lower() for w in words(text)]


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _common_subsequence(a: list[str], b: list[str]) -> int:
    """The length of the longest common subsequence of two word lists (dynamic programming, one row kept)."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def word_order(words_a: list[str], words_b: list[str]) -> float:
    """How much of the wording two texts share keeps its order: the longest common subsequence of their shared
    words over the shorter list of them. 1.0 when the shared words come in the same order (or fewer than two are
    shared); lower when they are swapped around ("flights from Paris to Rome" / "from Rome to Paris"), which
    overlap measures and pooled sentence embeddings barely notice (see PAWS, Zhang et al. 2019)."""
    shared = set(words_a) & set(words_b)
    in_a = [w for w in words_a if w in shared]
    in_b = [w for w in words_b if w in shared]
    if min(len(in_a), len(in_b)) < 2:
        return 1.0
    return _common_subsequence(in_a, in_b) / min(len(in_a), len(in_b))


def token_alignment(a: np.ndarray, b: np.ndarray) -> float:
    """How well the tokens of two sentences find each other (BERTScore's F1, Zhang et al. 2020, without idf
    weights): each token's best cosine among the other sentence's tokens, averaged per side (precision, recall),
    and their harmonic mean. Rows are L2-normalised token vectors in context; 0 when a side has none. A pooled
    sentence vector blurs which words carry the meaning; matching token by token keeps more of it."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    sims = cosine_matrix(a, b)
    # a side whose tokens point away from the other's on average has found nothing: 0, not a negative F1
    precision, recall = max(0.0, float(sims.max(axis=1).mean())), max(0.0, float(sims.max(axis=0).mean()))
    if precision + recall <= 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def sentence_features(a: str, b: str, a_vector: np.ndarray, b_vector: np.ndarray,
                      tokens: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Evidence that two short texts (sentences) say the same thing: embedding cosine, token alignment, word and
    word-pair overlap of content words, specific terms, whether their numbers differ, relative length, fuzzy token
    overlap, whether the shared words keep their order, and whether both carry specific terms at all. `tokens`:
    the two sides' token vectors (TokenEncoder); without them, token alignment is taken to be the cosine."""
    cosine = float(cosine_from_inner_product(np.float32(a_vector @ b_vector)))
    words_a, words_b = _content_or_all_words(a), _content_or_all_words(b)
    bigrams_a = {" ".join(words_a[i:i + 2]) for i in range(len(words_a) - 1)}
    bigrams_b = {" ".join(words_b[i:i + 2]) for i in range(len(words_b) - 1)}
    numbers_a, numbers_b = set(_NUMBER.findall(a)), set(_NUMBER.findall(b))
    return {
        "cosine": cosine,
        "token_alignment": cosine if tokens is None else token_alignment(*tokens),
        "word_jaccard": _jaccard(set(words_a), set(words_b)),
        "bigram_jaccard": _jaccard(bigrams_a, bigrams_b),
        "term_cosine": term_overlap(specific_terms([a]), specific_terms([b])).score,
        "number_mismatch": float(numbers_a != numbers_b),
        "length_ratio": min(len(words_a), len(words_b)) / max(1, len(words_a), len(words_b)),
        "token_set_ratio": fuzz.token_set_ratio(a, b) / 100.0,
        "word_order": word_order(words_a, words_b),
        SPECIFIC: float(carries_specific_terms(a) and carries_specific_terms(b)),
    }
