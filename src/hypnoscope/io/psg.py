"""Reading polysomnography (PSG) recordings: channels by role, common rate, µV.

:func:`read_psg` turns a recording file in any format MNE-Python reads (EDF/EDF+/BDF,
BrainVision, FIF, EEGLAB, GDF, Nihon Kohden ...; see :data:`RAW_SUFFIXES`) or an
:class:`mne.io.BaseRaw` into a :class:`PSGRecording`: one float32 array in µV at a
common sampling rate, with the role of every channel (``"eeg"``, ``"eog"``, ``"emg"``
or ``"emg_envelope"``).

Channel roles
-------------
Roles are resolved from channel names by :func:`hypnoscope.io.channels.resolve_channels`
(every channel that matches a role is used; ``eeg=``/``eog=``/``emg=`` override the
automatic choice, ``[]`` drops a modality; a requested channel that does not exist, the
same channel given twice or a chin-EMG name given as EEG or EOG raises a ``ValueError``
that lists the channels in the file).

Sampling rates
--------------
MNE upsamples every channel of a mixed-rate EDF to the highest rate with FFT
interpolation. :func:`read_psg` recovers each channel's stored samples (exactly, for
integer rate ratios) and then:

- **EMG stored below** ``ENVELOPE_MAX_SFREQ`` (10 Hz), e.g. the Sleep-EDF cassette
  ``EMG submental`` at 1 Hz, is not a waveform but an amplitude envelope (the PSG system
  rectified and smoothed it). It is linearly interpolated onto the common grid (no
  ringing, no invented high-frequency content) and gets the role ``"emg_envelope"``.
  Waveform filters (EMG band-pass) must not be applied to it; the preprocessing module
  skips it.
- Everything else (EEG, EOG, waveform EMG such as the 100 Hz Sleep-EDF telemetry EMG) is
  resampled to ``sfreq`` (100 Hz by default) with polyphase filtering
  (:func:`scipy.signal.resample_poly`, which low-pass filters against aliasing).

Units
-----
Data are returned in µV (MNE applies the header's physical dimension); channels whose
amplitude shows an unambiguous power-of-1000 unit error are rescaled by the units rule
of :mod:`hypnoscope.io.units` (``fix_units=False`` only warns; ``strict=True`` raises
instead, as for any warning).

Warnings as data
----------------
What the reader notices is recorded as :class:`hypnoscope.notices.Notice` objects in
``meta["notices"]`` (logged once; never Python ``warnings``), with stable codes:
``units-rescaled``, ``units-implausible``, ``channel-flat``, ``flat-epochs``,
``nan-samples``, ``low-rate`` (and ``emg-as-eog`` of the channel checks);
``meta["warnings"]`` keeps their messages. With ``strict=True`` any warning raises
:class:`hypnoscope.notices.StrictModeError` (a ``ValueError``) naming them all.
NaN samples (possible in an ``mne.io.RawArray``) are linearly interpolated from their
neighbours (``nan_policy="interpolate"``, the default), set to zero (``"zero"``) or
rejected (``"raise"``); counts go to ``meta["nan_samples"]``. A channel that is entirely
NaN raises. Constant (flat) channels and 30-s windows are reported in
``meta["flat_channels"]`` / ``meta["flat_epochs"]`` with a warning, and kept.
A recording shorter than ``min_duration_sec`` (one 30-s epoch) raises ``ValueError``;
a truncated or unreadable EDF raises ``ValueError`` naming the file.

Start time, discontinuous EDF+D, annotation files
-------------------------------------------------
MNE keeps whole seconds of an EDF+ start time and ignores the onsets of the data
records; :func:`edf_timekeeping` reads them (the first time-keeping TAL of each record).
The start time gets the **sub-second start** of the first record (``+0.25`` in its TAL),
as ``start_time`` and in :func:`recording_info`. A **discontinuous** ``EDF+D`` file whose
records leave gaps is placed on its clock: each record at its onset, the gaps filled with
zeros, so that every 30-s epoch keeps its clock time (read as continuous, every epoch
after a gap would be shifted by it); ``meta["gaps"]`` holds the gaps (seconds from the
start) and the ``edf-gaps`` warning names them (``strict=True`` refuses the file).
Staging leaves every epoch that overlaps a gap unscored (quality ``disconnected``). An
EDF+ file with annotations and no signal (a Sleep-EDF ``*-Hypnogram.edf``) is refused as
a recording, naming it an annotation file; :func:`recording_info` describes it.

Channel checks
--------------
``channel_checks`` are functions run on each non-flat channel's stored samples before
resampling; :func:`hypnoscope.signal.checks.read_psg_checked` reads with the
``emg-as-eog`` check (an EOG channel whose spectrum looks like EMG).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hypnoscope.io.channels import ROLES, resolve_channels
from hypnoscope.io.units import unit_factors
from hypnoscope.notices import add_notice, notices_of, raise_if_strict
from hypnoscope.utils.arrays import epoch_view

if TYPE_CHECKING:  # pragma: no cover
    import mne

#: A check of one channel's stored samples, run by :func:`read_psg`:
#: ``check(x, fs, channel, role, source, meta)`` adds its notices to ``meta``.
ChannelCheck = Callable[[np.ndarray, float, str, str, str, dict], None]

#: EMG channels stored at or below this rate (Hz) are amplitude envelopes, not waveforms.
ENVELOPE_MAX_SFREQ = 10.0
#: Shortest recording accepted (one scoring epoch), in seconds.
MIN_DURATION_SEC = 30.0

_EDF_SUFFIXES = (".edf", ".bdf", ".rec")
#: Recording files read through :func:`mne.io.read_raw` (besides EDF/BDF): BrainVision
#: (``.vhdr``), FIF (``.fif``, ``.fif.gz``), EEGLAB (``.set``), GDF, Nihon Kohden
#: (``.eeg`` with its ``.pnt``/``.21e``), Neuroscan (``.cnt``), EGI (``.mff``),
#: Persyst (``.lay``), Nicolet (``.data``), Curry (``.cdt``), Nihon Kohden/others as MNE
#: reads them. Listed here so that folders can be scanned for recordings.
RAW_SUFFIXES = (*_EDF_SUFFIXES, ".vhdr", ".fif", ".fif.gz", ".set", ".gdf", ".eeg", ".cnt",
                ".mff", ".lay", ".data", ".cdt")


# ---------------------------------------------------------------- container
@dataclass
class PSGRecording:
    """A PSG recording resampled to one rate, in µV.

    Attributes
    ----------
    data : ndarray of float32, shape (n_channels, n_samples)
        Signals in µV at ``sfreq``.
    ch_names : list of str
        Original channel labels.
    roles : list of str
        Role of each channel: ``"eeg"``, ``"eog"``, ``"emg"`` or ``"emg_envelope"``.
    sfreq : float
        Sampling rate of ``data``.
    start_time : datetime or None
        Wall-clock start of the recording (naive, as stored in the file).
    source : str
        File path, or a description of the ``Raw`` object it came from.
    meta : dict
        Original rates (``orig_sfreq``) and units (``orig_units``), how each channel was
        resampled, unit/NaN/flat-signal notes and the warnings that were issued.
    annotations : mne.Annotations or None
        Annotations stored in the file (EDF+), if any.
    """

    data: np.ndarray
    ch_names: list[str]
    roles: list[str]
    sfreq: float
    start_time: _dt.datetime | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    annotations: Any = None

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float32)
        if self.data.ndim != 2:
            raise ValueError(f"data must be (n_channels, n_samples), got {self.data.shape}")
        if not (len(self.ch_names) == len(self.roles) == self.data.shape[0]):
            raise ValueError(f"{self.data.shape[0]} data rows but {len(self.ch_names)} "
                             f"channel names and {len(self.roles)} roles")

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[1])

    @property
    def duration_sec(self) -> float:
        return self.n_samples / self.sfreq

    def channels_by_role(self) -> dict[str, list[str]]:
        """``{role: [channel names]}`` for the roles present."""
        out: dict[str, list[str]] = {}
        for c, r in zip(self.ch_names, self.roles, strict=True):
            out.setdefault(r, []).append(c)
        return out

    def copy(self, **changes: Any) -> PSGRecording:
        """A copy with some fields replaced (the data is copied only if not replaced)."""
        kw = dict(ch_names=list(self.ch_names), roles=list(self.roles), sfreq=self.sfreq,
                  start_time=self.start_time, source=self.source, meta=dict(self.meta),
                  annotations=self.annotations)
        kw.update(changes)
        if "data" not in kw:
            kw["data"] = self.data.copy()
        return PSGRecording(**kw)


# ---------------------------------------------------------------- file access
def check_edf_header(path: str | os.PathLike, strict: bool = False) -> None:
    """Validate an EDF/EDF+/BDF header against the file size (truncation, garbage).

    Parameters
    ----------
    path : path
        The file.
    strict : bool, default False
        Also require an EDF version field (``0``, so no BDF) and a header-size field that
        matches the number of signals: the check for downloads, where a damaged file
        must not be kept.

    Raises
    ------
    ValueError
        Naming the file: not EDF, corrupt header fields, or shorter than the header says.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fid:
        head = fid.read(256)
        if strict and (len(head) < 256 or head[:8] != b"0       "):
            raise ValueError(f"{path}: not an EDF file (bad or missing 256-byte header)")
        if size < 256:
            raise ValueError(f"{path}: not a valid EDF/BDF file (only {size} bytes; the "
                             "header alone is 256 bytes) - the file is truncated or corrupt")
        try:
            header_bytes = int(head[184:192].decode("ascii").strip() or -1)
            n_records = int(head[236:244].decode("ascii").strip())
            n_signals = int(head[252:256].decode("ascii").strip())
        except ValueError:
            raise ValueError(f"{path}: not a valid EDF/BDF file (unreadable header fields "
                             "'number of records'/'number of signals') - the file is "
                             "corrupt or not EDF") from None
        if n_signals <= 0 or size < 256 * (n_signals + 1) or (
                strict and header_bytes != 256 * (n_signals + 1)):
            raise ValueError(f"{path}: corrupt EDF header ({n_signals} signals declared, "
                             f"file is {size} bytes) - the file is truncated or corrupt")
        fid.seek(256 + n_signals * 216)
        try:
            n_samps = [int(fid.read(8).decode("ascii").strip()) for _ in range(n_signals)]
        except ValueError:
            raise ValueError(f"{path}: corrupt EDF header (unreadable samples per record)"
                             ) from None
    bytes_per_sample = 3 if head[:1] == b"\xff" else 2
    record_bytes = sum(n_samps) * bytes_per_sample
    data_bytes = size - 256 * (n_signals + 1)
    if n_records > 0 and record_bytes > 0 and data_bytes < n_records * record_bytes:
        have = data_bytes // record_bytes
        raise ValueError(f"{path}: truncated EDF file: the header declares {n_records} data "
                         f"records but the file holds only {have} complete records "
                         f"({data_bytes} of {n_records * record_bytes} data bytes)")


