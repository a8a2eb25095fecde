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
The ICA step is :func:`hypnoscope.signal.ica.remove_eye_components` (fitted on a
decimated copy of long recordings; ``ica_decim=1`` for the undecimated fit of the
original); the channels are chosen by
:func:`hypnoscope.signal.channel_choice.select_bandpower_channels`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hypnoscope.signal.channel_choice import select_bandpower_channels
from hypnoscope.signal.features import BANDS  # (name, low Hz, high Hz), closed intervals
from hypnoscope.signal.filters import (
    ROLE_BANDS,
    design_fir,
    design_window,
    fir_filter,
    notch_taps,
    upper_edge,
)
from hypnoscope.signal.ica import (
    ICA,
    ICA_SCORE_DECIM,
    remove_eye_components,
    score_filter_taps,
)
from hypnoscope.signal.spectral import welch
from hypnoscope.stages import UNSCORED
from hypnoscope.utils.arrays import epoch_view

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
#: The band-power pipeline's filters: the ``"bandpower"`` band table of
#: :data:`hypnoscope.signal.filters.ROLE_BANDS` and the mains notch (applied below Nyquist).
FILTERS = {"eeg": ROLE_BANDS["bandpower"]["eeg"], "eog": ROLE_BANDS["bandpower"]["eog"],
           "notch": (50.0,)}
WAKE_CROP_SEC = 1800.0
#: Epoch rejection (peak-to-peak, volts) used to mark training labels as unscored.
AMPLITUDE_REJECT_V = {"eeg": 500e-6, "eog": 1000e-6, "emg": 1000e-6}
#: Epochs per Welch call (bounds memory).
WELCH_CHUNK = 64

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
    (:func:`hypnoscope.signal.spectral.welch`: SciPy's values, the median over the
    segments only for the ``n_freqs`` lowest frequencies, those the bands use)."""
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
    edge lowered by :func:`hypnoscope.signal.filters.upper_edge` where needed)."""
    lo, hi = FILTERS[role]
    return design_fir(sfreq, lo, upper_edge(hi, sfreq), shipped=shipped)


def notch_filter_taps(sfreq: float, shipped: bool = True) -> np.ndarray | None:
    """FIR taps of ``mne.filter.notch_filter(x, sfreq, freqs)`` for the notch frequencies
    of :data:`FILTERS` below Nyquist (widths ``f / 200``, 1-Hz transitions,
    :func:`hypnoscope.signal.filters.notch_taps`), or None."""
    freqs = [f for f in FILTERS["notch"] if 0 < f < sfreq / 2.0]
    return notch_taps(sfreq, freqs, shipped=shipped) if freqs else None


def pipeline_designs(shipped: bool = True) -> dict[str, np.ndarray]:
    """Every filter and window design that staging a recording at :data:`SFREQ` uses
    (the band-power pipeline's, and the Welch window of the EMG-as-EOG check in
    :func:`hypnoscope.signal.checks.emg_spectrum_shares`): what
    ``scripts/make_designs.py`` ships."""
    from hypnoscope.signal.checks import EMG_CHECK_NPERSEG_SEC

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
    (:func:`hypnoscope.signal.filters.fir_filter`: the same numbers, bit for bit)."""
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
        whole window is used (as :func:`hypnoscope.signal.normalize.normalization_stats`
        does).

        This is the ``"zscore"`` scale of
        :func:`hypnoscope.signal.normalize.normalization_stats` (per channel over all
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
    ep = epoch_view(x, n_times, n_epochs)
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


def extract_bandpower_from(recording, eeg=None, eog=None, ica_decim: int | str = "auto",
                           n_eeg: int = 2, n_eog: int = 1) -> BandPowerNight:
    """Read a recording (path, Raw or PSGRecording) and compute its spectra with
    :func:`extract_bandpower` on two EEG and one EOG channel (or ``n_eeg`` EEG and
    ``n_eog`` EOG channels: a channel setup, see :func:`select_bandpower_channels`)."""
    from hypnoscope.signal.checks import read_psg_checked

    rec = recording
    if not hasattr(rec, "roles") or not hasattr(rec, "data"):
        rec = read_psg_checked(recording, eeg=eeg, eog=eog, sfreq=SFREQ, include_emg=False)
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
