"""Writing simulated nights as file pairs of a file layout, and whole simulated datasets.

A *layout* (:data:`LAYOUTS`) is how a cohort stores its nights on disk: file naming,
annotation format and channel set (names and sampling rates). ``"sleep-edf"``:
``SC4ssNE0-PSG.edf`` + ``SC4ssNE0-Hypnogram.edf`` (EDF+ annotations), channels ``EEG
Fpz-Cz``, ``EEG Pz-Oz``, ``EOG horizontal``, ``EMG submental`` (:func:`write_sleepedf_pair`).
``"shhs"``: ``shhs1-NNNNNN.edf`` + ``shhs1-NNNNNN-nsrr.xml`` (NSRR XML), the SHHS channel
labels and rates (:func:`write_shhs_pair`). The layout does not change the physiology;
the *montage* (:data:`hypnoscope.simulate.montages.MONTAGES`: ``sleep-edf``, ``aasm``,
``shhs``) does: channel set, rate and derivations. Each layout has a default montage
(``shhs`` for the SHHS layout); with another montage than ``sleep-edf`` the Sleep-EDF
layout names its files like Sleep-EDF telemetry recordings (``ST7ssNJ0-PSG.edf``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.io.nsrr_xml import write_nsrr_xml
from hypnoscope.simulate.architecture import SleepArchitectureModel, sample_hypnogram
from hypnoscope.simulate.night import (
    DEFAULT_DIFFICULTY,
    DEFAULT_START,
    EEG_FPZ,
    EEG_PZ,
    EMG_SM,
    EOG_H,
    MARKER,
    MODES,
    RESP,
    TEMP,
    simulate_night,
)
from hypnoscope.simulate.traits import SubjectTraits
from hypnoscope.utils.arrays import epoch_view
from hypnoscope.utils.files import atomic_path, write_json_atomic
from hypnoscope.utils.runtime import progress

if TYPE_CHECKING:  # pragma: no cover
    import mne

_SC_RE = re.compile(r"SC4(\d\d)(\d)")


def _mode_of(raw) -> str:
    try:
        return json.loads(raw.info["description"] or "{}").get("mode", "telemetry")
    except (TypeError, ValueError):
        return "telemetry"


def emg_envelope(emg_uv: np.ndarray, sfreq: float) -> np.ndarray:
    """1 Hz RMS envelope (µV) of an EMG waveform, like the Sleep-EDF cassette channel."""
    x = epoch_view(np.asarray(emg_uv, dtype=float), int(round(sfreq)))  # 1-s blocks
    return np.sqrt(np.mean((x - x.mean(axis=1, keepdims=True)) ** 2, axis=1))


def _signal(edfio, data: np.ndarray, fs: float, label: str, dim: str, transducer: str = "",
            prefilter: str = ""):
    lim = float(np.max(np.abs(data))) if data.size else 1.0
    lim = max(lim * 1.05, 1.0)
    lo, hi = (-lim, lim) if np.min(data) < 0 else (min(0.0, float(np.min(data))), lim)
    if hi - lo < 1e-6:
        hi = lo + 1.0
    return edfio.EdfSignal(np.asarray(data, dtype=np.float64), sampling_frequency=fs,
                           label=label, physical_dimension=dim, physical_range=(lo, hi),
                           transducer_type=transducer, prefiltering=prefilter)


def _prepare_output(raw: mne.io.BaseRaw, hypnogram: Hypnogram | None, out_dir,
                    record_id: str) -> tuple[Path, Hypnogram]:
    """Check ``record_id``, create ``out_dir`` and return it with the hypnogram to write
    (the raw's annotations when ``hypnogram`` is None)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", record_id):
        raise ValueError(f"record_id {record_id!r} must contain only letters, digits, _ . -")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if hypnogram is None:
        hypnogram = Hypnogram.from_mne_annotations(raw.annotations)
    return out_dir, hypnogram


def write_sleepedf_pair(raw: mne.io.BaseRaw, hypnogram: Hypnogram | None, out_dir,
                        record_id: str, emg_envelope_1hz: bool | None = None,
                        ) -> tuple[Path, Path]:
    """Write ``<record_id>-PSG.edf`` and ``<record_id>-Hypnogram.edf`` atomically.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        A simulated night (:func:`simulate_night`); channels in volts.
    hypnogram : Hypnogram or None
        Written with :meth:`Hypnogram.to_edf`; None rebuilds it from the raw's annotations.
    out_dir : path
        Output folder (created).
    record_id : str
        File stem, e.g. ``SC4012E0``.
    emg_envelope_1hz : bool or None
        Store ``EMG submental`` as a 1 Hz RMS envelope (cassette layout). None: yes for
        rasters simulated in ``sleep-edf-sc`` mode.

    Returns
    -------
    (psg_path, hypnogram_path)
    """
    import edfio

    out_dir, hypnogram = _prepare_output(raw, hypnogram, out_dir, record_id)
    envelope = (_mode_of(raw) == "sleep-edf-sc") if emg_envelope_1hz is None \
        else emg_envelope_1hz
    fs = float(raw.info["sfreq"])
    start = raw.info["meas_date"] or DEFAULT_START.replace(tzinfo=_dt.timezone.utc)
    signals = []
    for ch, ctype in zip(raw.ch_names, raw.get_channel_types(), strict=True):
        x = raw.get_data(picks=[ch])[0]
        if ch == EMG_SM and envelope:
            signals.append(_signal(edfio, emg_envelope(x * 1e6, fs), 1.0, ch, "uV",
                                   "Ag-AgCl electrodes", "HP:16Hz Rect LP:0.7Hz"))
        elif ch == RESP:
            signals.append(_signal(edfio, x[::int(fs)] * 1e6, 1.0, ch, "", "Oral-nasal thermistor"))
        elif ch == TEMP:
            signals.append(_signal(edfio, x[::int(fs)], 1.0, ch, "DegC", "Rectal thermistor"))
        elif ch == MARKER:
            signals.append(_signal(edfio, x[::int(fs)], 1.0, ch, ""))
        elif ctype in ("eeg", "eog", "emg"):
            signals.append(_signal(edfio, x * 1e6, fs, ch, "uV", "Ag-AgCl electrodes",
                                   "HP:0.5Hz LP:100Hz" if ctype != "emg" else ""))
        else:
            signals.append(_signal(edfio, x, fs, ch, ""))
    n_rec = int(raw.n_times // fs)
    for s in signals:  # whole data records of 1 s
        s_n = int(n_rec * s.sampling_frequency)
        if len(s.data) != s_n:
            s.update_data(s.data[:s_n])
    edf = edfio.Edf(signals, starttime=start.time().replace(microsecond=0, tzinfo=None),
                    patient=edfio.Patient(name=record_id),
                    recording=edfio.Recording(startdate=start.date()),
                    data_record_duration=1.0)
    psg_path = out_dir / f"{record_id}-PSG.edf"
    with atomic_path(psg_path) as tmp:
        edf.write(tmp)
    hyp = hypnogram if hypnogram.start_time is not None else hypnogram.copy(
        start_time=start.replace(tzinfo=None))
    hyp_path = hyp.to_edf(out_dir / f"{record_id}-Hypnogram.edf", patient=record_id)
    return psg_path, hyp_path


#: SHHS channels as written by :func:`write_shhs_pair`, in the order of the SHHS-1 EDFs
#: (other SHHS channels, ECG, respiration, position ..., are left out; ``SaO2`` stays as
#: one channel that is none of EEG/EOG/EMG): label -> (sampling rate Hz, unit, source).
#: ``EEG(sec)`` (C3-A2) carries the simulator's first EEG derivation (its Fpz-Cz-like
#: signal) and ``EEG`` (C4-A1) its second (Pz-Oz-like): a central-montage physiology is
#: not simulated, only the SHHS names, rates and file form.
SHHS_CHANNELS: dict[str, tuple[float, str, str]] = {
    "SaO2": (1.0, "%", "spo2"),
    "EEG(sec)": (125.0, "uV", EEG_FPZ),
    "EMG": (125.0, "uV", EMG_SM),
    "EOG(L)": (50.0, "uV", EOG_H),
    "EOG(R)": (50.0, "uV", "-" + EOG_H),
    "EEG": (125.0, "uV", EEG_PZ),
}
#: Rate the SHHS layout simulates at (the EEG/EMG rate; the EOG is resampled to 50 Hz).
SHHS_SFREQ = 125.0
#: First SHHS-style participant number (SHHS ids start at 200001).
SHHS_FIRST_ID = 200001


def _to_rate(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    from fractions import Fraction

    from scipy.signal import resample_poly

    if np.isclose(fs_in, fs_out):
        return x
    frac = Fraction(fs_out / fs_in).limit_denominator(1000)
    return resample_poly(x, frac.numerator, frac.denominator)


def write_shhs_pair(raw: mne.io.BaseRaw, hypnogram: Hypnogram | None, out_dir,
                    record_id: str) -> tuple[Path, Path]:
    """Write ``<record_id>.edf`` with the SHHS channel set (:data:`SHHS_CHANNELS`: EEG
    125 Hz, EOG 50 Hz, EMG 125 Hz, SaO2 1 Hz) and ``<record_id>-nsrr.xml`` (NSRR XML,
    :func:`hypnoscope.io.nsrr_xml.write_nsrr_xml`), atomically.

    ``raw`` is a simulated night (:func:`simulate_night`, best at :data:`SHHS_SFREQ`).
    A night of the ``shhs`` montage has these channels and they are written as they are;
    for one of the ``sleep-edf`` montage ``EOG(R)`` is the mirror image of ``EOG(L)``
    (horizontal eye movements move the two electrodes in opposite directions) plus
    independent noise. The EDF header carries
    SHHS's de-identified start date (1985-01-01) and the simulated clock time; the XML
    has no date, as NSRR's.
    """
    import zlib

    import edfio

    out_dir, hypnogram = _prepare_output(raw, hypnogram, out_dir, record_id)
    fs = float(raw.info["sfreq"])
    n_rec = int(raw.n_times // fs)
    rng = np.random.default_rng(zlib.crc32(record_id.encode()))
    signals = []
    for label, (rate, unit, source) in SHHS_CHANNELS.items():
        if source == "spo2":
            x = np.clip(96.0 + np.cumsum(rng.normal(0, 0.05, n_rec)) * 0.1, 85.0, 100.0)
            signals.append(_signal(edfio, x, rate, label, unit, "Pulse oximeter"))
            continue
        if label in raw.ch_names:  # the shhs montage: its own derivation
            source = label
        x = raw.get_data(picks=[source.lstrip("-")])[0] * 1e6
        if source.startswith("-"):
            x = -x + rng.normal(0.0, 2.0, x.size)
        x = _to_rate(x, fs, rate)[: int(n_rec * rate)]
        signals.append(_signal(edfio, x, rate, label, unit, "Ag-AgCl electrodes",
                               "HP:0.15Hz LP:100Hz" if label != "EMG" else ""))
    start = raw.info["meas_date"] or DEFAULT_START.replace(tzinfo=_dt.timezone.utc)
    edf = edfio.Edf(signals, starttime=start.time().replace(microsecond=0, tzinfo=None),
                    patient=edfio.Patient(name=record_id),
                    recording=edfio.Recording(startdate=_dt.date(1985, 1, 1)),
                    data_record_duration=1.0)
    psg_path = out_dir / f"{record_id}.edf"
    with atomic_path(psg_path) as tmp:
        edf.write(tmp)
    xml_path = write_nsrr_xml(hypnogram.copy(start_time=None), out_dir / f"{record_id}-nsrr.xml",
                              recording_sec=float(n_rec))
    return psg_path, xml_path


#: File layouts of the simulator (see the module docstring): name -> the ``simulate_night``
#: mode and rate it needs (None: the caller's), the record-id rule (subject index,
#: night index -> file stem) and the writer.
LAYOUTS: dict[str, dict] = {
    "sleep-edf": {"mode": None, "sfreq": 100.0, "montage": "sleep-edf",
                  "record_id": lambda si, ni: (f"SC4{si:02d}{ni + 1}E0" if si < 100
                                               else f"SIM{si:04d}N{ni + 1}"),
                  # other montages: named like Sleep-EDF telemetry recordings
                  "record_id_telemetry": lambda si, ni: (f"ST7{si:02d}{ni + 1}J0" if si < 100
                                                         else f"SIM{si:04d}N{ni + 1}"),
                  "write": write_sleepedf_pair},
    "shhs": {"mode": "telemetry", "sfreq": SHHS_SFREQ, "montage": "shhs",
             "record_id": lambda si, ni: f"shhs{ni + 1}-{SHHS_FIRST_ID + si}",
             "write": write_shhs_pair},
}


def layout_settings(layout: str, montage: str | None = None,
                    mode: str | None = None) -> dict:
    """Mode, rate, montage and record-id rule of a layout with a montage (default: the
    layout's own). A montage other than ``sleep-edf`` has an EMG waveform, so it is
    simulated in ``telemetry`` mode at the montage's rate (``mode="sleep-edf-sc"`` is
    then an error)."""
    from hypnoscope.simulate.montages import get_montage

    spec = dict(get_layout(layout))
    mont = get_montage(montage or spec["montage"])
    spec["montage"] = mont.name
    if mont.name != "sleep-edf":
        if mode not in (None, "telemetry"):
            raise ValueError(f"montage {mont.name!r} has an EMG waveform: it is simulated "
                             f"in telemetry mode, not {mode!r}")
        spec["mode"], spec["sfreq"] = "telemetry", mont.sfreq
        spec["record_id"] = spec.get("record_id_telemetry", spec["record_id"])
    spec["mode"] = spec["mode"] or mode or "sleep-edf-sc"
    return spec


def get_layout(name: str) -> dict:
    """The :data:`LAYOUTS` entry of ``name``; a ``ValueError`` lists them otherwise."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown file layout {name!r}; expected one of {sorted(LAYOUTS)}")
    return LAYOUTS[name]


def _group_by_subject(paths: list[Path]) -> list[list[Path]]:
    """Group hypnogram files by Sleep-EDF subject (SC4ssN...); others one per subject."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for p in sorted(paths):
        m = _SC_RE.search(p.name)
        groups[m.group(1) if m else p.name].append(p)
    return [sorted(v) for _, v in sorted(groups.items())]


def simulate_dataset(out_dir, n_subjects: int, seed: int = 0, hypnograms=None,
                     mode: str = "sleep-edf-sc", nights_per_subject: int = 1,
                     duration_h: float = 8.5, crop_wake_min: float | None = 60.0,
                     model: SleepArchitectureModel | None = None,
                     difficulty: float = DEFAULT_DIFFICULTY,
                     layout: str = "sleep-edf", montage: str | None = None) -> list[dict]:
    """Simulate many subjects into ``out_dir`` as file pairs of a layout.

    Parameters
    ----------
    out_dir : path
        Output folder; receives ``SC4ssNE0-PSG.edf``/``-Hypnogram.edf`` pairs and
        ``simulation.json`` (traits, sources and settings of every night).
    n_subjects : int
        Number of simulated subjects, each with their own :class:`SubjectTraits`.
    seed : int
        Master seed.
    hypnograms : folder, list of paths/Hypnograms, or None
        Real hypnograms to drive the nights. Files named like Sleep-EDF (``SC4ssN``) are
        grouped by subject, so a subject's two real nights become one simulated subject's
        two nights. None: nights are sampled from ``model``.
    mode : {"sleep-edf-sc", "telemetry"}
        See :func:`simulate_night`.
    nights_per_subject : {1, 2}
        Nights per subject when sampling from the model (with given hypnograms, a
        subject gets as many nights as it has files, at most two).
    duration_h : float
        Length of sampled nights (chain hours, plus 30 min of final wake).
    crop_wake_min : float or None
        Crop given hypnograms to this many minutes of wake around the sleep period
        (Sleep-EDF files span ~22 h); None keeps them whole.
    model : SleepArchitectureModel or None
        Architecture model for sampled nights (default: fitted to Sleep-EDF).
    difficulty : float
        Strength of the scorer-disagreement model (see :func:`simulate_night`); each
        record of ``simulation.json`` lists the latent stage of every epoch.
    layout : {"sleep-edf", "shhs"}
        File layout (:data:`LAYOUTS`): ``"shhs"`` writes ``shhs1-NNNNNN.edf`` +
        ``-nsrr.xml`` (a second night is the participant's ``shhs2-NNNNNN`` visit) with
        the SHHS channels, simulated at 125 Hz in ``telemetry`` mode (``mode`` is not
        used).
    montage : {"sleep-edf", "aasm", "shhs"} or None
        Channel set and derivations (:mod:`hypnoscope.simulate.montages`); None: the
        layout's own (``shhs`` for the SHHS layout). ``aasm`` and ``shhs`` are simulated
        in ``telemetry`` mode at 256 / 125 Hz; in the Sleep-EDF layout their files are
        named ``ST7ssNJ0``.

    Returns
    -------
    list of dict
        One entry per night (record id, subject, night, files, source, seed).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    spec = layout_settings(layout, montage,
                           None if montage in (None, "sleep-edf") else "telemetry")
    mode = mode if spec["montage"] == "sleep-edf" and layout == "sleep-edf" else spec["mode"]
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be >= 1, got {n_subjects}")
    if nights_per_subject not in (1, 2):
        raise ValueError(f"nights_per_subject must be 1 or 2, got {nights_per_subject}")
    out_dir = Path(out_dir)
    root = np.random.SeedSequence(int(seed))
    subj_seqs = root.spawn(n_subjects)
    plan, model = _night_plan(hypnograms, n_subjects, nights_per_subject, model)
    records = []
    traits_cache: dict[int, SubjectTraits] = {}
    for si, ni, h, source in progress(plan, desc="simulating nights", unit="night"):
        s_seed = subj_seqs[si]
        t_rng, n1_rng, n2_rng, h_rng = (np.random.default_rng(x) for x in s_seed.spawn(4))
        if si not in traits_cache:
            traits_cache[si] = SubjectTraits.sample(t_rng)
        traits = traits_cache[si] if ni == 0 else traits_cache[si].second_night(n1_rng)
        start = DEFAULT_START + _dt.timedelta(days=2 * si + ni)
        if h is None:
            hyp = sample_hypnogram(model, seed=h_rng if ni == 0 else n2_rng,
                                   duration_h=duration_h, start_time=start)
        else:
            hyp = read_hypnogram(h)
            if crop_wake_min is not None:
                hyp = hyp.crop_to_sleep(crop_wake_min)
            if hyp.start_time is None:
                hyp = hyp.copy(start_time=start)
        night_seed = int(s_seed.generate_state(1)[0]) + ni
        raw = simulate_night(hyp, seed=night_seed, mode=mode, subject=traits,
                             difficulty=difficulty, sfreq=spec["sfreq"],
                             montage=spec["montage"])
        latent = json.loads(raw.info["description"])["latent_stages"]
        record_id = spec["record_id"](si, ni)
        psg, hyp_path = spec["write"](raw, hyp, out_dir, record_id)
        records.append({"record_id": record_id, "subject": si, "night": ni + 1,
                         "psg": psg.name, "hypnogram": hyp_path.name, "source": source,
                         "seed": night_seed, "n_epochs": hyp.n_epochs,
                         "traits": traits.to_dict(), "latent_stages": latent})
    write_json_atomic(out_dir / "simulation.json",
                      {"generator": "hypnoscope.simulate.simulate_dataset", "seed": int(seed),
                       "n_subjects": n_subjects, "mode": mode, "layout": layout,
                       "montage": spec["montage"],
                       "difficulty": float(difficulty),
                       "crop_wake_min": crop_wake_min, "records": records})
    return records


def _night_plan(hypnograms, n_subjects: int, nights_per_subject: int,
                model: SleepArchitectureModel | None,
                ) -> tuple[list[tuple[int, int, object, str]], SleepArchitectureModel | None]:
    """The nights of :func:`simulate_dataset`: ``(subject, night, hypnogram, source)``
    each (hypnogram None: sampled from the model), and the model (the default one when
    nights are sampled and none was given)."""
    plan: list[tuple[int, int, object, str]] = []
    if hypnograms is None:
        model = model or SleepArchitectureModel.default()
        for si in range(n_subjects):
            for ni in range(nights_per_subject):
                plan.append((si, ni, None, "SleepArchitectureModel"))
        return plan, model
    if isinstance(hypnograms, (str, os.PathLike)):
        folder = Path(hypnograms)
        if not folder.is_dir():
            raise FileNotFoundError(f"hypnogram folder not found: {folder}")
        files = sorted(folder.glob("*Hypnogram*.edf")) or sorted(
            p for p in folder.iterdir() if p.suffix.lower() in (".edf", ".tsv", ".csv",
                                                                ".txt", ".xml"))
        if not files:
            raise ValueError(f"{folder}: no hypnogram files (*Hypnogram*.edf, .tsv, "
                             ".csv, .txt, NSRR .xml) found")
        groups = _group_by_subject(files)
    else:
        groups = [[h] for h in hypnograms]
    if len(groups) < n_subjects:
        raise ValueError(f"{n_subjects} subjects requested but only {len(groups)} "
                         "subjects' hypnograms were given")
    for si, grp in enumerate(groups[:n_subjects]):
        for ni, h in enumerate(grp[:2]):
            plan.append((si, ni, h, str(h) if not isinstance(h, Hypnogram) else "given"))
    return plan, model


def reuse_or_simulate_dataset(out_dir, n_subjects: int, seed: int = 0, hypnograms=None,
                              difficulty: float = DEFAULT_DIFFICULTY,
                              **kwargs) -> dict:
    """:func:`simulate_dataset` into ``out_dir`` unless its ``simulation.json`` already
    describes the same dataset (subjects, seed, difficulty, written by the current
    simulator: every record lists its latent stages); return that description.

    For benchmarks that simulate once and rerun many times. A freshly simulated dataset's
    description also holds ``simulation_seconds`` (not written to the file).
    """
    import time

    meta_file = Path(out_dir) / "simulation.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        if (meta.get("n_subjects") == n_subjects and meta.get("seed") == seed
                and meta.get("difficulty") == float(difficulty)
                and all("latent_stages" in r for r in meta.get("records", []))):
            return meta
    t0 = time.perf_counter()
    simulate_dataset(out_dir, n_subjects=n_subjects, seed=seed, hypnograms=hypnograms,
                     difficulty=difficulty, **kwargs)
    meta = json.loads(meta_file.read_text())
    meta["simulation_seconds"] = time.perf_counter() - t0
    return meta
