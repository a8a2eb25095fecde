"""Daytime nap studies (MSLT, MWT): find the naps, stage each one, apply the nap rules.

:func:`stage_naps` takes the recordings of one day and returns a :class:`NapDay`:

- **Where the naps are** (:func:`nap_windows`): every file is read once; its naps are the
  windows of ``naps`` (``"09:00-09:20,11:00-11:20"``: lights-off/lights-on as clock times
  or seconds from the recording start; only with one recording), else the lights-off /
  lights-on annotations of the file (``Lights off``, ``Lights out``, ``LightsOff``,
  ``Lights on`` ...; each lights-off with the next lights-on), else the whole file is one
  nap whose lights off is taken as the recording start (a ``nap-lights-missing``
  warning).
- **Staging**: each nap is cut out of its recording at lights off (so the first epoch
  starts at lights off) and lights on, and staged as a recording of its own by
  :func:`hypnoscope.staging.pipeline.stage_recording`: the ``default`` model is length
  gated, so a nap is staged by its short-recording member, with per-recording statistics
  over the nap.
- **Rules**: :func:`hypnoscope.evaluation.naps.score_nap` per nap,
  :func:`~hypnoscope.evaluation.naps.summarise_day` for the day.
- **What a scorer checks first**: every epoch a latency depends on (sleep onset, first
  REM, the epochs of unequivocal sleep, unscored epochs before sleep onset) with its
  confidence (highest probability; 0 for an unscored epoch), and
  the epochs where the decision could go the other way: the epoch before sleep onset
  most likely to be sleep, and (no SOREMP) the epoch of the nap most likely to be REM,
  when that probability reaches :data:`CHECK_PROBABILITY`.
- **Notices** (:mod:`hypnoscope.notices`): ``nap-lights-missing``, ``nap-incomplete``
  (too short, lights on before the protocol's end, unscored epochs), ``nap-overlap``,
  ``nap-count`` (fewer than :data:`MIN_NAPS`), plus what reading and staging noticed.

The report is written by :func:`hypnoscope.viz.naps_report.write_nap_report`.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.evaluation.naps import NapScore, score_nap, summarise_day
from hypnoscope.evaluation.sleepstats import clock_time, resolve_time
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.models.storage import AUTO_MODEL, DEFAULT_MODEL, load_staging_model
from hypnoscope.notices import Notices, notices_of
from hypnoscope.stages import R, W
from hypnoscope.staging.model_input import input_kind, model_sfreq, read_recording
from hypnoscope.staging.pipeline import EPOCH_SEC, stage_recording

#: The protocols name at least this many naps (MSLT: five, four at the least; MWT: four).
MIN_NAPS = 4
#: An epoch where the decision could go the other way is listed for checking when the
#: model gives the other side at least this probability.
CHECK_PROBABILITY = 0.3
LIGHTS_OFF = re.compile(r"^\s*lights?[\s_-]*(off|out)\b", re.IGNORECASE)
LIGHTS_ON = re.compile(r"^\s*lights?[\s_-]*on\b", re.IGNORECASE)


@dataclass
class NapWindow:
    """Where one nap lies in its recording (seconds from the recording start)."""

    source: str
    lights_off_sec: float
    lights_on_sec: float
    how: str  # "--naps", "annotations" or "recording"


@dataclass
class StagedNap:
    """One nap: where it was, its staged hypnogram (epoch 0 starts at lights off; clock
    start at lights off), its :class:`~hypnoscope.evaluation.naps.NapScore` and the
    epochs to check."""

    number: int
    window: NapWindow
    start_time: _dt.datetime | None
    hypnogram: Hypnogram
    score: NapScore
    check: list[dict[str, Any]] = field(default_factory=list)
    notices: Notices = field(default_factory=Notices)

    def clock(self, sec_from_lights_off: float | None) -> str | None:
        """``HH:MM:SS`` of a time in the nap, or None without a clock."""
        if sec_from_lights_off is None or self.start_time is None:
            return None
        return f"{self.start_time + _dt.timedelta(seconds=float(sec_from_lights_off)):%H:%M:%S}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready row of the nap (times in minutes from lights off and clock time)."""
        s, w = self.score, self.window
        onset = None if s.sleep_latency_min is None else s.sleep_latency_min * 60.0
        return {
            "nap": self.number, "source": w.source, "lights_from": w.how,
            "lights_off": self.clock(0.0), "lights_on": self.clock(w.lights_on_sec
                                                                   - w.lights_off_sec),
            "lights_off_sec": w.lights_off_sec, "lights_on_sec": w.lights_on_sec,
            "duration_min": (w.lights_on_sec - w.lights_off_sec) / 60.0,
            "protocol_end_min": s.end_sec / 60.0, "protocol_end": self.clock(s.end_sec),
            "sleep_latency_min": s.sleep_latency_min, "sleep_onset": self.clock(onset),
            "latency_for_mean_min": s.latency_for_mean_min,
            "rem_latency_min": s.rem_latency_min, "soremp": s.soremp,
            "mwt_unequivocal_latency_min": s.mwt_unequivocal_latency_min,
            "complete": s.complete, "problems": list(s.problems),
            "lowest_key_confidence": min((c["confidence"] for c in self.check
                                          if c["key"]), default=None),
            "check": self.check, "notices": self.notices.to_list(),
        }


