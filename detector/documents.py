"""Documents in: the Document dataclass, text normalisation, the content hash, and readers for txt/jsonl/stdin."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import unicodedata
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from .errors import InputError

#: metadata fields with a meaning of their own; any other field of a JSON line is kept as is in `extra`.
KNOWN_FIELDS = ("title", "source", "url", "published")

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "‟": '"',
                         "–": "-", "—": "-", "‐": "-", "‑": "-"})
_HAS_WORD = re.compile(r"[^\W_]")
#: a JSON escape of a UTF-16 surrogate (\uD800-\uDFFF): only a pair of them makes a character.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def normalise(text: str) -> str:
    """The text as compared for exact duplicates: NFKC, unified quotes and dashes, case-folded, spaces collapsed.
    (An ASCII text is its own NFKC form and holds none of the quotes and dashes unified; str.split() splits at the
    same whitespace as the pattern \\s+: equal to re.sub(r"\\s+", " ", text).strip(), tested, at half the cost.)"""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return " ".join(text.casefold().split())


def content_hash(text: str) -> str:
    """Hash of the normalised text: equal hashes mean an exact duplicate, found before any model runs."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Document:
    """One article. `id` is unique in an index; `text` is never empty."""

    id: str
    text: str
    title: str | None = None
    source: str | None = None
    url: str | None = None
    published: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise InputError(f"document id {self.id!r} is empty: give every document a non-empty id")
        if not isinstance(self.text, str) or not self.text.strip():
            raise InputError(f"document {self.id!r} has no text: empty or whitespace-only documents are not indexed")
        if not _HAS_WORD.search(self.text):
            raise InputError(f"document {self.id!r} has no words (only punctuation or symbols): it is not indexed")
        for name, value in (("id", self.id), ("text", self.text)):
            _require_text(value, f"document {self.id!r}: its {name}")
        if self.published is not None:
            parse_published(self.published, self.id)

    @cached_property
    def content_hash(self) -> str:
        """content_hash(text), computed once (the text of a frozen document never changes)."""
        return content_hash(self.text)

    @property
    def metadata(self) -> dict[str, Any]:
        """Every field but id and text, as it came in."""
        known = {k: getattr(self, k) for k in KNOWN_FIELDS if getattr(self, k) is not None}
        return {**self.extra, **known}


def _require_text(value: str, what: str) -> None:
    """Refuse a string holding a lone surrogate (from a \\uD800-style escape or undecodable bytes passed on by the
    terminal): it is not a character, and nothing can store or print it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} holds a lone surrogate at character {exc.start} ({value[exc.start]!r}), which is "
                         "not a character: fix or remove it") from None


def decoded_line(raw: bytes | str, where: str, *, first: bool = False) -> str:
    """A line as text: InputError (prefixed with `where`) for bytes that are not UTF-8. `first`: the file's first
    line, which may open with a byte-order mark (dropped)."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 (byte {exc.start}): re-encode the file as UTF-8") from None


