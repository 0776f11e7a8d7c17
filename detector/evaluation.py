"""Evaluation against labelled data: story clustering metrics and pair-scoring metrics (`detector eval`)."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.special import comb
from scipy.stats import rankdata


def adjusted_rand_index(truth: list[str], predicted: list[str]) -> float:
    """ARI of two labelings of the same items (Hubert and Arabie)."""
    n = len(truth)
    if n < 2:
        return 1.0
    pairs = Counter(zip(truth, predicted))
    sum_cells = sum(comb(c, 2) for c in pairs.values())
    sum_truth = sum(comb(c, 2) for c in Counter(truth).values())
    sum_pred = sum(comb(c, 2) for c in Counter(predicted).values())
    expected = sum_truth * sum_pred / comb(n, 2)
    maximum = (sum_truth + sum_pred) / 2
    if maximum == expected:
        return 1.0
    return float((sum_cells - expected) / (maximum - expected))


def bcubed(truth: list[str], predicted: list[str]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 (Bagga and Baldwin), averaged over items."""
    pairs = Counter(zip(truth, predicted))
    size_truth, size_pred = Counter(truth), Counter(predicted)
    precision = sum(pairs[(t, p)] / size_pred[p] for t, p in zip(truth, predicted)) / len(truth)
    recall = sum(pairs[(t, p)] / size_truth[t] for t, p in zip(truth, predicted)) / len(truth)
    return precision, recall, _f1(precision, recall)


def pairwise(truth: list[str], predicted: list[str]) -> tuple[float, float, float]:
    """Precision, recall and F1 over all pairs of items: a pair is positive when both share a cluster."""
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(truth)), 2):
        same_t, same_p = truth[i] == truth[j], predicted[i] == predicted[j]
        tp += same_t and same_p
        fp += same_p and not same_t
        fn += same_t and not same_p
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, _f1(precision, recall)


