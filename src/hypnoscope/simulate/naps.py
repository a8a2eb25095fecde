"""Simulated daytime nap studies (MSLT, MWT) with their truth: :func:`simulate_nap_day`.

A day is four or five naps two hours apart (the MSLT, lights off at 09:00, 11:00, ...
the morning after a simulated night) or four 40-minute trials of the MWT, each written
as a recording of its own in a simulator file layout (:data:`~hypnoscope.simulate.LAYOUTS`)
with its true hypnogram beside it and ``Lights off`` / ``Lights on`` annotations in the
PSG file. The signals come from the whole-night simulator (:func:`~hypnoscope.simulate.
simulate_night`) driven by a nap hypnogram built here (:func:`sample_nap`); one subject
(:class:`~hypnoscope.simulate.SubjectTraits`) sleeps all naps of a day; the chance that a
recording has bad-signal segments is scaled to the nap's length (:data:`NIGHT_HOURS`), so
they are as frequent per hour as in simulated nights. ``truth.json`` and
``truth.csv`` state every nap's lights-off/lights-on (clock time and seconds from the
recording start), its sleep latency, REM latency, sleep-onset REM period (SOREMP) and, for
the MWT, the latency to unequivocal sleep; ``truth.json`` also holds each nap's
``latent_stages``: the stage the signals of every epoch from lights off to lights on mostly
follow (:mod:`hypnoscope.simulate.latent`; the scored stage at ``difficulty=0``).

Nap rules (AASM; Littner et al. 2005, Sleep 28(1):113-121)
-----------------------------------------------------------
The truth follows the rules of :mod:`hypnoscope.evaluation.naps` (which the tests check
against it):

- Sleep latency: lights off to the start of the first epoch of any sleep stage (None
  without sleep; ``latency_for_mean_min`` then holds the protocol's 20 or 40 min).
- MSLT: the nap runs 15 min from after the first sleep epoch (its last epoch starts 15
  min after sleep onset), or 20 min without sleep; REM latency from sleep onset to the
  first REM epoch; a SOREMP is REM within 15 min of sleep onset.
- MWT: the trial ends at unequivocal sleep (three consecutive N1 epochs or one epoch of
  N2, N3 or REM; its latency is the start of that N1 run or epoch; ``N1 N1 N2`` dates
  it at N2) or after 40 min.
- Lights on is the end of the nap (the PSG goes on in wake for at least a minute).

Profiles (:data:`PROFILES`): drawn distributions, approximate on purpose
------------------------------------------------------------------------
- ``healthy``: MSLT sleep latency log-normal with a median of 11 min (normal adults:
  mean 10.4 +- 4.3 min on the 4-nap and 11.6 +- 5.2 min on the 5-nap MSLT, Arand et al.
  2005, Sleep 28(1):123-144), SOREMP in 5 % of naps (an approximation: SOREMPs occur
  in community adults without narcolepsy, Mignot et al. 2006, Brain 129:1609-1623); MWT
  latency median 32 min (40-min MWT in normal subjects: 30.4 +- 11.2 min, Doghramji et
  al. 1997, Electroencephalogr Clin Neurophysiol 103:554-562), so about a third of
  trials reach 40 min awake.
- ``narcolepsy-like``: MSLT sleep latency median 3 min (narcolepsy: 3.1 +- 2.9 min,
  Arand et al. 2005; Littner et al. 2005), SOREMP in 65 % of naps (two or more SOREMPs
  in most narcolepsy patients, Aldrich et al. 1997, Sleep 20(8):620-629); MWT latency
  median 8 min (below 8 min is abnormal on the 40-min MWT, Littner et al. 2005).

Each day draws its own median (the profile's times a log-normal factor, sd 0.25) and each
nap its latency around it (log-normal, sd :attr:`NapProfile.latency_sd`), rounded to whole
30-s epochs and at least one epoch. REM latency of a SOREMP nap: log-normal around 4 min,
0 to 14 min. After sleep onset the stages follow the first-hour transitions of the
Sleep-EDF architecture model (:meth:`~hypnoscope.simulate.SleepArchitectureModel.default`),
with REM allowed only from the drawn REM latency on.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.simulate.architecture import SleepArchitectureModel
from hypnoscope.simulate.night import DEFAULT_DIFFICULTY, DEFAULT_START, simulate_night
from hypnoscope.simulate.traits import SubjectTraits
from hypnoscope.stages import N1, N2, N3, R, W
from hypnoscope.utils.files import atomic_path, write_json_atomic, write_text_atomic

EPOCH_SEC = 30.0
#: The simulated nap protocols.
PROTOCOLS = ("mslt", "mwt")
#: Per protocol: naps in a day, minutes from lights-off after which a nap without sleep
#: ends, minutes from after the first sleep epoch at which a nap ends (MSLT; None: at
#: unequivocal sleep).
PROTOCOL_RULES: dict[str, dict[str, Any]] = {
    "mslt": {"n_naps": 5, "no_sleep_min": 20.0, "after_onset_min": 15.0},
    "mwt": {"n_naps": 4, "no_sleep_min": 40.0, "after_onset_min": None},
}
#: Clock time of the first lights-off and the interval between naps.
FIRST_LIGHTS_OFF = _dt.time(9, 0, 0)
NAP_INTERVAL_H = 2.0
#: Minutes of wake recorded before lights-off (range) and after lights-on (at least);
#: a nap's recording lasts at least :data:`MIN_RECORDING_MIN`.
PRE_MIN = (2.0, 5.0)
POST_MIN = 1.0
MIN_RECORDING_MIN = 25.0
#: Hours of the night the simulator's ``SubjectTraits.bad_segment_prob`` (probability that a
#: recording has 1-3 bad-signal segments) is meant for (the default simulated night: 8.5 h
#: plus 30 min of wake); a nap's probability is scaled by its length over this, so that
#: bad segments are as frequent per hour as in the nights.
NIGHT_HOURS = 9.0
#: The truth table's columns (``truth.csv``), in order.
TRUTH_COLUMNS = ("nap", "record_id", "psg", "hypnogram", "recording_start", "lights_off",
                 "lights_on", "lights_off_sec", "lights_on_sec", "slept",
                 "sleep_latency_min", "latency_for_mean_min", "rem_latency_min", "soremp",
                 "mwt_unequivocal_latency_min")
#: Texts of the lights annotations written in each PSG file.
LIGHTS_OFF_TEXT, LIGHTS_ON_TEXT = "Lights off", "Lights on"


@dataclass(frozen=True)
class NapProfile:
    """Distributions a simulated day's naps are drawn from (see the module docstring).

    Attributes
    ----------
    name : str
    mslt_latency_min, mwt_latency_min : float
        Median sleep latency of the profile on the MSLT / the MWT (log-normal).
    latency_sd : float
        Sd of the log latency of the naps of one day around the day's median.
    day_sd : float
        Sd of the log of a day's median around the profile's.
    soremp_prob : float
        Probability that an MSLT nap with sleep has a SOREMP.
    rem_latency_min : float
        Median REM latency of a SOREMP (log-normal, sd 0.6, clipped to 0-14 min).
    """

    name: str
    mslt_latency_min: float
    mwt_latency_min: float
    latency_sd: float
    day_sd: float
    soremp_prob: float
    rem_latency_min: float = 4.0


PROFILES: dict[str, NapProfile] = {
    "healthy": NapProfile("healthy", 11.0, 32.0, 0.45, 0.25, 0.05),
    "narcolepsy-like": NapProfile("narcolepsy-like", 3.0, 8.0, 0.6, 0.25, 0.65),
}


@dataclass
class SimulatedNap:
    """One nap's recording-long hypnogram codes and its truth.

    Attributes
    ----------
    codes : ndarray of int
        Stage of every epoch of the recording (wake before lights-off and after lights-on).
    lights_off_epoch, lights_on_epoch : int
        Lights-off at the start of epoch ``lights_off_epoch``, lights-on at the start of
        ``lights_on_epoch`` (the first epoch after the nap).
    sleep_latency_min : float or None
        Lights-off to the first sleep epoch; None without sleep.
    latency_for_mean_min : float
        The sleep latency, or without sleep the protocol's limit (20 / 40 min).
    rem_latency_min : float or None
        Sleep onset to the first REM epoch of the nap; None without REM.
    soremp : bool
        REM within 15 min of sleep onset.
    mwt_unequivocal_latency_min : float or None
        MWT only: lights-off to unequivocal sleep; None without it.
    slept : bool
        Whether the nap had any sleep epoch.
    """

    codes: np.ndarray
    lights_off_epoch: int
    lights_on_epoch: int
    sleep_latency_min: float | None
    latency_for_mean_min: float
    rem_latency_min: float | None
    soremp: bool
    mwt_unequivocal_latency_min: float | None
    slept: bool


def get_profile(name: str | NapProfile) -> NapProfile:
    """The :data:`PROFILES` entry of ``name`` (a profile is returned as it is)."""
    if isinstance(name, NapProfile):
        return name
    if name not in PROFILES:
        raise ValueError(f"unknown nap profile {name!r}; expected one of {sorted(PROFILES)}")
    return PROFILES[name]


def _check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown nap protocol {protocol!r}; expected one of {PROTOCOLS}")
    return protocol


def _epochs(minutes: float) -> int:
    return int(round(minutes * 60.0 / EPOCH_SEC))


def onset_transitions(model: SleepArchitectureModel | None = None) -> np.ndarray:
    """Row-stochastic 5x5 stage transitions of the first hour of the night (the
    sleep-onset period) of ``model`` (default: fitted to Sleep-EDF)."""
    model = model or SleepArchitectureModel.default()
    return model.transition_matrices[0]


def _next_stage(trans: np.ndarray, stage: int, rem_allowed: bool,
                rng: np.random.Generator) -> int:
    p = trans[stage].copy()
    if not rem_allowed:
        p[R] = 0.0
    return int(rng.choice(len(p), p=p / p.sum()))


def _mslt_sleep(n: int, rem_at: int | None, trans: np.ndarray,
                rng: np.random.Generator) -> list[int]:
    """``n`` epochs from sleep onset: N1 first (REM when ``rem_at`` is 0), REM entered
    exactly at epoch ``rem_at`` (None: no REM)."""
    seq = [R if rem_at == 0 else N1]
    for i in range(1, n):
        if rem_at is not None and i == rem_at:
            seq.append(R)
            continue
        seq.append(_next_stage(trans, seq[-1], rem_at is not None and i > rem_at, rng))
    return seq


def _mwt_sleep(n_max: int, trans: np.ndarray, rng: np.random.Generator,
               ) -> tuple[list[int], int | None]:
    """Epochs from sleep onset (N1) up to unequivocal sleep, at most ``n_max``; and the
    index of the start of the unequivocal sleep (None: not reached)."""
    seq: list[int] = []
    stage = N1
    run_start = 0
    for i in range(n_max):
        if i > 0:
            stage = _next_stage(trans, seq[-1], False, rng)
        seq.append(stage)
        if stage in (N2, N3, R):
            return seq, i
        if stage == N1 and (i == 0 or seq[-2] != N1):
            run_start = i
        if stage == N1 and i - run_start == 2:
            return seq, run_start
    return seq, None


def sample_nap(protocol: str, latency_min: float, rng: np.random.Generator,
               soremp_prob: float = 0.0, rem_latency_min: float = 4.0,
               pre_epochs: int = 6, trans: np.ndarray | None = None) -> SimulatedNap:
    """One nap's hypnogram and truth.

    Parameters
    ----------
    protocol : {"mslt", "mwt"}
    latency_min : float
        Drawn sleep latency (rounded to whole epochs, at least one); at or past the
        protocol's limit (20 / 40 min) the nap has no sleep.
    rng : Generator
    soremp_prob : float
        MSLT: probability of REM within the nap (at a REM latency drawn log-normal
        around ``rem_latency_min``, sd 0.6, clipped to 0-14 min).
    pre_epochs : int
        Epochs of wake recorded before lights-off.
    trans : ndarray (5, 5) or None
        Stage transitions after sleep onset (default :func:`onset_transitions`).
    """
    rules = PROTOCOL_RULES[_check_protocol(protocol)]
    trans = onset_transitions() if trans is None else trans
    limit = _epochs(rules["no_sleep_min"])
    lat = max(1, int(round(latency_min * 60.0 / EPOCH_SEC)))
    rem_at, unequivocal = None, None
    if lat >= limit:
        nap = [W] * limit
    elif protocol == "mslt":
        if rng.random() < soremp_prob:
            rl = float(np.exp(np.log(rem_latency_min) + 0.6 * rng.standard_normal()))
            rem_at = _epochs(min(max(rl, 0.0), 14.0))
        nap = [W] * lat + _mslt_sleep(_epochs(rules["after_onset_min"]) + 1, rem_at,
                                      trans, rng)
    else:
        sleep, unequivocal = _mwt_sleep(limit - lat, trans, rng)
        nap = [W] * lat + sleep
        if unequivocal is not None:
            unequivocal += lat
    slept = lat < limit
    n = len(nap)
    total = max(pre_epochs + n + _epochs(POST_MIN), _epochs(MIN_RECORDING_MIN))
    codes = np.array([W] * pre_epochs + nap + [W] * (total - pre_epochs - n), dtype=np.int64)
    to_min = EPOCH_SEC / 60.0
    uneq = None if unequivocal is None else unequivocal * to_min
    return SimulatedNap(codes=codes, lights_off_epoch=pre_epochs,
                        lights_on_epoch=pre_epochs + n,
                        sleep_latency_min=lat * to_min if slept else None,
                        latency_for_mean_min=(lat if slept else limit) * to_min,
                        rem_latency_min=None if rem_at is None else rem_at * to_min,
                        soremp=rem_at is not None and rem_at * to_min <= 15.0,
                        mwt_unequivocal_latency_min=uneq, slept=slept)


def draw_day_latencies(profile: NapProfile, protocol: str, n_naps: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Sleep latencies (min) of a day's naps: a day median around the profile's, each
    nap log-normal around it."""
    median = profile.mslt_latency_min if protocol == "mslt" else profile.mwt_latency_min
    day = np.log(median) + profile.day_sd * rng.standard_normal()
    return np.exp(day + profile.latency_sd * rng.standard_normal(n_naps))


