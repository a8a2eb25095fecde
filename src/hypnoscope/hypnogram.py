"""The :class:`Hypnogram` value object: one stage per epoch, with readers and writers.

Supported formats
-----------------
- EDF+ annotation files in the Sleep-EDF form (``Sleep stage W/1/2/3/4/R/?``,
  ``Movement time``), read with MNE and written with ``edfio``.
- TSV/CSV with ``onset  duration  stage`` columns (BIDS events style). Rows may be
  single epochs or runs of several epochs; optional ``p_W ... p_R`` columns hold
  per-epoch probabilities.
- Plain text, one label per line (``W``, ``N1``, ``2``, ``REM``, ``?`` ...).
- :class:`mne.Annotations`.
- NSRR XML (``*-nsrr.xml`` standardised annotations and Compumedics ``*-profusion.xml``),
  read by :mod:`hypnoscope.io.nsrr_xml` (arousals and other events are not stages; they are
  read with :func:`hypnoscope.io.nsrr_xml.read_xml_events`).

Annotation-to-epoch rule
------------------------
The epoch grid starts at the onset of the first *stage* annotation (``onset_sec``) and
steps by ``epoch_sec``. Each epoch takes the stage of the annotation that covers the
epoch's midpoint; epochs covered by no stage annotation are unscored. Annotations that
are not stages (``Lights off``, arousals, ...) are ignored. This handles onsets that are
not on the 30-s grid and durations that are not multiples of 30 s without dropping or
duplicating time.

Stage labels
------------
Labels are matched case-insensitively through the one label table of
:mod:`hypnoscope.stages` (:func:`accepted_labels`): AASM ``W N1 N2 N3 R``, R&K,
Sleep-EDF and vendor names (``Sleep stage 4`` -> N3, ``Stage 2``, ``S2``, ``NREM2``,
``Sleep stage N2``, ``REM``, ``Wake``, NSRR ``Stage 2 sleep|2``), and the unscored labels
``?``, ``Sleep stage ?``, ``Movement time``/``MT``, ``U``/``unknown``, ``unscored``,
``artefact``. Anything else in a table's ``stage`` column or a text file, and any
annotation that claims to be a stage (``Sleep stage XYZ``, ``NREM 2``, ``N 2``), is an
error that lists the accepted labels -- never silently unscored. Site conventions are
mapped with ``label_map`` (``{"NREM2": "N2"}``, a JSON file or ``"NREM2=N2,N 2=N2"``;
CLI ``--label-map``). Bad numbers name the file, row (and line) and column.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hypnoscope.stages import _LABEL_MAP as _STAGE_LABELS
from hypnoscope.stages import (
    EDF_STAGE_TEXT,
    STAGES_5,
    UNSCORED,
    UNSCORED_LABEL,
    label_to_code,
    label_to_code3,
    proba_to_3class,
    sleep_period_slice,
    stage_names,
    to_3class,
)
from hypnoscope.utils import atomic_path, write_text_atomic

if TYPE_CHECKING:  # pragma: no cover
    import mne
    import pandas as pd  # imported where used: `import hypnoscope` stays light

#: Start written to (and read back as "unknown" from) EDF+ files when no start time is
#: known: 1985-01-01 00:00:00, the EDF header's conventional placeholder date.
UNKNOWN_EDF_START = _dt.datetime(1985, 1, 1, 0, 0, 0)


def _is_stage_text(text: str, to_code=label_to_code) -> bool:
    try:
        to_code(text)
    except ValueError:
        return False
    return True


def _is_3class(labels) -> bool:
    """True when labels use the 3-class view (some label is ``NREM``), e.g. files
    written by a 3-class hypnogram's ``to_tsv``/``to_txt``."""
    return any(str(x).strip().lower() == "nrem" for x in labels)


#: Annotation texts that claim to be a stage (so an unknown one is an error, not an
#: event to ignore): ``Sleep stage X``, ``Stage X``, ``N 2``, ``NREM2``, ``S-3`` ...
_STAGE_LIKE = re.compile(r"^(sleep[\s_-]*stage|stage)\b|^(n|s|nrem|rem)[\s_-]*\d+$")


def accepted_labels(n_classes: int = 5) -> str:
    """Text listing the stage labels the readers accept (case-insensitive), for errors."""
    groups: dict[int, list[str]] = {}
    for name, code in _STAGE_LABELS.items():
        groups.setdefault(code, []).append(name)
    unscored = ", ".join(repr(n) for n in groups[UNSCORED] if n)
    if n_classes == 3:
        return f"W (wake), NREM, R (rem), or unscored: {unscored}"
    names = "; ".join(f"{STAGES_5[c]} ({', '.join(repr(n) for n in groups[c])})"
                      for c in range(len(STAGES_5)))
    return f"{names}; unscored: {unscored}"


