"""Tests of the PSG simulator: physiology on short stretches, files, CLI, architecture."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import mne
import numpy as np
import pytest
from scipy import signal as sps

from hypnoscope.cli import CLIError
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.io.psg import read_psg
from hypnoscope.simulate import (
    DEFAULT_DIFFICULTY,
    SleepArchitectureModel,
    SubjectTraits,
    emg_envelope,
    latent_mixture,
    sample_hypnogram,
    simulate_dataset,
    simulate_night,
    simulate_signals,
    write_sleepedf_pair,
)
from hypnoscope.simulate.night import stage_seconds

FS = 100.0
BLOCK = 8  # epochs per stage block
#: W, N1, N2, N3, N2, R, N2, R blocks: 64 epochs = 32 min
ORDER = [0, 1, 2, 3, 2, 4, 2, 4]


def _block_hyp() -> Hypnogram:
    return Hypnogram(np.repeat(ORDER, BLOCK))


def _stage_epochs(sig_x: np.ndarray, stage: int) -> np.ndarray:
    """Epochs (n, 3000) of ``stage``, leaving out each block's first and last epoch."""
    ep = sig_x[: len(sig_x) // 3000 * 3000].reshape(-1, 3000)
    idx = [b * BLOCK + k for b, s in enumerate(ORDER) if s == stage for k in range(1, BLOCK - 1)]
    return ep[idx]


def _band(ep: np.ndarray, lo: float, hi: float, relative: bool = False,
          q: float = 50) -> float:
    f, p = sps.welch(ep, FS, nperseg=400, axis=-1)
    bp = p[:, (f >= lo) & (f < hi)].sum(axis=1)
    if relative:
        bp = bp / p[:, (f >= 0.5) & (f < 30)].sum(axis=1)
    return float(np.percentile(bp, q))


@pytest.fixture(scope="module")
def nights_traits():
    """Three short nights (different subjects, no bad segments) of one block hypnogram.

    Simulated with ``difficulty=0`` (the signals follow the label) so that these tests
    measure each stage's physiological signature; the latent-state model that blurs
    the label-level signatures is tested in ``test_signals_follow_the_latent_state``.
    """
    out = []
    for s in range(3):
        traits = dataclasses.replace(SubjectTraits.sample(s), bad_segment_prob=0.0)
        out.append((simulate_signals(_block_hyp(), seed=s, subject=traits,
                                     difficulty=0.0)[0], traits))
    return out


def test_stage_signatures_survive_default_difficulty():
    # with scorer disagreement on, the label-level signatures still hold on average,
    # weaker than in the latent state itself (disputed epochs look like another stage)
    for s in range(2):
        traits = dataclasses.replace(SubjectTraits.sample(10 + s), bad_segment_prob=0.0)
        sig = simulate_signals(_block_hyp(), seed=s, subject=traits)[0]
        assert (sig.latent_stage != _block_hyp().codes).any()
        sigma = {st: _band(_stage_epochs(sig.fpz, st), 11, 16) for st in range(5)}
        assert sigma[2] > 1.5 * sigma[4]
        delta = {st: _band(_stage_epochs(sig.fpz, st), 0.5, 4) for st in range(5)}
        assert delta[3] > 1.2 * max(delta[1], delta[2], delta[4])  # (W: eye artefacts)
        rms = {st: _stage_epochs(sig.emg, st).std(axis=1) for st in range(5)}
        assert np.median(rms[4]) < np.median(np.concatenate([rms[2], rms[3]]))
        assert np.median(rms[0]) > 3 * np.median(rms[4])
        alpha = {st: _band(_stage_epochs(sig.pz, st), 8, 12, relative=True, q=75)
                 for st in range(5)}
        assert alpha[0] > 1.1 * max(alpha[2], alpha[3], alpha[4])


@pytest.fixture(scope="module")
def nights(nights_traits):
    return [sig for sig, _ in nights_traits]


def test_sigma_and_delta_and_alpha_by_stage(nights):
    for sig in nights:
        sigma = {s: _band(_stage_epochs(sig.fpz, s), 11, 16) for s in range(5)}
        assert sigma[2] > 2 * sigma[4]  # spindles: N2 >> REM
        delta = {s: _band(_stage_epochs(sig.fpz, s), 0.5, 4) for s in range(5)}
        assert max(delta, key=delta.get) == 3  # N3 highest delta
        assert delta[3] > 2 * delta[2]
        # posterior alpha in wake (its eyes-closed part: upper quartile of the epochs)
        alpha = {s: _band(_stage_epochs(sig.pz, s), 8, 12, relative=True, q=75)
                 for s in range(5)}
        assert max(alpha, key=alpha.get) == 0
        assert alpha[0] > 1.5 * alpha[2]


def _count_spindles(x: np.ndarray, thresh: float) -> int:
    b, a = sps.butter(4, [11, 16], btype="band", fs=FS)
    env = np.abs(sps.hilbert(sps.filtfilt(b, a, x)))
    runs = np.diff(np.concatenate([[0], (env > thresh).astype(int), [0]]))
    dur = (np.flatnonzero(runs == -1) - np.flatnonzero(runs == 1)) / FS
    return int(((dur >= 0.3) & (dur <= 3)).sum())


def test_spindle_counts_n2_vs_rem(nights_traits):
    for sig, traits in nights_traits:
        n2 = _stage_epochs(sig.fpz, 2).ravel()
        rem = _stage_epochs(sig.fpz, 4).ravel()
        thresh = 2.5 * np.median(np.abs(sps.hilbert(sps.filtfilt(
            *sps.butter(4, [11, 16], btype="band", fs=FS), sig.fpz))))
        c2, cr = _count_spindles(n2, thresh), _count_spindles(rem, thresh)
        minutes = len(n2) / FS / 60
        assert c2 / minutes >= 0.5 * traits.spindle_density  # the subject's density
        assert c2 > 3 * max(cr, 1)


def test_emg_lowest_in_rem_and_slow_waves_in_n3(nights):
    for sig in nights:
        rms = {s: float(np.median(_stage_epochs(sig.emg, s).std(axis=1))) for s in range(5)}
        assert min(rms, key=rms.get) == 4
        assert rms[0] > 2 * rms[4]
        # N3: waves of 0.5-2 Hz above 75 µV peak-to-peak over >= 20 % of the epoch
        b, a = sps.butter(3, [0.5, 2.0], btype="band", fs=FS)
        sw = sps.filtfilt(b, a, sig.fpz)
        ep = _stage_epochs(np.abs(sps.hilbert(sw)), 3)
        assert np.median((ep > 37.5).mean(axis=1)) >= 0.2


def _rem_rate(eog: np.ndarray) -> float:
    """Rapid eye movements per minute: steep (> 800 µV/s) deflections of the EOG."""
    b, a = sps.butter(2, [0.3, 5.0], btype="band", fs=FS)
    slope = np.abs(np.gradient(sps.filtfilt(b, a, eog)) * FS)
    peaks, _ = sps.find_peaks(slope, height=800, distance=int(0.3 * FS))
    return len(peaks) / (len(eog) / FS / 60)


def test_slow_waves_deeper_early_in_the_night():
    # an N3 stretch at sleep onset and another one 5 h later, N2 in between
    hyp = Hypnogram([0] * 2 + [3] * 10 + [2] * 600 + [3] * 10)
    traits = dataclasses.replace(SubjectTraits(), bad_segment_prob=0.0)
    # difficulty 0: N3 physiology itself (disputed N3 epochs are N2-like by design)
    sig = simulate_signals(hyp, seed=4, subject=traits, difficulty=0.0)[0]
    b, a = sps.butter(3, [0.5, 2.0], btype="band", fs=FS)
    sw = sps.filtfilt(b, a, sig.fpz)
    ep = sw[: len(sw) // 3000 * 3000].reshape(-1, 3000)
    ptp = np.percentile(ep, 97.5, axis=1) - np.percentile(ep, 2.5, axis=1)
    assert np.median(ptp[-9:-1]) > 75  # still slow-wave sleep by the AASM criterion
    early, late = ep[3:11].std(), ep[-9:-1].std()  # slow-wave amplitude
    assert early > 1.2 * late


def test_electrode_drift_and_bad_segments():
    hyp = Hypnogram([2] * 40)
    base = SubjectTraits()
    quiet = simulate_signals(hyp, seed=1, subject=dataclasses.replace(
        base, drift_uv=0.0, bad_segment_prob=0.0))[0]
    drifty = simulate_signals(hyp, seed=1, subject=dataclasses.replace(
        base, drift_uv=20.0, bad_segment_prob=0.0))[0]
    drift = drifty.fpz - quiet.fpz  # same seed: the difference is the drift alone
    assert 5 < drift.std() < 40
    f, p = sps.welch(drift, FS, nperseg=6000)
    assert p[f < 0.2].sum() > 0.95 * p.sum()  # slow
    bad = simulate_signals(hyp, seed=1, subject=dataclasses.replace(
        base, bad_segment_prob=1.0))[0]
    onsets = bad.events["bad_segment"]
    assert 1 <= len(onsets) <= 3
    i0 = int(onsets[0] * FS)
    seg = [np.abs(x[i0:i0 + 300] - q[i0:i0 + 300]).max()
           for x, q in ((bad.fpz, quiet.fpz), (bad.pz, quiet.pz), (bad.eog, quiet.eog))]
    assert max(seg) > 10  # flattened or noisy on one channel


def test_rapid_eye_movements_in_rem_eog(nights):
    for sig in nights:
        rem = _rem_rate(_stage_epochs(sig.eog, 4).ravel())
        n2 = _rem_rate(_stage_epochs(sig.eog, 2).ravel())
        n3 = _rem_rate(_stage_epochs(sig.eog, 3).ravel())
        assert rem >= 2.0
        assert rem > 3 * max(n2, n3, 0.3)


def test_correlated_derivations_and_eog_leak(nights):
    sig = nights[0]
    n3 = slice(3 * BLOCK * 3000 + 3000, 4 * BLOCK * 3000 - 3000)
    b, a = sps.butter(3, [0.5, 30], btype="band", fs=FS)
    fpz, pz, eog = (sps.filtfilt(b, a, x[n3]) for x in (sig.fpz, sig.pz, sig.eog))
    assert 0.1 < np.corrcoef(fpz, pz)[0, 1] < 0.9
    assert np.corrcoef(fpz, eog)[0, 1] > 0.2  # frontal EEG seen by the EOG


def test_determinism_and_seed_dependence():
    hyp = Hypnogram([0, 0, 1, 2, 2, 3, 4, 4])
    a = simulate_night(hyp, seed=5).get_data()
    b = simulate_night(hyp, seed=5).get_data()
    c = simulate_night(hyp, seed=6).get_data()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_raw_layout_units_and_annotations():
    hyp = Hypnogram([0, 1, 2, 3, -100, 4], start_time=None)
    raw = simulate_night(hyp, seed=1, mode="sleep-edf-sc")
    assert raw.ch_names[:4] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]
    assert raw.get_channel_types()[:4] == ["eeg", "eeg", "eog", "emg"]
    assert raw.info["sfreq"] == FS and raw.n_times == 6 * 30 * 100
    # no start time anywhere: the documented default, 1989-04-24 22:30 (UTC)
    assert raw.info["meas_date"] == dt.datetime(1989, 4, 24, 22, 30, tzinfo=dt.timezone.utc)
    timed = simulate_night(hyp.copy(start_time=dt.datetime(2020, 1, 2, 23, 15)), seed=1)
    assert timed.info["meas_date"] == dt.datetime(2020, 1, 2, 23, 15, tzinfo=dt.timezone.utc)
    eeg_std_uv = raw.get_data(picks="EEG Fpz-Cz").std() * 1e6
    assert 3 < eeg_std_uv < 200  # volts in the object, µV-scale physiology
    back = Hypnogram.from_mne_annotations(raw.annotations)
    np.testing.assert_array_equal(back.codes, hyp.codes)
    tele = simulate_night(hyp, seed=1, mode="telemetry")
    assert tele.ch_names == raw.ch_names[:4]
    desc = json.loads(tele.info["description"])
    assert desc["mode"] == "telemetry" and desc["seed"] == 1


def test_mixed_epochs_keep_majority_stage():
    rng = np.random.default_rng(0)
    hyp = Hypnogram(rng.integers(0, 5, 300))  # many one-epoch runs
    stages, _ = stage_seconds(hyp, np.random.default_rng(1))
    per_ep = stages.reshape(-1, 30)
    share = (per_ep == hyp.codes[:, None]).mean(axis=1)
    assert share.min() >= 0.6
    assert (share < 1).mean() > 0.3  # boundaries really blend


def test_write_pair_readable_and_hypnogram_exact(tmp_path):
    codes = np.array([0] * 4 + [1, 2, 2, 3, 3, -100, 2, 4, 4, 0] + [-100] * 2)
    hyp = Hypnogram(codes)
    raw = simulate_night(hyp, seed=2, mode="sleep-edf-sc")
    psg, hyp_path = write_sleepedf_pair(raw, hyp, tmp_path / "out", "SC4991E0")
    assert psg.name == "SC4991E0-PSG.edf" and hyp_path.name == "SC4991E0-Hypnogram.edf"
    assert not list((tmp_path / "out").glob(".*part*"))  # atomic: no leftovers
    r = mne.io.read_raw_edf(psg, preload=True, verbose="error")
    assert r.ch_names == raw.ch_names
    assert list(r._raw_extras[0]["n_samps"]) == [100, 100, 100, 1, 1, 1, 1]
    np.testing.assert_allclose(r.get_data(picks="EEG Fpz-Cz")[0],
                               raw.get_data(picks="EEG Fpz-Cz")[0], atol=0.05e-6)
    # EMG stored as the 1 Hz RMS envelope in µV
    env = emg_envelope(raw.get_data(picks="EMG submental")[0] * 1e6, FS)
    stored = r.get_data(picks="EMG submental")[0][::100] * 1e6
    np.testing.assert_allclose(stored[: len(env)], env, atol=0.05)
    back = read_hypnogram(hyp_path)
    np.testing.assert_array_equal(back.codes, codes)
    # telemetry mode keeps a 100 Hz EMG waveform
    tele = simulate_night(hyp, seed=2, mode="telemetry")
    psg2, _ = write_sleepedf_pair(tele, None, tmp_path / "tele", "ST7991J0")
    r2 = mne.io.read_raw_edf(psg2, verbose="error")
    assert list(r2._raw_extras[0]["n_samps"]) == [100] * 4


def test_project_reader_roles(tmp_path):
    hyp = Hypnogram([0, 2, 2, 4])
    for mode, role in (("sleep-edf-sc", "emg_envelope"), ("telemetry", "emg")):
        psg, _ = write_sleepedf_pair(simulate_night(hyp, seed=0, mode=mode), hyp,
                                     tmp_path / mode, "SC4001E0")
        rec = read_psg(psg)
        roles = dict(zip(rec.ch_names, rec.roles, strict=True))
        assert roles["EEG Fpz-Cz"] == "eeg" and roles["EOG horizontal"] == "eog"
        assert roles["EMG submental"] == role
        assert rec.data.shape[1] == 4 * 3000
        assert 3 < np.std(rec.data[rec.ch_names.index("EEG Fpz-Cz")]) < 200  # µV


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        simulate_night(Hypnogram([0, 1]), mode="psg-x")
    with pytest.raises(ValueError, match="5-class"):
        simulate_night(Hypnogram([0, 1, 2], n_classes=3))
    with pytest.raises(FileNotFoundError, match="nope.edf"):
        simulate_night(tmp_path / "nope.edf")
    with pytest.raises(ValueError, match="record_id"):
        write_sleepedf_pair(simulate_night(Hypnogram([0]), seed=0), None, tmp_path, "a/b")
    with pytest.raises(ValueError, match="subjects"):
        simulate_dataset(tmp_path, 3, hypnograms=[Hypnogram([0, 1])])


def test_architecture_model_time_of_night():
    model = SleepArchitectureModel.default()
    mats = model.transition_matrices
    np.testing.assert_allclose(mats.sum(axis=2), 1.0)
    early, late, counts = np.zeros(5), np.zeros(5), np.zeros(5)
    for s in range(12):
        h = sample_hypnogram(model, seed=s, duration_h=8.0)
        n = int(3 * 3600 / 30)
        assert h.n_epochs == 960 + 60 and (h.codes[-60:] == 0).all()
        early += np.bincount(h.codes[60:60 + n], minlength=5)
        late += np.bincount(h.codes[960 - n:960], minlength=5)
        counts += np.bincount(h.codes, minlength=5)
    assert early[3] > 2 * late[3]  # more N3 early
    assert late[4] > 1.3 * early[4]  # more REM late
    frac = counts / counts.sum()
    assert 0.3 < frac[2] < 0.6 and frac[4] > 0.1  # N2 dominant, REM present
    hyps = [sample_hypnogram(model, seed=s) for s in range(3)]
    refit = SleepArchitectureModel.fit(hyps)
    assert refit.counts.shape == model.counts.shape
    # the refit counts every transition of each sleep-period crop, by hour of the night
    crops = [h.codes[h.sleep_period_slice(30.0)] for h in hyps]
    assert refit.counts.sum() == sum(len(c) - 1 for c in crops)
    np.testing.assert_array_equal(refit.counts.sum(axis=(0, 2)),
                                  sum(np.bincount(c[:-1], minlength=5) for c in crops))
    assert refit.counts[0].sum() == sum(min(120, len(c) - 1) for c in crops)  # first hour


def test_latent_state_differs_from_label_like_scorers():
    """Scorer-disagreement model: the latent majority differs from the label on a
    realistic share of epochs, most for N1, mostly next to stage changes."""
    rng = np.random.default_rng(0)
    ys, lats, near = [], [], []
    for s in range(10):
        y = sample_hypnogram(seed=s, duration_h=8.0).codes
        mix = latent_mixture(y, rng, DEFAULT_DIFFICULTY)
        np.testing.assert_allclose(mix.sum(axis=1), 1.0, atol=1e-6)
        ys.append(y)
        lats.append(mix.argmax(axis=1))
        near.append(np.r_[False, y[1:] != y[:-1]] | np.r_[y[:-1] != y[1:], False])
    y, lat, near = np.concatenate(ys), np.concatenate(lats), np.concatenate(near)
    differs = lat != y
    per_stage = [differs[y == s].mean() for s in range(5)]
    assert 0.03 <= differs.mean() <= 0.12  # inter-scorer agreement ~83 %: about half
    assert 0.15 <= per_stage[1] <= 0.5  # N1: the least reliable stage
    assert 0.01 <= per_stage[2] <= 0.10
    assert per_stage[1] > 3 * per_stage[2]
    assert per_stage[3] > per_stage[2]  # N2/N3 threshold
    assert differs[near].mean() > 2 * differs[~near].mean()  # concentrated at transitions
    # N1 is disputed with W and N2, N3 with N2
    assert set(np.unique(lat[(y == 1) & differs])) <= {0, 2, 4}
    assert set(np.unique(lat[(y == 3) & differs])) == {2}
    # strength 0: the latent state is the label; stronger: more disagreement
    np.testing.assert_array_equal(latent_mixture(y, rng, 0.0).argmax(axis=1), y)
    assert (latent_mixture(y, rng, 2.0).argmax(axis=1) != y).mean() > differs.mean()
    with pytest.raises(ValueError, match="difficulty"):
        latent_mixture(y, rng, -1.0)


def test_signals_follow_the_latent_state():
    # N2 N2 N2 N1 N1 repeated: N1 epochs next to N2 are often physiologically N2
    hyp = Hypnogram(np.tile([2, 2, 2, 1, 1], 60))
    traits = dataclasses.replace(SubjectTraits(), bad_segment_prob=0.0)
    sig = simulate_signals(hyp, seed=3, subject=traits)[0]
    lat = sig.latent_stage
    assert len(lat) == hyp.n_epochs
    n1 = hyp.codes == 1
    as_n2, as_n1 = n1 & (lat == 2), n1 & (sig.latent_mixture[:, 1] > 0.99)  # pure N1
    assert as_n2.sum() >= 10 and as_n1.sum() >= 15
    spindles = np.bincount((sig.events["spindle"] // 30).astype(int), minlength=hyp.n_epochs)
    assert spindles[as_n2].mean() > 2 * spindles[as_n1].mean()  # events follow the latent
    emg = sig.emg[: hyp.n_epochs * 3000].reshape(-1, 3000).std(axis=1)
    assert np.median(emg[as_n2]) < np.median(emg[as_n1])  # lower tone when N2-like
    # difficulty 0: the latent state is the label, and the annotations never change
    sig0 = simulate_signals(hyp, seed=3, subject=traits, difficulty=0.0)[0]
    np.testing.assert_array_equal(sig0.latent_stage, hyp.codes)
    raw = simulate_night(hyp, seed=3)
    np.testing.assert_array_equal(Hypnogram.from_mne_annotations(raw.annotations).codes,
                                  hyp.codes)
    desc = json.loads(raw.info["description"])
    assert desc["difficulty"] == DEFAULT_DIFFICULTY
    assert [int(c) for c in desc["latent_stages"]] == sig.latent_stage.tolist()
    with pytest.raises(ValueError, match="difficulty"):
        simulate_signals(hyp, difficulty=float("nan"))


def test_n1_eyes_roll_slowly_and_eyes_open_wake_blinks_with_tone():
    """Issue 16: N1 carries slow rolling eye movements through most of its time and hardly
    blinks; eyes-open wake blinks and makes saccades with high EMG tone (not atonia)."""
    hyp = Hypnogram(np.repeat([0, 1, 4], [40, 120, 40]))  # 20 min W, 60 min N1, 20 min R
    traits = dataclasses.replace(SubjectTraits(), bad_segment_prob=0.0, eyes_closed_frac=0.0)
    sig = simulate_signals(hyp, seed=5, subject=traits, difficulty=0.0)[0]

    def count(kind: str, a_min: float, b_min: float) -> int:
        t = sig.events[kind]
        return int(((t >= 60 * a_min) & (t < 60 * b_min)).sum())

    assert count("sem", 20, 80) / 60 == pytest.approx(traits.sem_rate, rel=0.25)  # 5/min
    # N1 (away from the boundaries): 0.1 blink/min (it was 0.5); eyes-open wake: ~12/min
    assert count("blink", 21, 79) <= 14 < 100 < count("blink", 0, 17)
    assert count("saccade", 0, 17) > 200 and count("saccade", 21, 79) == 0
    emg = sig.emg[: hyp.n_epochs * 3000].reshape(-1, 3000).std(axis=1)
    w, n1, rem = (np.median(emg[a:b]) for a, b in ((0, 34), (42, 158), (166, 200)))
    assert w > 1.5 * n1 > 1.5 * rem  # wake > N1 > REM atonia


def test_subject_traits_vary():
    a, b = SubjectTraits.sample(0), SubjectTraits.sample(1)
    assert a != b and 8 <= a.alpha_freq <= 12 and 11 <= a.spindle_freq <= 16
    a2 = a.second_night(3)
    assert abs(a2.alpha_freq - a.alpha_freq) < 0.5 and a2 != a
    assert a2.spectral_seed == a.spectral_seed  # same spectral signature every night
    pop = [SubjectTraits.sample(s) for s in range(300)]
    for name in ("alpha_amp", "spindle_density", "emg_level", "emg_rem", "vertex_rate"):
        v = np.array([getattr(t, name) for t in pop])
        assert v.std() / v.mean() > 0.25, name  # large between-subject variability
    assert all(t.emg_rem < min(t.emg_n2, t.emg_n3) < t.emg_n1 < 1 for t in pop)  # atonia
    off, std = a.spectral_offsets()
    assert off.shape == (5, 3, 5) and std.shape == (5, 3)
    assert 0.05 < off.std() < 0.5
    assert not np.allclose(off, SubjectTraits.sample(1).spectral_offsets()[0])
    assert not SubjectTraits().spectral_offsets()[0].any()  # defaults: population mean


def test_cli_single_hypnogram(tmp_path, capsys, cli_handler):
    h = Hypnogram([0, 0, 1, 2, 2, 3, 2, 4, 4, 0])
    src = h.to_edf(tmp_path / "SC4771G0-Hypnogram.edf")
    out = tmp_path / "sim"
    assert cli_handler(["simulate", "--hypnogram", str(src), "--out", str(out), "--seed", "3"]) == 0
    psg = out / "SC4771G0-PSG.edf"
    assert psg.is_file() and "wrote" in capsys.readouterr().out
    r = mne.io.read_raw_edf(psg, verbose="error")
    assert r.ch_names == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental",
                          "Resp oro-nasal", "Temp rectal", "Event marker"]  # Sleep-EDF SC
    assert r.n_times == h.n_epochs * 30 * 100
    np.testing.assert_array_equal(read_hypnogram(out / "SC4771G0-Hypnogram.edf").codes,
                                  h.codes)
    # a cropped real-style hypnogram: the simulated recording starts at the crop's clock time
    import datetime as dt

    t0 = dt.datetime(1989, 4, 24, 16, 13)
    long = Hypnogram([0] * 200 + [2, 3, 2, 4] + [0] * 200, start_time=t0)
    src2 = long.to_edf(tmp_path / "SC4781G0-Hypnogram.edf")
    assert cli_handler(["simulate", "--hypnogram", str(src2), "--out", str(out),
                 "--crop-wake-min", "30"]) == 0
    raw = mne.io.read_raw_edf(out / "SC4781G0-PSG.edf", verbose="error")
    assert raw.info["meas_date"].replace(tzinfo=None) == t0 + dt.timedelta(seconds=140 * 30)
    assert read_hypnogram(out / "SC4781G0-Hypnogram.edf").n_epochs == 124


def test_cli_many_subjects(tmp_path, cli_handler):
    out = tmp_path / "many"
    assert cli_handler(["simulate", "--n-subjects", "2", "--seed", "0", "--out", str(out),
                 "--duration-h", "0.3", "--mode", "telemetry"]) == 0
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["difficulty"] == 1.0  # the documented default
    assert [r["record_id"] for r in meta["records"]] == ["SC4001E0", "SC4011E0"]
    assert meta["records"][0]["traits"] != meta["records"][1]["traits"]
    for r in meta["records"]:
        raw = mne.io.read_raw_edf(out / r["psg"], verbose="error")
        hyp = read_hypnogram(out / r["hypnogram"])
        assert abs(raw.n_times / 100 - hyp.duration_sec) < 1
    # driven by a folder of hypnograms: two nights of one Sleep-EDF subject
    hdir = tmp_path / "hyps"
    for night in (1, 2):
        Hypnogram([0] * 3 + [2, 3, 2, 4] + [0] * 3).to_edf(hdir / f"SC40{7}{night}E0-Hypnogram.edf")
    out2 = tmp_path / "driven"
    assert cli_handler(["simulate", "--n-subjects", "1", "--out", str(out2),
                 "--hypnogram-dir", str(hdir)]) == 0
    recs = json.loads((out2 / "simulation.json").read_text())["records"]
    assert [(r["subject"], r["night"]) for r in recs] == [(0, 1), (0, 2)]


def test_cli_difficulty(tmp_path, cli_handler):
    out = tmp_path / "easy"
    assert cli_handler(["simulate", "--n-subjects", "1", "--out", str(out), "--duration-h", "0.3",
                 "--difficulty", "0"]) == 0
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["difficulty"] == 0.0
    with pytest.raises(CLIError, match="--difficulty must be >= 0, got -1"):
        cli_handler(["simulate", "--n-subjects", "1", "--out", str(tmp_path / "bad"),
              "--difficulty", "-1"])
    assert not (tmp_path / "bad").exists()


def test_real_hypnogram_reproduced(shared_data, tmp_path):
    f = sorted((shared_data / "sleepedf_hypnograms" / "sleep-cassette").glob("*.edf"))[0]
    hyp = read_hypnogram(f)
    hyp = hyp[hyp.sleep_period_slice(0)][:120].copy(onset_sec=0.0)  # first hour of sleep
    raw = simulate_night(hyp, seed=0)
    _, hyp_path = write_sleepedf_pair(raw, hyp, tmp_path, "SC4001E0")
    np.testing.assert_array_equal(read_hypnogram(hyp_path).codes, hyp.codes)


def test_default_architecture_is_fitted_to_real_hypnograms(shared_data):
    files = sorted((shared_data / "sleepedf_hypnograms" / "sleep-cassette")
                   .glob("*-Hypnogram.edf"))
    assert len(files) == 54
    refit = SleepArchitectureModel.fit(files)
    np.testing.assert_array_equal(refit.counts, SleepArchitectureModel.default().counts)


def test_reuse_or_simulate_dataset_reuses_only_the_same_dataset(tmp_path, monkeypatch):
    from hypnoscope.simulate import files

    first = files.reuse_or_simulate_dataset(tmp_path, 1, seed=3, duration_h=0.5)
    assert first["n_subjects"] == 1 and first["simulation_seconds"] > 0
    assert len(list(tmp_path.glob("*-PSG.edf"))) == 1

    def boom(*a, **k):
        raise AssertionError("simulated again")

    monkeypatch.setattr(files, "simulate_dataset", boom)
    again = files.reuse_or_simulate_dataset(tmp_path, 1, seed=3, duration_h=0.5)
    assert again["records"] == first["records"] and "simulation_seconds" not in again
    for other in ({"seed": 4}, {"difficulty": 0.0}):
        with pytest.raises(AssertionError, match="simulated again"):
            files.reuse_or_simulate_dataset(tmp_path, 1, **{"seed": 3, **other})
