"""Which shingling finds rewrites? Exact Jaccard of each scheme on labelled pairs, no model needed.

    python scripts/measure_shingles.py --data ../shared/data

For each scheme: ROC AUC of Jaccard between positive and negative pairs, and at LSH thresholds the recall of
positives (derived answers / same-story pairs found as candidates) against the share of negatives let through.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labelled import clough_pairs, newswcl_pairs, read_jsonl  # noqa: E402

from detector.minhash import content_words, shingles  # noqa: E402
from detector.sentences import words  # noqa: E402


def all_words(text: str, size: int) -> set[str]:
    tokens = [w.lower() for w in words(text)]
    return {" ".join(tokens[i:i + size]) for i in range(max(1, len(tokens) - size + 1))}


def chars(text: str, size: int) -> set[str]:
    flat = " ".join(content_words(text))
    return {flat[i:i + size] for i in range(max(1, len(flat) - size + 1))}


SCHEMES = {
    "content words, 1-grams": lambda t: shingles(t, 1),
    "content words, 2-grams": lambda t: shingles(t, 2),
    "content words, 3-grams": lambda t: shingles(t, 3),
    "all words, 3-grams": lambda t: all_words(t, 3),
    "all words, 5-grams": lambda t: all_words(t, 5),
    "characters, 5-grams": lambda t: chars(t, 5),
}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    sets = {
        "newswcl50 (same event)": (read_jsonl(args.data / "newswcl50.jsonl"), newswcl_pairs),
        "clough-stevenson (derived vs non)": (read_jsonl(args.data / "clough_stevenson.jsonl"), clough_pairs),
    }
    print("| scheme | data | ROC AUC | recall / negatives passed at J>=0.05 | at J>=0.1 | at J>=0.2 |")
    print("|---|---|---|---|---|---|")
    for name, make in SCHEMES.items():
        for label, (rows, pairing) in sets.items():
            texts = {r["id"]: make(r["text"]) for r in rows}
            pairs = pairing(rows)
            y = np.array([p.label for p in pairs])
            j = np.array([jaccard(texts[p.a], texts[p.b]) for p in pairs])
            cells = [f"{(j[y == 1] >= t).mean():.2f} / {(j[y == 0] >= t).mean():.2f}" for t in (0.05, 0.1, 0.2)]
            print(f"| {name} | {label} | {roc_auc_score(y, j):.3f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
