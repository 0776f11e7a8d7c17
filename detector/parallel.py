"""Both cores for indexing's per-item work (preparing texts, a pair's evidence, rescoring term scores): the items
are split between this process and forked workers.

A forked worker inherits everything already in memory (document views, term statistics, caches), so nothing is
sent to it; it computes plain results (prepared texts, feature dicts, scores) for its share of the items and sends
them back. Only the parent touches the index database. Where fork is unavailable, or the work is too small to pay
for a fork, the items are computed here, one after the other: the results are the same either way (tested).

fork_map shares one piece of work and waits for it; a Worker takes work to do in the background (indexing's next
batch, read ahead) while this process goes on.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Callable, Sequence, TypeVar

from .errors import DetectorError

log = logging.getLogger("detector")

T = TypeVar("T")
R = TypeVar("R")

#: items per process below which forking costs more than it saves (a pair's evidence takes ~0.1-0.3 ms; forking
#: a process of many Python objects costs ~100 ms, its pages copied as the worker touches them: measured on
#: 20 batches of ~1,000 candidate pairs of a 0.5 GB index, 3.31 s forked against 3.25 s in one process, also with
#: gc.freeze() before the fork, 3.44 s).
MIN_ITEMS_PER_PROCESS = 1_000
#: the same for texts to prepare (splitting, terms, shingles: ~1-2 ms a text).
MIN_TEXTS_PER_PROCESS = 64

_work: tuple[Callable, Sequence] | None = None  # what forked workers run: set just before they are forked


def processes() -> int:
    """How many processes share the work: $DETECTOR_PROCESSES, else the cores this process may use (at most 4)."""
    wanted = os.environ.get("DETECTOR_PROCESSES")
    if wanted:
        try:
            return max(1, int(wanted))
        except ValueError:
            raise DetectorError(f"DETECTOR_PROCESSES={wanted!r} must be a whole number (or unset it)") from None
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, available))


def _run(span: tuple[int, int]) -> list:
    function, items = _work
    return [function(item) for item in items[span[0]:span[1]]]


def can_fork() -> bool:
    """Whether this process may fork workers: fork exists here, and this is not a daemonic process (which may not
    have children)."""
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


def fork_map(function: Callable[[T], R], items: Sequence[T], *, min_per_process: int | None = None) -> list[R]:
    """[function(item) for item in items], shared with forked workers when there is enough work (at least
    `min_per_process` items each, default MIN_ITEMS_PER_PROCESS); in order."""
    global _work
    count = min(processes(), len(items) // (min_per_process or MIN_ITEMS_PER_PROCESS))
    if count <= 1 or not can_fork():
        return [function(item) for item in items]
    bounds = [len(items) * i // count for i in range(count + 1)]
    spans = list(zip(bounds[:-1], bounds[1:]))
    _work = (function, items)
    # an executor, not a Pool: a worker that dies (killed for memory, say) raises BrokenProcessPool here instead of
    # leaving this process waiting forever with the index locked
    executor = ProcessPoolExecutor(count - 1, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_start_child, initargs=(os.getpid(),))
    try:
        others = [executor.submit(_run, span) for span in spans[1:]]
        results = _run(spans[0])
        for future in others:
            results += future.result()
    except BaseException:  # Ctrl-C, say: the workers' shares are not wanted any more
        _end(executor, now=True)
        raise
    finally:
        _work = None
    _end(executor)
    return results


def _end(executor: ProcessPoolExecutor, *, now: bool = False) -> None:
    """Shut `executor` down: once its running tasks finish, or `now`, killing its processes (their work is not
    wanted: this process was interrupted, say). Also ends the processes of an executor that never fully started
    (forked, but its thread could not start), which cannot shut down."""
    try:
        if not now:
            executor.shutdown(wait=True, cancel_futures=True)
            return
    except Exception:  # noqa: BLE001 - half started: end its processes below
        pass
    # ProcessPoolExecutor kills its processes only from Python 3.14 on (kill_workers)
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        process.kill()
    for process in processes:
        process.join(5)
    try:
        executor.shutdown(wait=True, cancel_futures=True)
    except Exception:  # noqa: BLE001 - a half-started one cannot: its processes are ended already
        pass


#: texts a Worker's process is given before it is forked anew (see Worker). Every page this process writes while
#: its worker lives stays in the worker as the old copy: in the 1,000,000-document run (fast profile, ~65 docs/s,
#: 6.4 GB resident at 670,000 documents) the worker's own memory grew ~35 MB a second, 1.75 GB after 50 s. At 1,024
#: texts a worker lives ~15 s there (a few seconds on small indexes), for a fork of ~0.1 s each time.
WORKER_TEXTS = 1024


def _start_child(parent: int) -> None:
    """In a forked process (a Worker's, or one of fork_map's), first: end with the parent (on Linux), leave Ctrl-C
    to the parent, and leave inherited objects out of garbage collection. Without the first, a parent killed
    outright (for memory, say) would leave its child running or waiting forever, holding copies of its file
    descriptors: the index's database files, and the pipes of a shell pipeline, whose reader then never sees the
    end. Without the second, Ctrl-C in a terminal, which reaches the whole process group, would end the child with
    a traceback of its own beside the parent's; the parent stops it anyway. Without the third, a collection in the
    child would visit, and so copy, every page of Python objects it inherited; what the child makes itself is
    still collected (blingfire's calls leave a few KB of reference cycles a text)."""
    import signal

    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's normal exit still ends the child
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()


class Worker:
    """One forked process that works on what it is given while this process goes on with something else: indexing
    prepares the next batch's texts there while it finds and scores the pairs of this one, which leave the second
    core idle. Forked at the first submit and again after every WORKER_TEXTS texts: a fork of a large index costs
    ~0.1 s, so not once a batch; and not once for a whole run either, as every page this process writes while its
    worker lives is copied (the worker keeps the old one), so a long-lived worker would come to hold a second copy
    of much of the memory. Ended by close(). submit() answers None where no worker can or should run (one process
    wanted, no fork, fewer than MIN_TEXTS texts, or the worker broke: killed, or a failed fork): the caller then
    does the work itself."""

    #: fewer texts than this are not worth handing over (as MIN_TEXTS_PER_PROCESS for fork_map).
    MIN_TEXTS = MIN_TEXTS_PER_PROCESS

    def __init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None
        self._texts = 0
        self.broken = False

    def submit(self, function: Callable[[T], R], texts: T, *, count: int) -> Future | None:
        """function(texts) in the worker; `count`: how many texts that is."""
        if self.broken or count < self.MIN_TEXTS or processes() <= 1 or not can_fork():
            return None
        try:
            if self._executor is not None and self._texts >= WORKER_TEXTS:
                self._executor.shutdown(wait=True)  # its last task finishes first: its future still has the result
                self._executor = None
            if self._executor is None:
                self._executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                                                     initializer=_start_child, initargs=(os.getpid(),))
                self._texts = 0
            self._texts += count
            return self._executor.submit(function, texts)
        except Exception as exc:  # noqa: BLE001 - killed while idle, no memory to fork, no thread to start: on alone
            log.warning("the worker preparing texts ahead could not take work (%s); preparing them here", exc)
            self.give_up()
            return None

    def give_up(self) -> None:
        """Stop using the worker (it broke); the caller works alone from now on."""
        self.broken = True
        self.close()

    def close(self, *, now: bool = False) -> None:
        """End the worker: once its task finishes, or `now` (its work is not wanted)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            _end(executor, now=now)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(now=exc_type is not None)
