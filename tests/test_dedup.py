"""The dedup step through the Python API and the `dedup` and `remove` commands, with the fake encoder."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace

import pytest
from click.testing import CliRunner
from conftest import CHESS, FLOOD_OTHER_EVENT, FLOOD_OTHER_REWRITE, FLOOD_REWRITE, FLOOD_WIRE, TEST_PARAMS, doc

from detector.cli import cli

# relations for the fake encoder: copies are duplicates, sentence-aligned texts rewrites
PARAMS = replace(TEST_PARAMS, duplicate_containment=0.8, rewrite_coverage=0.5)


@pytest.fixture
def detector(detector_factory):
    return detector_factory(params=PARAMS)


def stream():
    return [doc("wire", FLOOD_WIRE, published="2024-10-30"), doc("italy", FLOOD_OTHER_EVENT),
            doc("copy", FLOOD_WIRE + "\n\nReporting by the wire desk."), doc("rewrite", FLOOD_REWRITE),
            doc("chess", CHESS), doc("italy-rewrite", FLOOD_OTHER_REWRITE)]


def test_decisions_within_one_batch_name_the_earlier_document(detector):
    decisions = detector.add_many(stream(), policy="same_story")
    by_id = {d.id: d for d in decisions}
    assert [d.id for d in decisions] == ["wire", "italy", "copy", "rewrite", "chess", "italy-rewrite"]
    assert [d.status for d in decisions] == ["new", "new", "duplicate", "duplicate", "new", "duplicate"]
    assert (by_id["copy"].matched_id, by_id["copy"].relation) == ("wire", "duplicate")
    assert by_id["rewrite"].matched_id in ("wire", "copy")
    assert by_id["italy-rewrite"].matched_id == "italy"
    assert by_id["wire"].matched_id is None and by_id["wire"].relation is None and by_id["wire"].score is None
    assert by_id["copy"].cluster == by_id["wire"].cluster == by_id["rewrite"].cluster
    # the canonical member is the earliest published one
    assert {by_id[i].canonical_id for i in ("wire", "copy", "rewrite")} == {"wire"}


@pytest.mark.parametrize(("policy", "duplicates"), [
    ("duplicate", {"copy"}),
    ("same_story", {"copy", "rewrite", "italy-rewrite"}),
])
def test_policy_chooses_which_relations_are_duplicates(detector, policy, duplicates):
    decisions = detector.add_many(stream(), policy=policy)
    assert {d.id for d in decisions if d.is_duplicate} == duplicates


def test_duplicates_of_what_is_already_indexed(detector):
    detector.add_many(stream()[:2])
    decision = detector.add(doc("copy", FLOOD_WIRE.replace("Wednesday", "Wednesday evening")), policy="duplicate")
    assert (decision.status, decision.relation, decision.matched_id) == ("duplicate", "duplicate", "wire")


def test_decisions_are_stored_and_a_second_run_adds_nothing(detector, fake_encoder):
    first = detector.add_many(stream(), policy="rewrite")
    encoded, info = fake_encoder.sentences_encoded, detector.info()
    again = detector.add_many(stream(), policy="rewrite")
    assert again == first
    assert fake_encoder.sentences_encoded == encoded
    assert {k: v for k, v in detector.info().items() if k not in ("updated", "generation", "bytes_on_disk")} == \
        {k: v for k, v in info.items() if k not in ("updated", "generation", "bytes_on_disk")}


def test_canonical_can_prefer_the_longest(detector):
    decisions = detector.add_many(stream(), policy="same_story", canonical="longest")
    wire_story = [d for d in decisions if d.id in ("wire", "copy", "rewrite")]
    assert {d.canonical_id for d in wire_story} == {"copy"}  # the wire story with a sign-off line is longest


def test_report_shows_lineage(detector):
    detector.add_many(stream())
    report = detector.report("wire", "copy")
    assert report.lineage == ["copy arrived as a duplicate of wire"]


def test_bad_policy_is_refused(detector):
    with pytest.raises(ValueError, match="policy 'copies' is not one of"):
        detector.add_many(stream(), policy="copies")


def test_remove_deletes_from_every_part_and_updates_clusters(detector):
    detector.add_many(stream())
    before = detector.info()
    cluster = detector.cluster_of()["wire"]
    result = detector.remove(["copy", "nope"])
    assert (result.removed, result.missing) == (["copy"], ["nope"])
    info = detector.info()
    assert info["documents"] == before["documents"] - 1
    assert detector.store.document("copy") is None
    assert len(detector.snapshot.documents) == len(detector.snapshot.keys) == info["documents"]
    assert info["sentences"] < before["sentences"]
    assert "copy" not in detector.cluster_of()
    assert detector.cluster_of()["wire"] == cluster
    # nothing left of it in the LSH: a query for its text finds the wire story, never "copy"
    assert "copy" not in {m.id for m in detector.query(FLOOD_WIRE)}


# ---- the dedup command --------------------------------------------------------------------------------------------


def lines_of(documents) -> str:
    return "".join(json.dumps({"id": d.id, "text": d.text, "source": "test"}) + "\n" for d in documents)


@pytest.fixture
def run(fake_model, tmp_index):
    def invoke(*args: str, input: str = ""):
        return CliRunner().invoke(cli, ["dedup", "--index", str(tmp_index), "--model", "fake-hash-encoder", *args],
                                  input=input)
    return invoke


def test_dedup_command_adds_the_decision_to_each_line(run, monkeypatch):
    monkeypatch.setattr("detector.config.ScoringParams.shipped", classmethod(lambda cls, profile="accurate": PARAMS))
    result = run("--policy", "duplicate", "-", input=lines_of(stream()))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["wire", "italy", "copy", "rewrite", "chess", "italy-rewrite"]
    assert all(r["source"] == "test" for r in rows)  # the line as it came, with the decision added
    assert rows[2]["dedup"]["status"] == "duplicate" and rows[2]["dedup"]["matched_id"] == "wire"
    assert set(rows[0]["dedup"]) == {"status", "relation", "matched_id", "cluster", "score", "canonical_id"}
    assert result.stderr.splitlines()[-1].startswith("dedup: 6 documents in ")
    assert result.stderr.splitlines()[-1].endswith("docs/s): 5 new, 1 duplicates (policy duplicate)")


def test_dedup_keep_only_and_a_later_run_sees_earlier_decisions(run, monkeypatch):
    monkeypatch.setattr("detector.config.ScoringParams.shipped", classmethod(lambda cls, profile="accurate": PARAMS))
    first = run("--keep-only", "--policy", "same_story", "-", input=lines_of(stream()[:2]))
    assert [json.loads(line)["id"] for line in first.stdout.splitlines()] == ["wire", "italy"]
    second = run("--keep-only", "--policy", "same_story", "-", input=lines_of(stream()))
    assert [json.loads(line)["id"] for line in second.stdout.splitlines()] == ["wire", "italy", "chess"]
    assert "dedup" not in json.loads(second.stdout.splitlines()[0])


def test_dedup_reports_bad_lines_by_number(run):
    bad = '{"id": "a", "text": "fine words"}\n{"id": "b", "text": \n\xff\n'
    result = run("--on-error", "skip", "-", input=bad.encode("latin-1"))
    assert result.exit_code == 0, result.output
    assert "skipped: <stdin>:2: malformed JSON" in result.stderr
    assert "skipped: <stdin>:3: not UTF-8 (byte 0): re-encode the file as UTF-8" in result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["a"]
    stopped = run("-", input='{"id": "c", "text": "more words"}\n{"id": 5.5, "text": "x"}\n')
    assert stopped.exit_code == 1
    assert [json.loads(line)["id"] for line in stopped.stdout.splitlines()] == ["c"]
    assert stopped.stderr.splitlines()[-1].startswith(
        "Error: <stdin>:2: 'id' must be a string or a whole number, got float")


def test_dedup_refuses_a_huge_document_and_keeps_the_rest(run):
    huge = json.dumps({"id": "huge", "text": "word " * 2_200_000})
    result = run("--on-error", "skip", "-", input=lines_of(stream()[:1]) + huge + "\n")
    assert result.exit_code == 0, result.output
    assert ("skipped: <stdin>:2: document 'huge' is 11.0 MB, over the limit of 1.0 MB; raise --max-bytes to index "
            "it (it will be slow)") in result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["wire"]


def test_dedup_of_a_known_id_with_another_text_replaces_it(run, tmp_index):
    run("-", input=lines_of([doc("a", FLOOD_WIRE)]))
    result = run("-", input=lines_of([doc("a", CHESS)]))
    assert result.exit_code == 0, result.output
    query = CliRunner().invoke(cli, ["query", "--index", str(tmp_index), "--format", "json", "--text", CHESS])
    [match] = json.loads(query.stdout)
    assert (match["id"], match["relation"]) == ("a", "duplicate")  # "a" now holds the chess report


def test_a_first_dedup_run_that_indexes_nothing_creates_no_index(fake_model, tmp_index):
    result = CliRunner().invoke(cli, ["dedup", "--index", str(tmp_index), "--model", "fake-hash-encoder", "-"],
                                input="{not json}\n")
    assert result.exit_code == 1 and not tmp_index.exists()
    assert result.stderr.splitlines()[0] == f"nothing to index: no index created at {tmp_index}"


def test_remove_command(fake_model, tmp_index):
    runner = CliRunner()
    runner.invoke(cli, ["dedup", "--index", str(tmp_index), "--model", "fake-hash-encoder", "-"],
                  input=lines_of(stream()))
    result = runner.invoke(cli, ["remove", "--index", str(tmp_index), "copy", "ghost"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["removed 1 document(s)",
                                          "Error: not in the index: ghost (the others were removed)"]
    ids = [json.loads(line)["id"] for line in
           runner.invoke(cli, ["clusters", "--index", str(tmp_index), "--format", "jsonl"]).stdout.splitlines()]
    assert "copy" not in ids and len(ids) == 5
    none_removed = runner.invoke(cli, ["remove", "--index", str(tmp_index), "ghost"])
    assert none_removed.stderr.splitlines() == ["removed 0 document(s)", "Error: not in the index: ghost"]


def test_dedup_writes_every_line_once_when_an_id_repeats(run):
    lines = [{"id": "a", "text": FLOOD_WIRE}, {"id": "c", "text": FLOOD_WIRE}, {"id": "a", "text": CHESS}]
    result = run("--policy", "duplicate", "-", input="".join(json.dumps(r) + "\n" for r in lines))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r["text"][:20]) for r in rows] == [(r["id"], r["text"][:20]) for r in lines]
    # c is an exact copy of the first text of a, decided before a was replaced
    assert (rows[1]["dedup"]["status"], rows[1]["dedup"]["matched_id"]) == ("duplicate", "a")
    assert rows[2]["dedup"]["status"] == "new"


def test_a_full_report_after_its_first_paragraph_is_not_its_duplicate_but_the_paragraph_after_it_is(detector_factory,
                                                                                                    tmp_path):
    # a wire story's first paragraph (a flash) is a trimmed copy of the story: `duplicate`, measured on the shorter
    # text; as a decision that holds for the flash arriving second, not for the story that adds much to it
    flash = "\n".join(FLOOD_WIRE.splitlines()[:2])
    later = detector_factory(tmp_path / "flash-first", params=PARAMS)
    later.add(doc("flash", flash))
    assert later.add(doc("wire", FLOOD_WIRE), policy="duplicate").status == "new"
    assert later.report("flash", "wire").relation == "duplicate"  # the pair itself is still a duplicate
    decision = later.decisions(["wire"], policy="same_story")[0]
    assert (decision.status, decision.matched_id) == ("duplicate", "flash")
    assert decision.relation in ("rewrite", "same_story")
    first = detector_factory(tmp_path / "story-first", params=PARAMS)
    first.add(doc("wire", FLOOD_WIRE))
    assert first.add(doc("flash", flash), policy="duplicate").relation == "duplicate"


def test_a_newcomer_extends_an_earlier_text_when_too_little_of_it_is_in_that_text():
    from detector.dedup import decision_relation

    params = replace(PARAMS, duplicate_containment=0.75, rewrite_coverage=0.25)
    # the newcomer's own 3-grams in the earlier text: containment x min(n, m) / n
    assert decision_relation({"containment": 1.0, "coverage_min": 0.1}, 100, 90, params) == "duplicate"
    assert decision_relation({"containment": 1.0, "coverage_min": 0.1}, 100, 75, params) == "duplicate"
    assert decision_relation({"containment": 0.9, "coverage_min": 0.1}, 100, 75, params) == "same_story"
    assert decision_relation({"containment": 1.0, "coverage_min": 0.1}, 1000, 100, params) == "same_story"
    assert decision_relation({"containment": 1.0, "coverage_min": 0.4}, 1000, 100, params) == "rewrite"
    # no more 3-grams than the earlier text (reformatted, trimmed, repeated): the pair's duplicate stands
    assert decision_relation({"containment": 0.8, "coverage_min": 0.0}, 90, 100, params) == "duplicate"
    # a rewrite pair: a longer newcomer is a rewrite only when a quarter of its own sentences align (a user test: a
    # full report after a flash of another outlet's version, 2 of its 15 sentences aligned); a shorter one stays one
    assert decision_relation({"coverage_min": 0.133}, 400, 100, params, relation="rewrite") == "same_story"
    assert decision_relation({"coverage_min": 0.3}, 400, 100, params, relation="rewrite") == "rewrite"
    assert decision_relation({"coverage_min": 0.133}, 90, 100, params, relation="rewrite") == "rewrite"


def test_a_full_report_after_a_flash_of_another_version_is_not_its_rewrite(detector_factory):
    # the flash is two sentences of the rewrite; the full report (the wire story and six sentences more) aligns with
    # both of them, so the pair is a `rewrite`, but only 2 of its own 11 sentences do: as its decision, `same_story`
    more = ["Volunteers from all over Spain came to Paiporta on Thursday with shovels and water.",
            "Schools in the town will stay closed until the roads are cleared, the mayor said.",
            "The regional government opened a fund for families who lost their homes in the floods.",
            "Insurance companies said claims could reach several hundred million euros this year.",
            "Train services between Valencia and Madrid were suspended for a second day on Thursday.",
            "The king and queen are expected to visit the worst hit towns at the weekend."]
    detector = detector_factory(params=PARAMS)
    detector.add(doc("flash", "\n".join(FLOOD_REWRITE.splitlines()[:2])))
    decision = detector.add(doc("full", "\n".join([FLOOD_WIRE, *more])))
    assert detector.report("flash", "full").relation == "rewrite"
    assert (decision.status, decision.relation, decision.matched_id) == ("new", "same_story", "flash")


def test_a_reformatted_or_repeated_copy_stays_a_duplicate_whatever_its_length_in_characters(detector_factory):
    detector = detector_factory(params=PARAMS)
    detector.add(doc("wire", FLOOD_WIRE))
    edited = FLOOD_WIRE.replace("Wednesday", "Wednesday evening")
    rewrapped = "\n".join("                " + line for line in textwrap.wrap(edited, 60))
    for doc_id, text in (("rewrapped", rewrapped), ("twice", edited + "\n\n" + edited)):
        decision = detector.add(doc(doc_id, text), policy="duplicate")
        assert (decision.status, decision.relation) == ("duplicate", "duplicate"), doc_id


def test_lineage_says_when_the_matched_text_is_gone(detector):
    detector.add_many(stream())
    detector.remove(["wire"])
    assert detector.report("copy", "rewrite").lineage[0] == (
        "copy arrived as a duplicate of wire (that text has since been replaced or removed)")


def test_a_replacement_is_compared_with_documents_that_came_after_the_first_text(detector):
    # a's first text is the wire story; c arrives; then a's text becomes an exact copy of c
    detector.add_many([doc("a", FLOOD_WIRE), doc("c", CHESS)])
    decision = detector.add(doc("a", CHESS), policy="duplicate")
    assert (decision.status, decision.matched_id, decision.relation) == ("duplicate", "c", "duplicate")
