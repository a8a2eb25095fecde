"""Stage a whole night: recording in, :class:`~hypnoscope.hypnogram.Hypnogram` out.

:func:`stage` reads a PSG (path or :class:`mne.io.BaseRaw`), computes the input of the
chosen model and returns a hypnogram with per-epoch stages, probabilities and confidence.

:func:`stage_recording` runs as a chain of named steps (:data:`STEPS`), each taking and
returning one state object: read the recording (units checked by the reader), check its
signal quality, choose the channels and the model and compute the model's input
(:mod:`hypnoscope.staging.model_input`), bound the night (lights-off/on), stage it, crop
it, stage it again over the normalisation window, and add the notices. Writing output
sets lives in :mod:`hypnoscope.staging.outputs`
(:func:`~hypnoscope.staging.outputs.stage_file`; still importable from here).

Models are named as in :mod:`hypnoscope.models.storage` (shipped names such as
``default``, model files, or model objects). ``default`` is a band-power model trained
on the real Sleep-EDF band-power set (see :mod:`hypnoscope.signal.bandpower`).

Normalisation window
--------------------
The real band-power set z-scores each recording over the night cropped to 30 min of wake
around the sleep period. Without a hypnogram that period is unknown, so band-power models
stage twice (``normalize="sleep-period"``, the default): first with statistics over the
whole recording, then with statistics over the sleep period (+-30 min) that the first
pass found, on the epochs of that period only (as the training nights were cropped before
any per-night statistic); epochs outside it keep the first pass. The spectra are computed
once (see :class:`hypnoscope.signal.bandpower.BandPowerNight`), so the second pass costs one
more model prediction.

Signal quality
--------------
Every staged recording is checked epoch by epoch and channel by channel on the µV
signals as read, before any filter (:func:`hypnoscope.signal.quality.recording_quality`; the
detectors are defined in :mod:`hypnoscope.signal.quality`). What follows from the flags:

- **Unstageable epochs** (the rule): an epoch is *unscored* -- stage ``?`` (code
  -100), probabilities and confidence 0 -- when any channel the model reads carries a
  flag of :data:`UNSTAGEABLE_FLAGS` there: FLAT, DISCONNECTED, CLIPPED, AMPLITUDE or
  HF_NOISE, i.e. every flag but mains noise (LINE_NOISE, which the band-pass removes;
  such epochs are staged and marked). A model combines all its input channels in
  every epoch (the default model: both EEG and the EOG), so one channel without usable
  signal makes its features garbage and the stage a guess; the epoch is left to a
  human scorer instead of getting a confident stage. High-frequency noise counts
  because noise strong enough to be flagged (>= 8x the night's median 30-45 Hz power,
  or a quarter of all power) also fills the beta band the features use, so that
  staged, such epochs come out as confident wake. Real wake with heavy muscle
  artefact may be flagged too and is then unscored (as scorers often mark movement
  and artefact epochs). Unscored epochs count as time in bed but neither as sleep nor
  as wake in the sleep statistics
  (:func:`hypnoscope.evaluation.sleepstats.sleep_statistics`) and are left out of
  agreement.
  (At 100 Hz, the staging rate, the mains detector cannot fire: 50 Hz is the Nyquist
  frequency, removed by the reader's anti-alias filter.)
- **Bad channels**: a channel flagged on more than :data:`BAD_CHANNEL_FRACTION` of the
  epochs (:meth:`~hypnoscope.signal.quality.QualityReport.bad_channels`) is dropped with a
  ``channel-dropped`` notice, and the model's channels are chosen from the others; if
  the model cannot do without it (the default model needs two EEG and one EOG
  channel), :class:`SignalQualityError` names the channel and the problem, e.g.
  ``EEG channel 'EEG Fpz-Cz' is flat for 100 % of the night``.
- **Normalisation without bad epochs**: the per-night statistics -- the band-power
  z-score (:meth:`hypnoscope.signal.bandpower.BandPowerNight.window_std`), the continuous
  scaling of signal models and every per-night statistic inside a model (context
  features, sequence normalisation) -- are computed without the flagged epochs
  (:func:`hypnoscope.signal.quality.exclusion_mask`), and unscored epochs are not given to
  the model at all, so one bad hour cannot rescale the rest of the night.
- Notices ``bad-epochs`` and ``noisy-epochs`` count them (warnings when they exceed
  :data:`BAD_EPOCHS_WARN_FRACTION` of the staged span, else info), and every epoch's
  flags, with the channels carrying them, are in ``hypnogram.quality``.

Night boundaries
----------------
``lights_off``/``lights_on`` (seconds or clock times) limit staging to the epochs
between them; recordings longer than :data:`AUTO_CROP_HOURS` (the 24-h Sleep-EDF
cassette files) are cropped by default to the main sleep period found by a first pass
(:func:`main_sleep_period`) plus 30 min of wake either side, as the training nights
were. Epochs outside the span are unscored (quality ``outside-span``); ``info["span"]``
records the span and the lights-off/on that :meth:`StagingResult.sleep_statistics`,
:meth:`StagingResult.compare` and the report use, so statistics and agreement cover
the same time in bed.
"""


from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hypnoscope.evaluation.sleepstats import (  # noqa: F401 - the crop, named here too
    AUTO_CROP_HOURS,
    CROP_PAD_MIN,
    main_sleep_period,
    sleep_period_crop,
)
from hypnoscope.evaluation.sleepstats import clock_time as _when
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.models.consensus import ConsensusStager
from hypnoscope.models.storage import AUTO_MODEL, DEFAULT_MODEL, load_staging_model
from hypnoscope.notices import Notice, Notices, notices_of
from hypnoscope.signal.quality import (
    DETECTORS,
    FLAG_LABELS,
    Q,
    QualityReport,
    exclusion_mask,
    recording_quality,
)
from hypnoscope.stages import UNSCORED
from hypnoscope.staging.model_input import (
    BANDPOWER,
    INPUT_KINDS,
    ModelInput,
    consensus_input,
    input_kind,
    model_input,
    model_sfreq,
    read_recording,
    sleep_period_window,
)
from hypnoscope.staging.short_recordings import short_recording_notice