#: The first time-keeping TAL of an EDF+ data record: ``+<onset>`` then ``\x14``.
_TAL_ONSET = re.compile(rb"\x00*([+-]\d+(?:\.\d*)?)[\x14\x15]")


@dataclass(frozen=True)
class EdfTimekeeping:
    """The clock of an EDF+/BDF+ file's data records (what MNE does not keep).

    Attributes
    ----------
    reserved : str
        The header's reserved field: ``"EDF+C"`` (continuous), ``"EDF+D"``
        (discontinuous), ``"BDF+C"``/``"BDF+D"``, or ``""`` for plain EDF/BDF.
    record_sec : float
        Duration of one data record (s).
    onsets : ndarray of float
        Start of each data record in seconds from the header start time (the first
        time-keeping TAL of each record); empty without an annotation signal.
    """

    reserved: str
    record_sec: float
    onsets: np.ndarray

    @property
    def subsecond(self) -> float:
        """Fraction of a second the first record starts after the header's start time
        (the EDF+ sub-second start; 0 when none)."""
        first = float(self.onsets[0]) if self.onsets.size else 0.0
        return first if 0.0 < first < 1.0 else 0.0  # NaN (no TAL) fails both

    @property
    def discontinuous(self) -> bool:
        """The header says ``EDF+D`` (or ``BDF+D``)."""
        return self.reserved.upper().endswith("+D")

    def gaps(self, source: str = "", tol: float = 1e-3) -> list[tuple[float, float]]:
        """``(start, end)`` of every gap longer than ``tol`` seconds between data
        records, in seconds from the first record's start (empty for one record).

        Raises
        ------
        ValueError
            Naming ``source`` and the record when a record has no time-keeping TAL or
            starts before the previous one ends (overlapping records).
        """
        if self.onsets.size < 2:
            return []
        if np.isnan(self.onsets).any():
            k = int(np.flatnonzero(np.isnan(self.onsets))[0])
            raise ValueError(f"{source}: data record {k + 1} of {self.onsets.size} has no "
                             "EDF+ time-keeping annotation ('+<onset>') - the file is "
                             "corrupt")
        step = np.diff(self.onsets)
        if np.any(step < self.record_sec - tol):
            k = int(np.argmax(step < self.record_sec - tol))
            raise ValueError(f"{source}: data record {k + 2} starts at "
                             f"{self.onsets[k + 1]:g} s, before the end of record {k + 1} "
                             f"({self.onsets[k]:g} + {self.record_sec:g} s) - overlapping "
                             "EDF+D records cannot be placed on the clock")
        rel = self.onsets - self.onsets[0]
        ends = rel[:-1] + self.record_sec
        return [(float(e), float(o)) for e, o in zip(ends, rel[1:], strict=True)
                if o - e > tol]


