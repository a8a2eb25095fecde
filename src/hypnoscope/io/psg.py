"""Reading polysomnography (PSG) recordings: channels by role, common rate, µV.

:func:`read_psg` turns a recording file in any format MNE-Python reads (EDF/EDF+/BDF,
BrainVision, FIF, EEGLAB, GDF, Nihon Kohden ...; see :data:`RAW_SUFFIXES`) or an
:class:`mne.io.BaseRaw` into a :class:`PSGRecording`: one float32 array in µV at a
common sampling rate, with the role of every channel (``"eeg"``, ``"eog"``, ``"emg"``
or ``"emg_envelope"``).

Channel roles
-------------
Roles are resolved from channel names by :func:`resolve_channels` (Sleep-EDF labels such
as ``EEG Fpz-Cz``, ``EOG horizontal``, ``EMG submental`` and AASM-style labels such as
``C4-M1``, ``E1-M2``, ``LOC``, ``Chin1-Chin2``). Every channel that matches a role is used,
so multimodal input is the default whenever the channels exist; ``eeg=``/``eog=``/``emg=``
override the automatic choice (``[]`` drops a modality). A requested channel that does not
exist raises a ``ValueError`` that lists the channels in the file.

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

Units (the decision rule)
-------------------------
Data are returned in µV (MNE applies the header's physical dimension). Unit mistakes in
exports are powers of 1000 (values in V or mV under a µV header, µV values under an mV or
V header), so that is what is corrected; smaller factors cannot be told apart from the
spread of human amplitudes and are only flagged when far outside it.

1. The amplitude of an EEG or EOG waveform channel is the **median over its 30-s epochs
   of the per-epoch standard deviation** (flat epochs left out), in µV as the header
   says. The median over epochs is robust to artefacts, disconnected stretches and
   the sleep-stage mix; adult scalp EEG/EOG gives about 5-60 µV.
2. It is **plausible** within ``PLAUSIBLE_EPOCH_SD_UV`` (1-150 µV): nothing is done.
3. Outside it, the factors of ``UNIT_FACTORS`` (x1e3, x1e6, x1e-3, x1e-6) are tried; a
   factor is **unambiguous** when it brings the amplitude into the narrower
   ``RESCALE_TARGET_UV`` (3-100 µV) and every implausible EEG/EOG channel with the same
   header unit gets the same factor. Those channels (and the EMG channels with the same
   header unit) are then multiplied by it, with a ``units-rescaled`` warning naming the
   channel, the amplitude, the header unit and the factor. Otherwise the channel is kept
   as it is with a ``units-implausible`` warning.
4. An EMG channel with no EEG/EOG companion of its unit is only checked against the
   broad ``MIN_PLAUSIBLE_UV``-``MAX_PLAUSIBLE_UV`` range of its median absolute
   amplitude (``units-implausible``).

On simulated nights (EEG/EOG amplitude 17-36 µV) this rescales data scaled by 1e-6
(volts under a µV header) and 1e-3 (mV), warns for 1e-2 (0.17-0.36 µV; x1000 would give
170-360 µV, outside the target range, so no factor is unambiguous) and for x10
(170-360 µV), and accepts x0.1 (1.7-3.6 µV, the range of real low-amplitude EEG) and x1.
``fix_units=False`` only warns; ``strict=True`` raises instead (as for any warning).

Warnings as data
----------------
What the reader notices is recorded as :class:`hypnoscope.notices.Notice` objects in
``meta["notices"]`` (logged once; never Python ``warnings``), with stable codes:
``units-rescaled``, ``units-implausible``, ``channel-flat``, ``flat-epochs``,
``nan-samples``, ``low-rate`` and ``emg-as-eog``; ``meta["warnings"]`` keeps their
messages. With ``strict=True`` any warning raises
:class:`hypnoscope.notices.StrictModeError` (a ``ValueError``) naming them all.
NaN samples (possible in an ``mne.io.RawArray``) are linearly interpolated from their
neighbours (``nan_policy="interpolate"``, the default), set to zero (``"zero"``) or
rejected (``"raise"``); counts go to ``meta["nan_samples"]``. A channel that is entirely
NaN raises. Constant (flat) channels and 30-s windows are reported in
``meta["flat_channels"]`` / ``meta["flat_epochs"]`` with a warning, and kept.
A recording shorter than ``min_duration_sec`` (one 30-s epoch) raises ``ValueError``;
a truncated or unreadable EDF raises ``ValueError`` naming the file.

Channel sanity
--------------
The same channel given twice (``--eeg X X``) is an error naming it. A channel whose name
says chin EMG (``EMG submental``, ``Chin1-Chin2``, ``EMG1-EMG2``, ``LCHIN`` ...) given as
EOG is an error. An EOG channel whose spectrum looks like EMG -- at least
``EMG_HF_SHARE_MIN`` (50 %) of its 0.3-45 Hz power above 20 Hz and at most
``EMG_LF_SHARE_MAX`` (10 %) below 2 Hz, where an EOG has most of its power -- gets an
``emg-as-eog`` warning (a spectral guess is not proof, so it does not refuse by itself;
``strict=True`` does). The check needs the channel stored at 80 Hz or more.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import os
import re
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import mne

ROLES: tuple[str, ...] = ("eeg", "eog", "emg")
#: EMG channels stored at or below this rate (Hz) are amplitude envelopes, not waveforms.
ENVELOPE_MAX_SFREQ = 10.0
#: Plausible range of the median absolute amplitude of a PSG channel, in µV (the broad
#: check of EMG channels, and the floor of the envelope flat test in ``quality``).
MIN_PLAUSIBLE_UV = 0.05
MAX_PLAUSIBLE_UV = 5000.0
#: Plausible range of an EEG/EOG channel's amplitude (median over 30-s epochs of the
#: per-epoch standard deviation), in µV; see "Units (the decision rule)".
PLAUSIBLE_EPOCH_SD_UV = (1.0, 150.0)
#: Range a unit factor must bring an implausible amplitude into to be applied, in µV.
RESCALE_TARGET_UV = (3.0, 100.0)
#: Unit factors tried (V or mV under a µV header; µV under an mV or V header).
UNIT_FACTORS = (1e3, 1e6, 1e-3, 1e-6)
#: EMG-like EOG: share of 0.3-45 Hz power above 20 Hz at least this ...
EMG_HF_SHARE_MIN = 0.5
#: ... and share below 2 Hz at most this.
EMG_LF_SHARE_MAX = 0.1
#: Lowest stored rate (Hz) at which the EOG spectrum is checked for EMG.
EMG_CHECK_MIN_SFREQ = 80.0
#: Welch segment of the EMG-as-EOG check (seconds; Hann window, mean).
EMG_CHECK_NPERSEG_SEC = 4
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

# ---------------------------------------------------------------- channel names
_ELECTRODE = (r"(fp[z12]|af[z3478]|f[z1-8]|fc[z1-6]|c[z1-6]|cp[z1-6]|t[3-8]|tp[78]|p[z1-8]|"
              r"po[z3478]|o[z12])")
_REF = r"(m[12]|a[12]|[ms]1?2?|avg|ref|cz|oz|fpz|pz|" + _ELECTRODE + r")"
_EEG_RE = re.compile(rf"^{_ELECTRODE}(\s*[-:/]\s*{_REF})?$")
_EOG_RE = re.compile(r"^(e[12]|loc|roc|leog|reog|eogl|eogr|eog[_ ]?[lr]|[lr][_ -]?eog|"
                     r"eye[_ ]?[lr]|[lr][_ -]?eye)(\s*[-:/]\s*(m[12]|a[12]|fpz|ref))?$")
_CHIN = r"([lrc]\s*[-_ ]?\s*chin[0-9]?|chin\s*[-_ ]?\s*[0-9lrc]?|emg[0-9]?)"
_EMG_RE = re.compile(rf"^({_CHIN}(\s*[-:/]\s*{_CHIN})?|submental(is)?|ment(alis)?|"
                     r"emg\s*chin[0-9]?|chin\s*emg|subm|emg\s*submental(is)?)$")
_NOT_CHIN = re.compile(r"leg|tib|lat\b|rat\b|arm|ecg|ekg|resp|temp|event|marker|snore|"
                       r"spo2|sao2|pleth|pulse|flow|thor|abd|position|light|pressure")


#: SHHS channel labels (Compumedics, as in the NSRR SHHS EDFs) and the EEG derivation each
#: stands for: ``EEG`` is C4-A1, ``EEG(sec)`` (``EEG2``, ``EEG 2``, ``EEG sec`` in some
#: files) is C3-A2. Their roles come from :func:`guess_role` like any other name
#: (``EEG*`` -> eeg, ``EOG(L)``/``EOG(R)`` -> eog, ``EMG`` -> emg).
SHHS_DERIVATIONS: dict[str, str] = {"eeg": "C4-A1", "eeg(sec)": "C3-A2", "eeg2": "C3-A2",
                                    "eeg 2": "C3-A2", "eeg sec": "C3-A2"}


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", str(name).strip().lower().replace("_", " "))


def channel_derivation(name: str) -> str | None:
    """The EEG derivation a cohort label stands for (``EEG(sec)`` -> ``C3-A2``, see
    :data:`SHHS_DERIVATIONS`), or None for names that spell their own."""
    return SHHS_DERIVATIONS.get(_norm(name))


def guess_role(name: str) -> str | None:
    """Role (``"eeg"``, ``"eog"``, ``"emg"``) suggested by a channel name, or None.

    Recognises Sleep-EDF labels (``EEG Fpz-Cz``, ``EOG horizontal``, ``EMG submental``),
    AASM labels (``C4-M1``, ``F4-M1``, ``O2-M1``, ``E1-M2``, ``LOC``, ``Chin1-Chin2``),
    common chin-EMG labels (``Chin``, ``CHIN1``, ``EMG1-EMG2``, ``LCHIN``, ``Chin-L``,
    ``Submentalis``), names prefixed with the modality (``EEG C3-A2``, ``EMG chin``) and
    the SHHS labels (``EEG``, ``EEG(sec)``/``EEG2``, ``EOG(L)``, ``EOG(R)``, ``EMG``; see
    :data:`SHHS_DERIVATIONS`).
    Leg EMG, ECG, respiration, temperature and event channels are not matched.
    """
    n = _norm(name)
    if _NOT_CHIN.search(n):
        return None
    if _EMG_RE.match(n):  # before the prefix rule: "EMG1-EMG2", "EMG chin"
        return "emg"
    for prefix in ("eeg", "eog", "emg"):  # "EEG C3-A2", "EOG(L)", "EEG(sec)", "EEG2"
        if n == prefix or re.match(rf"^{prefix}(\b|\d)", n):
            return prefix
    if _EEG_RE.match(n):
        return "eeg"
    if _EOG_RE.match(n) or "horizontal" in n or "vertical" in n:
        return "eog"
    if _EMG_RE.match(n):
        return "emg"
    return None


def _as_list(value: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    if value is None:
        return None
    if value is False:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _missing_channel_error(name: str, role: str, ch_names: list[str]) -> ValueError:
    close = difflib.get_close_matches(name, ch_names, n=3, cutoff=0.5)
    hint = f"; did you mean {close}?" if close else ""
    return ValueError(f"{role.upper()} channel {name!r} not found{hint}. "
                      f"Channels found: {list(ch_names)}")


def resolve_channels(ch_names: list[str], eeg: str | list[str] | None = None,
                     eog: str | list[str] | None = None, emg: str | list[str] | None = None,
                     ) -> dict[str, list[str]]:
    """Map each role to the channel names to use.

    Parameters
    ----------
    ch_names : list of str
        Channel labels of the recording.
    eeg, eog, emg : str, list of str or None
        Overrides. ``None`` (default) picks every channel whose name suggests the role
        (:func:`guess_role`); a name, a comma-separated string or a list selects those
        channels (case-insensitive); ``[]`` selects none for that role.

    Returns
    -------
    dict
        ``{"eeg": [...], "eog": [...], "emg": [...]}`` with the labels as spelled in
        ``ch_names``, in file order for automatic picks and in the given order for
        overrides.

    Raises
    ------
    ValueError
        If an override names a channel that is not in ``ch_names``, names the same
        channel twice (``--eeg X X``), gives a channel two roles, or gives a channel
        whose name says chin EMG (:func:`guess_role`) as EEG or EOG, or if no channel at
        all could be assigned; the message names the channel and lists those found.
    """
    ch_names = [str(c) for c in ch_names]
    lookup: dict[str, str] = {}
    for c in ch_names:
        lookup.setdefault(_norm(c), c)
    overrides = {"eeg": _as_list(eeg), "eog": _as_list(eog), "emg": _as_list(emg)}
    chosen: dict[str, list[str]] = {}
    for role in ROLES:
        names = overrides[role]
        if names is None:
            continue
        picked = []
        for name in names:
            key = _norm(name)
            if key not in lookup:
                # accept the label without its modality prefix ("Fpz-Cz" for "EEG Fpz-Cz")
                alt = [c for c in ch_names if _norm(c) in (f"{role} {key}", f"{role}{key}")]
                if len(alt) != 1:
                    raise _missing_channel_error(name, role, ch_names)
                got = alt[0]
            else:
                got = lookup[key]
            if got in picked:
                same = "" if name == got else f" ({name!r} is {got!r})"
                raise ValueError(f"{role.upper()} channel {got!r} was given twice{same}; "
                                 f"give each channel once. Channels found: {ch_names}")
            if role in ("eeg", "eog") and guess_role(got) == "emg":
                raise ValueError(
                    f"channel {got!r} was given as {role.upper()} but its name says chin "
                    f"EMG; give an {role.upper()} channel (--{role}) or pass it as EMG "
                    f"(--emg). Channels found: {ch_names}")
            picked.append(got)
        chosen[role] = picked
    taken = {c for names in chosen.values() for c in names}
    for role in ROLES:
        if role in chosen:
            continue
        chosen[role] = [c for c in ch_names if guess_role(c) == role and c not in taken]
    seen: dict[str, str] = {}
    for role in ROLES:
        for c in chosen[role]:
            if c in seen and seen[c] != role:
                raise ValueError(f"channel {c!r} was given two roles ({seen[c]} and {role})")
            seen[c] = role
    if not any(chosen.values()):
        raise ValueError("no EEG, EOG or EMG channel recognised; name them with eeg=, eog=, "
                         f"emg= (--eeg/--eog/--emg). Channels found: {ch_names}")
    return {role: chosen[role] for role in ROLES}


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


def _open_raw(source, preload: bool = False) -> tuple[mne.io.BaseRaw, str]:
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


def _orig_rates(raw: mne.io.BaseRaw) -> dict[str, float]:
    """Stored sampling rate of each channel (EDF keeps one per signal)."""
    rates = {c: float(raw.info["sfreq"]) for c in raw.ch_names}
    extras = getattr(raw, "_raw_extras", None)
    if not extras or not isinstance(extras[0], dict):
        return rates
    ex = extras[0]
    try:
        names = list(ex["ch_names"])
        n_samps = np.asarray(ex["n_samps"], dtype=float)
        rec = float(np.atleast_1d(ex["record_length"])[0])
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


def _naive_start(raw: mne.io.BaseRaw) -> _dt.datetime | None:
    start = raw.info.get("meas_date")
    if start is None:
        return None
    return start.replace(tzinfo=None) if isinstance(start, _dt.datetime) else None


# ---------------------------------------------------------------- signal helpers
def _native_samples(x: np.ndarray, file_sfreq: float, orig: float) -> tuple[np.ndarray, float]:
    """Undo MNE's upsampling of a low-rate channel when the ratio is an integer."""
    if orig >= file_sfreq:
        return x, file_sfreq
    ratio = file_sfreq / orig
    if abs(ratio - round(ratio)) < 1e-9:
        return x[:: int(round(ratio))], orig
    return x, file_sfreq


