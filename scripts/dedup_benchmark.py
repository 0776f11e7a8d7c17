"""`detector dedup` over a stream of real articles: its throughput, and whether its decisions agree with the story
clusters of the same data.

    python scripts/dedup_benchmark.py --data ../shared/data [--documents 1000] [--index DIR] [--profile fast]

The stream (real text only, shuffled with a fixed seed): the NewsWCL50 and Clough-Stevenson documents and the seeds;
copies of some of them with light edits (last paragraph cut, quotes and spacing changed); and articles composed of
MRPC sentence pairs judged paraphrases, one article from the first sentences and its rewrite from the second.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labelled import read_jsonl  # noqa: E402

from detector.config import PROFILES  # noqa: E402

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
DETECTOR = [sys.executable, "-m", "detector"]


def light_edit(text: str) -> str:
    paragraphs = [p for p in text.split("\n") if p.strip()]
    kept = paragraphs[:-1] if len(paragraphs) > 3 else paragraphs
    return "\n\n".join(kept).replace('"', "“", 1).replace("  ", " ")


def stream(data: Path, size: int, rng: random.Random) -> list[dict]:
    base = [{"id": f"wcl-{r['id']}", "text": r["text"]} for r in read_jsonl(data / "newswcl50.jsonl")]
    base += [{"id": f"cs-{r['id']}", "text": r["text"]} for r in read_jsonl(data / "clough_stevenson.jsonl")]
    base += [{"id": f"seed-{p.stem[:3]}", "text": p.read_text(encoding="utf-8")} for p in sorted(SEEDS.glob("*.txt"))]
    copies = [{"id": f"{d['id']}-copy", "text": light_edit(d["text"])} for d in rng.sample(base, min(45, len(base)))]
    paraphrases = [r for r in read_jsonl(data / "mrpc_train.jsonl") if r["label"] == 1]
    rng.shuffle(paraphrases)
    composed = []
    for n in range(0, len(paraphrases) - 6, 6):
        if len(base) + len(copies) + len(composed) >= size:
            break
        group = paraphrases[n:n + 6]
        composed.append({"id": f"mrpc-{n // 6}-a", "text": " ".join(r["a"] for r in group)})
        composed.append({"id": f"mrpc-{n // 6}-b", "text": " ".join(r["b"] for r in group)})
    documents = (base + copies + composed)[:size]
    rng.shuffle(documents)
    return documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--policy", default="same_story", choices=["duplicate", "rewrite", "same_story"])
    parser.add_argument("--index", type=Path, default=None, help="index folder (default: a temporary one)")
    parser.add_argument("--profile", default="accurate", choices=list(PROFILES), help="for a new index")
    args = parser.parse_args()
    documents = stream(args.data, args.documents, random.Random(7))
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or Path(tmp) / "index"
        source = Path(tmp) / "stream.jsonl"
        source.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
        started = time.perf_counter()
        run = subprocess.run([*DETECTOR, "dedup", "--index", str(index), "--policy", args.policy,
                              "--profile", args.profile, str(source)], capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
        decisions = {json.loads(line)["id"]: json.loads(line)["dedup"] for line in run.stdout.splitlines()}
        clusters = subprocess.run([*DETECTOR, "clusters", "--index", str(index), "--format", "jsonl"],
                                  capture_output=True, text=True, check=True).stdout.splitlines()
    cluster_of = {json.loads(line)["id"]: json.loads(line)["cluster"] for line in clusters}
    duplicates = [(i, d) for i, d in decisions.items() if d["status"] == "duplicate"]
    together = sum(cluster_of[i] == cluster_of[d["matched_id"]] for i, d in duplicates)
    new = sum(d["status"] == "new" for d in decisions.values())
    print(run.stderr.strip().splitlines()[-1])
    print(f"documents: {len(documents)}  wall time including start-up: {seconds:.1f}s "
          f"({len(documents) / seconds:.1f} docs/s)")
    print(f"new: {new}  duplicates: {len(duplicates)}  clusters: {len(set(cluster_of.values()))}")
    print(f"duplicates in the same final cluster as the document they matched: {together}/{len(duplicates)} "
          f"({together / max(1, len(duplicates)):.1%})")


if __name__ == "__main__":
    main()
