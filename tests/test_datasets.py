"""PSG recordings -> nights: label alignment, crop, cache, directory loading, ``info``."""

from __future__ import annotations

import datetime as dt
import json
import os

import mne
import numpy as np
import pytest

from conftest import SLEEPEDF_SC_CHANNELS, write_psg_edf
from hypnoscope.cli import main
from hypnoscope.datasets import (
    Night,
    describe_nights,
    load_feature_dir,
    split_modalities,
)
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io import psg as hio
from hypnoscope.io.hypnograms import read_edf_hypnogram
from hypnoscope.io.recordings import (
    find_hypnogram,
    place_hypnogram,
    recording_stem,
    sleepedf_ids,
)
from hypnoscope.signal.epochs import epoch_signals
from hypnoscope.signal.nights import (
    DatasetLoadError,
    default_cache_dir,
    load_psg_dir,
    load_recording,
)

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
    night = load_recording(raw, read_edf_hypnogram(hyp), crop_wake_min=1.0,
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

    monkeypatch.setattr("hypnoscope.signal.nights.read_psg_checked", boom)
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


def test_recording_stem_and_find_hypnogram_in_a_folder(tmp_path):
    assert recording_stem("SC4001E0-PSG.edf") == "SC4001E0"
    assert recording_stem(tmp_path / "night_psg.BDF") == "night"
    assert recording_stem("night.edf") == "night" == sleepedf_ids("night_PSG.edf")[0]
    psg = tmp_path / "n1-PSG.edf"
    psg.touch()
    refs = tmp_path / "refs"
    refs.mkdir()
    assert find_hypnogram(psg) is None and find_hypnogram(psg, refs) is None
    for name in ("n10.hypnogram.edf", "n1.hypnogram.png", "n1.tsv"):
        (refs / name).touch()
    # another recording's file (n10) and unreadable formats (png) are never taken
    assert find_hypnogram(psg, refs) == refs / "n1.tsv"
    (refs / "n1.Hypnogram.TSV").touch()
    assert find_hypnogram(psg, refs) == refs / "n1.Hypnogram.TSV"  # marked before bare
    (refs / "n1.hypnogram.edf").touch()
    assert find_hypnogram(psg, refs) == refs / "n1.hypnogram.edf"  # EDF preferred
    (refs / "n1-Hypnogram.txt").touch()
    assert find_hypnogram(psg, refs) == refs / "n1-Hypnogram.txt"  # exact name first
    # Sleep-EDF pairing in another folder, before the staged-output names
    (refs / "SC4001E0.hypnogram.edf").touch()
    (refs / "SC4001EC-Hypnogram.edf").touch()
    assert find_hypnogram(tmp_path / "SC4001E0-PSG.edf", refs).name == "SC4001EC-Hypnogram.edf"


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
    hyp = read_edf_hypnogram(hyp_file)
    n_signal = int(np.flatnonzero(hyp.codes >= 0)[-1]) + 1 + 20
    assert n_signal < hyp.n_epochs
    psg = write_psg_edf(tmp_path / "SC4001E0-PSG.edf", duration_sec=30.0 * n_signal,
                        channels={"EEG Fpz-Cz": 10.0, "EMG submental": 1.0})
    # the synthetic PSG starts in 2020, the real scoring in 1989: another recording
    with pytest.raises(ValueError, match=r"the hypnogram starts at 1989-04-24 16:13:00 but "
                                         r"the recording at 2020-01-01 22:30:00: .* days"):
        load_recording(psg, hyp_file, sfreq=10.0, preprocessing="none", cache=False)
    with pytest.raises(ValueError, match="no overlap - is this the hypnogram of another"):
        load_recording(psg, hyp_file, sfreq=10.0, preprocessing="none", cache=False,
                       max_start_offset_sec=None)
    # align="onset" ignores the start times (epochs from the recording start)
    night = load_recording(psg, hyp_file, sfreq=10.0, preprocessing="none", cache=False,
                           align="onset")
    sl = hyp.sleep_period_slice(30.0)
    assert night.n_epochs == sl.stop - sl.start
    assert np.array_equal(night.y, hyp.codes[sl])
    assert night.y[:60].tolist() == [0] * 60  # 30 min of wake before the first sleep
    assert night.X.shape[1:] == (2, 300)
    assert night.meta["crop"]["n_epochs_uncropped"] == n_signal
    assert night.meta["settings"]["align"] == "onset"


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


# ------------------------------------------------------------ hypnogram placement
def test_place_hypnogram_rules(caplog):
    hyp = Hypnogram(["?", "?", "W", "N1", "N2", "W"], start_time=START)
    later = START + dt.timedelta(seconds=60)
    # same start: onset_sec as is, nothing to note
    assert place_hypnogram(hyp, 100.0, 600.0, START) == (hyp, 0.0, [])
    # hypnogram starts 60 s after the recording: its epochs move 60 s later
    h, onset, notes = place_hypnogram(hyp.copy(start_time=later), 100.0, 600.0, START)
    assert onset == 60.0 and h.n_epochs == 6 and "+60 s" in notes[0]
    # starts 45 s before: the 2 unscored epochs before the recording are dropped
    h, onset, notes = place_hypnogram(hyp, 100.0, 600.0, later + dt.timedelta(seconds=-15))
    assert onset == 15.0 and h.codes.tolist() == hyp.codes[2:].tolist()
    assert "2 hypnogram epoch(s) before the recording start dropped (0 scored)" in notes[1]
    # ... but scored epochs before the start beyond the limit mean another recording
    with pytest.raises(ValueError, match="3 scored hypnogram epochs fall before"):
        place_hypnogram(hyp, 100.0, 600.0, START + dt.timedelta(seconds=150),
                        max_scored_overhang_epochs=2, max_start_offset_sec=None)
    # no overlap at all (another day)
    with pytest.raises(ValueError, match="no overlap"):
        place_hypnogram(hyp, 100.0, 600.0, START + dt.timedelta(days=1),
                        max_start_offset_sec=None)
    # align="onset" or an unknown start time: onset_sec counts from the recording start
    shifted = hyp.copy(onset_sec=30.0)
    assert place_hypnogram(shifted, 100.0, 600.0, later, align="onset")[1] == 30.0
    assert place_hypnogram(shifted.copy(start_time=None), 100.0, 600.0, later)[1] == 30.0
    # an onset between samples is rounded to the nearest sample
    h, onset, notes = place_hypnogram(hyp.copy(onset_sec=0.126), 100.0, 600.0, None)
    assert onset == pytest.approx(0.13) and "rounded" in notes[0]
    with pytest.raises(ValueError, match="after the end"):
        place_hypnogram(hyp.copy(onset_sec=700.0, start_time=None), 100.0, 600.0, None)
    with pytest.raises(ValueError, match="align must be"):
        place_hypnogram(hyp, 100.0, 600.0, START, align="nearest")


def test_load_recording_applies_start_time_offset(tmp_path):
    psg = write_psg_edf(tmp_path / "SC4001E0-PSG.edf", duration_sec=DURATION, seed=0)
    # scoring exported with its own start time, 90 s after the PSG's -> epochs at 90 s
    hyp = Hypnogram(STAGES[:15], start_time=START + dt.timedelta(seconds=90))
    hyp_file = hyp.to_edf(tmp_path / "SC4001EC-Hypnogram.edf")
    # (more than the default 60 s between the header start times: refused, both named)
    with pytest.raises(ValueError, match=r"SC4001EC-Hypnogram\.edf: the hypnogram starts at "
                                         r"2020-01-01 22:31:30 but the recording at "
                                         r"2020-01-01 22:30:00: 90 s after it, more than the "
                                         r"60 s allowed"):
        load_recording(psg, hyp_file, crop_wake_min=None, preprocessing="none", cache=False)
    night = load_recording(psg, hyp_file, crop_wake_min=None, preprocessing="none",
                           cache=False, max_start_offset_sec=120)
    rec = hio.read_psg(psg)
    assert np.allclose(night.onsets_sec, 90.0 + 30.0 * np.arange(17))
    assert np.allclose(night.X, epoch_signals(rec.data, 100.0, onset_sec=90.0))
    assert np.array_equal(night.y[:15], hyp.codes) and (night.y[15:] == -100).all()
    assert any("+90 s" in w for w in night.meta["reader"]["warnings"])
    # the same hypnogram placed by onset only starts at 0 s (3 epochs more)
    by_onset = load_recording(psg, hyp_file, crop_wake_min=None, preprocessing="none",
                              cache=False, align="onset")
    assert by_onset.n_epochs == 20 and by_onset.onsets_sec[0] == 0.0
    assert np.array_equal(by_onset.y[:15], hyp.codes)
    # a hypnogram written without a start time is placed by its onset alone
    unknown = hyp.copy(start_time=None).to_edf(tmp_path / "SC4001EC-Hypnogram.edf")
    night = load_recording(psg, unknown, crop_wake_min=None, cache=False)
    assert night.onsets_sec[0] == 0.0 and np.array_equal(night.y[:15], hyp.codes)


# ------------------------------------------------------------ sequences
# ------------------------------------------------------------ feature directories
def test_load_feature_dir_and_describe(tmp_path):
    d = tmp_path / "feat"
    d.mkdir()
    y1 = np.array([0, 1, 2, 2, -100])
    np.savez(d / "07_night1.npz", features=np.ones((5, 3, 4)), labels=y1,
             onsets_sec=30.0 * np.arange(5))
    np.savez(d / "rec_b.npz", features=np.zeros((2, 3, 4)), labels=[3, 4])
    (d / "rec_b.json").write_text(json.dumps({"subject_id": "12",
                                              "channel_names": ["Fpz", "Pz", "EOG"]}))
    nights = load_feature_dir(d)
    assert [(n.subject_id, n.night_id) for n in nights] == [("07", "07_night1"),
                                                           ("12", "rec_b")]
    assert nights[0].X.dtype == np.float32 and nights[0].y.tolist() == y1.tolist()
    assert nights[0].onsets_sec.tolist() == [0, 30, 60, 90, 120]
    assert nights[1].channels == ["Fpz", "Pz", "EOG"] and nights[1].onsets_sec is None
    info = describe_nights(nights)
    assert info["n_subjects"] == 2 and info["n_epochs"] == 7 and info["n_scored_epochs"] == 6
    assert info["epochs_per_class"] == {"W": 1, "N1": 1, "N2": 2, "N3": 1, "R": 1}
    assert info["epoch_shape"] == [3, 4] and info["kind"] == "features"
    with pytest.raises(ValueError, match="subject-pattern"):
        load_feature_dir(d, subject_pattern=r"^s(\d+)")
    np.savez(d / "09_bad.npz", features=np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"09_bad.npz: missing array\(s\) \['labels'\]"):
        load_feature_dir(d)
    with pytest.raises(FileNotFoundError, match="no .npz"):
        load_feature_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_feature_dir(tmp_path / "absent")


def test_night_validation():
    n = Night(X=np.zeros((3, 2)), y=[0, -1, -5], subject_id="s", night_id="n")
    assert n.y.tolist() == [0, -100, -100] and n.scored.tolist() == [True, False, False]
    with pytest.raises(ValueError, match="night n: 3 epochs of data but 2 labels"):
        Night(X=np.zeros((3, 2)), y=[0, 1], subject_id="s", night_id="n")
    with pytest.raises(ValueError, match="kind must be"):
        Night(X=np.zeros((1, 2)), y=[0], subject_id="s", night_id="n", kind="images")
    with pytest.raises(ValueError, match="needs kind='signals'"):
        split_modalities(n)


def test_load_recording_pairing_strict_and_label_map(tmp_path):
    from hypnoscope.notices import StrictModeError

    psg, hyp_file = _pair(tmp_path)
    # the Sleep-EDF convention: same header start, onsets from the PSG start
    night = load_recording(psg, hyp_file, crop_wake_min=None, preprocessing="none",
                           cache=False)
    assert night.onsets_sec[0] == 0.0 and night.meta["notices"] == []
    # the hypnogram of another night (same length, start 46 h later): refused
    other = Hypnogram(STAGES, start_time=START + dt.timedelta(hours=46)).to_edf(
        tmp_path / "other-Hypnogram.edf")
    with pytest.raises(ValueError, match=r"other-Hypnogram\.edf: the hypnogram starts at "
                                         r"2020-01-03 20:30:00 but the recording at "
                                         r"2020-01-01 22:30:00: 46\.0 h after it"):
        load_recording(psg, other, preprocessing="none", cache=False)
    # site labels through label_map (also part of the cache key)
    tsv = tmp_path / "SC4001E0.tsv"
    tsv.write_text("onset\tduration\tstage\n0\t120\tWach\n120\t30\tNREM1\n150\t60\tNREM2\n"
                   "210\t30\tN3\n240\t30\tR\n270\t30\t?\n300\t300\tWach\n")
    with pytest.raises(ValueError, match=r"unknown stage label\(s\) 'Wach' \(row 1, line 2\)"):
        load_recording(psg, tsv, preprocessing="none", cache=False)
    lm = {"Wach": "W", "NREM1": "N1", "NREM2": "N2"}
    night = load_recording(psg, tsv, crop_wake_min=None, preprocessing="none",
                           cache=tmp_path / "cache", label_map=lm)
    assert night.y.tolist() == Hypnogram(STAGES).codes.tolist()
    assert night.meta["settings"]["label_map"] == {k.lower(): v for k, v in lm.items()}
    # strict: a reader warning (µV values under an mV header, rescaled) fails, also when
    # the night comes from the cache
    bad = write_psg_edf(tmp_path / "SC4002E0-PSG.edf", duration_sec=DURATION,
                        amplitude_uv=3e4)
    loose = load_recording(bad, None, preprocessing="none", cache=tmp_path / "cache")
    assert {n["code"] for n in loose.meta["notices"]} == {"units-rescaled"}
    for _ in range(2):
        with pytest.raises(StrictModeError, match=r"SC4002E0-PSG\.edf: \d+ warning\(s\) in "
                                                  r"strict mode.*rescaled by 0\.001"):
            load_recording(bad, None, preprocessing="none", cache=tmp_path / "cache",
                           strict=True)
