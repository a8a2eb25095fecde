"""Inputs of the bad-inputs benchmark: simulated nights, the defects applied to them, and
the files written from them.

Every input is built from a simulated night (:func:`hypnoscope.simulate.simulate_signals`,
Sleep-EDF channel labels, signals in µV at 100 Hz) whose true hypnogram is known, so that
the runner can score what ``hypnoscope stage`` makes of a damaged recording against the
truth. The nights (:data:`NIGHTS`):

- ``night7``: the 7-h night of ``hypnoscope demo`` (the shipped real Sleep-EDF hypnogram
  ``SC4001EC-Hypnogram.edf`` cropped to the sleep period with 30 min of wake, 841 epochs,
  seed 0): the night the issue's numbers were measured on;
- ``night2``: its first 2 h (240 epochs), for cases where only the pipeline's reaction
  matters, not the accuracy;
- ``day24``: the whole shipped hypnogram, 24 h of a Sleep-EDF cassette recording (a day
  of wake around the night, unscored tail), written in the cassette layout with
  :func:`hypnoscope.simulate.write_sleepedf_pair`;
- ``nap1``..``nap4``, ``other2``: short nights (1-2 h) sampled from the architecture
  model (``other2`` starts 46 h after ``night2``).

A *builder* (:class:`Builder`) writes one case's inputs into a folder and returns the
case's *facts* (true stage codes per output stem, the defective epochs, ...), which the
runner stores beside the corpus and uses to score the outputs. Builders carry a ``spec``
string, so that a changed definition regenerates its case.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Part of the cache key of a generated case, with the case's builder spec and a hash of
#: this file (so any change here regenerates the corpus).
GENERATOR_VERSION = 1

FS = 100.0
EPOCH_SEC = 30
FPZ, PZ, EOG, EMG = "EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"
EEG2 = (FPZ, PZ)
EEG_EOG = (FPZ, PZ, EOG)
UNSCORED = -100


# ------------------------------------------------------------------ simulated nights
@dataclass
class Night:
    """A simulated night: truth codes (``-100`` unscored) and signals in µV at 100 Hz."""

    codes: np.ndarray
    start: dt.datetime
    signals: dict[str, np.ndarray]  # FPZ, PZ, EOG, EMG (waveform)

    @property
    def n_epochs(self) -> int:
        return len(self.codes)

    def epochs(self, first: int, stop: int) -> slice:
        """Sample slice of epochs ``[first, stop)``."""
        k = int(EPOCH_SEC * FS)
        return slice(first * k, stop * k)


def _shipped_hypnogram():
    from hypnoscope.cli.demo import demo_hypnogram_path
    from hypnoscope.io.hypnograms import read_hypnogram

    return read_hypnogram(demo_hypnogram_path())


def _night7_truth():
    return _shipped_hypnogram().crop_to_sleep(wake_pad_min=30)


def _sampled(seed: int, hours: float, n_epochs: int | None = None,
             start: dt.datetime = dt.datetime(1989, 4, 24, 22, 30)):
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.simulate import sample_hypnogram

    hyp = sample_hypnogram(seed=seed, duration_h=hours, start_time=start)
    if n_epochs is not None:  # exact length: trim, or pad with final wake
        codes = np.concatenate([hyp.codes, np.zeros(max(0, n_epochs - hyp.n_epochs), int)])
        hyp = Hypnogram(codes[:n_epochs], start_time=start)
    return hyp


#: name -> (truth hypnogram factory, simulation seed)
NIGHTS: dict[str, tuple[Callable[[], Any], int]] = {
    "night7": (_night7_truth, 0),
    "night2": (lambda: _night7_truth()[:240], 0),
    "day24": (_shipped_hypnogram, 0),
    # 1-2 h nights (chain hours + 30 min of final wake), seeds picked to hold sleep
    "nap1": (lambda: _sampled(11, 0.5), 11),
    "nap2": (lambda: _sampled(13, 1.0), 13),
    "nap3": (lambda: _sampled(15, 1.5), 15),
    "nap4": (lambda: _sampled(16, 1.0), 16),
    "other2": (lambda: _sampled(46, 1.5, n_epochs=240,
                                start=dt.datetime(1989, 4, 26, 22, 0)), 46),
}


@functools.cache
def night(name: str) -> Night:
    """Simulate (once per process) the night ``name`` of :data:`NIGHTS`."""
    from hypnoscope.simulate import simulate_signals

    make, seed = NIGHTS[name]
    hyp = make()
    sig, hyp, _ = simulate_signals(hyp, seed=seed)
    n = hyp.n_epochs * int(EPOCH_SEC * FS)
    signals = {FPZ: sig.fpz[:n], PZ: sig.pz[:n], EOG: sig.eog[:n], EMG: sig.emg[:n]}
    start = hyp.start_time or dt.datetime(1989, 4, 24, 22, 30)
    return Night(np.asarray(hyp.codes, dtype=int), start, signals)


# ------------------------------------------------------------------ EDF writing
@dataclass
class Channel:
    """One EDF signal: physical values ``data`` at ``fs`` Hz in unit ``dim``."""

    label: str
    data: np.ndarray
    fs: float = FS
    dim: str = "uV"
    rail: float | None = None  # physical range +-rail (None: a round number above max)


def _nice_ceiling(x: float) -> float:
    """Smallest 1-2-5 x 10^k at or above ``x`` (a physical range EDF's 8 characters hold)."""
    if not np.isfinite(x) or x <= 0:
        return 1.0
    e = math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * 10.0 ** e >= x:
            return float(f"{m * 10.0 ** e:.3g}")
    return 10.0 ** (e + 1)


def write_edf(path: Path, channels: Sequence[Channel], start: dt.datetime) -> Path:
    """Write an EDF+ file with 1-s data records (what PSG systems and Sleep-EDF use)."""
    import edfio

    signals = []
    n_sec = min(int(len(c.data) // c.fs) for c in channels)
    for c in channels:
        x = np.asarray(c.data[: int(n_sec * c.fs)], dtype=float)
        lim = c.rail if c.rail is not None else _nice_ceiling(float(np.max(np.abs(x))) * 1.05)
        signals.append(edfio.EdfSignal(x, sampling_frequency=c.fs, label=c.label,
                                       physical_dimension=c.dim, physical_range=(-lim, lim)))
    edf = edfio.Edf(signals, starttime=start.time().replace(microsecond=0),
                    recording=edfio.Recording(startdate=start.date()),
                    data_record_duration=1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    edf.write(path)
    return path


def write_truth(path: Path, codes: np.ndarray, start: dt.datetime | None) -> Path:
    """The true hypnogram as a Sleep-EDF EDF+ annotation file."""
    from hypnoscope.hypnogram import Hypnogram

    path.parent.mkdir(parents=True, exist_ok=True)
    return Hypnogram(np.asarray(codes), start_time=start).to_edf(path)


LABELS = {0: "W", 1: "N1", 2: "N2", 3: "N3", 4: "R", UNSCORED: "?"}


def write_tsv(path: Path, codes: np.ndarray, replace: dict[int, dict[str, str]] | None = None
              ) -> Path:
    """A BIDS-style ``onset duration stage`` hypnogram, one row per epoch; ``replace``
    overrides cells ``{row index: {column: text}}`` (row 0 = first data row)."""
    rows = ["onset\tduration\tstage"]
    for i, c in enumerate(codes):
        cells = {"onset": str(i * EPOCH_SEC), "duration": str(EPOCH_SEC),
                 "stage": LABELS[int(c)]}
        cells.update((replace or {}).get(i, {}))
        rows.append("\t".join(cells[k] for k in ("onset", "duration", "stage")))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


def codes_text(codes) -> str:
    """Truth codes as one character per epoch (``?`` unscored), for the facts file."""
    return "".join("?" if int(c) < 0 else str(int(c)) for c in codes)


# ------------------------------------------------------------------ defects
# A defect edits the µV signals of a night in place: ``defect(signals, night)``.
Defect = Callable[[dict[str, np.ndarray], Night], None]


def _seconds(n: int) -> np.ndarray:
    return np.arange(n) / FS


def flat(channels: Sequence[str], epochs: tuple[int, int] | None = None) -> Defect:
    """A flat line (0 µV; a disconnected amplifier input) all night or over ``epochs``."""
    def apply(sig, nt):
        sl = slice(None) if epochs is None else nt.epochs(*epochs)
        for ch in channels:
            sig[ch][sl] = 0.0
    return apply


def noise(uv: float, channels: Sequence[str], epochs: tuple[int, int], seed: int = 1
          ) -> Defect:
    """White noise of ``uv`` µV RMS added over ``epochs`` (an hour of electrode noise)."""
    def apply(sig, nt):
        sl = nt.epochs(*epochs)
        rng = np.random.default_rng(seed)
        for ch in channels:
            sig[ch][sl] = sig[ch][sl] + uv * rng.standard_normal(sig[ch][sl].size)
    return apply


def saturate(channels: Sequence[str], epochs: tuple[int, int]) -> Defect:
    """A slow DC drift (20-s period) over ``epochs`` that drives the amplifier into
    saturation: the signal sits on the rails (the clean file's physical range,
    :func:`default_rails`; write with ``keep_rails=True``) about a quarter of the time, in
    plateaus of 2-3 s."""
    def apply(sig, nt):
        sl = nt.epochs(*epochs)
        rails = default_rails(nt)
        for ch in channels:
            x = sig[ch][sl]
            drift = 1.1 * rails[ch] * np.sin(2 * np.pi * _seconds(x.size) / 20.0)
            sig[ch][sl] = np.clip(x + drift, -rails[ch], rails[ch])
    return apply


def nan(channels: Sequence[str], epochs: tuple[int, int]) -> Defect:
    """NaN samples over ``epochs`` (a gap in an ``mne.io.Raw``, e.g. annotated bad data)."""
    def apply(sig, nt):
        for ch in channels:
            sig[ch][nt.epochs(*epochs)] = np.nan
    return apply


def central_eeg(sig: dict[str, np.ndarray]) -> np.ndarray:
    """A third EEG derivation (a 'C4-M1') mixed from the two simulated ones."""
    return 0.5 * (sig[FPZ] + sig[PZ])


def resp(sig: dict[str, np.ndarray]) -> np.ndarray:
    """An oro-nasal respiration trace (0.25 Hz)."""
    return 300.0 * np.sin(2 * np.pi * 0.25 * _seconds(len(sig[FPZ])))


def temp(sig: dict[str, np.ndarray]) -> np.ndarray:
    """A rectal temperature (°C, nearly constant)."""
    return 37.0 + 0.01 * np.sin(2 * np.pi * _seconds(len(sig[FPZ])) / 3600.0)


# ------------------------------------------------------------------ channel layouts
def channels_of(nt: Night, sig: dict[str, np.ndarray], layout: str = "cassette",
                scale: float = 1.0, order: Sequence[str] | None = None,
                rename: dict[str, str] | None = None, rails: dict[str, float] | None = None,
                extra: dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]] | None = None,
                drop: Sequence[str] = ()) -> list[Channel]:
    """EDF channels of a night.

    ``layout`` "cassette": EEG Fpz-Cz, EEG Pz-Oz, EOG horizontal at 100 Hz and the EMG as
    a 1 Hz RMS envelope (Sleep-EDF cassette); "telemetry": the EMG as a 100 Hz waveform.
    ``scale`` multiplies every value while the header keeps saying µV (volts: 1e-6).
    """
    from hypnoscope.simulate import emg_envelope

    chans = {FPZ: Channel(FPZ, sig[FPZ]), PZ: Channel(PZ, sig[PZ]), EOG: Channel(EOG, sig[EOG])}
    if layout == "cassette":
        chans[EMG] = Channel(EMG, emg_envelope(sig[EMG], FS), fs=1.0)
    else:
        chans[EMG] = Channel(EMG, sig[EMG])
    for label, make in (extra or {}).items():
        chans[label] = Channel(label, make(sig))
    for label in drop:
        chans.pop(label)
    for label, rail in (rails or {}).items():
        chans[label].rail = rail
    out = [chans[k] for k in (order or list(chans))]
    for c in out:
        if scale != 1.0:
            c.data = c.data * scale
            if c.rail is not None:
                c.rail *= scale
        if rename and c.label in rename:
            c.label = rename[c.label]
    return out


def default_rails(nt: Night) -> dict[str, float]:
    """The physical ranges the clean night's file uses (so a defect that keeps to them
    leaves the other hours bit-identical to the clean file)."""
    return {ch: _nice_ceiling(float(np.max(np.abs(nt.signals[ch]))) * 1.05)
            for ch in (FPZ, PZ, EOG)}


# ------------------------------------------------------------------ builders
class Builder:
    """``Builder(fn, **kw)(folder)`` writes a case's inputs into ``folder`` and returns its
    facts; ``spec`` identifies the definition (a changed spec regenerates the case)."""

    def __init__(self, fn: Callable[..., dict], **kw: Any) -> None:
        self.fn, self.kw = fn, kw
        self.spec = f"{fn.__name__}({', '.join(f'{k}={_spec(v)}' for k, v in kw.items())})"

    def __call__(self, folder: Path) -> dict:
        return self.fn(folder, **self.kw)

    def __repr__(self) -> str:
        return self.spec


def _spec(v: Any) -> str:
    if callable(v) and hasattr(v, "__qualname__"):
        cells = getattr(v, "__closure__", None) or ()
        return f"{v.__qualname__}[{', '.join(repr(c.cell_contents) for c in cells)}]"
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_spec(x) for x in v) + ")"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {_spec(x)}" for k, x in v.items()) + "}"
    return repr(v)


