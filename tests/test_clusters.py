"""The story graph: connected components, average linkage (no chaining), and cluster ids stable across updates."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detector.clusters import (assign_ids, attach_singletons, average_link, collapse_copies, components,
                               copy_units, expand_copies, format_cluster_id, regroup_from, story_groups,
                               without_attached)

THRESHOLD = 0.5
#: (n, scores): n nodes and a score in [0, 1] for some of their pairs (smaller key first).
GRAPHS = st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.just(n), st.dictionaries(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1]),
                                st.floats(0.0, 1.0), max_size=n * (n - 1) // 2)))


def test_components():
    assert components([1, 2, 3, 4, 5], [(1, 2), (4, 2), (5, 5)]) == [[1, 2, 4], [3], [5]]
    assert components([], []) == []


def test_average_link_single_member():
    assert average_link([7], {}, THRESHOLD) == [[7]]


def test_average_link_merges_while_mean_score_reaches_threshold():
    # 3 is confirmed with 1 and 2 at exactly the threshold: mean 0.5 is enough (the threshold is inclusive)
    assert average_link([1, 2, 3], {(1, 2): 0.9, (1, 3): 0.5, (2, 3): 0.5}, THRESHOLD) == [[1, 2, 3]]
    # 3 is weakly linked to 1 only: mean (0.3 + 0) / 2 is below the threshold
    assert average_link([1, 2, 3], {(1, 2): 0.9, (1, 3): 0.3}, THRESHOLD) == [[1, 2], [3]]


def test_chaining_is_refused():
    # A-B confirmed, B-C confirmed, A-C not similar at all: B resembles two different stories
    scores = {(1, 2): 0.9, (2, 3): 0.9, (1, 3): 0.0}
    assert components([1, 2, 3], [(1, 2), (2, 3)]) == [[1, 2, 3]]  # plain components would chain them
    groups = story_groups([1, 2, 3], scores, THRESHOLD)
    assert sorted(map(len, groups)) == [1, 2]
    assert [1, 2, 3] not in groups


def test_chaining_is_refused_when_the_pair_was_never_a_candidate():
    # A-C was never scored at all: a missing pair counts as 0
    assert len(story_groups([1, 2, 3], {(1, 2): 0.9, (2, 3): 0.8}, THRESHOLD)) == 2


def test_a_document_alone_joins_the_group_of_its_strongest_pair_when_that_pair_says_same_story():
    # 4 is an excerpt of 1: one strong pair, nothing with 2 and 3, so its mean with the story (0.8 / 3) is too low
    scores = {(1, 2): 0.9, (1, 3): 0.9, (2, 3): 0.9, (1, 4): 0.8}
    assert story_groups([1, 2, 3, 4], scores, THRESHOLD) == [[1, 2, 3], [4]]
    assert story_groups([1, 2, 3, 4], scores, THRESHOLD, attach=0.8) == [[1, 2, 3, 4]]
    assert story_groups([1, 2, 3, 4], scores, THRESHOLD, attach=0.85) == [[1, 2, 3], [4]]  # its pair falls short


def test_a_lone_document_joins_the_group_of_its_strongest_pair_and_the_smaller_key_on_a_tie():
    groups = [[1, 2], [3, 4], [5]]
    assert attach_singletons(groups, {(1, 5): 0.6, (3, 5): 0.7}, 0.5) == [[1, 2], [3, 4, 5]]
    assert attach_singletons(groups, {(1, 5): 0.7, (3, 5): 0.7}, 0.5) == [[1, 2, 5], [3, 4]]
    assert attach_singletons(groups, {(4, 5): 0.7, (3, 5): 0.7}, 0.5) == [[1, 2], [3, 4, 5]]


def test_a_roundup_that_is_the_strongest_pair_of_several_lone_briefs_takes_none_of_them():
    # 10 quotes the briefs 11-15 of five events (each brief contained in it); average linkage put 10 with 11 and 12
    scores = {(10, 11): 0.98, (10, 12): 0.97, (11, 12): 0.3, (10, 13): 0.96, (10, 14): 0.95, (10, 15): 0.94}
    groups = story_groups(list(range(10, 16)), scores, 0.35)
    assert groups == [[10, 11, 12], [13], [14], [15]]
    assert attach_singletons(groups, scores, 0.5) == groups
    # one lone brief through it: attached, as an excerpt of one report is
    assert attach_singletons([[10, 11, 12], [13]], {(10, 13): 0.96}, 0.5) == [[10, 11, 12, 13]]


def test_attaching_never_joins_two_stories_nor_two_lone_documents():
    # a strong pair between two stories is not enough for them (average linkage decides), nor between two documents
    # that were alone: only a lone document moves, into a group that was not lone
    assert story_groups([1, 2, 3, 4], {(1, 2): 0.9, (3, 4): 0.9, (2, 3): 0.9}, THRESHOLD, attach=0.5) == \
        [[1, 2], [3, 4]]
    assert attach_singletons([[1], [2]], {(1, 2): 0.9}, 0.5) == [[1], [2]]
    # 5 attaches through 4 to [3, 4]; 6, whose strongest pair is with 5, was lone beside it and stays so
    assert attach_singletons([[1, 2], [3, 4], [5], [6]], {(4, 5): 0.9, (5, 6): 0.95}, 0.5) == [[1, 2], [3, 4, 5], [6]]


def test_a_story_taken_whole_gives_back_the_documents_only_attaching_put_there():
    scores = {(1, 2): 0.9, (1, 3): 0.9, (2, 3): 0.9, (1, 4): 0.8}
    assert without_attached([[1, 2, 3, 4], [5, 6]], scores, THRESHOLD, 0.8) == [[1, 2, 3], [4], [5, 6]]
    # a weak member without a strong pair came by average linkage: it stays
    assert without_attached([[1, 2, 3, 4]], {**scores, (1, 4): 0.6}, THRESHOLD, 0.8) == [[1, 2, 3, 4]]
    assert without_attached([[1, 4]], {(1, 4): 0.8}, THRESHOLD, 0.8) == [[1, 4]]
    # the attached document met its own story since: starting alone, it joins it, and the two stories stay apart
    more = {**scores, (4, 5): 0.9}
    start = without_attached([[1, 2, 3, 4], [5]], more, THRESHOLD, 0.8)
    assert average_link([1, 2, 3, 4, 5], more, THRESHOLD, start=start) == [[1, 2, 3], [4, 5]]


def collapsed(step, groups, scores, *args, copies):
    """`step` (attach_singletons, without_attached) run as story_groups and regroup_from run it: on the groups with
    each set of copies one node (collapse_copies), expanded afterwards."""
    unit = copy_units(copies)
    members = sorted(m for g in groups for m in g)
    _, node_scores = collapse_copies(members, scores, unit)
    node_groups = [sorted({unit.get(m, m) for m in g}) for g in groups]
    return expand_copies(step(node_groups, node_scores, *args), members, unit)


def test_copies_of_one_text_attach_together_as_one_lone_document():
    # 4 was attached to the story {1, 2, 3} through its pair with 1; then 5 arrives, a copy of 4 (a credit line more)
    scores = {(1, 2): 0.9, (1, 3): 0.9, (2, 3): 0.9, (1, 4): 0.8, (4, 5): 0.99, (1, 5): 0.8}
    before = {pair: s for pair, s in scores.items() if 5 not in pair}
    assert story_groups([1, 2, 3, 4], before, THRESHOLD, attach=0.5) == [[1, 2, 3, 4]]
    assert story_groups([1, 2, 3, 4, 5], scores, THRESHOLD, attach=0.5) == [[1, 2, 3], [4, 5]]  # a story of its own
    assert story_groups([1, 2, 3, 4, 5], scores, THRESHOLD, attach=0.5, copies=[(4, 5)]) == [[1, 2, 3, 4, 5]]
    # two copies alone are no story to attach to: a lone document beside them stays alone, as beside one document
    assert collapsed(attach_singletons, [[1, 2], [3]], {(1, 2): 0.99, (2, 3): 0.8}, 0.5, copies=[(1, 2)]) == \
        [[1, 2], [3]]
    # a roundup that is the strongest pair of a lone document and of two copies of another brief takes neither
    assert collapsed(attach_singletons, [[10, 11, 12], [13], [14, 15]],
                     {(10, 13): 0.9, (10, 14): 0.9, (14, 15): 1.0}, 0.5, copies=[(14, 15)]) == \
        [[10, 11, 12], [13], [14, 15]]
    # a group of copies and of another document is a story like any other
    assert collapsed(attach_singletons, [[1, 2, 3], [4]], {(1, 2): 0.99, (1, 3): 0.7, (3, 4): 0.8}, 0.5,
                     copies=[(1, 2)]) == [[1, 2, 3, 4]]


def test_copies_of_a_roundup_take_no_lone_briefs_between_them():
    # 1 is a roundup, 2 its copy with a credit line, in a story with 3; 4 and 5 are briefs of two other stories, the
    # strongest pair of 4 with 1 and of 5 with 2: between them, the two copies are the strongest pair of two briefs
    groups, scores = [[1, 2, 3], [4], [5]], {(1, 2): 0.99, (1, 3): 0.9, (1, 4): 0.9, (2, 5): 0.9}
    assert attach_singletons(groups, scores, 0.5) == [[1, 2, 3, 4, 5]]  # not known to be copies
    assert collapsed(attach_singletons, groups, scores, 0.5, copies=[(1, 2)]) == groups


def test_average_linkage_counts_copies_of_one_text_once():
    # 2 sits just at the threshold with the story {0, 1}; an exact copy 3 of 0 arrives, paired with 0 and 1 only
    scores = {(0, 1): 0.9, (0, 2): 0.34, (1, 2): 0.49}
    assert story_groups([0, 1, 2], scores, 0.4) == [[0, 1, 2]]
    more = {**scores, (0, 3): 1.0, (1, 3): 0.9}
    assert story_groups([0, 1, 2, 3], more, 0.4) == [[0, 1, 3], [2]]  # the copy's missing pair with 2 counts 0
    assert story_groups([0, 1, 2, 3], more, 0.4, copies=[(0, 3)]) == [[0, 1, 2, 3]]
    assert regroup_from([[0, 1, 2]], [3], more, 0.4, 0.5, copies=[(0, 3)]) == [[0, 1, 2, 3]]


@settings(max_examples=300, deadline=None)
@given(GRAPHS, st.sampled_from([0.35, 0.4, 0.5]), st.data())
def test_a_copy_arriving_changes_no_other_documents_story(graph, threshold, data):
    n, scores = graph
    original = data.draw(st.integers(0, n - 1))
    # the copy (node n) scores as its original does with every other document, or was never paired with some
    kept = data.draw(st.lists(st.booleans(), min_size=len(scores), max_size=len(scores)))
    more = dict(scores)
    for ((a, b), s), keep in zip(scores.items(), kept):
        if keep and original in (a, b):
            more[(b if a == original else a, n)] = s
    more[(original, n)] = 1.0
    before = story_groups(list(range(n)), scores, threshold, attach=0.5)
    after = story_groups(list(range(n + 1)), more, threshold, attach=0.5, copies=[(original, n)])
    assert [[m for m in g if m != n] for g in after] == before
    assert any(original in g and n in g for g in after)


def test_copy_units_are_the_components_of_copy_pairs():
    assert copy_units([(3, 5), (5, 8), (1, 2)]) == {1: 1, 2: 1, 3: 3, 5: 3, 8: 3}
    assert copy_units([]) == {}


def test_a_story_taken_whole_gives_back_copies_attached_together():
    scores = {(1, 2): 0.9, (1, 3): 0.9, (2, 3): 0.9, (1, 4): 0.8, (4, 5): 0.99, (1, 5): 0.8}
    assert collapsed(without_attached, [[1, 2, 3, 4, 5]], scores, THRESHOLD, 0.5, copies=[(4, 5)]) == \
        [[1, 2, 3], [4, 5]]
    assert story_by_story([[1, 2, 3, 4, 5]], [], scores, THRESHOLD, 0.5, copies=[(4, 5)]) == [[1, 2, 3, 4, 5]]
    # not copies: the two are a story of their own that average linkage made, and stay in it
    assert without_attached([[1, 2, 3], [4, 5]], scores, THRESHOLD, 0.5) == [[1, 2, 3], [4, 5]]


def story_by_story(stories, added, scores, threshold, attach, copies=()):
    """Grouping as the story-by-story path does it: the stories taken whole (attached members alone), the added
    documents alone."""
    return regroup_from(stories, added, scores, threshold, attach, copies)


def test_a_member_that_average_linkage_took_in_is_not_taken_out():
    # 5 is weak with the story as a whole (mean 0.29) but joined it with 4 by average linkage, not by attaching
    scores = {(0, 1): 0.98, (0, 2): 0.45, (0, 4): 0.7, (1, 4): 0.76, (2, 3): 0.59, (3, 5): 0.71, (4, 5): 0.86}
    stories = story_groups(list(range(6)), scores, 0.35, attach=0.5)
    assert stories == [[0, 1, 4, 5], [2, 3]]
    assert without_attached(stories, scores, 0.35, 0.5) == stories
    more = {**scores, (0, 6): 0.36, (2, 6): 0.36}
    assert story_by_story(stories, [6], more, 0.35, 0.5) == story_groups(list(range(7)), more, 0.35, attach=0.5)


def test_attached_members_start_alone_even_where_the_whole_story_looks_weak():
    # 4 and 5 were attached to the core {1, 3}; then 6 comes, a close report of 5's own story
    scores = {(1, 3): 0.54, (1, 5): 0.51, (3, 4): 0.54}
    stories = story_groups([1, 3, 4, 5], scores, 0.4, attach=0.5)
    assert stories == [[1, 3, 4, 5]]
    assert without_attached(stories, scores, 0.4, 0.5) == [[1, 3], [4], [5]]
    more = {**scores, (5, 6): 0.9}
    assert story_by_story(stories, [6], more, 0.4, 0.5) == [[1, 3, 4], [5, 6]] == \
        story_groups([1, 3, 4, 5, 6], more, 0.4, attach=0.5)


@settings(max_examples=300, deadline=None)
@given(GRAPHS, st.sampled_from([0.35, 0.4, 0.5]))
def test_stories_taken_whole_with_nothing_added_stay_as_they_are(graph, threshold):
    n, scores = graph
    stories = story_groups(list(range(n)), scores, threshold, attach=0.5)
    assert story_by_story(stories, [], scores, threshold, 0.5) == stories


@settings(max_examples=300, deadline=None)
@given(GRAPHS, st.sampled_from([0.35, 0.4, 0.5]), st.data())
def test_stories_with_copies_taken_whole_with_nothing_added_stay_as_they_are(graph, threshold, data):
    n, scores = graph
    strong = sorted(pair for pair, s in scores.items() if s >= 0.5)  # copies are duplicates: pairs of one story
    copies = data.draw(st.lists(st.sampled_from(strong), unique=True) if strong else st.just([]))
    stories = story_groups(list(range(n)), scores, threshold, attach=0.5, copies=copies)
    assert sorted(m for g in stories for m in g) == list(range(n))
    assert story_by_story(stories, [], scores, threshold, 0.5, copies) == stories


@settings(max_examples=200, deadline=None)
@given(GRAPHS, st.sampled_from([0.3, 0.5]), st.sampled_from([0.5, 0.7]))
def test_attaching_only_moves_lone_documents_into_the_group_of_a_strong_pair(graph, threshold, attach):
    n, scores = graph
    plain = story_groups(list(range(n)), scores, threshold)
    joined = story_groups(list(range(n)), scores, threshold, attach=attach)
    assert sorted(m for g in joined for m in g) == list(range(n))
    group_of = {m: tuple(g) for g in joined for m in g}
    for g in plain:
        if len(g) > 1:
            assert set(g) <= set(group_of[g[0]])  # a group is never split ...
            assert [h for h in plain if len(h) > 1 and set(h) <= set(group_of[g[0]])] == [g]  # ... nor joined to one
        elif len(group_of[g[0]]) > 1:  # a lone document moved: through a pair that reaches `attach`
            assert any(scores.get(tuple(sorted((g[0], m))), 0.0) >= attach for m in group_of[g[0]] if m != g[0])


def scipy_average_link(members, scores, threshold):
    """The reference: scipy's average linkage over the dense distance matrix, cut at 1 - threshold."""
    import numpy as np
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    if len(members) == 1:
        return [members]
    position = {m: i for i, m in enumerate(members)}
    distance = np.ones((len(members), len(members)))
    np.fill_diagonal(distance, 0.0)
    for (x, y), value in scores.items():
        distance[position[x], position[y]] = distance[position[y], position[x]] = 1.0 - value
    labels = fcluster(linkage(squareform(distance, checks=False), method="average"), t=1.0 - threshold + 1e-12,
                      criterion="distance")
    groups = {}
    for member, label in zip(members, labels):
        groups.setdefault(label, []).append(member)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


