"""The index folder: manifest, SQLite database, checkpoint files, the write lock and atomic commits.

Layout of an index folder:

    manifest.json        format version, model, dimension, settings (written once, atomically)
    meta.sqlite          documents (text, sentences, sentence and document vectors, MinHash signature, terms),
                         pairs, clusters, merges, decisions, and the current generation
    ckpt-NNNNNN/         documents.faiss, lsh.npz, hash_values.npz: the in-memory search indexes as of generation
                         NNNNNN
    write.lock           held by the one writer

The database is the one source of truth, and a commit is one SQLite transaction, so its cost grows with the batch,
not with the index. The FAISS and LSH indexes live in memory; a checkpoint saves them so that opening a large index
does not rebuild them from the database. Opening loads the newest checkpoint and then adds the documents committed
after it and drops the ones removed since (both read from the database); a checkpoint is written when the index has
grown by a quarter since the last one. A crash at any moment leaves the last committed transaction; a checkpoint
that is missing, half-written or fails its SHA-256 check is ignored (with a warning) and the indexes are rebuilt
from the database. Nothing outside this module opens SQLite, FAISS or LSH files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Collection
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from filelock import FileLock, Timeout

from .errors import IncompatibleIndexError, IndexExistsError, IndexFolderError, IndexLockedError
from .minhash import HashTable, LSHIndex, hash_values_from_bytes, signature_from_bytes
from .records import SCHEMA, StoredDecision, StoredDocument, StoredPair, Summary, now
from .vectors import VectorIndex, vector_from_bytes

log = logging.getLogger("detector")

#: the format new indexes are written in. 4: document vectors may lose common components besides the common
#: direction (Settings.common_components); a version 3 index has none and reads the same. Code that reads only 3
#: refuses a 4, instead of comparing its vectors without the components it was built with. 5: the texts that hold
#: each sentence are kept (Settings.shared_sentences); a 3 or 4 has no such lists and reads the same, with that
#: candidate source off. Code that reads only up to 4 refuses a 5, instead of writing to it without keeping them.
#: 6: sentences many texts hold are set aside as boilerplate when texts are compared (Settings.boilerplate); a 5
#: and older compares whole texts and reads the same. Code that reads only up to 5 refuses a 6, instead of adding
#: pairs compared with the boilerplate beside pairs compared without.
FORMAT_VERSION = 6
READ_VERSIONS = (3, 4, 5, 6)
MANIFEST = "manifest.json"
DATABASE = "meta.sqlite"
LOCK = "write.lock"
FILES = ("documents.faiss", "lsh.npz")
#: the MinHash hash values of a checkpoint's documents (LSHIndex's proposals are checked against them). Optional:
#: a checkpoint written before it existed has none, and they are read from the database instead.
HASH_VALUES = "hash_values.npz"
#: a checkpoint is written once the index holds this many documents, and again whenever it has grown by
#: CHECKPOINT_GROWTH since the last one; below, opening rebuilds the indexes from the database (a second or less).
CHECKPOINT_MIN_DOCUMENTS = 5_000
CHECKPOINT_GROWTH = 1.25
#: a graph vector index (vectors.HNSW_FROM) costs ~0.2 ms a document to add, so a process opening it should not
#: replay a quarter of it: it is checkpointed whenever this many documents were added since the last checkpoint,
#: and as soon as the vector index changes kind (flat to graph or back).
CHECKPOINT_GRAPH_EVERY = 10_000


@dataclass
class Snapshot:
    """The document-vector and LSH indexes of one generation, in memory, with the MinHash hash values of every
    document (512 bytes each at 128 permutations: the LSH's proposals are checked against them, thousands a
    document in a large index, so they are all held, not read per proposal); `keys`: the documents they hold."""

    generation: int
    documents: VectorIndex
    lsh: LSHIndex
    keys: set[int]
    hashes: HashTable

    def add(self, key: int, vector, signature) -> None:
        self.add_many([key], vector[None, :], [signature])

    def add_many(self, keys: list[int], vectors: np.ndarray, signatures: list) -> None:
        self.documents.add(keys, vectors)
        for key, signature in zip(keys, signatures):
            self.lsh.add(key, signature)
        if keys:
            self.hashes.put_many(np.array(keys, dtype=np.int64), np.vstack([s.hashvalues for s in signatures]))
        self.keys.update(keys)

    def remove(self, key: int) -> None:
        self.remove_many([key])

    def remove_many(self, keys: list[int]) -> None:
        self.documents.remove(keys)
        for key in keys:
            self.lsh.remove(key)
            self.hashes.drop(key)
            self.keys.discard(key)


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
        #: term_df()'s answer kept in memory and kept up to date by this store's own writes: (the generation it
        #: was read at, distinct texts, term -> df). Reading it from the database costs a scan of every document
        #: and every term, and indexing asks for it once a batch. Another process's commit changes the
        #: generation (the copy is then read again); a rollback drops it.
        self._df: tuple[int, int, dict[str, int]] | None = None
        #: whether term_df keeps the holders of rare terms (an index made before it did has no such column)
        self.keeps_holders = any(row[1] == "holders" for row in self._db.execute("PRAGMA table_info(term_df)"))

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
        if version not in READ_VERSIONS:
            readable = f"{', '.join(map(str, READ_VERSIONS[:-1]))} and {READ_VERSIONS[-1]}"
            raise IncompatibleIndexError(
                f"{path} was written in index format version {version}; this detector reads versions {readable}. "
                "Rebuild it: `detector index --index NEW_DIR PATH...` from the original documents.")
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
    def load_snapshot(self, *, lsh_threshold: float, num_perm: int) -> Snapshot:
        """The search indexes as of the current generation: the newest checkpoint brought up to date from the
        database, or, without a usable checkpoint, rebuilt from the database. Call inside reading() or writing()
        so that the database does not move meanwhile."""
        snapshot = self._load_checkpoint(lsh_threshold=lsh_threshold, num_perm=num_perm)
        if snapshot is None:
            snapshot = Snapshot(-1, VectorIndex(int(self.manifest["dimension"])),
                                LSHIndex(threshold=lsh_threshold, num_perm=num_perm), set(), HashTable(num_perm))
        self.sync_snapshot(snapshot)
        return snapshot

    def _load_checkpoint(self, *, lsh_threshold: float, num_perm: int) -> Snapshot | None:
        name = self._state("checkpoint", "")
        if not name:
            return None
        folder = self.path / name
        checksums = json.loads(self._state("checksums", "{}"))
        try:
            blobs = {file: (folder / file).read_bytes() for file in FILES}
        except OSError as exc:
            # a writer may have replaced the whole checkpoint since our read transaction began: that is routine; a
            # file gone from a checkpoint still there is damage
            report = log.warning if folder.is_dir() else log.info
            report("checkpoint %s not read (%s); rebuilding the search indexes from the database", folder, exc)
            return None
        for file, data in blobs.items():
            if hashlib.sha256(data).hexdigest() != checksums.get(file):
                log.warning("%s is corrupt (checksum mismatch); rebuilding the search indexes from the database",
                            folder / file)
                return None
        try:
            documents = VectorIndex.from_bytes(blobs["documents.faiss"], int(self.manifest["dimension"]))
            lsh = LSHIndex.from_bytes(blobs["lsh.npz"], threshold=lsh_threshold, num_perm=num_perm)
        except (RuntimeError, ValueError) as exc:
            log.warning("%s could not be read (%s); rebuilding the search indexes from the database", folder, exc)
            return None
        keys = set(documents.ids())
        return Snapshot(-1, documents, lsh, keys, self._checkpoint_hashes(folder, checksums, keys, num_perm))

    def _checkpoint_hashes(self, folder: Path, checksums: dict, keys: set[int], num_perm: int) -> HashTable:
        """The checkpoint's hash values; read from the database where it has none (written before they were kept)
        or they do not match the checkpoint's documents (a corrupt file, say)."""
        try:
            data = (folder / HASH_VALUES).read_bytes()
            if hashlib.sha256(data).hexdigest() != checksums.get(HASH_VALUES):
                raise ValueError("checksum mismatch")
            hashes = HashTable.from_bytes(data, num_perm=num_perm)
            if set(hashes.keys().tolist()) != keys:
                raise ValueError("other documents than the checkpoint's")
            return hashes
        except (OSError, ValueError) as exc:
            log.warning("%s not used (%s); reading the hash values from the database (the next checkpoint saves "
                        "them)", folder / HASH_VALUES, exc)
        hashes = HashTable(num_perm)
        rows = list(self._rows_in("SELECT key, signature FROM documents WHERE key IN ({marks})", sorted(keys)))
        if rows:
            hashes.put_many(np.array([r[0] for r in rows], dtype=np.int64),
                            np.vstack([hash_values_from_bytes(r[1]) for r in rows]))
        return hashes

    def sync_snapshot(self, snapshot: Snapshot) -> None:
        """Bring `snapshot` to the current generation: add the documents committed since, drop the removed ones."""
        generation = self.generation
        if snapshot.generation == generation:
            return
        current = {key for (key,) in self._db.execute("SELECT key FROM documents")}
        snapshot.remove_many(sorted(snapshot.keys - current))
        missing = sorted(current - snapshot.keys)
        rows = list(self._rows_in("SELECT key, vector, signature FROM documents WHERE key IN ({marks})", missing))
        if rows:
            snapshot.add_many([r[0] for r in rows], np.vstack([vector_from_bytes(r[1]) for r in rows]),
                              [signature_from_bytes(r[2]) for r in rows])
        snapshot.generation = generation

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
            if self._df is not None and self._df[0] != self.generation:
                self._df = None  # another process committed since it was read: this transaction reads it again
            self._writing = True
            try:
                yield
            except BaseException:
                self._df = None  # it may hold the rolled-back changes
                if self._db.in_transaction:  # SQLite may have rolled back already (an interrupt, an I/O error)
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
        """Commit everything done in this transaction as the next generation (and write a checkpoint if due)."""
        if not self._writing:
            raise RuntimeError("commit() outside store.writing()")
        generation = self.generation + 1
        self._set_state("generation", str(generation))
        self._set_state("updated", now())
        checkpoint = None
        if self._checkpoint_due(snapshot):
            checkpoint = self._write_checkpoint(snapshot, f"ckpt-{generation:06d}")
        self._db.execute("COMMIT")
        snapshot.generation = generation
        if self._df is not None:  # it holds this transaction's changes: now those of `generation`
            self._df = (generation, *self._df[1:])
        self._db.execute("BEGIN IMMEDIATE")
        if checkpoint is not None:
            self._remove_stale_checkpoints(keep=checkpoint)

    def _checkpoint_due(self, snapshot: Snapshot) -> bool:
        if self._state("checkpoint", "") and HASH_VALUES not in json.loads(self._state("checksums", "{}")):
            return True  # written before hash values were kept: every open reads them from the database until then
        size, last = len(snapshot.keys), int(self._state("checkpoint_documents", "0"))
        kind = snapshot.documents.kind
        if kind != self._state("checkpoint_kind", "flat"):
            return True
        if kind == "hnsw" and self._added_since_checkpoint() >= CHECKPOINT_GRAPH_EVERY:
            return True
        return size >= max(CHECKPOINT_MIN_DOCUMENTS, CHECKPOINT_GROWTH * last)

    def _newest_key(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(key), 0) FROM documents").fetchone()[0])

    def _added_since_checkpoint(self) -> int:
        """Documents added since the checkpoint (keys only grow, and a replaced text gets a new key)."""
        return self._newest_key() - int(self._state("checkpoint_newest_key", "0"))

    def _write_checkpoint(self, snapshot: Snapshot, name: str) -> str:
        """Write the snapshot's indexes into a new checkpoint folder and name it in this transaction."""
        folder = self.path / name
        shutil.rmtree(folder, ignore_errors=True)  # left by a writer that crashed before committing
        staging = self.path / f".staging-{name}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        blobs = {"documents.faiss": snapshot.documents.to_bytes(), "lsh.npz": snapshot.lsh.to_bytes(),
                 HASH_VALUES: snapshot.hashes.to_bytes()}
        for file, data in blobs.items():
            _write_atomic(staging / file, data)
        os.replace(staging, folder)
        _fsync_dir(self.path)
        self._set_state("checkpoint", name)
        self._set_state("checksums", json.dumps({f: hashlib.sha256(d).hexdigest() for f, d in blobs.items()}))
        self._set_state("checkpoint_documents", str(len(snapshot.keys)))
        self._set_state("checkpoint_kind", snapshot.documents.kind)
        self._set_state("checkpoint_newest_key", str(self._newest_key()))
        return name

    def _remove_stale_checkpoints(self, keep: str) -> None:
        for entry in self.path.iterdir():
            if entry.name.startswith((".staging-", ".stale-", "ckpt-")) and entry.name != keep:
                if entry.name.startswith("ckpt-"):
                    # renamed first, so that a reader sees the whole checkpoint go at once, never some of its files
                    # missing (which _load_checkpoint takes for damage)
                    stale = entry.with_name(f".stale-{entry.name}-{os.getpid()}")
                    try:
                        entry.rename(stale)
                        entry = stale
                    except OSError:
                        pass
                shutil.rmtree(entry, ignore_errors=True)

    # ---- documents -------------------------------------------------------------------------------------------
    _DOC_COLUMNS = "key, id, seq, content_hash, text, metadata, published, signature"

    @staticmethod
    def _document(row: tuple) -> StoredDocument:
        return StoredDocument(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7])

    def document(self, doc_id: str) -> StoredDocument | None:
        row = self._db.execute(f"SELECT {self._DOC_COLUMNS} FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return self._document(row) if row else None

    def _rows_in(self, query: str, values: list, before: tuple = ()) -> Iterator[tuple]:
        """Rows of `query`, whose `IN ({marks})` takes `values`, 500 at a time (SQLite's limit on parameters);
        `before`: the parameters of the placeholders that come before the IN list."""
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            yield from self._db.execute(query.format(marks=",".join("?" * len(chunk))), (*before, *chunk))

    def documents_by_key(self, keys: list[int]) -> dict[int, StoredDocument]:
        return {row[0]: self._document(row) for row in
                self._rows_in(f"SELECT {self._DOC_COLUMNS} FROM documents WHERE key IN ({{marks}})", keys)}

    _SUMMARY_COLUMNS = "d.key, d.id, d.seq, d.published, length(d.text)"

    def summaries_by_key(self, keys: list[int]) -> dict[int, Summary]:
        """The given documents without their texts (for ids and dates on hot paths)."""
        return {row[0]: Summary(*row) for row in
                self._rows_in(f"SELECT {self._SUMMARY_COLUMNS} FROM documents d WHERE d.key IN ({{marks}})", keys)}

    def keys(self) -> list[int]:
        """Every document's key, in indexing order (summaries() reads each text for its length; this reads none)."""
        return [key for (key,) in self._db.execute("SELECT key FROM documents ORDER BY seq")]

    def published_dates(self, keys: list[int] | None = None) -> dict[int, str | None]:
        """key -> published date (None where it has none), for every document or those of `keys`, without reading
        their texts."""
        if keys is None:
            return dict(self._db.execute("SELECT key, published FROM documents"))
        return dict(self._rows_in("SELECT key, published FROM documents WHERE key IN ({marks})", keys))

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

    def sentence_counts(self, keys: list[int]) -> dict[int, int]:
        """key -> how many sentences the document has."""
        return dict(self._rows_in("SELECT key, n_sentences FROM documents WHERE key IN ({marks})", keys))

    def sentences(self, key: int) -> list[str]:
        row = self._db.execute("SELECT sentences FROM documents WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else []

    def view_row(self, key: int) -> tuple[list[str], bytes, bytes, dict[str, Any]]:
        """What comparing a document needs: (sentences, their vectors, MinHash signature, terms)."""
        row = self._db.execute("SELECT sentences, sentence_vectors, signature, terms FROM documents WHERE key = ?",
                               (key,)).fetchone()
        return json.loads(row[0]), row[1], row[2], json.loads(row[3])

    def content_hashes(self, ids: list[str]) -> dict[str, str]:
        """id -> content hash of those of `ids` that are indexed."""
        return dict(self._rows_in("SELECT id, content_hash FROM documents WHERE id IN ({marks})", ids))

    def indexed_hashes(self, digests: list[str]) -> set[str]:
        """Those of the content hashes `digests` that some indexed document has."""
        return {row[0] for row in self._rows_in("SELECT DISTINCT content_hash FROM documents WHERE content_hash IN "
                                                "({marks})", digests)}

    def document_by_hash(self, digest: str) -> StoredDocument | None:
        row = self._db.execute(f"SELECT {self._DOC_COLUMNS} FROM documents WHERE content_hash = ? ORDER BY seq LIMIT 1",
                               (digest,)).fetchone()
        return self._document(row) if row else None

    def count_documents(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def add_document(self, *, doc_id: str, content_hash: str, text: str, metadata: dict[str, Any],
                     published: str | None, signature: bytes, terms: dict[str, Any], sentences: list[str],
                     sentence_vectors: bytes, vector: bytes, seq: int | None = None,
                     new_text: bool | None = None, rare_term_texts: int = 0,
                     held_terms: Collection[str] = (), held_sentences: Collection[int] = ()) -> int:
        """Insert a document; `terms` is {"counts": {term: n}, "spelling": {term: first spelling}}; the vectors
        as vectors.py writes them. `new_text`: whether no indexed document has this text yet (None: look it up).
        `held_terms`: those of its terms whose holders are kept while at most `rare_term_texts` texts hold them (see
        holders()); the same term must always be given or never. `held_sentences`: the hashes of its sentences
        (evidence.sentence_hashes), kept likewise (sentence_holders())."""
        if seq is None:
            seq = int(self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM documents").fetchone()[0])
        if new_text is None:
            new_text = self.document_by_hash(content_hash) is None
        cursor = self._db.execute(
            "INSERT INTO documents (id, seq, content_hash, text, metadata, published, signature, terms, sentences, "
            "n_sentences, sentence_vectors, vector, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc_id, seq, content_hash, text, json.dumps(metadata, ensure_ascii=False), published, signature,
             json.dumps(terms, ensure_ascii=False), json.dumps(sentences, ensure_ascii=False), len(sentences),
             sentence_vectors, vector, now()))
        key = int(cursor.lastrowid)
        if new_text:
            held = set(held_terms) if rare_term_texts and self.keeps_holders else set()
            self._db.executemany(
                "INSERT INTO term_df (term, df) VALUES (?, 1) ON CONFLICT(term) DO UPDATE SET df = df + 1",
                [(t,) for t in terms["counts"] if t not in held])
            if held:  # the SET expressions read the row as it was
                self._db.executemany(
                    "INSERT INTO term_df (term, df, holders) VALUES (?, 1, ?) ON CONFLICT(term) DO UPDATE SET "
                    "df = df + 1, holders = CASE WHEN holders IS NULL OR df >= ? THEN NULL "
                    "ELSE holders || ' ' || ? END",
                    [(t, str(key), rare_term_texts, str(key)) for t in terms["counts"] if t in held])
            if held_sentences and rare_term_texts:
                holder = f"{key}:{len(held_sentences)}"  # with how many it holds, which the candidate rule needs
                self._db.executemany(
                    "INSERT INTO sentence_holders (hash, texts, holders) VALUES (?, 1, ?) ON CONFLICT(hash) DO "
                    "UPDATE SET texts = texts + 1, holders = CASE WHEN holders IS NULL OR texts >= ? THEN NULL "
                    "ELSE holders || ' ' || ? END",
                    [(h, holder, rare_term_texts, holder) for h in held_sentences])
            if self._df is not None:
                generation, texts, df = self._df
                for t in terms["counts"]:
                    df[t] = df.get(t, 0) + 1
                self._df = (generation, texts + 1, df)
        return key

    def holders(self, terms: list[str]) -> dict[str, list[int]]:
        """term -> the documents holding it (every copy of each text, in key order), for those of `terms` that are
        still rare (held by at most the rare_term_texts add_document was given, ever). The table keeps one key a
        text; its copies are found by content hash, so none is left out whichever copy came first, and a key the
        table names but the index no longer holds (an earlier version's removal does not update the table) is
        left out."""
        if not self.keeps_holders:
            return {}
        return self._with_copies(self._held(terms))

    def sentence_holders(self, hashes: list[int]) -> dict[int, list[tuple[int, int]]]:
        """sentence hash -> (key, how many sentence hashes it has) of the texts holding it, one document of each
        text (copies_of() gives the others), for those of `hashes` still held by at most the rare_term_texts
        add_document was given, ever (since some text last held them)."""
        found = {}
        for h, holders in self._rows_in("SELECT hash, holders FROM sentence_holders WHERE holders IS NOT NULL AND "
                                        "hash IN ({marks})", hashes):
            found[h] = [(int(key), int(n)) for key, _, n in (holder.partition(":") for holder in holders.split())]
        return found

    def common_sentences(self, hashes: list[int], more_than: int) -> set[int]:
        """Those of `hashes` (evidence.sentence_hash) that more than `more_than` distinct texts hold."""
        return {h for (h,) in self._rows_in("SELECT hash FROM sentence_holders WHERE texts > ? AND hash IN ({marks})",
                                            hashes, (more_than,))}

    def stale_texts(self) -> list[int]:
        """The documents whose pairs are still to be compared again (see Detector._compare_again), oldest first."""
        return [key for (key,) in self._db.execute("SELECT doc_key FROM stale_texts ORDER BY seq")]

    def set_stale_texts(self, keys: list[int]) -> None:
        """Make `keys`, in this order, the documents whose pairs are still to be compared again."""
        self._db.execute("DELETE FROM stale_texts")
        self._db.executemany("INSERT INTO stale_texts (doc_key) VALUES (?)", [(key,) for key in keys])

    def copies_of(self, keys: list[int]) -> dict[int, list[int]]:
        """key -> every document with its text (the same content hash; itself included), in key order, for the
        `keys` still indexed."""
        copies: dict[int, list[int]] = {}
        for key, copy in self._rows_in("SELECT h.key, d.key FROM documents h JOIN documents d "
                                       "ON d.content_hash = h.content_hash WHERE h.key IN ({marks}) ORDER BY d.key",
                                       keys):
            copies.setdefault(key, []).append(copy)
        return copies

    def _with_copies(self, held: dict) -> dict:
        """`held` (anything -> keys, one a text) with every copy of each text, in key order, keys no longer indexed
        left out, and entries left with none dropped."""
        copies = self.copies_of(sorted({k for keys in held.values() for k in keys}))
        found = {term: sorted(copy for k in keys for copy in copies.get(k, ())) for term, keys in held.items()}
        return {term: keys for term, keys in found.items() if keys}

    def _held(self, terms: list[str]) -> dict[str, list[int]]:
        """term -> the keys term_df.holders keeps for it (one a text), for those of `terms` that are still rare."""
        return {term: [int(k) for k in keys.split()] for term, keys in
                self._rows_in("SELECT term, holders FROM term_df WHERE holders IS NOT NULL AND term IN ({marks})",
                              terms)}

    def terms(self, key: int) -> dict[str, Any]:
        row = self._db.execute("SELECT terms FROM documents WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else {"counts": {}, "spelling": {}}

    def term_df(self) -> tuple[int, dict[str, int]]:
        """(distinct texts, term -> how many of them hold it); the dict is the caller's own (a copy: ~50 ms a
        million terms)."""
        with self.reading():  # the generation and the tables of one committed state
            generation = self.generation
            if self._df is None or self._df[0] != generation:
                texts = int(self._db.execute("SELECT COUNT(DISTINCT content_hash) FROM documents").fetchone()[0])
                self._df = (generation, texts, {t: df for t, df in self._db.execute("SELECT term, df FROM term_df")})
            return self._df[1], dict(self._df[2])

    def update_metadata(self, key: int, metadata: dict[str, Any], published: str | None) -> None:
        self._db.execute("UPDATE documents SET metadata = ?, published = ? WHERE key = ?",
                         (json.dumps(metadata, ensure_ascii=False), published, key))

    def delete_document(self, key: int, held_sentences: Collection[int] = ()) -> None:
        """Delete a document with its pairs, cluster and decision. `held_sentences`: what add_document was given."""
        row = self._db.execute("SELECT content_hash, terms FROM documents WHERE key = ?", (key,)).fetchone()
        if row is not None:
            other = self._db.execute("SELECT MIN(key) FROM documents WHERE content_hash = ? AND key != ?",
                                     (row[0], key)).fetchone()[0]
            terms = list(json.loads(row[1]).get("counts", {}))
            if self.keeps_holders:  # the text is held by `other` now, or by none
                self._pass_on_holding(terms, key, other)
            if held_sentences:
                self._pass_on_sentences(list(held_sentences), key, other)
                if other is None:
                    rows = [(h,) for h in held_sentences]
                    self._db.executemany("UPDATE sentence_holders SET texts = texts - 1 WHERE hash = ?", rows)
                    self._db.executemany("DELETE FROM sentence_holders WHERE hash = ? AND texts <= 0", rows)
            if other is None:
                self._db.executemany("UPDATE term_df SET df = df - 1 WHERE term = ?", [(t,) for t in terms])
                self._db.executemany("DELETE FROM term_df WHERE term = ? AND df <= 0", [(t,) for t in terms])
                if self._df is not None:
                    generation, texts, df = self._df
                    for t in terms:
                        if df.get(t, 0) <= 1:
                            df.pop(t, None)
                        else:
                            df[t] -= 1
                    self._df = (generation, texts - 1, df)
        self._db.execute("DELETE FROM pairs WHERE a_key = ? OR b_key = ?", (key, key))
        self._db.execute("DELETE FROM clusters WHERE doc_key = ?", (key,))
        self._db.execute("DELETE FROM decisions WHERE doc_key = ?", (key,))
        self._db.execute("DELETE FROM stale_texts WHERE doc_key = ?", (key,))
        # lineage of later documents still names it, but no longer points at a document that is gone
        self._db.execute("UPDATE decisions SET matched_key = NULL WHERE matched_key = ?", (key,))
        self._db.execute("DELETE FROM documents WHERE key = ?", (key,))

    def _pass_on_holding(self, terms: list[str], key: int, heir: int | None) -> None:
        """Where `key` holds one of `terms` (term_df.holders), `heir` does instead; None: nobody."""
        changed = [(" ".join(str(heir if k == key else k) for k in keys if k != key or heir is not None), term)
                   for term, keys in self._held(terms).items() if key in keys]
        self._db.executemany("UPDATE term_df SET holders = ? WHERE term = ?", changed)

    def _pass_on_sentences(self, hashes: list[int], key: int, heir: int | None) -> None:
        """As _pass_on_holding, for sentence_holders (the heir, a copy, has the same sentences)."""
        changed = [(" ".join(f"{heir if k == key else k}:{n}" for k, n in holders if k != key or heir is not None),
                    h) for h, holders in self.sentence_holders(hashes).items() if any(k == key for k, _ in holders)]
        self._db.executemany("UPDATE sentence_holders SET holders = ? WHERE hash = ?", changed)

    def count_sentences(self) -> int:
        return int(self._db.execute("SELECT COALESCE(SUM(n_sentences), 0) FROM documents").fetchone()[0])

    # ---- pairs -------------------------------------------------------------------------------------------------
    def put_pairs(self, pairs: list[StoredPair]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO pairs (a_key, b_key, sources, features, probability, relation) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(*sorted((p.a_key, p.b_key)), ",".join(sorted(p.sources)), json.dumps(p.features), p.probability,
              p.relation) for p in pairs])

    @staticmethod
    def _pair(row: tuple) -> StoredPair:
        return StoredPair(row[0], row[1], row[2].split(","), json.loads(row[3]), row[4], row[5])

    def pair(self, a_key: int, b_key: int) -> StoredPair | None:
        a, b = sorted((a_key, b_key))
        row = self._db.execute("SELECT a_key, b_key, sources, features, probability, relation FROM pairs "
                               "WHERE a_key = ? AND b_key = ?", (a, b)).fetchone()
        return self._pair(row) if row else None

    def all_pairs(self) -> Iterator[StoredPair]:
        """Every pair, one at a time (an index can hold millions)."""
        rows = self._db.execute("SELECT a_key, b_key, sources, features, probability, relation FROM pairs")
        return (self._pair(r) for r in rows)

    def pair_scores(self) -> Iterator[tuple[int, int, float, str]]:
        """(a_key, b_key, probability, relation) of every pair, without their features."""
        yield from self._db.execute("SELECT a_key, b_key, probability, relation FROM pairs")

    def pair_scores_among(self, keys: list[int]) -> list[tuple[int, int, float, str]]:
        """pair_scores() of the pairs whose two documents are both among `keys`."""
        wanted = set(keys)
        return [row for row in self._rows_in("SELECT a_key, b_key, probability, relation FROM pairs "
                                             "WHERE a_key IN ({marks})", keys) if row[1] in wanted]

    def copy_pairs(self, minimum: float, keys: list[int] | None = None) -> list[tuple[int, int]]:
        """(a_key, b_key) of the pairs of copies: same normalised text, or a duplicate whose two texts each hold
        at least `minimum` of the other's distinct word 3-grams (the feature containment_longer; pairs scored before
        it was measured have none). With `keys`, only pairs of two of them."""
        query = ("SELECT a_key, b_key FROM pairs WHERE relation = 'duplicate' AND (instr(sources, 'exact') > 0 OR "
                 "json_extract(features, '$.containment_longer') >= ?)")
        if keys is None:
            return [(a, b) for a, b in self._db.execute(query, (minimum,))]
        wanted = set(keys)
        return [(a, b) for a, b in self._rows_in(query + " AND a_key IN ({marks})", keys, before=(minimum,))
                if b in wanted]

    def linked_component(self, keys: list[int], grouping: float, same_story: float, *,
                         limit: int | None = None) -> set[int] | None:
        """The documents reachable from `keys` through edges of the story graph: pairs of one story (any relation
        but different), and pairs ruled different whose probability is at least `grouping` but below `same_story`
        (a likely pair ruled different, by the time window, is no edge: see Scorer.link). None as soon as more than
        `limit` are found."""
        seen = set(keys)
        frontier = sorted(seen)
        while frontier:
            found = self.linked(frontier, grouping, same_story)
            frontier = sorted(found - seen)
            seen |= found
            if limit is not None and len(seen) > limit:
                return None
        return seen

    def linked(self, keys: list[int], grouping: float, same_story: float) -> set[int]:
        """The documents one story-graph edge away from `keys` (see linked_component)."""
        edge = "(relation != 'different' OR (probability >= ? AND probability < ?))"
        found: set[int] = set()
        for column, other in (("a_key", "b_key"), ("b_key", "a_key")):
            query = f"SELECT {other} FROM pairs WHERE {edge} AND {column} IN ({{marks}})"
            found.update(row[0] for row in self._rows_in(query, keys, (grouping, same_story)))
        return found

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

    def cluster_counts(self) -> tuple[int, int]:
        """(story clusters, those of more than one document), counted in the database (a document not yet in a
        cluster counts as one of its own)."""
        clusters, multi = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(n > 1), 0) FROM (SELECT COUNT(*) AS n FROM clusters GROUP BY cluster)"
        ).fetchone()
        loose = self._db.execute("SELECT COUNT(*) FROM documents WHERE key NOT IN (SELECT doc_key FROM clusters)"
                                 ).fetchone()[0]
        return int(clusters) + int(loose), int(multi)

    def cluster_keys(self, cluster_ids: list[str]) -> dict[str, list[int]]:
        """Cluster id -> the keys of its documents."""
        found: dict[str, list[int]] = {}
        for cluster, key in self._rows_in("SELECT cluster, doc_key FROM clusters WHERE cluster IN ({marks})",
                                          cluster_ids):
            found.setdefault(cluster, []).append(key)
        return found

    def clusters_of(self, keys: list[int]) -> dict[int, str]:
        return {k: c for k, c in self._rows_in("SELECT doc_key, cluster FROM clusters WHERE doc_key IN ({marks})",
                                                keys)}

    def update_clusters(self, cluster_of: dict[int, str], merges: list[tuple[str, str]], next_number: int) -> None:
        """Set the clusters of the given documents only (set_clusters replaces them all)."""
        self._db.executemany("INSERT OR REPLACE INTO clusters (doc_key, cluster) VALUES (?, ?)",
                             sorted(cluster_of.items()))
        self._record_merges(merges, next_number)

    def set_clusters(self, cluster_of: dict[int, str], merges: list[tuple[str, str]], next_number: int) -> None:
        self._db.execute("DELETE FROM clusters")
        self._db.executemany("INSERT INTO clusters (doc_key, cluster) VALUES (?, ?)", sorted(cluster_of.items()))
        self._record_merges(merges, next_number)

    def _record_merges(self, merges: list[tuple[str, str]], next_number: int) -> None:
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
