"""Output files: atomic writes, output paths checked before any work, output sets.

Its parts:

- :func:`atomic_path`, :func:`write_text_atomic`, :func:`write_json_atomic`: a file
  appears whole or not at all;
- :func:`check_output_dir`, :func:`check_output_file`: a path that cannot be written
  fails before any work (:class:`OutputPathError`);
- :func:`output_set`: several files that appear together or not at all (interrupts held
  while they move, :func:`deferred_interrupts`); :func:`remove_stale_partials` clears
  what a killed process left;
- :func:`shipped_data_file`: a file that ships in the package's data folder, by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success.

    An exception (or an interrupt) inside the block removes the temporary file, so a
    reader never sees a half-written output.

    Examples
    --------
    >>> with atomic_path("night.tsv") as tmp:  # doctest: +SKIP
    ...     df.to_csv(tmp, sep="\\t")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as JSON atomically (NumPy scalars and arrays are converted)."""
    return write_text_atomic(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    if callable(getattr(o, "to_dict", None)):  # e.g. hypnoscope.notices.Notice
        return o.to_dict()
    raise TypeError(f"object of type {type(o).__name__} is not JSON serialisable")



class OutputPathError(ValueError):
    """An output path that cannot be written; the message names it and says why."""


def _nearest_existing(path: Path) -> Path:
    for p in (path, *path.parents):
        if os.path.lexists(p):
            return p
    return Path(".")  # pragma: no cover - a relative path always ends at "."


def _probe_writable(folder: Path, what: str, path: Path) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".hypnoscope-write-test.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        where = "cannot write into it" if folder == path else f"cannot create it in {folder}"
        raise OutputPathError(f"{what} {path}: {where}: {exc.strerror or exc}; expected a "
                              "writable folder") from None


def check_output_dir(path: str | os.PathLike, what: str = "output folder",
                     create: bool = True) -> Path:
    """Check, before any work, that ``path`` is (or can become) a writable folder.

    With ``create`` the folder (and its parents) is created; without, nothing is
    created and the nearest existing parent is checked instead. A path naming a file,
    a parent that is a file, or a folder that cannot be written raises
    :class:`OutputPathError` naming the path (``what`` says which option it came
    from, e.g. ``"--out"``).
    """
    path = Path(path)
    try:
        if os.path.lexists(path) and not path.is_dir():
            raise OutputPathError(f"{what} {path} is a file; expected a folder (or a path "
                                  "where one can be created)")
        if path.is_dir():
            _probe_writable(path, what, path)
            return path
        anc = _nearest_existing(path.parent)
        if not anc.is_dir():
            raise OutputPathError(f"{what} {path}: {anc} is a file, so no folder can be "
                                  "created inside it; expected a folder")
        if not create:
            _probe_writable(anc, what, path)
            return path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(f"{what} {path}: cannot create the folder: "
                                  f"{exc.strerror or exc}") from None
        _probe_writable(path, what, path)
        return path
    except OutputPathError:
        raise
    except OSError as exc:  # e.g. a parent folder that cannot be searched
        raise OutputPathError(f"{what} {path}: {exc.strerror or exc}; expected a writable "
                              "folder") from None


def check_output_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Check, before any work, that the file ``path`` can be written (atomically).

    Nothing is created. A path that is a folder, or whose folder cannot be created or
    written, raises :class:`OutputPathError` naming it.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{what} {path} is a folder; expected a file name")
    if not path.name or path.name in (".", ".."):
        raise OutputPathError(f"{what} {str(path)!r} names no file; expected a file name")
    check_output_dir(path.parent, what=f"{what} {path}: folder", create=False)
    return path


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends (then deliver them), so that a short
    critical section -- moving an output set into place -- is never cut in half.
    Outside the main thread (where signals cannot be handled) it does nothing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        prev = signal.getsignal(sig)
        if prev is None:  # installed outside Python: leave it alone
            continue
        old[sig] = prev
        signal.signal(sig, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)
        if got:
            signal.raise_signal(got[0])


#: Prefix of the temporary folder an output set is written into (inside the output
#: folder), followed by ``<stem>.<pid>.``.
PARTIAL_PREFIX = ".hypnoscope-partial."


@contextlib.contextmanager
def output_set(out_dir: str | os.PathLike, stem: str,
               replaces: tuple[str, ...] | list[str] = ()) -> Iterator[Path]:
    """Write a set of outputs that appears all together or not at all.

    Yields a temporary folder inside ``out_dir``; the caller writes every file of the
    set there. When the block ends normally every file is moved into ``out_dir`` (with
    interrupts held, so the move is never cut in half) and the files named in
    ``replaces`` that the new set lacks (e.g. a PNG of an earlier run) are removed. An
    exception or interrupt inside the block removes the temporary folder: nothing of
    the set appears. A folder left behind by a killed process is removed by
    :func:`remove_stale_partials`.
    """
    import shutil

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = None
    try:
        with deferred_interrupts():  # an interrupt here must not leave an orphan folder
            tmp = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{stem}.{os.getpid()}.",
                                        dir=out_dir))
        yield tmp
        files = sorted(f for f in tmp.iterdir() if f.is_file())
        for f in files:
            if (out_dir / f.name).is_dir():
                raise OutputPathError(f"{out_dir / f.name} is a folder; expected nothing "
                                      "or an earlier output file there")
        moved: list[Path] = []
        with deferred_interrupts():
            try:
                for f in files:
                    os.replace(f, out_dir / f.name)
                    moved.append(out_dir / f.name)
            except BaseException:
                for m in moved:  # all or nothing
                    m.unlink(missing_ok=True)
                raise
            new = {f.name for f in files}
            for name in replaces:
                if name not in new:
                    (out_dir / name).unlink(missing_ok=True)
    finally:
        if tmp is not None:
            with deferred_interrupts():  # the clean-up itself is never cut in half
                shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_partials(out_dir: str | os.PathLike) -> list[Path]:
    """Remove the temporary output-set folders (:func:`output_set`) in ``out_dir`` whose
    process no longer runs (a killed batch); return them."""
    import shutil

    removed = []
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return removed
    for d in out_dir.glob(f"{PARTIAL_PREFIX}*"):
        try:
            pid = int(d.name[len(PARTIAL_PREFIX):].rsplit(".", 2)[-2])
        except (ValueError, IndexError):
            continue
        if _pid_alive(pid):  # still running (this process included)
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: exists, owned by someone else
        return True
    return True


def shipped_data_file(name: str | os.PathLike) -> Path | None:
    """The file called ``name`` in the package's data folder (``hypnoscope/data``).

    Lets a command take a shipped file (the demo's ``SC4001EC-Hypnogram.edf``) by its bare
    name from any folder. ``None`` when ``name`` has a folder part or no such file ships.
    """
    name = Path(name)
    if len(name.parts) != 1 or name.name in (".", ".."):
        return None
    path = Path(str(resources.files("hypnoscope") / "data" / name.name))
    return path if path.is_file() else None
