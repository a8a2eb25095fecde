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
