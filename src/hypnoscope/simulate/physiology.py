"""Signal generators of the PSG simulator (all amplitudes in µV).

The night is built from a per-sample stage sequence whose switches are jittered by up to
±5 s around the epoch boundaries and blended over ~8 s (so every epoch keeps the
majority of its own stage, AASM's rule for mixed epochs). On top of it:

- **background**: Gaussian noise shaped in the frequency domain, one segment per stretch
  of each stage, with a stage-specific aperiodic 1/f spectrum and band gains calibrated
  against the real Sleep-EDF band powers (:data:`BAND_LOG_GAINS`). Fpz-Cz and Pz-Oz
  share a common source (correlated bipolar derivations); N2/N3 amplitude decays across
  the night (process S);
- **events** added in bulk: posterior alpha (W, alpha drop-out in N1, arousals), spindles,
  K-complexes, vertex sharp waves, sawtooth waves, blinks, saccades, slow and rapid eye
  movements, EMG tone with REM atonia and phasic twitches, movement artefacts, electrode
  drift, amplifier noise and occasional bad segments;
- **latent physiological state** (:mod:`.latent`): the signals follow a per-epoch
  mixture of stages that differs from the scored label on the epochs that human scorers
  disagree on (N1 vs W/N2/R, N2 vs N3, epochs next to stage changes; strength
  ``difficulty``). Background spectra, every event rate (spindles, K-complexes,
  vertex waves, sawtooth waves, slow and rapid eye movements, alpha, twitches) and the EMG
  tone follow that mixture, not the label; in addition some epochs (N1 most often,
  :data:`AMBIGUOUS_PROB`) carry a minority share of a neighbouring stage, and every
  epoch has its own random band gains (:data:`EPOCH_BAND_SD`, non-stationary EEG);
- **between-subject variability** (:class:`~.traits.SubjectTraits`): amplitudes,
  frequencies, event densities, EMG tone per stage and per-subject spectral offsets of
  every stage's background;
- **volume conduction**: eye signals leak into Fpz-Cz and frontal EEG into the EOG.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft
from scipy import signal as sps
from scipy.ndimage import uniform_filter1d

from hypnoscope.simulate.latent import latent_mixture
from hypnoscope.simulate.traits import SubjectTraits
from hypnoscope.stages import N1, N2, N3, R, W
from hypnoscope.utils.arrays import true_runs

#: Control frequencies (Hz) of the band gains: delta (2 points), theta, alpha, sigma, beta (2).
GAIN_FREQS = np.array([0.6, 2.0, 6.0, 10.0, 14.0, 22.0, 40.0])
#: Which of the five analysis bands (delta, theta, alpha, sigma, beta) drives each point.
GAIN_BAND_OF_POINT = np.array([0, 0, 1, 2, 3, 4, 4])

#: Aperiodic exponent of the background per stage (W, N1, N2, N3, R).
STAGE_SLOPE = np.array([1.1, 1.5, 2.0, 2.6, 1.6])

#: Background std (µV, 0.5-30 Hz) per stage (rows) for Fpz-Cz, Pz-Oz and the EOG's own
#: background (columns), before subject gains and events. N2 is the anchor; the other
#: stages are calibrated so that the total power relative to N2 matches the real set.
BACKGROUND_STD = np.array([
    [19.9, 11.1, 14.0],  # W
    [11.3, 9.0, 5.8],  # N1
    [17.0, 12.0, 6.0],  # N2
    [31.9, 18.2, 9.0],  # N3
    [12.3, 8.7, 6.1],  # R
])

#: Natural-log gains of the five analysis bands per stage, channel (Fpz-Cz, Pz-Oz, EOG).
#: Calibrated with ``benchmarks/simulator_realism/calibrate.py`` so that the median
#: relative band powers per stage match the real Sleep-EDF band-power set.
BAND_LOG_GAINS = np.array([
    [[0.788, -0.153, -0.2, -0.38, -0.055],  # W: Fpz-Cz, Pz-Oz, EOG
     [-0.038, -0.162, -0.111, 0.156, 0.156],
     [1.734, -0.365, -0.043, -0.409, -0.917]],
    [[-0.266, -0.142, 0.384, -0.015, 0.039],  # N1
     [-0.305, 0.446, 0.309, -0.046, -0.404],
     [0.519, -0.104, 0.297, 0.049, -0.761]],
    [[-0.609, 0.36, 0.288, 0.537, -0.577],  # N2
     [-0.794, 0.726, 0.404, 0.362, -0.698],
     [-0.275, 0.281, 0.725, 0.096, -0.827]],
    [[-0.495, 0.328, 0.308, 0.578, -0.719],  # N3
     [-0.847, 0.743, 0.396, 0.539, -0.832],
     [-0.604, 0.611, 0.366, 0.266, -0.639]],
    [[-0.258, 0.38, 0.105, -0.228, 0.0],  # R
     [-0.394, 0.565, 0.349, -0.093, -0.426],
     [1.134, -0.647, -0.133, 0.133, -0.486]],
])

#: Stage-dependent event rates (per minute of the stage): W, N1, N2, N3, R.
SPINDLE_RATE_REL = np.array([0.0, 0.05, 1.0, 0.3, 0.01])  # x subject spindle density
KCOMPLEX_RATE_REL = np.array([0.0, 0.1, 1.0, 0.3, 0.0])  # x subject K-complex rate
VERTEX_RATE = np.array([0.0, 2.0, 0.3, 0.0, 0.05])
SAWTOOTH_RATE = np.array([0.0, 0.0, 0.0, 0.0, 0.8])
#: Slow rolling eye movements per minute (N1: the population mean of
#: ``SubjectTraits.sem_rate``). At 4-15 s each, N1's 5/min fill most of its time: the
#: sleep-onset hallmark scorers look for, with the EOG otherwise quiet (no blinks).
SEM_RATE = np.array([0.5, 5.0, 0.15, 0.0, 0.1])
#: Blinks per minute of N1 (the eyes are closed; blinking stops at sleep onset).
N1_BLINK_RATE = 0.1
EMG_STAGE_LEVEL = np.array([1.0, 0.6, 0.42, 0.38, 0.13])  # population means (SubjectTraits.emg_*)
ALPHA_STAGE_LEVEL = np.array([1.0, 0.12, 0.05, 0.04, 0.12])  # W value = eyes closed
EYES_OPEN_ALPHA = 0.15  #: alpha level in wake with eyes open (eyes closed = 1)
DROWSY_EYES_CLOSED = 0.8  #: eyes-closed share of wake within 3 min of sleep
EYES_PERSISTENCE = 0.85  #: probability that the eye state is kept from one 10-s block to the next

#: Within-night EMG tone variability in sleep (sd of the log), plus its increase per unit
#: of ``difficulty``.
EMG_SLEEP_VAR_SD = 0.12
EMG_SLEEP_VAR_SD_DIFFICULTY = 0.18
#: Epoch-to-epoch spectral non-stationarity of the background (per unit of ``difficulty``):
#: sd of the natural-log gain of each band (delta, theta, alpha, sigma) per epoch, the
#: correlation of an epoch's gains with the previous epoch's, and the share of the gain
#: common to Fpz-Cz and Pz-Oz. Real EEG's relative band powers vary by a factor of ~2
#: between epochs of one stage, which makes stages overlap. Delta varies less: its
#: amount is what separates N2 from N3 (the 20 % slow-wave rule), and epochs near that
#: threshold are made by the latent-state model instead.
EPOCH_BAND_SD = np.array([0.1, 0.2, 0.2, 0.15])
EPOCH_BAND_EDGES = ((0.0, 4.0), (4.0, 8.0), (8.0, 12.0), (12.0, 16.0))
EPOCH_BAND_AR = 0.5
EPOCH_BAND_SHARED = 0.7

#: Probability that an epoch of each stage is ambiguous (its background carries a 20-40 %
#: share of a neighbouring stage) and the two candidate neighbours per stage.
AMBIGUOUS_PROB = np.array([0.04, 0.3, 0.06, 0.1, 0.05])
AMBIGUOUS_NEIGHBOURS = ((N1, N1), (W, N2), (N1, N3), (N2, N2), (N1, W))


@dataclass
class NightSignals:
    """Simulated signals (µV) at ``sfreq`` and bookkeeping of what was placed."""

    fpz: np.ndarray
    pz: np.ndarray
    eog: np.ndarray
    emg: np.ndarray
    sfreq: float
    stage_samples: np.ndarray  #: per-sample scored stage after boundary jitter
    #: per-epoch mixture weights (n_epochs, 5) of the latent physiological state
    latent_mixture: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))
    events: dict[str, np.ndarray] = field(default_factory=dict)  #: onsets (s) per event type
    #: with ``keep_sources``: the components (µV, before electrode drift and amplifier
    #: noise) from which other montages are composed (:mod:`.montages`)
    sources: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def latent_stage(self) -> np.ndarray:
        """Dominant stage (0-4) of the latent physiological state of every epoch."""
        return np.asarray(self.latent_mixture).argmax(axis=1).astype(np.int8)


# --------------------------------------------------------------------------- helpers
def _band_gain_curve(log_gains: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Smooth gain over frequency from the five band log-gains (interpolated in log f)."""
    pts = log_gains[GAIN_BAND_OF_POINT]
    lf = np.log(np.clip(f, 0.05, None))
    return np.exp(np.interp(lf, np.log(GAIN_FREQS), pts))


