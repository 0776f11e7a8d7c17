"""Benchmark: the detector's profiles against two baselines on the same corpora of real text, on this machine.

    python scripts/benchmark.py --data ../shared/data [--sizes 1000,10000] [--accurate-up-to 1000]
                                [--baseline-up-to 1000] [--whole-sentences]

Corpora: for each size, the stream of scripts/dedup_benchmark.py (NewsWCL50, Clough-Stevenson, the seeds, lightly
edited copies, and articles composed of MRPC paraphrase pairs; about 1,000 documents), then articles composed of
6-14 sentences made from the sentences of the shared data, with a light-edit copy of every tenth and a paraphrase
of every tenth (each sentence that has an MRPC paraphrase replaced by it). Each composed sentence joins the first
half of one real sentence to the second half of another (corpus(spliced=True)), so that unrelated articles share
whole sentences as rarely as news does; with --whole-sentences, they are whole real sentences drawn at random, as
before, and unrelated articles share ~10 of them at 10,000 articles (the pool holds ~10,500), which the detector
sets aside as boilerplate. Random composition is a hard case for candidate generation: every article mixes
topics, so document vectors crowd together.

Each method and size runs in a fresh process (so peak memory is its own). Reported: indexing throughput (documents
through `add_many`, the dedup API: indexing and a dedup decision for each), query latency p50/p95 (50 corpus
articles with their last sentence dropped, after indexing), peak RSS, bytes per document on disk and in memory
(RSS after indexing less RSS before), and quality: ARI of the story clusters on NewsWCL50 and the seeds. The
baselines get the best threshold of a grid chosen afterwards on the answers (an upper bound for them); the
detector runs with its shipped defaults.

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from wordfreq import zipf_frequency

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedup_benchmark import SEEDS, light_edit, stream  # noqa: E402
from labelled import read_jsonl  # noqa: E402

from detector import Detector, Document  # noqa: E402
from detector.clusters import components  # noqa: E402
from detector.encoders import SentenceTransformerEncoder  # noqa: E402
from detector.evaluation import adjusted_rand_index  # noqa: E402
from detector.sentences import split_sentences, words  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def splice(first: str, second: str) -> str:
    """The first half of one sentence's words, then the second half of another's."""
    a, b = first.split(), second.split()
    return " ".join(a[:len(a) // 2] + b[len(b) // 2:])


def corpus(data: Path, size: int, spliced: bool = False) -> list[dict]:
    """`size` documents: the dedup benchmark's stream, then composed articles with copies and paraphrases.

    `spliced`: each composed sentence joins the first half of one real sentence to the second half of another (its
    paraphrase: the halves of the two sentences' MRPC partners), so that articles share whole sentences as rarely
    as news does, not ~100 times each at 100,000 articles (the pool holds ~10,500 sentences; it holds ~10^8
    halves pairs)."""
    rng = random.Random(7)
    documents = stream(data, size, rng)
    if len(documents) >= size:
        return documents
    mrpc = read_jsonl(data / "mrpc_train.jsonl") + read_jsonl(data / "mrpc_val.jsonl")
    paraphrase = {r["a"]: r["b"] for r in mrpc if r["label"] == 1}
    pool = [r[k] for r in mrpc for k in ("a", "b")]
    for name in ("newswcl50.jsonl", "clough_stevenson.jsonl"):
        pool += [s for r in read_jsonl(data / name) for s in split_sentences(r["text"], "blingfire")]
    pool = list(dict.fromkeys(pool))
    n = 0
    while len(documents) < size:
        count = rng.randint(6, 14)
        sentences = rng.sample(pool, count)
        if spliced:
            seconds = rng.sample(pool, count)
            rewritten = [splice(paraphrase.get(s, s), paraphrase.get(t, t)) for s, t in zip(sentences, seconds)]
            sentences = [splice(s, t) for s, t in zip(sentences, seconds)]
        else:
            rewritten = [paraphrase.get(s, s) for s in sentences]
        paragraphs = [" ".join(sentences[i:i + 3]) for i in range(0, len(sentences), 3)]
        article = {"id": f"composed-{n}", "text": "\n\n".join(paragraphs)}
        documents.append(article)
        if n % 10 == 3 and len(documents) < size:
            documents.append({"id": f"composed-{n}-copy", "text": light_edit(article["text"])})
        if n % 10 == 7 and len(documents) < size:
            documents.append({"id": f"composed-{n}-rewrite", "text": " ".join(rewritten)})
        n += 1
    return documents[:size]


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


def run_detector(documents: list[dict], qs: list[str], sets, folder: Path, profile: str) -> dict:
    docs = [Document(id=d["id"], text=d["text"]) for d in documents]
    with Detector.open(folder / "index", profile=profile) as detector:
        detector.encoder.encode(["warm up"])
        # and the word list that weighs specific terms (wordfreq's, ~0.4 s to read on first use): like the model,
        # loaded once a process, so kept out of the clock and of memory per document
        zipf_frequency("warm", "en")
        before = rss_mb()
        started = time.perf_counter()
        detector.add_many(docs, batch_size=256)
        seconds = time.perf_counter() - started
        after = rss_mb()
        latencies = []
        for q in qs:
            t = time.perf_counter()
            detector.query(q, top=5)
            latencies.append(time.perf_counter() - t)
        info = detector.info()
    quality = {}
    for name, (texts, truth) in sets.items():
        with Detector.open(folder / f"eval-{name}", profile=profile) as detector:
            detector.index([Document(id=str(i), text=t) for i, t in enumerate(texts)])
            cluster_of = detector.cluster_of()
        quality[name] = adjusted_rand_index(truth, [cluster_of[str(i)] for i in range(len(texts))])
    return {"docs/s": len(docs) / seconds, "query ms p50/p95": percentiles(latencies),
            "peak RSS MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "memory bytes/doc": max(0.0, after - before) * 2**20 / len(docs),
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
    return {"docs/s": len(documents) / seconds, "query ms p50/p95": percentiles(latencies), "quality": quality,
            "peak RSS MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


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
    return {"docs/s": len(documents) / seconds, "query ms p50/p95": percentiles(latencies), "quality": quality,
            "peak RSS MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


METHODS = ("MinHashLSH baseline", "document-embedding baseline", "detector (fast)", "detector (accurate)")


def run_one(data: Path, size: int, method: str, spliced: bool = True) -> dict:
    documents = corpus(data, size, spliced=spliced)
    qs = queries(documents, random.Random(11))
    sets = story_sets(data)
    if method == "MinHashLSH baseline":
        return run_minhash(documents, qs, sets)
    if method == "document-embedding baseline":
        return run_doc_embedding(documents, qs, sets, SentenceTransformerEncoder())
    profile = method.split("(")[1].rstrip(")")
    with tempfile.TemporaryDirectory() as tmp:
        return run_detector(documents, qs, sets, Path(tmp), profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--sizes", default="1000,10000", help="corpus sizes, comma-separated")
    parser.add_argument("--accurate-up-to", type=int, default=1000,
                        help="run the accurate profile on corpora up to this size (it indexes ~10 docs/s here)")
    parser.add_argument("--baseline-up-to", type=int, default=1000,
                        help="run the document-embedding baseline up to this size (MiniLM on every document)")
    parser.add_argument("--whole-sentences", action="store_true",
                        help="compose articles of whole sentences, as before: unrelated articles then share ~10 "
                             "whole sentences each at 10,000 articles, ~100 at 100,000, which the detector sets "
                             "aside as boilerplate")
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.data, int(args.one[0]), args.one[1], spliced=not args.whole_sentences)))
        return
    print("| corpus | method | index + dedup docs/s | query ms p50 / p95 | ARI NewsWCL50 | ARI seeds | peak RSS MB "
          "| memory bytes/doc | disk bytes/doc |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in (int(x) for x in args.sizes.split(",")):
        for method in METHODS:
            if (method == "detector (accurate)" and size > args.accurate_up_to) or \
                    (method == "document-embedding baseline" and size > args.baseline_up_to):
                continue
            run = subprocess.run([sys.executable, __file__, "--data", str(args.data), "--one", str(size), method,
                                  *(["--whole-sentences"] if args.whole_sentences else [])],
                                 capture_output=True, text=True)
            if run.returncode:
                print(f"| {size:,} | {method} | failed: {run.stderr.strip().splitlines()[-1]} |", flush=True)
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            q = r["quality"]
            ari = [f"{q[k][0]:.3f}" + (f" (t={q[k][1]})" if not isinstance(q[k][1], str) else "")
                   for k in ("NewsWCL50", "seeds")]
            memory = f"{r['memory bytes/doc']:.0f}" if "memory bytes/doc" in r else "-"
            disk = f"{r['disk bytes/doc']:.0f}" if "disk bytes/doc" in r else "-"
            print(f"| {size:,} | {method} | {r['docs/s']:.1f} | {r['query ms p50/p95']} | {ari[0]} | {ari[1]} | "
                  f"{r['peak RSS MB']:.0f} | {memory} | {disk} |", flush=True)


if __name__ == "__main__":
    main()
