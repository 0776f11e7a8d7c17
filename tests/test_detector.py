"""The Detector end to end with the fake encoder: indexing, incremental updates, exact duplicates, clusters, queries,
reports and representatives."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from conftest import (BRIDGE, CHESS, FLOOD_OTHER_EVENT, FLOOD_OTHER_REWRITE, FLOOD_REWRITE, FLOOD_WIRE, TEST_PARAMS,
                      FakeEncoder, doc)

from detector import DetectorError, UnknownDocumentError
from detector.compare import TextView
from detector.sentences import split_sentences
from detector.store import FORMAT_VERSION


def cluster_sets(detector) -> set[frozenset[str]]:
    return {frozenset(c.members) for c in detector.clusters()}


@pytest.fixture
def floods(detector_factory):
    """An index of two flood stories (two versions each) and an unrelated chess report."""
    detector = detector_factory()
    detector.index([doc("wire", FLOOD_WIRE), doc("rewrite", FLOOD_REWRITE), doc("italy", FLOOD_OTHER_EVENT),
                    doc("italy-rewrite", FLOOD_OTHER_REWRITE), doc("chess", CHESS)])
    return detector


# ---- indexing and clusters -------------------------------------------------------------------------------------------


def test_index_result_counts(detector_factory, fake_encoder):
    detector = detector_factory()
    result = detector.index([doc("wire", FLOOD_WIRE), doc("rewrite", FLOOD_REWRITE), doc("chess", CHESS)])
    assert result.added == ["wire", "rewrite", "chess"]
    assert (result.replaced, result.unchanged, result.exact_duplicates) == ([], [], [])
    expected_sentences = sum(len(split_sentences(t)) for t in (FLOOD_WIRE, FLOOD_REWRITE, CHESS))
    assert result.sentences_encoded == fake_encoder.sentences_encoded == expected_sentences
    assert (result.candidate_pairs, result.confirmed_pairs) == (1, 1)
    assert result.processed == 3 and result.confirmation_rate == 1.0


def test_clusters_group_rewrites_and_keep_other_events_apart(floods):
    clusters = floods.clusters()
    assert [(c.id, c.members) for c in clusters] == [
        ("s000001", ["wire", "rewrite"]), ("s000002", ["italy", "italy-rewrite"]), ("s000003", ["chess"])]
    assert floods.cluster_of() == {"wire": "s000001", "rewrite": "s000001", "italy": "s000002",
                                   "italy-rewrite": "s000002", "chess": "s000003"}


def test_bridge_article_does_not_chain_two_stories(floods):
    floods.index([doc("bridge", BRIDGE)])
    # the bridge is confirmed with both stories ...
    assert floods.report("bridge", "wire").same_story
    assert floods.report("bridge", "italy").same_story
    # ... but the two stories are not, so they stay apart; the bridge joins the one it resembles more
    assert cluster_sets(floods) == {frozenset({"wire", "rewrite", "bridge"}), frozenset({"italy", "italy-rewrite"}),
                                    frozenset({"chess"})}


def test_batches_of_one_give_the_same_clusters(detector_factory, tmp_path):
    documents = [doc("wire", FLOOD_WIRE), doc("italy", FLOOD_OTHER_EVENT), doc("rewrite", FLOOD_REWRITE),
                 doc("chess", CHESS), doc("italy-rewrite", FLOOD_OTHER_REWRITE), doc("bridge", BRIDGE)]
    whole = detector_factory(tmp_path / "whole")
    whole.index(documents)
    one_by_one = detector_factory(tmp_path / "one-by-one", encoder=FakeEncoder())
    one_by_one.index(documents, batch_size=1)
    assert cluster_sets(one_by_one) == cluster_sets(whole)
    assert one_by_one.store.generation == len(documents)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_regrouping_only_around_added_documents_equals_regrouping_everything(detector_factory, monkeypatch,
                                                                            batch_size):
    # no rescoring due (as in a large index between rescorings): batches that only add regroup around their own
    monkeypatch.setattr("detector.stories.RESCORE_EVERY_BATCH_BELOW", 0)
    monkeypatch.setattr("detector.stories.RESCORE_GROWTH", 1e9)
    detector = detector_factory()
    regrouped_around = []
    original = type(detector)._recluster_around

    def recorded(self, added, loosened=()):
        regrouped_around.append(list(added))
        return original(self, added, loosened)

    monkeypatch.setattr(type(detector), "_recluster_around", recorded)
    documents = [doc("rewrite", FLOOD_REWRITE), doc("chess", CHESS), doc("italy", FLOOD_OTHER_EVENT),
                 doc("bridge", BRIDGE), doc("wire", FLOOD_WIRE), doc("italy-rewrite", FLOOD_OTHER_REWRITE)]
    detector.index(documents, batch_size=batch_size)
    assert len(regrouped_around) == len(documents) // batch_size - 1  # the first batch rescored (nothing stored)
    incremental = (detector.store.cluster_map(), detector.store.merges())
    with detector.store.writing():
        detector._recluster()  # everything, from the same stored pairs
        assert (detector.store.cluster_map(), detector.store.merges()) == incremental
    assert len({c for c in incremental[0].values()}) < len(documents)  # some stories did form


def test_a_component_too_large_to_regroup_whole_takes_in_documents_story_by_story(detector_factory, monkeypatch):
    monkeypatch.setattr("detector.stories.RESCORE_EVERY_BATCH_BELOW", 0)
    monkeypatch.setattr("detector.stories.RESCORE_GROWTH", 1e9)
    monkeypatch.setattr("detector.stories.REGROUP_LIMIT", 1)  # every component counts as too large
    detector = detector_factory()
    merged_into = []
    original = type(detector)._merge_into_stories

    def recorded(self, added, loosened=()):
        merged_into.append(list(added))
        return original(self, added, loosened)

    monkeypatch.setattr(type(detector), "_merge_into_stories", recorded)
    documents = [doc("rewrite", FLOOD_REWRITE), doc("chess", CHESS), doc("italy", FLOOD_OTHER_EVENT),
                 doc("bridge", BRIDGE), doc("wire", FLOOD_WIRE), doc("italy-rewrite", FLOOD_OTHER_REWRITE)]
    detector.index(documents, batch_size=1)
    assert merged_into  # documents that link to a story took the story-by-story path
    assert cluster_sets(detector) == {frozenset({"wire", "rewrite", "bridge"}), frozenset({"italy", "italy-rewrite"}),
                                      frozenset({"chess"})}
    incremental = cluster_sets(detector)
    with detector.store.writing():
        detector._recluster()  # everything, from the same stored pairs: here the same stories
        assert cluster_sets(detector) == incremental


@pytest.mark.parametrize("incremental", [False, True])
def test_story_threshold_groups_documents_whose_pair_alone_is_not_same_story(detector_factory, tmp_path,
                                                                             monkeypatch, incremental):
    if incremental:  # no rescoring due: the second batch regroups around its document only
        monkeypatch.setattr("detector.stories.RESCORE_EVERY_BATCH_BELOW", 0)
        monkeypatch.setattr("detector.stories.RESCORE_GROWTH", 1e9)
    fixed = replace(TEST_PARAMS, weights={**TEST_PARAMS.weights, "term_cosine": 0.0})
    scratch = detector_factory(tmp_path / "scratch", params=fixed)
    scratch.index([doc("rewrite", FLOOD_REWRITE), doc("wire", FLOOD_WIRE)])
    p = scratch.report("wire", "rewrite").probability
    # the pair is ruled different (below the pair threshold), but grouping asks less of it
    pair_only = replace(fixed, same_story_threshold=min(0.99, p + 0.05))
    grouping = replace(pair_only, story_threshold=p - 0.05)
    for name, params, together in (("pair-only", pair_only, False), ("grouping", grouping, True)):
        detector = detector_factory(tmp_path / name, params=params)
        detector.index([doc("rewrite", FLOOD_REWRITE)])
        detector.index([doc("wire", FLOOD_WIRE), doc("chess", CHESS)])
        assert detector.report("wire", "rewrite").relation == "different"
        clusters = detector.cluster_of()
        assert (clusters["wire"] == clusters["rewrite"]) is together
        assert clusters["chess"] not in (clusters["wire"], clusters["rewrite"])
        with detector.store.writing():
            before = detector.store.cluster_map()
            detector._recluster()  # everything, from the same stored pairs
            assert detector.store.cluster_map() == before


@pytest.mark.parametrize("path", ["everything", "around", "story-by-story"])
def test_a_document_left_alone_joins_the_story_its_pair_says_it_belongs_to(detector_factory, tmp_path, monkeypatch,
                                                                           path):
    if path != "everything":  # no rescoring due: the second batch regroups around its documents only
        monkeypatch.setattr("detector.stories.RESCORE_EVERY_BATCH_BELOW", 0)
        monkeypatch.setattr("detector.stories.RESCORE_GROWTH", 1e9)
    if path == "story-by-story":
        monkeypatch.setattr("detector.stories.REGROUP_LIMIT", 1)
    fixed = replace(TEST_PARAMS, weights={**TEST_PARAMS.weights, "term_cosine": 0.0})
    scratch = detector_factory(tmp_path / "scratch", params=fixed)
    scratch.index([doc("wire", FLOOD_WIRE), doc("rewrite", FLOOD_REWRITE)])
    p = scratch.report("wire", "rewrite").probability
    # the pair says "same story", but grouping asks more of the mean over a story than of one pair: the rewrite
    # scores p with both versions of the wire, under the grouping threshold, and average linkage leaves it alone
    params = replace(fixed, same_story_threshold=p - 0.05, story_threshold=p + 0.01)
    edited = FLOOD_WIRE.replace("on Wednesday", "on Thursday")  # not a copy: duplicate_containment is off here
    # beside a story of two versions it attaches; two copies of one text are one text, as alone as one document
    for name, second, story in (("edited", edited, {"wire", "edited", "rewrite"}), ("copy", FLOOD_WIRE, None)):
        detector = detector_factory(tmp_path / path / name, params=params)
        detector.index([doc("wire", FLOOD_WIRE), doc(name, second)])
        detector.index([doc("rewrite", FLOOD_REWRITE), doc("chess", CHESS)])
        assert detector.report("rewrite", "wire").same_story
        expected = {frozenset(story), frozenset({"chess"})} if story else {
            frozenset({"wire", name}), frozenset({"rewrite"}), frozenset({"chess"})}
        assert cluster_sets(detector) == expected
        if story:
            assert detector.decisions(["rewrite"], policy="same_story")[0].matched_id in ("wire", name)
        with detector.store.writing():
            before = detector.store.cluster_map()
            detector._recluster()  # everything, from the same stored pairs
            assert detector.store.cluster_map() == before


def test_pairs_scored_on_two_processes_equal_pairs_scored_on_one(detector_factory, tmp_path, monkeypatch):
    documents = [doc("wire", FLOOD_WIRE), doc("italy", FLOOD_OTHER_EVENT), doc("rewrite", FLOOD_REWRITE),
                 doc("chess", CHESS), doc("italy-rewrite", FLOOD_OTHER_REWRITE), doc("bridge", BRIDGE)]
    stored = {}
    for processes in (1, 2):
        monkeypatch.setenv("DETECTOR_PROCESSES", str(processes))
        monkeypatch.setattr("detector.parallel.MIN_ITEMS_PER_PROCESS", 1)  # fork for the smallest batch
        monkeypatch.setattr("detector.detector.MIN_TEXTS_PER_PROCESS", 1)
        monkeypatch.setattr("detector.stories.RESCORE_CHUNK", 2)
        detector = detector_factory(tmp_path / f"on-{processes}", encoder=FakeEncoder())
        detector.index(documents[:3])
        detector.index(documents[3:])
        stored[processes] = (sorted(detector.store.all_pairs(), key=lambda p: (p.a_key, p.b_key)),
                             [detector.store.view_row(d.key) for d in detector.store.summaries()])
        clusters = cluster_sets(detector)
    assert len(stored[1][0]) > 3 and stored[1] == stored[2]  # the same pairs, sentences, vectors, signatures, terms
    assert len(clusters) < len(documents)


def _die_in_a_worker(item: int) -> int:
    import os
    if item == 9 and os.getpid() != _PARENT[0]:
        os._exit(1)  # as if killed for memory
    return item


_PARENT: list[int] = []


def test_fork_map_reports_a_dead_worker_instead_of_waiting(monkeypatch):
    import os
    from concurrent.futures.process import BrokenProcessPool
    from detector.parallel import fork_map
    _PARENT[:] = [os.getpid()]
    monkeypatch.setattr("detector.parallel.MIN_ITEMS_PER_PROCESS", 1)
    monkeypatch.setenv("DETECTOR_PROCESSES", "2")
    with pytest.raises(BrokenProcessPool):
        fork_map(_die_in_a_worker, list(range(10)))  # item 9 falls to the worker


def _read_ahead_documents() -> list:
    return [doc("wire", FLOOD_WIRE), doc("italy", FLOOD_OTHER_EVENT), doc("copy", FLOOD_WIRE),
            doc("rewrite", FLOOD_REWRITE), doc("chess", CHESS), doc("wire", FLOOD_WIRE + " A correction followed."),
            doc("bridge", BRIDGE), doc("italy-rewrite", FLOOD_OTHER_REWRITE), doc("copy-2", FLOOD_REWRITE)]


def test_reading_ahead_builds_the_same_index(detector_factory, tmp_path, monkeypatch):
    # the next batch's texts prepared in a worker while this one is indexed: the same index as preparing each here,
    # with exact copies, a replaced text and unchanged documents in the batches
    from detector.parallel import Worker
    monkeypatch.setenv("DETECTOR_PROCESSES", "2")
    monkeypatch.setattr(Worker, "MIN_TEXTS", 1)  # hand over the smallest batch
    monkeypatch.setattr("detector.parallel.WORKER_TEXTS", 3)  # forked anew on the way
    handed: list[object] = []
    submit = Worker.submit
    monkeypatch.setattr(Worker, "submit",
                        lambda self, f, a, count: handed.append(submit(self, f, a, count=count)) or handed[-1])
    built = {}
    for ahead in (False, True):
        detector = detector_factory(tmp_path / f"ahead-{ahead}", encoder=FakeEncoder())
        detector.index(_read_ahead_documents(), batch_size=2, read_ahead=ahead)
        # in batches prepared ahead: an unchanged document before a new one, new metadata for an unchanged text,
        # two copies of one new text
        detector.index([doc("italy", FLOOD_OTHER_EVENT), doc("chess", CHESS), doc("bridge", BRIDGE),
                        doc("late", FLOOD_OTHER_REWRITE + " It was reported late."),
                        doc("rewrite", FLOOD_REWRITE, source="wire"), doc("copy-3", FLOOD_REWRITE),
                        doc("twin-a", CHESS + " Both players agreed."), doc("twin-b", CHESS + " Both players agreed.")],
                       batch_size=2, read_ahead=ahead)
        # a batch read ahead while "wire" still held its correction: its new text is handed over, the correction
        # (unchanged then, changed back by the batch before by the time it is indexed) is prepared here
        detector.index([doc("wire", FLOOD_WIRE), doc("a2", BRIDGE + " Traffic resumed at noon."),
                        doc("b2", CHESS + " The match was drawn."),
                        doc("wire", FLOOD_WIRE + " A correction followed.")],
                       batch_size=2, read_ahead=ahead)
        keys = [d.key for d in detector.store.summaries()]
        built[ahead] = (sorted(detector.store.all_pairs(), key=lambda p: (p.a_key, p.b_key)),
                        [detector.store.view_row(k) for k in keys], detector.store.cluster_map(),
                        [detector.store.decision(k) for k in keys])
    assert handed and all(future is not None for future in handed)  # the worker did prepare batches
    pairs = built[False][0]
    assert len(pairs) > 3 and any(p.relation == "duplicate" for p in pairs)
    assert built[True][:3] == built[False][:3]
    assert [(d.matched_key, d.relation, d.score) for d in built[True][3]] == [
        (d.matched_key, d.relation, d.score) for d in built[False][3]]


def _failing_input():
    yield from _read_ahead_documents()[:4]
    raise ValueError("line 5: not JSON")


def test_an_input_error_met_reading_ahead_is_raised_once_the_batch_before_is_committed(detector_factory, monkeypatch):
    from detector.parallel import Worker
    monkeypatch.setenv("DETECTOR_PROCESSES", "2")
    monkeypatch.setattr(Worker, "MIN_TEXTS", 1)
    detector = detector_factory()
    committed: list[list[str]] = []
    with pytest.raises(ValueError, match="line 5"):
        detector.index(_failing_input(), batch_size=2, read_ahead=True,
                       committed=lambda batch: committed.append([d.id for d in batch]))
    assert committed == [["wire", "italy"], ["copy", "rewrite"]]
    assert detector.store.count_documents() == 4


from detector.detector import _prepare_text as _PREPARE_TEXT  # noqa: E402 - beside its uses


def _prepare_failing_on_chess(settings, encoder, items):
    if CHESS in [text for text, _ in items]:
        raise MemoryError("no memory left in the worker")
    return [_PREPARE_TEXT(settings, (text, True)) for text, _ in items], 0


def _pairs_of(detector) -> list:
    return sorted(detector.store.all_pairs(), key=lambda p: (p.a_key, p.b_key))


def _indexed_without_reading_ahead(detector_factory, tmp_path, monkeypatch):
    """With two processes and the smallest batches handed to the worker: the index _read_ahead_documents() make
    without reading ahead, for an index built with a failing worker to be compared with."""
    from detector.parallel import Worker
    monkeypatch.setenv("DETECTOR_PROCESSES", "2")
    monkeypatch.setattr(Worker, "MIN_TEXTS", 1)
    expected = detector_factory(tmp_path / "alone", encoder=FakeEncoder())
    expected.index(_read_ahead_documents(), batch_size=2, read_ahead=False)
    return expected


def test_texts_the_worker_fails_on_are_prepared_here(detector_factory, tmp_path, monkeypatch, caplog):
    expected = _indexed_without_reading_ahead(detector_factory, tmp_path, monkeypatch)
    monkeypatch.setattr("detector.detector._prepare_texts", _prepare_failing_on_chess)
    detector = detector_factory(tmp_path / "failed", encoder=FakeEncoder())
    detector.index(_read_ahead_documents(), batch_size=2)  # a list: read ahead by default
    assert "MemoryError: no memory left in the worker" in caplog.text
    assert detector.store.count_documents() == expected.store.count_documents() == 8
    assert _pairs_of(detector) == _pairs_of(expected)


def _failing_on_chess(settings, item):
    if item[0] == CHESS:
        raise RuntimeError("could not prepare the chess report")
    return _PREPARE_TEXT(settings, item)


def test_a_text_that_cannot_be_prepared_fails_its_batch_and_keeps_those_before(detector_factory, monkeypatch):
    # in the worker and then here: the error is this process's, as without reading ahead
    from detector.parallel import Worker
    monkeypatch.setenv("DETECTOR_PROCESSES", "2")
    monkeypatch.setattr(Worker, "MIN_TEXTS", 1)
    monkeypatch.setattr("detector.detector._prepare_text", _failing_on_chess)
    detector = detector_factory()
    with pytest.raises(RuntimeError, match="chess report"):
        detector.index(_read_ahead_documents(), batch_size=2)
    assert detector.store.count_documents() == 4  # the batches before the chess report's (wire, italy; copy, rewrite)
    monkeypatch.undo()
    detector.index(_read_ahead_documents(), batch_size=2)  # the index is whole: the rest goes in
    assert detector.store.count_documents() == 8


def test_a_worker_that_cannot_start_leaves_the_work_here_and_no_process_behind(detector_factory, tmp_path,
                                                                                monkeypatch, caplog):
    import multiprocessing
    import concurrent.futures.process as executors
    expected = _indexed_without_reading_ahead(detector_factory, tmp_path, monkeypatch)

    def no_thread(self):
        raise RuntimeError("can't start new thread")  # as threading says at its limit, or with no memory left

    monkeypatch.setattr(executors._ExecutorManagerThread, "start", no_thread)
    detector = detector_factory(tmp_path / "no-thread", encoder=FakeEncoder())
    detector.index(_read_ahead_documents(), batch_size=2)
    assert "can't start new thread" in caplog.text
    assert _pairs_of(detector) == _pairs_of(expected)
    assert not multiprocessing.active_children()


def _kill_in_the_worker(settings, encoder, items):
    import os
    import signal
    os.kill(os.getpid(), signal.SIGKILL)  # as if killed for memory


def test_a_worker_killed_leaves_the_texts_to_be_prepared_here(detector_factory, tmp_path, monkeypatch):
    expected = _indexed_without_reading_ahead(detector_factory, tmp_path, monkeypatch)
    monkeypatch.setattr("detector.detector._prepare_texts", _kill_in_the_worker)
    detector = detector_factory(tmp_path / "killed", encoder=ForkSafeEncoder())
    detector.index(_read_ahead_documents(), batch_size=2)
    assert _pairs_of(detector) == _pairs_of(expected)


class ForkSafeEncoder(FakeEncoder):
    """The fake encoder, declared safe to run in a forked worker (as the static model is)."""

    fork_safe = True


def test_a_fork_safe_encoder_encodes_in_the_worker_and_never_an_exact_duplicate(detector_factory, tmp_path,
                                                                                 monkeypatch):
    from detector.parallel import Worker
    monkeypatch.setenv("DETECTOR_PROCESSES", "2")
    monkeypatch.setattr(Worker, "MIN_TEXTS", 1)  # hand over the smallest batch
    documents = _read_ahead_documents()
    encoder = ForkSafeEncoder()
    detector = detector_factory(tmp_path / "ahead", encoder=encoder)
    first = detector.index(documents[:4], batch_size=2)
    # the batches after the first are encoded by the worker: this process's encoder sees only the first
    assert [len(call) for call in encoder.calls] == [sum(len(split_sentences(d.text)) for d in documents[:2])]
    calls = len(encoder.calls)
    more = [*documents[4:], doc("again", FLOOD_WIRE), doc("twice", CHESS + " "), doc("thrice", CHESS)]
    second = detector.index(more, batch_size=2)
    assert len(encoder.calls) == calls + 1  # the first batch of this run
    plain = detector_factory(tmp_path / "plain", encoder=FakeEncoder())
    plain_first = plain.index(documents[:4], batch_size=2, read_ahead=False)
    plain_second = plain.index(more, batch_size=2, read_ahead=False)
    # the same sentences encoded (exact copies of indexed texts, or of texts earlier in the run, are not), the same
    # vectors, pairs and stories
    assert (first.sentences_encoded, second.sentences_encoded) == (plain_first.sentences_encoded,
                                                                   plain_second.sentences_encoded)
    assert [detector.store.view_row(d.key) for d in detector.store.summaries()] == \
        [plain.store.view_row(d.key) for d in plain.store.summaries()]
    assert _pairs_of(detector) == _pairs_of(plain)
    assert cluster_sets(detector) == cluster_sets(plain)


def _stream_checked(committed: list[list[str]]):
    documents = _read_ahead_documents()
    yield from documents[:2]
    # asked for the next document: the batch before must be committed by now, or the stream was read ahead
    assert committed == [["wire", "italy"]], "a stream was read ahead"
    yield from documents[2:4]


def test_an_iterator_is_not_read_ahead_unless_asked(detector_factory, monkeypatch):
    from detector.parallel import Worker
    monkeypatch.setenv("DETECTOR_PROCESSES", "2")
    monkeypatch.setattr(Worker, "MIN_TEXTS", 1)
    committed: list[list[str]] = []
    detector = detector_factory()
    detector.index(_stream_checked(committed), batch_size=2, committed=lambda b: committed.append([d.id for d in b]))
    assert committed == [["wire", "italy"], ["copy", "rewrite"]]
    committed.clear()
    with pytest.raises(AssertionError, match="read ahead"):  # asked for: read ahead
        detector_factory(detector.store.path.parent / "other").index(
            _stream_checked(committed), batch_size=2, read_ahead=True,
            committed=lambda b: committed.append([d.id for d in b]))


def test_unchanged_documents_are_not_handed_to_the_worker(detector_factory, monkeypatch):
    from detector.parallel import Worker
    monkeypatch.setenv("DETECTOR_PROCESSES", "2")
    monkeypatch.setattr(Worker, "MIN_TEXTS", 1)
    detector = detector_factory()
    detector.index(_read_ahead_documents(), batch_size=2)
    counts: list[int] = []
    submit = Worker.submit
    monkeypatch.setattr(Worker, "submit",
                        lambda self, f, a, count: counts.append(count) or submit(self, f, a, count=count))
    # batch 1 changes "wire" back to its first text; batch 3 (read ahead once batch 1 is in) brings the correction
    # again: the one text to hand over; the other batches hold nothing to prepare, and nothing is waited for
    detector.index(_read_ahead_documents(), batch_size=2)
    assert counts == [0, 1, 0, 0]  # batches 2-5
    assert detector.store.document("wire").text == _read_ahead_documents()[5].text


def test_the_worker_stays_out_where_one_process_is_wanted_or_none_can_fork(monkeypatch):
    import multiprocessing
    from types import SimpleNamespace
    from detector.parallel import Worker
    monkeypatch.setenv("DETECTOR_PROCESSES", "1")
    with Worker() as worker:
        assert worker.submit(abs, -1, count=100) is None
    monkeypatch.setenv("DETECTOR_PROCESSES", "2")
    monkeypatch.setattr("detector.parallel.WORKER_TEXTS", 200)
    with Worker() as worker:  # forked anew after 200 texts; the results of every task still come back
        assert worker.submit(abs, -1, count=Worker.MIN_TEXTS - 1) is None  # too few to hand over
        futures = [worker.submit(abs, -n, count=100) for n in range(5)]
        assert [f.result() for f in futures] == [0, 1, 2, 3, 4]
    monkeypatch.setattr(multiprocessing, "current_process", lambda: SimpleNamespace(daemon=True))
    with Worker() as worker:
        assert worker.submit(abs, -1, count=100) is None


_CHILDREN = """
import multiprocessing, os, sys, threading, time
os.environ["DETECTOR_PROCESSES"] = "2"
from detector import parallel
from detector.parallel import Worker, fork_map