def add_lights_annotations(psg_path: str | Path, lights_off_sec: float,
                           lights_on_sec: float) -> Path:
    """Rewrite an EDF file with ``Lights off`` and ``Lights on`` annotations (EDF+)."""
    import edfio

    path = Path(psg_path)
    edf = edfio.read_edf(path)
    edf.add_annotations([edfio.EdfAnnotation(float(lights_off_sec), None, LIGHTS_OFF_TEXT),
                         edfio.EdfAnnotation(float(lights_on_sec), None, LIGHTS_ON_TEXT)])
    with atomic_path(path) as tmp:
        edf.write(tmp)
    return path


def _clock(t: _dt.datetime) -> str:
    return t.strftime("%H:%M:%S")


def _nap_record(k: int, record_id: str, nap: SimulatedNap, start: _dt.datetime,
                psg: Path, hyp_path: Path, latent: str | None = None) -> dict[str, Any]:
    off = nap.lights_off_epoch * EPOCH_SEC
    on = nap.lights_on_epoch * EPOCH_SEC
    return {"nap": k, "record_id": record_id, "psg": psg.name, "hypnogram": hyp_path.name,
            "recording_start": start.isoformat(),
            "lights_off": _clock(start + _dt.timedelta(seconds=off)),
            "lights_on": _clock(start + _dt.timedelta(seconds=on)),
            "lights_off_sec": off, "lights_on_sec": on, "slept": nap.slept,
            "sleep_latency_min": nap.sleep_latency_min,
            "latency_for_mean_min": nap.latency_for_mean_min,
            "rem_latency_min": nap.rem_latency_min, "soremp": nap.soremp,
            "mwt_unequivocal_latency_min": nap.mwt_unequivocal_latency_min,
            # the majority stage of the signals of every epoch from lights off to lights on
            # (simulate.latent: differs from the scored stage where the simulated scorer
            # disagrees with the physiology), one digit 0-4 per epoch
            "latent_stages": None if latent is None
            else latent[nap.lights_off_epoch:nap.lights_on_epoch]}


