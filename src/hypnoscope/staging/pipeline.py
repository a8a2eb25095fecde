"""Stage a whole night: recording in, :class:`~hypnoscope.hypnogram.Hypnogram` out.

:func:`stage` reads a PSG (path or :class:`mne.io.BaseRaw`), computes the input of the
chosen model and returns a hypnogram with per-epoch stages, probabilities and confidence.

:func:`stage_file` stages one recording file and writes its output set (hypnogram TSV
and EDF+, HTML/JSON report, PNG figure), with agreement metrics when a reference
hypnogram is given; ``hypnoscope stage`` calls it per recording.

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
  or a quarter of all power) also fills the beta band the features use: an hour of
  40-µV white noise on a simulated night, staged, came out wake at confidence 0.99 on
  every epoch. Real wake with heavy muscle artefact may be flagged too and is then
  unscored (as scorers often mark movement and artefact epochs). Unscored epochs
  count as time in bed but neither as sleep nor as wake in the sleep statistics
  (:func:`hypnoscope.evaluation.sleepstats.sleep_statistics`) and are left out of agreement.
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

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.hypnogram import Hypnogram
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
from hypnoscope.stages import UNSCORED, W, sleep_period_slice

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
#: ``crop="auto"`` crops spans longer than this (hours) to the main sleep period.
AUTO_CROP_HOURS = 14.0
#: Wake kept either side of the sleep period by the crop (minutes).
CROP_PAD_MIN = 30.0
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


def model_input(model, card: dict[str, Any]) -> str:
    """``"bandpower"`` or ``"signals"``: what the model consumes."""
    meta = getattr(model, "metadata", {}) or {}
    rep = card.get("input", {}).get("representation") or meta.get("input", {}).get(
        "representation")
    if rep:
        return str(rep)
    # feature models record what they were fitted on in ``input_kind_``
    kind = getattr(model, "input_kind_", None) or getattr(model, "input_kind", "features")
    return "signals" if kind == "signals" else "bandpower"


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
        messages of severity warning), ``timings``...
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
        both over the staged span; epochs outside it, or unscored, are not compared."""
        from hypnoscope.evaluation.metrics import compare_hypnograms

        off, on = self.lights
        return compare_hypnograms(self.hypnogram, reference, lights_off=off, lights_on=on)


class SignalQualityError(ValueError):
    """The signals of a recording do not allow staging: a channel the model needs is bad
    for most of the night and no other can replace it, or no epoch has usable signal.
    The message names the file, the channel and what is wrong with it."""


def _check_proba(proba: np.ndarray, n_epochs: int, n_classes: int, name: str) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (n_epochs, n_classes):
        raise RuntimeError(f"model {name!r} returned probabilities of shape {proba.shape}, "
                           f"expected ({n_epochs}, {n_classes})")
    proba = np.clip(np.nan_to_num(proba, nan=0.0), 0.0, None)
    s = proba.sum(axis=1, keepdims=True)
    bad = s[:, 0] <= 0
    proba[bad] = 1.0 / n_classes
    s[bad] = 1.0
    return proba / s


# ------------------------------------------------------------------ helpers
def _pct(part: float, whole: float) -> str:
    """``"12 %"``; ``"<1 %"`` for a small non-zero share."""
    if whole <= 0:
        return "0 %"
    p = 100.0 * part / whole
    return "<1 %" if 0 < p < 0.5 else f"{p:.0f} %"


def _when(sec: float | None, start_time) -> str:
    """A time from the recording start, as a clock time when the start is known."""
    if sec is None:
        return "-"
    if start_time is None:
        return f"{sec:g} s"
    import datetime as _dt

    return f"{start_time + _dt.timedelta(seconds=float(sec)):%H:%M:%S} ({sec:g} s)"


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


