"""Epochs of continuous signals: :func:`epoch_signals` (30-s windows from an onset) and
:func:`crop_to_sleep_period` (the sleep period plus some wake either side)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hypnoscope.utils.arrays import epoch_view

if TYPE_CHECKING:  # pragma: no cover
    from hypnoscope.hypnogram import Hypnogram


def epoch_signals(data: np.ndarray, sfreq: float, epoch_sec: float = 30.0,
                  onset_sec: float = 0.0) -> np.ndarray:
    """Cut continuous signals into consecutive, non-overlapping epochs.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples) or (n_samples,)
        Continuous signals.
    sfreq : float
        Sampling rate in Hz; ``epoch_sec * sfreq`` must be a whole number of samples.
    epoch_sec : float, default 30.0
        Epoch length.
    onset_sec : float, default 0.0
        Start of the first epoch (e.g. a hypnogram's ``onset_sec``); must fall on a sample.

    Returns
    -------
    ndarray, shape (n_epochs, n_channels, n_times)
        A copy; the incomplete trailing epoch is dropped.
    """
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[np.newaxis]
    if data.ndim != 2:
        raise ValueError(f"data must be (n_channels, n_samples), got shape {data.shape}")
    n_times = epoch_sec * sfreq
    if n_times <= 0 or not np.isclose(n_times, round(n_times)):
        raise ValueError(f"epoch_sec * sfreq = {epoch_sec} * {sfreq} = {n_times} is not a "
                         "positive whole number of samples")
    start = onset_sec * sfreq
    if onset_sec < 0 or not np.isclose(start, round(start)):
        raise ValueError(f"onset_sec={onset_sec} must be >= 0 and fall on a sample at "
                         f"{sfreq} Hz")
    n_times, start = int(round(n_times)), int(round(start))
    n_epochs = (data.shape[1] - start) // n_times
    if n_epochs < 1:
        raise ValueError(f"signal of {data.shape[1] / sfreq:.1f} s (from onset {onset_sec} s) "
                         f"is shorter than one {epoch_sec:g}-s epoch")
    return np.ascontiguousarray(epoch_view(data, n_times, n_epochs, start))


def crop_to_sleep_period(epochs: np.ndarray, hypnogram: Hypnogram | np.ndarray,
                         wake_pad_min: float = 30.0, epoch_sec: float = 30.0,
                         ) -> tuple[np.ndarray, Hypnogram | np.ndarray]:
    """Keep the sleep period plus ``wake_pad_min`` minutes of wake on each side.

    Parameters
    ----------
    epochs : ndarray, shape (n_epochs, ...)
        Per-epoch data aligned with the hypnogram.
    hypnogram : Hypnogram or array of int
        Stages of the same epochs (see :meth:`Hypnogram.align_to` to align first).
    wake_pad_min : float, default 30.0
        Minutes kept before the first and after the last sleep epoch (the Sleep-EDF
        literature's choice).
    epoch_sec : float, default 30.0
        Epoch length when ``hypnogram`` is a plain array.

    Returns
    -------
    epochs, hypnogram
        Cropped copies; a :class:`Hypnogram` keeps its onset consistent with the crop.
    """
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.stages import sleep_period_slice

    is_hyp = isinstance(hypnogram, Hypnogram)
    codes = hypnogram.codes if is_hyp else np.asarray(hypnogram)
    epoch_sec = hypnogram.epoch_sec if is_hyp else epoch_sec
    if len(epochs) != len(codes):
        raise ValueError(f"{len(epochs)} epochs of data but {len(codes)} hypnogram epochs; "
                         "align them first (Hypnogram.align_to)")
    sl = sleep_period_slice(codes, wake_pad_min, epoch_sec)
    if sl is None:
        raise ValueError("hypnogram contains no sleep epoch; cannot crop to the sleep period")
    return np.asarray(epochs)[sl].copy(), hypnogram[sl] if is_hyp else codes[sl].copy()

