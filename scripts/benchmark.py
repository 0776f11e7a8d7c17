"""Benchmark: the detector against two baselines on the same corpus of real text, on this machine.

    python scripts/benchmark.py --data ../shared/data [--documents 1000]

Corpus: the stream of scripts/dedup_benchmark.py (NewsWCL50, Clough-Stevenson, the seeds, lightly edited copies,
and articles composed of MRPC paraphrase pairs). For each method: indexing throughput, query latency p50/p95 (50
queries: corpus articles with their last sentence dropped), and for the detector peak memory and bytes per
document on disk. Quality: ARI of the story clusters on NewsWCL50 and the seeds. The baselines get the best
threshold of a grid chosen afterwards on the answers (an upper bound for them); the detector runs with its shipped
defaults.

Baselines: plain datasketch MinHashLSH (word 3-gram shingles, 128 permutations, connected components of pairs at
Jaccard >= t), and whole-document embeddings (MiniLM on the whole text, which the model truncates at 256 word
pieces; connected components of pairs at cosine >= t).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedup_benchmark import SEEDS, stream  # noqa: E402
from labelled import read_jsonl  # noqa: E402

from detector import Detector, Document  # noqa: E402
from detector.clusters import components  # noqa: E402
from detector.encoders import SentenceTransformerEncoder  # noqa: E402
from detector.evaluation import adjusted_rand_index  # noqa: E402
from detector.sentences import split_sentences, words  # noqa: E402


def percentiles(seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    return f"{statistics.median(ms):.1f} / {ms[int(0.95 * (len(ms) - 1))]:.1f}"


def queries(documents: list[dict], rng: random.Random) -> list[str]:
    picked = rng.sample(documents, 50)
    return [" ".join(split_sentences(d["text"])[:-1]) or d["text"] for d in picked]


def story_sets(data: Path) -> dict[str, tuple[list[str], list[str]]]:
    wcl = read_jsonl(data / "newswcl50.jsonl")
    expected = json.loads((SEEDS / "expected_clusters.json").read_text())["clusters"]
    story = {p: str(i) for i, group in enumerate(expected) for p in group}
    seeds = sorted(SEEDS.glob("*.txt"))
    return {"NewsWCL50": ([r["text"] for r in wcl], [r["story"] for r in wcl]),
            "seeds": ([p.read_text(encoding="utf-8") for p in seeds], [story[p.stem[:3]] for p in seeds])}


def best_ari(similarity: np.ndarray, truth: list[str], grid) -> tuple[float, float]:
    best = (-1.0, 0.0)
    n = len(truth)
    for t in grid:
        edges = [(i, j) for i in range(n) for j in range(i + 1, n) if similarity[i, j] >= t]
        label = {m: g[0] for g in components(list(range(n)), edges) for m in g}
        best = max(best, (adjusted_rand_index(truth, [str(label[i]) for i in range(n)]), t))
    return best


# ---- the detector --------------------------------------------------------------------------------------------------


def run_detector(documents: list[dict], qs: list[str], sets, folder: Path) -> dict:
    docs = [Document(id=d["id"], text=d["text"]) for d in documents]
    with Detector.open(folder / "index") as detector:
        detector.encoder.encode(["warm up"])
        started = time.perf_counter()
        detector.index(docs)
        seconds = time.perf_counter() - started
        latencies = []
        for q in qs:
            t = time.perf_counter()
            detector.query(q, top=5)
            latencies.append(time.perf_counter() - t)
        info = detector.info()
    quality = {}
    for name, (texts, truth) in sets.items():
        with Detector.open(folder / f"eval-{name}") as detector:
            detector.index([Document(id=str(i), text=t) for i, t in enumerate(texts)])
            cluster_of = detector.cluster_of()
        quality[name] = adjusted_rand_index(truth, [cluster_of[str(i)] for i in range(len(texts))])
    return {"docs/s": len(docs) / seconds, "query ms p50/p95": percentiles(latencies),
            "peak RSS MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "disk bytes/doc": info["bytes_on_disk"] / info["documents"],
            "quality": {k: (v, "shipped defaults") for k, v in quality.items()}}


# ---- baselines ------------------------------------------------------------------------------------------------------


def shingles3(text: str) -> set[bytes]:
    w = [x.lower() for x in words(text)]
    return {" ".join(w[i:i + 3]).encode() for i in range(max(1, len(w) - 2))}


def run_minhash(documents: list[dict], qs: list[str], sets) -> dict:
    from datasketch import MinHash, MinHashLSH

    def sign(text: str) -> MinHash:
        m = MinHash(num_perm=128)
        m.update_batch(list(shingles3(text)))
        return m

    started = time.perf_counter()
    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    for d in documents:
        lsh.insert(d["id"], sign(d["text"]))
    seconds = time.perf_counter() - started
    latencies = []
    for q in qs:
        t = time.perf_counter()
        lsh.query(sign(q))
        latencies.append(time.perf_counter() - t)
    quality = {}
    for name, (texts, truth) in sets.items():
        sigs = [sign(t) for t in texts]
        sim = np.array([[a.jaccard(b) for b in sigs] for a in sigs])
        quality[name] = best_ari(sim, truth, [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7])
    return {"docs/s": len(documents) / seconds, "query ms p50/p95": percentiles(latencies), "quality": quality}


def run_doc_embedding(documents: list[dict], qs: list[str], sets, encoder) -> dict:
    import faiss

    started = time.perf_counter()
    vectors = encoder.encode([d["text"] for d in documents])
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    seconds = time.perf_counter() - started
    latencies = []
    for q in qs:
        t = time.perf_counter()
        index.search(encoder.encode([q]), 5)
        latencies.append(time.perf_counter() - t)
    quality = {}
    for name, (texts, truth) in sets.items():
        v = encoder.encode(texts)
        quality[name] = best_ari(v @ v.T, truth, [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
    return {"docs/s": len(documents) / seconds, "query ms p50/p95": percentiles(latencies), "quality": quality}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--documents", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(11)
    documents = stream(args.data, args.documents, random.Random(7))
    qs = queries(documents, rng)
    sets = story_sets(args.data)
    encoder = SentenceTransformerEncoder()
    results = {"MinHashLSH baseline": run_minhash(documents, qs, sets),
               "document-embedding baseline": run_doc_embedding(documents, qs, sets, encoder)}
    with tempfile.TemporaryDirectory() as tmp:
        results["detector (accurate)"] = run_detector(documents, qs, sets, Path(tmp))
    print(f"{len(documents)} documents; 2 cores, no GPU\n")
    print("| method | indexing docs/s | query ms p50 / p95 | ARI NewsWCL50 | ARI seeds | peak RSS MB "
          "| disk bytes/doc |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        q = r["quality"]
        ari = [f"{q[k][0]:.3f}" + (f" (t={q[k][1]})" if not isinstance(q[k][1], str) else "") for k in
               ("NewsWCL50", "seeds")]
        print(f"| {name} | {r['docs/s']:.1f} | {r['query ms p50/p95']} | {ari[0]} | {ari[1]} | "
              f"{r.get('peak RSS MB', 0):.0f} | {r.get('disk bytes/doc', 0):.0f} |")


if __name__ == "__main__":
    main()
