"""The FAISS index of document vectors, how vectors are stored, and the one place where FAISS scores become
similarities."""

from __future__ import annotations

import faiss
import numpy as np
from threadpoolctl import threadpool_limits


def cosine_from_inner_product(scores: np.ndarray) -> np.ndarray:
    """THE distance -> similarity conversion. Every vector here is L2-normalised and the indexes use inner product,
    so FAISS's score is the cosine similarity already; float error can push it a hair past 1, so clip to [-1, 1]."""
    return np.clip(scores, -1.0, 1.0)


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def document_vector(sentence_vectors: np.ndarray, common_directions: np.ndarray | None = None) -> np.ndarray:
    """A document's vector: the normalised mean of its sentence vectors (every sentence counts, none truncated).

    With `common_directions` (a unit vector, or rows of orthonormal vectors), those directions are removed from the
    mean before normalising: a static model's vectors all lean one way, so any two documents score a high cosine;
    without the shared lean, and the few directions along which every text varies most (what any news report has,
    not what this one says), their cosines spread out and the nearest documents mean something again
    ("all-but-the-top", Mu and Viswanath 2018)."""
    if len(sentence_vectors) == 0:
        return np.zeros(sentence_vectors.shape[1], dtype=np.float32)
    mean = normalise_rows(sentence_vectors.mean(axis=0, keepdims=True))
    if common_directions is not None:
        basis = np.atleast_2d(common_directions)
        mean = normalise_rows(mean - (mean @ basis.T) @ basis)
    return mean[0]


def orthonormal_rows(vectors: np.ndarray) -> np.ndarray:
    """Orthonormal rows (float64) spanning the rows of `vectors`, each made orthogonal to the ones before it
    (Gram-Schmidt, as a QR decomposition): the first keeps the first row's direction."""
    q, r = np.linalg.qr(np.asarray(vectors, dtype=np.float64).T)
    return (q * np.sign(np.diag(r))).T


def as_stored(sentence_vectors: np.ndarray) -> np.ndarray:
    """Sentence vectors as the index keeps them: rounded to float16 (half the bytes; cosines move by about 1e-3),
    computed with in float32. Fresh vectors are rounded before any use, so a pair scores the same whether its
    vectors were just encoded or read back from the index."""
    return np.asarray(sentence_vectors, dtype=np.float16).astype(np.float32)


def matrix_to_bytes(sentence_vectors: np.ndarray) -> bytes:
    return np.ascontiguousarray(sentence_vectors, dtype=np.float16).tobytes()


