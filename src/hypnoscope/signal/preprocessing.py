"""Preprocessing steps for PSG signals; each a plain function, chained by :class:`Pipeline`.

Continuous-signal steps take ``data`` of shape ``(n_channels, n_samples)`` (or any shape
with time on the last axis) and return a new float array of the same shape:

- :func:`notch` - mains notch (MNE FIR notch), off by default.
- :func:`bandpass` / :func:`bandpass_by_role` - zero-phase FIR band-pass (MNE
  ``filter_data``, firwin design, Hamming window). Defaults per modality
  (:data:`BANDPASS_DEFAULTS`): EEG 0.3-35 Hz, EOG 0.3-15 Hz, waveform EMG 10-45 Hz; an
  EMG envelope (``"emg_envelope"``) is never band-passed.
- :func:`kaiser_lowpass` - FIR low-pass designed with the Kaiser window method
  (:func:`scipy.signal.kaiserord` + :func:`scipy.signal.firwin`; the MSMAE-CNN setting
  is 10 Hz cut-off, 60 dB attenuation at 100 Hz), applied with zero phase.
- :func:`normalize` - per-channel z-score or robust (median/IQR) scaling over the
  whole recording.

Epoch-level steps: :func:`epoch_signals` (30-s windows), :func:`crop_to_sleep_period`
(N minutes of wake kept either side of sleep, 30 by default) and :func:`spectrogram`
(the MC²SleepNet/XSleepNet 29 x 129 log-magnitude STFT image).

:func:`preprocess` applies the continuous steps described by a config dict to a
:class:`hypnoscope.io.psg.PSGRecording`; :func:`config_hash` keys caches on that config.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.io.psg import PSGRecording

#: Bump when a step's numerical behaviour changes, so cached results are recomputed.
PREPROCESSING_VERSION = 1

#: Default band-pass edges (Hz) per channel role; None = leave unfiltered.
BANDPASS_DEFAULTS: dict[str, tuple[float, float] | None] = {
    "eeg": (0.3, 35.0),
    "eog": (0.3, 15.0),
    "emg": (10.0, 45.0),
    "emg_envelope": None,
}


def _as_float(data: np.ndarray) -> np.ndarray:
    data = np.asarray(data)
    return data if data.dtype.kind == "f" else data.astype(np.float64)


# ------------------------------------------------------------------ epoching
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
    seg = data[:, start:start + n_epochs * n_times]
    return np.ascontiguousarray(seg.reshape(data.shape[0], n_epochs, n_times).transpose(1, 0, 2))


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


# ------------------------------------------------------------------ filters
def kaiser_lowpass_design(sfreq: float, cutoff: float = 10.0, attenuation_db: float = 60.0,
                          transition_hz: float | None = None) -> np.ndarray:
    """Taps of a linear-phase FIR low-pass designed with the Kaiser window method.

    ``transition_hz`` (default: half the cut-off, capped by the distance to Nyquist) is
    the width of the transition band, centred on ``cutoff``: the pass band ends at
    ``cutoff - transition_hz/2`` and the stop band, attenuated by at least
    ``attenuation_db``, starts at ``cutoff + transition_hz/2``. The number of taps is
    made odd (type I filter, integer group delay).
    """
    from scipy.signal import firwin, kaiserord

    nyq = sfreq / 2.0
    if not 0 < cutoff < nyq:
        raise ValueError(f"cutoff must be between 0 and Nyquist ({nyq:g} Hz), got {cutoff}")
    if transition_hz is None:
        transition_hz = min(cutoff / 2.0, 2 * (nyq - cutoff), 2 * cutoff)
    if transition_hz <= 0 or cutoff + transition_hz / 2 > nyq + 1e-9:
        raise ValueError(f"transition_hz={transition_hz} must be positive and keep the stop "
                         f"band ({cutoff} + transition/2) below Nyquist ({nyq:g} Hz)")
    if attenuation_db <= 0:
        raise ValueError(f"attenuation_db must be positive, got {attenuation_db}")
    numtaps, beta = kaiserord(attenuation_db, transition_hz / nyq)
    numtaps += 1 - numtaps % 2
    return firwin(numtaps, cutoff, window=("kaiser", beta), fs=sfreq)


def apply_fir_zero_phase(data: np.ndarray, taps: np.ndarray, axis: int = -1) -> np.ndarray:
    """Apply an odd-length symmetric FIR filter with its delay removed (zero phase).

    Unlike :func:`scipy.signal.filtfilt` the magnitude response is the designed one
    (not squared). Edges are padded by odd reflection to limit transients.
    """
    from scipy.signal import oaconvolve

    data = _as_float(data)
    taps = np.asarray(taps, dtype=data.dtype)
    if taps.size % 2 == 0:
        raise ValueError("zero-phase application needs an odd number of taps")
    half = taps.size // 2
    x = np.moveaxis(data, axis, -1)
    n = x.shape[-1]
    if n < 2:
        return data.copy()
    pad = min(half, n - 1)
    xp = _pad_edges(x, pad)
    shape = (1,) * (xp.ndim - 1) + (taps.size,)
    y = oaconvolve(xp, taps.reshape(shape), mode="full", axes=-1)
    y = y[..., half + pad: half + pad + n]
    return np.moveaxis(y.astype(data.dtype, copy=False), -1, axis)


def kaiser_lowpass(data: np.ndarray, sfreq: float, cutoff: float = 10.0,
                   attenuation_db: float = 60.0, transition_hz: float | None = None,
                   axis: int = -1) -> np.ndarray:
    """Zero-phase FIR low-pass designed with the Kaiser window method.

    Defaults reproduce the MSMAE-CNN paper (cut-off 10 Hz, 60 dB attenuation, data at
    100 Hz); the default transition band is 5 Hz wide at 10 Hz (7.5-12.5 Hz). See
    :func:`kaiser_lowpass_design` for the design and :func:`apply_fir_zero_phase`.
    """
    taps = kaiser_lowpass_design(sfreq, cutoff, attenuation_db, transition_hz)
    return apply_fir_zero_phase(data, taps, axis=axis)


# Designs of the band-power pipeline, shipped with the package (``data/designs.npz``,
# written by ``scripts/make_designs.py`` and checked against MNE and SciPy by
# ``tests/test_designs.py``): a fresh staging process then never imports
# ``scipy.signal`` (about 0.6 s of a 1.5-s budget), and the features no longer depend on
# the installed MNE's filter design.
DESIGNS_FILE = Path(__file__).parents[1] / "data" / "designs.npz"


def _design_key(kind: str, **params: Any) -> str:
    return json.dumps({"kind": kind, **params}, sort_keys=True)


@functools.lru_cache(maxsize=1)
def _shipped_designs() -> dict[str, np.ndarray]:
    if not DESIGNS_FILE.is_file():  # pragma: no cover - a broken installation
        return {}
    with np.load(DESIGNS_FILE) as z:
        return {str(k): z[k] for k in z.files}


#: Designs made in this process (not shipped), by key.
_DESIGNED: dict[str, np.ndarray] = {}


def _designed(key: str, shipped: bool) -> np.ndarray:
    if shipped and key in _shipped_designs():
        return _shipped_designs()[key]
    if key not in _DESIGNED:
        p = json.loads(key)
        kind = p.pop("kind")
        if kind == "window":
            from scipy.signal import get_window

            _DESIGNED[key] = get_window(p["name"], p["n"])
        else:
            from mne.filter import create_filter

            _DESIGNED[key] = create_filter(None, p.pop("sfreq"), p.pop("l_freq"),
                                           p.pop("h_freq"), method="fir", verbose="ERROR",
                                           **p)
    return _DESIGNED[key]


def designs_made() -> dict[str, np.ndarray]:
    """The designs made (not loaded from the shipped file) in this process, by key."""
    return dict(_DESIGNED)


def design_fir(sfreq: float, l_freq: float | Sequence[float] | None,
               h_freq: float | Sequence[float] | None, *, phase: str = "zero",
               fir_window: str = "hamming", fir_design: str = "firwin",
               filter_length: str | int = "auto",
               l_trans_bandwidth: float | str = "auto",
               h_trans_bandwidth: float | str = "auto", shipped: bool = True,
               ) -> np.ndarray:
    """Taps of ``mne.filter.create_filter(None, sfreq, l_freq, h_freq, method="fir", ...)``.

    The designs of the band-power pipeline are shipped (:data:`DESIGNS_FILE`); others
    are designed by MNE on first use and kept for the process. ``l_freq > h_freq`` is a
    band-stop (MNE's FIR notch: ``l_freq = f + w/2 + t/2``, ``h_freq = f - w/2 - t/2``,
    transition bandwidths ``t/2``). ``shipped=False`` always asks MNE. The array is
    shared: do not modify it.
    """
    def num(v):
        if v is None or isinstance(v, str):
            return v
        return [float(x) for x in v] if np.ndim(v) else float(v)

    key = _design_key("fir", sfreq=float(sfreq), l_freq=num(l_freq), h_freq=num(h_freq),
                      phase=phase, fir_window=fir_window, fir_design=fir_design,
                      filter_length=filter_length, l_trans_bandwidth=num(l_trans_bandwidth),
                      h_trans_bandwidth=num(h_trans_bandwidth))
    return _designed(key, shipped)


def design_window(name: str, n: int, *, shipped: bool = True) -> np.ndarray:
    """``scipy.signal.get_window(name, n)`` (periodic), shipped for the band-power
    pipeline's Welch window like :func:`design_fir`."""
    return _designed(_design_key("window", name=name, n=int(n)), shipped)


