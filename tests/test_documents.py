"""Documents in: normalisation, the content hash, and the .txt / folder / .jsonl / stdin readers with their errors."""

from __future__ import annotations

import io
import json
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector import Document, InputError, content_hash, normalise, read_paths
from detector.documents import _QUOTES, parse_published


def jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


# ---- normalise / content_hash -------------------------------------------------------------------------------------


def test_normalise_folds_case_quotes_dashes_and_spaces():
    # the same headline as typed by two desks: curly vs straight quotes, an en dash, a double space, a tab, a newline
    assert normalise("  “Kyiv  Talks” – Day\tOne\n") == '"kyiv talks" - day one'


def _normalised_as_before(text: str) -> str:
    # normalise() as it was first written: indexes store content hashes, so its result must never change
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    return re.sub(r"\s+", " ", text).strip()


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZ é‘’“”–—‐‑\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029"
                                        "\u202f\u205f\u3000\u200b\ufeffﬁ²"))
       | st.text())
def test_normalise_gives_what_it_always_gave(text):
    assert normalise(text) == _normalised_as_before(text)


@pytest.mark.parametrize("variant", [
    "MAZÓN SAID THE TOWN WAS ‘DEVASTATED’.",                # upper case, curly single quotes
    "Mazón  said the town\nwas 'devastated'.",              # extra space, line break
    "\tMazón said the town was ’devastated‘. ",             # reversed curly quotes, surrounding whitespace
    "Mazo\u0301n said the town was 'devastated'.",          # decomposed accent (NFKC composes it)
])
def test_content_hash_ignores_case_quotes_and_whitespace(variant):
    assert content_hash(variant) == content_hash("Mazón said the town was 'devastated'.")


def test_content_hash_differs_when_a_word_differs():
    assert content_hash("At least 62 people died.") != content_hash("At least 63 people died.")


def test_document_content_hash_is_the_hash_of_its_text():
    assert Document(id="a", text="Hello  World").content_hash == content_hash("hello world")


# ---- .txt files and folders -----------------------------------------------------------------------------------------


def test_read_txt_file_uses_file_stem_as_id(tmp_path):
    path = tmp_path / "reuters-001.txt"
    path.write_text("Flash floods hit Paiporta.\n", encoding="utf-8")
    [document] = read_paths([path])
    assert (document.id, document.text) == ("reuters-001", "Flash floods hit Paiporta.\n")