def _resample(x: np.ndarray, fs_in: float, fs_out: float, n_out: int) -> np.ndarray:
    if np.isclose(fs_in, fs_out):
        y = x
    else:
        from scipy.signal import resample_poly  # imported only when needed (~0.6 s)

        frac = Fraction(fs_out / fs_in).limit_denominator(1000)
        y = resample_poly(x, frac.numerator, frac.denominator)
    if y.size >= n_out:
        return y[:n_out]
    return np.pad(y, (0, n_out - y.size), mode="edge")


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


def _flat_epochs(x: np.ndarray, sfreq: float, epoch_sec: float = 30.0) -> int:
    n = int(round(epoch_sec * sfreq))
    k = x.size // n
    if k == 0:
        return 0
    return int((np.ptp(x[: k * n].reshape(k, n), axis=1) == 0).sum())


def _notice(meta: dict, code: str, message: str, *, severity: str = "warning",
            channel: str | None = None) -> None:
    """Record a reader notice (logged once) and keep its message in ``meta["warnings"]``."""
    from hypnoscope.notices import notices_of

    before = len(notices_of(meta))
    notices_of(meta).add(code, message, severity=severity, channel=channel)
    if severity == "warning" and len(meta["notices"]) > before:
        meta.setdefault("warnings", []).append(message)


