"""Sleep statistics: constructed hypnograms with hand-computed answers, and YASA on the
54 real Sleep-EDF hypnograms."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest

from hypnoscope.evaluation.sleepstats import STAT_KEYS, sleep_statistics, time_in_bed_slice
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import read_hypnogram

ISSUE_KEYS = [
    "time_in_bed_min", "sleep_period_min", "total_sleep_min", "waso_min", "wake_min",
    "n1_min", "n2_min", "n3_min", "nrem_min", "rem_min", "n1_pct", "n2_pct", "n3_pct",
    "rem_pct", "sleep_efficiency_pct", "sleep_onset_latency_min", "rem_latency_min",
    "rem_latency_from_start_min", "awakenings", "stage_shifts",
]

#   0 1 2  3  4  5 6  7  8  9 10 11 12 13 14 15 16
NIGHT = "W W N1 N2 N2 W N2 N3 N3 R R W ? N2 R W W".split()
EXPECTED = {
    "time_in_bed_min": 8.5, "sleep_period_min": 6.5, "total_sleep_min": 5.0,
    "waso_min": 1.0, "wake_min": 3.0, "n1_min": 0.5, "n2_min": 2.0, "n3_min": 1.0,
    "nrem_min": 3.5, "rem_min": 1.5, "n1_pct": 10.0, "n2_pct": 40.0, "n3_pct": 20.0,
    "rem_pct": 30.0, "sleep_efficiency_pct": 100 * 5.0 / 8.5,
    "sleep_onset_latency_min": 1.0, "rem_latency_min": 3.5,
    "rem_latency_from_start_min": 4.5, "awakenings": 2.0, "stage_shifts": 10.0,
}


def test_keys_are_exactly_the_documented_ones():
    stats = sleep_statistics(Hypnogram(NIGHT))
    assert list(stats) == ISSUE_KEYS == list(STAT_KEYS)
    assert all(isinstance(v, float) for v in stats.values())


def test_constructed_night_hand_computed():
    stats = sleep_statistics(Hypnogram(NIGHT))
    assert stats == pytest.approx(EXPECTED)


def test_leading_and_trailing_unscored_are_not_time_in_bed():
    hyp = Hypnogram(["?", "?"] + NIGHT + ["?"] * 5, onset_sec=600.0)
    assert sleep_statistics(hyp) == pytest.approx(EXPECTED)
    assert time_in_bed_slice(hyp) == slice(2, 2 + len(NIGHT))


def test_epoch_length_scales_minutes():
    stats = sleep_statistics(Hypnogram(NIGHT, epoch_sec=20))
    for k in ("total_sleep_min", "waso_min", "rem_latency_min", "time_in_bed_min"):
        assert stats[k] == pytest.approx(EXPECTED[k] * 20 / 30)
    assert stats["sleep_efficiency_pct"] == pytest.approx(EXPECTED["sleep_efficiency_pct"])
    assert stats["awakenings"] == EXPECTED["awakenings"]


def test_lights_bound_time_in_bed():
    onset = 300.0  # the hypnogram starts 5 min into the recording
    hyp = Hypnogram(NIGHT, onset_sec=onset)
    # lights off at the start of epoch 2 (first N1), lights on at the end of epoch 14 (REM)
    stats = sleep_statistics(hyp, lights_off=onset + 60, lights_on=onset + 15 * 30)
    assert stats["time_in_bed_min"] == 6.5
    assert stats["sleep_onset_latency_min"] == 0.0
    assert stats["sleep_efficiency_pct"] == pytest.approx(100 * 5.0 / 6.5)
    assert stats["rem_latency_from_start_min"] == stats["rem_latency_min"] == 3.5
    assert stats["wake_min"] == 1.0
    assert stats["stage_shifts"] == 8.0  # no W->N1 at onset, no R->W at the end
    # lights-off inside an epoch: the epoch counts when its midpoint is in bed
    assert sleep_statistics(hyp, lights_off=onset + 44)["time_in_bed_min"] == 8.5 - 0.5
    assert sleep_statistics(hyp, lights_off=onset + 46)["time_in_bed_min"] == 8.5 - 1.0
    with pytest.raises(ValueError, match="must be before lights_on"):
        sleep_statistics(hyp, lights_off=900, lights_on=600)
    with pytest.raises(ValueError, match="contains no epoch"):
        sleep_statistics(hyp, lights_off=10_000)


def test_no_sleep_and_no_rem():
    wake = sleep_statistics(Hypnogram(["W"] * 10))
    assert wake["total_sleep_min"] == 0.0 and wake["sleep_period_min"] == 0.0
    assert wake["sleep_efficiency_pct"] == 0.0 and wake["wake_min"] == 5.0
    for k in ("waso_min", "sleep_onset_latency_min", "rem_latency_min", "n2_pct", "rem_pct"):
        assert math.isnan(wake[k])
    assert wake["awakenings"] == 0.0 and wake["stage_shifts"] == 0.0
    no_rem = sleep_statistics(Hypnogram("W N1 N2 N2 N3 W".split()))
    assert math.isnan(no_rem["rem_latency_min"])
    assert math.isnan(no_rem["rem_latency_from_start_min"])
    assert no_rem["rem_pct"] == 0.0
    with pytest.raises(ValueError, match="no scored epoch"):
        sleep_statistics(Hypnogram(["?"] * 4))


def test_three_class_hypnogram():
    hyp3 = Hypnogram(NIGHT).as_3class()
    stats = sleep_statistics(hyp3)
    for k in ("n1_min", "n2_min", "n3_min", "n1_pct"):
        assert math.isnan(stats[k])
    for k in ("total_sleep_min", "nrem_min", "rem_min", "waso_min", "rem_latency_min",
              "awakenings", "sleep_efficiency_pct"):
        assert stats[k] == pytest.approx(EXPECTED[k])
    # N1 -> N2 and N2 -> N3 are not shifts in the 3-class view
    assert stats["stage_shifts"] == EXPECTED["stage_shifts"] - 2


# ---------------------------------------------------------------- YASA, real data
@functools.cache
def _real_hypnograms(folder: str) -> tuple[tuple[str, Hypnogram], ...]:
    from pathlib import Path

    paths = sorted(Path(folder).glob("*-Hypnogram.edf"))
    return tuple((p.name, read_hypnogram(p)) for p in paths)


SHARED_WITH_YASA = {  # ours -> yasa.sleep_statistics
    "time_in_bed_min": "TIB", "sleep_period_min": "SPT", "total_sleep_min": "TST",
    "waso_min": "WASO", "n1_min": "N1", "n2_min": "N2", "n3_min": "N3", "nrem_min": "NREM",
    "rem_min": "REM", "n1_pct": "%N1", "n2_pct": "%N2", "n3_pct": "%N3", "rem_pct": "%REM",
    "sleep_efficiency_pct": "SE", "sleep_onset_latency_min": "SOL",
    "rem_latency_from_start_min": "Lat_REM",
}


def _yasa(codes: np.ndarray) -> dict[str, float]:
    yasa = pytest.importorskip("yasa")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return yasa.sleep_statistics(codes, sf_hyp=1 / 30)


def test_real_hypnograms_agree_with_yasa(shared_data):
    nights = _real_hypnograms(str(shared_data / "sleepedf_hypnograms" / "sleep-cassette"))
    assert len(nights) == 54
    for name, hyp in nights:
        tib = time_in_bed_slice(hyp)
        # 1) the whole annotated day and 2) the usual crop (30 min of wake around sleep)
        windows = [(None, None), (float(hyp.onsets[hyp.sleep_period_slice()][0]),
                                  float(hyp.onsets[hyp.sleep_period_slice()][-1] + 30))]
        for off, on in windows:
            ours = sleep_statistics(hyp, lights_off=off, lights_on=on)
            sl = time_in_bed_slice(hyp, off, on)
            theirs = _yasa(hyp.codes[sl])  # YASA takes the array already cropped to TIB
            for k, yk in SHARED_WITH_YASA.items():
                assert ours[k] == theirs[yk], (name, k, off)
            # documented difference: AASM REM latency is measured from sleep onset
            assert ours["rem_latency_min"] == theirs["Lat_REM"] - theirs["SOL"], name
        # documented difference: YASA's TIB is the whole array, ours drops the leading and
        # trailing unscored epochs (Sleep-EDF files end with a long '?')
        whole = _yasa(hyp.codes)
        n_pad = hyp.n_epochs - (tib.stop - tib.start)
        assert whole["TIB"] - sleep_statistics(hyp)["time_in_bed_min"] == n_pad * 0.5
        assert whole["TST"] == sleep_statistics(hyp)["total_sleep_min"]


def test_real_hypnograms_wake_and_awakenings_vs_yasa_hypnogram(shared_data):
    yasa = pytest.importorskip("yasa")
    nights = _real_hypnograms(str(shared_data / "sleepedf_hypnograms" / "sleep-cassette"))
    names = {0: "WAKE", 1: "N1", 2: "N2", 3: "N3", 4: "REM"}
    n_checked = 0
    for name, hyp in nights:
        codes = hyp.codes[time_in_bed_slice(hyp)]
        yh = yasa.Hypnogram([names.get(int(c), "UNS") for c in codes], freq="30s")
        theirs = yh.sleep_statistics()
        ours = sleep_statistics(hyp)
        assert ours["wake_min"] == pytest.approx(theirs["WAKE"], abs=1e-4), name
        assert ours["rem_latency_from_start_min"] == pytest.approx(theirs["Lat_REM"],
                                                                   abs=1e-4), name
        # YASA's SFI counts every sleep -> wake transition per hour of TST, the final
        # awakening included; ours counts wake bouts inside the sleep period only.
        # They match exactly when no unscored epoch sits inside the sleep period.
        sleep = np.flatnonzero(codes > 0)
        if (codes[sleep[0]: sleep[-1] + 2] >= 0).all():
            transitions = round(theirs["SFI"] * ours["total_sleep_min"] / 60)
            final = int(sleep[-1] + 1 < codes.size and codes[sleep[-1] + 1] == 0)
            assert ours["awakenings"] + final == transitions, name
            n_checked += 1
    assert n_checked >= 20
