"""Per-pair evidence: sentence alignment both ways, and specific terms (names, places, numbers, dates) matched with
tolerance for spelling and transliteration variants and weighted by how rare they are in general English."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Callable, Iterable

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, Levenshtein
from wordfreq import get_frequency_dict, zipf_frequency

from .sentences import fold, words
from .vectors import cosine_matrix

MONTHS = frozenset("january february march april may june july august september october november december".split())
WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
#: a word at least this frequent in general English (Zipf scale) is not a specific term when it opens a sentence.
COMMON_ZIPF = 4.5
#: Zipf frequency at which a term stops carrying weight (words like "general", "chief" are ~5-5.5).
ZIPF_CEILING = 6.0
VARIANT_SIMILARITY = 0.85
VARIANT_MIN_LENGTH = 5
_VOWELS = re.compile(r"[aeiouy]+")
_REPEATS = re.compile(r"(.)\1+")


@dataclass(frozen=True)
class AlignedPair:
    """A sentence of A aligned with a sentence of B: by embedding cosine, or because both quote the same words."""

    a_index: int
    b_index: int
    similarity: float
    #: the quotation both sentences carry, when that is (part of) why they align.
    quote: str | None = None


_QUOTED = re.compile(r'"([^"]{8,}?)"|“([^”]{8,}?)”|(?:^|(?<=[\s(\[:—-]))[‘\']([^’\']{8,}?)[’\'](?![a-z])')
QUOTE_MIN_WORDS = 4
NEAR_PAIRS = 5
QUOTE_SIMILARITY = 90.0


def quotations(sentence: str) -> list[str]:
    """Quoted spans of at least QUOTE_MIN_WORDS words, normalised (case, punctuation) for comparison."""
    return list(_quotations(sentence))


@lru_cache(maxsize=200_000)
def _quotations(sentence: str) -> tuple[str, ...]:
    """quotations(), cached: a sentence meets many candidates."""
    found = []
    for match in _QUOTED.finditer(sentence):
        span = next(g for g in match.groups() if g)
        tokens = [w.lower() for w in words(span)]
        if len(tokens) >= QUOTE_MIN_WORDS:
            found.append(" ".join(tokens))
    return tuple(found)


def quotations_of(sentences: list[str]) -> list[tuple[int, str]]:
    """(sentence index, quotation) for every quotation of a text's sentences."""
    return [(i, q) for i, sentence in enumerate(sentences) for q in _quotations(sentence)]


def shared_quotes(a: list[str], b: list[str], *, a_quotes: list[tuple[int, str]] | None = None,
                  b_quotes: list[tuple[int, str]] | None = None) -> dict[tuple[int, int], str]:
    """(sentence of A, sentence of B) -> the quotation they share (equal, or nearly: a word changed or trimmed).
    `a_quotes`, `b_quotes`: quotations_of(a), quotations_of(b), when already known."""
    quotes_b = quotations_of(b) if b_quotes is None else b_quotes
    shared: dict[tuple[int, int], str] = {}
    if not quotes_b:
        return shared
    for i, qa in quotations_of(a) if a_quotes is None else a_quotes:
        for j, qb in quotes_b:
            if qa == qb or fuzz.token_set_ratio(qa, qb) >= QUOTE_SIMILARITY:
                shared.setdefault((i, j), qa if len(qa) <= len(qb) else qb)
    return shared


@dataclass(frozen=True)
class Alignment:
    pairs: list[AlignedPair]
    #: share of A's sentences whose best match in B is at or above the threshold; likewise for B.
    coverage_a: float
    coverage_b: float
    #: the closest correspondences below the threshold (mutual best matches), for people reading a report.
    near: list[AlignedPair] = field(default_factory=list)