def is_blank(raw: bytes | str, *, first: bool = False) -> bool:
    """Whether a line of JSON lines holds nothing but whitespace, any Unicode whitespace (a no-break space too), and
    on the file's first line a byte-order mark: such a line is skipped, not malformed. Bytes that are not UTF-8 are
    not blank (json_line reports them)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8-sig" if first else "utf-8", errors="replace")
    elif first:
        raw = raw.removeprefix("\ufeff")
    return not raw.strip()


def json_line(raw: bytes | str, where: str, *, first: bool = False) -> Any:
    """One line of JSON lines, parsed. An InputError (prefixed with `where`, e.g. file:line) for bytes that are not
    UTF-8 (decoded_line), malformed JSON, JSON nested too deep or with a number too long to read, and a lone
    surrogate escape anywhere in it."""
    raw = decoded_line(raw, where, first=first)
    try:
        value = json.loads(raw.rstrip("\r\n"))  # without the line end, which would move the column to 1
    except json.JSONDecodeError as exc:
        # some of json's messages end in "at" ("Invalid control character at"): do not print "at at"
        raise InputError(f"{where}: malformed JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{where}: malformed JSON (nested too deeply to read)") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise InputError(f"{where}: malformed JSON ({exc})") from None
    if _SURROGATE_ESCAPE.search(raw):  # rare: only then is the whole value checked
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"{where}: a \\u escape in it is half of a surrogate pair (\\uD800-\\uDFFF alone), "
                             "which is not a character: fix or remove it") from None
    return value


def parse_published(value: str, doc_id: str = "?") -> datetime:
    """An ISO date or date-time; a clear error otherwise."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time())
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # compare in UTC: 08:00+05:00 is earlier than 04:00Z; times without an offset are taken as UTC
        return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment
    except (TypeError, ValueError):
        raise InputError(
            f"document {doc_id!r}: published={value!r} is not an ISO date (use e.g. 2024-12-11 or 2024-12-11T08:00:00Z)"
        ) from None


def document_from_record(record: dict[str, Any], *, id_field: str = "id", text_field: str = "text",
                         where: str = "", fields_hint: str = "use --id-field/--text-field if your data names them "
                                                             "differently") -> Document:
    """A Document from one JSON object; `where` (file:line) prefixes any error, and `fields_hint` follows the
    message for a missing field (what the caller's user can do about it)."""
    prefix = f"{where}: " if where else ""
    if not isinstance(record, dict):
        raise InputError(f"{prefix}expected a JSON object, got {type(record).__name__}")
    missing = [f for f in (id_field, text_field) if f not in record]
    if missing:
        raise InputError(f"{prefix}missing field {missing[0]!r} (fields present: {sorted(record)}); {fields_hint}")
    doc_id, text = record[id_field], record[text_field]
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    for name, value in ((id_field, doc_id), (text_field, text)):
        if not isinstance(value, str):
            kind = "a string or a whole number" if name == id_field else "a string"
            raise InputError(f"{prefix}{name!r} must be {kind}, got {type(value).__name__}")
    known = {k: record.get(k) for k in KNOWN_FIELDS}
    for k, v in known.items():
        if v is not None and not isinstance(v, str):
            known[k] = str(v)
    extra = {k: v for k, v in record.items() if k not in (id_field, text_field, *KNOWN_FIELDS)}
    try:
        return Document(id=doc_id, text=text, extra=extra, **known)
    except InputError as exc:
        raise InputError(f"{prefix}{exc}") from None


@dataclass(frozen=True)
class Record:
    """One input line: where it came from, the JSON object as read, and its Document (or why there is none)."""

    where: str
    raw: dict[str, Any] | None
    document: Document | None
    error: InputError | None = None


def read_records(stream: IO[bytes] | IO[str], *, name: str = "<stdin>", id_field: str = "id",
                 text_field: str = "text", max_bytes: int | None = None) -> Iterator[Record]:
    """Every non-blank JSON line as a Record; a bad line gives a Record with `error` (its line number in it)."""
    for number, raw in enumerate(stream, start=1):
        where = f"{name}:{number}"
        record: Any = None
        try:
            text = decoded_line(raw, where, first=number == 1)  # first: a BOM alone is a blank line too
            if not text.strip():
                continue
            record = json_line(text, where)
            document = document_from_record(record, id_field=id_field, text_field=text_field, where=where)
            check_size(document, max_bytes, where)
            yield Record(where, record, document)
        except InputError as exc:
            yield Record(where, record if isinstance(record, dict) else None, None, exc)


def check_size(document: Document, max_bytes: int | None, where: str = "") -> None:
    """Refuse a text over `max_bytes` (UTF-8) with a message that says how to let it in."""
    if max_bytes is None:
        return
    size = len(document.text.encode("utf-8"))
    if size > max_bytes:
        prefix = f"{where}: " if where else ""
        raise InputError(f"{prefix}document {document.id!r} is {_size(size, max_bytes)}, over the limit of "
                         f"{_size(max_bytes, size)}; "
                         "raise --max-bytes to index it (it will be slow)")


