"""Band-power extractor: the computation documented for the real Sleep-EDF feature set."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from hypnoscope.io.channels import eeg_region
from hypnoscope.signal import bandpower as bp
from hypnoscope.signal import ica as eye_ica
from hypnoscope.signal.channel_choice import select_bandpower_channels
from hypnoscope.stages import sleep_period_slice

FS = 100.0


def _direct_features(epoch: np.ndarray) -> np.ndarray:
    """Features of one (n_channels, 3000) epoch straight from scipy, band by band."""
    f, pxx = signal.welch(epoch, fs=FS, window="hamming", nperseg=400, noverlap=200,
                          nfft=400, detrend="constant", scaling="density", average="median")
    powers = []
    for lo, hi in [(0.5, 4), (4, 8), (8, 12), (12, 16), (16, 30)]:
        m = (f >= lo) & (f <= hi)
        powers.append(np.trapezoid(pxx[:, m], f[m], axis=-1))
    powers = np.stack(powers, axis=-1)
    return np.concatenate([np.log(powers + 1e-10),
                           powers / powers.sum(axis=-1, keepdims=True)], axis=-1)


def test_features_match_direct_scipy_and_physics():
    rng = np.random.default_rng(0)
    t = np.arange(3000) / FS
    amp = 2.0
    epochs = np.stack([
        np.stack([amp * np.sin(2 * np.pi * 10 * t) + 0.01 * rng.standard_normal(3000),
                  np.sin(2 * np.pi * 2 * t) + 0.01 * rng.standard_normal(3000),
                  rng.standard_normal(3000)])
        for _ in range(4)])
    feats = bp.bandpower_features(epochs, FS)
    assert feats.shape == (4, 3, 10) and feats.dtype == np.float32
    for e in range(4):
        np.testing.assert_allclose(feats[e], _direct_features(epochs[e]), rtol=1e-5, atol=1e-6)
    # a 10 Hz sine carries nearly all relative power in alpha; doubling its amplitude
    # adds log(4) to the log alpha power
    assert feats[0, 0, 7] > 0.99
    louder = bp.bandpower_features(2 * epochs[:1], FS)
    assert louder[0, 0, 2] - feats[0, 0, 2] == pytest.approx(np.log(4), abs=1e-4)
    # white noise of variance s^2: total 0.5-30 Hz power ~ s^2 * 29.5 / 50 (Parseval;
    # scipy's median average is bias-corrected for noise)
    noise = 3.0 * rng.standard_normal((200, 1, 3000))
    total = np.exp(bp.bandpower_features(noise, FS)[:, 0, 0]) / bp.bandpower_features(
        noise, FS)[:, 0, 5]
    assert total.mean() == pytest.approx(9.0 * 29.5 / 50, rel=0.05)
    assert feats[0, 1, 5] > 0.99  # 2 Hz sine -> delta
    np.testing.assert_allclose(feats[..., 5:].sum(-1), 1.0, atol=1e-5)
    assert list(bp.FEATURE_NAMES[:2]) == ["log_delta", "log_theta"]


def _contaminated(n_sec: float = 1800, seed: int = 1):
    rng = np.random.default_rng(seed)
    n = int(n_sec * FS)
    eye = np.cumsum(rng.standard_normal(n))
    eye = signal.filtfilt(*signal.butter(2, [0.5 / 50, 5 / 50], "band"), eye) * 40
    brain = signal.filtfilt(*signal.butter(2, [1 / 50, 25 / 50], "band"),
                            rng.laplace(size=(2, n))) * 10
    eeg1 = brain[0] + 1.5 * eye
    eeg2 = brain[1] + 0.3 * eye
    eog = eye + 2 * rng.standard_normal(n)
    return np.vstack([eeg1, eeg2, eog]).astype(np.float32), brain, eye


def test_ica_removes_eye_component_from_eeg_only():
    data, _brain, eye = _contaminated()
    x = bp.filter_signals(data * 1e-6, FS, ["eeg", "eeg", "eog"])
    cleaned, info = eye_ica.remove_eye_components(x, FS, ["Fpz-Cz", "Pz-Oz", "EOG"],
                                             ["eeg", "eeg", "eog"], ica_decim=1)
    assert info["ran"] and len(info["excluded_components"]) == 1
    assert max(abs(s) for s in info["eog_scores"]) > 0.8
    before = abs(np.corrcoef(x[0], eye)[0, 1])
    after = abs(np.corrcoef(cleaned[0], eye)[0, 1])
    assert before > 0.8 and after < 0.3
    np.testing.assert_array_equal(cleaned[2], x[2])  # EOG untouched


def test_ica_scores_match_mne_full_rate():
    """Scoring components on every 2nd sample gives MNE's full-rate EOG correlations."""
    import mne

    data, _brain, _eye = _contaminated(1200, seed=7)
    x = bp.filter_signals(data * 1e-6, FS, ["eeg", "eeg", "eog"])
    _, info = eye_ica.remove_eye_components(x, FS, ["a", "b", "e"], ["eeg", "eeg", "eog"],
                                       ica_decim=1)
    assert info["score_decim"] == eye_ica.ICA_SCORE_DECIM == 2
    raw = mne.io.RawArray(x, mne.create_info(["a", "b", "e"], FS, ["eeg", "eeg", "eog"]),
                          verbose="error")
    ica = mne.preprocessing.ICA(n_components=2, method="fastica", random_state=42,
                                max_iter=500, verbose="error")
    ica.fit(raw, picks=["a", "b"], verbose="error")
    bads, scores = ica.find_bads_eog(raw, ch_name="e", threshold=0.8,
                                     measure="correlation", verbose="error")
    np.testing.assert_allclose(info["eog_scores"], scores, atol=1e-3)
    assert info["excluded_components"] == [int(b) for b in bads] == [0]


