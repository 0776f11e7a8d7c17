"""The Detector: index documents, find and confirm candidate pairs, cluster stories, answer queries and reports.

index():  read -> exact duplicates by content hash -> sentences -> encode -> MinHash
          -> candidates (LSH ∪ nearest documents) -> evidence -> score -> story clusters -> commit
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Collection
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import clusters as story_clusters
from .config import BRIEF_SENTENCES, DEFAULT_PROFILE, RARE_TERM_MIN_WEIGHT, ScoringParams, Settings
from .documents import Document, batches, content_hash
from . import encoders
from .encoders import Encoder
from .errors import IncompatibleIndexError, IndexExistsError, IndexFolderError, UnknownDocumentError
from . import boilerplate
from .cache import BoundedCache
from .compare import TextView, compare
from .dedup import DedupSteps, record_decision
from .stories import EMBEDDING, EXACT, MINHASH, RARE_TERMS, SENTENCES, StorySteps, with_days_apart
from .evidence import (PairEvidence, Terms, TermStats, quotations_of, rare_name_terms, sentence_hash, sentence_hashes,
                       specific_terms, word_ngrams)
from .minhash import shingles, signature, signature_from_bytes, signature_to_bytes
from .parallel import MIN_TEXTS_PER_PROCESS, Worker, fork_map
from .results import AlignedSentences, Cluster, IndexResult, Match, PairReport, RemoveResult
from .scoring import Scorer
from .sentences import split_sentences, words
from .records import StoredPair
from .store import Snapshot, Store
from .vectors import as_stored, matrix_from_bytes, matrix_to_bytes, vector_to_bytes

log = logging.getLogger("detector")

#: views (sentences and their vectors) of this many documents are kept in memory.
VIEW_CACHE_SIZE = 20_000


def _consistently(method=None, *, search: bool = True):
    """Run a reading method inside one read transaction of one committed generation (see Detector._consistent).
    `search=False`: the method reads the database only, so the search indexes are not loaded for it (at 1,000,000
    documents that takes ~10 s and ~3 GB)."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            with self._consistent(search=search):
                return method(self, *args, **kwargs)
        return wrapper
    return decorate(method) if method is not None else decorate