def align(a: np.ndarray, b: np.ndarray, *, threshold: float, a_sentences: list[str] | None = None,
          b_sentences: list[str] | None = None, explain: bool = True, sims: np.ndarray | None = None,
          a_quotes: list[tuple[int, str]] | None = None, b_quotes: list[tuple[int, str]] | None = None) -> Alignment:
    """Each sentence's best match in the other document, kept at or above `threshold`, in both directions.

    With the sentence texts given, two sentences that carry the same quotation also align, whatever their cosine:
    rewrites keep quotes verbatim while changing the words around them. Without `explain`, only the coverages.
    `sims` (cosine_matrix(a, b)) and the quotations of each side (quotations_of), when already known.
    """
    if len(a) == 0 or len(b) == 0:
        return Alignment([], 0.0, 0.0)
    sims = cosine_matrix(a, b) if sims is None else sims
    quotes = (shared_quotes(a_sentences, b_sentences, a_quotes=a_quotes, b_quotes=b_quotes)
              if a_sentences and b_sentences else {})
    aligned_a = sims.max(axis=1) >= threshold
    aligned_b = sims.max(axis=0) >= threshold
    for i, j in quotes:
        aligned_a[i] = aligned_b[j] = True
    coverage_a = float(np.count_nonzero(aligned_a)) / len(a)
    coverage_b = float(np.count_nonzero(aligned_b)) / len(b)
    if not explain:  # the coverages only (what scoring needs), not the list of aligned pairs
        return Alignment([], coverage_a, coverage_b)
    best_in_b, best_in_a = sims.argmax(axis=1), sims.argmax(axis=0)
    kept = {(i, int(best_in_b[i])) for i in range(len(a)) if sims[i, best_in_b[i]] >= threshold}
    kept |= {(int(best_in_a[j]), j) for j in range(len(b)) if sims[best_in_a[j], j] >= threshold}
    kept |= set(quotes)
    pairs = sorted((AlignedPair(i, j, float(sims[i, j]), quotes.get((i, j))) for i, j in kept),
                   key=lambda p: (p.quote is None, -p.similarity, p.a_index))
    near = sorted((AlignedPair(i, int(best_in_b[i]), float(sims[i, best_in_b[i]])) for i in range(len(a))
                   if best_in_a[best_in_b[i]] == i and (i, int(best_in_b[i])) not in kept),
                  key=lambda p: (-p.similarity, p.a_index))[:NEAR_PAIRS]
    return Alignment(pairs, coverage_a, coverage_b, near)


@lru_cache(maxsize=200_000)
def _zipf(word: str) -> float:
    """wordfreq's zipf_frequency(word, "en"). A word of lower-case ASCII letters is its own only token there, so its
    value is read from the frequency list directly, with wordfreq's rounding (equal to it: tested); that costs a
    dictionary lookup instead of tokenizing the word (a forked worker starts with none of this cache)."""
    if word.isascii() and word.isalpha() and word.islower():
        return _zipf_of(get_frequency_dict("en", "best").get(word, 0.0))  # loaded once: wordfreq caches it
    return zipf_frequency(word, "en")


def _zipf_of(frequency: float) -> float:
    """The Zipf value zipf_frequency gives a one-token word of this frequency (minimum 0: 1e-9)."""
    unrounded = max(frequency, 1e-9)
    frequency = round(unrounded, math.floor(-math.log(unrounded, 10)) + 3)
    return round(math.log(frequency, 10) + 9, 2)


