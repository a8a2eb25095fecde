"""Finding PSG recordings and pairing them with their hypnograms.

:func:`list_recordings` lists the recordings of a folder, :func:`recording_stem`,
:func:`find_hypnogram` and :func:`sleepedf_ids` hold the file-name conventions that name
a recording, pair a PSG with its hypnogram and name its subject and night.
:func:`place_hypnogram` (with :meth:`Hypnogram.align_to`) holds the rules that fit a
hypnogram to its recording (start times, onsets, length) and :func:`check_start_times`
the pairing check of two header start times. Loading recordings into nights is
:mod:`hypnoscope.signal.nights`.
"""

from __future__ import annotations

import datetime as _dt
import glob
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.io.psg import RAW_SUFFIXES, raw_suffix

#: Sleep-EDF file names: study (SC4 cassette / ST7 telemetry), subject ``ss``, night ``N``.
SLEEPEDF_NAME = re.compile(r"^(?P<subject>(?:SC4|ST7)\d\d)(?P<night>\d)")
#: NSRR file names: cohort, visit and participant (``shhs1-200001``, ``shhs2-200001``,
#: ``mesa-sleep-0001``, ``mros-visit1-aa0001``, ``cfs-visit5-800002``,
#: ``chat-baseline-300001``): the visits of one participant share the subject id.
NSRR_NAME = re.compile(r"^(?P<cohort>shhs|mesa|mros|cfs|chat|sof|hchs|ccshs|numom2b|nchsdb)"
                       r"(?P<visit>[-_]?[a-z]*\d*)-(?P<id>[a-z]*\d+)$", re.IGNORECASE)
#: BIDS file names: the subject is ``sub-<label>`` (``sub-01_ses-2_task-sleep_eeg``).
BIDS_SUBJECT = re.compile(r"^(sub-[A-Za-z0-9]+)_")
#: Scoring files of NSRR recordings, in order of preference (``S-nsrr.xml`` ...).
NSRR_HYP_SUFFIXES = ("-nsrr.xml", "-profusion.xml")
#: Folders of the NSRR download tree that hold the EDFs and each XML form.
NSRR_EDF_DIR = "edfs"
NSRR_XML_DIRS = ("annotations-events-nsrr", "annotations-events-profusion")
#: File names that are scoring, not recordings (skipped when a folder is listed).
HYPNOGRAM_NAME = re.compile(r"hypnogram|annotation|scoring|\.hypnogram", re.IGNORECASE)

_HYP_SUFFIXES = ("-Hypnogram.edf", "-Hypnogram.tsv", "-Hypnogram.csv", "-Hypnogram.txt")
#: Hypnogram file extensions :func:`find_hypnogram` accepts, in order of preference.
_HYP_FILE_SUFFIXES = (".edf", ".tsv", ".csv", ".txt")
#: Files of a reviewed scoring (``hypnoscope review``): ``STEM.<suffix>`` in the review
#: folder, by default ``STEM`` + :data:`REVIEW_DIR_SUFFIX` beside the recording.
REVIEW_SUFFIXES = {"tsv": "reviewed.tsv", "edf": "reviewed.edf", "xml": "reviewed.xml",
                   "state": "review.json"}
REVIEW_DIR_SUFFIX = "_review"


def review_dir(psg: str | os.PathLike) -> Path:
    """The default folder of a recording's review (``hypnoscope review``): ``STEM_review``
    beside it."""
    return Path(psg).parent / f"{recording_stem(psg)}{REVIEW_DIR_SUFFIX}"


def recording_stem(path: str | os.PathLike) -> str:
    """Name of a recording without its extension (any of :data:`hypnoscope.io.psg.RAW_SUFFIXES`:
    ``.edf``, ``.bdf``, ``.vhdr``, ``.fif``, ``.fif.gz`` ..., any case) and without a
    ``-PSG`` / ``_PSG`` suffix: ``SC4001E0-PSG.edf`` -> ``SC4001E0``. The stem names a
    recording's outputs and pairs it with its hypnogram."""
    stem = Path(path).name
    suffix = raw_suffix(stem)
    if suffix in RAW_SUFFIXES:
        stem = stem[: -len(suffix)]
    return re.sub(r"[-_]PSG$", "", stem, flags=re.IGNORECASE)


