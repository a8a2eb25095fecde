"""Issue #26, CLI and batch: EEG of implausible scale is refused for what it is (not as
unrecognised channels), a parallel batch prints the notices of a serial one and writes the
same summary (with the model), and ``stats`` crops a 24-h scoring as ``stage`` does."""

from __future__ import annotations

import csv
import datetime as dt
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.staging import stage, stage_recording
from hypnoscope.staging.pipeline import SignalQualityError

#: A 115-min night: wake, N1, N2, N3, N2, REM, N2, wake (30-s epochs).
NIGHT = [0] * 20 + [1] * 10 + [2] * 60 + [3] * 40 + [2] * 30 + [4] * 30 + [2] * 30 + [0] * 10
#: The EEG gains of the recordings (1: as simulated).
GAINS = (1, 10, 100)


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> dict[int, Path]:
    """The same simulated night with its EEG channels multiplied by each of :data:`GAINS`
    (EOG and EMG as simulated), one Sleep-EDF pair per gain, each in its own folder."""
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    hyp = Hypnogram(NIGHT, start_time=dt.datetime(2020, 1, 1, 23, 0))
    raw = simulate_night(hyp, seed=1, mode="telemetry")
    eeg = [i for i, c in enumerate(raw.ch_names) if c.startswith("EEG")]
    root = tmp_path_factory.mktemp("gains")
    out = {}
    for gain in GAINS:
        r = raw.copy()
        r._data[eeg] *= gain
        psg, _ = write_sleepedf_pair(r, hyp, root / f"x{gain}", f"ST70{gain % 97:02d}J0")
        out[gain] = Path(psg)
    return out


def _median_epoch_sd(psg: Path, channel: str) -> float:
    """Median over the 30-s epochs of the detrended SD of ``channel`` (µV), as read."""
    from hypnoscope.io.psg import read_psg
    from hypnoscope.signal.quality import recording_quality

    rec = read_psg(psg)
    qr = recording_quality(rec, epoch_sec=30.0)
    return float(np.median(qr.metrics["sd"][:, qr.ch_names.index(channel)]))


# ------------------------------------------------------------------ item 1: EEG x10, x100
def test_eeg_ten_times_too_large_is_staged_as_the_original(nights):
    base = stage(nights[1])
    res = stage_recording(str(nights[10]))
    # the night-relative quality rules see the same night: the same stages, same model
    np.testing.assert_array_equal(res.hypnogram.codes, base.codes)
    assert res.info["model"]["name"] == "default"
    warned = {n.channel for n in res.info["notices"] if n.code == "units-implausible"}
    assert warned == {"EEG Fpz-Cz", "EEG Pz-Oz"}


@pytest.mark.parametrize("model", ["auto", "default"])
def test_eeg_hundred_times_too_large_is_refused_for_its_amplitude(nights, model):
    with pytest.raises(SignalQualityError) as err:
        stage(nights[100], model=model)
    msg = str(err.value)
    assert "recognised" not in msg and "--eeg" not in msg  # they were recognised
    found = dict(re.findall(r"EEG channel '([^']+)' is of implausible amplitude on every "
                            r"epoch \(median 30-s epoch SD (\d+) µV, above the 500 µV that "
                            r"no EEG reaches; plausible: 1-150 µV\)", msg))
    assert set(found) == {"EEG Fpz-Cz", "EEG Pz-Oz"}
    for ch, sd in found.items():  # 100 times the channel's SD at gain 1
        assert int(sd) == pytest.approx(100 * _median_epoch_sd(nights[1], ch), rel=0.01)
    assert msg.endswith("That is a unit or gain mistake, not a sleeper: check the physical "
                        "unit and range (gain) of the channel in the file header, and stage "
                        "a copy with them corrected")
    assert msg.startswith(f"{nights[100]}: " + ("no shipped model can stage it: "
                                                if model == "auto" else
                                                "cannot stage with model 'default': "))


