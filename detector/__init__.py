"""detector: near-duplicate and rewrite detection for news articles."""

from .config import DEFAULT_MODEL, ScoringParams, Settings
from .detector import Detector
from .documents import Document, content_hash, normalise, read_paths
from .encoders import Encoder, SentenceTransformerEncoder
from .errors import (DetectorError, IncompatibleIndexError, IndexFolderError, IndexLockedError, InputError,
                     UnknownDocumentError)
from .dedup import POLICIES, Decision
from .pairs import PairScore, score_pairs
from .results import AlignedSentences, Cluster, IndexResult, Match, PairReport, RemoveResult

__all__ = [
    "DEFAULT_MODEL", "POLICIES", "AlignedSentences", "Cluster", "Decision", "Detector", "DetectorError", "Document",
    "Encoder", "PairScore", "RemoveResult", "score_pairs",
    "IncompatibleIndexError", "IndexFolderError", "IndexLockedError", "IndexResult", "InputError", "Match",
    "PairReport", "ScoringParams", "SentenceTransformerEncoder", "Settings", "UnknownDocumentError", "content_hash",
    "normalise", "read_paths",
]
__version__ = "0.1.0"
