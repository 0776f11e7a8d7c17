"""score_pairs and the score-pairs / eval commands, with the fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CHESS, FLOOD_OTHER_EVENT, FLOOD_REWRITE, FLOOD_WIRE, TEST_PARAMS

from detector.cli import cli
from detector.pairs import score_pairs

SENTENCE = "Flash floods swept through the Spanish town of Paiporta on October 29."


def test_single_sentences_use_the_sentence_model(fake_encoder):
    same, other = score_pairs([(SENTENCE, SENTENCE), (SENTENCE, "Magnus Carlsen won the blitz title in New York.")],
                              encoder=fake_encoder, params=TEST_PARAMS)
    assert (same.level, other.level) == ("sentence", "sentence")
    assert same.relation == "duplicate" and same.score > 0.9
    assert other.relation == "different" and other.score < 0.5
    assert set(same.components) == {"cosine", "token_alignment", "word_jaccard", "bigram_jaccard", "term_cosine",
                                    "number_mismatch", "length_ratio", "token_set_ratio", "word_order", "specific"}
    # the fake encoder gives no token vectors: token alignment is then the cosine
    assert other.components["token_alignment"] == other.components["cosine"]


def test_articles_use_the_document_model(fake_encoder):
    rewrite, unrelated = score_pairs([(FLOOD_WIRE, FLOOD_REWRITE), (FLOOD_WIRE, CHESS)], encoder=fake_encoder,
                                     params=TEST_PARAMS)
    assert (rewrite.level, unrelated.level) == ("document", "document")
    assert rewrite.score > 0.5 > unrelated.score
    assert "coverage_min" in rewrite.components and "containment" in rewrite.components


def test_score_pairs_command_adds_fields_and_keeps_the_rest(fake_model):
    lines = [json.dumps({"a": FLOOD_WIRE, "b": FLOOD_REWRITE, "note": "rewrite"}),
             json.dumps({"a": SENTENCE, "b": SENTENCE})]
    result = CliRunner().invoke(cli, ["score-pairs", "--model", "fake-hash-encoder", "-"],
                                input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["note"] == "rewrite" and first["level"] == "document" and first["relation"] != "different"
    assert second["level"] == "sentence" and second["relation"] == "duplicate"
    assert set(first) == {"a", "b", "note", "score", "relation", "level", "components"}


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": "x", "b": "y"}\n{"a": "x",\n', "Error: <stdin>:2: malformed JSON (Expecting property name"),
    ('{"a": "x \\ud800 y", "b": "x y"}\n', "Error: <stdin>:1: a \\u escape in it is half of a surrogate pair"),
    ('{"a": "x"}\n', "Error: <stdin>:1: needs text fields 'a' and 'b'"),
    ('{"a": "x", "b": "  "}\n', "Error: <stdin>:1: 'a' and 'b' must not be empty"),
])
def test_score_pairs_bad_input(fake_model, text, message):
    result = CliRunner().invoke(cli, ["score-pairs", "--model", "fake-hash-encoder", "-"], input=text)
    assert result.exit_code == 1
    assert result.stderr.startswith(message)


def test_score_pairs_names_the_file_of_a_bad_line(fake_model, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"a": "x", "b": "y"}\n{"a": "x"}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["score-pairs", "--model", "fake-hash-encoder", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {path}:2: needs text fields 'a' and 'b'")


def test_score_pairs_keeps_the_lines_before_a_bad_one_or_skips_it(fake_model):
    good = json.dumps({"a": SENTENCE, "b": SENTENCE})
    text = f"{good}\n{{not json}}\n{good}\n"
    stopped = CliRunner().invoke(cli, ["score-pairs", "--model", "fake-hash-encoder", "-"], input=text)
    assert stopped.exit_code == 1 and len(stopped.stdout.splitlines()) == 1  # the line before it, scored
    assert stopped.stderr.startswith("Error: <stdin>:2: malformed JSON")
    skipped = CliRunner().invoke(cli, ["score-pairs", "--model", "fake-hash-encoder", "--on-error", "skip", "-"],
                                 input=text)
    assert skipped.exit_code == 0 and len(skipped.stdout.splitlines()) == 2
    assert skipped.stderr.splitlines()[0].startswith("skipped: <stdin>:2: malformed JSON")


BLANK_LINES = "\ufeff\n", "\u00a0\n", " \t\n", "\u2003\r\n"  # a BOM alone (first line), no-break and em spaces


def test_score_pairs_skips_lines_of_any_whitespace_as_index_does(fake_model):
    good = json.dumps({"a": SENTENCE, "b": SENTENCE}) + "\n"
    result = CliRunner().invoke(cli, ["score-pairs", "--model", "fake-hash-encoder", "-"],
                                input="".join(BLANK_LINES) + good + BLANK_LINES[1])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1


def test_eval_skips_lines_of_any_whitespace_as_index_does(fake_model, tmp_path: Path):
    data = tmp_path / "stories.jsonl"
    rows = [("wire", FLOOD_WIRE, "spain"), ("chess", CHESS, "chess")]
    data.write_text("".join(BLANK_LINES) + "".join(json.dumps({"id": i, "text": t, "story": s}) + "\n"
                                                   for i, t, s in rows) + BLANK_LINES[1], encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", "--model", "fake-hash-encoder", "--format", "json", str(data)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["documents"] == 2


def test_eval_of_story_clusters(fake_model, tmp_path: Path):
    data = tmp_path / "stories.jsonl"
    rows = [("wire", FLOOD_WIRE, "spain"), ("rewrite", FLOOD_REWRITE, "spain"), ("italy", FLOOD_OTHER_EVENT, "italy"),
            ("chess", CHESS, "chess")]
    data.write_text("".join(json.dumps({"id": i, "text": t, "story": s}) + "\n" for i, t, s in rows))
    result = CliRunner().invoke(cli, ["eval", "--model", "fake-hash-encoder", "--format", "json", str(data)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["kind"] == "ClusteringEvaluation"
    assert (figures["documents"], figures["stories"], figures["clusters"]) == (4, 3, 3)
    assert figures["ari"] == pytest.approx(1.0)


def test_eval_of_pairs_counts_relations_by_category(fake_model, tmp_path: Path):
    data = tmp_path / "pairs.jsonl"
    rows = [(FLOOD_WIRE, FLOOD_REWRITE, 1, "rewrite"), (FLOOD_WIRE, CHESS, 0, "unrelated"),
            (FLOOD_REWRITE, CHESS, 0, "unrelated")]
    data.write_text("".join(json.dumps({"a": a, "b": b, "label": y, "category": c}) + "\n" for a, b, y, c in rows))
    result = CliRunner().invoke(cli, ["eval", "--model", "fake-hash-encoder", str(data)])
    assert result.exit_code == 0, result.output
    assert "ROC AUC: 1.0000  (plain embedding cosine: " in result.stdout  # the baseline it must beat, side by side
    assert "relations of category 'unrelated': different 2" in result.stdout


def test_pair_evaluation_gives_the_plain_cosines_roc_auc_beside_the_models():
    from detector.evaluation import pair_evaluation

    # the model ranks all three right; the cosine puts a negative above the positive
    figures = pair_evaluation([1, 0, 0], [0.9, 0.2, 0.1], [True, False, False], ["sentence"] * 3, [None] * 3,
                              ["rewrite", "different", "different"], 1.0, cosines=[0.5, 0.7, 0.1])
    assert figures.roc_auc == 1.0 and figures.cosine_roc_auc == pytest.approx(0.5)


def test_eval_refuses_a_repeated_id(fake_model, tmp_path: Path):
    # indexing would replace the first text with the second and count one document as two
    data = tmp_path / "stories.jsonl"
    rows = [("a", FLOOD_WIRE, "spain"), ("b", CHESS, "chess"), ("a", FLOOD_OTHER_EVENT, "italy")]
    data.write_text("".join(json.dumps({"id": i, "text": t, "story": s}) + "\n" for i, t, s in rows))
    result = CliRunner().invoke(cli, ["eval", "--model", "fake-hash-encoder", str(data)])
    assert result.exit_code == 1
    assert f"{data}:3: id 'a' repeats line 1's: every document of a story set needs its own id" in result.stderr


def test_eval_refuses_unlabelled_data(fake_model, tmp_path: Path):
    data = tmp_path / "plain.jsonl"
    data.write_text(json.dumps({"id": "x", "text": "y"}) + "\n")
    result = CliRunner().invoke(cli, ["eval", "--model", "fake-hash-encoder", str(data)])
    assert result.exit_code == 1
    assert "lines need either `id`, `text` and `story`" in result.stderr


def test_eval_of_a_story_set_with_a_pair_line_says_what_each_line_needs(fake_model, tmp_path):
    data = tmp_path / "mixed.jsonl"
    data.write_text(json.dumps({"id": "a", "text": "Some words here.", "story": "s"}) + "\n" +
                    json.dumps({"a": "x", "b": "y", "label": 1}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", "--model", "fake-hash-encoder", str(data)])
    assert result.exit_code == 1
    assert "--id-field" not in result.stderr  # eval has no such option
    assert f"{data}:2: missing field 'id'" in result.stderr and "needs `id`, `text` and `story`" in result.stderr