def _psg(folder: Path, night_name: str, stem: str, defects: Sequence[Defect] = (),
         truth: bool = True, epochs: int | None = None, keep_rails: bool = False,
         filename: str | None = None, **layout: Any) -> dict:
    nt = night(night_name)
    sig = {k: v.copy() for k, v in nt.signals.items()}
    for d in defects:
        d(sig, nt)
    codes = nt.codes
    if epochs is not None:
        n = epochs * int(EPOCH_SEC * FS) if epochs > 0 else int(FS * 20)  # 0: 20 s
        sig = {k: v[:n] for k, v in sig.items()}
        codes = codes[:max(epochs, 0)]
    if keep_rails:
        layout["rails"] = {**default_rails(nt), **layout.get("rails", {})}
    write_edf(folder / (filename or f"{stem}-PSG.edf"), channels_of(nt, sig, **layout),
              nt.start)
    if truth:
        write_truth(folder / f"{stem}-Hypnogram.edf", codes, nt.start)
    return {"truth": {stem: codes_text(codes)}, "start": nt.start.isoformat()}


def psg(night_name: str, stem: str | None = None, defects: Sequence[Defect] = (),
        **kw: Any) -> Builder:
    """``<stem>-PSG.edf`` (+ ``<stem>-Hypnogram.edf``, the truth) of a simulated night,
    with ``defects`` applied and the channel layout of :func:`channels_of` (``layout``,
    ``scale``, ``order``, ``rename``, ``rails``, ``extra``, ``drop``); ``epochs`` keeps the
    first epochs only (0: 20 s, less than one epoch); ``keep_rails`` writes the clean
    night's physical ranges; ``filename`` replaces ``<stem>-PSG.edf``."""
    return Builder(_psg, night_name=night_name, stem=stem or night_name, defects=tuple(defects),
                   **kw)


