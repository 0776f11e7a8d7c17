"""Crashes, two writers, readers during a write: real processes (tests/cli_worker.py, the fake encoder)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import CHESS, FLOOD_OTHER_EVENT, FLOOD_REWRITE, FLOOD_WIRE, doc
from filelock import FileLock

from detector import IndexLockedError

WORKER = Path(__file__).parent / "cli_worker.py"
TEXTS = [FLOOD_WIRE, FLOOD_REWRITE, FLOOD_OTHER_EVENT, CHESS]


def corpus(path: Path, n: int, prefix: str = "doc") -> Path:
    """n documents: variants of four texts, each made distinct by a numbered closing line."""
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            text = TEXTS[i % len(TEXTS)] + f"\n\nUpdate {prefix} {i} was filed by desk {i * 7919 % 1000}."
            out.write(json.dumps({"id": f"{prefix}{i:04d}", "text": text}) + "\n")
    return path


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def consistent(detector_factory, index: Path) -> set[str]:
    """Open the index, check every part agrees, and return the ids it holds."""
    detector = detector_factory(index, create=False)
    info = detector.info()
    assert len(detector.snapshot.documents) == info["documents"]
    assert len(detector.snapshot.lsh) == len(detector.snapshot.keys) == info["documents"]
    ids = {d.id for d in detector.store.summaries()}
    assert set(detector.cluster_of()) == ids
    return ids


@pytest.mark.parametrize("lines_before_kill", [0, 1, 3, 8])
def test_kill_during_dedup_keeps_every_decision_written_out(tmp_path, detector_factory, lines_before_kill):
    data = corpus(tmp_path / "stream.jsonl", 40)
    index = tmp_path / "index"
    worker = start("dedup", "--index", str(index), "--model", "fake-hash-encoder", "--batch-size", "2", str(data))
    written = []
    for _ in range(lines_before_kill):
        line = worker.stdout.readline()
        assert line, worker.stderr.read()
        written.append(json.loads(line)["id"])
    if not lines_before_kill:
        time.sleep(0.5)  # somewhere in start-up or the first batch
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    if not index.exists() or not (index / "manifest.json").exists():
        assert not written
        return
    held = consistent(detector_factory, index)
    assert set(written) <= held
    # the same stream again finishes the job: every document, no error
    rerun = start("dedup", "--index", str(index), "--model", "fake-hash-encoder", str(data))
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert len(out.splitlines()) == 40
    assert consistent(detector_factory, index) == {f"doc{i:04d}" for i in range(40)}


def index_run_under_way(tmp_path: Path, delay: float) -> tuple[subprocess.Popen, Path]:
    """`detector index` of 200 documents in batches of 3, `delay` seconds after it created its index."""
    data = corpus(tmp_path / "stream.jsonl", 200)
    index = tmp_path / "index"
    worker = start("index", "--index", str(index), "--model", "fake-hash-encoder", "--batch-size", "3", str(data))
    deadline = time.monotonic() + 60
    while not (index / "meta.sqlite").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    return worker, index


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3, 0.7, 1.2])
def test_kill_at_moments_during_index(tmp_path, detector_factory, delay):
    worker, index = index_run_under_way(tmp_path, delay)
    worker.send_signal(signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL, "the run ended before it could be killed: give it more documents"
    held = consistent(detector_factory, index)
    assert held <= {f"doc{i:04d}" for i in range(200)}


def test_ctrl_c_during_index_exits_130_and_keeps_what_was_committed(tmp_path, detector_factory):
    worker, index = index_run_under_way(tmp_path, 0.3)
    worker.send_signal(signal.SIGINT)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 130, err
    assert err.splitlines()[-1] == "interrupted: every batch committed before it is kept"
    assert consistent(detector_factory, index) <= {f"doc{i:04d}" for i in range(200)}


def test_output_closed_by_its_reader_stops_dedup_with_141_and_keeps_what_was_committed(tmp_path, detector_factory):
    data = corpus(tmp_path / "stream.jsonl", 200)
    index = tmp_path / "index"
    worker = start("dedup", "--index", str(index), "--model", "fake-hash-encoder", "--batch-size", "2", str(data))
    first = json.loads(worker.stdout.readline())["id"]
    worker.stdout.close()  # as `| head -1` does
    err = worker.stderr.read()
    assert worker.wait(timeout=60) == 141, err
    assert err.splitlines()[-1] == ("stopped: the output was closed by its reader; every batch committed before it "
                                    "is kept")
    assert "Traceback" not in err and "Exception ignored" not in err
    held = consistent(detector_factory, index)
    assert first in held and len(held) < 200


def test_second_writer_waits_then_fails_clearly(tmp_path, detector_factory):
    index = tmp_path / "index"
    detector_factory(index).index([doc("a", FLOOD_WIRE)])
    with FileLock(str(index / "write.lock")):
        worker = start("index", "--index", str(index), "--lock-timeout", "0.5", "-")
        _, err = worker.communicate(input=json.dumps({"id": "b", "text": CHESS}) + "\n", timeout=60)
    assert worker.returncode == 1
    assert err.splitlines()[-1] == (f"Error: {index} is being written by another process (lock "
                                    f"{index / 'write.lock'} held for more than 0.5s); wait for it to finish or "
                                    "raise --lock-timeout")


def test_two_writers_at_once_both_land(tmp_path, detector_factory):
    index = tmp_path / "index"
    detector_factory(index).index([doc("seed", FLOOD_WIRE)])
    first, second = (corpus(tmp_path / f"part{i}.jsonl", 12, prefix=f"w{i}-") for i in (1, 2))
    workers = [start("index", "--index", str(index), "--batch-size", "2", str(p)) for p in (first, second)]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    expected = {"seed"} | {f"w{w}-{i:04d}" for w in (1, 2) for i in range(12)}
    assert consistent(detector_factory, index) == expected


def test_readers_keep_working_while_a_writer_holds_the_index(tmp_path, detector_factory):
    index = tmp_path / "index"
    writer = detector_factory(index)
    writer.index([doc("wire", FLOOD_WIRE), doc("chess", CHESS)])
    reader = detector_factory(index, create=False)
    holding, release = threading.Event(), threading.Event()

    def documents():
        yield doc("rewrite", FLOOD_REWRITE)
        holding.set()
        release.wait(10)

    thread = threading.Thread(target=lambda: writer.index(documents(), batch_size=1))
    thread.start()
    assert holding.wait(10)
    try:
        # the writer holds the lock and an open transaction; reading goes on, and sees the committed state
        assert {c.id for c in reader.clusters()} and reader.report("wire", "chess").verdict == "different"
        assert reader.query(FLOOD_REWRITE, top=1)[0].id in ("wire", "rewrite")
        with pytest.raises(IndexLockedError):
            detector_factory(index, create=False).index([doc("x", CHESS)], lock_timeout=0.2)
    finally:
        release.set()
        thread.join(10)
    assert "rewrite" in {d.id for d in reader.store.summaries()}


def test_two_processes_creating_one_index_both_land(tmp_path, detector_factory):
    index = tmp_path / "fresh"
    parts = [corpus(tmp_path / f"part{i}.jsonl", 6, prefix=f"w{i}-") for i in (1, 2)]
    workers = [start("index", "--index", str(index), "--model", "fake-hash-encoder", str(p)) for p in parts]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    assert consistent(detector_factory, index) == {f"w{w}-{i:04d}" for w in (1, 2) for i in range(6)}


def test_a_read_never_mixes_two_generations(tmp_path, detector_factory, monkeypatch):
    index = tmp_path / "index"
    writer = detector_factory(index)
    writer.index([doc("wire", FLOOD_WIRE), doc("chess", CHESS)])
    reader = detector_factory(index, create=False)
    reader.query(CHESS, top=1)  # loads the search indexes (clusters() alone would not)
    writer.index([doc("italy", FLOOD_OTHER_EVENT)])  # the reader's search indexes are now one generation behind
    sync = reader.store.sync_snapshot
    landed = []

    def sync_then_another_commit(snapshot):
        sync(snapshot)
        if not landed:  # a writer commits after the reader caught up, while its read is under way
            landed.append(writer.index([doc("late", FLOOD_REWRITE)]))

    monkeypatch.setattr(reader.store, "sync_snapshot", sync_then_another_commit)
    members = {m for c in reader.clusters() for m in c.members}
    assert landed and members == {"wire", "chess", "italy"}  # the generation it caught up to, nothing later
    report = reader.report("wire", "late")  # the next read catches up again
    assert report.b_sentences > 0 and report.same_story
