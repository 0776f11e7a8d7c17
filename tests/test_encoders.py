"""The encoders' settings that need no model: precision chosen by argument, environment or the CPU."""

from __future__ import annotations

import pytest

from detector import SentenceTransformerEncoder
from detector.errors import DetectorError


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
def test_unknown_precision_is_refused_with_the_choices(monkeypatch, source):
    if source == "argument":
        with pytest.raises(DetectorError) as error:
            SentenceTransformerEncoder(precision="fp8")
        assert str(error.value) == "unknown precision 'fp8' (from the argument): choose one of auto, bfloat16, float32"
    else:
        monkeypatch.setenv("DETECTOR_PRECISION", "half")
        with pytest.raises(DetectorError) as error:
            SentenceTransformerEncoder()
        assert str(error.value) == ("unknown precision 'half' (from $DETECTOR_PRECISION): choose one of auto, "
                                    "bfloat16, float32")
