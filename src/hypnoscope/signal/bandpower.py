"""Per-epoch band-power features computed exactly as the real Sleep-EDF band-power set.

The real feature set in ``../shared/data/sleepedf_bandpower`` (and the shipped
``default`` model trained on it) was computed with the settings recorded in its JSON
sidecars. This module reproduces that chain on any recording:

1. 100 Hz signals; EEG band-pass 0.5-30 Hz, EOG 0.5-15 Hz (MNE zero-phase FIR, the
   defaults of :meth:`mne.io.Raw.filter`); the 50 Hz notch is skipped at 100 Hz because
   it is not below Nyquist (as in the original pipeline).
2. ICA on the EEG channels (MNE, ``fastica``, ``random_state=42``, ``max_iter=500``,
   as many components as EEG channels); components whose correlation with the EOG
   channel (:meth:`mne.preprocessing.ICA.find_bads_eog`) exceeds 0.8 are removed from the
   EEG; EOG is left unchanged.
3. Optional crop to 30 min of wake before the first and after the last sleep epoch
   (when a hypnogram is given).
4. Per-recording z-score of each channel over the (cropped) window (std floored at
   1e-8 V).
5. Welch PSD per 30-s epoch (Hamming window of 400 samples, 200 overlap, nfft 400,
   constant detrend, density scaling, median averaging); band power is the trapezoidal
   integral over the closed band ``[lo, hi]``; features are ``log(power + 1e-10)`` and
   power relative to the sum of the five bands.

Output: ``(n_epochs, n_channels, 10)`` with channels ``[EEG Fpz-Cz, EEG Pz-Oz, EOG
horizontal]`` and features ``[log_delta..log_beta, rel_delta..rel_beta]``.

Speed
-----
Because the z-score is a per-channel affine map and Welch removes each segment's mean,
the band powers of the z-scored signal are the band powers of the unnormalised signal
divided by the window variance. :class:`BandPowerNight` therefore computes the spectra
once and derives features for any normalisation window cheaply (used by
:func:`hypnoscope.staging.pipeline.stage` to z-score over the detected sleep period).
The ICA unmixing matrix is fitted on a decimated copy of long recordings
(``ica_decim="auto"``: at most ``ICA_FIT_MAX_SAMPLES`` samples, 20 min worth spread
evenly over the night). FastICA's cost is iterations x samples and it may run all 500
iterations when the sources are close to Gaussian (17 s on 460k samples here), so the
cap bounds the worst case to ~4 s while a 2 x 2 unmixing matrix is estimated well from
120k samples. The components are scored against the EOG (1-10 Hz band-passed
correlation) on every 2nd sample (:data:`ICA_SCORE_DECIM`; exact up to ~1e-5 because the
1-10 Hz band is not aliased at 50 Hz) and removed from every sample. Pass
``ica_decim=1`` for the undecimated fit of the original.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hypnoscope.signal.features import BANDS  # (name, low Hz, high Hz), closed intervals
from hypnoscope.stages import UNSCORED

#: Feature names along the last axis.
FEATURE_NAMES: tuple[str, ...] = tuple(
    [f"log_{b[0]}" for b in BANDS] + [f"rel_{b[0]}" for b in BANDS])
#: Channel layout of the real band-power set (and of the default model's input).
CHANNEL_LAYOUT: tuple[str, ...] = ("EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal")
#: Roles of :data:`CHANNEL_LAYOUT`.
CHANNEL_ROLES: tuple[str, ...] = ("eeg", "eeg", "eog")

SFREQ = 100.0
EPOCH_SEC = 30.0
EPS = 1e-10
ZSCORE_EPS_V = 1e-8
WELCH = {"window": "hamming", "nperseg": 400, "noverlap": 200, "nfft": 400,
         "detrend": "constant", "scaling": "density", "average": "median"}
FILTERS = {"eeg": (0.5, 30.0), "eog": (0.5, 15.0), "notch": (50.0,)}
ICA = {"method": "fastica", "random_state": 42, "max_iter": 500, "eog_threshold": 0.8,
       "eog_measure": "correlation"}
WAKE_CROP_SEC = 1800.0
#: Epoch rejection (peak-to-peak, volts) used to mark training labels as unscored.
AMPLITUDE_REJECT_V = {"eeg": 500e-6, "eog": 1000e-6, "emg": 1000e-6}
#: Epochs per Welch call (bounds memory).
WELCH_CHUNK = 64
#: Longest ICA fit with ``ica_decim="auto"`` (samples).
ICA_FIT_MAX_SAMPLES = 120_000
#: Decimation of the signals on which ICA components are scored against the EOG
#: (applied only when the decimated rate stays >= 48 Hz; see remove_eye_components).
ICA_SCORE_DECIM = 2

#: All settings, in the vocabulary of the band-power set's JSON sidecars.
SETTINGS: dict[str, Any] = {
    "sfreq": SFREQ, "epoch_duration_sec": EPOCH_SEC, "bands": [list(b) for b in BANDS],
    "feature_names": list(FEATURE_NAMES), "channel_names": list(CHANNEL_LAYOUT),
    "eps": EPS, "welch": dict(WELCH), "filter": {"eeg": list(FILTERS["eeg"]),
                                                  "eog": list(FILTERS["eog"]),
                                                  "notch_freqs": list(FILTERS["notch"])},
    "ica": dict(ICA), "normalize": {"method": "zscore", "eps": ZSCORE_EPS_V},
    "wake_crop": {"buffer_sec": WAKE_CROP_SEC},
    "amplitude_reject_peak_to_peak_v": dict(AMPLITUDE_REJECT_V),
}


# ----------------------------------------------------------------- spectral part
def welch_band_powers(epochs: np.ndarray, sfreq: float = SFREQ) -> np.ndarray:
    """Absolute band power of each epoch and channel.

    Parameters
    ----------
    epochs : ndarray, shape (n_epochs, n_channels, n_times)
        Epoched signals (any unit; powers are in unit**2).
    sfreq : float
        Sampling rate; the Welch settings assume 100 Hz (400 samples = 4 s).

    Returns
    -------
    ndarray, shape (n_epochs, n_channels, 5)
        Trapezoidal integral of the Welch PSD over each closed band.
    """
    epochs = np.asarray(epochs, dtype=np.float64)
    if epochs.ndim != 3:
        raise ValueError(f"epochs must be (n_epochs, n_channels, n_times), got {epochs.shape}")
    if epochs.shape[-1] < WELCH["nperseg"]:
        raise ValueError(f"epochs have {epochs.shape[-1]} samples, fewer than the Welch "
                         f"window ({WELCH['nperseg']})")
    out = np.empty(epochs.shape[:2] + (len(BANDS),), dtype=np.float64)
    from scipy import fft as sfft

    freqs = sfft.rfftfreq(WELCH["nfft"], 1.0 / sfreq)
    freqs = freqs[: int(np.sum(freqs <= max(hi for _, _, hi in BANDS)))]
    # chunks of epochs bound the memory of the segment and FFT buffers (24 h: ~40 MB)
    for start in range(0, len(epochs), WELCH_CHUNK):
        chunk = epochs[start:start + WELCH_CHUNK]
        psd = welch_psd(chunk, sfreq, len(freqs))
        psd = np.maximum(np.nan_to_num(psd, nan=0.0, posinf=0.0, neginf=0.0), 0.0)
        for i, (_name, lo, hi) in enumerate(BANDS):
            mask = (freqs >= lo) & (freqs <= hi)
            out[start:start + WELCH_CHUNK, :, i] = np.trapezoid(psd[..., mask], freqs[mask],
                                                                axis=-1)
    return np.maximum(out, 0.0)


def welch_psd(x: np.ndarray, sfreq: float, n_freqs: int | None = None) -> np.ndarray:
    """``scipy.signal.welch(x, fs=sfreq, axis=-1, **WELCH)[1][..., :n_freqs]``
    (:func:`hypnoscope.signal.preprocessing.welch`: SciPy's values, the median over the
    segments only for the ``n_freqs`` lowest frequencies, those the bands use)."""
    from hypnoscope.signal.preprocessing import welch

    kw = {k: v for k, v in WELCH.items() if k not in ("detrend", "scaling")}
    if WELCH["detrend"] != "constant" or WELCH["scaling"] != "density":  # pragma: no cover
        raise RuntimeError("WELCH must keep SciPy's defaults detrend='constant', "
                           "scaling='density'")
    return welch(x, sfreq, n_freqs=n_freqs, **kw)[1]


def assemble_features(band_powers: np.ndarray, eps: float = EPS) -> np.ndarray:
    """``[log(power + eps) per band, power / sum of bands]`` along the last axis."""
    bp = np.asarray(band_powers, dtype=np.float64)
    total = bp.sum(axis=-1, keepdims=True)
    rel = np.divide(bp, total, out=np.zeros_like(bp), where=total > eps)
    return np.concatenate([np.log(bp + eps), rel], axis=-1)


def jitter_band_powers(features: np.ndarray, rng: np.random.Generator,
                       gain_sd: float = 0.5, tilt_sd: float = 0.25,
                       eps: float = EPS) -> np.ndarray:
    """Band-power features of one night as another person or amplifier might give them.

    Every channel gets one random gain (``log power + g``, ``g ~ N(0, gain_sd)``: the
    amplitude of the whole night scaled by ``exp(g / 2)``) and one random spectral tilt
    (``log power + t * z_b``, ``t ~ N(0, tilt_sd)``, ``z_b`` the centred and scaled log
    centre frequency of band ``b``: e.g. slow waves weaker against fast activity, as
    with age or a thicker skull); relative powers are recomputed from the jittered
    absolute powers. An augmentation for feature models (``augment`` option of
    :class:`~hypnoscope.models.feature_classifiers.FeatureStagingModel`).

    Parameters
    ----------
    features : ndarray (n_epochs, n_channels, 10)
        ``[log_delta..log_beta, rel_delta..rel_beta]`` (:data:`FEATURE_NAMES`).
    rng : numpy.random.Generator
    gain_sd, tilt_sd : float
        Standard deviations of the per-channel gain and tilt (natural-log units).

    Returns
    -------
    ndarray, same shape, float32
    """
    x = np.asarray(features, dtype=np.float64)
    k = len(BANDS)
    if x.ndim != 3 or x.shape[-1] != 2 * k:
        raise ValueError(f"band-power features must have shape (n_epochs, n_channels, "
                         f"{2 * k}) ({', '.join(FEATURE_NAMES)}); got {x.shape}")
    centre = np.log([(lo + hi) / 2.0 for _, lo, hi in BANDS])
    z = (centre - centre.mean()) / centre.std()
    n_ch = x.shape[1]
    shift = (rng.normal(0.0, gain_sd, (n_ch, 1))
             + rng.normal(0.0, tilt_sd, (n_ch, 1)) * z[None, :])
    power = np.exp(x[..., :k] + shift[None]) - eps
    return assemble_features(np.maximum(power, 0.0), eps).astype(np.float32)


def bandpower_features(epochs: np.ndarray, sfreq: float = SFREQ) -> np.ndarray:
    """Band-power features ``(n_epochs, n_channels, 10)`` of already-normalised epochs."""
    return assemble_features(welch_band_powers(epochs, sfreq)).astype(np.float32)


# ------------------------------------------------------------- signal part
def filter_signals(data: np.ndarray, sfreq: float, roles: list[str]) -> np.ndarray:
    """Band-pass EEG 0.5-30 Hz and EOG 0.5-15 Hz (MNE FIR, zero phase); returns a copy.

    The 50 Hz notch is applied only where 50 Hz is below Nyquist (not at 100 Hz). Other
    roles are returned unchanged.
    """
    out = np.array(data, dtype=np.float64, copy=True)
    _filter_inplace(out, sfreq, roles)
    return out


def band_filter_taps(role: str, sfreq: float, shipped: bool = True) -> np.ndarray:
    """FIR taps of the ``role`` band-pass (:data:`FILTERS`; MNE's default design, upper
    edge lowered to Nyquist - 0.5 Hz where needed)."""
    from hypnoscope.signal.preprocessing import design_fir

    lo, hi = FILTERS[role]
    nyq = sfreq / 2.0
    return design_fir(sfreq, lo, hi if hi < nyq else nyq - 0.5, shipped=shipped)


def notch_filter_taps(sfreq: float, shipped: bool = True) -> np.ndarray | None:
    """FIR taps of ``mne.filter.notch_filter(x, sfreq, freqs)`` for the notch frequencies
    of :data:`FILTERS` below Nyquist (widths ``f / 200``, 1-Hz transitions), or None."""
    from hypnoscope.signal.preprocessing import design_fir

    freqs = [f for f in FILTERS["notch"] if 0 < f < sfreq / 2.0]
    if not freqs:
        return None
    tb_2 = 0.5  # half of MNE's 1-Hz transition band
    return design_fir(sfreq, [f + f / 200.0 / 2.0 + tb_2 for f in freqs],
                      [f - f / 200.0 / 2.0 - tb_2 for f in freqs],
                      l_trans_bandwidth=tb_2, h_trans_bandwidth=tb_2, shipped=shipped)


#: ``ICA.find_bads_eog``'s 1-10 Hz band-pass of sources and EOG (MNE's settings).
SCORE_FILTER = {"l_freq": 1.0, "h_freq": 10.0, "phase": "zero-double",
                "filter_length": "10s", "fir_window": "hann", "l_trans_bandwidth": 0.5,
                "h_trans_bandwidth": 0.5, "fir_design": "firwin2"}


def score_filter_taps(sfreq: float, shipped: bool = True) -> np.ndarray:
    """FIR taps (one pass) of the 1-10 Hz filter of :data:`SCORE_FILTER`."""
    from hypnoscope.signal.preprocessing import design_fir

    kw = dict(SCORE_FILTER)
    return design_fir(sfreq, kw.pop("l_freq"), kw.pop("h_freq"), shipped=shipped, **kw)


def pipeline_designs(shipped: bool = True) -> dict[str, np.ndarray]:
    """Every filter and window design that staging a recording at :data:`SFREQ` uses
    (the band-power pipeline's, and the Welch window of the EMG-as-EOG check in
    :func:`hypnoscope.io.psg.emg_spectrum_shares`): what ``scripts/make_designs.py`` ships."""
    from hypnoscope.io.psg import EMG_CHECK_NPERSEG_SEC
    from hypnoscope.signal.preprocessing import design_window

    out = {"eeg": band_filter_taps("eeg", SFREQ, shipped),
           "eog": band_filter_taps("eog", SFREQ, shipped),
           "score": score_filter_taps(SFREQ / ICA_SCORE_DECIM, shipped),
           "welch_window": design_window(WELCH["window"], WELCH["nperseg"],
                                         shipped=shipped),
           "emg_check_window": design_window("hann", int(EMG_CHECK_NPERSEG_SEC * SFREQ),
                                             shipped=shipped)}
    notch = notch_filter_taps(SFREQ, shipped)
    if notch is not None:  # pragma: no cover - no 50-Hz notch below Nyquist at 100 Hz
        out["notch"] = notch
    return out


def _filter_inplace(out: np.ndarray, sfreq: float, roles: list[str]) -> None:
    """MNE's ``notch_filter`` and ``filter_data`` with the shipped designs
    (:func:`hypnoscope.signal.preprocessing.fir_filter`: the same numbers, bit for bit)."""
    from hypnoscope.signal.preprocessing import fir_filter

    notch = notch_filter_taps(sfreq)
    for role in ("eeg", "eog"):
        idx = [i for i, r in enumerate(roles) if r == role]
        if not idx:
            continue
        if notch is not None:
            out[idx] = fir_filter(out[idx], notch)
        taps = band_filter_taps(role, sfreq)
        for i in idx:  # in place, one channel at a time: no copy of the recording
            fir_filter(out[i], taps, out=out[i])


# ------------------------------------------------------- ICA without scikit-learn
# MNE's ICA(method="fastica") with scikit-learn's FastICA, step for step in NumPy/SciPy:
# the same operations in the same order on arrays of the same layout (so the same
# floating-point results), without importing scikit-learn or MNE's ICA machinery (which
# also pulls in numba); about 1 s less per fresh process. `engine="mne"` of
# remove_eye_components runs the original, and tests/test_bandpower.py checks that both
# give the same signals.
def _svd(a: np.ndarray):
    """``mne.fixes._safe_svd``: SciPy's SVD, GESVD if GESDD does not converge."""
    from scipy import linalg

    try:
        return linalg.svd(a, full_matrices=False)
    except np.linalg.LinAlgError:  # pragma: no cover - MKL's GESDD bug
        return linalg.svd(a, full_matrices=False, lapack_driver="gesvd")