def _mne_block_length(n_x: int, n_h: int) -> int:
    """FFT length of MNE's overlap-add (``mne.filter._overlap_add_filter``): the power
    of two that minimises its multiplication-count cost for ``n_x`` samples."""
    min_fft = 2 * n_h - 1
    if n_x < min_fft:
        from mne.filter import next_fast_len  # 5-smooth, as MNE's filter uses

        return int(next_fast_len(min_fft))
    sizes = 2 ** np.arange(np.ceil(np.log2(min_fft)), np.ceil(np.log2(n_x)) + 1, dtype=int)
    cost = (np.ceil(n_x / (sizes - n_h + 1).astype(np.float64)) * sizes
            * (np.log2(sizes) + 1) + 4e-5 * sizes * n_x)
    return int(sizes[np.argmin(cost)])


def _pad_edges(x: np.ndarray, n_edge: int) -> np.ndarray:
    """``n_edge`` samples of odd reflection about each end sample (MNE's
    ``reflect_limited``: zeros where the reflection would run past the signal)."""
    n = x.shape[-1]
    k = min(n_edge, n - 1)
    zeros = np.zeros(x.shape[:-1] + (n_edge - k,), dtype=x.dtype)
    left = 2 * x[..., :1] - x[..., k:0:-1]
    right = 2 * x[..., -1:] - x[..., -2:-k - 2:-1]
    return np.concatenate([zeros, left, x, right, zeros], axis=-1)


