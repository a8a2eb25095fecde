"""``bandpower.welch_psd`` (SciPy's Welch median PSD, the median only over the bins the
bands use) gives SciPy's values, and the band powers are those of ``scipy.signal.welch``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from hypnoscope.signal import bandpower
from hypnoscope.signal.bandpower import BANDS, WELCH, welch_band_powers, welch_psd


def _signals(seed: int = 0) -> np.ndarray:
    """(20 epochs, 3 channels, 3000 samples): noise, a 10-Hz rhythm, slow waves, a flat
    and a saturated stretch, an offset, in volts."""
    rng = np.random.default_rng(seed)
    t = np.arange(3000) / 100.0
    x = rng.normal(0, 20e-6, (20, 3, 3000))
    x[:, 0] += 30e-6 * np.sin(2 * np.pi * 10 * t)
    x[:, 1] += 80e-6 * np.sin(2 * np.pi * 0.8 * t + rng.uniform(0, 6, (20, 1)))
    x[3, 2] = 0.0  # flat epoch
    x[5, 1] = np.clip(x[5, 1] * 50, -150e-6, 150e-6)  # clipped
    x[7] += 2e-3  # offset
    return x


@pytest.mark.parametrize("seed", [0, 1])
def test_welch_psd_equals_scipy(seed):
    x = _signals(seed)
    freqs, ref = signal.welch(x, fs=100.0, axis=-1, return_onesided=True, **WELCH)
    full = welch_psd(x, 100.0)
    assert full.shape == ref.shape == (20, 3, 201)
    np.testing.assert_allclose(full, ref, rtol=1e-12, atol=0)
    assert np.array_equal(full, ref)  # the same operations in the same order
    part = welch_psd(x, 100.0, 121)
    assert np.array_equal(part, ref[..., :121])


def test_band_powers_equal_scipy_welch_band_powers():
    x = _signals(2)
    freqs, psd = signal.welch(x, fs=100.0, axis=-1, return_onesided=True, **WELCH)
    psd = np.maximum(np.nan_to_num(psd, nan=0.0, posinf=0.0, neginf=0.0), 0.0)
    expected = np.stack([np.trapezoid(psd[..., (freqs >= lo) & (freqs <= hi)],
                                      freqs[(freqs >= lo) & (freqs <= hi)], axis=-1)
                         for _, lo, hi in BANDS], axis=-1)
    got = welch_band_powers(x, 100.0)
    assert np.array_equal(got, np.maximum(expected, 0.0))
    assert got[3, 2].tolist() == [0.0] * len(BANDS)  # the flat epoch
    # a 10-Hz rhythm puts the alpha band of channel 0 above channel 2's
    assert (got[:, 0, 2] > 3 * got[:, 2, 2]).all()


def test_welch_chunking_does_not_change_values(monkeypatch):
    x = _signals(3)
    whole = welch_band_powers(x, 100.0)
    monkeypatch.setattr(bandpower, "WELCH_CHUNK", 7)
    assert np.array_equal(welch_band_powers(x, 100.0), whole)


def test_non_finite_samples_are_zeroed_after_filtering():
    """The finite check before ``nan_to_num``: a NaN stretch spreads over the FIR
    filter's overlap-add blocks around it, whose epochs get powers 0, never NaN; the rest
    of the channel and the other channels are unchanged."""
    x = np.random.default_rng(4).normal(0, 20, (3, 100 * 900))
    clean = bandpower.extract_bandpower(x, 100.0, ["a", "b", "e"], ["eeg", "eeg", "eog"],
                                        ica=False).band_powers
    x[1, 5000:5010] = np.nan
    bad = bandpower.extract_bandpower(x, 100.0, ["a", "b", "e"], ["eeg", "eeg", "eog"],
                                      ica=False).band_powers
    zeroed = (bad[:, 1] == 0).all(axis=-1)
    assert np.isfinite(bad).all() and zeroed[1]  # the NaN is in epoch 1 (50-50.1 s)
    assert zeroed.sum() < len(zeroed) // 2
    assert np.array_equal(bad[-10:, 1], clean[-10:, 1])  # far from the NaN
    assert np.array_equal(bad[:, [0, 2]], clean[:, [0, 2]])
    assert (clean[:, 1] > 0).all()