@settings(max_examples=500, deadline=None)
@given(st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.just(n), st.dictionaries(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1]),
                                st.integers(1, 10**6).map(lambda k: k / 10**6), max_size=n * (n - 1) // 2)
    .filter(lambda scores: len(set(scores.values())) == len(scores)))),
       st.sampled_from([0.3123457, 0.3517193, 0.5037711, 0.6551029]))
def test_sparse_average_link_equals_scipys_dense_one(graph, threshold):
    # with scores on a fine grid and thresholds off it, no two merges tie and no mean equals the threshold, so the
    # result does not depend on how ties are broken (both are average linkage; they may break ties differently)
    n, scores = graph
    assert average_link(list(range(n)), scores, threshold) == scipy_average_link(list(range(n)), scores, threshold)


def test_story_groups_cover_every_node_once():
    scores = {(1, 2): 0.95, (3, 4): 0.8, (4, 5): 0.7, (3, 5): 0.75, (2, 6): 0.2}
    groups = story_groups([1, 2, 3, 4, 5, 6, 7], scores, THRESHOLD)
    assert groups == [[1, 2], [3, 4, 5], [6], [7]]


def test_format_cluster_id():
    assert format_cluster_id(1) == "s000001"
    assert format_cluster_id(123456) == "s123456"


