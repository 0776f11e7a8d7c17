"""Shingling, MinHash signatures and the LSH candidate index (datasketch).

Shingles are word n-grams over the content words of a text (ASCII-folded, lower-cased, stop words dropped). Dropping
stop words and using short n-grams is what lets rewrites, not only copies, share shingles: a paraphrase keeps the
names and content words but changes the glue between them. scripts/measure_shingles.py compares the schemes on the
labelled sets; the README has the figures that chose the default.
"""

from __future__ import annotations

import io
import zipfile
from functools import lru_cache

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from .sentences import fold, words

SEED = 1
#: datasketch's hashing scheme; stored signatures are only comparable under the same one.
SCHEME = "affine32"
#: documents added since the LSH index's last sort that it searches one by one, at most (see LSHIndex)
TAIL_LIMIT = 4096

STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both but by
can could did do does doing down during each few for from further had has have having he her here hers herself him
himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other
our ours ourselves out over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself yourselves also said says say would may might must shall us one its it's
""".split())


def content_words(text: str) -> list[str]:
    """Lower-cased ASCII-folded words with stop words removed, in order."""
    folded = (fold(w).strip("'.-") for w in words(text))
    return [w for w in folded if w and w not in STOP_WORDS]


def shingles(text: str, size: int) -> set[str]:
    """Word `size`-grams of the content words; a text shorter than `size` content words gives its words joined."""
    tokens = content_words(text) or [fold(w) for w in words(text)]
    if len(tokens) < size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i:i + size]) for i in range(len(tokens) - size + 1)}


@lru_cache(maxsize=8)
def _permutations(num_perm: int):
    """datasketch's permutations for SEED: drawn once per size, not once per signature."""
    mh = MinHash(num_perm=num_perm, seed=SEED)
    if getattr(mh, "scheme", SCHEME) != SCHEME:
        raise RuntimeError(f"datasketch uses MinHash scheme {mh.scheme!r}; this index format expects {SCHEME!r}")
    return mh.permutations


def signature(shingle_set: set[str], num_perm: int) -> LeanMinHash:
    """The MinHash signature of a shingle set (datasketch, fixed seed so signatures compare across runs)."""
    mh = MinHash(num_perm=num_perm, seed=SEED, permutations=_permutations(num_perm), scheme=SCHEME)
    mh.update_batch([s.encode("utf-8") for s in sorted(shingle_set)])
    return LeanMinHash(mh)


def signature_to_bytes(sig: LeanMinHash) -> bytes:
    return np.asarray(sig.hashvalues, dtype=np.uint64).tobytes()


def signature_from_bytes(data: bytes) -> LeanMinHash:
    return LeanMinHash(seed=SEED, hashvalues=np.frombuffer(data, dtype=np.uint64), scheme=SCHEME)


def hash_values_from_bytes(data: bytes) -> np.ndarray:
    """signature_from_bytes(data).hashvalues as uint32 (all that jaccard_many needs), without building a MinHash."""
    return np.frombuffer(data, dtype=np.uint64).astype(np.uint32)


def jaccard(a: LeanMinHash, b: LeanMinHash) -> float:
    """MinHash estimate of the Jaccard similarity of the two shingle sets."""
    return float(a.jaccard(b))