def edf_timekeeping(path: str | os.PathLike) -> EdfTimekeeping:
    """Read the header's reserved field and each data record's onset (the first TAL of
    the first ``EDF Annotations`` signal; NaN for a record without one) of an EDF+/BDF+
    file whose header is valid (:func:`check_edf_header`)."""
    path = Path(path)
    with open(path, "rb") as fid:
        head = fid.read(256)
        ns = int(head[252:256].decode("ascii").strip())
        labels = [fid.read(16).decode("latin-1").strip() for _ in range(ns)]
        fid.seek(256 + ns * 216)
        n_samps = [int(fid.read(8).decode("ascii").strip()) for _ in range(ns)]
    reserved = head[192:236].decode("latin-1").strip()
    record_sec = float(head[244:252].decode("ascii").strip() or 0)
    ann = [i for i, c in enumerate(labels) if c in ("EDF Annotations", "BDF Annotations")]
    if not ann:
        return EdfTimekeeping(reserved, record_sec, np.empty(0))
    bps = 3 if head[:1] == b"\xff" else 2
    record_bytes = sum(n_samps) * bps
    offset = 256 * (ns + 1)
    n_records = (path.stat().st_size - offset) // record_bytes
    declared = int(head[236:244].decode("ascii").strip())
    if declared > 0:
        n_records = min(n_records, declared)
    start = sum(n_samps[: ann[0]]) * bps
    width = min(n_samps[ann[0]] * bps, 64)
    recs = np.memmap(path, np.uint8, "r", offset, (n_records, record_bytes))
    tals = np.ascontiguousarray(recs[:, start: start + width]).tobytes()
    del recs
    onsets = np.full(n_records, np.nan)
    for k in range(n_records):
        m = _TAL_ONSET.match(tals, k * width, (k + 1) * width)  # anchored at the record
        if m is not None:
            onsets[k] = float(m.group(1))
    return EdfTimekeeping(reserved, record_sec, onsets)


