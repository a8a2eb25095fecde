"""Hypnogram files: EDF+ annotations, TSV/CSV tables, plain text and NSRR XML.

:func:`read_hypnogram` reads any of them (format from the extension) into a
:class:`hypnoscope.hypnogram.Hypnogram`; the writers are the value object's ``to_*``
methods. How annotations become epochs and which labels are accepted is told in
:mod:`hypnoscope.hypnogram` and :mod:`hypnoscope.stages`.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.stages import (
    UNKNOWN_EDF_START,
    accepted_labels,
    is_3class,
    is_stage_text,
    label_to_code,
    label_to_code3,
    map_labels,
    parse_label_map,
    resolve_stage_codes,
    stage_names,
    unknown_labels_error,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


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


def _comment_lines(path: Path) -> list[str]:
    """The text after ``#`` of a table's comment lines (where a code legend may be)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [line.split("#", 1)[1] for line in text if line.lstrip().startswith("#")]


#: Standard scoring epochs (s): a table whose positive durations are all multiples of one
#: of them has epochs of that length (runs of 30-s epochs are not 90-s epochs).
SCORING_EPOCHS_SEC = (30.0, 20.0)


class NotAScoringError(ValueError):
    """A table that is plainly not a sleep-stage scoring (e.g. a BIDS task ``*_events.tsv``
    whose ``stage`` column holds experiment phases): the message names the file and what a
    scoring needs. Discovery beside a recording ignores such a file."""


def _table_epoch_sec(dur: np.ndarray) -> float:
    """The epoch length of a table's rows: 30 s without positive durations, else the
    longest of :data:`SCORING_EPOCHS_SEC` that divides every positive duration, else the
    shortest positive duration."""
    pos = dur[dur > 0]
    if not pos.size:
        return 30.0
    for ep in SCORING_EPOCHS_SEC:
        if np.allclose(pos / ep, np.round(pos / ep), rtol=0, atol=1e-6):
            return ep
    return float(pos.min())


def _check_scoring_rows(path: Path, onsets: np.ndarray, dur: np.ndarray, stage_rows,
                        epoch_sec: float, where, has_duration: bool) -> None:
    """Raise :class:`NotAScoringError` when every stage row has duration 0 and the rows do
    not follow one another epoch by epoch (each such row marks one epoch, so a scoring's
    rows are one epoch apart): experiment phases or task events, not sleep stages."""
    rows = np.flatnonzero(stage_rows)
    if rows.size < 2 or (dur[rows] > 0).any():
        return
    order = rows[np.argsort(onsets[rows], kind="stable")]
    steps = np.diff(onsets[order]) / epoch_sec
    whole = np.abs(steps - np.round(steps)) * epoch_sec <= 1.0
    if whole.all() and (steps >= 1 - 1e-6).all() and np.median(np.round(steps)) == 1:
        return
    k = int(np.flatnonzero(~whole | (np.round(steps) != 1))[0])
    a, b = int(order[k]), int(order[k + 1])
    what = "have duration 0" if has_duration else "have no duration column"
    raise NotAScoringError(
        f"{path}: not a sleep-stage scoring: its {rows.size} stage rows {what} and are not "
        f"one {epoch_sec:g}-s epoch apart ({where(a)}: onset {onsets[a]:g} s; {where(b)}: "
        f"onset {onsets[b]:g} s); a sleep-stage events file needs stage labels (W, N1, N2, N3, R "
        f"...) in rows of {epoch_sec:g}-s epochs or runs of epochs (duration {epoch_sec:g} s "
        "or a multiple)")


