"""Run `detector eval` over the seeds and every labelled set, and print a Markdown table of the figures.

    python scripts/evaluate.py --data ../shared/data [--profile accurate|fast] [--model NAME] [--set NAME=FILE ...]

The shipped parameters were fitted on NewsWCL50, Clough-Stevenson and MRPC train (scripts/calibrate.py), so the
figures for the first two are in-sample; calibrate.py prints their cross-validated counterparts. MRPC validation and
the seeds were never fitted on.

Story sets (documents with a `story` label) are indexed into a temporary index with shipped defaults and their
clusters compared with the labels; pair sets are scored. Clough-Stevenson is turned into pairs: each answer with its
task's source, label 1 when derived (cut, light, heavy), 0 when written independently (non); the category is kept,
so the relations given to each category are shown as well. "MRPC validation, words swapped" pairs each MRPC
validation paraphrase with a copy of it whose second sentence has two words swapped (label 0), as PAWS makes its
hard negatives (labelled.with_swaps): the same words, another meaning. "MRPC validation, one word substituted" pairs
each with a copy whose second sentence has one word replaced by another of its kind (labelled.with_substitutions),
as in the hard negatives of STS and SICK: almost the same words, another meaning. `--set NAME=FILE` (or `--pairs`)
adds any other labelled file: a story set (JSON lines with `id`, `text`, `story`) or a pair set (`a`, `b`, `label`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labelled import read_jsonl, with_substitutions, with_swaps  # noqa: E402

from detector.config import PROFILES  # noqa: E402
from detector.evaluation import ClusteringEvaluation, evaluate_file  # noqa: E402

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def seeds_file(folder: Path) -> Path:
    expected = json.loads((SEEDS / "expected_clusters.json").read_text(encoding="utf-8"))["clusters"]
    story = {prefix: f"story{i}" for i, group in enumerate(expected) for prefix in group}
    path = folder / "seeds.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for file in sorted(SEEDS.glob("*.txt")):
            out.write(json.dumps({"id": file.stem, "text": file.read_text(encoding="utf-8"),
                                  "story": story[file.stem[:3]]}) + "\n")
    return path


def clough_file(data: Path, folder: Path) -> Path:
    rows = read_jsonl(data / "clough_stevenson.jsonl")
    texts = {r["id"]: r["text"] for r in rows}
    path = folder / "clough_pairs.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for r in rows:
            if r["category"] != "orig":
                out.write(json.dumps({"a": r["text"], "b": texts[r["source_id"]], "category": r["category"],
                                      "label": int(r["category"] != "non")}) + "\n")
    return path


def made_up_file(data: Path, folder: Path, make) -> Path:
    """MRPC validation paraphrases, each with a negative made from it by `make` (with_swaps, with_substitutions)."""
    rows = read_jsonl(data / "mrpc_val.jsonl")
    path = folder / f"mrpc_val_{make.__name__}.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for i, negative in make(rows, seed=1):
            out.write(json.dumps({"a": rows[i]["a"], "b": rows[i]["b"], "label": 1}) + "\n")
            out.write(json.dumps(negative) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with the labelled sets (../shared/data)")
    parser.add_argument("--model", default=None, help="sentence-transformers model (default: the profile's)")
    parser.add_argument("--profile", choices=list(PROFILES), default="accurate")
    parser.add_argument("--set", "--pairs", dest="sets", action="append", default=[], metavar="NAME=FILE",
                        help="another labelled set: a story set (JSON lines: id, text, story) or a pair set (a, b, "
                             "label); may be repeated")
    args = parser.parse_args()
    extra = []
    for spec in args.sets:
        name, sep, file = spec.partition("=")
        if not sep or not Path(file).is_file():
            parser.error(f"--set {spec!r}: give NAME=FILE with an existing file")
        extra.append((name, Path(file)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sets = [("seeds", seeds_file(folder)), ("NewsWCL50", args.data / "newswcl50.jsonl"),
                ("Clough-Stevenson (answer vs source)", clough_file(args.data, folder)),
                ("MRPC validation", args.data / "mrpc_val.jsonl"),
                ("MRPC validation, words swapped (PAWS-style)", made_up_file(args.data, folder, with_swaps)),
                ("MRPC validation, one word substituted", made_up_file(args.data, folder, with_substitutions)),
                *extra]
        stories, pairs = [], []
        for name, path in sets:
            result = evaluate_file(str(path), model=args.model, profile=args.profile)
            print(f"## {name}\n" + "\n".join(result.lines()) + "\n", file=sys.stderr)
            (stories if isinstance(result, ClusteringEvaluation) else pairs).append((name, result))
    print("| story set | documents | ARI | B-cubed P / R / F1 | pairwise P / R / F1 | docs/s |")
    print("|---|---|---|---|---|---|")
    for name, r in stories:
        print(f"| {name} | {r.documents} | {r.ari:.3f} | " + " / ".join(f"{v:.3f}" for v in r.bcubed) + " | "
              + " / ".join(f"{v:.3f}" for v in r.pairwise) + f" | {r.documents / r.seconds:.1f} |")
    print()
    print("| pair set | pairs | ROC AUC | plain cosine ROC AUC | precision | recall | F1 | pairs/s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in pairs:
        print(f"| {name} | {r.pairs} | {r.roc_auc:.3f} | {r.cosine_roc_auc:.3f} | {r.precision:.3f} | {r.recall:.3f} | "
              f"{r.f1:.3f} | {r.pairs / r.seconds:.1f} |")
    for name, r in pairs:
        for category, counts in sorted(r.relations.items()):
            print(f"\n{name}, `{category}`: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
