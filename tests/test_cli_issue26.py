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
