"""PSG recordings -> nights: label alignment, crop, cache, directory loading, ``info``."""

from __future__ import annotations

import datetime as dt
import json
import os

import mne
import numpy as np
import pytest

from conftest import SLEEPEDF_SC_CHANNELS, write_psg_edf
from hypnoscope import io as hio
from hypnoscope.cli import main
from hypnoscope.datasets import (
    DatasetLoadError,
    default_cache_dir,
    find_hypnogram,
    load_psg_dir,
    load_recording,
    sleepedf_ids,
    split_modalities,
)
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.preprocessing import epoch_signals

START = dt.datetime(2020, 1, 1, 22, 30, 0)
# 20 epochs: 4 W, 6 sleep (N1 N2 N2 N3 R ?), 10 W
STAGES = ["W"] * 4 + ["N1", "N2", "N2", "N3", "R", "?"] + ["W"] * 10
DURATION = 600.0


def _pair(folder, record="SC4001E0", hyp_record="SC4001EC", stages=STAGES,
          duration=DURATION, seed=0, channels=None):
    psg = write_psg_edf(folder / f"{record}-PSG.edf", duration_sec=duration, seed=seed,
                        channels=channels)
    hyp = Hypnogram(stages, start_time=START).to_edf(folder / f"{hyp_record}-Hypnogram.edf")
    return psg, hyp


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_load_recording_aligns_labels_and_crops(tmp_path):
    psg, hyp = _pair(tmp_path)
    night = load_recording(psg, hyp, crop_wake_min=1.0, preprocessing="none", cache=False)
    # sleep spans epochs 4..9 (the '?' at 9 is not sleep; last sleep is R at 8);
    # 1 min = 2 epochs of wake kept on each side -> epochs 2..10
    codes = Hypnogram(STAGES).codes
    assert night.kind == "signals" and night.sfreq == 100.0
    assert night.X.shape == (9, 4, 3000) and night.X.dtype == np.float32
    assert np.array_equal(night.y, codes[2:11])
    assert np.allclose(night.onsets_sec, 30.0 * np.arange(2, 11))
    assert night.channels == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]
    assert night.roles == ["eeg", "eeg", "eog", "emg_envelope"]
    assert (night.subject_id, night.night_id) == ("SC400", "SC4001")
    assert night.meta["crop"] == {"first_epoch": 2, "n_epochs_uncropped": 20,
                                  "crop_wake_min": 1.0}
    # the signal values are the reader's, cut at the same epochs
    rec = hio.read_psg(psg)
    assert np.allclose(night.X, epoch_signals(rec.data, 100.0)[2:11])
    # default 30 min of wake keeps the whole (short) recording
    full = load_recording(psg, hyp, preprocessing="none", cache=False)
    assert full.n_epochs == 20 and np.array_equal(full.y, codes)
    assert load_recording(psg, hyp, crop_wake_min=None, cache=False).n_epochs == 20


def test_load_recording_modalities_and_options(tmp_path):
    psg, hyp = _pair(tmp_path)
    night = load_recording(psg, hyp, eeg="EEG Fpz-Cz", include_emg=False, sfreq=50.0,
                           cache=False)
    assert night.channels == ["EEG Fpz-Cz", "EOG horizontal"] and night.X.shape[2] == 1500
    mods = split_modalities(night)
    assert set(mods) == {"eeg", "eog"} and mods["eeg"].shape == (night.n_epochs, 1, 1500)
    # default preprocessing (band-pass + z-score): every channel has ~unit variance
    assert np.allclose(night.X.std(axis=(0, 2)), 1.0, atol=0.05)
    with pytest.raises(ValueError, match="EEG channel 'C3-M2' not found.*EEG Fpz-Cz"):
        load_recording(psg, hyp, eeg="C3-M2", cache=False)


def test_hypnogram_length_rules(tmp_path):
    # hypnogram longer than the signal by unscored epochs: truncated
    psg, hyp = _pair(tmp_path, stages=STAGES + ["?"] * 8)
    night = load_recording(psg, hyp, crop_wake_min=None, cache=False)
    assert night.n_epochs == 20
    # shorter hypnogram: padded with unscored epochs
    psg, hyp = _pair(tmp_path, stages=STAGES[:15])
    night = load_recording(psg, hyp, crop_wake_min=None, cache=False)
    assert night.n_epochs == 20 and (night.y[15:] == -100).all()
    # a hypnogram with many scored epochs past the end belongs to another recording
    psg, hyp = _pair(tmp_path, stages=STAGES + ["N2"] * 40)
    with pytest.raises(ValueError, match="another recording"):
        load_recording(psg, hyp, cache=False)
    # no sleep at all: the crop cannot be made
    psg, hyp = _pair(tmp_path, stages=["W"] * 20)
    with pytest.raises(ValueError, match="no sleep epoch"):
        load_recording(psg, hyp, cache=False)
    # without a hypnogram: all unscored, no crop
    night = load_recording(psg, None, cache=False)
    assert night.n_epochs == 20 and (night.y == -100).all()