def _pinv(a: np.ndarray) -> np.ndarray:
    """``mne.utils.pinv``."""
    u, s, vh = _svd(a)
    rtol = max(vh.shape + u.shape) * np.finfo(u.dtype).eps
    rank = np.sum(s > np.max(s) * rtol)
    u = u[:, :rank]
    u /= s[:rank]
    return (u @ vh[:rank]).conj().T


def _sym_decorrelation(w: np.ndarray) -> np.ndarray:
    """``sklearn.decomposition._fastica._sym_decorrelation``."""
    from scipy import linalg

    s, u = linalg.eigh(np.dot(w, w.T))
    s = np.clip(s, a_min=np.finfo(w.dtype).tiny, a_max=None)
    return np.linalg.multi_dot([u * (1.0 / np.sqrt(s)), u.T, w])


def _fastica_parallel(x: np.ndarray, max_iter: int, random_state: int,
                      tol: float = 1e-4) -> tuple[np.ndarray, int]:
    """scikit-learn's ``FastICA(whiten=False, algorithm="parallel", fun="logcosh")``
    fitted on ``x`` (n_samples, n_components): its ``components_`` and ``n_iter_``."""
    xt = x.T
    n = xt.shape[0]
    rng = np.random.mtrand.RandomState(random_state)  # mne.utils.check_random_state
    w = _sym_decorrelation(np.asarray(rng.normal(size=(n, n)), dtype=xt.dtype))
    p_ = float(xt.shape[1])
    ii = 0
    for ii in range(max_iter):  # noqa: B007 - the count is returned
        gwtx = np.dot(w, xt)
        np.tanh(gwtx, gwtx)  # logcosh, alpha = 1: x *= 1 is exact
        g_wtx = np.empty(gwtx.shape[0], dtype=gwtx.dtype)
        for i, gx_i in enumerate(gwtx):
            g_wtx[i] = (1.0 * (1 - gx_i**2)).mean()
        w1 = _sym_decorrelation(np.dot(gwtx, xt.T) / p_ - g_wtx[:, np.newaxis] * w)
        lim = max(abs(abs(np.einsum("ij,ij->i", w1, w)) - 1))
        w = w1
        if lim < tol:
            break
    return w, ii + 1


