"""The real bundled model (all-MiniLM-L6-v2, offline) with the shipped parameters on the seed articles.

These are the product requirements: the four rewrites of the Severansk / Seversk / Siversk story are one story, and
the article about another event with the same framing (004, Krasnoarmeysk) is not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector import Detector, Document, SentenceTransformerEncoder, read_paths
from detector.cli import cli

pytestmark = pytest.mark.model


def prefixes(groups) -> list[list[str]]:
    return sorted(sorted(member[:3] for member in group) for group in groups)


@pytest.fixture(scope="module")
def seed_detector(real_encoder, tmp_path_factory):
    """The seed articles indexed with default settings and the shipped scoring parameters."""
    seeds = Path(__file__).parent.parent / "seeds"
    detector = Detector.open(tmp_path_factory.mktemp("seeds") / "index", encoder=real_encoder, create=True)
    detector.index(read_paths([seeds]))
    yield detector
    detector.close()


def seed_id(detector: Detector, prefix: str) -> str:
    [found] = [d.id for d in detector.store.summaries() if d.id.startswith(prefix)]
    return found


def test_seed_index_uses_the_bundled_model(seed_detector):
    info = seed_detector.info()
    assert (info["model"], info["dimension"], info["documents"]) == ("all-MiniLM-L6-v2", 384, 5)


def test_seed_clusters_match_the_expected_stories(seed_detector, seeds_dir):
    expected = json.loads((seeds_dir / "expected_clusters.json").read_text(encoding="utf-8"))["clusters"]
    assert expected == [["000", "001", "002", "003"], ["004"]]
    assert prefixes(c.members for c in seed_detector.clusters()) == expected


def test_an_excerpt_that_joined_the_seed_story_stays_there_when_a_copy_of_it_arrives(real_encoder, seeds_dir,
                                                                                      tmp_path):
    # one paragraph of 002 (one sentence): the story's mean leaves it alone, its pair with 001 says "same story"
    [excerpt] = [line for line in (seeds_dir / "002_dcb24eba52aa9a74.txt").read_text(encoding="utf-8").splitlines()
                 if "conveyed this strategic update" in line]
    with Detector.open(tmp_path / "index", encoder=real_encoder, create=True) as detector:
        detector.index([*read_paths([seeds_dir]), Document(id="excerpt", text=excerpt)])
        story = [["000", "001", "002", "003", "exc"], ["004"]]
        assert prefixes(c.members for c in detector.clusters()) == story
        # found by the sentence it shares with 002 (its document vector and MinHash are far from that article's)
        source = seed_id(detector, "002")
        report = detector.report("excerpt", source)
        assert (report.sources, report.relation) == (["sentences"], "duplicate")
        [decision] = detector.decisions(["excerpt"], policy="duplicate")
        assert (decision.status, decision.matched_id) == ("duplicate", source)
        # a copy of it does not make the two a story of their own beside the seed story
        detector.index([Document(id="copy", text=excerpt + " (Reuters)")])
        assert prefixes(c.members for c in detector.clusters()) == [["000", "001", "002", "003", "cop", "exc"],
                                                                    ["004"]]


def test_rewrites_000_and_002_are_the_same_story(seed_detector):
    report = seed_detector.report(seed_id(seed_detector, "000"), seed_id(seed_detector, "002"))
    assert report.verdict == "same story", report.to_dict()["features"]
    assert any("slowly but surely moving forward" in pair.a_text.lower()
               and "slowly but surely moving forward" in pair.b_text.lower() for pair in report.aligned)
    assert any("Seversk" in term or "Severansk" in term for term in report.shared_terms)


def test_other_event_004_is_different(seed_detector):
    report = seed_detector.report(seed_id(seed_detector, "000"), seed_id(seed_detector, "004"))
    assert report.verdict == "different", report.to_dict()["features"]
    assert report.a_cluster != report.b_cluster


def test_every_rewrite_pair_scores_above_every_other_event_pair(seed_detector):
    ids = {p: seed_id(seed_detector, p) for p in ("000", "001", "002", "003", "004")}
    same = [seed_detector.report(ids[a], ids[b]).probability
            for a, b in [("000", "001"), ("000", "002"), ("000", "003"), ("001", "002"), ("001", "003"),
                         ("002", "003")]]
    other = [seed_detector.report(ids[a], ids["004"]).probability for a in ("000", "001", "002", "003")]
    assert min(same) > max(other)


def test_query_with_a_seed_finds_it_first(seed_detector, seeds_dir):
    text = next(seeds_dir.glob("001_*.txt")).read_text(encoding="utf-8")
    matches = seed_detector.query(text, top=5)
    assert matches[0].id.startswith("001") and matches[0].probability > 0.9
    assert {m.id[:3] for m in matches if m.verdict == "same story"} == {"000", "001", "002", "003"}


def test_cli_index_and_clusters_with_the_real_model(seeds_dir, tmp_path, real_encoder):
    runner = CliRunner()
    index = tmp_path / "index"
    result = runner.invoke(cli, ["index", "--index", str(index), str(seeds_dir)])
    assert result.exit_code == 0, result.output
    # the summary is the last line of stderr (the model's loading progress may come before it)
    assert result.stderr.splitlines()[-1].startswith("indexed 5 new, 0 replaced, 0 unchanged, 0 with new metadata, "
        "0 exact duplicates;")
    result = runner.invoke(cli, ["clusters", "--index", str(index), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["id"][:3] for r in rows) == ["000", "001", "002", "003", "004"]
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(row["cluster"], []).append(row["id"])
    assert prefixes(groups.values()) == [["000", "001", "002", "003"], ["004"]]


# ---- the fast profile: the static model distilled from the bundled one ---------------------------------------------


@pytest.fixture(scope="module")
def fast_seed_detector(tmp_path_factory):
    """The seeds in a fast-profile index (the static model is distilled into the cache on first use)."""
    seeds = Path(__file__).parent.parent / "seeds"
    detector = Detector.open(tmp_path_factory.mktemp("fast") / "index", profile="fast", create=True)
    detector.index(read_paths([seeds]))
    yield detector
    detector.close()


def test_fast_profile_finds_the_seed_stories(fast_seed_detector, seeds_dir):
    info = fast_seed_detector.info()
    assert (info["model"], info["dimension"], info["settings"]["profile"]) == ("minilm-static-256", 256, "fast")
    expected = json.loads((seeds_dir / "expected_clusters.json").read_text(encoding="utf-8"))["clusters"]
    assert prefixes(c.members for c in fast_seed_detector.clusters()) == expected
    report = fast_seed_detector.report(seed_id(fast_seed_detector, "000"), seed_id(fast_seed_detector, "004"))
    assert report.verdict == "different"


def test_the_static_model_encoding_in_the_read_ahead_worker_gives_the_same_index(seeds_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTOR_PROCESSES", "2")
    paragraphs = [line for path in sorted(seeds_dir.glob("*.txt"))
                  for line in path.read_text(encoding="utf-8").splitlines() if len(line.split()) > 5]
    documents = [Document(id=f"p{n}", text=text) for n, text in enumerate(paragraphs * 3)]  # copies across batches
    assert len(documents) > 3 * 64  # batches the worker takes (parallel.MIN_TEXTS_PER_PROCESS)
    built = {}
    for ahead in (False, True):
        with Detector.open(tmp_path / str(ahead), profile="fast", create=True) as detector:
            result = detector.index(documents, batch_size=64, read_ahead=ahead)
            built[ahead] = (result.sentences_encoded, [detector.store.view_row(d.key) for d in
                                                       detector.store.summaries()],
                            sorted(detector.store.all_pairs(), key=lambda p: (p.a_key, p.b_key)))
            total = detector.store.count_sentences()
    assert built[True] == built[False]
    assert 0 < 3 * built[True][0] <= total  # each copy's sentences reused, never encoded again


def test_fast_profile_index_keeps_and_removes_its_common_direction(fast_seed_detector):
    kept = fast_seed_detector.store.manifest["settings"]  # the index keeps them
    direction, components = np.array(kept["common_direction"]), np.array(kept["common_components"])
    info = fast_seed_detector.info()["settings"]
    assert "256-dimensional unit vector" in info["common_direction"]
    assert "3 directions of most variance" in info["common_components"]
    assert direction.shape == (256,) and components.shape == (3, 256)
    for summary in fast_seed_detector.store.summaries():
        vector = fast_seed_detector._view(summary.key).vector
        assert abs(float(vector @ direction)) < 1e-5 and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
        assert np.abs(components @ vector).max() < 1e-4


def test_fast_model_ranks_a_paraphrase_above_an_unrelated_sentence(fast_seed_detector):
    """The static model is derived on each machine: its vectors must carry MiniLM's sense of similarity."""
    encoder = fast_seed_detector.encoder
    v = encoder.encode(["The army captured the town on Monday.", "On Monday the town was taken by the army.",
                        "The chess final ended in a draw."])
    assert v.shape == (3, 256) and float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.1