def epoch_amplitude(x: np.ndarray, fs: float, epoch_sec: float = 30.0) -> float:
    """Median over 30-s epochs of the per-epoch standard deviation (flat epochs left
    out); the amplitude of the units rule. NaN for a channel with no non-flat epoch."""
    n = max(1, int(round(epoch_sec * fs)))
    k = x.size // n
    ep = x[: k * n].reshape(k, n) if k else x[None, :]
    sd = ep.std(axis=1)
    sd = sd[sd > 0]
    return float(np.median(sd)) if sd.size else float("nan")


def unit_factor(amplitude_uv: float) -> float | None:
    """The factor of the units rule for an EEG/EOG amplitude (µV, :func:`epoch_amplitude`):
    1.0 when plausible, the one power of 1000 of ``UNIT_FACTORS`` that brings it into
    ``RESCALE_TARGET_UV`` when implausible, None when no factor is unambiguous."""
    lo, hi = PLAUSIBLE_EPOCH_SD_UV
    if not np.isfinite(amplitude_uv) or lo <= amplitude_uv <= hi:
        return 1.0
    tlo, thi = RESCALE_TARGET_UV
    fits = [f for f in UNIT_FACTORS if tlo <= amplitude_uv * f <= thi]
    return fits[0] if len(fits) == 1 else None


