"""Per-epoch, per-channel signal quality of PSG recordings.

:func:`epoch_quality` checks every epoch of every channel for six kinds of bad signal
and returns a :class:`QualityReport` whose ``flags`` hold one bit per detector
(:class:`Q`). It works on epochs in µV **as read** (:func:`hypnoscope.io.psg.read_psg`, then
:func:`hypnoscope.signal.epochs.epoch_signals`), before band-pass filtering and
normalisation: the filters remove the evidence (DC steps, mains, high-frequency noise)
and normalised data is no longer in µV. :func:`recording_quality` does both steps for a
:class:`~hypnoscope.io.psg.PSGRecording`; :func:`exclusion_mask` turns a report into the
epochs to leave out of per-night normalisation statistics
(:func:`hypnoscope.signal.normalize.normalization_stats` ``exclude=``).

Relation to :mod:`hypnoscope.io.psg`: the reader warns once per *channel* (median
|amplitude| outside ``MIN_PLAUSIBLE_UV``-``MAX_PLAUSIBLE_UV``, i.e. volts under a µV
header; a constant channel; the number of constant 30-s windows, ``_flat_epochs``).
This module works per *epoch*: its "constant epoch" rule is the reader's
``_flat_epochs`` rule, the envelope flat floor is ``MIN_PLAUSIBLE_UV``, and a channel in
volts under a µV header is FLAT on every epoch (so :meth:`QualityReport.bad_channels`
names it).

Detectors
---------
Statistics are computed per epoch and channel; amplitudes on the epoch minus its
least-squares linear trend (slow electrode drift is not an artefact), spectra as the
Hann-windowed periodogram of the detrended epoch. Thresholds are keyword arguments of
:func:`epoch_quality`; a per-role threshold is one number for all roles or a mapping
``{role: value}`` (missing roles keep their default; ``None`` turns the rule off for
the role; one number leaves off the roles where the rule is off by default). The
per-role defaults are the ``*_DEFAULTS`` tables below.

Relative to the recording
-------------------------
Amplitude and noise are judged against the recording itself, so that a healthy night
recorded at any gain, or of a person with large (children, young adults) or small EEG,
gets the same flags: scaling a whole channel changes none of them while it stays inside
the outer bounds below and above the µV floors that keep low-amplitude signal from
being over-flagged (the flat floor, the baseline-jump floor, the least HF and mains RMS;
the HF and mains rules are ratios otherwise). Two references are used per channel:

- its **scale**: the median amplitude (detrended SD; envelope: mean level) of its
  usable epochs (not constant, no missing samples, above the absolute flat floor), from
  any number of epochs;
- its **distribution** ("night-relative" rules): the median and ``sigma = 1.4826 *
  MAD`` of a log statistic over the reference epochs (usable and not beyond an
  amplitude bound); these rules need at least ``rel_min_epochs`` (20) reference epochs,
  so a short snippet gets the scale rules and the outer bounds only.

Absolute µV limits remain only as outer bounds far outside physiology, for what no
relative rule can see: a dead or shorted electrode (the flat floor, at amplifier-noise
level), a whole channel in the wrong unit or an amplifier fault (the scale
bound, ``amp_scale_max_uv``), an epoch beyond any amplifier's input range
(``amp_ptp_uv``). Unit mistakes are also the reader's business (:mod:`hypnoscope.io.units`
rescales powers of 1000 and warns about implausible amplitudes); a channel the reader
could not fix is flagged here on every epoch, so staging drops it or refuses.

``FLAT``
    Any of: the detrended SD is below ``flat_sd_uv`` (EEG/EOG 1 µV; EMG
    ``MIN_PLAUSIBLE_UV``, 0.05 µV, as REM atonia is quiet: floors at amplifier-noise
    level); at least ``flat_min_sec`` (10) one-second blocks of the epoch have an SD
    below ``FLAT_QUIET_FACTOR`` (0.5) x ``flat_sd_uv`` (a flat stretch inside the
    epoch); the SD is below ``flat_rel`` times the night's median SD (EEG/EOG 0.1, EMG
    0.02); the epoch is constant. For an EMG envelope (a slow, positive RMS level) the
    mean level replaces the SD, with floor ``MIN_PLAUSIBLE_UV`` and ``flat_rel`` 0.02.
``CLIPPED``
    A saturation plateau: at least ``clip_fraction`` (1 %) of the samples lie within
    ``clip_tol`` (0.5 %) of the epoch's peak-to-peak range from its maximum (or, counted
    separately, its minimum) *and* moved by at most ``clip_still`` (0.05) times the
    epoch's mean absolute sample-to-sample change since the previous sample. A smooth
    physiological peak, even a slow 1000-µV movement swing, keeps moving by the
    signal's own noise; a rail does not. Constant epochs are FLAT, not CLIPPED. Off
    for envelopes (a slow level, where runs of equal values are not saturation).
    Clipping that happened before resampling (ringing on the plateau) may be missed.
``AMPLITUDE``
    Too large for this recording, or beyond the outer bounds. Any of:

    - **outlier of the night** (log space, the night's median and sigma): the SD
      (envelope: level) above the median by more than ``max(amp_z * sigma,
      log(amp_min_ratio))``, or the RMS in ``amp_fast_band`` (4-45 Hz, upper edge capped
      at 0.45 * sfreq; EEG/EOG only) above its median by more than ``max(amp_z * sigma,
      log(amp_fast_ratio))``. ``amp_z`` is 5 (EMG/envelope 6). Artefacts (noise,
      movement, electrode trouble) are broadband and raise the fast band as much as the
      SD, so the fast-band ratio is the tight one (EEG 6, EOG 10); N3 slow waves put
      their power below 4 Hz and raise the SD several-fold while the fast band barely
      moves, so the SD ratio is wide (EEG/EOG 12, EMG/envelope 10): high-amplitude
      delta is physiology, not an artefact;
    - **spike**: detrended peak-to-peak above ``amp_ptp_rel`` times the channel's scale
      (EEG 80, EOG 150, EMG 400; not for envelopes);
    - **outer bounds**: the detrended peak-to-peak above ``amp_ptp_uv`` (20 000 µV;
      envelope: the level above 5000 µV), or the channel's scale above
      ``amp_scale_max_uv`` (500 µV), which flags every usable epoch of the channel.
``HF_NOISE``
    Broadband or high-frequency noise on EEG/EOG (not on EMG, which *is*
    high-frequency power, nor on envelopes). With ``hf`` the RMS (µV) in ``hf_band``
    (30-45 Hz, upper edge capped at 0.45 * sfreq) and ``share`` its fraction of the
    0.5-45 Hz power: ``hf >= hf_min_uv`` (2 µV) and either ``share > hf_ratio_max``
    (0.25; white noise gives 0.34, sleep EEG 1e-4 to 1e-2, wake up to ~0.15) or ``hf``
    is above the night's median HF RMS by more than ``max(hf_z * sigma,
    log(hf_min_ratio))`` (``hf_z`` 2, ratio 8) with ``share > hf_ratio_min`` (0.03).
    The relative rule uses the absolute HF RMS because added noise raises it in every
    stage, while the share depends on the stage's spectral slope. Clean simulated
    nights reach at most ~6x the median (wake); real wake with heavy muscle activity
    on the EEG may well be flagged (that is muscle artefact).
``LINE_NOISE``
    A mains peak at 50 or 60 Hz (``line_freqs``), only where ``f0 + 1.5 Hz`` is below
    Nyquist (never at 100 Hz, where the reader's anti-alias filter removed it anyway):
    the mean PSD within ±0.5 Hz of ``f0`` is at least ``line_ratio`` (10) times the
    median PSD 2-6 Hz either side, and the peak above that floor holds at least
    ``line_min_uv`` (5 µV) RMS. Off for envelopes. (A large mains component is itself a
    sign of high electrode impedance.)
``DISCONNECTED``
    No usable signal from the electrode, precisely any of:

    - the epoch is constant: peak-to-peak at most 1e-6 x max(1 µV, |mean|), the
      reader's ``_flat_epochs`` rule up to float rounding (a dead channel, or one
      stuck at a rail); not for envelopes (FLAT there);
    - it holds non-finite samples (NaN/inf; they count as 0 for the other statistics);
    - a baseline jump: the sharpest change of the epoch, ``|x[t + s] - x[t]|`` over
      ``s = jump_span_sec`` (20 ms, at least one sample), is at least ``J = max(jump_uv,
      jump_rel * scale)`` (``jump_uv`` EEG 250 µV, EOG 600 µV since saccades are steps
      too, EMG 300 µV; ``jump_rel`` EEG 7, EOG 25, EMG 60) **and** the mean over
      ``jump_window_sec`` (1 s) after the change differs from the mean over the second
      before it, in the direction of the change, by at least ``jump_keep`` (0.5) x
      ``J``: a sustained DC shift (loose electrode, electrode pop), not a spike.
      Physiological waves are band-limited and their steepest changes grow with the
      recording's amplitude, hence the relative term; an electrode pop does not, hence
      the µV floor. Only the sharpest change is examined. Off for envelopes.

The approach follows YASA's ``art_detect(method="std")`` (z-scored log SD per channel,
here with a robust median/MAD centre and scale, a minimum ratio and a fast-band
companion that spares slow waves) and MNE's
``annotate_amplitude`` (peak-to-peak limits, flat detection with a minimum duration),
vectorised over all epochs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from hypnoscope.io.units import MIN_PLAUSIBLE_UV

if TYPE_CHECKING:  # pragma: no cover
    from hypnoscope.io.psg import PSGRecording

#: Channel roles understood (those of :class:`hypnoscope.io.psg.PSGRecording`).
QUALITY_ROLES: tuple[str, ...] = ("eeg", "eog", "emg", "emg_envelope")


class Q(enum.IntFlag):
    """Quality flags, one bit each (see the module docstring for the definitions)."""

    OK = 0
    FLAT = 1
    CLIPPED = 2
    AMPLITUDE = 4
    HF_NOISE = 8
    LINE_NOISE = 16
    DISCONNECTED = 32


#: The detectors, in bit order.
DETECTORS: tuple[Q, ...] = (Q.FLAT, Q.CLIPPED, Q.AMPLITUDE, Q.HF_NOISE, Q.LINE_NOISE,
                            Q.DISCONNECTED)
#: Every detector's bit.
ALL_FLAGS = Q.FLAT | Q.CLIPPED | Q.AMPLITUDE | Q.HF_NOISE | Q.LINE_NOISE | Q.DISCONNECTED
#: Short names used in :meth:`QualityReport.epoch_labels` and :meth:`QualityReport.summary`.
FLAG_LABELS: Mapping[Q, str] = MappingProxyType({
    Q.FLAT: "flat", Q.CLIPPED: "clipped", Q.AMPLITUDE: "amplitude", Q.HF_NOISE: "noise",
    Q.LINE_NOISE: "line", Q.DISCONNECTED: "disconnected"})
#: Flags that :func:`exclusion_mask` uses by default: everything but mains noise, which
#: the band-pass before normalisation removes.
EXCLUDE_DEFAULT = ALL_FLAGS & ~Q.LINE_NOISE

#: A threshold that may differ by role: one value for all roles, ``{role: value}``, or
#: None for the defaults.
PerRole = float | Mapping[str, float | None] | None

_R = MappingProxyType
#: Absolute flat floor per role, µV: SD of the detrended epoch (envelope: mean level).
#: An outer bound at amplifier-noise level, so a healthy low-amplitude recording stays
#: above it (REM atonia on the chin is quiet, hence the EMG floor).
FLAT_SD_DEFAULTS = _R({"eeg": 1.0, "eog": 1.0, "emg": MIN_PLAUSIBLE_UV,
                       "emg_envelope": MIN_PLAUSIBLE_UV})
#: The floor of a 1-s block is this fraction of the epoch floor: a second holds no slow
#: activity, so quiet seconds of a healthy low-amplitude recording fall below the floor of
#: a whole epoch.
FLAT_QUIET_FACTOR = 0.5
#: Relative flat floor: SD (envelope: level) below this times the night's median.
FLAT_REL_DEFAULTS = _R({"eeg": 0.1, "eog": 0.1, "emg": 0.02, "emg_envelope": 0.02})
#: Fraction of samples at the max (or at the min) that makes a saturation plateau.
CLIP_FRACTION_DEFAULTS = _R({"eeg": 0.01, "eog": 0.01, "emg": 0.01, "emg_envelope": None})
#: Outer bound on one epoch: detrended peak-to-peak (envelope: mean level) in µV above
#: which it is AMPLITUDE whatever the recording (beyond any scalp biopotential and the
#: input range of PSG amplifiers).
AMP_PTP_DEFAULTS = _R({"eeg": 20_000.0, "eog": 20_000.0, "emg": 20_000.0,
                       "emg_envelope": 5_000.0})
#: Outer bound on a whole channel: its scale (median epoch SD; envelope: median level)
#: in µV above which every epoch is AMPLITUDE (a unit mistake or an amplifier fault,
#: not a person: the reader's plausible range ends at ``PLAUSIBLE_EPOCH_SD_UV[1]``).
AMP_SCALE_MAX_DEFAULTS = _R({"eeg": 500.0, "eog": 500.0, "emg": 500.0,
                             "emg_envelope": 500.0})
#: Relative spike limit: detrended peak-to-peak above this times the channel's scale.
AMP_PTP_REL_DEFAULTS = _R({"eeg": 80.0, "eog": 150.0, "emg": 400.0, "emg_envelope": None})
#: Robust z (in log space) above which an epoch is an amplitude outlier of the night.
AMP_Z_DEFAULTS = _R({"eeg": 5.0, "eog": 5.0, "emg": 6.0, "emg_envelope": 6.0})
#: ... and the minimum ratio of its SD (envelope: level) to the night's median for that;
#: N3 slow waves raise the EEG SD several-fold, so EEG and EOG (which picks up frontal
#: delta) allow more than the fast-band rule.
AMP_MIN_RATIO_DEFAULTS = _R({"eeg": 12.0, "eog": 12.0, "emg": 10.0, "emg_envelope": 10.0})
#: Minimum ratio of an epoch's RMS in :data:`AMP_FAST_BAND` to the night's median for an
#: amplitude outlier (None = off): artefacts are broadband, slow waves are not.
AMP_FAST_RATIO_DEFAULTS = _R({"eeg": 6.0, "eog": 10.0, "emg": None, "emg_envelope": None})
#: Band (Hz) of the fast-band amplitude rule (upper edge capped at 0.45 * sfreq).
AMP_FAST_BAND = (4.0, 45.0)
#: High-frequency power share above which an epoch is noisy regardless of the night.
HF_RATIO_MAX_DEFAULTS = _R({"eeg": 0.25, "eog": 0.25, "emg": None, "emg_envelope": None})
#: Line-noise peak-to-neighbour power ratio (None = off for the role).
LINE_RATIO_DEFAULTS = _R({"eeg": 10.0, "eog": 10.0, "emg": 10.0, "emg_envelope": None})
#: Sharp change (within ``jump_span_sec``) of a baseline jump, µV (None = off): an
#: electrode pop is a physical event, so this holds at any amplitude ...
JUMP_UV_DEFAULTS = _R({"eeg": 250.0, "eog": 600.0, "emg": 300.0, "emg_envelope": None})
#: ... and in a high-amplitude recording the change must also exceed this times the
#: channel's scale (steep slow waves and K-complexes grow with it; None = off).
JUMP_REL_DEFAULTS = _R({"eeg": 7.0, "eog": 25.0, "emg": 60.0, "emg_envelope": None})

_LOG_FLOOR = 1e-12


def _per_role(value: Any, defaults: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Resolve a scalar-or-mapping threshold into ``{role: value}``."""
    out = dict(defaults)
    if isinstance(value, Mapping):
        unknown = set(value) - set(QUALITY_ROLES)
        if unknown:
            raise ValueError(f"{name}: unknown role(s) {sorted(unknown)}; expected "
                             f"{list(QUALITY_ROLES)}")
        out.update(value)
    elif value is not None:
        out = {r: (None if defaults.get(r) is None else float(value)) for r in QUALITY_ROLES}
    return out


