"""AASM rules of the daytime nap studies: the multiple sleep latency test (MSLT) and the
maintenance of wakefulness test (MWT), applied to the hypnogram of one nap.

One nap (trial) is scored by :func:`score_nap`; a day of naps is summarised by
:func:`summarise_day`. The rules (AASM practice parameters, Littner et al. 2005; AASM
manual) as implemented here:

- **Nap epochs.** An epoch belongs to the nap when its midpoint lies in
  ``[lights_off, end)`` (the time-in-bed convention of
  :func:`hypnoscope.evaluation.sleepstats.time_in_bed_slice`).
- **Sleep latency** (both protocols): lights off to the onset of the first epoch of any
  sleep stage (N1, N2, N3, R; NREM or R on a 3-class hypnogram). No sleep: ``None``.
- **MSLT end.** A nap without sleep ends :data:`MSLT_NO_SLEEP_MIN` (20) min after lights
  off. After sleep onset the nap continues for :data:`MSLT_AFTER_ONSET_MIN` (15) min
  *from after the first epoch of sleep* (AASM wording), so its last epoch starts exactly
  15 min after sleep onset: ``end = sleep onset + one epoch + 15 min``.
- **SOREMP** (sleep-onset REM period): a REM epoch whose onset is at most
  :data:`SOREMP_MAX_MIN` (15.0) min after sleep onset, i.e. REM latency
  ``<= 15.0`` min: the first REM epoch starting at 15.0 min counts, one starting at
  15.5 min does not (nor is it in an MSLT nap). REM latency is measured from sleep
  onset (the onset of the first sleep epoch) to the onset of the first REM epoch, within
  the nap.
- **MWT end.** A trial ends at unequivocal sleep -- three consecutive epochs of N1 or one
  epoch of any other sleep stage (N2, N3, R) -- or :data:`MWT_MAX_MIN` (40) min after
  lights off. The latency to unequivocal sleep is to the onset of the *first* epoch of
  that run (the three N1 epochs) or of that epoch; ``N1 N1 N2`` dates it at the N2 epoch
  (the two N1 epochs are not three). The trial's end is the end of the epoch that makes
  sleep unequivocal. On a 3-class hypnogram N1 is not told apart from N2/N3, so three
  consecutive NREM epochs or one REM epoch are required (a problem says so).
- **Day.** MSLT: mean sleep latency with a nap without sleep counting as 20 min, the
  number of SOREMPs, and the narcolepsy criterion (mean latency
  <= :data:`NARCOLEPSY_MEAN_MAX_MIN` min and >= :data:`NARCOLEPSY_MIN_SOREMPS` SOREMPs).
  MWT: mean sleep latency (and mean latency to unequivocal sleep) with a trial without
  sleep counting as 40 min.

A nap is ``complete`` when the hypnogram (and lights-on, when given) covers the nap up
to its protocol end and every epoch of the nap up to the one that decides the result is
scored; anything else is named in ``problems``. An MSLT nap whose lights on comes 15 min
after sleep onset by the clock (one epoch before the AASM end) is complete; when it shows
no SOREMP, a problem notes that its last epoch was not recorded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.stages import N1, R, W

PROTOCOLS = ("mslt", "mwt")
#: MSLT: a nap without sleep ends this many minutes after lights off.
MSLT_NO_SLEEP_MIN = 20.0
#: MSLT: after sleep onset the nap goes on this long from after the first sleep epoch.
MSLT_AFTER_ONSET_MIN = 15.0
#: SOREMP: REM starting at most this many minutes after sleep onset.
SOREMP_MAX_MIN = 15.0
#: MWT: a trial without unequivocal sleep ends this many minutes after lights off.
MWT_MAX_MIN = 40.0
#: MWT: consecutive N1 epochs that make unequivocal sleep.
MWT_N1_RUN = 3
#: Narcolepsy criterion of a day: mean sleep latency at most this (min) ...
NARCOLEPSY_MEAN_MAX_MIN = 8.0
#: ... and at least this many SOREMPs.
NARCOLEPSY_MIN_SOREMPS = 2
_TOL_SEC = 1e-6


@dataclass
class NapScore:
    """The AASM result of one nap (:func:`score_nap`).

    Attributes
    ----------
    protocol : {"mslt", "mwt"}
    lights_off_sec : float
        Lights off, seconds from the recording start (the hypnogram's time base).
    end_sec : float
        Where the protocol ends the nap (seconds from the recording start): MSLT 15 min
        from after the first sleep epoch or 20 min after lights off without sleep; MWT the
        end of the epoch that makes sleep unequivocal or 40 min after lights off.
    sleep_latency_min : float or None
        Lights off to the first epoch of any sleep stage; None without sleep in the nap.
    rem_latency_min : float or None
        Sleep onset to the first REM epoch within the nap; None without REM.
    soremp : bool
        REM within :data:`SOREMP_MAX_MIN` min of sleep onset (``rem_latency_min <= 15``).
    mwt_unequivocal_latency_min : float or None
        Lights off to the first epoch of unequivocal sleep (three N1 epochs in a row or
        one epoch of another sleep stage), within :data:`MWT_MAX_MIN` min; None without.
    key_epochs : list of int
        Indices (into the hypnogram) of the epochs a latency depends on: sleep onset, the
        first REM epoch, the epochs of the unequivocal-sleep run, and unscored epochs
        before sleep onset (any of them may have been sleep).
    complete : bool
        The nap ran to its protocol end and the epochs deciding its results are scored.
    problems : list of str
        Why a nap is not complete, or what else a scorer should know.
    first_epoch, stop_epoch : int
        The nap's epochs are ``hypnogram.codes[first_epoch:stop_epoch]``.
    sleep_onset_epoch, rem_epoch, unequivocal_epoch : int or None
        Index of the first sleep epoch, first REM epoch, first epoch of unequivocal sleep.
    """

    protocol: str
    lights_off_sec: float
    end_sec: float
    sleep_latency_min: float | None = None
    rem_latency_min: float | None = None
    soremp: bool = False
    mwt_unequivocal_latency_min: float | None = None
    key_epochs: list[int] = field(default_factory=list)
    complete: bool = True
    problems: list[str] = field(default_factory=list)
    first_epoch: int = 0
    stop_epoch: int = 0
    sleep_onset_epoch: int | None = None
    rem_epoch: int | None = None
    unequivocal_epoch: int | None = None

    @property
    def latency_for_mean_min(self) -> float | None:
        """The nap's latency in the day's mean: the sleep latency, or the protocol's
        maximum (MSLT 20, MWT 40 min) for a complete nap without sleep; None for an
        incomplete nap without sleep (its latency is unknown)."""
        if self.sleep_latency_min is not None:
            return self.sleep_latency_min
        if not self.complete:
            return None
        return MSLT_NO_SLEEP_MIN if self.protocol == "mslt" else MWT_MAX_MIN

    @property
    def unequivocal_for_mean_min(self) -> float | None:
        """MWT: latency to unequivocal sleep, 40 min for a complete trial without it."""
        if self.mwt_unequivocal_latency_min is not None:
            return self.mwt_unequivocal_latency_min
        return MWT_MAX_MIN if self.complete and self.protocol == "mwt" else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with ``latency_for_mean_min``)."""
        out = asdict(self)
        out["latency_for_mean_min"] = self.latency_for_mean_min
        return out


def _check_protocol(protocol: str) -> str:
    p = str(protocol).lower()
    if p not in PROTOCOLS:
        raise ValueError(f"nap protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return p


def _masks(hyp: Hypnogram) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sleep, REM and 'unequivocal on its own' masks of the codes."""
    codes = hyp.codes
    sleep = codes > W
    if hyp.n_classes == 3:
        rem = codes == 2
        alone = rem
    else:
        rem = codes == R
        alone = sleep & (codes != N1)
    return sleep, rem, alone


def _unequivocal(codes: np.ndarray, sleep: np.ndarray, alone: np.ndarray,
                 lo: int, hi: int) -> tuple[int | None, int | None]:
    """First epoch of unequivocal sleep in ``[lo, hi)`` and the index one past the epoch
    that completes it (``MWT_N1_RUN`` N1 in a row, or one epoch that is enough alone)."""
    run = 0
    for i in range(lo, hi):
        if alone[i]:
            return i, i + 1
        run = run + 1 if sleep[i] else 0
        if run >= MWT_N1_RUN:
            return i - MWT_N1_RUN + 1, i + 1
    return None, None


def _window_stop(mids: np.ndarray, end: float) -> int:
    return int(np.searchsorted(mids, end - _TOL_SEC, side="left"))


def _lights_problems(hyp: Hypnogram, off: float, first: int, problems: list[str]) -> None:
    n = hyp.n_epochs
    if first >= n:
        return
    gap = float(hyp.onsets[first]) - off
    if hyp.onset_sec > off + hyp.epoch_sec / 2:
        problems.append(f"the hypnogram starts {gap:g} s after lights off; the time between "
                        "is not scored")
    elif abs(gap) > 1.0:
        problems.append(f"lights off ({off:g} s) is not on the epoch grid; the nap's first "
                        f"epoch starts at {hyp.onsets[first]:g} s")


def score_nap(hyp: Hypnogram, protocol: str = "mslt", lights_off_sec: float | None = None,
              lights_on_sec: float | None = None) -> NapScore:
    """Apply the AASM nap rules (module docstring) to the hypnogram of one nap.

    Parameters
    ----------
    hyp : Hypnogram
        5-class (or 3-class) hypnogram holding the nap.
    protocol : {"mslt", "mwt"}
        The study.
    lights_off_sec : float, optional
        Lights off, seconds from the recording start; default the first epoch's onset.
    lights_on_sec : float, optional
        Lights on; a nap whose protocol end comes after it is incomplete. Default: the end
        of the hypnogram.

    Returns
    -------
    NapScore

    Examples
    --------
    >>> from hypnoscope.hypnogram import Hypnogram
    >>> s = score_nap(Hypnogram(["W"] * 10 + ["N1", "N2"] + ["R"] * 40))
    >>> s.sleep_latency_min, s.rem_latency_min, s.soremp
    (5.0, 1.0, True)
    """
    p = _check_protocol(protocol)
    ep = hyp.epoch_sec
    off = float(hyp.onset_sec if lights_off_sec is None else lights_off_sec)
    hyp_end = hyp.onset_sec + hyp.duration_sec
    on = hyp_end if lights_on_sec is None else float(lights_on_sec)
    if not (math.isfinite(off) and math.isfinite(on)):
        raise ValueError(f"lights off/on must be finite seconds, got {off!r}, {on!r}")
    if on <= off:
        raise ValueError(f"lights on ({on:g} s) must come after lights off ({off:g} s)")
    codes = hyp.codes
    mids = hyp.onsets + ep / 2
    sleep, rem, alone = _masks(hyp)
    first = int(np.searchsorted(mids, off - _TOL_SEC, side="left"))
    max_min = MSLT_NO_SLEEP_MIN if p == "mslt" else MWT_MAX_MIN
    stop = _window_stop(mids, off + max_min * 60.0)
    score = NapScore(p, off, off + max_min * 60.0, first_epoch=first)
    _lights_problems(hyp, off, first, score.problems)
    if hyp.n_classes == 3 and p == "mwt":
        score.problems.append("3-class hypnogram: N1 is not told apart from N2/N3, so "
                              "unequivocal sleep needs three NREM epochs in a row or one REM")
    if p == "mwt":
        ueq, ueq_stop = _unequivocal(codes, sleep, alone, first, stop)
        if ueq is not None:
            score.unequivocal_epoch = ueq
            score.mwt_unequivocal_latency_min = max(0.0, float(hyp.onsets[ueq]) - off) / 60.0
            score.end_sec = float(hyp.onsets[ueq_stop - 1]) + ep
            score.key_epochs.extend(range(ueq, ueq_stop))
            stop = ueq_stop
    onset_idx = np.flatnonzero(sleep[first:stop])
    if onset_idx.size:
        so = first + int(onset_idx[0])
        score.sleep_onset_epoch = so
        so_sec = float(hyp.onsets[so])
        score.sleep_latency_min = max(0.0, so_sec - off) / 60.0
        if p == "mslt":
            score.end_sec = so_sec + ep + MSLT_AFTER_ONSET_MIN * 60.0
            stop = _window_stop(mids, score.end_sec)
        rem_idx = np.flatnonzero(rem[so:stop])
        if rem_idx.size:
            r = so + int(rem_idx[0])
            score.rem_epoch = r
            score.rem_latency_min = (float(hyp.onsets[r]) - so_sec) / 60.0
            score.soremp = score.rem_latency_min <= SOREMP_MAX_MIN + _TOL_SEC
            score.key_epochs.append(r)
        score.key_epochs.append(so)
    score.key_epochs = sorted(set(score.key_epochs))
    score.stop_epoch = min(stop, hyp.n_epochs)
    _completeness(hyp, score, on, hyp_end)
    return score


def _completeness(hyp: Hypnogram, score: NapScore, on: float, hyp_end: float) -> None:
    """Set ``complete`` and the problems of coverage and unscored epochs."""
    ep = hyp.epoch_sec
    codes = hyp.codes
    covered = min(on, hyp_end)
    # the protocol end is reached when the epochs up to it are all there
    decided = score.protocol == "mwt" and score.unequivocal_epoch is not None
    missing = score.end_sec - covered
    # lights on at 15 min after sleep onset (a common clock rule) lacks only the last
    # epoch of the AASM nap: the nap stands, with a note when no SOREMP was seen
    last_only = (score.protocol == "mslt" and score.sleep_onset_epoch is not None
                 and missing <= ep + _TOL_SEC)
    short = missing > ep / 2 and not decided and not last_only
    if last_only and missing > ep / 2 and score.rem_epoch is None:
        score.problems.append(
            f"the nap ends {(covered - score.lights_off_sec) / 60.0:.1f} min after lights "
            "off, one epoch before the AASM end (15 min from after the first sleep epoch): "
            "REM in the epoch starting 15 min after sleep onset would not be seen")
    if hyp.onset_sec > score.lights_off_sec + ep / 2:
        score.complete = False  # the time between lights off and the first epoch is unscored
    if short:
        score.complete = False
        what = "lights on" if on < hyp_end else "the hypnogram ends"
        ran, due = (covered - score.lights_off_sec) / 60.0, \
            (score.end_sec - score.lights_off_sec) / 60.0
        why = ""
        if score.protocol == "mslt" and score.sleep_onset_epoch is not None:
            why = (f", 15 min after the sleep onset found at {score.sleep_latency_min:.1f} min"
                   ": if the scorer saw sleep earlier the nap was complete; check the "
                   "sleep-onset epoch")
        score.problems.append(f"{what} {ran:.1f} min after lights off, before the protocol "
                              f"ends the nap ({due:.1f} min{why})")
    upto = score.sleep_onset_epoch if score.sleep_onset_epoch is not None else score.stop_epoch
    unscored = score.first_epoch + np.flatnonzero(codes[score.first_epoch:upto] < 0)
    if unscored.size:
        n = int(unscored.size)
        score.key_epochs = sorted({*score.key_epochs, *map(int, unscored)})
        score.complete = False
        score.problems.append(f"{n} unscored epoch(s) before sleep onset: the sleep latency "
                              "is not determined")
    if score.sleep_onset_epoch is not None and score.rem_epoch is None:
        n = int((codes[score.sleep_onset_epoch:score.stop_epoch] < 0).sum())
        if n:
            score.problems.append(f"{n} unscored epoch(s) after sleep onset: a SOREMP may "
                                  "be missed")


def summarise_day(scores: list[NapScore], protocol: str) -> dict[str, Any]:
    """The day's result of a nap study.

    Parameters
    ----------
    scores : list of NapScore
        One per nap, in order.
    protocol : {"mslt", "mwt"}

    Returns
    -------
    dict
        ``protocol``, ``n_naps``, ``n_incomplete``, ``n_in_mean`` (naps whose latency is
        known), ``latencies_min`` (per nap, as in the mean; None where unknown),
        ``mean_sleep_latency_min`` (None when no nap has a known latency). MSLT adds
        ``n_soremps`` and ``narcolepsy_criterion_met`` (mean <= 8 min and >= 2 SOREMPs;
        None without a mean). MWT adds ``mean_unequivocal_latency_min``.
    """
    p = _check_protocol(protocol)
    other = sorted({s.protocol for s in scores} - {p})
    if other:
        raise ValueError(f"summarise_day({p!r}) got naps scored as {other}")
    lat = [s.latency_for_mean_min for s in scores]
    known = [v for v in lat if v is not None]
    mean = float(np.mean(known)) if known else None
    out: dict[str, Any] = {
        "protocol": p, "n_naps": len(scores),
        "n_incomplete": sum(not s.complete for s in scores),
        "n_in_mean": len(known), "latencies_min": lat, "mean_sleep_latency_min": mean,
    }
    if p == "mslt":
        n_sorem = sum(bool(s.soremp) for s in scores)
        out["n_soremps"] = n_sorem
        out["narcolepsy_criterion_met"] = (
            None if mean is None
            else bool(mean <= NARCOLEPSY_MEAN_MAX_MIN + _TOL_SEC
                      and n_sorem >= NARCOLEPSY_MIN_SOREMPS))
    else:
        ueq = [v for v in (s.unequivocal_for_mean_min for s in scores) if v is not None]
        out["mean_unequivocal_latency_min"] = float(np.mean(ueq)) if ueq else None
    return out


__all__ = ["MSLT_AFTER_ONSET_MIN", "MSLT_NO_SLEEP_MIN", "MWT_MAX_MIN", "MWT_N1_RUN",
           "NARCOLEPSY_MEAN_MAX_MIN", "NARCOLEPSY_MIN_SOREMPS", "NapScore", "PROTOCOLS",
           "SOREMP_MAX_MIN", "score_nap", "summarise_day"]