def roc_auc(labels: list[int], scores: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    labels_a, ranks = np.asarray(labels), rankdata(scores)
    positives, negatives = int(labels_a.sum()), int(len(labels_a) - labels_a.sum())
    if not positives or not negatives:
        return float("nan")
    return float((ranks[labels_a == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@dataclass(frozen=True)
class ClusteringEvaluation:
    documents: int
    stories: int
    clusters: int
    ari: float
    bcubed: tuple[float, float, float]
    pairwise: tuple[float, float, float]
    seconds: float

    def lines(self) -> list[str]:
        return [f"documents: {self.documents}  true stories: {self.stories}  predicted clusters: {self.clusters}",
                f"ARI: {self.ari:.4f}",
                "B-cubed precision / recall / F1: " + " / ".join(f"{v:.4f}" for v in self.bcubed),
                "pairwise precision / recall / F1: " + " / ".join(f"{v:.4f}" for v in self.pairwise),
                f"time: {self.seconds:.1f}s  ({self.documents / max(self.seconds, 1e-9):.1f} documents/s)"]


@dataclass(frozen=True)
class PairEvaluation:
    pairs: int
    positives: int
    roc_auc: float
    precision: float
    recall: float
    f1: float
    seconds: float
    levels: dict[str, int] = field(default_factory=dict)
    #: category (a field of the input lines, when present) -> relation -> count
    relations: dict[str, dict[str, int]] = field(default_factory=dict)
    #: ROC AUC of the plain embedding cosine of the two texts (whole sentences, or document vectors), to compare
    cosine_roc_auc: float | None = None

    def lines(self) -> list[str]:
        out = [f"pairs: {self.pairs}  positives: {self.positives}  levels: {self.levels}",
               f"ROC AUC: {self.roc_auc:.4f}" + (f"  (plain embedding cosine: {self.cosine_roc_auc:.4f})"
                                                 if self.cosine_roc_auc is not None else ""),
               f"at the shipped threshold: precision {self.precision:.4f}  recall {self.recall:.4f}  F1 {self.f1:.4f}",
               f"time: {self.seconds:.1f}s  ({self.pairs / max(self.seconds, 1e-9):.1f} pairs/s)"]
        for category, counts in sorted(self.relations.items()):
            out.append(f"relations of category {category!r}: " + ", ".join(f"{r} {n}" for r, n in counts.items()))
        return out


def clustering_evaluation(truth: list[str], predicted: list[str], seconds: float) -> ClusteringEvaluation:
    return ClusteringEvaluation(len(truth), len(set(truth)), len(set(predicted)), adjusted_rand_index(truth, predicted),
                                bcubed(truth, predicted), pairwise(truth, predicted), seconds)


def pair_evaluation(labels: list[int], scores: list[float], same: list[bool], levels: list[str],
                    categories: list[str | None], relations: list[str], seconds: float,
                    cosines: list[float] | None = None) -> PairEvaluation:
    tp = sum(1 for y, s in zip(labels, same) if y and s)
    fp = sum(1 for y, s in zip(labels, same) if not y and s)
    fn = sum(1 for y, s in zip(labels, same) if y and not s)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    by_category: dict[str, dict[str, int]] = {}
    for category, relation in zip(categories, relations):
        if category is not None:
            counts = by_category.setdefault(str(category), {})
            counts[relation] = counts.get(relation, 0) + 1
    return PairEvaluation(len(labels), sum(labels), roc_auc(labels, scores), precision, recall,
                          _f1(precision, recall), seconds, dict(Counter(levels)), by_category,
                          roc_auc(labels, cosines) if cosines is not None else None)


def evaluate_file(path: str, *, encoder=None, model: str | None = None, profile: str = "accurate", progress=None):
    """Evaluate the detector on a labelled JSON-lines file: documents with a `story` label are indexed into a
    temporary index and clustered; pairs (`a`, `b`, `label`) are scored. Returns a Clustering- or PairEvaluation."""
    import tempfile
    import time
    from pathlib import Path

    from .detector import Detector
    from .documents import document_from_record, is_blank, json_line
    from . import encoders
    from .config import ScoringParams, Settings
    from .errors import InputError
    from .pairs import score_pairs

    with open(path, "rb") as handle:
        lines = [(n, line) for n, line in enumerate(handle, start=1) if not is_blank(line, first=n == 1)]
    if not lines:
        raise InputError(f"{path}: no data")
    rows = []
    for number, line in lines:
        row = json_line(line, f"{path}:{number}", first=number == 1)
        if not isinstance(row, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    fields = rows[0][1]
    started = time.perf_counter()
    if "story" in fields:
        hint = "every line of a story set needs `id`, `text` and `story` (pairs go in a file of their own)"
        docs = [document_from_record(row, where=f"{path}:{number}", fields_hint=hint) for number, row in rows]
        missing = [number for number, row in rows if "story" not in row]
        if missing:
            raise InputError(f"{path}:{missing[0]}: no `story` label (every document of a story set needs one)")
        first_line: dict[str, int] = {}
        for (number, _), d in zip(rows, docs):
            earlier = first_line.setdefault(d.id, number)
            if earlier != number:  # indexing would replace the first with the second, and count only one
                raise InputError(f"{path}:{number}: id {d.id!r} repeats line {earlier}'s: every document of a story "
                                 "set needs its own id")
        truth = [str(d.extra.get("story")) for d in docs]
        with tempfile.TemporaryDirectory(prefix="detector-eval-") as folder:
            with Detector.open(Path(folder) / "index", model=model, encoder=encoder, profile=profile) as detector:
                detector.index(docs, progress=progress)
                cluster_of = detector.cluster_of()
        predicted = [cluster_of[d.id] for d in docs]
        return clustering_evaluation(truth, predicted, time.perf_counter() - started)
    if {"a", "b", "label"} <= set(fields):
        for number, row in rows:
            if not all(isinstance(row.get(k), str) and row[k].strip() for k in ("a", "b")) \
                    or row.get("label") not in (0, 1, True, False):
                raise InputError(f"{path}:{number}: a pair needs non-empty text fields `a` and `b` and a `label` "
                                 "of 0 or 1")
        rows = [row for _, row in rows]
        settings = Settings.for_profile(profile, model=model or (encoder.name if encoder else None))
        encoder = encoder or encoders.load_encoder(settings.model)
        scores = score_pairs([(r["a"], r["b"]) for r in rows], encoder=encoder, settings=settings,
                             params=ScoringParams.shipped(profile))
        return pair_evaluation([int(r["label"]) for r in rows], [s.score for s in scores],
                               [s.relation != "different" for s in scores], [s.level for s in scores],
                               [r.get("category") for r in rows], [s.relation for s in scores],
                               time.perf_counter() - started,
                               [s.components.get("cosine", s.components.get("doc_cosine", 0.0)) for s in scores])
    raise InputError(f"{path}: lines need either `id`, `text` and `story` (documents in story clusters) or `a`, `b` "
                     f"and `label` (pairs); the first line has {sorted(fields)}")
