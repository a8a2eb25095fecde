"""Tests of PSG reading: channel roles, rates, units, bad input (synthetic EDF files)."""

from __future__ import annotations

import datetime as dt

import mne
import numpy as np
import pytest

from hypnoscope.cli.data import format_recording_info
from hypnoscope.io.channels import guess_role, resolve_channels
from hypnoscope.io.psg import PSGRecording, read_psg, recording_info
from hypnoscope.notices import StrictModeError, notices_of
from hypnoscope.signal.checks import read_psg_checked

TELEMETRY = {"EEG Fpz-Cz": 100.0, "EEG Pz-Oz": 100.0, "EOG horizontal": 100.0,
             "EMG submental": 100.0, "Marker": 10.0}
AASM = {"C4-M1": 256.0, "C3-A2": 256.0, "E1-M2": 256.0, "E2-M1": 256.0,
        "Chin1-Chin2": 256.0, "ECG": 256.0, "Leg L": 256.0}


def _edf_signals(path):
    """Stored samples (physical values as written) per channel, via MNE at native rate."""
    import edfio

    edf = edfio.read_edf(path)
    return {s.label: (np.asarray(s.data), s.sampling_frequency) for s in edf.signals}


def _set_header_units(path, unit: str) -> None:
    """Rewrite every signal's physical-dimension field (simulates a wrong header)."""
    raw = bytearray(path.read_bytes())
    ns = int(raw[252:256].decode())
    off = 256 + ns * (16 + 80)
    for i in range(ns):
        raw[off + 8 * i: off + 8 * i + 8] = unit.ljust(8).encode()
    path.write_bytes(bytes(raw))


# ------------------------------------------------------------------ channel roles
@pytest.mark.parametrize("name, role", [
    ("EEG Fpz-Cz", "eeg"), ("EEG Pz-Oz", "eeg"), ("C4-M1", "eeg"), ("C3-A2", "eeg"),
    ("F4-M1", "eeg"), ("O2-M1", "eeg"), ("EEG C3-A2", "eeg"), ("Fpz-Cz", "eeg"),
    ("EOG horizontal", "eog"), ("E1-M2", "eog"), ("E2-M1", "eog"), ("LOC", "eog"),
    ("ROC", "eog"), ("EOG(L)", "eog"),
    ("EMG submental", "emg"), ("Chin", "emg"), ("EMG chin", "emg"), ("Chin1-Chin2", "emg"),
    ("EMG1-EMG2", "emg"), ("CHIN1", "emg"), ("EMG Chin", "emg"), ("LCHIN", "emg"),
    ("RCHIN", "emg"), ("Chin EMG", "emg"), ("EMG1", "emg"), ("EMG", "emg"),
    ("Submentalis", "emg"), ("Chin-L", "emg"), ("L Chin", "emg"), ("Chin1-Chin3", "emg"),
    ("EMG Chin1-Chin2", "emg"), ("EMG1-EMG3", "emg"), ("Leg EMG", None), ("LLEG1-LLEG2", None),
    ("EMG Leg", None), ("ECG", None), ("M1", None), ("SpO2", None), ("Resp oro-nasal", None),
    ("Temp rectal", None), ("Event marker", None),
])
def test_guess_role(name, role):
    assert guess_role(name) == role


@pytest.mark.parametrize("name, region", [
    ("C3..", "anterior"), ("Fpz.", "anterior"), ("Cz..", "anterior"), ("Oz..", "posterior"),
    ("O1..", "posterior")])
def test_dot_padded_names_are_eeg(name, region):
    """PhysioNet EEGMMI pads names with dots to 4 characters; the dots are not the name."""
    from hypnoscope.io.channels import eeg_region

    assert guess_role(name) == "eeg" and eeg_region(name) == region
    # the original (padded) name is what resolution returns, for display and lookup
    assert resolve_channels([name, "Resp.", "...."])["eeg"] == [name]
    # a channel asked for with or without its padding is found under its own name
    assert resolve_channels(["Fz..", "C3.."], eeg="C3")["eeg"] == ["C3.."]
    assert resolve_channels(["Fz..", "C3.."], eeg="c3..")["eeg"] == ["C3.."]
    for other in ("....", "Resp.", "X9..", "Marker."):
        assert guess_role(other) is None and eeg_region(other) is None