def _cassette(folder: Path, night_name: str, record_id: str) -> dict:
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    make, seed = NIGHTS[night_name]
    hyp = make()
    raw = simulate_night(hyp, seed=seed, mode="sleep-edf-sc", start_time=hyp.start_time)
    write_sleepedf_pair(raw, hyp, folder, record_id)
    sl = hyp.sleep_period_slice(wake_pad_min=30)  # the demo's crop: the night within the day
    return {"truth": {record_id: codes_text(hyp.codes)}, "start": hyp.start_time.isoformat(),
            "night_epochs": [sl.start, sl.stop],
            "night_clock": [(hyp.start_time + dt.timedelta(seconds=EPOCH_SEC * i)).strftime(
                "%H:%M:%S") for i in (sl.start, sl.stop)]}


def cassette(night_name: str, record_id: str) -> Builder:
    """A Sleep-EDF cassette pair written by :func:`hypnoscope.simulate.write_sleepedf_pair`
    (7 channels, EMG as a 1 Hz envelope; what ``hypnoscope fetch`` downloads)."""
    return Builder(_cassette, night_name=night_name, record_id=record_id)


def _reference(folder: Path, night_name: str, name: str, from_night: str | None = None,
               shift_h: float = 0.0, epochs: int | None = None) -> dict:
    src = night(from_night or night_name)
    codes = src.codes if epochs is None else np.concatenate(
        [src.codes, np.zeros(max(0, epochs - src.n_epochs), int)])[:epochs]
    start = src.start + dt.timedelta(hours=shift_h)
    write_truth(folder / name, codes, start)
    return {"reference_start": start.isoformat()}


