"""Spectra of signal epochs: SciPy's Welch PSD and the XSleepNet/MC²SleepNet spectrogram.

Its parts:

- :func:`welch` - ``scipy.signal.welch`` (density scaling, constant detrend) with
  SciPy's numbers, the window from the shipped designs
  (:func:`hypnoscope.signal.filters.design_window`);
- :func:`spectrogram` - the 29 x 129 log-magnitude STFT image of a 30-s epoch at 100 Hz.
"""

from __future__ import annotations

import numpy as np

from hypnoscope.signal.filters import design_window
from hypnoscope.utils.arrays import as_float


def welch(x: np.ndarray, sfreq: float, *, nperseg: int, noverlap: int | None = None,
          nfft: int | None = None, window: str = "hann", average: str = "mean",
          n_freqs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.welch(x, fs=sfreq, nperseg=..., axis=-1)`` (density scaling,
    constant detrend) over the last axis, restricted to the ``n_freqs`` lowest
    frequencies.

    SciPy's operations in SciPy's order (its ``ShortTimeFFT`` path: constant detrend of
    each segment, window scaled for a density, one-sided doubling, mean or bias-corrected
    median of the segments), so the values are SciPy's (bit-identical in
    ``tests/test_welch_psd.py``), with the window from :func:`design_window` (no import
    of ``scipy.signal`` for shipped designs) and the average over the segments, the
    costliest step for a median, only over the ``n_freqs`` frequencies needed.

    Returns
    -------
    freqs : ndarray (n_freqs,)
    psd : ndarray (..., n_freqs)
    """
    from scipy import fft as sfft

    x = np.asarray(x, dtype=np.float64)
    if average not in ("mean", "median"):
        raise ValueError(f"average must be 'mean' or 'median', got {average!r}")
    if x.shape[-1] < nperseg:  # SciPy shortens the segment: leave that case to it
        from scipy import signal

        f, p = signal.welch(x, fs=sfreq, window=window, nperseg=nperseg, noverlap=noverlap,
                            nfft=nfft, average=average, axis=-1)
        return f[:n_freqs], p[..., :n_freqs]
    noverlap = nperseg // 2 if noverlap is None else int(noverlap)
    nfft = nperseg if nfft is None else int(nfft)
    hop = nperseg - noverlap
    n_seg = (x.shape[-1] - noverlap) // hop
    win = design_window(window, nperseg)
    win = win * (1.0 / np.sqrt(sfreq * np.sum(np.abs(win) ** 2)))
    seg = np.lib.stride_tricks.sliding_window_view(x, nperseg, axis=-1)[..., ::hop, :]
    seg = seg[..., :n_seg, :]
    seg = seg - seg.mean(axis=-1, keepdims=True)
    seg *= win  # in place: one temporary less than seg * win, the same numbers
    spec = sfft.rfft(seg, n=nfft, axis=-1, workers=-1)[..., :n_freqs]
    psd = spec.real**2 + spec.imag**2
    psd[..., 1:nfft // 2 if nfft % 2 == 0 else None] *= 2  # one-sided: all but DC, Nyquist
    freqs = sfft.rfftfreq(nfft, 1.0 / sfreq)[:n_freqs]
    if n_seg == 1:
        return freqs, psd[..., 0, :]
    if average == "mean":  # over a contiguous last axis, as SciPy sums
        return freqs, np.ascontiguousarray(np.moveaxis(psd, -2, -1)).mean(axis=-1)
    ii_2 = 2 * np.arange(1.0, (n_seg - 1) // 2 + 1)  # SciPy's _median_bias
    bias = 1 + np.sum(1.0 / (ii_2 + 1) - 1.0 / ii_2)
    psd = np.median(psd, axis=-2)
    psd /= bias
    return freqs, psd


def spectrogram(epochs: np.ndarray, sfreq: float, window_sec: float = 2.0,
                overlap_sec: float = 1.0, nfft: int = 256, log: bool = True,
                eps: float = 1e-10) -> np.ndarray:
    """Log-magnitude STFT image per epoch, as in XSleepNet/MC²SleepNet.

    A symmetric Hamming window of ``window_sec`` (2 s = 200 samples at 100 Hz) slides
    by ``window_sec - overlap_sec`` (1 s) with no padding; each frame is zero-padded to
    ``nfft`` (256) points; the unscaled magnitude ``|X|`` is turned into
    ``20 * log10(|X| + eps)`` (dB). For 30-s epochs at 100 Hz this gives 29 frames x
    129 frequency bins (0-50 Hz).

    Parameters
    ----------
    epochs : ndarray, shape (..., n_times)
        E.g. ``(n_epochs, n_channels, n_times)``.

    Returns
    -------
    ndarray of float32, shape (..., n_frames, nfft // 2 + 1)
    """
    from scipy.signal import spectrogram as _scipy_spectrogram
    from scipy.signal.windows import hamming

    epochs = as_float(epochs)
    nper = int(round(window_sec * sfreq))
    nover = int(round(overlap_sec * sfreq))
    if not 0 <= nover < nper <= epochs.shape[-1]:
        raise ValueError(f"need 0 <= overlap ({nover}) < window ({nper}) <= epoch length "
                         f"({epochs.shape[-1]} samples)")
    if nfft < nper:
        raise ValueError(f"nfft={nfft} must be >= the window length ({nper} samples)")
    win = hamming(nper, sym=True)
    _, _, mag = _scipy_spectrogram(epochs, fs=sfreq, window=win, nperseg=nper,
                                   noverlap=nover, nfft=nfft, detrend=False,
                                   scaling="spectrum", mode="magnitude", axis=-1)
    mag = mag * win.sum()  # undo scipy's 1/sum(window) scaling: plain |STFT|
    out = 20.0 * np.log10(mag + eps) if log else mag
    return np.swapaxes(out, -1, -2).astype(np.float32)