def _size(n: int, other: int | None = None) -> str:
    """n bytes for a reader: in MB from 100,000 bytes, in bytes where MB would read as `other` does."""
    if n < 100_000 or (other is not None and f"{n / 1e6:.1f}" == f"{other / 1e6:.1f}"):
        return f"{n:,} bytes"
    return f"{n / 1e6:.1f} MB"


def read_text_file(path: Path, *, max_bytes: int | None = None) -> Document:
    """A .txt file as one document; its id is the file name without extension."""
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise InputError(f"{path}: looks binary (NUL bytes), not a text article")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 (byte {exc.start}): re-encode the file as UTF-8") from None
    try:
        document = Document(id=path.stem, text=text)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    check_size(document, max_bytes, str(path))
    return document


def read_paths(paths: Iterable[str | Path], *, id_field: str = "id", text_field: str = "text",
               stdin: IO[bytes] | None = None, max_bytes: int | None = None,
               on_error: Callable[[InputError], None] | None = None,
               _files: dict[str, Path] | None = None) -> Iterator[Document]:
    """Documents from .txt files, folders of them (recursively, sorted), .jsonl files and '-' (JSON lines on stdin).

    A bad file or line raises InputError; with `on_error`, it is handed to on_error and reading goes on. Two .txt
    files with one name in different folders would share an id: the second is an error."""
    files_by_id: dict[str, Path] = {} if _files is None else _files

    def failed(error: InputError) -> None:
        if on_error is None:
            raise error
        on_error(error)

    for raw in paths:
        path = Path(raw)
        if str(raw) != "-" and path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".txt", ".jsonl"))
            if not files:
                failed(InputError(f"{path}: a folder without .txt or .jsonl files in it (nor in its folders)"))
                continue
            yield from read_paths(files, id_field=id_field, text_field=text_field, max_bytes=max_bytes,
                                  on_error=on_error, _files=files_by_id)
        elif str(raw) == "-" or path.suffix.lower() == ".jsonl":
            if str(raw) != "-" and not path.exists():
                failed(InputError(f"{path}: no such file or folder"))
                continue
            with (nullcontext(stdin if stdin is not None else sys.stdin.buffer) if str(raw) == "-"
                  else path.open("rb")) as handle:
                for record in read_records(handle, name="<stdin>" if str(raw) == "-" else str(path),
                                           id_field=id_field, text_field=text_field, max_bytes=max_bytes):
                    if record.error is not None:
                        failed(record.error)
                    else:
                        yield record.document
        elif not path.exists():
            failed(InputError(f"{path}: no such file or folder"))
        elif path.suffix.lower() == ".txt":
            earlier = files_by_id.setdefault(path.stem, path.resolve())
            if earlier != path.resolve():
                failed(InputError(f"{path}: its id {path.stem!r} is taken by {earlier} in this run; rename one of "
                                  "the two files"))
                continue
            try:
                document = read_text_file(path, max_bytes=max_bytes)
            except InputError as exc:
                failed(exc)
            else:
                yield document
        else:
            failed(InputError(f"{path}: unsupported file type {path.suffix!r}; give .txt or .jsonl files, or a folder"))


def batches(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    """Batches of at most `size`; a batch ends before an id it already holds, so that a repeated id is a real
    replacement of the earlier text (compared with it, decided on, reported), never a silent overwrite."""
    batch: list[Document] = []
    ids: set[str] = set()
    for doc in documents:
        if doc.id in ids:
            yield batch
            batch, ids = [], set()
        batch.append(doc)
        ids.add(doc.id)
        if len(batch) >= size:
            yield batch
            batch, ids = [], set()
    if batch:
        yield batch
