"""Sleep statistics of one hypnogram (AASM definitions).

All durations are in minutes, percentages in percent. See :func:`sleep_statistics` for
the exact definitions and for how unscored epochs and lights-off/lights-on are handled.

The night of a long recording or scoring (a 24-h Sleep-EDF cassette file) is its main
sleep period plus 30 min of wake either side (:func:`main_sleep_period`,
:func:`sleep_period_crop`): staging crops a recording to it
(:mod:`hypnoscope.staging.pipeline`) and :func:`statistics_lights` gives the statistics
of a scored hypnogram the same time in bed (``hypnoscope stats``).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from hypnoscope.notices import Notices
from hypnoscope.stages import N1, N2, N3, R, W

if TYPE_CHECKING:  # pragma: no cover
    from hypnoscope.hypnogram import Hypnogram

#: A clock time as accepted by :func:`resolve_time`.
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?")

#: ``crop="auto"`` crops spans longer than this (hours) to the main sleep period.
AUTO_CROP_HOURS = 14.0
#: Wake kept either side of the sleep period by the crop (minutes).
CROP_PAD_MIN = 30.0
#: The crop modes of :func:`sleep_period_crop`.
CROP_MODES = ("auto", "on", "off")

#: Keys of :func:`sleep_statistics`, in display order.
STAT_KEYS: tuple[str, ...] = (
    "time_in_bed_min", "sleep_period_min", "total_sleep_min", "waso_min", "wake_min",
    "n1_min", "n2_min", "n3_min", "nrem_min", "rem_min",
    "n1_pct", "n2_pct", "n3_pct", "rem_pct", "sleep_efficiency_pct",
    "sleep_onset_latency_min", "rem_latency_min", "rem_latency_from_start_min",
    "awakenings", "stage_shifts",
)

#: Human-readable names and units of :data:`STAT_KEYS` (for reports and the CLI).
STAT_LABELS: dict[str, tuple[str, str]] = {
    "time_in_bed_min": ("Time in bed (TIB)", "min"),
    "sleep_period_min": ("Sleep period time (SPT)", "min"),
    "total_sleep_min": ("Total sleep time (TST)", "min"),
    "waso_min": ("Wake after sleep onset (WASO)", "min"),
    "wake_min": ("Wake, whole time in bed", "min"),
    "n1_min": ("N1", "min"),
    "n2_min": ("N2", "min"),
    "n3_min": ("N3", "min"),
    "nrem_min": ("NREM (N1+N2+N3)", "min"),
    "rem_min": ("REM", "min"),
    "n1_pct": ("N1, % of TST", "%"),
    "n2_pct": ("N2, % of TST", "%"),
    "n3_pct": ("N3, % of TST", "%"),
    "rem_pct": ("REM, % of TST", "%"),
    "sleep_efficiency_pct": ("Sleep efficiency (TST/TIB)", "%"),
    "sleep_onset_latency_min": ("Sleep-onset latency", "min"),
    "rem_latency_min": ("REM latency, from sleep onset", "min"),
    "rem_latency_from_start_min": ("REM latency, from lights off", "min"),
    "awakenings": ("Awakenings (wake bouts within SPT)", ""),
    "stage_shifts": ("Stage shifts", ""),
}


def resolve_time(value: Any, start_time: _dt.datetime | None, what: str = "time",
                 after: float | None = None, before_start_sec: float = 3600.0,
                 ) -> float | None:
    """Seconds from the recording start of a lights-off/lights-on style time.

    Parameters
    ----------
    value : None, float, str, datetime.time, datetime.datetime or datetime.timedelta
        A number (or numeric string) of seconds from the recording start; a clock time
        (``datetime.time`` or ``"HH:MM[:SS]"``) on the recording's clock, taken on its
        first occurrence after the recording start (after ``after`` seconds when given,
        so that a lights-on after midnight follows lights-off), where a clock time at
        most ``before_start_sec`` before the start counts as just before it (negative
        seconds); a full ``datetime`` (naive, in the recording's clock); a
        ``timedelta`` from the start. None gives None.
    start_time : datetime or None
        Recording start; needed for clock times and datetimes.
    what : str
        Name used in error messages (e.g. ``"lights_off"``).
    after : float, optional
        Seconds from the start that a clock time must follow.
    before_start_sec : float, default 3600
        How far before the start a clock time (without ``after``) may lie.

    Returns
    -------
    float or None

    Raises
    ------
    ValueError
        For an unparsable value, a clock time without ``start_time``, or a non-finite
        number; the message names ``what`` and the value.

    Examples
    --------
    >>> import datetime as dt
    >>> start = dt.datetime(2020, 1, 1, 22, 30)
    >>> resolve_time("23:00", start), resolve_time("06:30", start, after=1800.0)
    (1800.0, 28800.0)
    """
    if value is None:
        return None
    if isinstance(value, _dt.timedelta):
        return float(value.total_seconds())
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        sec = float(value)
        if not np.isfinite(sec):
            raise ValueError(f"{what} must be a finite number of seconds, got {value!r}")
        return sec
    st = None if start_time is None else start_time.replace(tzinfo=None)
    if isinstance(value, _dt.datetime):
        if st is None:
            raise ValueError(f"{what} {value:%Y-%m-%d %H:%M:%S}: a date and time needs the "
                             "recording start time, which this recording does not carry; "
                             "give seconds from the start instead")
        return float((value.replace(tzinfo=None) - st).total_seconds())
    if isinstance(value, _dt.time):
        clock = value.replace(tzinfo=None)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None:
            return resolve_time(number, start_time, what)
        m = _CLOCK.fullmatch(text)
        if not m:
            raise ValueError(f"{what} {value!r}: expected seconds from the recording start or "
                             "a clock time HH:MM[:SS]")
        h, mi, sec_f = int(m[1]), int(m[2]), float(m[3] or 0)
        if h > 23 or mi > 59 or sec_f >= 60:
            raise ValueError(f"{what} {value!r} is not a valid clock time (HH:MM[:SS])")
        clock = _dt.time(h, mi, int(sec_f), int(round((sec_f % 1) * 1e6)) % 1_000_000)
    else:
        raise ValueError(f"{what} {value!r}: expected seconds, a clock time HH:MM[:SS], a "
                         "datetime.time or a datetime.datetime")
    if st is None:
        shown = repr(value) if isinstance(value, str) else str(value)
        raise ValueError(f"{what} {shown}: a clock time needs the recording start time, "
                         "which this recording does not carry; give seconds from the start "
                         "instead")
    sec = (_dt.datetime.combine(st.date(), clock) - st).total_seconds()
    floor = float(after) if after is not None else -float(before_start_sec)
    while sec < floor:
        sec += 86400.0
    while sec - 86400.0 >= floor:
        sec -= 86400.0
    return float(sec)


def clock_time(sec: float | None, start_time: _dt.datetime | None) -> str:
    """A time from the recording start for messages: ``"23:14:00 (1800 s)"`` when the
    start is known, else ``"1800 s"``; ``"-"`` for None."""
    if sec is None:
        return "-"
    if start_time is None:
        return f"{sec:g} s"
    return f"{start_time + _dt.timedelta(seconds=float(sec)):%H:%M:%S} ({sec:g} s)"


def main_sleep_period(codes, epoch_sec: float = 30.0, window_min: float = 30.0,
                      max_gap_min: float = 60.0) -> slice | None:
    """First to last sleep epoch of the main sleep period of a (long) hypnogram.

    Rule: an epoch lies in consolidated sleep when at least half of the scored epochs in
    the ``window_min`` minutes centred on it are sleep (N1, N2, N3, R); stretches of
    consolidated sleep separated by less than ``max_gap_min`` minutes are one period;
    the main period is the one with the most sleep epochs (a nap, or scattered
    misclassified epochs during a day of wake, do not extend it). The result runs from
    the first to the last sleep epoch within that period widened by half a window.

    Parameters
    ----------
    codes : array of int
        Stage codes (negative = unscored).
    epoch_sec, window_min, max_gap_min : float
        Epoch length (s), smoothing window and longest gap bridged (minutes).

    Returns
    -------
    slice or None
        Epoch slice, or None without any consolidated sleep.
    """
    codes = np.asarray(codes)
    sleep = codes > W
    if not sleep.any():
        return None
    w = max(1, int(round(window_min * 60.0 / epoch_sec)))
    kernel = np.ones(w)
    num = np.convolve(sleep.astype(float), kernel, mode="same")
    den = np.convolve((codes >= 0).astype(float), kernel, mode="same")
    asleep = (den > 0) & (num >= 0.5 * den)
    if not asleep.any():
        return None
    edges = np.diff(np.concatenate([[0], asleep.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    gap = int(round(max_gap_min * 60.0 / epoch_sec))
    blocks = [[int(starts[0]), int(stops[0])]]
    for a, b in zip(starts[1:], stops[1:], strict=True):
        if a - blocks[-1][1] < gap:
            blocks[-1][1] = int(b)
        else:
            blocks.append([int(a), int(b)])
    a, b = max(blocks, key=lambda ab: int(sleep[ab[0]:ab[1]].sum()))
    lo, hi = max(0, a - w // 2), min(len(codes), b + w // 2)
    s = np.flatnonzero(sleep[lo:hi]) + lo
    return slice(int(s[0]), int(s[-1]) + 1)


def sleep_period_crop(codes, crop: str = "auto", epoch_sec: float = 30.0,
                      pad_min: float = CROP_PAD_MIN, keep_start: bool = False,
                      keep_stop: bool = False) -> slice | None:
    """The epochs of a span of stage codes that the sleep-period crop keeps.

    The crop keeps the main sleep period (:func:`main_sleep_period`) plus ``pad_min``
    minutes of wake either side, clipped to the span; a start (stop) given by the user,
    ``keep_start`` (``keep_stop``), stays where it is.

    Parameters
    ----------
    codes : array of int
        Stage codes of the span (negative = unscored).
    crop : {"auto", "on", "off"}
        ``"auto"`` crops a span longer than :data:`AUTO_CROP_HOURS`, ``"on"`` always,
        ``"off"`` never; with both ends kept there is nothing to crop.
    epoch_sec, pad_min : float
        Epoch length (s) and wake kept either side (minutes).
    keep_start, keep_stop : bool
        The span starts at lights-off (ends at lights-on) given by the user.

    Returns
    -------
    slice or None
        The epochs kept, relative to the span: all of them (``slice(0, n)``) when the
        crop does not apply; None when it applies and finds no consolidated sleep.
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")
    n = len(codes)
    hours = n * epoch_sec / 3600.0
    if not ((crop == "on" or (crop == "auto" and hours > AUTO_CROP_HOURS))
            and not (keep_start and keep_stop)):
        return slice(0, n)
    main = main_sleep_period(codes, epoch_sec)
    if main is None:
        return None
    pad = int(round(pad_min * 60.0 / epoch_sec))
    return slice(0 if keep_start else max(0, main.start - pad),
                 n if keep_stop else min(n, main.stop + pad))


def statistics_lights(hypnogram: Hypnogram, lights_off: float | None = None,
                      lights_on: float | None = None, crop: str = "auto",
                      notices: Notices | None = None, source: str = "hypnogram",
                      ) -> tuple[float | None, float | None]:
    """Lights-off and lights-on for the statistics of a scored hypnogram, cropped as
    staging crops a recording (:func:`sleep_period_crop`).

    The span is the time in bed of ``lights_off``/``lights_on`` (:func:`time_in_bed_slice`:
    first to last scored epoch where one is not given). When the crop applies (a span
    longer than :data:`AUTO_CROP_HOURS` with ``crop="auto"``, e.g. a 24-h Sleep-EDF
    scoring) the bound not given becomes the edge of the main sleep period plus
    :data:`CROP_PAD_MIN` of wake, with an ``auto-crop`` notice (info) naming both
    times; without consolidated sleep nothing is cropped (``crop-no-sleep`` notice).

    Returns
    -------
    lights_off, lights_on : float or None
        Seconds from the recording start for :func:`sleep_statistics` (the ones given
        where the crop does not move them).
    """
    notes = notices if notices is not None else Notices()
    span = time_in_bed_slice(hypnogram, lights_off, lights_on)
    ep = hypnogram.epoch_sec
    hours = (span.stop - span.start) * ep / 3600.0
    kept = sleep_period_crop(hypnogram.codes[span], crop, ep, CROP_PAD_MIN,
                             lights_off is not None, lights_on is not None)
    what = (f"{source}: the scoring spans {hours:.1f} h" if lights_off is None
            and lights_on is None else f"{source}: lights-off to lights-on span {hours:.1f} h")
    if kept is None:
        notes.add("crop-no-sleep", f"{what}, and no consolidated sleep was found in it, so "
                  "the statistics are not cropped to a sleep period; give lights_off/"
                  "lights_on (--lights-off/--lights-on) to bound the night")
        return lights_off, lights_on
    if (kept.start, kept.stop) == (0, span.stop - span.start):
        return lights_off, lights_on
    onsets = hypnogram.onsets
    off = float(onsets[span.start + kept.start]) if lights_off is None else lights_off
    on = float(onsets[span.start + kept.stop - 1] + ep) if lights_on is None else lights_on
    start = hypnogram.start_time
    notes.add("auto-crop",
              f"{what}; the statistics are over the main sleep period plus {CROP_PAD_MIN:g} "
              f"min of wake either side, as staging crops a recording: "
              f"{clock_time(off, start)} to {clock_time(on, start)} "
              f"({(on - off) / 3600.0:.1f} h, taken as lights-off and lights-on). Give "
              "lights_off/lights_on (--lights-off/--lights-on) or crop='off' (--crop none) to "
              "change this", severity="info")
    return off, on


def time_in_bed_slice(hypnogram: Hypnogram, lights_off: float | None = None,
                      lights_on: float | None = None, notices: Notices | None = None,
                      ) -> slice:
    """Epoch slice of the time in bed used by :func:`sleep_statistics`.

    Parameters
    ----------
    hypnogram : Hypnogram
        The hypnogram.
    lights_off, lights_on : float or None
        Seconds from the start of the recording (the time base of
        ``hypnogram.onset_sec``). An epoch is in bed when its midpoint lies in
        ``[lights_off, lights_on)``. A missing bound defaults to the first (last) scored
        epoch, so leading and trailing unscored epochs are not time in bed. Bounds
        beyond the hypnogram are clipped to it, with a notice (``lights-outside``,
        logged once, and added to ``notices`` when given) when they lie more than one
        epoch outside.
    notices : Notices, optional
        Where that notice goes (see :mod:`hypnoscope.notices`).

    Raises
    ------
    ValueError
        If ``lights_off >= lights_on``, the window holds no epoch, or the hypnogram has
        no scored epoch and no lights-off/lights-on.
    """
    n = hypnogram.n_epochs
    mids = hypnogram.onsets + hypnogram.epoch_sec / 2
    scored = np.flatnonzero(hypnogram.codes >= 0)
    for name, value in (("lights_off", lights_off), ("lights_on", lights_on)):
        if value is not None and not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if lights_off is not None and lights_on is not None and lights_off >= lights_on:
        raise ValueError(f"lights_off ({lights_off:g} s) must be before lights_on "
                         f"({lights_on:g} s)")
    if scored.size == 0 and (lights_off is None or lights_on is None):
        raise ValueError("hypnogram has no scored epoch; give lights_off and lights_on to "
                         "define the time in bed")
    start = int(np.searchsorted(mids, lights_off, side="left")) if lights_off is not None \
        else int(scored[0])
    stop = int(np.searchsorted(mids, lights_on, side="left")) if lights_on is not None \
        else int(scored[-1]) + 1
    end = hypnogram.onset_sec + hypnogram.duration_sec
    tol = hypnogram.epoch_sec
    for name, value, outside in (
            ("lights_off", lights_off, lights_off is not None
             and lights_off < hypnogram.onset_sec - tol),
            ("lights_on", lights_on, lights_on is not None and lights_on > end + tol)):
        if outside:
            (notices if notices is not None else Notices()).add(
                "lights-outside",
                f"{name} ({value:g} s) lies outside the hypnogram "
                f"({hypnogram.onset_sec:g}-{end:g} s from the recording start); time in bed "
                "is clipped to the hypnogram")
    if stop <= start:
        raise ValueError(
            f"time in bed (lights_off={lights_off}, lights_on={lights_on} s) contains no "
            f"epoch of the hypnogram, which spans {hypnogram.onset_sec:g}-{end:g} s")
    return slice(start, min(stop, n))


def sleep_statistics(hypnogram: Hypnogram, lights_off: float | None = None,
                     lights_on: float | None = None, notices: Notices | None = None,
                     ) -> dict[str, float]:
    """AASM sleep statistics of one night.

    Parameters
    ----------
    hypnogram : Hypnogram
        5-class (or 3-class) hypnogram.
    lights_off, lights_on : float or None
        Lights-off / lights-on in seconds from the recording start; they bound the time
        in bed (see :func:`time_in_bed_slice`). Without them, time in bed runs from the
        first to the last *scored* epoch.
    notices : Notices, optional
        Collects the notice of a lights-off/on outside the hypnogram.

    Returns
    -------
    dict
        Keys of :data:`STAT_KEYS`; values are floats (minutes, %, or counts), ``nan``
        where undefined (latencies without sleep/REM, percentages with TST = 0, N1/N2/N3
        of a 3-class hypnogram).

    Notes
    -----
    Definitions (AASM manual, Iber 2007; Silber et al. 2007); all restricted to the
    time in bed (TIB):

    - ``time_in_bed_min``: TIB, lights off to lights on (total recording time); it
      includes unscored epochs inside it.
    - ``sleep_period_min``: SPT, first to last sleep epoch (N1, N2, N3, R) inclusive.
    - ``total_sleep_min``: TST, number of sleep epochs.
    - ``waso_min``: wake epochs within SPT (``nan`` without sleep).
    - ``wake_min``: all wake epochs in TIB (pre-sleep, WASO and final wake).
    - ``n1_min`` ... ``rem_min``, ``nrem_min`` = N1+N2+N3; ``*_pct`` = % of TST.
    - ``sleep_efficiency_pct``: 100 * TST / TIB.
    - ``sleep_onset_latency_min``: lights off to the first sleep epoch.
    - ``rem_latency_min``: sleep onset to the first REM epoch (AASM definition).
    - ``rem_latency_from_start_min``: lights off (start of TIB) to the first REM epoch;
      this is YASA's ``Lat_REM``, so ``rem_latency_min`` = ``Lat_REM - SOL``.
    - ``awakenings``: bouts of consecutive wake within SPT (the final awakening after
      the last sleep epoch is not counted).
    - ``stage_shifts``: changes of stage between consecutive scored epochs over TIB
      (sleep onset and the final awakening included).

    Unscored epochs (negative codes: ``?``, movement time, artefacts) count towards TIB
    and SPT (time passes) but never as sleep or wake, so TST + WASO can be less than
    SPT. For awakenings and stage shifts, unscored epochs are skipped: ``W ? W`` is one
    wake bout and ``N2 ? N2`` no shift. Epochs outside TIB are ignored entirely.

    Differences from ``yasa.sleep_statistics`` (which takes the array as already cropped
    to TIB): YASA's TIB is the whole array, including leading/trailing unscored epochs;
    here the default TIB starts and ends with a scored epoch. On the same TIB, TIB,
    SPT, WASO, TST, stage minutes, percentages, SE and SOL agree exactly.
    """
    sl = time_in_bed_slice(hypnogram, lights_off, lights_on, notices)
    codes = hypnogram.codes[sl]
    ep_min = hypnogram.epoch_sec / 60.0
    three = hypnogram.n_classes == 3
    is_sleep = codes > W
    is_rem = codes == (2 if three else R)
    sleep_idx = np.flatnonzero(is_sleep)
    has_sleep = sleep_idx.size > 0
    nan = math.nan

    tib = codes.size * ep_min
    if has_sleep:
        spt_codes = codes[sleep_idx[0]: sleep_idx[-1] + 1]
        spt = spt_codes.size * ep_min
        waso = float(np.count_nonzero(spt_codes == W)) * ep_min
        sol = float(sleep_idx[0]) * ep_min
    else:
        spt_codes = codes[:0]
        spt, waso, sol = 0.0, nan, nan
    tst = float(np.count_nonzero(is_sleep)) * ep_min
    if three:
        n1 = n2 = n3 = nan
        nrem = float(np.count_nonzero(codes == 1)) * ep_min
    else:
        n1, n2, n3 = (float(np.count_nonzero(codes == c)) * ep_min for c in (N1, N2, N3))
        nrem = n1 + n2 + n3
    rem = float(np.count_nonzero(is_rem)) * ep_min
    rem_idx = np.flatnonzero(is_rem)
    rem_lat_start = float(rem_idx[0]) * ep_min if rem_idx.size else nan
    rem_lat = rem_lat_start - sol if rem_idx.size else nan

    def pct(x: float) -> float:
        return 100.0 * x / tst if tst > 0 else nan

    scored_spt = spt_codes[spt_codes >= 0]
    wake_spt = scored_spt == W
    awakenings = int(np.count_nonzero(wake_spt[1:] & ~wake_spt[:-1]))
    scored_tib = codes[codes >= 0]
    shifts = int(np.count_nonzero(np.diff(scored_tib) != 0))

    stats = {
        "time_in_bed_min": tib,
        "sleep_period_min": spt,
        "total_sleep_min": tst,
        "waso_min": waso,
        "wake_min": float(np.count_nonzero(codes == W)) * ep_min,
        "n1_min": n1,
        "n2_min": n2,
        "n3_min": n3,
        "nrem_min": nrem,
        "rem_min": rem,
        "n1_pct": pct(n1),
        "n2_pct": pct(n2),
        "n3_pct": pct(n3),
        "rem_pct": pct(rem),
        "sleep_efficiency_pct": 100.0 * tst / tib,
        "sleep_onset_latency_min": sol,
        "rem_latency_min": rem_lat,
        "rem_latency_from_start_min": rem_lat_start,
        "awakenings": float(awakenings),
        "stage_shifts": float(shifts),
    }
    return {k: float(stats[k]) for k in STAT_KEYS}


def stage_minutes(hypnogram: Hypnogram) -> dict[str, float]:
    """Minutes of each stage over the whole hypnogram (plus ``"?"`` for unscored)."""
    ep_min = hypnogram.epoch_sec / 60.0
    out = {name: float(np.count_nonzero(hypnogram.codes == i)) * ep_min
           for i, name in enumerate(hypnogram.stage_names)}
    out["?"] = float(np.count_nonzero(hypnogram.codes < 0)) * ep_min  # unscored
    return out


def json_safe(obj: Any) -> Any:
    """Copy of a (nested) dict/list that strict JSON can hold.

    ``nan``/``inf`` become ``None``; NumPy scalars and arrays, ``datetime``/``date``
    (ISO 8601), paths and sets are converted; dict keys become strings.
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(x) for k, x in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(x) for x in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    return obj