#: Epoch length of staging (s).
EPOCH_SEC = 30.0
#: Quality flags that make an epoch unstageable (unscored) when any channel the model
#: reads carries one (see "Signal quality" above).
UNSTAGEABLE_FLAGS: Q = Q.FLAT | Q.DISCONNECTED | Q.CLIPPED | Q.AMPLITUDE | Q.HF_NOISE
#: A channel flagged on more than this fraction of the epochs is dropped.
BAD_CHANNEL_FRACTION = 0.5
#: Unscored (or noisy) epochs above this fraction of the staged span make the
#: ``bad-epochs`` (``noisy-epochs``) notice a warning rather than info.
BAD_EPOCHS_WARN_FRACTION = 0.05
#: Quality label of epochs outside the staged span.
OUTSIDE_SPAN = "outside-span"
#: The unstageable-epoch rule, as stored in ``info["quality"]["rule"]``.
UNSTAGEABLE_RULE = ("an epoch is unscored when a channel the model reads is flat, "
                    "disconnected, clipped, of implausible amplitude or noisy (30-45 Hz) "
                    "there; mains noise alone is marked but staged")


def choose_model(roles: list[str], source: str = "recording",
                 ch_names: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    """The richest shipped model that a recording with channels of these roles can feed.

    Candidates are the shipped models named after a channel setup
    (:data:`hypnoscope.staging.channel_setups.CHANNEL_SETUPS`) whose channels the roles cover
    (with ``ch_names``, a two-EEG model also needs a second EEG channel that is not
    frontal/central, see :func:`~hypnoscope.staging.channel_setups.setup_for_roles`); the one
    with the most channels wins, ties go to the higher subject-wise CV kappa of its
    model card.

    Returns
    -------
    name : str
        Shipped model name.
    choice : dict
        ``chosen``, ``setup`` (what it reads), ``channels_available`` (EEG/EOG counts),
        ``candidates`` (name -> CV kappa) and ``reason`` (one sentence).

    Raises
    ------
    ValueError
        If no shipped model fits (no EEG channel), naming what was found.
    """
    from hypnoscope.models.storage import shipped_models
    from hypnoscope.staging.channel_setups import setup_for_roles

    shipped = shipped_models()
    n_eeg, n_eog = roles.count("eeg"), roles.count("eog")

    def kappa(name: str) -> float:
        cv = (shipped[name].get("cross_validation") or {}).get("pooled") or {}
        return float(cv.get("kappa", 0.0))

    fits = [s for s in setup_for_roles(list(roles), ch_names) if s.name in shipped]
    anterior_only = n_eeg >= 2 and not any(s.n_eeg == 2 for s in fits)
    if not fits:
        raise ValueError(f"{source}: no shipped model can stage it: every model reads at "
                         f"least one EEG channel, and {n_eeg} EEG and {n_eog} EOG channel(s) "
                         "were recognised by name. Name the channels with --eeg/--eog "
                         "(Python: eeg=, eog=)")
    best = max(fits, key=lambda s: (len(s.slots), kappa(s.name)))
    cv = kappa(best.name)
    reason = (f"model {best.name!r} was chosen for the channels found ({n_eeg} EEG, "
              f"{n_eog} EOG): it reads {best.description}"
              + (f" (subject-wise CV kappa {cv:.3f} on real Sleep-EDF nights)" if cv else "")
              + ("; the EEG channels are all frontal/central, and two-EEG models read a "
                 "parieto-occipital one (Pz-Oz) in their second slot" if anterior_only
                 else "")
              + "; --model NAME chooses another")
    return best.name, {"mode": AUTO_MODEL, "chosen": best.name, "setup": best.description,
                       "channels_available": {"eeg": n_eeg, "eog": n_eog},
                       "candidates": {s.name: kappa(s.name) for s in fits},
                       "reason": reason}


@dataclass
class StagingResult:
    """A staged recording: the hypnogram plus what was done to get it.

    Attributes
    ----------
    hypnogram : Hypnogram
        One epoch per 30 s of the whole recording, with ``probabilities``,
        ``confidence`` and ``quality`` (per-epoch signal-quality labels). Epochs that
        were not staged (unusable signal, or outside the staged span) are unscored:
        stage ``?`` (code -100), probabilities and confidence 0.
    info : dict
        ``channels`` used, ``model``, ``input``, ``normalization_window_epochs``,
        ``quality`` (summary of every channel read, see :func:`stage_recording`),
        ``span`` (the epochs staged and the lights-off/on that sleep statistics use),
        ``notices`` (:class:`~hypnoscope.notices.Notices`), ``warnings`` (their
        messages of severity warning), ``unit_factors`` (channel -> the power-of-1000
        factor the reader's units rule applied), ``timings``...
    quality : QualityReport or None
        Signal quality of every epoch and channel read (None with
        ``check_quality=False``).
    """

    hypnogram: Hypnogram
    info: dict[str, Any] = field(default_factory=dict)
    quality: QualityReport | None = None

    @property
    def notices(self) -> Notices:
        """What staging noticed (``info["notices"]``)."""
        return notices_of(self.info)

    @property
    def lights(self) -> tuple[float | None, float | None]:
        """Lights-off and lights-on (s from the recording start) that bound the time in
        bed of the sleep statistics: the given ones, the automatic crop, or None (first
        and last scored epoch)."""
        span = self.info.get("span") or {}
        return span.get("lights_off_sec"), span.get("lights_on_sec")

    def sleep_statistics(self) -> dict[str, float]:
        """:func:`hypnoscope.evaluation.sleepstats.sleep_statistics` over the staged span."""
        from hypnoscope.evaluation.sleepstats import sleep_statistics

        off, on = self.lights
        return sleep_statistics(self.hypnogram, off, on, notices=self.notices)

    def compare(self, reference: Hypnogram) -> dict[str, Any]:
        """Agreement with a reference hypnogram of the same recording
        (:func:`hypnoscope.evaluation.metrics.compare_hypnograms`), with the sleep statistics of
        both over the staged span; epochs outside it, or unscored, are not compared. A
        reference that covers part of the recording is compared over that part (notice
        ``reference-partial`` in :attr:`notices`)."""
        from hypnoscope.evaluation.metrics import compare_hypnograms

        off, on = self.lights
        return compare_hypnograms(self.hypnogram, reference, lights_off=off, lights_on=on,
                                  notices=self.notices)


class SignalQualityError(ValueError):
    """The signals of a recording do not allow staging: a channel the model needs is bad
    for most of the night and no other can replace it, or no epoch has usable signal.
    The message names the file, the channel and what is wrong with it."""


# ------------------------------------------------------------------ helpers
def _pct(part: float, whole: float) -> str:
    """``"12 %"``; ``"<1 %"`` for a small non-zero share."""
    if whole <= 0:
        return "0 %"
    p = 100.0 * part / whole
    return "<1 %" if 0 < p < 0.5 else f"{p:.0f} %"


def _channel_problem(report: QualityReport, i: int) -> str:
    """What is wrong with channel ``i`` over the night, e.g. ``"flat for 100 % of the
    night (840 of 840 epochs flagged: flat 840, disconnected 840)"``."""
    col = report.flags[:, i]
    n = report.n_epochs
    counts = [(FLAG_LABELS[q], int(((col & int(q)) != 0).sum())) for q in DETECTORS]
    counts = sorted((c for c in counts if c[1]), key=lambda c: -c[1])
    words = {"flat": "flat", "clipped": "clipped (saturated)",
             "amplitude": "of implausible amplitude", "noise": "noisy (high-frequency noise)",
             "line": "carrying mains noise", "disconnected": "disconnected (no signal or "
             "baseline jumps)"}
    n_bad = int((col != 0).sum())
    main = counts[0][0] if counts else "flat"
    detail = ", ".join(f"{k} {v}" for k, v in counts)
    return (f"{words[main]} for {_pct(counts[0][1] if counts else 0, n)} of the night "
            f"({n_bad} of {n} epochs flagged: {detail})")


def _reader_notes(notices: Notices, channel: str) -> str:
    """Reader notices about the units of ``channel`` (a likely cause of a flat or
    implausible channel), for error messages."""
    msgs = [n.message for n in notices
            if (n.channel == channel or (n.channel is None and repr(channel) in n.message))
            and ("unit" in n.code or "implausibl" in n.message)]
    return (" - the reader noted: " + "; ".join(msgs)) if msgs else ""


def _reader_notices(rec) -> Notices:
    """The reader's notices of a recording (``meta["notices"]``, or its plain
    ``meta["warnings"]`` from readers that keep only messages)."""
    got = Notices().extend_from(notices_of(rec.meta) if rec.meta is not None else [])
    have = set(got.messages())
    for msg in (rec.meta or {}).get("warnings") or []:
        if str(msg) not in have:
            got.extend_from([Notice("reader-warning", str(msg))])
    return got


def _select_channels(report: QualityReport, names: list[str]) -> QualityReport:
    """The quality report of some channels (by name, in that order)."""
    idx = [report.ch_names.index(c) for c in names]
    return QualityReport(report.flags[:, idx], [report.ch_names[i] for i in idx],
                         [report.roles[i] for i in idx], report.sfreq,
                         dict(report.thresholds),
                         {k: v[:, idx] for k, v in report.metrics.items()})


def _crop_mode(crop: bool | str | None) -> str:
    if isinstance(crop, str) and crop.strip().lower() in ("auto", "on", "off", "none"):
        return {"none": "off"}.get(crop.strip().lower(), crop.strip().lower())
    if crop is True:
        return "on"
    if crop is False or crop is None:
        return "off"
    raise ValueError(f"crop must be 'auto', 'on' (True) or 'off' (False), got {crop!r}")


def _lights_span(lights_off, lights_on, start_time, n: int, epoch_sec: float, src: str,
                 notices: Notices) -> tuple[slice, float | None, float | None]:
    """Epochs whose midpoint lies in ``[lights_off, lights_on)``, and the two bounds in
    seconds (clipped to the recording; None where not given)."""
    from hypnoscope.evaluation.sleepstats import resolve_time

    off = resolve_time(lights_off, start_time, "lights_off")
    on = resolve_time(lights_on, start_time, "lights_on", after=off)
    end = n * epoch_sec
    if off is not None and on is not None and on <= off:
        raise ValueError(f"{src}: lights_on {_when(on, start_time)} must be after lights_off "
                         f"{_when(off, start_time)}")
    _check_overnight_lights(off, on, lights_on, start_time, end, src)
    for name, v in (("lights_off", off), ("lights_on", on)):
        if v is not None and (v < -epoch_sec or v > end + epoch_sec):
            notices.add("lights-outside",
                        f"{src}: {name} {_when(v, start_time)} lies outside the recording "
                        f"(0-{end:g} s); it is clipped to the recording")
    mids = (np.arange(n) + 0.5) * epoch_sec
    a = int(np.searchsorted(mids, off)) if off is not None else 0
    b = int(np.searchsorted(mids, on)) if on is not None else n
    if b <= a:
        raise ValueError(f"{src}: lights_off {_when(off, start_time)} to lights_on "
                         f"{_when(on, start_time)} contains no epoch of the recording "
                         f"(0-{end:g} s)")

    def clip(v: float | None) -> float | None:
        return None if v is None else float(min(max(v, 0.0), end))

    return slice(a, b), clip(off), clip(on)


#: How far beyond the recording's end a lights-on clock time taken on the next day may lie
#: (a recording stopped a little before lights-on) before it counts as a swapped pair.
_LIGHTS_ON_GRACE_SEC = 3600.0


def _check_overnight_lights(off: float | None, on: float | None, lights_on: Any,
                            start_time, end: float, src: str) -> None:
    """Refuse a lights-on clock time that, being earlier on the clock than lights-off, was
    taken on the next day, where that puts it more than :data:`_LIGHTS_ON_GRACE_SEC` beyond
    the recording's end or makes the span longer than the recording (``06:00`` to
    ``01:00``: the two swapped, most likely); a span across midnight within the recording
    (``23:00`` to ``07:00`` on a night's recording) passes."""
    import datetime as _dt

    clock = isinstance(lights_on, _dt.time) or (
        isinstance(lights_on, str) and ":" in lights_on)
    if off is None or on is None or start_time is None or not clock:
        return
    t_off, t_on = (start_time + _dt.timedelta(seconds=v) for v in (off, on))
    if t_on.date() <= t_off.date() or (on <= end + _LIGHTS_ON_GRACE_SEC and on - off <= end):
        return
    t_end = start_time + _dt.timedelta(seconds=end)
    why = " and ".join(w for w, bad in (
        ("lies beyond the recording's end", on > end + _LIGHTS_ON_GRACE_SEC),
        (f"makes a span of {(on - off) / 3600:.1f} h", on - off > end)) if bad)
    swap_off = on - 86400.0  # lights-on's clock time on the recording's first day
    meant = (f"lights-off {t_on:%H:%M:%S} and lights-on {t_off:%H:%M:%S} (the two swapped)"
             if -_LIGHTS_ON_GRACE_SEC <= swap_off < off <= end + _LIGHTS_ON_GRACE_SEC
             else f"a lights-on within the recording (by {t_end:%H:%M:%S})")
    raise ValueError(
        f"{src}: lights-on {t_on:%H:%M:%S} is before lights-off {t_off:%H:%M:%S} on the "
        f"clock, and taken on the next day it {why} (recording "
        f"{start_time:%Y-%m-%d %H:%M:%S} to {t_end:%Y-%m-%d %H:%M:%S}, {end / 3600:.1f} h); "
        f"probably meant {meant}")


def _bridge_bad_epochs(rec, report: QualityReport, flags: Q, inplace: bool = False):
    """A copy of ``rec`` (``rec`` itself with ``inplace``: a recording read by staging,
    whose samples nobody else holds) whose epochs carrying ``flags`` are replaced,
    channel by channel, by a straight line between the good samples either side, so that
    the band-pass filters (and the ICA fit) do not spread an artefact into the
    neighbouring good epochs; ``rec`` itself when nothing is flagged. The replaced epochs
    are unscored: what they hold afterwards is never staged."""
    from hypnoscope.utils.arrays import true_runs

    bad = report.has(flags)
    if not bad.any():
        return rec
    spe = int(round(EPOCH_SEC * rec.sfreq))
    data = rec.data if inplace else rec.data.copy()
    n = data.shape[1]
    for c in range(report.n_channels):
        x = data[c]  # the report's channels are the recording's, in its order
        for a, b in true_runs(bad[:, c]):
            lo, hi = a * spe, min(b * spe, n)
            left = x[lo - 1] if lo > 0 else (x[hi] if hi < n else 0.0)
            right = x[hi] if hi < n else left
            x[lo:hi] = np.linspace(left, right, hi - lo + 2, dtype=np.float64)[1:-1]
    return rec.copy(data=data)


# ------------------------------------------------------------------ staging steps
@dataclass
class _Options:
    """What :func:`stage_recording` was asked (checked)."""

    model: Any
    eeg: Any
    eog: Any
    emg: Any
    normalize: str
    lights_off: Any
    lights_on: Any
    crop: str
    crop_pad_min: float
    check_quality: bool
    unstageable_flags: Q


@dataclass
class _Staging:
    """The state one recording's staging passes from step to step (each step of
    :func:`stage_recording` fills in its part)."""

    opt: _Options
    mdl: Any
    card: dict[str, Any]
    kind: str
    name: str
    auto: bool
    t0: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    recording: Any = None
    # read
    rec: Any = None
    src: str = "recording"
    notices: Notices = field(default_factory=Notices)
    # quality, channels and model
    qr_all: QualityReport | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    choice: dict[str, Any] | None = None
    inp: ModelInput | None = None
    qr: QualityReport | None = None
    unstageable: np.ndarray | None = None
    exclude: np.ndarray | None = None
    # span and prediction
    span0: slice | None = None
    span: slice | None = None
    window: slice | None = None
    off_sec: float | None = None
    on_sec: float | None = None
    hours: float = 0.0
    cropped: bool = False
    proba: np.ndarray | None = None
    t_predict: float = 0.0

    @property
    def n(self) -> int:
        """Epochs of the recording."""
        return self.inp.n_epochs

    @property
    def stageable(self) -> np.ndarray:
        """Epochs whose signals on every channel read allow staging."""
        return ~self.unstageable

    @property
    def used(self) -> list[str]:
        """The channels the model reads."""
        return self.inp.channels


def _open(recording, opt: _Options) -> _Staging:
    """Load the model (``"auto"``: a shipped band-power model, chosen once the channels
    are known) and check the options."""
    auto = isinstance(opt.model, str) and opt.model == AUTO_MODEL
    mdl, card = load_staging_model(DEFAULT_MODEL if auto else opt.model)
    kind = input_kind(mdl, card)
    if kind not in INPUT_KINDS:
        raise ValueError(f"model {card.get('name')!r} has an unknown input {kind!r}")
    if opt.normalize not in ("sleep-period", "recording"):
        raise ValueError("normalize must be 'sleep-period' or 'recording', got "
                         f"{opt.normalize!r}")
    opt.crop = _crop_mode(opt.crop)
    opt.unstageable_flags = Q(int(opt.unstageable_flags))
    return _Staging(opt, mdl, card, kind, card.get("name", "model"), auto,
                    recording=recording)


def _read(st: _Staging) -> _Staging:
    """Read the recording in µV at the model's rate, its units checked channel by channel
    (:func:`hypnoscope.staging.model_input.read_recording`), with the reader's notices."""
    t = time.perf_counter()
    o = st.opt
    st.rec = read_recording(st.recording, st.kind, o.eeg, o.eog, o.emg,
                            model_sfreq(st.mdl, st.kind))
    st.src = str(st.rec.source or "recording")
    st.notices = _reader_notices(st.rec)
    st.timings["read_sec"] = time.perf_counter() - t
    return st


def _check_quality(st: _Staging) -> _Staging:
    """Signal quality of every epoch and channel read (nothing flagged without
    ``check_quality``)."""
    t = time.perf_counter()
    rec = st.rec
    if st.opt.check_quality:
        st.qr_all = recording_quality(rec, epoch_sec=EPOCH_SEC)
    else:
        n0 = int(rec.n_samples // int(round(EPOCH_SEC * rec.sfreq)))
        st.qr_all = QualityReport(np.zeros((n0, rec.n_channels), np.uint8),
                                  list(rec.ch_names), list(rec.roles), rec.sfreq)
    gaps = (rec.meta or {}).get("gaps")
    if gaps:  # no signal was recorded there (EDF+D): unscored, bridged like a disconnection
        from hypnoscope.io.psg import gap_epochs

        st.qr_all.flags[gap_epochs(gaps, st.qr_all.n_epochs, EPOCH_SEC)] |= int(Q.DISCONNECTED)
    st.timings["quality_sec"] = time.perf_counter() - t
    return st


def _choose_channels_and_model(st: _Staging) -> _Staging:
    """Drop the channels bad for most of the night, bridge the unstageable epochs, choose
    the model (``"auto"``) and compute its input from the channels left."""
    rec, qr_all = st.rec, st.qr_all
    st.dropped = {c: _channel_problem(qr_all, qr_all.ch_names.index(c))
                  for c in qr_all.bad_channels(BAD_CHANNEL_FRACTION)}
    keep = [i for i, c in enumerate(rec.ch_names) if c not in st.dropped]
    # a recording read here is bridged in place (no copy of the night); a caller's is not
    good = _bridge_bad_epochs(rec, qr_all, st.opt.unstageable_flags,
                              inplace=rec is not st.recording)
    if st.dropped:
        good = good.copy(data=good.data[keep], ch_names=[rec.ch_names[i] for i in keep],
                         roles=[rec.roles[i] for i in keep])
    if st.auto:  # the richest shipped model the usable channels allow
        try:
            chosen, st.choice = choose_model(list(good.roles), st.src, list(good.ch_names))
        except ValueError:
            if not any(rec.roles[rec.ch_names.index(c)] == "eeg" for c in st.dropped):
                raise
            why, advice = _dropped_why(st)  # recognised, but unusable: say why
            raise SignalQualityError(
                f"{st.src}: no shipped model can stage it: {why}; so "
                f"{'it' if len(st.dropped) == 1 else 'they'} cannot be used, and every "
                f"model reads at least one EEG channel{advice}") from None
        st.mdl, st.card = load_staging_model(chosen)
        st.name = st.card.get("name", chosen)
        st.notices.add("model-chosen", f"{st.src}: {st.choice['reason']}", severity="info")
    if isinstance(st.mdl, ConsensusStager):  # every member that can read the channels left
        st.inp = consensus_input(st.mdl, st.card, good, st.opt.eeg, st.opt.eog,
                                 lambda roles, names: choose_model(roles, st.src, names),
                                 st.notices, st.opt.normalize)
    else:
        st.inp = _input_without_dropped(st, good)
    st.card = st.inp.card  # a stager's card names what it read (YASA: its classifier)
    st.notices.extend_from(st.inp.notices)  # reordered / ignored channels
    for c, reason in st.dropped.items():
        role = rec.roles[rec.ch_names.index(c)].upper()
        st.notices.add("channel-dropped",
                       f"{st.src}: {role} channel {c!r} is {reason}; it was dropped and the "
                       f"night was staged from {', '.join(st.used)}", channel=c)
    st.qr = _select_channels(qr_all, st.used)
    if st.qr.n_epochs != st.n:  # the same 30-s grid from the recording start: cannot differ
        raise RuntimeError(f"{st.src}: quality of {st.qr.n_epochs} epochs but {st.n} staged "
                           "epochs")
    st.unstageable = st.qr.has(st.opt.unstageable_flags).any(axis=1)
    st.exclude = exclusion_mask(st.qr, skip_bad_channels=None)
    return st


def _input_without_dropped(st: _Staging, good) -> ModelInput:
    """The model's input from the recording ``good`` (bad channels dropped); a model that
    cannot do without a dropped channel raises :class:`SignalQualityError` naming it."""
    try:
        if not good.n_channels:
            raise ValueError("no usable EEG or EOG channel is left" if st.kind == BANDPOWER
                             else "no usable channel is left")
        return model_input(st.kind, st.mdl, st.card, good, st.opt.eeg, st.opt.eog,
                           st.timings)
    except ValueError as exc:
        if not st.dropped:
            raise
        src, msg = st.src, str(exc)
        if msg.startswith(src + ": "):
            msg = msg[len(src) + 2:]
        why, advice = _dropped_why(st)
        if advice:
            msg = ""  # its "only these were recognised" would mislead: they were
        raise SignalQualityError(
            f"{src}: cannot stage with model {st.name!r}: {why}; so "
            f"{'it' if len(st.dropped) == 1 else 'they'} cannot be used, and the model "
            f"cannot stage without {'it' if len(st.dropped) == 1 else 'them'}"
            + (f" ({msg})" if msg else "") + advice) from None


def _dropped_why(st: _Staging) -> tuple[str, str]:
    """What is wrong with each dropped channel, for an error, and what to do (or ""): a
    channel whose scale lies beyond the quality check's outer bound gets its median epoch
    SD and the plausible range (:func:`_scale_problem`), and the advice names its units;
    the others what the quality check found, with the reader's notes on their units."""
    rec, parts, scaled = st.rec, [], False
    for c, reason in st.dropped.items():
        scale = _scale_problem(st, c)
        scaled |= scale is not None
        parts.append(f"{rec.roles[rec.ch_names.index(c)].upper()} channel {c!r} is "
                     + (scale or f"{reason}{_reader_notes(st.notices, c)}"))
    return "; ".join(parts), (
        ". That is a unit or gain mistake, not a sleeper: check the physical unit and range "
        "(gain) of the channel in the file header, and stage a copy with them corrected"
        if scaled else "")


def _scale_problem(st: _Staging, channel: str) -> str | None:
    """``"of implausible amplitude (median 30-s epoch SD ... µV, above ...)"`` for a
    dropped channel whose scale (median epoch SD) lies above the quality check's outer
    bound ``amp_scale_max_uv`` (a unit or gain mistake, not a person); None otherwise."""
    from hypnoscope.io.units import PLAUSIBLE_EPOCH_SD_UV

    qr = st.qr_all
    i = qr.ch_names.index(channel)
    role = qr.roles[i]
    smax = (qr.thresholds.get("amp_scale_max_uv") or {}).get(role)
    sd = qr.metrics.get("sd")
    if smax is None or sd is None or not qr.has(Q.AMPLITUDE)[:, i].any():
        return None
    col = sd[:, i][~qr.has(Q.FLAT | Q.DISCONNECTED)[:, i]]
    scale = float(np.median(col)) if col.size else float("nan")
    if not scale > smax:
        return None
    lo, hi = PLAUSIBLE_EPOCH_SD_UV
    return (f"of implausible amplitude on every epoch (median 30-s epoch SD {scale:.0f} µV, "
            f"above the {smax:g} µV that no {role.upper()} reaches; plausible: {lo:g}-{hi:g} "
            "µV)")


def _lights(st: _Staging) -> _Staging:
    """The span between lights-off and lights-on; it must hold a stageable epoch."""
    o, rec = st.opt, st.rec
    st.span0, st.off_sec, st.on_sec = _lights_span(o.lights_off, o.lights_on, rec.start_time,
                                                   st.n, EPOCH_SEC, st.src, st.notices)
    span0, qr = st.span0, st.qr
    if not st.stageable[span0].any():
        raise SignalQualityError(
            f"{st.src}: no epoch between {_when(span0.start * EPOCH_SEC, rec.start_time)} "
            f"and {_when(span0.stop * EPOCH_SEC, rec.start_time)} has usable signal on the "
            f"channels model {st.name!r} needs: " + "; ".join(
                f"{c} is {_channel_problem(qr, i)}" for i, c in enumerate(st.used)
                if qr.has(o.unstageable_flags)[span0, i].any()))
    return st


def _first_pass(st: _Staging) -> _Staging:
    """Stage the span with per-night statistics over all of it."""
    st.t_predict = time.perf_counter()
    st.proba = np.zeros((st.n, st.mdl.n_classes))
    st.proba[st.span0] = st.inp.predict(st.span0, st.stageable, st.exclude)
    st.span = st.window = st.span0
    return st


def _crop(st: _Staging) -> _Staging:
    """Crop long spans (``crop``) to the main sleep period the first pass found, plus
    ``crop_pad_min`` of wake either side; a given lights-off/on is never moved."""
    o, span0 = st.opt, st.span0
    codes = np.where(st.stageable, st.proba.argmax(axis=1), UNSCORED)
    st.hours = (span0.stop - span0.start) * EPOCH_SEC / 3600.0
    kept = sleep_period_crop(codes[span0], o.crop, EPOCH_SEC, o.crop_pad_min,
                             o.lights_off is not None, o.lights_on is not None)
    if kept is None:
        st.notices.add("crop-no-sleep",
                       f"{st.src}: no consolidated sleep found in the {st.hours:.1f} h to "
                       "stage, so the recording was not cropped to a sleep period; give "
                       "lights_off/lights_on (--lights-off/--lights-on) to bound the night")
        return st
    a, b = span0.start + kept.start, span0.start + kept.stop
    st.span, st.cropped = slice(a, b), (a, b) != (span0.start, span0.stop)
    st.window = st.span
    if st.cropped:
        _announce_crop(st)
    return st


def _announce_crop(st: _Staging) -> None:
    """The ``auto-crop`` notice; the crop becomes the lights-off/on not given."""
    o, span, start = st.opt, st.span, st.rec.start_time
    st.off_sec = span.start * EPOCH_SEC if o.lights_off is None else st.off_sec
    st.on_sec = span.stop * EPOCH_SEC if o.lights_on is None else st.on_sec
    what = (f"the {st.hours:.1f}-h recording" if o.lights_off is None and o.lights_on is None
            else f"the {st.hours:.1f} h within lights-off/lights-on")
    kept = (span.stop - span.start) * EPOCH_SEC / 3600.0
    st.notices.add(
        "auto-crop",
        f"{st.src}: {what} was cropped to the detected sleep period plus "
        f"{o.crop_pad_min:g} min of wake either side: "
        f"{_when(span.start * EPOCH_SEC, start)} to "
        f"{_when(span.stop * EPOCH_SEC, start)} ({kept:.1f} h); epochs "
        "outside it are not staged (unscored). Give lights_off/lights_on "
        "(--lights-off/--lights-on) or crop='off' (--crop none) to change this",
        severity="info")


def _second_pass(st: _Staging) -> _Staging:
    """Stage again with the per-night statistics of the window: the crop, or (band power,
    ``normalize="sleep-period"``) the sleep period +-30 min of the first pass; epochs of
    the span outside the window keep the first pass."""
    if (not st.cropped and st.kind == BANDPOWER and st.opt.normalize == "sleep-period"):
        sp = sleep_period_window(st.proba[st.span], st.stageable, st.span)
        if sp is not None:
            st.window = sp
    if (st.window.start, st.window.stop) != (st.span0.start, st.span0.stop):
        st.proba[st.window] = st.inp.predict(st.window, st.stageable, st.exclude)
    st.timings["predict_sec"] = time.perf_counter() - st.t_predict
    return st


def _lights_notice(st: _Staging) -> _Staging:
    """The ``lights`` notice when lights-off or lights-on was given."""
    o, start = st.opt, st.rec.start_time
    if o.lights_off is not None or o.lights_on is not None:
        a_txt = ("the recording start" if o.lights_off is None
                 else f"lights-off {_when(st.off_sec, start)}")
        b_txt = ("the recording end" if o.lights_on is None
                 else f"lights-on {_when(st.on_sec, start)}")
        st.notices.add("lights", f"{st.src}: staged from {a_txt} to {b_txt}; sleep "
                       "statistics use this time in bed", severity="info")
    return st


def _flag_counts(qr: QualityReport, used: list[str], rows: np.ndarray,
                 flags: Q | None = None) -> str:
    """``"ch: flat 3, noise 2; ch2: ..."``: per channel, the epochs of ``rows`` carrying
    each flag of ``flags`` (None: any flag)."""
    flagged = qr.bad if flags is None else qr.has(flags)
    return "; ".join(
        f"{c}: " + ", ".join(f"{FLAG_LABELS[q]} {int((qr.has(q)[:, i] & rows).sum())}"
                             for q in DETECTORS
                             if (flags is None or q & flags) and (qr.has(q)[:, i] & rows).any())
        for i, c in enumerate(used) if (flagged[:, i] & rows).any())


def _quality_notices(st: _Staging) -> _Staging:
    """The ``bad-epochs`` and ``noisy-epochs`` notices (warnings above
    :data:`BAD_EPOCHS_WARN_FRACTION` of the span)."""
    qr, span, src = st.qr, st.span, st.src
    inside = _inside(st)
    n_span = span.stop - span.start
    bad_in_span = st.unstageable & inside
    if bad_in_span.any():
        per = _flag_counts(qr, st.used, inside, st.opt.unstageable_flags)
        k = int(bad_in_span.sum())
        st.notices.add("bad-epochs",
                       f"{src}: {k} of {n_span} epochs ({_pct(k, n_span)}) have unusable "
                       f"signal on a channel the model needs and are unscored ('?'): {per}",
                       severity="warning" if k > BAD_EPOCHS_WARN_FRACTION * n_span else "info")
    noisy = qr.bad.any(axis=1) & st.stageable & inside
    if noisy.any():
        k = int(noisy.sum())
        per = _flag_counts(qr, st.used, noisy)
        st.notices.add("noisy-epochs",
                       f"{src}: {k} of {n_span} epochs ({_pct(k, n_span)}) have quality "
                       f"flags that do not prevent staging; they are staged and marked in the "
                       f"quality column: {per}",
                       severity="warning" if k > BAD_EPOCHS_WARN_FRACTION * n_span else "info")
    return st


def _short_recording_notice(st: _Staging) -> _Staging:
    """The ``short-recording`` notice (info) when the span staged is shorter than
    :data:`~hypnoscope.staging.short_recordings.SHORT_RECORDING_MIN`, naming its length and
    the stretch accuracy of the model card
    (:func:`~hypnoscope.staging.short_recordings.short_recording_notice`)."""
    o = st.opt
    what = ("recording" if o.lights_off is None and o.lights_on is None else
            f"span from {'lights-off' if o.lights_off is not None else 'the recording start'}"
            f" to {'lights-on' if o.lights_on is not None else 'the recording end'}")
    minutes = (st.span.stop - st.span.start) * EPOCH_SEC / 60.0
    short_recording_notice(st.notices, st.src, minutes, st.card, what)
    return st


def _inside(st: _Staging) -> np.ndarray:
    """Epochs of the staged span."""
    inside = np.zeros(st.n, dtype=bool)
    inside[st.span] = True
    return inside


def _result(st: _Staging) -> StagingResult:
    """The hypnogram (epochs not staged unscored, with their quality labels) and the
    info of what was done."""
    o, span, inside = st.opt, st.span, _inside(st)
    scored = inside & st.stageable
    proba = st.proba
    proba[~scored] = 0.0
    codes = np.where(scored, proba.argmax(axis=1), UNSCORED)
    labels = st.qr.epoch_labels()
    for i in np.flatnonzero(~inside):
        labels[i] = OUTSIDE_SPAN
    hyp = Hypnogram(codes, epoch_sec=EPOCH_SEC, onset_sec=0.0, start_time=st.rec.start_time,
                    probabilities=proba, n_classes=st.mdl.n_classes, quality=labels)
    st.timings["total_sec"] = time.perf_counter() - st.t0
    given = o.lights_off is not None or o.lights_on is not None
    source = "+".join(s for s, on in (("lights", given), ("auto-crop", st.cropped)) if on)
    flags = o.unstageable_flags
    info = dict(st.inp.info)
    info.update({
        "normalization_window_epochs": [st.window.start, st.window.stop],
        "quality": {**st.qr_all.summary(), "channels_used": list(st.used),
                    "channels_dropped": dict(st.dropped),
                    "unscored_epochs": int((~scored & inside).sum()),
                    "unstageable_flags": [FLAG_LABELS[q] for q in DETECTORS if q & flags],
                    "checked": bool(o.check_quality),
                    "rule": (UNSTAGEABLE_RULE if flags == UNSTAGEABLE_FLAGS
                             else "custom unstageable_flags")},
        "span": {"source": source or "recording", "start_epoch": span.start,
                 "stop_epoch": span.stop, "start_sec": span.start * EPOCH_SEC,
                 "end_sec": span.stop * EPOCH_SEC,
                 "lights_off_sec": st.off_sec, "lights_on_sec": st.on_sec,
                 "crop": o.crop, "crop_pad_min": float(o.crop_pad_min)},
        "notices": st.notices, "warnings": st.notices.messages("warning"),
        "model": {**{k: st.card.get(k) for k in MODEL_CARD_KEYS
                     if st.card.get(k) is not None},
                  "chosen_by": st.choice["reason"] if st.choice else "given (model=/--model)"},
        "model_choice": st.choice or {"mode": "given", "chosen": st.name},
        "input": st.kind, "n_epochs": hyp.n_epochs, "timings": st.timings,
        "unit_factors": dict((st.rec.meta or {}).get("unit_factors") or {}),
    })
    return StagingResult(hyp, info, st.qr_all if o.check_quality else None)


#: What the report shows of the model card: stagers (YASA, plug-ins, the consensus) add
#: their version, licence, classifier file and the consensus its members and weights.
MODEL_CARD_KEYS = ("name", "summary", "trained_on", "path", "version", "license",
                   "classifier", "members", "weights", "weights_source")

#: The steps of :func:`stage_recording`, in order; each takes and returns the state.
STEPS = (_read, _check_quality, _choose_channels_and_model, _lights, _first_pass, _crop,
         _second_pass, _lights_notice, _quality_notices, _short_recording_notice)


# ------------------------------------------------------------------ staging
def stage_recording(recording, model: Any = AUTO_MODEL, eeg=None, eog=None, emg=None,
                    normalize: str = "sleep-period", *, lights_off: Any = None,
                    lights_on: Any = None, crop: bool | str = "auto",
                    crop_pad_min: float = CROP_PAD_MIN, check_quality: bool = True,
                    unstageable_flags: Q | int = UNSTAGEABLE_FLAGS) -> StagingResult:
    """Stage one recording; like :func:`stage` but also returns what was done.

    Parameters
    ----------
    recording : path, mne.io.BaseRaw or hypnoscope.io.psg.PSGRecording
        The PSG (a ``PSGRecording`` must be in µV as read, at the model's rate).
    model, eeg, eog, emg
        As in :func:`stage`.
    normalize : {"sleep-period", "recording"}
        Band-power models: z-score window (see "Normalisation window" above).
    lights_off, lights_on : float, str, datetime.time or datetime.datetime, optional
        Night boundaries: seconds from the recording start, or clock times
        (``"23:15"``, ``"07:02:30"``, :class:`datetime.time`, :class:`datetime.datetime`)
        resolved against the recording start (lights-on after midnight follows
        lights-off; see :func:`hypnoscope.evaluation.sleepstats.resolve_time`). Only the epochs
        between them are staged and they bound the time in bed of the sleep
        statistics. A lights-on clock time that, taken on the next day, lies over an hour
        past the recording's end or spans longer than the recording (``"06:00"`` to
        ``"01:00"``) is a ``ValueError`` (:func:`_check_overnight_lights`).
    crop : {"auto", "on", "off" (or "none")} or bool, default "auto"
        Crop to the main sleep period (:func:`main_sleep_period` of a first pass) plus
        ``crop_pad_min`` minutes of wake either side, as the training nights were:
        ``"auto"`` does so when the span to stage is longer than
        :data:`AUTO_CROP_HOURS` (24-h Sleep-EDF cassette files), ``"on"`` always. A
        given lights-off or lights-on is never moved by the crop. Announced by an
        ``auto-crop`` notice.
    crop_pad_min : float, default 30
        Wake kept either side of the sleep period by the crop.
    check_quality : bool, default True
        Check signal quality (see "Signal quality" above). ``False`` stages every
        epoch from whatever signal there is (for comparisons only).
    unstageable_flags : Q, default :data:`UNSTAGEABLE_FLAGS`
        Quality flags that make an epoch unscored (see "Signal quality" above).

    Returns
    -------
    StagingResult
        ``hypnogram`` (every epoch of the recording; those not staged unscored) and
        ``info``: model card summary, channels used, normalisation window, ICA report,
        ``quality`` (:meth:`QualityReport.summary` of every channel read plus
        ``channels_used``, ``channels_dropped`` ``{name: reason}``, ``unscored_epochs``,
        ``unstageable_flags`` and ``rule``), ``span`` (``start_epoch``, ``stop_epoch``,
        ``start_sec``, ``end_sec``, ``lights_off_sec``, ``lights_on_sec``,
        ``source``: "recording", "lights", "auto-crop" or "lights+auto-crop"),
        ``notices``, ``warnings`` and timings; ``quality`` (the full
        :class:`~hypnoscope.signal.quality.QualityReport`).

    Raises
    ------
    SignalQualityError
        If a channel the model needs is bad for most of the night and no other can
        replace it, or no epoch of the span has usable signal (the message names the
        file, the channel and the problem).
    ValueError
        Missing channels, unreadable files, invalid lights-off/on or crop.
    """
    st = _open(recording, _Options(model, eeg, eog, emg, normalize, lights_off, lights_on,
                                   crop, crop_pad_min, check_quality, unstageable_flags))
    for step in STEPS:
        st = step(st)
    return _result(st)


def stage(recording, model: Any = AUTO_MODEL, eeg=None, eog=None, emg=None, *,
          lights_off: Any = None, lights_on: Any = None, crop: bool | str = "auto",
          ) -> Hypnogram:
    """Stage a PSG recording.

    Parameters
    ----------
    recording : str, path or mne.io.BaseRaw
        A recording in any format MNE reads (EDF/BDF, BrainVision, FIF ...) or a Raw
        object (channels recognised by name, see :func:`hypnoscope.io.psg.read_psg`).
    model : str, path or StagingModel, default "auto"
        ``"auto"``: the richest shipped model the recording's usable channels allow
        (:func:`choose_model`: ``default`` with two EEG + EOG, ``eeg1-eog``, ``eeg2``,
        ``eeg1`` with one EEG channel), announced by a ``model-chosen`` notice; or a
        shipped model name (:func:`hypnoscope.models.storage.shipped_models`), a model
        file or a model object.
    eeg, eog, emg : str, list of str or None
        Channel overrides. The default model uses two EEG channels (Fpz-Cz, Pz-Oz or the
        nearest) and one EOG channel; it ignores EMG.
    lights_off, lights_on, crop
        Night boundaries (see :func:`stage_recording`).

    Returns
    -------
    Hypnogram
        5-class stages per 30-s epoch from the recording start, with ``probabilities``
        (rows sum to 1), ``confidence`` and ``quality``; epochs with unusable signal or
        outside the staged span are unscored (``?``, probabilities 0).

    Raises
    ------
    ValueError
        If the model needs a channel the recording lacks (the message lists the channels
        found), or the file cannot be read; :class:`SignalQualityError` (a
        ``ValueError``) if the signals do not allow staging.

    Examples
    --------
    >>> hyp = stage("SC4001E0-PSG.edf")  # doctest: +SKIP
    >>> sleep_statistics(hyp)["total_sleep_min"]  # doctest: +SKIP
    """
    return stage_recording(recording, model=model, eeg=eeg, eog=eog, emg=emg,
                           lights_off=lights_off, lights_on=lights_on,
                           crop=crop).hypnogram