# ------------------------------------------------------------------ report
@dataclass
class QualityReport:
    """Signal quality of every epoch and channel of a recording.

    Attributes
    ----------
    flags : ndarray of uint8, shape (n_epochs, n_channels)
        Bit mask of :class:`Q` flags; 0 = no problem found.
    ch_names, roles : list of str
        Channel labels and roles (``"eeg"``, ``"eog"``, ``"emg"``, ``"emg_envelope"``).
    sfreq : float
        Sampling rate of the checked epochs.
    thresholds : dict
        The thresholds used (per role where they differ by role).
    metrics : dict of ndarray
        Per epoch and channel statistics behind the flags (float32, ``(n_epochs,
        n_channels)``): ``sd`` and ``ptp`` (detrended, µV), ``level`` (mean, µV),
        ``quiet_sd`` (SD of the ``flat_min_sec``-th quietest second, µV),
        ``clip_fraction`` (plateau share), ``hf_ratio`` (HF share), ``hf_uv`` (RMS in
        the HF band, µV), ``fast_uv`` (RMS in ``amp_fast_band``, µV), ``line_uv``
        (largest mains component RMS, NaN where not checkable), ``jump_uv`` (sharpest
        change) and ``shift_uv`` (baseline shift across it, signed along the change),
        ``amp_z``, ``fast_z`` and ``hf_z`` (robust z against the night; NaN where not
        computed).
    """

    flags: np.ndarray
    ch_names: list[str]
    roles: list[str]
    sfreq: float = float("nan")
    thresholds: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.flags = np.asarray(self.flags, dtype=np.uint8)
        if self.flags.ndim != 2 or self.flags.shape[1] != len(self.ch_names):
            raise ValueError(f"flags must be (n_epochs, {len(self.ch_names)}), got "
                             f"{self.flags.shape}")
        if len(self.roles) != len(self.ch_names):
            raise ValueError(f"{len(self.ch_names)} channel names but {len(self.roles)} roles")

    @property
    def n_epochs(self) -> int:
        return int(self.flags.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.flags.shape[1])

    def select(self, epochs: slice | np.ndarray | Sequence[int]) -> QualityReport:
        """The report of a subset of epochs (a slice, indices or a boolean mask), e.g. the
        crop of :func:`hypnoscope.signal.epochs.crop_to_sleep_period`."""
        return QualityReport(self.flags[epochs], list(self.ch_names), list(self.roles),
                             self.sfreq, dict(self.thresholds),
                             {k: v[epochs] for k, v in self.metrics.items()})

    def has(self, flag: Q | int) -> np.ndarray:
        """``(n_epochs, n_channels)`` bool: where any bit of ``flag`` is set."""
        return (self.flags & np.uint8(int(flag))) != 0

    @property
    def bad(self) -> np.ndarray:
        """``(n_epochs, n_channels)`` bool: any flag set."""
        return self.flags != 0

    @property
    def bad_epoch(self) -> np.ndarray:
        """``(n_epochs,)`` bool: any channel of the epoch has a flag."""
        return self.bad.any(axis=1)

    @property
    def bad_fraction(self) -> np.ndarray:
        """``(n_channels,)`` float: fraction of epochs with a flag, per channel."""
        if self.n_epochs == 0:
            return np.zeros(self.n_channels)
        return self.bad.mean(axis=0)

    def bad_channels(self, threshold: float = 0.5) -> list[str]:
        """Channels flagged on more than ``threshold`` of the epochs (bad all night)."""
        return [c for c, f in zip(self.ch_names, self.bad_fraction, strict=True)
                if f > threshold]

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable overview: per channel the role, the number of epochs each
        flag is set on, the number and fraction of flagged epochs; overall the number and
        fraction of epochs with any flag and the channels bad for most of the night."""
        channels = {}
        for i, (c, r) in enumerate(zip(self.ch_names, self.roles, strict=True)):
            col = self.flags[:, i]
            channels[c] = {
                "role": r,
                "flags": {FLAG_LABELS[q]: int(((col & int(q)) != 0).sum()) for q in DETECTORS},
                "bad_epochs": int((col != 0).sum()),
                "bad_fraction": float(self.bad_fraction[i]),
            }
        n_bad = int(self.bad_epoch.sum())
        return {
            "n_epochs": self.n_epochs,
            "n_channels": self.n_channels,
            "sfreq": float(self.sfreq),
            "bad_epochs": n_bad,
            "bad_epoch_fraction": float(n_bad / self.n_epochs) if self.n_epochs else 0.0,
            "bad_channels": self.bad_channels(),
            "channels": channels,
        }

    def epoch_labels(self, ok: str = "ok") -> list[str]:
        """One short string per epoch for a TSV column: ``"ok"``, or the flags with the
        channels carrying them, e.g. ``"flat:EEG Fpz-Cz;noise:EOG horizontal"`` (flags
        in :data:`DETECTORS` order, channels in recording order)."""
        out = []
        for row in self.flags:
            if not row.any():
                out.append(ok)
                continue
            parts = []
            for q in DETECTORS:
                chans = [c for c, v in zip(self.ch_names, row, strict=True) if v & int(q)]
                if chans:
                    parts.append(f"{FLAG_LABELS[q]}:{','.join(chans)}")
            out.append(";".join(parts))
        return out


def exclusion_mask(report: QualityReport, channels: Sequence[str | int] | None = None,
                   flags: Q | int = EXCLUDE_DEFAULT, skip_bad_channels: float | None = 0.5,
                   ) -> np.ndarray:
    """Epochs to leave out of per-night normalisation statistics.

    Parameters
    ----------
    report : QualityReport
    channels : sequence of str or int, optional
        Channels (names or indices) whose flags count; default all.
    flags : Q, default :data:`EXCLUDE_DEFAULT`
        Flags that count (all but ``LINE_NOISE``).
    skip_bad_channels : float or None, default 0.5
        Ignore channels flagged on more than this fraction of the night
        (:meth:`QualityReport.bad_channels`): a channel that is bad all night would
        otherwise exclude every epoch, and it needs dropping, not normalising. None keeps
        them.

    Returns
    -------
    ndarray of bool, shape (n_epochs,)
        True = exclude; pass as ``normalization_stats(..., exclude=mask)`` (which falls
        back to all epochs when every one is excluded).
    """
    if channels is None:
        idx = list(range(report.n_channels))
    else:
        idx = []
        for c in channels:
            if isinstance(c, (int, np.integer)):
                idx.append(int(c))
            elif c in report.ch_names:
                idx.append(report.ch_names.index(c))
            else:
                raise ValueError(f"channel {c!r} not in the report: {report.ch_names}")
    if skip_bad_channels is not None:
        frac = report.bad_fraction
        idx = [i for i in idx if frac[i] <= skip_bad_channels]
    if not idx:
        return np.zeros(report.n_epochs, dtype=bool)
    return ((report.flags[:, idx] & np.uint8(int(flags))) != 0).any(axis=1)


# ------------------------------------------------------------------ statistics
def _epoch_stats(x: np.ndarray, sfreq: float, clip_tol: float, clip_still: float,
                 hf_band: tuple[float, float], line_freqs: Sequence[float], jump_span: int,
                 jump_win: int, quiet_k: int, fast_band: tuple[float, float],
                 ) -> dict[str, np.ndarray]:
    """Per-epoch statistics of a chunk ``(n, n_channels, n_times)`` (float32, finite)."""
    from scipy import fft as sfft

    n_t = x.shape[-1]
    level = x.mean(axis=-1, dtype=np.float64)
    xmax, xmin = x.max(axis=-1), x.min(axis=-1)
    rng = (xmax - xmin).astype(np.float64)
    # saturation plateaus: samples close to the epoch's max (min) that did not move since
    # the previous sample (a smooth peak keeps moving by the signal's own noise)
    step1 = np.abs(np.diff(x, axis=-1))
    still = step1 <= (clip_still * step1.mean(axis=-1, dtype=np.float64)).astype(
        np.float32)[..., None]
    tol = (clip_tol * rng).astype(np.float32)[..., None]
    n_hi = ((x[..., 1:] >= (xmax[..., None] - tol)) & still).sum(axis=-1)
    n_lo = ((x[..., 1:] <= (xmin[..., None] + tol)) & still).sum(axis=-1)
    del step1, still
    clip_frac = np.maximum(n_hi, n_lo) / n_t
    # flat stretches: SD (and |mean|) of the quiet_k-th quietest 1-s block
    bs = max(1, int(round(sfreq)))
    nb = n_t // bs
    if 0 < quiet_k <= nb:
        blk = x[..., :nb * bs].reshape(x.shape[:-1] + (nb, bs))
        bmean = blk.mean(axis=-1, dtype=np.float64)
        bsd = np.sqrt(np.mean(np.square(blk - bmean[..., None].astype(np.float32)), axis=-1,
                              dtype=np.float64))
        quiet_sd = np.partition(bsd, quiet_k - 1, axis=-1)[..., quiet_k - 1]
        quiet_level = np.partition(np.abs(bmean), quiet_k - 1, axis=-1)[..., quiet_k - 1]
        del blk, bsd
    else:
        quiet_sd = quiet_level = np.full(x.shape[:-1], np.nan)
    # linear detrend
    tc = (np.arange(n_t, dtype=np.float64) - (n_t - 1) / 2).astype(np.float32)
    denom = float((tc.astype(np.float64) ** 2).sum()) or 1.0
    slope = (x @ tc) / denom
    xd = x - level[..., None].astype(np.float32) - slope[..., None] * tc
    sd = np.sqrt(np.mean(np.square(xd, dtype=np.float32), axis=-1, dtype=np.float64))
    ptp = (xd.max(axis=-1) - xd.min(axis=-1)).astype(np.float64)
    # baseline jump: sharpest change over `jump_span` samples, and the mean shift across it
    s = min(jump_span, n_t - 1)
    d = x[..., s:] - x[..., :-s]
    t = np.abs(d).argmax(axis=-1)
    dval = np.take_along_axis(d, t[..., None], axis=-1)[..., 0].astype(np.float64)
    b0, b1 = np.maximum(t + 1 - jump_win, 0), t + 1
    a0, a1 = t + s, np.minimum(t + s + jump_win, n_t)
    offs = np.arange(jump_win)

    def _wmean(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Mean of x[..., lo:hi] per row (windows of at most ``jump_win`` samples)."""
        idx = lo[..., None] + offs
        inside = idx < hi[..., None]
        vals = np.take_along_axis(x, np.minimum(idx, n_t - 1), axis=-1)
        return (vals * inside).sum(axis=-1, dtype=np.float64) / np.maximum(hi - lo, 1)

    shift = (_wmean(a0, a1) - _wmean(b0, b1)) * np.sign(dval)
    # spectrum: Hann-windowed periodogram of the detrended epoch (one-sided PSD, µV²/Hz)
    win = np.hanning(n_t).astype(np.float32)
    spec = sfft.rfft(xd * win, axis=-1, workers=-1)
    psd = (spec.real ** 2 + spec.imag ** 2) * np.float32(2.0 / (sfreq * float((win ** 2).sum())))
    freqs = sfft.rfftfreq(n_t, 1.0 / sfreq)
    df = freqs[1] - freqs[0] if len(freqs) > 1 else 1.0
    lo, hi = hf_band
    tot_sel = (freqs >= 0.5) & (freqs <= hi)
    hf_sel = (freqs >= lo) & (freqs <= hi)
    p_tot = psd[..., tot_sel].sum(axis=-1, dtype=np.float64) * df
    p_hf = psd[..., hf_sel].sum(axis=-1, dtype=np.float64) * df
    hf_ratio = p_hf / np.maximum(p_tot, _LOG_FLOOR)
    fast_sel = (freqs >= fast_band[0]) & (freqs <= fast_band[1])
    p_fast = psd[..., fast_sel].sum(axis=-1, dtype=np.float64) * df
    line_uv = np.full(x.shape[:-1], np.nan)
    line_ratio = np.full(x.shape[:-1], np.nan)
    nyq = sfreq / 2.0
    for f0 in line_freqs:
        if f0 + 1.5 >= nyq:
            continue
        peak = np.abs(freqs - f0) <= 0.5
        neigh = ((np.abs(freqs - f0) >= 2.0) & (np.abs(freqs - f0) <= 6.0)
                 & (freqs < 0.98 * nyq))
        if not peak.any() or not neigh.any():
            continue
        base = np.median(psd[..., neigh], axis=-1).astype(np.float64)
        pk = psd[..., peak].astype(np.float64)
        ratio = pk.mean(axis=-1) / np.maximum(base, _LOG_FLOOR)
        rms = np.sqrt(np.clip(pk - base[..., None], 0, None).sum(axis=-1) * df)
        better = ~(line_uv >= rms)  # NaN-aware: take the first valid, then the larger
        line_uv = np.where(better, rms, line_uv)
        line_ratio = np.where(better, ratio, line_ratio)
    return {"level": level, "range": rng, "clip_fraction": clip_frac, "sd": sd, "ptp": ptp,
            "jump_uv": np.abs(dval), "shift_uv": shift, "hf_ratio": hf_ratio,
            "hf_uv": np.sqrt(p_hf), "fast_uv": np.sqrt(p_fast), "line_uv": line_uv,
            "line_ratio": line_ratio,
            "quiet_sd": quiet_sd, "quiet_level": quiet_level}


