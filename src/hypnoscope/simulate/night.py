"""Whole-night simulation driven by a hypnogram: :func:`simulate_night`."""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import TYPE_CHECKING

import numpy as np

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.simulate.physiology import NightSignals, generate_night
from hypnoscope.simulate.traits import SubjectTraits

if TYPE_CHECKING:  # pragma: no cover
    import mne

MODES = ("sleep-edf-sc", "telemetry")

#: Sleep-EDF channel labels of the four simulated physiological signals.
EEG_FPZ, EEG_PZ, EOG_H, EMG_SM = "EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"
#: Extra channels of Sleep-EDF cassette files (1 Hz in the files).
RESP, TEMP, MARKER = "Resp oro-nasal", "Temp rectal", "Event marker"

#: Default recording start when the hypnogram has none (a cassette-era evening).
DEFAULT_START = _dt.datetime(1989, 4, 24, 22, 30, 0)

#: Default strength of the scorer-disagreement (latent physiological state) model.
DEFAULT_DIFFICULTY = 1.0

#: Maximum shift (s) of a stage switch around its epoch boundary; with the ~8 s blend the
#: scored stage keeps the majority of every epoch, even of one-epoch runs.
BOUNDARY_JITTER_SEC = 5


def _as_hypnogram(hypnogram) -> Hypnogram:
    if isinstance(hypnogram, Hypnogram):
        hyp = hypnogram
    elif isinstance(hypnogram, (str, os.PathLike)):
        hyp = read_hypnogram(hypnogram)
    else:
        hyp = Hypnogram(np.asarray(hypnogram))
    if hyp.n_classes != 5:
        raise ValueError("simulate_night needs a 5-class hypnogram (W, N1, N2, N3, R), "
                         f"got {hyp.n_classes} classes")
    if hyp.n_epochs == 0:
        raise ValueError("cannot simulate an empty hypnogram")
    if abs(hyp.epoch_sec - round(hyp.epoch_sec)) > 1e-9:
        raise ValueError(f"epoch length must be a whole number of seconds, got {hyp.epoch_sec}")
    return hyp


def stage_seconds(hyp: Hypnogram, rng: np.random.Generator,
                  jitter_sec: int = BOUNDARY_JITTER_SEC) -> tuple[np.ndarray, np.ndarray]:
    """Per-second physiological stage with stage switches jittered around the boundaries.

    Unscored epochs (and time before the first epoch) are simulated as wake.

    Returns
    -------
    stages : ndarray of int8 (n_seconds,)
    unscored : ndarray of bool (n_seconds,)
    """
    ep = int(round(hyp.epoch_sec))
    lead = int(round(hyp.onset_sec))
    codes = hyp.codes
    per_sec = np.repeat(np.where(codes < 0, 0, codes), ep)
    unscored = np.concatenate([np.zeros(lead, bool), np.repeat(codes < 0, ep)])
    stages = np.concatenate([np.zeros(lead, dtype=np.int64), per_sec])
    change = np.flatnonzero(np.diff(stages)) + 1
    if jitter_sec > 0 and change.size:
        shifts = rng.integers(-jitter_sec, jitter_sec + 1, change.size)
        for c, s in zip(change, shifts, strict=True):
            if s > 0:  # previous stage lasts longer
                stages[c:c + s] = stages[c - 1]
            elif s < 0:  # next stage starts earlier
                stages[c + s:c] = stages[c]
    return stages.astype(np.int8), unscored


def simulate_signals(hypnogram, seed: int = 0, subject: SubjectTraits | None = None,
                     sfreq: float = 100.0,
                     difficulty: float = DEFAULT_DIFFICULTY, keep_sources: bool = False,
                     ) -> tuple[NightSignals, Hypnogram, SubjectTraits]:
    """Simulate the signals of one night (µV arrays) without building an MNE object.

    See :func:`simulate_night` for the parameters.
    """
    hyp = _as_hypnogram(hypnogram)
    if sfreq < 60 or abs(sfreq - round(sfreq)) > 1e-9:
        raise ValueError(f"sfreq must be a whole number of Hz >= 60, got {sfreq}")
    if not np.isfinite(difficulty) or difficulty < 0:
        raise ValueError(f"difficulty must be a finite number >= 0, got "
                         f"{difficulty}")
    ss = np.random.SeedSequence(int(seed))
    trait_ss, stage_ss, sig_ss, latent_ss = ss.spawn(4)
    traits = subject if subject is not None else SubjectTraits.sample(
        np.random.default_rng(trait_ss))
    stages, unscored = stage_seconds(hyp, np.random.default_rng(stage_ss))
    sig = generate_night(stages, float(sfreq), traits, np.random.default_rng(sig_ss),
                         unscored_sec=unscored, difficulty=float(difficulty),
                         latent_rng=np.random.default_rng(latent_ss),
                         keep_sources=keep_sources)
    return sig, hyp, traits