def background_psd(stage: int, channel: int, f: np.ndarray, std_uv: float = 1.0,
                   log_gains: np.ndarray | None = None) -> np.ndarray:
    """One-sided PSD (µV²/Hz) of the background of ``stage`` on ``channel`` (0 Fpz-Cz,
    1 Pz-Oz, 2 EOG), scaled so that its 0.5-30 Hz power is ``std_uv**2``."""
    lg = BAND_LOG_GAINS[stage, channel] if log_gains is None else log_gains
    fk = 0.4
    base = 1.0 / (f**2 + fk**2) ** (STAGE_SLOPE[stage] / 2)
    psd = base * _band_gain_curve(lg, f)
    ref = np.linspace(0.5, 30, 600)
    ref_psd = 1.0 / (ref**2 + fk**2) ** (STAGE_SLOPE[stage] / 2) * _band_gain_curve(lg, ref)
    power = np.trapezoid(ref_psd, ref)
    return psd * (std_uv**2 / power)


def _smooth_noise(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """Unit-std noise smoothed by a moving average of ``width`` points."""
    x = uniform_filter1d(rng.standard_normal(n + 2 * width), size=max(width, 1), mode="wrap")
    x = x[width:width + n]
    return x / (x.std() + 1e-12)


def _poisson_onsets(rng: np.random.Generator, rate_per_sec: np.ndarray) -> np.ndarray:
    """Event onsets (s) of an inhomogeneous Poisson process given per-second rates."""
    counts = rng.poisson(np.clip(rate_per_sec, 0, None))
    sec = np.repeat(np.arange(len(rate_per_sec)), counts)
    return np.sort(sec + rng.random(len(sec)))


def _add(out: np.ndarray, start: int, wave: np.ndarray, gain: float = 1.0) -> None:
    """Add ``gain * wave`` into ``out`` at sample ``start`` (clipped to the bounds)."""
    n = len(out)
    a, b = max(start, 0), min(start + len(wave), n)
    if b > a:
        out[a:b] += gain * wave[a - start:b - start]


def _shaped_noise(rng: np.random.Generator, n: int, fs: float, amp_fn) -> np.ndarray:
    """Gaussian noise of length ``n`` whose amplitude spectrum is ``amp_fn(freqs)``."""
    nfft = sfft.next_fast_len(n, real=True)
    spec = sfft.rfft(rng.standard_normal(nfft, dtype=np.float32))
    spec *= amp_fn(sfft.rfftfreq(nfft, 1.0 / fs)).astype(np.float32)
    return sfft.irfft(spec, nfft)[:n]


def _modulate_bands(bg: np.ndarray, sps: int, n_ep: int, difficulty: float,
                    rng: np.random.Generator) -> None:
    """Give every epoch its own random band gains (in place, EEG rows 0 and 1 of ``bg``):
    the delta, theta, alpha and sigma components of the background are scaled by slowly
    varying log-normal gains (AR(1) across epochs, interpolated per second, partly shared
    by the two derivations; the EOG sees them through the frontal EEG it picks up)."""
    n = bg.shape[1]
    n_sec = n // sps
    nb = len(EPOCH_BAND_EDGES)
    sd = EPOCH_BAND_SD[:, None] * difficulty
    z = rng.standard_normal((3, nb, n_ep))  # common, Fpz-Cz own, Pz-Oz own
    for k in range(1, n_ep):  # AR(1) across epochs, unit variance
        z[:, :, k] = EPOCH_BAND_AR * z[:, :, k - 1] + np.sqrt(1 - EPOCH_BAND_AR**2) * z[:, :, k]
    c = np.sqrt(EPOCH_BAND_SHARED)
    logg = sd[None] * np.stack([c * z[0] + np.sqrt(1 - c**2) * z[1],
                                c * z[0] + np.sqrt(1 - c**2) * z[2]])  # (2, nb, n_ep)
    centres = (np.arange(n_ep) + 0.5) * 30.0
    t_sec = np.arange(n_sec) + 0.5
    nfft = sfft.next_fast_len(n, real=True)
    freqs = sfft.rfftfreq(nfft, 1.0 / sps)
    spec = sfft.rfft(bg[:2], nfft, axis=1)
    for b, (lo, hi) in enumerate(EPOCH_BAND_EDGES):
        # smooth band masks (raised-cosine edges of +-0.5 Hz; adjacent masks sum to 1)
        rise = np.clip((freqs - lo + 0.5), 0, 1) if lo > 0 else np.ones_like(freqs)
        fall = np.clip((hi + 0.5 - freqs), 0, 1)
        mask = (np.sin(np.pi / 2 * rise) ** 2 * np.sin(np.pi / 2 * fall) ** 2
                ).astype(np.float32)
        comp = sfft.irfft(spec * mask, nfft, axis=1)[:, :n_sec * sps]
        for ch in (0, 1):
            g = (np.exp(np.interp(t_sec, centres, logg[ch, b])) - 1).astype(np.float32)
            bg[ch, :n_sec * sps].reshape(n_sec, sps)[:] += (
                comp[ch].reshape(n_sec, sps) * g[:, None])


# --------------------------------------------------------------------------- generator
def generate_night(stages_sec: np.ndarray, fs: float, traits: SubjectTraits,
                   rng: np.random.Generator, unscored_sec: np.ndarray | None = None,
                   eyes_closed: bool = True, difficulty: float = 0.0,
                   latent_rng: np.random.Generator | None = None,
                   keep_sources: bool = False) -> NightSignals:
    """Generate the four PSG signals for a per-second stage sequence.

    Parameters
    ----------
    stages_sec : ndarray of int (n_seconds,)
        Stage (0-4) of each second, already with jittered boundaries.
    fs : float
        Sampling rate (Hz) of the output signals.
    traits : SubjectTraits
        The sleeper.
    rng : numpy.random.Generator
        Source of randomness (the only one used).
    unscored_sec : ndarray of bool or None
        Seconds that the hypnogram leaves unscored (more movement artefacts there).
    eyes_closed : bool
        Whether quiet wake may have eyes closed (posterior alpha).
    difficulty : float
        Strength of the latent-state model (:func:`.latent.latent_mixture`) and of the
        epoch-to-epoch spectral (:data:`EPOCH_BAND_SD`) and EMG variability; 0 = the
        signals follow the scored stage.
    latent_rng : numpy.random.Generator or None
        Randomness of the latent state (a separate stream, so that
        ``difficulty=0`` leaves every other draw unchanged); default: ``rng``.
    keep_sources : bool
        Also return the components (backgrounds, alpha, spindles, K-complexes, vertex
        and sawtooth waves, movement, horizontal/vertical eye signals, EMG) in
        ``sources``, for other montages (:mod:`.montages`). Draws are unchanged.

    Returns
    -------
    NightSignals
    """
    ctx = _Context(fs, len(stages_sec), rng, traits, keep_sources)
    stage_samp = np.repeat(stages_sec.astype(np.int8), ctx.sps)
    ep_mix, mix_sec, lat_sec, w_sec = _latent_stages(ctx, stages_sec, difficulty, latent_rng)
    bg = _background(ctx, stages_sec, w_sec, len(ep_mix), difficulty, latent_rng)
    fpz, pz, eog_bg = bg[0], bg[1], bg[2]
    if keep_sources:
        ctx.src = {k: np.zeros(ctx.n, dtype=np.float32) for k in
                   ("spindle", "kcomplex", "vertex", "sawtooth", "movement")}
        ctx.src.update(bg_front=fpz.copy(), bg_post=pz.copy(), eog_bg=eog_bg.copy())
    wake = _wake_states(ctx, stages_sec, mix_sec, lat_sec, eyes_closed)
    _add_alpha(ctx, fpz, pz, mix_sec, lat_sec, wake)
    _add_spindles_and_kcomplexes(ctx, fpz, pz, mix_sec)
    _add_vertex_and_sawtooth(ctx, fpz, pz, mix_sec)
    eh, ev = _eye_signals(ctx, mix_sec, wake)
    emg_env, carrier = _emg_envelope(ctx, mix_sec, wake, difficulty)
    _add_movements(ctx, fpz, pz, eh, emg_env, wake, unscored_sec)
    emg = emg_env * carrier
    if keep_sources:
        ctx.src.update(eh=eh.copy(), ev=ev.copy(), emg=emg.astype(np.float32))
    # ---- volume conduction between eyes and frontal EEG
    eog = eh + 0.3 * ev + traits.eeg_to_eog * fpz + eog_bg
    fpz = fpz + traits.blink_leak * ev + traits.eog_leak * eh
    fpz, pz, eog, emg = _amplifier(ctx, fpz, pz, eog, emg)
    return NightSignals(fpz=fpz, pz=pz, eog=eog, emg=emg, sfreq=fs, stage_samples=stage_samp,
                        latent_mixture=ep_mix, sources=ctx.src,
                        events={k: np.asarray(v, dtype=float) for k, v in ctx.events.items()})


@dataclass
class _Context:
    """What the parts of :func:`generate_night` share: the time grid, the randomness,
    the sleeper, the events placed and (``keep_sources``) the components kept."""

    fs: float
    n_sec: int
    rng: np.random.Generator
    traits: SubjectTraits
    keep_sources: bool
    events: dict[str, list[float]] = field(default_factory=dict)
    src: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sps = int(round(self.fs))
        self.n = self.n_sec * self.sps
        self.t_sec = np.arange(self.n_sec, dtype=float)
        self.t_samp = np.arange(self.n, dtype=np.float32)
        self.centres = np.arange(self.n_sec, dtype=np.float32) * self.sps + (self.sps - 1) / 2

    def interp(self, per_sec: np.ndarray, start: int = 0, stop: int | None = None,
               ) -> np.ndarray:
        """Per-second values -> samples ``start:stop``: linear between second centres (the
        same as a 1-s box smoothing of the step function, and much faster)."""
        return np.interp(self.t_samp[start:stop], self.centres,
                         np.asarray(per_sec, dtype=np.float32)).astype(np.float32)


@dataclass
class _Wake:
    """Per-second wake sub-states and arousals of a night."""

    is_w: np.ndarray
    eyes_closed_sec: np.ndarray
    eyes_open_sec: np.ndarray
    arousal_sec: np.ndarray


def _latent_stages(ctx: _Context, stages_sec: np.ndarray, difficulty: float,
                   latent_rng: np.random.Generator | None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The latent stage mixture per epoch (``ep_mix``), per second (``mix_sec``, driving
    the event rates), its dominant stage per second and its blend over ~8 s (``w_sec``,
    weighting the background)."""
    rng, n_sec = ctx.rng, ctx.n_sec
    n_ep = int(np.ceil(n_sec / 30))
    ep_stage = stages_sec[np.minimum(np.arange(n_ep) * 30 + 15, n_sec - 1)]
    ep_mix = np.zeros((n_ep, 5), dtype=np.float32)
    ep_mix[np.arange(n_ep), ep_stage] = 1.0
    # ambiguous epochs: the background carries a minority share of a neighbouring stage
    amb = np.flatnonzero(rng.random(n_ep) < AMBIGUOUS_PROB[ep_stage])
    amb_share = rng.uniform(0.2, 0.4, len(amb)).astype(np.float32)
    amb_pick = rng.integers(0, 2, len(amb))
    for e, share, k in zip(amb, amb_share, amb_pick, strict=True):
        s0 = int(ep_stage[e])
        ep_mix[e, s0] = 1.0 - share
        ep_mix[e, AMBIGUOUS_NEIGHBOURS[s0][k]] += share
    if difficulty > 0:  # scorer disagreement: the latent state's own mixture
        lat = latent_mixture(ep_stage, rng if latent_rng is None else latent_rng,
                             difficulty)
        disputed = lat.max(axis=1) < 1
        ep_mix[disputed] = lat[disputed]
    sec_ep = np.arange(n_sec) // 30
    onehot = np.zeros((5, n_sec), dtype=np.float32)
    onehot[stages_sec, np.arange(n_sec)] = 1.0
    own = stages_sec == ep_stage[sec_ep]  # seconds of the epoch's own (majority) stage
    onehot[:, own] = ep_mix[sec_ep[own]].T
    w_sec = uniform_filter1d(onehot, size=8, axis=1, mode="nearest")
    return ep_mix, onehot, onehot.argmax(axis=0), w_sec


def _background(ctx: _Context, stages_sec: np.ndarray, w_sec: np.ndarray, n_ep: int,
                difficulty: float, latent_rng: np.random.Generator | None) -> np.ndarray:
    """Background EEG (two derivations) and EOG ``(3, n)``: frequency-shaped noise per
    stage stretch, with slow gain fluctuations and the homeostatic decay of N2/N3."""
    rng, n_sec, fs, sps_, traits = ctx.rng, ctx.n_sec, ctx.fs, ctx.sps, ctx.traits
    # ---- slow gain fluctuations: per-epoch jitter (ambiguity) + drifting state
    ep_jit = rng.normal(0, 0.13, n_ep)[np.arange(n_sec) // 30]
    gain_sec = np.exp(uniform_filter1d(ep_jit, 5) + 0.1 * _smooth_noise(rng, n_sec, 120))
    gain_sec *= traits.eeg_gain
    sleep_idx = np.flatnonzero(stages_sec > 0)
    t0 = sleep_idx[0] if sleep_idx.size else 0
    decay = np.exp(-np.clip(ctx.t_sec - t0, 0, None) / (2.5 * 3600))
    homeo = {N2: 0.85 + 0.3 * decay, N3: (0.7 + 0.6 * decay) * traits.slow_wave_gain}
    bg = np.zeros((3, ctx.n), dtype=np.float32)
    rho = 0.45  # shared source between the two bipolar EEG derivations
    f_ref = np.linspace(0, fs / 2, 4097)
    band_off, std_off = traits.spectral_offsets()
    amp_ref = np.stack([[np.sqrt(background_psd(
        s, c, f_ref, BACKGROUND_STD[s, c] * np.exp(std_off[s, c]),
        BAND_LOG_GAINS[s, c] + band_off[s, c]) * fs / 2) for c in range(3)] for s in range(5)])
    for s in range(5):
        env_sec = np.asarray(np.sqrt(w_sec[s]) * gain_sec * homeo.get(s, 1.0), np.float32)
        for a, b in true_runs(w_sec[s] > 1e-3):
            m = (b - a) * sps_
            nfft = sfft.next_fast_len(m, real=True)
            z = rng.standard_normal((4, nfft), dtype=np.float32)
            white = np.stack([np.sqrt(rho) * z[0] + np.sqrt(1 - rho) * z[1],
                              np.sqrt(rho) * z[0] + np.sqrt(1 - rho) * z[2], z[3]])
            freqs = sfft.rfftfreq(nfft, 1.0 / fs)
            amp = np.stack([np.interp(freqs, f_ref, amp_ref[s, c]) for c in range(3)])
            seg = sfft.irfft(sfft.rfft(white, axis=1) * amp.astype(np.float32), nfft,
                             axis=1)[:, :m]
            env = ctx.interp(env_sec, a * sps_, b * sps_)  # only over this run (speed)
            bg[:, a * sps_:b * sps_] += seg * env
    if difficulty > 0:  # epoch-to-epoch spectral non-stationarity
        _modulate_bands(bg, sps_, n_ep, difficulty,
                        rng if latent_rng is None else latent_rng)
    return bg


def _wake_states(ctx: _Context, stages_sec: np.ndarray, mix_sec: np.ndarray,
                 lat_sec: np.ndarray, eyes_closed: bool) -> _Wake:
    """Eyes open/closed in wake and the arousals (onsets into ``ctx.events``)."""
    rng, n_sec, traits = ctx.rng, ctx.n_sec, ctx.traits
    is_w = lat_sec == W
    # eyes open/closed: a persistent two-state chain over 10-s blocks whose closed share
    # is the subject's, and high in the drowsy minutes next to sleep
    block = np.arange(n_sec) // 10
    n_blk = block[-1] + 1
    # (proximity to the scored sleep period: a single disputed W epoch does not make the
    # surrounding wake drowsy)
    near_sleep = uniform_filter1d((stages_sec > 0).astype(float), 361, mode="nearest") > 0
    p_closed = np.full(n_blk, traits.eyes_closed_frac if eyes_closed else 0.0)
    if eyes_closed:
        near_blk = np.bincount(block, weights=near_sleep, minlength=n_blk) > 0
        p_closed[near_blk] = np.maximum(p_closed[near_blk], DROWSY_EYES_CLOSED)
    u = rng.random(n_blk)
    closed_block = np.zeros(n_blk, dtype=bool)
    state = u[0] < p_closed[0]
    for i in range(n_blk):  # switch with prob (1 - persistence) to the target state
        if u[i] < 1 - EYES_PERSISTENCE:
            state = rng.random() < p_closed[i]
        closed_block[i] = state
    eyes_closed_sec = is_w & closed_block[block]
    ar_on = _poisson_onsets(rng, (mix_sec[N2] + mix_sec[N3] + mix_sec[R])
                            * traits.arousal_rate / 60)
    arousal_sec = np.zeros(n_sec, dtype=bool)
    for o in ar_on:
        arousal_sec[int(o):int(o + rng.uniform(3, 14))] = True
    ctx.events["arousal"] = ar_on
    return _Wake(is_w, eyes_closed_sec, is_w & ~eyes_closed_sec, arousal_sec)


def _add_alpha(ctx: _Context, fpz: np.ndarray, pz: np.ndarray, mix_sec: np.ndarray,
               lat_sec: np.ndarray, wake: _Wake) -> None:
    """Posterior alpha (narrow-band around the subject's peak), added in place."""
    rng, n_sec, traits = ctx.rng, ctx.n_sec, ctx.traits
    af = traits.alpha_freq
    alpha = _shaped_noise(rng, ctx.n, ctx.fs, lambda f: np.exp(-0.5 * ((f - af) / 0.6) ** 2))
    alpha /= alpha.std() + 1e-12
    wake_alpha = np.where(wake.eyes_open_sec, EYES_OPEN_ALPHA, ALPHA_STAGE_LEVEL[W])
    alpha_sec = ALPHA_STAGE_LEVEL[1:] @ mix_sec[1:] + wake_alpha * mix_sec[W]
    sec_ep = np.arange(n_sec) // 30
    n1_ep = np.flatnonzero(np.bincount(sec_ep, weights=lat_sec == N1) > 15)
    for e in n1_ep:  # alpha drop-out: alpha over less than half of the N1 epoch
        dur = int(rng.uniform(0, 14))
        st = e * 30 + int(rng.uniform(0, 30 - dur))
        alpha_sec[st:st + dur] = np.maximum(alpha_sec[st:st + dur], 0.35)
    alpha_sec[wake.arousal_sec] = 0.9
    alpha_sec = uniform_filter1d(alpha_sec, 3) * np.exp(0.25 * _smooth_noise(rng, n_sec, 5))
    alpha_env = ctx.interp(alpha_sec * traits.alpha_amp * traits.eeg_gain)
    pz += alpha_env * alpha
    fpz += 0.2 * alpha_env * alpha
    if ctx.keep_sources:
        ctx.src["alpha"] = (alpha_env * alpha).astype(np.float32)


def _add_spindles_and_kcomplexes(ctx: _Context, fpz: np.ndarray, pz: np.ndarray,
                                 mix_sec: np.ndarray) -> None:
    """Spindles (waxing-waning, 0.5-2 s, faster on Pz-Oz than on Fpz-Cz) and
    K-complexes (frontal-maximal biphasic waves, half followed by a spindle)."""
    rng, n_sec, fs, traits, src = ctx.rng, ctx.n_sec, ctx.fs, ctx.traits, ctx.src
    sp_on = _poisson_onsets(rng, SPINDLE_RATE_REL @ mix_sec * traits.spindle_density / 60)
    kc_on = _poisson_onsets(rng, KCOMPLEX_RATE_REL @ mix_sec * traits.kcomplex_rate / 60)
    # half of the K-complexes are followed by a spindle
    follow = kc_on[rng.random(len(kc_on)) < 0.5] + 0.6
    sp_all = np.sort(np.concatenate([sp_on, follow[follow < n_sec - 3]]))
    ctx.events["spindle"] = sp_all
    for o in sp_all:
        dur = float(np.clip(rng.lognormal(np.log(0.9), 0.35), 0.5, 2.0))
        tt = np.arange(int(dur * fs)) / fs
        env = np.sin(np.pi * tt / dur) ** 2 * traits.spindle_amp * rng.lognormal(0, 0.3)
        f = traits.spindle_freq + rng.normal(0, 0.4)
        ph = rng.uniform(0, 2 * np.pi)
        chirp = 2 * np.pi * (f * tt - 0.3 * tt**2 / 2)
        i0 = int(o * fs)
        _add(fpz, i0, env * np.sin(chirp - 0.5 * 2 * np.pi * tt + ph), traits.eeg_gain)
        _add(pz, i0, env * np.sin(chirp + 0.4 * 2 * np.pi * tt + ph), 0.75 * traits.eeg_gain)
        if ctx.keep_sources:  # central (vertex-maximal) spindle
            _add(src["spindle"], i0, env * np.sin(chirp + ph), traits.eeg_gain)
    ctx.events["kcomplex"] = kc_on
    tk = np.arange(int(1.6 * fs)) / fs
    for o in kc_on:
        amp = rng.uniform(70, 170) * traits.eeg_gain
        sc = rng.uniform(0.85, 1.2)
        wave = (-np.exp(-(((tk - 0.35 * sc) / (0.12 * sc)) ** 2))
                + 0.55 * np.exp(-(((tk - 0.85 * sc) / (0.25 * sc)) ** 2)))
        _add(fpz, int(o * fs), wave, amp)
        _add(pz, int(o * fs), wave, 0.4 * amp)
        if ctx.keep_sources:
            _add(src["kcomplex"], int(o * fs), wave, amp)


def _add_vertex_and_sawtooth(ctx: _Context, fpz: np.ndarray, pz: np.ndarray,
                             mix_sec: np.ndarray) -> None:
    """Vertex sharp waves (N1) and sawtooth waves (REM: 2-6 Hz trains of triangular
    waves), added in place."""
    rng, fs, traits, src = ctx.rng, ctx.fs, ctx.traits, ctx.src
    vx_rate = VERTEX_RATE.copy()
    vx_rate[N1] = traits.vertex_rate
    vx_on = _poisson_onsets(rng, vx_rate @ mix_sec / 60)
    ctx.events["vertex"] = vx_on
    tv = np.arange(int(0.5 * fs)) / fs
    vwave = -np.exp(-(((tv - 0.12) / 0.045) ** 2)) + 0.35 * np.exp(-(((tv - 0.26) / 0.08) ** 2))
    for o in vx_on:
        amp = rng.uniform(40, 100) * traits.eeg_gain
        _add(fpz, int(o * fs), vwave, amp)
        _add(pz, int(o * fs), vwave, 0.35 * amp)
        if ctx.keep_sources:
            _add(src["vertex"], int(o * fs), vwave, amp)
    st_on = _poisson_onsets(rng, SAWTOOTH_RATE @ mix_sec / 60)
    ctx.events["sawtooth"] = st_on
    for o in st_on:
        dur = rng.uniform(1.5, 5.0)
        tt = np.arange(int(dur * fs)) / fs
        f = rng.uniform(2.0, 5.5)
        wave = sps.sawtooth(2 * np.pi * f * tt, width=0.2) * np.sin(np.pi * tt / dur) ** 0.5
        amp = rng.uniform(15, 35) * traits.eeg_gain
        _add(fpz, int(o * fs), wave, amp)
        _add(pz, int(o * fs), wave, 0.5 * amp)
        if ctx.keep_sources:
            _add(src["sawtooth"], int(o * fs), wave, amp)


def _eye_signals(ctx: _Context, mix_sec: np.ndarray, wake: _Wake,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal (saccades, REMs, slow eye movements) and vertical (blinks) eye
    signals ``(eh, ev)`` through an AC-coupled amplifier."""
    rng, n, n_sec, fs, traits = ctx.rng, ctx.n, ctx.n_sec, ctx.fs, ctx.traits
    ev = np.zeros(n, dtype=np.float32)
    eh_steps = np.zeros(n, dtype=np.float32)
    eh = np.zeros(n, dtype=np.float32)
    blink_rate = np.where(wake.eyes_open_sec, 12.0, np.where(wake.eyes_closed_sec, 1.5, 0.0))
    blink_rate = blink_rate + N1_BLINK_RATE * mix_sec[N1]
    bl_on = _poisson_onsets(rng, blink_rate / 60)
    ctx.events["blink"] = bl_on
    tb = np.arange(int(0.5 * fs)) / fs
    for o in bl_on:
        tau = rng.uniform(0.04, 0.07)
        wave = (tb / tau) ** 2 * np.exp(2 - tb / tau) / 1.0
        _add(ev, int(o * fs), wave, rng.uniform(80, 220) * traits.eog_gain)
    # saccades in wake and rapid eye movements in REM: steps of gaze position
    sac_rate = np.where(wake.eyes_open_sec, 25.0, np.where(wake.eyes_closed_sec, 2.0, 0.0))
    sac_on = _poisson_onsets(rng, sac_rate / 60)
    burst_on = _poisson_onsets(rng, mix_sec[R] * traits.rem_density / 60)
    rem_on: list[float] = []
    for o in burst_on:
        k = 1 + rng.poisson(3)
        rem_on.extend(o + np.cumsum(rng.uniform(0.25, 1.1, k)) - 0.25)
    rem_arr = np.array([x for x in rem_on if x < n_sec - 1])
    ctx.events["saccade"] = sac_on
    ctx.events["rem"] = rem_arr
    step_on = np.concatenate([sac_on, rem_arr])
    step_amp_sd = np.concatenate([np.full(len(sac_on), 50.0), np.full(len(rem_arr), 110.0)])
    order = np.argsort(step_on)
    pos = 0.0
    for o, sd in zip(step_on[order], step_amp_sd[order], strict=True):
        new = rng.normal(0, sd) * traits.eog_gain
        i = int(o * fs)
        if i < n:
            eh_steps[i] += new - pos
            pos = new
    # a return to primary gaze ~1-3 s after each REM burst / at sleep
    gaze = np.cumsum(eh_steps)
    gaze *= ctx.interp(mix_sec[W] + mix_sec[R])  # eyes centred outside W/REM
    gaze = uniform_filter1d(gaze, size=max(int(0.06 * fs), 1))
    eh += gaze
    # slow rolling eye movements (0.1-0.5 Hz sinusoidal excursions)
    sem_rel = SEM_RATE.copy()
    sem_rel[N1] = traits.sem_rate
    sem_rate = (sem_rel @ mix_sec) * np.where(wake.eyes_closed_sec | ~wake.is_w, 1.0, 0.2)
    sem_on = _poisson_onsets(rng, sem_rate / 60)
    ctx.events["sem"] = sem_on
    for o in sem_on:
        dur = rng.uniform(4, 15)
        tt = np.arange(int(dur * fs)) / fs
        wave = np.sin(2 * np.pi * rng.uniform(0.15, 0.45) * tt) * np.sin(np.pi * tt / dur)
        _add(eh, int(o * fs), wave, rng.uniform(35, 90) * traits.eog_gain)
    # AC-coupled EOG amplifier (first-order high-pass at 0.1 Hz)
    b, a = sps.butter(1, 0.1, btype="high", fs=fs)
    return sps.lfilter(b, a, eh).astype(np.float32), sps.lfilter(b, a, ev).astype(np.float32)


def _emg_envelope(ctx: _Context, mix_sec: np.ndarray, wake: _Wake, difficulty: float,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """EMG: a stage-dependent envelope (with REM twitches) and its broadband (>10 Hz)
    noise carrier, ``(envelope, carrier)``."""
    rng, n_sec, fs, traits = ctx.rng, ctx.n_sec, ctx.fs, ctx.traits
    carrier = _shaped_noise(rng, ctx.n, fs, lambda f: (f / 12.0) ** 3 / (1 + (f / 12.0) ** 3))
    carrier /= carrier.std() + 1e-12
    emg_levels = np.array([1.0, traits.emg_n1, traits.emg_n2, traits.emg_n3, traits.emg_rem])
    emg_sec = np.exp(np.log(emg_levels) @ mix_sec) * traits.emg_level
    w_var = np.exp(0.45 * _smooth_noise(rng, n_sec, 10))
    sleep_sd = EMG_SLEEP_VAR_SD + EMG_SLEEP_VAR_SD_DIFFICULTY * min(difficulty, 2.0)
    emg_sec = emg_sec * np.where(wake.is_w, w_var,
                                 np.exp(sleep_sd * _smooth_noise(rng, n_sec, 60)))
    emg_sec[wake.eyes_open_sec] *= 1.3
    emg_sec[wake.arousal_sec] *= 2.0
    emg_sec = uniform_filter1d(emg_sec, 3)
    emg_env = ctx.interp(emg_sec)
    tw_on = _poisson_onsets(rng, 8.0 * mix_sec[R] / 60)
    ctx.events["twitch"] = tw_on
    for o in tw_on:
        dur = rng.uniform(0.05, 0.25)
        tt = np.arange(int(dur * fs) + 1) / fs
        _add(emg_env, int(o * fs), np.sin(np.pi * tt / dur) ** 2,
             rng.uniform(3, 8) * traits.emg_rem * traits.emg_level)
    return emg_env, carrier


def _add_movements(ctx: _Context, fpz: np.ndarray, pz: np.ndarray, eh: np.ndarray,
                   emg_env: np.ndarray, wake: _Wake, unscored_sec: np.ndarray | None,
                   ) -> None:
    """Movement artefacts (wake, unscored stretches, around awakenings), in place."""
    rng, fs, traits = ctx.rng, ctx.fs, ctx.traits
    mv_rate = np.where(wake.is_w, traits.artifact_rate, 0.01)
    if unscored_sec is not None:
        mv_rate = np.where(unscored_sec, 2.0, mv_rate)
    mv_on = _poisson_onsets(rng, mv_rate / 60)
    ctx.events["movement"] = mv_on
    for o in mv_on:
        dur = rng.uniform(1.5, 8)
        m = int(dur * fs)
        win = np.sin(np.pi * np.arange(m) / m) ** 2
        slow = _shaped_noise(rng, m, fs, lambda f: 1.0 / (0.3 + f) ** 2)
        slow = slow / (slow.std() + 1e-12) * win
        amp = rng.uniform(40, 200)
        i0 = int(o * fs)
        _add(fpz, i0, slow, amp)
        _add(pz, i0, slow, 0.6 * amp * rng.choice([-1, 1]))
        _add(eh, i0, slow, 0.8 * amp)
        _add(emg_env, i0, win, rng.uniform(3, 8) * traits.emg_level)
        if ctx.keep_sources:
            _add(ctx.src["movement"], i0, slow, amp)


def _amplifier(ctx: _Context, fpz: np.ndarray, pz: np.ndarray, eog: np.ndarray,
               emg: np.ndarray) -> list[np.ndarray]:
    """Electrode drift and amplifier noise, then occasional bad segments (flat or noisy),
    one channel at a time: ``[fpz, pz, eog, emg]`` as recorded."""
    rng, n, n_sec, fs, traits = ctx.rng, ctx.n, ctx.n_sec, ctx.fs, ctx.traits
    out = []
    for x, noise in ((fpz, 1.0), (pz, 1.0), (eog, 1.5), (emg, 0.3)):
        drift = ctx.interp(_smooth_noise(rng, n_sec, 30) * traits.drift_uv) if noise >= 1 else 0
        out.append((x + drift + rng.standard_normal(n, dtype=np.float32)
                    * traits.noise_uv * noise).astype(np.float32))
    if rng.random() < traits.bad_segment_prob and n_sec > 600:
        for _ in range(rng.integers(1, 4)):
            ch = out[:3][rng.integers(0, 3)]
            st = int(rng.uniform(0, max(n_sec - 61, 1)) * fs)
            dur = int(rng.uniform(5, 60) * fs)
            if rng.random() < 0.5:
                ch[st:st + dur] = 0.05 * rng.standard_normal(len(ch[st:st + dur]))
            else:
                ch[st:st + dur] += 60 * rng.standard_normal(len(ch[st:st + dur]))
            ctx.events.setdefault("bad_segment", []).append(st / fs)
    return out
