"""Zero-phase FIR filtering: one engine, its designs and the role band tables.

Its parts:

- :func:`fir_filter` - applies linear-phase taps as ``mne.filter.filter_data`` does
  (same padding, FFT length and sums: the same numbers, bit for bit), the engine of
  every MNE-style filter here: :func:`bandpass`, :func:`bandpass_by_role` and
  :func:`notch`;
- :func:`design_fir` / :func:`design_window` - MNE's and SciPy's designs, those of the
  band-power pipeline shipped in ``data/designs.npz`` (:data:`DESIGNS_FILE`);
- :func:`kaiser_lowpass` / :func:`kaiser_highpass` - the MSMAE-CNN low-pass and its
  baseline-wander high-pass (Kaiser window designs, :func:`kaiser_lowpass_design`,
  :func:`kaiser_highpass_design`), applied by :func:`apply_fir_zero_phase` (direct
  convolution, the designed magnitude response; the MSMAE-CNN models were trained on
  its output, so it keeps its own application);
- :data:`ROLE_BANDS` - the two band-pass settings per channel role (``"default"``: the
  continuous preprocessing of the signal models; ``"bandpower"``: the band-power
  pipeline) and :func:`upper_edge`, the one rule for an upper edge at or above Nyquist.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.utils.arrays import as_float

#: Band-pass edges (Hz) per channel role, two settings (None = leave unfiltered):
#: ``"default"``, the continuous preprocessing of the signal models (the ``"default"``
#: preset of :mod:`hypnoscope.signal.preprocessing`), and ``"bandpower"``, the real
#: band-power set's filters (:mod:`hypnoscope.signal.bandpower`, the preset
#: ``"bandpower"``). An EMG envelope (``"emg_envelope"``) is never band-passed.
ROLE_BANDS: dict[str, dict[str, tuple[float, float] | None]] = {
    "default": {"eeg": (0.3, 35.0), "eog": (0.3, 15.0), "emg": (10.0, 45.0),
                "emg_envelope": None},
    "bandpower": {"eeg": (0.5, 30.0), "eog": (0.5, 15.0), "emg": (10.0, 45.0)},
}
#: Default band-pass edges (Hz) per channel role (``ROLE_BANDS["default"]``).
BANDPASS_DEFAULTS = ROLE_BANDS["default"]


def upper_edge(h_freq: float | None, sfreq: float) -> float | None:
    """The upper band edge used at ``sfreq``: ``h_freq``, or ``0.45 * sfreq`` when it is
    at or above Nyquist (the one Nyquist rule of the role band-passes)."""
    if h_freq is not None and h_freq >= sfreq / 2.0:
        return 0.45 * sfreq
    return h_freq


# Designs of the band-power pipeline, shipped with the package (``data/designs.npz``,
# written by ``scripts/make_designs.py`` and checked against MNE and SciPy by
# ``tests/test_designs.py``): a fresh staging process then never imports
# ``scipy.signal`` (a large part of its start-up time), and the features no longer depend on
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

    data = as_float(data)
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


def kaiser_highpass_design(sfreq: float, cutoff: float = 0.5, attenuation_db: float = 60.0,
                           transition_hz: float | None = None) -> np.ndarray:
    """Taps of a linear-phase FIR high-pass designed with the Kaiser window method.

    The baseline-wander removal of the MSMAE-CNN preprocessing. ``transition_hz``
    (default: the cut-off, e.g. 0.25-0.75 Hz at 0.5 Hz) is centred on ``cutoff``; below
    ``cutoff - transition_hz/2`` the attenuation is at least ``attenuation_db``. The
    number of taps is odd (type I filter, as a high-pass requires).
    """
    from scipy.signal import firwin, kaiserord

    nyq = sfreq / 2.0
    if not 0 < cutoff < nyq:
        raise ValueError(f"high-pass cutoff must be between 0 and Nyquist ({nyq:g} Hz), "
                         f"got {cutoff}")
    if transition_hz is None:
        transition_hz = min(cutoff, 2 * (nyq - cutoff))
    if not 0 < transition_hz <= 2 * cutoff or cutoff + transition_hz / 2 > nyq + 1e-9:
        raise ValueError(f"high-pass transition_hz={transition_hz} must be positive, at most "
                         f"twice the cutoff ({cutoff} Hz) and keep the pass band below "
                         f"Nyquist ({nyq:g} Hz)")
    if attenuation_db <= 0:
        raise ValueError(f"attenuation_db must be positive, got {attenuation_db}")
    numtaps, beta = kaiserord(attenuation_db, transition_hz / nyq)
    numtaps += 1 - numtaps % 2
    return firwin(numtaps, cutoff, window=("kaiser", beta), pass_zero=False, fs=sfreq)


def kaiser_highpass(data: np.ndarray, sfreq: float, cutoff: float = 0.5,
                    attenuation_db: float = 60.0, transition_hz: float | None = None,
                    axis: int = -1) -> np.ndarray:
    """Zero-phase FIR high-pass designed with the Kaiser window method: removes a DC
    offset and the baseline wander below ``cutoff`` (:func:`kaiser_highpass_design`
    applied by :func:`apply_fir_zero_phase`)."""
    taps = kaiser_highpass_design(sfreq, cutoff, attenuation_db, transition_hz)
    return apply_fir_zero_phase(data, taps, axis=axis)


def bandpass(data: np.ndarray, sfreq: float, l_freq: float | None, h_freq: float | None,
             ) -> np.ndarray:
    """Zero-phase FIR band-pass as MNE's ``filter_data`` (firwin, Hamming, automatic
    transition bands; :func:`design_fir` taps applied by :func:`fir_filter`, the same
    numbers). ``l_freq=None`` gives a low-pass, ``h_freq=None`` a high-pass."""
    data = as_float(data)
    nyq = sfreq / 2.0
    if h_freq is not None and h_freq >= nyq:
        raise ValueError(f"band-pass upper edge {h_freq} Hz must be below Nyquist "
                         f"({nyq:g} Hz at {sfreq:g} Hz)")
    if l_freq is not None and h_freq is not None and l_freq >= h_freq:
        raise ValueError(f"band-pass edges must satisfy l_freq < h_freq, got {l_freq}, {h_freq}")
    if l_freq is None and h_freq is None:
        return data.copy()
    y = fir_filter(data, design_fir(sfreq, l_freq, h_freq))
    return y.astype(data.dtype, copy=False)


def bandpass_by_role(data: np.ndarray, sfreq: float, roles: Sequence[str],
                     bands: dict[str, Sequence[float] | None] | None = None) -> np.ndarray:
    """Band-pass each channel with the edges of its role.

    ``bands`` overrides :data:`BANDPASS_DEFAULTS` per role (``None`` = no filter). An
    upper edge at or above Nyquist is lowered by :func:`upper_edge`. ``emg_envelope``
    channels are never filtered (they are envelopes, not waveforms).
    """
    data = as_float(np.asarray(data))
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
        lo, hi = band[0], upper_edge(band[1], sfreq)
        idx = [i for i, r in enumerate(roles) if r == role]
        out[idx] = bandpass(data[idx], sfreq, lo, hi)
    return out


def notch_taps(sfreq: float, freqs: float | Sequence[float] = 50.0,
               notch_widths: float | Sequence[float] | None = None, *,
               shipped: bool = True) -> np.ndarray:
    """FIR taps of ``mne.filter.notch_filter(x, sfreq, freqs, notch_widths)`` (method
    ``"fir"``): a band-stop ``f +- (w/2 + 0.5)`` per frequency, widths ``f / 200`` by
    default, transition bands 0.5 Hz (half MNE's 1-Hz ``trans_bandwidth``)."""
    freqs_arr = np.atleast_1d(np.asarray(freqs, dtype=float))
    if notch_widths is None:
        widths = freqs_arr / 200.0
    else:
        widths = np.atleast_1d(np.asarray(notch_widths, dtype=float))
        if np.any(widths < 0):
            raise ValueError("notch_widths must be >= 0")
        if len(widths) == 1:
            widths = widths[0] * np.ones_like(freqs_arr)
        elif len(widths) != len(freqs_arr):
            raise ValueError("notch_widths must be None, scalar, or the same length as freqs")
    tb_2 = 0.5  # half of MNE's 1-Hz transition band
    return design_fir(sfreq, [f + w / 2.0 + tb_2 for f, w in zip(freqs_arr, widths, strict=True)],
                      [f - w / 2.0 - tb_2 for f, w in zip(freqs_arr, widths, strict=True)],
                      l_trans_bandwidth=tb_2, h_trans_bandwidth=tb_2, shipped=shipped)


def notch(data: np.ndarray, sfreq: float, freqs: float | Sequence[float] = 50.0,
          notch_widths: float | Sequence[float] | None = None) -> np.ndarray:
    """Remove mains interference at ``freqs`` (and given harmonics) with MNE's FIR notch
    (:func:`notch_taps` applied by :func:`fir_filter`).

    All frequencies must lie below Nyquist: at 100 Hz a 50-Hz notch is impossible (and
    not needed - resampling to 100 Hz already low-pass filters below 50 Hz), so read the
    recording at a higher ``sfreq`` to notch.
    """
    data = as_float(data)
    freqs_arr = np.atleast_1d(np.asarray(freqs, dtype=float))
    nyq = sfreq / 2.0
    if (freqs_arr >= nyq).any() or (freqs_arr <= 0).any():
        raise ValueError(f"notch frequencies {freqs_arr.tolist()} must be between 0 and "
                         f"Nyquist ({nyq:g} Hz at {sfreq:g} Hz)")
    y = fir_filter(data, notch_taps(sfreq, freqs_arr, notch_widths))
    return y.astype(data.dtype, copy=False)