def open_raw(source, preload: bool = False) -> tuple[mne.io.BaseRaw, str]:
    """An MNE Raw of a recording file (any format the readers take, EDF headers checked
    first) or of a Raw given, and the name to report it by; ``preload=False`` reads
    samples only when asked (``get_data(start=, stop=)``), as a page viewer does."""
    import mne

    if isinstance(source, mne.io.BaseRaw):
        fnames = [f for f in (getattr(source, "filenames", None) or []) if f]
        name = str(fnames[0]) if fnames else f"<{type(source).__name__}>"
        return source, name
    path = Path(source)
    if not (path.is_file() or (path.is_dir() and path.suffix.lower() == ".mff")):
        raise FileNotFoundError(f"PSG file not found: {path}")
    suffix = raw_suffix(path)
    if suffix in _EDF_SUFFIXES:
        check_edf_header(path)
        reader = mne.io.read_raw_bdf if suffix == ".bdf" else mne.io.read_raw_edf
        kind = "EDF"
    elif suffix in RAW_SUFFIXES:
        reader, kind = mne.io.read_raw, _FORMAT_NAMES.get(suffix, suffix)
    else:
        raise ValueError(f"{path}: unsupported PSG file type {path.suffix!r}; expected a "
                         "file MNE-Python reads (EDF/EDF+ .edf, BDF .bdf, BrainVision .vhdr, "
                         "FIF .fif, EEGLAB .set, GDF .gdf, Nihon Kohden .eeg, ...), or pass "
                         "an mne.io.Raw")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MNE's channel-name/type chatter
            raw = reader(path, preload=preload, verbose="error")
    except Exception as exc:  # MNE raises several types on corrupt files
        raise ValueError(f"{path}: cannot read {kind} file ({type(exc).__name__}: {exc}) - "
                         "the file may be truncated, corrupt or missing a companion file "
                         "(BrainVision: .vhdr + .vmrk + .eeg)") from exc
    return raw, str(path)


_FORMAT_NAMES = {".vhdr": "BrainVision", ".fif": "FIF", ".fif.gz": "FIF",
                 ".set": "EEGLAB", ".gdf": "GDF", ".eeg": "Nihon Kohden", ".cnt": "Neuroscan",
                 ".mff": "EGI MFF"}


def raw_suffix(path: str | os.PathLike) -> str:
    """The recording-format extension of a file name, lower case (``.fif.gz`` whole)."""
    name = Path(path).name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else Path(name).suffix


def _record_sec(record_length: Any) -> float:
    """Duration of one data record in seconds from MNE's ``record_length``: EDF/BDF keep
    ``[seconds, 1]``, GDF the fraction ``[numerator, denominator]`` (1/150 s is
    ``[1, 150]``), so the duration is always the first over the second."""
    rl = np.atleast_1d(np.asarray(record_length, dtype=float))
    return float(rl[0] / rl[1]) if rl.size > 1 and rl[1] > 0 else float(rl[0])


def _orig_rates(raw: mne.io.BaseRaw) -> dict[str, float]:
    """Stored sampling rate of each channel (EDF/BDF/GDF keep one per signal: its
    samples per data record over the record duration, as MNE computes the file's rate)."""
    rates = {c: float(raw.info["sfreq"]) for c in raw.ch_names}
    extras = getattr(raw, "_raw_extras", None)
    if not extras or not isinstance(extras[0], dict):
        return rates
    ex = extras[0]
    try:
        names = list(ex["ch_names"])
        n_samps = np.asarray(ex["n_samps"], dtype=float)
        rec = _record_sec(ex["record_length"])
        sel = np.asarray(ex.get("sel", np.arange(len(names))))
        for i, c in enumerate(names):
            if c in rates and rec > 0:
                rates[c] = float(n_samps[sel[i]] / rec)
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    return rates


def _orig_units(raw: mne.io.BaseRaw) -> dict[str, str]:
    units = getattr(raw, "_orig_units", None) or {}
    return {c: str(units.get(c, "V (MNE)")) for c in raw.ch_names}


def _naive_start(raw: mne.io.BaseRaw, clock: EdfTimekeeping | None = None,
                 ) -> _dt.datetime | None:
    """The header start time, naive, with the EDF+ sub-second start of ``clock`` added
    (MNE keeps whole seconds only)."""
    start = raw.info.get("meas_date")
    if not isinstance(start, _dt.datetime):
        return None
    start = start.replace(tzinfo=None)
    if clock is not None and clock.subsecond and not start.microsecond:
        start += _dt.timedelta(seconds=round(clock.subsecond, 6))
    return start