@dataclass
class NapDay:
    """A day of naps: the naps, the day's summary and what was noticed."""

    protocol: str
    naps: list[StagedNap]
    summary: dict[str, Any]
    notices: Notices
    model: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "summary": self.summary, "model": self.model,
                "naps": [n.to_dict() for n in self.naps], "notices": self.notices.to_list()}


# ------------------------------------------------------------------ windows
def parse_nap_times(spec: str) -> list[tuple[str, str]]:
    """``"09:00-09:20,11:00-11:20"`` -> ``[("09:00", "09:20"), ("11:00", "11:20")]``
    (clock times or seconds from the recording start)."""
    out = []
    for i, part in enumerate(str(spec).split(","), 1):
        bits = [b.strip() for b in part.split("-")]
        if len(bits) != 2 or not all(bits):
            raise ValueError(f"--naps item {i} {part.strip()!r}: expected LIGHTS_OFF-LIGHTS_ON "
                             "(clock times HH:MM[:SS] or seconds), e.g. 09:00-09:20")
        out.append((bits[0], bits[1]))
    return out


def lights_from_annotations(annotations: Any, source: str, duration_sec: float,
                            notices: Notices) -> list[NapWindow]:
    """Naps from lights-off/lights-on annotations: each lights-off with the next
    lights-on before the next lights-off (missing: the next lights-off or the recording's
    end, with a ``nap-lights-missing`` warning)."""
    if annotations is None or not len(annotations):
        return []
    marks = sorted((float(a["onset"]), "off" if LIGHTS_OFF.match(str(a["description"]))
                    else "on") for a in annotations
                   if LIGHTS_OFF.match(str(a["description"]))
                   or LIGHTS_ON.match(str(a["description"])))
    out: list[NapWindow] = []
    for i, (t, kind) in enumerate(marks):
        if kind == "on":
            if i == 0 or marks[i - 1][1] == "on":
                notices.add("nap-lights-missing", f"{source}: a lights-on annotation at "
                            f"{t:g} s has no lights-off before it; ignored")
            continue
        nxt = marks[i + 1] if i + 1 < len(marks) else None
        if nxt is not None and nxt[1] == "on":
            out.append(NapWindow(source, t, min(nxt[0], duration_sec), "annotations"))
            continue
        end = nxt[0] if nxt is not None else duration_sec
        notices.add("nap-lights-missing", f"{source}: the lights-off annotation at {t:g} s "
                    f"has no lights-on after it; the nap is taken to end at {end:g} s")
        out.append(NapWindow(source, t, end, "annotations"))
    return out


def nap_windows(source: str, duration_sec: float, start_time: _dt.datetime | None,
                annotations: Any, naps: str | None, notices: Notices) -> list[NapWindow]:
    """The naps of one recording (module docstring, "Where the naps are")."""
    if naps:
        out = []
        for i, (a, b) in enumerate(parse_nap_times(naps), 1):
            off = resolve_time(a, start_time, f"--naps item {i} lights-off")
            on = resolve_time(b, start_time, f"--naps item {i} lights-on", after=off)
            if off is None or on is None or on <= off:
                raise ValueError(f"--naps item {i} {a}-{b}: lights on must follow lights off")
            if on <= 0 or off >= duration_sec - EPOCH_SEC:
                raise ValueError(
                    f"--naps item {i} {a}-{b} lies outside {source}, which runs "
                    f"{clock_time(0.0, start_time)} to {clock_time(duration_sec, start_time)}")
            if off < 0 or on > duration_sec:
                notices.add("nap-incomplete", f"{source}: nap {i} ({a}-{b}) runs past the "
                            "recording; it is cut to the recording")
            out.append(NapWindow(source, max(off, 0.0), min(on, duration_sec), "--naps"))
        return out
    found = lights_from_annotations(annotations, source, duration_sec, notices)
    if found:
        return found
    notices.add("nap-lights-missing",
                f"{source}: no lights-off/lights-on given (--naps) or annotated; the whole "
                "recording is taken as one nap with lights off at its start, so its latency "
                "counts from the recording start")
    return [NapWindow(source, 0.0, duration_sec, "recording")]