def parse_label_map(spec: Any) -> dict[str, str] | None:
    """A ``label_map`` (site label -> stage) from a dict, a JSON file (an object of
    strings) or a ``LABEL=STAGE,LABEL=STAGE`` string (the ``--label-map`` option).

    Keys match labels case-insensitively after stripping spaces at both ends; values
    must be stage labels the readers accept (``W``, ``N1`` ... ``R``, ``NREM``, ``?``).
    Raises ``ValueError`` naming the bad entry.
    """
    import json

    if spec is None:
        return None
    what = "label_map"
    if isinstance(spec, str | os.PathLike):
        text = str(spec)
        path = Path(text)
        if path.suffix.lower() == ".json" or path.is_file():
            what = f"label map file {path}"
            if not path.is_file():
                raise FileNotFoundError(f"label map file not found: {path}")
            try:
                spec = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ValueError(f"{what}: not valid JSON ({exc})") from None
            if not isinstance(spec, dict):
                raise ValueError(f"{what}: expected a JSON object {{\"LABEL\": \"STAGE\"}}, "
                                 f"got {type(spec).__name__}")
        else:
            what = f"label map {text!r}"
            items = [x for x in text.split(",") if x.strip()]
            spec = {}
            for item in items:
                if "=" not in item or not item.split("=", 1)[0].strip():
                    raise ValueError(f"{what}: {item.strip()!r} is not LABEL=STAGE (e.g. "
                                     "'NREM2=N2,Wach=W'); use a JSON file for labels with "
                                     "',' or '='")
                k, v = item.split("=", 1)
                spec[k.strip()] = v.strip()
    if not isinstance(spec, dict):
        raise ValueError(f"label_map must be a dict, a JSON file or 'LABEL=STAGE,...', got "
                         f"{type(spec).__name__}")
    out: dict[str, str] = {}
    for k, v in spec.items():
        v = str(v).strip()
        if not (_is_stage_text(v) or _is_stage_text(v, label_to_code3)):
            raise ValueError(f"{what}: {str(k)!r} -> {v!r}: {v!r} is not a stage; expected "
                             "W, N1, N2, N3, R, NREM or ? (unscored)")
        out[str(k).strip().lower()] = v
    return out


def _map_labels(labels, label_map: dict[str, str] | None) -> list[str]:
    """Labels with the ``label_map`` substitutions (keys already normalised)."""
    labels = [str(x) for x in labels]
    if not label_map:
        return labels
    return [label_map.get(x.strip().lower(), x) for x in labels]


def _unknown_labels_error(source: str, bad: list[tuple[str, str]], n_classes: int,
                          column: str | None = None) -> ValueError:
    """``bad``: (label, where) of the first row of each unknown label."""
    listed = ", ".join(f"{lab!r} ({where})" for lab, where in bad[:10])
    more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
    col = f" in column {column!r}" if column else ""
    return ValueError(
        f"{source}: unknown stage label(s) {listed}{more}{col}. Accepted labels "
        f"(case-insensitive): {accepted_labels(n_classes)}. Map site-specific labels with "
        "label_map (CLI: --label-map 'NREM2=N2,N 2=N2' or a JSON file)")


