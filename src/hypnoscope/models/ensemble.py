"""Soft-voting ensembles of staging models, with weights chosen on validation subjects.

:class:`SoftVotingEnsemble` averages the per-epoch probabilities of its member models with
non-negative weights that sum to 1 (MSMAE-CNN's Random-Forest soft voting is one use).
Each member receives the same :class:`~hypnoscope.datasets.Night` and does its own
preprocessing of it (a feature model computes its features, a deep model its views and
normalisation), so members with different inputs vote on the same recording.

The weights are chosen on *validation* nights only -- nights of subjects that none of
the members was trained on and that are not the nights the ensemble is evaluated on -- by
minimising the log-loss (or maximising accuracy) of the weighted average over a grid of
the simplex (``grid_step``), or fixed by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from hypnoscope.datasets import Night
from hypnoscope.evaluation.probability import score_weights, simplex_grid
from hypnoscope.models.base import StagingModel
from hypnoscope.stages import stage_names, to_3class

logger = logging.getLogger(__name__)

METRICS = ("log_loss", "accuracy")


def _targets(night: Night, n_classes: int) -> np.ndarray:
    return np.asarray(to_3class(night.y) if n_classes == 3 else night.y)


class SoftVotingEnsemble(StagingModel):
    """Weighted average of member models' probabilities.

    Parameters
    ----------
    members : sequence of StagingModel
        Models with the same class set; fitted already (``refit=False``) or fitted by
        :meth:`fit` on the training nights.
    n_classes : {3, 5}
    weights : sequence of float, optional
        Fixed weights (normalised to sum 1); None chooses them on validation nights.
    metric : {"log_loss", "accuracy"}
        Criterion of the weight search on the validation nights.
    grid_step : float
        Resolution of the simplex grid searched (0.05: 21 candidates for 2 members, 231
        for 3).
    refit : bool
        Fit the members in :meth:`fit` (with the same validation nights for their own
        early stopping); False keeps them as they are.
    val_fraction, seed : float, int
        Validation subjects carved from the training nights when :meth:`fit` gets no
        ``val_nights`` (:func:`hypnoscope.evaluation.splits.validation_split`).
    """

    name = "ensemble"

    def __init__(self, members: Sequence[StagingModel], n_classes: int = 5,
                 weights: Sequence[float] | None = None, metric: str = "log_loss",
                 grid_step: float = 0.05, refit: bool = True, val_fraction: float = 0.15,
                 seed: int = 0) -> None:
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        bad = [getattr(m, "name", type(m).__name__) for m in members
               if getattr(m, "n_classes", n_classes) != n_classes]
        if bad:
            raise ValueError(f"members {bad} are not {n_classes}-class models")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if weights is not None:
            w = np.asarray(weights, float)
            if w.shape != (len(members),) or (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"weights must be {len(members)} non-negative numbers with "
                                 f"a positive sum, got {list(weights)}")
        super().__init__(n_classes=n_classes, metric=metric, grid_step=float(grid_step),
                         refit=refit, val_fraction=val_fraction, seed=seed,
                         members=[getattr(m, "name", type(m).__name__) for m in members])
        self.members = list(members)
        self.weights = None if weights is None else np.asarray(weights, float) / np.sum(
            weights)
        self.validation: dict[str, Any] = {}

    @property
    def classes(self) -> tuple[str, ...]:
        return stage_names(self.n_classes)

    @property
    def input_kind(self) -> str:
        """What the members read (``"signals"`` or ``"features"``), e.g. for
        :func:`hypnoscope.staging.pipeline.stage`; fitted members report what they were fitted
        on."""
        kinds = {getattr(m, "input_kind_", None) or getattr(m, "input_kind", "features")
                 for m in self.members}
        if len(kinds) > 1:
            raise ValueError(f"ensemble members read different inputs {sorted(kinds)}")
        return kinds.pop()

    def fit(self, nights: list[Night], val_nights: list[Night] | None = None,
            ) -> SoftVotingEnsemble:
        """Fit the members on ``nights`` (``refit=True``) and choose the weights on
        ``val_nights`` (validation subjects; carved from ``nights`` when None)."""
        from hypnoscope.evaluation.splits import validation_split

        if val_nights is None:
            nights, val_nights = validation_split(list(nights), self.config["val_fraction"],
                                                  self.config["seed"])
        if not val_nights and self.weights is None:
            raise ValueError("choosing ensemble weights needs validation nights (of subjects "
                             "not in the training nights); pass val_nights or weights")
        overlap = {n.subject_id for n in nights} & {n.subject_id for n in val_nights}
        if overlap:
            raise ValueError(f"validation subjects also in training: {sorted(overlap)[:5]}")
        if self.config["refit"]:
            for m in self.members:
                m.fit(list(nights), list(val_nights) or None)
        if self.weights is None:
            self.weights = self.choose_weights(val_nights)
        self.describe_training(nights, validation_subjects=sorted(
            {n.subject_id for n in val_nights}), classes=list(self.classes),
            weights=[float(w) for w in self.weights], validation=self.validation,
            member_metadata=[getattr(m, "metadata", {}) for m in self.members])
        return self

    def choose_weights(self, val_nights: list[Night]) -> np.ndarray:
        """The grid weights with the best ``metric`` on ``val_nights``; ties go to the
        most even weighting. Records every member's and the ensemble's validation score
        in :attr:`validation`."""
        if not val_nights:
            raise ValueError("choose_weights needs at least one validation night")
        probas = [np.concatenate([np.asarray(m.predict_proba(n)) for n in val_nights])
                  for m in self.members]
        y = np.concatenate([_targets(n, self.n_classes) for n in val_nights])
        if not (y >= 0).any():
            raise ValueError("the validation nights have no scored epoch")
        metric = self.config["metric"]
        sign = -1.0 if metric == "accuracy" else 1.0
        grid = simplex_grid(len(self.members), self.config["grid_step"])
        scores = np.array([sign * score_weights(probas, y, w, metric) for w in grid])
        spread = grid.max(axis=1) - grid.min(axis=1)
        best = np.lexsort((spread, np.round(scores, 12)))[0]
        weights = grid[best]
        self.validation = {
            "metric": metric, "n_nights": len(val_nights),
            "n_scored_epochs": int((y >= 0).sum()),
            "members": {str(i): score_weights(probas, y, np.eye(len(probas))[i], metric)
                        for i in range(len(probas))},
            "ensemble": score_weights(probas, y, weights, metric),
            "accuracy_members": [score_weights(probas, y, np.eye(len(probas))[i],
                                               "accuracy") for i in range(len(probas))],
            "accuracy_ensemble": score_weights(probas, y, weights, "accuracy")}
        logger.info("ensemble weights %s (%s on %d validation nights: %.4f)",
                    np.round(weights, 3).tolist(), metric, len(val_nights),
                    self.validation["ensemble"])
        return weights

    def predict_proba(self, night: Night) -> np.ndarray:
        """Weighted average of the members' ``(n_epochs, n_classes)`` probabilities."""
        if self.weights is None:
            raise RuntimeError("the ensemble is not fitted (no weights)")
        out = np.zeros((night.n_epochs, self.n_classes))
        for w, m in zip(self.weights, self.members, strict=True):
            if w > 0:
                out += w * np.asarray(m.predict_proba(night), float)
        return out


__all__ = ["SoftVotingEnsemble", "simplex_grid", "score_weights"]
