"""The rows of an index's SQLite database: its schema, and the dataclasses store.py returns for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    seq INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    published TEXT,
    signature BLOB NOT NULL,
    terms TEXT NOT NULL DEFAULT '{}',
    -- the sentences as a JSON list, their vectors (float16, one row each) and the document vector (float32)
    sentences TEXT NOT NULL,
    n_sentences INTEGER NOT NULL,
    sentence_vectors BLOB NOT NULL,
    vector BLOB NOT NULL,
    indexed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
-- the next arrival number is MAX(seq) + 1: without this index, a scan of every document per document added
CREATE INDEX IF NOT EXISTS documents_seq ON documents(seq);
CREATE TABLE IF NOT EXISTS pairs (
    a_key INTEGER NOT NULL,
    b_key INTEGER NOT NULL,
    sources TEXT NOT NULL,
    features TEXT NOT NULL,
    probability REAL NOT NULL,
    relation TEXT NOT NULL,
    PRIMARY KEY (a_key, b_key)
);
CREATE INDEX IF NOT EXISTS pairs_b ON pairs(b_key);
CREATE TABLE IF NOT EXISTS clusters (doc_key INTEGER PRIMARY KEY, cluster TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS clusters_cluster ON clusters(cluster);
CREATE TABLE IF NOT EXISTS merges (absorbed TEXT NOT NULL, into_cluster TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
-- the decision taken when a document arrived: the earlier document it is closest to, and how
CREATE TABLE IF NOT EXISTS decisions (
    doc_key INTEGER PRIMARY KEY,
    matched_key INTEGER,
    matched_id TEXT,
    relation TEXT,
    score REAL,
    decided_at TEXT NOT NULL
);
-- how many distinct texts (exact duplicates count once) hold each specific term, and, while that is at most the
-- index's rare_term_texts, which (the keys of one document of each text, space-separated; NULL once more have held
-- it). An index made before holders were kept has no such column.
CREATE TABLE IF NOT EXISTS term_df (term TEXT PRIMARY KEY, df INTEGER NOT NULL, holders TEXT);
-- for an index with shared_sentences: how many distinct texts hold each sentence (evidence.sentence_hashes), and,
-- while that is at most rare_term_texts, which (as term_df.holders; NULL once more have held it)
CREATE TABLE IF NOT EXISTS sentence_holders (hash INTEGER PRIMARY KEY, texts INTEGER NOT NULL, holders TEXT);
-- documents whose pairs are still to be compared again since sentences they hold became boilerplate (more than one
-- batch's share of that work: Detector._compare_again), oldest first
CREATE TABLE IF NOT EXISTS stale_texts (seq INTEGER PRIMARY KEY, doc_key INTEGER NOT NULL UNIQUE);
"""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class StoredDocument:
    key: int
    id: str
    seq: int
    content_hash: str
    text: str
    metadata: dict[str, Any]
    published: str | None
    signature: bytes


@dataclass(frozen=True)
class Summary:
    """A document without its text: what clustering and canonical members need."""

    key: int
    id: str
    seq: int
    published: str | None
    length: int


@dataclass(frozen=True)
class StoredPair:
    a_key: int
    b_key: int
    sources: list[str]
    features: dict[str, float]
    probability: float
    #: duplicate, rewrite, same_story or different
    relation: str


@dataclass(frozen=True)
class StoredDecision:
    doc_key: int
    matched_key: int | None
    matched_id: str | None
    relation: str | None
    score: float | None
