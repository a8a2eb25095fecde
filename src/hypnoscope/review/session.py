"""A review session: one recording, its automatic scoring and the scorer's corrections.

:class:`ReviewSession` opens a recording with the hypnogram ``hypnoscope stage`` made of it
(staging it first when given the recording alone), reads 30-s pages of its signals
lazily (a 24-h recording is never loaded whole), lists the epochs to check first, and
keeps the scorer's corrections as a new scoring: after every change the reviewed
hypnogram is written as TSV, EDF+ and NSRR XML together with the review's state
(``<stem>.review.json``: scorer, times, undo history, position) as one output set
(:func:`hypnoscope.utils.files.output_set`), beside the automatic files and never over
them. Reopening the folder continues where the scorer stopped. No web code here: the
browser app is :mod:`hypnoscope.review.app`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import AUTOMATIC_SCORER
from hypnoscope.io.recordings import REVIEW_SUFFIXES
from hypnoscope.stages import UNSCORED, label_to_code, stage_names

#: Stage labels of the review (5-class AASM).
STAGES: tuple[str, ...] = stage_names(5)
#: Epochs whose automatic confidence is below this are queued as "low confidence".
LOW_CONFIDENCE = 0.6
#: At most this many points per channel and page are sent (min/max decimation).
MAX_POINTS = 2000
#: Display scale per channel role (µV per half channel height).
DEFAULT_SCALE_UV = {"eeg": 75.0, "eog": 150.0, "emg": 50.0, "emg_envelope": 50.0,
                    "other": 100.0}
#: Signal read on each side of a page at least (s): MNE reads a mixed-rate EDF lazily by
#: upsampling each piece it reads, which bends the low-rate channels near the piece's edges.
MIN_MARGIN_SEC = 10.0
#: Longest page request, in epochs.
MAX_PAGE_EPOCHS = 10
#: Scorer names: 1 to 80 characters, none of them a control character, tab or ``#``
#: (the TSV's comment mark).
_SCORER_RE = re.compile(r"^[^\x00-\x1f\x7f#]{1,80}$")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def check_scorer(name: Any) -> str:
    """The scorer's name, stripped; a ``ValueError`` naming the rule if it breaks it."""
    text = str(name or "").strip()
    if not _SCORER_RE.match(text):
        raise ValueError(f"scorer name {text!r}: expected 1 to 80 characters without tabs, "
                         "line breaks or '#'")
    return text


@dataclass
class ReviewChannel:
    """A channel shown on the pages: name, role, stored rate, unit and display defaults."""

    name: str
    role: str
    sfreq: float
    unit: str
    default_filter: tuple[float | None, float | None]
    default_scale_uv: float
    factor: float  # file value (MNE's SI unit) -> shown unit

    def to_dict(self) -> dict[str, Any]:
        """The channel as ``GET /api/night`` lists it."""
        return {"name": self.name, "role": self.role, "unit": self.unit, "sfreq": self.sfreq,
                "default_filter": list(self.default_filter),
                "default_scale_uv": self.default_scale_uv}


