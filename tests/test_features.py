"""Tests of hypnoscope.signal.features: per-epoch features and temporal context."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import signal, stats

from hypnoscope.signal.features import (
    BANDS,
    add_context,
    epoch_features,
    robust_zscore,
    welch_psd,
)

FS = 100.0
N_T = int(30 * FS)
T = np.arange(N_T) / FS


MEDIAN_BIAS = np.log10(1 / np.log(2)) + 0.01


def log_power_of_sine(amp: float) -> float:
    return float(np.log10(amp ** 2 / 2))


def sine(freq: float, amp: float = 20.0, n_epochs: int = 2) -> np.ndarray:
    x = amp * np.sin(2 * np.pi * freq * T)
    return np.repeat(x[None, None, :], n_epochs, axis=0)


def feats(epochs: np.ndarray, roles=("eeg",), names=None) -> dict[str, np.ndarray]:
    X, cols = epoch_features(epochs, FS, list(roles), names)
    assert X.shape == (len(epochs), len(cols))
    return {c: X[:, i] for i, c in enumerate(cols)}


@pytest.mark.parametrize("freq,band", [(2.0, "delta"), (6.0, "theta"), (10.0, "alpha"),
                                       (14.0, "sigma"), (22.0, "beta")])
def test_pure_sine_has_its_power_in_its_band(freq, band):
    f = feats(sine(freq))
    rel = {b: f[f"ch0_rel_{b}"][0] for b, _, _ in BANDS}
    assert max(rel, key=rel.get) == band
    assert rel[band] > 0.95
    assert sum(rel.values()) == pytest.approx(1.0, abs=0.02)
    absp = {b: f[f"ch0_abs_{b}"][0] for b, _, _ in BANDS}
    assert max(absp, key=absp.get) == band
    # Parseval: the band power of a sine of amplitude A is A^2 / 2 (µV^2); the median
    # Welch average divides by the chi^2 median bias (<= 1/ln 2), meant for noise
    assert log_power_of_sine(20.0) <= absp[band] <= log_power_of_sine(20.0) + MEDIAN_BIAS
    # spectral edge frequencies sit at the sine frequency (0.25 Hz resolution)
    assert f["ch0_sef50"][0] == pytest.approx(freq, abs=0.5)
    assert f["ch0_sef95"][0] == pytest.approx(freq, abs=0.5)


def test_moments_iqr_zero_crossings_and_hjorth_match_direct_computation():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 1, N_T)) * 10 + rng.standard_normal((5, 1, 1)) * 3
    x[2, 0] = x[2, 0] ** 3  # a skewed, heavy-tailed epoch
    f = feats(x)
    for e in range(len(x)):
        v = x[e, 0]
        assert f["ch0_mean"][e] == pytest.approx(v.mean(), rel=1e-5, abs=1e-5)
        assert f["ch0_sd"][e] == pytest.approx(v.std(), rel=1e-5)
        assert f["ch0_skew"][e] == pytest.approx(stats.skew(v), rel=1e-4, abs=1e-5)
        assert f["ch0_kurtosis"][e] == pytest.approx(stats.kurtosis(v), rel=1e-4, abs=1e-5)
        q75, q25 = np.percentile(v, [75, 25])
        assert f["ch0_iqr"][e] == pytest.approx(q75 - q25, rel=1e-5)
        c = v - v.mean()
        crossings = sum(1 for a, b in zip(c[:-1], c[1:], strict=True) if (a < 0) != (b < 0))
        assert f["ch0_zero_crossings"][e] == crossings
        d1, d2 = np.diff(v), np.diff(v, 2)
        mob = np.sqrt(d1.var() / v.var())
        assert f["ch0_hjorth_activity"][e] == pytest.approx(np.log10(v.var()), rel=1e-5)
        assert f["ch0_hjorth_mobility"][e] == pytest.approx(mob, rel=1e-4)
        assert f["ch0_hjorth_complexity"][e] == pytest.approx(
            np.sqrt(d2.var() / d1.var()) / mob, rel=1e-4)


def test_sine_hjorth_zero_crossings_and_entropy():
    f = feats(sine(10.0))
    # 10 Hz over 30 s: 600 zero crossings; a pure sine has complexity 1 and mobility
    # 2 sin(pi f / fs) per sample (the discrete derivative's gain)
    assert abs(f["ch0_zero_crossings"][0] - 600) <= 1
    assert f["ch0_hjorth_mobility"][0] == pytest.approx(2 * np.sin(np.pi * 10 / FS),
                                                         rel=1e-3)
    assert f["ch0_hjorth_complexity"][0] == pytest.approx(1.0, abs=0.01)
    noise = np.random.default_rng(0).standard_normal((2, 1, N_T)) * 20
    g = feats(noise)
    assert f["ch0_spectral_entropy"][0] < 0.3 < 0.9 < g["ch0_spectral_entropy"][0] <= 1.0


def test_band_power_and_ratios_match_scipy_welch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 1, N_T)) * 10 + sine(3.0, 15, 3) + sine(11.0, 5, 3)
    f = feats(x)
    for e in range(3):
        fr, p = signal.welch(x[e, 0], fs=FS, window="hamming", nperseg=400, noverlap=200,
                             average="median")
        df = fr[1] - fr[0]
        power = {b: p[(fr >= lo) & (fr < hi)].sum() * df for b, lo, hi in BANDS}
        total = p[(fr >= 0.5) & (fr < 30)].sum() * df
        for b in power:
            assert f[f"ch0_abs_{b}"][e] == pytest.approx(np.log10(power[b]), abs=1e-4)
            assert f[f"ch0_rel_{b}"][e] == pytest.approx(power[b] / total, rel=1e-4)
        assert f["ch0_ratio_delta_theta"][e] == pytest.approx(
            np.log10(power["delta"] / power["theta"]), abs=1e-4)
        assert f["ch0_ratio_slow_fast"][e] == pytest.approx(
            np.log10((power["delta"] + power["theta"]) / (power["alpha"] + power["beta"])),
            abs=1e-4)


def test_vectorised_equals_per_epoch_loop():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4, N_T)) * 20
    x[:, 3] = np.abs(x[:, 3])  # an envelope-like channel
    roles = ["eeg", "eog", "emg", "emg_envelope"]
    X, names = epoch_features(x, FS, roles)
    ref = np.vstack([epoch_features(x[e:e + 1], FS, roles)[0] for e in range(len(x))])
    np.testing.assert_allclose(X, ref, rtol=1e-5, atol=1e-6)
    assert len(names) == len(set(names)) == X.shape[1]


def test_eog_eye_movement_and_emg_tone_features():
    slow_eye = sine(0.5, 80.0)  # slow rolling eye movements
    rapid_eye = sine(3.0, 80.0)  # rapid eye movements
    f_slow = feats(slow_eye, roles=("eog",))
    f_rapid = feats(rapid_eye, roles=("eog",))
    assert f_slow["ch0_eog_slow_rapid_ratio"][0] > 1.0 > -1.0 > f_rapid[
        "ch0_eog_slow_rapid_ratio"][0]
    assert (log_power_of_sine(80.0) <= f_rapid["ch0_eog_rapid_logpow"][0]
            <= log_power_of_sine(80.0) + MEDIAN_BIAS)
    rng = np.random.default_rng(4)
    quiet = rng.standard_normal((2, 1, N_T)) * 2.0  # atonia
    tense = rng.standard_normal((2, 1, N_T)) * 20.0  # tonic EMG
    fq, ft = feats(quiet, roles=("emg",)), feats(tense, roles=("emg",))
    # 10x the amplitude: +2 decades of high-frequency power, +1 decade of RMS
    assert ft["ch0_emg_tone_logpow"][0] - fq["ch0_emg_tone_logpow"][0] == pytest.approx(
        2.0, abs=0.1)
    assert ft["ch0_emg_log_rms"][0] - fq["ch0_emg_log_rms"][0] == pytest.approx(1.0, abs=0.05)
    assert "ch0_eog_slow_logpow" not in fq


def test_emg_envelope_features_are_amplitude_only():
    env = np.abs(np.random.default_rng(5).standard_normal((3, 1, N_T))) * 5 + 1
    f = feats(env, roles=("emg_envelope",), names=["EMG submental"])
    assert sorted(f) == ["EMG submental_emg_env_iqr", "EMG submental_emg_env_logmean",
                         "EMG submental_emg_env_sd"]
    for e in range(3):
        assert f["EMG submental_emg_env_logmean"][e] == pytest.approx(
            np.log10(env[e, 0].mean()), rel=1e-5)
        assert f["EMG submental_emg_env_sd"][e] == pytest.approx(env[e, 0].std(), rel=1e-5)


def test_welch_psd_shape_and_resolution():
    freqs, psd = welch_psd(sine(10.0, n_epochs=3), FS)
    assert psd.shape == (3, 1, len(freqs))
    assert freqs[1] - freqs[0] == pytest.approx(0.25)
    assert freqs[psd[0, 0].argmax()] == pytest.approx(10.0)


@pytest.mark.parametrize("kwargs,msg", [
    ({"epochs": np.zeros((4, N_T)), "roles": ["eeg"]}, "n_epochs, n_channels"),
    ({"epochs": np.zeros((4, 2, N_T)), "roles": ["eeg"]}, "1 roles given for 2 channels"),
    ({"epochs": np.zeros((4, 1, N_T)), "roles": ["ecg"]}, "unknown channel role"),
    ({"epochs": np.full((4, 1, N_T), np.nan), "roles": ["eeg"]}, "NaN"),
    ({"epochs": np.zeros((4, 1, 4)), "roles": ["eeg"]}, "too short"),
])
def test_epoch_features_rejects_bad_input(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        epoch_features(sfreq=FS, **kwargs)


def test_robust_zscore_has_median_zero_iqr_1349():
    rng = np.random.default_rng(6)
    X = rng.lognormal(size=(301, 4)) * [1, 10, 100, 1]
    X[:, 2] = 7.0  # constant column -> zeros, not inf
    X[:, 3] = np.where(np.arange(301) % 10 == 0, 5.0, 1.0)  # zero IQR -> scaled by its SD
    Z = robust_zscore(X)
    np.testing.assert_allclose(np.median(Z[:, :2], axis=0), 0, atol=1e-12)
    q75, q25 = np.percentile(Z[:, :2], [75, 25], axis=0)
    np.testing.assert_allclose(q75 - q25, 1.349, atol=1e-12)  # SD units for Gaussian data
    np.testing.assert_array_equal(Z[:, 2], 0)
    np.testing.assert_allclose(Z[:, 3], (X[:, 3] - 1.0) / X[:, 3].std())
    # Gaussian data: robust z-score ~ ordinary z-score
    G = rng.normal(3.0, 2.0, size=(20000, 1))
    np.testing.assert_allclose(robust_zscore(G).std(), 1.0, atol=0.03)


def test_add_context_matches_pandas_rolling_reference():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((40, 2, 3))  # extra axes are flattened
    Xc, names = add_context(X, windows=(5,), past_windows=(4,), std_windows=(3,))
    flat = X.reshape(40, -1)
    Z = pd.DataFrame(robust_zscore(flat))
    cols = {n: Xc[:, i] for i, n in enumerate(names)}
    expected = {
        "": flat, "|z": Z.to_numpy(),
        "|c5": Z.rolling(5, center=True, min_periods=1).mean().to_numpy(),
        "|p4": Z.rolling(4, min_periods=1).mean().to_numpy(),
        "|s3": Z.rolling(3, center=True, min_periods=1).std(ddof=0).to_numpy(),
        "|dprev": Z.diff().fillna(0).to_numpy(),
        "|dnext": -Z.diff(-1).fillna(0).to_numpy(),
    }
    assert len(names) == 6 * len(expected)
    for suffix, ref in expected.items():
        got = np.column_stack([cols[f"f{j}{suffix}"] for j in range(6)])
        np.testing.assert_allclose(got, ref, atol=1e-5, err_msg=suffix)


def test_past_only_context_ignores_the_future():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((30, 2))
    Y = X.copy()
    Y[20:] += 100.0  # change the future only
    kw = {"windows": (), "std_windows": (), "diffs": False, "normalize": None,
          "past_windows": (3, 6)}
    a, names = add_context(X, **kw)
    b, _ = add_context(Y, **kw)
    np.testing.assert_allclose(a[:20], b[:20])
    assert names == ["f0", "f1", "f0|p3", "f1|p3", "f0|p6", "f1|p6"]


def test_add_context_errors():
    with pytest.raises(ValueError, match="at least one epoch"):
        add_context(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="2 names for 3"):
        add_context(np.zeros((5, 3)), names=["a", "b"])
    with pytest.raises(ValueError, match=">= 1 epoch"):
        add_context(np.zeros((5, 3)), windows=(0,))
    with pytest.raises(ValueError, match="normalize"):
        add_context(np.zeros((5, 3)), normalize="minmax")
