"""The :class:`Hypnogram` value object: one stage per epoch, with its writers.

Files are read into it by :mod:`hypnoscope.io.hypnograms` (:func:`read_hypnogram`).

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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hypnoscope.stages import (
    EDF_STAGE_TEXT,
    STAGE_LIKE,
    UNKNOWN_EDF_START,
    UNSCORED,
    UNSCORED_LABEL,
    is_3class,
    is_stage_text,
    label_to_code,
    label_to_code3,
    map_labels,
    parse_label_map,
    proba_to_3class,
    resolve_stage_codes,
    sleep_period_slice,
    stage_names,
    to_3class,
    unknown_labels_error,
)
from hypnoscope.utils.files import atomic_path, write_text_atomic

if TYPE_CHECKING:  # pragma: no cover
    import mne
    import pandas as pd  # imported where used: `import hypnoscope` stays light


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
            bad = [s for s in arr if not is_stage_text(s, label_to_code3)]
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
                         label_map: dict[str, str] | str | None = None,
                         stage_codes: str | None = None) -> Hypnogram:
        """Build a hypnogram from (onset, duration, description) triples.

        See the module docstring for the annotation-to-epoch rule. ``label_map``
        (:func:`parse_label_map`) renames site-specific labels first; numeric texts
        (``"0"`` ... ``"5"``) follow ``stage_codes`` or, without it, are read only where
        the numbering is certain (:func:`hypnoscope.stages.resolve_stage_codes`: a 4
        without a 5 raises, naming ``source``). Texts that are
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
        descriptions = resolve_stage_codes(map_labels(descriptions, parse_label_map(label_map)),
                                           source, stage_codes)
        n_classes = 3 if is_3class(descriptions) else 5
        to_code = label_to_code3 if n_classes == 3 else label_to_code
        keep = np.array([is_stage_text(d, to_code) for d in descriptions], dtype=bool)
        bad: dict[str, str] = {}
        for i, d in enumerate(descriptions):
            if not keep[i] and STAGE_LIKE.match(d.strip().lower()):
                bad.setdefault(d, f"annotation {i + 1}, onset {onsets[i]:g} s")
        if bad:
            raise unknown_labels_error(source, list(bad.items()), n_classes)
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
                             label_map: dict[str, str] | str | None = None,
                             stage_codes: str | None = None) -> Hypnogram:
        """Build a hypnogram from :class:`mne.Annotations` (stage descriptions only;
        ``label_map`` and ``stage_codes`` as in :meth:`from_annotations`)."""
        start = annotations.orig_time
        if start is not None:
            start = start.replace(tzinfo=None)
        return cls.from_annotations(annotations.onset, annotations.duration,
                                    annotations.description, epoch_sec=epoch_sec,
                                    start_time=start, source="mne.Annotations",
                                    label_map=label_map, stage_codes=stage_codes)


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
        # importing pandas (a slow import for a staging command; docs/design.md, design notes)
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
        # a sub-second start is kept: edfio writes it in the EDF+ time-keeping annotation
        kwargs: dict[str, Any] = dict(signals=[], annotations=anns, starttime=start.time())
        edf = edfio.Edf(**kwargs)
        edf.startdate = start.date()
        if patient:
            edf.patient = edfio.Patient(name=patient.replace(" ", "_"))
        with atomic_path(path) as tmp:
            edf.write(tmp)
        return Path(path)


