"""The index folder as a versioned artifact: round trip, and clear errors for missing, corrupt, incompatible or locked
folders."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
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


def checkpoints(index: Path) -> list[str]:
    return sorted(p.name for p in index.iterdir() if p.name.startswith(("ckpt-", ".staging")))


@pytest.fixture
def checkpoint_every_commit(monkeypatch):
    """Checkpoints from the first document on, so that small test indexes have them."""
    monkeypatch.setattr("detector.store.CHECKPOINT_MIN_DOCUMENTS", 1)


def test_small_indexes_have_no_checkpoint(detector_factory, tmp_index):
    detector = detector_factory()
    detector.index([doc(i, t) for i, t in CORPUS])
    assert checkpoints(tmp_index) == []
    assert len(detector_factory(create=False).snapshot.keys) == len(CORPUS)  # rebuilt from the database


def test_a_checkpoint_when_grown_by_a_quarter_and_only_the_newest_kept(detector_factory, tmp_index,
                                                                       checkpoint_every_commit):
    detector = detector_factory()
    for n, (doc_id, text) in enumerate(CORPUS, start=1):
        detector.index([doc(doc_id, text)])
        if n == 1:
            assert checkpoints(tmp_index) == ["ckpt-000001"]
    # each of 1 -> 2 -> 3 -> 4 documents grows the index by a quarter or more: a new checkpoint each time
    assert checkpoints(tmp_index) == ["ckpt-000004"]
    assert sorted(p.name for p in (tmp_index / "ckpt-000004").iterdir()) == [
        "documents.faiss", "hash_values.npz", "lsh.npz"]
    detector.index([doc("late", "A short note on the weather in Lisbon, which was mild on Tuesday.")])
    assert checkpoints(tmp_index) == ["ckpt-000005"]  # 4 -> 5: exactly a quarter
    detector.index([doc("later", "Chess clubs in Porto meet on Thursdays from now on, the federation said.")])
    assert checkpoints(tmp_index) == ["ckpt-000005"]  # 5 -> 6: less than a quarter


def test_reopening_from_a_checkpoint_plus_later_commits(detector_factory, tmp_index, monkeypatch):
    detector = detector_factory()
    monkeypatch.setattr("detector.store.CHECKPOINT_MIN_DOCUMENTS", 3)
    monkeypatch.setattr("detector.store.CHECKPOINT_GROWTH", 10)
    detector.index([doc(i, t) for i, t in CORPUS[:3]])  # checkpointed
    detector.index([doc(*CORPUS[3])])  # after the checkpoint, only in the database
    detector.remove(["other"])  # removed after the checkpoint
    before = snapshot_of(detector)
    detector.close()
    assert checkpoints(tmp_index) == ["ckpt-000001"]
    reopened = detector_factory(create=False)
    assert snapshot_of(reopened) == before
    assert reopened.snapshot.keys == {reopened.store.document(i).key for i in ("wire", "rewrite", "chess")}


def test_a_graph_index_through_indexing_removal_and_a_checkpoint(detector_factory, tmp_index, monkeypatch):
    monkeypatch.setattr("detector.vectors.HNSW_FROM", 2)  # every index past one document searches a graph
    monkeypatch.setattr("detector.store.CHECKPOINT_MIN_DOCUMENTS", 3)
    monkeypatch.setattr("detector.store.CHECKPOINT_GROWTH", 10)
    detector = detector_factory()
    detector.index([doc(i, t) for i, t in CORPUS[:3]])  # checkpointed, with a graph
    assert detector.snapshot.documents.kind == "hnsw"
    detector.index([doc(*CORPUS[3])])
    detector.remove(["other"])
    before = snapshot_of(detector)
    assert "other" not in [m["id"] for m in before["query"]]
    detector.close()
    reopened = detector_factory(create=False)
    assert snapshot_of(reopened) == before


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
                                        "this detector reads versions 3, 4, 5 and 6. Rebuild it")


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


@pytest.mark.parametrize("name", ["documents.faiss", "lsh.npz"])
@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_damaged_checkpoint_is_rebuilt_from_the_database(detector_factory, tmp_index, checkpoint_every_commit,
                                                           name, damage, caplog):
    detector = detector_factory()
    detector.index([doc(i, t) for i, t in CORPUS])
    before = snapshot_of(detector)
    detector.close()
    [checkpoint] = tmp_index.glob("ckpt-*")
    if damage == "corrupt":
        (checkpoint / name).write_bytes(b"junk" * 10)
    else:
        (checkpoint / name).unlink()
    reopened = detector_factory(create=False)
    assert snapshot_of(reopened) == before
    if damage == "corrupt":
        assert f"{checkpoint / name} is corrupt (checksum mismatch); rebuilding the search indexes" in caplog.text
    else:  # a file gone from a checkpoint that is still there is damage, not a writer's replacement: a warning
        [record] = [r for r in caplog.records if "not read" in r.getMessage()]
        assert record.levelname == "WARNING" and str(checkpoint) in record.getMessage()


def _hash_values(detector: Detector) -> dict[int, list[int]]:
    hashes = detector.snapshot.hashes
    return {key: hashes._rows[key].tolist() for key in hashes.keys().tolist()}


@pytest.mark.parametrize("damage", [None, "corrupt", "missing", "other documents"])
def test_every_documents_hash_values_are_held_from_a_checkpoint_or_the_database(detector_factory, tmp_index,
                                                                                monkeypatch, damage, caplog):
    # the LSH's proposals are checked against them: a process that opens a large index must not read them from the
    # database proposal by proposal. A checkpoint written before they were kept has none: read from the database
    import logging
    monkeypatch.setattr("detector.store.CHECKPOINT_MIN_DOCUMENTS", 3)
    monkeypatch.setattr("detector.store.CHECKPOINT_GROWTH", 10)
    detector = detector_factory()
    detector.index([doc(i, t) for i, t in CORPUS[:3]])  # checkpointed
    detector.index([doc(*CORPUS[3])])  # after the checkpoint, only in the database
    detector.remove(["other"])  # removed after the checkpoint
    expected, before = _hash_values(detector), snapshot_of(detector)
    keys = {detector.store.document(i).key for i in ("wire", "rewrite", "chess")}
    assert set(expected) == keys
    detector.close()
    [checkpoint] = tmp_index.glob("ckpt-*")
    hash_file = checkpoint / "hash_values.npz"
    assert hash_file.exists()
    if damage == "corrupt":
        hash_file.write_bytes(b"junk" * 10)
    elif damage == "missing":
        hash_file.unlink()
    elif damage == "other documents":  # a valid file of other keys (the checksum recorded for it, as if it matched)
        import hashlib
        import json
        from detector.minhash import HashTable
        data = HashTable(128).to_bytes()
        hash_file.write_bytes(data)
        store = Store.open(tmp_index)
        with store.writing():
            checksums = json.loads(store._state("checksums", "{}"))
            checksums["hash_values.npz"] = hashlib.sha256(data).hexdigest()
            store._set_state("checksums", json.dumps(checksums))
        store.close()
    with caplog.at_level(logging.INFO, logger="detector"):
        reopened = detector_factory(create=False)
        assert _hash_values(reopened) == expected
    assert snapshot_of(reopened) == before
    assert ("reading the hash values from the database" in caplog.text) == (damage is not None)


def test_a_checkpoint_from_before_hash_values_were_kept_is_replaced_at_the_next_commit(detector_factory, tmp_index,
                                                                                      monkeypatch):
    # until then every process that opens the index reads them all from the database
    import json
    monkeypatch.setattr("detector.store.CHECKPOINT_MIN_DOCUMENTS", 3)
    monkeypatch.setattr("detector.store.CHECKPOINT_GROWTH", 10)
    detector = detector_factory()
    detector.index([doc(i, t) for i, t in CORPUS[:3]])  # checkpointed
    detector.close()
    [checkpoint] = tmp_index.glob("ckpt-*")
    (checkpoint / "hash_values.npz").unlink()  # as an earlier version wrote it: no file, no checksum
    store = Store.open(tmp_index)
    with store.writing():
        checksums = json.loads(store._state("checksums", "{}"))
        del checksums["hash_values.npz"]
        store._set_state("checksums", json.dumps(checksums))
    store.close()
    reopened = detector_factory(create=False)
    reopened.index([doc(*CORPUS[3])])  # far from a quarter's growth: due only because of the missing values
    [newer] = tmp_index.glob("ckpt-*")
    assert newer != checkpoint and (newer / "hash_values.npz").exists()
    reopened.index([doc("late", "A short note on the weather in Lisbon, which was mild on Tuesday.")])
    assert list(tmp_index.glob("ckpt-*")) == [newer]  # and not again


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


def test_a_graph_is_checkpointed_when_it_appears_and_every_so_many_documents(detector_factory, tmp_index, monkeypatch):
    monkeypatch.setattr("detector.vectors.HNSW_FROM", 3)
    monkeypatch.setattr("detector.store.CHECKPOINT_MIN_DOCUMENTS", 1000)  # growth alone would never checkpoint
    monkeypatch.setattr("detector.store.CHECKPOINT_GRAPH_EVERY", 2)
    detector = detector_factory()
    detector.index([doc(i, t) for i, t in CORPUS[:2]])  # flat, small: no checkpoint
    assert checkpoints(tmp_index) == []
    detector.index([doc(*CORPUS[2])])  # the graph appears: checkpointed at once
    assert checkpoints(tmp_index) == ["ckpt-000002"]
    detector.index([doc(*CORPUS[3])])  # one document added since: not yet
    assert checkpoints(tmp_index) == ["ckpt-000002"]
    detector.index([doc("chess", CHESS + " Updated.")])  # a replaced text is a second one added: checkpointed
    assert checkpoints(tmp_index) == ["ckpt-000004"]
    assert detector.snapshot.documents.kind == "hnsw"
    before = snapshot_of_ids(detector)
    detector.close()
    assert snapshot_of_ids(detector_factory(create=False)) == before


def snapshot_of_ids(detector: Detector) -> dict:
    return {"clusters": [(c.id, c.members) for c in detector.clusters()],
            "query": [m.id for m in detector.query(FLOOD_OTHER_EVENT, top=3)]}



def test_term_frequencies_kept_in_memory_follow_every_write(detector_factory, tmp_index):
    writer, other = detector_factory(), detector_factory()
    writer.index([doc(i, t) for i, t in CORPUS])

    def kept(store: Store) -> tuple[int, dict[str, int]]:
        with store.reading():
            return store.term_df()

    def fresh() -> tuple[int, dict[str, int]]:  # read from the tables by a store that kept nothing yet
        store = Store.open(tmp_index)
        try:
            return kept(store)
        finally:
            store.close()

    texts, df = kept(writer.store)
    assert texts == len(CORPUS) and df["paiporta"] == 2
    # this process's own writes: an exact copy (no new text), a replaced text, a removal
    writer.index([doc("wire-copy", FLOOD_WIRE), doc("chess", CHESS.replace("Carlsen", "Caruana"))])
    writer.remove(["other"])
    assert kept(writer.store) == fresh()
    assert kept(writer.store)[0] == len(CORPUS) - 1 and "caruana" in kept(writer.store)[1]
    # a write that fails is rolled back, and so is what the copy held of it
    with pytest.raises(KeyError):
        with writer.store.writing(timeout=1):
            writer.store.delete_document(writer.store.document("rewrite").key)
            assert writer.store.term_df()[0] == len(CORPUS) - 2
            raise KeyError("something failed mid-write")
    assert kept(writer.store) == fresh()
    # another process's commit: a store that kept a copy reads the tables again
    other.index([doc("other", FLOOD_OTHER_EVENT)])
    assert kept(writer.store) == kept(other.store) == fresh()
    assert kept(writer.store)[0] == len(CORPUS)


def test_a_copy_read_before_another_process_committed_is_not_carried_into_a_later_write(detector_factory, tmp_index):
    first, second = detector_factory(), detector_factory()
    first.index([doc(i, t) for i, t in CORPUS])
    second.index([doc("new", "Zyxwv Qwerty met Plokij in Vilnius on Tuesday. Zyxwv Qwerty said the talks went well.")])
    # a batch that only corrects metadata adds no text: nothing in it reads the term frequencies again
    first.index([doc("wire", FLOOD_WIRE, title="Corrected headline")])
    first.index([doc("late", "Plokij won the chess final in Vilnius. Plokij said Zyxwv Qwerty helped.")])
    store = Store.open(tmp_index)
    try:
        with first.store.reading(), store.reading():
            assert first.store.term_df() == store.term_df()
            assert first.store.term_df()[1]["zyxwv"] == 2
    finally:
        store.close()


def test_the_copy_is_dropped_when_sqlite_rolled_back_by_itself(built_index):
    store = Store.open(built_index)
    try:
        with store.reading():
            before = store.term_df()
        calls = []
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):  # the first error, not ROLLBACK's
            with store.writing(timeout=1):
                store.delete_document(store.document("chess").key)
                # an interrupted statement makes SQLite roll the whole transaction back itself
                store._db.set_progress_handler(lambda: calls.append(1) or len(calls) == 1, 1)
                store._db.execute("UPDATE documents SET metadata = metadata")
        store._db.set_progress_handler(None, 1)
        with store.reading():
            assert store.term_df() == before
    finally:
        store.close()


# ---- the holders of rare terms ------------------------------------------------------------------------------------


def test_holders_follow_additions_removals_and_exact_copies(detector_factory):
    detector = detector_factory()
    store = detector.store
    dam = "Officials in Zaporozhye said the Kakhovka dam had been breached."
    retold = "Evacuations began as the Kakhovka reservoir rose."
    detector.index([doc("dam", dam), doc("copy", dam), doc("retold", retold)])
    detector.index([doc("late copy", dam.upper())])  # the same text once normalised
    key = {i: store.document(i).key for i in ("dam", "copy", "retold", "late copy")}

    def kept(term: str) -> str | None:  # what the table keeps: one key a text
        return store._db.execute("SELECT holders FROM term_df WHERE term = ?", (term,)).fetchone()[0]

    assert (kept("kakhovka"), kept("zaporozhye")) == (f"{key['dam']} {key['retold']}", str(key["dam"]))
    assert store.holders(["kakhovka", "zaporozhye", "unheard"]) == {  # every copy of each text
        "kakhovka": [key["dam"], key["copy"], key["retold"], key["late copy"]],
        "zaporozhye": [key["dam"], key["copy"], key["late copy"]]}
    detector.remove(["dam"])  # its text is still indexed: the first copy left holds it now
    assert (kept("kakhovka"), kept("zaporozhye")) == (f"{key['copy']} {key['retold']}", str(key["copy"]))
    assert store.holders(["zaporozhye"]) == {"zaporozhye": [key["copy"], key["late copy"]]}
    detector.remove(["retold", "copy"])
    assert store.holders(["kakhovka", "evacuations"]) == {"kakhovka": [key["late copy"]]}
    detector.close()
    assert detector_factory(create=False).store.holders(["kakhovka"]) == {"kakhovka": [key["late copy"]]}


def test_holders_leave_out_documents_an_earlier_version_removed(detector_factory, tmp_index):
    detector = detector_factory()
    detector.index([doc("dam", "Zaporozhye and Kakhovka."), doc("retold", "Kakhovka, then Zaporozhye.")])
    gone = detector.store.document("dam").key
    earlier = Store.open(tmp_index)  # another process, as an earlier version removes: the holders column untouched
    try:
        with earlier.writing():
            earlier._db.execute("DELETE FROM documents WHERE key = ?", (gone,))
            earlier._db.execute("UPDATE term_df SET df = df - 1 WHERE term IN ('kakhovka', 'zaporozhye')")
            earlier.commit(earlier.load_snapshot(lsh_threshold=0.5, num_perm=128))
    finally:
        earlier.close()
    assert detector.store.holders(["kakhovka"]) == {"kakhovka": [detector.store.document("retold").key]}
    assert [m.id for m in detector.query("Kakhovka and Zaporozhye again.")] == ["retold"]


def test_an_index_made_before_holders_were_kept_has_no_rare_term_source(built_index, detector_factory):
    manifest_path = built_index / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for name in ("rare_terms", "rare_term_texts"):
        del manifest["settings"][name]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with sqlite3.connect(built_index / "meta.sqlite") as db:
        db.execute("ALTER TABLE term_df DROP COLUMN holders")
    detector = detector_factory(create=False)
    assert detector.settings.rare_terms == 0 and not detector.store.keeps_holders
    detector.index([doc("more", FLOOD_REWRITE + " Mazón visited Paiporta again.")])
    detector.remove(["more", "chess"])
    assert detector.store.holders(["paiporta"]) == {}
    assert "rare_terms" not in {s for m in detector.query(FLOOD_WIRE) for s in m.sources}


def test_clusters_reports_and_info_read_the_database_only(built_index, detector_factory, monkeypatch):
    def no_search_indexes(*args, **kwargs):
        raise AssertionError("the search indexes were loaded")

    reader = detector_factory(create=False)
    monkeypatch.setattr(Store, "load_snapshot", no_search_indexes)
    assert reader.clusters()[0].members == ["wire", "rewrite"]
    assert reader.report("wire", "rewrite").verdict == "same story"
    assert reader.info()["documents"] == len(CORPUS)


def test_a_report_weighs_terms_by_what_another_process_committed_since(built_index, detector_factory):
    reader = detector_factory(create=False)
    before = reader.report("wire", "rewrite").features["term_cosine"]
    writer = detector_factory(create=False)  # another connection: what another process would commit
    writer.index([doc(f"more-{n}", f"Paiporta and Mazón, report {n}: the clean-up in Paiporta went on, Mazón said.")
                  for n in range(6)])
    after = reader.report("wire", "rewrite").features["term_cosine"]
    assert after < before  # Paiporta and Mazón are no longer rare in the index
    assert after == detector_factory(create=False).report("wire", "rewrite").features["term_cosine"]


# ---- pairs of copies ----------------------------------------------------------------------------------------------


def test_copy_pairs_are_copies_each_way_not_excerpts(detector_factory):
    detector = detector_factory(params=replace(TEST_PARAMS, duplicate_containment=0.8))
    store = detector.store
    credited = FLOOD_WIRE + "\nReporting by a correspondent in Valencia."
    excerpt = FLOOD_WIRE.split("\n")[0]
    detector.index([doc("wire", FLOOD_WIRE), doc("credited", credited), doc("exact", FLOOD_WIRE.upper()),
                    doc("excerpt", excerpt), doc("rewrite", FLOOD_REWRITE)])
    key = {i: store.document(i).key for i in ("wire", "credited", "exact", "excerpt", "rewrite")}
    relation = {(p.a_key, p.b_key): p.relation for p in store.all_pairs()}
    wire_excerpt = tuple(sorted((key["wire"], key["excerpt"])))
    assert relation[wire_excerpt] == "duplicate"  # the excerpt is all in the wire report, but not the other way
    minimum = detector.params.duplicate_containment
    copies = {tuple(sorted(pair)) for pair in store.copy_pairs(minimum)}
    named = {tuple(sorted((key[a], key[b]))) for a, b in
             (("wire", "credited"), ("wire", "exact"), ("credited", "exact"))}
    assert copies == named
    assert set(store.copy_pairs(minimum, [key["wire"], key["exact"], key["excerpt"]])) == {
        tuple(sorted((key["wire"], key["exact"])))}