def day_summary(naps: list[dict[str, Any]], protocol: str) -> dict[str, Any]:
    """The day's mean sleep latency (a nap without sleep as 20 / 40 min) and, MSLT, SOREMP
    count and narcolepsy criterion (mean <= 8 min and two or more SOREMPs) or, MWT, mean
    latency to unequivocal sleep (40 min without it); keys as
    :func:`hypnoscope.evaluation.naps.summarise_day`'s."""
    limit = PROTOCOL_RULES[protocol]["no_sleep_min"]
    mean = float(np.mean([n["latency_for_mean_min"] for n in naps]))
    out: dict[str, Any] = {"protocol": protocol, "n_naps": len(naps),
                           "mean_sleep_latency_min": mean}
    if protocol == "mslt":
        out["n_soremps"] = int(sum(bool(n["soremp"]) for n in naps))
        out["narcolepsy_criterion_met"] = bool(mean <= 8.0 and out["n_soremps"] >= 2)
    else:
        out["mean_unequivocal_latency_min"] = float(np.mean(
            [limit if n["mwt_unequivocal_latency_min"] is None
             else n["mwt_unequivocal_latency_min"] for n in naps]))
    return out


def truth_csv(naps: list[dict[str, Any]]) -> str:
    """``truth.csv`` text: one row per nap, :data:`TRUTH_COLUMNS` (empty: none)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(TRUTH_COLUMNS), lineterminator="\n")
    w.writeheader()
    for n in naps:
        w.writerow({k: "" if n[k] is None else n[k] for k in TRUTH_COLUMNS})
    return buf.getvalue()


def simulate_nap_day(out_dir: str | Path, protocol: str = "mslt",
                     profile: str | NapProfile = "healthy", seed: int = 0,
                     n_naps: int | None = None, layout: str = "sleep-edf",
                     montage: str | None = None, mode: str | None = None,
                     difficulty: float = DEFAULT_DIFFICULTY,
                     date: _dt.date | None = None) -> dict[str, Any]:
    """Simulate a day of naps into ``out_dir``, with ``truth.json`` and ``truth.csv``.

    Parameters
    ----------
    out_dir : path
        Output folder (created): per nap a file pair of the layout (record ids
        ``MSLT1`` ... / ``MWT1`` ..., PSG with ``Lights off``/``Lights on`` EDF+
        annotations, the true hypnogram), ``truth.json`` (settings, traits, naps, day)
        and ``truth.csv`` (:data:`TRUTH_COLUMNS`).
    protocol : {"mslt", "mwt"}
    profile : {"healthy", "narcolepsy-like"} or NapProfile
        Latency and SOREMP distributions (:data:`PROFILES`).
    seed : int
        Seed of every draw (same seed and settings -> identical files).
    n_naps : int or None
        Naps in the day (default: 5 for the MSLT, 4 for the MWT).
    layout, montage, mode
        File layout, channel set and Sleep-EDF file form
        (:func:`hypnoscope.simulate.files.layout_settings`).
    difficulty : float
        Scorer-disagreement strength (:func:`~hypnoscope.simulate.simulate_night`).
    date : date or None
        Day of the naps (default: the day after the simulator's default night).

    Returns
    -------
    dict
        The content of ``truth.json``.
    """
    from hypnoscope.simulate.files import layout_settings

    prof = get_profile(profile)
    rules = PROTOCOL_RULES[_check_protocol(protocol)]
    n_naps = rules["n_naps"] if n_naps is None else int(n_naps)
    if n_naps < 1:
        raise ValueError(f"n_naps must be >= 1, got {n_naps}")
    spec = layout_settings(layout, montage, mode)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    day = date or (DEFAULT_START + _dt.timedelta(days=1)).date()
    trait_ss, lat_ss, *nap_ss = np.random.SeedSequence(int(seed)).spawn(2 + n_naps)
    traits = SubjectTraits.sample(np.random.default_rng(trait_ss))
    latencies = draw_day_latencies(prof, protocol, n_naps, np.random.default_rng(lat_ss))
    trans = onset_transitions()
    naps = []
    for k in range(n_naps):
        rng = np.random.default_rng(nap_ss[k])
        pre = int(rng.integers(_epochs(PRE_MIN[0]), _epochs(PRE_MIN[1]) + 1))
        nap = sample_nap(protocol, float(latencies[k]), rng, soremp_prob=prof.soremp_prob
                         if protocol == "mslt" else 0.0,
                         rem_latency_min=prof.rem_latency_min, pre_epochs=pre, trans=trans)
        off = (_dt.datetime.combine(day, FIRST_LIGHTS_OFF)
               + _dt.timedelta(hours=NAP_INTERVAL_H * k,
                               seconds=EPOCH_SEC * int(rng.integers(0, 7))))
        start = off - _dt.timedelta(seconds=pre * EPOCH_SEC)
        hyp = Hypnogram(nap.codes, epoch_sec=EPOCH_SEC, start_time=start)
        per_hour = replace(traits, bad_segment_prob=traits.bad_segment_prob
                           * min(1.0, hyp.duration_sec / 3600.0 / NIGHT_HOURS))
        raw = simulate_night(hyp, seed=int(nap_ss[k].generate_state(1)[0]),
                             mode=spec["mode"], subject=per_hour, sfreq=spec["sfreq"],
                             difficulty=difficulty, montage=spec["montage"])
        record_id = f"{protocol.upper()}{k + 1}"
        psg, hyp_path = spec["write"](raw, hyp, out_dir, record_id)
        add_lights_annotations(psg, nap.lights_off_epoch * EPOCH_SEC,
                               nap.lights_on_epoch * EPOCH_SEC)
        latent = json.loads(raw.info["description"] or "{}").get("latent_stages")
        naps.append(_nap_record(k + 1, record_id, nap, start, psg, hyp_path, latent))
    truth = {"generator": "hypnoscope.simulate.naps.simulate_nap_day", "simulated": True,
             "protocol": protocol, "profile": asdict(prof), "seed": int(seed),
             "date": day.isoformat(), "layout": layout, "montage": spec["montage"],
             "mode": spec["mode"], "difficulty": float(difficulty),
             "traits": traits.to_dict(), "naps": naps, "day": day_summary(naps, protocol)}
    write_json_atomic(out_dir / "truth.json", truth)
    write_text_atomic(out_dir / "truth.csv", truth_csv(naps))
    return truth


def read_nap_truth(folder: str | Path) -> dict[str, Any]:
    """The ``truth.json`` of a simulated nap day (:func:`simulate_nap_day`)."""
    path = Path(folder) / "truth.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no truth.json; is {folder} a day written by "
                                "simulate_nap_day?")
    return json.loads(path.read_text())
