"""Profiles: what each fixes when an index is created, how the choice is kept, and the files behind them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import CHESS, FLOOD_REWRITE, FLOOD_WIRE, TEST_PARAMS, FakeEncoder, doc

from detector import Detector, IncompatibleIndexError, ScoringParams, Settings
from detector.cli import cli
from detector.config import FAST_MODEL, PROFILES
from detector.sentences import split_sentences
from detector.vectors import document_vector


def test_profiles_fix_model_splitter_and_parameters():
    accurate, fast = Settings.for_profile("accurate"), Settings.for_profile("fast")
    assert (accurate.model, accurate.splitter, accurate.profile) == ("all-MiniLM-L6-v2", "pysbd", "accurate")
    assert (fast.model, fast.splitter, fast.profile) == (FAST_MODEL, "blingfire", "fast")
    assert Settings() == accurate
    # another model under a profile keeps the profile's splitter
    assert Settings.for_profile("fast", model="my-model").splitter == "blingfire"


def test_unknown_profile_and_splitter_are_refused():
    with pytest.raises(ValueError, match="unknown profile 'quick': choose one of accurate, fast"):
        Settings.for_profile("quick")
    with pytest.raises(ValueError, match="splitter='nltk' must be pysbd or blingfire"):
        Settings(splitter="nltk")


@pytest.mark.parametrize("name", list(PROFILES))
def test_each_profile_ships_its_fitted_parameters(name):
    params = ScoringParams.shipped.__func__(ScoringParams, name)  # the real files, whatever the fixtures patch
    assert params.provenance["model"] == PROFILES[name].model
    assert params.provenance.get("splitter", "pysbd") == PROFILES[name].splitter
    assert 0.0 < params.align_threshold < 1.0 and set(params.weights) >= {"coverage_max", "term_cosine"}
    assert params.sentence is not None
    if PROFILES[name].remove_common_direction:
        direction = np.array(params.common_direction)
        assert direction.shape == (256,) and abs(np.linalg.norm(direction) - 1.0) < 1e-3
        components = np.array(params.common_components)  # dimension / 100 of them, orthonormal with the direction
        assert components.shape == (3, 256)
        basis = np.vstack([direction, components])
        assert np.allclose(basis @ basis.T, np.eye(4), atol=1e-4)
    else:
        assert params.common_direction is None and params.common_components is None


def test_document_vectors_without_the_common_direction():
    lean = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    # two documents leaning the same way, otherwise opposite: close as they are, apart without the lean
    a = np.array([[0.9, 0.3, 0.0], [0.9, 0.1, 0.0]], dtype=np.float32)
    b = np.array([[0.9, -0.3, 0.0], [0.9, -0.1, 0.0]], dtype=np.float32)
    assert document_vector(a) @ document_vector(b) > 0.9
    va, vb = document_vector(a, lean), document_vector(b, lean)
    assert va @ vb == pytest.approx(-1.0, abs=1e-6)
    assert np.linalg.norm(va) == pytest.approx(1.0) and va @ lean == pytest.approx(0.0, abs=1e-6)


def test_document_vectors_without_the_common_directions():
    """Rows of directions: every one of them is removed, and only those (the rest of the mean stays as it was)."""
    settings = Settings(common_direction=(1.0, 0.0, 0.0, 0.0), common_components=[(0.0002, 1.0, 0.0, 0.0)])
    basis = settings.directions()  # rounded as stored, the component is made exactly orthogonal: (0, 1, 0, 0)
    assert np.allclose(basis, [[1, 0, 0, 0], [0, 1, 0, 0]], atol=1e-6)
    a = np.array([[0.5, 0.5, 0.3, 0.4], [0.7, 0.1, 0.3, 0.4]], dtype=np.float32)
    vector = document_vector(a, basis)
    assert vector == pytest.approx([0.0, 0.0, 0.6, 0.8], abs=1e-6)
    # the direction alone is used as given (an index made before components keeps its vectors bit for bit)
    alone = Settings(common_direction=(0.6, 0.8000001)).directions()
    assert alone.dtype == np.float32 and np.array_equal(alone, np.array([[0.6, 0.8000001]], dtype=np.float32))
    assert Settings().directions() is None


@pytest.mark.parametrize("components, message", [
    ([(0.6, 0.8, 0.0, 0.0)], "must be orthonormal"),  # not orthogonal to the direction
    ([(0.0, 2.0, 0.0, 0.0)], "must be orthonormal"),  # not a unit vector
    ([(0.0, float("nan"), 0.0, 0.0)], "must be orthonormal"),
    ([(0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0)], "give fewer"),
    ((0.0, 1.0, 0.0, 0.0), "must be a list of vectors"),  # one flat vector
])
def test_common_components_that_cannot_be_used_are_refused(components, message):
    with pytest.raises(ValueError, match=message):
        Settings(common_direction=(1.0, 0.0, 0.0, 0.0), common_components=components)


def test_common_direction_is_checked_kept_and_only_for_its_model(detector_factory, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="common_direction must be a unit vector"):
        Settings(common_direction=(1.0, 1.0))
    with pytest.raises(ValueError, match="common_components are removed with a common_direction"):
        Settings(common_components=[(0.0, 1.0)])
    with pytest.raises(ValueError, match="each of common_components must have the 3 dimensions"):
        Settings(common_direction=(0.6, 0.8, 0.0), common_components=[(0.0, 1.0)])
    with pytest.raises(ValueError, match="common_direction must be a unit vector"):
        Settings(common_direction=(float("nan"), 0.0))
    settings = Settings(common_direction=[0.6, 0.8, 0.0], common_components=[[0.8, -0.6, 0.0]])
    assert settings.common_direction == (0.6, 0.8, 0.0) and settings.common_components == ((0.8, -0.6, 0.0),)
    assert Settings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings  # as the manifest keeps it
    # an index made before there were components keeps removing its direction alone
    before = {k: v for k, v in settings.to_dict().items() if k != "common_components"}
    assert Settings.from_dict(before).common_components is None
    assert Settings.from_dict(before).directions().shape == (1, 3)
    shipped = ScoringParams.shipped.__func__(ScoringParams, "fast")
    monkeypatch.setattr(ScoringParams, "shipped", classmethod(lambda cls, profile="accurate": shipped))
    assert Settings.for_profile("fast").common_direction == shipped.common_direction
    assert Settings.for_profile("fast").common_components == shipped.common_components
    fitted_for_another = Settings.for_profile("fast", model="my-model")  # fitted for the profile's model
    assert fitted_for_another.common_direction is None and fitted_for_another.common_components is None
    # a direction of another dimension than the index's vectors is refused
    encoder = FakeEncoder()
    with pytest.raises(IncompatibleIndexError, match="common direction has 2 dimensions but the index's vectors "
                                                     "have 64"):
        Detector.open(tmp_path / "index", encoder=encoder,
                      settings=Settings(model=encoder.name, common_direction=(0.6, 0.8)), params=TEST_PARAMS)
    with pytest.raises(IncompatibleIndexError, match=r"leave it out \(common_direction=None, common_components=None\)"):
        Detector.open(tmp_path / "index2", encoder=encoder, params=TEST_PARAMS,
                      settings=Settings(model=encoder.name, common_direction=(0.6, 0.8, 0.0),
                                        common_components=[(0.8, -0.6, 0.0)]))


def test_an_index_made_before_components_keeps_its_direction_alone(tmp_path):
    """A format-3 index (a direction, no components) reopens, compares and adds documents as it was built: the
    vectors worked out again from its sentence vectors are the stored ones, bit for bit."""
    encoder = FakeEncoder()
    direction = np.full(encoder.dimension, 1.0) / np.sqrt(encoder.dimension)
    direction = tuple(float(x) for x in np.round(direction, 6))  # stored rounded, as calibrate.py writes it
    settings = Settings(model=encoder.name, common_direction=direction)
    with Detector.open(tmp_path / "index", encoder=encoder, settings=settings, params=TEST_PARAMS) as detector:
        detector.index([doc("wire", FLOOD_WIRE), doc("chess", CHESS)])
    manifest_path = tmp_path / "index" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["format_version"] = 3
    del manifest["settings"]["common_components"]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with Detector.open(tmp_path / "index", encoder=encoder, params=TEST_PARAMS) as detector:
        assert detector.settings.common_components is None and "common_components" not in detector.info()["settings"]
        detector.index([doc("rewrite", FLOOD_REWRITE)])
        stored = dict(detector.store._db.execute("SELECT key, vector FROM documents"))
        assert len(stored) == 3
        for key, data in stored.items():
            view = detector._view(key)
            assert np.array_equal(np.frombuffer(data, dtype=np.float32), view.vector)
            assert np.array_equal(view.vector, document_vector(view.vectors, np.array([direction], np.float32)))


def test_blingfire_splits_like_pysbd_on_news_prose():
    text = ('The U.S. Army said on Dec. 11 that Gen. Gerasimov reported to Mr. Putin. "We are slowly but surely '
            'moving forward," he said. Prices rose 2.5% in Jan.\n\nThen it fell.')
    assert split_sentences(text, "blingfire") == split_sentences(text, "pysbd") == [
        "The U.S. Army said on Dec. 11 that Gen. Gerasimov reported to Mr. Putin.",
        '"We are slowly but surely moving forward," he said.', "Prices rose 2.5% in Jan.", "Then it fell."]


def test_an_index_keeps_the_profile_it_was_created_with(detector_factory, tmp_index):
    fast = Settings.for_profile("fast", model=FakeEncoder.name)
    detector = Detector.open(tmp_index, encoder=FakeEncoder(), settings=fast, params=TEST_PARAMS)
    detector.index([doc("wire", FLOOD_WIRE), doc("rewrite", FLOOD_REWRITE), doc("chess", CHESS)])
    detector.close()
    manifest = json.loads((tmp_index / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["settings"]["profile"], manifest["settings"]["splitter"]) == ("fast", "blingfire")
    reopened = detector_factory(create=False)
    assert reopened.settings.profile == "fast" and reopened.info()["settings"]["splitter"] == "blingfire"
    with pytest.raises(IncompatibleIndexError, match="was created with profile 'fast', not 'accurate'"):
        Detector.open(tmp_index, profile="accurate", encoder=FakeEncoder(), create=False)


def test_cli_index_with_a_profile(fake_model, tmp_index, tmp_path):
    articles = tmp_path / "articles"
    articles.mkdir()
    for name, text in [("wire", FLOOD_WIRE), ("chess", CHESS)]:
        (articles / f"{name}.txt").write_text(text, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["index", "--index", str(tmp_index), "--model", FakeEncoder.name, "--profile", "fast",
                                 str(articles)])
    assert result.exit_code == 0, result.output
    info = json.loads(runner.invoke(cli, ["info", "--index", str(tmp_index), "--format", "json"]).stdout)
    assert info["settings"]["profile"] == "fast"
    again = runner.invoke(cli, ["index", "--index", str(tmp_index), "--profile", "accurate", str(articles)])
    assert again.exit_code == 1
    assert "was created with profile 'fast', not 'accurate'" in again.stderr


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profile_has_a_floor_for_briefs_and_one_for_full_texts(name):
    from detector.config import BRIEF_SENTENCES

    settings = Settings.for_profile(name)
    chosen = PROFILES[name]
    assert (settings.neighbor_min_cosine, settings.full_neighbor_min_cosine) == (
        chosen.neighbor_min_cosine, chosen.full_neighbor_min_cosine)
    full = BRIEF_SENTENCES + 1
    assert settings.neighbor_floor(full, full) == chosen.full_neighbor_min_cosine >= chosen.neighbor_min_cosine
    assert settings.neighbor_floor(BRIEF_SENTENCES, full) == settings.neighbor_floor(full, 1) == \
        chosen.neighbor_min_cosine
    # the floors a profile ships are those calibrate.py's rule suggests, as recorded beside its parameters
    floors = json.loads((Path(__file__).parent.parent / "detector" / chosen.params_file).read_text())[
        "provenance"]["neighbour_floor"]
    assert (floors["suggested"], floors["suggested_full"]) == (chosen.neighbor_min_cosine,
                                                               chosen.full_neighbor_min_cosine)


def test_an_index_made_before_the_full_floor_keeps_its_one_floor():
    old = {k: v for k, v in Settings.for_profile("fast").to_dict().items() if k != "full_neighbor_min_cosine"}
    settings = Settings.from_dict(old)
    assert settings.full_neighbor_min_cosine is None
    assert settings.neighbor_floor(40, 40) == settings.neighbor_min_cosine
    with pytest.raises(ValueError, match="full_neighbor_min_cosine=0.3 must be between neighbor_min_cosine"):
        Settings(neighbor_min_cosine=0.4, full_neighbor_min_cosine=0.3)


def test_rare_terms_are_on_for_new_fast_indexes_and_off_for_those_made_before():
    new = Settings.for_profile("fast")
    assert (new.rare_terms, new.rare_term_texts) == (2, 10)
    assert Settings.for_profile("accurate").rare_terms == 0
    assert Settings.from_dict(new.to_dict()) == new
    old = {k: v for k, v in new.to_dict().items() if k not in ("rare_terms", "rare_term_texts")}
    assert Settings.from_dict(old).rare_terms == 0
    with pytest.raises(ValueError, match="rare_terms=-1 must be 0"):
        Settings(rare_terms=-1)
    with pytest.raises(ValueError, match="rare_term_texts=0 must be 1 or more"):
        Settings(rare_term_texts=0)