@dataclass
class _EEGICA:
    """A fitted EEG ICA (the state of ``mne.preprocessing.ICA`` that is used here)."""

    pre_whitener: np.ndarray  # (n, 1)
    pca_mean: np.ndarray
    pca_components: np.ndarray
    unmixing: np.ndarray
    mixing: np.ndarray
    n_iter: int

    def sources(self, data: np.ndarray) -> np.ndarray:
        """``ICA._transform``: sources of EEG ``data`` (n, n_samples); ``data`` is
        overwritten."""
        data /= self.pre_whitener
        data -= self.pca_mean[:, None]
        return np.dot(np.dot(self.unmixing, self.pca_components[: len(self.unmixing)]), data)

    def remove(self, data: np.ndarray, exclude: list[int]) -> np.ndarray:
        """``ICA._pick_sources``: ``data`` (n, n_samples) without the components
        ``exclude``; ``data`` is overwritten."""
        k = len(self.unmixing)
        data /= self.pre_whitener
        data -= self.pca_mean[:, None]
        keep = np.setdiff1d(np.arange(k), exclude)
        n_pca = self.pca_components.shape[0]
        pca_components = self.pca_components[:n_pca]
        unmixing = np.eye(n_pca)
        unmixing[:k, :k] = self.unmixing
        unmixing = np.dot(unmixing, pca_components)
        mixing = np.eye(n_pca)
        mixing[:k, :k] = self.mixing
        mixing = pca_components.T @ mixing
        keep = np.concatenate((keep, np.arange(k, n_pca)))
        data = np.dot(np.dot(mixing[:, keep], unmixing[keep, :]), data)
        data += self.pca_mean[:, None]
        data *= self.pre_whitener
        return data


