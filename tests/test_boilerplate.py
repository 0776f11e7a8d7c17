"""Boilerplate: sentences many texts of the index hold word for word are set aside when texts are compared."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from conftest import FLOOD_REWRITE, FLOOD_WIRE, TEST_PARAMS, TEST_SETTINGS, FakeEncoder, doc

from detector import Detector, Settings
from detector.boilerplate import common_positions, without
from detector.compare import TextView
from detector.evidence import sentence_hash
from detector.minhash import shingles, signature
from detector.report import pair_text

SIGN_OFF = ("Follow the Harwick Gazette on Facebook and Twitter for live updates. "
            "Copyright Harwick Gazette Media Group. All rights reserved.")

#: four unrelated briefs (no story, name or topic in common), each signed off the same way.
BRIEFS = {
    "harbour": "The harbour authority in Gdansk closed two docks after a crane collapsed on Monday night. "
               "Nobody was hurt, and cargo ships were sent to the port of Gdynia.",
    "choir": "A children's choir from Lyon won the European youth singing contest held in Vienna this weekend. "
             "The jury praised its performance of three folk songs from Brittany.",
    "bees": "Beekeepers in Ontario reported losing nearly half of their hives over an unusually cold winter. "
            "Provincial officials promised emergency grants to farmers who lost colonies.",
    "bridge": "Engineers reopened the Tamar suspension bridge to traffic after eleven weeks of repairs. "
              "Tolls will stay frozen until the end of the year, the council announced.",
}


def signed(text: str) -> str:
    return f"{text}\n{SIGN_OFF}"


def _detector(tmp_path, name: str = "index", **changes) -> Detector:
    # a sentence held by more than two texts is boilerplate here (the shipped limit is ten)
    settings = replace(TEST_SETTINGS, rare_term_texts=2, **changes)
    return Detector.open(tmp_path / name, encoder=FakeEncoder(), settings=settings, params=TEST_PARAMS)


def _brief_pairs(detector) -> list:
    keys = {detector.store.document(i).key for i in BRIEFS}
    return [p for p in detector.store.all_pairs() if p.a_key in keys and p.b_key in keys]


def test_unrelated_briefs_signed_off_alike_are_not_one_story(tmp_path):
    with _detector(tmp_path, "off", boilerplate=False) as detector:  # what is at stake: the sign-off links them
        detector.index([doc(i, signed(t)) for i, t in BRIEFS.items()])
        assert len(detector.clusters()) == 1
    with _detector(tmp_path) as detector:
        detector.index([doc(i, signed(t)) for i, t in BRIEFS.items()])
        assert {frozenset(c.members) for c in detector.clusters()} == {frozenset([i]) for i in BRIEFS}
        for pair in _brief_pairs(detector):  # compared on their own sentences: nothing aligns, no 3-gram is shared
            assert pair.relation == "different"
            assert (pair.features["coverage_max"], pair.features["containment"]) == (0.0, 0.0)


def test_pairs_compared_before_a_sentence_became_boilerplate_are_compared_again(tmp_path):
    # one at a time: the first two briefs were compared while the sign-off was held by two texts only
    with _detector(tmp_path, "together") as detector:
        detector.index([doc(i, signed(t)) for i, t in BRIEFS.items()])
        together = {(p.a_key, p.b_key): (p.features, p.relation) for p in detector.store.all_pairs()}
    with _detector(tmp_path, "one by one") as detector:
        for i, t in BRIEFS.items():
            detector.add(doc(i, signed(t)))
        assert {(p.a_key, p.b_key): (p.features, p.relation) for p in detector.store.all_pairs()} == together
        assert {frozenset(c.members) for c in detector.clusters()} == {frozenset([i]) for i in BRIEFS}


def test_a_text_that_is_mostly_common_sentences_keeps_them(tmp_path):
    # a wire story carried by several outlets, each with a line of its own: the story is what the copies say
    credits = ["Reported by our Madrid bureau.", "Additional reporting by news agencies in Spain.",
               "This story was first published by our partners.", "Edited by the overnight desk team."]
    found = []
    for name, on in (("on", True), ("off", False)):
        with _detector(tmp_path, name, boilerplate=on) as detector:
            detector.index([doc(f"outlet {n}", f"{FLOOD_WIRE}\n{line}") for n, line in enumerate(credits)])
            found.append({(p.a_key, p.b_key): (p.features, p.relation) for p in detector.store.all_pairs()})
            assert len(detector.clusters()) == 1
            assert detector.report("outlet 0", "outlet 1").set_aside == [[], []]
    assert found[0] == found[1] and len(found[0]) == 6


def test_the_report_names_the_sentences_set_aside_and_numbers_sentences_as_in_the_whole_text(tmp_path):
    header = "Skip to main content."
    texts = {i: f"{header}\n{t}\n{SIGN_OFF}" for i, t in BRIEFS.items()}
    texts["harbour again"] = f"{header}\n{BRIEFS['harbour']}\n{SIGN_OFF}\nThe docks reopen on Friday."
    with _detector(tmp_path) as detector:
        detector.index([doc(i, t) for i, t in texts.items()])
        report = detector.report("harbour", "harbour again")
        # sentences: 0 the header, 1-2 the brief, 3-5 the sign-off (and 6 the new line)
        assert report.set_aside == [[0, 3, 4, 5], [0, 3, 4, 5]]
        assert sorted((p.a_index, p.b_index) for p in report.aligned) == [(1, 1), (2, 2)]
        assert report.a_sentences == 6 and report.b_sentences == 7
        assert report.to_dict()["set_aside_as_boilerplate"] == {"a": [0, 3, 4, 5], "b": [0, 3, 4, 5]}
        assert "set aside as boilerplate (held word for word by many texts of the index), A: A0, A3, A4, A5" in \
            pair_text(report)


def test_a_query_is_compared_without_the_index_boilerplate(tmp_path):
    with _detector(tmp_path) as detector:
        detector.index([doc(i, signed(t)) for i, t in BRIEFS.items()])
        query = signed("Divers found the wreck of a fishing boat off the coast of Galway. "
                       "The crew of four had been rescued by a trawler in March.")
        for match in detector.query(query, top=10):
            assert (match.features["coverage_max"], match.features["containment"]) == (0.0, 0.0)
            assert match.relation == "different"


def test_set_aside_keeps_the_rest_and_where_it_stood():
    sentences = ["Skip to the main content of this page.", "The harbour closed two docks on Monday night.",
                 "Cargo ships were sent to the port of Gdynia instead.", "Follow us on social media for updates."]
    vectors = np.eye(4, dtype=np.float16)
    view = TextView(sentences, vectors, signature(shingles(" ".join(sentences), 1), 64))
    common = {sentence_hash(sentences[0]), sentence_hash(sentences[3])}
    def set_aside(view, common, settings):
        return without(view, common_positions(view, common), settings)

    part = set_aside(view, common, Settings(num_perm=64))
    assert part.sentences == sentences[1:3] and part.positions == [1, 2]
    assert np.array_equal(part.vectors, vectors[1:3])
    assert part.terms is view.terms  # the whole text's terms (weighted by rarity in the index)
    assert part.ngrams == TextView(sentences[1:3], vectors[1:3], view.signature).ngrams
    assert set_aside(view, set(), Settings()) is view
    # more than half of the words common: the text keeps them all
    assert set_aside(view, common | {sentence_hash(sentences[2])}, Settings()) is view


def test_boilerplate_needs_the_counts_of_shared_sentences_and_is_off_in_an_older_index(tmp_path):
    with pytest.raises(ValueError, match="needs shared_sentences"):
        Settings(shared_sentences=False)
    assert Settings(shared_sentences=False, boilerplate=False).boilerplate is False
    assert Settings.from_dict({}).boilerplate is False and Settings().boilerplate is True
    # an index made before: its manifest has no such setting; it goes on comparing whole texts
    with _detector(tmp_path):
        pass
    path = tmp_path / "index" / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["format_version"] = 5
    del manifest["settings"]["boilerplate"]
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with Detector.open(tmp_path / "index", encoder=FakeEncoder(), params=TEST_PARAMS) as detector:
        assert detector.settings.boilerplate is False
        detector.index([doc(i, signed(t)) for i, t in BRIEFS.items()])
        assert len(detector.clusters()) == 1
        assert detector.store.manifest["format_version"] == 5


def test_pairs_beyond_a_batch_budget_wait_and_are_compared_again_by_the_next_batches(tmp_path, monkeypatch):
    import detector.detector as detector_module

    monkeypatch.setattr(detector_module, "_redo_budget", lambda own: 1)  # one text's pairs a batch, at most
    later = [doc(f"later {n}", f"Item {n} of the evening news bulletin, about the weather in Oslo.") for n in range(3)]
    with _detector(tmp_path, "together") as detector:
        detector.index([doc(i, signed(t)) for i, t in BRIEFS.items()] + later)
        together = {(p.a_key, p.b_key): (p.features, p.relation) for p in detector.store.all_pairs()}
    with _detector(tmp_path, "one by one") as detector:
        names = list(BRIEFS)
        for i in names[:3]:
            detector.add(doc(i, signed(BRIEFS[i])))
        # the third brief made the sign-off boilerplate: the first two briefs' pairs are to be compared again, and
        # the batch did the first one's (their pair), leaving the second's
        assert detector.store.stale_texts() == [detector.store.document(names[1]).key]
        assert detector.info()["texts_to_compare_again"] == 1
        detector.add(doc(names[3], signed(BRIEFS[names[3]])))
        for item in later:  # later arrivals (unrelated) take the waiting texts, oldest first
            detector.add(item)
        assert detector.store.stale_texts() == [] and detector.info()["texts_to_compare_again"] == 0
        assert {(p.a_key, p.b_key): (p.features, p.relation) for p in detector.store.all_pairs()} == together
        assert {frozenset(c.members) for c in detector.clusters() if set(c.members) & set(BRIEFS)} == \
            {frozenset([i]) for i in BRIEFS}


SHORT_WIRE_LIMIT = pytest.mark.xfail(
    strict=True, reason="known limit (README, Boilerplate is set aside): a kept block of a brief's length is not "
    "adopted by partners, so a text extending a short wire story sets it aside; adopting blocks that are most of "
    "their text merged sign-off-only items with unrelated briefs (a review)")


@pytest.mark.parametrize("wire", [
    pytest.param(f"{FLOOD_WIRE}\nThe government in Madrid declared three days of national mourning.",
                 id="longer than a brief"),
    pytest.param(FLOOD_WIRE, marks=SHORT_WIRE_LIMIT, id="a brief's length"),  # 5 sentences
])
def test_a_text_that_adds_reporting_to_a_syndicated_story_keeps_it_in_their_pairs(tmp_path, wire):
    # the copies keep the wire story (it is most of each); a text that adds as much reporting again would set it
    # aside on its own, but in its pairs with the copies it is compared with them on what they keep
    credits = ["Reported by our Madrid bureau.", "Additional reporting by news agencies in Spain.",
               "This story was first published by our partners."]
    extended = "\n".join([wire, FLOOD_REWRITE,
                          "Volunteers from all over Spain came to Paiporta on Thursday with shovels and water.",
                          "Schools in the town will stay closed until the roads are cleared, the mayor said."])
    found = []
    for name, on in (("on", True), ("off", False)):
        with _detector(tmp_path, name, boilerplate=on) as detector:
            detector.index([doc(f"outlet {n}", f"{wire}\n{line}") for n, line in enumerate(credits)])
            detector.index([doc("extended", extended)])
            report = detector.report("outlet 0", "extended")
            found.append((report.features, report.relation))
            assert report.set_aside == [[], []]
    assert found[0] == found[1]


@pytest.mark.parametrize("item", [SIGN_OFF, signed("Gdansk dock strike.")], ids=["sign-off only", "headline"])
def test_an_item_that_is_almost_all_sign_off_does_not_join_the_briefs_signed_off_alike(tmp_path, item):
    # a failed scrape (the sign-off alone) or a headline above it keeps the sign-off, which is all it has; its
    # partners must still set the sign-off aside in their pairs with it, or it aligns with every brief on it
    with _detector(tmp_path) as detector:
        detector.index([doc(i, signed(t)) for i, t in BRIEFS.items()] + [doc("item", item)])
        for brief in BRIEFS:
            report = detector.report("item", brief)
            assert report.relation == "different" and report.set_aside == [[], [2, 3, 4]]
        assert {frozenset(c.members) for c in detector.clusters()} == {frozenset([i]) for i in [*BRIEFS, "item"]}


def test_comparing_pairs_again_splits_the_story_they_made_on_the_story_by_story_path(tmp_path, monkeypatch):
    # in a large index (no rescoring at each batch, components too large to regroup whole) the stories a batch
    # reaches are taken whole; a story whose pairs were compared again must start from its members, or the sign-off
    # that joined two unrelated briefs keeps them together after their pair became `different`
    import detector.stories as stories_module

    monkeypatch.setattr(stories_module, "RESCORE_EVERY_BATCH_BELOW", 0)
    monkeypatch.setattr(stories_module, "REGROUP_LIMIT", 1)
    with _detector(tmp_path) as detector:
        for name in ("harbour", "choir"):
            detector.add(doc(name, signed(BRIEFS[name])))
        assert {frozenset(c.members) for c in detector.clusters()} == {frozenset(["harbour", "choir"])}
        detector.add(doc("bees", signed(BRIEFS["bees"])))  # the sign-off's third holder: now boilerplate
        assert detector.report("harbour", "choir").relation == "different"
        assert {frozenset(c.members) for c in detector.clusters()} == {frozenset([n]) for n in
                                                                      ("harbour", "choir", "bees")}


def test_a_batch_of_unchanged_documents_that_compares_pairs_again_regroups_and_commits(tmp_path, monkeypatch):
    import detector.detector as detector_module

    monkeypatch.setattr(detector_module, "_redo_budget", lambda own: 1)
    texts = [doc(i, signed(t)) for i, t in BRIEFS.items()][:3]
    with _detector(tmp_path) as detector:
        for item in texts:
            detector.add(item)
        assert detector.store.stale_texts()
        generation = detector.store.generation
        detector.index(texts)  # nothing new: the waiting texts are compared again all the same
        assert detector.store.stale_texts() == [] and detector.store.generation > generation
        assert {frozenset(c.members) for c in detector.clusters()} == {frozenset([d.id]) for d in texts}


def test_a_short_item_that_keeps_its_sign_off_does_not_make_its_partners_keep_it(tmp_path):
    # the item is shorter than the sign-off, so it keeps it; the sign-off is no story (a brief's length or less), so
    # a longer brief still sets it aside in their pair
    with _detector(tmp_path) as detector:
        detector.index([doc(i, signed(t)) for i, t in BRIEFS.items()] +
                       [doc("item", signed("Dock workers in Gdansk went on strike."))])
        report = detector.report("item", "harbour")
        assert report.set_aside == [[], [2, 3, 4]]