def show_children():
    time.sleep(0.5)
    deadline = time.monotonic() + 30  # a loaded machine can take longer to start them
    while not multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    print(" ".join(str(child.pid) for child in multiprocessing.active_children()), flush=True)

def slow(item):
    time.sleep(0.01)
    return item

threading.Thread(target=show_children, daemon=True).start()
if sys.argv[1] == "worker":  # idle, waiting for its next task, as between two batches
    worker = Worker()
    worker.submit(abs, -1, count=Worker.MIN_TEXTS).result()
    time.sleep(60)
else:  # fork_map, as scoring pairs does: this process works on its share meanwhile
    parallel.MIN_ITEMS_PER_PROCESS = 1
    fork_map(slow, list(range(6000)))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pids: list[int], seconds: float) -> bool:
    """Whether every process of `pids` has ended (or is a zombie) within `seconds`."""
    import time
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(_alive(pid) for pid in pids)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("kind", ["worker", "fork_map"])
def test_forked_children_end_with_their_parent_even_when_the_parent_is_killed(kind):
    # an orphan would hold the index's database files and the pipes of a shell pipeline (whose reader would then
    # wait forever), and with an flock that forks share, the index's write lock
    import os
    import signal
    import subprocess
    import sys
    parent = subprocess.Popen([sys.executable, "-c", _CHILDREN, kind], stdout=subprocess.PIPE, text=True)
    try:
        children = [int(pid) for pid in parent.stdout.readline().split()]
        assert children and all(_alive(pid) for pid in children)
        os.kill(parent.pid, signal.SIGKILL)  # no clean-up runs: as the kernel's out-of-memory killer does
        parent.wait()
        assert _gone_within(children, 10)
    finally:
        parent.kill()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("kind", ["worker", "fork_map"])