def _channels(info: dict[str, Any], file_sfreq: float,
              unit_factors: dict[str, float] | None = None) -> list[ReviewChannel]:
    """The channels of :func:`hypnoscope.io.psg.recording_info` to show: EEG, EOG, EMG
    first (file order within a role), then the others; default filters are the signal
    models' role bands (:data:`hypnoscope.signal.filters.ROLE_BANDS`). ``unit_factors``
    (channel -> factor) are the power-of-1000 unit fixes staging applied
    (:mod:`hypnoscope.io.units`, the report's ``recording.unit_factors``), so that a page
    shows the µV staging read."""
    from hypnoscope.io.channels import guess_role
    from hypnoscope.signal.filters import BANDPASS_DEFAULTS, upper_edge

    unit_factors = unit_factors or {}
    order = {"eeg": 0, "eog": 1, "emg": 2, "emg_envelope": 2}
    out = []
    for ch in info["channels"]:
        role = ch.get("role") or guess_role(ch["name"]) or "other"
        unit = str(ch.get("unit") or "")
        volts = unit.lower().endswith("v") or unit.startswith("V (")
        band = BANDPASS_DEFAULTS.get(role) if role != "emg_envelope" else None
        lo, hi = (band if band is not None else (None, None))
        nyq = ch["sfreq"] / 2.0
        if lo is not None and lo >= nyq:
            lo = hi = None  # e.g. an EMG stored at 1 Hz: nothing to band-pass
        hi = upper_edge(hi, min(ch["sfreq"], file_sfreq))
        out.append(ReviewChannel(
            name=ch["name"], role="emg" if role == "emg_envelope" else role,
            sfreq=float(ch["sfreq"]), unit="uV" if volts else unit,
            default_filter=(lo, hi), default_scale_uv=DEFAULT_SCALE_UV.get(role, 100.0),
            factor=(1e6 if volts else 1.0) * float(unit_factors.get(ch["name"], 1.0))))
    out.sort(key=lambda c: order.get(c.role, 3))
    return out


