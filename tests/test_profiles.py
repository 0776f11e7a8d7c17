"""Profiles: what each fixes when an index is created, how the choice is kept, and the files behind them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import CHESS, FLOOD_REWRITE, FLOOD_WIRE, TEST_PARAMS, FakeEncoder, doc

from detector import Detector, IncompatibleIndexError, ScoringParams, Settings
from detector.cli import cli
from detector.config import FAST_MODEL, PROFILES
from detector.sentences import split_sentences


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