def _row_locator(path: Path, n_rows: int):
    """``where(k)`` -> ``"row k+1, line L"`` for data row ``k`` of a table read with
    ``comment="#"`` (the line number only when blank/comment lines can be matched)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    content = [i for i, line in enumerate(lines, 1) if line.split("#", 1)[0].strip()]
    line_of = content[1:] if len(content) == n_rows + 1 else None

    def where(k: int) -> str:
        return f"row {k + 1}" + (f", line {line_of[k]}" if line_of else "")

    return where


def _numeric_column(df: pd.DataFrame, column: str, path: Path, where,
                    non_negative: bool = True) -> np.ndarray:
    """A table column as floats; a ``ValueError`` naming file, row and column otherwise."""
    import pandas as pd

    text = df[column].astype(str).str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values)
    if non_negative:
        bad |= values < 0
    if bad.any():
        rows = np.flatnonzero(bad)
        k = int(rows[0])
        more = f" ({len(rows)} rows like this)" if len(rows) > 1 else ""
        shown = repr(text.iloc[k]) if text.iloc[k] else "empty"
        unit = "" if column.startswith("p_") else " of seconds"
        raise ValueError(f"{path}, {where(k)}, column {column!r}: {shown} is not a "
                         f"{'non-negative ' if non_negative else ''}number{unit}{more}")
    return values


class Hypnogram:
    """Sleep stages of one recording, one per epoch.

    Parameters
    ----------
    stages : array-like of int or str
        Stage per epoch: 5-class codes (``W=0 ... R=4``, negative = unscored) or labels
        understood by :func:`hypnoscope.stages.label_to_code`. With ``n_classes=3``,
        codes are ``W=0, NREM=1, R=2`` or labels ``W/NREM/R``.
    epoch_sec : float, default 30.0
        Epoch length in seconds.
    onset_sec : float, default 0.0
        Onset of the first epoch, in seconds from the start of the recording.
    start_time : datetime.datetime or None
        Wall-clock start of the recording (not of the first epoch), if known.
    probabilities : array (n_epochs, n_classes) or None
        Per-epoch class probabilities (rows sum to 1), e.g. from a model.
    n_classes : {5, 3}
        Label set.
    quality : sequence of str or None
        Per-epoch signal-quality label, e.g. from staging: ``"ok"``, the quality flags
        with the channels carrying them (``"flat:EEG Fpz-Cz"``, see
        :meth:`hypnoscope.signal.quality.QualityReport.epoch_labels`) or ``"outside-span"``
        (not staged: outside lights-off/lights-on or the automatic crop). Written as the
        ``quality`` column of :meth:`to_tsv`.
    """

    def __init__(
        self,
        stages: Sequence[Any] | np.ndarray,
        epoch_sec: float = 30.0,
        onset_sec: float = 0.0,
        start_time: _dt.datetime | None = None,
        probabilities: np.ndarray | None = None,
        n_classes: int = 5,
        quality: Sequence[str] | None = None,
    ) -> None:
        if n_classes not in (3, 5):
            raise ValueError(f"n_classes must be 3 or 5, got {n_classes}")
        if epoch_sec <= 0:
            raise ValueError(f"epoch_sec must be positive, got {epoch_sec}")
        self.n_classes = int(n_classes)
        self.codes = self._parse_stages(stages, self.n_classes)
        self.epoch_sec = float(epoch_sec)
        self.onset_sec = float(onset_sec)
        self.start_time = start_time
        if probabilities is not None:
            probabilities = np.asarray(probabilities, dtype=float)
            if probabilities.shape != (len(self.codes), self.n_classes):
                raise ValueError(
                    f"probabilities must have shape ({len(self.codes)}, {self.n_classes}), "
                    f"got {probabilities.shape}"
                )
        self.probabilities = probabilities
        if quality is not None:
            quality = [str(q) for q in quality]
            if len(quality) != len(self.codes):
                raise ValueError(f"quality must have one label per epoch ({len(self.codes)}), "
                                 f"got {len(quality)}")
        self.quality: list[str] | None = quality

    @staticmethod
    def _parse_stages(stages, n_classes: int) -> np.ndarray:
        arr = np.asarray(stages)
        if arr.ndim != 1:
            raise ValueError(f"stages must be one-dimensional, got shape {arr.shape}")
        if arr.dtype.kind in "iu":
            codes = arr.astype(np.int64)
        elif arr.dtype.kind == "f":
            codes = np.where(np.isnan(arr), UNSCORED, arr).astype(np.int64)
        elif n_classes == 3:
            bad = [s for s in arr if not _is_stage_text(s, label_to_code3)]
            if bad:
                raise ValueError(f"unknown 3-class stage labels {sorted(set(map(str, bad)))}; "
                                 "expected W, NREM, R or ?")
            codes = np.array([label_to_code3(s) for s in arr], dtype=np.int64)
        else:
            codes = np.array([label_to_code(s) for s in arr], dtype=np.int64)
        codes[codes < 0] = UNSCORED
        if (codes >= n_classes).any():
            raise ValueError(f"stage codes must be < {n_classes}, found {codes.max()}")
        return codes

    # ------------------------------------------------------------------ basics
    @property
    def n_epochs(self) -> int:
        """Number of epochs."""
        return int(len(self.codes))

    def __len__(self) -> int:
        return self.n_epochs

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Names of the classes (``W, N1, N2, N3, R`` or ``W, NREM, R``)."""
        return stage_names(self.n_classes)

    @property
    def labels(self) -> list[str]:
        """Stage label per epoch (``'?'`` for unscored)."""
        names = self.stage_names
        return [names[c] if c >= 0 else UNSCORED_LABEL for c in self.codes]

    @property
    def onsets(self) -> np.ndarray:
        """Onset of each epoch in seconds from the recording start."""
        return self.onset_sec + self.epoch_sec * np.arange(self.n_epochs)

    @property
    def duration_sec(self) -> float:
        """Total duration covered by the epochs."""
        return self.n_epochs * self.epoch_sec

    @property
    def scored(self) -> np.ndarray:
        """Boolean mask of scored epochs."""
        return self.codes >= 0

    @property
    def confidence(self) -> np.ndarray | None:
        """Per-epoch confidence (highest class probability), if probabilities are known."""
        if self.probabilities is None:
            return None
        return self.probabilities.max(axis=1)

    def copy(self, **changes: Any) -> Hypnogram:
        """Return a copy, optionally with some attributes replaced."""
        kw = dict(stages=self.codes.copy(), epoch_sec=self.epoch_sec, onset_sec=self.onset_sec,
                  start_time=self.start_time, n_classes=self.n_classes,
                  probabilities=None if self.probabilities is None else self.probabilities.copy(),
                  quality=None if self.quality is None else list(self.quality))
        if ("stages" in changes and "quality" not in changes and kw["quality"] is not None
                and len(kw["quality"]) != len(changes["stages"])):
            kw["quality"] = None  # labels of other epochs: not carried over
        kw.update(changes)
        return Hypnogram(**kw)

    def __getitem__(self, item: slice) -> Hypnogram:
        if not isinstance(item, slice) or (item.step not in (None, 1)):
            raise TypeError("a Hypnogram can only be sliced with a contiguous slice")
        start, stop, _ = item.indices(self.n_epochs)
        return self.copy(
            stages=self.codes[start:stop].copy(),
            onset_sec=self.onset_sec + start * self.epoch_sec,
            probabilities=None if self.probabilities is None
            else self.probabilities[start:stop].copy(),
            quality=None if self.quality is None else self.quality[start:stop],
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hypnogram):
            return NotImplemented
        return (self.n_classes == other.n_classes and self.epoch_sec == other.epoch_sec
                and np.isclose(self.onset_sec, other.onset_sec)
                and np.array_equal(self.codes, other.codes))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={int((self.codes == i).sum())}"
                           for i, n in enumerate(self.stage_names))
        n_unscored = int((~self.scored).sum())
        return (f"<Hypnogram | {self.n_epochs} epochs of {self.epoch_sec:g} s "
                f"({self.duration_sec / 3600:.2f} h), {counts}, ?={n_unscored}>")

    def as_3class(self) -> Hypnogram:
        """The 3-class view (W, NREM, R); probabilities are summed accordingly."""
        if self.n_classes == 3:
            return self.copy()
        proba = None if self.probabilities is None else proba_to_3class(self.probabilities)
        return self.copy(stages=to_3class(self.codes), n_classes=3, probabilities=proba)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per epoch: ``onset, duration, stage`` and, with probabilities,
        ``confidence`` and ``p_<stage>`` columns, and with :attr:`quality` a ``quality``
        column. Epochs that staging could not score (stage ``?``) have confidence and
        probabilities 0."""
        import pandas as pd

        df = pd.DataFrame({"onset": self.onsets, "duration": self.epoch_sec,
                           "stage": self.labels})
        if self.probabilities is not None:
            df["confidence"] = self.confidence
            for i, name in enumerate(self.stage_names):
                df[f"p_{name}"] = self.probabilities[:, i]
        if self.quality is not None:
            df["quality"] = self.quality
        return df

    # ---------------------------------------------------------- alignment
    def sleep_period_slice(self, wake_pad_min: float = 30.0) -> slice:
        """Epoch slice from ``wake_pad_min`` before the first sleep epoch to the same
        after the last one (:func:`hypnoscope.stages.sleep_period_slice`). Raises if
        there is no sleep."""
        sl = sleep_period_slice(self.codes, wake_pad_min, self.epoch_sec)
        if sl is None:
            raise ValueError("hypnogram contains no sleep epoch; cannot crop to the sleep period")
        return sl

    def crop_to_sleep(self, wake_pad_min: float = 30.0) -> Hypnogram:
        """A new hypnogram of :meth:`sleep_period_slice` that starts at onset 0, its
        ``start_time`` (when known) moved to the clock time of its first epoch: the
        hypnogram of a recording that starts there."""
        part = self[self.sleep_period_slice(wake_pad_min)]
        start = (None if self.start_time is None
                 else self.start_time + _dt.timedelta(seconds=part.onset_sec))
        return part.copy(onset_sec=0.0, start_time=start)

    def align_to(self, n_epochs: int, onset_sec: float | None = None,
                 max_scored_overhang_epochs: int = 10) -> Hypnogram:
        """Fit the hypnogram to a signal with ``n_epochs`` full epochs.

        Rules (documented and tested): if the hypnogram's grid differs from the signal's
        (``onset_sec`` given and not equal), a ``ValueError`` is raised. A longer
        hypnogram is truncated, but only if at most ``max_scored_overhang_epochs`` of the
        dropped epochs are scored (Sleep-EDF files end with a long ``?`` annotation);
        more means the hypnogram probably belongs to another recording and raises. A
        shorter hypnogram is padded with unscored epochs.
        """
        if onset_sec is not None and not np.isclose(onset_sec, self.onset_sec):
            raise ValueError(f"hypnogram epochs start at {self.onset_sec:g} s but the signal "
                             f"epochs start at {onset_sec:g} s")
        if n_epochs < self.n_epochs:
            overhang = self.codes[n_epochs:]
            n_scored = int((overhang >= 0).sum())
            if n_scored > max_scored_overhang_epochs:
                raise ValueError(
                    f"hypnogram has {self.n_epochs} epochs ({self.duration_sec / 3600:.2f} h) "
                    f"but the signal only {n_epochs}; {n_scored} scored epochs fall after the "
                    "end of the signal - is this the hypnogram of another recording?")
            return self[:n_epochs]
        if n_epochs > self.n_epochs:
            pad = n_epochs - self.n_epochs
            proba = None
            if self.probabilities is not None:
                proba = np.vstack([self.probabilities,
                                   np.full((pad, self.n_classes), 1.0 / self.n_classes)])
            return self.copy(stages=np.concatenate([self.codes, np.full(pad, UNSCORED)]),
                             probabilities=proba)
        return self.copy()

    # ----------------------------------------------------------- readers
    @classmethod
    def from_annotations(cls, onsets, durations, descriptions, epoch_sec: float = 30.0,
                         start_time: _dt.datetime | None = None,
                         source: str = "annotations",
                         label_map: dict[str, str] | str | None = None) -> Hypnogram:
        """Build a hypnogram from (onset, duration, description) triples.

        See the module docstring for the annotation-to-epoch rule. ``label_map``
        (:func:`parse_label_map`) renames site-specific labels first. Texts that are
        not stages are ignored (events such as ``Lights off``), but a text that claims
        to be a stage and is not a known one (``Sleep stage XYZ``, ``NREM2``, ``N 2``)
        raises a ``ValueError`` listing the accepted labels, as do non-finite onsets or
        durations and negative durations (naming the annotation).
        """
        if not np.isfinite(epoch_sec) or epoch_sec <= 0:
            raise ValueError(f"{source}: epoch length must be a positive number of seconds, "
                             f"got {epoch_sec}")
        onsets = np.asarray(onsets, dtype=float)
        durations = np.asarray(durations, dtype=float)
        descriptions = _map_labels(descriptions, parse_label_map(label_map))
        n_classes = 3 if _is_3class(descriptions) else 5
        to_code = label_to_code3 if n_classes == 3 else label_to_code
        keep = np.array([_is_stage_text(d, to_code) for d in descriptions], dtype=bool)
        bad: dict[str, str] = {}
        for i, d in enumerate(descriptions):
            if not keep[i] and _STAGE_LIKE.match(d.strip().lower()):
                bad.setdefault(d, f"annotation {i + 1}, onset {onsets[i]:g} s")
        if bad:
            raise _unknown_labels_error(source, list(bad.items()), n_classes)
        if not keep.any():
            raise ValueError(f"{source}: no sleep-stage annotation found (expected texts like "
                             "'Sleep stage W' or stage labels W/N1/N2/N3/R)")
        for values, what in ((onsets, "onset"), (durations, "duration")):
            wrong = keep & (~np.isfinite(values) | ((values < 0) if what == "duration"
                                                    else False))
            if wrong.any():
                i = int(np.flatnonzero(wrong)[0])
                raise ValueError(f"{source}: annotation {i + 1} ({descriptions[i]!r}) has "
                                 f"{what} {values[i]!r}; expected a "
                                 f"{'non-negative ' if what == 'duration' else ''}number "
                                 "of seconds")
        onsets, durations = onsets[keep], durations[keep]
        codes_in = np.array([to_code(d) for d, k in zip(descriptions, keep, strict=True) if k])
        order = np.argsort(onsets, kind="stable")
        onsets, durations, codes_in = onsets[order], durations[order], codes_in[order]
        origin = onsets[0]
        end = float(np.max(onsets + np.maximum(durations, epoch_sec)))
        n_epochs = int(np.floor((end - origin) / epoch_sec + 1e-6))
        if n_epochs <= 0:
            raise ValueError(f"{source}: stage annotations cover less than one epoch")
        mids = origin + epoch_sec * (np.arange(n_epochs) + 0.5)
        codes = np.full(n_epochs, UNSCORED, dtype=np.int64)
        # zero-duration annotations count as one epoch (some exporters write duration 0)
        eff_dur = np.where(durations > 0, durations, epoch_sec)
        idx = np.searchsorted(onsets, mids, side="right") - 1
        valid = idx >= 0
        covered = np.zeros(n_epochs, dtype=bool)
        covered[valid] = mids[valid] < onsets[idx[valid]] + eff_dur[idx[valid]]
        codes[covered] = codes_in[idx[covered]]
        return cls(codes, epoch_sec=epoch_sec, onset_sec=origin, start_time=start_time,
                   n_classes=n_classes)

    @classmethod
    def from_mne_annotations(cls, annotations: mne.Annotations, epoch_sec: float = 30.0,
                             label_map: dict[str, str] | str | None = None) -> Hypnogram:
        """Build a hypnogram from :class:`mne.Annotations` (stage descriptions only;
        ``label_map`` as in :meth:`from_annotations`)."""
        start = annotations.orig_time
        if start is not None:
            start = start.replace(tzinfo=None)
        return cls.from_annotations(annotations.onset, annotations.duration,
                                    annotations.description, epoch_sec=epoch_sec,
                                    start_time=start, source="mne.Annotations",
                                    label_map=label_map)

    @classmethod
    def read_edf(cls, path: str | os.PathLike, epoch_sec: float = 30.0,
                 label_map: dict[str, str] | str | None = None) -> Hypnogram:
        """Read an EDF+ annotation file (Sleep-EDF ``*-Hypnogram.edf`` form).

        ``start_time`` is the file's start; the placeholder :data:`UNKNOWN_EDF_START`
        (written by :meth:`to_edf` when the start is unknown) reads as None. Labels as
        in :meth:`from_annotations` (``label_map``; non-stage events ignored; unknown
        stage-like texts raise).
        """
        import mne

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"hypnogram file not found: {path}")
        try:
            ann = mne.read_annotations(path)
        except Exception as exc:  # MNE raises several types on corrupt files
            raise ValueError(f"{path}: cannot read EDF+ annotations ({exc})") from exc
        start = None
        try:
            import edfio

            e = edfio.read_edf(path, lazy_load_data=True)
            start = _dt.datetime.combine(e.startdate, e.starttime)
        except Exception:  # noqa: BLE001 - start time is optional information
            start = None
        if start == UNKNOWN_EDF_START:  # what to_edf writes for an unknown start
            start = None
        hyp = cls.from_annotations(ann.onset, ann.duration, ann.description,
                                   epoch_sec=epoch_sec, start_time=start, source=str(path),
                                   label_map=label_map)
        return hyp

    @classmethod
    def read_table(cls, path: str | os.PathLike, epoch_sec: float | None = None,
                   sep: str | None = None,
                   label_map: dict[str, str] | str | None = None) -> Hypnogram:
        """Read a TSV/CSV with ``onset, duration, stage`` columns.

        Rows may be epochs or runs of epochs. If ``p_<stage>`` columns are present and
        the rows are single epochs, they become the hypnogram's probabilities (and a
        ``quality`` column its :attr:`quality`). If ``epoch_sec`` is None it is taken
        from the ``duration`` column (its smallest positive value) and defaults to 30 s.

        Every ``stage`` value must be a stage label (:func:`accepted_labels`, after
        ``label_map``) or an unscored one (``?``, ``Movement time``, ``U`` ...);
        ``onset`` must be a finite number of seconds and ``duration`` a non-negative
        one. Anything else raises a ``ValueError`` naming the file, the row (and line)
        and the column.

        A BIDS ``*_events.tsv`` (``onset duration trial_type`` and no ``stage`` column)
        is read like annotations: its ``trial_type`` values that are stage labels make
        the hypnogram and other events (``Lights off``, arousals) are ignored.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"hypnogram file not found: {path}")
        if sep is None:
            sep = "," if path.suffix.lower() == ".csv" else "\t"
        import warnings

        import pandas as pd

        try:
            with warnings.catch_warnings():
                # a row with more fields than the header would shift the columns
                warnings.simplefilter("error", pd.errors.ParserWarning)
                df = pd.read_csv(path, sep=sep, comment="#", keep_default_na=False, dtype=str,
                                 index_col=False)
        except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError,
                UnicodeDecodeError) as exc:
            kind = "comma" if sep == "," else "tab" if sep == "\t" else repr(sep)
            raise ValueError(f"{path}: cannot read as a {kind}-separated table with columns "
                             f"onset, duration, stage ({type(exc).__name__}: {exc})") from None
        df.columns = [str(c).strip().lower() for c in df.columns]
        bids_events = "stage" not in df.columns and "trial_type" in df.columns
        if bids_events:
            df = df.rename(columns={"trial_type": "stage"})
        missing = {"onset", "stage"} - set(df.columns)
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected "
                             f"'onset, duration, stage', found {list(df.columns)}")
        if df.empty:
            raise ValueError(f"{path}: no rows after the header; expected one row per epoch "
                             "or run of epochs (onset, duration, stage)")
        where = _row_locator(path, len(df))
        onsets = _numeric_column(df, "onset", path, where, non_negative=False)
        dur = (_numeric_column(df, "duration", path, where) if "duration" in df.columns
               else np.zeros(len(df)))
        labels = _map_labels(df["stage"].tolist(), parse_label_map(label_map))
        n_classes = 3 if _is_3class(labels) else 5
        to_code = label_to_code3 if n_classes == 3 else label_to_code
        bad: dict[str, str] = {}
        for k, lab in enumerate(labels):
            if not bids_events and not _is_stage_text(lab, to_code):
                bad.setdefault(lab, where(k))
        if bad:
            raise _unknown_labels_error(str(path), list(bad.items()), n_classes, "stage")
        if epoch_sec is None:
            pos = dur[dur > 0]
            epoch_sec = float(pos.min()) if pos.size else 30.0
        hyp = cls.from_annotations(onsets, dur, labels, epoch_sec=epoch_sec, source=str(path))
        names = stage_names(n_classes)
        pcols = [f"p_{n.lower()}" for n in names]
        if all(c in df.columns for c in pcols) and len(df) == hyp.n_epochs:
            hyp.probabilities = np.stack([_numeric_column(df, c, path, where) for c in pcols],
                                         axis=1)
        if "quality" in df.columns and len(df) == hyp.n_epochs:
            hyp.quality = [str(q) for q in df["quality"]]
        return hyp

    @classmethod
    def read_txt(cls, path: str | os.PathLike, epoch_sec: float = 30.0,
                 label_map: dict[str, str] | str | None = None) -> Hypnogram:
        """Read plain text with one stage label per line (``#`` starts a comment).

        Labels as in :meth:`read_table` (``label_map`` first); an unknown one raises a
        ``ValueError`` naming the file and line and listing the accepted labels."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"hypnogram file not found: {path}")
        lines = [(i, line.split("#", 1)[0].strip()) for i, line
                 in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)]
        lines = [(i, line) for i, line in lines if line]
        mapped = _map_labels([line for _, line in lines], parse_label_map(label_map))
        lines = [(i, m) for (i, _), m in zip(lines, mapped, strict=True)]
        n_classes = 3 if _is_3class(line for _, line in lines) else 5
        to_code = label_to_code3 if n_classes == 3 else label_to_code
        labels = []
        for i, line in lines:
            try:
                labels.append(to_code(line))
            except ValueError as exc:
                raise ValueError(f"{path}, line {i}: {exc}. Accepted labels "
                                 f"(case-insensitive): {accepted_labels(n_classes)}. Map "
                                 "site-specific labels with label_map (CLI: --label-map)"
                                 ) from None
        if not labels:
            raise ValueError(f"{path}: no stage labels found")
        return cls(np.array(labels), epoch_sec=epoch_sec, n_classes=n_classes)

    # ----------------------------------------------------------- writers
    def _runs(self) -> list[tuple[float, float, int]]:
        """Consecutive runs of the same code as (onset, duration, code)."""
        if self.n_epochs == 0:
            return []
        change = np.flatnonzero(np.diff(self.codes)) + 1
        starts = np.concatenate([[0], change])
        stops = np.concatenate([change, [self.n_epochs]])
        return [(self.onset_sec + s * self.epoch_sec, (e - s) * self.epoch_sec,
                 int(self.codes[s])) for s, e in zip(starts, stops, strict=True)]

    def to_tsv(self, path: str | os.PathLike, sep: str = "\t") -> Path:
        """Write one row per epoch (``onset duration stage [confidence p_*] [quality]``,
        see :meth:`to_dataframe`) atomically."""
        # the columns of to_dataframe written by the csv module: the bytes of
        # ``to_dataframe().to_csv(sep=sep, index=False, float_format="%.6g")`` without
        # importing pandas (0.1-0.2 s of a staging command)
        import csv

        def fmt(values) -> list[str]:
            return [f"{v:.6g}" if v == v else "" for v in  # NaN: empty, as pandas
                    np.asarray(values, dtype=np.float64).tolist()]

        cols = {"onset": fmt(self.onsets), "duration": fmt(np.full(self.n_epochs,
                                                                    self.epoch_sec)),
                "stage": list(self.labels)}
        if self.probabilities is not None:
            cols["confidence"] = fmt(self.confidence)
            for i, name in enumerate(self.stage_names):
                cols[f"p_{name}"] = fmt(self.probabilities[:, i])
        if self.quality is not None:
            cols["quality"] = list(self.quality)
        with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter=sep, lineterminator="\n")
            writer.writerow(cols)
            writer.writerows(zip(*cols.values(), strict=True))
        return Path(path)

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Comma-separated version of :meth:`to_tsv`."""
        return self.to_tsv(path, sep=",")

    def to_txt(self, path: str | os.PathLike) -> Path:
        """Write one stage label per line atomically."""
        return write_text_atomic(path, "\n".join(self.labels) + "\n")

    def to_mne_annotations(self, orig_time: _dt.datetime | None = None,
                           merge: bool = True) -> mne.Annotations:
        """Return :class:`mne.Annotations` with Sleep-EDF stage texts.

        Parameters
        ----------
        orig_time : datetime or None
            Recording start; defaults to :attr:`start_time` (as UTC).
        merge : bool
            Merge consecutive epochs of the same stage into one annotation.
        """
        import mne

        if self.n_classes != 5:
            raise ValueError("only 5-class hypnograms can be exported as Sleep-EDF annotations")
        if merge:
            runs = self._runs()
        else:
            runs = [(o, self.epoch_sec, int(c))
                    for o, c in zip(self.onsets, self.codes, strict=True)]
        if orig_time is None and self.start_time is not None:
            orig_time = self.start_time.replace(tzinfo=_dt.timezone.utc)
        return mne.Annotations([r[0] for r in runs], [r[1] for r in runs],
                               [EDF_STAGE_TEXT[r[2]] for r in runs], orig_time=orig_time)

    def to_edf(self, path: str | os.PathLike, patient: str | None = None) -> Path:
        """Write an EDF+ annotation file in the Sleep-EDF ``Hypnogram.edf`` form, atomically.

        The file holds no ordinary signal, only ``EDF Annotations``; MNE
        (``mne.read_annotations``) and EDFbrowser open it.
        """
        import edfio

        if self.n_classes != 5:
            raise ValueError("only 5-class hypnograms can be written as Sleep-EDF EDF+ files")
        anns = [edfio.EdfAnnotation(onset, dur, EDF_STAGE_TEXT[code])
                for onset, dur, code in self._runs()]
        start = self.start_time or UNKNOWN_EDF_START
        kwargs: dict[str, Any] = dict(signals=[], annotations=anns,
                                      starttime=start.time().replace(microsecond=0))
        edf = edfio.Edf(**kwargs)
        edf.startdate = start.date()
        if patient:
            edf.patient = edfio.Patient(name=patient.replace(" ", "_"))
        with atomic_path(path) as tmp:
            edf.write(tmp)
        return Path(path)

    # ------------------------------------------- analysis (delegates)
    def sleep_statistics(self, lights_off: float | None = None,
                         lights_on: float | None = None) -> dict[str, float]:
        """AASM sleep statistics; see :func:`hypnoscope.evaluation.sleepstats.sleep_statistics`."""
        from hypnoscope.evaluation.sleepstats import sleep_statistics

        return sleep_statistics(self, lights_off=lights_off, lights_on=lights_on)

    def compare(self, reference: Hypnogram) -> dict[str, Any]:
        """Agreement with a reference hypnogram of the same night (self = prediction);
        see :func:`hypnoscope.evaluation.metrics.compare_hypnograms`."""
        from hypnoscope.evaluation.metrics import compare_hypnograms

        return compare_hypnograms(self, reference)

    def plot(self, ax=None, **kwargs):
        """Plot the hypnogram (REM highlighted); see :func:`hypnoscope.viz.plots.plot_hypnogram`."""
        from hypnoscope.viz.plots import plot_hypnogram

        return plot_hypnogram(self, ax=ax, **kwargs)

    def plot_hypnodensity(self, ax=None, **kwargs):
        """Stacked per-epoch probabilities; see :func:`hypnoscope.viz.plots.plot_hypnodensity`."""
        from hypnoscope.viz.plots import plot_hypnodensity

        return plot_hypnodensity(self, ax=ax, **kwargs)


