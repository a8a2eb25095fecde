"""Per-night scaling of signals and features: z-score or robust (median/IQR).

:func:`normalization_stats` is the one home of the statistics (centre and scale over
given axes, epochs of bad quality left out); :func:`apply_normalization`,
:func:`normalize` (continuous signals or epochs) and :func:`normalize_epochs` (signal,
spectrogram or feature epochs, axes by :func:`epoch_norm_axes`) apply them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hypnoscope.utils.arrays import as_float

#: Normalisation methods of :func:`normalization_stats`.
NORMALIZE_METHODS = ("zscore", "robust")


#: IQR of a standard normal distribution: ``robust`` scale = IQR / 1.349 (equals the SD
#: for Gaussian data).
IQR_TO_SD = 1.349


def normalization_stats(data: np.ndarray, method: str = "zscore",
                        axes: int | Sequence[int] = 0, exclude: np.ndarray | None = None,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale of ``data`` over ``axes`` (the one home of per-night scaling).

    Parameters
    ----------
    data : ndarray
        E.g. ``(n_epochs, n_features)`` features (``axes=0``: per column) or
        ``(n_epochs, n_channels, n_times)`` signals (``axes=(0, 2)``: per channel).
    method : {"zscore", "robust"}
        ``zscore``: mean and standard deviation. ``robust``: median and IQR / 1.349, which
        equals the SD for Gaussian data but ignores artefact outliers; where the IQR is
        zero (a column mostly constant) the SD is used instead.
    axes : int or sequence of int
        Axes reduced.
    exclude : ndarray of bool, optional
        ``(data.shape[0],)``: rows (epochs) left out of the statistics, e.g. epochs of
        bad signal quality, so that one bad hour cannot distort the rest of the night.
        If every row is excluded, all rows are used.

    Returns
    -------
    center, scale : ndarray
        With the reduced axes kept as length 1 (broadcast against ``data``). NaNs are
        ignored; a scale that is zero or negligible against the centre (a flat channel)
        is 1, so such a channel is only centred.
    """
    if method not in NORMALIZE_METHODS:
        raise ValueError(f"normalize method must be 'zscore' or 'robust', got {method!r}")
    x = data if isinstance(data, np.ndarray) else np.asarray(data)
    keep = None
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool)
        if exclude.shape != (x.shape[0],):
            raise ValueError(f"exclude must have shape ({x.shape[0]},), got {exclude.shape}")
        if not exclude.all():
            keep = ~exclude
    axes_t = tuple(a % x.ndim for a in ((axes,) if isinstance(axes, int) else axes))
    if x.ndim >= 3 and 0 in axes_t and 1 not in axes_t:
        # channel axis kept: one channel at a time, so that a whole night (possibly
        # memory-mapped) is never copied to float64 at once
        sub_axes = tuple(a if a == 0 else a - 1 for a in axes_t)
        parts = [_stats(x[:, c], method, sub_axes, keep) for c in range(x.shape[1])]
        return (np.stack([p[0] for p in parts], axis=1),
                np.stack([p[1] for p in parts], axis=1))
    return _stats(x, method, axes_t, keep)


def _stats(x: np.ndarray, method: str, axes: tuple[int, ...], keep: np.ndarray | None,
           ) -> tuple[np.ndarray, np.ndarray]:
    if keep is not None:
        x = x[keep]
    x = np.asarray(x, dtype=np.float64)
    if method == "zscore":
        center = np.nanmean(x, axis=axes, keepdims=True)
        scale = np.nanstd(x, axis=axes, keepdims=True)
    else:
        q25, center, q75 = np.nanpercentile(x, [25, 50, 75], axis=axes, keepdims=True)
        scale = (q75 - q25) / IQR_TO_SD
        scale = np.where(scale > 0, scale, np.nanstd(x, axis=axes, keepdims=True))
    scale = np.where(scale > 1e-9 * (np.abs(center) + 1.0), scale, 1.0)
    return center, scale


def apply_normalization(data: np.ndarray, center: np.ndarray, scale: np.ndarray,
                        clip: float | None = None) -> np.ndarray:
    """``(data - center) / scale``, clipped to ``±clip`` when given, NaN/inf -> 0
    (float32)."""
    out = (np.asarray(data, dtype=np.float32) - center.astype(np.float32)) / scale.astype(
        np.float32)
    if clip is not None:
        np.clip(out, -clip, clip, out=out)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def normalize(data: np.ndarray, method: str = "zscore", channel_axis: int | None = None,
              return_stats: bool = False, exclude: np.ndarray | None = None):
    """Scale each channel over the whole recording (:func:`normalization_stats`).

    Parameters
    ----------
    data : ndarray
        ``(n_channels, n_samples)`` continuous signals or ``(n_epochs, n_channels,
        n_times)`` epochs of one recording.
    method : {"zscore", "robust"}
        See :func:`normalization_stats`.
    channel_axis : int or None
        Channel axis; default 0 for 2-D and 1 for 3-D input.
    return_stats : bool
        Also return ``(center, scale)`` per channel.
    exclude : ndarray of bool, optional
        Epochs (3-D input) left out of the statistics.

    Notes
    -----
    NaNs are ignored in the statistics. A channel with zero scale (flat) is only
    centred (its scale is taken as 1).
    """
    data = as_float(data)
    if channel_axis is None:
        channel_axis = 1 if data.ndim == 3 else 0
    channel_axis %= data.ndim
    axes = tuple(a for a in range(data.ndim) if a != channel_axis)
    if exclude is not None and (data.ndim != 3 or channel_axis == 0):
        raise ValueError("exclude needs (n_epochs, n_channels, n_times) epochs")
    center, scale = normalization_stats(data, method, axes, exclude=exclude)
    y = ((data - center) / scale).astype(data.dtype, copy=False)
    if return_stats:
        return y, center.reshape(-1), scale.reshape(-1)
    return y


def normalize_epochs(X: np.ndarray, method: str = "zscore", clip: float | None = None,
                     exclude: np.ndarray | None = None) -> np.ndarray:
    """Per-night scaling of an epoch array: each channel of signal epochs
    ``(n_epochs, n_channels, n_times)`` over all its samples, or each feature column of
    feature epochs ``(n_epochs, ...)`` over the epochs (see :func:`epoch_norm_axes`)."""
    center, scale = normalization_stats(X, method, epoch_norm_axes(X), exclude=exclude)
    return apply_normalization(X, center, scale, clip)


def epoch_norm_axes(X: np.ndarray) -> tuple[int, ...]:
    """Axes per-night statistics reduce for an epoch array: ``(0, 2)`` for signal epochs
    ``(n_epochs, n_channels, n_times)`` with more than 64 samples per epoch (per channel)
    and for spectrograms ``(n_epochs, n_channels, n_frames, n_freqs)`` (per channel and
    frequency bin), else ``(0,)`` (per feature column)."""
    shape = np.shape(X)
    if len(shape) == 4 or (len(shape) == 3 and shape[2] > 64):
        return (0, 2)
    return (0,)

