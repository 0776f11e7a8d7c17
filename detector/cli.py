"""The command line: parse options, make one library call, format the result, map errors. No logic lives here."""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import sys
from pathlib import Path

import click

from .config import DEFAULT_MODEL, PROFILES
from .errors import DetectorError

DEFAULT_INDEX = "indexes/default"


def index_option(command):
    """--index DIR: option, then $DETECTOR_INDEX, then indexes/default."""
    return click.option("--index", "index_dir", type=click.Path(file_okay=False, path_type=Path),
                        envvar="DETECTOR_INDEX", default=DEFAULT_INDEX, show_default=True, show_envvar=True,
                        help="Index folder.")(command)


#: the exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130
#: the exit status of a command whose output its reader closed (`detector dedup ... | head -1`): 128 + SIGPIPE, as
#: shells report a command that a closed pipe stopped.
OUTPUT_CLOSED = 141


#: the commands that write to an index (their functions' names): their messages on a stop say what is kept.
WRITING_COMMANDS = frozenset({"index", "dedup", "remove"})


def friendly_errors(command):
    """Errors the detector raises on purpose become one-line messages (exit 1); Ctrl-C, once the command's work is
    rolled back or committed as far as it got, exits 130 with a line saying so (click's own would say "Aborted!"
    and exit 1, as for any error); output closed by its reader stops the command the same way, with 141 (click
    would exit 1 without a word)."""
    writes = command.__name__ in WRITING_COMMANDS
    interrupted = "interrupted: every batch committed before it is kept" if writes else "interrupted"
    stopped = "stopped: the output was closed by its reader" + ("; every batch committed before it is kept"
                                                                 if writes else "")

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DetectorError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo(interrupted, err=True)
            sys.exit(INTERRUPTED)
        except BrokenPipeError:
            # the reader is gone: nothing more can be written to it, and Python would fail again flushing it at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            try:
                click.echo(stopped, err=True)
            except BrokenPipeError:
                os.dup2(devnull, sys.stderr.fileno())  # stderr went to the same closed pipe (2>&1 | head)
            sys.exit(OUTPUT_CLOSED)
    return wrapper


def _open(index_dir: Path, *, create: bool = False, model: str | None = None, profile: str | None = None):
    from .detector import Detector  # imported late so that --help stays instant

    return Detector.open(index_dir, model=model, profile=profile, create=create)


def _text_argument(ctx, param, value):
    """A click callback: refuse an argument that is not text (bytes that are not UTF-8, which the terminal passes
    on as lone surrogates) with a usage error instead of a traceback further in."""
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise click.BadParameter(f"{item!r} is not valid UTF-8 text") from None
    return value


def _nothing_or_all(documents, index_dir: Path):
    """For a folder with no index yet: the documents, or None (after saying so) where there are none to index, so
    that a run which indexes nothing (a bad first file, say) creates no index with its profile and model. For an
    existing index: the documents as they are (nothing read before the index is opened)."""
    if (index_dir / "manifest.json").exists():
        return documents
    first = next(documents, None)
    if first is None:
        click.echo(f"nothing to index: no index created at {index_dir}", err=True)
        return None
    return itertools.chain([first], documents)


def _require_index(index_dir: Path) -> None:
    if not (index_dir / "manifest.json").exists():
        raise click.ClickException(f"no index at {index_dir}: build one first with `detector index --index "
                                   f"{index_dir} PATH...` (or set DETECTOR_INDEX)")


def field_options(command):
    """--id-field and --text-field, for JSON lines that name them differently."""
    command = click.option("--text-field", default="text", show_default=True,
                           help="JSON field holding the text.")(command)
    return click.option("--id-field", default="id", show_default=True,
                        help="JSON field holding the document id.")(command)


PROFILE_HELP = ("accurate: MiniLM embeddings of every sentence; fast: static embeddings distilled from MiniLM, "
                "many times faster [default: accurate].")


def model_options(command):
    """--model and --profile: how a new index is built; an existing index keeps its own."""
    command = click.option("--profile", type=click.Choice(list(PROFILES)), default=None,
                           help=f"For a new index: {PROFILE_HELP} An existing index keeps its own.")(command)
    return click.option("--model", default=None, help=f"Sentence-transformers model name or folder, for a new "
                        f"index [default: the profile's; accurate: {DEFAULT_MODEL}, bundled]. An existing index "
                        "keeps its own.")(command)


def lock_timeout_option(command):
    return click.option("--lock-timeout", type=click.FloatRange(0), default=60.0, show_default=True,
                        help="Seconds to wait for another writer.")(command)