def test_resolve_channels_auto_and_overrides():
    names = list(AASM)
    auto = resolve_channels(names)
    assert auto == {"eeg": ["C4-M1", "C3-A2"], "eog": ["E1-M2", "E2-M1"],
                    "emg": ["Chin1-Chin2"]}
    # several EEG in the given order, case-insensitive, comma string, [] drops a role
    got = resolve_channels(names, eeg=["c3-a2", "C4-M1"], eog="E2-M1", emg=[])
    assert got == {"eeg": ["C3-A2", "C4-M1"], "eog": ["E2-M1"], "emg": []}
    assert resolve_channels(names, eeg="C4-M1,C3-A2")["eeg"] == ["C4-M1", "C3-A2"]
    # an override takes the channel away from the automatic role
    assert resolve_channels(names, emg="E1-M2") == {
        "eeg": ["C4-M1", "C3-A2"], "eog": ["E2-M1"], "emg": ["E1-M2"]}
    # modality prefix may be omitted
    assert resolve_channels(["EEG Fpz-Cz", "EEG Pz-Oz"], eeg="Pz-Oz")["eeg"] == ["EEG Pz-Oz"]


def test_resolve_channels_errors_list_channels():
    names = list(AASM)
    with pytest.raises(ValueError, match="Channels found") as err:
        resolve_channels(names, eeg=["C4-A1"])
    msg = str(err.value)
    assert "'C4-A1'" in msg and all(n in msg for n in names)
    assert "did you mean" in msg  # close match suggested
    with pytest.raises(ValueError, match="no EEG, EOG or EMG channel recognised") as err:
        resolve_channels(["ECG", "SpO2", "Pleth"])
    assert "SpO2" in str(err.value)
    with pytest.raises(ValueError, match="two roles"):
        resolve_channels(names, eeg=["C4-M1"], eog=["C4-M1"])


# ------------------------------------------------------------------ reader paths
def test_read_sleepedf_cassette(make_psg_edf):
    path = make_psg_edf(duration_sec=120.0, annotations=[(0.0, 30.0, "Sleep stage W")])
    rec = read_psg(path)
    assert isinstance(rec, PSGRecording)
    assert rec.ch_names == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]
    assert rec.roles == ["eeg", "eeg", "eog", "emg_envelope"]
    assert rec.data.dtype == np.float32 and rec.data.shape == (4, 12000)
    assert rec.sfreq == 100.0 and rec.duration_sec == pytest.approx(120.0)
    assert rec.start_time == dt.datetime(2020, 1, 1, 22, 30)
    assert rec.source == str(path)
    assert rec.meta["orig_sfreq"]["EMG submental"] == 1.0
    assert rec.meta["orig_sfreq"]["EEG Fpz-Cz"] == 100.0
    assert "Resp oro-nasal" in rec.meta["channels_found"]
    assert list(rec.annotations.description) == ["Sleep stage W"]
    stored = _edf_signals(path)
    # 100 Hz channels are passed through unchanged, in µV
    np.testing.assert_allclose(rec.data[0], stored["EEG Fpz-Cz"][0], atol=1e-3)
    np.testing.assert_allclose(rec.data[2], stored["EOG horizontal"][0], atol=1e-3)
    assert rec.channels_by_role() == {"eeg": ["EEG Fpz-Cz", "EEG Pz-Oz"],
                                      "eog": ["EOG horizontal"],
                                      "emg_envelope": ["EMG submental"]}


def test_1hz_emg_is_a_linear_envelope(make_psg_edf):
    path = make_psg_edf(duration_sec=90.0)
    rec = read_psg(path)
    env = rec.data[rec.roles.index("emg_envelope")].astype(float)
    native, fs = _edf_signals(path)["EMG submental"]
    assert fs == 1.0
    # the stored 1 Hz samples sit on the grid; between them, straight lines (no ringing)
    np.testing.assert_allclose(env[::100], native, atol=1e-3)
    t = np.arange(env.size) / 100.0
    np.testing.assert_allclose(env, np.interp(t, np.arange(native.size), native), atol=1e-3)
    assert env.min() >= native.min() - 1e-3 and env.max() <= native.max() + 1e-3
    assert "envelope" in rec.meta["resampling"]["EMG submental"]
    # forcing a waveform interpretation gives the polyphase-resampled role 'emg'
    rec_w = read_psg(path, emg_envelope=False)
    assert rec_w.roles[-1] == "emg"
    assert _codes(rec_w) == [("low-rate", "EMG submental")]
    assert "stored at 1 Hz, below the output rate" in rec_w.meta["warnings"][0]