def test_ica_without_eog_or_second_eeg_is_skipped():
    data, _, _ = _contaminated(120)
    out, info = eye_ica.remove_eye_components(data[:2], FS, ["a", "b"], ["eeg", "eeg"])
    assert not info["ran"] and "EOG" in info["skipped_reason"]
    np.testing.assert_array_equal(out, data[:2])


def test_night_features_equal_zscore_then_welch():
    data, _, _ = _contaminated(900)
    night = bp.extract_bandpower(data, FS, ["Fpz-Cz", "Pz-Oz", "EOG"], ["eeg", "eeg", "eog"],
                                 ica=False)
    assert night.n_epochs == 30
    x = bp.filter_signals(data * 1e-6, FS, ["eeg", "eeg", "eog"])
    for window in (None, slice(5, 20)):
        w = window or slice(0, 30)
        seg = x[:, w.start * 3000:w.stop * 3000]
        z = (x - seg.mean(axis=1, keepdims=True)) / seg.std(axis=1, keepdims=True)
        direct = bp.bandpower_features(z[:, :90000].reshape(3, 30, 3000).transpose(1, 0, 2))
        np.testing.assert_allclose(night.features(window), direct, rtol=1e-4, atol=1e-4)


def test_filters_follow_documented_bands():
    rng = np.random.default_rng(3)
    n = int(600 * FS)
    white = rng.standard_normal((2, n))
    out = bp.filter_signals(white, FS, ["eeg", "eog"])
    f, p_in = signal.welch(white, FS, nperseg=1024)
    _, p_out = signal.welch(out, FS, nperseg=1024)
    gain = p_out / p_in
    band = lambda lo, hi: (f >= lo) & (f <= hi)  # noqa: E731
    assert gain[0, band(2, 25)].mean() == pytest.approx(1.0, abs=0.05)
    assert gain[0, band(40, 49)].max() < 0.01  # EEG low-pass at 30 Hz (7.5 Hz transition)
    assert gain[1, band(2, 12)].mean() == pytest.approx(1.0, abs=0.05)
    assert gain[1, band(22, 49)].max() < 0.01  # EOG low-pass at 15 Hz
    assert gain[:, band(0.05, 0.15)].max() < 0.15  # high-pass at 0.5 Hz (-6 dB at 0.25 Hz)