def _edf_clock(raw: mne.io.BaseRaw) -> EdfTimekeeping | None:
    """The :class:`EdfTimekeeping` of the EDF/BDF file ``raw`` was read from (None for
    other formats, or a file that cannot be read again)."""
    fnames = [f for f in (getattr(raw, "filenames", None) or []) if f]
    if len(fnames) != 1 or raw_suffix(fnames[0]) not in _EDF_SUFFIXES:
        return None
    try:
        return edf_timekeeping(fnames[0])
    except (OSError, ValueError, IndexError):
        return None


def gap_epochs(gaps: Sequence[tuple[float, float]], n_epochs: int,
               epoch_sec: float = 30.0) -> np.ndarray:
    """Epochs (of ``epoch_sec`` from the recording start) that overlap a gap of a
    discontinuous recording (``meta["gaps"]``: ``(start, end)`` seconds); bool mask."""
    out = np.zeros(n_epochs, dtype=bool)
    for a, b in gaps or ():
        lo = max(0, int(np.floor(a / epoch_sec + 1e-9)))
        hi = min(n_epochs, int(np.ceil(b / epoch_sec - 1e-9)))
        out[lo:hi] = True
    return out


def _clock_text(sec: float) -> str:
    sec = round(sec, 3)
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:06.3f}".rstrip("0").rstrip(".")


def gaps_text(gaps: Sequence[tuple[float, float]]) -> str:
    """``"00:10:00-00:15:00 (5 min), ..."``: gaps as times from the recording start."""
    return ", ".join(f"{_clock_text(a)}-{_clock_text(b)} ({(b - a) / 60:.3g} min)"
                     for a, b in gaps)


def _on_clock(data: np.ndarray, file_sfreq: float, clock: EdfTimekeeping | None,
              raw: mne.io.BaseRaw, name: str) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The samples of a discontinuous EDF+D file placed on its clock: each data record at
    its onset (to the nearest sample) from the first record's start, the gaps between
    records filled with zeros; ``data`` itself and no gap for a continuous file."""
    if clock is None or not clock.discontinuous:
        return data, []
    gaps = clock.gaps(name, tol=0.5 / file_sfreq)
    if not gaps:
        return data, []
    per = int(round(clock.record_sec * file_sfreq))
    n_rec = clock.onsets.size
    if raw.first_samp != 0 or data.shape[1] != n_rec * per:
        raise ValueError(f"{name}: discontinuous EDF+D recording with {len(gaps)} gap(s) "
                         f"({gaps_text(gaps)}), but the Raw object holds {data.shape[1]} "
                         f"samples, not the file's {n_rec} records of {per}: pass the file "
                         "path so that its records can be placed on the clock")
    pos = np.round((clock.onsets - clock.onsets[0]) * file_sfreq).astype(np.int64)
    out = np.zeros((data.shape[0], int(pos[-1]) + per), dtype=data.dtype)
    out[:, (pos[:, None] + np.arange(per)).ravel()] = data
    return out, gaps




# ---------------------------------------------------------------- signal helpers
def _native_samples(x: np.ndarray, file_sfreq: float, orig: float) -> tuple[np.ndarray, float]:
    """Undo MNE's upsampling of a low-rate channel when the ratio is an integer."""
    if orig >= file_sfreq:
        return x, file_sfreq
    ratio = file_sfreq / orig
    if abs(ratio - round(ratio)) < 1e-9:
        return x[:: int(round(ratio))], orig
    return x, file_sfreq


def resample(x: np.ndarray, fs_in: float, fs_out: float, n_out: int) -> np.ndarray:
    """``x`` (samples on its last axis) from ``fs_in`` to ``fs_out`` Hz by polyphase
    filtering (:func:`scipy.signal.resample_poly`, anti-aliased), cut or edge-padded to
    ``n_out`` samples: the reader's resampling, also used on a read recording."""
    if np.isclose(fs_in, fs_out):
        y = x
    else:
        from scipy.signal import resample_poly  # only when needed: a slow import (docs/design.md)

        frac = Fraction(fs_out / fs_in).limit_denominator(1000)
        y = resample_poly(x, frac.numerator, frac.denominator, axis=-1)
    if y.shape[-1] >= n_out:
        return y[..., :n_out]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n_out - y.shape[-1])], mode="edge")


def _envelope_to_grid(x: np.ndarray, fs_in: float, fs_out: float, n_out: int) -> np.ndarray:
    """Linear interpolation of an envelope sampled at ``fs_in`` onto the output grid."""
    t_in = np.arange(x.size) / fs_in
    t_out = np.arange(n_out) / fs_out
    return np.interp(t_out, t_in, x)