def test_telemetry_100hz_emg_is_waveform(make_psg_edf):
    path = make_psg_edf("ST7011J0-PSG.edf", duration_sec=60.0, channels=TELEMETRY)
    rec = read_psg(path)
    assert rec.roles == ["eeg", "eeg", "eog", "emg"]
    np.testing.assert_allclose(rec.data[3], _edf_signals(path)["EMG submental"][0], atol=1e-3)
    assert rec.meta["resampling"]["EMG submental"] == "none"


def test_aasm_256hz_resampled_to_100(make_psg_edf):
    path = make_psg_edf("aasm.edf", duration_sec=60.0, channels=AASM)
    rec = read_psg(path)
    assert rec.ch_names == ["C4-M1", "C3-A2", "E1-M2", "E2-M1", "Chin1-Chin2"]
    assert rec.roles == ["eeg", "eeg", "eog", "eog", "emg"]
    assert rec.data.shape == (5, 6000)
    # the 10 Hz, 30 µV sine survives polyphase resampling with its amplitude
    spec = np.abs(np.fft.rfft(rec.data[0].astype(float))) * 2 / rec.n_samples
    freqs = np.fft.rfftfreq(rec.n_samples, 1 / 100)
    assert freqs[np.argmax(spec)] == pytest.approx(10.0)
    assert spec.max() == pytest.approx(30.0, rel=0.05)
    # other rates on request; subsets work
    rec2 = read_psg(path, eeg=["C3-A2"], eog=[], include_emg=False, sfreq=128.0)
    assert rec2.ch_names == ["C3-A2"] and rec2.roles == ["eeg"]
    assert rec2.data.shape == (1, 60 * 128)


def test_mixed_rates_in_one_file(make_psg_edf):
    path = make_psg_edf("mixed.edf", duration_sec=60.0,
                        channels={"EEG Fpz-Cz": 200.0, "EOG horizontal": 100.0,
                                  "EMG submental": 1.0})
    rec = read_psg(path)
    assert rec.roles == ["eeg", "eog", "emg_envelope"] and rec.data.shape == (3, 6000)
    assert rec.meta["orig_sfreq"] == {"EEG Fpz-Cz": 200.0, "EOG horizontal": 100.0,
                                      "EMG submental": 1.0}
    np.testing.assert_allclose(rec.data[1], _edf_signals(path)["EOG horizontal"][0], atol=1e-3)


def test_subsets_and_overrides_on_file(make_psg_edf):
    path = make_psg_edf(duration_sec=60.0)
    assert read_psg(path, eog=[], include_emg=False).roles == ["eeg", "eeg"]
    rec = read_psg(path, eeg=["EEG Pz-Oz"], eog=["EOG horizontal"], include_emg=False)
    assert rec.ch_names == ["EEG Pz-Oz", "EOG horizontal"]
    assert read_psg(path, eeg=[], eog=[]).roles == ["emg_envelope"]
    with pytest.raises(ValueError, match="Channels found") as err:
        read_psg(path, eeg=["EEG C4-M1"])
    assert "EEG Fpz-Cz" in str(err.value) and "Temp rectal" in str(err.value)


def test_raw_input_equals_path_and_is_untouched(make_psg_edf):
    path = make_psg_edf(duration_sec=60.0)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    n_before, data_before = len(raw.ch_names), raw.get_data().copy()
    rec_raw, rec_path = read_psg(raw), read_psg(path)
    assert rec_raw.roles == rec_path.roles
    np.testing.assert_array_equal(rec_raw.data, rec_path.data)
    assert len(raw.ch_names) == n_before
    np.testing.assert_array_equal(raw.get_data(), data_before)  # still volts, unchanged