def read_hypnogram(source, epoch_sec: float = 30.0,
                   label_map: dict[str, str] | str | None = None) -> Hypnogram:
    """Read a hypnogram from a file (format from the extension) or ``mne.Annotations``.

    ``.edf`` -> EDF+ annotations; ``.tsv``/``.csv`` -> onset/duration/stage table;
    ``.xml`` -> NSRR or Compumedics Profusion XML (:mod:`hypnoscope.io.nsrr_xml`);
    ``.txt``/``.hyp``/other -> one label per line. ``label_map`` (a dict, a JSON file or
    ``"LABEL=STAGE,..."``, see :func:`parse_label_map`) renames site-specific labels
    (``{"NREM2": "N2"}``); unknown stage labels raise a ``ValueError`` that lists the
    accepted ones (:func:`accepted_labels`), and bad values name the file, row and
    column.
    """
    if isinstance(source, Hypnogram):
        return source
    label_map = parse_label_map(label_map)
    if type(source).__name__ == "Annotations":
        return Hypnogram.from_mne_annotations(source, epoch_sec=epoch_sec, label_map=label_map)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in (".edf", ".bdf", ".rec"):
        return Hypnogram.read_edf(path, epoch_sec=epoch_sec, label_map=label_map)
    if suffix in (".tsv", ".csv"):
        return Hypnogram.read_table(path, label_map=label_map)
    if suffix == ".xml":
        from hypnoscope.io.nsrr_xml import read_xml_hypnogram

        return read_xml_hypnogram(path, label_map=label_map)
    return Hypnogram.read_txt(path, epoch_sec=epoch_sec, label_map=label_map)
