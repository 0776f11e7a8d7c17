"""The story graph and its clusters: cohesion-checked grouping, and cluster ids that stay stable across updates.

Confirmed pairs (score at or above the threshold) connect documents. Inside each connected component, average-
linkage clustering merges two groups only while the mean score over *all* pairs between them (pairs never
proposed as candidates count as 0) stays at or above the threshold. One article that resembles two different
stories therefore cannot chain them together, as plain connected components would. A document that average
linkage leaves alone joins the group of its strongest pair when that pair alone says "same story" (a brief, or an
excerpt of one report), unless that pair's other document is the strongest pair of other lone documents too (a
roundup of several stories). Copies of one text (an exact copy, a syndicated version with a credit line) count as
one document there: a copy arriving does not take an attached document out of its story.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable

from .documents import parse_published

Pair = tuple[int, int]


def components(nodes: list[int], edges: list[Pair]) -> list[list[int]]:
    parent = {n: n for n in nodes}

    def find(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = defaultdict(list)
    for n in nodes:
        groups[find(n)].append(n)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def average_link(members: list[int], scores: dict[Pair, float], threshold: float,
                 start: list[list[int]] | None = None) -> list[list[int]]:
    """Average-linkage groups of `members` whose mean pairwise score is at least `threshold` (a pair without a
    score counts 0). `scores` may hold pairs of other nodes too; only those among `members` are read. `start`: groups
    that partition `members` to begin from (they may merge, never split); by default every member alone.

    Sparse UPGMA: two groups join when the sum of their pairs' scores over the number of their pairs (|A| x |B|) is
    the highest of all and at least `threshold`. Average linkage never merges at a lower similarity than before
    (it is monotone), so stopping there cuts the full dendrogram at `threshold`, as scipy's linkage and fcluster
    would, while holding only the scored pairs: memory and time follow the pairs, not the square of the members.
    """
    start = [[m] for m in members] if start is None else [g for g in start if g]
    if len(start) <= 1:
        return [sorted(g) for g in start]
    name = {m: g[0] for g in start for m in g}  # member -> the name of its group (its first member)
    size = {g[0]: len(g) for g in start}
    group = {g[0]: list(g) for g in start}
    links: dict[int, dict[int, float]] = {g[0]: {} for g in start}
    for (a, b), s in scores.items():
        ga, gb = name.get(a), name.get(b)
        if ga is not None and gb is not None and ga != gb and s > 0:
            links[ga][gb] = links[ga].get(gb, 0.0) + s
            links[gb][ga] = links[gb].get(ga, 0.0) + s
    heap = [(-total / (size[a] * size[b]), a, b) for a, others in links.items() for b, total in others.items() if a < b]
    heapq.heapify(heap)
    next_id = max(name) + 1
    while heap:
        negative, a, b = heapq.heappop(heap)
        if -negative < threshold - 1e-12:
            break
        if a not in size or b not in size:
            continue  # one side was merged since this entry was pushed
        merged, next_id = next_id, next_id + 1
        size[merged] = size.pop(a) + size.pop(b)
        group[merged] = group.pop(a) + group.pop(b)
        sums = links.pop(a)
        for other, total in links.pop(b).items():
            sums[other] = sums.get(other, 0.0) + total
        sums.pop(a, None)
        sums.pop(b, None)
        links[merged] = sums
        for other, total in sums.items():
            row = links[other]
            row.pop(a, None)
            row.pop(b, None)
            row[merged] = total
            heapq.heappush(heap, (-total / (size[merged] * size[other]), other, merged))
    return sorted((sorted(g) for g in group.values()), key=lambda g: g[0])


def copy_units(copies: Iterable[Pair]) -> dict[int, int]:
    """member -> the smallest member of its set of copies: the connected components of the `copies` pairs (texts
    that each hold most of the other's wording; see Store.copy_pairs). Only members of a copy pair are keys."""
    copies = list(copies)
    return {m: group[0] for group in components(sorted({m for pair in copies for m in pair}), copies) for m in group}


def collapse_copies(members: list[int], scores: dict[Pair, float], unit: dict[int, int]
                    ) -> tuple[list[int], dict[Pair, float]]:
    """`members` and `scores` with each set of copies (copy_units) one node, named by its smallest member: copies of
    one text are one text, so average linkage must not count each of them in a group's mean (a copy that no
    candidate source paired with a document would count 0 there, and one that was would count its pair twice).
    A node's score with another is the mean of its members' scored pairs with it: a pair no candidate source
    proposed is no evidence against copies, and the highest would let the closest of two near-copies speak for
    both (on ECB+, two near-copies of one fight report joined their topic's two events that way)."""
    if not unit:
        return members, scores
    nodes = sorted({unit.get(m, m) for m in members})
    sums: dict[Pair, list[float]] = {}
    for (a, b), s in scores.items():
        ra, rb = unit.get(a, a), unit.get(b, b)
        if ra != rb:
            total = sums.setdefault((ra, rb) if ra < rb else (rb, ra), [0.0, 0])
            total[0] += s
            total[1] += 1
    return nodes, {pair: total / count for pair, (total, count) in sums.items()}


def expand_copies(groups: list[list[int]], members: list[int], unit: dict[int, int]) -> list[list[int]]:
    """Groups of nodes from collapse_copies back as groups of `members`, sorted."""
    if not unit:
        return groups
    of_node: dict[int, list[int]] = {}
    for m in members:
        of_node.setdefault(unit.get(m, m), []).append(m)
    return sorted((sorted(m for node in g for m in of_node.get(node, ())) for g in groups), key=lambda g: g[0])


def attach_singletons(groups: list[list[int]], scores: dict[Pair, float], attach: float) -> list[list[int]]:
    """`groups` with every group of one document joined to the group of its strongest pair into a group of two
    members or more (ties: the smaller key), when that pair scores at least `attach`. Average linkage can
    leave a document alone although one of its pairs says "same story": a brief or a one-paragraph excerpt matches
    one report closely and the rest of its story weakly, and the mean over the whole story stays under the grouping
    threshold. A pair that says the same story then decides, as it does in the pair's report. Only groups that were
    single before attaching move, and only into groups that were not, so no chain forms through a lone document and
    the result does not depend on the order of the groups. A document that is the strongest pair of two or more
    lone documents takes none of them: they would end in one story although average linkage kept them apart, which
    is what a roundup or digest quoting several one-report stories looks like (each brief it quotes is contained in
    it), not one story told again. Copies of one text are one document here where the caller collapsed them first
    (collapse_copies, as story_groups and regroup_from do)."""
    size = {m: len(g) for g in groups for m in g}
    best: dict[int, tuple[float, int]] = {}  # lone member -> (-score, partner) of its strongest pair to a real group
    for (a, b), s in scores.items():
        if s < attach:
            continue
        for lone, other in ((a, b), (b, a)):
            if size.get(lone) == 1 and size.get(other, 0) > 1:
                option = (-s, other)
                if lone not in best or option < best[lone]:
                    best[lone] = option
    takers = Counter(partner for _, partner in best.values())
    best = {lone: option for lone, option in best.items() if takers[option[1]] == 1}
    if not best:
        return groups
    index = {m: n for n, g in enumerate(groups) for m in g}
    joined = [list(g) for g in groups]
    for lone, (_, partner) in best.items():
        joined[index[partner]].append(lone)
        joined[index[lone]] = []
    return sorted((sorted(g) for g in joined if g), key=lambda g: g[0])


def without_attached(groups: list[list[int]], scores: dict[Pair, float], threshold: float,
                     attach: float) -> list[list[int]]:
    """`groups` (stories) with the members that attach_singletons put there taken out, each alone: grouping that
    starts from stories taken whole then starts them alone again, so that a document attached while it was alone
    can join reports of its own story that came since (or be attached again). They are found by grouping each
    story's members again by average linkage over its own pairs, which gives back a story that average linkage
    made: the members it leaves alone beside a core of two or more, with a pair of at least `attach` in the story,
    are the attached ones. The rest stays whole (the union of the cores, with any member alone that has no such
    pair), so no story is split otherwise. One pass over `scores` sorts them into stories."""
    group_of = {m: n for n, g in enumerate(groups) if len(g) >= 3 for m in g}
    own: dict[int, dict[Pair, float]] = {}
    for (a, b), s in scores.items():
        n = group_of.get(a)
        if n is not None and n == group_of.get(b):
            own.setdefault(n, {})[(a, b)] = s
    found: list[list[int]] = []
    for n, g in enumerate(groups):
        pairs = own.get(n)
        if len(g) < 3 or not pairs:
            found.append(g)
            continue
        again = average_link(sorted(g), pairs, threshold)
        alone = {h[0] for h in again if len(h) == 1}
        if len(alone) == len(again):  # no core: not a story average linkage made here; kept as it is
            found.append(g)
            continue
        strong = {m for (a, b), s in pairs.items() if s >= attach for m in (a, b)}
        loose = alone & strong
        found.append([m for m in g if m not in loose])
        found.extend([m] for m in g if m in loose)
    return found


def story_groups(nodes: list[int], scores: dict[Pair, float], threshold: float,
                 attach: float | None = None, copies: Iterable[Pair] = ()) -> list[list[int]]:
    """Every node in exactly one group; `scores` maps (smaller key, larger key) to the pair's probability. Average-
    linkage groups inside each connected component of the pairs at or above `threshold`, then, with `attach`, lone
    documents (or copies of one text, `copies`) joined to the group of their strongest pair if it reaches `attach`
    (attach_singletons). A pair at or above either value is an edge (as in Store.linked): average linkage gives the
    same groups in components joined by pairs under `threshold`, and a lone document's strongest pair then lies in
    its component (so does a copy pair, a duplicate: Scorer.link)."""
    unit = copy_units(copies)
    members, (nodes, scores) = nodes, collapse_copies(nodes, scores, unit)
    edges = [pair for pair, s in scores.items() if s >= (threshold if attach is None else min(threshold, attach))]
    component_of: dict[int, int] = {}
    found = components(nodes, edges)
    for index, component in enumerate(found):
        for node in component:
            component_of[node] = index
    inside: list[dict[Pair, float]] = [{} for _ in found]  # each component's own pairs, read once
    for (a, b), s in scores.items():
        ca = component_of.get(a)
        if ca is not None and ca == component_of.get(b):
            inside[ca][(a, b)] = s
    groups: list[list[int]] = []
    for component, own in zip(found, inside):
        grouped = average_link(component, own, threshold)
        groups.extend(grouped if attach is None else attach_singletons(grouped, own, attach))
    return expand_copies(sorted(groups, key=lambda g: g[0]), members, unit)


def regroup_from(stories: list[list[int]], added: list[int], scores: dict[Pair, float], threshold: float,
                 attach: float, copies: Iterable[Pair] = ()) -> list[list[int]]:
    """Grouping that starts from `stories` taken whole (their attached lone groups alone again: without_attached)
    and the `added` documents alone, copies of one text one node as in story_groups: stories may merge with each
    other and with the added documents, never split otherwise. A set of copies split between stories (grouped
    before copies were one node) starts in the first of them."""
    unit = copy_units(copies)
    members = sorted({m for g in stories for m in g} | set(added))
    nodes, collapsed = collapse_copies(members, scores, unit)
    start: list[list[int]] = []
    placed: set[int] = set()
    for group in [*stories, *([k] for k in added)]:
        own = sorted({unit.get(m, m) for m in group} - placed)
        placed.update(own)
        if own:
            start.append(own)
    start = without_attached(start, collapsed, threshold, attach)
    groups = attach_singletons(average_link(nodes, collapsed, threshold, start=start), collapsed, attach)
    return expand_copies(groups, members, unit)


@dataclass(frozen=True)
class Assignment:
    cluster_of: dict[int, str]
    #: (absorbed id, surviving id) for clusters merged by this update.
    merges: list[tuple[str, str]]
    next_number: int


def format_cluster_id(number: int) -> str:
    return f"s{number:06d}"


def cluster_number(cluster_id: str) -> int:
    """The creation number of an id from format_cluster_id: smaller is older."""
    return int(cluster_id.lstrip("s") or 0)


def assign_ids(groups: list[list[int]], previous: dict[int, str], next_number: int) -> Assignment:
    """Give each group a cluster id, keeping existing ids stable.

    A group keeps the id most of its previously clustered members had; when it holds members of several old
    clusters (a merge) the largest share wins, ties going to the oldest id, and the others are recorded as merged
    into it. An old id is given to one group at most; groups of new documents get new ids.
    """
    options = []
    for index, group in enumerate(groups):
        for old, count in Counter(previous[m] for m in group if m in previous).items():
            options.append((-count, cluster_number(old), old, index))
    options.sort()
    chosen: dict[int, str] = {}
    used: set[str] = set()
    for _, _, old, index in options:
        if index not in chosen and old not in used:
            chosen[index] = old
            used.add(old)
    cluster_of: dict[int, str] = {}
    merges: list[tuple[str, str]] = []
    for index, group in enumerate(groups):
        if index not in chosen:
            chosen[index] = format_cluster_id(next_number)
            next_number += 1
        for m in group:
            cluster_of[m] = chosen[index]
        for old in sorted({previous[m] for m in group if m in previous} - used):
            merges.append((old, chosen[index]))
            used.add(old)
    return Assignment(cluster_of, merges, next_number)


def check_canonical(canonical: str) -> None:
    if canonical not in ("earliest", "longest"):
        raise ValueError(f"canonical={canonical!r} must be 'earliest' or 'longest'")


def representative(group: list, prefer: str = "earliest") -> object:
    """Earliest `published`, else first indexed; or, with prefer="longest", the longest text (then the earliest)."""
    if prefer == "longest":
        return min(group, key=lambda d: (-d.length, d.seq))
    dated = [d for d in group if d.published]
    if dated:
        return min(dated, key=lambda d: (parse_published(d.published, d.id), d.seq))
    return min(group, key=lambda d: d.seq)