def test_rawarray_input_aasm_names():
    rng = np.random.default_rng(1)
    fs = 200.0
    t = np.arange(int(60 * fs)) / fs
    data = 20e-6 * np.sin(2 * np.pi * 7.0 * t) + 1e-6 * rng.standard_normal((4, t.size))
    raw = mne.io.RawArray(data, mne.create_info(["C4-M1", "E1-M2", "Chin", "ECG"], fs,
                                                 "misc"), verbose="error")
    rec = read_psg(raw)
    assert rec.ch_names == ["C4-M1", "E1-M2", "Chin"] and rec.roles == ["eeg", "eog", "emg"]
    assert rec.source == "<RawArray>" and rec.data.shape == (3, 6000)
    # volts -> µV; white noise above 50 Hz is removed by the anti-aliasing resampler
    assert np.std(rec.data[0]) == pytest.approx(np.sqrt(20.0**2 / 2 + 0.5), rel=0.02)
    assert read_psg(raw, emg_envelope=True).roles[-1] == "emg_envelope"


# ------------------------------------------------------------------ units
def test_volt_header_is_converted(make_psg_edf, recwarn):
    path = make_psg_edf("volts.edf", duration_sec=60.0, channels=TELEMETRY, units="V")
    rec = read_psg(path)
    assert rec.meta["orig_units"]["EEG Fpz-Cz"] == "V"
    assert not rec.meta["unit_warnings"]
    spec = np.abs(np.fft.rfft(rec.data[0].astype(float))) * 2 / rec.n_samples
    assert spec.max() == pytest.approx(30.0, rel=0.05)  # 30 µV sine in µV


def test_volts_under_uv_header_rescaled_or_refused(make_psg_edf, recwarn):
    path = make_psg_edf("wrong.edf", duration_sec=60.0, channels=TELEMETRY, units="V")
    _set_header_units(path, "uV")
    rec = read_psg(path)
    assert not recwarn.list  # notices, never Python warnings
    chans = ("EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental")
    assert _codes(rec) == [("units-rescaled", ch) for ch in chans]  # one per channel
    info = rec.meta["unit_warnings"]["EEG Fpz-Cz"]
    assert info["factor"] == 1e6 and info["amplitude_uv"] < 1e-4
    msg = info["message"]
    assert "'EEG Fpz-Cz'" in msg and "look like V under a 'µV' header" in msg
    assert "rescaled by 1e+06" in msg and f"{info['amplitude_uv']:.3g} µV" in msg
    assert rec.meta["warnings"] == [n.message for n in notices_of(rec.meta)]
    # the 30 µV 10-Hz sine is back in µV
    spec = np.abs(np.fft.rfft(rec.data[0].astype(float))) * 2 / rec.n_samples
    assert spec.max() == pytest.approx(30.0, rel=0.05)
    # fix_units=False: the same warnings, data left alone
    kept = read_psg(path, fix_units=False)
    assert {c for c, _ in _codes(kept)} == {"units-implausible"}
    np.testing.assert_allclose(rec.data[0], kept.data[0] * 1e6, rtol=1e-4)
    assert "would give" in kept.meta["unit_warnings"]["EEG Fpz-Cz"]["message"]
    # strict: refused, naming the channels
    with pytest.raises(StrictModeError, match=r"wrong\.edf: 4 warning\(s\) in strict mode.*"
                                              r"'EEG Fpz-Cz'"):
        read_psg(path, strict=True)


def test_uv_values_under_mv_header_rescaled(make_psg_edf):
    path = make_psg_edf("mv.edf", duration_sec=60.0, channels=TELEMETRY, amplitude_uv=3e4)
    rec = read_psg(path)
    assert {c for c, _ in _codes(rec)} == {"units-rescaled"}
    assert rec.meta["unit_factors"]["EEG Fpz-Cz"] == 1e-3
    spec = np.abs(np.fft.rfft(rec.data[0].astype(float))) * 2 / rec.n_samples
    assert spec.max() == pytest.approx(30.0, rel=0.05)


def test_implausibly_large_amplitude_warned(make_psg_edf):
    path = make_psg_edf("big.edf", duration_sec=60.0, channels=TELEMETRY, amplitude_uv=2e3)
    rec = read_psg(path)
    assert ("units-implausible", "EEG Fpz-Cz") in _codes(rec)
    w = rec.meta["unit_warnings"]["EEG Fpz-Cz"]
    assert w["factor"] is None and w["amplitude_uv"] > 1000
    assert "implausibly large amplitude" in w["message"]
    np.testing.assert_allclose(np.abs(np.fft.rfft(rec.data[0].astype(float))).max() * 2
                               / rec.n_samples, 2e3, rtol=0.05)  # kept as it is