def _fill_nan(x: np.ndarray, policy: str, name: str, source: str) -> tuple[np.ndarray, int]:
    bad = ~np.isfinite(x)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return x, 0
    if bad.all():
        raise ValueError(f"{source}: channel {name!r} contains no finite sample (all NaN/inf)")
    if policy == "raise":
        raise ValueError(f"{source}: channel {name!r} has {n_bad} NaN/inf samples "
                         "(nan_policy='raise')")
    x = x.copy()
    if policy == "zero":
        x[bad] = 0.0
    elif policy == "interpolate":
        idx = np.arange(x.size)
        x[bad] = np.interp(idx[bad], idx[~bad], x[~bad])
    else:
        raise ValueError(f"nan_policy must be 'interpolate', 'zero' or 'raise', got {policy!r}")
    return x, n_bad


def _flat_epochs(x: np.ndarray, sfreq: float, epoch_sec: float = 30.0,
                 skip: np.ndarray | None = None) -> int:
    """Constant 30-s windows of ``x`` (the windows of ``skip``, gaps, not counted)."""
    n = int(round(epoch_sec * sfreq))
    k = x.size // n
    if k == 0:
        return 0
    flat = np.ptp(epoch_view(x, n), axis=1) == 0
    if skip is not None:
        flat &= ~skip[:k]
    return int(flat.sum())