class Detector(StorySteps, DedupSteps):
    """An open index. Use `Detector.open(path)`; close it (or use `with`) when done."""

    def __init__(self, store: Store, encoder: Encoder, settings: Settings, params: ScoringParams) -> None:
        self.store = store
        self.encoder = encoder
        self.settings = settings
        self.params = params
        self.scorer = Scorer(params)
        self._directions = settings.directions()
        dimension = self._directions.shape[1] if self._directions is not None else store.manifest["dimension"]
        if dimension != store.manifest["dimension"]:
            raise IncompatibleIndexError(
                f"the settings' common direction has {dimension} dimensions but the index's vectors have "
                f"{store.manifest['dimension']}: it was fitted for another model; leave it out (common_direction=None, "
                "common_components=None)")
        self._snapshot: Snapshot | None = None
        #: views of documents by key (a key is never reused, so a view never goes stale); the most recent kept.
        self._views: BoundedCache[int, TextView] = BoundedCache(VIEW_CACHE_SIZE)
        self._term_stats: TermStats | None = None
        self._stats_generation = -1  # the generation _term_stats was read at
        #: specific terms of documents whose views are not cached, read for rescoring (bounded like the views).
        self._terms_cache: BoundedCache[int, Terms] = BoundedCache(VIEW_CACHE_SIZE)
        #: document id -> cluster id of the text it replaces, until the next reclustering.
        self._inherited: dict[str, str | None] = {}
        #: key -> (the whole view, positions set aside -> the view without them) of documents with boilerplate.
        self._parts: BoundedCache[int, tuple[TextView, dict[tuple[int, ...], TextView]]] = BoundedCache(
            VIEW_CACHE_SIZE)

    # ---- opening -------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, model: str | None = None, encoder: Encoder | None = None,
             settings: Settings | None = None, params: ScoringParams | None = None, profile: str | None = None,
             create: bool = True) -> "Detector":
        """Open the index at `path`, creating it if `create` and missing: with `settings`, or those of `profile`
        (default "accurate"), with `model` or `encoder` instead of the profile's model if given."""
        path = Path(path).resolve()
        if not (path / "manifest.json").exists() and create:
            settings = settings or Settings.for_profile(profile or DEFAULT_PROFILE,
                                                        model=model or (encoder.name if encoder else None))
            encoder = encoder or encoders.load_encoder(settings.model)
            try:
                store = Store.create(path, model=encoders.canonical_name(settings.model), dimension=encoder.dimension,
                                     settings={**settings.to_dict(), "model": encoders.canonical_name(settings.model)})
                return cls(store, encoder, settings, params or ScoringParams.shipped(settings.profile))
            except IndexExistsError:
                pass  # another process created it meanwhile: open that one
        store = Store.open(path)
        try:
            stored = Settings.from_dict(store.manifest["settings"])
        except (TypeError, ValueError) as exc:
            store.close()
            raise IndexFolderError(f"{path / 'manifest.json'} has invalid settings ({exc}): rebuild the index "
                                   "into a new folder") from None
        if profile is not None and profile != stored.profile:
            store.close()
            raise IncompatibleIndexError(
                f"{path} was created with profile {stored.profile!r}, not {profile!r}: an index keeps the profile it "
                "was created with. Leave out --profile to use it, or build a new index with --index NEW_DIR.")
        wanted = encoders.canonical_name(model or encoder.name) if (model or encoder) else None
        if wanted is not None and wanted != encoders.canonical_name(store.manifest["model"]):
            store.close()
            raise IncompatibleIndexError(
                f"{path} was built with model {store.manifest['model']!r}, not {wanted!r}: vectors of different models "
                "do not compare. Leave out --model to use the index's own, or build a new index with --index NEW_DIR."
            )
        if encoder is not None and encoder.dimension != store.manifest["dimension"]:
            store.close()
            raise IncompatibleIndexError(
                f"{path} holds {store.manifest['dimension']}-dimensional vectors but encoder {encoder.name!r} gives "
                f"{encoder.dimension}: use the encoder the index was built with, or build a new index.")
        encoder = encoder or encoders.load_encoder(stored.model)
        return cls(store, encoder, stored, params or ScoringParams.shipped(stored.profile))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _consistent(self, *, search: bool = True) -> Iterator[None]:
        """Read one committed generation, database and search indexes alike, even while a writer commits: the
        snapshot is brought up to date inside the read transaction that every read then shares. `search=False`:
        the snapshot only if it is loaded already."""
        with self.store.reading():
            if search or self._snapshot is not None:
                self.snapshot  # noqa: B018 - loads or catches up the indexes to this transaction's generation
            yield

    @property
    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = self.store.load_snapshot(lsh_threshold=self.settings.lsh_threshold,
                                                      num_perm=self.settings.num_perm)
        elif self._snapshot.generation != self.store.generation:  # another process committed: catch up
            self.store.sync_snapshot(self._snapshot)
            self._term_stats = None  # its documents change the term frequencies too
        return self._snapshot

    # ---- indexing ------------------------------------------------------------------------------------------
    def index(self, documents: Iterable[Document], *, batch_size: int = 256, lock_timeout: float = 60.0,
              progress: Callable[[int], None] | None = None,
              committed: Callable[[list[Document]], None] | None = None,
              read_ahead: bool | None = None) -> IndexResult:
        """Add documents; an unchanged one is skipped, a changed text under a known id replaces the old one.

        Work is committed every `batch_size` documents, so an interrupted run keeps every batch it finished;
        `committed` is called with each batch once it is durable.

        `read_ahead`: read the next batch before this one is indexed, and prepare its texts (sentences, terms,
        shingles) in a forked worker meanwhile. The default: for a list or other collection, not for an iterator
        or other lazy iterable, which may be a live stream: reading ahead would hold back each batch's commit until
        the next one arrived. An error raised while reading ahead is raised once the batch before it is committed,
        as without it. If the worker breaks (killed, or no memory to fork), the texts are prepared here.
        """
        started = time.perf_counter()
        result = IndexResult()
        ahead = isinstance(documents, Collection) if read_ahead is None else read_ahead
        try:
            with self.store.writing(timeout=lock_timeout), Worker() as worker, self._encoding_in_workers():
                snapshot = self.snapshot
                for batch, prepared in self._batches_ahead(batches(documents, batch_size), worker if ahead else None):
                    batch_result, new_keys, again = self._index_batch(batch, snapshot, prepared)
                    result = result.merged(batch_result)
                    if new_keys or batch_result.metadata_updated or again:
                        only_added = not (batch_result.replaced or batch_result.metadata_updated)
                        # the stories of pairs compared again are regrouped too (_compare_again)
                        self._recluster(sorted(set(new_keys) | set(again)) if only_added else None, again)
                        for key in new_keys:
                            record_decision(self.store, key, self.params, self._ngram_counts)
                        self.store.commit(snapshot)
                    if progress:
                        progress(len(batch))
                    if committed:
                        committed(batch)
        except BaseException:
            # the uncommitted batch was rolled back in SQLite; drop the in-memory indexes that still hold it
            self._reset()
            raise
        return result.merged(IndexResult(seconds=time.perf_counter() - started))

    def remove(self, ids: Iterable[str], *, lock_timeout: float = 60.0) -> RemoveResult:
        """Delete documents from every part of the index (text, sentences, vectors, LSH, pairs, decisions) and
        recluster; the remaining stories keep their ids where they can."""
        removed, missing = [], []
        try:
            with self.store.writing(timeout=lock_timeout):
                snapshot = self.snapshot
                for doc_id in dict.fromkeys(ids):
                    doc = self.store.document(doc_id)
                    if doc is None:
                        missing.append(doc_id)
                        continue
                    self._forget(doc.key, snapshot)
                    removed.append(doc_id)
                if removed:
                    self._recluster()
                    self.store.commit(snapshot)
        except BaseException:
            self._reset()
            raise
        return RemoveResult(removed, missing)

    @contextmanager
    def _encoding_in_workers(self) -> Iterator[None]:
        """While indexing: let a forked worker encode with this detector's encoder, if it may run there
        (`fork_safe`: the static model; a forked copy of torch's thread pools would not work)."""
        if not getattr(self.encoder, "fork_safe", False):
            yield
            return
        _ = self.encoder.dimension  # loaded here first: a worker forked before would load (or distil) it itself
        _WORKER_ENCODERS[id(self)] = self.encoder
        try:
            yield
        finally:
            _WORKER_ENCODERS.pop(id(self), None)

    def _batches_ahead(self, batch_iterator: Iterator[list[Document]], worker: Worker | None
                       ) -> Iterator[tuple[list[Document], _Ahead | None]]:
        """Each batch, with what `worker` is preparing of it (_Ahead), or None where it is all to be prepared here:
        the first batch, and every batch without a worker. With a worker, the next batch is read and its texts
        that need preparing (not those indexed already with the same text) handed to the worker before this
        batch is given out; an error raised reading it (a bad input line, say) is raised when the caller asks
        for it, after indexing and committing this one."""
        if worker is None:
            for batch in batch_iterator:
                yield batch, None
            return
        batch, ahead = next(batch_iterator, None), None
        while batch is not None:
            following, error = None, None
            try:
                following = next(batch_iterator, None)
            except Exception as exc:  # noqa: BLE001 - whatever the input raises, after this batch
                error = exc
            following_ahead = self._prepare_ahead(following, worker, batch) if following else None
            yield batch, ahead
            if error is not None:
                raise error
            batch, ahead = following, following_ahead

    def _prepare_ahead(self, batch: list[Document], worker: Worker, current: list[Document]) -> _Ahead | None:
        """Hand the texts of `batch` that are not indexed as they are to the worker, and have it encode those that
        will need vectors, with an encoder that may run there (_encoding_in_workers): not a text indexed already,
        in the `current` batch (indexed meanwhile) or earlier in this one, which will reuse those vectors."""
        stored = self.store.content_hashes([doc.id for doc in batch])
        handed = [doc for doc in batch if stored.get(doc.id) != doc.content_hash]
        token = id(self) if id(self) in _WORKER_ENCODERS else None
        if token is not None:
            known = self.store.indexed_hashes(sorted({doc.content_hash for doc in handed}))
            known.update(doc.content_hash for doc in current)
            wanted = []
            for doc in handed:
                wanted.append(doc.content_hash not in known)
                known.add(doc.content_hash)
        else:
            wanted = [False] * len(handed)
        future = worker.submit(functools.partial(_prepare_texts, self.settings, token),
                               [(doc.text, want) for doc, want in zip(handed, wanted)], count=len(handed))
        return _Ahead(future, [doc.id for doc in handed], worker) if future is not None else None

    def _index_batch(self, batch: list[Document], snapshot: Snapshot,
                     ahead: _Ahead | None = None) -> tuple[IndexResult, list[int], list[int]]:
        """Index one batch: its result, the keys it added, and those of the pairs compared again (_compare_again).
        `ahead`: what a worker is preparing of it, if anything."""
        added, replaced, unchanged, updated, exact = [], [], [], [], []
        todo: list[tuple[Document, int | None]] = []
        known_ids = self.store.content_hashes([doc.id for doc in batch])  # one query for the batch's new ids
        for doc in batch:  # ids are unique within a batch (see _batches)
            old = self.store.document(doc.id) if doc.id in known_ids else None
            if old is not None and old.content_hash == doc.content_hash:
                if old.metadata != doc.metadata:
                    self.store.update_metadata(old.key, doc.metadata, doc.published)
                    updated.append(doc.id)
                else:
                    unchanged.append(doc.id)
                continue
            if old is not None:
                self._inherited[doc.id] = self.store.cluster_of(old.key)  # a corrected text keeps its story id
                self._forget(old.key, snapshot)
                replaced.append(doc.id)
            else:
                added.append(doc.id)
            todo.append((doc, old.seq if old else None))

        indexed: dict[str, int] = {}  # content hash -> the indexed document with that text
        seen: set[str] = set()
        new_text: list[bool] = []  # False: an exact duplicate, never split nor encoded
        known_texts = self.store.indexed_hashes(sorted({doc.content_hash for doc, _ in todo}))
        for doc, _ in todo:
            digest = doc.content_hash
            stored = self.store.document_by_hash(digest) if digest not in seen and digest in known_texts else None
            if stored is not None:
                indexed[digest] = stored.key
            new_text.append(not (digest in seen or digest in indexed))
            seen.add(digest)
        # splitting, terms, shingles, n-grams: by the worker when it read ahead, else on both cores when the batch
        # is large enough; the worker prepared every text as a new one (what an exact duplicate needs is in it)
        done = ahead.results() if ahead is not None and todo else {}
        missing = [(doc.text, new) for (doc, _), new in zip(todo, new_text) if doc.id not in done]
        local = iter(fork_map(functools.partial(_prepare_text, self.settings), missing,
                              min_per_process=MIN_TEXTS_PER_PROCESS))
        prepared = [done[doc.id] if doc.id in done else next(local) for doc, _ in todo]
        sentences = [p.sentences for p in prepared]
        need = [i for i, new in enumerate(new_text) if new]
        here = [i for i in need if prepared[i].vectors is None]  # those the worker did not encode
        flat = [t for i in here for t in sentences[i]]
        encoded, runs = self._encode_once(flat)
        offsets = np.cumsum([0] + [len(sentences[i]) for i in here])
        vectors: dict[int, np.ndarray] = {i: encoded[offsets[n]:offsets[n + 1]] for n, i in enumerate(here)}
        vectors.update((i, prepared[i].vectors) for i in need if prepared[i].vectors is not None)
        runs += ahead.encoded if ahead is not None else 0

        new_keys: list[int] = []
        added_views: list[TextView] = []  # those of new_keys
        exact_pairs: list[tuple[int, int]] = []
        by_hash: dict[str, int] = {}
        settings = self.settings
        # the sentences of the new texts that no more than rare_term_texts texts hold yet, with their holders: those
        # that this batch makes boilerplate were compared as content in their holders' pairs
        watched = self.store.sentence_holders(sorted({k for i in need for k in prepared[i].sentence_keys or ()
                                                      if k is not None})) if settings.boilerplate else {}
        holding = settings.rare_term_texts if settings.rare_terms or settings.shared_sentences else 0  # Store.holders
        for i, (doc, seq) in enumerate(todo):
            digest = doc.content_hash
            original = by_hash.get(digest, indexed.get(digest))
            sig = signature_from_bytes(prepared[i].signature)
            if i in vectors:
                view = TextView(sentences[i], as_stored(vectors[i]), sig, self._directions, _terms=prepared[i].terms,
                                _ngrams=prepared[i].ngrams, _quotes=prepared[i].quotes,
                                _sentence_keys=prepared[i].sentence_keys, _rare_names=prepared[i].rare_names)
            else:  # exact duplicate of an indexed document: reuse its sentences and vectors, no model run
                view = TextView(self._view(original).sentences, self._view(original).vectors, sig, self._directions)
            texts, vecs = view.sentences, view.vectors
            key = self.store.add_document(doc_id=doc.id, content_hash=digest, text=doc.text, metadata=doc.metadata,
                                          published=doc.published, signature=prepared[i].signature,
                                          terms=view.terms.as_dict(), sentences=texts,
                                          sentence_vectors=matrix_to_bytes(vecs), vector=vector_to_bytes(view.vector),
                                          seq=seq, new_text=original is None, rare_term_texts=holding,
                                          held_terms=view.rare_names if settings.rare_terms and original is None
                                          else (),
                                          held_sentences=view.sentence_hashes
                                          if settings.shared_sentences and original is None else ())
            self._term_stats = None
            self._views[key] = view
            added_views.append(view)
            if original is not None:
                exact_pairs.append((key, original))
                exact.append((doc.id, self._id_of(original)))
            by_hash.setdefault(digest, key)
            new_keys.append(key)
        # into the search indexes together (a FAISS add, a table write), before any candidate is looked for
        if added_views:
            snapshot.add_many(new_keys, np.vstack([view.vector for view in added_views]),
                              [view.signature for view in added_views])

        candidates = self._candidates(new_keys, exact_pairs)
        published = self.store.published_dates(sorted({k for pair in candidates for k in pair}))
        scored = self._confirm(candidates, published)
        self.store.put_pairs(scored)
        confirmed = sum(pair.relation != "different" for pair in scored)
        again = self._compare_again(watched, set(candidates))
        return IndexResult(added=added, replaced=replaced, unchanged=unchanged, metadata_updated=updated,
                           exact_duplicates=exact, candidate_pairs=len(candidates), confirmed_pairs=confirmed,
                           sentences_encoded=runs), new_keys, again

    def _compare_again(self, watched: dict[int, list[tuple[int, int]]], done: set[tuple[int, int]]) -> list[int]:
        """Of `watched` (Store.sentence_holders before this batch), the sentences now held by more than
        rare_term_texts texts have become boilerplate: the stored pairs of the texts that held them (copies
        included) were compared with them, so they are compared again, without (the pairs in `done` were just
        compared). A batch compares again at most as many pairs as it compared of its own (REDO_MIN_PAIRS at least),
        so that texts made of sentences that many others hold, a few each, cost at most twice as much; the texts
        beyond wait for the next batches, oldest first (Store.stale_texts). The keys of the pairs compared again,
        whose stories must be regrouped."""
        newly = self.store.common_sentences(sorted(watched), self.settings.rare_term_texts) if watched else set()
        holders = sorted({key for h in newly for key, _ in watched[h]})
        changed = []
        if holders:
            keys = sorted({copy for copies in self.store.copies_of(holders).values() for copy in copies})
            # only the texts that are compared otherwise now: one that keeps every sentence (they are most of it), as
            # it did before, or that set the same ones aside, gives its pairs the same evidence
            views = {key: self._view(key) for key in keys}
            common = self._common_sentences(views.values())
            before = common - newly
            changed = [key for key, view in views.items()
                       if boilerplate.how_compared(view, common) != boilerplate.how_compared(view, before)]
        waiting = self.store.stale_texts()
        if not changed and not waiting:
            return []
        queue = list(dict.fromkeys(waiting + changed))
        budget = _redo_budget(len(done))
        pairs: dict[tuple[int, int], set[str]] = {}
        taken = 0
        for key in queue:
            own = {(p.a_key, p.b_key): set(p.sources) for p in self.store.pairs_of(key)
                   if (p.a_key, p.b_key) not in done}
            if taken and len(pairs) + len(own) > budget:
                break
            pairs.update(own)
            taken += 1
        if queue[taken:] or waiting:
            self.store.set_stale_texts(queue[taken:])
        touched = sorted({k for pair in pairs for k in pair})
        published = self.store.published_dates(touched)
        self.store.put_pairs(self._confirm(pairs, published))
        return touched

    def _encode_once(self, sentences: list[str]) -> tuple[np.ndarray, int]:
        """The vectors of `sentences`, each distinct sentence encoded once (copies and light edits of one story
        share most sentences, often within one batch), and how many the model ran on."""
        if not sentences:
            return np.zeros((0, 0), dtype=np.float32), 0
        distinct = list(dict.fromkeys(sentences))
        encoded = self.encoder.encode(distinct)
        if len(distinct) == len(sentences):
            return encoded, len(distinct)
        row = {sentence: n for n, sentence in enumerate(distinct)}
        return encoded[[row[sentence] for sentence in sentences]], len(distinct)

    def _reset(self) -> None:
        """Forget everything held in memory; it is read again from the index when needed."""
        self._snapshot = None
        self._views.clear()
        self._terms_cache.clear()
        self._parts.clear()
        self._term_stats = None
        self._inherited.clear()

    def _forget(self, key: int, snapshot: Snapshot) -> None:
        self._term_stats = None
        held = ()
        if self.settings.shared_sentences:  # what add_document was given: the hashes of its sentences
            view = self._views.get(key)
            held = view.sentence_hashes if view is not None else sentence_hashes(self.store.sentences(key))
        self.store.delete_document(key, held)
        snapshot.remove(key)
        self._views.pop(key, None)
        self._terms_cache.pop(key, None)
        self._parts.pop(key, None)

    def _candidates(self, new_keys: list[int], exact_pairs: list[tuple[int, int]]) -> dict[tuple[int, int], set[str]]:
        found: dict[tuple[int, int], set[str]] = {}

        def note(a: int, b: int, source: str) -> None:
            if a != b:
                found.setdefault((min(a, b), max(a, b)), set()).add(source)

        for a, b in exact_pairs:
            note(a, b, EXACT)
        snapshot = self._snapshot
        assert snapshot is not None
        views = [self._view(key) for key in new_keys]
        answers = snapshot.lsh.hits_many(np.vstack([v.signature.hashvalues for v in views])) if views else []
        proposed = dict(zip(new_keys, answers))
        for key, view in zip(new_keys, views):
            for other in self._reaching_threshold(view.signature, proposed[key]).tolist():
                note(key, other, MINHASH)
        if self.settings.neighbors and views:  # one search for the whole batch (a matrix product, not a loop)
            # neighbor_min_cosine is the lowest floor (Settings holds the full-text floor at or above it)
            sims, ids = snapshot.documents.search(np.vstack([v.vector for v in views]), self.settings.neighbors + 1,
                                                  at_least=self.settings.neighbor_min_cosine)
            near = [(key, len(view.sentences), sim, other)  # plain floats and ints (tolist), not numpy scalars
                    for key, view, row_sims, row_ids in zip(new_keys, views, sims.tolist(), ids.tolist())
                    for sim, other in zip(row_sims, row_ids) if other >= 0 and other != key]
            for key, other in self._above_neighbor_floor(near):
                note(key, other, EMBEDDING)
        for key, other in self._sharing_rare_terms(new_keys, views):
            note(key, other, RARE_TERMS)
        for key, other in self._sharing_sentences(new_keys, views):
            note(key, other, SENTENCES)
        return found

    def _sharing_sentences(self, keys: list[int], views: list[TextView]) -> list[tuple[int, int]]:
        """(key, other) where at least half of the sentences of the shorter of the view of `key` and the indexed
        document `other` are in the other word for word (Settings.shared_sentences; only sentences of at least NGRAM
        words count, and only those at most rare_term_texts texts hold are found); `key` -1 for a text that is not
        indexed."""
        if not self.settings.shared_sentences:
            return []
        held = self.store.sentence_holders(sorted({h for view in views for h in view.sentence_hashes}))
        found = []
        for key, view in zip(keys, views):  # lengths: the sentences that can be shared (sentence_hashes)
            shared = Counter(holder for h in view.sentence_hashes for holder in held.get(h, ()))
            found += [(key, other) for (other, length), n in shared.items()
                      if 2 * n >= min(len(view.sentence_hashes), length)]
        copies = self.store.copies_of(sorted({other for _, other in found}))  # the table names one copy a text
        return [(key, copy) for key, other in found for copy in copies.get(other, ()) if copy != key]

    def _sharing_rare_terms(self, keys: list[int], views: list[TextView]) -> list[tuple[int, int]]:
        """(key, other) where the view of `key` and the indexed document `other` share at least rare_terms rare
        specific terms (Settings.rare_terms); `key` -1 for a text that is not indexed."""
        needed = self.settings.rare_terms
        if not needed:
            return []
        specific = [view.rare_names for view in views]
        holders = self.store.holders(sorted({t for terms in specific for t in terms}))
        found = []
        for key, terms in zip(keys, specific):
            shared = Counter(other for term in terms for other in holders.get(term, ()))
            found += [(key, other) for other, n in shared.items() if n >= needed and other != key]
        return found

    def _above_neighbor_floor(self, near: list[tuple[int, int, float, int]]) -> list[tuple[int, int]]:
        """(key, other) of the (key, key's sentences, cosine, other) at or above the floor for the two texts'
        lengths (Settings.neighbor_floor): the other's length is read only where it decides."""
        settings = self.settings
        brief_floor = settings.neighbor_min_cosine
        full_floor = settings.neighbor_floor(BRIEF_SENTENCES + 1, BRIEF_SENTENCES + 1)
        undecided = sorted({other for _, n, sim, other in near
                            if brief_floor <= sim < full_floor and n > BRIEF_SENTENCES})
        lengths = self.store.sentence_counts(undecided) if undecided else {}
        return [(key, other) for key, n, sim, other in near
                if sim >= settings.neighbor_floor(n, lengths.get(other, n))]

    def _reaching_threshold(self, sig, proposed: np.ndarray) -> np.ndarray:
        """The distinct documents the LSH proposed (LSHIndex.hits_many: a key once per band shared) whose Jaccard
        estimate with `sig` reaches lsh_threshold (the LSH's banding also lets through pairs well below it), in
        increasing order (the snapshot holds every document's hash values)."""
        snapshot = self._snapshot
        assert snapshot is not None
        return snapshot.hashes.reaching(sig, proposed, self.settings.lsh_threshold)

    def _confirm(self, candidates: dict[tuple[int, int], set[str]],
                 published: dict[int, str | None]) -> list[StoredPair]:
        """The evidence and score of each candidate pair, to be stored. The evidence is computed on both cores
        (parallel.fork_map) from views loaded here first: workers never read the database."""
        compared = self._compared({key: self._view(key) for pair in candidates for key in pair}, candidates)
        for views in compared.values():  # worked out here, once: what a forked worker works out is lost with it
            for view in views:
                view.prepare()
        evidence = functools.partial(_pair_features, compared, self.params.align_threshold, self._stats())
        scored = []
        for ((a, b), sources), found in zip(candidates.items(), fork_map(evidence, list(candidates))):
            features = with_days_apart(found, published[a], published[b])
            score = self.scorer.score(features, exact=EXACT in sources)
            scored.append(StoredPair(a, b, sorted(sources), features, score.probability, score.relation))
        return scored

    def _common_sentences(self, views: Iterable[TextView]) -> set[int]:
        """The hashes of the sentences of `views` that more than rare_term_texts distinct texts of the index hold:
        boilerplate (boilerplate.py)."""
        hashes = sorted({h for view in views for h in view.sentence_hashes})
        return self.store.common_sentences(hashes, self.settings.rare_term_texts) if hashes else set()

    def _compared(self, views: dict, pairs: Iterable[tuple]) -> dict[tuple, tuple[TextView, TextView]]:
        """Each of `pairs` (of keys of `views`: indexed documents' keys, or any other) as its two texts are compared:
        each without its boilerplate (boilerplate.pair_positions), where the index sets it aside."""
        pairs = list(pairs)
        common = self._common_sentences(views.values()) if self.settings.boilerplate else set()
        if not common:
            return {(a, b): (views[a], views[b]) for a, b in pairs}
        how = {key: boilerplate.how_compared(view, common) for key, view in views.items()}  # (dropped, kept)
        return {(a, b): (self._part(a, views[a], boilerplate.pair_positions(views[a], how[a][0], how[b][1])),
                         self._part(b, views[b], boilerplate.pair_positions(views[b], how[b][0], how[a][1])))
                for a, b in pairs}

    def _part(self, key, view: TextView, dropped: tuple[int, ...]) -> TextView:
        """boilerplate.without(view, dropped), kept for an indexed document while its view is."""
        if not dropped:
            return view
        if not isinstance(key, int):
            return boilerplate.without(view, dropped, self.settings)
        known = self._parts.get(key)
        if known is None or known[0] is not view:
            known = self._parts[key] = (view, {})
        part = known[1].get(dropped)
        if part is None:
            part = known[1][dropped] = boilerplate.without(view, dropped, self.settings)
        return part

    def _evidence(self, a: TextView, b: TextView, *, indexed: tuple[bool, bool] = (True, True),
                  explain: bool = True) -> PairEvidence:
        return compare(a, b, align_threshold=self.params.align_threshold, stats=self._stats(), indexed=indexed,
                       explain=explain)

    def _stats(self) -> TermStats:
        """Document frequencies of specific terms in the index (exact duplicates counted once)."""
        generation = self.store.generation  # another process may have committed since
        if self._term_stats is None or self._stats_generation != generation:
            texts, df = self.store.term_df()
            self._term_stats, self._stats_generation = TermStats(texts, df), generation
        return self._term_stats

    def _view(self, key: int) -> TextView:
        view = self._views.get(key)
        if view is None:
            sentences, vectors, sig, terms = self.store.view_row(key)
            view = TextView(sentences, matrix_from_bytes(vectors, self.store.manifest["dimension"]),
                            signature_from_bytes(sig), self._directions, _terms=Terms(**terms))
            self._views[key] = view
        return view

    def _ngram_counts(self, key: int, other: int) -> tuple[int, int]:
        """How many distinct word 3-grams the indexed texts `key` and `other` have as their pair compares them."""
        a, b = self._compared({key: self._view(key), other: self._view(other)}, [(key, other)])[(key, other)]
        return len(a.ngrams), len(b.ngrams)

    def _id_of(self, key: int) -> str:
        return self.store.summaries_by_key([key])[key].id

    # ---- reading -------------------------------------------------------------------------------------------
    @_consistently(search=False)
    def clusters(self) -> list[Cluster]:
        """Every story cluster, singletons included, ordered by their first-indexed member."""
        docs = self.store.summaries()
        cluster_of = self.store.cluster_map()
        members: dict[str, list] = {}
        for doc in docs:
            members.setdefault(cluster_of.get(doc.key, "?"), []).append(doc)
        return [Cluster(cid, [d.id for d in group], story_clusters.representative(group).id)
                for cid, group in members.items()]

    def cluster_of(self) -> dict[str, str]:
        """Document id -> cluster id, for every indexed document."""
        return {member: c.id for c in self.clusters() for member in c.members}

    @_consistently
    def query(self, text: str, *, top: int = 10) -> list[Match]:
        """The indexed documents most similar to `text`, best first; the index is not changed. Those compared: the
        ones its MinHash signature proposes, its `top` nearest by document vector, and further near ones (up to the
        index's `neighbors`) at or above the neighbour floor, as indexing would propose them."""
        query = TextView.of_text(text, self.encoder, self.settings)
        digest = content_hash(text)
        if not query.sentences:
            return []
        snapshot = self.snapshot
        sources: dict[int, set[str]] = {}
        proposed = snapshot.lsh.hits(query.signature)
        for key in self._reaching_threshold(query.signature, proposed).tolist():
            sources.setdefault(key, set()).add(MINHASH)
        # the nearest `top` documents always; further ones up to `neighbors` only above the neighbour floor, as
        # indexing proposes them (below it, a document is one more comparison and almost never a match)
        sims, ids = snapshot.documents.search(query.vector[None, :], max(top, self.settings.neighbors))
        n = len(query.sentences)
        near = [(-1, n, float(sim), int(key)) for sim, key in zip(sims[0], ids[0]) if key >= 0]
        for rank, (_, _, _, key) in enumerate(near):
            if rank < top:
                sources.setdefault(key, set()).add(EMBEDDING)
        for _, key in self._above_neighbor_floor(near[top:]):
            sources.setdefault(key, set()).add(EMBEDDING)
        for _, key in self._sharing_rare_terms([-1], [query]):
            sources.setdefault(key, set()).add(RARE_TERMS)
        for _, key in self._sharing_sentences([-1], [query]):
            sources.setdefault(key, set()).add(SENTENCES)
        docs = self.store.documents_by_key(sorted(sources))
        cluster_of = self.store.clusters_of(sorted(sources))  # the matches' clusters only, not the whole map
        compared = self._compared({"query": query, **{key: self._view(key) for key in sources}},
                                  [("query", key) for key in sources])
        matches = []
        for key, found_by in sources.items():
            features = self._evidence(*compared[("query", key)], indexed=(False, True)).features()
            score = self.scorer.score(features, exact=docs[key].content_hash == digest)
            matches.append(Match(docs[key].id, score.probability, score.verdict, score.relation, features,
                                 sorted(found_by),
                                 cluster_of.get(key)))
        matches.sort(key=lambda m: (-m.probability, m.id))
        return matches[:top]

    @_consistently(search=False)
    def report(self, a_id: str, b_id: str) -> PairReport:
        """The full similarity report of two indexed documents."""
        a, b = (self._require(x) for x in (a_id, b_id))
        whole_a, whole_b = self._view(a.key), self._view(b.key)
        view_a, view_b = self._compared({"a": whole_a, "b": whole_b}, [("a", "b")])[("a", "b")]
        evidence = self._evidence(view_a, view_b)
        features = with_days_apart(evidence.features(), a.published, b.published)
        stored = self.store.pair(a.key, b.key)
        score = self.scorer.score(features, exact=a.content_hash == b.content_hash)
        cluster_of = self.store.clusters_of([a.key, b.key])
        # sentence numbers are the whole texts', boilerplate or not
        aligned = [AlignedSentences(view_a.position(p.a_index), view_b.position(p.b_index),
                                    view_a.sentences[p.a_index], view_b.sentences[p.b_index], p.similarity, p.quote)
                   for p in evidence.alignment.pairs]
        near = [AlignedSentences(view_a.position(p.a_index), view_b.position(p.b_index), view_a.sentences[p.a_index],
                                 view_b.sentences[p.b_index], p.similarity) for p in evidence.alignment.near]
        set_aside = [sorted(set(range(len(whole.sentences))) - set(part.positions)) if part.positions is not None
                     else [] for whole, part in ((whole_a, view_a), (whole_b, view_b))]
        lineage = []
        for doc in (a, b):
            decision = self.store.decision(doc.key)
            if decision is not None and decision.matched_id is not None:
                gone = " (that text has since been replaced or removed)" if decision.matched_key is None else ""
                lineage.append(f"{doc.id} arrived as a {decision.relation} of {decision.matched_id}{gone}")
        return PairReport(a.id, b.id, score.probability, score.verdict, score.relation, features,
                          stored.sources if stored else [], aligned, evidence.terms.shared,
                          len(whole_a.sentences), len(whole_b.sentences), cluster_of.get(a.key),
                          cluster_of.get(b.key), self.params.align_threshold, near, lineage, set_aside)

    def _require(self, doc_id: str):
        doc = self.store.document(doc_id)
        if doc is None:
            raise UnknownDocumentError(f"no document {doc_id!r} in {self.store.path}: see `detector clusters` for ids")
        return doc

    @_consistently(search=False)
    def info(self) -> dict:
        """What the index holds and how it was built."""
        candidates, confirmed = self.store.count_pairs()
        clusters, multi = self.store.cluster_counts()  # not clusters(): at 1,000,000 documents that reads ~10 s
        settings = self.settings.to_dict()
        if self.settings.common_direction:  # 256 numbers say nothing to a reader; the manifest keeps them
            settings["common_direction"] = (f"removed from document vectors: a {len(self.settings.common_direction)}"
                                            "-dimensional unit vector (in manifest.json)")
        if not self.settings.common_components:
            settings.pop("common_components")
        else:
            count = len(self.settings.common_components)
            settings["common_components"] = (f"removed from document vectors too: {count} directions of most "
                                             "variance (in manifest.json)")
        return {
            "path": str(self.store.path),
            "format_version": self.store.manifest["format_version"],
            "model": self.store.manifest["model"],
            "dimension": self.store.manifest["dimension"],
            "created": self.store.manifest.get("created"),
            "updated": self.store.updated(),
            "settings": settings,
            "scoring": {"align_threshold": self.params.align_threshold,
                        "same_story_threshold": self.params.same_story_threshold,
                        "story_threshold": self.params.grouping_threshold,
                        "weights": self.params.weights, "intercept": self.params.intercept},
            "documents": self.store.count_documents(),
            "sentences": self.store.count_sentences(),
            "candidate_pairs": candidates,
            "confirmed_pairs": confirmed,
            "clusters": clusters,
            "multi_document_clusters": multi,
            "merges": len(self.store.merges()),
            # documents whose pairs wait to be compared again without new boilerplate (Detector._compare_again)
            "texts_to_compare_again": len(self.store.stale_texts()),
            "generation": self.store.generation,
            "bytes_on_disk": self.store.size_on_disk(),
        }