def test_window_std_is_the_zscore_scale_of_the_window():
    from hypnoscope.signal.normalize import normalization_stats

    rng = np.random.default_rng(3)
    ep = rng.normal(0, 1, (8, 3, 3000)) * np.array([20e-6, 5e-6, 0.0])[None, :, None]
    ep += 3e-6  # an offset: the running sums subtract the window mean
    night = bp.BandPowerNight(np.ones((8, 3, 5)), ep.sum(axis=-1),
                              np.einsum("ect,ect->ec", ep, ep), np.zeros((8, 3)), 3000,
                              np.arange(8) * 30.0, ["a", "b", "c"], ["eeg", "eeg", "eog"])
    window = slice(2, 6)
    _, scale = normalization_stats(ep[window], "zscore", axes=(0, 2))
    std = night.window_std(window)
    np.testing.assert_allclose(std[:2], scale.ravel()[:2], rtol=1e-6)
    assert std[2] == bp.ZSCORE_EPS_V  # a flat channel gets the real set's floor


def test_sleep_period_crop_and_rejection():
    codes = np.array([0] * 100 + [2] * 10 + [0] * 5 + [4] * 3 + [0] * 200)
    w = sleep_period_slice(codes, bp.WAKE_CROP_SEC / 60, bp.EPOCH_SEC)
    assert (w.start, w.stop) == (100 - 60, 118 + 60)
    assert sleep_period_slice(np.zeros(50, int)) is None
    night = bp.BandPowerNight(np.ones((3, 3, 5)), np.zeros((3, 3)), np.ones((3, 3)),
                              np.array([[1e-4, 1e-4, 1e-4], [6e-4, 1e-4, 1e-4],
                                        [1e-4, 1e-4, 2e-3]]), 3000, np.arange(3) * 30.0,
                              ["a", "b", "c"], ["eeg", "eeg", "eog"])
    np.testing.assert_array_equal(night.rejected(), [False, True, True])


def test_channel_selection_errors_and_preferences():
    with pytest.raises(ValueError, match=r"Channels found: \['EEG Fpz-Cz', 'EMG submental'\]"):
        select_bandpower_channels(["EEG Fpz-Cz"], ["eeg"],
                                     channels_found=["EEG Fpz-Cz", "EMG submental"])
    names = ["O2-M1", "C4-M1", "F4-M1", "E1-M2"]
    idx = select_bandpower_channels(names, ["eeg", "eeg", "eeg", "eog"])
    assert [names[i] for i in idx] == ["F4-M1", "O2-M1", "E1-M2"]


def test_input_validation():
    with pytest.raises(ValueError, match="100 Hz"):
        bp.extract_bandpower(np.zeros((3, 30000)), 256.0, ["a", "b", "c"], ["eeg", "eeg", "eog"])
    with pytest.raises(ValueError, match="shorter than one"):
        bp.extract_bandpower(np.zeros((3, 100)), FS, ["a", "b", "c"], ["eeg", "eeg", "eog"])
    with pytest.raises(ValueError, match="fewer than the Welch window"):
        bp.welch_band_powers(np.zeros((1, 1, 100)))


def test_real_set_feature_identities(shared_data):
    """The real set obeys the identities of this computation: log power minus log relative
    power is the same total for every band, and relative powers sum to one."""
    z = np.load(shared_data / "sleepedf_bandpower" / "00__1.npz")
    f = z["features"].astype(float)
    total = f[..., :5] - np.log(f[..., 5:])
    assert np.abs(total - total[..., :1]).max() < 1e-4
    ours = bp.assemble_features(np.exp(f[..., :5]))
    np.testing.assert_allclose(ours[..., 5:], f[..., 5:], atol=1e-5)