def test_bfloat16_vectors_agree_with_float32(real_encoder):
    # news sentences (MRPC-like): bfloat16 matrix products must not move what alignment and scoring read
    sentences = ["The capture of Severansk marks a pivotal moment in the conflict.",
                 "General Valery Gerasimov reported the capture of Seversk to Vladimir Putin on December 11.",
                 "Shares of Mandalay closed down 8 cents at $34.52 on the New York Stock Exchange."]
    exact = SentenceTransformerEncoder(precision="float32")
    exact._model = real_encoder._load()  # the same weights, computed in float32
    fast = SentenceTransformerEncoder(precision="bfloat16")
    fast._model = real_encoder._load()
    a, b = exact.encode(sentences), fast.encode(sentences)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.999
    pair_cosines = [(a @ a.T)[0, 1], (b @ b.T)[0, 1]]
    assert abs(pair_cosines[0] - pair_cosines[1]) < 0.005


def test_sentence_pairs_align_their_tokens_with_the_real_model(real_encoder):
    from detector.pairs import score_pairs

    # a news paraphrase (MRPC style) and an unrelated sentence
    source = "The company's shares fell 8 cents to $34.52 on the New York Stock Exchange on Friday."
    paraphrase = "On Friday the company's stock dropped 8 cents, to $34.52, in New York Stock Exchange trading."
    unrelated = "Heavy rain flooded the lower town overnight and schools stayed closed."
    close, apart = score_pairs([(source, paraphrase), (source, unrelated)], encoder=real_encoder)
    assert (close.level, apart.level) == ("sentence", "sentence")
    assert 0.0 < apart.components["token_alignment"] < close.components["token_alignment"] <= 1.0
    assert close.components["token_alignment"] != close.components["cosine"]  # from the tokens, not the fallback
    assert close.score > 0.5 > apart.score