# ------------------------------------------------------------------ bad input
def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.edf"):
        read_psg(tmp_path / "nope.edf")
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n")
    with pytest.raises(ValueError, match=r"x\.csv.*unsupported"):
        read_psg(bad)


def test_corrupt_file(tmp_path):
    bad = tmp_path / "garbage.edf"
    bad.write_bytes(np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"garbage\.edf.*(corrupt|not a valid)"):
        read_psg(bad)
    tiny = tmp_path / "tiny.edf"
    tiny.write_bytes(b"0       ")
    with pytest.raises(ValueError, match=r"tiny\.edf.*truncated or corrupt"):
        read_psg(tiny)


def test_truncated_file(make_psg_edf):
    path = make_psg_edf("trunc.edf", duration_sec=120.0)
    data = path.read_bytes()
    path.write_bytes(data[:-5000])
    with pytest.raises(ValueError, match=r"trunc\.edf: truncated EDF file"):
        read_psg(path)
    with pytest.raises(ValueError, match="truncated"):
        recording_info(path)


def test_shorter_than_one_epoch(make_psg_edf):
    path = make_psg_edf("short.edf", duration_sec=20.0)
    with pytest.raises(ValueError, match=r"short\.edf: recording is 20\.0 s long"):
        read_psg(path)


def _codes(rec):
    """(code, channel) of the reader's notices, in order."""
    return [(n.code, n.channel) for n in notices_of(rec.meta)]


def _rawarray(data_uv, names, fs=100.0):
    return mne.io.RawArray(np.asarray(data_uv) * 1e-6, mne.create_info(names, fs, "misc"),
                           verbose="error")


def test_nan_segments():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6000)) * 10
    x[0, 1000:1100] = np.nan
    raw = _rawarray(x, ["C4-M1", "E1-M2"])
    rec = read_psg(raw)
    assert ("nan-samples", "C4-M1") in _codes(rec)
    assert any("'C4-M1' has 100 NaN/inf samples" in w for w in rec.meta["warnings"])
    assert rec.meta["nan_samples"] == {"C4-M1": 100}
    assert np.isfinite(rec.data).all()
    expected = np.interp(np.arange(1000, 1100), [999, 1100], [x[0, 999], x[0, 1100]])
    np.testing.assert_allclose(rec.data[0, 1000:1100], expected, rtol=1e-5, atol=1e-4)
    zeroed = read_psg(raw, nan_policy="zero")
    assert (zeroed.data[0, 1000:1100] == 0).all()
    with pytest.raises(ValueError, match=r"'C4-M1' has 100 NaN"):
        read_psg(raw, nan_policy="raise")
    x[1] = np.nan
    with pytest.raises(ValueError, match=r"'E1-M2' contains no finite sample"):
        read_psg(_rawarray(x, ["C4-M1", "E1-M2"]))


def test_flat_channel_and_flat_windows():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9000)) * 10
    x[1] = 5.0  # flat channel
    x[0, 3000:6000] = 0.0  # one flat 30-s window
    rec = read_psg(_rawarray(x, ["C4-M1", "E1-M2"]))
    assert _codes(rec) == [("channel-flat", "E1-M2"), ("flat-epochs", "C4-M1")]
    messages = rec.meta["warnings"]
    assert any("'E1-M2' is flat (constant 5 µV)" in m for m in messages)
    assert any("'C4-M1' is flat in 1 30-s window" in m for m in messages)
    assert rec.meta["flat_channels"] == ["E1-M2"]
    assert rec.meta["flat_epochs"] == {"C4-M1": 1}
    np.testing.assert_allclose(rec.data[1], 5.0, rtol=1e-5)


# ------------------------------------------------------------------ info
def test_recording_info(make_psg_edf):
    path = make_psg_edf(duration_sec=90.0, annotations=[(0.0, 30.0, "Sleep stage W")])
    info = recording_info(path)
    assert info["duration_sec"] == pytest.approx(90.0)
    assert info["start_time"] == "2020-01-01T22:30:00"
    assert info["n_annotations"] == 1
    chans = {c["name"]: c for c in info["channels"]}
    assert chans["EMG submental"]["sfreq"] == 1.0
    assert chans["EMG submental"]["role"] == "emg_envelope"
    assert chans["EEG Fpz-Cz"]["role"] == "eeg" and chans["Temp rectal"]["role"] is None
    assert chans["EEG Fpz-Cz"]["unit"] in ("uV", "µV")
    text = format_recording_info(info)
    assert "EMG submental" in text and "3 epochs" in text