def _overlaps(naps: list[StagedNap], notices: Notices) -> None:
    """``nap-overlap`` warnings for naps whose lights-off/on overlap (on one clock, or in
    one recording)."""
    def span(n: StagedNap) -> tuple[Any, Any]:
        w = n.window
        if n.start_time is not None:
            return n.start_time, n.start_time + _dt.timedelta(seconds=w.lights_on_sec
                                                               - w.lights_off_sec)
        return (w.source, w.lights_off_sec), (w.source, w.lights_on_sec)

    for i, a in enumerate(naps):
        for b in naps[i + 1:]:
            (a0, a1), (b0, b1) = span(a), span(b)
            if type(a0) is not type(b0) or (isinstance(a0, tuple) and a0[0] != b0[0]):
                continue
            if a0 < b1 and b0 < a1:
                notices.add("nap-overlap", f"naps {a.number} ({a.window.source}) and "
                            f"{b.number} ({b.window.source}) overlap in time; a day's naps "
                            "are separate trials")


# ------------------------------------------------------------------ checking
def _epoch_row(nap_hyp: Hypnogram, start: _dt.datetime | None, i: int, role: str,
               key: bool, p: float | None = None) -> dict[str, Any]:
    sec = float(nap_hyp.onsets[i])
    conf = nap_hyp.confidence
    return {"epoch": int(i), "minute": sec / 60.0,
            "clock": None if start is None else
            f"{start + _dt.timedelta(seconds=sec):%H:%M:%S}",
            "stage": nap_hyp.labels[i], "role": role, "key": key,
            "confidence": None if conf is None else float(conf[i]),
            "probability": p}


def epochs_to_check(hyp: Hypnogram, score: NapScore) -> list[dict[str, Any]]:
    """The epochs a scorer checks first: the key epochs of ``score`` with their
    confidence, and where the decision could go the other way (module docstring); sorted
    by confidence, lowest first."""
    start = hyp.start_time
    roles = {score.sleep_onset_epoch: "sleep onset", score.rem_epoch: "first REM"}
    rows = []
    for i in score.key_epochs:
        role = roles.get(i) or ("unscored before sleep onset" if hyp.codes[i] < 0
                                else "unequivocal sleep")
        rows.append(_epoch_row(hyp, start, i, role, True))
    p = hyp.probabilities
    if p is not None and hyp.n_classes == 5:
        lo = score.first_epoch
        hi = score.sleep_onset_epoch if score.sleep_onset_epoch is not None else \
            score.stop_epoch
        if hi > lo:
            p_sleep = 1.0 - p[lo:hi, W]
            j = int(np.argmax(p_sleep))
            if p_sleep[j] >= CHECK_PROBABILITY and hyp.codes[lo + j] >= 0:
                rows.append(_epoch_row(hyp, start, lo + j, "possible earlier sleep", False,
                                       float(p_sleep[j])))
        if score.rem_epoch is None and score.sleep_onset_epoch is not None:
            a, b = score.sleep_onset_epoch, min(score.stop_epoch, hyp.n_epochs)
            if b > a:
                j = int(np.argmax(p[a:b, R]))
                if p[a + j, R] >= CHECK_PROBABILITY:
                    rows.append(_epoch_row(hyp, start, a + j, "possible REM", False,
                                           float(p[a + j, R])))
    return sorted(rows, key=lambda r: (r["confidence"] is None, r["confidence"] or 0.0))


# ------------------------------------------------------------------ staging
def _read(path: str, model: Any, eeg, eog, emg):
    """The recording at the rate of the model that stages it (``auto``: the default
    model's)."""
    auto = isinstance(model, str) and model == AUTO_MODEL
    mdl, card = load_staging_model(DEFAULT_MODEL if auto else model)
    kind = input_kind(mdl, card)
    return read_recording(path, kind, eeg, eog, emg, model_sfreq(mdl, kind))


