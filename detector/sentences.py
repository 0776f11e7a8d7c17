"""Sentence splitting (pysbd: quotes, abbreviations, initials) and word tokens.

Paragraphs are separated by blank lines; the line breaks inside a paragraph are joined with spaces first, so text
wrapped at a fixed width (as in the Clough-Stevenson answers) is not cut mid-sentence. A "sentence" longer than
MAX_WORDS words (lists, transcripts with no full stops) is cut into pieces of at most that many words, so that the
encoder, whose input is limited to 256 word pieces, never silently truncates anything.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pysbd

MAX_WORDS = 120
_PARAGRAPH = re.compile(r"\n\s*\n")
_SPACE = re.compile(r"\s+")
WORD = re.compile(r"[^\W_](?:(?:[\w'’.\-]|,(?=\d{3}))*[^\W_])?")


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, in order, none empty, none longer than MAX_WORDS words."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = _SPACE.sub(" ", paragraph).strip()
        if not paragraph:
            continue
        for sentence in _segmenter().segment(paragraph):
            sentence = sentence.strip()
            if sentence:
                sentences.extend(_cut_long(sentence))
    return sentences


def _cut_long(sentence: str) -> list[str]:
    words = sentence.split(" ")
    if len(words) <= MAX_WORDS:
        return [sentence]
    return [" ".join(words[i:i + MAX_WORDS]) for i in range(0, len(words), MAX_WORDS)]


def words(text: str) -> list[str]:
    """Word tokens as written (case kept), inner apostrophes, hyphens and dots kept (U.S., 2.5, Jong-un), and
    thousands separators inside numbers (10,000)."""
    return WORD.findall(text)