def test_ctrl_c_is_left_to_the_parent(kind):
    # Ctrl-C in a terminal reaches the whole process group: a child must not die with a traceback of its own
    import os
    import signal
    import subprocess
    import sys
    parent = subprocess.Popen([sys.executable, "-c", _CHILDREN, kind], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        children = [int(pid) for pid in parent.stdout.readline().split()]
        assert children
        os.killpg(parent.pid, signal.SIGINT)
        _, err = parent.communicate(timeout=30)
        assert "KeyboardInterrupt" in err  # the parent's
        assert "Process ForkProcess" not in err, err  # no child's
        assert _gone_within(children, 10)
    finally:
        parent.kill()


def test_fork_map_stays_in_a_daemonic_process(monkeypatch):
    import multiprocessing
    import os
    from types import SimpleNamespace
    from detector.parallel import fork_map
    monkeypatch.setattr("detector.parallel.MIN_ITEMS_PER_PROCESS", 1)
    monkeypatch.setenv("DETECTOR_PROCESSES", "2")
    monkeypatch.setattr(multiprocessing, "current_process", lambda: SimpleNamespace(daemon=True))
    assert set(fork_map(lambda _: os.getpid(), list(range(10)))) == {os.getpid()}


def test_fork_map_keeps_order_and_refuses_a_bad_process_count(monkeypatch):
    from detector.parallel import fork_map
    monkeypatch.setattr("detector.parallel.MIN_ITEMS_PER_PROCESS", 1)
    monkeypatch.setenv("DETECTOR_PROCESSES", "3")
    assert fork_map(lambda x: x * x, list(range(10))) == [x * x for x in range(10)]
    monkeypatch.setenv("DETECTOR_PROCESSES", "two")
    with pytest.raises(DetectorError, match="DETECTOR_PROCESSES='two' must be a whole number"):
        fork_map(abs, [1, 2])


def test_the_lsh_proposes_only_pairs_whose_jaccard_estimate_reaches_its_threshold(detector_factory, monkeypatch):
    # banding lets through pairs well below the threshold (with 128 permutations at 0.2, a quarter of pairs at 0.1):
    # an LSH that proposes every indexed document must give the same candidates
    from detector.minhash import LSHIndex
    monkeypatch.setattr(LSHIndex, "hits_many",
                        lambda self, values: [np.array(sorted(self._live), dtype=np.int64)] * len(values))
    detector = detector_factory()
    detector.index([doc("wire", FLOOD_WIRE), doc("italy", FLOOD_OTHER_EVENT), doc("chess", CHESS),
                    doc("rewrite", FLOOD_REWRITE), doc("bridge", BRIDGE)])
    by_lsh = [p for p in detector.store.all_pairs() if "minhash" in p.sources]
    assert by_lsh and all(p.features["jaccard"] >= detector.settings.lsh_threshold for p in by_lsh)
    threshold = detector.settings.lsh_threshold
    matches = detector.query(FLOOD_REWRITE)
    assert all(m.features["jaccard"] >= threshold for m in matches if "minhash" in m.sources)


def test_a_reopened_index_checks_the_lsh_proposals_of_documents_indexed_before(detector_factory):
    # a new Detector holds no MinHash hash values yet: those of the proposed documents are read from the index
    first = detector_factory()
    first.index([doc("wire", FLOOD_WIRE), doc("chess", CHESS), doc("bridge", BRIDGE)])
    first.close()
    second = detector_factory()
    second.index([doc("rewrite", FLOOD_REWRITE)])
    sources = {frozenset((second._id_of(p.a_key), second._id_of(p.b_key))): p.sources for p in second.store.all_pairs()}
    assert "minhash" in sources[frozenset(("wire", "rewrite"))]
    second.close()
    third = detector_factory()
    assert "minhash" in {m.id: m for m in third.query(FLOOD_REWRITE)}["wire"].sources


def test_adding_documents_keeps_cluster_ids(floods):
    before = floods.cluster_of()
    floods.index([doc("bridge", BRIDGE), doc("new", "Lionel Messi signed a contract with Inter Miami in July.")])
    after = floods.cluster_of()
    assert {k: after[k] for k in before} == before
    assert after["bridge"] == before["wire"]
    assert after["new"] == "s000004"
    assert floods.store.merges() == []


def test_merge_keeps_the_oldest_id_and_is_recorded(detector_factory, tmp_path):
    # without the term feature (weighted by rarity in the index) the scores do not depend on what else is indexed
    fixed = replace(TEST_PARAMS, weights={**TEST_PARAMS.weights, "term_cosine": 0.0})
    # scores of the three pairs, measured on a scratch index
    scratch = detector_factory(tmp_path / "scratch", params=fixed)
    scratch.index([doc("rewrite", FLOOD_REWRITE), doc("bridge", BRIDGE), doc("wire", FLOOD_WIRE)])
    p_rb, p_wb, p_wr = (scratch.report(a, b).probability for a, b in
                        [("rewrite", "bridge"), ("wire", "bridge"), ("wire", "rewrite")])
    assert p_wr > p_wb > p_rb + 0.04
    # a threshold that keeps rewrite and bridge apart, while wire, close to both, brings them together:
    # p_rb < threshold <= mean(p_wb, p_rb)
    params = replace(fixed, same_story_threshold=p_rb + (p_wb - p_rb) / 4)
    detector = detector_factory(tmp_path / "merging", params=params)
    detector.index([doc("rewrite", FLOOD_REWRITE), doc("bridge", BRIDGE)])
    assert detector.cluster_of() == {"rewrite": "s000001", "bridge": "s000002"}
    detector.index([doc("wire", FLOOD_WIRE)])
    assert detector.cluster_of() == {"rewrite": "s000001", "bridge": "s000001", "wire": "s000001"}
    assert [(absorbed, into) for absorbed, into, _ in detector.store.merges()] == [("s000002", "s000001")]
    assert detector.info()["merges"] == 1


def test_a_sentence_repeated_in_a_batch_is_encoded_once(detector_factory, fake_encoder):
    detector = detector_factory()
    wire_sentences = split_sentences(FLOOD_WIRE)
    trimmed = " ".join(wire_sentences[:-1]) + " A new closing line about the weather service."
    result = detector.index([doc("wire", FLOOD_WIRE), doc("trimmed", trimmed), doc("chess", CHESS)])
    distinct = set(wire_sentences) | set(split_sentences(trimmed)) | set(split_sentences(CHESS))
    assert result.sentences_encoded == fake_encoder.sentences_encoded == len(distinct)
    # each document still has a vector for every one of its sentences, the shared ones equal
    wire, copy = (detector._view(detector.store.document(i).key) for i in ("wire", "trimmed"))
    assert len(copy.vectors) == len(copy.sentences) == len(wire_sentences)
    assert np.array_equal(wire.vectors[:-1], copy.vectors[:-1])
    assert not np.array_equal(wire.vectors[-1], copy.vectors[-1])


# ---- incremental indexing --------------------------------------------------------------------------------------------


def test_unchanged_documents_are_skipped(floods, fake_encoder):
    encoded_before = fake_encoder.sentences_encoded
    generation = floods.store.generation
    result = floods.index([doc("wire", FLOOD_WIRE), doc("chess", CHESS.replace("  ", " ").upper())])
    # CHESS upper-cased has the same normalised text: unchanged as well
    assert (result.added, result.replaced, result.unchanged) == ([], [], ["wire", "chess"])
    assert (result.sentences_encoded, result.candidate_pairs) == (0, 0)
    assert fake_encoder.sentences_encoded == encoded_before
    assert floods.store.generation == generation  # nothing changed: nothing rewritten
    assert floods.info()["documents"] == 5


def test_new_document_is_added(floods):
    result = floods.index([doc("wire", FLOOD_WIRE), doc("rewrite-2", FLOOD_REWRITE.replace("62", "64"))])
    assert (result.added, result.unchanged) == (["rewrite-2"], ["wire"])
    assert result.sentences_encoded == len(split_sentences(FLOOD_REWRITE))
    assert floods.cluster_of()["rewrite-2"] == floods.cluster_of()["wire"]


def test_changed_text_replaces_the_old_one_everywhere(floods):
    info_before = floods.info()
    old_key = floods.store.document("rewrite").key
    # the "rewrite" id now holds a chess report instead of the flood story
    new_text = CHESS.replace("December 31", "December 30")
    result = floods.index([doc("rewrite", new_text)])
    assert (result.added, result.replaced) == ([], ["rewrite"])
    assert result.sentences_encoded == len(split_sentences(new_text))

    stored = floods.store.document("rewrite")
    assert stored.text == new_text and stored.key != old_key
    assert floods.store.view_row(stored.key)[0] == split_sentences(new_text)
    assert floods.store.documents_by_key([old_key]) == {}
    assert old_key not in floods.snapshot.keys
    assert all(old_key not in (p.a_key, p.b_key) for p in floods.store.all_pairs())
    # pairs recomputed: no longer the flood story, now the chess story
    assert not floods.report("rewrite", "wire").same_story
    assert floods.report("rewrite", "chess").same_story
    assert floods.cluster_of()["rewrite"] == floods.cluster_of()["chess"]
    assert floods.cluster_of()["wire"] == "s000001"

    info = floods.info()
    assert info["documents"] == info_before["documents"] == 5
    assert info["sentences"] == (info_before["sentences"] - len(split_sentences(FLOOD_REWRITE))
                                 + len(split_sentences(new_text)))
    assert (info["candidate_pairs"], info["confirmed_pairs"]) == (2, 2)
    # the replaced document keeps its place in indexing order
    assert [d.id for d in floods.store.summaries()] == ["wire", "rewrite", "italy", "italy-rewrite", "chess"]
    # and a query for the old text no longer finds it as the same story
    verdicts = {m.id: m.verdict for m in floods.query(FLOOD_REWRITE)}
    assert (verdicts["wire"], verdicts["rewrite"]) == ("same story", "different")


def test_repeated_id_within_one_call_last_text_wins(detector_factory):
    detector = detector_factory()
    result = detector.index([doc("a", FLOOD_WIRE), doc("a", CHESS)])
    assert result.added == ["a"]
    assert detector.store.document("a").text == CHESS


def test_failed_index_call_leaves_the_detector_usable(detector_factory):
    class FlakyEncoder(FakeEncoder):
        down = False

        def encode(self, sentences):
            if self.down:
                raise RuntimeError("encoder down")
            return super().encode(sentences)

    encoder = FlakyEncoder()
    detector = detector_factory(encoder=encoder)
    detector.index([doc("wire", FLOOD_WIRE), doc("chess", CHESS)])
    encoder.down = True
    with pytest.raises(RuntimeError, match="encoder down"):
        detector.index([doc("wire", FLOOD_OTHER_EVENT)])  # a replacement that fails half way
    encoder.down = False
    # the write was rolled back: the old text is still indexed, and found by the same Detector object
    assert detector.store.document("wire").text == FLOOD_WIRE
    assert [m.id for m in detector.query(FLOOD_WIRE, top=1)] == ["wire"]
    assert detector.report("wire", "chess").verdict == "different"


# ---- exact duplicates ------------------------------------------------------------------------------------------------


def test_exact_duplicate_of_an_indexed_document_is_not_encoded(floods, fake_encoder):
    encoded_before = fake_encoder.sentences_encoded
    # the same article re-published with curly quotes, upper case and different line breaks
    copy = FLOOD_WIRE.upper().replace('"', "“", 1).replace("\n", "\n\n")
    result = floods.index([doc("copy", copy)])
    assert result.exact_duplicates == [("copy", "wire")]
    assert result.sentences_encoded == 0 and fake_encoder.sentences_encoded == encoded_before
    report = floods.report("copy", "wire")
    assert "exact" in report.sources
    assert report.verdict == "same story" and report.probability > 0.99
    assert floods.cluster_of()["copy"] == floods.cluster_of()["wire"]


def test_exact_duplicates_within_one_batch_are_encoded_once(detector_factory, fake_encoder):
    detector = detector_factory()
    result = detector.index([doc("a", FLOOD_WIRE), doc("b", FLOOD_WIRE + "\n"), doc("c", CHESS)])
    assert result.exact_duplicates == [("b", "a")]
    assert result.sentences_encoded == len(split_sentences(FLOOD_WIRE)) + len(split_sentences(CHESS))
    assert detector.report("a", "b").sources == ["embedding", "exact", "minhash", "rare_terms", "sentences"]
    assert cluster_sets(detector) == {frozenset({"a", "b"}), frozenset({"c"})}


# ---- queries and reports ---------------------------------------------------------------------------------------------


def test_query_finds_the_story_without_changing_the_index(floods):
    generation, documents = floods.store.generation, floods.info()["documents"]
    matches = floods.query(FLOOD_REWRITE.replace("Mazon", "Carlos Mazón"), top=2)
    assert [m.id for m in matches] == ["rewrite", "wire"]
    assert all(m.verdict == "same story" and m.cluster == "s000001" for m in matches)
    assert matches[0].probability >= matches[1].probability
    assert "minhash" in matches[0].sources and "embedding" in matches[0].sources
    assert (floods.store.generation, floods.info()["documents"]) == (generation, documents)


def test_query_top_limits_and_unrelated_text_is_different(floods):
    matches = floods.query("Magnus Carlsen won the World Blitz Chess Championship in New York.", top=1)
    assert [(m.id, m.verdict) for m in matches] == [("chess", "same story")]
    far = floods.query("Quarterly earnings at the bakery rose on strong croissant sales.")
    assert all(m.verdict == "different" for m in far)


def test_query_compares_its_top_nearest_and_further_neighbours_only_above_the_floor(floods, monkeypatch):
    compared: list[int] = []
    view = floods._view
    monkeypatch.setattr(floods, "_view", lambda key: compared.append(key) or view(key))
    floor = floods.settings.neighbor_min_cosine

    def check(text: str, top: int) -> list[tuple[int, float, bool]]:
        """(rank by document vector, cosine, proposed by MinHash) of each document the query compared"""
        compared.clear()
        floods.query(text, top=top)
        query = TextView.of_text(text, floods.encoder, floods.settings)
        sims, ids = floods.snapshot.documents.search(query.vector[None, :], len(floods.snapshot.keys))
        rank = {int(k): (r, float(sim)) for r, (sim, k) in enumerate(zip(sims[0], ids[0]))}
        minhash = set(floods.snapshot.lsh.query(query.signature))
        return [(*rank[key], key in minhash) for key in compared]

    bakery = check("Quarterly earnings at the bakery rose on strong croissant sales.", top=1)
    assert bakery and all(rank < 1 or sim >= floor or lsh for rank, sim, lsh in bakery)
    assert len(bakery) < len(floods.snapshot.keys)  # the far ones were not compared
    flood = check(FLOOD_REWRITE, top=1)
    assert sum(sim >= floor for _, sim, _ in flood) >= 2  # the rewrite and the wire, though top is 1


def test_query_on_an_empty_index(detector_factory):
    assert detector_factory().query(FLOOD_WIRE) == []


def test_report_of_a_rewrite(floods):
    report = floods.report("wire", "rewrite")
    assert (report.a_id, report.b_id, report.verdict) == ("wire", "rewrite", "same story")
    assert (report.a_cluster, report.b_cluster) == ("s000001", "s000001")
    assert (report.a_sentences, report.b_sentences) == (5, 5)
    assert sorted(report.sources) == ["embedding", "minhash", "rare_terms"]
    assert sorted(report.shared_terms) == ["29", "62", "AEMET", "Carlos", "Mazón", "October 29", "Paiporta",
                                           "Valencia"]
    assert report.aligned == sorted(report.aligned, key=lambda p: (p.quote is None, -p.similarity))
    assert [(p.a_index, p.b_index) for p in report.aligned if not p.quote] == [(3, 3), (4, 4), (0, 0), (1, 1)]
    quoted = [p for p in report.aligned if p.quote]
    assert [p.quote for p in quoted] == ["we are living through an unprecedented situation"]
    assert "Mazón told reporters" in quoted[0].a_text and "Mazon said" in quoted[0].b_text
    assert report.to_dict()["aligned"][0]["quote"] == "we are living through an unprecedented situation"


def test_report_is_symmetric(floods):
    forward, backward = floods.report("wire", "italy"), floods.report("italy", "wire")
    assert forward.probability == pytest.approx(backward.probability)
    assert forward.verdict == backward.verdict == "different"


def test_report_of_a_pair_never_proposed(floods):
    report = floods.report("wire", "chess")
    assert (report.sources, report.verdict) == ([], "different")
    assert report.aligned == []


def test_report_unknown_id(floods):
    with pytest.raises(UnknownDocumentError) as caught:
        floods.report("wire", "nope")
    assert str(caught.value) == f"no document 'nope' in {floods.store.path}: see `detector clusters` for ids"


def test_stored_sentence_vectors_are_the_encoder_output(floods, fake_encoder):
    key = floods.store.document("chess").key
    vectors = floods._view(key).vectors
    floods._views.clear()
    stored = floods._view(key).vectors  # read back from the index
    # kept as float16: equal to the encoder's output to that precision, and the same in memory as on disk
    np.testing.assert_allclose(stored, FakeEncoder().encode(split_sentences(CHESS)), atol=2e-3)
    np.testing.assert_array_equal(stored, vectors)


# ---- representatives -------------------------------------------------------------------------------------------------


def test_representative_is_first_indexed_without_dates(floods):
    assert [c.representative for c in floods.clusters()] == ["wire", "italy", "chess"]


def test_representative_is_earliest_published(detector_factory):
    detector = detector_factory()
    detector.index([
        doc("wire", FLOOD_WIRE, published="2024-10-30T09:00:00Z"),
        doc("rewrite", FLOOD_REWRITE, published="2024-10-30T12:00:00+05:00"),  # 07:00 UTC: the earliest
        doc("copy", FLOOD_WIRE + " Updated.", published="2024-10-30"),  # midnight, but see below
    ])
    [cluster] = detector.clusters()
    assert cluster.members == ["wire", "rewrite", "copy"]
    assert cluster.representative == "copy"  # 2024-10-30 00:00 is earlier still
    detector.index([doc("copy", FLOOD_WIRE + " Updated again.", published="2024-10-31")])  # replaced
    assert detector.clusters()[0].representative == "rewrite"


def test_dated_document_beats_undated_first_indexed(detector_factory):
    detector = detector_factory()
    detector.index([doc("wire", FLOOD_WIRE), doc("rewrite", FLOOD_REWRITE, published="2024-10-30")])
    assert detector.clusters()[0].representative == "rewrite"


def test_info(floods):
    info = floods.info()
    assert {k: info[k] for k in ("format_version", "model", "dimension", "documents", "clusters",
                                 "multi_document_clusters", "merges")} == {
        "format_version": FORMAT_VERSION, "model": "fake-hash-encoder", "dimension": 64, "documents": 5, "clusters": 3,
        "multi_document_clusters": 2, "merges": 0}
    assert info["multi_document_clusters"] == sum(c.size > 1 for c in floods.clusters())  # counted apart
    assert info["sentences"] == sum(len(split_sentences(t)) for t in (FLOOD_WIRE, FLOOD_REWRITE, FLOOD_OTHER_EVENT,
                                                                      FLOOD_OTHER_REWRITE, CHESS))
    assert info["confirmed_pairs"] == 2 and info["candidate_pairs"] >= 2
    assert info["bytes_on_disk"] > 0


# ---- fixes: corrected texts keep their story id, metadata-only updates, dimension check, near pairs ------------------


def test_corrected_singleton_keeps_its_cluster_id(floods):
    before = floods.cluster_of()["chess"]
    result = floods.index([doc("chess", CHESS.replace("December 31", "December 30"))])
    assert result.replaced == ["chess"]
    assert floods.cluster_of()["chess"] == before


def test_metadata_change_is_stored_without_encoding(floods, fake_encoder):
    encoded = fake_encoder.sentences_encoded
    result = floods.index([doc("rewrite", FLOOD_REWRITE, published="2020-01-01", title="Floods")])
    assert (result.metadata_updated, result.unchanged, result.added, result.replaced) == (["rewrite"], [], [], [])
    assert fake_encoder.sentences_encoded == encoded
    stored = floods.store.document("rewrite")
    assert stored.published == "2020-01-01" and stored.metadata["title"] == "Floods"
    # the earliest published document now represents the story
    story = next(c for c in floods.clusters() if "rewrite" in c.members)
    assert story.representative == "rewrite"


def test_encoder_of_another_dimension_is_refused(floods, detector_factory):
    from detector import IncompatibleIndexError

    other = FakeEncoder(dimension=32)
    with pytest.raises(IncompatibleIndexError, match="64-dimensional vectors but encoder 'fake-hash-encoder' gives 32"):
        detector_factory(encoder=other, create=False)


def test_report_lists_closest_unaligned_sentences(floods):
    report = floods.report("wire", "italy")
    aligned = {(p.a_index, p.b_index) for p in report.aligned}
    assert report.near, "two flood reports have mutual best-matching sentences below the threshold"
    for pair in report.near:
        assert pair.similarity < report.align_threshold
        assert (pair.a_index, pair.b_index) not in aligned
    assert report.to_dict()["closest_unaligned"][0]["a"] == report.near[0].a_text


# ---- the neighbour floors: briefs and full texts ------------------------------------------------------------------

LONG_ORCHARD = " ".join(f"The orchard in Kent grew {n} kinds of apple this autumn." for n in range(6, 12))
LONG_HARBOUR = " ".join(f"The harbour at Dover counted {n} ferries before the storm." for n in range(6, 12))
BRIEF_CHOIR = "A choir in Leeds sang carols on Sunday. The concert raised money for a shelter."


def test_two_texts_longer_than_a_brief_meet_the_full_floor_and_a_brief_the_lower_one(tmp_path, monkeypatch):
    from detector import Detector
    from conftest import TEST_SETTINGS

    from detector.config import BRIEF_SENTENCES

    assert len(split_sentences(LONG_ORCHARD)) > BRIEF_SENTENCES >= len(split_sentences(BRIEF_CHOIR))
    # every pair with a brief is near enough; no pair of two long texts is
    settings = replace(TEST_SETTINGS, neighbor_min_cosine=-1.0, full_neighbor_min_cosine=1.0)
    with Detector.open(tmp_path / "index", encoder=FakeEncoder(), settings=settings, params=TEST_PARAMS) as detector:
        detector.index([doc("orchard", LONG_ORCHARD), doc("harbour", LONG_HARBOUR), doc("choir", BRIEF_CHOIR)])
        key = {i: detector.store.document(i).key for i in ("orchard", "harbour", "choir")}

        def sources(a: str, b: str) -> list[str]:
            stored = detector.store.pair(key[a], key[b])
            return stored.sources if stored else []

        assert "embedding" in sources("choir", "orchard") and "embedding" in sources("choir", "harbour")
        assert sources("orchard", "harbour") == []
        # a query compares the further neighbours by the same rule (top=0: only those above their floor)
        compared: list[int] = []
        view = detector._view
        monkeypatch.setattr(detector, "_view", lambda k: compared.append(k) or view(k))
        detector.query(LONG_ORCHARD.replace("Kent", "Sussex"), top=0)
        assert key["choir"] in compared and key["harbour"] not in compared


# ---- rare terms: the third candidate source ----------------------------------------------------------------------

DAM = "Officials in Zaporozhye said the Kakhovka dam had been breached overnight, flooding Kherson."
DAM_RETOLD = "Evacuations began around Kherson after water from the Kakhovka reservoir rose."
ONE_NAME = "Kherson hosted a football match on Sunday, and the home side won."


def _rare_terms_only(tmp_path, **changes):
    """A Detector whose only candidate source is rare terms (no neighbours; MinHash asks for a high Jaccard)."""
    from detector import Detector
    from conftest import TEST_SETTINGS

    settings = replace(TEST_SETTINGS, neighbors=0, lsh_threshold=0.9, shared_sentences=False, boilerplate=False,
                       **changes)
    return Detector.open(tmp_path / "index", encoder=FakeEncoder(), settings=settings, params=TEST_PARAMS)


def test_documents_sharing_two_rare_names_are_candidates_whatever_their_wording(tmp_path):
    with _rare_terms_only(tmp_path) as detector:
        detector.index([doc("dam", DAM), doc("retold", DAM_RETOLD), doc("match", ONE_NAME)])
        key = {i: detector.store.document(i).key for i in ("dam", "retold", "match")}
        assert detector.store.pair(key["dam"], key["retold"]).sources == ["rare_terms"]  # Kakhovka and Kherson
        assert detector.store.pair(key["dam"], key["match"]) is None  # Kherson only
        assert detector.store.pair(key["retold"], key["match"]) is None
        # a query's nearest documents are always compared: rare terms tell which of them share two
        matches = detector.query("Kakhovka: the water reached Kherson by noon.")
        found = {m.id: "rare_terms" in m.sources for m in matches}
        assert found == {"dam": True, "retold": True, "match": False}


def test_every_copy_meets_a_later_text_and_keeps_it_when_the_first_goes(tmp_path):
    with _rare_terms_only(tmp_path) as detector:
        detector.index([doc("dam", DAM), doc("copy", DAM)])
        detector.index([doc("retold", DAM_RETOLD)])  # the table names only the first of the two copies
        key = {i: detector.store.document(i).key for i in ("dam", "copy", "retold")}
        assert detector.store.pair(key["copy"], key["retold"]).sources == ["rare_terms"]
        detector.remove(["dam"])
        assert detector.store.pair(key["copy"], key["retold"]) is not None


def test_shared_numbers_are_not_rare_terms(tmp_path):
    with _rare_terms_only(tmp_path) as detector:  # the two share 6, 7, 8, 9, 10 and 11, and no name
        detector.index([doc("orchard", LONG_ORCHARD), doc("harbour", LONG_HARBOUR)])
        assert detector.store.pair(*(detector.store.document(i).key for i in ("orchard", "harbour"))) is None
        assert detector.store.holders(["6", "11"]) == {}


def test_no_rare_term_candidates_when_off(tmp_path):
    with _rare_terms_only(tmp_path, rare_terms=0) as detector:
        detector.index([doc("dam", DAM), doc("retold", DAM_RETOLD)])
        assert detector.store.pair(*(detector.store.document(i).key for i in ("dam", "retold"))) is None
        assert detector.store.holders(["kakhovka"]) == {}


def test_a_term_held_by_more_texts_than_rare_term_texts_proposes_nothing_any_more(tmp_path):
    third = "Kherson and Kakhovka were quiet again on Friday, a week after the breach."
    with _rare_terms_only(tmp_path, rare_term_texts=2) as detector:
        detector.index([doc("dam", DAM), doc("retold", DAM_RETOLD)])
        detector.index([doc("third", third)])
        detector.remove(["retold"])  # two texts hold the terms again, but they were common once
        detector.index([doc("fourth", "Kherson waited for news from Kakhovka.")])
        key = {i: detector.store.document(i).key for i in ("dam", "third", "fourth")}
        assert [p for p in ((key["dam"], key["third"]), (key["dam"], key["fourth"]), (key["third"], key["fourth"]))
                if detector.store.pair(*p) is not None] == []
        assert detector.store.holders(["kakhovka", "kherson"]) == {}


# ---- shared sentences: the fourth candidate source ----------------------------------------------------------------

WIRE_SENTENCES = split_sentences(FLOOD_WIRE)


def _sentences_only(tmp_path, **changes):
    """A Detector whose only candidate source is shared sentences."""
    from detector import Detector
    from conftest import TEST_SETTINGS

    settings = replace(TEST_SETTINGS, neighbors=0, lsh_threshold=0.9, rare_terms=0, **changes)
    return Detector.open(tmp_path / "index", encoder=FakeEncoder(), settings=settings, params=TEST_PARAMS)


def test_an_excerpt_and_its_source_are_candidates_in_either_order(tmp_path):
    excerpt = WIRE_SENTENCES[3].upper()  # word for word, whatever the case
    with _sentences_only(tmp_path) as detector:
        detector.index([doc("wire", FLOOD_WIRE)])
        detector.index([doc("excerpt", excerpt), doc("chess", CHESS)])
        detector.index([doc("wire again", FLOOD_WIRE + "\nMore rain is forecast for the weekend.")])  # after it
        key = {i: detector.store.document(i).key for i in ("wire", "excerpt", "chess", "wire again")}
        assert detector.store.pair(key["wire"], key["excerpt"]).sources == ["sentences"]
        assert detector.store.pair(key["excerpt"], key["wire again"]).sources == ["sentences"]
        assert detector.store.pair(key["wire"], key["chess"]) is None
        # (a query always compares its `top` nearest documents too)
        found = {m.id for m in detector.query(excerpt, top=5) if "sentences" in m.sources}
        assert found == {"wire", "excerpt", "wire again"}


def test_only_sentences_that_can_be_shared_count_towards_half(tmp_path):
    # a credit line and a photo caption of one or two words are no sentences that another text could share
    with _sentences_only(tmp_path) as detector:
        detector.index([doc("wire", FLOOD_WIRE)])
        detector.index([doc("excerpt", f"{WIRE_SENTENCES[3]}\nReuters.\nPhoto: AP.")])
        assert detector.store.pair(*(detector.store.document(i).key for i in ("wire", "excerpt"))).sources == \
            ["sentences"]


def test_one_sentence_in_common_is_not_enough_between_longer_texts(tmp_path):
    # half of the shorter text's sentences must be in the other: one of five is a coincidence (or a stock phrase)
    other = FLOOD_OTHER_EVENT.split("\n")
    with _sentences_only(tmp_path) as detector:
        detector.index([doc("wire", FLOOD_WIRE), doc("one", "\n".join(other[:4] + [WIRE_SENTENCES[4]])),
                        doc("two", "\n".join(other[:2] + WIRE_SENTENCES[3:5]))])
        key = {i: detector.store.document(i).key for i in ("wire", "one", "two")}
        assert detector.store.pair(key["wire"], key["one"]) is None
        assert detector.store.pair(key["wire"], key["two"]).sources == ["sentences"]  # two of four


def test_the_holders_of_a_sentence_follow_copies_removals_and_replacements(tmp_path):
    excerpt = WIRE_SENTENCES[1]
    with _sentences_only(tmp_path) as detector:
        detector.index([doc("wire", FLOOD_WIRE), doc("copy", FLOOD_WIRE)])
        detector.remove(["wire"])  # the copy holds its sentences now
        detector.index([doc("excerpt", excerpt)])
        key = {i: detector.store.document(i).key for i in ("copy", "excerpt")}
        assert detector.store.pair(key["copy"], key["excerpt"]).sources == ["sentences"]
        detector.index([doc("copy", CHESS)])  # a new text under its id: nobody holds the wire's sentences
        detector.remove(["excerpt"])
        assert [m for m in detector.query(excerpt, top=5) if "sentences" in m.sources] == []
        chess = detector.store.document("copy").key
        hashes = [h for (h,) in detector.store._db.execute("SELECT hash FROM sentence_holders")]
        held = detector.store.sentence_holders(hashes)
        assert len(held) == len(hashes) == len(split_sentences(CHESS))
        assert set(map(tuple, held.values())) == {((chess, len(split_sentences(CHESS))),)}


def test_a_sentence_held_by_more_texts_than_rare_term_texts_proposes_nothing(tmp_path):
    stock = "Further information was not immediately available from the authorities."
    with _sentences_only(tmp_path, rare_term_texts=2) as detector:
        for name, text in (("a", "The harbour closed."), ("b", "A choir sang hymns."), ("c", "Bees left the hive.")):
            detector.index([doc(name, f"{stock}\n{text}")])
        detector.index([doc("brief", stock)])
        assert [m for m in detector.query(stock, top=5) if "sentences" in m.sources] == []
        # only a and b, while two texts held it (the new one counts: c made it three)
        [pair] = detector.store.all_pairs()
        keys = [detector.store.document(i).key for i in "ab"]
        assert (pair.a_key, pair.b_key, pair.sources) == (*keys, ["sentences"])


def test_no_shared_sentence_candidates_when_off_or_in_an_index_made_before_them(tmp_path):
    import json

    from detector import Detector, Settings

    with _sentences_only(tmp_path, shared_sentences=False, boilerplate=False) as detector:
        detector.index([doc("wire", FLOOD_WIRE), doc("excerpt", WIRE_SENTENCES[3])])
        assert detector.store.count_pairs()[0] == 0
        assert detector.store._db.execute("SELECT COUNT(*) FROM sentence_holders").fetchone()[0] == 0
    assert Settings.from_dict({}).shared_sentences is False
    assert Settings().shared_sentences is True
    # an index of format 4, made before the lists: its manifest has no such setting; opened and extended here
    with _sentences_only(tmp_path / "old"):
        pass
    manifest = json.loads((tmp_path / "old" / "index" / "manifest.json").read_text(encoding="utf-8"))
    manifest["format_version"] = 4
    del manifest["settings"]["shared_sentences"], manifest["settings"]["boilerplate"]
    manifest_path = tmp_path / "old" / "index" / "manifest.json"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with Detector.open(tmp_path / "old" / "index", encoder=FakeEncoder(), params=TEST_PARAMS) as detector:
        assert detector.settings.shared_sentences is False
        detector.index([doc("wire", FLOOD_WIRE), doc("excerpt", WIRE_SENTENCES[3])])
        assert "sentences" not in (detector.report("wire", "excerpt").sources or [])
        assert detector.store._db.execute("SELECT COUNT(*) FROM sentence_holders").fetchone()[0] == 0
        assert detector.store.manifest["format_version"] == 4


def _holders_as_the_documents_say(detector, cap: int) -> list:
    """What is wrong with the lists of sentence holders, measured against the documents table (empty: nothing)."""
    import json

    from detector.evidence import sentence_hashes
    db = detector.store._db
    documents = list(db.execute("SELECT key, content_hash, sentences FROM documents"))
    text_of = {key: digest for key, digest, _ in documents}
    truth: dict[int, dict[str, int]] = {}  # hash -> text -> how many sentence hashes that text has
    for _, digest, sentences in documents:
        hashes = sentence_hashes(json.loads(sentences))
        for h in hashes:
            truth.setdefault(h, {})[digest] = len(hashes)
    rows = {h: (texts, holders) for h, texts, holders in
            db.execute("SELECT hash, texts, holders FROM sentence_holders")}
    wrong = [("no row", h) for h in truth if h not in rows] + [("stale row", h) for h in rows if h not in truth]
    for h, by_text in truth.items():
        texts, holders = rows.get(h, (len(by_text), None))
        if texts != len(by_text):
            wrong.append(("texts", h, texts, len(by_text)))
        if holders is not None:
            listed = [tuple(map(int, holder.split(":"))) for holder in holders.split()]
            if len(listed) > cap or any(k not in text_of for k, _ in listed) or \
                    sorted(text_of[k] for k, _ in listed) != sorted(by_text) or \
                    any(n != by_text[text_of[k]] for k, n in listed):
                wrong.append(("holders", h, holders))
    return wrong


SENTENCE_POOL = [f"Sentence {i} tells of the {w} in the town." for i, w in
                 enumerate("flood fire storm quake drought riot strike election".split())]


@hypothesis_settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.sampled_from(SENTENCE_POOL), min_size=1, max_size=4), min_size=5, max_size=5),
       st.lists(st.tuples(st.booleans(), st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4)), min_size=1,
                                                    max_size=4)), min_size=1, max_size=10))
def test_the_lists_of_sentence_holders_follow_every_addition_copy_replacement_and_removal(tmp_path_factory, texts,
                                                                                          steps):
    cap = 3
    with _sentences_only(tmp_path_factory.mktemp("holders"), rare_term_texts=cap) as detector:
        for remove, picks in steps:
            if remove:
                detector.remove([f"d{i}" for i, _ in picks])
            else:
                detector.index(list({f"d{i}": doc(f"d{i}", "\n".join(texts[t])) for i, t in picks}.values()))
            assert _holders_as_the_documents_say(detector, cap) == []