def simulate_night(hypnogram, seed: int = 0, mode: str = "sleep-edf-sc",
                   subject: SubjectTraits | None = None, sfreq: float = 100.0,
                   start_time: _dt.datetime | None = None,
                   difficulty: float = DEFAULT_DIFFICULTY, montage: str = "sleep-edf",
                   ) -> mne.io.RawArray:
    """Simulate a whole-night PSG that follows a hypnogram.

    Parameters
    ----------
    hypnogram : Hypnogram, path or array of stage codes
        The night to reproduce (unscored epochs are simulated as wake with movement).
    seed : int
        Seed of every random choice (same seed and inputs -> identical signals).
    mode : {"sleep-edf-sc", "telemetry"}
        ``"sleep-edf-sc"`` adds the cassette's 1 Hz channels (respiration, temperature,
        event marker) and :func:`write_sleepedf_pair` then stores the EMG as a 1 Hz RMS
        envelope; ``"telemetry"`` keeps the four 100 Hz channels (EMG as a waveform).
    subject : SubjectTraits or None
        The sleeper; drawn from ``seed`` when None.
    sfreq : float
        Sampling rate (Hz).
    start_time : datetime or None
        Recording start (``meas_date``); defaults to the hypnogram's, else 1989-04-24 22:30.
    difficulty : float
        Realistic-difficulty knob. It scales the scorer-disagreement model
        (:mod:`hypnoscope.simulate.latent`: the signals follow a latent physiological
        state that differs from the scored stage on the epochs human scorers disagree
        on, N1 most, epochs next to stage changes) and the epoch-to-epoch variability of
        the background spectrum and EMG tone. 0 = the signals follow the hypnogram (the
        behaviour before this model); 1 = the default, calibrated to published
        inter-scorer agreement. The hypnogram itself is always reproduced exactly in the
        annotations; ``info["description"]`` lists the latent stage of every epoch
        (``latent_stages``, one digit per epoch).
    montage : {"sleep-edf", "aasm", "shhs"}
        Channel set and derivations (:data:`hypnoscope.simulate.montages.MONTAGES`):
        ``"aasm"`` gives F4-M1, C4-M1, O2-M1, E1-M2, E2-M2 and Chin1-Chin2, ``"shhs"``
        EEG(sec), EEG, EOG(L), EOG(R) and EMG (both with an EMG waveform, so only in
        ``"telemetry"`` mode; ``sfreq`` as given, e.g. the montage's own 256/125 Hz).

    Returns
    -------
    mne.io.RawArray
        Channels ``EEG Fpz-Cz``, ``EEG Pz-Oz`` (eeg), ``EOG horizontal`` (eog),
        ``EMG submental`` (emg, a waveform) in volts, plus in cassette mode
        ``Resp oro-nasal``, ``Temp rectal``, ``Event marker`` (misc); the hypnogram as
        Sleep-EDF annotations; ``info["description"]`` holds the mode, seed and traits.
    """
    import mne

    from hypnoscope.simulate.montages import compose_montage, get_montage

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    mont = get_montage(montage)
    if mont.name != "sleep-edf" and mode != "telemetry":
        raise ValueError(f"montage {montage!r} has an EMG waveform: simulate it in "
                         f"'telemetry' mode, not {mode!r}")
    sig, hyp, traits = simulate_signals(hypnogram, seed=seed, subject=subject, sfreq=sfreq,
                                        difficulty=difficulty,
                                        keep_sources=mont.name != "sleep-edf")
    if mont.name == "sleep-edf":
        chans = [EEG_FPZ, EEG_PZ, EOG_H, EMG_SM]
        types = ["eeg", "eeg", "eog", "emg"]
        data = [sig.fpz, sig.pz, sig.eog, sig.emg]
    else:  # derivations of the montage, with their own noise (a separate stream)
        chans, types, arr_uv = compose_montage(
            sig, traits, mont, np.random.default_rng([int(seed), 11]))
        data = list(arr_uv)
    if mode == "sleep-edf-sc":
        rng = np.random.default_rng([int(seed), 7])
        n = len(sig.fpz)
        t = np.arange(n) / sfreq
        br = rng.uniform(0.22, 0.3)
        resp = np.sin(2 * np.pi * br * t + 0.3 * np.sin(2 * np.pi * 0.01 * t)) * 300.0
        temp = 37.0 - 0.4 * np.sin(np.pi * np.clip(t / max(t[-1], 1.0), 0, 1))
        chans += [RESP, TEMP, MARKER]
        types += ["misc", "misc", "misc"]
        # misc channels are stored as-is; scale µV-like values like the others
        data += [resp, temp * 1e6, np.zeros(n)]
    arr = np.empty((len(data), len(sig.fpz)))
    for i, x in enumerate(data):
        np.multiply(x, 1e-6, out=arr[i])
    info = mne.create_info(chans, sfreq, types)
    start = start_time or hyp.start_time or DEFAULT_START
    meas = start.replace(tzinfo=_dt.timezone.utc) if start.tzinfo is None else start
    desc = {"generator": "hypnoscope.simulate", "mode": mode, "montage": mont.name,
            "seed": int(seed),
            "difficulty": float(difficulty), "traits": traits.to_dict(),
            "latent_stages": "".join(str(int(x)) for x in sig.latent_stage)}
    info["description"] = json.dumps(desc)
    raw = mne.io.RawArray(arr, info, verbose="error")
    raw.set_meas_date(meas)
    raw.set_annotations(hyp.to_mne_annotations(orig_time=meas))
    return raw