def emg_spectrum_shares(x: np.ndarray, fs: float, max_epochs: int = 240,
                        ) -> tuple[float, float] | None:
    """``(share above 20 Hz, share below 2 Hz)`` of a signal's 0.3-45 Hz power: the
    median over at most ``max_epochs`` evenly spaced 30-s epochs of each epoch's shares
    (Welch, 4-s segments); None when the rate is below ``EMG_CHECK_MIN_SFREQ`` or the
    signal is flat."""
    from hypnoscope.signal.preprocessing import (
        welch,  # SciPy's Welch; no scipy.signal import at 100 Hz
    )

    if fs < EMG_CHECK_MIN_SFREQ:
        return None
    n = int(round(30.0 * fs))
    k = x.size // n
    if k == 0:
        return None
    pick = np.unique(np.linspace(0, k - 1, min(k, max_epochs)).round().astype(int))
    ep = x[: k * n].reshape(k, n)[pick]
    f, p = welch(ep, fs, nperseg=int(round(EMG_CHECK_NPERSEG_SEC * fs)))
    band = (f >= 0.3) & (f <= 45.0)
    total = p[:, band].sum(axis=1)
    ok = np.isfinite(total) & (total > 0)
    if not ok.any():
        return None
    # median over epochs of the per-epoch shares: an artefact hour cannot make a whole
    # EOG look like EMG
    hf = p[ok][:, (f >= 20.0) & (f <= 45.0)].sum(axis=1) / total[ok]
    lf = p[ok][:, (f >= 0.3) & (f < 2.0)].sum(axis=1) / total[ok]
    return float(np.median(hf)), float(np.median(lf))


