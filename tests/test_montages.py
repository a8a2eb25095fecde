"""Simulator montages: AASM and SHHS channel sets with derivation-specific physiology."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from hypnoscope.stages import N2, N3, R, W


@pytest.fixture(scope="module")
def aasm_night():
    from hypnoscope.simulate import sample_hypnogram, simulate_night

    hyp = sample_hypnogram(seed=4, duration_h=3.0, wake_pad_min=20)
    raw = simulate_night(hyp, seed=4, mode="telemetry", montage="aasm", sfreq=256.0)
    return hyp, raw


def _band(x: np.ndarray, fs: float, epochs: np.ndarray, lo: float, hi: float,
          relative: bool = False) -> float:
    """Median over the given 30-s epochs of the (relative) power in [lo, hi] Hz."""
    n = int(30 * fs)
    seg = x[: len(x) // n * n].reshape(-1, n)[epochs]
    f, p = welch(seg, fs=fs, nperseg=int(4 * fs), axis=-1)
    band = p[:, (f >= lo) & (f <= hi)].sum(axis=1)
    if relative:
        band = band / p[:, (f >= 0.5) & (f <= 30)].sum(axis=1)
    return float(np.median(band))


def test_aasm_montage_channels_rate_and_roles(aasm_night):
    from hypnoscope.io.channels import resolve_channels

    _, raw = aasm_night
    assert raw.ch_names == ["F4-M1", "C4-M1", "O2-M1", "E1-M2", "E2-M2", "Chin1-Chin2"]
    assert raw.info["sfreq"] == 256.0
    assert resolve_channels(raw.ch_names) == {
        "eeg": ["F4-M1", "C4-M1", "O2-M1"], "eog": ["E1-M2", "E2-M2"], "emg": ["Chin1-Chin2"]}


def test_aasm_derivations_differ_like_real_scalps(aasm_night):
    hyp, raw = aasm_night
    fs = raw.info["sfreq"]
    x = {c: raw.get_data(picks=[c])[0] * 1e6 for c in raw.ch_names}
    codes = hyp.codes[: int(raw.n_times // (30 * fs))]
    wake, n2, n3, rem = (np.flatnonzero(codes == s) for s in (W, N2, N3, R))
    assert min(len(wake), len(n2), len(n3), len(rem)) >= 5
    # occipital alpha in wake
    alpha = {c: _band(x[c], fs, wake, 8, 12, relative=True) for c in ("F4-M1", "O2-M1")}
    assert alpha["O2-M1"] > 1.5 * alpha["F4-M1"], alpha
    # frontal slow waves (and K-complexes) in N3
    delta = {c: _band(x[c], fs, n3, 0.5, 2) for c in ("F4-M1", "C4-M1", "O2-M1")}
    assert delta["F4-M1"] > delta["C4-M1"] > delta["O2-M1"], delta
    # central spindles in N2
    sigma = {c: _band(x[c], fs, n2, 12, 15, relative=True)
             for c in ("F4-M1", "C4-M1", "O2-M1")}
    assert sigma["C4-M1"] > sigma["F4-M1"] and sigma["C4-M1"] > sigma["O2-M1"], sigma
    # horizontal eye movements: opposite polarity on E1 and E2 in REM
    n = int(30 * fs)
    idx = np.concatenate([np.arange(e * n, (e + 1) * n) for e in rem])
    r = np.corrcoef(x["E1-M2"][idx], x["E2-M2"][idx])[0, 1]
    assert r < -0.3, r
    # chin EMG: a waveform, lowest in REM (atonia), highest in wake
    emg_w, emg_r = (np.median([x["Chin1-Chin2"][e * n:(e + 1) * n].std() for e in ep])
                    for ep in (wake, rem))
    assert emg_w > 2 * emg_r


def test_sources_do_not_change_the_sleep_edf_montage():
    from hypnoscope.simulate import sample_hypnogram, simulate_signals

    hyp = sample_hypnogram(seed=2, duration_h=0.5, wake_pad_min=5)
    a, _, _ = simulate_signals(hyp, seed=2)
    b, _, _ = simulate_signals(hyp, seed=2, keep_sources=True)
    for k in ("fpz", "pz", "eog", "emg"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert not a.sources and {"alpha", "spindle", "eh", "ev", "emg"} <= set(b.sources)


def test_simulate_cli_montages_and_shhs_default(tmp_path, capsys):
    import mne

    from hypnoscope.cli import main

    assert main(["simulate", "--montage", "aasm", "--n-subjects", "1", "--duration-h",
                 "0.5", "--out", str(tmp_path / "aasm")]) == 0
    raw = mne.io.read_raw_edf(tmp_path / "aasm" / "ST7001J0-PSG.edf", verbose="error")
    assert raw.ch_names == ["F4-M1", "C4-M1", "O2-M1", "E1-M2", "E2-M2", "Chin1-Chin2"]
    assert raw.info["sfreq"] == 256.0
    assert (tmp_path / "aasm" / "ST7001J0-Hypnogram.edf").is_file()
    # the SHHS layout simulates the SHHS montage: two central EEG that are not copies
    assert main(["simulate", "--layout", "shhs", "--n-subjects", "1", "--duration-h",
                 "0.5", "--out", str(tmp_path / "shhs")]) == 0
    assert "montage shhs" in capsys.readouterr().out
    raw = mne.io.read_raw_edf(tmp_path / "shhs" / "shhs1-200001.edf", verbose="error")
    eeg = raw.get_data(picks=["EEG(sec)", "EEG"])
    r = np.corrcoef(eeg)[0, 1]
    assert 0.3 < r < 0.95, r
    # a cassette-mode montage with an EMG waveform is refused
    assert main(["simulate", "--montage", "aasm", "--mode", "sleep-edf-sc", "--n-subjects",
                 "1", "--out", str(tmp_path / "x")]) == 2
    assert "telemetry mode" in capsys.readouterr().err
