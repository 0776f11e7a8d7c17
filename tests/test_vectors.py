"""The document-vector index: exact search while small, a graph (HNSW) past a size, removals, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

import detector.vectors as vectors
from detector.vectors import VectorIndex


def unit_rows(n: int, dimension: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dimension)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def graph_from_300(monkeypatch):
    monkeypatch.setattr(vectors, "HNSW_FROM", 300)


def filled(n: int) -> tuple[VectorIndex, np.ndarray]:
    x = unit_rows(n)
    index = VectorIndex(x.shape[1])
    for start in range(0, n, 100):
        index.add(np.arange(start, min(start + 100, n)) + 1000, x[start:start + 100])
    return index, x


def test_exact_below_the_threshold_and_a_graph_from_it(graph_from_300):
    small, _ = filled(299)
    assert small.kind == "flat"
    index, x = filled(600)
    assert index.kind == "hnsw" and len(index) == 600
    _, ids = index.search(x[:20], 1)
    assert ids[:, 0].tolist() == list(range(1000, 1020))  # each vector finds itself
    exact = x @ x[:20].T
    _, found = index.search(x[:20], 10)
    truth = [set((np.argsort(-exact[:, q])[:10] + 1000).tolist()) for q in range(20)]
    assert np.mean([len(truth[q] & set(found[q].tolist())) / 10 for q in range(20)]) >= 0.9


def test_removed_vectors_never_come_back_and_are_dropped_on_rebuild(graph_from_300):
    index, x = filled(600)
    index.remove([1000, 1001, 99999])  # an unknown id is ignored
    assert len(index) == 598 and 1000 not in index.ids()
    _, ids = index.search(x[:2], 5)
    assert 1000 not in ids and 1001 not in ids and (ids >= 0).all()
    index.remove(list(range(1002, 1100)))  # past a tenth of the graph: rebuilt without them
    assert index.kind == "hnsw" and len(index) == 500 and index._removed == set()
    index.remove(list(range(1100, 1400)))  # below the threshold again: exact
    assert index.kind == "flat" and len(index) == 200
    assert sorted(index.ids()) == list(range(1400, 1600))


def test_checkpoint_bytes_round_trip_with_removals(graph_from_300):
    index, x = filled(600)
    index.remove([1005])
    again = VectorIndex.from_bytes(index.to_bytes(), 16)
    assert again.kind == "hnsw" and len(again) == 599 and 1005 not in again.ids()
    assert again.search(x[:5], 3)[1].tolist() == index.search(x[:5], 3)[1].tolist()


def test_flat_checkpoints_keep_their_old_bytes():
    index, x = filled(50)
    data = index.to_bytes()
    assert not data.startswith(b"detector-hnsw")  # what older versions wrote, and can still read
    assert VectorIndex.from_bytes(data, 16).search(x[:3], 1)[1][:, 0].tolist() == [1000, 1001, 1002]


def test_many_removals_still_fill_every_result(graph_from_300, monkeypatch):
    monkeypatch.setattr(vectors, "HNSW_REBUILD_SHARE", 0.9)  # keep the removed ones in the graph
    index, x = filled(600)
    index.remove(list(range(1000, 1200)))  # the first 200, including the nearest of the queries below
    _, ids = index.search(x[:5], 10)
    assert (ids >= 1200).all()  # ten live results each, none removed


def test_an_id_added_again_replaces_its_old_vector_in_a_graph(graph_from_300):
    index, x = filled(600)
    index.remove([1000])
    index.add(np.array([1000]), x[1:2])  # back, with another vector
    assert len(index) == 600 and sorted(index.ids()).count(1000) == 1
    _, ids = index.search(x[:1], 1)
    assert ids[0, 0] != 1000  # the old vector is gone: the nearest to it is no longer id 1000


def test_a_graph_goes_back_to_exact_search_only_well_below_the_threshold(graph_from_300, monkeypatch):
    monkeypatch.setattr(vectors, "HNSW_REBUILD_SHARE", 0.01)  # every removal rebuilds
    index, _ = filled(320)
    index.remove(list(range(1000, 1040)))  # 280 left: below 300, above 0.8 x 300
    assert index.kind == "hnsw" and len(index) == 280
    index.remove(list(range(1040, 1100)))  # 220 left
    assert index.kind == "flat" and len(index) == 220


def test_rows_short_of_live_results_are_searched_again(graph_from_300, monkeypatch):
    monkeypatch.setattr(vectors, "HNSW_REBUILD_SHARE", 0.9)
    index, x = filled(600)
    near = np.argsort(-(x @ x[0]))[:40] + 1000  # the 40 nearest to x[0], itself included
    index.remove(near.tolist())
    _, ids = index.search(x[:1], 10)  # the first request (2k + 10 = 30) holds only removed ones
    assert (ids >= 0).all() and not set(ids[0].tolist()) & set(near.tolist())


def test_a_floored_batch_search_of_a_flat_index_finds_what_faiss_finds_at_or_above_the_floor():
    index, x = filled(250)
    index.remove([1003, 1100])  # a flat index drops removed vectors from its arrays: the product must follow
    queries = unit_rows(70, seed=1)  # more rows than one product (FLAT_PRODUCT_ROWS), more than ONE_THREAD_BELOW
    for k, floor in ((5, -1.0), (21, 0.3), (3, 0.5)):
        sims, ids = index.search(queries, k)
        floored_sims, floored_ids = index.search(queries, k, at_least=floor)
        for row in range(len(queries)):
            wanted = [(float(s), int(i)) for s, i in zip(sims[row], ids[row]) if s >= floor]
            found = [(float(s), int(i)) for s, i in zip(floored_sims[row], floored_ids[row]) if i >= 0]
            assert [i for _, i in found] == [i for _, i in wanted]  # the same neighbours, best first
            assert np.allclose([s for s, _ in found], [s for s, _ in wanted], atol=1e-5)  # up to float rounding
            assert (floored_ids[row][len(found):] == -1).all() and 1003 not in floored_ids[row]


def test_a_floored_search_among_crowded_vectors_is_faiss_search_above_the_floor(monkeypatch):
    rng = np.random.default_rng(2)
    lean = rng.standard_normal(16)
    x = lean + 0.3 * rng.standard_normal((300, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    index = VectorIndex(16)
    index.add(np.arange(300) + 1000, x)
    queries = x[:150]
    sims, ids = index.search(queries, 10)
    for crowded in (8, 0):  # 0: any score above the floor counts as crowded, so FAISS answers from the first product
        monkeypatch.setattr(vectors, "CROWDED_PER_ROW", crowded)
        floored_sims, floored_ids = index.search(queries, 10, at_least=0.9)
        for row in range(len(queries)):
            wanted = [int(i) for s, i in zip(sims[row], ids[row]) if s >= 0.9]
            found = [int(i) for i in floored_ids[row] if i >= 0]
            assert sorted(found) == sorted(wanted)
            assert (floored_sims[row][len(found):] == -np.inf).all()


def test_a_floored_search_breaks_ties_by_id_and_keeps_k():
    x = unit_rows(1)
    index = VectorIndex(x.shape[1])
    index.add(np.array([7, 3, 9, 5]), np.repeat(x, 4, axis=0))  # four copies of one vector
    sims, ids = index.search(np.repeat(x, 30, axis=0), 2, at_least=0.9)
    assert ids.tolist() == [[3, 5]] * 30 and np.allclose(sims, 1.0)