def _robust_z(values: np.ndarray, ref: np.ndarray, min_epochs: int,
              ) -> tuple[np.ndarray, float, float]:
    """Robust z of ``values`` (1-D, log scale) against the ``ref`` subset: (z, median,
    sigma); z is NaN when fewer than ``min_epochs`` reference values exist."""
    v = values[ref & np.isfinite(values)]
    if v.size < max(min_epochs, 1):
        return np.full(values.shape, np.nan), float("nan"), float("nan")
    med = float(np.median(v))
    sigma = 1.4826 * float(np.median(np.abs(v - med)))
    z = (values - med) / sigma if sigma > 0 else np.where(values > med, np.inf, 0.0)
    return z, med, sigma


# ------------------------------------------------------------------ main entry
def epoch_quality(epochs: np.ndarray, sfreq: float, roles: Sequence[str],
                  ch_names: Sequence[str] | None = None, *,
                  flat_sd_uv: PerRole = None, flat_rel: PerRole = None,
                  flat_min_sec: float = 10.0,
                  clip_fraction: PerRole = None, clip_tol: float = 0.005,
                  clip_still: float = 0.05,
                  amp_ptp_uv: PerRole = None, amp_scale_max_uv: PerRole = None,
                  amp_ptp_rel: PerRole = None, amp_z: PerRole = None,
                  amp_min_ratio: PerRole = None, amp_fast_ratio: PerRole = None,
                  amp_fast_band: tuple[float, float] = AMP_FAST_BAND,
                  hf_band: tuple[float, float] = (30.0, 45.0), hf_ratio_max: PerRole = None,
                  hf_z: float = 2.0, hf_min_ratio: float = 8.0, hf_ratio_min: float = 0.03,
                  hf_min_uv: float = 2.0,
                  line_freqs: Sequence[float] = (50.0, 60.0), line_ratio: PerRole = None,
                  line_min_uv: float = 5.0,
                  jump_rel: PerRole = None, jump_uv: PerRole = None,
                  jump_span_sec: float = 0.02,
                  jump_window_sec: float = 1.0, jump_keep: float = 0.5,
                  rel_min_epochs: int = 20, chunk_samples: int = 250_000,
                  ) -> QualityReport:
    """Flag bad signal per epoch and channel (the module docstring defines each detector).

    Parameters
    ----------
    epochs : ndarray, shape (n_epochs, n_channels, n_times)
        Signals in µV as read (not band-passed, not normalised), e.g.
        ``epoch_signals(recording.data, recording.sfreq)``. Any epoch length works;
        the night-relative rules assume the epochs are one recording.
    sfreq : float
        Sampling rate in Hz.
    roles : sequence of str
        Role of each channel: ``"eeg"``, ``"eog"``, ``"emg"`` or ``"emg_envelope"``.
    ch_names : sequence of str, optional
        Channel labels (default ``ch0``, ``ch1``...).

    Other Parameters
    ----------------
    flat_sd_uv, flat_rel, flat_min_sec
        FLAT: absolute floor of the SD (envelope: level) of the epoch, µV
        (:data:`FLAT_SD_DEFAULTS`; its 1-s blocks: :data:`FLAT_QUIET_FACTOR` times
        that); relative floor, times the night's median
        (:data:`FLAT_REL_DEFAULTS`); seconds of flat 1-s blocks that make it FLAT.
    clip_fraction, clip_tol, clip_still
        CLIPPED: share of plateau samples at the max or min (default 0.01, off for
        envelopes); a plateau sample lies within ``clip_tol`` x peak-to-peak of the
        extreme and moved at most ``clip_still`` x the mean absolute change.
    amp_ptp_uv, amp_scale_max_uv, amp_ptp_rel
        AMPLITUDE bounds: outer bounds on one epoch's detrended peak-to-peak and on the
        channel's scale, µV (:data:`AMP_PTP_DEFAULTS`, :data:`AMP_SCALE_MAX_DEFAULTS`);
        spike limit, times the scale (:data:`AMP_PTP_REL_DEFAULTS`).
    amp_z, amp_min_ratio, amp_fast_ratio, amp_fast_band
        AMPLITUDE outliers of the night: ``log SD > median + max(amp_z * sigma,
        log(amp_min_ratio))``, and the same for the RMS in ``amp_fast_band`` with
        ``amp_fast_ratio`` (:data:`AMP_Z_DEFAULTS`, :data:`AMP_MIN_RATIO_DEFAULTS`,
        :data:`AMP_FAST_RATIO_DEFAULTS`, :data:`AMP_FAST_BAND`).
    hf_band, hf_ratio_max, hf_z, hf_min_ratio, hf_ratio_min, hf_min_uv
        HF_NOISE: band in Hz (upper edge capped at 0.45 * sfreq); absolute rule on its
        share of the 0.5-45 Hz power (:data:`HF_RATIO_MAX_DEFAULTS`, off for EMG and
        envelopes); relative rule ``log hf > median + max(hf_z * sigma,
        log(hf_min_ratio))`` with share above ``hf_ratio_min``; least HF RMS, µV.
    line_freqs, line_ratio, line_min_uv
        LINE_NOISE: mains frequencies checked (those below Nyquist - 1.5 Hz), the
        peak-to-neighbour PSD ratio (default 10, off for envelopes), least RMS, µV.
    jump_rel, jump_uv, jump_span_sec, jump_window_sec, jump_keep
        DISCONNECTED baseline jump of ``J = max(jump_uv, jump_rel * scale)`` µV
        (:data:`JUMP_UV_DEFAULTS`, :data:`JUMP_REL_DEFAULTS`) within ``jump_span_sec``
        that shifts the mean over ``jump_window_sec`` either side by ``jump_keep`` x
        ``J``.
    rel_min_epochs : int, default 20
        Fewest reference epochs for the night-relative rules.
    chunk_samples : int, default 250,000
        Samples processed at a time (bounds the memory used); the result does not
        depend on it.

    Returns
    -------
    QualityReport
    """
    x_all, roles, names, sfreq = _checked_input(epochs, sfreq, roles, ch_names)
    th = _thresholds(sfreq, flat_sd_uv=flat_sd_uv, flat_rel=flat_rel,
                     flat_min_sec=flat_min_sec, clip_fraction=clip_fraction,
                     clip_tol=clip_tol, clip_still=clip_still, amp_ptp_uv=amp_ptp_uv,
                     amp_scale_max_uv=amp_scale_max_uv, amp_ptp_rel=amp_ptp_rel,
                     amp_z=amp_z, amp_min_ratio=amp_min_ratio,
                     amp_fast_ratio=amp_fast_ratio, amp_fast_band=amp_fast_band,
                     hf_band=hf_band,
                     hf_ratio_max=hf_ratio_max, hf_z=hf_z, hf_min_ratio=hf_min_ratio,
                     hf_ratio_min=hf_ratio_min, hf_min_uv=hf_min_uv, line_freqs=line_freqs,
                     line_ratio=line_ratio, line_min_uv=line_min_uv, jump_rel=jump_rel,
                     jump_uv=jump_uv,
                     jump_span_sec=jump_span_sec, jump_window_sec=jump_window_sec,
                     jump_keep=jump_keep, rel_min_epochs=rel_min_epochs)
    st, nonfinite = _night_stats(x_all, sfreq, th, chunk_samples)
    n_ep, n_ch = nonfinite.shape
    flags = np.zeros((n_ep, n_ch), dtype=np.uint8)
    zs = {k: np.full((n_ep, n_ch), np.nan) for k in ("amp_z", "fast_z", "hf_z")}
    for c, role in enumerate(roles):
        flags[:, c] = _channel_flags({k: v[:, c] for k, v in st.items()}, nonfinite[:, c],
                                     role, th, {k: v[:, c] for k, v in zs.items()})
    metrics = {k: st[k].astype(np.float32) for k in
               ("sd", "ptp", "level", "quiet_sd", "clip_fraction", "hf_ratio", "hf_uv",
                "fast_uv", "line_uv", "jump_uv", "shift_uv")}
    metrics.update({k: v.astype(np.float32) for k, v in zs.items()})
    return QualityReport(flags=flags, ch_names=names, roles=roles, sfreq=sfreq,
                         thresholds=th, metrics=metrics)


