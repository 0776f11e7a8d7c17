"""How each stage's cost grows with the index: grow one index step by step and print a row per step.

    python scripts/scale.py --data ../shared/data --to 200000 [--step 10000] [--index PATH] [--profile fast]
                            [--spliced]
    python scripts/scale.py --data ../shared/data --to 1000000 --index PATH --spliced --queries-only

The corpus is scripts/benchmark.py's (the dedup stream, then articles composed of real sentences with copies and
paraphrases). With --index, an existing index grown by an earlier run is taken up where it stopped (its documents
are the corpus's first ones), so a long run can be done in several sittings; without it, a temporary index.

Per step: documents per second through `Detector.index` (batches of 256), the seconds spent in each stage
(preparing, encoding and storing texts, finding candidates, confirming them, story grouping, committing), resident
memory (now and peak), bytes per document on disk, and query latency p50 / p95 (20 corpus articles with their last
sentence dropped). The stages are timed by wrapping the Detector's own methods for the run: a measurement, not
an API.

With --queries-only, an existing index is opened as a new process would open it and only queried: the time to
open it (model, checkpoint and the documents committed after it), then query latency p50 / p95 over 50 corpus
articles with their last sentence dropped, first with nothing cached (each query reads its candidates' documents
from the database), then the same queries again, and resident memory after each.
"""

from __future__ import annotations

import argparse
import functools
import random
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import corpus, percentiles, queries, rss_mb  # noqa: E402

from detector import Detector, Document  # noqa: E402
from detector.detector import Detector as DetectorClass  # noqa: E402
from detector.store import Store  # noqa: E402

#: stage name -> (class, method): the methods whose time is summed per step. Nested ones are reported apart
#: (`batch` holds `candidates` and `confirm`; `grouping` is story grouping after each batch).
STAGES = {"batch": (DetectorClass, "_index_batch"), "candidates": (DetectorClass, "_candidates"),
          "confirm": (DetectorClass, "_confirm"), "grouping": (DetectorClass, "_recluster"),
          "commit": (Store, "commit")}


def clock_stages(seconds: dict[str, float]) -> None:
    for stage, (cls, name) in STAGES.items():
        method = getattr(cls, name)

        @functools.wraps(method)
        def timed(*args, _method=method, _stage=stage, **kwargs):
            started = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                seconds[_stage] += time.perf_counter() - started

        setattr(cls, name, timed)


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def query_only(path: Path, probes: list[str]) -> None:
    before = rss_mb()
    began = time.perf_counter()
    with Detector.open(path) as detector:
        detector.query(probes[0])  # the first query loads the model and brings the search indexes up to date
        opened = time.perf_counter() - began
        count = detector.store.count_documents()
        print(f"{path}: {count:,} documents; opened and first query answered in {opened:.1f} s; "
              f"RSS {rss_mb():.0f} MB ({rss_mb() - before:.0f} MB more than before opening)")
        for label in ("cold (nothing cached)", "warm (the same queries again)"):
            latencies = []
            for text in probes[1:]:
                began = time.perf_counter()
                detector.query(text)
                latencies.append(time.perf_counter() - began)
            print(f"query ms p50 / p95, {label}, {len(latencies)} queries: {percentiles(latencies)}; "
                  f"RSS {rss_mb():.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with the labelled sets (../shared/data)")
    parser.add_argument("--to", type=int, required=True, help="documents in the index at the end")
    parser.add_argument("--step", type=int, default=10_000, help="documents added per row")
    parser.add_argument("--index", type=Path, default=None, help="index to grow (taken up where it stopped)")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--spliced", action="store_true",
                        help="compose sentences of two real half sentences (articles then share whole sentences "
                             "about as rarely as news does; see benchmark.corpus)")
    parser.add_argument("--queries-only", action="store_true",
                        help="only open the --index and query it (cold, then warm); add nothing")
    args = parser.parse_args()
    if args.queries_only and args.index is None:
        parser.error("--queries-only needs the --index to query")

    documents = corpus(args.data, args.to, spliced=args.spliced)
    if args.queries_only:
        query_only(args.index, queries(documents, random.Random(11)))
        return
    probes = queries(documents, random.Random(11))[:20]
    seconds: dict[str, float] = defaultdict(float)
    clock_stages(seconds)
    with tempfile.TemporaryDirectory(prefix="detector-scale-") as tmp:
        path = args.index or Path(tmp) / "index"
        with Detector.open(path, profile=args.profile) as detector:
            start = detector.store.count_documents()
            print(f"{path}: {start} documents to begin with, growing to {args.to}", file=sys.stderr)
            print("| documents | docs/s | prepare, encode, store s | candidates s | confirm s | grouping s | "
                  "commit s | query ms p50 / p95 | RSS MB | peak RSS MB | disk bytes/doc |")
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            while start < args.to:
                end = min(args.to, start + args.step)
                seconds.clear()
                began = time.perf_counter()
                detector.index([Document(id=d["id"], text=d["text"]) for d in documents[start:end]])
                elapsed = time.perf_counter() - began
                latencies = []
                for text in probes:
                    began = time.perf_counter()
                    detector.query(text)
                    latencies.append(time.perf_counter() - began)
                prepare = seconds["batch"] - seconds["candidates"] - seconds["confirm"]
                print(f"| {end:,} | {(end - start) / elapsed:.0f} | {prepare:.1f} | {seconds['candidates']:.1f} | "
                      f"{seconds['confirm']:.1f} | {seconds['grouping']:.1f} | {seconds['commit']:.1f} | "
                      f"{percentiles(latencies)} | {rss_mb():.0f} | "
                      f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} | "
                      f"{disk_bytes(path) / end:.0f} |", flush=True)
                start = end


if __name__ == "__main__":
    main()