def _fit_eeg_ica(data: np.ndarray, random_state: int, max_iter: int) -> _EEGICA:
    """``ICA(n_components=n, method="fastica").fit(raw)`` on EEG ``data`` (n,
    n_samples) of one channel type (overwritten), including MNE's sort of the
    components by explained variance."""
    fit_data = data.copy()  # ICA._fit_raw's get_data copy, kept for the variance
    pre_whitener = np.empty([len(data), 1])
    pre_whitener[np.arange(len(data))] = np.std(data[np.arange(len(data))])
    data /= pre_whitener
    # mne.utils._PCA(n_components=None, whiten=True).fit_transform(data.T)
    x = data.T.copy()
    mean = np.mean(x, axis=0)
    x -= mean
    u, s, v = _svd(x)
    max_abs_cols = np.argmax(np.abs(u), axis=0)  # svd_flip, u-based
    signs = np.sign(u[max_abs_cols, np.arange(u.shape[1])])
    u *= signs
    v *= signs[:, np.newaxis]
    explained_variance = (s**2) / (x.shape[0] - 1)
    n_comp = min(x.shape)
    u = u[:, :n_comp]
    u *= math.sqrt(x.shape[0] - 1)
    k = len(data)
    w, n_iter = _fastica_parallel(u[:, slice(0, k)], max_iter, random_state)
    norms = np.sqrt(explained_variance[:k])
    norms[norms == 0] = 1.0
    w /= norms
    ica = _EEGICA(pre_whitener, mean, v, w, _pinv(w), n_iter)
    # _ica_explained_variance + _sort_components
    src = ica.sources(fit_data)
    var = (np.sum(ica.mixing**2, axis=0) * np.sum(src**2, axis=1)
           / (src.shape[0] * src.shape[1] - 1))
    order = var.argsort()[::-1]
    ica.mixing = ica.mixing[:, order]
    ica.unmixing = ica.unmixing[order, :]
    return ica


