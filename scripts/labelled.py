"""Readers for the labelled development sets (see ../shared/data/README.md), shared by the scripts here."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path


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