# ---------------------------------------------------------------- reader
def read_psg(source: str | os.PathLike | mne.io.BaseRaw,
             eeg: str | list[str] | None = None, eog: str | list[str] | None = None,
             emg: str | list[str] | None = None, sfreq: float = 100.0,
             include_emg: bool = True, preload: bool = True, *,
             emg_envelope: bool | None = None, fix_units: bool = True,
             nan_policy: str = "interpolate",
             min_duration_sec: float = MIN_DURATION_SEC,
             strict: bool = False) -> PSGRecording:
    """Read a PSG recording: resolve channels by role, resample to ``sfreq``, µV.

    Parameters
    ----------
    source : path or mne.io.BaseRaw
        EDF/EDF+/BDF file, or a Raw object (not modified).
    eeg, eog, emg : str, list of str or None
        Channel overrides (see :func:`resolve_channels`); ``None`` = automatic.
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
        (see "Units (the decision rule)" in the module docstring); False only warns.
    nan_policy : {"interpolate", "zero", "raise"}
        What to do with NaN/inf samples (see the module docstring).
    min_duration_sec : float, default 30.0
        Shortest accepted recording.
    strict : bool, default False
        Raise :class:`hypnoscope.notices.StrictModeError` (a ``ValueError``) naming
        every warning (units, flat channels, NaNs, EMG-like EOG ...) instead of
        returning the recording.

    Returns
    -------
    PSGRecording
        ``meta["notices"]`` holds what was noticed (see "Warnings as data");
        ``meta["amplitude_uv"]`` the amplitude of each channel used by the units rule,
        ``meta["unit_factors"]`` the factors applied and ``meta["unit_warnings"]`` the
        channels with a units notice (amplitude, factor, message).
    """
    from hypnoscope.notices import notices_of, raise_if_strict

    raw, name = _open_raw(source, preload=False)
    ch_found = list(raw.ch_names)
    roles_map = resolve_channels(ch_found, eeg=eeg, eog=eog, emg=emg)
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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data_v = raw.get_data(picks=picks)
    except Exception as exc:
        raise ValueError(f"{name}: cannot read the signal data ({type(exc).__name__}: {exc})"
                         " - the file may be truncated or corrupt") from exc
    n_out = int(np.floor(raw.n_times * sfreq / file_sfreq + 1e-9))
    meta: dict[str, Any] = {
        "channels_found": ch_found, "file_sfreq": file_sfreq,
        "orig_sfreq": {c: rates[c] for c in picks}, "orig_units": {c: units[c] for c in picks},
        "resampling": {}, "unit_warnings": {}, "unit_factors": {}, "amplitude_uv": {},
        "nan_samples": {}, "flat_channels": [], "flat_epochs": {}, "warnings": [],
        "notices": [],
        "envelope_note": (f"EMG stored at <= {ENVELOPE_MAX_SFREQ:g} Hz is an amplitude "
                          "envelope, linearly interpolated to the output rate "
                          "(role 'emg_envelope')"),
    }
    role_of = {c: r for r in ROLES for c in roles_map[r]}
    data_v = np.asarray(data_v, dtype=np.float64)
    if getattr(raw, "preload", False) and np.shares_memory(data_v, raw._data):
        data_v = data_v.copy()  # the caller's Raw is not modified
    data_v *= 1e6  # MNE returns volts; µV in place (one copy of the signals in memory)
    # pass 1: native samples in µV, NaNs, flat channels, amplitudes
    native: list[tuple[np.ndarray, float]] = []
    for i, ch in enumerate(picks):
        x = data_v[i]
        x, n_bad = _fill_nan(x, nan_policy, ch, name)
        if n_bad:
            meta["nan_samples"][ch] = n_bad
            how = {"interpolate": "linearly interpolated", "zero": "set to zero"}[nan_policy]
            _notice(meta, "nan-samples", f"{name}: channel {ch!r} has {n_bad} NaN/inf "
                    f"samples ({100 * n_bad / x.size:.2f}%); {how}", channel=ch)
        x, fs_native = _native_samples(x, file_sfreq, rates[ch])
        native.append((x, fs_native))
        if np.ptp(x) == 0:
            meta["flat_channels"].append(ch)
            _notice(meta, "channel-flat", f"{name}: channel {ch!r} is flat (constant "
                    f"{x[0]:.4g} µV) - check the electrode or pick another channel",
                    channel=ch)
    factors = _unit_factors(picks, native, role_of, units, rates, emg_envelope, name, meta,
                            fix_units)
    # pass 2: units, EOG spectrum, resampling, flat windows
    out = np.empty((len(picks), n_out), dtype=np.float32)
    out_roles: list[str] = []
    for i, ch in enumerate(picks):
        role = role_of[ch]
        x, fs_native = native[i]
        if factors.get(ch, 1.0) != 1.0:
            x = x * factors[ch]
        if role == "eog" and ch not in meta["flat_channels"]:
            shares = emg_spectrum_shares(x, fs_native)
            if shares is not None and (shares[0] >= EMG_HF_SHARE_MIN
                                       and shares[1] <= EMG_LF_SHARE_MAX):
                _notice(meta, "emg-as-eog", (
                    f"{name}: channel {ch!r} is used as EOG but its spectrum looks like EMG: "
                    f"{100 * shares[0]:.0f}% of its 0.3-45 Hz power is above 20 Hz and "
                    f"{100 * shares[1]:.0f}% below 2 Hz (an EOG has most of its power below "
                    "2 Hz) - check the EOG channel (--eog)"), channel=ch)
        envelope = (role == "emg" and (emg_envelope if emg_envelope is not None
                                       else rates[ch] <= ENVELOPE_MAX_SFREQ))
        if envelope:
            out[i] = _envelope_to_grid(x, fs_native, sfreq, n_out)
            out_roles.append("emg_envelope")
            meta["resampling"][ch] = f"envelope {fs_native:g} Hz -> {sfreq:g} Hz (linear)"
        else:
            if fs_native < sfreq:
                _notice(meta, "low-rate", f"{name}: channel {ch!r} is stored at "
                        f"{fs_native:g} Hz, below the output rate {sfreq:g} Hz; it is "
                        f"upsampled and carries no content above {fs_native / 2:g} Hz",
                        channel=ch)
            out[i] = _resample(x, fs_native, sfreq, n_out)
            out_roles.append(role)
            meta["resampling"][ch] = (f"{fs_native:g} Hz -> {sfreq:g} Hz (polyphase)"
                                      if not np.isclose(fs_native, sfreq) else "none")
        nflat = _flat_epochs(out[i], sfreq)
        if nflat and ch not in meta["flat_channels"]:
            meta["flat_epochs"][ch] = nflat
            _notice(meta, "flat-epochs", f"{name}: channel {ch!r} is flat in {nflat} 30-s "
                    "window(s)", channel=ch)
    raise_if_strict(notices_of(meta), strict, name)
    annotations = raw.annotations if len(raw.annotations) else None
    return PSGRecording(out, list(picks), out_roles, float(sfreq), _naive_start(raw), name,
                        meta, annotations)


