"""Latent physiological state of simulated epochs: a model of scorer disagreement.

A hypnogram is one scorer's reading of the night. Human scorers agree on only about 83 %
of the epochs (AASM inter-scorer reliability programme: Rosenberg & Van Hout 2013, J Clin
Sleep Med 9:81-87; W 84 %, N1 63 %, N2 85 %, N3 67 %, R 90 %), and the disagreements are
concentrated on N1 (against W, N2 and R), on N2 vs N3 near the 20 % slow-wave threshold
and on the epochs next to a stage change. The simulator therefore lets the signals follow
a *latent* physiological state that is not always the scored label:

- every epoch of scored stage ``L`` is *disputed* with probability
  ``difficulty * DISPUTE_PROB[L]``, multiplied by :data:`TRANSITION_FACTOR` when
  the epoch is next to a stage change and by :data:`STABLE_FACTOR` inside long runs;
- a disputed epoch gets an alternative stage ``A``: the differing neighbouring stage when
  there is a plausible one (:data:`ALTERNATIVES`, probability :data:`NEIGHBOUR_PICK`),
  otherwise one drawn from :data:`ALTERNATIVES` ``[L]``;
- its physiology is a mixture: a share ``d ~ U(SHARE_RANGE)`` of ``A`` and ``1 - d`` of
  ``L`` (background spectra, event rates, EMG tone, alpha, eye movements all follow the
  mixture). When ``d > 0.5`` the latent majority is ``A``: the scorer's label disagrees with
  what the signals show (as a second scorer would); when ``d`` is near 0.5 the epoch is
  genuinely ambiguous.

``difficulty`` (the simulator's realistic-difficulty knob, default 1.0) scales the dispute
probabilities; 0 switches the model off (the signals follow the scored stage, the
simulator's behaviour before this model). With 1.0 the latent majority differs from the
label of real Sleep-EDF hypnograms on about half of the published inter-scorer
disagreement per stage, as expected of one scorer against the consensus (the ranges are
checked by ``tests/test_simulate.py``; the measured fractions are in docs/results.md,
"Simulator realism"). The same knob scales
the epoch-to-epoch spectral variability of the background
(:data:`.physiology.EPOCH_BAND_SD`) and of the EMG tone.
"""

from __future__ import annotations

import numpy as np

from hypnoscope.stages import N1, N2, N3, R, W

#: Base probability (at ``difficulty=1``) that an epoch of each scored stage
#: (W, N1, N2, N3, R) is disputed.
#: N1's 0.27 gives N1 about half of its published disagreement (37 %), like the other
#: stages (docs/results.md, "Simulator realism").
DISPUTE_PROB = np.array([0.12, 0.27, 0.12, 0.30, 0.09])
#: Multiplier of the dispute probability for an epoch next to a stage change.
TRANSITION_FACTOR = 1.8
#: Multiplier for an epoch with the same stage on both sides for at least 3 epochs.
STABLE_FACTOR = 0.6
#: Maximum dispute probability of an epoch.
MAX_DISPUTE = 0.8
#: Plausible alternative stages (and their weights) for each scored stage.
ALTERNATIVES = (
    {N1: 0.85, R: 0.15},  # W: drowsy wake read as N1 (or REM at an awakening)
    {W: 0.45, N2: 0.40, R: 0.15},  # N1
    {N1: 0.30, N3: 0.60, R: 0.10},  # N2: slow waves near the 20 % threshold
    {N2: 1.0},  # N3
    {N1: 0.60, W: 0.25, N2: 0.15},  # R: transitions into/out of REM
)
#: Probability of taking a differing neighbouring stage as the alternative when the
#: epoch is next to a plausible one.
NEIGHBOUR_PICK = 0.8
#: Range of the alternative stage's share of a disputed epoch.
SHARE_RANGE = (0.25, 0.85)


def latent_mixture(labels: np.ndarray, rng: np.random.Generator,
                   difficulty: float = 1.0) -> np.ndarray:
    """Per-epoch mixture weights of the latent physiological state.

    Parameters
    ----------
    labels : ndarray of int (n_epochs,)
        Scored stages 0-4 (unscored epochs must already be mapped to a stage).
    rng : numpy.random.Generator
        Source of randomness.
    difficulty : float
        Strength of the disagreement model (0 = off, 1 = default; the dispute
        probabilities scale linearly and are capped at :data:`MAX_DISPUTE`).

    Returns
    -------
    ndarray (n_epochs, 5) float32
        Rows sum to 1; the one-hot label for undisputed epochs.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if difficulty < 0 or not np.isfinite(difficulty):
        raise ValueError(f"difficulty must be a finite number >= 0, got "
                         f"{difficulty}")
    if labels.size and (labels.min() < 0 or labels.max() > 4):
        raise ValueError("latent_mixture needs stage codes 0-4")
    n = len(labels)
    mix = np.zeros((n, 5), dtype=np.float32)
    mix[np.arange(n), labels] = 1.0
    if n == 0 or difficulty == 0:
        return mix
    prev = np.concatenate([[labels[0]], labels[:-1]])
    nxt = np.concatenate([labels[1:], [labels[-1]]])
    near = (prev != labels) | (nxt != labels)
    pad = np.concatenate([[-1] * 3, labels, [-1] * 3])
    stable = np.all([pad[3 + k:3 + k + n] == labels for k in (-3, -2, -1, 1, 2, 3)], axis=0)
    p = DISPUTE_PROB[labels] * difficulty
    p = np.where(near, p * TRANSITION_FACTOR, np.where(stable, p * STABLE_FACTOR, p))
    p = np.minimum(p, MAX_DISPUTE)
    u = rng.random(n)
    pick_u = rng.random(n)
    share = rng.uniform(*SHARE_RANGE, n)
    alt_u = rng.random(n)
    for e in np.flatnonzero(u < p):
        s = int(labels[e])
        alts = ALTERNATIVES[s]
        neigh = [int(x) for x in labels[max(e - 2, 0):e + 3] if int(x) != s and int(x) in alts]
        if neigh and pick_u[e] < NEIGHBOUR_PICK:
            a = neigh[int(alt_u[e] * len(neigh))]
        else:
            keys = np.array(list(alts))
            cw = np.cumsum(list(alts.values()))
            a = int(keys[np.searchsorted(cw / cw[-1], alt_u[e], side="right")
                         .clip(0, len(keys) - 1)])
        mix[e, s] = 1.0 - share[e]
        mix[e, a] = share[e]
    return mix