def _pair_features(compared: dict[tuple[int, int], tuple[TextView, TextView]], align_threshold: float,
                   stats: TermStats, pair: tuple[int, int]) -> dict[str, float]:
    """The features of an indexed pair (both documents counted in `stats`), from its views (Detector._compared)."""
    a, b = compared[pair]
    return compare(a, b, align_threshold=align_threshold, stats=stats, indexed=(True, True), explain=False).features()


@dataclass
class _Ahead:
    """What a worker is preparing of a batch read ahead: the future of _prepare_texts of the texts of `ids` (unique
    within a batch)."""

    future: Future
    ids: list[str]
    worker: Worker
    #: how many distinct sentences the worker encoded (known once results() has answered).
    encoded: int = 0

    def results(self) -> dict[str, _Prepared]:
        """document id -> prepared text; empty when the worker failed (killed, out of memory, an error): those
        are then prepared here, where a text that cannot be prepared fails as it would without a worker, and the
        worker is not used again."""
        try:
            prepared, self.encoded = self.future.result()
            return dict(zip(self.ids, prepared))
        except Exception as exc:  # noqa: BLE001 - whatever went wrong there, this process can do the work
            log.warning("the worker preparing texts ahead failed (%s: %s); preparing them here from now on",
                        type(exc).__name__, exc)
            self.worker.give_up()
            return {}