def jaccard_many(a: LeanMinHash, others: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """jaccard(a, b) for the hash values of every b of `others` (a list of rows, or a matrix with one row each), in one
    array operation (the same estimates: the share of equal hash values)."""
    matrix = others if isinstance(others, np.ndarray) else np.vstack(others)
    if matrix.shape[1] != len(a.hashvalues):
        raise ValueError("cannot compare MinHash signatures of different sizes")
    return np.count_nonzero(matrix == a.hashvalues[None, :], axis=1) / matrix.shape[1]


@lru_cache(maxsize=16)
def matches_needed(threshold: float, num_perm: int) -> int:
    """The fewest equal hash values of `num_perm` whose Jaccard estimate (their share) reaches `threshold`, in the
    estimate's own floating point; num_perm + 1 when none does."""
    return next((count for count in range(num_perm + 1) if count / num_perm >= threshold), num_perm + 1)


class HashTable:
    """The MinHash hash values (uint32, 512 bytes at 128 permutations) of indexed documents, one row per document key
    in one growing matrix: the LSH's proposals for a document, thousands in a large index, are checked with one
    gather and one comparison, with no lookup per proposal. Keys are small integers given out in order.

    Each row also has a fingerprint: the lowest byte of each hash value (128 bytes at 128 permutations). Equal hash
    values have equal lowest bytes, so the equal bytes of two rows are at least as many as their equal values: a
    proposal whose bytes fall short of the threshold is ruled out for certain, reading a quarter of the memory. In a
    large index almost every proposal is ruled out so (300,000 spliced benchmark articles: ~8,500 proposals a
    document, ~0.4 reach 0.2); the few left are compared in full, so the answer is exactly the full comparison's."""

    def __init__(self, num_perm: int) -> None:
        self.num_perm = num_perm
        self._rows = np.zeros((0, num_perm), dtype=np.uint32)
        self._bytes = np.zeros((0, num_perm), dtype=np.uint8)
        self._known = np.zeros(0, dtype=bool)

    def put(self, key: int, values: np.ndarray) -> None:
        self.put_many(np.array([key], dtype=np.int64), np.asarray(values)[None, :])

    def put_many(self, keys: np.ndarray, values: np.ndarray) -> None:
        """The hash values of `keys` (one row of `values` each)."""
        keys = np.asarray(keys, dtype=np.int64)
        if not len(keys):
            return
        top = int(keys.max())
        if top >= len(self._known):
            size = max(top + 1, 2 * len(self._known), 1024)
            self._rows = _grown(self._rows, size)
            self._bytes = _grown(self._bytes, size)
            self._known = _grown(self._known, size)
        values = np.asarray(values, dtype=np.uint32)
        self._rows[keys] = values
        self._bytes[keys] = (values & 0xFF).astype(np.uint8)
        self._known[keys] = True

    def keys(self) -> np.ndarray:
        """The keys whose values are held, in increasing order."""
        return np.flatnonzero(self._known)

    def to_bytes(self) -> bytes:
        """The held keys and their hash values, as an .npz of plain arrays (no pickle)."""
        keys = self.keys()
        buffer = io.BytesIO()
        np.savez(buffer, num_perm=np.array([self.num_perm], dtype=np.int64), keys=keys, values=self._rows[keys])
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, num_perm: int) -> "HashTable":
        """Raises ValueError when the bytes are not hash values of `num_perm` permutations."""
        table = cls(num_perm)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                stored, keys, values = arrays["num_perm"], arrays["keys"], arrays["values"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a hash value file ({exc})") from None
        if stored.tolist() != [num_perm] or values.shape != (len(keys), num_perm):
            raise ValueError(f"the hash value file holds {stored.tolist()} permutations; this index needs {num_perm}")
        table.put_many(keys, values)
        return table

    def drop(self, key: int) -> None:
        if key < len(self._known):
            self._known[key] = False

    def clear(self) -> None:
        self._known[:] = False

    def reaching(self, sig: LeanMinHash, keys: np.ndarray, threshold: float) -> np.ndarray:
        """The distinct keys of `keys` (all held; a key may come more than once) whose Jaccard estimate with `sig`
        is at least `threshold`, in increasing order: jaccard_many's estimates, for the few keys whose fingerprints
        do not rule them out."""
        keys = np.asarray(keys, dtype=np.int64)
        if not len(keys):
            return keys
        lowest = (np.asarray(sig.hashvalues) & 0xFF).astype(np.uint8)
        if len(lowest) != self.num_perm:
            raise ValueError("cannot compare MinHash signatures of different sizes")
        needed = matches_needed(threshold, self.num_perm)
        equal_bytes = np.take(self._bytes, keys, axis=0) == lowest  # np.take: faster than indexing with keys
        maybe = keys[equal_bytes.sum(axis=1, dtype=np.int32) >= needed]  # a sum: faster than count_nonzero here
        if len(maybe):
            maybe = maybe[jaccard_many(sig, self._rows[maybe]) >= threshold]
        return np.unique(maybe)


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """`array` with its rows copied into a zeroed array of `size` rows."""
    grown = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    grown[:len(array)] = array
    return grown


class _Bands:
    """Band hashes with their keys, each band (row) sorted by hash, searched with binary search."""

    def __init__(self, hashes: np.ndarray, keys: np.ndarray) -> None:
        self.hashes, self.keys = hashes, keys  # (bands, n) each

    @classmethod
    def empty(cls, bands: int) -> "_Bands":
        return cls(np.zeros((bands, 0), dtype=np.uint64), np.zeros((bands, 0), dtype=np.int64))

    def __len__(self) -> int:
        return self.hashes.shape[1]

    def merged(self, hashes: np.ndarray, keys: np.ndarray) -> "_Bands":
        """These bands with more band hashes (bands, m) inserted in order: a copy, O(n + m log m) a band."""
        order = np.argsort(hashes, axis=1, kind="stable")
        hashes, keys = np.take_along_axis(hashes, order, axis=1), np.take_along_axis(keys, order, axis=1)
        rows = [(np.insert(h, where, new_h), np.insert(k, where, new_k))
                for h, k, new_h, new_k in zip(self.hashes, self.keys, hashes, keys)
                for where in [np.searchsorted(h, new_h, side="right")]]
        return _Bands(np.vstack([h for h, _ in rows]), np.vstack([k for _, k in rows]))

    def without(self, removed: np.ndarray) -> "_Bands":
        keep = ~np.isin(self.keys, removed)  # every band holds each key once: each row keeps as many
        bands = self.hashes.shape[0]
        return _Bands(self.hashes[keep].reshape(bands, -1), self.keys[keep].reshape(bands, -1))

    def search(self, wanted: np.ndarray, found: list[list[np.ndarray]]) -> None:
        """Append to found[i] the keys sharing a band hash with wanted[i] (queries, bands)."""
        if not len(self):
            return
        for band, (column, keys) in enumerate(zip(self.hashes, self.keys)):
            lo = np.searchsorted(column, wanted[:, band], side="left")
            hi = np.searchsorted(column, wanted[:, band], side="right")
            for row in np.flatnonzero(hi > lo).tolist():
                found[row].append(keys[lo[row]:hi[row]])


class LSHIndex:
    """Banded MinHash LSH over integer document keys: two documents are proposed to each other when all hash values
    of one band agree, for some band. The banding (bands x rows for the threshold) is datasketch's own choice, so the
    proposals are those of datasketch's MinHashLSH; the storage is not. MinHashLSH keeps a Python bytes object and a
    set per band and document, about 7 KB a document; here each band is a sorted array of 64-bit band hashes and one
    of keys, 16 bytes a band and document (448 bytes at 28 bands), searched with binary search. New documents are
    merged into a small sorted tail at the next query, and the tail into the main arrays once it holds more than a
    sixteenth of them (a merge copies the arrays, so the main ones are copied rarely). Removed keys are left out of
    answers and dropped at the next merge into the main arrays; keys are never reused."""

    def __init__(self, *, threshold: float, num_perm: int) -> None:
        self.threshold = threshold
        self.num_perm = num_perm
        probe = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.bands, self.rows = int(probe.b), int(probe.r)
        self._main = _Bands.empty(self.bands)
        self._tail = _Bands.empty(self.bands)
        self._pending_keys: list[int] = []
        self._pending_hashes: list[np.ndarray] = []
        self._live: set[int] = set()
        self._removed: set[int] = set()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: int) -> bool:
        return key in self._live

    def band_hashes(self, hash_values: np.ndarray) -> np.ndarray:
        """One uint64 per band: the band's hash values (32-bit, as datasketch makes them) packed when a band has at
        most two rows, so that equal hashes mean equal bands; mixed by multiplication otherwise (equal bands still
        give equal hashes; a rare collision only adds a proposal, which the Jaccard check filters)."""
        values = np.asarray(hash_values, dtype=np.uint64)[..., :self.bands * self.rows]
        values = values.reshape(*values.shape[:-1], self.bands, self.rows)
        if self.rows == 1:
            return values[..., 0].copy()
        if self.rows == 2:
            return (values[..., 0] << np.uint64(32)) | values[..., 1]
        mixed = values[..., 0].copy()
        with np.errstate(over="ignore"):
            for i in range(1, self.rows):
                mixed = mixed * np.uint64(0x9E3779B97F4A7C15) + values[..., i]
        return mixed

    def add(self, key: int, sig: LeanMinHash) -> None:
        if key in self._live or key in self._removed:
            raise ValueError(f"key {key} was already given to the LSH index (keys are never reused)")
        self._pending_keys.append(key)
        self._pending_hashes.append(self.band_hashes(sig.hashvalues))
        self._live.add(key)

    def remove(self, key: int) -> None:
        if key in self._live:
            self._live.discard(key)
            self._removed.add(key)

    def query(self, sig: LeanMinHash) -> np.ndarray:
        """The keys the LSH proposes for `sig`, in increasing order."""
        return self.query_many(np.asarray(sig.hashvalues)[None, :])[0]

    def hits(self, sig: LeanMinHash) -> np.ndarray:
        """hits_many() for one signature."""
        return self.hits_many(np.asarray(sig.hashvalues)[None, :])[0]

    def query_many(self, hash_values: np.ndarray) -> list[np.ndarray]:
        """query() for each row of a matrix of hash values."""
        return [np.unique(hits) for hits in self.hits_many(hash_values)]

    def hits_many(self, hash_values: np.ndarray) -> list[np.ndarray]:
        """For each row of a matrix of hash values, the keys that share a band with it, once per band shared and in
        no order: query_many's answers before they are made distinct, for a caller that keeps few of them and can
        make distinct just those. One binary search per band for all rows."""
        self._settle()
        wanted = self.band_hashes(np.asarray(hash_values))  # (queries, bands)
        found: list[list[np.ndarray]] = [[] for _ in range(len(wanted))]
        self._main.search(wanted, found)
        self._tail.search(wanted, found)
        removed = np.fromiter(self._removed, dtype=np.int64, count=len(self._removed))
        answers = []
        for parts in found:
            keys = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            answers.append(keys[~np.isin(keys, removed)] if len(removed) and len(keys) else keys)
        return answers

    def _settle(self) -> None:
        """Merge the documents added since the last query into the tail, and the tail into the main arrays when
        it has grown past TAIL_LIMIT and a sixteenth of them."""
        if self._pending_keys:
            keys = np.asarray(self._pending_keys, dtype=np.int64)
            self._tail = self._tail.merged(np.vstack(self._pending_hashes).T,
                                           np.broadcast_to(keys, (self.bands, len(keys))))
            self._pending_keys, self._pending_hashes = [], []
        if len(self._tail) > max(TAIL_LIMIT, len(self._main) // 16):
            self._compact()

    def _compact(self) -> None:
        """Everything into the main arrays, removed keys dropped."""
        main = self._main.merged(self._tail.hashes, self._tail.keys) if len(self._tail) else self._main
        if self._removed:
            main = main.without(np.fromiter(self._removed, dtype=np.int64, count=len(self._removed)))
        self._main, self._tail, self._removed = main, _Bands.empty(self.bands), set()

    def to_bytes(self) -> bytes:
        self._settle()
        self._compact()
        buffer = io.BytesIO()
        np.savez(buffer, layout=np.array([self.bands, self.rows, self.num_perm], dtype=np.int64),
                 hashes=self._main.hashes, keys=self._main.keys)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, threshold: float, num_perm: int) -> "LSHIndex":
        """Raises ValueError when the bytes are not an LSH index of this banding (the caller then rebuilds it)."""
        index = cls(threshold=threshold, num_perm=num_perm)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                layout, hashes, keys = arrays["layout"], arrays["hashes"], arrays["keys"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not an LSH index file ({exc})") from None
        expected = [index.bands, index.rows, num_perm]
        if layout.tolist() != expected or hashes.shape != keys.shape or hashes.shape[0] != index.bands:
            raise ValueError(f"the LSH index file has banding {layout.tolist()}; this index needs {expected}")
        index._main = _Bands(hashes.astype(np.uint64), keys.astype(np.int64))
        index._live = set(keys[0].tolist())
        return index
