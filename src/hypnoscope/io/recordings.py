"""PSG recordings -> nights: reading, preprocessing, label alignment, crop and cache.

:func:`load_recording` turns one PSG file (with its hypnogram) into a
:class:`hypnoscope.datasets.Night` of 30-s signal epochs, and :func:`load_psg_dir` every
recording of a Sleep-EDF style folder. The result of reading, filtering, epoching, label
alignment and cropping is cached per configuration (see :func:`default_cache_dir`).
:func:`place_hypnogram` and :meth:`Hypnogram.align_to` hold the rules that fit a
hypnogram to its recording (start times, onsets, length); :func:`recording_stem`,
:func:`find_hypnogram` and :func:`sleepedf_ids` the file-name conventions that name a
recording, pair a PSG with its hypnogram and name its subject and night.
"""

from __future__ import annotations

import datetime as _dt
import glob
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.datasets import Night
from hypnoscope.stages import UNSCORED

logger = logging.getLogger(__name__)

#: Bump when :func:`load_recording` changes what it stores, so caches are rebuilt.
RECORDING_CACHE_VERSION = 4

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


class DatasetLoadError(ValueError):
    """Some recordings of a directory could not be loaded.

    Attributes
    ----------
    nights : list of Night
        The recordings that did load.
    failures : list of (str, str)
        ``(file, reason)`` for each recording that failed.
    """

    def __init__(self, message: str, nights: list[Night],
                 failures: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.nights = nights
        self.failures = failures


def default_cache_dir() -> Path:
    """Preprocessing cache folder: ``$HYPNOSCOPE_CACHE`` if set, else
    ``~/.cache/hypnoscope``."""
    env = os.environ.get("HYPNOSCOPE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hypnoscope"


def recording_stem(path: str | os.PathLike) -> str:
    """Name of a recording without its extension (any of :data:`hypnoscope.io.psg.RAW_SUFFIXES`:
    ``.edf``, ``.bdf``, ``.vhdr``, ``.fif``, ``.fif.gz`` ..., any case) and without a
    ``-PSG`` / ``_PSG`` suffix: ``SC4001E0-PSG.edf`` -> ``SC4001E0``. The stem names a
    recording's outputs and pairs it with its hypnogram."""
    from hypnoscope.io.psg import RAW_SUFFIXES, raw_suffix

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
    from hypnoscope.io.psg import RAW_SUFFIXES, raw_suffix

    directory = Path(directory)
    found = sorted(directory.glob("*-PSG.edf"))
    if found:
        return found
    files = [f for f in directory.iterdir() if raw_suffix(f) in RAW_SUFFIXES
             and (f.is_file() or raw_suffix(f) == ".mff")
             and not HYPNOGRAM_NAME.search(f.name)]
    vhdr = {f.stem.lower() for f in files if raw_suffix(f) == ".vhdr"}
    return sorted(f for f in files if not (raw_suffix(f) == ".eeg" and f.stem.lower() in vhdr))


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


def _file_stamp(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _hypnogram_stamp(hypnogram: Any) -> Any:
    from hypnoscope.hypnogram import Hypnogram

    if hypnogram is None:
        return None
    if isinstance(hypnogram, Hypnogram):
        digest = hashlib.sha256(hypnogram.codes.tobytes()).hexdigest()[:16]
        return {"codes": digest, "onset_sec": hypnogram.onset_sec,
                "epoch_sec": hypnogram.epoch_sec, "n_classes": hypnogram.n_classes}
    return _file_stamp(Path(hypnogram))


def place_hypnogram(hypnogram: Any, sfreq: float, duration_sec: float,
                    start_time: Any = None, align: str = "start_time",
                    max_scored_overhang_epochs: int = 10,
                    max_start_offset_sec: float | None = 60.0,
                    ) -> tuple[Any, float, list[str]]:
    """Place a hypnogram on a recording's time axis (the documented alignment rule).

    0. Pairing check: when both header start times are known and differ by more than
       ``max_start_offset_sec`` (60 s by default; None: no limit), ``ValueError`` with
       both times: the hypnogram is probably of another night, even if it has the same
       length (:func:`hypnoscope.evaluation.metrics.check_start_times`). ``align="onset"``
       ignores the start times altogether, this check included. Hypnograms without a
       start time (TSV, text, EDF+ written with the placeholder date) are placed by
       their onsets alone. Sleep-EDF pairs carry the same header start in both files,
       with annotation onsets from the PSG start.
    1. Offset: the first epoch starts ``hypnogram.onset_sec`` after the hypnogram's
       ``start_time``. With ``align="start_time"`` and both start times known, the
       difference of the two start times is added (as MNE does when it attaches
       annotations with an ``orig_time`` to a recording); with ``align="onset"`` or a
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
    import math

    from hypnoscope.evaluation.metrics import check_start_times

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


def load_recording(psg: Any, hypnogram: Any = None, eeg: str | list[str] | None = None,
                   eog: str | list[str] | None = None, emg: str | list[str] | None = None,
                   sfreq: float = 100.0, crop_wake_min: float | None = 30.0, *,
                   include_emg: bool = True, epoch_sec: float = 30.0,
                   preprocessing: dict[str, Any] | str | None = "default",
                   subject_id: str | None = None, night_id: str | None = None,
                   subject_pattern: str | None = None,
                   cache: bool | str | os.PathLike = True,
                   max_scored_overhang_epochs: int = 10,
                   align: str = "start_time", max_start_offset_sec: float | None = 60.0,
                   label_map: dict[str, str] | str | None = None,
                   strict: bool = False) -> Night:
    """Load one PSG recording as a :class:`Night` of 30-s signal epochs.

    Steps: :func:`hypnoscope.io.psg.read_psg` (channels by role, ``sfreq``, µV), the
    continuous preprocessing of ``preprocessing`` (:func:`hypnoscope.signal.preprocessing.
    preprocess`), 30-s epochs starting at the hypnogram's onset
    (:func:`~hypnoscope.signal.preprocessing.epoch_signals`), labels fitted to the signal with
    :meth:`Hypnogram.align_to` (a longer hypnogram is cut if at most
    ``max_scored_overhang_epochs`` scored epochs are lost, else it is taken to belong to
    another recording and raises; a shorter one is padded with unscored epochs), then the
    crop to the sleep period with ``crop_wake_min`` minutes of wake either side. Where the
    hypnogram's epochs start on the recording is decided by :func:`place_hypnogram`
    (start times, scoring before the recording start, onsets between samples).

    Parameters
    ----------
    psg : path, mne.io.BaseRaw or hypnoscope.io.psg.PSGRecording
        The recording (an already-read ``PSGRecording`` must be at ``sfreq``; its
        channels are used as they are).
    hypnogram : path, Hypnogram or None
        Expert scoring (any format :func:`hypnoscope.read_hypnogram` reads). Without it
        all labels are unscored and no crop is made.
    eeg, eog, emg : str, list of str or None
        Channel overrides (see :func:`hypnoscope.io.psg.resolve_channels`).
    sfreq : float, default 100.0
        Common sampling rate.
    crop_wake_min : float or None, default 30.0
        Wake kept before the first and after the last sleep epoch; None keeps the whole
        recording.
    include_emg : bool, default True
        Keep EMG (waveform or envelope).
    epoch_sec : float, default 30.0
        Epoch length (must equal the hypnogram's).
    preprocessing : dict, str or None, default "default"
        Config or preset of :func:`hypnoscope.signal.preprocessing.resolve_config`
        (``"none"`` keeps the resampled µV signals; None means ``"default"``).
    subject_id, night_id : str or None
        Identifiers; by default from the file name (:func:`sleepedf_ids`).
    subject_pattern : str or None
        Regex for the subject id (see :func:`sleepedf_ids`).
    cache : bool or path, default True
        Cache the result (an ``.npz`` and the signals as a memory-mapped ``.X.npy`` in
        :func:`default_cache_dir` or the given folder)
        keyed by every setting above plus the size and modification time of the PSG and
        hypnogram files; a second call with the same key loads it instead of reading and
        filtering again. Not used for an ``mne.io.Raw`` input.
    max_scored_overhang_epochs : int, default 10
        Scored hypnogram epochs allowed before the recording start or after its end
        (dropped); more raises ``ValueError`` (probably another recording's hypnogram).
    align : {"start_time", "onset"}, default "start_time"
        How the hypnogram is placed on the recording (see :func:`place_hypnogram`).
    max_start_offset_sec : float or None, default 60
        Largest difference allowed between the PSG's and the hypnogram's header start
        times; more raises ``ValueError`` with both times (see :func:`place_hypnogram`).
    label_map : dict, str or None
        Site-specific stage labels of the hypnogram
        (:func:`hypnoscope.stages.parse_label_map`, e.g. ``{"NREM2": "N2"}``).
    strict : bool, default False
        Raise :class:`hypnoscope.notices.StrictModeError` if the reader noticed anything
        (units, flat channels, NaNs, EMG-like EOG ...; see :func:`hypnoscope.io.psg.read_psg`).

    Returns
    -------
    Night
        ``kind="signals"``, ``X`` float32 ``(n_epochs, n_channels, n_times)``, ``y``
        5-class codes (-100 = unscored), ``channels``, ``roles``, ``onsets_sec`` (from the
        recording start) and ``meta`` (sources, settings, reader notes and warnings;
        ``meta["notices"]``: the reader's and the placement's notices as dicts).
    """
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.io import psg as _io
    from hypnoscope.io.hypnograms import read_hypnogram
    from hypnoscope.notices import Notices, notices_of, raise_if_strict
    from hypnoscope.signal import preprocessing as _pp

    is_path = isinstance(psg, str | os.PathLike)
    if is_path:
        psg = Path(psg)
        if not psg.is_file():
            raise FileNotFoundError(f"PSG file not found: {psg}")
        default_subject, default_night = sleepedf_ids(psg.name, subject_pattern)
    else:
        default_subject = default_night = "recording"
    if isinstance(hypnogram, str | os.PathLike) and not Path(hypnogram).is_file():
        raise FileNotFoundError(f"hypnogram file not found: {hypnogram}")
    subject_id = str(subject_id or default_subject)
    night_id = str(night_id or default_night)
    settings = _recording_settings(eeg, eog, emg, sfreq, include_emg, epoch_sec,
                                   crop_wake_min, max_scored_overhang_epochs, align,
                                   max_start_offset_sec, label_map)
    cache_file = None
    if cache is not False and cache is not None and is_path:
        cache_file = _cache_file(psg, hypnogram, cache, preprocessing, settings)
        night = _read_cached_night(cache_file, subject_id, night_id)
        if night is not None:
            raise_if_strict(notices_of(night.meta), strict, night.meta.get("source", str(psg)))
            return night

    if isinstance(psg, _io.PSGRecording):
        if not np.isclose(psg.sfreq, sfreq):
            raise ValueError(f"{psg.source}: the recording is at {psg.sfreq:g} Hz but "
                             f"sfreq={sfreq:g} was asked; read it with "
                             f"hypnoscope.io.psg.read_psg(..., sfreq={sfreq:g})")
        rec = psg
    else:
        rec = _io.read_psg(psg, eeg=eeg, eog=eog, emg=emg, sfreq=sfreq,
                           include_emg=include_emg, strict=strict)
    notices = Notices().extend_from(notices_of(rec.meta))
    raise_if_strict(notices, strict, rec.source)  # an already-read PSGRecording
    rec = _pp.preprocess(rec, preprocessing)
    hyp = None
    if hypnogram is not None:
        hyp = (hypnogram if isinstance(hypnogram, Hypnogram)
               else read_hypnogram(hypnogram, label_map=label_map))
        if not np.isclose(hyp.epoch_sec, epoch_sec):
            raise ValueError(f"hypnogram epochs are {hyp.epoch_sec:g} s but epoch_sec is "
                             f"{epoch_sec:g} s")
        if hyp.n_classes != 5:
            raise ValueError("load_recording needs a 5-class hypnogram (W, N1, N2, N3, R)")
    onset = 0.0
    if hyp is not None:
        try:
            hyp, onset, notes = place_hypnogram(
                hyp, rec.sfreq, rec.duration_sec, rec.start_time, align=align,
                max_scored_overhang_epochs=max_scored_overhang_epochs,
                max_start_offset_sec=max_start_offset_sec)
        except ValueError as exc:
            raise ValueError(f"{rec.source} with hypnogram {hypnogram}: {exc}") from None
        for note in notes:
            rec.meta.setdefault("warnings", []).append(note)
            notices.add("hypnogram-placed", f"{rec.source}: {note}", severity="info")
    X = _pp.epoch_signals(rec.data, rec.sfreq, epoch_sec=epoch_sec, onset_sec=onset)
    n_total = len(X)
    if hyp is not None:
        try:
            hyp = hyp.align_to(n_total, max_scored_overhang_epochs=max_scored_overhang_epochs)
        except ValueError as exc:
            raise ValueError(f"{rec.source} with hypnogram {hypnogram}: {exc}") from None
        y = hyp.codes.copy()
    else:
        y = np.full(n_total, UNSCORED, dtype=np.int64)
    sl = slice(0, n_total)
    if hyp is not None and crop_wake_min is not None:
        try:
            sl = hyp.sleep_period_slice(crop_wake_min)
        except ValueError as exc:
            raise ValueError(f"{hypnogram}: {exc}") from None
        X, y = X[sl], y[sl]
    onsets = onset + epoch_sec * np.arange(sl.start, sl.start + len(y), dtype=float)
    meta: dict[str, Any] = {
        "source": rec.source, "hypnogram": None if hypnogram is None else str(
            hypnogram if not isinstance(hypnogram, Hypnogram) else "<Hypnogram>"),
        "start_time": rec.start_time.isoformat() if rec.start_time else None,
        "settings": settings, "preprocessing": rec.meta.get("preprocessing"),
        "crop": {"first_epoch": sl.start, "n_epochs_uncropped": n_total,
                 "crop_wake_min": crop_wake_min if hyp is not None else None},
        "reader": {k: rec.meta.get(k) for k in ("orig_sfreq", "orig_units", "resampling",
                                                "unit_warnings", "nan_samples",
                                                "flat_channels", "warnings")},
        "notices": notices.to_list(),
    }
    night = Night(X=np.ascontiguousarray(X, dtype=np.float32), y=y, subject_id=subject_id,
                  night_id=night_id, kind="signals", sfreq=float(rec.sfreq),
                  channels=list(rec.ch_names), roles=list(rec.roles), onsets_sec=onsets,
                  meta=meta)
    if cache_file is not None:
        _write_cached_night(cache_file, night)
        # hand back the memory-mapped copy: a dataset of many nights stays on disk
        night = _read_cached_night(cache_file, subject_id, night_id) or night
    return night


def _recording_settings(eeg, eog, emg, sfreq, include_emg, epoch_sec, crop_wake_min,
                        max_scored_overhang_epochs, align, max_start_offset_sec,
                        label_map) -> dict[str, Any]:
    """The settings of :func:`load_recording` that key its cache (and are stored)."""
    return {"eeg": eeg, "eog": eog, "emg": emg, "sfreq": float(sfreq),
            "include_emg": include_emg, "epoch_sec": float(epoch_sec),
            "crop_wake_min": crop_wake_min,
            "max_scored_overhang_epochs": max_scored_overhang_epochs,
            "align": align, "max_start_offset_sec": max_start_offset_sec,
            "label_map": _label_map_setting(label_map),
            "cache_version": RECORDING_CACHE_VERSION}


def _cache_file(psg: Path, hypnogram: Any, cache: bool | str | os.PathLike,
                preprocessing: Any, settings: dict[str, Any]) -> Path:
    from hypnoscope.signal import preprocessing as _pp

    key = _pp.config_hash(preprocessing, extra={
        **settings, "psg": _file_stamp(psg), "hypnogram": _hypnogram_stamp(hypnogram)})
    folder = default_cache_dir() / "recordings" if cache is True else Path(cache)
    return folder / f"{psg.stem}-{key}.npz"


def recording_cache_file(psg: str | os.PathLike, hypnogram: Any = None, *,
                         cache: bool | str | os.PathLike = True, eeg=None, eog=None,
                         emg=None, sfreq: float = 100.0, crop_wake_min: float | None = 30.0,
                         include_emg: bool = True, epoch_sec: float = 30.0,
                         preprocessing: dict[str, Any] | str | None = "default",
                         max_scored_overhang_epochs: int = 10, align: str = "start_time",
                         max_start_offset_sec: float | None = 60.0,
                         label_map: Any = None, **_ignored: Any) -> Path:
    """The cache file :func:`load_recording` with these arguments reads or writes
    (its ``.npz``; the entry is complete when that file exists, as it is written
    last). Arguments that do not key the cache (``subject_pattern``, ``strict`` ...)
    are ignored."""
    settings = _recording_settings(eeg, eog, emg, sfreq, include_emg, epoch_sec,
                                   crop_wake_min, max_scored_overhang_epochs, align,
                                   max_start_offset_sec, label_map)
    return _cache_file(Path(psg), hypnogram, cache, preprocessing, settings)


def _label_map_setting(label_map: Any) -> Any:
    """A ``label_map`` as a JSON-ready cache-key value (its content, not its file name)."""
    from hypnoscope.stages import parse_label_map

    got = parse_label_map(label_map)
    return None if got is None else dict(sorted(got.items()))


def _write_cached_night(path: Path, night: Night) -> None:
    from hypnoscope.utils import atomic_path

    info = {"sfreq": night.sfreq, "channels": night.channels, "roles": night.roles,
            "meta": night.meta}
    try:
        # the signals as a plain .npy beside the .npz, so that readers memory-map them
        # (memory stays flat however many nights a dataset holds); the .npz is written
        # last and is the entry's commit mark
        with atomic_path(_signals_file(path)) as tmp, open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(night.X, dtype=np.float32))
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, y=night.y, onsets_sec=night.onsets_sec,
                     info=np.array(json.dumps(info, default=str)))
    except OSError as exc:  # a read-only or full cache must not break loading
        logger.warning("could not write preprocessing cache %s: %s", path, exc)


def _signals_file(path: Path) -> Path:
    return path.with_suffix(".X.npy")


def _read_cached_night(path: Path, subject_id: str, night_id: str) -> Night | None:
    if not path.is_file():
        return None
    try:
        X = np.load(_signals_file(path), mmap_mode="r", allow_pickle=False)
        with np.load(path, allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
            night = Night(X=X, y=z["y"], subject_id=subject_id, night_id=night_id,
                          kind="signals", sfreq=info["sfreq"], channels=info["channels"],
                          roles=info["roles"], onsets_sec=z["onsets_sec"], meta=info["meta"])
    except Exception as exc:  # noqa: BLE001 - a damaged cache entry is rebuilt
        logger.warning("ignoring unreadable cache file %s (%s)", path, exc)
        return None
    night.meta["cache_file"] = str(path)
    return night


def extract_recording(psg: str, hypnogram: str | None, require_hypnogram: bool,
                      return_night: bool, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The per-recording task of :func:`load_psg_dir`: :func:`load_recording` (which
    writes the cache entry) and the recording's summary row (with the night itself
    under ``"night"`` when ``return_night``)."""
    if hypnogram is None and require_hypnogram:
        name = Path(psg).name
        raise FileNotFoundError(f"no hypnogram found beside it (expected "
                                f"{name.replace('-PSG', '-Hypnogram')}, the "
                                f"Sleep-EDF variant or {recording_stem(psg)}-nsrr.xml)")
    night = load_recording(psg, hypnogram, **kwargs)
    row: dict[str, Any] = {"recording": psg, "stem": recording_stem(psg), "status": "ok",
                           "n_epochs": len(night.y)}
    if return_night:
        row["night"] = night
    return row


def load_psg_dir(directory: str | os.PathLike, pattern: str | None = None,
                 subject_pattern: str | None = None, on_error: str = "raise",
                 require_hypnogram: bool = True, recursive: bool = False,
                 jobs: int = 1, scheduler: Any = None,
                 summary_csv: str | os.PathLike | None = None,
                 **kwargs: Any) -> list[Night]:
    """Load every PSG recording of a directory (Sleep-EDF or NSRR layout) as nights.

    The recordings are the ``pattern`` matches or, with ``pattern=None``, those of
    :func:`list_recordings` (``*-PSG.edf``, else every EDF that is not scoring, such as
    SHHS's ``shhs1-200001.edf``), or, for a BIDS root, its ``sub-*/[ses-*/]eeg/*_eeg.*``
    recordings with the stages of their ``*_events.tsv``
    (:func:`hypnoscope.io.bids.list_bids_recordings`). Each is paired with its hypnogram by
    :func:`find_hypnogram`; subject and night ids come from the file name
    (:func:`sleepedf_ids`). Other keyword arguments go to :func:`load_recording`
    (channels, ``sfreq``, ``crop_wake_min``, ``preprocessing``, ``cache`` ...), so
    repeated loads come from the cache.

    Bad files do not stop the batch: every recording is tried, and failures (unreadable
    EDF, missing channel, missing or mismatched hypnogram ...) are collected. At the end,
    with ``on_error="raise"`` (default) a :class:`DatasetLoadError` lists every failed
    file and its reason and carries the nights that did load (``.nights``) and
    ``.failures``; with ``on_error="warn"`` the list is logged as a warning and the loaded
    nights are returned. If no recording loads at all, the error is raised either way.

    Reading and preprocessing run through :mod:`hypnoscope.staging.batch`: in this process
    (``jobs=1``), in ``jobs`` local processes, or on a Dask cluster (``scheduler``, an
    address such as ``tcp://HOST:8786`` or a ``distributed.Client``). With several
    processes or a cluster each worker writes its night into the recording cache
    (``cache``, required then; on a cluster a folder every worker shares) and this
    process reads it back memory-mapped; recordings whose cache entry is complete are
    skipped (read from the cache), so a rerun after a crash resumes. ``summary_csv``
    names a file for the per-recording summary (status, epochs, seconds, error).

    Raises
    ------
    FileNotFoundError
        If the directory does not exist or holds no file matching ``pattern``.
    DatasetLoadError
        See above.
    """
    if on_error not in ("raise", "warn"):
        raise ValueError(f"on_error must be 'raise' or 'warn', got {on_error!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"PSG directory not found: {directory}")
    from hypnoscope.io.bids import is_bids_root, list_bids_recordings

    if pattern is None and not recursive and is_bids_root(directory):
        files = list_bids_recordings(directory)
    elif pattern is None and not recursive:
        files = list_recordings(directory)
    else:
        pattern = pattern or "*-PSG.edf"
        files = sorted(directory.rglob(pattern) if recursive else directory.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no file matching {pattern or '*-PSG.edf or *.edf'!r} in "
                                f"{directory}")
    from hypnoscope.staging.batch import BatchItem, make_executor, run_batch, write_summary_csv

    remote = scheduler is not None or jobs > 1
    cache = kwargs.get("cache", True)
    if remote and (cache is False or cache is None):
        raise ValueError("reading recordings in several processes or on a cluster needs "
                         "the recording cache (cache=True or a folder), got cache=False")
    if remote and cache is True:  # the workers write where this process reads
        kwargs["cache"] = str(default_cache_dir() / "recordings")
    items = []
    for f in files:
        try:
            hyp = find_hypnogram(f)
        except Exception as exc:  # noqa: BLE001 - reported in the summary below
            items.append(BatchItem(str(f), recording_stem(f), row={
                "recording": str(f), "stem": recording_stem(f), "status": "failed",
                "error": f"{type(exc).__name__}: {exc}"}))
            continue
        task = {"psg": str(f), "hypnogram": None if hyp is None else str(hyp),
                "require_hypnogram": require_hypnogram, "return_night": not remote,
                "kwargs": {**kwargs, "subject_pattern": subject_pattern}}
        item = BatchItem(str(f), recording_stem(f), task)
        if remote and (hyp is not None or not require_hypnogram) and recording_cache_file(
                f, hyp, **kwargs).is_file():
            item.row = {"recording": str(f), "stem": item.stem, "status": "skipped"}
        items.append(item)
    executor = make_executor(min(jobs, max(len(files), 1)), scheduler)
    rows = run_batch(items, extract_recording, executor, desc="recordings")
    nights: list[Night] = []
    failures: list[tuple[str, str]] = []
    for item, row in zip(items, rows, strict=True):
        night = row.pop("night", None)
        if row["status"] != "failed" and night is None:  # from the cache the worker wrote
            try:
                night = load_recording(item.recording, item.kwargs["hypnogram"],
                                       subject_pattern=subject_pattern, **kwargs)
                row["n_epochs"] = len(night.y)
            except Exception as exc:  # noqa: BLE001 - reported in the summary below
                row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        if row["status"] == "failed":
            failures.append((item.recording, str(row["error"])))
        else:
            nights.append(night)
    if summary_csv is not None:
        write_summary_csv(summary_csv, rows)
    if failures:
        lines = "\n".join(f"  {f}: {why}" for f, why in failures)
        msg = (f"{len(failures)} of {len(files)} recordings in {directory} could not be "
               f"loaded:\n{lines}")
        if on_error == "raise" or not nights:
            raise DatasetLoadError(msg, nights, failures)
        logger.warning(msg)
    return nights