def _checked_input(epochs: np.ndarray, sfreq: float, roles: Sequence[str],
                   ch_names: Sequence[str] | None,
                   ) -> tuple[np.ndarray, list[str], list[str], float]:
    """``(epochs, roles, names, sfreq)`` of :func:`epoch_quality`, checked."""
    x_all = np.asarray(epochs)
    if x_all.ndim != 3:
        raise ValueError(f"epochs must be (n_epochs, n_channels, n_times), got shape "
                         f"{x_all.shape}")
    _, n_ch, n_t = x_all.shape
    roles = [str(r) for r in roles]
    if len(roles) != n_ch:
        raise ValueError(f"{n_ch} channels but {len(roles)} roles")
    bad_roles = sorted(set(roles) - set(QUALITY_ROLES))
    if bad_roles:
        raise ValueError(f"unknown channel role(s) {bad_roles}; expected {list(QUALITY_ROLES)}")
    names = [f"ch{i}" for i in range(n_ch)] if ch_names is None else [str(c) for c in ch_names]
    if len(names) != n_ch:
        raise ValueError(f"{n_ch} channels but {len(names)} channel names")
    if not sfreq > 0:
        raise ValueError(f"sfreq must be positive, got {sfreq}")
    if n_t < 2:
        raise ValueError(f"epochs need at least 2 samples, got {n_t}")
    return x_all, roles, names, float(sfreq)


