"""Signal quality judged relative to the recording (issue 25).

A healthy night at another gain (x0.3, x3, x5), or of a person with large slow waves,
must get the same quality flags and the same stages as the original, with no N3 epoch
unscored for "amplitude"; genuine artefacts must still be flagged against the rest of
the night; a whole channel of implausible amplitude (a unit mistake) or without signal
must still be refused. The nights are simulated (:mod:`hypnoscope.simulate`): the first
3 h of the demo night (Sleep-EDF montage, 100 Hz) and a sampled 3-h night (SHHS
montage, 125 Hz) through the staging pipeline, and 4-h nights without the simulator's
bad-signal segments for :func:`~hypnoscope.signal.quality.epoch_quality`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hypnoscope.signal.epochs import epoch_signals
from hypnoscope.signal.quality import (
    AMP_SCALE_MAX_DEFAULTS,
    JUMP_REL_DEFAULTS,
    JUMP_UV_DEFAULTS,
    Q,
    epoch_quality,
)
from hypnoscope.simulate import SubjectTraits, sample_hypnogram, simulate_signals
from hypnoscope.stages import N3
from hypnoscope.staging.pipeline import SignalQualityError, stage_recording

FS = 100.0
NAMES = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]
ROLES = ["eeg", "eeg", "eog", "emg"]
FPZ, PZ, EOG, EMG = range(4)
SCALES = (0.3, 3.0, 5.0)


# ------------------------------------------------------------------ staging
def _recording(which: str):
    """(truth codes, mne Raw) of a simulated 3-h recording."""
    from hypnoscope.simulate import simulate_night

    if which == "sleep-edf":
        from hypnoscope.cli.demo import demo_hypnogram_path
        from hypnoscope.io.hypnograms import read_hypnogram

        codes = read_hypnogram(demo_hypnogram_path()).crop_to_sleep(30.0).codes[:360]
        return np.asarray(codes), simulate_night(codes, seed=0, mode="telemetry")
    hyp = sample_hypnogram(seed=200, duration_h=3.0)
    raw = simulate_night(hyp, seed=200, mode="telemetry", montage="shhs", sfreq=125.0)
    return np.asarray(hyp.codes), raw


def _scaled(raw, factor: float):
    r = raw.copy()
    r.apply_function(lambda x: x * factor, picks="all", channel_wise=False)
    return r


@pytest.fixture(scope="module", params=["sleep-edf", "shhs"])
def staged(request):
    """A simulated 3-h recording staged at 1x and at every factor of SCALES."""
    truth, raw = _recording(request.param)
    return truth, {s: stage_recording(_scaled(raw, s)) for s in (1.0, *SCALES)}


def _amplitude_unscored(res) -> np.ndarray:
    used = [res.quality.ch_names.index(c) for c in res.info["quality"]["channels_used"]]
    return res.quality.has(Q.AMPLITUDE)[:, used].any(axis=1) & (res.hypnogram.codes < 0)


def test_scaled_recordings_stage_as_the_original(staged):
    truth, results = staged
    ref = results[1.0]
    codes1 = ref.hypnogram.codes
    acc1 = float((codes1 == truth)[(codes1 >= 0) & (truth >= 0)].mean())
    assert acc1 > 0.6  # the night is staged at all
    tst1 = ref.sleep_statistics()["total_sleep_min"]
    amp1 = _amplitude_unscored(ref)
    assert not (amp1 & (truth == N3)).any()
    for s in SCALES:
        res = results[s]
        codes = res.hypnogram.codes
        both = (codes >= 0) & (codes1 >= 0)
        assert (codes[both] == codes1[both]).mean() >= 0.98, s
        acc = float((codes == truth)[(codes >= 0) & (truth >= 0)].mean())
        assert abs(acc - acc1) <= 0.02, (s, acc, acc1)
        # the same epochs unscored (for amplitude: only the simulator's movement
        # artefacts, as at 1x), no N3 epoch among them
        amp = _amplitude_unscored(res)
        np.testing.assert_array_equal(amp, amp1)
        assert not (amp & (truth == N3)).any()
        np.testing.assert_array_equal(codes < 0, codes1 < 0)
        # the same sleep (within the 2 % of epochs that may differ) and no quality notice
        assert abs(res.sleep_statistics()["total_sleep_min"] - tst1) <= 0.02 * 0.5 * len(codes)
        codes_w = {n.code for n in res.notices.warnings} - {"units-implausible"}
        assert codes_w == {n.code for n in ref.notices.warnings}, s


# ------------------------------------------------------------------ epoch_quality
def _night(seed: int, hours: float = 4.0, **traits):
    """Epochs (µV) and stage codes of a simulated night without bad-signal segments."""
    subject = dataclasses.replace(SubjectTraits.sample(2000 + seed), bad_segment_prob=0.0,
                                  **traits)
    hyp = sample_hypnogram(seed=seed, duration_h=hours)
    sig, hyp, _ = simulate_signals(hyp, seed=seed, subject=subject)
    ep = epoch_signals(np.stack([sig.fpz, sig.pz, sig.eog, sig.emg]), FS)
    return ep, np.asarray(hyp.codes[: len(ep)])


@pytest.fixture(scope="module")
def night():
    return _night(3)


def test_flags_do_not_depend_on_the_gain(night):
    """Every rule compares an epoch with the recording's own scale: scaling the whole
    recording (inside the outer bounds) changes no flag."""
    ep, codes = night
    ref = epoch_quality(ep, FS, ROLES, NAMES)
    assert ref.bad_epoch.mean() < 0.02
    for s in SCALES:
        rep = epoch_quality(ep * np.float32(s), FS, ROLES, NAMES)
        np.testing.assert_array_equal(rep.flags, ref.flags, err_msg=f"x{s}")
        assert not rep.has(Q.AMPLITUDE)[codes == N3].any()


def test_large_slow_waves_are_not_amplitude_outliers():
    """A sleeper with large EEG and very large slow waves (N3 several times the night's
    median SD), at x1 and x5: no N3 epoch is an amplitude outlier."""
    ep, codes = _night(8, eeg_gain=1.6, slow_wave_gain=2.2)
    sd = ep[:, FPZ].std(axis=-1)
    assert np.percentile(sd[codes == N3], 95) > 3 * np.median(sd)  # the premise
    for s in (1.0, 5.0):
        rep = epoch_quality(ep * np.float32(s), FS, ROLES, NAMES)
        assert not rep.has(Q.AMPLITUDE)[codes == N3].any(), s
        assert rep.bad[codes == N3].mean() < 0.01


def _with_artefacts(ep: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``ep`` with known artefacts on Fpz-Cz, each in its own 10 epochs, sized against
    the channel's own median SD (so that they scale with it)."""
    x = ep.copy()
    n, _, n_t = x.shape
    med = float(np.median(x[:, FPZ].std(axis=-1)))
    rng = np.random.default_rng(0)
    where = {k: np.zeros(n, dtype=bool) for k in ("burst", "noise", "flat", "clip", "jump")}
    for k, a in zip(where, (40, 100, 160, 220, 280), strict=True):
        where[k][a:a + 10] = True
    x[where["burst"], FPZ] *= 10.0  # a burst of huge-amplitude epochs
    x[where["noise"], FPZ] += (8 * med * rng.standard_normal((10, n_t))).astype(x.dtype)
    x[where["flat"], FPZ] = (0.002 * med * rng.standard_normal((10, n_t))).astype(x.dtype)
    for e in np.flatnonzero(where["clip"]):  # saturation at the 85th percentile of |x|
        r = np.percentile(np.abs(x[e, FPZ]), 85)
        x[e, FPZ] = np.clip(x[e, FPZ], -r, r)
    pop = max(15 * med, 1.6 * JUMP_UV_DEFAULTS["eeg"])  # above both jump limits
    for e in np.flatnonzero(where["jump"]):  # an electrode pop
        t0 = int(rng.uniform(2, 25) * FS)
        x[e, FPZ, t0:] += np.float32(pop * rng.choice([-1, 1]))
    return x, where