def reference(night_name: str, name: str = "reference-Hypnogram.edf",
              from_night: str | None = None, shift_h: float = 0.0,
              epochs: int | None = None) -> Builder:
    """A reference hypnogram for ``night_name``'s PSG: the night's own truth, or
    ``from_night``'s (another night), with its header start moved by ``shift_h`` hours
    (relative to the source night's start) and/or ``epochs`` long."""
    return Builder(_reference, night_name=night_name, name=name, from_night=from_night,
                   shift_h=shift_h, epochs=epochs)


def _tsv(folder: Path, night_name: str, name: str, column: str | None = None,
         value: str | None = None, stage_at: int = 2) -> dict:
    codes = night(night_name).codes
    row = int(np.flatnonzero(codes == stage_at)[0]) if column else None
    write_tsv(folder / name, codes, {row: {column: value}} if column else None)
    return {"row": row}


def tsv(night_name: str, name: str, column: str | None = None, value: str | None = None
        ) -> Builder:
    """A TSV hypnogram of the night's truth; ``column``/``value`` replace one cell of the
    first N2 epoch's row."""
    return Builder(_tsv, night_name=night_name, name=name, column=column, value=value)


def _raw_file(folder: Path, name: str, content: bytes | str | None = None,
              truncate_from: str | None = None, fraction: float = 1.0,
              zero_digital_range: str | None = None) -> dict:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if truncate_from is not None:  # a copy of another input of the case, cut or patched
        data = bytearray((folder / truncate_from).read_bytes())
        if zero_digital_range is not None:
            _patch_digital_range(data, zero_digital_range)
        path.write_bytes(bytes(data[: int(len(data) * fraction)]))
        if path.name != truncate_from:
            (folder / truncate_from).unlink()
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content or b"")
    return {}