def _thresholds(sfreq: float, **kw: Any) -> dict[str, Any]:
    """The thresholds of :func:`epoch_quality` (its keyword arguments), per role where
    they differ by role, as the report keeps them."""
    per_role = {"flat_sd_uv": FLAT_SD_DEFAULTS, "flat_rel": FLAT_REL_DEFAULTS,
                "clip_fraction": CLIP_FRACTION_DEFAULTS, "amp_ptp_uv": AMP_PTP_DEFAULTS,
                "amp_scale_max_uv": AMP_SCALE_MAX_DEFAULTS,
                "amp_ptp_rel": AMP_PTP_REL_DEFAULTS, "amp_z": AMP_Z_DEFAULTS,
                "amp_min_ratio": AMP_MIN_RATIO_DEFAULTS,
                "amp_fast_ratio": AMP_FAST_RATIO_DEFAULTS,
                "hf_ratio_max": HF_RATIO_MAX_DEFAULTS, "line_ratio": LINE_RATIO_DEFAULTS,
                "jump_rel": JUMP_REL_DEFAULTS, "jump_uv": JUMP_UV_DEFAULTS}
    th = {k: _per_role(kw[k], defaults, k) for k, defaults in per_role.items()}
    hf_hi = min(float(kw["hf_band"][1]), 0.45 * sfreq)
    hf_lo = float(kw["hf_band"][0])
    fast_lo = float(kw["amp_fast_band"][0])
    fast_hi = min(float(kw["amp_fast_band"][1]), 0.45 * sfreq)
    th.update({"amp_fast_band": [fast_lo, max(fast_hi, fast_lo)],
               "flat_min_sec": float(kw["flat_min_sec"]), "clip_tol": float(kw["clip_tol"]),
               "clip_still": float(kw["clip_still"]), "hf_band": [hf_lo, hf_hi],
               "hf_z": float(kw["hf_z"]), "hf_min_ratio": float(kw["hf_min_ratio"]),
               "hf_ratio_min": float(kw["hf_ratio_min"]),
               "hf_min_uv": float(kw["hf_min_uv"]),
               "line_freqs": [float(f) for f in kw["line_freqs"]],
               "line_min_uv": float(kw["line_min_uv"]),
               "jump_span_sec": float(kw["jump_span_sec"]),
               "jump_window_sec": float(kw["jump_window_sec"]),
               "jump_keep": float(kw["jump_keep"]),
               "rel_min_epochs": int(kw["rel_min_epochs"])})
    return th