@pytest.mark.parametrize("scale", [0.3, 1.0, 5.0])
def test_artefacts_are_flagged_against_the_rest_of_the_night(night, scale):
    ep, _ = night
    x, where = _with_artefacts(ep * np.float32(scale))
    rep = epoch_quality(x, FS, ROLES, NAMES)
    expect = {"burst": Q.AMPLITUDE, "noise": Q.AMPLITUDE | Q.HF_NOISE, "flat": Q.FLAT,
              "clip": Q.CLIPPED, "jump": Q.DISCONNECTED}
    for k, flag in expect.items():
        assert rep.has(flag)[where[k], FPZ].all(), (k, rep.select(where[k]).epoch_labels())
    defect = np.any(list(where.values()), axis=0)
    assert rep.bad[~defect, FPZ].mean() < 0.02


def test_electrode_pop_floor_in_uv(night):
    """An electrode pop is a physical event: a 400-µV step is a baseline jump in a
    recording of ordinary or low amplitude, where the µV floor is the binding limit."""
    ep, _ = night
    for s in (0.3, 1.0):
        x = ep * np.float32(s)
        med = float(np.median(x[:, FPZ].std(axis=-1)))
        assert JUMP_REL_DEFAULTS["eeg"] * med < JUMP_UV_DEFAULTS["eeg"] < 400  # the premise
        x[50:60, FPZ, 1500:] += np.float32(400.0)
        rep = epoch_quality(x, FS, ROLES, NAMES)
        assert rep.has(Q.DISCONNECTED)[50:60, FPZ].all(), s