def _eog_scores(ica: _EEGICA, eeg: np.ndarray, eog: np.ndarray,
                sfreq: float) -> np.ndarray:
    """``ICA.find_bads_eog`` scores: Pearson correlation of each source with the EOG,
    both band-passed to 1-10 Hz as MNE does (``eeg`` and ``eog`` are overwritten)."""
    from hypnoscope.signal.preprocessing import fir_filter

    taps = score_filter_taps(sfreq)
    sources = ica.sources(eeg)
    fir_filter(sources, taps, phase=SCORE_FILTER["phase"], out=sources)
    target = fir_filter(eog, taps, phase=SCORE_FILTER["phase"], out=eog)

    # Pearson's r as scipy.stats.pearsonr computes it (the same steps, hence the same
    # numbers as MNE's scores) without importing scipy.stats (~0.3 s), in place (``x`` is
    # overwritten; one temporary the size of ``x``)
    def centred_unit(x: np.ndarray) -> np.ndarray:
        x -= x.mean(axis=-1, keepdims=True)
        xmax = np.maximum(x.max(axis=-1, keepdims=True), -x.min(axis=-1, keepdims=True))
        t = x / xmax
        t *= t  # np.linalg.norm(x / xmax): the square root of the sum of the squares
        norm = xmax * np.sqrt(np.add.reduce(t, axis=-1, keepdims=True))
        return np.divide(x, norm, out=t)

    with np.errstate(invalid="ignore", divide="ignore"):  # a flat signal: NaN, as SciPy
        r = np.vecdot(centred_unit(sources), centred_unit(target))
    return np.clip(r, -1.0, 1.0)


def remove_eye_components(data: np.ndarray, sfreq: float, ch_names: list[str],
                          roles: list[str], ica_decim: int | str = "auto",
                          copy: bool = True, engine: str = "numpy",
                          ) -> tuple[np.ndarray, dict[str, Any]]:
    """ICA on the EEG channels; remove components correlated (> 0.8) with the EOG.

    Parameters
    ----------
    data : ndarray (n_channels, n_samples)
        Filtered signals in volts.
    ica_decim : int or "auto"
        Decimation of the samples used to *fit* the unmixing matrix ("auto": at most
        :data:`ICA_FIT_MAX_SAMPLES` samples).
    copy : bool
        Work on a copy (default) or clean ``data`` in place.
    engine : {"numpy", "mne"}
        ``"numpy"`` (default): MNE's fastica ICA and ``find_bads_eog`` computed step for
        step in NumPy/SciPy (no scikit-learn import); ``"mne"``: with
        :class:`mne.preprocessing.ICA` itself. Both give the same signals.

    Returns
    -------
    cleaned : ndarray
        Same shape; only EEG rows change.
    info : dict
        What ICA did (``ran``, ``excluded_components``, ``eog_scores``, ``decim``).
    """
    eeg = [i for i, r in enumerate(roles) if r == "eeg"]
    eog = [i for i, r in enumerate(roles) if r == "eog"]
    info: dict[str, Any] = {"ran": False, "excluded_components": [], "eog_scores": [],
                            "decim": None, "skipped_reason": None}
    if len(eeg) < 2:
        info["skipped_reason"] = f"fewer than 2 EEG channels (have {len(eeg)})"
        return data, info
    if not eog:
        # without an EOG channel no component can be flagged, so ICA is the identity
        info["skipped_reason"] = "no EOG channel"
        return data, info
    n = data.shape[1]
    decim = (max(1, math.ceil(n / ICA_FIT_MAX_SAMPLES)) if ica_decim == "auto"
             else int(ica_decim))
    if engine not in ("numpy", "mne"):
        raise ValueError(f"engine must be 'numpy' or 'mne', got {engine!r}")
    picks = eeg + [eog[0]]
    sdec = ICA_SCORE_DECIM if sfreq / ICA_SCORE_DECIM >= 48.0 else 1
    if engine == "numpy":
        work = np.array(data, dtype=np.float64, copy=True) if copy else data
        sel = work if picks == list(range(len(work))) else work[picks]
        k = len(eeg)
        # copies, as MNE's get_data makes them (the steps below work in place)
        ica = _fit_eeg_ica(np.array(sel[:k, ::decim]), ICA["random_state"], ICA["max_iter"])
        scores = _eog_scores(ica, np.array(sel[:k, ::sdec]), np.array(sel[k, ::sdec]),
                             sfreq / sdec)
        bad = np.where(abs(scores) > ICA["eog_threshold"])[0]
        bads = [int(b) for b in bad[np.abs(scores[bad]).argsort()[::-1]]]
        info.update(ran=True, decim=decim, score_decim=sdec, excluded_components=bads,
                    eog_scores=[float(x) for x in np.ravel(scores)], n_iter=ica.n_iter)
        if bads:  # sel[:k] is work's (or a copy's) EEG, overwritten right after
            work[eeg] = ica.remove(sel[:k], bads)
        return work, info
    import mne

    names = [f"{ch_names[i]}#{k}" for k, i in enumerate(picks)]  # unique labels
    minfo = mne.create_info(names, sfreq, ["eeg"] * len(eeg) + ["eog"], verbose="ERROR")
    work = np.array(data, dtype=np.float64, copy=True) if copy else data
    sel = work if picks == list(range(len(work))) else work[picks]
    raw = mne.io.RawArray(sel, minfo, copy="auto", verbose="ERROR")  # shares float64 data
    ica = mne.preprocessing.ICA(n_components=len(eeg), method=ICA["method"],
                                random_state=ICA["random_state"], max_iter=ICA["max_iter"],
                                verbose="ERROR")
    # fit on a decimated copy: ICA.fit(decim=...) would still compute the explained
    # variance on every sample, which costs more than the fit itself
    fit_raw = raw if decim == 1 else mne.io.RawArray(
        np.ascontiguousarray(sel[:, ::decim]), minfo, verbose="ERROR")
    ica.fit(fit_raw, picks=names[:-1], verbose="ERROR")
    # find_bads_eog band-passes sources and EOG to 1-10 Hz before correlating them; at
    # 100 Hz every 2nd sample carries that band unaliased (the EEG is low-passed at
    # 30 Hz, so what folds over lands above 12.5 Hz and is filtered out), which halves
    # the samples and the filter taps: scores agree with the full-rate ones to ~1e-5
    score_raw = raw if sdec == 1 else mne.io.RawArray(
        np.ascontiguousarray(sel[:, ::sdec]),
        mne.create_info(names, sfreq / sdec, ["eeg"] * len(eeg) + ["eog"], verbose="ERROR"),
        verbose="ERROR")
    bads, scores = ica.find_bads_eog(score_raw, ch_name=names[-1],
                                     threshold=ICA["eog_threshold"],
                                     measure=ICA["eog_measure"], verbose="ERROR")
    del score_raw
    info.update(ran=True, decim=decim, score_decim=sdec,
                excluded_components=[int(b) for b in bads],
                eog_scores=[float(s) for s in np.ravel(scores)])
    if bads:
        ica.apply(raw, exclude=list(bads), verbose="ERROR")  # in place, EEG picks only
        if raw._data is not work:  # noqa: SLF001 - a subset or converted copy
            work[eeg] = raw.get_data(picks=names[:-1])
    return work, info