@dataclass(frozen=True)
class _Prepared:
    """What indexing needs of a text before the encoder: its MinHash signature (bytes), and for a new text its
    sentences, specific terms, word n-grams, quotations and (with shared_sentences) the hash of each sentence."""

    signature: bytes
    sentences: list[str] | None = None
    terms: Terms | None = None
    ngrams: set[str] | None = None
    quotes: list[tuple[int, str]] | None = None
    #: evidence.sentence_hash of each sentence (with shared_sentences).
    sentence_keys: list[int | None] | None = None
    #: the rare names among its terms (TextView.rare_names), with rare-term candidates on.
    rare_names: list[str] | None = None
    #: the sentence vectors, as stored (float16), where a worker encoded them.
    vectors: np.ndarray | None = None


#: the fewest pairs a batch may compare again because sentences became boilerplate (Detector._compare_again): a
#: batch of one document compares a few pairs of its own, and a sentence that becomes boilerplate has had up to
#: rare_term_texts holders, each with its pairs.
REDO_MIN_PAIRS = 500


def _redo_budget(own_pairs: int) -> int:
    """How many pairs a batch that compared `own_pairs` of its own may compare again (Detector._compare_again)."""
    return max(own_pairs, REDO_MIN_PAIRS)


#: encoders a forked worker may use, by the id of the Detector indexing with it (see _encoding_in_workers): the
#: worker inherits this when it is forked, so the model is never sent to it.
_WORKER_ENCODERS: dict[int, Encoder] = {}