#: Per-epoch statistics of :func:`_epoch_stats` that :func:`epoch_quality` keeps.
_STAT_KEYS = ("level", "range", "clip_fraction", "sd", "ptp", "jump_uv", "shift_uv",
              "hf_ratio", "hf_uv", "fast_uv", "line_uv", "line_ratio", "quiet_sd",
              "quiet_level")


def _night_stats(x_all: np.ndarray, sfreq: float, th: dict[str, Any], chunk_samples: int,
                 ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The statistics of every epoch and channel (:func:`_epoch_stats`, chunk by chunk;
    non-finite samples as zeros) and where an epoch had non-finite samples."""
    n_ep, n_ch, n_t = x_all.shape
    hf_lo, hf_hi = th["hf_band"]
    flat_min_sec = th["flat_min_sec"]
    jump_span = max(1, int(round(th["jump_span_sec"] * sfreq)))
    jump_win = max(1, int(round(th["jump_window_sec"] * sfreq)))
    quiet_k = int(np.ceil(flat_min_sec - 1e-9)) if flat_min_sec > 0 else 0
    st = {k: np.empty((n_ep, n_ch), dtype=np.float64) for k in _STAT_KEYS}
    nonfinite = np.zeros((n_ep, n_ch), dtype=bool)
    step = max(1, int(chunk_samples // max(n_ch * n_t, 1)))
    for a in range(0, n_ep, step):
        chunk = np.asarray(x_all[a:a + step], dtype=np.float32)
        fin = np.isfinite(chunk)
        if not fin.all():
            nonfinite[a:a + step] = ~fin.all(axis=-1)
            chunk = np.where(fin, chunk, np.float32(0.0))
        res = _epoch_stats(chunk, sfreq, th["clip_tol"], th["clip_still"],
                           (hf_lo, hf_hi if hf_lo < hf_hi else hf_lo + 1.0),
                           th["line_freqs"], jump_span, jump_win, quiet_k,
                           tuple(th["amp_fast_band"]))
        for k in _STAT_KEYS:
            st[k][a:a + step] = res[k]
    return st, nonfinite


def _channel_scale(amp: np.ndarray, usable: np.ndarray) -> float:
    """The channel's scale: median amplitude (SD; envelope: level) of its ``usable``
    epochs, NaN when there is none."""
    v = amp[usable & np.isfinite(amp)]
    return float(np.median(v)) if v.size else float("nan")


def _channel_flags(st: dict[str, np.ndarray], nonfinite: np.ndarray, role: str,
                   th: dict[str, Any], zs: dict[str, np.ndarray]) -> np.ndarray:
    """The :class:`Q` flags of one channel's epochs from its statistics ``st`` (the
    detectors of the module docstring); its robust z values go into ``zs`` (``amp_z``,
    ``fast_z``, ``hf_z``)."""
    n_ep = len(nonfinite)
    rel_min_epochs = th["rel_min_epochs"]
    env = role == "emg_envelope"
    level = st["level"]
    amp = np.abs(level) if env else st["sd"]  # the amplitude measure of the role
    const = st["range"] <= 1e-6 * np.maximum(np.abs(level), 1.0)
    # DISCONNECTED (dead/railed, missing samples) and FLAT (absolute part first)
    disc = nonfinite.copy()
    if not env:
        disc |= const
    flat = const.copy()
    if th["flat_sd_uv"][role] is not None:
        quiet = st["quiet_level"] if env else st["quiet_sd"]
        flat |= (amp < th["flat_sd_uv"][role]) | (
            quiet < FLAT_QUIET_FACTOR * th["flat_sd_uv"][role])
    scale = _channel_scale(amp, ~flat & ~disc)
    # DISCONNECTED: baseline jump, relative to the channel's scale
    jr, ju = th["jump_rel"][role], th["jump_uv"][role]
    if jr is not None and ju is not None:
        lim = max(ju, jr * scale) if np.isfinite(scale) else ju
        disc |= (st["jump_uv"] >= lim) & (st["shift_uv"] >= th["jump_keep"] * lim)
    amp_abs = _amplitude_bounds(st, amp, scale, ~flat & ~disc, role, th)
    ref = ~flat & ~disc & ~amp_abs
    # relative FLAT
    rel = th["flat_rel"][role]
    valid = ref & (amp > 0)
    if rel is not None and valid.sum() >= rel_min_epochs:
        flat |= amp < rel * float(np.median(amp[valid]))
        ref &= ~flat
    amp_rel = _amplitude_outliers(st, amp, ref, role, th, zs)
    # CLIPPED
    cf = th["clip_fraction"][role]
    clipped = np.zeros(n_ep, dtype=bool)
    if cf is not None:
        clipped = (st["clip_fraction"] >= cf) & ~const
    hf = _hf_noise(st, ref & ~amp_rel, flat, role, th, zs["hf_z"])
    # LINE_NOISE
    line = np.zeros(n_ep, dtype=bool)
    lr = th["line_ratio"][role]
    if lr is not None:
        line = (st["line_ratio"] >= lr) & (st["line_uv"] >= th["line_min_uv"])
    f = np.zeros(n_ep, dtype=np.uint8)
    f[flat] |= int(Q.FLAT)
    f[clipped] |= int(Q.CLIPPED)
    f[amp_abs | amp_rel] |= int(Q.AMPLITUDE)
    f[hf] |= int(Q.HF_NOISE)
    f[line] |= int(Q.LINE_NOISE)
    f[disc] |= int(Q.DISCONNECTED)
    return f


def _amplitude_bounds(st: dict[str, np.ndarray], amp: np.ndarray, scale: float,
                      usable: np.ndarray, role: str, th: dict[str, Any]) -> np.ndarray:
    """AMPLITUDE of one channel's epochs by its bounds: the outer bound on one epoch
    (``amp_ptp_uv``), the outer bound on the channel's ``scale`` (``amp_scale_max_uv``:
    every ``usable`` epoch) and the spike limit relative to the scale (``amp_ptp_rel``)."""
    env = role == "emg_envelope"
    size = amp if env else st["ptp"]
    out = np.zeros(len(amp), dtype=bool)
    lim = th["amp_ptp_uv"][role]
    if lim is not None:
        out |= size > lim
    smax = th["amp_scale_max_uv"][role]
    if smax is not None and np.isfinite(scale) and scale > smax:
        out |= usable
    prel = th["amp_ptp_rel"][role]
    if prel is not None and np.isfinite(scale) and not env:
        out |= size > prel * scale
    return out


def _amplitude_outliers(st: dict[str, np.ndarray], amp: np.ndarray, ref: np.ndarray,
                        role: str, th: dict[str, Any], zs: dict[str, np.ndarray],
                        ) -> np.ndarray:
    """AMPLITUDE of one channel's epochs against the night's reference epochs ``ref``:
    log SD (envelope: level) or log fast-band RMS far above the night's median (robust
    z values into ``zs["amp_z"]`` and ``zs["fast_z"]``)."""
    out = np.zeros(len(amp), dtype=bool)
    az = th["amp_z"][role]
    rules = (("amp_z", amp, th["amp_min_ratio"][role]),
             ("fast_z", st["fast_uv"], th["amp_fast_ratio"][role]))
    for key, values, ratio in rules:
        if key == "fast_z" and (ratio is None or role == "emg_envelope"):
            continue
        logv = np.log(np.maximum(values, _LOG_FLOOR))
        z, med, sigma = _robust_z(logv, ref, th["rel_min_epochs"])
        zs[key][:] = z
        if az is not None and np.isfinite(med):
            margin = max(az * sigma, np.log(ratio) if ratio is not None else 0.0)
            out |= logv > med + margin
    return out


def _hf_noise(st: dict[str, np.ndarray], ref: np.ndarray, flat: np.ndarray, role: str,
              th: dict[str, Any], hf_zs: np.ndarray) -> np.ndarray:
    """HF_NOISE of one channel's epochs (EEG/EOG): absolute share, or high against the
    night's reference epochs ``ref``; its robust z values go into ``hf_zs``."""
    hf = np.zeros(len(flat), dtype=bool)
    hmax = th["hf_ratio_max"][role]
    if hmax is None or not th["hf_band"][0] < th["hf_band"][1]:
        return hf
    ratio, hf_uv = st["hf_ratio"], st["hf_uv"]
    log_hf = np.log(np.maximum(hf_uv, _LOG_FLOOR))
    hz, hmed, hsig = _robust_z(log_hf, ref, th["rel_min_epochs"])
    hf_zs[:] = hz
    hf = ratio > hmax
    if np.isfinite(hmed):
        margin = max(th["hf_z"] * hsig, np.log(th["hf_min_ratio"]))
        hf |= (log_hf > hmed + margin) & (ratio > th["hf_ratio_min"])
    return hf & (hf_uv >= th["hf_min_uv"]) & ~flat


def recording_quality(recording: PSGRecording, epoch_sec: float = 30.0,
                      onset_sec: float = 0.0, **thresholds: Any) -> QualityReport:
    """:func:`epoch_quality` of a :class:`~hypnoscope.io.psg.PSGRecording` as read (µV),
    cut into epochs with :func:`hypnoscope.signal.epochs.epoch_signals`; ``onset_sec``
    aligns the epochs with a hypnogram (its ``onset_sec``)."""
    from hypnoscope.signal.epochs import epoch_signals

    ep = epoch_signals(recording.data, recording.sfreq, epoch_sec=epoch_sec,
                       onset_sec=onset_sec)
    return epoch_quality(ep, recording.sfreq, recording.roles, recording.ch_names,
                         **thresholds)