def read_edf_hypnogram(path: str | os.PathLike, epoch_sec: float = 30.0,
                       label_map: dict[str, str] | str | None = None,
                       stage_codes: str | None = None) -> Hypnogram:
    """Read an EDF+ annotation file (Sleep-EDF ``*-Hypnogram.edf`` form).

    ``start_time`` is the file's start; the placeholder :data:`UNKNOWN_EDF_START`
    (written by :meth:`Hypnogram.to_edf` when the start is unknown) reads as None. Labels as
    in :meth:`Hypnogram.from_annotations` (``label_map``; non-stage events ignored; unknown
    stage-like texts raise; numeric texts by ``stage_codes``, a 4 without a 5 refused).
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
        import warnings

        import edfio

        read = edfio.read_bdf if path.suffix.lower() == ".bdf" else edfio.read_edf
        with warnings.catch_warnings():  # header repairs: only the start time is read here
            warnings.simplefilter("ignore")
            e = read(path, lazy_load_data=True)
        start = _dt.datetime.combine(e.startdate, e.starttime)
    except Exception:  # noqa: BLE001 - start time is optional information
        start = None
    if start == UNKNOWN_EDF_START:  # what to_edf writes for an unknown start
        start = None
    hyp = Hypnogram.from_annotations(ann.onset, ann.duration, ann.description,
                                     epoch_sec=epoch_sec, start_time=start, source=str(path),
                                     label_map=label_map, stage_codes=stage_codes)
    return hyp


def _read_scoring_table(path: Path, sep: str | None = None) -> pd.DataFrame:
    """A TSV/CSV scoring as strings, columns stripped and lower-cased (``sep``: from the
    suffix when None); a table pandas cannot parse raises ``ValueError`` naming it."""
    import warnings

    import pandas as pd

    if sep is None:
        sep = "," if path.suffix.lower() == ".csv" else "\t"
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
    return df


def read_table_hypnogram(path: str | os.PathLike, epoch_sec: float | None = None,
               sep: str | None = None,
               label_map: dict[str, str] | str | None = None,
               stage_codes: str | None = None) -> Hypnogram:
    """Read a TSV/CSV with ``onset, duration, stage`` columns.

    Rows may be epochs or runs of epochs. If ``p_<stage>`` columns are present and
    the rows are single epochs, they become the hypnogram's probabilities (and a
    ``quality`` column its :attr:`quality`). If ``epoch_sec`` is None it is taken
    from the ``duration`` column (30 s or 20 s where every positive duration is a multiple
    of it, else its smallest positive value) and defaults to 30 s. Rows of duration 0 (or
    without a ``duration`` column) mark one epoch each and must follow one another epoch by
    epoch; otherwise the table is not a scoring (a BIDS task ``*_events.tsv`` whose
    ``stage`` column holds experiment phases) and :class:`NotAScoringError` is raised.

    Every ``stage`` value must be a stage label (:func:`accepted_labels`, after
    ``label_map``) or an unscored one (``?``, ``Movement time``, ``U`` ...);
    ``onset`` must be a finite number of seconds and ``duration`` a non-negative
    one. Anything else raises a ``ValueError`` naming the file, the row (and line)
    and the column. Numeric stages follow ``stage_codes`` or the file's ``#`` legend
    (:func:`hypnoscope.stages.resolve_stage_codes`; a 4 without a 5 is refused as
    ambiguous between R&K and YASA numbering).

    A BIDS ``*_events.tsv`` (``onset duration trial_type`` and no ``stage`` column)
    is read like annotations: its ``trial_type`` values that are stage labels make
    the hypnogram and other events (``Lights off``, arousals) are ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"hypnogram file not found: {path}")
    df = _read_scoring_table(path, sep)
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
    labels = map_labels(df["stage"].tolist(), parse_label_map(label_map))
    if epoch_sec is None:
        epoch_sec = _table_epoch_sec(dur)
    _check_scoring_rows(path, onsets, dur, [not bids_events or is_stage_text(x) for x in labels],
                        epoch_sec, where, "duration" in df.columns)
    labels = resolve_stage_codes(labels, str(path), stage_codes, _comment_lines(path))
    n_classes = 3 if is_3class(labels) else 5
    to_code = label_to_code3 if n_classes == 3 else label_to_code
    bad: dict[str, str] = {}
    for k, lab in enumerate(labels):
        if not bids_events and not is_stage_text(lab, to_code):
            bad.setdefault(lab, where(k))
    if bad:
        raise unknown_labels_error(str(path), list(bad.items()), n_classes, "stage")
    hyp = Hypnogram.from_annotations(onsets, dur, labels, epoch_sec=epoch_sec, source=str(path))
    names = stage_names(n_classes)
    pcols = [f"p_{n.lower()}" for n in names]
    if all(c in df.columns for c in pcols) and len(df) == hyp.n_epochs:
        hyp.probabilities = np.stack([_numeric_column(df, c, path, where) for c in pcols],
                                     axis=1)
    if "quality" in df.columns and len(df) == hyp.n_epochs:
        hyp.quality = [str(q) for q in df["quality"]]
    return hyp


#: Value of the ``scorer`` column of a reviewed scoring (``hypnoscope review``'s
#: ``*.reviewed.tsv``) for the epochs nobody reviewed: the automatic stage, kept.
AUTOMATIC_SCORER = "automatic"