def main_sleep_period(codes, epoch_sec: float = 30.0, window_min: float = 30.0,
                      max_gap_min: float = 60.0) -> slice | None:
    """First to last sleep epoch of the main sleep period of a (long) hypnogram.

    Rule: an epoch lies in consolidated sleep when at least half of the scored epochs in
    the ``window_min`` minutes centred on it are sleep (N1, N2, N3, R); stretches of
    consolidated sleep separated by less than ``max_gap_min`` minutes are one period;
    the main period is the one with the most sleep epochs (a nap, or scattered
    misclassified epochs during a day of wake, do not extend it). The result runs from
    the first to the last sleep epoch within that period widened by half a window.

    Parameters
    ----------
    codes : array of int
        Stage codes (negative = unscored).
    epoch_sec, window_min, max_gap_min : float
        Epoch length (s), smoothing window and longest gap bridged (minutes).

    Returns
    -------
    slice or None
        Epoch slice, or None without any consolidated sleep.
    """
    codes = np.asarray(codes)
    sleep = codes > W
    if not sleep.any():
        return None
    w = max(1, int(round(window_min * 60.0 / epoch_sec)))
    kernel = np.ones(w)
    num = np.convolve(sleep.astype(float), kernel, mode="same")
    den = np.convolve((codes >= 0).astype(float), kernel, mode="same")
    asleep = (den > 0) & (num >= 0.5 * den)
    if not asleep.any():
        return None
    edges = np.diff(np.concatenate([[0], asleep.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    gap = int(round(max_gap_min * 60.0 / epoch_sec))
    blocks = [[int(starts[0]), int(stops[0])]]
    for a, b in zip(starts[1:], stops[1:], strict=True):
        if a - blocks[-1][1] < gap:
            blocks[-1][1] = int(b)
        else:
            blocks.append([int(a), int(b)])
    a, b = max(blocks, key=lambda ab: int(sleep[ab[0]:ab[1]].sum()))
    lo, hi = max(0, a - w // 2), min(len(codes), b + w // 2)
    s = np.flatnonzero(sleep[lo:hi]) + lo
    return slice(int(s[0]), int(s[-1]) + 1)


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


def _bridge_bad_epochs(rec, report: QualityReport, flags: Q, inplace: bool = False):
    """A copy of ``rec`` (``rec`` itself with ``inplace``: a recording read by staging,
    whose samples nobody else holds) whose epochs carrying ``flags`` are replaced,
    channel by channel, by a straight line between the good samples either side, so that
    the band-pass filters (and the ICA fit) do not spread an artefact into the
    neighbouring good epochs; ``rec`` itself when nothing is flagged. The replaced epochs
    are unscored: what they hold afterwards is never staged."""
    from hypnoscope.utils import true_runs

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


# ------------------------------------------------------------------ model inputs
def _read_recording(recording, kind: str, eeg, eog, emg, sfreq: float):
    """The recording as a :class:`~hypnoscope.io.psg.PSGRecording` in µV at ``sfreq``, with
    the channels the model kind can use (band power: EEG and EOG)."""
    from hypnoscope.io.psg import PSGRecording, read_psg

    if not isinstance(recording, PSGRecording):
        return read_psg(recording, eeg=eeg, eog=eog, emg=emg if kind == "signals" else None,
                        sfreq=sfreq, include_emg=kind == "signals")
    rec = recording
    if not np.isclose(rec.sfreq, sfreq):
        raise ValueError(f"{rec.source}: the recording is at {rec.sfreq:g} Hz but the model "
                         f"needs {sfreq:g} Hz; read it with hypnoscope.io.psg.read_psg(..., "
                         f"sfreq={sfreq:g})")
    if kind == "bandpower":
        keep = [i for i, r in enumerate(rec.roles) if r in ("eeg", "eog")]
        if len(keep) < rec.n_channels:
            rec = rec.copy(data=rec.data[keep], ch_names=[rec.ch_names[i] for i in keep],
                           roles=[rec.roles[i] for i in keep])
    return rec


def _bandpower_input(model, card, rec, eeg, eog, timings: dict[str, float]):
    """Spectra of the recording and a ``predict(window, keep, exclude)`` function that
    z-scores the features over ``window`` less the ``exclude`` epochs and stages the
    ``keep`` epochs of ``window`` (other rows 0)."""
    from hypnoscope.datasets import Night
    from hypnoscope.signal import bandpower
    from hypnoscope.staging.channel_setups import setup_of_card

    setup = setup_of_card(card)
    trained = ((getattr(model, "metadata", {}) or {}).get("training_data") or {})
    shape = trained.get("epoch_shape")
    if shape is not None and list(shape) != [len(setup.slots), len(bandpower.FEATURE_NAMES)]:
        raise ValueError(
            f"model {card.get('name', 'model')!r} was trained on precomputed per-epoch "
            f"features of shape {list(shape)}; staging a recording can compute only the "
            f"band-power features of the shipped models ({len(bandpower.CHANNEL_LAYOUT)} "
            f"channels x {len(bandpower.FEATURE_NAMES)}). Train with 'hypnoscope train "
            "--data DIR' to get a model that stages raw recordings.")
    t = time.perf_counter()
    night = bandpower.extract_bandpower_from(rec, eeg=eeg, eog=eog, n_eeg=setup.n_eeg,
                                             n_eog=setup.n_eog)
    timings["features_sec"] = time.perf_counter() - t
    name = card.get("name", "model")
    k = model.n_classes

    def predict(window: slice, keep: np.ndarray, exclude: np.ndarray) -> np.ndarray:
        # features z-scored over the good epochs of ``window``: the training nights
        # were cropped the same way before any per-night statistic
        idx = np.arange(night.n_epochs)[window]
        use = keep[idx]
        out = np.zeros((idx.size, k))
        if use.any():
            sel = idx[use]
            feats = night.features(window, exclude)[sel]
            nt = Night(X=feats, y=np.full(sel.size, UNSCORED), subject_id="subject",
                       night_id="night", kind="features",
                       channels=setup.channels, roles=setup.roles,
                       onsets_sec=night.onsets_sec[sel])
            out[use] = _check_proba(model.predict_proba(nt), sel.size, k, name)
        return out

    info = {"channels": dict(zip(night.ch_names, night.roles, strict=True)),
            "ica": night.meta.get("ica"), "source": night.meta.get("source"),
            "input_notices": list(night.meta.get("notices") or [])}  # channel choice
    return predict, list(night.ch_names), night.n_epochs, info


def _signals_input(model, card, rec, timings: dict[str, float]):
    """Like :func:`_bandpower_input` for a model trained on signal nights (``hypnoscope
    train --data``): the recording goes through the training nights' continuous
    preprocessing (:func:`hypnoscope.io.recordings.load_recording`, no crop), the channels
    are matched to the training roles, and the per-night scaling of that preprocessing
    is computed over the good epochs of the window."""
    from hypnoscope.io.recordings import load_recording
    from hypnoscope.signal.preprocessing import (
        apply_normalization,
        normalization_stats,
        resolve_config,
    )

    t = time.perf_counter()
    trained = (getattr(model, "metadata", {}) or {}).get("training_data", {}) or {}
    config = resolve_config(trained.get("preprocessing") or "default")
    method = config["normalize"]
    night = load_recording(rec, None, sfreq=rec.sfreq, crop_wake_min=None,
                           preprocessing={**config, "normalize": None}, cache=False)
    roles = list(night.roles)
    want = card.get("input", {}).get("roles") or trained.get("roles")
    idx = list(range(len(roles)))
    if want:
        idx, used = [], set()
        for role in want:
            cand = [i for i, r in enumerate(roles)
                    if i not in used and (r == role or r.startswith(role))]
            if not cand:
                raise ValueError(
                    f"{night.meta.get('source', 'recording')}: model {card.get('name')!r} "
                    f"needs channels with roles {list(want)}; channels found: "
                    f"{dict(zip(night.channels, roles, strict=True))}")
            idx.append(cand[0])
            used.add(cand[0])
    if idx != list(range(len(roles))):  # keep only the channels the model was trained on
        night = dataclasses.replace(night, X=night.X[:, idx],
                                    channels=[night.channels[i] for i in idx],
                                    roles=[roles[i] for i in idx])
    timings["features_sec"] = time.perf_counter() - t
    name = card.get("name", "model")
    k = model.n_classes

    def predict(window: slice, keep: np.ndarray, exclude: np.ndarray) -> np.ndarray:
        ids = np.arange(night.n_epochs)[window]
        use = keep[ids]
        out = np.zeros((ids.size, k))
        if use.any():
            sel = ids[use]
            X = night.X[sel]
            if method is not None:
                center, scale = normalization_stats(night.X[window], method, axes=(0, 2),
                                                    exclude=exclude[window])
                X = apply_normalization(X, center, scale).astype(np.float32)
            part = dataclasses.replace(
                night, X=X, y=night.y[sel],
                onsets_sec=None if night.onsets_sec is None else night.onsets_sec[sel],
                views={v: a[sel] for v, a in night.views.items()})
            out[use] = _check_proba(model.predict_proba(part), sel.size, k, name)
        return out

    info = {"channels": dict(zip(night.channels, night.roles, strict=True)),
            "source": night.meta.get("source")}
    return predict, list(night.channels), night.n_epochs, info


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
        statistics.
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
    t0 = time.perf_counter()
    auto = isinstance(model, str) and model == AUTO_MODEL
    # "auto": a shipped band-power model, chosen once the channels are known
    mdl, card = load_staging_model(DEFAULT_MODEL if auto else model)
    timings: dict[str, float] = {}
    kind = model_input(mdl, card)
    if kind not in ("bandpower", "signals"):
        raise ValueError(f"model {card.get('name')!r} has an unknown input {kind!r}")
    if normalize not in ("sleep-period", "recording"):
        raise ValueError(f"normalize must be 'sleep-period' or 'recording', got {normalize!r}")
    crop_mode = _crop_mode(crop)
    unstageable_flags = Q(int(unstageable_flags))
    trained = (getattr(mdl, "metadata", {}) or {}).get("training_data", {}) or {}
    sfreq = 100.0 if kind == "bandpower" else float(trained.get("sfreq") or 100.0)
    name = card.get("name", "model")

    t = time.perf_counter()
    rec = _read_recording(recording, kind, eeg, eog, emg, sfreq)
    src = str(rec.source or "recording")
    notices = _reader_notices(rec)
    timings["read_sec"] = time.perf_counter() - t
    t = time.perf_counter()
    if check_quality:
        qr_all = recording_quality(rec, epoch_sec=EPOCH_SEC)
    else:
        n0 = int(rec.n_samples // int(round(EPOCH_SEC * rec.sfreq)))
        qr_all = QualityReport(np.zeros((n0, rec.n_channels), np.uint8), list(rec.ch_names),
                               list(rec.roles), rec.sfreq)
    timings["quality_sec"] = time.perf_counter() - t

    # channels bad for most of the night are dropped; the model may manage without them
    dropped = {c: _channel_problem(qr_all, qr_all.ch_names.index(c))
               for c in qr_all.bad_channels(BAD_CHANNEL_FRACTION)}
    keep = [i for i, c in enumerate(rec.ch_names) if c not in dropped]
    # a recording read here is bridged in place (no copy of the night); a caller's is not
    good = _bridge_bad_epochs(rec, qr_all, unstageable_flags, inplace=rec is not recording)
    if dropped:
        good = good.copy(data=good.data[keep], ch_names=[rec.ch_names[i] for i in keep],
                         roles=[rec.roles[i] for i in keep])
    choice = None
    if auto:  # the richest shipped model the usable channels allow
        chosen, choice = choose_model(list(good.roles), src, list(good.ch_names))
        mdl, card = load_staging_model(chosen)
        name = card.get("name", chosen)
        notices.add("model-chosen", f"{src}: {choice['reason']}", severity="info")
    try:
        if kind == "bandpower":
            if not good.n_channels:
                raise ValueError("no usable EEG or EOG channel is left")
            predict, used, n, info = _bandpower_input(mdl, card, good, eeg, eog, timings)
        else:
            if not good.n_channels:
                raise ValueError("no usable channel is left")
            predict, used, n, info = _signals_input(mdl, card, good, timings)
        notices.extend_from(info.pop("input_notices", []))  # reordered / ignored channels
    except ValueError as exc:
        if not dropped:
            raise
        why = "; ".join(f"{rec.roles[rec.ch_names.index(c)].upper()} channel {c!r} is "
                        f"{reason}{_reader_notes(notices, c)}" for c, reason in dropped.items())
        msg = str(exc)
        if msg.startswith(src + ": "):
            msg = msg[len(src) + 2:]
        raise SignalQualityError(
            f"{src}: cannot stage with model {name!r}: {why}, so it cannot be used, and "
            f"the model cannot stage without it ({msg})") from None
    for c, reason in dropped.items():
        role = rec.roles[rec.ch_names.index(c)].upper()
        notices.add("channel-dropped",
                    f"{src}: {role} channel {c!r} is {reason}; it was dropped and the night "
                    f"was staged from {', '.join(used)}", channel=c)

    qr = _select_channels(qr_all, used)
    if qr.n_epochs != n:  # the same 30-s grid from the recording start: cannot differ
        raise RuntimeError(f"{src}: quality of {qr.n_epochs} epochs but {n} staged epochs")
    unstageable = qr.has(unstageable_flags).any(axis=1)
    stageable = ~unstageable
    exclude = exclusion_mask(qr, skip_bad_channels=None)

    # night boundaries: lights-off/on first, then (for long spans) the crop
    span0, off_sec, on_sec = _lights_span(lights_off, lights_on, rec.start_time, n,
                                          EPOCH_SEC, src, notices)
    if not stageable[span0].any():
        raise SignalQualityError(
            f"{src}: no epoch between {_when(span0.start * EPOCH_SEC, rec.start_time)} and "
            f"{_when(span0.stop * EPOCH_SEC, rec.start_time)} has usable signal on the "
            f"channels model {name!r} needs: " + "; ".join(
                f"{c} is {_channel_problem(qr, i)}" for i, c in enumerate(used)
                if qr.has(unstageable_flags)[span0, i].any()))
    t = time.perf_counter()
    proba = np.zeros((n, mdl.n_classes))
    proba[span0] = predict(span0, stageable, exclude)
    codes = np.where(stageable, proba.argmax(axis=1), UNSCORED)
    span = span0
    hours = (span0.stop - span0.start) * EPOCH_SEC / 3600.0
    cropped = False
    if (crop_mode == "on" or (crop_mode == "auto" and hours > AUTO_CROP_HOURS)) and (
            lights_off is None or lights_on is None):
        main = main_sleep_period(codes[span0], EPOCH_SEC)
        if main is None:
            notices.add("crop-no-sleep",
                        f"{src}: no consolidated sleep found in the {hours:.1f} h to stage, "
                        "so the recording was not cropped to a sleep period; give "
                        "lights_off/lights_on (--lights-off/--lights-on) to bound the night")
        else:
            pad = int(round(crop_pad_min * 60.0 / EPOCH_SEC))
            a = span0.start if lights_off is not None else max(span0.start,
                                                               span0.start + main.start - pad)
            b = span0.stop if lights_on is not None else min(span0.stop,
                                                             span0.start + main.stop + pad)
            span, cropped = slice(a, b), (a, b) != (span0.start, span0.stop)
    window = span
    if cropped:
        off_sec = span.start * EPOCH_SEC if lights_off is None else off_sec
        on_sec = span.stop * EPOCH_SEC if lights_on is None else on_sec
        what = (f"the {hours:.1f}-h recording" if lights_off is None and lights_on is None
                else f"the {hours:.1f} h within lights-off/lights-on")
        kept = (span.stop - span.start) * EPOCH_SEC / 3600.0
        notices.add(
            "auto-crop",
            f"{src}: {what} was cropped to the detected sleep period plus "
            f"{crop_pad_min:g} min of wake either side: "
            f"{_when(span.start * EPOCH_SEC, rec.start_time)} to "
            f"{_when(span.stop * EPOCH_SEC, rec.start_time)} ({kept:.1f} h); epochs "
            "outside it are not staged (unscored). Give lights_off/lights_on "
            "(--lights-off/--lights-on) or crop='off' (--crop none) to change this",
            severity="info")
    elif kind == "bandpower" and normalize == "sleep-period":
        sp = sleep_period_slice(codes[span], CROP_PAD_MIN, EPOCH_SEC)
        if sp is not None:
            window = slice(span.start + sp.start, span.start + sp.stop)
    if (window.start, window.stop) != (span0.start, span0.stop):
        # epochs of the span outside the window (the sleep period +-30 min) keep the
        # first pass
        proba[window] = predict(window, stageable, exclude)
    timings["predict_sec"] = time.perf_counter() - t

    inside = np.zeros(n, dtype=bool)
    inside[span] = True
    scored = inside & stageable
    proba[~scored] = 0.0
    codes = np.where(scored, proba.argmax(axis=1), UNSCORED)
    labels = qr.epoch_labels()
    for i in np.flatnonzero(~inside):
        labels[i] = OUTSIDE_SPAN
    if lights_off is not None or lights_on is not None:
        a_txt = ("the recording start" if lights_off is None
                 else f"lights-off {_when(off_sec, rec.start_time)}")
        b_txt = ("the recording end" if lights_on is None
                 else f"lights-on {_when(on_sec, rec.start_time)}")
        notices.add("lights", f"{src}: staged from {a_txt} to {b_txt}; sleep statistics use "
                    "this time in bed", severity="info")

    # what the quality check found, in numbers
    n_span = span.stop - span.start
    bad_in_span = unstageable & inside
    if bad_in_span.any():
        per = "; ".join(
            f"{c}: " + ", ".join(f"{FLAG_LABELS[q]} {int((qr.has(q)[:, i] & inside).sum())}"
                                 for q in DETECTORS
                                 if q & unstageable_flags and (qr.has(q)[:, i] & inside).any())
            for i, c in enumerate(used) if (qr.has(unstageable_flags)[:, i] & inside).any())
        k = int(bad_in_span.sum())
        notices.add("bad-epochs",
                    f"{src}: {k} of {n_span} epochs ({_pct(k, n_span)}) have unusable signal "
                    f"on a channel the model needs and are unscored ('?'): {per}",
                    severity="warning" if k > BAD_EPOCHS_WARN_FRACTION * n_span else "info")
    noisy = qr.bad.any(axis=1) & stageable & inside
    if noisy.any():
        k = int(noisy.sum())
        per = "; ".join(
            f"{c}: " + ", ".join(f"{FLAG_LABELS[q]} {int((qr.has(q)[:, i] & noisy).sum())}"
                                 for q in DETECTORS if (qr.has(q)[:, i] & noisy).any())
            for i, c in enumerate(used) if (qr.bad[:, i] & noisy).any())
        notices.add("noisy-epochs",
                    f"{src}: {k} of {n_span} epochs ({_pct(k, n_span)}) have quality "
                    f"flags that do not prevent staging; they are staged and marked in the "
                    f"quality column: {per}",
                    severity="warning" if k > BAD_EPOCHS_WARN_FRACTION * n_span else "info")

    hyp = Hypnogram(codes, epoch_sec=EPOCH_SEC, onset_sec=0.0, start_time=rec.start_time,
                    probabilities=proba, n_classes=mdl.n_classes, quality=labels)
    timings["total_sec"] = time.perf_counter() - t0
    given = lights_off is not None or lights_on is not None
    source = "+".join(s for s, on in (("lights", given), ("auto-crop", cropped)) if on)
    info.update({
        "normalization_window_epochs": [window.start, window.stop],
        "quality": {**qr_all.summary(), "channels_used": list(used),
                    "channels_dropped": dict(dropped),
                    "unscored_epochs": int((~scored & inside).sum()),
                    "unstageable_flags": [FLAG_LABELS[q] for q in DETECTORS
                                          if q & unstageable_flags],
                    "checked": bool(check_quality),
                    "rule": (UNSTAGEABLE_RULE if unstageable_flags == UNSTAGEABLE_FLAGS
                             else "custom unstageable_flags")},
        "span": {"source": source or "recording", "start_epoch": span.start,
                 "stop_epoch": span.stop, "start_sec": span.start * EPOCH_SEC,
                 "end_sec": span.stop * EPOCH_SEC,
                 "lights_off_sec": off_sec, "lights_on_sec": on_sec,
                 "crop": crop_mode, "crop_pad_min": float(crop_pad_min)},
        "notices": notices, "warnings": notices.messages("warning"),
        "model": {**{k: card.get(k) for k in ("name", "summary", "trained_on", "path")
                     if card.get(k) is not None},
                  "chosen_by": choice["reason"] if choice else "given (model=/--model)"},
        "model_choice": choice or {"mode": "given", "chosen": name},
        "input": kind, "n_epochs": hyp.n_epochs, "timings": timings,
    })
    return StagingResult(hyp, info, qr_all if check_quality else None)


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


def stage_file(psg: str | os.PathLike, out_dir: str | os.PathLike,
               model: Any = AUTO_MODEL, eeg=None, eog=None, emg=None,
               reference: str | os.PathLike | None = None, plot: bool = True, *,
               out_stem: str | None = None, strict: bool = False,
               lights_off: float | str | None = None, lights_on: float | str | None = None,
               crop: str | None = None, label_map: Any = None) -> dict[str, Any]:
    """Stage one recording file and write its output set into ``out_dir``.

    With ``S`` the output stem (``out_stem``, default the
    :func:`hypnoscope.io.recordings.recording_stem` of ``psg``) the set is
    ``S.hypnogram.tsv`` (``onset duration stage confidence p_*``), ``S.hypnogram.edf``
    (EDF+ stage annotations), ``S.report.json`` and ``S.report.html`` (sleep statistics,
    plus agreement with ``reference``) and, with ``plot``, ``S.hypnogram.png``
    (:func:`hypnoscope.viz.plots.plot_night`: hypnogram, the reference's hypnogram when
    given, and hypnodensity; the same image is in the report, rendered once). The set
    appears all together or not at all: it is written into a temporary folder inside
    ``out_dir`` and moved into place only when
    every file is written (:func:`hypnoscope.utils.output_set`); an error or an
    interrupt (SIGINT) leaves nothing of it. Files of an earlier set with the same stem
    are replaced.

    Parameters
    ----------
    psg : path
        Recording in any format MNE reads (EDF/BDF, BrainVision, FIF ...).
    out_dir : path
        Output folder (created if needed).
    model, eeg, eog, emg
        As in :func:`stage`.
    reference : path, optional
        Expert hypnogram of the same recording (any format
        :func:`hypnoscope.read_hypnogram` reads) for agreement metrics.
    label_map : dict, str or None
        Site-specific stage labels of the reference (see
        :func:`hypnoscope.stages.parse_label_map`).
    plot : bool, default True
        Write the PNG figure.
    out_stem : str, optional
        Name of the outputs (``hypnoscope stage`` gives recordings that share a stem
        distinct ones).
    strict : bool, default False
        Fail (:class:`hypnoscope.notices.StrictModeError`, nothing written) if staging
        gave any warning.
    lights_off, lights_on, crop
        Night boundaries (seconds or clock times ``"HH:MM[:SS]"``; crop ``"auto"``,
        ``"on"`` or ``"off"``), passed to :func:`stage_recording` when given (else its
        defaults). Sleep statistics, agreement and the report cover the span staged.

    Returns
    -------
    dict
        Summary row: ``recording``, ``stem``, ``status`` ("ok"), ``n_epochs``, ``hours``,
        ``tst_min``, ``se_pct``, ``mean_confidence``, ``seconds``, ``outputs`` (kind ->
        path), ``notices`` (messages) and, with a reference, ``accuracy``, ``kappa``,
        ``macro_f1``.

    Raises
    ------
    FileNotFoundError
        If ``psg`` does not exist. Any staging or writing error is raised too (a batch
        caller decides whether to go on); nothing of the output set is left then.
    """
    from hypnoscope.io.hypnograms import read_hypnogram
    from hypnoscope.io.recordings import recording_stem
    from hypnoscope.notices import raise_if_strict
    from hypnoscope.utils import output_set
    from hypnoscope.viz.plots import figure_to_png, plot_night
    from hypnoscope.viz.report import FIGURE_DPI, write_report

    psg = Path(psg)
    if not psg.is_file():
        raise FileNotFoundError(f"{psg}: recording not found (expected a recording file "
                                "MNE reads: EDF/BDF, BrainVision .vhdr, FIF ...)")
    out_dir = Path(out_dir)
    stem = out_stem or recording_stem(psg)
    ref = (read_hypnogram(reference, label_map=label_map) if reference is not None
           else None)
    t0 = time.perf_counter()
    bounds = {k: v for k, v in (("lights_off", lights_off), ("lights_on", lights_on),
                                ("crop", crop)) if v is not None}
    result = stage_recording(str(psg), model=model, eeg=eeg, eog=eog, emg=emg, **bounds)
    hyp = result.hypnogram
    # statistics and agreement over the staged span (lights-off/on, crop), computed
    # before anything is written: a reference that does not fit fails here
    stats = result.sleep_statistics()
    cmp = None if ref is None else result.compare(ref)
    off, on = result.lights
    info = dict(result.info)
    notices = result_notices(info)
    raise_if_strict(notices, strict, str(psg))  # before anything is written
    info["recording"] = psg.name
    info["source"] = str(psg)
    if reference is not None:
        info["reference"] = str(reference)
    if hyp.start_time is not None:
        info["start_time"] = hyp.start_time.isoformat(sep=" ")
    info["staging_options"] = staging_options(psg, model, eeg, eog, emg, reference,
                                              **bounds, label_map=label_map)
    names = output_names(stem)
    with output_set(out_dir, stem, replaces=list(names.values())) as tmp:
        hyp.to_tsv(tmp / names["tsv"])
        hyp.to_edf(tmp / names["edf"])
        # the night's figure is rendered once: embedded in the report and, with plot,
        # the PNG file
        png = figure_to_png(plot_night(hyp, reference=ref, title=psg.name), dpi=FIGURE_DPI,
                            crop=False)
        write_report(tmp / f"{stem}.report", hyp, info, reference=ref, lights_off=off,
                     lights_on=on, comparison=cmp, figure_png=png)
        if plot:
            _write_png(png, tmp / names["png"])
    paths = {k: out_dir / v for k, v in names.items() if plot or k != "png"}
    row: dict[str, Any] = {
        "recording": str(psg), "stem": stem, "status": "ok", "n_epochs": hyp.n_epochs,
        "hours": hyp.duration_sec / 3600, "tst_min": stats.get("total_sleep_min"),
        "se_pct": stats.get("sleep_efficiency_pct"),
        # over the staged epochs, as in the report (unscored ones have confidence 0)
        "mean_confidence": (float(hyp.confidence[hyp.codes >= 0].mean())
                            if (hyp.codes >= 0).any() else float("nan")),
        "seconds": time.perf_counter() - t0, "outputs": {k: str(v) for k, v in paths.items()},
        "notices": [n.message for n in notices],
    }
    if cmp is not None:
        row.update(accuracy=cmp["epochs"]["accuracy"], kappa=cmp["epochs"]["kappa"],
                   macro_f1=cmp["epochs"]["macro_f1"])
    return row


#: Output kinds of :func:`stage_file` and their file-name suffixes after the stem.
OUTPUT_SUFFIXES = {"tsv": "hypnogram.tsv", "edf": "hypnogram.edf", "html": "report.html",
                   "json": "report.json", "png": "hypnogram.png"}


def output_names(stem: str) -> dict[str, str]:
    """File names of the output set of stem ``stem`` (kind -> name)."""
    return {k: f"{stem}.{v}" for k, v in OUTPUT_SUFFIXES.items()}


def staging_options(psg: str | os.PathLike, model: Any = AUTO_MODEL, eeg=None,
                    eog=None, emg=None, reference: str | os.PathLike | None = None,
                    **bounds: Any) -> dict[str, Any]:
    """What an output set was made from and with (JSON-ready); stored in the report as
    ``recording.staging_options`` so that a rerun of ``hypnoscope stage`` can tell a
    complete set made the same way (skipped) from one made otherwise (staged again)."""
    def names(x):
        return None if x is None else ([x] if isinstance(x, str) else [str(c) for c in x])

    return {"psg": str(Path(psg).resolve()),
            "model": str(model) if isinstance(model, (str, os.PathLike)) else str(
                getattr(model, "name", None) or model),
            "reference": None if reference is None else str(Path(reference).resolve()),
            "eeg": names(eeg), "eog": names(eog), "emg": names(emg),
            **{k: bounds[k] for k in sorted(bounds) if bounds[k] is not None}}


def result_notices(info: dict[str, Any]) -> list:
    """The notices of a staged recording: ``info["notices"]`` (or, from readers that
    still report plain messages, ``info["warnings"]``) as
    :class:`hypnoscope.notices.Notice` objects."""
    from hypnoscope.notices import Notice, Notices

    got = info.get("notices")
    if got:
        return list(Notices().extend_from(got))
    return [Notice("warning", str(m)) for m in info.get("warnings") or []]


def _write_png(png: bytes, path: Path) -> Path:
    """Write the night's figure (:func:`hypnoscope.viz.plots.plot_night`, rendered once for
    the report and this file) into the output set's temporary folder."""
    path.write_bytes(png)
    return path