def sleepedf_ids(name: str, subject_pattern: str | None = None) -> tuple[str, str]:
    """``(subject_id, night_id)`` from a PSG file name.

    With ``subject_pattern`` (a regex), the subject is its first group (or whole match)
    searched in the :func:`recording_stem` and the night id is that stem. Otherwise
    Sleep-EDF names give ``("SC4ss", "SC4ssN")`` / ``("ST7ss", "ST7ssN")`` (e.g.
    ``SC4011E0-PSG.edf`` -> ``("SC401", "SC4011")``); NSRR names (:data:`NSRR_NAME`) give
    the cohort and participant as subject (``shhs1-200001.edf`` and ``shhs2-200001.edf``
    -> ``"shhs-200001"``) and the stem as night; BIDS names their ``sub-<label>``
    (``sub-01_ses-2_task-sleep_eeg.edf`` -> ``"sub-01"``); any other name gives its stem
    for both (one subject per file).
    """
    stem = recording_stem(name)
    if subject_pattern is not None:
        m = re.search(subject_pattern, stem)
        if not m:
            raise ValueError(f"{name}: file name does not match the subject pattern "
                             f"{subject_pattern!r}")
        return (m.group(1) if m.groups() else m.group(0)), stem
    m = SLEEPEDF_NAME.match(stem)
    if m:
        return m.group("subject"), m.group(0)
    m = NSRR_NAME.match(stem)
    if m:
        return f"{m.group('cohort').lower()}-{m.group('id')}", stem
    m = BIDS_SUBJECT.match(stem)
    if m:
        return m.group(1), stem
    return stem, stem


def list_recordings(directory: str | os.PathLike) -> list[Path]:
    """The PSG recordings of a folder: its ``*-PSG.edf`` files (Sleep-EDF layout) or, if
    it has none, every recording file MNE reads (:data:`hypnoscope.io.psg.RAW_SUFFIXES`:
    EDF/BDF, BrainVision ``.vhdr``, FIF, EEGLAB ``.set`` ...) whose name does not look
    like scoring (:data:`HYPNOGRAM_NAME`; e.g. the ``shhs1-200001.edf`` of an NSRR
    folder), sorted. The ``.eeg`` data file of a BrainVision ``.vhdr`` (same stem) is
    not a recording of its own."""
    directory = Path(directory)
    found = sorted(directory.glob("*-PSG.edf"))
    if found:
        return found
    files = [f for f in directory.iterdir() if raw_suffix(f) in RAW_SUFFIXES
             and (f.is_file() or raw_suffix(f) == ".mff")
             and not HYPNOGRAM_NAME.search(f.name)]
    vhdr = {f.stem.lower() for f in files if raw_suffix(f) == ".vhdr"}
    return sorted(f for f in files if not (raw_suffix(f) == ".eeg" and f.stem.lower() in vhdr))


def folder_recordings(directory: str | os.PathLike) -> list[Path]:
    """:func:`list_recordings` of a folder given as input: a folder without any recording
    is an error naming it and what was looked for."""
    found = list_recordings(directory)
    if not found:
        raise ValueError(f"{directory}: no recording in this folder (expected *-PSG.edf, or "
                         "*.edf, *.bdf, *.vhdr, *.fif, *.set ...)")
    return found


def _nsrr_xml_folders(psg: Path) -> list[Path]:
    """Where the NSRR download tree keeps the XML of ``.../polysomnography/edfs/<sub>/S.edf``:
    ``.../polysomnography/annotations-events-nsrr/<sub>/`` (then ``-profusion``)."""
    parts = psg.parent.parts
    if NSRR_EDF_DIR not in parts:
        return []
    i = len(parts) - 1 - parts[::-1].index(NSRR_EDF_DIR)
    base, sub = Path(*parts[:i]), parts[i + 1:]
    return [base.joinpath(d, *sub) for d in NSRR_XML_DIRS]


