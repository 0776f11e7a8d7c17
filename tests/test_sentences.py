"""Sentence splitting: quotes, abbreviations, initials, wrapped lines, paragraphs, and over-long sentences."""

from __future__ import annotations

import pysbd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.sentences import MAX_WORDS, _segmenter, split_sentences, words


def test_abbreviations_do_not_end_sentences():
    # a wire lead with "Mr.", "U.S." and "Dec. 3"
    text = "Mr. Smith met the U.S. envoy in Geneva on Dec. 3. Talks resumed on Friday."
    assert split_sentences(text) == ["Mr. Smith met the U.S. envoy in Geneva on Dec. 3.", "Talks resumed on Friday."]


def test_initials_do_not_end_sentences():
    text = "J. R. Smith scored 20 points. The Cavaliers won by three."
    assert split_sentences(text) == ["J. R. Smith scored 20 points.", "The Cavaliers won by three."]


def test_titles_and_ranks():
    text = "Gen. Valery Gerasimov reported to Vladimir Putin on Dec. 11. Dr. Jones agreed."
    assert split_sentences(text) == ["Gen. Valery Gerasimov reported to Vladimir Putin on Dec. 11.",
                                     "Dr. Jones agreed."]


def test_quotes_stay_with_their_attribution():
    text = '"We will not retreat," the commander said. He said: "We stay. We fight." Officials agreed.'
    assert split_sentences(text) == ['"We will not retreat," the commander said.',
                                     'He said: "We stay. We fight."', "Officials agreed."]


def test_wrapped_lines_are_joined_and_blank_lines_separate_paragraphs():
    # text wrapped at a fixed width, as in the Clough-Stevenson answers, then a second paragraph without a full stop
    text = ("The ministry said the\nbridge was closed\nfor repairs. Traffic\nwas diverted.\n"
            "\n   \n"
            "Second paragraph without a full stop\n\nThird paragraph.")
    assert split_sentences(text) == ["The ministry said the bridge was closed for repairs.", "Traffic was diverted.",
                                     "Second paragraph without a full stop", "Third paragraph."]


def test_empty_and_whitespace_only_text():
    assert split_sentences("") == []
    assert split_sentences(" \n\n \t ") == []


def test_long_sentence_is_cut_without_losing_words():
    # a transcript of 1,000 words with no full stop
    text = " ".join(f"word{i}" for i in range(1000))
    pieces = split_sentences(text)
    assert len(pieces) == -(-1000 // MAX_WORDS)
    assert max(len(p.split()) for p in pieces) == MAX_WORDS
    assert " ".join(pieces).split() == text.split()


def test_sentence_of_exactly_max_words_is_kept_whole():
    text = " ".join(["alpha"] * MAX_WORDS) + "."
    assert split_sentences(text) == [text]


def test_words_keep_inner_dots_hyphens_and_apostrophes():
    assert words("The U.S. economy grew 2.5% as Kim Jong-un's envoy left.") == [
        "The", "U.S", "economy", "grew", "2.5", "as", "Kim", "Jong-un's", "envoy", "left"]


def test_numbers_with_thousands_separators_are_one_word():
    assert words("10,000 people and 2,500, then 3, 4") == ["10,000", "people", "and", "2,500", "then", "3", "4"]


# pysbd's own segmenter is the oracle for the faster way of finding sentences back in the text
STOCK = pysbd.Segmenter(language="en", clean=False)
TRICKY = [
    "Mr. Smith went to Washington. He arrived on Jan. 5 at 10 a.m. and left. He arrived on Jan. 5 at 10 a.m. and left.",
    "It rained.  It rained.\tIt rained.\u00a0Then the U.S. team won 2-1 (after extra time).",
    '"We are slowly but surely moving forward," he said. "The news about taking Severansk confirms it."',
    "No. 1 seed lost. Co. shares fell 8 cents to $34.52. I.e. nothing. Dr. Who? Yes! ... And then... nothing.",
    "A sentence. A sentence. A sentence.",
]


@pytest.mark.parametrize("text", TRICKY)
def test_sentences_are_found_back_as_pysbd_finds_them(text):
    assert _segmenter().segment(text) == STOCK.segment(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["It rained.", "Mr. Smith left.", "U.S. troops", "said:", '"Yes."', "Then", "\n",
                                 "  ", "Dr.", "5 p.m.", "again!", "(no)", "It rained."]), min_size=1, max_size=12))
def test_found_back_as_pysbd_finds_them_for_any_mix(parts):
    text = " ".join(parts).strip()
    assert _segmenter().segment(text) == STOCK.segment(text)
