"""Small shared helpers: atomic file writes, seeding, progress bars, logging."""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from collections.abc import Iterator
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
    raise TypeError(f"object of type {type(o).__name__} is not JSON serialisable")


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (if installed) PyTorch; return a NumPy ``Generator``."""
    random.seed(seed)
    # seeding the legacy global RNG is the point: third-party code (sklearn, yasa) uses it
    np.random.seed(seed % (2**32))  # noqa: NPY002
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a hard dependency, but stay usable
        pass
    return np.random.default_rng(seed)


def progress(iterable=None, total: int | None = None, desc: str = "", unit: str = "it",
             disable: bool | None = None, **kwargs):
    """A tqdm progress bar (rate and ETA) that stays quiet when output is not a terminal
    unless ``HYPNOSCOPE_PROGRESS=1`` is set."""
    from tqdm.auto import tqdm

    if disable is None:
        env = os.environ.get("HYPNOSCOPE_PROGRESS")
        disable = (env == "0") if env is not None else None  # tqdm: None = auto (tty only)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable,
                dynamic_ncols=True, **kwargs)


def true_runs(mask) -> list[tuple[int, int]]:
    """``(start, stop)`` index pairs of the runs of True in a 1-D boolean array."""
    d = np.diff(np.concatenate([[0], np.asarray(mask, bool).astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))