def test_unknown_tokens_count_in_token_alignment(real_encoder):
    # emoji are [UNK] to MiniLM's tokenizer (three of them make one [UNK]): a word of the text, not a mark added
    # around it
    vectors, tokens = real_encoder.encode_with_tokens(["🔥🔥🔥", "[CLS] is written here"])
    assert len(tokens[0]) == 1
    from detector.compare import token_alignment

    assert token_alignment(tokens[0], tokens[0]) == pytest.approx(1.0, abs=1e-5)


# ---- the static encoder's word-by-word token ids ---------------------------------------------------------------------

#: text a tokenizer may treat apart: ASCII letters, digits, punctuation and every kind of space and control character,
#: accented and other non-ASCII letters, curly quotes and dashes, CJK, special tokens' text, very long words.
_AWKWARD = st.lists(st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=12),
    st.sampled_from(["Seversk", "Siversk’s", "“quoted”", "café", "naïve", "—", "€50", "[UNK]", "[CLS]", "[MASK]",
                     "[mask]", "東京", "x" * 120, "  ", "\t", "\n", "\x0b", "\x00", "\x7f", "don't", "U.S.", "10,000"]),
), max_size=30).map("".join)


@pytest.fixture(scope="module")
def static_encoder():
    from detector.encoders import StaticEncoder

    encoder = StaticEncoder()
    encoder.encode(["load"])
    assert encoder._word_ids is not None, "the bundled static model's tokenizer is uncased BERT: word ids apply"
    return encoder


def _model2vec(encoder, sentences):
    from detector.vectors import normalise_rows

    return normalise_rows(encoder._load().encode(sentences, show_progress_bar=False))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sentences=st.lists(_AWKWARD, min_size=1, max_size=6))
def test_static_vectors_from_word_ids_equal_model2vec_s(static_encoder, sentences):
    assert np.array_equal(static_encoder.encode(sentences), _model2vec(static_encoder, sentences))


def test_static_vectors_from_word_ids_equal_model2vec_s_on_the_seeds_and_long_texts(static_encoder, seeds_dir):
    from detector.sentences import split_sentences

    texts = [p.read_text(encoding="utf-8") for p in sorted(seeds_dir.glob("*.txt"))]
    long_ascii = ", ".join(str(n) for n in range(2000))  # over 512 tokens within the first 3,072 characters
    sentences = [s for t in texts for s in split_sentences(t, "blingfire")] + texts + [" ".join(texts) * 3, long_ascii]
    assert np.array_equal(static_encoder.encode(sentences), _model2vec(static_encoder, sentences))


def test_a_tokenizer_that_matches_added_words_in_normalised_text_is_left_to_model2vec(static_encoder):
    from types import SimpleNamespace

    from tokenizers import AddedToken, Tokenizer

    from detector.encoders import _WordIds

    tokenizer = Tokenizer.from_str(static_encoder._load().tokenizer.to_str())
    assert _WordIds.for_model(SimpleNamespace(tokenizer=tokenizer)) is not None
    tokenizer.add_tokens([AddedToken("new york", normalized=True)])  # as model2vec's distill adds vocabulary
    assert tokenizer.encode("New York", add_special_tokens=False).ids != [
        i for w in ("new", "york") for i in tokenizer.encode(w, add_special_tokens=False).ids]
    assert _WordIds.for_model(SimpleNamespace(tokenizer=tokenizer)) is None
