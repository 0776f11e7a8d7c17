"""Shared fixtures: a deterministic fake encoder, index folders, detectors, the real bundled model, tiny corpora."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from detector import Detector, Document, ScoringParams, Settings
from detector.encoders import SentenceTransformerEncoder

SEEDS = Path(__file__).parent.parent / "seeds"

# ---- a fake encoder ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = frozenset("""a an and are as at be by for from had has have he her his in is it its of on or said says she
that the their they this to was were who will with""".split())


class FakeEncoder:
    """Hashed bag of lower-case content words, signed, L2-normalised (the "hashing trick").

    Sentences that share content words get a high cosine, sentences that share none a cosine near 0. Buckets and
    signs come from blake2b, not Python's per-process randomised hash(), so vectors are the same in every process.
    Every encode() call is recorded in `calls`, so tests can count the sentences that reached the "model".
    """

    name = "fake-hash-encoder"

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension
        self.calls: list[list[str]] = []

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def sentences_encoded(self) -> int:
        return sum(len(call) for call in self.calls)

    def _bucket(self, token: str) -> tuple[int, float]:
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest[:4], "little") % self._dimension, (1.0 if digest[4] & 1 else -1.0)

    def encode(self, sentences: list[str]) -> np.ndarray:
        self.calls.append(list(sentences))
        vectors = np.zeros((len(sentences), self._dimension), dtype=np.float32)
        for row, sentence in enumerate(sentences):
            tokens = [t for t in _TOKEN.findall(sentence.lower()) if t not in _STOP] or [sentence.lower()]
            for token in tokens:
                bucket, sign = self._bucket(token)
                vectors[row, bucket] += sign
            if not vectors[row].any():  # the signed counts cancelled out: fall back to the whole sentence
                bucket, sign = self._bucket(sentence)
                vectors[row, bucket] = sign
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class OtherFakeEncoder(FakeEncoder):
    """The same vectors under another model name: an index built with FakeEncoder must refuse it."""

    name = "other-fake-encoder"


#: Scoring parameters for the fake encoder, fixed here so that detector tests do not move when params.json is
#: recalibrated for the real model (test_model.py checks the shipped parameters with the real model). The fake
#: encoder's cosines for paraphrases are lower than a real model's, hence the lower alignment threshold.
TEST_PARAMS = ScoringParams(
    align_threshold=0.6,
    weights={"coverage_min": 2.0, "coverage_max": 2.0, "doc_cosine": 2.0, "jaccard": 2.0, "term_cosine": 6.0},
    intercept=-6.0,
    same_story_threshold=0.5,
    # sentence pairs: probability rises with the cosine (and nothing else), even odds at 0.6
    sentence={"features": ["cosine", "word_jaccard", "bigram_jaccard", "term_cosine", "number_mismatch",
                           "length_ratio", "token_set_ratio"], "means": [0.0] * 7, "scales": [1.0] * 7,
              "weights": {"cosine": 10.0}, "intercept": -6.0, "threshold": 0.5},
    provenance={"status": "fixed for the test suite"},
)

#: Index settings of the fake-encoder tests, fixed for the same reason (the defaults are tuned on real data).
TEST_SETTINGS = Settings(model="fake-hash-encoder", num_perm=128, shingle_size=2, lsh_threshold=0.1, neighbors=20,
                         neighbor_min_cosine=0.5, rare_terms=2)

# ---- tiny corpora -------------------------------------------------------------------------------------------------

# Story A, version 1: a wire report of the Paiporta flash flood.
FLOOD_WIRE = """Flash floods swept through the Spanish town of Paiporta on October 29, killing at least 62 people, \
regional officials said on Wednesday.
Carlos Mazón, head of the Valencia regional government, said rescue teams were still searching for missing residents.
"We are living through an unprecedented situation," Mazón told reporters in Valencia.
The AEMET weather agency had issued a red alert for the Valencia region on Tuesday morning.
Residents of Paiporta described a wall of water that carried away cars and furniture."""

# Story A, version 2: a rewrite of FLOOD_WIRE (same facts, names, date and quote; other wording and order).
FLOOD_REWRITE = """At least 62 people died when flash floods hit Paiporta, a town near Valencia, on October 29, \
according to regional officials.
Rescue teams are still searching for missing residents, said Carlos Mazon, who heads the Valencia regional government.
"We are living through an unprecedented situation," Mazon said.
The AEMET agency had issued a red alert for the Valencia region on Tuesday morning.
Paiporta residents described a wall of water that swept away cars and furniture."""

# Story B: another flood (same topic, other place, date, people): a different story from A.
FLOOD_OTHER_EVENT = """Heavy rain caused flooding in the Italian region of Emilia-Romagna on May 17, forcing 10,000 \
people from their homes.
Stefano Bonaccini, president of Emilia-Romagna, said 14 rivers had burst their banks.
Civil protection teams evacuated residents of Faenza and Cesena overnight.
Farmers across the region said harvests were lost on thousands of hectares."""

# Story B, version 2: a rewrite of FLOOD_OTHER_EVENT.
FLOOD_OTHER_REWRITE = """Flooding forced 10,000 people from their homes in Emilia-Romagna, Italy, after heavy rain \
on May 17.
Fourteen rivers burst their banks, said Stefano Bonaccini, the president of Emilia-Romagna.
Overnight, civil protection teams evacuated residents of Faenza and Cesena.
Harvests were lost on thousands of hectares, farmers across the region said."""

# Unrelated: a chess result; shares no story, names or topic with the floods.
CHESS = """Magnus Carlsen won the World Blitz Chess Championship in New York on December 31.
The Norwegian grandmaster shared the title with Ian Nepomniachtchi after three drawn games in the final.
Organisers at Wall Street said the tournament drew a record online audience."""

# A bridge: half of story A and half of story B glued together. It resembles both, but A and B are still
# different stories, so it must not chain them into one cluster.
BRIDGE = "\n".join(FLOOD_WIRE.splitlines()[:3] + FLOOD_OTHER_EVENT.splitlines()[:2])


def doc(doc_id: str, text: str, **fields) -> Document:
    return Document(id=doc_id, text=text, **fields)


# ---- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def tmp_index(tmp_path: Path) -> Path:
    """A path for a new index folder (not created yet)."""
    return tmp_path / "index"


@pytest.fixture
def detector_factory(tmp_index: Path, fake_encoder: FakeEncoder):
    """Open (creating if needed, with TEST_SETTINGS) a Detector on `tmp_index` with the fake encoder and
    TEST_PARAMS; every Detector opened is closed at the end of the test."""
    opened: list[Detector] = []

    def factory(path: Path | None = None, *, encoder=None, params: ScoringParams = TEST_PARAMS,
                create: bool = True) -> Detector:
        encoder = encoder or fake_encoder
        settings = Settings(**{**TEST_SETTINGS.to_dict(), "model": encoder.name})
        detector = Detector.open(path or tmp_index, encoder=encoder, settings=settings, params=params, create=create)
        opened.append(detector)
        return detector

    yield factory
    for detector in opened:
        detector.close()


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> FakeEncoder:
    """Make Detector.open build a FakeEncoder wherever it would load a sentence-transformers model (for CLI tests).

    Only the fake model's name is accepted, so a test that forgets `--model fake-hash-encoder` fails loudly instead
    of writing a manifest that names a model the index was not built with.
    """
    encoder = FakeEncoder()

    def factory(name: str, **_: object) -> FakeEncoder:
        if name != FakeEncoder.name:
            raise AssertionError(f"CLI test asked for model {name!r}; pass --model {FakeEncoder.name}")
        return encoder

    monkeypatch.setattr("detector.encoders.load_encoder", factory)
    monkeypatch.setattr(ScoringParams, "shipped", classmethod(lambda cls, profile="accurate": TEST_PARAMS))
    return encoder


@pytest.fixture(scope="session")
def real_encoder() -> SentenceTransformerEncoder:
    """The bundled all-MiniLM-L6-v2, loaded offline, once per session."""
    encoder = SentenceTransformerEncoder()
    assert encoder.dimension == 384  # loads the model now, so a broken install fails here with a clear message
    return encoder


@pytest.fixture
def seeds_dir() -> Path:
    return SEEDS
