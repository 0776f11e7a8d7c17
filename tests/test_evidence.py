"""Pair evidence: variant spellings, specific terms, quotations, sentence alignment, and compare()'s invariants."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CHESS, FLOOD_OTHER_EVENT, FLOOD_REWRITE, FLOOD_WIRE, TEST_PARAMS, FakeEncoder
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.compare import TextView, compare, views_of_texts
from detector.config import Settings
from detector.evidence import (Terms, TermStats, align, lead_cosine, quotations, shared_quotes, specific_terms,
                               term_overlap, term_weight, variants_match, word_ngrams)
from detector.sentences import fold, words
from detector.scoring import Scorer

# ---- variant spellings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a, b", [
    ("severansk", "seversk"),    # the seed articles' three spellings of one town
    ("seversk", "siversk"),
    ("severansk", "siversk"),
    ("donbas", "donbass"),
    ("gerasimov", "gerasimov"),
    ("2024", "2024"),
    ("december 11", "december 11"),
])
def test_variants_match(a, b):
    assert variants_match(a, b)
    assert variants_match(b, a)


@pytest.mark.parametrize("a, b", [
    ("december 11", "december 1"),  # dates must match exactly
    ("11", "1"),
    ("2024", "2025"),
    ("2.5", "2.6"),
    ("moscow", "london"),
    ("lviv", "lvov"),              # names shorter than 5 letters must be equal
    ("kyiv", "kiev"),
    ("bakhmut", "pakhmut"),        # a different first letter is a different name
])
def test_variants_do_not_match(a, b):
    assert not variants_match(a, b)
    assert not variants_match(b, a)


# ---- specific terms ---------------------------------------------------------------------------------------------


def test_specific_terms_are_names_numbers_and_dates():
    terms = specific_terms(["Gerasimov told Putin on December 11 that Severansk had fallen.",
                            "The Army lost 62 tanks on Monday."])
    assert terms.spelling == {"gerasimov": "Gerasimov", "putin": "Putin", "11": "11", "december 11": "December 11",
                              "severansk": "Severansk", "army": "Army", "62": "62"}
    assert set(terms.counts.values()) == {1}


def test_specific_terms_count_occurrences():
    terms = specific_terms(["Seversk fell.", "Seversk was taken by Gerasimov's troops, and SEVERSK is now quiet."])
    assert terms.counts == {"seversk": 3, "gerasimov": 1}
    assert terms.spelling == {"seversk": "Seversk", "gerasimov": "Gerasimov"}


def test_common_first_word_is_not_a_term_but_a_rare_one_is():
    assert specific_terms(["Officials said the bridge was closed."]).counts == {}
    assert specific_terms(["Gerasimov said the bridge was closed."]).counts == {"gerasimov": 1}


def test_term_weight_by_rarity():
    assert term_weight("december 11") == 1.0
    assert term_weight("62") == 0.5
    assert term_weight("gerasimov") > 0.6 > term_weight("army")


def test_term_overlap_identical_and_disjoint():
    terms = specific_terms(["Gerasimov told Putin that Seversk had fallen on December 11."])
    assert term_overlap(terms, terms).score == pytest.approx(1.0)
    assert term_overlap(terms, specific_terms(["Carlsen beat Nepomniachtchi in New York."])).score == 0.0
    assert term_overlap(terms, specific_terms(["nothing capitalised here."])).score == 0.0


def test_term_overlap_matches_variants_but_not_other_dates():
    a = specific_terms(["Gerasimov told Putin on December 11 that Severansk had fallen."])
    b = specific_terms(["Gerasimov reported to Putin on December 1 that Siversk was captured."])
    overlap = term_overlap(a, b)
    assert overlap.shared == ["Severansk ~ Siversk", "Gerasimov", "Putin"]
    assert 0.3 < overlap.score < 0.8  # the dates and day numbers differ
    same_date = specific_terms(["Gerasimov reported to Putin on December 11 that Siversk was captured."])
    assert term_overlap(a, same_date).score == pytest.approx(1.0)  # a variant spelling counts as the same name


# ---- quotations ----------------------------------------------------------------------------------------------------


def test_quotations_in_straight_curly_and_single_quotes():
    assert quotations('"We are slowly but surely moving forward," he said.') == [
        "we are slowly but surely moving forward"]
    assert quotations("He called it “a meat grinder for both armies” on Monday.") == [
        "a meat grinder for both armies"]
    assert quotations("It became a 'meat grinder of the war', they said.") == ["meat grinder of the war"]


def test_short_quotes_and_apostrophes_are_not_quotations():
    assert quotations('She said "no way" twice.') == []
    assert quotations("The soldiers' families' homes were destroyed by the shelling.") == []


def test_shared_quotes_equal_or_nearly_equal():
    a = ['He said "we are slowly but surely moving forward" today.', "Nothing quoted here."]
    b = ["Nothing quoted.", "“We are slowly but surely moving forward,” a soldier said."]
    assert shared_quotes(a, b) == {(0, 1): "we are slowly but surely moving forward"}
    # one word added inside the quote still counts as the same quote
    assert shared_quotes(['"The enemy is losing its will to fight," he said.'],
                         ['"The enemy is clearly losing its will to fight," he added.']) == {
        (0, 0): "the enemy is losing its will to fight"}
    assert shared_quotes(['"The enemy is losing its will to fight," he said.'],
                         ['"Our harvest was lost across the whole region," she said.']) == {}


# ---- alignment ------------------------------------------------------------------------------------------------------


def unit(*indices: int, dimension: int = 4) -> np.ndarray:
    rows = np.zeros((len(indices), dimension), dtype=np.float32)
    rows[np.arange(len(indices)), indices] = 1.0
    return rows


def test_align_coverage_both_ways():
    # A has three sentences, B two; A's first two are B's two, A's third has no match
    alignment = align(unit(0, 1, 2), unit(0, 1), threshold=0.7)
    assert [(p.a_index, p.b_index, p.similarity) for p in alignment.pairs] == [(0, 0, 1.0), (1, 1, 1.0)]
    assert alignment.coverage_a == pytest.approx(2 / 3)
    assert alignment.coverage_b == 1.0


def test_align_threshold_is_inclusive_and_below_is_dropped():
    a = np.array([[1.0, 0.0]], dtype=np.float32)
    b = np.array([[0.6, 0.8], [0.8, 0.6]], dtype=np.float32)  # cosines 0.6 and 0.8 with a
    alignment = align(a, b, threshold=0.8)
    assert [(p.a_index, p.b_index) for p in alignment.pairs] == [(0, 1)]
    assert (alignment.coverage_a, alignment.coverage_b) == (1.0, 0.5)
    assert align(a, b, threshold=0.81).pairs == []


def test_align_shared_quote_aligns_whatever_the_cosine():
    a_sentences = ["Floods hit Paiporta.", '"We are living through an unprecedented situation," Mazón said.']
    b_sentences = ['The regional head told reporters: "We are living through an unprecedented situation."']
    alignment = align(unit(0, 1), unit(2), threshold=0.7, a_sentences=a_sentences, b_sentences=b_sentences)
    assert [(p.a_index, p.b_index, p.quote) for p in alignment.pairs] == [
        (1, 0, "we are living through an unprecedented situation")]
    assert (alignment.coverage_a, alignment.coverage_b) == (0.5, 1.0)
    # scoring asks only for the coverages: the same numbers, without the list of pairs
    quick = align(unit(0, 1), unit(2), threshold=0.7, a_sentences=a_sentences, b_sentences=b_sentences,
                  explain=False)
    assert (quick.pairs, quick.coverage_a, quick.coverage_b) == ([], 0.5, 1.0)


def test_align_with_an_empty_side():
    alignment = align(unit(0), np.zeros((0, 4), dtype=np.float32), threshold=0.7)
    assert (alignment.pairs, alignment.coverage_a, alignment.coverage_b) == ([], 0.0, 0.0)


def test_lead_cosine_reads_only_the_first_three_sentences():
    # the same fact opens both (sentence 0 of A, sentence 2 of B), whatever follows
    assert lead_cosine(unit(0, 1, 2, 3), unit(3, 2, 0, 1)) == 1.0
    # shared only further down (A's fourth sentence is B's first): not a lead match
    assert lead_cosine(unit(3, 0, 0, 1), unit(1, 2, 2, 2)) == 0.0
    assert lead_cosine(unit(0), np.zeros((0, 4), dtype=np.float32)) == 0.0


# ---- compare(): whole-pair evidence ----------------------------------------------------------------------------------

ENCODER = FakeEncoder()
SETTINGS = Settings(model=FakeEncoder.name)


def evidence(a: str, b: str):
    view_a, view_b = views_of_texts([a, b], ENCODER, SETTINGS)
    return compare(view_a, view_b, align_threshold=TEST_PARAMS.align_threshold)


def test_compare_identical_texts():
    assert evidence(FLOOD_WIRE, FLOOD_WIRE).features() == pytest.approx(
        {"coverage_min": 1.0, "coverage_max": 1.0, "doc_cosine": 1.0, "jaccard": 1.0, "term_cosine": 1.0,
         "containment": 1.0, "containment_longer": 1.0, "lead_cosine": 1.0})


def test_compare_rewrite_scores_above_other_event_and_unrelated():
    scorer = Scorer(TEST_PARAMS)
    rewrite = scorer.score(evidence(FLOOD_WIRE, FLOOD_REWRITE).features())
    other = scorer.score(evidence(FLOOD_WIRE, FLOOD_OTHER_EVENT).features())
    unrelated = scorer.score(evidence(FLOOD_WIRE, CHESS).features())
    assert (rewrite.verdict, other.verdict, unrelated.verdict) == ("same story", "different", "different")
    assert rewrite.probability > 0.9 and other.probability < 0.1 and unrelated.probability < 0.1


def test_text_view_of_text_matches_batch_views():
    single = TextView.of_text(FLOOD_REWRITE, ENCODER, SETTINGS)
    [batched] = views_of_texts([FLOOD_REWRITE], ENCODER, SETTINGS)
    assert single.sentences == batched.sentences
    np.testing.assert_allclose(single.vectors, batched.vectors)


# ---- properties ------------------------------------------------------------------------------------------------------

VOCABULARY = ["Gerasimov", "Putin", "Seversk", "Siversk", "Severansk", "Donbas", "Donbass", "Paiporta", "Valencia",
              "December", "11", "1", "62", "2024", "army", "town", "flood", "captured", "said", "the", "rescue",
              "residents", "wall", "water", "slowly", "surely", "forward", "Mazón", "Kyïv", "U.S."]
sentence_strategy = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=12).map(lambda w: " ".join(w) + ".")
text_strategy = st.lists(sentence_strategy, min_size=1, max_size=5).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(text_strategy, text_strategy)
def test_compare_is_symmetric_and_bounded(a, b):
    forward, backward = evidence(a, b), evidence(b, a)
    assert forward.features() == pytest.approx(backward.features(), abs=1e-6)
    features = forward.features()
    for name in ("coverage_min", "coverage_max", "jaccard", "term_cosine"):
        assert 0.0 <= features[name] <= 1.0, name
    assert -1.0 <= features["doc_cosine"] <= 1.0 + 1e-6
    assert features["coverage_min"] <= features["coverage_max"]
    probability = Scorer(TEST_PARAMS).probability(features)
    assert 0.0 <= probability <= 1.0


term_dicts = st.lists(sentence_strategy, max_size=4).map(specific_terms)


@settings(max_examples=200, deadline=None)
@given(term_dicts, term_dicts)
def test_term_overlap_is_symmetric_and_bounded(a, b):
    score = term_overlap(a, b).score
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(term_overlap(b, a).score)
    if any(term_weight(t) > 0 for t in a.counts):
        assert term_overlap(a, a).score == pytest.approx(1.0)


@settings(max_examples=200, deadline=None)
@given(term_dicts, term_dicts, st.integers(0, 40), st.sampled_from([(True, True), (True, False), (False, False)]))
def test_the_score_alone_is_the_score_of_the_full_comparison(a, b, more, indexed):
    # explain=False takes a shorter way where no term is a variant of another (scoring, rescoring): the same sums
    stats = TermStats(sum(indexed) + more, {t: 1 + (len(t) % 7) for t in {**a.counts, **b.counts}})
    for collection in (None, stats):
        full = term_overlap(a, b, stats=collection, indexed=indexed if collection else (False, False))
        alone = term_overlap(a, b, stats=collection, indexed=indexed if collection else (False, False),
                             explain=False)
        assert alone.score == pytest.approx(full.score, abs=1e-12)


def test_variant_groups_are_transitive():
    # Seversk ~ Severansk and Severank ~ Severansk: all three are one place, whichever side they are on
    a = Terms({"seversk": 1, "severank": 1}, {"seversk": "Seversk", "severank": "Severank"})
    b = Terms({"severansk": 1}, {"severansk": "Severansk"})
    assert term_overlap(a, b).score == pytest.approx(1.0)
    assert term_overlap(b, a).score == pytest.approx(1.0)
    assert len(term_overlap(a, b).shared) == 2


def _ngrams_word_by_word(sentences: list[str], size: int = 3) -> set[str]:
    """word_ngrams as first written: each sentence's words, each word folded on its own."""
    folded = [fold(w) for sentence in sentences for w in words(sentence)]
    if len(folded) < size:
        return {" ".join(folded)} if folded else set()
    return {" ".join(folded[i:i + size]) for i in range(len(folded) - size + 1)}


