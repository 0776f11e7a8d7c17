"""Runs the detector command line in a real process with the fake encoder and the test parameters, for the tests
that kill a process mid-run or run two at once: python tests/cli_worker.py dedup --index DIR ..."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import TEST_PARAMS, FakeEncoder  # noqa: E402

from detector import encoders  # noqa: E402
from detector.cli import cli  # noqa: E402
from detector.config import ScoringParams  # noqa: E402

encoders.load_encoder = lambda name="": FakeEncoder()
ScoringParams.shipped = classmethod(lambda cls, profile="accurate": TEST_PARAMS)

if __name__ == "__main__":
    cli(sys.argv[1:], prog_name="detector")