def _put(out: np.ndarray, values: np.ndarray, start: int) -> None:
    """``out[start:start + len(values)] = values`` for the part inside ``out``."""
    lo, hi = max(start, 0), min(start + len(values), len(out))
    if lo < hi:
        out[lo:hi] = values[lo - start: hi - start]


#: Samples filtered per block of overlap-add FFTs (bounds the memory of a long night).
FIR_CHUNK_SAMPLES = 1 << 18


def fir_filter(data: np.ndarray, h: np.ndarray, phase: str = "zero",
               out: np.ndarray | None = None) -> np.ndarray:
    """Filter the last axis with FIR taps ``h`` as ``mne.filter.filter_data`` applies them.

    The same steps as MNE's overlap-add (``reflect_limited`` padding of ``len(h) - 1``
    samples per edge, the same FFT length, the same products and sums), so the result
    equals ``filter_data`` with the same taps bit for bit (``tests/test_designs.py``);
    the blocks of each channel go through the FFT together instead of one by one, and
    no padded copy of the signal is made, which takes about half the time on a long night.

    Parameters
    ----------
    data : ndarray (..., n_times)
    h : ndarray (n_taps,)
        Linear-phase taps (:func:`design_fir`).
    phase : {"zero", "zero-double"}
        ``zero``: delay compensated; ``zero-double``: applied forwards and backwards.
    out : ndarray, optional
        Float64 array of the shape of ``data`` to write the result into; may be ``data``
        itself (filtering in place).

    Returns
    -------
    ndarray, the shape of ``data``, float64
    """
    from scipy.fft import irfft, rfft

    if phase not in ("zero", "zero-double"):
        raise ValueError(f"phase must be 'zero' or 'zero-double', got {phase!r}")
    x = np.asarray(data, dtype=np.float64)
    shape = x.shape
    x = x.reshape(-1, shape[-1]) if x.ndim != 2 else x
    n = x.shape[-1]
    h = np.asarray(h, dtype=np.float64)
    if out is None:
        out = np.empty(shape)
    elif out.shape != shape or out.dtype != np.float64:
        raise ValueError(f"out must be a float64 array of shape {shape}, got {out.dtype} "
                         f"{out.shape}")
    result = out
    out = out.reshape(x.shape)  # rows of out are written in place: must be a view
    if out.size and not np.shares_memory(out, result):
        raise ValueError("out must be C-contiguous when data has more than 2 dimensions")
    if len(h) == 1:
        out[:] = x * (h**2 if phase == "zero-double" else h)
        return result
    n_edge = max(min(len(h), n) - 1, 0)
    if phase == "zero-double":
        h = np.convolve(h, h[::-1])
    n_h = len(h)
    n_x = n + 2 * n_edge
    n_fft = _mne_block_length(n_x, n_h)
    n_seg = n_fft - n_h + 1
    h_fft = rfft(h, n=n_fft)
    shift = (n_h - 1) // 2 + n_edge
    per = max(1, FIR_CHUNK_SAMPLES // n_seg)  # blocks per FFT call
    n_blocks = -(-n_x // n_seg)
    for row, xr in enumerate(x):
        # the padded signal [left, x, right] is read piece by piece (no padded copy), and
        # y[p] = sum_k prod_k[p - k * n_seg] (at most two blocks overlap: n_seg >= n_h)
        # is written to out[row][p - shift] chunk by chunk; a chunk's output lies before
        # the samples later chunks read, so out may be data itself
        padded = _pad_edges(np.concatenate([xr[: n_edge + 1], xr[-(n_edge + 1):]]), n_edge)
        left, right = padded[:n_edge], padded[len(padded) - n_edge:]
        res = out[row]
        carry = np.zeros(n_h - 1)  # tail of the last block so far
        for b0 in range(0, n_blocks, per):
            b1 = min(b0 + per, n_blocks)
            a, b = b0 * n_seg, min(b1 * n_seg, n_x)
            part = np.concatenate([left[a:b], xr[max(a - n_edge, 0): max(b - n_edge, 0)],
                                   right[max(a - n_edge - n, 0): max(b - n_edge - n, 0)]])
            seg = np.zeros((b1 - b0, n_seg))
            seg.reshape(-1)[: len(part)] = part
            spec = rfft(seg, n=n_fft, axis=-1, workers=-1)  # zero-padded to n_fft
            spec *= h_fft
            prod = irfft(spec, n=n_fft, axis=-1, workers=-1)
            y = prod[:, :n_seg]
            y[0, : n_h - 1] += carry
            y[1:, : n_h - 1] += prod[:-1, n_seg:]
            carry = prod[-1, n_seg:]
            _put(res, y.reshape(-1), a - shift)
        _put(res, carry, n_blocks * n_seg - shift)
    return result


def bandpass(data: np.ndarray, sfreq: float, l_freq: float | None, h_freq: float | None,
             ) -> np.ndarray:
    """Zero-phase FIR band-pass (MNE ``filter_data``: firwin, Hamming, automatic
    transition bands). ``l_freq=None`` gives a low-pass, ``h_freq=None`` a high-pass."""
    from mne.filter import filter_data

    data = _as_float(data)
    nyq = sfreq / 2.0
    if h_freq is not None and h_freq >= nyq:
        raise ValueError(f"band-pass upper edge {h_freq} Hz must be below Nyquist "
                         f"({nyq:g} Hz at {sfreq:g} Hz)")
    if l_freq is not None and h_freq is not None and l_freq >= h_freq:
        raise ValueError(f"band-pass edges must satisfy l_freq < h_freq, got {l_freq}, {h_freq}")
    y = filter_data(data.astype(np.float64), sfreq, l_freq, h_freq, method="fir",
                    phase="zero", fir_design="firwin", pad="reflect_limited", verbose="error")
    return y.astype(data.dtype, copy=False)


def bandpass_by_role(data: np.ndarray, sfreq: float, roles: Sequence[str],
                     bands: dict[str, Sequence[float] | None] | None = None) -> np.ndarray:
    """Band-pass each channel with the edges of its role.

    ``bands`` overrides :data:`BANDPASS_DEFAULTS` per role (``None`` = no filter). An
    upper edge at or above Nyquist is lowered to ``0.45 * sfreq``. ``emg_envelope``
    channels are never filtered (they are envelopes, not waveforms).
    """
    data = _as_float(np.asarray(data))
    if data.shape[0] != len(roles):
        raise ValueError(f"{data.shape[0]} channels but {len(roles)} roles")
    table = dict(BANDPASS_DEFAULTS)
    if bands:
        table.update(bands)
    out = data.copy()
    for role in sorted(set(roles)):
        band = None if role == "emg_envelope" else table.get(role)
        if band is None:
            continue
        lo, hi = band
        if hi is not None and hi >= sfreq / 2:
            hi = 0.45 * sfreq
        idx = [i for i, r in enumerate(roles) if r == role]
        out[idx] = bandpass(data[idx], sfreq, lo, hi)
    return out


def notch(data: np.ndarray, sfreq: float, freqs: float | Sequence[float] = 50.0,
          notch_widths: float | None = None) -> np.ndarray:
    """Remove mains interference at ``freqs`` (and given harmonics) with MNE's FIR notch.

    All frequencies must lie below Nyquist: at 100 Hz a 50-Hz notch is impossible (and
    not needed - resampling to 100 Hz already low-pass filters below 50 Hz), so read the
    recording at a higher ``sfreq`` to notch.
    """
    from mne.filter import notch_filter

    data = _as_float(data)
    freqs_arr = np.atleast_1d(np.asarray(freqs, dtype=float))
    nyq = sfreq / 2.0
    if (freqs_arr >= nyq).any() or (freqs_arr <= 0).any():
        raise ValueError(f"notch frequencies {freqs_arr.tolist()} must be between 0 and "
                         f"Nyquist ({nyq:g} Hz at {sfreq:g} Hz)")
    y = notch_filter(data.astype(np.float64), sfreq, freqs_arr, notch_widths=notch_widths,
                     method="fir", phase="zero", fir_design="firwin", verbose="error")
    return y.astype(data.dtype, copy=False)


# ------------------------------------------------------------------ scaling
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
    data = _as_float(data)
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


# ------------------------------------------------------------------ spectra
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


# ------------------------------------------------------------------ spectrogram
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

    epochs = _as_float(epochs)
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


# ------------------------------------------------------------------ pipeline
#: Default continuous preprocessing: per-modality band-pass, then per-channel z-score.
DEFAULT_CONFIG: dict[str, Any] = {
    "notch": None,
    "bandpass": "default",
    "lowpass": None,
    "normalize": "zscore",
}

#: Named configurations.
PRESETS: dict[str, dict[str, Any]] = {
    "default": DEFAULT_CONFIG,
    "none": {"notch": None, "bandpass": None, "lowpass": None, "normalize": None},
    # MSMAE-CNN: Kaiser-window FIR low-pass, 10 Hz, 60 dB, 100 Hz
    "msmae-cnn": {"notch": None, "bandpass": None,
                  "lowpass": {"cutoff": 10.0, "attenuation_db": 60.0}, "normalize": None},
    # settings of the real band-power feature set in ../shared/data (without ICA)
    "bandpower": {"notch": None,
                  "bandpass": {"eeg": [0.5, 30.0], "eog": [0.5, 15.0], "emg": [10.0, 45.0]},
                  "lowpass": None, "normalize": "zscore"},
}

_STEP_ORDER = ("notch", "bandpass", "lowpass", "normalize")


def resolve_config(config: dict[str, Any] | str | None = None) -> dict[str, Any]:
    """Complete a config (a dict, a preset name or None = default) with defaults.

    Keys (applied in this order): ``notch`` (None, a frequency or a list),
    ``bandpass`` (None, ``"default"`` = :data:`BANDPASS_DEFAULTS`, or ``{role: [lo, hi]
    | None}`` merged over the defaults), ``lowpass`` (None or :func:`kaiser_lowpass`
    keyword arguments), ``normalize`` (None, ``"zscore"`` or ``"robust"``). A key
    ``steps`` with a list of step names sets a different order.
    """
    if config is None:
        config = "default"
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"unknown preprocessing preset {config!r}; "
                             f"choose from {sorted(PRESETS)}")
        config = PRESETS[config]
    unknown = set(config) - set(_STEP_ORDER) - {"steps"}
    if unknown:
        raise ValueError(f"unknown preprocessing option(s) {sorted(unknown)}; "
                         f"expected {list(_STEP_ORDER)} or 'steps'")
    out = {k: config.get(k, DEFAULT_CONFIG[k]) for k in _STEP_ORDER}
    bp = out["bandpass"]
    if bp == "default":
        out["bandpass"] = {k: (list(v) if v else None) for k, v in BANDPASS_DEFAULTS.items()}
    elif isinstance(bp, dict):
        merged = {k: (list(v) if v else None) for k, v in BANDPASS_DEFAULTS.items()}
        merged.update({k: (list(v) if v else None) for k, v in bp.items()})
        out["bandpass"] = merged
    elif bp is not None:
        raise ValueError(f"bandpass must be None, 'default' or a dict role -> [lo, hi], "
                         f"got {bp!r}")
    if out["lowpass"] is True:
        out["lowpass"] = {}
    if isinstance(out["lowpass"], dict):
        lp = {"cutoff": 10.0, "attenuation_db": 60.0, "transition_hz": None}
        lp.update(out["lowpass"])
        out["lowpass"] = lp
    if out["normalize"] not in (None, "zscore", "robust"):
        raise ValueError(f"normalize must be None, 'zscore' or 'robust', got "
                         f"{out['normalize']!r}")
    steps = list(config.get("steps", _STEP_ORDER))
    bad = [s for s in steps if s not in _STEP_ORDER]
    if bad:
        raise ValueError(f"unknown preprocessing step(s) {bad}; expected {list(_STEP_ORDER)}")
    out["steps"] = steps
    return out


def config_hash(config: dict[str, Any] | str | None, extra: dict[str, Any] | None = None,
                length: int = 16) -> str:
    """Stable hex digest of a (resolved) preprocessing config, for cache keys.

    ``extra`` adds other settings that shape the output (sampling rate, channels,
    crop...). The digest includes :data:`PREPROCESSING_VERSION`.
    """
    payload = {"version": PREPROCESSING_VERSION, "config": resolve_config(config),
               "extra": extra or {}}
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


class Pipeline:
    """Continuous preprocessing steps built from a config (see :func:`resolve_config`).

    Calling the pipeline on a :class:`~hypnoscope.io.psg.PSGRecording` returns a filtered
    copy whose ``meta["preprocessing"]`` records the config and its hash; calling
    :meth:`apply` works on a bare array with channel roles.
    """

    def __init__(self, config: dict[str, Any] | str | None = None) -> None:
        self.config = resolve_config(config)
        self.hash = config_hash(self.config)

    @property
    def steps(self) -> list[tuple[str, Callable[[np.ndarray, float, Sequence[str]], np.ndarray]]]:
        """Active steps as ``(name, function(data, sfreq, roles))``."""
        cfg = self.config
        makers = {
            "notch": lambda: None if cfg["notch"] is None else (
                lambda d, fs, roles: notch(d, fs, cfg["notch"])),
            "bandpass": lambda: None if cfg["bandpass"] is None else (
                lambda d, fs, roles: bandpass_by_role(d, fs, roles, cfg["bandpass"])),
            "lowpass": lambda: None if cfg["lowpass"] is None else (
                lambda d, fs, roles: _lowpass_waveforms(d, fs, roles, cfg["lowpass"])),
            "normalize": lambda: None if cfg["normalize"] is None else (
                lambda d, fs, roles: normalize(d, cfg["normalize"])),
        }
        out = []
        for name in cfg["steps"]:
            fn = makers[name]()
            if fn is not None:
                out.append((name, fn))
        return out

    def apply(self, data: np.ndarray, sfreq: float, roles: Sequence[str]) -> np.ndarray:
        """Run the steps on ``(n_channels, n_samples)`` data."""
        out = np.asarray(data)
        for _, fn in self.steps:
            out = fn(out, sfreq, roles)
        return out

    def __call__(self, recording: PSGRecording) -> PSGRecording:
        data = self.apply(recording.data, recording.sfreq, recording.roles)
        meta = dict(recording.meta)
        meta["preprocessing"] = {"config": self.config, "hash": self.hash,
                                 "version": PREPROCESSING_VERSION}
        return recording.copy(data=data.astype(np.float32), meta=meta)

    def __repr__(self) -> str:
        return f"<Pipeline {[n for n, _ in self.steps]} hash={self.hash}>"


def _lowpass_waveforms(data: np.ndarray, sfreq: float, roles: Sequence[str],
                       params: dict[str, Any]) -> np.ndarray:
    out = _as_float(np.asarray(data)).copy()
    idx = [i for i, r in enumerate(roles) if r != "emg_envelope"]
    if idx:
        out[idx] = kaiser_lowpass(out[idx], sfreq, **params)
    return out


def preprocess(recording: PSGRecording, config: dict[str, Any] | str | None = None,
               ) -> PSGRecording:
    """Apply the continuous steps of ``config`` (see :func:`resolve_config`) to a
    recording; returns a new :class:`~hypnoscope.io.psg.PSGRecording`."""
    return Pipeline(config)(recording)