def test_channel_selection_reorders_swapped_eeg_and_notes_ignored_channels():
    from hypnoscope.notices import Notices

    # posterior first, frontal second (--eeg Pz-Oz Fpz-Cz): swapped back, announced
    names = ["EEG Pz-Oz", "EEG Fpz-Cz", "EOG horizontal"]
    notes = Notices()
    idx = select_bandpower_channels(names, ["eeg", "eeg", "eog"], source="x.edf",
                                       explicit=True, notices=notes)
    assert [names[i] for i in idx] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
    assert [(n.code, n.severity) for n in notes] == [("channels-reordered", "info")]
    assert ("x.edf: EEG channels 'EEG Pz-Oz', 'EEG Fpz-Cz' were given parietal/occipital "
            "first") in notes[0].message
    # AASM names, in file order posterior first (automatic pick): the same
    names = ["O2-M1", "C4-M1", "E1-M2"]
    notes = Notices()
    idx = select_bandpower_channels(names, ["eeg", "eeg", "eog"], notices=notes)
    assert [names[i] for i in idx] == ["C4-M1", "O2-M1", "E1-M2"]
    assert [n.code for n in notes] == ["channels-reordered"]
    # the right order, or regions that cannot be told (temporal), are kept as given
    for pair in (["EEG Fpz-Cz", "EEG Pz-Oz"], ["T3-M2", "C4-M1"], ["O1-M2", "O2-M1"]):
        notes = Notices()
        idx = select_bandpower_channels(pair + ["E1"], ["eeg", "eeg", "eog"],
                                           explicit=True, notices=notes)
        assert idx == [0, 1, 2] and not notes
    # a third EEG, a second EOG and an EMG are not used: one info note each
    names = ["Fpz-Cz", "Pz-Oz", "C3-M2", "E1-M2", "E2-M1", "Chin"]
    notes = Notices()
    idx = select_bandpower_channels(names, ["eeg", "eeg", "eeg", "eog", "eog", "emg"],
                                       explicit=True, notices=notes)
    assert idx == [0, 1, 3]
    assert [(n.code, n.channel, n.severity) for n in notes] == [
        ("channel-ignored", "C3-M2", "info"), ("channel-ignored", "E2-M1", "info"),
        ("channel-ignored", "Chin", "info")]
    assert "'C3-M2' (eeg) is not used: the band-power model uses two EEG channels and one " \
           "EOG channel ('Fpz-Cz', 'Pz-Oz', 'E1-M2')" in notes[0].message
    # without a notices list the choice is the same and nothing is raised
    assert select_bandpower_channels(names, ["eeg", "eeg", "eeg", "eog", "eog", "emg"],
                                        explicit=True) == idx


@pytest.mark.parametrize("name, region", [
    ("EEG Fpz-Cz", "anterior"), ("Fp1-M2", "anterior"), ("F4-M1", "anterior"),
    ("C3-A2", "anterior"), ("EEG Pz-Oz", "posterior"), ("O2-M1", "posterior"),
    ("PO3-M2", "posterior"), ("P4", "posterior"), ("T3-M2", None), ("CP1", None),
    ("E1-M2", None), ("foo", None)])
def test_eeg_region(name, region):
    assert eeg_region(name) == region


def test_extract_bandpower_from_carries_channel_notices():
    from hypnoscope.io.psg import PSGRecording
    from hypnoscope.notices import notices_of

    rng = np.random.default_rng(0)
    data = rng.standard_normal((4, 100 * 60)) * 20
    rec = PSGRecording(data, ["EEG Pz-Oz", "EEG Fpz-Cz", "EEG C4-M1", "EOG horizontal"],
                       ["eeg", "eeg", "eeg", "eog"], 100.0, source="rec.edf",
                       meta={"notices": []})
    night = bp.extract_bandpower_from(rec, eeg=["EEG Pz-Oz", "EEG Fpz-Cz", "EEG C4-M1"],
                                      ica_decim=1)
    assert night.ch_names == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
    assert [n.code for n in night.meta["notices"]] == ["channels-reordered",
                                                      "channel-ignored"]
    assert not notices_of(rec.meta)  # the recording's own meta is left alone