def find_hypnogram(psg: str | os.PathLike, folder: str | os.PathLike | None = None,
                   ) -> Path | None:
    """The hypnogram of a PSG file, searched in ``folder`` (default: beside the PSG).

    With ``S`` the :func:`recording_stem` of ``psg``, the first of these that exists:

    1. ``S-Hypnogram.edf`` (also ``.tsv``/``.csv``/``.txt``); then the NSRR scoring
       ``S-nsrr.xml``, ``S-profusion.xml`` (``shhs1-200001.edf`` /
       ``shhs1-200001-nsrr.xml``), beside the PSG or, in the NSRR download tree
       (``polysomnography/edfs/shhs1/``), in ``polysomnography/annotations-events-nsrr/
       shhs1/`` (then ``annotations-events-profusion``);
    2. the Sleep-EDF convention, where the two names differ in the last letter of the
       record (``SC4001E0-PSG.edf`` / ``SC4001EC-Hypnogram.edf``);
    3. ``S.hypnogram.*``, ``S_hypnogram.*`` or ``S-hypnogram.*`` (any case; e.g. the
       output of ``hypnoscope stage``);
    4. ``S.tsv``, ``S.csv``, ``S.txt``;
    5. for a BIDS recording (``..._eeg.edf``), its ``..._events.tsv`` if that holds scored
       stages (:func:`hypnoscope.io.bids.bids_events_file`).

    Within 3 and 4, EDF is preferred, then TSV, CSV, TXT; other extensions are ignored.

    Raises
    ------
    ValueError
        If several Sleep-EDF hypnograms (rule 2) match.
    """
    psg = Path(psg)
    folder = psg.parent if folder is None else Path(folder)
    stem = recording_stem(psg)
    for suffix in _HYP_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    nsrr_dirs = [folder] + (_nsrr_xml_folders(psg) if folder == psg.parent else [])
    for d in nsrr_dirs:
        for suffix in NSRR_HYP_SUFFIXES:
            if (d / f"{stem}{suffix}").is_file():
                return d / f"{stem}{suffix}"
    if len(stem) >= 2:
        cands = sorted(p for p in folder.glob(f"{glob.escape(stem[:-1])}?-Hypnogram.*")
                       if p.name.endswith(_HYP_SUFFIXES))
        if len(cands) > 1:
            raise ValueError(f"{psg}: several hypnograms match in {folder}: "
                             f"{[c.name for c in cands]}")
        if cands:
            return cands[0]
    rank = {ext: i for i, ext in enumerate(_HYP_FILE_SUFFIXES)}
    for marker, exts in ((r"[-._]hypnogram", _HYP_FILE_SUFFIXES),
                         ("", _HYP_FILE_SUFFIXES[1:])):
        pattern = re.compile(rf"{re.escape(stem)}{marker}(\.[a-z]+)", re.IGNORECASE)
        found = []
        for f in folder.glob(f"{glob.escape(stem)}*"):
            m = pattern.fullmatch(f.name)
            if (m and m.group(1).lower() in exts and f.is_file()
                    and f.resolve() != psg.resolve()):
                found.append((rank[m.group(1).lower()], f.name, f))
        if found:
            return min(found)[2]
    if folder == psg.parent:
        from hypnoscope.io.bids import bids_events_file

        return bids_events_file(psg)
    return None


