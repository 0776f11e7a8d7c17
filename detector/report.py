"""Text renderings of results for people (JSON renderings live on the dataclasses)."""

from __future__ import annotations

import textwrap

from .results import Cluster, IndexResult, Match, PairReport

FEATURE_LABELS = {
    "coverage_min": "sentence coverage, lower side",
    "coverage_max": "sentence coverage, higher side",
    "doc_cosine": "document embedding cosine",
    "jaccard": "MinHash Jaccard estimate",
    "term_cosine": "specific terms: names, places, numbers, dates",
    "containment": "word 3-grams of the shorter text in the other",
    "containment_longer": "word 3-grams of the longer text in the other",
    "lead_cosine": "closest pair of lead sentences (first three)",
    "days_apart": "days between the published dates",
}


def pair_text(report: PairReport, *, width: int = 100) -> str:
    lines = [
        f"{report.a_id}  vs  {report.b_id}",
        f"verdict: {report.verdict}, relation: {report.relation}   (probability same story {report.probability:.3f})",
        f"clusters: {report.a_cluster} / {report.b_cluster}",
        "found by: " + (", ".join(report.sources) or "not a candidate pair (no candidate source proposed it)"),
        *[f"lineage: {line}" for line in report.lineage],
        "",
        "scores:",
    ]
    lines += [f"  {FEATURE_LABELS.get(k, k):<48} {v:.3f}" for k, v in report.features.items()]
    lines += ["", f"shared specific terms: {', '.join(report.shared_terms[:30]) or '(none)'}", "",
              f"aligned sentences (cosine >= {report.align_threshold:.3f}; {report.a_id}: {report.a_sentences} "
              f"sentences, {report.b_id}: {report.b_sentences}; or sharing a quotation): {len(report.aligned)}"]
    for side, numbers in zip("AB", report.set_aside):
        if numbers:
            lines.append(f"  set aside as boilerplate (held word for word by many texts of the index), {side}: "
                         + ", ".join(f"{side}{n}" for n in numbers))
    for pair in report.aligned:
        lines.append(f"  [{pair.similarity:.3f}] A{pair.a_index}: " + _clip(pair.a_text, width))
        lines.append(f"  {'':7} B{pair.b_index}: " + _clip(pair.b_text, width))
        if pair.quote:
            lines.append(f"  {'':7} shared quote: \"{_clip(pair.quote, width)}\"")
    if report.near:
        lines.append(f"closest sentences below the threshold (mutual best matches, not counted): {len(report.near)}")
        for pair in report.near:
            lines.append(f"  [{pair.similarity:.3f}] A{pair.a_index}: " + _clip(pair.a_text, width))
            lines.append(f"  {'':7} B{pair.b_index}: " + _clip(pair.b_text, width))
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return textwrap.shorten(text, width=width, placeholder=" ...")


def clusters_table(clusters: list[Cluster]) -> str:
    rows = [("cluster", "size", "representative", "members")]
    rows += [(c.id, str(c.size), c.representative, ", ".join(c.members)) for c in clusters]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows)


def matches_table(matches: list[Match]) -> str:
    if not matches:
        return "no similar documents"
    rows = [("id", "probability", "relation", "cluster", "coverage", "found by")]
    rows += [(m.id, f"{m.probability:.3f}", m.relation, m.cluster or "-",
              f"{m.features['coverage_min']:.2f}/{m.features['coverage_max']:.2f}", ",".join(m.sources))
             for m in matches]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(f"{v:<{w}}" for v, w in zip(r, widths)).rstrip() for r in rows)


def index_summary(result: IndexResult) -> str:
    return (f"indexed {len(result.added)} new, {len(result.replaced)} replaced, {len(result.unchanged)} unchanged, "
            f"{len(result.metadata_updated)} with new metadata, "
            f"{len(result.exact_duplicates)} exact duplicates; {result.sentences_encoded} sentences encoded; "
            f"{result.candidate_pairs} candidate pairs, {result.confirmed_pairs} confirmed; "
            f"{result.seconds:.1f}s")