# ------------------------------------------------------------------ units rule
def _simulated_uv():
    """A 1.6-h simulated telemetry night (all stages), µV, with its channel names."""
    from hypnoscope.simulate import simulate_night

    codes = np.array([0] * 20 + [1] * 10 + [2] * 60 + [3] * 40 + [2] * 20 + [4] * 30 + [0] * 10)
    raw = simulate_night(codes, seed=3, mode="telemetry")
    return raw.get_data() * 1e6, list(raw.ch_names)


@pytest.fixture(scope="module")
def simulated_uv():
    return _simulated_uv()


def _write_edf(path, data, names, unit="uV", fs=100.0):
    import edfio

    sigs = []
    for x, name in zip(data, names, strict=True):
        lim = float(np.abs(x).max() * 1.5)
        sigs.append(edfio.EdfSignal(np.asarray(x, float), sampling_frequency=fs, label=name,
                                    physical_dimension=unit, physical_range=(-lim, lim)))
    edf = edfio.Edf(sigs, starttime=dt.time(22, 0))
    edf.write(path)
    return path


# factor the values were scaled by (header still µV) -> expected outcome for every
# EEG/EOG channel: "rescaled" (by 1/factor), "warned" (kept) or "accepted"
UNIT_CASES = {1e-6: "rescaled", 1e-3: "rescaled", 1e-2: "warned", 0.1: "accepted",
              1.0: "accepted", 10.0: "warned"}


@pytest.mark.parametrize("factor", list(UNIT_CASES))
def test_units_rule_across_scale_factors(tmp_path, simulated_uv, factor, recwarn):
    data, names = simulated_uv
    path = _write_edf(tmp_path / "scaled.edf", data * factor, names)
    rec = read_psg(path)
    assert not recwarn.list
    codes = dict((ch, code) for code, ch in _codes(rec))
    amp = rec.meta["amplitude_uv"]
    eeg_eog = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
    # the amplitude (median over epochs of the per-epoch SD) follows the scaling
    clean = read_psg(_write_edf(tmp_path / "clean.edf", data, names)).meta["amplitude_uv"]
    for ch in eeg_eog:
        assert 15.0 < clean[ch] < 40.0
        assert amp[ch] == pytest.approx(clean[ch] * factor, rel=1e-3)
    outcome = UNIT_CASES[factor]
    i = names.index("EEG Fpz-Cz")
    if outcome == "rescaled":
        assert {codes[ch] for ch in names} == {"units-rescaled"}  # EMG follows its unit
        for ch in names:
            assert rec.meta["unit_factors"][ch] == pytest.approx(1 / factor)
        np.testing.assert_allclose(rec.data[i], data[i], rtol=1e-3, atol=0.05)
        assert "rescaled by" in rec.meta["unit_warnings"]["EEG Pz-Oz"]["message"]
        with pytest.raises(StrictModeError, match="EEG Pz-Oz"):
            read_psg(path, strict=True)
    elif outcome == "warned":
        assert all(codes[ch] == "units-implausible" for ch in eeg_eog)
        assert not rec.meta["unit_factors"]
        # kept as stored (16-bit EDF: steps of 3e-5 of the stored range)
        np.testing.assert_allclose(rec.data[i], data[i] * factor, rtol=0,
                                   atol=1e-4 * np.abs(data[i] * factor).max())
        msg = rec.meta["unit_warnings"]["EEG Fpz-Cz"]["message"]
        assert "'EEG Fpz-Cz' has an implausibly" in msg and "kept as it is" in msg
        with pytest.raises(StrictModeError):
            read_psg(path, strict=True)
    else:
        assert codes == {} and not rec.meta["unit_warnings"]
        read_psg(path, strict=True)  # nothing to refuse


def test_wrong_physical_dimension_mv_header(tmp_path, simulated_uv):
    # µV values written under an 'mV' header: MNE reads them 1000x too large
    data, names = simulated_uv
    rec = read_psg(_write_edf(tmp_path / "mv.edf", data, names, unit="mV"))
    assert {c for c, _ in _codes(rec)} == {"units-rescaled"}
    assert set(rec.meta["unit_factors"].values()) == {1e-3}
    msg = rec.meta["unit_warnings"]["EEG Fpz-Cz"]["message"]
    assert "look like µV under a 'mV' header" in msg
    np.testing.assert_allclose(rec.data[0], data[0], rtol=1e-3, atol=0.05)


