"""Nested subject-wise cross-validation: cross-fitted members and a combination chosen on them.

Model selection that looks at the subjects a model is scored on overstates how it will
do on new people. Here every choice is made on *inner* out-of-fold predictions of the
training subjects only:

- :func:`cross_fit` trains a model ``k`` times on subject-wise inner folds of the
  training nights; each training night is predicted by the model that did not see its
  subject (out-of-fold, OOF), and other nights (the outer test nights, or a user's
  recordings) by the average of the ``k`` models (a bag);
- :func:`choose_combination` chooses, on OOF predictions alone, how to combine several
  members into one stager (a :class:`Combination`): soft-voting weights on a simplex
  grid (by log-loss), then a class re-weighting exponent and stage-transition (HMM)
  smoothing (by Cohen's kappa);
- :meth:`Combination.apply` turns member probabilities of any night into the combined
  probabilities.

The outer loop (e.g. ``benchmarks/real_accuracy/nested.py``) gives :func:`cross_fit` an
outer fold's training nights and test nights, and scores the combination chosen on the
training nights' OOF predictions on the test nights: the test subjects take no part in
any choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from hypnoscope.evaluation.metrics import kappa
from hypnoscope.evaluation.probability import hmm_smooth_many, score_weights, simplex_grid

#: Class re-weighting exponents tried by :func:`choose_combination` (0: none; 1: divide
#: by the predicted class frequencies, every class weighs the same).
PRIOR_EXPONENTS = (0.0, 0.25, 0.5, 0.75)
#: Sequence smoothings tried (None, or forward-backward with the stage transitions).
SMOOTHINGS = (None, "hmm")


@dataclass
class Combination:
    """How member probabilities become one stager's probabilities.

    Attributes
    ----------
    weights : ndarray (n_members,)
        Soft-voting weights (sum 1).
    prior_exponent : float
        ``p_c <- p_c / prior_c ** a`` then renormalised, with ``prior`` the mean combined
        probability of each class on the OOF nights: ``a > 0`` lifts the stages the
        members under-call (a post-hoc class weighting).
    smoothing : {None, "hmm"}
        Forward-backward smoothing with ``transmat`` (emissions: probabilities divided by
        ``prior``).
    prior : ndarray (n_classes,)
    transmat : ndarray (n_classes, n_classes)
        Stage-transition probabilities of the training nights.
    scores : dict
        What the choice saw (OOF metrics of each member and of the combination).
    """

    weights: np.ndarray
    prior_exponent: float = 0.0
    smoothing: str | None = None
    prior: np.ndarray | None = None
    transmat: np.ndarray | None = None
    scores: dict[str, Any] = field(default_factory=dict)

    def apply(self, member_probas: Sequence[np.ndarray]) -> np.ndarray:
        """Combined ``(n_epochs, n_classes)`` probabilities of ONE night from its member
        probabilities (one ``(n_epochs, n_classes)`` array per member, in order)."""
        return self.adjust(self.average(member_probas))

    def average(self, member_probas: Sequence[np.ndarray]) -> np.ndarray:
        """The soft vote alone: the weighted average of the member probabilities."""
        if len(member_probas) != len(self.weights):
            raise ValueError(f"{len(member_probas)} member probabilities for "
                             f"{len(self.weights)} weights")
        return sum(w * np.asarray(q, float) for w, q in zip(self.weights, member_probas,
                                                             strict=True))

    def adjust(self, p: np.ndarray) -> np.ndarray:
        """Class re-weighting and smoothing of one night's averaged probabilities."""
        return self.adjust_many([p])[0]

    def adjust_many(self, probas: Sequence[np.ndarray]) -> list[np.ndarray]:
        """:meth:`adjust` of several nights (the HMM runs over all of them at once)."""
        out = [np.asarray(p, float) for p in probas]
        if not out:
            return out
        k = out[0].shape[1]
        prior = self.prior if self.prior is not None else np.full(k, 1.0 / k)
        if self.prior_exponent:
            scale = np.maximum(prior, 1e-12) ** -self.prior_exponent
            out = [p * scale / (p * scale).sum(axis=1, keepdims=True) for p in out]
            prior = prior * scale / (prior * scale).sum()
        if self.smoothing == "hmm":
            if self.transmat is None:
                raise ValueError("HMM smoothing needs a transition matrix")
            out = hmm_smooth_many(out, self.transmat, prior)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {"weights": [round(float(w), 6) for w in self.weights],
                "prior_exponent": float(self.prior_exponent), "smoothing": self.smoothing,
                "prior": None if self.prior is None else np.round(self.prior, 6).tolist(),
                "scores": self.scores}


