"""Shingling, MinHash signatures and the LSH candidate index (datasketch).

Shingles are word n-grams over the content words of a text (ASCII-folded, lower-cased, stop words dropped). Dropping
stop words and using short n-grams is what lets rewrites, not only copies, share shingles: a paraphrase keeps the
names and content words but changes the glue between them. scripts/measure_shingles.py compares the schemes on the
labelled sets; the README has the figures that chose the default.
"""

from __future__ import annotations

import pickle
from functools import lru_cache

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from .sentences import fold, words

SEED = 1
#: datasketch's hashing scheme; stored signatures are only comparable under the same one.
SCHEME = "affine32"

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


class HashTable:
    """The MinHash hash values (uint32, 512 bytes at 128 permutations) of indexed documents, one row per document key
    in one growing matrix: the LSH's proposals for a document, thousands in a large index, are checked with one
    gather and one comparison, with no lookup per proposal. Keys are small integers given out in order."""

    def __init__(self, num_perm: int) -> None:
        self.num_perm = num_perm
        self._rows = np.zeros((0, num_perm), dtype=np.uint32)
        self._known = np.zeros(0, dtype=bool)

    def put(self, key: int, values: np.ndarray) -> None:
        if key >= len(self._known):
            size = max(key + 1, 2 * len(self._known), 1024)
            rows = np.zeros((size, self.num_perm), dtype=np.uint32)
            rows[:len(self._rows)] = self._rows
            known = np.zeros(size, dtype=bool)
            known[:len(self._known)] = self._known
            self._rows, self._known = rows, known
        self._rows[key] = values
        self._known[key] = True

    def drop(self, key: int) -> None:
        if key < len(self._known):
            self._known[key] = False

    def clear(self) -> None:
        self._known[:] = False

    def missing(self, keys: np.ndarray) -> np.ndarray:
        """Those of `keys` whose values are not held."""
        keys = np.asarray(keys, dtype=np.int64)
        inside = keys < len(self._known)
        held = np.zeros(len(keys), dtype=bool)
        held[inside] = self._known[keys[inside]]
        return keys[~held]

    def jaccard(self, sig: LeanMinHash, keys: np.ndarray) -> np.ndarray:
        """jaccard(sig, signature of key) for each of `keys` (all held)."""
        return jaccard_many(sig, self._rows[keys])


class LSHIndex:
    """MinHashLSH keyed by integer document keys."""

    def __init__(self, *, threshold: float, num_perm: int, lsh: MinHashLSH | None = None) -> None:
        self.threshold = threshold
        self.num_perm = num_perm
        self._lsh = lsh if lsh is not None else MinHashLSH(threshold=threshold, num_perm=num_perm)

    def __len__(self) -> int:
        return len(self._lsh.keys)

    def add(self, key: int, sig: LeanMinHash) -> None:
        self._lsh.insert(key, sig, check_duplication=False)

    def remove(self, key: int) -> None:
        if key in self._lsh:
            self._lsh.remove(key)

    def query(self, sig: LeanMinHash) -> np.ndarray:
        """The keys the LSH proposes for `sig`, in increasing order."""
        return np.sort(np.fromiter(self._lsh.query(sig), dtype=np.int64))

    def to_bytes(self) -> bytes:
        return pickle.dumps(self._lsh, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes, *, threshold: float, num_perm: int) -> "LSHIndex":
        """Only for bytes this package wrote; store.py checks their SHA-256 against the index before calling."""
        lsh = pickle.loads(data)  # noqa: S301 - checksum verified by the caller
        if not isinstance(lsh, MinHashLSH):
            raise ValueError("LSH file does not hold a MinHashLSH")
        return cls(threshold=threshold, num_perm=num_perm, lsh=lsh)