def test_whole_channel_of_implausible_amplitude_is_flagged(night):
    """Outer bounds: a channel 100x too large (a unit mistake), one in volts under a µV
    header, a dead one and one of amplifier noise only are flagged on every epoch (bad
    channels)."""
    ep, _ = night
    x = ep.copy()
    x[:, FPZ] *= 100.0
    x[:, PZ] *= 1e-6
    x[:, EOG] = 0.0
    rep = epoch_quality(x, FS, ROLES, NAMES)
    assert np.median(rep.metrics["sd"][:, FPZ]) > AMP_SCALE_MAX_DEFAULTS["eeg"]
    assert rep.has(Q.AMPLITUDE)[:, FPZ].all()
    assert rep.has(Q.FLAT)[:, PZ].all()
    assert rep.has(Q.FLAT | Q.DISCONNECTED)[:, EOG].all()
    assert rep.bad_channels() == NAMES[:3]
    assert not rep.bad[:, EMG].any()
    # a dead electrode that leaves only amplifier noise (0.7 µV) all night: no relative
    # rule can see it (it is its own median), the absolute floor does
    x = ep.copy()
    x[:, PZ] = (0.7 * np.random.default_rng(1).standard_normal(x[:, PZ].shape)).astype(x.dtype)
    rep = epoch_quality(x, FS, ROLES, NAMES)
    assert rep.has(Q.FLAT)[:, PZ].all() and rep.bad_channels() == [NAMES[PZ]]


def test_staging_refuses_a_whole_night_of_implausible_amplitude():
    """Staging a night whose EEG is 100x too large stops with an error naming the
    channel, its amplitude and the likely cause (a unit or gain mistake)."""
    truth, raw = _recording("sleep-edf")
    r = raw.copy()
    r.apply_function(lambda x: x * 100.0, picks="eeg", channel_wise=False)
    with pytest.raises(SignalQualityError, match=r"(?s)EEG channel 'EEG Fpz-Cz' is of "
                       r"implausible amplitude on every epoch \(median 30-s epoch SD \d+ µV, "
                       r"above the 500 µV.*unit or gain mistake"):
        stage_recording(r, model="default")