def on_error_option(command):
    return click.option("--on-error", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
                        help="At a bad line or file: stop (keeping everything before it), or report it and go on."
                        )(command)


def max_bytes_option(command):
    return click.option("--max-bytes", type=click.IntRange(1), default=1_000_000, show_default=True,
                        help="Refuse documents longer than this (UTF-8 bytes); long ones are slow to embed."
                        )(command)


class InputErrors:
    """Bad input lines, reported on stderr as they come. With "stop", reading ends at the first one (so what was
    read before it is still processed and kept) and finish() fails with its message; with "skip", it goes on."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.count = 0
        self.first: Exception | None = None

    def handle(self, error: Exception) -> None:
        self.count += 1
        self.first = self.first or error
        if self.mode == "skip":
            click.echo(f"skipped: {error}", err=True)
        else:
            raise _Stop()

    def guard(self, iterable):
        try:
            yield from iterable
        except _Stop:
            return

    def finish(self) -> None:
        if self.first is not None and self.mode == "stop":
            raise click.ClickException(f"{self.first} (everything before it was kept; --on-error skip goes on)")
        if self.count:
            click.echo(f"{self.count} bad input line(s) or file(s) skipped", err=True)


class _Stop(Exception):
    pass


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="detector")
@click.option("-v", "--verbose", is_flag=True, help="Log each stage to stderr.")
def cli(verbose: bool) -> None:
    """Find copies and rewrites of news articles, and group articles into stories."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")


def all_files(paths: tuple[str, ...]) -> bool:
    """Whether every path is a regular file or a folder: input that is there to be read ahead (the next batch
    prepared on the other core meanwhile). Not '-' nor a pipe or device (/dev/stdin, a FIFO, <(tail -f ...)): a
    live stream, whose batches would each wait for the next to arrive before they are committed."""
    return all(p != "-" and (Path(p).is_dir() or Path(p).is_file()) for p in paths)


@cli.command()
@index_option
@click.argument("paths", nargs=-1, required=True)
@field_options
@model_options
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=256, show_default=True,
              help="Documents per committed batch.")
@lock_timeout_option
@on_error_option
@max_bytes_option
@friendly_errors
def index(index_dir: Path, paths: tuple[str, ...], id_field: str, text_field: str, model: str | None,
          profile: str | None, batch_size: int, lock_timeout: float, on_error: str, max_bytes: int) -> None:
    """Add .txt files, folders of them, .jsonl files or '-' (JSON lines on stdin) to the index.

    Unchanged documents are skipped; a changed text under a known id replaces the old one. A bad file or line is
    reported with its line number; with --on-error stop (the default) everything before it is kept.
    """
    from tqdm import tqdm

    from .documents import read_paths
    from .report import index_summary

    missing = [p for p in paths if p != "-" and not Path(p).exists()]
    if missing:  # before anything is created or loaded
        raise click.ClickException(f"{missing[0]}: no such file or folder")
    errors = InputErrors(on_error)
    documents = errors.guard(read_paths(paths, id_field=id_field, text_field=text_field, max_bytes=max_bytes,
                                        on_error=errors.handle))
    documents = _nothing_or_all(documents, index_dir)
    if documents is None:
        errors.finish()
        return
    with _open(index_dir, create=True, model=model, profile=profile) as detector, \
            tqdm(desc="indexing", unit="doc", file=sys.stderr, disable=None) as bar:
        result = detector.index(documents, batch_size=batch_size, lock_timeout=lock_timeout, progress=bar.update,
                                read_ahead=all_files(paths))
    click.echo(index_summary(result), err=True)
    errors.finish()


@cli.command()
@index_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "jsonl"]), default="table", show_default=True,
              help="table for people; json: one object per cluster; jsonl: one line per document.")
@friendly_errors
def clusters(index_dir: Path, fmt: str) -> None:
    """The story clusters. jsonl: one line per document, {"id": ..., "cluster": ...}."""
    from .report import clusters_table

    _require_index(index_dir)
    with _open(index_dir) as detector:
        found = detector.clusters()
    if fmt == "table":
        click.echo(clusters_table(found))
    elif fmt == "json":
        click.echo(json.dumps([{"cluster": c.id, "representative": c.representative, "size": c.size,
                                "members": c.members} for c in found], indent=2, ensure_ascii=False))
    else:
        for c in found:
            for member in c.members:
                click.echo(json.dumps({"id": member, "cluster": c.id}, ensure_ascii=False))


