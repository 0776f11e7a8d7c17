"""Every command through click's CliRunner, with the fake encoder standing in for the model (see `fake_model`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CHESS, FLOOD_OTHER_EVENT, FLOOD_REWRITE, FLOOD_WIRE
from filelock import FileLock

from detector.cli import cli
from detector.store import FORMAT_VERSION

FAKE = ["--model", "fake-hash-encoder"]
IDS = ["chess", "italy", "rewrite", "wire"]  # read from the folder in sorted file order


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def articles(tmp_path: Path) -> Path:
    """A folder of .txt articles: two versions of one story, another flood, a chess report."""
    folder = tmp_path / "articles"
    folder.mkdir()
    for name, text in [("wire", FLOOD_WIRE), ("rewrite", FLOOD_REWRITE), ("italy", FLOOD_OTHER_EVENT),
                       ("chess", CHESS)]:
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def index(runner, fake_model, articles, tmp_index) -> Path:
    """An index of `articles`, built through the CLI."""
    result = runner.invoke(cli, ["index", "--index", str(tmp_index), *FAKE, str(articles)])
    assert result.exit_code == 0, result.output
    return tmp_index


def invoke(runner: CliRunner, *args: str, **kwargs):
    return runner.invoke(cli, [str(a) for a in args], **kwargs)


# ---- index -----------------------------------------------------------------------------------------------------------


def test_index_reports_to_stderr_and_nothing_to_stdout(runner, fake_model, articles, tmp_index):
    result = invoke(runner, "index", "--index", tmp_index, *FAKE, articles)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert re.fullmatch(r"indexed 4 new, 0 replaced, 0 unchanged, 0 with new metadata, "
        r"0 exact duplicates; 17 sentences encoded; "
                        r"1 candidate pairs, 1 confirmed; \d+\.\ds\n", result.stderr), result.stderr
    assert (tmp_index / "manifest.json").exists()


def test_index_again_is_unchanged(runner, index, articles, fake_model):
    encoded_before = fake_model.sentences_encoded
    result = invoke(runner, "index", "--index", index, articles)  # no --model: the index keeps its own
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("indexed 0 new, 0 replaced, 4 unchanged, 0 with new metadata, "
        "0 exact duplicates; 0 sentences encoded; "
                                    "0 candidate pairs, 0 confirmed;")
    assert fake_model.sentences_encoded == encoded_before


def test_index_stdin_with_custom_fields(runner, index):
    lines = "\n".join(json.dumps({"guid": g, "body": b}) for g, b in [("copy", FLOOD_WIRE), ("new", "A new story.")])
    result = invoke(runner, "index", "--index", index, "--id-field", "guid", "--text-field", "body", "-",
                    input=lines)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("indexed 2 new, 0 replaced, 0 unchanged, 0 with new metadata, "
        "1 exact duplicates; 1 sentences encoded;")
    clusters = json.loads(invoke(runner, "clusters", "--index", index, "--format", "json").stdout)
    assert {"copy", "wire", "rewrite"} <= set(next(c["members"] for c in clusters if "copy" in c["members"]))


def test_index_bad_input_is_a_clear_error(runner, index):
    result = invoke(runner, "index", "--index", index, "-", input='{"id": "a", "text": "ok"}\n{"id": "b"}\n')
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "Error: <stdin>:2: missing field 'text' (fields present: ['id']); use --id-field/--text-field if your data "
        "names them differently (everything before it was kept; --on-error skip goes on)")
    # what came before the bad line was kept
    rows = invoke(runner, "clusters", "--index", index, "--format", "jsonl").stdout.splitlines()
    assert sorted(json.loads(row)["id"] for row in rows) == sorted(IDS + ["a"])


def test_index_skips_bad_lines_on_request(runner, index):
    lines = '{"id": "a", "text": "ok"}\n{"id": "b"}\nnot json\n{"id": "c", "text": "  "}\n{"id": "d", "text": "fine"}\n'
    result = invoke(runner, "index", "--index", index, "--on-error", "skip", "-", input=lines)
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped: ")]
    assert skipped == [
        "skipped: <stdin>:2: missing field 'text' (fields present: ['id']); use --id-field/--text-field if your "
        "data names them differently",
        "skipped: <stdin>:3: malformed JSON (Expecting value at column 1)",
        "skipped: <stdin>:4: document 'c' has no text: empty or whitespace-only documents are not indexed"]
    assert result.stderr.splitlines()[-1] == "3 bad input line(s) or file(s) skipped"
    rows = invoke(runner, "clusters", "--index", index, "--format", "jsonl").stdout.splitlines()
    assert sorted(json.loads(row)["id"] for row in rows) == sorted(IDS + ["a", "d"])


def test_a_first_run_that_indexes_nothing_creates_no_index(runner, fake_model, tmp_path):
    # else the failed run would fix the index's profile and model, and the corrected run be refused
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 news".encode("latin-1"))
    target = tmp_path / "new-index"
    result = invoke(runner, "index", "--index", target, *FAKE, bad)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"nothing to index: no index created at {target}"
    assert "not UTF-8" in result.stderr and not target.exists()
    skipped = invoke(runner, "index", "--index", target, *FAKE, "--on-error", "skip", bad)
    assert skipped.exit_code == 0 and not target.exists()
    good = invoke(runner, "index", "--index", target, *FAKE, "--profile", "fast", "-",
                  input='{"id": "a", "text": "Floods hit the valley on Monday."}\n')
    assert good.exit_code == 0, good.output
    assert json.loads((target / "manifest.json").read_text(encoding="utf-8"))["settings"]["profile"] == "fast"


def test_index_refuses_another_model(runner, index, articles):
    result = invoke(runner, "index", "--index", index, "--model", "all-MiniLM-L6-v2", articles)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {index} was built with model 'fake-hash-encoder', "
                                    "not 'all-MiniLM-L6-v2': vectors of different models do not compare.")


def test_index_lock_timeout(runner, index):
    with FileLock(str(index / "write.lock")):
        result = invoke(runner, "index", "--index", index, "--lock-timeout", "0.1", "-",
                        input='{"id": "late", "text": "Late news."}\n')
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {index} is being written by another process (lock {index / 'write.lock'} "
                             "held for more than 0.1s); wait for it to finish or raise --lock-timeout\n")


# ---- clusters --------------------------------------------------------------------------------------------------------


def test_clusters_table(runner, index):
    result = invoke(runner, "clusters", "--index", index)
    assert result.exit_code == 0
    assert result.stdout == ("cluster  size  representative  members\n"
                             "s000001     1  chess           chess\n"
                             "s000002     1  italy           italy\n"
                             "s000003     2  rewrite         rewrite, wire\n")


def test_clusters_json(runner, index):
    result = invoke(runner, "clusters", "--index", index, "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [
        {"cluster": "s000001", "representative": "chess", "size": 1, "members": ["chess"]},
        {"cluster": "s000002", "representative": "italy", "size": 1, "members": ["italy"]},
        {"cluster": "s000003", "representative": "rewrite", "size": 2, "members": ["rewrite", "wire"]},
    ]


def test_clusters_jsonl_lists_every_document_once(runner, index):
    result = invoke(runner, "clusters", "--index", index, "--format", "jsonl")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["id"] for r in rows) == IDS
    cluster_of = {r["id"]: r["cluster"] for r in rows}
    assert cluster_of["wire"] == cluster_of["rewrite"]
    # singletons have their own cluster id
    assert len({cluster_of["chess"], cluster_of["italy"], cluster_of["wire"]}) == 3


def test_clusters_without_index(runner, tmp_path):
    result = invoke(runner, "clusters", "--index", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: no index at {tmp_path / 'nowhere'}: build one first with `detector index "
                             f"--index {tmp_path / 'nowhere'} PATH...` (or set DETECTOR_INDEX)\n")
    assert not (tmp_path / "nowhere").exists()


# ---- query -----------------------------------------------------------------------------------------------------------


def test_query_text_table(runner, index):
    result = invoke(runner, "query", "--index", index, "--text", FLOOD_REWRITE, "--top", "2")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "probability", "relation", "cluster", "coverage", "found", "by"]
    assert [line.split()[0] for line in lines[1:]] == ["rewrite", "wire"]
    # the indexed "rewrite" has the very text of the query: an exact duplicate
    assert lines[1].split()[2:4] == ["duplicate", "s000003"] and lines[2].split()[2:4] == ["same_story", "s000003"]


def test_query_file(runner, index, tmp_path):
    query_file = tmp_path / "query.txt"
    query_file.write_text(CHESS, encoding="utf-8")
    result = invoke(runner, "query", "--index", index, "--format", "json", "--top", "1", query_file)
    assert result.exit_code == 0
    [match] = json.loads(result.stdout)
    assert (match["id"], match["verdict"], match["cluster"]) == ("chess", "same story", "s000001")
    assert set(match["features"]) == {"coverage_min", "coverage_max", "doc_cosine", "jaccard", "term_cosine",
                                      "containment", "containment_longer", "lead_cosine"}


def test_query_stdin(runner, index):
    result = invoke(runner, "query", "--index", index, "--format", "json", "-", input=FLOOD_OTHER_EVENT)
    assert result.exit_code == 0
    matches = json.loads(result.stdout)
    assert matches[0]["id"] == "italy" and matches[0]["verdict"] == "same story"
    assert [m["probability"] for m in matches] == sorted((m["probability"] for m in matches), reverse=True)


def test_query_does_not_change_the_index(runner, index):
    def state():
        info = json.loads(invoke(runner, "info", "--index", index, "--format", "json").stdout)
        return {k: info[k] for k in ("documents", "sentences", "candidate_pairs", "generation", "updated")}

    before = state()
    assert invoke(runner, "query", "--index", index, "--text", "Something new about chess.").exit_code == 0
    assert state() == before
    assert before["documents"] == 4


# ---- report ----------------------------------------------------------------------------------------------------------


def test_report_text(runner, index):
    result = invoke(runner, "report", "--index", index, "wire", "rewrite")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "wire  vs  rewrite"
    assert re.fullmatch(r"verdict: same story, relation: same_story   \(probability same story 0\.9\d\d\)", lines[1])
    assert lines[2:4] == ["clusters: s000003 / s000003", "found by: embedding, minhash"]
    assert '          shared quote: "we are living through an unprecedented situation"' in lines


def test_report_json(runner, index):
    result = invoke(runner, "report", "--index", index, "--format", "json", "wire", "chess")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert (report["a"], report["b"], report["verdict"]) == ("wire", "chess", "different")
    assert (report["a_cluster"], report["b_cluster"], report["sources"]) == ("s000003", "s000001", [])
    assert report["sentences"] == {"a": 5, "b": 3}


def test_report_unknown_id(runner, index):
    result = invoke(runner, "report", "--index", index, "wire", "nope")
    assert result.exit_code == 1
    assert result.stderr == f"Error: no document 'nope' in {index}: see `detector clusters` for ids\n"


def test_report_on_a_corrupt_database(runner, index):
    for leftover in index.glob("meta.sqlite-*"):
        leftover.unlink()
    (index / "meta.sqlite").write_bytes(b"junk" * 1000)
    result = invoke(runner, "report", "--index", index, "wire", "rewrite")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {index / 'meta.sqlite'} is corrupt (file is not a database): "
                             "rebuild the index\n")


# ---- info ------------------------------------------------------------------------------------------------------------


def test_info_text(runner, index):
    result = invoke(runner, "info", "--index", index)
    assert result.exit_code == 0
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert {k: lines[k].strip() for k in ("path", "model", "documents", "clusters", "multi_document_clusters")} == {
        "path": str(index), "model": "fake-hash-encoder", "documents": "4", "clusters": "3",
        "multi_document_clusters": "1"}


def test_info_json(runner, index):
    result = invoke(runner, "info", "--index", index, "--format", "json")
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert (info["format_version"], info["dimension"], info["documents"], info["confirmed_pairs"]) == (
        FORMAT_VERSION, 64, 4, 1)
    assert info["settings"]["model"] == "fake-hash-encoder"


# ---- where the index is ----------------------------------------------------------------------------------------------


def test_detector_index_environment_variable(runner, index):
    result = invoke(runner, "clusters", "--format", "jsonl", env={"DETECTOR_INDEX": str(index)})
    assert result.exit_code == 0
    assert sorted(json.loads(line)["id"] for line in result.stdout.splitlines()) == IDS


def test_option_beats_environment_variable(runner, index, tmp_path):
    result = invoke(runner, "info", "--index", index, "--format", "json",
                    env={"DETECTOR_INDEX": str(tmp_path / "elsewhere")})
    assert result.exit_code == 0
    assert json.loads(result.stdout)["path"] == str(index)


def test_default_index_folder(runner, fake_model, articles, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DETECTOR_INDEX", raising=False)
    result = invoke(runner, "index", *FAKE, articles)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "indexes" / "default" / "manifest.json").exists()
    assert invoke(runner, "clusters", "--format", "jsonl").stdout.count("\n") == 4


# ---- bad arguments ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, error", [
    (["query"], "Error: give either FILE or --text, not both and not neither"),
    (["query", "--text", "floods", "FILE"], "Error: give either FILE or --text, not both and not neither"),
    (["query", "--text", "   "], "Error: the query text is empty"),
    (["query", "--text", "floods", "--top", "0"], "Error: Invalid value for '--top': 0 is not in the range x>=1."),
    (["query", "--text", "floods", "--format", "csv"],
     "Error: Invalid value for '--format': 'csv' is not one of 'table', 'json'."),
    (["clusters", "--format", "xml"], "Error: Invalid value for '--format': 'xml' is not one of 'table', 'json', "
                                      "'jsonl'."),
    (["report", "wire"], "Error: Missing argument 'ID_B'."),
    (["report", "wire", "rewrite", "--format", "html"],
     "Error: Invalid value for '--format': 'html' is not one of 'text', 'json'."),
    (["index"], "Error: Missing argument 'PATHS...'."),
    (["index", "--batch-size", "0", "x.txt"],
     "Error: Invalid value for '--batch-size': 0 is not in the range 1<=x<=100000."),
    (["index", "--lock-timeout", "-1", "x.txt"],
     "Error: Invalid value for '--lock-timeout': -1.0 is not in the range x>=0."),
    (["info", "--format", "yaml"], "Error: Invalid value for '--format': 'yaml' is not one of 'text', 'json'."),
    (["frobnicate"], "Error: No such command 'frobnicate'."),
])
def test_bad_arguments(runner, index, articles, args, error):
    args = [str(articles / "wire.txt") if a == "FILE" else a for a in args]
    if args[0] != "frobnicate":
        args[1:1] = ["--index", str(index)]
    result = invoke(runner, *args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == error


def test_query_missing_file(runner, index, tmp_path):
    result = invoke(runner, "query", "--index", index, tmp_path / "missing.txt")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (f"Error: Invalid value for '[FILE]': '{tmp_path / 'missing.txt'}': "
                                              "No such file or directory")


@pytest.mark.parametrize("args, error", [
    (["index", "MISSING"], "Error: MISSING: no such file or folder"),
    (["index", "ARTICLE.docx"], "Error: ARTICLE.docx: unsupported file type '.docx'; give .txt or .jsonl files, "
                                "or a folder"),
    (["report", "wire", "nope"], "Error: no document 'nope' in INDEX: see `detector clusters` for ids"),
])
def test_errors_from_the_library(runner, index, tmp_path, args, error):
    refused_before_reading = "MISSING" in args  # a missing path is refused before anything is read
    (tmp_path / "ARTICLE.docx").write_bytes(b"PK")
    paths = {"MISSING": str(tmp_path / "missing.txt"), "ARTICLE.docx": str(tmp_path / "ARTICLE.docx"),
             "INDEX": str(index)}
    args = [paths.get(a, a) for a in args]
    for placeholder, value in paths.items():
        error = error.replace(placeholder, value)
    result = invoke(runner, args[0], "--index", index, *args[1:])
    assert result.exit_code == 1
    if args[0] == "index" and not refused_before_reading:
        error += " (everything before it was kept; --on-error skip goes on)"
    assert result.stderr.splitlines()[-1] == error


def test_index_folder_with_a_binary_file_skips_it_on_request(runner, fake_model, tmp_path, tmp_index):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text(FLOOD_WIRE, encoding="utf-8")
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    result = invoke(runner, "index", "--index", tmp_index, *FAKE, "--on-error", "skip", folder)
    assert result.exit_code == 0, result.output
    assert f"skipped: {folder / 'image.txt'}: looks binary (NUL bytes), not a text article" in result.stderr
    rows = invoke(runner, "clusters", "--index", tmp_index, "--format", "jsonl").stdout.splitlines()
    assert [json.loads(row)["id"] for row in rows] == ["good"]
    stopped = invoke(runner, "index", "--index", tmp_path / "other", *FAKE, folder)
    assert stopped.exit_code == 1
    assert stopped.stderr.splitlines()[-1].startswith(f"Error: {folder / 'image.txt'}: looks binary")


def test_txt_files_with_one_name_in_two_folders_are_an_error(runner, fake_model, tmp_path, tmp_index):
    for sub, text in (("x", FLOOD_WIRE), ("y", CHESS)):
        (tmp_path / "coll" / sub).mkdir(parents=True)
        (tmp_path / "coll" / sub / "story.txt").write_text(text, encoding="utf-8")
    result = invoke(runner, "index", "--index", tmp_index, *FAKE, tmp_path / "coll")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith(
        f"Error: {tmp_path / 'coll' / 'y' / 'story.txt'}: its id 'story' is taken by "
        f"{tmp_path / 'coll' / 'x' / 'story.txt'} in this run; rename one of the two files")


@pytest.mark.parametrize("args", [["report", "wire", "a\udcff"], ["remove", "a\udcff"],
                                  ["query", "--text", "caf\udce9"]])
def test_arguments_that_are_not_text_are_refused(runner, index, args):
    # bytes that are not UTF-8 on the command line reach Python as lone surrogates: a usage error, not a traceback
    result = invoke(runner, args[0], "--index", index, *args[1:])
    assert result.exit_code == 2, result.output
    assert "is not valid UTF-8 text" in result.stderr


def test_report_of_a_document_with_itself_is_refused(runner, index):
    result = invoke(runner, "report", "--index", index, "wire", "wire")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "Error: give two different ids (both are 'wire')"


def test_query_file_that_is_not_utf8(runner, index, tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café au lait".encode("latin-1"))
    result = invoke(runner, "query", "--index", index, latin)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {latin}: not UTF-8 (byte 3): re-encode the file as UTF-8\n"


def test_manifest_with_invalid_settings_is_refused(runner, index):
    manifest = json.loads((index / "manifest.json").read_text())
    manifest["settings"]["num_perm"] = 5
    (index / "manifest.json").write_text(json.dumps(manifest))
    result = invoke(runner, "info", "--index", index)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {index / 'manifest.json'} has invalid settings (num_perm=5 must be "
                                    "between 16 and 1024)")


def test_the_same_file_named_twice_is_not_a_collision(runner, fake_model, articles, tmp_index):
    result = invoke(runner, "index", "--index", tmp_index, *FAKE, articles, (articles / "wire.txt").resolve())
    assert result.exit_code == 0, result.output
    assert "4 unchanged" not in result.stderr and result.stderr.startswith("indexed 4 new")


def test_index_of_a_missing_path_creates_nothing(runner, fake_model, tmp_path):
    result = invoke(runner, "index", "--index", tmp_path / "new", *FAKE, tmp_path / "nope.txt")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'nope.txt'}: no such file or folder\n"
    assert not (tmp_path / "new").exists()


def test_only_files_and_folders_are_read_ahead(tmp_path):
    import os
    from detector.cli import all_files
    (tmp_path / "a.jsonl").write_text("{}\n")
    os.mkfifo(tmp_path / "feed")
    assert all_files((str(tmp_path / "a.jsonl"), str(tmp_path)))
    assert not all_files(("-",))
    assert not all_files((str(tmp_path / "a.jsonl"), str(tmp_path / "feed")))  # a live stream among them


@pytest.mark.parametrize(("name", "message"), [
    ("index", "stopped: the output was closed by its reader; every batch committed before it is kept"),
    ("info", "stopped: the output was closed by its reader"),  # it writes nothing to the index: nothing to keep
])
def test_a_stop_says_what_was_kept_only_for_commands_that_write(name, message):
    import subprocess
    import sys
    script = ("from detector.cli import friendly_errors\n"
              f"def {name}():\n    raise BrokenPipeError\n"
              f"friendly_errors({name})()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 141
    assert done.stderr.splitlines()[-1] == message