# ---------------------------------------------------------------- reader
def read_psg(source: str | os.PathLike | mne.io.BaseRaw,
             eeg: str | list[str] | None = None, eog: str | list[str] | None = None,
             emg: str | list[str] | None = None, sfreq: float = 100.0,
             include_emg: bool = True, preload: bool = True, *,
             emg_envelope: bool | None = None, fix_units: bool = True,
             nan_policy: str = "interpolate",
             min_duration_sec: float = MIN_DURATION_SEC,
             strict: bool = False,
             channel_checks: Sequence[ChannelCheck] = ()) -> PSGRecording:
    """Read a PSG recording: resolve channels by role, resample to ``sfreq``, µV.

    Parameters
    ----------
    source : path or mne.io.BaseRaw
        EDF/EDF+/BDF file, or a Raw object (not modified).
    eeg, eog, emg : str, list of str or None
        Channel overrides (see :func:`hypnoscope.io.channels.resolve_channels`);
        ``None`` = automatic.
    sfreq : float, default 100.0
        Common output sampling rate in Hz.
    include_emg : bool, default True
        Keep the EMG channel(s), waveform or envelope.
    preload : bool, default True
        Ignored for data (only the selected channels are always loaded); kept for
        interface compatibility.
    emg_envelope : bool or None
        Treat EMG as an amplitude envelope (True) or a waveform (False). ``None``: an
        envelope if stored at or below ``ENVELOPE_MAX_SFREQ`` Hz (Sleep-EDF cassette).
    fix_units : bool, default True
        Rescale channels whose amplitude shows an unambiguous power-of-1000 unit error
        (the units rule of :mod:`hypnoscope.io.units`); False only warns.
    nan_policy : {"interpolate", "zero", "raise"}
        What to do with NaN/inf samples (see the module docstring).
    min_duration_sec : float, default 30.0
        Shortest accepted recording.
    strict : bool, default False
        Raise :class:`hypnoscope.notices.StrictModeError` (a ``ValueError``) naming
        every warning (units, flat channels, NaNs, the channel checks' ...) instead of
        returning the recording.
    channel_checks : sequence of callables
        Run on each non-flat channel's stored samples (see :data:`ChannelCheck`;
        :func:`hypnoscope.signal.checks.read_psg_checked` passes the EMG-as-EOG check).

    Returns
    -------
    PSGRecording
        ``meta["notices"]`` holds what was noticed (see "Warnings as data");
        ``meta["amplitude_uv"]`` the amplitude of each channel used by the units rule,
        ``meta["unit_factors"]`` the factors applied and ``meta["unit_warnings"]`` the
        channels with a units notice (amplitude, factor, message).
    """
    raw, name = open_raw(source, preload=False)
    clock = _edf_clock(raw)
    ch_found = list(raw.ch_names)
    if not ch_found and clock is not None:
        raise ValueError(f"{name}: an annotation file with no signals (a hypnogram or "
                         f"scoring?), not a recording: {len(_file_annotations(name))} "
                         "annotations. Give it as the hypnogram (--hypnogram) of its PSG")
    try:
        roles_map = resolve_channels(ch_found, eeg=eeg, eog=eog, emg=emg)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    if not include_emg:
        roles_map["emg"] = []
    picks = [c for role in ROLES for c in roles_map[role]]
    if not picks:
        what = "EEG or EOG" if not include_emg else "EEG, EOG or EMG"
        raise ValueError(f"{name}: no {what} channel recognised by name; channels found: "
                         f"{ch_found}. Name the channels to use with --eeg/--eog/--emg "
                         "(Python: eeg=, eog=, emg=)")
    file_sfreq = float(raw.info["sfreq"])
    duration = raw.n_times / file_sfreq
    if duration < min_duration_sec:
        raise ValueError(f"{name}: recording is {duration:.1f} s long, shorter than one "
                         f"{min_duration_sec:g}-s epoch")
    rates = _orig_rates(raw)
    units = _orig_units(raw)
    data_uv, gaps = _on_clock(_read_uv(raw, picks, name), file_sfreq, clock, raw, name)
    n_out = int(np.floor(data_uv.shape[1] * sfreq / file_sfreq + 1e-9))
    gap_mask = gap_epochs(gaps, n_out // int(round(30.0 * sfreq)) + 1)
    meta: dict[str, Any] = {
        "channels_found": ch_found, "file_sfreq": file_sfreq,
        "orig_sfreq": {c: rates[c] for c in picks}, "orig_units": {c: units[c] for c in picks},
        "resampling": {}, "unit_warnings": {}, "unit_factors": {}, "amplitude_uv": {},
        "nan_samples": {}, "flat_channels": [], "flat_epochs": {}, "warnings": [],
        "notices": [], "gaps": gaps,
        "envelope_note": (f"EMG stored at <= {ENVELOPE_MAX_SFREQ:g} Hz is an amplitude "
                          "envelope, linearly interpolated to the output rate "
                          "(role 'emg_envelope')"),
    }
    if gaps:
        add_notice(meta, "edf-gaps", _gaps_message(name, gaps, clock))
    role_of = {c: r for r in ROLES for c in roles_map[r]}
    envelopes = {c for c in picks if _is_envelope(role_of[c], rates[c], emg_envelope)}
    native = _native_channels(data_uv, picks, file_sfreq, rates, nan_policy, name, meta)
    factors = unit_factors(picks, native, role_of, units, envelopes, name, meta, fix_units)
    out = np.empty((len(picks), n_out), dtype=np.float32)
    out_roles: list[str] = []
    for i, ch in enumerate(picks):  # units, channel checks, resampling, flat windows
        x, fs_native = native[i]
        if factors.get(ch, 1.0) != 1.0:
            x = x * factors[ch]
        if ch not in meta["flat_channels"]:
            for check in channel_checks:
                check(x, fs_native, ch, role_of[ch], name, meta)
        out[i] = _to_grid(x, fs_native, sfreq, n_out, ch, ch in envelopes, name, meta)
        out_roles.append("emg_envelope" if ch in envelopes else role_of[ch])
        nflat = _flat_epochs(out[i], sfreq, skip=gap_mask)
        if nflat and ch not in meta["flat_channels"]:
            meta["flat_epochs"][ch] = nflat
            add_notice(meta, "flat-epochs", f"{name}: channel {ch!r} is flat in {nflat} 30-s "
                       "window(s)", channel=ch)
    raise_if_strict(notices_of(meta), strict, name)
    annotations = raw.annotations if len(raw.annotations) else None
    return PSGRecording(out, list(picks), out_roles, float(sfreq), _naive_start(raw, clock),
                        name, meta, annotations)


def _gaps_message(name: str, gaps: list[tuple[float, float]], clock: EdfTimekeeping) -> str:
    total = sum(b - a for a, b in gaps)
    what = ("1 gap" if len(gaps) == 1 else f"{len(gaps)} gaps ({total / 60:.3g} min in all)")
    return (f"{name}: discontinuous recording ({clock.reserved}) with {what} between its "
            f"data records, at {gaps_text(gaps)} from the start; the signals are placed on "
            "the recording's clock with the gaps filled by zeros, so every epoch keeps its "
            "clock time, and epochs overlapping a gap are not staged (unscored)")


def _file_annotations(path: str) -> Any:
    """The annotations of an EDF+ file (``mne.read_annotations``)."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mne.read_annotations(path)


def _is_envelope(role: str, rate: float, emg_envelope: bool | None = None) -> bool:
    """Whether a channel is an EMG amplitude envelope: ``emg_envelope`` when given, else
    an EMG stored at or below :data:`ENVELOPE_MAX_SFREQ`."""
    return role == "emg" and (emg_envelope if emg_envelope is not None
                              else rate <= ENVELOPE_MAX_SFREQ)


def _read_uv(raw: mne.io.BaseRaw, picks: list[str], name: str) -> np.ndarray:
    """The ``picks`` of ``raw`` in µV, float64 (a copy: the caller's Raw is not
    modified)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data_v = raw.get_data(picks=picks)
    except Exception as exc:
        raise ValueError(f"{name}: cannot read the signal data ({type(exc).__name__}: {exc})"
                         " - the file may be truncated or corrupt") from exc
    data_v = np.asarray(data_v, dtype=np.float64)
    if getattr(raw, "preload", False) and np.shares_memory(data_v, raw._data):
        data_v = data_v.copy()  # the caller's Raw is not modified
    data_v *= 1e6  # MNE returns volts; µV in place (one copy of the signals in memory)
    return data_v


def _native_channels(data_uv: np.ndarray, picks: list[str], file_sfreq: float,
                     rates: dict[str, float], nan_policy: str, name: str,
                     meta: dict[str, Any]) -> list[tuple[np.ndarray, float]]:
    """Each channel's stored samples (µV) and rate, NaNs handled, flat channels noted."""
    native: list[tuple[np.ndarray, float]] = []
    for i, ch in enumerate(picks):
        x = data_uv[i]
        x, n_bad = _fill_nan(x, nan_policy, ch, name)
        if n_bad:
            meta["nan_samples"][ch] = n_bad
            how = {"interpolate": "linearly interpolated", "zero": "set to zero"}[nan_policy]
            add_notice(meta, "nan-samples", f"{name}: channel {ch!r} has {n_bad} NaN/inf "
                       f"samples ({100 * n_bad / x.size:.2f}%); {how}", channel=ch)
        x, fs_native = _native_samples(x, file_sfreq, rates[ch])
        native.append((x, fs_native))
        if np.ptp(x) == 0:
            meta["flat_channels"].append(ch)
            add_notice(meta, "channel-flat", f"{name}: channel {ch!r} is flat (constant "
                       f"{x[0]:.4g} µV) - check the electrode or pick another channel",
                       channel=ch)
    return native


def _to_grid(x: np.ndarray, fs_native: float, sfreq: float, n_out: int, ch: str,
             envelope: bool, name: str, meta: dict[str, Any]) -> np.ndarray:
    """One channel on the output grid: an envelope interpolated linearly, a waveform
    resampled (polyphase); how is noted in ``meta["resampling"]``."""
    if envelope:
        meta["resampling"][ch] = f"envelope {fs_native:g} Hz -> {sfreq:g} Hz (linear)"
        return _envelope_to_grid(x, fs_native, sfreq, n_out)
    if fs_native < sfreq:
        add_notice(meta, "low-rate", f"{name}: channel {ch!r} is stored at {fs_native:g} "
                   f"Hz, below the output rate {sfreq:g} Hz; it is upsampled and carries no "
                   f"content above {fs_native / 2:g} Hz", channel=ch)
    meta["resampling"][ch] = (f"{fs_native:g} Hz -> {sfreq:g} Hz (polyphase)"
                              if not np.isclose(fs_native, sfreq) else "none")
    return resample(x, fs_native, sfreq, n_out)


def recording_info(source: str | os.PathLike | mne.io.BaseRaw,
                   eeg: str | list[str] | None = None, eog: str | list[str] | None = None,
                   emg: str | list[str] | None = None) -> dict[str, Any]:
    """Header summary of a recording without loading its signals.

    Returns a dict with ``source``, ``kind`` (``"signals"``, or ``"annotations"`` for an
    EDF+ file with no signal such as a Sleep-EDF ``*-Hypnogram.edf``), ``start_time``
    (ISO string with the EDF+ sub-second start, or None), ``duration_sec`` (on the
    recording's clock, gaps included; None for an annotation file), ``file_sfreq``,
    ``n_annotations``, ``gaps`` (``(start, end)`` seconds of each gap of a
    discontinuous EDF+D file) and ``channels``: a list of ``{"name", "sfreq", "unit",
    "role"}`` where ``role`` is the role given by :func:`resolve_channels` with the
    ``eeg``/``eog``/``emg`` overrides (``"emg_envelope"`` for low-rate EMG, None for
    channels that are not used). Without overrides a recording whose channels cannot be
    resolved gets no roles; a wrong override raises. An annotation file also has
    ``annotation_span_sec`` (first onset, last end) and ``n_stage_annotations`` (those
    whose text is a sleep stage).
    """
    raw, name = open_raw(source, preload=False)
    clock = _edf_clock(raw)
    start = _naive_start(raw, clock)
    if not raw.ch_names and clock is not None:
        return _annotation_file_info(name, start)
    rates, units = _orig_rates(raw), _orig_units(raw)
    overrides = eeg is not None or eog is not None or emg is not None
    try:
        roles_map = resolve_channels(raw.ch_names, eeg=eeg, eog=eog, emg=emg)
    except ValueError:
        if overrides:
            raise
        roles_map = {r: [] for r in ROLES}
    role_of = {c: r for r, cs in roles_map.items() for c in cs}
    channels = []
    for c in raw.ch_names:
        role = role_of.get(c)
        if role is not None and _is_envelope(role, rates[c]):
            role = "emg_envelope"
        channels.append({"name": c, "sfreq": rates[c], "unit": units[c], "role": role})
    sfreq = float(raw.info["sfreq"])
    gaps = clock.gaps(name, tol=0.5 / sfreq) if clock is not None and clock.discontinuous \
        else []
    duration = raw.n_times / sfreq + sum(b - a for a, b in gaps)
    return {"source": name, "kind": "signals",
            "start_time": start.isoformat() if start else None,
            "duration_sec": float(duration), "file_sfreq": sfreq,
            "n_annotations": len(raw.annotations), "gaps": gaps, "channels": channels}


def _annotation_file_info(name: str, start: _dt.datetime | None) -> dict[str, Any]:
    """:func:`recording_info` of an EDF+ file with annotations and no signal."""
    from hypnoscope.stages import is_stage_text

    ann = _file_annotations(name)
    span = ([float(np.min(ann.onset)), float(np.max(ann.onset + ann.duration))]
            if len(ann) else [0.0, 0.0])
    return {"source": name, "kind": "annotations",
            "start_time": start.isoformat() if start else None, "duration_sec": None,
            "file_sfreq": None, "n_annotations": len(ann),
            "n_stage_annotations": sum(is_stage_text(d) for d in ann.description),
            "annotation_span_sec": span, "gaps": [], "channels": []}