@settings(max_examples=300, deadline=None)
@given(sentences=st.lists(st.lists(st.sampled_from(list("aZ9 .,'-’_\n\tÉéžŽ") + ["U.S.", "10,000", "Jong-un"]),
                                   max_size=40).map("".join), max_size=5))
def test_word_ngrams_of_a_whole_text_equal_those_word_by_word(sentences):
    assert word_ngrams(sentences) == _ngrams_word_by_word(sentences)
    assert word_ngrams(sentences, tokens=[words(s) for s in sentences]) == _ngrams_word_by_word(sentences)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=14))
def test_zipf_values_read_from_the_list_equal_wordfreqs(word):
    from wordfreq import zipf_frequency

    from detector.evidence import _zipf
    assert _zipf.__wrapped__(word) == zipf_frequency(word, "en")


def test_zipf_values_of_listed_words_equal_wordfreqs():
    from wordfreq import get_frequency_dict, zipf_frequency

    from detector.evidence import _zipf
    listed = [w for w in get_frequency_dict("en", "best") if w.isascii() and w.isalpha() and w.islower()][::97]
    assert len(listed) > 2_000
    assert [_zipf.__wrapped__(w) for w in listed] == [zipf_frequency(w, "en") for w in listed]
    # anything else is left to wordfreq: capitals, digits, apostrophes, accents
    assert [_zipf(w) for w in ("Paris", "mh17", "o'brien", "zürich")] == \
        [zipf_frequency(w, "en") for w in ("Paris", "mh17", "o'brien", "zürich")]