def reviewed_epochs(path: str | os.PathLike, epoch_sec: float = 30.0) -> np.ndarray | None:
    """Which epochs of a reviewed scoring a person scored: a boolean per epoch from the
    recording start, True where the table's ``scorer`` column names someone (not
    :data:`AUTOMATIC_SCORER`, not empty); None for a table without a ``scorer`` column.
    Rows are placed by their ``onset``."""
    path = Path(path)
    df = _read_scoring_table(path)
    if "scorer" not in df.columns:
        return None
    where = _row_locator(path, len(df))
    idx = np.round(_numeric_column(df, "onset", path, where) / epoch_sec).astype(int)
    if (idx < 0).any():
        raise ValueError(f"{path}: negative onset in row {where(int(np.argmax(idx < 0)))}")
    scorer = df["scorer"].str.strip()
    out = np.zeros(int(idx.max()) + 1 if len(idx) else 0, dtype=bool)
    out[idx] = ((scorer != AUTOMATIC_SCORER) & (scorer != "")).to_numpy()
    return out


def is_scoring_table(path: str | os.PathLike) -> bool:
    """Whether a TSV/CSV table may be a scoring: False only when :func:`read_table_hypnogram`
    finds it plainly is not one (:class:`NotAScoringError`); other faults are left for the
    reader to name when the file is read."""
    try:
        read_table_hypnogram(path)
    except NotAScoringError:
        return False
    except (ValueError, OSError):
        return True
    return True


def read_txt_hypnogram(path: str | os.PathLike, epoch_sec: float = 30.0,
             label_map: dict[str, str] | str | None = None,
             stage_codes: str | None = None) -> Hypnogram:
    """Read plain text with one stage label per line (``#`` starts a comment).

    Labels as in :func:`read_table_hypnogram` (``label_map`` first, numeric stages by
    ``stage_codes`` or a ``#`` legend such as YASA's ``# 0: Wake, ..., 4: REM``); an unknown
    one raises a ``ValueError`` naming the file and line and listing the accepted labels."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"hypnogram file not found: {path}")
    text = path.read_text(encoding="utf-8").splitlines()
    lines = [(i, line.split("#", 1)[0].strip()) for i, line in enumerate(text, 1)]
    lines = [(i, line) for i, line in lines if line]
    mapped = resolve_stage_codes(
        map_labels([line for _, line in lines], parse_label_map(label_map)), str(path),
        stage_codes, [line.split("#", 1)[1] for line in text if "#" in line])
    lines = [(i, m) for (i, _), m in zip(lines, mapped, strict=True)]
    n_classes = 3 if is_3class(line for _, line in lines) else 5
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
    return Hypnogram(np.array(labels), epoch_sec=epoch_sec, n_classes=n_classes)


def read_hypnogram(source, epoch_sec: float = 30.0,
                   label_map: dict[str, str] | str | None = None,
                   stage_codes: str | None = None) -> Hypnogram:
    """Read a hypnogram from a file (format from the extension) or ``mne.Annotations``.

    ``.edf`` -> EDF+ annotations; ``.tsv``/``.csv`` -> onset/duration/stage table;
    ``.xml`` -> NSRR or Compumedics Profusion XML (:mod:`hypnoscope.io.nsrr_xml`);
    ``.txt``/``.hyp``/other -> one label per line. ``label_map`` (a dict, a JSON file or
    ``"LABEL=STAGE,..."``, see :func:`parse_label_map`) renames site-specific labels
    (``{"NREM2": "N2"}``); unknown stage labels raise a ``ValueError`` that lists the
    accepted ones (:func:`accepted_labels`), and bad values name the file, row and
    column. Numeric stages of text, TSV/CSV and EDF+ files and of ``mne.Annotations``
    follow ``stage_codes`` (``"rk"``:
    0 W, 1-4 R&K stages 1-4, 5 REM; ``"yasa"``/``"aasm"``: 0 W, 1 N1, 2 N2, 3 N3, 4 REM)
    or, without it, the file's legend or a 5 (R&K); a 4 without either is refused.
    """
    if isinstance(source, Hypnogram):
        return source
    label_map = parse_label_map(label_map)
    if type(source).__name__ == "Annotations":
        return Hypnogram.from_mne_annotations(source, epoch_sec=epoch_sec, label_map=label_map,
                                              stage_codes=stage_codes)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in (".edf", ".bdf", ".rec"):
        return read_edf_hypnogram(path, epoch_sec=epoch_sec, label_map=label_map,
                                  stage_codes=stage_codes)
    if suffix in (".tsv", ".csv"):
        return read_table_hypnogram(path, label_map=label_map, stage_codes=stage_codes)
    if suffix == ".xml":
        from hypnoscope.io.nsrr_xml import read_xml_hypnogram

        return read_xml_hypnogram(path, label_map=label_map)
    return read_txt_hypnogram(path, epoch_sec=epoch_sec, label_map=label_map,
                              stage_codes=stage_codes)
