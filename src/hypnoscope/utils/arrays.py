"""Array helpers: runs of True, float arrays and signal epochs as views."""

from __future__ import annotations

import numpy as np


def true_runs(mask) -> list[tuple[int, int]]:
    """``(start, stop)`` index pairs of the runs of True in a 1-D boolean array."""
    d = np.diff(np.concatenate([[0], np.asarray(mask, bool).astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


def as_float(data) -> np.ndarray:
    """``data`` as an array of a float type: float arrays as they are, others as float64."""
    data = np.asarray(data)
    return data if data.dtype.kind == "f" else data.astype(np.float64)


def epoch_view(data: np.ndarray, n_times: int, n_epochs: int | None = None,
               start: int = 0) -> np.ndarray:
    """Consecutive, non-overlapping epochs of the last axis, without copying (the one
    place signals are cut into epochs).

    ``(..., n_samples)`` -> ``(n_epochs, ..., n_times)``: epoch ``i`` is samples
    ``start + i * n_times`` to ``start + (i + 1) * n_times``; ``n_epochs`` defaults to
    every complete epoch (the incomplete tail is dropped). A view of ``data``.
    """
    data = np.asarray(data)
    if n_epochs is None:
        n_epochs = max(data.shape[-1] - start, 0) // n_times
    seg = data[..., start:start + n_epochs * n_times]
    return np.moveaxis(seg.reshape(data.shape[:-1] + (n_epochs, n_times)), -2, 0)