def test_load_recording_from_raw(tmp_path):
    psg, hyp = _pair(tmp_path)
    raw = mne.io.read_raw_edf(psg, preload=True, verbose="error")
    night = load_recording(raw, Hypnogram.read_edf(hyp), crop_wake_min=1.0,
                           preprocessing="none", subject_id="p1", night_id="p1-n1")
    ref = load_recording(psg, hyp, crop_wake_min=1.0, preprocessing="none", cache=False)
    assert (night.subject_id, night.night_id) == ("p1", "p1-n1")
    assert np.array_equal(night.y, ref.y) and np.allclose(night.X, ref.X, atol=1e-3)


def test_cache_avoids_recomputing(tmp_path, monkeypatch, _cache_dir):
    psg, hyp = _pair(tmp_path)
    first = load_recording(psg, hyp, crop_wake_min=1.0)
    files = sorted((_cache_dir / "recordings").glob("*.npz"))
    assert len(files) == 1 and files[0].name.startswith("SC4001E0-")
    assert not [p for p in _cache_dir.rglob("*") if ".part" in p.name]

    def boom(*args, **kwargs):
        raise AssertionError("read_psg called although the result is cached")

    monkeypatch.setattr(hio, "read_psg", boom)
    second = load_recording(psg, hyp, crop_wake_min=1.0)
    assert np.array_equal(first.X, second.X) and np.array_equal(first.y, second.y)
    assert second.channels == first.channels and second.roles == first.roles
    assert np.array_equal(second.onsets_sec, first.onsets_sec)
    assert second.meta["cache_file"] == str(files[0])
    # another configuration or a modified file is a different key -> recomputed
    for kwargs in ({"crop_wake_min": 2.0}, {"preprocessing": "none"}, {"sfreq": 50.0}):
        with pytest.raises(AssertionError, match="read_psg called"):
            load_recording(psg, hyp, **kwargs)
    st = os.stat(psg)
    os.utime(psg, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="read_psg called"):
        load_recording(psg, hyp, crop_wake_min=1.0)


def test_damaged_cache_is_rebuilt(tmp_path, _cache_dir):
    psg, hyp = _pair(tmp_path)
    ref = load_recording(psg, hyp, crop_wake_min=1.0)
    cached, = (_cache_dir / "recordings").glob("*.npz")
    cached.write_bytes(b"not an npz")
    again = load_recording(psg, hyp, crop_wake_min=1.0)
    assert np.array_equal(again.X, ref.X)
    with np.load(cached) as z:  # rewritten correctly
        assert json.loads(str(z["info"]))["roles"] == ref.roles
    assert default_cache_dir() == _cache_dir


def test_sleepedf_ids_and_find_hypnogram(tmp_path):
    assert sleepedf_ids("SC4011E0-PSG.edf") == ("SC401", "SC4011")
    assert sleepedf_ids("ST7022J0-PSG.edf") == ("ST702", "ST7022")
    assert sleepedf_ids("night3.edf") == ("night3", "night3")
    assert sleepedf_ids("p07_n2-PSG.edf", r"^p(\d+)") == ("07", "p07_n2")
    with pytest.raises(ValueError, match="subject pattern"):
        sleepedf_ids("x.edf", r"^p(\d+)")
    psg, hyp = _pair(tmp_path)
    assert find_hypnogram(psg) == hyp
    exact = tmp_path / "rec-PSG.edf"
    exact.touch()
    (tmp_path / "rec-Hypnogram.tsv").touch()
    assert find_hypnogram(exact).name == "rec-Hypnogram.tsv"
    (tmp_path / "SC4001EX-Hypnogram.edf").touch()
    with pytest.raises(ValueError, match="several hypnograms"):
        find_hypnogram(psg)


def test_load_psg_dir_reports_failures_at_end(tmp_path):
    d = tmp_path / "sc"
    small = {"EEG Fpz-Cz": 100.0, "EOG horizontal": 100.0}
    _pair(d, "SC4001E0", "SC4001EC", channels=small, seed=1)
    _pair(d, "SC4002E0", "SC4002EC", channels=small, seed=2)
    _pair(d, "SC4011E0", "SC4011EH", channels=small, seed=3)
    bad, _ = _pair(d, "SC4021E0", "SC4021EH", channels=small, seed=4)
    bad.write_bytes(bad.read_bytes()[:-5000])  # truncated EDF
    write_psg_edf(d / "SC4031E0-PSG.edf", duration_sec=DURATION, channels=small)  # no hyp
    with pytest.raises(DatasetLoadError) as exc:
        load_psg_dir(d, crop_wake_min=1.0)
    err = exc.value
    assert [os.path.basename(f) for f, _ in err.failures] == ["SC4021E0-PSG.edf",
                                                             "SC4031E0-PSG.edf"]
    assert "truncated" in err.failures[0][1] and "no hypnogram" in err.failures[1][1]
    assert "2 of 5 recordings" in str(err) and "SC4021E0-PSG.edf" in str(err)
    assert [n.night_id for n in err.nights] == ["SC4001", "SC4002", "SC4011"]
    nights = load_psg_dir(d, crop_wake_min=1.0, on_error="warn")  # from the cache now
    assert [n.subject_id for n in nights] == ["SC400", "SC400", "SC401"]
    assert all(n.n_epochs == 9 for n in nights)
    with pytest.raises(FileNotFoundError, match="no file matching"):
        load_psg_dir(tmp_path / "sc", pattern="*.bdf")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_psg_dir(tmp_path / "missing")


