"""Readers for the labelled development sets (see ../shared/data/README.md), shared by the scripts here."""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from detector.minhash import STOP_WORDS


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@dataclass(frozen=True)
class LabelledPair:
    dataset: str
    a: str  # document id
    b: str
    label: int
    group: str  # the story/task the pair belongs to, for grouped cross-validation
    kind: str = ""  # e.g. the Clough-Stevenson category


def newswcl_pairs(rows: list[dict]) -> list[LabelledPair]:
    """Every pair of NewsWCL50 documents: 1 when both report the same event."""
    return [LabelledPair("newswcl50", x["id"], y["id"], int(x["story"] == y["story"]),
                         x["story"] if x["story"] == y["story"] else f"{x['story']}|{y['story']}",
                         "same" if x["story"] == y["story"] else "other")
            for x, y in itertools.combinations(rows, 2)]


def clough_pairs(rows: list[dict]) -> list[LabelledPair]:
    """Each answer with its task's source: 1 when derived from it (cut, light, heavy), 0 when written apart (non)."""
    return [LabelledPair("clough_stevenson", r["id"], r["source_id"], int(r["category"] in ("cut", "light", "heavy")),
                         f"task{r['task']}", r["category"])
            for r in rows if r["category"] != "orig"]


_WORD = re.compile(r"^(\W*)(.*?)(\W*)$")  # a space-separated token: leading punctuation, the word, trailing punctuation


def swapped(sentence: str, rng: random.Random) -> str | None:
    """The sentence with two of its words swapped, as PAWS (Zhang et al. 2019) makes its hard negatives: two
    capitalised words (names) if it has two different ones, else two content words of four letters or more; the
    punctuation around each stays where it was ("Flights from Paris to Rome." / "Flights from Rome to Paris.").
    The words stay the same, the meaning does not. None when there is nothing to swap."""
    tokens = [_WORD.match(token).groups() for token in sentence.split(" ")]
    names = [i for i, (_, word, _) in enumerate(tokens) if i > 0 and word[:1].isupper() and word.isalpha()]
    pool = names if len({tokens[i][1].lower() for i in names}) >= 2 else [
        i for i, (_, word, _) in enumerate(tokens)
        if word.isalpha() and len(word) >= 4 and word.lower() not in STOP_WORDS]
    if len({tokens[i][1].lower() for i in pool}) < 2:
        return None
    while True:
        i, j = rng.sample(pool, 2)
        if tokens[i][1].lower() != tokens[j][1].lower():
            words = [word for _, word, _ in tokens]
            words[i], words[j] = words[j], words[i]
            return " ".join(before + word + after for (before, _, after), word in zip(tokens, words))


def with_swaps(rows: list[dict], seed: int) -> list[tuple[int, dict]]:
    """(index of the row, a negative pair): each paraphrase pair (a, b) gives (a, b with two words swapped)."""
    found = []
    for i, row in enumerate(rows):
        if row["label"] == 1:
            b = swapped(row["b"], random.Random(seed * 1_000_003 + i))
            if b is not None:
                found.append((i, {"a": row["a"], "b": b, "label": 0}))
    return found


def _replaceable(sentence: str) -> list[int]:
    """Positions of the words substituted() may replace: names past the first word, and lower-case content words of
    four letters or more."""
    tokens = [_WORD.match(token).group(2) for token in sentence.split(" ")]
    return [i for i, word in enumerate(tokens) if word.isalpha() and len(word) >= 4 and word.lower() not in STOP_WORDS
            and (word.islower() or (i > 0 and word[:1].isupper()))]


def substitution_vocabulary(rows: list[dict]) -> tuple[list[str], list[str]]:
    """The names and the lower-case content words of the sentences of `rows`, for substituted()."""
    names, others = set(), set()
    for row in rows:
        for sentence in (row["a"], row["b"]):
            tokens = [_WORD.match(token).group(2) for token in sentence.split(" ")]
            for i in _replaceable(sentence):
                (others if tokens[i].islower() else names).add(tokens[i])
    return sorted(names), sorted(others)


def substituted(sentence: str, rng: random.Random, vocabulary: tuple[list[str], list[str]]) -> str | None:
    """The sentence with one word replaced by another of the same kind (a name by a name, a lower-case content word
    by another), punctuation kept: the wording stays almost the same, the meaning does not ("A man is playing a
    guitar" / "... a flute"; "Smith said" / "Jones said"), the hard negatives of sets like STS and SICK. None when
    there is nothing to replace."""
    tokens = [_WORD.match(token).groups() for token in sentence.split(" ")]

    def choices(i: int) -> list[str]:
        return vocabulary[1] if tokens[i][1].islower() else vocabulary[0]

    places = [i for i in _replaceable(sentence) if {w.lower() for w in choices(i)} - {tokens[i][1].lower()}]
    if not places:
        return None
    i = rng.choice(places)
    while True:
        word = rng.choice(choices(i))
        if word.lower() != tokens[i][1].lower():
            break
    before, _, after = tokens[i]
    tokens[i] = (before, word, after)
    return " ".join(b + w + a for b, w, a in tokens)


def with_substitutions(rows: list[dict], seed: int) -> list[tuple[int, dict]]:
    """(index of the row, a negative pair): each paraphrase pair (a, b) gives (a, b with one word replaced by
    another from the words of `rows`)."""
    vocabulary = substitution_vocabulary(rows)
    found = []
    for i, row in enumerate(rows):
        if row["label"] == 1:
            b = substituted(row["b"], random.Random(seed * 1_000_003 + i), vocabulary)
            if b is not None:
                found.append((i, {"a": row["a"], "b": b, "label": 0}))
    return found