def _epoch_view(data: np.ndarray, n_epochs: int, n_times: int, start: int = 0) -> np.ndarray:
    """(n_channels, n_samples) -> (n_epochs, n_channels, n_times) without copying."""
    seg = data[:, start:start + n_epochs * n_times]
    return seg.reshape(data.shape[0], n_epochs, n_times).transpose(1, 0, 2)


@dataclass
class BandPowerNight:
    """Spectra of one recording, from which features for any z-score window follow.

    Attributes
    ----------
    band_powers : ndarray (n_epochs, n_channels, 5)
        Band powers of the filtered, ICA-cleaned, *unnormalised* signal (V**2).
    sums, sq_sums : ndarray (n_epochs, n_channels)
        Per-epoch sums of samples and of squared samples (for window z-scores).
    peak_to_peak : ndarray (n_epochs, n_channels)
        Per-epoch peak-to-peak amplitude (V) of the filtered signal.
    n_times : int
        Samples per epoch.
    onsets_sec : ndarray
        Epoch onsets from the recording start.
    ch_names, roles : list of str
        Channels (in :data:`CHANNEL_LAYOUT` order for the default model).
    meta : dict
        Settings and ICA report.
    """

    band_powers: np.ndarray
    sums: np.ndarray
    sq_sums: np.ndarray
    peak_to_peak: np.ndarray
    n_times: int
    onsets_sec: np.ndarray
    ch_names: list[str]
    roles: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_epochs(self) -> int:
        return int(self.band_powers.shape[0])

    def window_std(self, window: slice | None = None,
                   exclude: np.ndarray | None = None) -> np.ndarray:
        """Per-channel standard deviation (V) over the epochs of ``window`` (all: None),
        floored at 1e-8 V as in the original z-score.

        ``exclude`` (bool, one per epoch of the night) leaves epochs out of the
        statistic, e.g. those of bad signal quality
        (:func:`hypnoscope.signal.quality.exclusion_mask`), so that one noisy hour cannot
        rescale the rest of the night; when it would leave no epoch of the window, the
        whole window is used (as :func:`hypnoscope.signal.preprocessing.normalization_stats`
        does).

        This is the ``"zscore"`` scale of
        :func:`hypnoscope.signal.preprocessing.normalization_stats` (per channel over all
        samples of the window), computed from the stored per-epoch sums and sums of
        squares instead of the signal: the night keeps no signal, and staging
        re-normalises over a second window (the detected sleep period) at the cost of
        two sums. The floor is the real band-power set's (:data:`ZSCORE_EPS_V`), not
        ``normalization_stats``' relative one, so that the features match that set.
        """
        window = window or slice(0, self.n_epochs)
        idx = np.arange(self.n_epochs)[window]
        if idx.size == 0:
            raise ValueError("empty normalisation window")
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=bool)
            if exclude.shape != (self.n_epochs,):
                raise ValueError(f"exclude must have shape ({self.n_epochs},), got "
                                 f"{exclude.shape}")
            if not exclude[idx].all():
                idx = idx[~exclude[idx]]
        n = self.n_times * idx.size
        mean = self.sums[idx].sum(axis=0) / n
        var = self.sq_sums[idx].sum(axis=0) / n - mean**2
        return np.maximum(np.sqrt(np.maximum(var, 0.0)), ZSCORE_EPS_V)

    def features(self, window: slice | None = None,
                 exclude: np.ndarray | None = None) -> np.ndarray:
        """Features ``(n_epochs, n_channels, 10)`` (float32) of every epoch, z-scored
        with the statistics of the epochs in ``window`` (default: all epochs) less those
        in ``exclude`` (see :meth:`window_std`)."""
        std = self.window_std(window, exclude)
        bp = self.band_powers / (std**2)[None, :, None]
        return assemble_features(bp).astype(np.float32)

    def rejected(self) -> np.ndarray:
        """Epochs whose peak-to-peak amplitude exceeds the rejection thresholds."""
        lim = np.array([AMPLITUDE_REJECT_V.get(r, np.inf) for r in self.roles])
        return (self.peak_to_peak > lim[None, :]).any(axis=1)


