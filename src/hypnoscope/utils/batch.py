"""One batch engine for per-recording work: local processes or a Dask cluster.

Staging a cohort (:mod:`hypnoscope.staging.batch`) and reading and preprocessing one
into the recording cache (:func:`hypnoscope.signal.nights.load_psg_dir`) run the same
way: a list of :class:`BatchItem` (one per recording), some already done (skipped, with
their row), the others run by :func:`run_batch` through an executor, with one progress bar (rate and
ETA), one row per recording (``status`` ``ok``/``skipped``/``failed``, ``n_epochs``,
``seconds``, ``error``) and one summary CSV (:func:`write_summary_csv`). Only the
executor differs (:func:`make_executor`):

- :class:`InlineExecutor` (``--jobs 1``): in this process, one recording at a time;
- :class:`LocalProcessExecutor` (``--jobs N``): ``N`` spawned processes
  (:class:`concurrent.futures.ProcessPoolExecutor`), at most ``N`` recordings
  submitted at a time so that an interrupt leaves nothing queued;
- :class:`DaskExecutor` (``--scheduler tcp://HOST:8786``): a Dask ``distributed``
  cluster (``Client.submit``); every recording is submitted at once and the scheduler
  spreads them. A task whose worker dies (killed, out of memory) is run again on
  another worker by the scheduler, so no recording is lost; one that kills
  ``distributed.scheduler.allowed-failures`` workers is reported as failed.

Every task runs :func:`run_task`, which turns any exception into a ``failed`` row (the
batch goes on). Work that writes files must do so atomically
(:func:`hypnoscope.utils.files.output_set`, :func:`~hypnoscope.utils.files.atomic_path`):
a worker killed mid-write leaves only a temporary file or folder, which the next run
removes (:func:`hypnoscope.utils.files.remove_stale_partials`), and a rerun skips what is
complete -- that is how a batch resumes after a crash of the client or of a worker.
On a multi-node cluster every path (inputs, ``--out``, the recording cache) must be
the same shared folder on every node, and hypnoscope installed on every worker.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import wait as _wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Columns of the summary CSV (:func:`write_summary_csv`), in order.
SUMMARY_COLUMNS = ("recording", "stem", "status", "n_epochs", "seconds", "error")
#: The logger whose records a task in another process collects and the batch's own
#: process emits (:func:`run_task`, :func:`run_batch`): hypnoscope's notices.
TASK_LOGGER = "hypnoscope"


@dataclass
class BatchItem:
    """One recording of a batch.

    Attributes
    ----------
    recording : str
        The input file (named in messages and the summary).
    stem : str
        Its output name.
    kwargs : dict
        Arguments of the batch's task function (picklable).
    row : dict or None
        Set when the recording needs no work (its outputs are complete: ``skipped``) or
        cannot be started (``failed``); :func:`run_batch` does not submit it.
    """

    recording: str
    stem: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    row: dict[str, Any] | None = None


# ------------------------------------------------------------------ the task
def run_task(fn: Callable[..., dict[str, Any]], kwargs: dict[str, Any],
             recording: str, stem: str,
             describe: Callable[[BaseException], str] | None = None,
             debug: bool = False, take_sigint: bool = False,
             log_level: int | None = None) -> dict[str, Any]:
    """Run ``fn(**kwargs)`` for one recording and return its summary row.

    ``fn`` returns a row (a dict with at least ``status``); any exception becomes
    ``{"recording", "stem", "status": "failed", "error": describe(exc)}`` (plus the
    traceback with ``debug``), so a bad recording never stops the batch. ``seconds`` is
    filled in if ``fn`` does not. With ``take_sigint`` (a local worker process) SIGINT
    raises ``KeyboardInterrupt`` once while the task runs and is ignored otherwise, so
    the recording stops cleanly and its clean-up is never interrupted itself. With
    ``log_level`` (a task in another process) the records of :data:`TASK_LOGGER` at that
    level or above that the task logs (its notices) are collected, not printed, into the
    row's ``log`` (``[level, message]`` pairs, failures too), for :func:`run_batch` to
    emit in the batch's process.
    """
    if take_sigint:
        signal.signal(signal.SIGINT, _interrupt_once)
    t0 = time.perf_counter()
    log: list[list[Any]] = []
    try:
        with _collect_log(log_level, log):
            row = dict(fn(**kwargs))
    except Exception as exc:  # noqa: BLE001 - every failure is reported, the batch goes on
        row = {"recording": recording, "stem": stem, "status": "failed",
               "error": describe(exc) if describe else f"{type(exc).__name__}: {exc}"}
        if debug:
            import traceback

            row["traceback"] = traceback.format_exc()
    finally:
        if take_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    row.setdefault("recording", recording)
    row.setdefault("stem", stem)
    row.setdefault("seconds", time.perf_counter() - t0)
    if log_level is not None:
        row["log"] = log
    return row


class _TaskLog(logging.Handler):
    """Collects the records of one thread (a Dask worker runs tasks in threads)."""

    def __init__(self, into: list[list[Any]]) -> None:
        super().__init__()
        self.into, self.thread = into, threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.into.append([record.levelno, record.getMessage()])


_capture_lock = threading.Lock()
_capturing: list[tuple[int, bool]] = []  # the logger's level and propagate before


@contextmanager
def _collect_log(level: int | None, into: list[list[Any]]) -> Iterator[None]:
    """Collect the :data:`TASK_LOGGER` records at ``level`` or above of this thread into
    ``into`` instead of letting them propagate (None: do nothing)."""
    if level is None:
        yield
        return
    logger, handler = logging.getLogger(TASK_LOGGER), _TaskLog(into)
    with _capture_lock:
        if not _capturing:
            _capturing.append((logger.level, logger.propagate))
            logger.propagate = False
        else:
            _capturing.append(_capturing[0])
        logger.setLevel(min(level, logger.getEffectiveLevel()))
        handler.setLevel(level)
        logger.addHandler(handler)
    try:
        yield
    finally:
        with _capture_lock:
            logger.removeHandler(handler)
            old_level, old_propagate = _capturing.pop()
            if not _capturing:
                logger.setLevel(old_level)
                logger.propagate = old_propagate


def _interrupt_once(signum, frame) -> None:
    """SIGINT handler of a worker: raise ``KeyboardInterrupt`` once and ignore further
    SIGINTs (Ctrl-C in a terminal reaches the worker directly *and* through the
    parent), so that the recording's clean-up is never interrupted itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _pool_init() -> None:
    """Local worker start-up: an idle worker ignores Ctrl-C (the parent decides); a
    worker that is running a task takes it (:func:`run_task`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    default_hook = sys.unraisablehook

    def hook(unraisable) -> None:  # an interrupt landing in a finalizer is expected
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            default_hook(unraisable)

    sys.unraisablehook = hook


# ----------------------------------------------------------------- executors
class InlineExecutor:
    """Runs each task in this process when it is submitted (``--jobs 1``)."""

    name = "1 process"
    capacity = 1
    take_sigint = False
    in_process = True  # tasks log here, as they run

    def submit(self, fn: Callable, *args: Any) -> Future:
        fut: Future = Future()
        fut.set_result(fn(*args))  # exceptions are rows (run_task); interrupts propagate
        return fut

    def wait_any(self, futures: Iterable[Future]) -> set[Future]:
        return {f for f in futures if f.done()}

    def interrupt(self, running: list[Future]) -> None:
        pass

    def close(self) -> None:
        pass


class LocalProcessExecutor:
    """``jobs`` spawned worker processes on this machine (``--jobs N``).

    "spawn", not "fork": forked workers can deadlock in OpenMP (LightGBM) or MNE threads
    that the parent already started.
    """

    take_sigint = True

    def __init__(self, jobs: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.capacity = int(jobs)
        self.name = f"{jobs} local processes"
        self._pool = ProcessPoolExecutor(max_workers=jobs, initializer=_pool_init,
                                         mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn: Callable, *args: Any) -> Future:
        return self._pool.submit(fn, *args)

    def wait_any(self, futures: Iterable[Future]) -> set[Future]:
        done, _ = _wait(list(futures), return_when=FIRST_COMPLETED)
        return set(done)

    def interrupt(self, running: list[Future]) -> None:
        """Stop the tasks running (each leaves nothing) and start no new one."""
        for proc in list((getattr(self._pool, "_processes", None) or {}).values()):
            try:
                os.kill(proc.pid, signal.SIGINT)
            except OSError:
                pass
        self._pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._pool.shutdown()


#: glibc mmap and trim thresholds (bytes) set in Dask workers whose environment fixes
#: the allocator's trim threshold (:func:`tune_worker_malloc`).
WORKER_MALLOC_THRESHOLD = 64 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_malloc_tuned: bool | None = None


def tune_worker_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds to :data:`WORKER_MALLOC_THRESHOLD` in this
    process if its environment sets ``MALLOC_TRIM_THRESHOLD_`` and not
    ``MALLOC_MMAP_THRESHOLD_`` (once per process; True if done now or before).

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``
    (``distributed.nanny.pre-spawn-environ``). Setting a threshold turns off glibc's
    adaptive thresholds, so every array over 128 KiB is mapped and unmapped again, and a
    night's arrays are paid in page faults over and over. Raised, arrays up to 64 MiB are
    reused from the heap, which keeps at most 64 MiB free for them. Set
    ``MALLOC_MMAP_THRESHOLD_`` in the workers' environment to choose yourself.
    Linux with glibc only; elsewhere nothing is done.
    """
    global _malloc_tuned
    if _malloc_tuned is not None:
        return _malloc_tuned
    _malloc_tuned = False
    if (not sys.platform.startswith("linux") or "MALLOC_TRIM_THRESHOLD_" not in os.environ
            or "MALLOC_MMAP_THRESHOLD_" in os.environ):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc (musl has none)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    _malloc_tuned = (mallopt(_M_MMAP_THRESHOLD, WORKER_MALLOC_THRESHOLD) == 1
                     and mallopt(_M_TRIM_THRESHOLD, WORKER_MALLOC_THRESHOLD) == 1)
    return _malloc_tuned