@cli.command()
@index_option
@click.argument("file", type=click.File("rb"), required=False)
@click.option("--text", callback=_text_argument, help="Query text, instead of FILE.")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True, help="How many matches.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json for programs.")
@friendly_errors
def query(index_dir: Path, file, text: str | None, top: int, fmt: str) -> None:
    """The indexed documents most similar to FILE ('-' for stdin) or --text; the index is not changed."""
    from .report import matches_table

    if (file is None) == (text is None):
        raise click.UsageError("give either FILE or --text, not both and not neither")
    _require_index(index_dir)
    if text is not None:
        body = text
    else:
        try:
            body = file.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise click.ClickException(
                f"{file.name}: not UTF-8 (byte {exc.start}): re-encode the file as UTF-8") from None
        finally:
            file.close()
    if not body.strip():
        raise click.UsageError("the query text is empty")
    with _open(index_dir) as detector:
        matches = detector.query(body, top=top)
    if fmt == "json":
        click.echo(json.dumps([m.to_dict() for m in matches], indent=2, ensure_ascii=False))
    else:
        click.echo(matches_table(matches))


@cli.command()
@index_option
@click.argument("id_a", callback=_text_argument)
@click.argument("id_b", callback=_text_argument)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for programs.")
@friendly_errors
def report(index_dir: Path, id_a: str, id_b: str, fmt: str) -> None:
    """The similarity report of two indexed documents: scores, aligned sentences, candidate sources, verdict."""
    from .report import pair_text

    if id_a == id_b:
        raise click.UsageError(f"give two different ids (both are {id_a!r})")
    _require_index(index_dir)
    with _open(index_dir) as detector:
        result = detector.report(id_a, id_b)
    click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) if fmt == "json" else pair_text(result))


@cli.command()
@index_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for programs.")
@friendly_errors
def info(index_dir: Path, fmt: str) -> None:
    """What the index holds and how it was built."""
    _require_index(index_dir)
    with _open(index_dir) as detector:
        facts = detector.info()
    if fmt == "json":
        click.echo(json.dumps(facts, indent=2))
        return
    for key, value in facts.items():
        click.echo(f"{key + ':':<26}{json.dumps(value) if isinstance(value, dict) else value}")


@cli.command("score-pairs")
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--a-field", default="a", show_default=True, help="JSON field holding the first text.")
@click.option("--b-field", default="b", show_default=True, help="JSON field holding the second text.")
@click.option("--model", default=None, help="Sentence-transformers model name or folder [default: the profile's].")
@click.option("--profile", type=click.Choice(list(PROFILES)), default="accurate", show_default=True,
              help=PROFILE_HELP)
@on_error_option
@friendly_errors
def score_pairs(file, a_field: str, b_field: str, model: str | None, profile: str, on_error: str) -> None:
    """Score pairs of texts from JSON lines (FILE or '-'): each line comes out with `score` (the probability that
    the two tell the same story), `relation` (duplicate, rewrite, same_story, different), `level` (sentence or
    document) and `components` (the evidence). Nothing is indexed. A bad line: as --on-error says (with stop, the
    lines before it are scored and written out)."""
    from . import encoders
    from .config import ScoringParams, Settings
    from .documents import is_blank, json_line
    from .errors import InputError
    from .pairs import score_pairs as score

    name = getattr(file, "name", "-")
    source = "<stdin>" if name in ("-", "<stdin>") else name  # as `index` names its lines

    def pair_of(number: int, raw: bytes) -> dict:
        where = f"{source}:{number}"
        row = json_line(raw, where, first=number == 1)
        if not isinstance(row, dict) or not isinstance(row.get(a_field), str) or not isinstance(row.get(b_field), str):
            raise InputError(f"{where}: needs text fields {a_field!r} and {b_field!r}")
        if not row[a_field].strip() or not row[b_field].strip():
            raise InputError(f"{where}: {a_field!r} and {b_field!r} must not be empty")
        return row

    def pairs():
        for number, raw in enumerate(file, start=1):
            if not is_blank(raw, first=number == 1):
                try:
                    yield pair_of(number, raw)
                except InputError as exc:
                    errors.handle(exc)

    errors = InputErrors(on_error)
    rows = list(errors.guard(pairs()))
    settings = Settings.for_profile(profile, model=model)
    results = score([(r[a_field], r[b_field]) for r in rows], encoder=encoders.load_encoder(settings.model),
                    settings=settings, params=ScoringParams.shipped(profile))
    for row, result in zip(rows, results):
        click.echo(json.dumps({**row, **result.to_dict()}, ensure_ascii=False))
    errors.finish()


