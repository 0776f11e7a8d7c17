"""Relations and the sentence model, with parameters written out here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import TEST_PARAMS

from detector.config import ScoringParams
from detector.evidence import TermStats, Terms, term_overlap
from detector.scoring import Scorer

PARAMS = replace(TEST_PARAMS, weights={"jaccard": 10.0}, intercept=-5.0, duplicate_containment=0.8,
                 rewrite_coverage=0.5, time_window_days=14)


def features(**values: float) -> dict[str, float]:
    return {"coverage_min": 0.0, "coverage_max": 0.0, "jaccard": 0.0, "term_cosine": 0.0, "containment": 0.0,
            **values}


@pytest.mark.parametrize(("values", "relation"), [
    ({"jaccard": 0.1}, "different"),                                        # probability below one half
    ({"jaccard": 0.9, "containment": 0.95, "coverage_max": 1.0}, "duplicate"),
    ({"jaccard": 0.9, "containment": 0.3, "coverage_max": 0.7}, "rewrite"),
    ({"jaccard": 0.9, "containment": 0.3, "coverage_max": 0.1}, "same_story"),
    ({"jaccard": 0.9, "coverage_max": 0.1, "days_apart": 3.0}, "same_story"),
    ({"jaccard": 0.9, "coverage_max": 0.1, "days_apart": 30.0}, "different"),  # outside the time window
    ({"jaccard": 0.9, "coverage_max": 0.7, "days_apart": 300.0}, "rewrite"),   # a rewrite stays one, however late
])
def test_relations(values, relation):
    score = Scorer(PARAMS).score(features(**values))
    assert score.relation == relation
    assert score.same_story == (relation != "different")


def test_a_pair_outside_the_time_window_does_not_link_stories():
    score = Scorer(PARAMS).score(features(jaccard=0.9, days_apart=30.0))
    assert score.probability > 0.5 and score.link == 0.0


def test_could_cross_watches_the_grouping_threshold_too():
    # one feature, weight ln(0.45/0.55) - ln(0.3/0.7): p = 0.30 with no shared terms, 0.45 with all
    low, high = np.log(0.3 / 0.7), np.log(0.45 / 0.55)
    params = replace(TEST_PARAMS, weights={"term_cosine": float(high - low)}, intercept=float(low))
    features = {"term_cosine": 0.5}
    assert not Scorer(params).could_cross(features, "term_cosine")  # never reaches 0.5
    assert Scorer(replace(params, story_threshold=0.35)).could_cross(features, "term_cosine")  # 0.35 lies between
    assert not Scorer(replace(params, story_threshold=0.25)).could_cross(features, "term_cosine")


def test_sentence_model_uses_products_of_standardised_features():
    params = replace(TEST_PARAMS, sentence={"features": ["cosine", "word_jaccard"], "means": [0.5, 0.0],
                                            "scales": [0.25, 1.0], "weights": {"cosine*word_jaccard": 2.0},
                                            "intercept": 0.0, "threshold": 0.5})
    # z(cosine) = (0.75 - 0.5) / 0.25 = 1; z(word_jaccard) = 0.5; logit = 2 * 1 * 0.5 = 1
    score = Scorer(params).score_sentences({"cosine": 0.75, "word_jaccard": 0.5, "token_set_ratio": 0.5})
    assert score.probability == pytest.approx(1 / (1 + 2.718281828459045 ** -1))
    assert score.relation == "rewrite"
    identical = Scorer(params).score_sentences({"cosine": 1.0, "word_jaccard": 1.0, "token_set_ratio": 1.0})
    assert identical.relation == "duplicate"
    reordered = Scorer(params).score_sentences({"cosine": 1.0, "word_jaccard": 1.0, "token_set_ratio": 1.0,
                                                "word_order": 0.5})
    assert reordered.relation == "rewrite"  # the same words in another order are not a copy


def test_terms_common_in_the_index_weigh_less():
    # both texts name Putin and Gerasimov; only one other text shares Severansk, every other text has Putin
    a = Terms({"putin": 1, "severansk": 1}, {"putin": "Putin", "severansk": "Severansk"})
    b = Terms({"putin": 1, "krasnoarmeysk": 1}, {"putin": "Putin", "krasnoarmeysk": "Krasnoarmeysk"})
    stats = TermStats(20, {"putin": 20, "severansk": 2, "krasnoarmeysk": 1})
    plain = term_overlap(a, b).score
    weighted = term_overlap(a, b, stats=stats, indexed=(True, True)).score
    assert weighted < plain / 2


def test_rarity_leaves_the_pair_out():
    # an index holding only the two texts: their shared term is not common, it is what they share
    stats = TermStats(2, {"severansk": 2})
    assert stats.rarity("severansk", members=2, pair_size=2) == pytest.approx(1.0)
    # ten other texts of twelve hold it: it says little
    assert TermStats(12, {"severansk": 12}).rarity("severansk", members=2, pair_size=2) < 0.25


def test_sentence_features_far_outside_the_fitted_range_are_clipped():
    params = replace(TEST_PARAMS, sentence={"features": ["cosine"], "means": [0.0], "scales": [1.0],
                                            "weights": {"cosine": 1.0}, "intercept": 0.0, "threshold": 0.5})
    scorer = Scorer(params)
    at_limit = scorer.score_sentences({"cosine": 4.0, "token_set_ratio": 0.5}).probability
    assert scorer.score_sentences({"cosine": 100.0, "token_set_ratio": 0.5}).probability == at_limit
    assert at_limit == pytest.approx(1 / (1 + 2.718281828459045 ** -4))


def test_sentences_of_stop_words_only_are_compared_on_all_their_words():
    from detector.compare import sentence_features

    vector = np.ones(4, dtype=np.float32) / 2
    same = sentence_features("It is what it is.", "It is what it is.", vector, vector)
    other = sentence_features("It is what it is.", "They were not there.", vector, vector)
    assert (same["word_jaccard"], same["length_ratio"]) == (1.0, 1.0)
    assert other["word_jaccard"] == 0.0 and other["length_ratio"] > 0


def test_word_order_notices_swapped_words():
    from detector.compare import sentence_features, word_order

    assert word_order(["flights", "paris", "rome"], ["flights", "paris", "rome", "daily"]) == 1.0
    assert word_order(["flights", "paris", "rome"], ["flights", "rome", "paris"]) == pytest.approx(2 / 3)
    assert word_order(["paris"], ["rome", "paris"]) == 1.0  # fewer than two shared words: nothing to contradict
    assert word_order([], []) == 1.0
    vector = np.ones(4, dtype=np.float32) / 2
    swapped = sentence_features("Brazil beat Germany in the final.", "Germany beat Brazil in the final.", vector,
                                vector)
    assert swapped["word_jaccard"] == 1.0 and swapped["word_order"] < 1.0


def test_specific_terms_mark_reporting_not_plain_descriptions():
    from detector.compare import carries_specific_terms, sentence_features

    assert carries_specific_terms("Shares of Mandalay closed down 8 cents.")
    assert carries_specific_terms("The talks ended, Smith said.")
    assert carries_specific_terms("Prices rose 3 percent.")
    assert not carries_specific_terms("A man is playing a guitar.")
    assert not carries_specific_terms("Then I said it was fine.")  # "I" is no name
    vector = np.ones(4, dtype=np.float32) / 2
    assert sentence_features("Then Smith left.", "Later Jones left.", vector, vector)["specific"] == 1.0
    assert sentence_features("Smith left.", "Jones left.", vector, vector)["specific"] == 0.0  # first words only
    assert sentence_features("Then Smith left.", "A man left.", vector, vector)["specific"] == 0.0


@pytest.mark.parametrize("profile", ["accurate", "fast"])
def test_the_shipped_sentence_model_weighs_wording_only_where_both_sentences_carry_specific_terms(profile):
    # in plain descriptions words are shared whatever the meaning ("playing a guitar" / "playing a flute"): there
    # what the encoder says (cosine, token alignment) alone decides, and shared wording moves nothing
    scorer = Scorer(ScoringParams.shipped(profile))
    close = {"cosine": 0.8, "token_alignment": 0.8, "word_jaccard": 1.0, "bigram_jaccard": 1.0, "term_cosine": 1.0,
             "number_mismatch": 0.0, "length_ratio": 1.0, "token_set_ratio": 1.0, "word_order": 1.0}
    apart = {**close, "word_jaccard": 0.1, "bigram_jaccard": 0.0, "term_cosine": 0.0, "number_mismatch": 1.0,
             "length_ratio": 0.5, "token_set_ratio": 0.3, "word_order": 0.5}
    plain = [scorer.score_sentences({**features, "specific": 0.0}).probability for features in (close, apart)]
    assert plain[0] == plain[1]
    assert scorer.score_sentences({**close, "cosine": 0.9, "specific": 0.0}).probability > plain[0]
    assert scorer.score_sentences({**close, "token_alignment": 0.9, "specific": 0.0}).probability > plain[0]
    reporting = [scorer.score_sentences({**features, "specific": 1.0}).probability for features in (close, apart)]
    assert reporting[0] > reporting[1]


def test_token_alignment_matches_tokens_both_ways():
    from detector.compare import sentence_features, token_alignment

    e = np.eye(4, dtype=np.float32)
    assert token_alignment(e[:3], e[[2, 0, 1]]) == pytest.approx(1.0)  # the same tokens in any order
    assert token_alignment(e[:2], e[2:]) == 0.0  # nothing in common
    # one side's tokens all found, half of the other's: precision 1, recall 1/2, F1 2/3
    assert token_alignment(e[:1], e[:2]) == pytest.approx(2 / 3)
    assert token_alignment(e[:2], e[:1]) == token_alignment(e[:1], e[:2])
    assert token_alignment(e[:0], e[:2]) == 0.0
    # tokens pointing away from each other found nothing: 0, never a negative or exploding F1
    assert token_alignment(e[:1], -e[:1]) == 0.0
    assert token_alignment(np.array([[0.6, 0.8, 0, 0]], dtype=np.float32), -e[:2]) == 0.0
    vector = np.ones(4, dtype=np.float32) / 2
    assert sentence_features("A man left.", "A man left.", vector, vector)["token_alignment"] == pytest.approx(1.0)
    with_tokens = sentence_features("A man left.", "A dog sat.", vector, vector, (e[:3], e[[0, 3, 2]]))
    assert with_tokens["token_alignment"] == pytest.approx(2 / 3)