# ---- stable ids ------------------------------------------------------------------------------------------------------


def test_first_assignment_numbers_groups_in_order():
    assignment = assign_ids([[1, 2], [3], [4, 5]], {}, 1)
    assert assignment.cluster_of == {1: "s000001", 2: "s000001", 3: "s000002", 4: "s000003", 5: "s000003"}
    assert (assignment.merges, assignment.next_number) == ([], 4)


def test_adding_documents_never_renames_existing_clusters():
    previous = {1: "s000001", 2: "s000001", 3: "s000002"}
    # 4 joins the first story, 5 is a new singleton
    assignment = assign_ids([[1, 2, 4], [3], [5]], previous, 3)
    assert assignment.cluster_of == {1: "s000001", 2: "s000001", 4: "s000001", 3: "s000002", 5: "s000003"}
    assert (assignment.merges, assignment.next_number) == ([], 4)


def test_new_singleton_gets_a_fresh_id_even_if_listed_first():
    assignment = assign_ids([[0], [1, 2]], {1: "s000004", 2: "s000004"}, 9)
    assert assignment.cluster_of == {0: "s000009", 1: "s000004", 2: "s000004"}
    assert assignment.next_number == 10


def test_merge_keeps_the_larger_share_and_reports_the_absorbed_id():
    previous = {1: "s000001", 2: "s000002", 3: "s000002"}
    assignment = assign_ids([[1, 2, 3, 4]], previous, 3)
    assert set(assignment.cluster_of.values()) == {"s000002"}
    assert assignment.merges == [("s000001", "s000002")]
    assert assignment.next_number == 3