def test_read_txt_file_strips_utf8_bom(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffFlash floods hit Paiporta.".encode("utf-8"))
    assert [d.text for d in read_paths([path])] == ["Flash floods hit Paiporta."]


def test_read_folder_recursively_sorted_txt_and_jsonl_only(tmp_path):
    (tmp_path / "b.txt").write_text("Second file.", encoding="utf-8")
    (tmp_path / "a.txt").write_text("First file.", encoding="utf-8")
    (tmp_path / "notes.md").write_text("Not an article.", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.jsonl").write_bytes(jsonl({"id": "c1", "text": "From JSON lines."}))
    assert [(d.id, d.text) for d in read_paths([tmp_path])] == [
        ("a", "First file."), ("b", "Second file."), ("c1", "From JSON lines.")]


def test_binary_file_in_folder_is_a_clear_error(tmp_path):
    (tmp_path / "a.txt").write_text("A real article.", encoding="utf-8")
    (tmp_path / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(InputError) as caught:
        list(read_paths([tmp_path]))
    assert str(caught.value) == f"{tmp_path / 'photo.txt'}: looks binary (NUL bytes), not a text article"


def test_txt_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Mazón said.".encode("latin-1"))
    with pytest.raises(InputError) as caught:
        list(read_paths([path]))
    assert str(caught.value) == f"{path}: not UTF-8 (byte 3): re-encode the file as UTF-8"


def test_empty_txt_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("  \n\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        list(read_paths([path]))
    assert str(caught.value) == (f"{path}: document 'empty' has no text: "
                                 "empty or whitespace-only documents are not indexed")


def test_missing_path_and_unsupported_type(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        list(read_paths([tmp_path / "nope.txt"]))
    (tmp_path / "article.docx").write_bytes(b"PK")
    with pytest.raises(InputError) as caught:
        list(read_paths([tmp_path / "article.docx"]))
    assert "unsupported file type '.docx'; give .txt or .jsonl files, or a folder" in str(caught.value)


# ---- .jsonl files and stdin -----------------------------------------------------------------------------------------


def test_read_jsonl_file_with_metadata(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_bytes(jsonl(
        {"id": "a", "text": "Floods in Paiporta.", "title": "Floods", "published": "2024-10-29", "lang": "en"},
        {"id": 7, "text": "Floods in Valencia.", "source": "wire"},  # an integer id becomes a string
    ) + b"\n")  # a trailing blank line is skipped
    docs = list(read_paths([path]))
    assert [(d.id, d.text) for d in docs] == [("a", "Floods in Paiporta."), ("7", "Floods in Valencia.")]
    assert docs[0].metadata == {"lang": "en", "title": "Floods", "published": "2024-10-29"}
    assert docs[1].metadata == {"source": "wire"}


def test_read_stdin_dash():
    stdin = io.BytesIO(jsonl({"id": "s1", "text": "From stdin."}, {"id": "s2", "text": "Also from stdin."}))
    assert [(d.id, d.text) for d in read_paths(["-"], stdin=stdin)] == [
        ("s1", "From stdin."), ("s2", "Also from stdin.")]


def test_jsonl_with_byte_order_mark():
    # files saved by some Windows tools start with a UTF-8 BOM
    stdin = io.BytesIO(b"\xef\xbb\xbf" + jsonl({"id": "a", "text": "With a BOM."}))
    assert [d.id for d in read_paths(["-"], stdin=stdin)] == ["a"]
    # a BOM on a blank first line, a file that is only a BOM, a line of other whitespace: blank lines, skipped
    blank_first = io.BytesIO(b"\xef\xbb\xbf\n" + jsonl({"id": "a", "text": "With a BOM."}))
    assert [d.id for d in read_paths(["-"], stdin=blank_first)] == ["a"]
    assert list(read_paths(["-"], stdin=io.BytesIO(b"\xef\xbb\xbf"))) == []
    spaces = io.BytesIO(jsonl({"id": "a", "text": "One."}) + "\u00a0\u2028\n".encode()
                        + jsonl({"id": "b", "text": "Two."}))
    assert [d.id for d in read_paths(["-"], stdin=spaces)] == ["a", "b"]


def test_custom_id_and_text_fields():
    stdin = io.BytesIO(jsonl({"guid": "x-1", "body": "Custom fields.", "id": "ignored-as-extra"}))
    [document] = read_paths(["-"], id_field="guid", text_field="body", stdin=stdin)
    assert (document.id, document.text, document.extra) == ("x-1", "Custom fields.", {"id": "ignored-as-extra"})


@pytest.mark.parametrize("data, message", [
    (b'{"id": "a", "text": "fine"}\n{"id": "b", "text": \n',
     "<stdin>:2: malformed JSON (Expecting value at column 21)"),
    (b'{"id": "a", "text": "a raw\ttab"}\n',
     "<stdin>:1: malformed JSON (Invalid control character at column 27)"),
    (b'{"id": "a", "text": "fine"}\n\n{not json}\n',
     "<stdin>:3: malformed JSON (Expecting property name enclosed in double quotes at column 2)"),
    (b'{"id": "a"}\n',
     "<stdin>:1: missing field 'text' (fields present: ['id']); "
     "use --id-field/--text-field if your data names them differently"),
    (b'{"text": "no id"}\n',
     "<stdin>:1: missing field 'id' (fields present: ['text']); "
     "use --id-field/--text-field if your data names them differently"),
    (b'{"id": "a", "text": "   "}\n',
     "<stdin>:1: document 'a' has no text: empty or whitespace-only documents are not indexed"),
    (b'{"id": "", "text": "text"}\n',
     "<stdin>:1: document id '' is empty: give every document a non-empty id"),
    (b'{"id": "a", "text": ["a", "list"]}\n',
     "<stdin>:1: 'text' must be a string, got list"),
    (b'["id", "text"]\n',
     "<stdin>:1: expected a JSON object, got list"),
    (b'{"id": "a", "text": "caf\xe9"}\n',
     "<stdin>:1: not UTF-8 (byte 24): re-encode the file as UTF-8"),
    (b'{"id": "a", "text": "x", "published": "last Tuesday"}\n',
     "<stdin>:1: document 'a': published='last Tuesday' is not an ISO date "
     "(use e.g. 2024-12-11 or 2024-12-11T08:00:00Z)"),
    (b'{"id": "a", "text": "Bad \\ud800 half"}\n',
     "<stdin>:1: a \\u escape in it is half of a surrogate pair (\\uD800-\\uDFFF alone), which is not a character: "
     "fix or remove it"),
    (b'{"id": "a", "text": "x", "meta": {"note": "\\udc80"}}\n',
     "<stdin>:1: a \\u escape in it is half of a surrogate pair (\\uD800-\\uDFFF alone), which is not a character: "
     "fix or remove it"),
    (b'{"id": "a", "text": "x", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b'}\n',
     "<stdin>:1: malformed JSON (nested too deeply to read)"),
    (b'{"id": "a", "text": "x", "n": ' + b"9" * 5_000 + b'}\n',
     "<stdin>:1: malformed JSON (Exceeds the limit (4300 digits) for integer string conversion: value has 5000 "
     "digits; use sys.set_int_max_str_digits() to increase the limit)"),
    (b'{"id": "a", "text": "x", "published": "2024-13-01"}\n',
     "<stdin>:1: document 'a': published='2024-13-01' is not an ISO date "
     "(use e.g. 2024-12-11 or 2024-12-11T08:00:00Z)"),
])
def test_bad_jsonl_lines(data, message):  # each a clear message with its line, which --on-error skip can skip
    with pytest.raises(InputError) as caught:
        list(read_paths(["-"], stdin=io.BytesIO(data)))
    assert str(caught.value) == message


def test_a_surrogate_pair_escape_is_a_character():
    [document] = read_paths(["-"], stdin=io.BytesIO(b'{"id": "a", "text": "A pair \\ud83d\\ude00 is one"}\n'))
    assert document.text == "A pair \U0001f600 is one"


@pytest.mark.parametrize("field", ["id", "text"])
def test_a_document_with_a_lone_surrogate_is_refused(field):
    fields = {"id": "this", "text": "Paris is fine."}
    fields[field] = fields[field].replace("is", "\udcff")  # as undecodable bytes reach Python through the terminal
    with pytest.raises(InputError, match=f"its {field} holds a lone surrogate at character"):
        Document(**fields)


def test_a_folder_without_articles_is_an_error(tmp_path):
    (tmp_path / "notes.md").write_text("not an article", encoding="utf-8")
    with pytest.raises(InputError, match="a folder without .txt or .jsonl files in it"):
        list(read_paths([tmp_path]))


def test_the_size_limit_message_tells_sizes_apart(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("word " * 206_000, encoding="utf-8")  # 1,030,000 bytes: 1.0 MB, like the limit
    with pytest.raises(InputError, match=r"is 1,030,000 bytes, over the limit of 1,000,000 bytes; raise --max-bytes"):
        list(read_paths([path], max_bytes=1_000_000))


def test_malformed_jsonl_file_names_file_and_line(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_bytes(jsonl({"id": "a", "text": "ok"}, {"id": "b", "text": "ok"}) + b'{"id": "c", "text": "cut off\n')
    with pytest.raises(InputError) as caught:
        list(read_paths([path]))
    assert str(caught.value) == f"{path}:3: malformed JSON (Unterminated string starting at column 21)"


def test_documents_before_a_bad_line_are_yielded():
    reader = read_paths(["-"], stdin=io.BytesIO(jsonl({"id": "a", "text": "ok"}) + b"oops\n"))
    assert next(reader).id == "a"
    with pytest.raises(InputError, match=r"^<stdin>:2: malformed JSON"):
        next(reader)


# ---- published dates -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("2024-12-11", "2024-12-11T00:00:00"),
    ("2024-12-11T08:30:00", "2024-12-11T08:30:00"),
    ("2024-12-11T08:30:00Z", "2024-12-11T08:30:00"),
    ("2024-12-11T08:30:00+05:00", "2024-12-11T03:30:00"),  # converted to UTC before the offset is dropped
])
def test_parse_published(value, expected):
    assert parse_published(value).isoformat() == expected


def test_document_rejects_bad_published_date():
    with pytest.raises(InputError, match=r"document 'a': published='11/12/2024' is not an ISO date"):
        Document(id="a", text="text", published="11/12/2024")


def test_read_paths_is_lazy(tmp_path: Path):
    # nothing is read before iteration, so the CLI can open the index first and stream documents into it
    reader = read_paths([tmp_path / "missing.txt"])
    with pytest.raises(InputError):
        next(reader)


@pytest.mark.parametrize("text", ["***", "— — —", "\u200b\u200b"])
def test_text_without_words_is_refused(text):
    with pytest.raises(InputError, match="has no words|has no text"):
        Document(id="x", text=text)