def matrix_from_bytes(data: bytes, dimension: int) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float16).reshape(-1, dimension).astype(np.float32)


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def vector_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float32)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarities of two sets of normalised vectors (rows of a against rows of b)."""
    return cosine_from_inner_product(a @ b.T)


#: exact search (a flat index) while the index holds fewer vectors than this; from then on, a graph (HNSW) whose
#: search time barely grows with the index. scripts/vector_search.py, fast-profile vectors, one query: at 50,000
#: vectors flat 2.1 ms, HNSW 0.8 ms finding 97.8% of the exact 21 nearest; at 100,000, 4.4 ms against 1.0 ms, 95.3%.
HNSW_FROM = 50_000
#: a graph goes back to exact search only when removals bring it below this share of HNSW_FROM (not at HNSW_FROM
#: itself, so an index that hovers around it is not rebuilt back and forth).
FLAT_AGAIN_BELOW = 0.8
#: HNSW's links per vector, and how many candidates it follows while adding and searching (FAISS's parameters).
HNSW_LINKS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
#: a graph is rebuilt without the vectors removed from it once they are this share of it.
HNSW_REBUILD_SHARE = 0.1
#: searches of fewer vectors than this run on one thread (FAISS's threads cost more than they save for them).
ONE_THREAD_BELOW = 20
#: a search of a flat index for at least this many vectors with a floor (search's `at_least`) is one matrix product
#: (numpy's BLAS, on one thread: during indexing the other core prepares the next batch, and a second BLAS thread
#: waiting for it made the product slower) of which only the scores at or above the floor are sorted: FAISS's
#: exact search spends most of its time keeping the k best of every row. Measured on this machine, a batch of 256
#: fast-profile document vectors against 5,000 indexed: 23-60 ms in FAISS, 9-12 ms so; over indexing 10,000
#: spliced articles, 1.97 s of search in FAISS, 1.65 s so with two BLAS threads, 1.09 s with one. Queries are
#: multiplied this many at a time, which bounds the score matrix (64 x 50,000 floats: 12.8 MB).
FLAT_PRODUCT_ROWS = 64
#: when a product's rows hold more than this many times k scores at or above the floor, those queries and the rest
#: are searched FAISS's way instead (vectors that crowd together: a model without its common direction removed, or
#: a low floor): sorting them all costs more than keeping the k best of each row (40,000 crowded vectors, 256
#: queries: 3.0 s sorted against 0.23 s in FAISS; 0.23 s so).
CROWDED_PER_ROW = 8
_GRAPH_MAGIC = b"detector-hnsw-1\n"


class VectorIndex:
    """Inner-product search over normalised vectors, keyed by int64 ids: exact (IndexIDMap2 over IndexFlatIP)
    below HNSW_FROM vectors, HNSW from then on (switched when the index grows past it, and back only well below it).
    HNSW cannot delete a vector: a removed one is remembered and left out of results until the graph is rebuilt
    without it."""

    def __init__(self, dimension: int, index: faiss.Index | None = None, removed: set[int] | None = None) -> None:
        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._removed: set[int] = removed or set()
        #: every id in a graph, removed ones included (membership tests without scanning FAISS's id map); None for
        #: a flat index
        self._in_graph: set[int] | None = (set(faiss.vector_to_array(self._index.id_map).tolist())
                                           if isinstance(faiss.downcast_index(self._index.index), faiss.IndexHNSW)
                                           else None)

    @property
    def kind(self) -> str:
        return "flat" if self._in_graph is None else "hnsw"

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._removed)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        if self._in_graph is not None and not self._in_graph.isdisjoint(ids.tolist()):
            self._rebuild(graph=True)  # an id that is back: its old vector must leave the graph first
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        if self._in_graph is not None:
            self._in_graph.update(ids.tolist())
        elif self._index.ntotal >= HNSW_FROM:
            self._rebuild(graph=True)

    def remove(self, ids: list[int]) -> None:
        if not ids:
            return
        if self._in_graph is None:
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))
            return
        self._removed.update(i for i in ids if i in self._in_graph)
        if len(self._removed) >= HNSW_REBUILD_SHARE * self._index.ntotal:
            self._rebuild(graph=len(self) >= FLAT_AGAIN_BELOW * HNSW_FROM)

    def _rebuild(self, *, graph: bool) -> None:
        """A new index of the vectors held (removed ones left out): a graph, or a flat index."""
        all_ids = faiss.vector_to_array(self._index.id_map)
        keep = np.array([i not in self._removed for i in all_ids.tolist()], dtype=bool)
        vectors = self._index.index.reconstruct_n(0, self._index.ntotal)[keep] if len(all_ids) else \
            np.zeros((0, self.dimension), dtype=np.float32)
        if graph:
            inner = faiss.IndexHNSWFlat(self.dimension, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            inner = faiss.IndexFlatIP(self.dimension)
        index = faiss.IndexIDMap2(inner)
        if keep.any():
            index.add_with_ids(np.ascontiguousarray(vectors), all_ids[keep])
        self._index, self._removed = index, set()
        self._in_graph = set(all_ids[keep].tolist()) if graph else None

    def ids(self) -> list[int]:
        return [i for i in faiss.vector_to_array(self._index.id_map).tolist() if i not in self._removed]

    def search(self, vectors: np.ndarray, k: int, *, at_least: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids) of the k nearest for each row, best first; ids of -1 mark missing neighbours.
        `at_least`: neighbours less similar than this are not wanted, and may be left out (as missing ones)."""
        k = min(k, len(self))
        n = len(vectors)
        if k <= 0:
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        queries = np.ascontiguousarray(vectors, dtype=np.float32)
        if at_least is not None and self._in_graph is None and n >= ONE_THREAD_BELOW:
            return self._flat_product_search(queries, k, at_least)
        total = int(self._index.ntotal)
        if not self._removed:
            scores, ids = self._faiss_search(queries, k)
            return cosine_from_inner_product(scores), ids
        # removed vectors still come back from a graph, to be dropped: ask for a few more, and again for four times
        # as many, for the rows that came up short only, until each row has k or the whole graph was asked for
        wanted = min(total, 2 * k + 10)
        scores, ids = _without(*self._faiss_search(queries, wanted), self._removed, k)
        short = np.flatnonzero((ids < 0).any(axis=1))
        while len(short) and wanted < total:
            wanted = min(total, 4 * wanted)
            scores[short], ids[short] = _without(*self._faiss_search(queries[short], wanted), self._removed, k)
            short = short[(ids[short] < 0).any(axis=1)]
        return cosine_from_inner_product(scores), ids

    def _flat_product_search(self, queries: np.ndarray, k: int, at_least: float) -> tuple[np.ndarray, np.ndarray]:
        """search() of a flat index for the neighbours at least `at_least` similar (see FLAT_PRODUCT_ROWS): the k
        best of those, ties in the order of their ids (for queries among crowded vectors, CROWDED_PER_ROW, in
        FAISS's order). The same neighbours as FAISS's k nearest at or above the floor, up to float rounding and
        the order of ties."""
        total, dimension = int(self._index.ntotal), self.dimension
        # views of FAISS's own arrays (no copy), read before anything changes the index
        stored = faiss.rev_swig_ptr(faiss.downcast_index(self._index.index).get_xb(), total * dimension)
        stored = stored.reshape(total, dimension)
        ids = faiss.rev_swig_ptr(self._index.id_map.data(), total)
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_ids = np.full((len(queries), k), -1, dtype=np.int64)
        with threadpool_limits(1, user_api="blas"):
            for start in range(0, len(queries), FLAT_PRODUCT_ROWS):
                chunk = queries[start:start + FLAT_PRODUCT_ROWS]
                scores = cosine_from_inner_product(chunk @ stored.T)
                rows, columns = np.nonzero(scores >= at_least)
                if len(rows) > CROWDED_PER_ROW * k * len(chunk):
                    break  # vectors that crowd together: these queries and the rest are searched FAISS's way
                values = scores[rows, columns]
                order = np.lexsort((ids[columns], -values, rows))  # by row, then best first, then by id
                rows, columns, values = rows[order], columns[order], values[order]
                rank = np.arange(len(rows)) - np.searchsorted(rows, rows)  # place within its row
                kept = rank < k
                out_scores[start + rows[kept], rank[kept]] = values[kept]
                out_ids[start + rows[kept], rank[kept]] = ids[columns[kept]]
            else:
                return out_scores, out_ids
        found_scores, found_ids = self._faiss_search(queries[start:], k)
        found_scores = cosine_from_inner_product(found_scores)
        below = found_scores < at_least
        found_scores[below], found_ids[below] = -np.inf, -1
        out_scores[start:], out_ids[start:] = found_scores, found_ids
        return out_scores, out_ids

    def _faiss_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        threads = faiss.omp_get_max_threads()
        if len(queries) < ONE_THREAD_BELOW:
            faiss.omp_set_num_threads(1)
        try:
            return self._index.search(queries, k)
        finally:
            faiss.omp_set_num_threads(threads)

    def to_bytes(self) -> bytes:
        data = faiss.serialize_index(self._index).tobytes()
        if self._in_graph is None:
            return data  # as before graphs existed: older checkpoints read the same way
        removed = np.array(sorted(self._removed), dtype=np.int64).tobytes()
        return _GRAPH_MAGIC + len(removed).to_bytes(8, "little") + removed + data

    @classmethod
    def from_bytes(cls, data: bytes, dimension: int) -> "VectorIndex":
        removed: set[int] = set()
        if data.startswith(_GRAPH_MAGIC):
            start = len(_GRAPH_MAGIC) + 8
            size = int.from_bytes(data[len(_GRAPH_MAGIC):start], "little")
            removed = set(np.frombuffer(data[start:start + size], dtype=np.int64).tolist())
            data = data[start + size:]
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if index.d != dimension:
            raise ValueError(f"vector index has dimension {index.d}, expected {dimension}")
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = HNSW_EF_SEARCH  # this version's setting, whatever the checkpoint was written with
        return cls(dimension, index, removed)


def _without(scores: np.ndarray, ids: np.ndarray, removed: set[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first k results of each row that are not removed (FAISS's order kept), padded with -1."""
    out_scores = np.full((len(ids), k), -np.inf, dtype=scores.dtype)
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    for row in range(len(ids)):
        kept = [j for j, i in enumerate(ids[row].tolist()) if i >= 0 and i not in removed][:k]
        out_scores[row, :len(kept)] = scores[row, kept]
        out_ids[row, :len(kept)] = ids[row, kept]
    return out_scores, out_ids