def test_merge_of_equal_shares_keeps_the_oldest_id():
    previous = {1: "s000007", 2: "s000003"}
    assignment = assign_ids([[1, 2]], previous, 8)
    assert assignment.cluster_of == {1: "s000003", 2: "s000003"}
    assert assignment.merges == [("s000007", "s000003")]


def test_split_keeps_the_id_on_one_part_and_gives_the_other_a_new_one():
    previous = {1: "s000001", 2: "s000001", 3: "s000001"}
    assignment = assign_ids([[1, 2], [3]], previous, 2)
    assert assignment.cluster_of == {1: "s000001", 2: "s000001", 3: "s000002"}
    assert (assignment.merges, assignment.next_number) == ([], 3)


@st.composite
def partitions(draw):
    nodes = draw(st.lists(st.integers(0, 40), unique=True, min_size=1, max_size=20))
    labels = draw(st.lists(st.integers(0, 5), min_size=len(nodes), max_size=len(nodes)))
    groups: dict[int, list[int]] = {}
    for node, label in zip(nodes, labels):
        groups.setdefault(label, []).append(node)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


@settings(max_examples=200, deadline=None)
@given(partitions(), partitions())
def test_assign_ids_properties(before, after):
    first = assign_ids(before, {}, 1)
    # re-assigning the same groups changes nothing: no renames, no merges, no new numbers
    again = assign_ids(before, first.cluster_of, first.next_number)
    assert (again.cluster_of, again.merges, again.next_number) == (first.cluster_of, [], first.next_number)
    # any regrouping: one id per group, ids unique across groups, each old id either kept or reported as merged
    update = assign_ids(after, first.cluster_of, first.next_number)
    ids = [update.cluster_of[g[0]] for g in after]
    assert len(set(ids)) == len(after)
    assert all(update.cluster_of[m] == update.cluster_of[g[0]] for g in after for m in g)
    absorbed = [a for a, _ in update.merges]
    assert len(absorbed) == len(set(absorbed))
    assert not set(absorbed) & set(ids)
    assert all(surviving in ids for _, surviving in update.merges)
    still_present = {first.cluster_of[m] for g in after for m in g if m in first.cluster_of}
    assert still_present <= set(ids) | set(absorbed)
    new_ids = {i for i in ids if i not in set(first.cluster_of.values())}
    assert new_ids == {format_cluster_id(n) for n in range(first.next_number, update.next_number)}