def _in_dask_worker(fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` in a Dask worker, its allocator tuned first
    (:func:`tune_worker_malloc`)."""
    tune_worker_malloc()
    return fn(*args)


class DaskExecutor:
    """A Dask ``distributed`` cluster (``--scheduler tcp://HOST:8786``).

    Parameters
    ----------
    scheduler : str or distributed.Client
        Scheduler address, or a client (then it is not closed here).
    """

    take_sigint = False  # tasks run in worker threads, where signals cannot be handled

    def __init__(self, scheduler: Any) -> None:
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - installed with the "cluster" extra
            raise ValueError("--scheduler needs Dask distributed: pip install "
                             "'hypnoscope[cluster]' (dask and distributed)") from None
        if isinstance(scheduler, Client):
            self.client, self._own = scheduler, False
        else:
            try:
                self.client = Client(str(scheduler), timeout="20s",
                                     set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: "
                                 f"{exc}; expected the address of a running "
                                 "'dask scheduler' (tcp://HOST:8786)") from None
            self._own = True
        info = self.client.scheduler_info(n_workers=-1) if _takes_n_workers(
            self.client) else self.client.scheduler_info()
        workers = info.get("workers", {})
        self.capacity = None  # everything is submitted at once; the scheduler spreads it
        nthreads = sum(int(w.get("nthreads", 1)) for w in workers.values())
        self.name = (f"Dask cluster {self.client.scheduler.address} ({len(workers)} "
                     f"workers, {nthreads} threads)")

    def submit(self, fn: Callable, *args: Any):
        from distributed import as_completed

        fut = self.client.submit(_in_dask_worker, fn, *args, pure=False)
        if getattr(self, "_finished", None) is None:  # this client's loop, not a default
            self._finished = as_completed(loop=self.client.loop)
        self._finished.add(fut)
        return fut

    def wait_any(self, futures: Iterable[Any]) -> set[Any]:
        return {next(self._finished)}  # every future submitted is in it, in order done

    def interrupt(self, running: list[Any]) -> None:
        """Cancel what has not finished (a task already running on a worker may still
        complete; its outputs are written whole or not at all)."""
        futures = [f for f in running if not f.done()]
        if futures:
            self.client.cancel(futures)
        self.close()

    def close(self) -> None:
        if self._own:
            self.client.close()


def _takes_n_workers(client) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def make_executor(jobs: int = 1, scheduler: Any = None):
    """The executor of a batch: a Dask cluster with ``scheduler`` (an address such as
    ``tcp://HOST:8786`` or a ``distributed.Client``), else ``jobs`` local processes
    (in this process for 1)."""
    if scheduler is not None:
        return DaskExecutor(scheduler)
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    return InlineExecutor() if jobs == 1 else LocalProcessExecutor(jobs)


# ------------------------------------------------------------------ the batch
class BatchInterrupted(KeyboardInterrupt):
    """A batch stopped by an interrupt; ``rows`` holds what finished (None for the
    recordings that did not), ``items`` the batch's items (same order)."""

    def __init__(self, rows: list[dict[str, Any] | None],
                 items: list[BatchItem] | None = None) -> None:
        super().__init__()
        self.rows = rows
        self.items = items or []

    @property
    def unfinished(self) -> list[str]:
        """Stems of the items that did not finish."""
        return [it.stem for it, r in zip(self.items, self.rows, strict=True) if r is None]

    @property
    def finished(self) -> list[dict[str, Any]]:
        """Rows of the items run (not those skipped or failed before starting) that
        finished."""
        return [r for it, r in zip(self.items, self.rows, strict=True)
                if it.row is None and r is not None]


def run_batch(items: list[BatchItem], fn: Callable[..., dict[str, Any]], executor, *,
              describe: Callable[[BaseException], str] | None = None, debug: bool = False,
              desc: str = "batch", unit: str = "night",
              on_row: Callable[[dict[str, Any]], None] | None = None,
              ) -> list[dict[str, Any]]:
    """Run ``fn(**item.kwargs)`` for every item without a row; return a row per item.

    Parameters
    ----------
    items : list of BatchItem
        The recordings, in order; those with a ``row`` (skipped, or failed before
        starting) are not run.
    fn : callable
        The per-recording task, importable by name on the workers (a module-level
        function); returns the recording's row.
    executor
        From :func:`make_executor`.
    describe : callable, optional
        One-line message of an exception (the row's ``error``).
    debug : bool
        Keep the traceback of failures in the rows.
    desc, unit : str
        Progress-bar label and unit (the bar shows rate and ETA over the batch).
    on_row : callable, optional
        Called in this process with each row as it finishes (e.g. to report failures).

    Returns
    -------
    list of dict
        One row per item, in input order.

    Raises
    ------
    BatchInterrupted
        On ``KeyboardInterrupt``: the running tasks are stopped (each leaves nothing),
        none is started, and the rows that finished are kept in the exception.
    Notices that a task in another process logs (:data:`TASK_LOGGER`) are collected
    there and emitted here when its recording finishes, before ``on_row``, as a
    one-process batch logs them while it runs.
    """
    from hypnoscope.utils.runtime import progress

    logger = logging.getLogger(TASK_LOGGER)
    log_level = None if getattr(executor, "in_process", False) else logger.getEffectiveLevel()
    rows: list[dict[str, Any] | None] = [it.row for it in items]
    todo = [i for i, it in enumerate(items) if it.row is None]
    bar = progress(total=len(todo), desc=desc, unit=unit)
    capacity = executor.capacity or len(todo)
    pending, running = list(todo), {}

    def finish(i: int, row: dict[str, Any]) -> None:
        for level, message in row.pop("log", None) or []:
            logger.log(level, message)
        rows[i] = row
        if on_row is not None:
            on_row(row)
        bar.update(1)

    def failed(i: int, exc: BaseException) -> dict[str, Any]:
        if type(exc).__name__ in ("KilledWorker", "BrokenProcessPool"):
            why = (f"the worker process died while working on it (killed, or out of "
                   f"memory?): {type(exc).__name__}: {exc}")
        else:
            why = describe(exc) if describe else f"{type(exc).__name__}: {exc}"
        return {"recording": items[i].recording, "stem": items[i].stem, "status": "failed",
                "error": why, "seconds": None}

    try:
        while pending or running:
            while pending and len(running) < capacity:
                i = pending.pop(0)
                it = items[i]
                bar.set_postfix_str(Path(it.recording).name)
                try:
                    fut = executor.submit(run_task, fn, it.kwargs, it.recording, it.stem,
                                          describe, debug, executor.take_sigint, log_level)
                except RuntimeError as exc:  # BrokenProcessPool: a worker was killed
                    finish(i, failed(i, exc))
                    continue
                running[fut] = i
            if not running:
                continue
            for fut in executor.wait_any(running):
                i = running.pop(fut)
                try:
                    row = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed (out of memory)
                    row = failed(i, exc)
                finish(i, row)
    except KeyboardInterrupt:
        bar.close()
        try:
            executor.interrupt(list(running))
        finally:
            for fut, i in running.items():  # those that finished meanwhile count
                try:
                    if fut.done() and not fut.cancelled() and fut.exception() is None:
                        rows[i] = fut.result()
                        rows[i].pop("log", None)
                except Exception:  # noqa: BLE001 - a cancelled Dask future
                    pass
        raise BatchInterrupted(rows, items) from None
    bar.close()
    executor.close()
    return [r for r in rows if r is not None]


# ------------------------------------------------------------------- summary
def summary_csv_text(rows: list[dict[str, Any]],
                     columns: Sequence[str] = SUMMARY_COLUMNS) -> str:
    """The summary CSV of a batch: one line per recording with ``columns``
    (:data:`SUMMARY_COLUMNS` and any other keys of the rows; ``error`` empty unless it
    failed, ``seconds`` empty for skipped recordings, a missing value empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        secs = r.get("seconds") if r.get("status") != "skipped" else None
        cells = {"n_epochs": "" if r.get("n_epochs") is None else int(r["n_epochs"]),
                 "seconds": "" if secs is None else f"{float(secs):.3f}",
                 "error": (str(r.get("error") or "").splitlines() or [""])[0]}
        w.writerow([cells[c] if c in cells else ("" if r.get(c) is None else r[c])
                    for c in columns])
    return buf.getvalue()


def write_summary_csv(path: str | os.PathLike, rows: list[dict[str, Any]],
                      columns: Sequence[str] = SUMMARY_COLUMNS) -> Path:
    """Write :func:`summary_csv_text` to ``path`` atomically."""
    from hypnoscope.utils.files import write_text_atomic

    return write_text_atomic(path, summary_csv_text(rows, columns))