def _prepare_texts(settings: Settings, encoder: int | None, items: list[tuple[str, bool]]
                   ) -> tuple[list[_Prepared], int]:
    """_prepare_text of each (text, wanted) as a new text (run in a Worker), and with `encoder` (a key of
    _WORKER_ENCODERS) the vectors of those wanted, each distinct sentence encoded once; and how many were encoded."""
    prepared = [_prepare_text(settings, (text, True)) for text, _ in items]
    model = _WORKER_ENCODERS.get(encoder) if encoder is not None else None
    wanted = [i for i, (_, want) in enumerate(items) if want]
    if model is None or not wanted:
        return prepared, 0
    distinct = list(dict.fromkeys(t for i in wanted for t in prepared[i].sentences or ()))
    if not distinct:
        return prepared, 0
    encoded = np.asarray(model.encode(distinct), dtype=np.float16)
    row = {sentence: n for n, sentence in enumerate(distinct)}
    for i in wanted:
        rows = [row[t] for t in prepared[i].sentences or ()]
        prepared[i] = replace(prepared[i], vectors=encoded[rows] if rows else encoded[:0])
    return prepared, len(distinct)


def _prepare_text(settings: Settings, item: tuple[str, bool]) -> _Prepared:
    text, new = item
    sig = signature_to_bytes(signature(shingles(text, settings.shingle_size), settings.num_perm))
    if not new:
        return _Prepared(sig)
    sentences = split_sentences(text, settings.splitter)
    tokens = [words(sentence) for sentence in sentences]  # once, for terms, n-grams and sentence hashes
    keys = [sentence_hash(s, t) for s, t in zip(sentences, tokens)] if settings.shared_sentences else None
    terms = specific_terms(sentences, tokens)
    names = rare_name_terms(terms.counts, RARE_TERM_MIN_WEIGHT) if settings.rare_terms else None
    return _Prepared(sig, sentences, terms, word_ngrams(sentences, tokens=tokens), quotations_of(sentences), keys,
                     names)
