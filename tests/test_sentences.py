"""Sentence splitting: quotes, abbreviations, initials, wrapped lines, paragraphs, and over-long sentences."""

from __future__ import annotations

from detector.sentences import MAX_WORDS, split_sentences, words


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