@cli.command("eval")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", default=None, help="Sentence-transformers model name or folder [default: the profile's].")
@click.option("--profile", type=click.Choice(list(PROFILES)), default="accurate", show_default=True,
              help=PROFILE_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Figures for people, or JSON.")
@friendly_errors
def evaluate(data: str, model: str | None, profile: str, fmt: str) -> None:
    """Evaluate on labelled JSON lines: documents with `story` (indexed into a temporary index: ARI, B-cubed and
    pairwise precision/recall/F1 of the clusters) or pairs with `a`, `b`, `label` (ROC AUC, precision/recall/F1 at
    the shipped threshold). Prints the time taken and the throughput."""
    from dataclasses import asdict

    from .evaluation import evaluate_file

    result = evaluate_file(data, model=model, profile=profile)
    if fmt == "json":
        figures = {k: (None if isinstance(v, float) and v != v else v) for k, v in asdict(result).items()}  # NaN
        click.echo(json.dumps({"data": data, "kind": type(result).__name__, **figures}, indent=2))
    else:
        click.echo("\n".join([data] + result.lines()))


@cli.command()
@index_option
@click.argument("input_file", metavar="[INPUT]", type=click.File("rb"), default="-")
@click.option("--policy", type=click.Choice(["duplicate", "rewrite", "same_story"]), default="rewrite",
              show_default=True, help="Which relations to an earlier document make a document a duplicate.")
@click.option("--keep-only", is_flag=True, help="Write only the documents kept (not duplicates).")
@click.option("--canonical", type=click.Choice(["earliest", "longest"]), default="earliest", show_default=True,
              help="Canonical member of a story: earliest published (else first seen), or the longest.")
@field_options
@model_options
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=64, show_default=True,
              help="Documents per committed batch: decisions are written out once their batch is committed.")
@lock_timeout_option
@on_error_option
@max_bytes_option
@friendly_errors
def dedup(index_dir: Path, input_file, policy: str, keep_only: bool, canonical: str, id_field: str, text_field: str,
          model: str | None, profile: str | None, batch_size: int, lock_timeout: float, on_error: str,
          max_bytes: int) -> None:
    """Filter a stream of JSON lines (INPUT or '-'): each line comes out with a "dedup" field (status new or
    duplicate, relation, matched_id, cluster, score, canonical_id), or, with --keep-only, only the new ones.

    Every document is indexed, so later runs see it; a line is written only once its decision is committed."""
    import time

    from .documents import read_records

    from collections import deque

    errors = InputErrors(on_error)
    raw_of: dict[str, deque] = {}  # id -> its input lines not yet written out, in order

    def documents():
        for record in read_records(input_file, name=getattr(input_file, "name", "<stdin>"), id_field=id_field,
                                   text_field=text_field, max_bytes=max_bytes):
            if record.error is not None:
                errors.handle(record.error)
                continue
            raw_of.setdefault(record.document.id, deque()).append(record.raw)
            yield record.document

    counts = {"new": 0, "duplicate": 0}

    def write(decisions) -> None:
        for decision in decisions:
            counts[decision.status] += 1
            raw = raw_of[decision.id].popleft()
            if not keep_only:
                click.echo(json.dumps({**raw, "dedup": decision.to_dict()}, ensure_ascii=False))
            elif not decision.is_duplicate:
                click.echo(json.dumps(raw, ensure_ascii=False))
        sys.stdout.flush()

    started = time.perf_counter()
    stream = _nothing_or_all(errors.guard(documents()), index_dir)
    if stream is None:
        errors.finish()
        return
    with _open(index_dir, create=True, model=model, profile=profile) as detector:
        detector.add_many(stream, policy=policy, canonical=canonical, batch_size=batch_size,
                          lock_timeout=lock_timeout, decided=write)
    seconds = time.perf_counter() - started
    total = counts["new"] + counts["duplicate"]
    click.echo(f"dedup: {total} documents in {seconds:.1f}s ({total / max(seconds, 1e-9):.1f} docs/s): "
               f"{counts['new']} new, {counts['duplicate']} duplicates (policy {policy})", err=True)
    errors.finish()


@cli.command()
@index_option
@click.argument("ids", nargs=-1, required=True, callback=_text_argument)
@lock_timeout_option
@friendly_errors
def remove(index_dir: Path, ids: tuple[str, ...], lock_timeout: float) -> None:
    """Delete documents from every part of the index and update their stories."""
    _require_index(index_dir)
    with _open(index_dir) as detector:
        result = detector.remove(ids, lock_timeout=lock_timeout)
    click.echo(f"removed {len(result.removed)} document(s)", err=True)
    if result.missing:
        others = " (the others were removed)" if result.removed else ""
        raise click.ClickException(f"not in the index: {', '.join(result.missing)}{others}")


def main() -> None:
    cli(prog_name="detector")