def _unit_factors(picks: list[str], native: list[tuple[np.ndarray, float]],
                  role_of: dict[str, str], units: dict[str, str], rates: dict[str, float],
                  emg_envelope: bool | None, name: str, meta: dict[str, Any],
                  fix_units: bool) -> dict[str, float]:
    """The units rule of the module docstring: ``{channel: factor}`` applied, with the
    ``units-rescaled`` / ``units-implausible`` notices and ``meta`` entries."""
    lo, hi = PLAUSIBLE_EPOCH_SD_UV
    tlo, thi = RESCALE_TARGET_UV
    amp: dict[str, float] = {}
    want: dict[str, float | None] = {}
    measure: dict[str, str] = {}
    for ch, (x, fs) in zip(picks, native, strict=True):
        if ch in meta["flat_channels"]:
            continue
        envelope = role_of[ch] == "emg" and (emg_envelope if emg_envelope is not None
                                             else rates[ch] <= ENVELOPE_MAX_SFREQ)
        if role_of[ch] == "emg" and envelope:
            # an envelope is an amplitude already: its median (subsampled, ~1e6 values)
            amp[ch] = float(np.median(np.abs(x[::max(1, x.size // 1_000_000)])))
            measure[ch] = "median |amplitude|"
        else:
            amp[ch] = epoch_amplitude(x, fs)
        meta["amplitude_uv"][ch] = amp[ch]
        if role_of[ch] in ("eeg", "eog"):
            want[ch] = unit_factor(amp[ch])
    # one factor per header unit: every implausible EEG/EOG channel of the unit agrees
    by_unit: dict[str, set] = {}
    for ch, f in want.items():
        if f != 1.0:
            by_unit.setdefault(units[ch], set()).add(f)
    group_factor = {u: next(iter(fs)) for u, fs in by_unit.items()
                    if len(fs) == 1 and None not in fs}
    factors: dict[str, float] = {}
    for ch in picks:
        if ch not in amp:
            continue
        a, unit, role = amp[ch], units[ch], role_of[ch]
        f = group_factor.get(unit)
        if role in ("eeg", "eog"):
            implausible = want[ch] != 1.0
            what = (f"an amplitude of {a:.3g} µV (median over 30-s epochs of the standard "
                    f"deviation; header unit {unit!r}; expected {lo:g}-{hi:g} µV)")
        else:
            implausible = not (MIN_PLAUSIBLE_UV <= a <= MAX_PLAUSIBLE_UV)
            what = (f"an amplitude of {a:.3g} µV ("
                    f"{measure.get(ch, 'median over 30-s epochs of the standard deviation')}"
                    f"; header unit {unit!r}; expected {MIN_PLAUSIBLE_UV:g}-"
                    f"{MAX_PLAUSIBLE_UV:g} µV)")
        if f is not None and (implausible if role != "emg"
                              else MIN_PLAUSIBLE_UV <= a * f <= MAX_PLAUSIBLE_UV):
            cause = _unit_cause(f, unit)
            if fix_units:
                factors[ch] = f
                msg = (f"{name}: channel {ch!r} has {what}: {cause}; rescaled by {f:g} to "
                       f"{a * f:.3g} µV")
            else:
                msg = (f"{name}: channel {ch!r} has {what}: {cause}; multiplying by {f:g} "
                       f"would give {a * f:.3g} µV (not done: fix_units=False)")
            if fix_units:
                meta["unit_factors"][ch] = f
            meta["unit_warnings"][ch] = {"amplitude_uv": a, "factor": f, "message": msg}
            _notice(meta, "units-rescaled" if fix_units else "units-implausible", msg,
                    channel=ch)
            continue
        if implausible:
            small = (a < lo) if role in ("eeg", "eog") else (a < MIN_PLAUSIBLE_UV)
            cause = ("data in volts or mV under a µV header, a disconnected electrode or an "
                     "amplifier fault?" if small else
                     "wrong physical unit, a loose electrode or an amplifier fault?")
            msg = (f"{name}: channel {ch!r} has an implausibly {'small' if small else 'large'} "
                   f"{what.removeprefix('an ')} - {cause} No power-of-1000 "
                   f"unit factor brings it unambiguously into {tlo:g}-{thi:g} µV, so it is "
                   "kept as it is")
            meta["unit_warnings"][ch] = {"amplitude_uv": a, "factor": None, "message": msg}
            _notice(meta, "units-implausible", msg, channel=ch)
    return factors


_UNIT_SCALE = {"v": 1.0, "mv": 1e-3, "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "nv": 1e-9}
_UNIT_NAME = {1.0: "V", 1e-3: "mV", 1e-6: "µV", 1e-9: "nV"}


def _unit_cause(factor: float, unit: str) -> str:
    """'the values look like mV under a 'uV' header' for a factor and a header unit
    (the values are in units of header scale x factor volts)."""
    u = unit.strip().lower()
    scale = _UNIT_SCALE.get(u)
    actual = None if scale is None else _UNIT_NAME.get(float(f"{scale * factor:.3g}"))
    if actual is None:
        how = f"{factor:g} times too small" if factor > 1 else f"{1 / factor:g} times too large"
        return f"the values look {how} for their unit {unit!r}"
    return f"the values look like {actual} under a {unit!r} header"


def recording_info(source: str | os.PathLike | mne.io.BaseRaw,
                   eeg: str | list[str] | None = None, eog: str | list[str] | None = None,
                   emg: str | list[str] | None = None) -> dict[str, Any]:
    """Header summary of a recording without loading its signals.

    Returns a dict with ``source``, ``start_time`` (ISO string or None),
    ``duration_sec``, ``file_sfreq``, ``n_annotations`` and ``channels``: a list of
    ``{"name", "sfreq", "unit", "role"}`` where ``role`` is the role given by
    :func:`resolve_channels` with the ``eeg``/``eog``/``emg`` overrides
    (``"emg_envelope"`` for low-rate EMG, None for channels that are not used). Without
    overrides a recording whose channels cannot be resolved gets no roles; a wrong
    override raises.
    """
    raw, name = _open_raw(source, preload=False)
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
        if role == "emg" and rates[c] <= ENVELOPE_MAX_SFREQ:
            role = "emg_envelope"
        channels.append({"name": c, "sfreq": rates[c], "unit": units[c], "role": role})
    start = _naive_start(raw)
    return {"source": name, "start_time": start.isoformat() if start else None,
            "duration_sec": raw.n_times / float(raw.info["sfreq"]),
            "file_sfreq": float(raw.info["sfreq"]), "n_annotations": len(raw.annotations),
            "channels": channels}


def format_recording_info(info: dict[str, Any]) -> str:
    """Human-readable text of :func:`recording_info` (for ``hypnoscope info``)."""
    dur = info["duration_sec"]
    lines = [f"File:      {info['source']}",
             f"Start:     {info['start_time'] or 'unknown'}",
             f"Duration:  {dur:.0f} s ({dur / 3600:.2f} h, {int(dur // 30)} epochs of 30 s)",
             f"Annotations: {info['n_annotations']}",
             f"{'Channel':<24}{'Rate (Hz)':>10}  {'Unit':<8}Role"]
    for ch in info["channels"]:
        lines.append(f"{ch['name']:<24}{ch['sfreq']:>10g}  {ch['unit']:<8}{ch['role'] or '-'}")
    return "\n".join(lines)
