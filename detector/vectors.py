"""The FAISS index of document vectors, how vectors are stored, and the one place where FAISS scores become
similarities."""

from __future__ import annotations

import faiss
import numpy as np


def cosine_from_inner_product(scores: np.ndarray) -> np.ndarray:
    """THE distance -> similarity conversion. Every vector here is L2-normalised and the indexes use inner product,
    so FAISS's score is the cosine similarity already; float error can push it a hair past 1, so clip to [-1, 1]."""
    return np.clip(scores, -1.0, 1.0)


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def document_vector(sentence_vectors: np.ndarray, common_direction: np.ndarray | None = None) -> np.ndarray:
    """A document's vector: the normalised mean of its sentence vectors (every sentence counts, none truncated).

    With `common_direction` (a unit vector), that direction is removed from the mean before normalising: a static
    model's vectors all lean one way, so any two documents score a high cosine; without the shared lean their
    cosines spread out, and the nearest documents mean something again ("all-but-the-top", Mu and Viswanath 2018)."""
    if len(sentence_vectors) == 0:
        return np.zeros(sentence_vectors.shape[1], dtype=np.float32)
    mean = normalise_rows(sentence_vectors.mean(axis=0, keepdims=True))
    if common_direction is not None:
        mean = normalise_rows(mean - (mean @ common_direction)[:, None] * common_direction[None, :])
    return mean[0]


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


class VectorIndex:
    """Exact inner-product search over normalised vectors, keyed by int64 ids (IndexIDMap2 over IndexFlatIP)."""

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                     np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        if ids:
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))

    def ids(self) -> list[int]:
        return faiss.vector_to_array(self._index.id_map).tolist()


    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids) of the k nearest for each row; ids of -1 mark missing neighbours."""
        k = min(k, len(self))
        if k <= 0:
            n = len(vectors)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        scores, ids = self._index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return cosine_from_inner_product(scores), ids

    def to_bytes(self) -> bytes:
        return faiss.serialize_index(self._index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, dimension: int) -> "VectorIndex":
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if index.d != dimension:
            raise ValueError(f"vector index has dimension {index.d}, expected {dimension}")
        return cls(dimension, index)