def place_hypnogram(hypnogram: Any, sfreq: float, duration_sec: float,
                    start_time: Any = None, align: str = "start_time",
                    max_scored_overhang_epochs: int = 10,
                    max_start_offset_sec: float | None = 60.0,
                    ) -> tuple[Any, float, list[str]]:
    """Place a hypnogram on a recording's time axis (the documented alignment rule).

    0. Pairing check: when both header start times are known and differ by more than
       ``max_start_offset_sec`` (60 s by default; None: no limit), ``ValueError`` with
       both times: the hypnogram is probably of another night, even if it has the same
       length (:func:`check_start_times`). ``align="onset"``
       ignores the start times altogether, this check included. Hypnograms without a
       start time (TSV, text, EDF+ written with the placeholder date) are placed by
       their onsets alone. Sleep-EDF pairs carry the same header start in both files,
       with annotation onsets from the PSG start.
    1. Offset: the first epoch starts ``hypnogram.onset_sec`` after the hypnogram's
       ``start_time``. With ``align="start_time"`` and both start times known, the
       difference of the two start times is added (as MNE does when it attaches
       annotations with an ``orig_time`` to a recording), except a difference under 1 s
       when one of them has whole seconds only (an EDF+ sub-second start against a
       hypnogram's whole-second one: that is the precision, not an offset, and is
       noted); with ``align="onset"`` or a
       start time missing (TSV/text hypnograms), ``onset_sec`` is taken as seconds from
       the recording start.
    2. No overlap (the scoring ends before the recording starts or starts after it ends)
       raises ``ValueError``: the hypnogram belongs to another recording.
    3. Epochs scored before the recording start are dropped, at most
       ``max_scored_overhang_epochs`` scored ones (else ``ValueError``), so the first kept
       epoch starts inside the recording. (Epochs past its end are handled by
       :meth:`Hypnogram.align_to` with the same limit.)
    4. An onset between two samples is rounded to the nearest sample at ``sfreq``
       (at most half a sample, 5 ms at 100 Hz) and noted.

    Returns
    -------
    hypnogram, onset_sec, notes
        The (possibly trimmed) hypnogram, the onset of its first epoch in seconds from the
        recording start (on a sample) and human-readable notes of what was done.
    """
    if align not in ("start_time", "onset"):
        raise ValueError(f"align must be 'start_time' or 'onset', got {align!r}")
    if align == "start_time":
        check_start_times(start_time, hypnogram.start_time, max_start_offset_sec)
    hyp, notes = hypnogram, []
    onset = float(hyp.onset_sec)
    if align == "start_time" and hyp.start_time is not None and start_time is not None:
        h_start = hyp.start_time.replace(tzinfo=None)
        r_start = start_time.replace(tzinfo=None)
        delta = (h_start - r_start).total_seconds()
        if 0 < abs(delta) < 1 and not (h_start.microsecond and r_start.microsecond):
            # one start has whole seconds only (EDF, XML): the fraction is its precision
            notes.append(f"hypnogram start {h_start.isoformat()} and recording start "
                         f"{r_start.isoformat()} differ by {abs(delta):g} s, within the "
                         "1-s precision of a whole-second start time; epochs not shifted")
            delta = 0.0
        if delta:
            onset += delta
            notes.append(f"hypnogram starts at {h_start.isoformat()}, {delta:+g} s from the "
                         f"recording start {r_start.isoformat()}; epochs shifted by that")
        if onset >= duration_sec or onset + hyp.duration_sec <= 0:
            raise ValueError(
                f"the hypnogram covers {h_start + _dt.timedelta(seconds=hyp.onset_sec)} + "
                f"{hyp.duration_sec / 3600:.2f} h but the recording starts at {r_start} and "
                f"lasts {duration_sec / 3600:.2f} h: no overlap - is this the hypnogram of "
                "another recording? (align='onset' ignores the start times)")
    if onset < 0:
        n_drop = min(hyp.n_epochs, math.ceil(-onset / hyp.epoch_sec - 1e-9))
        n_scored = int((hyp.codes[:n_drop] >= 0).sum())
        if n_scored > max_scored_overhang_epochs:
            raise ValueError(f"{n_scored} scored hypnogram epochs fall before the start of "
                             "the recording - is this the hypnogram of another recording?")
        hyp = hyp[n_drop:]
        onset += n_drop * hyp.epoch_sec
        notes.append(f"{n_drop} hypnogram epoch(s) before the recording start dropped "
                     f"({n_scored} scored)")
    if onset >= duration_sec or hyp.n_epochs == 0:
        raise ValueError(f"the hypnogram's first epoch starts at {onset:g} s, after the end "
                         f"of the {duration_sec:g}-s recording")
    snapped = round(onset * sfreq) / sfreq
    if not np.isclose(snapped, onset, rtol=0, atol=1e-9):
        notes.append(f"hypnogram onset {onset:g} s rounded to the nearest sample "
                     f"({snapped:g} s at {sfreq:g} Hz)")
        onset = snapped
    return hyp, onset, notes


def check_start_times(start_a: Any, start_b: Any, max_offset_sec: float | None = 60.0,
                      what_a: str = "recording", what_b: str = "hypnogram") -> float | None:
    """Seconds from ``start_a`` to ``start_b`` (header start times of two files that
    should be of the same night), or None when one is unknown.

    Raises
    ------
    ValueError
        When they differ by more than ``max_offset_sec`` (None: no limit), giving both
        times: the files are probably of different nights or recordings.
    """
    if start_a is None or start_b is None:
        return None
    a, b = start_a.replace(tzinfo=None), start_b.replace(tzinfo=None)
    delta = (b - a).total_seconds()
    if max_offset_sec is not None and abs(delta) > max_offset_sec:
        ahead = "after" if delta > 0 else "before"
        raise ValueError(
            f"the {what_b} starts at {b.isoformat(sep=' ')} but the {what_a} at "
            f"{a.isoformat(sep=' ')}: {_duration_text(abs(delta))} {ahead} it, more than the "
            f"{max_offset_sec:g} s allowed between the header start times - is it of "
            f"another night or recording? (max_start_offset_sec=None lifts the check)")
    return delta


def _duration_text(sec: float) -> str:
    if sec < 120:
        return f"{sec:g} s"
    if sec < 2 * 3600:
        return f"{sec / 60:.1f} min"
    if sec < 3 * 86400:
        return f"{sec / 3600:.1f} h"
    return f"{sec / 86400:.1f} days"

