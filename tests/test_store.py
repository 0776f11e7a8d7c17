"""The index folder as a versioned artifact: round trip, and clear errors for missing, corrupt, incompatible or locked
folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import (CHESS, FLOOD_OTHER_EVENT, FLOOD_REWRITE, FLOOD_WIRE, TEST_PARAMS, FakeEncoder, OtherFakeEncoder,
                      doc)
from filelock import FileLock

from detector import Detector, IncompatibleIndexError, IndexFolderError, IndexLockedError
from detector.sentences import split_sentences
from detector.store import FORMAT_VERSION, Store

CORPUS = [("wire", FLOOD_WIRE), ("rewrite", FLOOD_REWRITE), ("other", FLOOD_OTHER_EVENT), ("chess", CHESS)]


@pytest.fixture
def built_index(detector_factory, tmp_index: Path) -> Path:
    """An index of CORPUS, closed again."""
    detector = detector_factory()
    detector.index([doc(i, t) for i, t in CORPUS])
    detector.close()
    return tmp_index


def snapshot_of(detector: Detector) -> dict:
    """Everything a user can read from an index, as plain data."""
    return {
        "clusters": [(c.id, c.members, c.representative) for c in detector.clusters()],
        "query": [m.to_dict() for m in detector.query(FLOOD_REWRITE, top=3)],
        "report": detector.report("wire", "rewrite").to_dict(),
        "info": {k: v for k, v in detector.info().items() if k != "bytes_on_disk"},
    }


# ---- round trip ------------------------------------------------------------------------------------------------------


def test_save_and_reopen_round_trip(detector_factory, tmp_index):
    detector = detector_factory()
    detector.index([doc(i, t) for i, t in CORPUS])
    before = snapshot_of(detector)
    detector.close()

    fresh_encoder = FakeEncoder()
    reopened = detector_factory(encoder=fresh_encoder, create=False)
    assert snapshot_of(reopened) == before
    assert before["clusters"][0][1] == ["wire", "rewrite"]
    # only the query text was encoded after reopening: stored vectors come from the index files
    assert fresh_encoder.calls == [split_sentences(FLOOD_REWRITE)]


def test_manifest_records_model_dimension_and_settings(built_index):
    manifest = json.loads((built_index / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert (manifest["model"], manifest["dimension"]) == ("fake-hash-encoder", 64)
    assert manifest["settings"]["model"] == "fake-hash-encoder"
    assert manifest["settings"]["num_perm"] == 128


def test_only_the_current_generation_is_kept(detector_factory, tmp_index):
    detector = detector_factory()
    detector.index([doc("wire", FLOOD_WIRE)])
    detector.index([doc("chess", CHESS)])
    assert sorted(p.name for p in tmp_index.iterdir() if p.name.startswith(("gen-", ".staging"))) == ["gen-000002"]
    assert sorted(p.name for p in (tmp_index / "gen-000002").iterdir()) == [
        "documents.faiss", "lsh.pickle", "sentences.faiss"]


# ---- errors ----------------------------------------------------------------------------------------------------------


def test_refuses_another_model(built_index, detector_factory):
    with pytest.raises(IncompatibleIndexError) as caught:
        detector_factory(encoder=OtherFakeEncoder())
    message = str(caught.value)
    assert f"{built_index} was built with model 'fake-hash-encoder', not 'other-fake-encoder'" in message
    with pytest.raises(IncompatibleIndexError, match="not 'all-MiniLM-L6-v2'"):
        Detector.open(built_index, model="all-MiniLM-L6-v2", params=TEST_PARAMS)


def test_refuses_another_format_version(built_index, detector_factory):
    manifest_path = built_index / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IncompatibleIndexError) as caught:
        detector_factory()
    assert str(caught.value).startswith(f"{built_index} was written in index format version 99; "
                                        f"this detector reads version {FORMAT_VERSION}. Rebuild it")


def test_missing_manifest(built_index, detector_factory):
    (built_index / "manifest.json").unlink()
    with pytest.raises(IndexFolderError) as caught:
        detector_factory(create=False)
    assert str(caught.value).startswith(f"no index at {built_index} ({built_index / 'manifest.json'} is missing)")


def test_missing_manifest_is_not_silently_recreated(built_index, detector_factory):
    # creating a new manifest over the old database would label its vectors with whatever model is given now
    (built_index / "manifest.json").unlink()
    with pytest.raises(IndexFolderError, match=r"holds an index database \(meta.sqlite\) but no manifest.json"):
        detector_factory(encoder=OtherFakeEncoder(dimension=32), create=True)
    assert not (built_index / "manifest.json").exists()


def test_nonexistent_folder_without_create(tmp_path, detector_factory):
    with pytest.raises(IndexFolderError, match="no index at"):
        detector_factory(tmp_path / "typo", create=False)
    assert not (tmp_path / "typo").exists()


def test_corrupt_manifest(built_index, detector_factory):
    (built_index / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexFolderError, match=r"manifest.json is corrupt \(.*\): rebuild the index"):
        detector_factory()


def test_missing_database(built_index, detector_factory):
    (built_index / "meta.sqlite").unlink()
    with pytest.raises(IndexFolderError, match=r"meta.sqlite is missing: the index is incomplete"):
        detector_factory()


def test_corrupt_database(built_index, detector_factory):
    for leftover in built_index.glob("meta.sqlite-*"):
        leftover.unlink()
    (built_index / "meta.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexFolderError, match=r"meta.sqlite is corrupt \(file is not a database\)"):
        detector_factory()


@pytest.mark.parametrize("name", ["sentences.faiss", "documents.faiss", "lsh.pickle"])
def test_corrupt_generation_file(built_index, detector_factory, name):
    [generation] = built_index.glob("gen-*")
    (generation / name).write_bytes(b"junk" * 10)
    detector = detector_factory()
    with pytest.raises(IndexFolderError) as caught:
        detector.query(FLOOD_WIRE)
    assert str(caught.value) == f"{generation / name} is corrupt (checksum mismatch): rebuild the index"


def test_missing_generation_file(built_index, detector_factory):
    [generation] = built_index.glob("gen-*")
    (generation / "lsh.pickle").unlink()
    detector = detector_factory()
    with pytest.raises(IndexFolderError, match="is missing files of the current generation"):
        detector.report("wire", "rewrite")


def test_write_lock_timeout(built_index, detector_factory):
    detector = detector_factory()
    with FileLock(str(built_index / "write.lock")):
        with pytest.raises(IndexLockedError) as caught:
            detector.index([doc("late", "Another article arrives while the index is busy.")], lock_timeout=0.1)
    assert str(caught.value) == (f"{built_index} is being written by another process (lock "
                                 f"{built_index / 'write.lock'} held for more than 0.1s); "
                                 "wait for it to finish or raise --lock-timeout")
    assert detector.store.document("late") is None
    # once the lock is free the same detector writes
    detector.index([doc("late", "Another article arrives while the index is busy.")], lock_timeout=0.1)
    assert detector.store.document("late") is not None


def test_readers_do_not_need_the_write_lock(built_index, detector_factory):
    detector = detector_factory()
    with FileLock(str(built_index / "write.lock")):
        assert [c.members for c in detector.clusters()][0] == ["wire", "rewrite"]
        assert detector.query(FLOOD_WIRE, top=1)[0].id == "wire"


def test_store_create_twice_and_commit_outside_writing(built_index):
    with pytest.raises(IndexFolderError, match="already holds an index; open it instead"):
        Store.create(built_index, model="fake-hash-encoder", dimension=64, settings={})
    store = Store.open(built_index)
    try:
        snapshot = store.load_snapshot(lsh_threshold=0.1, num_perm=128)
        with pytest.raises(RuntimeError, match=r"commit\(\) outside store.writing\(\)"):
            store.commit(snapshot)
    finally:
        store.close()


def test_failed_write_is_rolled_back(built_index):
    store = Store.open(built_index)
    try:
        with pytest.raises(KeyError):
            with store.writing(timeout=1):
                store.delete_document(store.document("wire").key)
                raise KeyError("something failed mid-write")
        assert store.document("wire") is not None
        assert store.count_documents() == len(CORPUS)
    finally:
        store.close()
