"""Exact (flat) against graph (HNSW) search of document vectors: what detector/vectors.py's HNSW_FROM rests on.

    python scripts/vector_search.py --data ../shared/data [--sizes 10000,50000,100000]

The document vectors are the fast profile's (static model, common directions removed) of the benchmark corpus
(scripts/benchmark.py). For each size: the time to add every vector (one batch of 256 at a time, as indexing
does), the query time for single vectors (p50 / p95, 200 queries of indexed documents), and the recall of the
graph: the share of the exact 21 nearest neighbours (what indexing asks for) it also returns.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import corpus  # noqa: E402

import detector.vectors as vectors  # noqa: E402
from detector.config import Settings  # noqa: E402
from detector.encoders import load_encoder  # noqa: E402
from detector.sentences import split_sentences  # noqa: E402

NEIGHBOURS = 21


def document_vectors(data: Path, size: int) -> np.ndarray:
    settings = Settings.for_profile("fast")
    encoder = load_encoder(settings.model)
    sentences = [split_sentences(d["text"], settings.splitter) for d in corpus(data, size)]
    flat = encoder.encode([s for group in sentences for s in group])
    bounds = np.cumsum([0] + [len(group) for group in sentences])
    directions = settings.directions()
    return np.vstack([vectors.document_vector(flat[a:b], directions)
                      for a, b in zip(bounds[:-1], bounds[1:])]).astype(np.float32)


def measure(all_vectors: np.ndarray, size: int, graph: bool) -> tuple[float, list[float], np.ndarray]:
    vectors.HNSW_FROM = 0 if graph else 10**12
    index = vectors.VectorIndex(all_vectors.shape[1])
    started = time.perf_counter()
    for i in range(0, size, 256):
        index.add(np.arange(i, min(i + 256, size)), all_vectors[i:i + 256])
    added = time.perf_counter() - started
    rng = np.random.default_rng(0)
    picked = rng.choice(size, 200, replace=False)
    latencies, found = [], []
    for q in picked:
        t = time.perf_counter()
        _, ids = index.search(all_vectors[q][None, :], NEIGHBOURS)
        latencies.append(1000 * (time.perf_counter() - t))
        found.append(ids[0])
    return added, latencies, np.array(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--sizes", default="10000,50000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    all_vectors = document_vectors(args.data, max(sizes))
    print("| vectors | search | add all (s) | query ms p50 / p95 | recall@21 |")
    print("|---|---|---|---|---|")
    for size in sizes:
        results = {graph: measure(all_vectors[:size], size, graph) for graph in (False, True)}
        exact = results[False][2]
        for graph, (added, latencies, found) in results.items():
            recall = np.mean([len(set(a) & set(b)) / NEIGHBOURS for a, b in zip(found, exact)])
            latencies.sort()
            print(f"| {size:,} | {'HNSW' if graph else 'flat (exact)'} | {added:.1f} | "
                  f"{statistics.median(latencies):.2f} / {latencies[int(0.95 * (len(latencies) - 1))]:.2f} | "
                  f"{recall:.3f} |", flush=True)


if __name__ == "__main__":
    main()