def choose_combination(oof: Sequence[Sequence[np.ndarray]], y: Sequence[np.ndarray],
                       transmat: np.ndarray | None = None, grid_step: float = 0.1,
                       prior_exponents: Sequence[float] = PRIOR_EXPONENTS,
                       smoothings: Sequence[str | None] = SMOOTHINGS,
                       members: Sequence[int] | None = None) -> Combination:
    """Choose a :class:`Combination` on out-of-fold predictions only.

    Parameters
    ----------
    oof : list (members) of list (nights) of ndarray (n_epochs, n_classes)
        Each member's OOF probabilities of the same nights, in the same order.
    y : list of ndarray
        True codes of those nights (negative: unscored).
    transmat : ndarray, optional
        Stage transitions of the training nights (needed for ``"hmm"``).
    grid_step : float
        Resolution of the soft-voting weight grid (chosen by log-loss; ties go to the
        most even weights).
    prior_exponents, smoothings : sequences
        Tried jointly after the weights, chosen by kappa (ties: the smaller exponent,
        no smoothing).
    members : sequence of int, optional
        Only these members may get weight (the others get 0).

    Returns
    -------
    Combination
    """
    n_members = len(oof)
    if n_members == 0 or any(len(m) != len(y) for m in oof):
        raise ValueError("oof needs one list of per-night probabilities per member, each "
                         f"with one entry per night ({len(y)})")
    allowed = list(range(n_members)) if members is None else sorted(set(members))
    if not allowed or min(allowed) < 0 or max(allowed) >= n_members:
        raise ValueError(f"members must index the {n_members} members, got {members}")
    if "hmm" in smoothings and transmat is None:
        raise ValueError("HMM smoothing needs the training nights' transition matrix")
    yy = np.concatenate([np.asarray(v) for v in y])
    if not (yy >= 0).any():
        raise ValueError("the out-of-fold nights have no scored epoch")
    stacked = [np.concatenate([np.asarray(p, float) for p in m]) for m in oof]
    n_classes = stacked[0].shape[1]
    sub = [stacked[i] for i in allowed]
    grid = simplex_grid(len(sub), grid_step) if len(sub) > 1 else np.ones((1, 1))
    losses = np.array([score_weights(sub, yy, w, "log_loss") for w in grid])
    spread = grid.max(axis=1) - grid.min(axis=1)
    best = grid[np.lexsort((spread, np.round(losses, 10)))[0]]
    weights = np.zeros(n_members)
    weights[allowed] = best
    p_avg = Combination(weights).average(stacked)
    prior = p_avg.mean(axis=0)
    bounds = np.cumsum([0, *[len(v) for v in y]])
    per_night = [p_avg[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    results = []
    for a in prior_exponents:
        for s in smoothings:
            combo = Combination(weights, float(a), s, prior, transmat)
            pred = np.concatenate([q.argmax(1) for q in combo.adjust_many(per_night)])
            results.append((kappa(yy, pred, n_classes), -float(a), s is None, a, s))
    results.sort(key=lambda r: (round(r[0], 10), r[1], r[2]), reverse=True)
    _, _, _, a_best, s_best = results[0]
    keep = yy >= 0
    scores = {
        "members_log_loss": [score_weights(stacked, yy, np.eye(n_members)[i], "log_loss")
                             for i in range(n_members)],
        "members_accuracy": [float((stacked[i][keep].argmax(1) == yy[keep]).mean())
                             for i in range(n_members)],
        "weights_log_loss": float(losses.min()),
        "kappa_by_setting": {f"{a}|{s}": round(k, 6) for k, _, _, a, s in results},
        "n_epochs": int(keep.sum()), "n_nights": len(y)}
    return Combination(weights, float(a_best), s_best, prior, transmat, scores)


class CrossFit(NamedTuple):
    """What :func:`cross_fit` returns."""

    #: one ``(n_epochs, n_classes)`` array per training night (same order), out-of-fold
    oof: list[np.ndarray]
    #: one per ``predict_nights`` night: the average of the ``k`` inner models
    bagged: list[np.ndarray]
    #: the ``k`` fitted inner models
    models: list[Any]


def cross_fit(make_model: Callable[[], Any], nights: Sequence[Any],
              predict_nights: Sequence[Any] = (), k: int = 2, seed: int = 0) -> CrossFit:
    """Out-of-fold probabilities of ``nights`` and bagged ones of ``predict_nights``.

    ``nights`` are split into ``k`` subject-wise folds
    (:func:`hypnoscope.evaluation.splits.subject_kfold`); for each, a fresh ``make_model()`` is fit
    on the other folds' nights and predicts that fold's nights and every night of
    ``predict_nights`` (whose subjects must not be among ``nights``'); the
    ``predict_nights`` probabilities are averaged over the ``k`` models.

    Returns
    -------
    CrossFit
        ``oof``, ``bagged`` and the ``k`` inner ``models``.
    """
    from hypnoscope.evaluation.splits import subject_kfold

    nights, predict_nights = list(nights), list(predict_nights)
    shared = {n.subject_id for n in nights} & {n.subject_id for n in predict_nights}
    if shared:
        raise ValueError(f"subjects {sorted(shared)[:5]} are both in the nights the models "
                         "are trained on and in the nights they predict")
    oof: list[np.ndarray | None] = [None] * len(nights)
    bag: list[np.ndarray | None] = [None] * len(predict_nights)
    models = []
    for fold in subject_kfold(nights, k=k, seed=seed):
        train = [nights[i] for i in fold.train]
        model = make_model()
        model.fit(train)
        models.append(model)
        for i in fold.test:
            oof[i] = np.asarray(model.predict_proba(nights[i]), float)
        for j, n in enumerate(predict_nights):
            p = np.asarray(model.predict_proba(n), float) / k
            bag[j] = p if bag[j] is None else bag[j] + p
    return CrossFit(oof, bag, models)  # type: ignore[arg-type]


__all__ = ["Combination", "CrossFit", "PRIOR_EXPONENTS", "SMOOTHINGS", "choose_combination",
           "cross_fit"]
