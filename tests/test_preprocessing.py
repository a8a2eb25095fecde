"""Tests of the preprocessing steps: epoching, crop, filters, normalisation, spectrogram."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import ShortTimeFFT, freqz
from scipy.signal.windows import hamming

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.psg import PSGRecording
from hypnoscope.signal import bandpower
from hypnoscope.signal.epochs import crop_to_sleep_period, epoch_signals
from hypnoscope.signal.filters import (
    BANDPASS_DEFAULTS,
    ROLE_BANDS,
    apply_fir_zero_phase,
    bandpass,
    bandpass_by_role,
    design_fir,
    kaiser_highpass,
    kaiser_lowpass,
    kaiser_lowpass_design,
    notch,
    upper_edge,
)
from hypnoscope.signal.normalize import normalize
from hypnoscope.signal.preprocessing import Pipeline, config_hash, preprocess, resolve_config
from hypnoscope.signal.spectral import spectrogram
from hypnoscope.stages import UNSCORED
from hypnoscope.utils.arrays import epoch_view

FS = 100.0


def _sines(freqs, amps=None, fs=FS, seconds=60.0):
    t = np.arange(int(seconds * fs)) / fs
    amps = amps or [1.0] * len(freqs)
    return sum(a * np.sin(2 * np.pi * f * t) for f, a in zip(freqs, amps, strict=True))


def _amplitude(x, f, fs=FS):
    """Amplitude of the component at frequency ``f`` (integer number of cycles)."""
    spec = np.abs(np.fft.rfft(x)) * 2 / x.size
    return spec[int(round(f * x.size / fs))]


# ------------------------------------------------------------------ epoching
def test_epoch_signals_shape_and_values():
    data = np.arange(2 * 9500, dtype=np.float32).reshape(2, 9500)
    ep = epoch_signals(data, FS)
    assert ep.shape == (3, 2, 3000) and ep.dtype == np.float32
    np.testing.assert_array_equal(ep[1, 0], data[0, 3000:6000])
    np.testing.assert_array_equal(ep[2, 1], data[1, 6000:9000])
    off = epoch_signals(data, FS, onset_sec=5.0)
    assert off.shape == (3, 2, 3000)
    np.testing.assert_array_equal(off[0, 0], data[0, 500:3500])
    assert epoch_signals(data[0], FS, epoch_sec=20.0).shape == (4, 1, 2000)


def test_epoch_signals_errors():
    data = np.zeros((1, 2500))
    with pytest.raises(ValueError, match="shorter than one 30-s epoch"):
        epoch_signals(data, FS)
    with pytest.raises(ValueError, match="whole number of samples"):
        epoch_signals(np.zeros((1, 9000)), 100.0, epoch_sec=30.005)
    with pytest.raises(ValueError, match="fall on a sample"):
        epoch_signals(np.zeros((1, 9000)), 100.0, onset_sec=0.005)


def test_epoch_view_is_the_one_epoch_cutter():
    x = np.arange(2 * 1000, dtype=float).reshape(2, 1000)
    ep = epoch_view(x, 300, start=50)  # (n_epochs, n_channels, n_times), a view
    assert ep.shape == (3, 2, 300) and np.shares_memory(ep, x)
    assert np.array_equal(ep[1, 0], x[0, 350:650]) and np.array_equal(ep[2, 1], x[1, 650:950])
    assert epoch_view(x[0], 400).shape == (2, 400)  # 1-D: (n_epochs, n_times)
    assert epoch_view(x, 300, n_epochs=1).shape == (1, 2, 300)
    assert np.array_equal(epoch_signals(x, 10.0, epoch_sec=30.0, onset_sec=5.0), ep)


def test_crop_to_sleep_period():
    codes = np.array([0] * 100 + [2] * 10 + [0] * 5 + [4] * 5 + [0] * 100)
    epochs = np.arange(codes.size)[:, None, None] * np.ones((1, 1, 4))
    hyp = Hypnogram(codes, onset_sec=60.0)
    ep_c, hyp_c = crop_to_sleep_period(epochs, hyp)
    first, last = 100, 119  # first and last sleep epochs
    assert hyp_c.n_epochs == (last - first + 1) + 2 * 60  # 30 min = 60 epochs each side
    np.testing.assert_array_equal(ep_c[:, 0, 0], np.arange(first - 60, last + 61))
    assert hyp_c.onset_sec == pytest.approx(60.0 + 30.0 * (first - 60))
    ep_a, y_a = crop_to_sleep_period(epochs, codes, wake_pad_min=10.0)
    np.testing.assert_array_equal(y_a, codes[first - 20: last + 21])
    np.testing.assert_array_equal(ep_a[:, 0, 0], np.arange(first - 20, last + 21))
    # padding is clipped at the recording edges
    ep_b, _ = crop_to_sleep_period(epochs[90:130], codes[90:130])
    assert len(ep_b) == 40
    with pytest.raises(ValueError, match="align them first"):
        crop_to_sleep_period(epochs[:10], hyp)
    with pytest.raises(ValueError, match="no sleep epoch"):
        crop_to_sleep_period(epochs[:50], codes[:50])


# ------------------------------------------------------------------ Kaiser low-pass
def test_kaiser_design_frequency_response():
    taps = kaiser_lowpass_design(FS)  # 10 Hz, 60 dB, transition 5 Hz (7.5-12.5 Hz)
    assert taps.size % 2 == 1
    np.testing.assert_allclose(taps, taps[::-1])  # linear phase
    f_pass = np.linspace(0, 7.5, 200)
    f_stop = np.linspace(12.5, 50, 400)
    _, h_pass = freqz(taps, worN=f_pass, fs=FS)
    _, h_stop = freqz(taps, worN=f_stop, fs=FS)
    # Kaiser's design formula is approximate: ripple ~1e-3 (0.01 dB) for 60 dB
    assert np.abs(20 * np.log10(np.abs(h_pass))).max() < 0.015
    assert 20 * np.log10(np.abs(h_stop).max()) <= -60.0 + 0.1
    # configurable: 80 dB at a 20 Hz cut-off with a 4 Hz transition
    taps2 = kaiser_lowpass_design(FS, cutoff=20.0, attenuation_db=80.0, transition_hz=4.0)
    _, h2 = freqz(taps2, worN=np.linspace(22, 50, 300), fs=FS)
    assert 20 * np.log10(np.abs(h2).max()) <= -80.0 + 0.1
    assert taps2.size > taps.size


def test_kaiser_lowpass_on_signals():
    x = _sines([5.0, 20.0]).astype(np.float32)
    y = kaiser_lowpass(x, FS)
    assert y.dtype == np.float32 and y.shape == x.shape
    inner = slice(500, -500)
    five = _sines([5.0])
    # 5 Hz passes unchanged and without delay (zero phase); 20 Hz is >= 60 dB down
    np.testing.assert_allclose(y[inner], five[inner], atol=3e-3)
    residual = _amplitude(y.astype(float) - five, 20.0)
    assert 20 * np.log10(residual / 1.0) <= -60.0
    # along another axis, several channels at once
    stacked = np.stack([x, 2 * x], axis=1)
    y2 = kaiser_lowpass(stacked, FS, axis=0)
    np.testing.assert_allclose(y2[:, 1], 2 * y, rtol=1e-4, atol=1e-5)


def test_zero_phase_fir_matches_direct_convolution():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2000)
    taps = kaiser_lowpass_design(FS)
    half = taps.size // 2
    direct = np.convolve(x, taps, mode="full")[half: half + x.size]
    y = apply_fir_zero_phase(x, taps)
    np.testing.assert_allclose(y[half:-half], direct[half:-half], atol=1e-10)
    with pytest.raises(ValueError, match="odd number of taps"):
        apply_fir_zero_phase(x, np.ones(4))


def test_kaiser_bad_parameters():
    with pytest.raises(ValueError, match="Nyquist"):
        kaiser_lowpass_design(FS, cutoff=60.0)
    with pytest.raises(ValueError, match="transition_hz"):
        kaiser_lowpass_design(FS, cutoff=45.0, transition_hz=20.0)


# ------------------------------------------------------------------ band-pass / notch
def test_bandpass_by_role_defaults():
    assert BANDPASS_DEFAULTS["eeg"] == (0.3, 35.0)
    assert BANDPASS_DEFAULTS["emg_envelope"] is None
    eeg = _sines([0.05, 10.0, 45.0])
    emg = _sines([2.0, 30.0])
    env = np.abs(_sines([0.1])) + 3.0
    data = np.stack([eeg, _sines([10.0, 25.0]), emg, env])
    roles = ["eeg", "eog", "emg", "emg_envelope"]
    out = bandpass_by_role(data, FS, roles)
    assert _amplitude(out[0], 10.0) == pytest.approx(1.0, abs=0.01)
    assert _amplitude(out[0], 45.0) < 0.01 and _amplitude(out[0], 0.05) < 0.1
    assert _amplitude(out[1], 10.0) == pytest.approx(1.0, abs=0.01)
    assert _amplitude(out[1], 25.0) < 0.01  # EOG 0.3-15 Hz
    assert _amplitude(out[2], 30.0) == pytest.approx(1.0, abs=0.01)
    assert _amplitude(out[2], 2.0) < 0.01  # EMG 10-45 Hz
    np.testing.assert_array_equal(out[3], env)  # envelope untouched
    custom = bandpass_by_role(data, FS, roles, bands={"eeg": None})
    np.testing.assert_array_equal(custom[0], eeg)
    with pytest.raises(ValueError, match="4 channels but 3 roles"):
        bandpass_by_role(data, FS, roles[:3])


def test_bandpass_errors():
    with pytest.raises(ValueError, match="below Nyquist"):
        bandpass(np.zeros(3000), FS, 0.3, 60.0)
    with pytest.raises(ValueError, match="l_freq < h_freq"):
        bandpass(np.zeros(3000), FS, 20.0, 10.0)


def test_bandpass_and_notch_are_mne_bit_for_bit():
    """The one FIR engine (filters.fir_filter with MNE's designs) gives MNE's numbers."""
    from mne.filter import filter_data, notch_filter

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6000)) * 20
    ref = filter_data(x, FS, 0.3, 35.0, method="fir", phase="zero", fir_design="firwin",
                      pad="reflect_limited", verbose="error")
    assert np.array_equal(bandpass(x, FS, 0.3, 35.0), ref)
    assert np.array_equal(bandpass(x[:, :500], FS, None, 20.0),
                          filter_data(x[:, :500], FS, None, 20.0, method="fir",
                                      fir_design="firwin", verbose="error"))
    xs = rng.normal(size=(2, 250 * 60))
    for widths in (None, 2.0):
        ref = notch_filter(xs, 250.0, [50.0, 100.0], notch_widths=widths, method="fir",
                           phase="zero", fir_design="firwin", verbose="error")
        assert np.array_equal(notch(xs, 250.0, [50.0, 100.0], notch_widths=widths), ref)


def test_upper_edge_is_the_one_nyquist_rule():
    assert upper_edge(45.0, 100.0) == 45.0 and upper_edge(None, 100.0) is None
    assert upper_edge(45.0, 64.0) == upper_edge(32.0, 64.0) == pytest.approx(28.8)
    x = np.random.default_rng(5).normal(size=(1, 64 * 120))
    assert np.array_equal(bandpass_by_role(x, 64.0, ["emg"]), bandpass(x, 64.0, 10.0, 28.8))
    assert np.array_equal(bandpower.band_filter_taps("eeg", 50.0, shipped=False),
                          design_fir(50.0, 0.5, 22.5, shipped=False))
    assert ROLE_BANDS["default"] is BANDPASS_DEFAULTS
    assert bandpower.FILTERS["eeg"] == ROLE_BANDS["bandpower"]["eeg"]


def test_notch():
    fs = 250.0
    x = _sines([10.0, 50.0], fs=fs)
    y = notch(x, fs, 50.0)
    assert _amplitude(y, 50.0, fs) < 0.01
    assert _amplitude(y, 10.0, fs) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError, match="Nyquist"):
        notch(_sines([10.0]), FS, 50.0)


# ------------------------------------------------------------------ normalisation
def test_normalize_zscore_and_robust():
    rng = np.random.default_rng(4)
    data = np.stack([3.0 + 2.0 * rng.standard_normal(20000),
                     -1.0 + 0.5 * rng.standard_normal(20000)]).astype(np.float32)
    z = normalize(data)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-5)
    r, center, scale = normalize(data, "robust", return_stats=True)
    np.testing.assert_allclose(np.median(r, axis=1), 0, atol=1e-5)
    q25, q75 = np.percentile(r, [25, 75], axis=1)
    np.testing.assert_allclose((q75 - q25) / 1.349, 1, atol=1e-5)
    np.testing.assert_allclose(center, np.median(data, axis=1), rtol=1e-5)
    # robust scaling ignores artefacts, z-score does not
    spiky = data.copy()
    spiky[0, ::100] = 1000.0
    _, _, s_rob = normalize(spiky, "robust", return_stats=True)
    _, _, s_z = normalize(spiky, "zscore", return_stats=True)
    assert s_rob[0] == pytest.approx(2.0, rel=0.05) and s_z[0] > 20
    with pytest.raises(ValueError, match="'zscore' or 'robust'"):
        normalize(data, "minmax")


def test_normalize_epochs_equals_continuous_and_flat_channel():
    rng = np.random.default_rng(5)
    data = rng.standard_normal((3, 9000))
    data[2] = 7.0  # flat
    ep = epoch_signals(data, FS)
    z_ep = normalize(ep)
    z_cont = epoch_signals(normalize(data), FS)
    np.testing.assert_allclose(z_ep, z_cont, atol=1e-12)
    assert np.isfinite(z_ep).all() and (z_ep[:, 2] == 0).all()


# ------------------------------------------------------------------ spectrogram
def test_spectrogram_shape_and_values():
    rng = np.random.default_rng(6)
    epochs = rng.standard_normal((4, 2, 3000))
    epochs[1, 0] += 5 * np.sin(2 * np.pi * 10.0 * np.arange(3000) / FS)
    S = spectrogram(epochs, FS)
    assert S.shape == (4, 2, 29, 129) and S.dtype == np.float32
    # same numbers as scipy's unscaled STFT with a symmetric 200-point Hamming window
    stft = ShortTimeFFT(hamming(200, sym=True), hop=100, fs=FS, mfft=256, scale_to=None)
    Z = stft.stft(epochs[2, 1], p0=0, p1=29, k_offset=100)
    np.testing.assert_allclose(S[2, 1], (20 * np.log10(np.abs(Z) + 1e-10)).T,
                               rtol=1e-5, atol=1e-3)
    freqs = np.fft.rfftfreq(256, 1 / FS)
    assert abs(freqs[np.argmax(S[1, 0].mean(axis=0))] - 10.0) < FS / 256
    lin = spectrogram(epochs, FS, log=False)
    np.testing.assert_allclose(20 * np.log10(lin + 1e-10), S, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="nfft"):
        spectrogram(epochs, FS, nfft=128)


# ------------------------------------------------------------------ pipeline
def _recording(seconds=120.0):
    rng = np.random.default_rng(7)
    n = int(seconds * FS)
    data = np.stack([20 * rng.standard_normal(n) + _sines([40.0], seconds=seconds) * 10,
                     10 * rng.standard_normal(n),
                     np.abs(rng.standard_normal(n)) + 2.0]).astype(np.float32)
    return PSGRecording(data, ["EEG Fpz-Cz", "EOG horizontal", "EMG submental"],
                        ["eeg", "eog", "emg_envelope"], FS, None, "synthetic", {})


def test_resolve_config_and_presets():
    cfg = resolve_config(None)
    assert cfg["bandpass"]["eeg"] == [0.3, 35.0] and cfg["normalize"] == "zscore"
    assert cfg["steps"] == ["notch", "bandpass", "lowpass", "normalize"]
    ms = resolve_config("msmae-cnn")
    assert ms["lowpass"] == {"cutoff": 10.0, "attenuation_db": 60.0, "transition_hz": None,
                             "highpass": 0.5}
    assert ms["bandpass"] is None
    merged = resolve_config({"bandpass": {"eeg": [0.5, 30]}})
    assert merged["bandpass"]["eeg"] == [0.5, 30] and merged["bandpass"]["eog"] == [0.3, 15.0]
    with pytest.raises(ValueError, match="unknown preprocessing option"):
        resolve_config({"highpass": 1})
    with pytest.raises(ValueError, match="unknown preprocessing preset"):
        resolve_config("nope")
    with pytest.raises(ValueError, match="unknown preprocessing step"):
        resolve_config({"steps": ["detrend"]})


def test_config_hash_is_stable_and_sensitive():
    assert config_hash(None) == config_hash("default") == config_hash({})
    assert config_hash({"normalize": "zscore"}) == config_hash({"normalize": "zscore",
                                                                "notch": None})
    assert config_hash({"normalize": "robust"}) != config_hash({"normalize": "zscore"})
    assert config_hash(None, extra={"sfreq": 100}) != config_hash(None, extra={"sfreq": 128})
    assert len(config_hash(None)) == 16


def test_preprocess_chains_steps():
    rec = _recording()
    out = preprocess(rec)  # band-pass per role, then z-score
    assert out.data.dtype == np.float32 and out.data.shape == rec.data.shape
    np.testing.assert_allclose(out.data.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(out.data.std(axis=1), 1, atol=1e-3)
    assert out.meta["preprocessing"]["hash"] == config_hash(None)
    # same as applying the functions by hand
    manual = normalize(bandpass_by_role(rec.data, FS, rec.roles))
    np.testing.assert_allclose(out.data, manual, atol=1e-5)
    # MSMAE-CNN preset: Kaiser low-pass on waveforms only, envelope untouched
    ms = Pipeline("msmae-cnn")(rec)
    assert [n for n, _ in Pipeline("msmae-cnn").steps] == ["lowpass"]
    np.testing.assert_array_equal(ms.data[2], rec.data[2])
    assert _amplitude(ms.data[0].astype(float), 40.0) < 0.01 * 10
    np.testing.assert_allclose(ms.data[1], kaiser_highpass(kaiser_lowpass(rec.data[1], FS), FS),
                               atol=1e-5)
    # order follows 'steps'
    order = Pipeline({"normalize": "zscore", "lowpass": True, "bandpass": None,
                      "steps": ["normalize", "lowpass"]})
    np.testing.assert_allclose(order.apply(rec.data, FS, rec.roles)[0],
                               kaiser_lowpass(normalize(rec.data)[0], FS), atol=1e-5)
    none = preprocess(rec, "none")
    np.testing.assert_array_equal(none.data, rec.data)
    assert rec.data is not out.data


def test_pipeline_handles_unscored_free_epochs_end_to_end():
    rec = _recording(seconds=300.0)
    out = preprocess(rec, "bandpower")
    ep = epoch_signals(out.data, out.sfreq)
    hyp = Hypnogram([0, 1, 2, 2, 3, 4, 0, 0, 0, UNSCORED])
    ep_c, hyp_c = crop_to_sleep_period(ep, hyp, wake_pad_min=1.0)
    assert ep_c.shape == (8, 3, 3000) and hyp_c.codes.tolist() == [0, 1, 2, 2, 3, 4, 0, 0]
    assert spectrogram(ep_c, out.sfreq).shape == (8, 3, 29, 129)
