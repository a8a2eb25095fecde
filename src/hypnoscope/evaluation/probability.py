"""Pure operations on per-epoch stage probabilities, shared by models and evaluation.

Soft-voting weights (:func:`simplex_grid`, :func:`score_weights`) and stage-transition
smoothing (:func:`transition_matrix`, :func:`hmm_smooth`, :func:`hmm_smooth_many`). They
work on arrays (and on the nights' stage codes), so the evaluation layer
(:mod:`hypnoscope.evaluation.nested`) and the models above it (:mod:`hypnoscope.models.ensemble`,
:mod:`hypnoscope.models.feature_classifiers`) use the same functions.
"""

from __future__ import annotations

import itertools

import numpy as np

from hypnoscope.stages import to_3class


def simplex_grid(n: int, step: float) -> np.ndarray:
    """Every weight vector of ``n`` non-negative multiples of ``step`` summing to 1."""
    k = int(round(1.0 / step))
    if not np.isclose(k * step, 1.0):
        raise ValueError(f"grid_step must divide 1, got {step}")
    rows = [c for c in itertools.product(range(k + 1), repeat=n - 1) if sum(c) <= k]
    grid = np.array([[*c, k - sum(c)] for c in rows], dtype=float) / k
    return grid


def score_weights(probas: list[np.ndarray], y: np.ndarray, weights: np.ndarray,
                  metric: str) -> float:
    """Log-loss (lower is better) or accuracy (higher) of the weighted average of member
    probabilities ``probas`` (each ``(n, C)``) on scored targets ``y``."""
    p = sum(w * q for w, q in zip(weights, probas, strict=True))
    keep = y >= 0
    if metric == "accuracy":
        return float((p[keep].argmax(1) == y[keep]).mean())
    return float(-np.mean(np.log(np.clip(p[keep, y[keep]], 1e-12, None))))


def transition_matrix(nights, n_classes: int = 5, alpha: float = 1.0) -> np.ndarray:
    """Stage-transition probabilities between consecutive scored epochs of the same
    night (Laplace-smoothed with ``alpha``); labels are mapped to 3 classes if needed."""
    counts = np.full((n_classes, n_classes), float(alpha))
    for n in nights:
        y = to_3class(n.y) if n_classes == 3 else n.y
        a, b = y[:-1], y[1:]
        ok = (a >= 0) & (b >= 0)
        np.add.at(counts, (a[ok], b[ok]), 1.0)
    return counts / counts.sum(axis=1, keepdims=True)


def hmm_smooth(proba: np.ndarray, transmat: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Forward-backward smoothing of per-epoch posteriors with a stage-transition model.

    The classifier posteriors divided by the class ``prior`` they were trained under act
    as emission likelihoods of a hidden Markov chain with ``transmat``; the returned
    posteriors combine each epoch's evidence with that of its neighbours.
    """
    return hmm_smooth_many([proba], transmat, prior)[0]


def hmm_smooth_many(probas: list[np.ndarray], transmat: np.ndarray, prior: np.ndarray,
                    ) -> list[np.ndarray]:
    """:func:`hmm_smooth` of several nights at once (vectorised across nights: one
    Python step per epoch of the longest night, not per epoch of every night)."""
    if not probas:
        return []
    lens = np.array([len(p) for p in probas])
    k = np.asarray(probas[0]).shape[1]
    n_max, m = int(lens.max()), len(probas)
    lik = np.ones((n_max, m, k))  # padding after a night's end: flat likelihood
    for j, p in enumerate(probas):
        lik[: lens[j], j] = np.asarray(p, float) / np.maximum(prior, 1e-12)
    fwd = np.empty((n_max, m, k))
    q = lik[0] / k
    fwd[0] = q / q.sum(axis=1, keepdims=True)
    for t in range(1, n_max):
        q = (fwd[t - 1] @ transmat) * lik[t]
        fwd[t] = q / np.maximum(q.sum(axis=1, keepdims=True), 1e-300)
    post = np.empty((n_max, m, k))
    bwd = np.ones((m, k))
    for t in range(n_max - 1, -1, -1):
        if t < n_max - 1:
            bwd = (lik[t + 1] * bwd) @ transmat.T
            bwd /= np.maximum(bwd.sum(axis=1, keepdims=True), 1e-300)
            bwd[lens <= t + 1] = 1.0  # t is the last epoch (or past the end) of these
        q = fwd[t] * bwd
        post[t] = q / np.maximum(q.sum(axis=1, keepdims=True), 1e-300)
    return [post[: lens[j], j] for j in range(m)]


__all__ = ["hmm_smooth", "hmm_smooth_many", "score_weights", "simplex_grid",
           "transition_matrix"]