def _patch_digital_range(header: bytearray, label: str) -> None:
    """Make ``label``'s digital maximum equal its digital minimum (a corrupt header whose
    scaling factor is undefined)."""
    ns = int(header[252:256].decode().strip())
    labels = [header[256 + 16 * i: 256 + 16 * (i + 1)].decode().strip() for i in range(ns)]
    i = labels.index(label)
    dmin = 256 + ns * (16 + 80 + 8 + 8 + 8)
    dmax = dmin + ns * 8
    header[dmax + 8 * i: dmax + 8 * (i + 1)] = header[dmin + 8 * i: dmin + 8 * (i + 1)]


def raw_file(name: str, content: bytes | str | None = None) -> Builder:
    """A file with the given bytes/text (an empty file, text named ``.edf``)."""
    return Builder(_raw_file, name=name, content=content)


def damaged_copy(of: str, name: str | None = None, fraction: float = 1.0,
                 zero_digital_range: str | None = None) -> Builder:
    """The case's file ``of`` cut to ``fraction`` of its bytes and/or with the digital
    range of channel ``zero_digital_range`` collapsed; replaces ``of`` (or is ``name``)."""
    return Builder(_raw_file, name=name or of, truncate_from=of, fraction=fraction,
                   zero_digital_range=zero_digital_range)


def _fif(folder: Path, night_name: str, name: str, defects: Sequence[Defect]) -> dict:
    import mne

    nt = night(night_name)
    sig = {k: v.copy() for k, v in nt.signals.items()}
    for d in defects:
        d(sig, nt)
    info = mne.create_info([FPZ, PZ, EOG, EMG], FS, ["eeg", "eeg", "eog", "emg"])
    raw = mne.io.RawArray(np.vstack([sig[c] for c in (FPZ, PZ, EOG, EMG)]) * 1e-6, info,
                          verbose="error")
    raw.set_meas_date(nt.start.replace(tzinfo=dt.timezone.utc))
    raw.save(folder / name, fmt="single", overwrite=True, verbose="error")
    return {"truth": {night_name: codes_text(nt.codes)}}


def fif(night_name: str, name: str, defects: Sequence[Defect] = ()) -> Builder:
    """An MNE ``.fif`` recording (float samples, so it can hold NaNs; Python API input)."""
    return Builder(_fif, night_name=night_name, name=name, defects=tuple(defects))


def _folder(folder: Path, name: str) -> dict:
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / ".keep").write_text("")
    return {}


def folder_(name: str) -> Builder:
    """An (almost) empty folder."""
    return Builder(_folder, name=name)


def _combine(folder: Path, parts: Sequence[tuple[str, Builder]]) -> dict:
    facts: dict[str, Any] = {"truth": {}}
    for sub, b in parts:
        got = b(folder / sub if sub else folder)
        facts["truth"].update(got.pop("truth", {}))
        facts.update(got)
    return facts


def combine(*parts: Builder | tuple[str, Builder]) -> Builder:
    """Several builders into one folder; a ``(subfolder, builder)`` pair writes into a
    subfolder. Facts are merged (truth stems together)."""
    items = tuple(p if isinstance(p, tuple) else ("", p) for p in parts)
    return Builder(_combine, parts=items)
