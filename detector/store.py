"""The index folder: manifest, SQLite metadata, FAISS and LSH files, the write lock and atomic commits.

Layout of an index folder:

    manifest.json        format version, model, dimension, settings (written once, atomically)
    meta.sqlite          documents, sentences, pairs, clusters, merges, and the current generation
    gen-NNNNNN/          sentences.faiss, documents.faiss, lsh.pickle of that generation
    write.lock           held by the one writer

A commit writes a new generation folder completely, then commits the SQLite transaction that names it (with the
files' SHA-256), then deletes older generations. A crash at any moment therefore leaves either the old state or the
new one, never a mix, and a reader always sees a consistent pair of database and files. Nothing outside this
module opens SQLite, FAISS or LSH files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock, Timeout

from .errors import IncompatibleIndexError, IndexExistsError, IndexFolderError, IndexLockedError
from .minhash import LSHIndex
from .records import SCHEMA, StoredDecision, StoredDocument, StoredPair, Summary, now
from .vectors import VectorIndex

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "meta.sqlite"
LOCK = "write.lock"
FILES = ("sentences.faiss", "documents.faiss", "lsh.pickle")

@dataclass
class Snapshot:
    """The vector and LSH indexes of one generation, loaded into memory."""

    generation: int
    sentences: VectorIndex
    documents: VectorIndex
    lsh: LSHIndex


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """One index folder. Open it with Store.create or Store.open; writes go through `with store.writing(): ...`."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._db = sqlite3.connect(path / DATABASE, isolation_level=None, timeout=60.0, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = FileLock(str(path / LOCK))
        self._writing = False

    # ---- opening -------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, model: str, dimension: int, settings: dict[str, Any]) -> "Store":
        """A new, empty index at `path`. It is built in a hidden sibling folder and renamed into place, so a crash
        never leaves half an index. IndexExistsError when there is one there already (or another process just
        created it)."""
        path = Path(path).resolve()
        if (path / MANIFEST).exists():
            raise IndexExistsError(f"{path} already holds an index; open it instead of creating it")
        if (path / DATABASE).exists():  # an index whose manifest was lost: a new manifest would mislabel its data
            raise IndexFolderError(f"{path} holds an index database ({DATABASE}) but no {MANIFEST}: the index is "
                                   "incomplete; rebuild it into a new folder (or remove this one)")
        if path.exists() and any(path.iterdir()):
            raise IndexFolderError(f"{path} is a folder with other files in it: give an empty or new folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.parent / f".{path.name}.creating-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        manifest = {"format_version": FORMAT_VERSION, "model": model, "dimension": dimension,
                    "settings": settings, "created": now()}
        _write_atomic(staging / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
        cls(staging, manifest).close()  # creates the database and its tables
        try:
            if path.exists():
                path.rmdir()  # empty (checked above)
            os.replace(staging, path)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if (path / MANIFEST).exists():
                raise IndexExistsError(f"{path} was created by another process meanwhile") from None
            raise
        _fsync_dir(path.parent)
        return cls(path, manifest)

    @classmethod
    def open(cls, path: str | Path) -> "Store":
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.exists():
            raise IndexFolderError(f"no index at {path} ({manifest_path} is missing): "
                                   "build one with `detector index --index DIR PATH...`")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            version = manifest["format_version"]
            if not (isinstance(manifest["model"], str) and isinstance(manifest["dimension"], int)
                    and manifest["dimension"] > 0 and isinstance(manifest["settings"], dict)):
                raise ValueError("model, dimension or settings have the wrong type")
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexFolderError(
                f"{manifest_path} is corrupt ({exc!s}): rebuild the index into a new folder") from None
        if version != FORMAT_VERSION:
            raise IncompatibleIndexError(
                f"{path} was written in index format version {version}; this detector reads version "
                f"{FORMAT_VERSION}. Rebuild it: `detector index --index NEW_DIR PATH...` from the original documents."
            )
        if not (path / DATABASE).exists():
            raise IndexFolderError(f"{path / DATABASE} is missing: the index is incomplete, rebuild it")
        try:
            return cls(path, manifest)
        except sqlite3.DatabaseError as exc:
            raise IndexFolderError(f"{path / DATABASE} is corrupt ({exc}): rebuild the index") from None

    def close(self) -> None:
        self._db.close()

    # ---- state -----------------------------------------------------------------------------------------------
    def _state(self, name: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    def _set_state(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO state (name, value) VALUES (?, ?)", (name, value))

    @property
    def generation(self) -> int:
        return int(self._state("generation", "0"))

    def rescored_at(self) -> int:
        """How many distinct texts the index held when every pair was last rescored."""
        return int(self._state("rescored_at", "0"))

    def set_rescored_at(self, texts: int) -> None:
        self._set_state("rescored_at", str(texts))

    @property
    def next_cluster_number(self) -> int:
        return int(self._state("next_cluster_number", "1"))

    # ---- snapshots ---------------------------------------------------------------------------------------------
    def _generation_dir(self, generation: int) -> Path:
        return self.path / f"gen-{generation:06d}"

    def load_snapshot(self, *, lsh_threshold: float, num_perm: int) -> Snapshot:
        dimension = int(self.manifest["dimension"])
        for _ in range(5):  # a writer may replace the generation between our two reads; try again then
            generation = self.generation
            checksums = json.loads(self._state("checksums", "{}"))
            if generation == 0:
                return Snapshot(0, VectorIndex(dimension), VectorIndex(dimension),
                                LSHIndex(threshold=lsh_threshold, num_perm=num_perm))
            folder = self._generation_dir(generation)
            try:
                blobs = {name: (folder / name).read_bytes() for name in FILES}
            except FileNotFoundError:
                if self.generation != generation:
                    continue
                raise IndexFolderError(
                    f"{folder} is missing files of the current generation: rebuild the index") from None
            for name, data in blobs.items():
                if hashlib.sha256(data).hexdigest() != checksums.get(name):
                    raise IndexFolderError(f"{folder / name} is corrupt (checksum mismatch): rebuild the index")
            try:
                return Snapshot(generation, VectorIndex.from_bytes(blobs["sentences.faiss"], dimension),
                                VectorIndex.from_bytes(blobs["documents.faiss"], dimension),
                                LSHIndex.from_bytes(blobs["lsh.pickle"], threshold=lsh_threshold, num_perm=num_perm))
            except (RuntimeError, ValueError) as exc:
                raise IndexFolderError(f"{folder} could not be read ({exc}): rebuild the index") from None
        raise IndexFolderError(f"{self.path} kept changing while being read; try again")

    # ---- writing -------------------------------------------------------------------------------------------------
    @contextmanager
    def writing(self, *, timeout: float = 60.0) -> Iterator[None]:
        """Hold the write lock and one SQLite transaction; commit() inside makes changes durable."""
        try:
            self._lock.acquire(timeout=timeout)
        except Timeout:
            raise IndexLockedError(
                f"{self.path} is being written by another process (lock {self.path / LOCK} held for more than "
                f"{timeout:g}s); wait for it to finish or raise --lock-timeout"
            ) from None
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._writing = True
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._writing = False
        finally:
            self._lock.release()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One read transaction: every query inside sees the same committed state (a no-op inside writing())."""
        if self._writing or self._db.in_transaction:  # already inside one: nested reads share it
            yield
            return
        self._db.execute("BEGIN")
        try:
            self._db.execute("SELECT value FROM state LIMIT 1").fetchall()  # take the read snapshot now
            yield
        finally:
            self._db.execute("COMMIT")

    def commit(self, snapshot: Snapshot) -> None:
        """Write the snapshot as a new generation and commit everything done in this transaction."""
        if not self._writing:
            raise RuntimeError("commit() outside store.writing()")
        generation = self.generation + 1
        folder = self._generation_dir(generation)
        if folder.exists():
            shutil.rmtree(folder)  # left by a writer that crashed before committing
        staging = self.path / f".staging-{generation:06d}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        blobs = {"sentences.faiss": snapshot.sentences.to_bytes(), "documents.faiss": snapshot.documents.to_bytes(),
                 "lsh.pickle": snapshot.lsh.to_bytes()}
        for name, data in blobs.items():
            _write_atomic(staging / name, data)
        os.replace(staging, folder)
        _fsync_dir(self.path)
        self._set_state("generation", str(generation))
        self._set_state("checksums", json.dumps({n: hashlib.sha256(d).hexdigest() for n, d in blobs.items()}))
        self._set_state("updated", now())
        self._db.execute("COMMIT")
        snapshot.generation = generation
        self._db.execute("BEGIN IMMEDIATE")
        self._remove_stale_generations(keep=generation)

    def _remove_stale_generations(self, keep: int) -> None:
        for entry in self.path.iterdir():
            if entry.name.startswith((".staging-", "gen-")) and entry.name != f"gen-{keep:06d}":
                shutil.rmtree(entry, ignore_errors=True)

    # ---- documents -------------------------------------------------------------------------------------------
    _DOC_COLUMNS = "key, id, seq, content_hash, text, metadata, published, signature"

    @staticmethod
    def _document(row: tuple) -> StoredDocument:
        return StoredDocument(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7])

    def document(self, doc_id: str) -> StoredDocument | None:
        row = self._db.execute(f"SELECT {self._DOC_COLUMNS} FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return self._document(row) if row else None

    def _rows_in(self, query: str, values: list) -> Iterator[tuple]:
        """Rows of `query`, whose `IN ({marks})` takes `values`, 500 at a time (SQLite's limit on parameters)."""
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            yield from self._db.execute(query.format(marks=",".join("?" * len(chunk))), chunk)

    def documents_by_key(self, keys: list[int]) -> dict[int, StoredDocument]:
        return {row[0]: self._document(row) for row in
                self._rows_in(f"SELECT {self._DOC_COLUMNS} FROM documents WHERE key IN ({{marks}})", keys)}

    _SUMMARY_COLUMNS = "d.key, d.id, d.seq, d.published, length(d.text)"

    def summaries_by_key(self, keys: list[int]) -> dict[int, Summary]:
        """The given documents without their texts (for ids and dates on hot paths)."""
        return {row[0]: Summary(*row) for row in
                self._rows_in(f"SELECT {self._SUMMARY_COLUMNS} FROM documents d WHERE d.key IN ({{marks}})", keys)}

    def summaries(self) -> list[Summary]:
        """Every document without its text, in indexing order."""
        return [Summary(*row) for row in
                self._db.execute(f"SELECT {self._SUMMARY_COLUMNS} FROM documents d ORDER BY d.seq")]

    def members(self, cluster_ids: list[str]) -> dict[str, list[Summary]]:
        """Cluster id -> its documents without their texts, in indexing order."""
        found: dict[str, list[Summary]] = {}
        rows = self._rows_in(f"SELECT c.cluster, {self._SUMMARY_COLUMNS} FROM documents d JOIN clusters c "
                             "ON c.doc_key = d.key WHERE c.cluster IN ({marks}) ORDER BY d.seq", cluster_ids)
        for cluster, *summary in rows:
            found.setdefault(cluster, []).append(Summary(*summary))
        return found

    def signature(self, key: int) -> bytes:
        return self._db.execute("SELECT signature FROM documents WHERE key = ?", (key,)).fetchone()[0]

    def document_by_hash(self, digest: str) -> StoredDocument | None:
        row = self._db.execute(f"SELECT {self._DOC_COLUMNS} FROM documents WHERE content_hash = ? ORDER BY seq LIMIT 1",
                               (digest,)).fetchone()
        return self._document(row) if row else None

    def count_documents(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def add_document(self, *, doc_id: str, content_hash: str, text: str, metadata: dict[str, Any],
                     published: str | None, signature: bytes, terms: dict[str, Any], seq: int | None = None) -> int:
        """Insert a document; `terms` is {"counts": {term: n}, "spelling": {term: first spelling}}."""
        if seq is None:
            seq = int(self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM documents").fetchone()[0])
        if self.document_by_hash(content_hash) is None:
            self._db.executemany(
                "INSERT INTO term_df (term, df) VALUES (?, 1) ON CONFLICT(term) DO UPDATE SET df = df + 1",
                [(t,) for t in terms["counts"]])
        cursor = self._db.execute(
            "INSERT INTO documents (id, seq, content_hash, text, metadata, published, signature, terms, indexed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc_id, seq, content_hash, text, json.dumps(metadata, ensure_ascii=False), published, signature,
             json.dumps(terms, ensure_ascii=False), now()))
        return int(cursor.lastrowid)

    def terms(self, key: int) -> dict[str, Any]:
        row = self._db.execute("SELECT terms FROM documents WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else {"counts": {}, "spelling": {}}

    def term_df(self) -> tuple[int, dict[str, int]]:
        """(distinct texts, term -> how many of them hold it)."""
        texts = int(self._db.execute("SELECT COUNT(DISTINCT content_hash) FROM documents").fetchone()[0])
        return texts, {t: df for t, df in self._db.execute("SELECT term, df FROM term_df")}

    def update_metadata(self, key: int, metadata: dict[str, Any], published: str | None) -> None:
        self._db.execute("UPDATE documents SET metadata = ?, published = ? WHERE key = ?",
                         (json.dumps(metadata, ensure_ascii=False), published, key))

    def delete_document(self, key: int) -> list[int]:
        """Delete a document with its sentences and pairs; returns the removed sentence keys."""
        row = self._db.execute("SELECT content_hash, terms FROM documents WHERE key = ?", (key,)).fetchone()
        if row is not None:
            others = self._db.execute("SELECT COUNT(*) FROM documents WHERE content_hash = ? AND key != ?",
                                      (row[0], key)).fetchone()[0]
            if not others:
                terms = list(json.loads(row[1]).get("counts", {}))
                self._db.executemany("UPDATE term_df SET df = df - 1 WHERE term = ?", [(t,) for t in terms])
                self._db.execute("DELETE FROM term_df WHERE df <= 0")
        sentence_keys = self.sentence_keys(key)
        self._db.execute("DELETE FROM sentences WHERE doc_key = ?", (key,))
        self._db.execute("DELETE FROM pairs WHERE a_key = ? OR b_key = ?", (key, key))
        self._db.execute("DELETE FROM clusters WHERE doc_key = ?", (key,))
        self._db.execute("DELETE FROM decisions WHERE doc_key = ?", (key,))
        # lineage of later documents still names it, but no longer points at a document that is gone
        self._db.execute("UPDATE decisions SET matched_key = NULL WHERE matched_key = ?", (key,))
        self._db.execute("DELETE FROM documents WHERE key = ?", (key,))
        return sentence_keys

    # ---- sentences -------------------------------------------------------------------------------------------
    def add_sentences(self, doc_key: int, texts: list[str]) -> list[int]:
        keys = []
        for position, text in enumerate(texts):
            cursor = self._db.execute("INSERT INTO sentences (doc_key, position, text) VALUES (?, ?, ?)",
                                      (doc_key, position, text))
            keys.append(int(cursor.lastrowid))
        return keys

    def sentence_keys(self, doc_key: int) -> list[int]:
        rows = self._db.execute("SELECT key FROM sentences WHERE doc_key = ? ORDER BY position", (doc_key,))
        return [r[0] for r in rows]

    def sentence_rows(self, doc_key: int) -> tuple[list[int], list[str]]:
        """(sentence keys, sentence texts) of a document, in order."""
        rows = self._db.execute("SELECT key, text FROM sentences WHERE doc_key = ? ORDER BY position", (doc_key,))
        pairs = rows.fetchall()
        return [r[0] for r in pairs], [r[1] for r in pairs]

    def count_sentences(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM sentences").fetchone()[0])

    # ---- pairs -------------------------------------------------------------------------------------------------
    def put_pairs(self, pairs: list[StoredPair]) -> None:
        for pair in pairs:
            self.put_pair(pair)

    def put_pair(self, pair: StoredPair) -> None:
        a, b = sorted((pair.a_key, pair.b_key))
        self._db.execute(
            "INSERT OR REPLACE INTO pairs (a_key, b_key, sources, features, probability, relation) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (a, b, ",".join(sorted(pair.sources)), json.dumps(pair.features), pair.probability, pair.relation))

    @staticmethod
    def _pair(row: tuple) -> StoredPair:
        return StoredPair(row[0], row[1], row[2].split(","), json.loads(row[3]), row[4], row[5])

    def pair(self, a_key: int, b_key: int) -> StoredPair | None:
        a, b = sorted((a_key, b_key))
        row = self._db.execute("SELECT a_key, b_key, sources, features, probability, relation FROM pairs "
                               "WHERE a_key = ? AND b_key = ?", (a, b)).fetchone()
        return self._pair(row) if row else None

    def all_pairs(self) -> list[StoredPair]:
        rows = self._db.execute("SELECT a_key, b_key, sources, features, probability, relation FROM pairs")
        return [self._pair(r) for r in rows]

    def count_pairs(self) -> tuple[int, int]:
        """(candidate pairs, confirmed pairs)."""
        total, confirmed = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(relation != 'different'), 0) FROM pairs").fetchone()
        return int(total), int(confirmed)

    # ---- decisions ---------------------------------------------------------------------------------------------
    def put_decision(self, doc_key: int, matched_key: int | None, matched_id: str | None, relation: str | None,
                     score: float | None) -> None:
        self._db.execute("INSERT OR REPLACE INTO decisions (doc_key, matched_key, matched_id, relation, score, "
                         "decided_at) VALUES (?, ?, ?, ?, ?, ?)",
                         (doc_key, matched_key, matched_id, relation, score, now()))

    def decision(self, doc_key: int) -> StoredDecision | None:
        row = self._db.execute("SELECT doc_key, matched_key, matched_id, relation, score FROM decisions "
                               "WHERE doc_key = ?", (doc_key,)).fetchone()
        return StoredDecision(*row) if row else None

    def pairs_of(self, doc_key: int) -> list[StoredPair]:
        rows = self._db.execute("SELECT a_key, b_key, sources, features, probability, relation FROM pairs "
                                "WHERE a_key = ? OR b_key = ?", (doc_key, doc_key))
        return [self._pair(r) for r in rows]

    # ---- clusters ------------------------------------------------------------------------------------------
    def cluster_of(self, doc_key: int) -> str | None:
        row = self._db.execute("SELECT cluster FROM clusters WHERE doc_key = ?", (doc_key,)).fetchone()
        return row[0] if row else None

    def cluster_map(self) -> dict[int, str]:
        return {k: c for k, c in self._db.execute("SELECT doc_key, cluster FROM clusters")}

    def set_clusters(self, cluster_of: dict[int, str], merges: list[tuple[str, str]], next_number: int) -> None:
        self._db.execute("DELETE FROM clusters")
        self._db.executemany("INSERT INTO clusters (doc_key, cluster) VALUES (?, ?)", sorted(cluster_of.items()))
        stamp = now()
        self._db.executemany("INSERT INTO merges (absorbed, into_cluster, at) VALUES (?, ?, ?)",
                             [(a, b, stamp) for a, b in merges])
        self._set_state("next_cluster_number", str(next_number))

    def merges(self) -> list[tuple[str, str, str]]:
        return list(self._db.execute("SELECT absorbed, into_cluster, at FROM merges ORDER BY rowid"))

    def updated(self) -> str | None:
        return self._state("updated", "") or None

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