def test_average_link_from_start_groups_merges_them_but_never_splits_one():
    weak_inside = {(1, 2): 0.1, (2, 3): 0.9, (1, 3): 0.2}
    assert average_link([1, 2, 3], weak_inside, THRESHOLD) == [[1], [2, 3]]  # from singletons: 2 goes with 3
    # [1, 2] taken whole: it joins 3 when the mean over its pairs with 3 reaches the threshold ((0.9 + 0.2) / 2) ...
    assert average_link([1, 2, 3], weak_inside, THRESHOLD, start=[[1, 2], [3]]) == [[1, 2, 3]]
    # ... and otherwise stays as it is, never giving 2 up to 3
    assert average_link([1, 2, 3], {**weak_inside, (1, 3): 0.0}, THRESHOLD, start=[[1, 2], [3]]) == [[1, 2], [3]]


@settings(max_examples=200, deadline=None)
@given(GRAPHS, st.sampled_from([0.3, 0.5, 0.7]))
def test_average_link_from_its_own_groups_changes_nothing(graph, threshold):
    # no two finished groups reach the threshold together (else they would have merged): starting again from them
    # gives them back, as a batch that adds nothing to some stories leaves them as they are
    n, scores = graph
    groups = average_link(list(range(n)), scores, threshold)
    assert average_link(list(range(n)), scores, threshold, start=groups) == groups
