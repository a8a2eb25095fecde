"""PSG recordings -> nights: reading, preprocessing, label alignment, crop and cache.

:func:`load_recording` turns one PSG file (with its hypnogram) into a
:class:`hypnoscope.datasets.Night` of 30-s signal epochs, and :func:`load_psg_dir` every
recording of a folder (found and paired with their hypnograms by
:mod:`hypnoscope.io.recordings`). The result of reading, filtering, epoching, label
alignment and cropping is cached per configuration (see :func:`default_cache_dir`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.datasets import Night
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.io.psg import PSGRecording
from hypnoscope.io.recordings import (
    find_hypnogram,
    list_recordings,
    place_hypnogram,
    recording_stem,
    sleepedf_ids,
)
from hypnoscope.notices import Notices, notices_of, raise_if_strict
from hypnoscope.signal.checks import read_psg_checked
from hypnoscope.signal.epochs import epoch_signals
from hypnoscope.signal.preprocessing import config_hash, preprocess
from hypnoscope.stages import UNSCORED, parse_label_map
from hypnoscope.utils.files import atomic_path

logger = logging.getLogger(__name__)

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


#: Bump when :func:`load_recording` changes what it stores, so caches are rebuilt.
RECORDING_CACHE_VERSION = 4


def default_cache_dir() -> Path:
    """Preprocessing cache folder: ``$HYPNOSCOPE_CACHE`` if set, else
    ``~/.cache/hypnoscope``."""
    env = os.environ.get("HYPNOSCOPE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hypnoscope"


def _file_stamp(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _hypnogram_stamp(hypnogram: Any) -> Any:
    if hypnogram is None:
        return None
    if isinstance(hypnogram, Hypnogram):
        digest = hashlib.sha256(hypnogram.codes.tobytes()).hexdigest()[:16]
        return {"codes": digest, "onset_sec": hypnogram.onset_sec,
                "epoch_sec": hypnogram.epoch_sec, "n_classes": hypnogram.n_classes}
    return _file_stamp(Path(hypnogram))



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

    Steps: :func:`hypnoscope.signal.checks.read_psg_checked` (channels by role,
    ``sfreq``, µV), the continuous preprocessing of ``preprocessing``
    (:func:`hypnoscope.signal.preprocessing.preprocess`), 30-s epochs starting at the
    hypnogram's onset (:func:`hypnoscope.signal.epochs.epoch_signals`), labels fitted to
    the signal with
    :meth:`Hypnogram.align_to` (a longer hypnogram is cut if at most
    ``max_scored_overhang_epochs`` scored epochs are lost, else it is taken to belong to
    another recording and raises; a shorter one is padded with unscored epochs), then the
    crop to the sleep period with ``crop_wake_min`` minutes of wake either side. Where the
    hypnogram's epochs start on the recording is decided by
    :func:`hypnoscope.io.recordings.place_hypnogram`
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
        Channel overrides (see :func:`hypnoscope.io.channels.resolve_channels`).
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
        Identifiers; by default from the file name
        (:func:`hypnoscope.io.recordings.sleepedf_ids`).
    subject_pattern : str or None
        Regex for the subject id (see :func:`hypnoscope.io.recordings.sleepedf_ids`).
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
        How the hypnogram is placed on the recording (see
        :func:`hypnoscope.io.recordings.place_hypnogram`).
    max_start_offset_sec : float or None, default 60
        Largest difference allowed between the PSG's and the hypnogram's header start
        times; more raises ``ValueError`` with both times.
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
    is_path = isinstance(psg, str | os.PathLike)
    psg = Path(psg) if is_path else psg
    subject_id, night_id = _night_ids(psg, hypnogram, subject_id, night_id, subject_pattern)
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
    rec = _read_recording(psg, eeg, eog, emg, sfreq, include_emg, strict)
    notices = Notices().extend_from(notices_of(rec.meta))
    raise_if_strict(notices, strict, rec.source)  # an already-read PSGRecording
    rec = preprocess(rec, preprocessing)
    hyp = _read_hypnogram(hypnogram, label_map, epoch_sec)
    X, y, first, n_total, onset = _labelled_epochs(
        rec, hyp, hypnogram, notices, epoch_sec, crop_wake_min, align,
        max_scored_overhang_epochs, max_start_offset_sec)
    meta = _night_meta(rec, hypnogram, settings, notices, {
        "first_epoch": first, "n_epochs_uncropped": n_total,
        "crop_wake_min": crop_wake_min if hyp is not None else None})
    onsets = onset + epoch_sec * np.arange(first, first + len(y), dtype=float)
    night = Night(X=np.ascontiguousarray(X, dtype=np.float32), y=y, subject_id=subject_id,
                  night_id=night_id, kind="signals", sfreq=float(rec.sfreq),
                  channels=list(rec.ch_names), roles=list(rec.roles), onsets_sec=onsets,
                  meta=meta)
    if cache_file is not None:
        _write_cached_night(cache_file, night)
        # hand back the memory-mapped copy: a dataset of many nights stays on disk
        night = _read_cached_night(cache_file, subject_id, night_id) or night
    return night


def _night_ids(psg: Any, hypnogram: Any, subject_id: str | None, night_id: str | None,
               subject_pattern: str | None) -> tuple[str, str]:
    """Subject and night id of a recording (by default from its file name,
    :func:`~hypnoscope.io.recordings.sleepedf_ids`); a missing PSG or hypnogram file
    raises ``FileNotFoundError``."""
    if isinstance(psg, Path):
        if not psg.is_file():
            raise FileNotFoundError(f"PSG file not found: {psg}")
        default_subject, default_night = sleepedf_ids(psg.name, subject_pattern)
    else:
        default_subject = default_night = "recording"
    if isinstance(hypnogram, str | os.PathLike) and not Path(hypnogram).is_file():
        raise FileNotFoundError(f"hypnogram file not found: {hypnogram}")
    return str(subject_id or default_subject), str(night_id or default_night)


def _night_meta(rec: PSGRecording, hypnogram: Any, settings: dict[str, Any],
                notices: Notices, crop: dict[str, Any]) -> dict[str, Any]:
    """The ``meta`` of a loaded night: sources, settings, crop, reader notes, notices."""
    return {
        "source": rec.source, "hypnogram": None if hypnogram is None else str(
            hypnogram if not isinstance(hypnogram, Hypnogram) else "<Hypnogram>"),
        "start_time": rec.start_time.isoformat() if rec.start_time else None,
        "settings": settings, "preprocessing": rec.meta.get("preprocessing"),
        "crop": crop,
        "reader": {k: rec.meta.get(k) for k in ("orig_sfreq", "orig_units", "resampling",
                                                "unit_warnings", "nan_samples",
                                                "flat_channels", "warnings")},
        "notices": notices.to_list(),
    }


def _read_recording(psg: Any, eeg, eog, emg, sfreq: float, include_emg: bool,
                    strict: bool) -> PSGRecording:
    """``psg`` read (:func:`~hypnoscope.signal.checks.read_psg_checked`), or as it is if
    it is a :class:`~hypnoscope.io.psg.PSGRecording` at ``sfreq`` already."""
    if isinstance(psg, PSGRecording):
        if not np.isclose(psg.sfreq, sfreq):
            raise ValueError(f"{psg.source}: the recording is at {psg.sfreq:g} Hz but "
                             f"sfreq={sfreq:g} was asked; read it with "
                             f"hypnoscope.io.psg.read_psg(..., sfreq={sfreq:g})")
        return psg
    return read_psg_checked(psg, eeg=eeg, eog=eog, emg=emg, sfreq=sfreq,
                            include_emg=include_emg, strict=strict)


def _read_hypnogram(hypnogram: Any, label_map: Any, epoch_sec: float) -> Hypnogram | None:
    """The 5-class hypnogram of ``hypnogram`` (a path or a Hypnogram), or None."""
    if hypnogram is None:
        return None
    hyp = (hypnogram if isinstance(hypnogram, Hypnogram)
           else read_hypnogram(hypnogram, label_map=label_map))
    if not np.isclose(hyp.epoch_sec, epoch_sec):
        raise ValueError(f"hypnogram epochs are {hyp.epoch_sec:g} s but epoch_sec is "
                         f"{epoch_sec:g} s")
    if hyp.n_classes != 5:
        raise ValueError("load_recording needs a 5-class hypnogram (W, N1, N2, N3, R)")
    return hyp


def _labelled_epochs(rec: PSGRecording, hyp: Hypnogram | None, hypnogram: Any,
                     notices: Notices, epoch_sec: float, crop_wake_min: float | None,
                     align: str, max_scored_overhang_epochs: int,
                     max_start_offset_sec: float | None,
                     ) -> tuple[np.ndarray, np.ndarray, int, int, float]:
    """``(X, y, first, n_total, onset)``: epochs and labels of a preprocessed recording,
    the hypnogram placed (:func:`~hypnoscope.io.recordings.place_hypnogram`; its notes
    go to ``notices`` and the recording's warnings), aligned and cropped; the first epoch
    kept, the number of epochs before the crop and the onset of epoch 0 (seconds)."""
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
    X = epoch_signals(rec.data, rec.sfreq, epoch_sec=epoch_sec, onset_sec=onset)
    n_total = len(X)
    if hyp is None:
        return X, np.full(n_total, UNSCORED, dtype=np.int64), 0, n_total, onset
    try:
        hyp = hyp.align_to(n_total, max_scored_overhang_epochs=max_scored_overhang_epochs)
    except ValueError as exc:
        raise ValueError(f"{rec.source} with hypnogram {hypnogram}: {exc}") from None
    y = hyp.codes.copy()
    gaps = rec.meta.get("gaps")
    if gaps:  # the zeros of a discontinuous recording's gaps are no training signal
        from hypnoscope.io.psg import gap_epochs

        bad = gap_epochs([(a - onset, b - onset) for a, b in gaps], n_total, epoch_sec)
        if (y[bad] != UNSCORED).any():
            notices.add("edf-gaps-unscored",
                        f"{rec.source}: {int((y[bad] != UNSCORED).sum())} scored epoch(s) "
                        "overlapping a gap of the recording are not used (unscored)",
                        severity="info")
        y[bad] = UNSCORED
    if crop_wake_min is None:
        return X, y, 0, n_total, onset
    try:
        sl = hyp.sleep_period_slice(crop_wake_min)
    except ValueError as exc:
        raise ValueError(f"{hypnogram}: {exc}") from None
    return X[sl], y[sl], sl.start, n_total, onset


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
    key = config_hash(preprocessing, extra={
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
    got = parse_label_map(label_map)
    return None if got is None else dict(sorted(got.items()))


def _write_cached_night(path: Path, night: Night) -> None:
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

    Reading and preprocessing run through :mod:`hypnoscope.utils.batch`: in this process
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
    from hypnoscope.utils.batch import BatchItem, make_executor, run_batch, write_summary_csv

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

