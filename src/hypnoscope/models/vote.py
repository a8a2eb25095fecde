"""A soft vote of feature models whose combination is chosen on cross-fitted predictions.

:class:`CrossFitVote` (registry name ``lightgbm-vote``) trains its members -- by default
three ``lightgbm-context`` variants that differ in what they make of a new person: the
robust per-night normalisation of today's default, a per-night quantile normalisation,
and training also on band-power-jittered copies (:func:`hypnoscope.signal.bandpower.
jitter_band_powers`) -- and chooses how to combine them without looking at any night it
will be scored on:

1. :func:`hypnoscope.evaluation.nested.cross_fit` gives every member's out-of-fold probabilities of
   the training nights (``k`` subject-wise inner folds);
2. :func:`hypnoscope.evaluation.nested.choose_combination` chooses soft-voting weights (log-loss),
   a class re-weighting exponent and HMM smoothing (kappa) on them;
3. a member with a non-zero weight predicts with the average of its ``k`` inner models
   (a bag; ``refit=True`` instead refits it on all training nights).

So the model that is used is exactly the one whose out-of-fold predictions made the
choice, and ``benchmarks/real_accuracy/nested.py`` measures precisely this training
procedure with nested subject-wise CV (its procedure "torch-free vote + class/HMM"). It
needs no PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hypnoscope.models.base import StagingModel
from hypnoscope.stages import stage_names

#: Default members: (name, registry model, options).
DEFAULT_MEMBERS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("lgbm", "lightgbm-context", {}),
    ("lgbm-quantile", "lightgbm-context", {"context": {"normalize": "quantile"}}),
    ("lgbm-augment", "lightgbm-context", {"augment": True}),
)


class CrossFitVote(StagingModel):
    """Soft vote of member models, combination chosen on out-of-fold predictions.

    Parameters
    ----------
    members : sequence of (name, registry model, options), optional
        Default :data:`DEFAULT_MEMBERS`; every member must read ``features``.
    n_classes : {3, 5}
    k : int
        Subject-wise inner folds of the cross-fit.
    tune : bool
        Also choose the class re-weighting exponent and HMM smoothing.
    grid_step : float
        Resolution of the weight grid.
    refit : bool
        Refit the weighted members on all training nights instead of bagging the inner
        models (not what the nested benchmark measures).
    seed, n_jobs : int
        Passed to every member (LightGBM threads) and to the inner folds.
    """

    name = "lightgbm-vote"
    input_kind = "features"

    def __init__(self, members: Sequence[tuple[str, str, dict[str, Any]]] | None = None,
                 n_classes: int = 5, k: int = 2, tune: bool = True, grid_step: float = 0.1,
                 refit: bool = False, seed: int = 0, n_jobs: int = 1) -> None:
        specs = [(str(n), str(m), dict(o)) for n, m, o in (members or DEFAULT_MEMBERS)]
        if len(specs) < 1 or len({s[0] for s in specs}) != len(specs):
            raise ValueError(f"members need distinct names, got {[s[0] for s in specs]}")
        if int(k) < 2:
            raise ValueError(f"k (inner folds) must be >= 2, got {k}")
        super().__init__(n_classes=n_classes, members=[list(s) for s in specs], k=int(k),
                         tune=bool(tune), grid_step=float(grid_step), refit=bool(refit),
                         seed=int(seed))
        self.specs = specs
        self.n_jobs = int(n_jobs)
        #: per member: its fitted models (the k inner ones, or one refit), empty if unused
        self.models: list[list[StagingModel]] = []
        self.combination = None

    @property
    def classes(self) -> tuple[str, ...]:
        return stage_names(self.n_classes)

    def _fitted_member(self) -> StagingModel | None:
        return next((ms[0] for ms in self.models if ms), None)

    @property
    def input_kind_(self) -> str | None:
        """The input kind the fitted members read (None before fitting)."""
        return getattr(self._fitted_member(), "input_kind_", None)

    @property
    def epoch_shape_(self) -> list[int] | None:
        """The epoch shape the fitted members read (None before fitting)."""
        return getattr(self._fitted_member(), "epoch_shape_", None)

    def _make(self, i: int) -> StagingModel:
        from hypnoscope.models import make_model

        _, model, opts = self.specs[i]
        return make_model(model, n_classes=self.n_classes, seed=self.config["seed"],
                          n_jobs=self.n_jobs, **opts)

    def fit(self, nights, val_nights=None) -> CrossFitVote:
        """Cross-fit the members on ``nights``, choose the combination on their
        out-of-fold predictions, refit the members that got weight (``val_nights`` are
        not needed: the inner folds are the validation)."""
        from hypnoscope.evaluation.nested import (
            PRIOR_EXPONENTS,
            SMOOTHINGS,
            choose_combination,
            cross_fit,
        )
        from hypnoscope.models.feature_classifiers import transition_matrix
        from hypnoscope.stages import to_3class
        from hypnoscope.utils.runtime import progress

        nights = list(nights)
        if len({n.subject_id for n in nights}) < self.config["k"]:
            raise ValueError(f"{self.name} needs at least k={self.config['k']} training "
                             f"subjects for its inner folds, got "
                             f"{len({n.subject_id for n in nights})}")
        c = self.config
        oof, inner = [], []
        for i in progress(range(len(self.specs)), desc=f"{self.name}: cross-fit",
                          unit="member"):
            cf = cross_fit(lambda i=i: self._make(i), nights, k=c["k"], seed=c["seed"])
            oof.append(cf.oof)
            inner.append(cf.models)
        y = [to_3class(n.y) if self.n_classes == 3 else n.y for n in nights]
        tm = transition_matrix(nights, self.n_classes)
        self.combination = choose_combination(
            oof, y, tm, grid_step=c["grid_step"],
            prior_exponents=PRIOR_EXPONENTS if c["tune"] else (0.0,),
            smoothings=SMOOTHINGS if c["tune"] else (None,))
        self.models = [([] if w == 0 else [self._make(i).fit(nights)] if c["refit"]
                        else inner[i]) for i, w in enumerate(self.combination.weights)]
        self.describe_training(nights, combination=self.combination.to_dict(),
                               member_names=[s[0] for s in self.specs])
        return self

    def predict_proba(self, night, rows=None) -> np.ndarray:
        """``(n_epochs, n_classes)`` combined probabilities; with ``rows`` only those
        epochs (the whole night when HMM smoothing needs it)."""
        if self.combination is None:
            raise RuntimeError(f"model {self.name!r} is not fitted")
        whole = rows is None or self.combination.smoothing is not None
        n = night.n_epochs if whole else len(rows)
        sel = None if whole else rows
        probas = [np.mean([np.asarray(m.predict_proba(night, rows=sel), float) for m in ms],
                          axis=0) if ms else np.zeros((n, self.n_classes))
                  for ms in self.models]
        p = self.combination.apply(probas)
        return p if rows is None or not whole else p[rows]


def make_vote(name: str = "lightgbm-vote", n_classes: int = 5, seed: int = 0,
              **kw: Any) -> CrossFitVote:
    """Registry factory for ``lightgbm-vote`` (deep-only options are ignored)."""
    for deep_only in ("seq_len", "preset", "epochs", "checkpoint_dir", "resume"):
        kw.pop(deep_only, None)
    if name != "lightgbm-vote":
        raise ValueError(f"make_vote builds 'lightgbm-vote', got {name!r}")
    return CrossFitVote(n_classes=n_classes, seed=seed, **kw)


__all__ = ["CrossFitVote", "DEFAULT_MEMBERS", "make_vote"]