@dataclass(frozen=True)
class TermStats:
    """How many documents of a collection (an index) hold each specific term: a term that many other documents
    share (Putin, Ukraine in a collection of war reports) tells less than one only this story has (Severansk)."""

    documents: int
    df: dict[str, int] = field(default_factory=dict)
    #: pseudo-documents assumed not to hold the term, so that a small collection changes weights only a little.
    PRIOR = 10
    _weights: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    #: identifies this collection's weights in caches kept elsewhere (see _total_square).
    token: object = field(default_factory=object, init=False, repr=False, compare=False)

    def weights(self, members: int, pair_size: int) -> Callable[[str], float]:
        """term -> term_weight() x rarity() for given `members` and `pair_size`, remembered: the same terms meet
        again and again in one collection."""
        key = (members, pair_size)
        known = self._weights.get(key)
        if known is None:
            known = self._weights[key] = {}

        def weight(term: str) -> float:
            found = known.get(term)
            if found is None:
                found = known[term] = term_weight(term) * self.rarity(term, members=members, pair_size=pair_size)
            return found

        return weight

    def rarity(self, term: str, *, members: int, pair_size: int) -> float:
        """In (0, 1]: 1 for a term no document outside the pair holds. `members`: how many documents of the pair
        that are in the collection hold the term; `pair_size`: how many of the pair are in the collection. Leaving
        the pair out matters: in a collection of two rewrites, every shared term is in every document."""
        others = max(0, self.documents - pair_size)
        holders = max(0, self.df.get(term, 0) - members)
        return math.log((others + self.PRIOR) / (holders + 1)) / math.log(others + self.PRIOR)


@lru_cache(maxsize=500_000)
def term_weight(term: str) -> float:
    """How much a shared term says: dates 1, other numbers 0.5, words by rarity in general English (0..1)."""
    if any(c.isdigit() for c in term):
        return 1.0 if " " in term else 0.5
    return max(0.0, ZIPF_CEILING - _zipf(term)) / ZIPF_CEILING


def rare_name_terms(terms: Iterable[str], min_weight: float) -> list[str]:
    """Those of `terms` that are names, places or dates of at least `min_weight` (term_weight), in their order:
    those that begin with a letter (Seversk, MH17, COVID-19, "december 11"). Numbers (62, 2,000, 1990s, 5th, 20km)
    are left out: unrelated reports share counts, prices and ages by chance far more often than a name, and in a
    collection of many reports two of them link pairs that share nothing else."""
    return [t for t in terms if t[:1].isalpha() and term_weight(t) >= min_weight]


@dataclass(frozen=True)
class Terms:
    """The specific terms of a text: folded form -> occurrences, and folded form -> first spelling seen."""

    counts: dict[str, int]
    spelling: dict[str, str]

    def as_dict(self) -> dict[str, dict]:
        """As the index stores it (the same dicts, not copies)."""
        return {"counts": self.counts, "spelling": self.spelling}

    @cached_property
    def roots(self) -> dict[str, float]:
        """Term -> sqrt(occurrences): repeating a term counts, with diminishing returns."""
        return {t: math.sqrt(n) for t, n in self.counts.items()}

    @cached_property
    def varying(self) -> list[str]:
        """The terms that may have spelling variants (see _may_vary)."""
        return [t for t in self.counts if _may_vary(t)]

    @cached_property
    def varying_by_initial(self) -> dict[str, list[str]]:
        """varying, by first letter (variants share it)."""
        found: dict[str, list[str]] = {}
        for t in self.varying:
            found.setdefault(t[0], []).append(t)
        return found


_ASCII_DIGIT = re.compile(r"[0-9]")


def specific_terms(sentences: list[str], tokens: list[list[str]] | None = None) -> Terms:
    """Capitalised words (a sentence's first word only if it is rare), numbers, and month-day dates. `tokens`:
    words() of each sentence, if already known."""
    counts: dict[str, int] = {}
    spelling: dict[str, str] = {}

    def note(folded: str, written: str) -> None:
        counts[folded] = counts.get(folded, 0) + 1
        spelling.setdefault(folded, written)

    for n, sentence in enumerate(sentences):
        sentence_words = words(sentence) if tokens is None else tokens[n]
        for i, token in enumerate(sentence_words):
            if token.isascii():
                if not token[0].isupper() and not _ASCII_DIGIT.search(token):
                    continue  # a lower-case word: never a term (the common case, decided without folding)
                if token.endswith("'s"):
                    token = token[:-2]
                folded = token.lower().strip(".'-")
            else:
                if token.endswith(("'s", "’s")):
                    token = token[:-2]
                folded = fold(token).strip(".'-")
            if not folded:
                continue
            if any(c.isdigit() for c in folded):
                note(folded, token)
                previous = sentence_words[i - 1].lower() if i else ""
                if previous in MONTHS:
                    note(f"{previous} {folded}", f"{sentence_words[i - 1]} {token}")
                continue
            if (token[0].isupper() and len(folded) > 2 and folded not in MONTHS and folded not in WEEKDAYS
                    and (i > 0 or _zipf(folded) < COMMON_ZIPF)):
                note(folded, token)
    return Terms(counts, spelling)