def test_cli_info(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("hypnoscope.cli.COMMAND_MODULES", ["data"])
    psg = write_psg_edf(tmp_path / "SC4001E0-PSG.edf", duration_sec=120.0,
                        channels=SLEEPEDF_SC_CHANNELS)
    assert main(["info", str(psg)]) == 0
    out = capsys.readouterr().out
    assert "EEG Fpz-Cz" in out and "emg_envelope" in out and "Temp rectal" in out
    assert "2020-01-01T22:30:00" in out
    assert main(["info", str(psg), "--json", "--eeg", "EEG Pz-Oz"]) == 0
    info = json.loads(capsys.readouterr().out)
    roles = {c["name"]: c["role"] for c in info["channels"]}
    assert roles["EEG Pz-Oz"] == "eeg" and roles["EEG Fpz-Cz"] is None
    assert roles["EMG submental"] == "emg_envelope" and roles["Resp oro-nasal"] is None
    assert info["duration_sec"] == 120.0
    assert {c["name"]: c["sfreq"] for c in info["channels"]}["EMG submental"] == 1.0
    assert main(["info", str(tmp_path / "none.edf")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["info", str(psg), "--eeg", "C3-M2"]) == 2
    assert "Channels found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["info", "--help"])
    assert exc.value.code == 0 and "--eeg" in capsys.readouterr().out


def test_real_hypnogram_alignment_and_crop(shared_data, tmp_path):
    """A real Sleep-EDF hypnogram (24 h with a long '?' tail) on a synthetic PSG as long
    as the scored part: the tail is cut, the night cropped to sleep +- 30 min."""
    hyp_file = shared_data / "sleepedf_hypnograms/sleep-cassette/SC4001EC-Hypnogram.edf"
    hyp = Hypnogram.read_edf(hyp_file)
    n_signal = int(np.flatnonzero(hyp.codes >= 0)[-1]) + 1 + 20
    assert n_signal < hyp.n_epochs
    psg = write_psg_edf(tmp_path / "SC4001E0-PSG.edf", duration_sec=30.0 * n_signal,
                        channels={"EEG Fpz-Cz": 10.0, "EMG submental": 1.0})
    night = load_recording(psg, hyp_file, sfreq=10.0, preprocessing="none", cache=False)
    sl = hyp.sleep_period_slice(30.0)
    assert night.n_epochs == sl.stop - sl.start
    assert np.array_equal(night.y, hyp.codes[sl])
    assert night.y[:60].tolist() == [0] * 60  # 30 min of wake before the first sleep
    assert night.X.shape[1:] == (2, 300)
    assert night.meta["crop"]["n_epochs_uncropped"] == n_signal
    # the synthetic PSG starts at another time than the real scoring: noted, not fatal
    assert any("differs from the recording start" in w
               for w in night.meta["reader"]["warnings"])


def test_load_psg_dir_reads_simulated_sleepedf_pairs(tmp_path):
    """Integration with the simulator: cassette (1 Hz EMG envelope) and telemetry
    (100 Hz EMG waveform) files, both loaded with the right roles and labels."""
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    hyp = Hypnogram(STAGES, start_time=START)
    for rec_id, mode, seed in (("SC4011E0", "sleep-edf-sc", 1), ("ST7021J0", "telemetry", 2)):
        write_sleepedf_pair(simulate_night(hyp, seed=seed, mode=mode), hyp, tmp_path, rec_id)
    nights = load_psg_dir(tmp_path, crop_wake_min=1.0, cache=False)
    assert [(n.subject_id, n.night_id) for n in nights] == [("SC401", "SC4011"),
                                                           ("ST702", "ST7021")]
    assert nights[0].roles == ["eeg", "eeg", "eog", "emg_envelope"]
    assert nights[1].roles == ["eeg", "eeg", "eog", "emg"]
    for n in nights:
        assert np.array_equal(n.y, hyp.codes[2:11]) and n.X.shape == (9, 4, 3000)