def test_unit_factor_rule():
    from hypnoscope.io.units import unit_factor

    assert unit_factor(20.0) == 1.0 and unit_factor(1.0) == 1.0 and unit_factor(150.0) == 1.0
    assert unit_factor(2e-5) == 1e6 and unit_factor(0.02) == 1e3
    assert unit_factor(2e4) == 1e-3 and unit_factor(2e7) == 1e-6
    # ambiguous: x1000 would leave 3-100 µV (the factor was not a power of 1000)
    assert unit_factor(0.2) is None and unit_factor(500.0) is None and unit_factor(0.002) is None


# ------------------------------------------------------------------ channel sanity
def test_same_channel_twice_is_named(make_psg_edf):
    names = list(AASM)
    with pytest.raises(ValueError, match=r"EEG channel 'C4-M1' was given twice"):
        resolve_channels(names, eeg=["C4-M1", "C4-M1"])
    with pytest.raises(ValueError, match=r"'C4-M1' was given twice \('c4-m1' is 'C4-M1'\)"):
        resolve_channels(names, eeg=["C4-M1", "c4-m1"])
    path = make_psg_edf(duration_sec=60.0)
    with pytest.raises(ValueError, match="'EEG Fpz-Cz' was given twice") as err:
        read_psg(path, eeg=["EEG Fpz-Cz", "Fpz-Cz"])
    assert "corrupt" not in str(err.value) and "truncated" not in str(err.value)


@pytest.mark.parametrize("name", ["EMG submental", "Chin1-Chin2", "EMG1-EMG2", "LCHIN"])
def test_emg_named_channel_given_as_eog_is_refused(name):
    names = ["C4-M1", "O2-M1", "E1-M2", name]
    with pytest.raises(ValueError, match=rf"channel '{name}' was given as EOG but its name "
                                         "says chin EMG") as err:
        resolve_channels(names, eog=[name])
    assert "--emg" in str(err.value) and "Channels found" in str(err.value)
    assert resolve_channels(names)["emg"] == [name]


def test_emg_spectrum_given_as_eog_is_warned(tmp_path, simulated_uv):
    data, names = simulated_uv
    # the chin EMG stored under a neutral label and passed as the EOG
    renamed = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "X2"]
    path = _write_edf(tmp_path / "emg_as_eog.edf", data, renamed)
    rec = read_psg_checked(path, eog="X2")
    assert _codes(rec) == [("emg-as-eog", "X2")]
    msg = rec.meta["warnings"][0]
    assert "'X2' is used as EOG but its spectrum looks like EMG" in msg
    assert "% of its 0.3-45 Hz power is above 20 Hz" in msg
    with pytest.raises(StrictModeError, match="X2"):
        read_psg_checked(path, eog="X2", strict=True)
    assert _codes(read_psg(path, eog="X2")) == []  # the reader alone runs no check
    # the simulated EOG itself is not flagged
    assert _codes(read_psg_checked(path)) == []


def test_emg_spectrum_shares_real_eog_and_simulated_emg(shared_data, simulated_uv):
    from hypnoscope.signal.checks import EMG_HF_SHARE_MIN, EMG_LF_SHARE_MAX, emg_spectrum_shares

    data, names = simulated_uv
    hf, lf = emg_spectrum_shares(data[names.index("EMG submental")], 100.0)
    assert hf > 0.7 and lf < 0.02
    # real REM EOG (LOC, ROC at 256 Hz, YASA): far from the EMG rule
    z = np.load(shared_data / "yasa_snippets" / "data_EOGs_REM_256Hz.npz", allow_pickle=False)
    for x in z["data"]:
        hf, lf = emg_spectrum_shares(np.asarray(x, float), float(z["sf"]))
        assert hf < EMG_HF_SHARE_MIN / 2 and lf > EMG_LF_SHARE_MAX
    assert emg_spectrum_shares(np.zeros(6000), 100.0) is None
    assert emg_spectrum_shares(data[0], 50.0) is None  # too slow to tell