@lru_cache(maxsize=200_000)
def _skeleton(term: str) -> str:
    return _REPEATS.sub(r"\1", term[0] + _VOWELS.sub("", term[1:]))


@lru_cache(maxsize=200_000)
def _may_vary(term: str) -> bool:
    """Only words of 5 letters or more have spelling variants here; numbers and dates must match exactly."""
    return len(term) >= VARIANT_MIN_LENGTH and not any(c.isdigit() for c in term)


@lru_cache(maxsize=500_000)
def variants_match(a: str, b: str) -> bool:
    """Same term, or spelling/transliteration variants of one name (Severansk / Seversk / Siversk, Donbas / Donbass).
    Numbers and dates must match exactly."""
    if a == b:
        return True
    if not (_may_vary(a) and _may_vary(b)) or a[0] != b[0]:
        return False
    if JaroWinkler.similarity(a, b) >= VARIANT_SIMILARITY:
        return True
    # Transliterations mostly differ in vowels and doubled letters: compare consonant skeletons, one edit allowed.
    sa, sb = _skeleton(a), _skeleton(b)
    return min(len(sa), len(sb)) >= 4 and Levenshtein.distance(sa, sb) <= 1


@dataclass(frozen=True)
class TermOverlap:
    #: cosine of the two texts' term vectors (sqrt of occurrences x rarity weight), variants merged (0..1).
    score: float
    #: matched terms as "spelling in A ~ spelling in B", most telling first.
    shared: list[str] = field(default_factory=list)


