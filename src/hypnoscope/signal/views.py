"""Derived per-epoch views of a night, computed once and cached on disk.

A deep model may read several representations of the same epochs: the ``raw`` signals
(``Night.X``), a ``spec`` spectrogram, ``feat`` handcrafted features. :func:`add_views`
computes the derived ones for a list of nights and stores each in ``night.views``; the
result is cached as a ``.npy`` file keyed by the view's configuration and the night's
content (a change of either recomputes it) and read back memory-mapped, so a second run
reads it from disk and a dataset of many nights does not hold them all in memory.

Views:

- :class:`SpectrogramView` (``spec``): the XSleepNet / MC²SleepNet time-frequency image,
  2-s Hamming windows with 1-s overlap, 256-point FFT, log magnitude: 29 x 129 per
  channel for a 30-s epoch at 100 Hz (:func:`hypnoscope.signal.spectral.spectrogram`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hypnoscope.datasets import Night
from hypnoscope.signal.spectral import spectrogram
from hypnoscope.utils.files import atomic_path
from hypnoscope.utils.runtime import progress

logger = logging.getLogger(__name__)

#: Bump when a view's numerical output changes, so cached views are recomputed.
VIEWS_CACHE_VERSION = 1


class ViewSpec(Protocol):
    """What :func:`add_views` needs of a view: a JSON-able configuration and a function of
    the night."""

    def config(self) -> dict[str, Any]: ...

    def compute(self, night: Night) -> np.ndarray: ...


@dataclass(frozen=True)
class SpectrogramView:
    """Log-magnitude STFT image of each channel of each epoch.

    Parameters
    ----------
    window_sec, overlap_sec : float
        Hamming window length and overlap (2 s, 1 s).
    nfft : int
        FFT points (256 -> 129 frequency bins).
    log : bool
        ``20 log10 |X|`` (dB) rather than the magnitude.

    Output ``(n_epochs, n_channels, n_frames, nfft // 2 + 1)`` float32; 29 x 129 for 30-s
    epochs at 100 Hz.
    """

    window_sec: float = 2.0
    overlap_sec: float = 1.0
    nfft: int = 256
    log: bool = True

    def config(self) -> dict[str, Any]:
        return {"view": "spectrogram", **asdict(self)}

    def compute(self, night: Night) -> np.ndarray:
        if night.kind != "signals" or night.sfreq is None:
            raise ValueError(f"night {night.night_id}: a spectrogram needs signal epochs, "
                             f"got {night.kind}")
        return spectrogram(np.asarray(night.X), night.sfreq, window_sec=self.window_sec,
                           overlap_sec=self.overlap_sec, nfft=self.nfft, log=self.log)


#: View name -> default specification.
VIEWS: dict[str, ViewSpec] = {"spec": SpectrogramView()}


def views_cache_dir() -> Path:
    """``<default cache>/views`` (see :func:`hypnoscope.signal.nights.default_cache_dir`)."""
    from hypnoscope.signal.nights import default_cache_dir

    return default_cache_dir() / "views"


def night_fingerprint(night: Night) -> str:
    """Content hash of a night's primary input (values, shape, rate, channels)."""
    h = hashlib.blake2b(digest_size=16)
    x = np.ascontiguousarray(night.X)
    h.update(repr((x.shape, str(x.dtype), night.sfreq, list(night.channels))).encode())
    flat = x.reshape(-1).view(np.uint8)
    step = 1 << 24
    for i in range(0, len(flat), step):
        h.update(flat[i:i + step])
    return h.hexdigest()


def add_views(nights: Sequence[Night], views: Mapping[str, ViewSpec] | Sequence[str],
              cache: bool | str | os.PathLike = True) -> list[Night]:
    """Compute derived views of each night into ``night.views`` (in place).

    Parameters
    ----------
    nights : list of Night
    views : dict of name -> ViewSpec, or names of :data:`VIEWS`
        A night that already has a view of that name keeps it.
    cache : bool or path, default True
        Cache folder (True: :func:`views_cache_dir`; False: compute in memory). Entries
        are ``<night_id>-<name>-<key>.npy``, the key hashing the view's configuration and
        :func:`night_fingerprint`; they are read back memory-mapped.

    Returns
    -------
    list of Night
        The same nights. ``night.meta["views"][name]`` records the configuration, the
        cache file and whether it came from the cache.
    """
    specs: dict[str, ViewSpec] = (dict(views) if isinstance(views, Mapping)
                                  else {v: _default_spec(v) for v in views})
    folder = None
    if cache is not False and cache is not None:
        folder = views_cache_dir() if cache is True else Path(cache)
    todo = [n for n in nights if any(name not in n.views for name in specs)]
    for night in progress(todo, desc="views", unit="night",
                          disable=True if len(todo) < 2 else None):
        fp = night_fingerprint(night) if folder is not None else None
        for name, spec in specs.items():
            if name in night.views:
                continue
            if name == night.primary_view:
                raise ValueError(f"view name {name!r} is the primary input of the night")
            info: dict[str, Any] = {"config": spec.config(), "from_cache": False}
            arr = None
            path = None
            if folder is not None:
                key = _key({**spec.config(), "night": fp, "version": VIEWS_CACHE_VERSION})
                path = folder / f"{night.night_id}-{name}-{key}.npy"
                arr = _read(path, night.n_epochs)
                info["cache_file"] = str(path)
                info["from_cache"] = arr is not None
            if arr is None:
                arr = np.asarray(spec.compute(night), dtype=np.float32)
                if len(arr) != night.n_epochs:
                    raise ValueError(f"view {name!r} of night {night.night_id} has "
                                     f"{len(arr)} epochs, the night {night.n_epochs}")
                if path is not None and _write(path, arr):
                    arr = _read(path, night.n_epochs)
            night.views[name] = arr
            night.meta.setdefault("views", {})[name] = info
    return list(nights)


def _key(obj: dict[str, Any]) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _default_spec(name: str) -> ViewSpec:
    if name not in VIEWS:
        raise ValueError(f"unknown view {name!r}; derived views: {sorted(VIEWS)}")
    return VIEWS[name]


def _read(path: Path, n_epochs: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - a damaged entry is recomputed
        logger.warning("ignoring unreadable view cache %s (%s)", path, exc)
        return None
    if len(arr) != n_epochs:
        logger.warning("ignoring view cache %s: %d epochs, expected %d", path, len(arr),
                       n_epochs)
        return None
    return arr


def _write(path: Path, arr: np.ndarray) -> bool:
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, arr)
    except OSError as exc:  # a read-only or full cache must not break training
        logger.warning("could not write view cache %s: %s", path, exc)
        return False
    return True


__all__ = ["SpectrogramView", "ViewSpec", "VIEWS", "add_views", "night_fingerprint",
           "views_cache_dir"]