def _clock_pieces(gaps: list[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """Continuous stretches of a recording on its clock, ``(start, end, shift)`` in
    seconds: clock time ``t`` of a stretch is file time ``t - shift`` (an EDF+D file's
    gaps hold no samples)."""
    pieces, prev, shift = [], 0.0, 0.0
    for a, b in sorted(gaps):
        pieces.append((prev, float(a), shift))
        shift += float(b) - float(a)
        prev = float(b)
    pieces.append((prev, np.inf, shift))
    return pieces


def minmax_decimate(x: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """At most ``max_points`` values per row of ``x`` that keep its envelope: the minimum
    and the maximum of each of ``max_points // 2`` bins, in their time order (NaN bins
    stay NaN). Rows short enough are returned as they are."""
    n = x.shape[-1]
    if n <= max_points:
        return x
    bins = max_points // 2
    k = -(-n // bins)
    n_bins = -(-n // k)
    pad = n_bins * k - n
    xp = np.concatenate([x, np.repeat(x[:, -1:], pad, axis=1)], axis=1) if pad else x
    xb = xp.reshape(x.shape[0], n_bins, k)
    with np.errstate(invalid="ignore"):
        filled = np.where(np.isnan(xb), 0.0, xb)
        i_min, i_max = filled.argmin(axis=2), filled.argmax(axis=2)
    v_min = np.take_along_axis(xb, i_min[..., None], axis=2)[..., 0]
    v_max = np.take_along_axis(xb, i_max[..., None], axis=2)[..., 0]
    first = np.where(i_min <= i_max, v_min, v_max)
    second = np.where(i_min <= i_max, v_max, v_min)
    return np.stack([first, second], axis=2).reshape(x.shape[0], 2 * n_bins)


class ReviewSession:
    """An opened recording, its automatic scoring and the review of it.

    Use :meth:`open` (a recording file or an output folder of ``hypnoscope stage``).
    Every public method is safe to call from several threads (one lock).

    Parameters
    ----------
    recording : path
        The recording file (any format MNE reads).
    automatic : path
        The automatic hypnogram TSV (``<stem>.hypnogram.tsv`` of ``hypnoscope stage``).
    out_dir : path
        The review folder: where the automatic outputs are and the review files go.
    stem : str
        Output stem (``<stem>.reviewed.tsv`` ...).
    report : dict, optional
        The staging report (its ``span`` gives lights-off/on for the statistics, its
        ``hypnogram.start_time`` the clock).
    scorer : str, optional
        The scorer's name (each correction may name its own).
    """

    def __init__(self, recording: str | os.PathLike, automatic: str | os.PathLike,
                 out_dir: str | os.PathLike, stem: str, report: dict[str, Any] | None = None,
                 scorer: str | None = None) -> None:
        from hypnoscope.io.hypnograms import read_hypnogram
        from hypnoscope.io.psg import open_raw, recording_info

        self.recording = Path(recording)
        self.automatic_path = Path(automatic)
        self.out_dir = Path(out_dir)
        self.stem = stem
        self.report = report or {}
        self.scorer = None if scorer is None else check_scorer(scorer)
        self._lock = threading.RLock()
        auto = read_hypnogram(self.automatic_path)
        if auto.n_classes != 5:
            raise ValueError(f"{self.automatic_path}: a 3-class hypnogram; the review needs "
                             "the 5 AASM stages (W, N1, N2, N3, R)")
        start = (self.report.get("hypnogram") or {}).get("start_time")
        if auto.start_time is None and start:
            auto.start_time = _dt.datetime.fromisoformat(start)
        self.auto = auto
        info = recording_info(self.recording)
        if info["kind"] != "signals":
            raise ValueError(f"{self.recording}: an annotation file, not a recording; expected "
                             "the recording (PSG) the scoring belongs to")
        self._raw, _ = open_raw(self.recording, preload=False)
        self.file_sfreq = float(self._raw.info["sfreq"])
        self.channels = _channels(info, self.file_sfreq, (self.report.get("recording") or {})
                                  .get("unit_factors"))
        self._pieces = _clock_pieces(info.get("gaps") or [])
        self.duration_sec = float(info["duration_sec"])
        self.reviewed = np.full(auto.n_epochs, UNSCORED, dtype=np.int64)
        self._marks: dict[int, dict[str, str]] = {}  # epoch -> {"scorer", "time"}
        self.history: list[dict[str, Any]] = []
        self.position = 0
        self.created = _now()
        self.updated: str | None = None
        self._auto_sha = _sha256(self.automatic_path)
        self._load_state()
        self._design_default_filters()

    def _design_default_filters(self) -> None:
        """Design the default filters now (the first design imports MNE's filter code),
        so that the first page is as quick as the others."""
        from hypnoscope.signal.filters import design_fir

        for c in self.channels:
            lo, hi = c.default_filter
            if lo is not None or hi is not None:
                design_fir(self.file_sfreq, lo, hi)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | os.PathLike, out: str | os.PathLike | None = None,
             model: Any = None, scorer: str | None = None,
             note: Any = None) -> ReviewSession:
        """Open a recording file (staged first into ``out``, default
        ``<recording stem>_review/`` beside it, unless ``out`` holds its scoring
        already) or an output folder of ``hypnoscope stage`` (its hypnogram TSV, report
        and the recording the report names). ``note`` (a callable) is told what is done.
        """
        path = Path(path)
        if path.is_dir() and out is None:
            return cls._from_output_folder(path, scorer)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such recording or output folder; expected a "
                                    "recording file or an output folder of hypnoscope stage")
        if path.is_dir():
            raise ValueError(f"{path} is a folder: --out is for a recording file; give the "
                             "output folder alone to review it")
        return cls._from_recording(path, out, model, scorer, note)

    @classmethod
    def _from_output_folder(cls, folder: Path, scorer: str | None) -> ReviewSession:
        from hypnoscope.staging.outputs import output_names

        # (scoring, stem, report) of each output set: STEM.hypnogram.tsv, or in a BIDS
        # derivative dataset STEM_events.tsv beside STEM_report.json
        sets = []
        for bids in (False, True):
            names = output_names("*", bids=bids)
            for tsv in sorted(folder.glob(names["tsv"])):
                stem = tsv.name[: len(tsv.name) - len(names["tsv"]) + 1]
                report = folder / output_names(stem, bids=bids)["json"]
                if not bids or report.is_file():  # a BIDS events.tsv of hypnoscope's
                    sets.append((tsv, stem, report))
        if not sets:
            raise ValueError(f"{folder}: no {output_names('*')['tsv']} (or "
                             f"{output_names('*', bids=True)['tsv']} with its report) in this "
                             "folder; expected an output folder of hypnoscope stage (or give "
                             "the recording file)")
        if len(sets) > 1:
            raise ValueError(f"{folder} holds the scorings of {len(sets)} recordings "
                             f"({', '.join(t.name for t, _, _ in sets)}); give one recording "
                             "file with --out FOLDER to review it")
        tsv, stem, report_path = sets[0]
        report = _read_report(report_path)
        recording = _recording_of(report, folder)
        return cls(recording, tsv, folder, stem, report, scorer)

    @classmethod
    def _from_recording(cls, psg: Path, out: str | os.PathLike | None, model: Any,
                        scorer: str | None, note: Any) -> ReviewSession:
        from hypnoscope.io.recordings import recording_stem, review_dir
        from hypnoscope.models.storage import AUTO_MODEL
        from hypnoscope.staging.outputs import (
            OUTPUT_SUFFIXES,
            existing_outputs,
            stage_file,
            staging_options,
        )
        from hypnoscope.utils.files import check_output_dir

        stem = recording_stem(psg)
        out_dir = check_output_dir(out if out is not None else review_dir(psg), "--out")
        model = model or AUTO_MODEL
        auto = out_dir / f"{stem}.{OUTPUT_SUFFIXES['tsv']}"
        report_path = out_dir / f"{stem}.{OUTPUT_SUFFIXES['json']}"
        state = out_dir / f"{stem}.{REVIEW_SUFFIXES['state']}"
        kind, why = existing_outputs(out_dir, stem, False, staging_options(psg, model))
        if kind == "other":
            raise ValueError(why)
        if state.is_file() and auto.is_file():
            kind = "complete"  # a review began on this scoring: never restage under it
        if kind != "complete":
            if note:
                note(f"staging {psg} into {out_dir} (model {model}) ...")
            stage_file(psg, out_dir, model=model, plot=False)
        return cls(psg, auto, out_dir, stem, _read_report(report_path), scorer)

    # ------------------------------------------------------------------ state
    def _path(self, kind: str) -> Path:
        return self.out_dir / f"{self.stem}.{REVIEW_SUFFIXES[kind]}"

    @property
    def files(self) -> dict[str, Path]:
        """The review's files (kind -> path)."""
        return {k: self._path(k) for k in REVIEW_SUFFIXES}

    def _load_state(self) -> None:
        path = self._path("state")
        if not path.is_file():
            return
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            marks = {int(k): v for k, v in state["reviewed"].items()}
            history = list(state["history"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: cannot read the review state ({exc}); expected the "
                             "review.json a review wrote (move it away to start anew)") from None
        if state.get("n_epochs") != self.auto.n_epochs or (
                state.get("automatic_sha256") not in (None, self._auto_sha)):
            raise ValueError(f"{path} reviews another automatic scoring than "
                             f"{self.automatic_path} (changed since the review began); move "
                             "the review files away to start anew, or restore that scoring")
        for e, m in marks.items():
            self.reviewed[e] = label_to_code(m["stage"])
            self._marks[e] = {"scorer": m["scorer"], "time": m["time"]}
        self.history = history
        self.position = int(state.get("position") or 0)
        self.created = state.get("created_utc") or self.created
        self.updated = state.get("updated_utc")
        self.scorer = self.scorer or state.get("scorer")

    def _state(self) -> dict[str, Any]:
        return {"format": "hypnoscope-review", "version": 1, "recording": self.recording.name,
                "recording_path": str(self.recording.resolve()),
                "automatic": self.automatic_path.name, "automatic_sha256": self._auto_sha,
                "n_epochs": self.auto.n_epochs, "epoch_sec": self.auto.epoch_sec,
                "scorer": self.scorer, "created_utc": self.created,
                "updated_utc": self.updated, "position": self.position,
                "reviewed": {str(e): {"stage": STAGES[self.reviewed[e]], **m}
                             for e, m in sorted(self._marks.items())},
                "history": self.history}

    def reviewed_hypnogram(self) -> Hypnogram:
        """The reviewed scoring: the scorer's stage where reviewed, else the automatic."""
        codes = np.where(self.reviewed >= 0, self.reviewed, self.auto.codes)
        return Hypnogram(codes, epoch_sec=self.auto.epoch_sec, onset_sec=self.auto.onset_sec,
                         start_time=self.auto.start_time)

    def save(self) -> list[str]:
        """Write the reviewed scoring (TSV, EDF+, NSRR XML) and the state, all together."""
        from hypnoscope.utils.files import output_set, write_json_atomic

        hyp = self.reviewed_hypnogram()
        names = {k: p.name for k, p in self.files.items()}
        with output_set(self.out_dir, f"{self.stem}.reviewed",
                        replaces=list(names.values())) as tmp:
            self._write_tsv(tmp / names["tsv"], hyp)
            self._write_edf(tmp / names["edf"], hyp)
            self._write_xml(tmp / names["xml"], hyp)
            write_json_atomic(tmp / names["state"], self._state())
        return [str(self.out_dir / n) for n in names.values()]

    def _signature(self) -> str:
        scorers = sorted({m["scorer"] for m in self._marks.values()})
        return (f"reviewed by {', '.join(scorers) or '(nobody yet)'}, last change "
                f"{self.updated or '-'}")

    def _write_tsv(self, path: Path, hyp: Hypnogram) -> None:
        hyp.to_tsv(path)
        lines = path.read_text(encoding="utf-8").splitlines()
        head = [f"# hypnoscope review of {self.recording.name}: {self._signature()}",
                f"# automatic scoring: {self.automatic_path.name}; {len(self._marks)} of "
                f"{hyp.n_epochs} epochs reviewed"]
        rows = [lines[0] + "\tscorer\tscored_utc"]
        for e, line in enumerate(lines[1:]):
            m = self._marks.get(e)
            rows.append(f"{line}\t{m['scorer']}\t{m['time']}" if m
                        else f"{line}\t{AUTOMATIC_SCORER}\t")
        path.write_text("\n".join(head + rows) + "\n", encoding="utf-8")

    def _write_edf(self, path: Path, hyp: Hypnogram) -> None:
        import edfio

        hyp.to_edf(path)
        scorers = sorted({m["scorer"] for m in self._marks.values()}) or ["X"]
        code = "_".join(scorers).encode("ascii", "replace").decode().replace(" ", "_")
        edf = edfio.read_edf(path)
        # EDF+: the investigator/technician field of the recording identification
        edf.recording = edfio.Recording(startdate=edf.startdate,
                                        investigator_technician_code=code[:40],
                                        equipment_code="hypnoscope_review")
        edf.write(path)

    def _write_xml(self, path: Path, hyp: Hypnogram) -> None:
        from hypnoscope.io.nsrr_xml import write_nsrr_xml

        sign = f"Scorer: {self._signature()}"
        write_nsrr_xml(hyp, path, events=[{"type": "Review", "description": sign,
                                           "onset": 0.0, "duration": 0.0}],
                       recording_sec=self.duration_sec)

    # ------------------------------------------------------------------ scoring
    def _check_epoch(self, epoch: Any) -> int:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer, str)):
            raise ValueError(f"epoch {epoch!r}: expected an integer")
        try:
            e = int(epoch)
        except ValueError:
            raise ValueError(f"epoch {epoch!r}: expected an integer") from None
        if not 0 <= e < self.auto.n_epochs:
            raise IndexError(f"epoch {epoch!r} is out of range; expected 0 to "
                             f"{self.auto.n_epochs - 1}")
        return e

    def _entry(self, e: int) -> dict[str, str] | None:
        if self.reviewed[e] < 0:
            return None
        return {"stage": STAGES[self.reviewed[e]], **self._marks[e]}

    def _set(self, e: int, entry: dict[str, str] | None) -> None:
        if entry is None:
            self.reviewed[e] = UNSCORED
            self._marks.pop(e, None)
        else:
            self.reviewed[e] = STAGES.index(entry["stage"])
            self._marks[e] = {"scorer": entry["scorer"], "time": entry["time"]}

    def score(self, epoch: Any, stage: Any, scorer: str | None = None) -> dict[str, Any]:
        """Score ``epoch`` as ``stage`` (``W N1 N2 N3 R``) and save; returns ``epoch``,
        ``stage``, ``reviewed_count`` and ``saved`` (the paths written)."""
        with self._lock:
            e = self._check_epoch(epoch)
            if stage not in STAGES:
                raise ValueError(f"stage {stage!r}: expected one of {', '.join(STAGES)}")
            who = check_scorer(scorer) if scorer else self.scorer
            if who is None:
                raise ValueError("no scorer name: give one (hypnoscope review --scorer NAME, "
                                 "or the scorer field of the page)")
            self.scorer = who
            now = _now()
            after = {"stage": stage, "scorer": who, "time": now}
            self.history.append({"epoch": e, "before": self._entry(e), "after": after})
            self._set(e, after)
            self.updated = now
            return self._changed(e)

    def undo(self) -> dict[str, Any]:
        """Take back the last correction and save; ``LookupError`` with none left."""
        with self._lock:
            if not self.history:
                raise LookupError("nothing to undo")
            last = self.history.pop()
            e = int(last["epoch"])
            self._set(e, last["before"])
            self.updated = _now()
            return self._changed(e)

    def _changed(self, e: int) -> dict[str, Any]:
        saved = self.save()
        return {"epoch": e, "stage": STAGES[self.reviewed[e]] if self.reviewed[e] >= 0
                else None, "reviewed_count": len(self._marks), "saved": saved}

    def set_position(self, epoch: Any) -> dict[str, int]:
        """Remember where the scorer is (saved with the state)."""
        with self._lock:
            self.position = self._check_epoch(epoch)
            from hypnoscope.utils.files import write_json_atomic

            write_json_atomic(self._path("state"), self._state())
            return {"position": self.position}

    # ------------------------------------------------------------------ reading
    def check_queue(self) -> list[dict[str, Any]]:
        """Epochs to check first, lowest automatic confidence first: those with a quality
        flag, with confidence below :data:`LOW_CONFIDENCE`, or at a stage transition
        (``reason`` the first that applies, ``reasons`` all)."""
        auto = self.auto
        conf = auto.confidence if auto.confidence is not None else np.ones(auto.n_epochs)
        codes = auto.codes
        trans = np.zeros(auto.n_epochs, dtype=bool)
        change = (codes[1:] != codes[:-1]) & (codes[1:] >= 0) & (codes[:-1] >= 0)
        trans[1:] |= change
        trans[:-1] |= change
        rows = []
        for e in range(auto.n_epochs):
            if codes[e] < 0:
                continue  # not staged (outside lights-off/on, or unscorable)
            q = auto.quality[e] if auto.quality is not None else "ok"
            reasons = [r for r, hit in (("quality flag", q not in ("ok", "")),
                                        ("low confidence", conf[e] < LOW_CONFIDENCE),
                                        ("transition", trans[e])) if hit]
            if reasons:
                rows.append({"epoch": e, "reason": reasons[0], "reasons": reasons,
                             "confidence": round(float(conf[e]), 4)})
        rows.sort(key=lambda r: (r["confidence"], r["epoch"]))
        return rows

    def night(self) -> dict[str, Any]:
        """The whole night as ``GET /api/night`` returns it (notes/review_api.md)."""
        with self._lock:
            auto = self.auto

            def labels(codes):
                return [STAGES[c] if c >= 0 else None for c in codes]

            proba = auto.probabilities
            conf = auto.confidence
            return {
                "recording": self.recording.name, "n_epochs": auto.n_epochs,
                "epoch_sec": auto.epoch_sec, "onset_sec": auto.onset_sec,
                "start_time": auto.start_time.isoformat() if auto.start_time else None,
                "stage_names": list(STAGES),
                "channels": [c.to_dict() for c in self.channels],
                "auto": labels(auto.codes), "reviewed": labels(self.reviewed),
                "confidence": (None if conf is None
                               else np.round(conf, 4).tolist()),
                "probabilities": None if proba is None else np.round(proba, 4).tolist(),
                "quality": auto.quality, "queue": self.check_queue(),
                "position": self.position, "scorer": self.scorer,
                "reviewed_count": len(self._marks),
                "files": {k: p.name for k, p in self.files.items()},
                "automatic": self.automatic_path.name,
                "model": (self.report.get("model") or {}).get("name"),
                "notices": [{k: n.get(k) for k in ("code", "severity", "message", "channel")}
                            for n in self.report.get("notices") or []
                            if isinstance(n, dict)]}

    def _filters(self, filters: dict[str, Any] | None) -> list[tuple[float | None, ...]]:
        """Each channel's ``(lo, hi)``: its default, or what ``filters`` gives it."""
        filters = filters or {}
        if not isinstance(filters, dict):
            raise ValueError("filters: expected a JSON object {channel: [lo, hi]}")
        names = {c.name for c in self.channels}
        unknown = sorted(set(filters) - names)
        if unknown:
            raise ValueError(f"filters: unknown channel(s) {unknown}; channels: {sorted(names)}")
        from hypnoscope.signal.filters import upper_edge

        nyq = self.file_sfreq / 2.0
        out = []
        for c in self.channels:
            band = filters.get(c.name, list(c.default_filter))
            if band is None:
                band = [None, None]
            if not (isinstance(band, (list, tuple)) and len(band) == 2
                    and all(v is None or (isinstance(v, (int, float))
                                          and not isinstance(v, bool) and np.isfinite(v)
                                          and v > 0) for v in band)):
                raise ValueError(f"filters[{c.name!r}] = {band!r}: expected [lo, hi], each a "
                                 "positive number of Hz or null")
            lo, hi = band
            if lo is not None and lo >= nyq:
                raise ValueError(f"filters[{c.name!r}]: low edge {lo} Hz is not below Nyquist "
                                 f"({nyq:g} Hz)")
            hi = upper_edge(hi, self.file_sfreq)
            if lo is not None and hi is not None and lo >= hi:
                raise ValueError(f"filters[{c.name!r}]: low edge {lo} Hz must be below the "
                                 f"high edge {hi} Hz")
            out.append((lo, hi))
        return out

    def _read(self, t0: float, t1: float) -> np.ndarray:
        """Samples of the shown channels (file units) on the clock from ``t0`` to ``t1``
        seconds, NaN where the recording has none (before it, after it, in a gap)."""
        fs = self.file_sfreq
        n = int(round((t1 - t0) * fs))
        out = np.full((len(self.channels), n), np.nan)
        picks = [c.name for c in self.channels]
        n_file = self._raw.n_times
        for c0, c1, shift in self._pieces:
            a, b = max(t0, c0), min(t1, c1)
            if a >= b:
                continue
            i0 = int(round((a - shift) * fs))
            i1 = min(int(round((b - shift) * fs)), n_file)
            if i1 <= i0:
                continue
            with warnings.catch_warnings():  # mixed rates read lazily: see MIN_MARGIN_SEC
                warnings.simplefilter("ignore", RuntimeWarning)
                data = self._raw.get_data(picks=picks, start=i0, stop=i1)
            j = int(round((a - t0) * fs))
            m = min(data.shape[1], n - j)
            out[:, j:j + m] = data[:, :m]
        return out

    def page(self, epoch: Any, n: Any = 1, filters: dict[str, Any] | None = None,
             ) -> dict[str, Any]:
        """``n`` epochs of signals from ``epoch``, filtered (``filters``: channel ->
        ``[lo, hi]`` Hz, null for none; absent channels get their default) and decimated
        to at most :data:`MAX_POINTS` per channel. Only the page and a margin on each side
        (one filter length, at least :data:`MIN_MARGIN_SEC`) are read from the file."""
        from hypnoscope.signal.filters import bandpass, design_fir

        with self._lock:
            e = self._check_epoch(epoch)
            try:
                n = int(n)
            except (TypeError, ValueError):
                raise ValueError(f"n {n!r}: expected an integer") from None
            if not 1 <= n <= MAX_PAGE_EPOCHS:
                raise ValueError(f"n {n}: expected 1 to {MAX_PAGE_EPOCHS} epochs")
            bands = self._filters(filters)
            fs = self.file_sfreq
            taps = [len(design_fir(fs, lo, hi)) for lo, hi in bands
                    if lo is not None or hi is not None]
            pad = max(max(taps, default=0) / fs, MIN_MARGIN_SEC)
            t0 = self.auto.onset_sec + e * self.auto.epoch_sec
            t1 = t0 + n * self.auto.epoch_sec
            x = self._read(t0 - pad, t1 + pad)
            x *= np.array([c.factor for c in self.channels])[:, None]
            for band in set(bands):
                idx = [i for i, b in enumerate(bands) if b == band]
                if band == (None, None):
                    continue
                rows = x[idx]
                ok = ~np.isnan(rows).any(axis=0)
                if ok.sum() > 1:  # the samples there are (a page at an edge or a gap)
                    rows[:, ok] = bandpass(rows[:, ok], fs, *band)
                x[idx] = rows
            k = int(round(pad * fs))
            x = minmax_decimate(x[:, k:x.shape[1] - k])
            secs = n * self.auto.epoch_sec
            return {"epoch": e, "n": n, "t0_sec": t0,
                    "channels": [{"name": c.name, "sfreq": x.shape[1] / secs,
                                  "filter": list(bands[i]),
                                  "data": [None if v != v else v
                                           for v in np.round(x[i], 2).tolist()]}
                                 for i, c in enumerate(self.channels)]}

    def summary(self) -> dict[str, Any]:
        """Agreement of the automatic with the reviewed scoring over the reviewed epochs
        (accuracy, kappa, confusion; rows = reviewed, columns = automatic) and the sleep
        statistics of both over the staged span."""
        from hypnoscope.evaluation.metrics import evaluate
        from hypnoscope.evaluation.sleepstats import json_safe, sleep_statistics

        with self._lock:
            done = (self.reviewed >= 0) & (self.auto.codes >= 0)
            agreement = None
            if done.any():
                res = evaluate(self.reviewed[done], self.auto.codes[done])
                agreement = {"accuracy": res["accuracy"], "kappa": res["kappa"],
                             "macro_f1": res["macro_f1"], "n_epochs": res["n_epochs"],
                             "labels": list(STAGES), "confusion": res["confusion_matrix"],
                             "changed": int((self.reviewed[done]
                                             != self.auto.codes[done]).sum())}
            span = self.report.get("span") or {}
            lights = (span.get("lights_off_sec"), span.get("lights_on_sec"))
            stats = {"automatic": sleep_statistics(self.auto, *lights),
                     "reviewed": sleep_statistics(self.reviewed_hypnogram(), *lights)}
            return json_safe({"reviewed_epochs": len(self._marks), "agreement": agreement,
                              "stats": stats})

    def close(self) -> None:
        """Close the recording file."""
        with self._lock:
            self._raw.close()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_report(path: Path) -> dict[str, Any]:
    """The staging report JSON (empty when absent)."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not a readable report JSON ({exc}); expected the "
                         "report.json of hypnoscope stage") from None


def _recording_of(report: dict[str, Any], folder: Path) -> Path:
    """The recording an output folder's report names: its absolute path, else the same
    name in the folder or beside it."""
    rec = report.get("recording") or {}
    given = [(rec.get("staging_options") or {}).get("psg"), rec.get("source")]
    names = [Path(g).name for g in given if g]
    tried = [Path(g) for g in given if g] + [d / nm for nm in names
                                            for d in (folder, folder.parent)]
    for p in tried:
        if p.is_file():
            return p
    if not given:
        raise ValueError(f"{folder}: no report JSON naming the recording; give the recording "
                         "file (hypnoscope review RECORDING --out FOLDER)")
    raise FileNotFoundError(f"{folder}: the recording its report names was not found "
                            f"(tried {', '.join(map(str, dict.fromkeys(tried)))}); give the "
                            "recording file (hypnoscope review RECORDING --out FOLDER)")