def extract_bandpower(data: np.ndarray, sfreq: float, ch_names: list[str], roles: list[str],
                      unit: str = "uV", ica: bool = True, ica_decim: int | str = "auto",
                      ) -> BandPowerNight:
    """Filter, clean (ICA) and compute per-epoch spectra of a continuous recording.

    Parameters
    ----------
    data : ndarray (n_channels, n_samples)
        Continuous signals at ``sfreq`` (100 Hz), in ``unit`` ("uV" or "V").
    ch_names, roles : list of str
        Channel labels and roles (``eeg`` / ``eog``); features keep this order.
    ica : bool
        Run the ICA eye-component removal (default, as in the original).
    ica_decim : int or "auto"
        See :func:`remove_eye_components`.

    Returns
    -------
    BandPowerNight
    """
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[0] != len(roles) or len(ch_names) != len(roles):
        raise ValueError(f"data must be (n_channels, n_samples) with one name and role per "
                         f"channel; got {data.shape}, {len(ch_names)} names, {len(roles)} roles")
    bad_roles = sorted(set(roles) - {"eeg", "eog"})
    if bad_roles:
        raise ValueError(f"band-power features use EEG and EOG channels only; got roles "
                         f"{bad_roles}")
    if not np.isclose(sfreq, SFREQ):
        raise ValueError(f"band-power features expect {SFREQ:g} Hz signals, got {sfreq:g} Hz "
                         "(resample first, e.g. hypnoscope.io.psg.read_psg(..., sfreq=100))")
    n_times = int(round(EPOCH_SEC * sfreq))
    n_epochs = data.shape[1] // n_times
    if n_epochs < 1:
        raise ValueError(f"recording has {data.shape[1] / sfreq:.1f} s of signal, shorter "
                         f"than one {EPOCH_SEC:g}-s epoch")
    scale = {"uv": 1e-6, "µv": 1e-6, "v": 1.0}.get(unit.lower())
    if scale is None:
        raise ValueError(f"unit must be 'uV' or 'V', got {unit!r}")
    x = np.multiply(data[:, : n_epochs * n_times], scale, dtype=np.float64)
    _filter_inplace(x, sfreq, list(roles))
    if not np.isfinite(x).all():  # one pass over the night instead of nan_to_num's four
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    ica_info: dict[str, Any] = {"ran": False, "skipped_reason": "disabled"}
    if ica:
        x, ica_info = remove_eye_components(x, sfreq, list(ch_names), list(roles), ica_decim,
                                            copy=False)
    ep = _epoch_view(x, n_epochs, n_times)
    night = BandPowerNight(
        band_powers=welch_band_powers(ep, sfreq),
        sums=ep.sum(axis=-1), sq_sums=np.einsum("ect,ect->ec", ep, ep),
        peak_to_peak=np.ptp(ep, axis=-1), n_times=n_times,
        onsets_sec=np.arange(n_epochs) * EPOCH_SEC,
        ch_names=list(ch_names), roles=list(roles),
        meta={"settings": SETTINGS, "ica": ica_info},
    )
    return night


def recording_features(recording, hypnogram=None, eeg=None, eog=None,
                       ica_decim: int | str = "auto") -> dict[str, Any]:
    """Band-power features of a recording, like one file of the real band-power set.

    Parameters
    ----------
    recording : path, mne.io.BaseRaw or PSGRecording
        The PSG; channels resolved with :func:`hypnoscope.io.psg.read_psg`.
    hypnogram : path, Hypnogram or None
        With a hypnogram the night is cropped to 30 min of wake around the sleep period,
        z-scored on the crop and labelled (amplitude-rejected epochs unscored).
    eeg, eog : channel names or None
        Channel choice (two EEG, one EOG).

    Returns
    -------
    dict
        ``features`` (n, 3, 10) float32, ``labels`` (n,) int or None, ``onsets_sec``
        (from the crop start, as in the real set), ``crop`` (epoch slice), ``meta``.
    """
    from hypnoscope.io.hypnograms import read_hypnogram

    night = extract_bandpower_from(recording, eeg=eeg, eog=eog, ica_decim=ica_decim)
    window = slice(0, night.n_epochs)
    labels = None
    if hypnogram is not None:
        hyp = read_hypnogram(hypnogram).align_to(night.n_epochs, onset_sec=0.0)
        try:
            window = hyp.sleep_period_slice(WAKE_CROP_SEC / 60.0)
        except ValueError as exc:
            raise ValueError(f"{hypnogram}: {exc}") from None
        labels = hyp.codes.copy()
        labels[night.rejected()] = UNSCORED
        labels = labels[window]
    feats = night.features(window)[window]
    onsets = night.onsets_sec[window] - night.onsets_sec[window.start]
    return {"features": feats, "labels": labels, "onsets_sec": onsets, "crop": window,
            "meta": {**night.meta, "channel_names": night.ch_names}}


def _rank(name: str, prefs: tuple[str, ...]) -> int:
    n = name.lower().replace("eeg", "").strip()
    for k, p in enumerate(prefs):
        if n.startswith(p):
            return k
    return len(prefs)


_EEG_SITE = re.compile(r"^(?:eeg\s*)?(fp|af|fc|f|cp|c|tp|t|po|p|o)(?:z|\d+)")
_ANTERIOR, _POSTERIOR = {"fp", "af", "f", "fc", "c"}, {"p", "po", "o"}


def eeg_region(name: str) -> str | None:
    """``"anterior"`` (Fp, AF, F, FC, C: the Fpz-Cz slot), ``"posterior"`` (P, PO, O:
    the Pz-Oz slot) or None (temporal, CP, unknown) from the first electrode of an EEG
    channel name (``EEG Fpz-Cz`` -> anterior, ``O2-M1`` -> posterior; cohort labels by
    their derivation, SHHS ``EEG(sec)`` -> C3-A2 -> anterior)."""
    from hypnoscope.io.psg import channel_derivation

    name = channel_derivation(name) or name
    m = _EEG_SITE.match(re.sub(r"[\s_]+", " ", name.strip().lower()))
    if not m:
        return None
    site = m.group(1)
    return "anterior" if site in _ANTERIOR else "posterior" if site in _POSTERIOR else None