def _variant_groups(a: Terms, b: Terms, exact: set[str] | None = None) -> dict[tuple[str, str], str]:
    """(side, term) -> the name of its variant group (its smallest member), for the terms of a and b that are
    spelling variants of a term on the other side; every other term is a group of its own (a term on both sides:
    one group named by the term). Symmetric in a and b, transitive. `exact`: the terms both hold, if known."""
    a_by_initial, b_by_initial = a.varying_by_initial, b.varying_by_initial
    initials = a_by_initial.keys() & b_by_initial.keys()  # variants share their first letter
    if not initials:
        return {}
    if exact is None:
        exact = a.counts.keys() & b.counts.keys()
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(node: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for initial in initials:
        others = [u for u in b_by_initial[initial] if u not in exact]
        if not others:
            continue
        for t in a_by_initial[initial]:
            if t in exact:
                continue
            length = len(t)
            for u in others:
                if abs(length - len(u)) <= 4 and variants_match(t, u):
                    parent[find(("b", u))] = find(("a", t))
    members: dict[tuple[str, str], list[str]] = {}
    for node in list(parent):
        members.setdefault(find(node), []).append(node[1])
    return {node: min(members[find(node)]) for node in parent}


def _total_square(terms: Terms, weight: Callable[[str], float], token: object) -> float:
    """The squared norm of a text's term vector when no term is shared, remembered for the latest collection
    (`token`) on the Terms object itself."""
    cached = terms.__dict__.get("_total_square")
    if cached is not None and token is not None and cached[0] == token:
        return cached[1]
    total = sum((root * weight(t)) ** 2 for t, root in terms.roots.items())
    if token is not None:
        terms.__dict__["_total_square"] = (token, total)
    return total


def _exact_overlap(a: Terms, b: Terms, both: set[str], stats: TermStats | None,
                   indexed: tuple[bool, bool]) -> float:
    """term_overlap's score where no term is a spelling variant of another: each shared term is a group of its own
    (the common case; the same sums as term_overlap's, without its groups)."""
    pair_size = sum(indexed)
    if stats is None:
        own_a = own_b = shared = term_weight
        token_a = token_b = None
    else:
        own_a, own_b = stats.weights(int(indexed[0]), pair_size), stats.weights(int(indexed[1]), pair_size)
        shared = stats.weights(pair_size, pair_size)
        token_a, token_b = (stats.token, int(indexed[0]), pair_size), (stats.token, int(indexed[1]), pair_size)
    square_a, square_b = _total_square(a, own_a, token_a), _total_square(b, own_b, token_b)
    roots_a, roots_b = a.roots, b.roots
    kept_a = kept_b = dot = 0.0
    for t in both:
        root_a, root_b, weight = roots_a[t], roots_b[t], shared(t)
        square_a -= (root_a * own_a(t)) ** 2
        square_b -= (root_b * own_b(t)) ** 2
        value_a, value_b = root_a * weight, root_b * weight
        kept_a += value_a * value_a
        kept_b += value_b * value_b
        dot += value_a * value_b
    norm = math.sqrt((max(0.0, square_a) + kept_a) * (max(0.0, square_b) + kept_b))
    return min(1.0, dot / norm) if norm else 0.0


def term_overlap(a: Terms, b: Terms, *, stats: TermStats | None = None,
                 indexed: tuple[bool, bool] = (False, False), explain: bool = True) -> TermOverlap:
    """How much the two texts' specific terms agree, rare terms counting most: rare in general English always, and
    rare in the collection when `stats` are given (`indexed` says which of a and b are counted in them). With
    `explain`, the shared terms are listed too (for reports; scoring needs only the score)."""
    if not a.counts or not b.counts:
        return TermOverlap(0.0, [])
    both = a.counts.keys() & b.counts.keys()
    group = _variant_groups(a, b, both)
    if not both and not group:
        return TermOverlap(0.0, [])  # nothing shared, not even a variant: the cosine is 0 whatever the weights
    pair_size = sum(indexed)
    if not group and not explain:
        return TermOverlap(_exact_overlap(a, b, both, stats, indexed))
    # Only the terms the two share (exactly or as variants) are weighted here; each text's other terms enter the
    # norm through its total, computed once per text and collection.
    vectors, squares = [], []
    for side, terms, held in (("a", a, int(indexed[0])), ("b", b, int(indexed[1]))):
        # a term's weight depends on how many of the pair's indexed documents hold it: this side, and the other
        if stats is None:
            own = shared = term_weight
            token = None
        else:
            own, shared = stats.weights(held, pair_size), stats.weights(pair_size, pair_size)
            token = (stats.token, held, pair_size)
        special = set(both)
        special.update(t for (s_, t) in group if s_ == side)
        vector: dict[str, float] = {}
        square = _total_square(terms, own, token)
        for t in special:
            root = terms.roots[t]
            square -= (root * own(t)) ** 2
            g = group.get((side, t), t)
            vector[g] = vector.get(g, 0.0) + root * (shared(t) if t in both else own(t))
        vectors.append(vector)
        squares.append(max(0.0, square) + sum(v * v for v in vector.values()))
    vector_a, vector_b = vectors
    dot = sum(v * vector_b.get(g, 0.0) for g, v in vector_a.items())
    norm = math.sqrt(squares[0] * squares[1])
    score = min(1.0, dot / norm) if norm else 0.0
    if not explain:
        return TermOverlap(score)
    by_group_b = {}
    for u in b.counts:
        by_group_b.setdefault(group.get(("b", u), u), u)
    shared = [(t, by_group_b[group.get(("a", t), t)]) for t in a.counts if group.get(("a", t), t) in by_group_b]
    shared.sort(key=lambda tu: (-term_weight(tu[0]) * math.sqrt(a.counts[tu[0]]), tu[0]))
    labels = [a.spelling[t] if t == u else f"{a.spelling[t]} ~ {b.spelling[u]}" for t, u in shared]
    return TermOverlap(score, labels)


#: the headline and the lead: a news report states its event in its first sentences.
LEAD_SENTENCES = 3


def lead_cosine(a: np.ndarray, b: np.ndarray, *, sims: np.ndarray | None = None) -> float:
    """The highest cosine between one of the first LEAD_SENTENCES sentence vectors of A and one of B's. Independent
    reports of one event open with the same fact in other words; reports of two events on one topic open with
    different facts, however much background they share further down. `sims`: cosine_matrix(a, b), if known."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    if sims is None:
        return float(cosine_matrix(a[:LEAD_SENTENCES], b[:LEAD_SENTENCES]).max())
    return float(sims[:LEAD_SENTENCES, :LEAD_SENTENCES].max())


NGRAM = 3


def word_ngrams(sentences: list[str], size: int = NGRAM, tokens: list[list[str]] | None = None) -> set[str]:
    """Word `size`-grams of a text (every word, lower-cased): the unit of copying. `tokens`: words() of each
    sentence, if already known."""
    if tokens is not None:
        folded = [fold(w) for sentence_tokens in tokens for w in sentence_tokens]
    else:  # one pass over the whole text (no word spans a line break); ASCII text is folded by lower-casing it
        text = "\n".join(sentences)
        folded = words(text.lower()) if text.isascii() else [fold(w) for w in words(text)]
    if len(folded) < size:
        return {" ".join(folded)} if folded else set()
    return set(map(" ".join, zip(*(folded[i:] for i in range(size)))))


def sentence_hash(sentence: str, sentence_words: list[str] | None = None) -> int | None:
    """A stable 64-bit hash of a sentence of at least NGRAM words, its words folded and joined by spaces (so that
    case, and the punctuation and spacing between words, do not count); None for a shorter one. `sentence_words`:
    its words(), if already known."""
    sentence_words = words(sentence) if sentence_words is None else sentence_words
    if len(sentence_words) < NGRAM:
        return None
    folded = " ".join(sentence_words).lower() if sentence.isascii() else " ".join(map(fold, sentence_words))
    digest = hashlib.blake2b(folded.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)  # SQLite's integers are signed 64-bit


def sentence_hashes(sentences: list[str], tokens: list[list[str]] | None = None) -> list[int]:
    """The sentence_hash of each distinct sentence of at least NGRAM words, in order: what two texts that share a
    sentence word for word have in common. `tokens`: words() of each sentence, if already known."""
    found: dict[int, None] = {}
    for n, sentence in enumerate(sentences):
        h = sentence_hash(sentence, None if tokens is None else tokens[n])
        if h is not None:
            found.setdefault(h)
    return list(found)


def containments(a: set[str], b: set[str]) -> tuple[float, float]:
    """The share of the smaller text's word n-grams found in the other (Broder's containment: near 1 when one text
    is a copy of the other, or of a part of it), and the share of the larger text's (near 1 only when each is a copy
    of the other: an excerpt's source holds much that the excerpt does not)."""
    if not a or not b:
        return 0.0, 0.0
    shared = len(a & b)
    return shared / min(len(a), len(b)), shared / max(len(a), len(b))


@dataclass(frozen=True)
class PairEvidence:
    """Everything measured about a pair, before scoring."""

    jaccard: float
    doc_cosine: float
    alignment: Alignment
    terms: TermOverlap
    containment: float = 0.0
    #: the highest cosine between a lead sentence of A and one of B (see lead_cosine).
    lead_cosine: float = 0.0
    #: the share of the larger text's word n-grams found in the other (containments).
    containment_longer: float = 0.0

    def features(self) -> dict[str, float]:
        """The named numbers the score combines (see scoring.py and params.json)."""
        cov = (self.alignment.coverage_a, self.alignment.coverage_b)
        return {
            "coverage_min": min(cov),
            "coverage_max": max(cov),
            "doc_cosine": self.doc_cosine,
            "jaccard": self.jaccard,
            "term_cosine": self.terms.score,
            "containment": self.containment,
            "containment_longer": self.containment_longer,
            "lead_cosine": self.lead_cosine,
        }