# --------------------------------------------- item 2: --jobs 2 prints what --jobs 1 does
def _stage_cli(cli_handler, caplog, folder: Path, out: Path, jobs: int):
    """Stage ``folder`` with ``hypnoscope stage --jobs N``: the exit code, the notices
    logged (level, message) and the rows of summary.csv."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hypnoscope"):
        code = cli_handler(["stage", str(folder), "--out", str(out), "--no-plot",
                            "--jobs", str(jobs)])
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "hypnoscope"]
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return code, logged, rows


def test_parallel_batch_prints_the_notices_and_summary_of_a_serial_one(
        nights, tmp_path, cli_handler, caplog):
    folder = tmp_path / "in"
    folder.mkdir()
    for gain in GAINS:
        (folder / nights[gain].name).symlink_to(nights[gain])
    code1, serial, rows1 = _stage_cli(cli_handler, caplog, folder, tmp_path / "j1", 1)
    code2, parallel, rows2 = _stage_cli(cli_handler, caplog, folder, tmp_path / "j2", 2)
    assert code1 == code2 == 1  # the x100 recording fails
    # per recording, the same notices in the same order (recordings may interleave)
    for gain in GAINS:
        name = str(folder / nights[gain].name)
        mine1 = [m for m in serial if m[1].startswith(name + ": ")]
        assert mine1 == [m for m in parallel if m[1].startswith(name + ": ")]
        codes = {"model-chosen": "model 'default' was chosen for the channels found (2 EEG, "
                                 "1 EOG)",
                 "short": "short recording: the recording lasts 115 min",
                 "units": "has an implausibly large amplitude"}
        want = {1: ["model-chosen", "short"], 10: ["units", "model-chosen", "short"],
                100: ["units"]}[gain]
        for key in want:
            assert any(codes[key] in m for _, m in mine1), (gain, key)
    assert sorted(serial) == sorted(parallel)
    # summary.csv: the same columns, with the model that staged each recording
    assert list(rows1[0]) == list(rows2[0]) == ["recording", "stem", "status", "model",
                                                "n_epochs", "seconds", "error"]
    for rows in (rows1, rows2):
        assert [(r["stem"], r["status"], r["model"], r["n_epochs"]) for r in rows] == [
            ("ST7001J0", "ok", "default", "230"), ("ST7003J0", "failed", "", ""),
            ("ST7010J0", "ok", "default", "230")]  # x1, x100, x10 in file-name order
        assert "implausible amplitude on every epoch" in rows[1]["error"]


# ------------------------------------------- item 3: stats crops a 24-h scoring as stage
def test_stats_crops_a_24h_scoring_as_stage_does(cli_handler, caplog, capsys):
    import json

    from hypnoscope.cli.demo import demo_hypnogram_path
    from hypnoscope.evaluation.sleepstats import sleep_statistics
    from hypnoscope.io.hypnograms import read_hypnogram

    path = demo_hypnogram_path()  # SC4001EC-Hypnogram.edf: a whole day's scoring
    hyp = read_hypnogram(path)
    codes = hyp.codes
    first = int(np.flatnonzero(codes > 0)[0])
    assert (first, hyp.n_epochs) == (1021, 2880)
    # the night's last consolidated sleep is epoch 1718; after 9 min of wake, five N1
    # epochs (1737-1741) are scattered sleep, not part of the main sleep period
    assert codes[1718] > 0 and (codes[1719:1737] == 0).all() and (codes[1737:1742] == 1).all()
    assert (codes[1742:] <= 0).all()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hypnoscope"):
        assert cli_handler(["stats", str(path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    # time in bed: 30 min before the first sleep epoch to 30 min after epoch 1718
    off, on = (first - 60) * 30.0, (1718 + 1 + 60) * 30.0
    assert (off, on) == (28830.0, 53370.0)
    assert stats["time_in_bed_min"] == (on - off) / 60 == 409.0
    assert stats["total_sleep_min"] == 326.5  # every sleep epoch of the day is inside
    assert stats["sleep_efficiency_pct"] == pytest.approx(100 * 326.5 / 409.0)
    assert stats["sleep_onset_latency_min"] == 30.0
    assert stats["rem_latency_from_start_min"] == 119.0
    assert stats == pytest.approx(sleep_statistics(hyp, lights_off=off, lights_on=on))
    msg = [r.getMessage() for r in caplog.records if r.name == "hypnoscope"]
    assert msg == [f"{path}: the scoring spans 22.1 h; the statistics are over the main "
                   "sleep period plus 30 min of wake either side, as staging crops a "
                   "recording: 00:13:30 (28830 s) to 07:02:30 (53370 s) (6.8 h, taken as "
                   "lights-off and lights-on). Give lights_off/lights_on (--lights-off/"
                   "--lights-on) or crop='off' (--crop none) to change this"]
    # the demo night (first to last sleep epoch +- 30 min) differs only by the scattered
    # N1 at its end and the wake after it: same sleep, 11.5 min more time in bed
    demo = sleep_statistics(hyp.crop_to_sleep(30))
    same = [k for k in stats if k not in ("time_in_bed_min", "wake_min",
                                          "sleep_efficiency_pct")]
    assert {k: stats[k] for k in same} == pytest.approx({k: demo[k] for k in same})
    assert demo["time_in_bed_min"] - stats["time_in_bed_min"] == 11.5

    # --crop none: the whole scored day, as before (SE 24.6 %, SOL 510.5 min)
    assert cli_handler(["stats", str(path), "--json", "--crop", "none"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert (whole["time_in_bed_min"], whole["sleep_onset_latency_min"]) == (1325.0, 510.5)
    assert round(whole["sleep_efficiency_pct"], 1) == 24.6
    # a given lights-off stays; lights-on is the crop's
    assert cli_handler(["stats", str(path), "--json", "--lights-off", "23:43:30"]) == 0
    given = json.loads(capsys.readouterr().out)
    assert given["sleep_onset_latency_min"] == 60.0  # 23:43:30 is 1 h before sleep onset
    assert given["time_in_bed_min"] == (on - (first - 120) * 30.0) / 60


def test_stage_and_stats_share_one_crop():
    from hypnoscope.evaluation import sleepstats
    from hypnoscope.staging import pipeline

    assert pipeline.main_sleep_period is sleepstats.main_sleep_period
    assert pipeline.sleep_period_crop is sleepstats.sleep_period_crop
    codes = np.array([0] * 1000 + [2] * 600 + [0] * 1280)  # 24 h, 5 h of sleep
    assert sleepstats.sleep_period_crop(codes) == slice(940, 1660)
    assert sleepstats.sleep_period_crop(codes, keep_start=True) == slice(0, 1660)
    assert sleepstats.sleep_period_crop(codes, "off") == slice(0, 2880)
    assert sleepstats.sleep_period_crop(codes[:1680]) == slice(0, 1680)  # 14 h: no crop
    assert sleepstats.sleep_period_crop(codes[:1680], "on") == slice(940, 1660)
    assert sleepstats.sleep_period_crop(np.zeros(2880, int)) is None
