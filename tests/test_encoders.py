"""The encoders' settings that need no model: precision chosen by argument, environment or the CPU."""

from __future__ import annotations

import pytest

from detector import SentenceTransformerEncoder
from detector.errors import DetectorError
from detector.encoders import fast_model_path


def test_precision_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("DETECTOR_PRECISION", "bfloat16")
    assert SentenceTransformerEncoder(precision="float32").precision == "float32"
    assert SentenceTransformerEncoder().precision == "bfloat16"


def test_auto_precision_is_decided_by_the_cpu(monkeypatch):
    monkeypatch.delenv("DETECTOR_PRECISION", raising=False)
    monkeypatch.setattr("detector.encoders.native_bfloat16", lambda: False)
    assert SentenceTransformerEncoder().precision == "float32"
    monkeypatch.setattr("detector.encoders.native_bfloat16", lambda: True)
    assert SentenceTransformerEncoder(precision="auto").precision == "bfloat16"


@pytest.mark.parametrize("source", ["argument", "environment"])
def test_unknown_precision_is_refused_with_the_choices_when_first_needed(monkeypatch, source):
    # refused when the encoder is first asked to compute, not when it is made: commands that never encode (info,
    # clusters) still work
    if source == "argument":
        encoder = SentenceTransformerEncoder(precision="fp8")
        with pytest.raises(DetectorError) as error:
            _ = encoder.precision
        assert str(error.value) == "unknown precision 'fp8' (from the argument): choose one of auto, bfloat16, float32"
    else:
        monkeypatch.setenv("DETECTOR_PRECISION", "half")
        encoder = SentenceTransformerEncoder()
        with pytest.raises(DetectorError) as error:
            _ = encoder.precision
        assert str(error.value) == ("unknown precision 'half' (from $DETECTOR_PRECISION): choose one of auto, "
                                    "bfloat16, float32")


class _Tokenizer:
    cls_token_id, sep_token_id, pad_token_id, unk_token_id, mask_token_id = 101, 102, 0, 100, 103


def test_the_marks_a_tokenizer_adds_are_dropped_but_unknown_words_are_kept():
    from detector.encoders import _added_marks

    assert _added_marks(_Tokenizer()) == [0, 101, 102, 103]  # [UNK] (100) stands for a word: kept
    assert _added_marks(object()) is None  # not a Hugging Face tokenizer: no token vectors to give
    assert _added_marks(None) is None


def test_a_model_without_a_hugging_face_tokenizer_gives_no_token_vectors():
    import numpy as np

    class StaticLike:  # a sentence-transformers model whose first module is no transformer
        tokenizer = object()

        def encode(self, sentences, **_):
            return np.ones((len(sentences), 4), dtype=np.float32)

    encoder = SentenceTransformerEncoder("static-like", precision="float32")
    encoder._model = StaticLike()
    vectors, tokens = encoder.encode_with_tokens(["one text", "another"])
    assert tokens is None and vectors.shape == (2, 4)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


def test_a_cache_folder_that_cannot_be_written_is_a_clear_error(tmp_path, monkeypatch):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("DETECTOR_CACHE", str(in_the_way / "cache"))
    with pytest.raises(DetectorError, match="cannot write the fast profile's model into the cache folder .* set "
                                            "DETECTOR_CACHE to a folder this user can write"):
        fast_model_path()