def select_bandpower_channels(ch_names: list[str], roles: list[str],
                              channels_found: list[str] | None = None,
                              source: str = "recording", explicit: bool = False,
                              notices: Any = None, n_eeg: int = 2, n_eog: int = 1,
                              ) -> list[int]:
    """Indices of the channels for :data:`CHANNEL_LAYOUT` (two EEG, one EOG), or for a
    subset of it (``n_eeg`` EEG and ``n_eog`` EOG channels, see
    :data:`hypnoscope.staging.channel_setups.CHANNEL_SETUPS`; one EEG takes the Fpz-Cz slot).

    With more than two EEG channels and no explicit choice, the frontal/central one
    nearest to Fpz-Cz takes the first slot and the parietal/occipital one nearest to
    Pz-Oz the second; with an explicit choice the first two given are used. If the two
    are then in swapped order by name (a parietal/occipital channel first, a
    frontal/central one second, see :func:`eeg_region`) they are swapped back, with a
    ``channels-reordered`` info notice: the model was trained with Fpz-Cz first. The
    channels left out (more EEG, a second EOG, EMG) each get a ``channel-ignored`` info
    notice. Notices go to ``notices`` (a :class:`hypnoscope.notices.Notices`) when
    given. Raises a ``ValueError`` that lists the channels found when the EEG or EOG
    channels the setup needs are missing.
    """
    eeg = [i for i, r in enumerate(roles) if r == "eeg"]
    eog = [i for i, r in enumerate(roles) if r == "eog"]
    if len(eeg) < n_eeg or len(eog) < n_eog:
        found = channels_found if channels_found is not None else list(ch_names)
        have = ", ".join(f"{n} ({r})" for n, r in zip(ch_names, roles, strict=False)) or "none"
        need = {(2, 1): "two EEG channels (Fpz-Cz and Pz-Oz, or the nearest derivations) "
                        "and one EOG channel",
                (2, 0): "two EEG channels (Fpz-Cz and Pz-Oz, or the nearest derivations)",
                (1, 1): "one EEG channel and one EOG channel",
                (1, 0): "one EEG channel"}[(n_eeg, n_eog)]
        raise ValueError(
            f"{source}: this band-power model needs {need}, but only these were "
            f"recognised: {have}. Channels found: {list(found)}. Choose them with eeg=[...] "
            "and eog=... (CLI: --eeg CH [CH] --eog CH), or stage with --model auto to use "
            "the shipped model these channels allow")
    if n_eeg == 1:
        first = eeg[0] if explicit else min(
            eeg, key=lambda i: (_rank(ch_names[i], ("fpz", "fp", "fz", "f", "cz", "c")), i))
        return _report_unused(ch_names, roles, [first] + eog[:n_eog], add=(
            notices.add if notices is not None else None), source=source)
    if not explicit and len(eeg) > 2:
        first = min(eeg, key=lambda i: (_rank(ch_names[i], ("fpz", "fp", "fz", "f", "cz", "c")),
                                        i))
        rest = [i for i in eeg if i != first]
        second = min(rest, key=lambda i: (_rank(ch_names[i], ("pz", "po", "oz", "o", "p")), i))
        eeg = [first, second]
    a, b = eeg[0], eeg[1]
    add = notices.add if notices is not None else (lambda *args, **kw: None)
    if eeg_region(ch_names[a]) == "posterior" and eeg_region(ch_names[b]) == "anterior":
        a, b = b, a
        add("channels-reordered",
            f"{source}: EEG channels {ch_names[b]!r}, {ch_names[a]!r} were given "
            "parietal/occipital first; the band-power model expects the frontal/central "
            f"channel first (like Fpz-Cz) and the parietal/occipital one second (like "
            f"Pz-Oz), so {ch_names[a]!r} is used first and {ch_names[b]!r} second",
            severity="info")
    return _report_unused(ch_names, roles, [a, b] + eog[:n_eog],
                          add=notices.add if notices is not None else None, source=source)


def _report_unused(ch_names: list[str], roles: list[str], used: list[int], add,
                   source: str) -> list[int]:
    """``used``, after a ``channel-ignored`` info notice for every other channel."""
    n_eeg = sum(roles[i] == "eeg" for i in used)
    n_eog = len(used) - n_eeg
    what = {(2, 1): "two EEG channels and one EOG channel", (2, 0): "two EEG channels",
            (1, 1): "one EEG channel and one EOG channel",
            (1, 0): "one EEG channel"}.get((n_eeg, n_eog), f"{len(used)} channels")
    names = ", ".join(repr(ch_names[i]) for i in used)
    for i, (name, role) in enumerate(zip(ch_names, roles, strict=True)):
        if i not in used and add is not None:
            why = (f"the band-power model uses {what}" if role in ("eeg", "eog") else
                   "the band-power model uses EEG and EOG only")
            add("channel-ignored", f"{source}: channel {name!r} ({role}) is not used: {why} "
                f"({names})", severity="info", channel=name)
    return used


def extract_bandpower_from(recording, eeg=None, eog=None, ica_decim: int | str = "auto",
                           n_eeg: int = 2, n_eog: int = 1) -> BandPowerNight:
    """Read a recording (path, Raw or PSGRecording) and compute its spectra with
    :func:`extract_bandpower` on two EEG and one EOG channel (or ``n_eeg`` EEG and
    ``n_eog`` EOG channels: a channel setup, see :func:`select_bandpower_channels`)."""
    from hypnoscope.io.psg import read_psg

    rec = recording
    if not hasattr(rec, "roles") or not hasattr(rec, "data"):
        rec = read_psg(recording, eeg=eeg, eog=eog, sfreq=SFREQ, include_emg=False)
    from hypnoscope.notices import Notices

    # the reader's notices plus the channel choice's (the recording's meta is not changed)
    notices = Notices().extend_from((rec.meta or {}).get("notices") or [])
    idx = select_bandpower_channels(list(rec.ch_names), list(rec.roles),
                                    rec.meta.get("channels_found") if rec.meta else None,
                                    source=str(getattr(rec, "source", "recording")),
                                    explicit=eeg is not None, notices=notices,
                                    n_eeg=n_eeg, n_eog=n_eog)
    data = rec.data if list(idx) == list(range(rec.n_channels)) else rec.data[idx]
    night = extract_bandpower(data, rec.sfreq, [rec.ch_names[i] for i in idx],
                              [rec.roles[i] for i in idx], unit="uV", ica_decim=ica_decim)
    night.meta["source"] = str(getattr(rec, "source", ""))
    night.meta["start_time"] = getattr(rec, "start_time", None)
    night.meta["reader_warnings"] = list((rec.meta or {}).get("warnings", []))
    night.meta["notices"] = notices
    return night