def _stage_one(rec, w: NapWindow, number: int, protocol: str, model: Any,
               eeg, eog, emg) -> tuple[StagedNap, dict[str, Any]]:
    a, b = int(round(w.lights_off_sec * rec.sfreq)), int(round(w.lights_on_sec * rec.sfreq))
    if (b - a) < EPOCH_SEC * rec.sfreq:
        raise ValueError(f"{w.source}: nap {number} ({w.lights_off_sec:g}-{w.lights_on_sec:g} "
                         "s) is shorter than one 30-s epoch")
    start = None if rec.start_time is None else \
        rec.start_time + _dt.timedelta(seconds=w.lights_off_sec)
    nap_rec = rec.copy(data=rec.data[:, a:b], start_time=start, annotations=None,
                       source=f"{w.source} nap {number}",
                       meta={**rec.meta, "notices": Notices(), "warnings": []})
    try:
        res = stage_recording(nap_rec, model=model, eeg=eeg, eog=eog, emg=emg, crop="off")
    except ValueError as exc:
        raise ValueError(f"{w.source}: nap {number} ({clock_time(w.lights_off_sec, rec.start_time)}"
                         f"): {exc}") from exc
    hyp = res.hypnogram
    score = score_nap(hyp, protocol, 0.0, w.lights_on_sec - w.lights_off_sec)
    nap = StagedNap(number, w, start, hyp, score, epochs_to_check(hyp, score),
                    Notices().extend_from(res.notices))
    return nap, res.info.get("model", {})


def _expand(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given; a folder gives its recordings
    (:func:`hypnoscope.io.recordings.folder_recordings`)."""
    from hypnoscope.io.recordings import folder_recordings

    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(folder_recordings(p))
        else:
            out.append(p)
    if not out:
        raise ValueError("no nap recordings given")
    return out


def stage_naps(paths: list[str | os.PathLike], protocol: str = "mslt", model: Any = AUTO_MODEL,
               naps: str | None = None, eeg=None, eog=None, emg=None) -> NapDay:
    """Stage a day of naps and apply the nap rules.

    Parameters
    ----------
    paths : list of path
        The recordings: one file per nap, or one recording holding every nap; a folder
        stands for its recordings (its ``*-PSG.edf`` files, else every recording file).
    protocol : {"mslt", "mwt"}
    model : str, path or StagingModel, default "auto"
        As in :func:`hypnoscope.staging.pipeline.stage_recording`.
    naps : str, optional
        Lights-off/lights-on of each nap in the one recording (``"09:00-09:20,..."``).
    eeg, eog, emg
        Channel overrides.

    Returns
    -------
    NapDay
        Naps in time order (clock, else as given), numbered from 1.
    """
    from hypnoscope.evaluation.naps import PROTOCOLS

    protocol = str(protocol).lower()
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    paths = _expand(paths)
    if naps and len(paths) > 1:
        raise ValueError(f"--naps gives the naps of one recording, but {len(paths)} were "
                         "given; give one file per nap without --naps, or one recording")
    notices = Notices()
    found: list[tuple[Any, NapWindow]] = []
    for path in paths:
        src = str(path)
        rec = _read(src, model, eeg, eog, emg)
        notices.extend_from(notices_of(rec.meta))
        for w in nap_windows(src, rec.duration_sec, rec.start_time, rec.annotations, naps,
                             notices):
            found.append((rec, w))
    order = [(0, rec.start_time + _dt.timedelta(seconds=w.lights_off_sec), i)
             if rec.start_time is not None else (1, _dt.datetime.min, i)
             for i, (rec, w) in enumerate(found)]
    found = [found[i] for *_, i in sorted(order)]
    staged, card = [], {}
    for k, (rec, w) in enumerate(found, 1):
        nap, card = _stage_one(rec, w, k, protocol, model, eeg, eog, emg)
        staged.append(nap)
        for n in nap.notices.warnings:
            notices.add(n.code, n.message, channel=n.channel)
        if not nap.score.complete:
            notices.add("nap-incomplete", f"nap {k} ({w.source}, lights off "
                        f"{nap.clock(0.0) or f'{w.lights_off_sec:g} s'}) does not meet the "
                        f"{protocol.upper()} protocol: " + "; ".join(nap.score.problems))
    _overlaps(staged, notices)
    if len(staged) < MIN_NAPS:
        notices.add("nap-count", f"{len(staged)} nap(s) given; the {protocol.upper()} has "
                    f"{'five' if protocol == 'mslt' else 'four'} (at least {MIN_NAPS}), so the "
                    "day's mean is over fewer naps than the protocol's")
    summary = summarise_day([n.score for n in staged], protocol)
    return NapDay(protocol, staged, summary, notices, card)


__all__ = ["CHECK_PROBABILITY", "MIN_NAPS", "NapDay", "NapWindow", "StagedNap",
           "epochs_to_check", "lights_from_annotations", "nap_windows", "parse_nap_times",
           "stage_naps"]
