"""Tests of the per-epoch signal-quality module (:mod:`hypnoscope.signal.quality`).

Each detector is checked on simulated nights (:mod:`hypnoscope.simulate`) with known
defects injected into known epochs. "Recall" is the share of defective epochs that get
the detector's flag on the defective channel, "false-positive rate" the share of clean
epochs of that channel that get it; the bar for every detector is recall >= 95 % and a
false-positive rate <= 2 %. Clean simulated nights (all stages, N3 slow waves, REM eye
movements) must be flagged on < 2 % of epochs, N3 and REM on < 1 %.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from hypnoscope.io.psg import PSGRecording
from hypnoscope.signal.epochs import epoch_signals
from hypnoscope.signal.normalize import normalization_stats
from hypnoscope.signal.quality import (
    ALL_FLAGS,
    DETECTORS,
    Q,
    QualityReport,
    epoch_quality,
    exclusion_mask,
    recording_quality,
)
from hypnoscope.simulate import SubjectTraits, emg_envelope, sample_hypnogram, simulate_signals

FS = 100.0
NAMES = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]
ROLES = ["eeg", "eeg", "eog", "emg"]
FPZ, PZ, EOG, EMG = range(4)
RECALL_MIN = 0.95
FPR_MAX = 0.02


def _simulate(seed: int, hours: float = 8.0, sfreq: float = FS):
    """A night without the simulator's own bad-signal segments (movement artefacts in
    wake are kept: they are part of a real night)."""
    traits = dataclasses.replace(SubjectTraits.sample(1000 + seed), bad_segment_prob=0.0)
    hyp = sample_hypnogram(seed=seed, duration_h=hours)
    sig, hyp, _ = simulate_signals(hyp, seed=seed, subject=traits, sfreq=sfreq)
    data = np.stack([sig.fpz, sig.pz, sig.eog, sig.emg])
    ep = epoch_signals(data, sfreq)
    return ep, hyp.codes[: len(ep)], sig


@pytest.fixture(scope="module")
def night():
    """One clean 8-h night at 100 Hz: (epochs, stage codes)."""
    ep, codes, _ = _simulate(11)
    return ep, codes


def _rates(report: QualityReport, flag: Q, ch: int, defect: np.ndarray,
           ignore: np.ndarray | None = None) -> tuple[float, float]:
    """(recall on the defective epochs, false-positive rate on the others) of one flag."""
    hit = report.has(flag)[:, ch]
    clean = ~defect if ignore is None else ~defect & ~ignore
    return float(hit[defect].mean()), float(hit[clean].mean())


def _pick(n: int, k: int, seed: int, margin: int = 2) -> np.ndarray:
    """``k`` distinct epochs, none within ``margin`` of another (bool mask of ``n``)."""
    rng = np.random.default_rng(seed)
    cand = rng.permutation(np.arange(margin, n - margin))
    chosen: list[int] = []
    for c in cand:
        if all(abs(c - x) > margin for x in chosen):
            chosen.append(int(c))
        if len(chosen) == k:
            break
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    return mask


# ------------------------------------------------------------------ clean nights
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_clean_nights_are_rarely_flagged(seed):
    ep, codes, sig = _simulate(seed)
    env = emg_envelope(sig.emg, FS)  # the 1 Hz cassette envelope, as io puts it on the grid
    env = np.interp(np.arange(ep.shape[0] * 3000) / FS, np.arange(env.size) + 0.5, env)
    ep = np.concatenate([ep, epoch_signals(env[None], FS)], axis=1)
    rep = epoch_quality(ep, FS, ROLES + ["emg_envelope"], NAMES + ["EMG envelope"])
    bad = rep.bad_epoch
    assert bad.mean() < 0.02, rep.summary()
    for stage in (3, 4):  # N3 slow waves and REM eye movements are not artefacts
        assert bad[codes == stage].mean() < 0.01, (stage, rep.summary())
    assert not rep.has(Q.FLAT | Q.DISCONNECTED | Q.CLIPPED).any()
    assert rep.bad_channels() == []
    # REM atonia on the chin is quiet but not flat
    assert not rep.bad[codes == 4, EMG].any()


# ------------------------------------------------------------------ FLAT
def test_flat_channel_all_night_and_volts_under_uv_header(night):
    ep, _ = night
    x = ep.copy()
    x[:, PZ] = 0.0  # dead channel
    x[:, FPZ] *= 1e-6  # stored in volts under a µV header
    rep = epoch_quality(x, FS, ROLES, NAMES)
    assert rep.has(Q.FLAT)[:, [FPZ, PZ]].all()
    assert rep.has(Q.DISCONNECTED)[:, PZ].all()  # constant = dead/railed
    assert not rep.has(Q.DISCONNECTED)[:, FPZ].any()  # tiny but alive
    assert set(rep.bad_channels()) == {"EEG Fpz-Cz", "EEG Pz-Oz"}
    assert rep.bad[:, [EOG, EMG]].mean() < FPR_MAX
    # the bad-all-night channels do not exclude the whole night from normalisation
    assert exclusion_mask(rep).mean() < FPR_MAX
    assert exclusion_mask(rep, skip_bad_channels=None).all()


@pytest.mark.parametrize("level", [0.0, 0.3])
def test_flat_hour(night, level):
    ep, _ = night
    x = ep.copy()
    defect = np.zeros(len(x), dtype=bool)
    defect[300:420] = True  # one hour
    rng = np.random.default_rng(0)
    for ch in (FPZ, EOG, EMG):
        noise = level * rng.standard_normal(x[defect, ch].shape) if ch != EMG else 0.02 * (
            rng.standard_normal(x[defect, ch].shape))
        x[defect, ch] = noise
    rep = epoch_quality(x, FS, ROLES, NAMES)
    for ch in (FPZ, EOG, EMG):
        recall, fpr = _rates(rep, Q.FLAT, ch, defect)
        assert recall >= RECALL_MIN and fpr <= FPR_MAX, (ch, recall, fpr)
    assert not rep.has(Q.FLAT)[:, PZ].any()
    assert rep.has(Q.DISCONNECTED)[defect, FPZ].all() == (level == 0.0)


def test_flat_stretch_inside_an_epoch(night):
    ep, _ = night
    x = ep.copy()
    n = len(x)
    part = _pick(n, 40, 14)  # 12-25 s of a dead electrode inside the epoch
    short = _pick(n, 40, 15) & ~part  # 3 s: too short to call the epoch flat
    rng = np.random.default_rng(14)
    for e in np.flatnonzero(part):
        dur = int(rng.uniform(12, 25) * FS)
        st = int(rng.uniform(0, 3000 - dur))
        x[e, FPZ, st:st + dur] = 0.1 * rng.standard_normal(dur)
    for e in np.flatnonzero(short):
        x[e, FPZ, 1000:1300] = 0.0
    rep = epoch_quality(x, FS, ROLES, NAMES)
    recall, fpr = _rates(rep, Q.FLAT, FPZ, part)
    assert recall >= RECALL_MIN and fpr <= FPR_MAX, (recall, fpr)
    assert not rep.has(Q.FLAT)[short, FPZ].any()


def test_emg_envelope_handling(night):
    ep, codes = night
    env = np.sqrt(np.mean(ep[:, EMG].reshape(len(ep), 30, 100) ** 2, axis=-1))  # 1 Hz RMS
    grid = np.interp(np.arange(ep.shape[0] * 3000) / FS, np.arange(env.size) + 0.5, env.ravel())
    x = np.concatenate([ep, epoch_signals(grid[None], FS)], axis=1)
    roles, names = ROLES + ["emg_envelope"], NAMES + ["EMG envelope"]
    defect = np.zeros(len(x), dtype=bool)
    defect[200:260] = True
    x[defect, 4] = 0.0  # chin electrode off: no envelope
    big = _pick(len(x), 30, 16) & ~defect
    x[big, 4] *= 100.0  # a level of hundreds to thousands of µV RMS
    rep = epoch_quality(x, FS, roles, names)
    recall, fpr = _rates(rep, Q.FLAT, 4, defect)
    assert recall == 1.0 and fpr <= FPR_MAX
    recall, fpr = _rates(rep, Q.AMPLITUDE, 4, big)
    assert recall >= RECALL_MIN and fpr <= FPR_MAX, (recall, fpr)
    # the slow envelope is never CLIPPED, noisy, mains-contaminated or disconnected
    assert not rep.has(Q.CLIPPED | Q.HF_NOISE | Q.LINE_NOISE | Q.DISCONNECTED)[:, 4].any()
    assert not rep.bad[~defect & ~big, 4].any()


# ------------------------------------------------------------------ CLIPPED
def test_clipping(night):
    ep, _ = night
    x = ep.copy()
    n = len(x)
    rails = _pick(n, 60, 1)  # amplifier rails at the 90th percentile of |x|
    sat = _pick(n, 60, 2) & ~rails  # a 1000-µV movement swing saturates the ADC at ±400 µV
    for e in np.flatnonzero(rails):
        r = np.percentile(np.abs(x[e, FPZ]), 90)
        x[e, FPZ] = np.clip(x[e, FPZ], -r, r)
    rng = np.random.default_rng(2)
    t = np.arange(x.shape[-1]) / FS
    for e in np.flatnonzero(sat):
        swing = 1000 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 6))
        x[e, EOG] = np.clip(x[e, EOG] + swing, -400, 400)
    rep = epoch_quality(x, FS, ROLES, NAMES)
    for ch, defect in ((FPZ, rails), (EOG, sat)):
        recall, fpr = _rates(rep, Q.CLIPPED, ch, defect)
        assert recall >= RECALL_MIN and fpr <= FPR_MAX, (ch, recall, fpr)
    # a plateau clipped at the 90th percentile barely changes the SD: CLIPPED alone
    assert not rep.has(Q.AMPLITUDE)[rails, FPZ].any()


def test_result_does_not_depend_on_the_chunk_size(night):
    """Per-epoch statistics are computed chunk by chunk, night-relative rules after all
    chunks: any chunk size gives the same flags (one epoch per chunk, the default, and
    the whole night at once; defects included)."""
    ep, _ = night
    x = ep[:300].copy()
    x[10:40, FPZ] *= 30.0  # loud
    x[50:60, EOG] = 0.0  # flat
    reports = [epoch_quality(x, FS, ROLES, NAMES, chunk_samples=c)
               for c in (1, 250_000, 10**9)]
    assert reports[0].has(Q.AMPLITUDE)[10:40, FPZ].all()
    assert reports[0].has(Q.FLAT)[50:60, EOG].all()
    for rep in reports[1:]:
        assert np.array_equal(rep.flags, reports[0].flags)


# ------------------------------------------------------------------ AMPLITUDE / noise
def test_hour_of_800uv_noise(night):
    ep, _ = night
    x = ep.copy()
    defect = np.zeros(len(x), dtype=bool)
    defect[500:620] = True
    rng = np.random.default_rng(3)
    # broadband noise of ~800 µV peak-to-peak (SD 200 µV) on the EEG and the EOG
    for ch in (FPZ, EOG):
        x[defect, ch] += 200.0 * rng.standard_normal(x[defect, ch].shape)
    rep = epoch_quality(x, FS, ROLES, NAMES)
    recall, fpr = _rates(rep, Q.AMPLITUDE, FPZ, defect)
    assert recall >= RECALL_MIN and fpr <= FPR_MAX, (recall, fpr)
    for ch in (FPZ, EOG):
        recall, fpr = _rates(rep, Q.HF_NOISE, ch, defect)
        assert recall >= RECALL_MIN and fpr <= FPR_MAX, (ch, recall, fpr)
        hit = rep.bad[:, ch]
        assert hit[defect].mean() >= RECALL_MIN and hit[~defect].mean() <= FPR_MAX
    # the bad hour does not move the night's reference: the rest stays clean
    assert rep.bad_epoch[~defect].mean() <= FPR_MAX
    assert exclusion_mask(rep)[defect].all()


def test_whole_night_bad_channels_are_caught_by_absolute_limits(night):
    ep, _ = night
    x = ep.copy()
    x[:, FPZ] = 250.0 * np.random.default_rng(4).standard_normal(x[:, FPZ].shape)
    x[:, EOG] *= 1000.0  # stored in nV under a µV header
    rep = epoch_quality(x, FS, ROLES, NAMES)
    # white noise of 250 µV SD all night is caught by its spectrum (HF share), not by
    # its amplitude: a whole channel at 250 µV is inside the outer scale bound
    # (AMP_SCALE_MAX_DEFAULTS); the EOG at ~20 mV is outside it
    assert rep.has(Q.HF_NOISE)[:, FPZ].mean() >= RECALL_MIN
    assert rep.has(Q.AMPLITUDE)[:, EOG].mean() >= RECALL_MIN
    assert rep.bad_channels() == ["EEG Fpz-Cz", "EOG horizontal"]
    assert rep.bad[:, [PZ, EMG]].mean() <= FPR_MAX


def test_high_frequency_noise(night):
    ep, _ = night
    x = ep.copy()
    defect = _pick(len(x), 80, 5)
    rng = np.random.default_rng(5)
    for ch in (FPZ, EOG):  # broadband noise of SD 60 µV: not an amplitude outlier
        x[defect, ch] += 60.0 * rng.standard_normal(x[defect, ch].shape)
    rep = epoch_quality(x, FS, ROLES, NAMES)
    for ch in (FPZ, EOG):
        recall, fpr = _rates(rep, Q.HF_NOISE, ch, defect)
        assert recall >= RECALL_MIN and fpr <= FPR_MAX, (ch, recall, fpr)
    # EMG is high-frequency power by nature: never HF_NOISE
    assert not rep.has(Q.HF_NOISE)[:, EMG].any()


# ------------------------------------------------------------------ LINE_NOISE
@pytest.fixture(scope="module")
def night_250hz():
    ep, codes, _ = _simulate(21, hours=2.0, sfreq=250.0)
    return ep, codes


def test_line_noise(night_250hz, night):
    fs = 250.0
    ep, _ = night_250hz
    x = ep.copy()
    n, _, n_t = x.shape
    t = np.arange(n_t) / fs
    x += (1.0 * np.sin(2 * np.pi * 50 * t)).astype(x.dtype)  # residual mains everywhere: fine
    d50 = _pick(n, 40, 6)
    d60 = _pick(n, 40, 7)
    rng = np.random.default_rng(8)
    for e in np.flatnonzero(d50):
        x[e, FPZ] += 20 * np.sin(2 * np.pi * (50 + rng.normal(0, 0.05)) * t + rng.uniform(0, 6))
    for e in np.flatnonzero(d60):
        x[e, EMG] += 20 * np.sin(2 * np.pi * 60 * t + rng.uniform(0, 6))
    rep = epoch_quality(x, fs, ROLES, NAMES)
    for ch, defect in ((FPZ, d50), (EMG, d60)):
        recall, fpr = _rates(rep, Q.LINE_NOISE, ch, defect)
        assert recall >= RECALL_MIN and fpr <= FPR_MAX, (ch, recall, fpr)
    assert not rep.has(Q.LINE_NOISE)[:, [PZ, EOG]].any()
    assert rep.bad_epoch[~d50 & ~d60].mean() <= FPR_MAX
    # mains is not checked where it cannot be seen (100 Hz: 50 Hz is Nyquist)
    x100 = night[0][:100].copy()
    x100 += (50 * np.cos(np.pi * np.arange(3000))).astype(x100.dtype)  # 50 Hz at 100 Hz
    rep100 = epoch_quality(x100, FS, ROLES, NAMES)
    assert not rep100.has(Q.LINE_NOISE).any()
    assert np.isnan(rep100.metrics["line_uv"]).all()


# ------------------------------------------------------------------ DISCONNECTED
def test_loose_electrode_baseline_jump(night):
    ep, _ = night
    x = ep.copy()
    n, _, n_t = x.shape
    rng = np.random.default_rng(9)
    jumps = {FPZ: _pick(n, 50, 10), EOG: _pick(n, 50, 11)}
    for ch, defect in jumps.items():
        for e in np.flatnonzero(defect):
            # a DC step of 300-600 µV (EOG 800-1200 µV) decaying with the amplifier's
            # 1-5 s time constant, at a random time of the epoch
            size = rng.uniform(300, 600) * (2.0 if ch == EOG else 1.0) * rng.choice([-1, 1])
            t0 = int(rng.uniform(1, 28) * FS)
            tau = rng.uniform(1, 5) * FS
            tail = np.arange(n_t - t0)
            x[e, ch, t0:] += (size * np.exp(-tail / tau)).astype(x.dtype)
    rep = epoch_quality(x, FS, ROLES, NAMES)
    for ch, defect in jumps.items():
        recall, fpr = _rates(rep, Q.DISCONNECTED, ch, defect)
        assert recall >= RECALL_MIN and fpr <= FPR_MAX, (ch, recall, fpr)
    assert not rep.has(Q.DISCONNECTED)[:, [PZ, EMG]].any()


def test_nan_samples_are_disconnected(night):
    ep, _ = night
    x = ep[:60].copy()
    x[10, FPZ, 100:200] = np.nan
    x[11, EOG] = np.inf
    rep = epoch_quality(x, FS, ROLES, NAMES)
    assert rep.has(Q.DISCONNECTED)[10, FPZ] and rep.has(Q.DISCONNECTED)[11, EOG]
    assert rep.bad.sum() == 2
    assert np.isfinite(rep.metrics["sd"]).all()


# ------------------------------------------------------------------ real data
def test_real_yasa_snippets_are_not_flagged(shared_data, night):
    from scipy.signal import resample_poly

    snip = shared_data / "yasa_snippets"
    n3 = np.loadtxt(snip / "data_N3_no-spindles_30sec_100Hz.txt")  # one N3 epoch, 100 Hz
    n2 = np.loadtxt(snip / "data_N2_spindles_15sec_200Hz.txt")  # 15 s of N2, 200 Hz
    rem = np.load(snip / "data_EOGs_REM_256Hz.npz", allow_pickle=False)
    # alone (absolute rules only; LINE_NOISE is checkable at 200 Hz)
    assert epoch_quality(n3[None, None], 100.0, ["eeg"]).flags.sum() == 0
    assert epoch_quality(n2[None, None], 200.0, ["eeg"]).flags.sum() == 0
    # real N3 and N2 epochs placed into a simulated night: judged against the night
    n2_100 = resample_poly(n2, 1, 2)
    n2_30s = np.concatenate([n2_100, n2_100[::-1]])  # mirrored: no seam jump
    ep, _ = night
    x = ep.copy()
    slots = _pick(len(x), 40, 12)
    idx = np.flatnonzero(slots)
    x[idx[:20], FPZ] = n3
    x[idx[20:], PZ] = n2_30s
    rep = epoch_quality(x, FS, ROLES, NAMES)
    assert not rep.bad[idx[:20], FPZ].any()
    assert not rep.bad[idx[20:], PZ].any()
    # 14 min of real REM EOG (LOC, ROC) at 256 Hz: rapid eye movements are not artefacts
    data = np.asarray(rem["data"], dtype=float)
    sf = float(rem["sf"])
    epochs = epoch_signals(data, sf)
    rep_rem = epoch_quality(epochs, sf, ["eog", "eog"], [str(c) for c in rem["chan"]])
    ep100 = epoch_signals(resample_poly(data, 25, 64, axis=1), 100.0)
    rep_rem100 = epoch_quality(ep100, 100.0, ["eog", "eog"], [str(c) for c in rem["chan"]])
    # Epoch 5 (of 28) holds a 4-s muscle/movement burst (30-45 Hz RMS up to 37 µV on LOC,
    # against < 1.5 µV in every other second): HF_NOISE there, and nothing else anywhere.
    for r in (rep_rem, rep_rem100):
        assert set(np.flatnonzero(r.bad_epoch)) <= {5}, r.epoch_labels()
        assert not (r.flags & ~np.uint8(Q.HF_NOISE)).any()


# ------------------------------------------------------------------ speed
def test_speed_24h_three_channels(night):
    ep, _ = night
    reps = -(-2880 // len(ep))
    x = np.ascontiguousarray(np.concatenate([ep[:, :3]] * reps)[:2880])  # 24 h, 3 channels
    epoch_quality(x[:50], FS, ROLES[:3])  # warm-up (imports)
    t0 = time.perf_counter()
    rep = epoch_quality(x, FS, ROLES[:3], NAMES[:3])
    elapsed = time.perf_counter() - t0
    assert rep.flags.shape == (2880, 3)
    assert elapsed < 3.0, f"24-h night took {elapsed:.2f} s"


# ------------------------------------------------------------------ report API
def test_report_api_and_labels():
    flags = np.zeros((4, 3), dtype=np.uint8)
    flags[1, 0] = Q.FLAT
    flags[2, 2] = Q.HF_NOISE | Q.AMPLITUDE
    flags[2, 0] = Q.FLAT
    flags[3, :] = Q.DISCONNECTED
    rep = QualityReport(flags, ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG"], ["eeg", "eeg", "eog"],
                        sfreq=100.0)
    assert rep.epoch_labels() == [
        "ok", "flat:EEG Fpz-Cz", "flat:EEG Fpz-Cz;amplitude:EOG;noise:EOG",
        "disconnected:EEG Fpz-Cz,EEG Pz-Oz,EOG"]
    np.testing.assert_array_equal(rep.bad_epoch, [False, True, True, True])
    np.testing.assert_allclose(rep.bad_fraction, [0.75, 0.25, 0.5])
    assert rep.bad_channels() == ["EEG Fpz-Cz"]
    assert rep.bad_channels(0.4) == ["EEG Fpz-Cz", "EOG"]
    s = rep.summary()
    json.dumps(s)
    assert s["bad_epochs"] == 3 and s["channels"]["EOG"]["flags"]["noise"] == 1
    assert s["channels"]["EEG Fpz-Cz"]["flags"] == {
        "flat": 2, "clipped": 0, "amplitude": 0, "noise": 0, "line": 0, "disconnected": 1}
    np.testing.assert_array_equal(exclusion_mask(rep, skip_bad_channels=None),
                                  [False, True, True, True])
    # Fpz-Cz is bad on 3/4 epochs: ignored by default
    np.testing.assert_array_equal(exclusion_mask(rep), [False, False, True, True])
    np.testing.assert_array_equal(exclusion_mask(rep, channels=["EOG"]),
                                  [False, False, True, True])
    np.testing.assert_array_equal(exclusion_mask(rep, channels=[2], flags=Q.HF_NOISE),
                                  [False, False, True, False])
    with pytest.raises(ValueError, match="not in the report"):
        exclusion_mask(rep, channels=["EMG"])
    sub = rep.select(slice(1, 3))
    assert sub.n_epochs == 2 and sub.epoch_labels()[0] == "flat:EEG Fpz-Cz"
    assert rep.select(np.array([True, False, False, True])).bad_epoch.tolist() == [False, True]
    assert int(ALL_FLAGS) == sum(int(q) for q in DETECTORS) == 63


def test_exclusion_mask_feeds_normalization_stats(night):
    ep, _ = night
    x = ep[:200].copy()
    x[50:80, FPZ] += 300.0 * np.random.default_rng(13).standard_normal((30, 3000))
    rep = epoch_quality(x, FS, ROLES, NAMES)
    mask = exclusion_mask(rep)
    assert mask[50:80].all() and mask.sum() < 40
    _, scale = normalization_stats(x, "zscore", (0, 2), exclude=mask)
    _, clean_scale = normalization_stats(ep[:200], "zscore", (0, 2), exclude=mask)
    assert scale.shape == (1, 4, 1)
    np.testing.assert_allclose(scale, clean_scale, rtol=1e-5)


def test_recording_quality_and_validation(night):
    ep, _ = night
    data = ep[:40].transpose(1, 0, 2).reshape(4, -1)
    rec = PSGRecording(data, NAMES, ROLES, FS)
    rep = recording_quality(rec)
    assert rep.ch_names == NAMES and rep.flags.shape == (40, 4) and rep.sfreq == FS
    assert rep.select(slice(5, 10)).metrics["sd"].shape == (5, 4)
    rep2 = recording_quality(rec, onset_sec=15.0)
    assert rep2.n_epochs == 39
    with pytest.raises(ValueError, match="roles"):
        epoch_quality(ep[:5], FS, ROLES[:3])
    with pytest.raises(ValueError, match="unknown channel role"):
        epoch_quality(ep[:5], FS, ["eeg", "eeg", "eog", "ecg"])
    with pytest.raises(ValueError, match="n_epochs, n_channels, n_times"):
        epoch_quality(ep[0], FS, ROLES)
    with pytest.raises(ValueError, match="unknown role"):
        epoch_quality(ep[:5], FS, ROLES, flat_sd_uv={"ecg": 1.0})


def test_threshold_overrides(night):
    ep, _ = night
    x = ep[:100].copy()
    x[:, PZ] *= 0.2  # an EEG of ~3-5 µV SD: low but not flat by default
    rep = epoch_quality(x, FS, ROLES, NAMES)
    assert not rep.has(Q.FLAT)[:, PZ].any()
    rep = epoch_quality(x, FS, ROLES, NAMES, flat_sd_uv={"eeg": 50.0})
    assert rep.has(Q.FLAT)[:, PZ].all() and not rep.has(Q.FLAT)[:, EOG].any()
    rep = epoch_quality(x, FS, ROLES, NAMES, amp_ptp_uv=1.0)  # scalar: every role
    assert rep.has(Q.AMPLITUDE).all()
    rep = epoch_quality(x, FS, ROLES, NAMES, jump_uv={"eeg": None}, clip_fraction=None)
    assert rep.thresholds["jump_uv"]["eeg"] is None
    assert rep.thresholds["clip_fraction"]["eeg"] == 0.01
