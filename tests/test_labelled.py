"""The made-up hard negatives that calibration adds to MRPC train (scripts/labelled.py)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from labelled import substituted, swapped, with_substitutions  # noqa: E402

VOCABULARY = (["Jones", "Paris"], ["flute", "harbour", "violin"])


def test_substituted_replaces_one_word_by_another_of_its_kind_keeping_punctuation():
    for seed in range(20):
        out = substituted("A man is playing a guitar.", random.Random(seed), VOCABULARY)
        before, after = "A man is playing a guitar.".split(" "), out.split(" ")
        changed = [(x, y) for x, y in zip(before, after) if x != y]
        assert len(after) == len(before) and len(changed) == 1
        old, new = changed[0]
        assert old in ("playing", "guitar.") and new.rstrip(".") in VOCABULARY[1]
        assert old.endswith(".") == new.endswith(".")
    named = {substituted("Talks ended, Smith said.", random.Random(seed), (["Jones"], [])) for seed in range(10)}
    assert named == {"Talks ended, Jones said."}  # "Talks" is the first word: never taken for a name


def test_substituted_gives_none_when_nothing_can_be_replaced():
    assert substituted("It is what it is.", random.Random(0), VOCABULARY) is None
    assert substituted("Smith won.", random.Random(0), (["Smith"], [])) is None  # no other name to put in


def test_with_substitutions_makes_negatives_from_paraphrases_only():
    rows = [{"a": "Smith won the vote.", "b": "Smith carried the vote.", "label": 1},
            {"a": "Jones lost.", "b": "Prices fell sharply.", "label": 0}]
    made = with_substitutions(rows, seed=0)
    assert [i for i, _ in made] == [0]
    assert made[0][1]["a"] == rows[0]["a"] and made[0][1]["b"] != rows[0]["b"] and made[0][1]["label"] == 0
    assert swapped("Flights from Paris to Rome.", random.Random(0)) == "Flights from Rome to Paris."
