"""The scikit-learn estimators of the feature classifiers.

:func:`build_estimator` builds the epoch-level classifier of an algorithm;
:class:`SubsampledSVC` (the tractable RBF SVM) and :class:`EpochStager` (an epoch-level
classifier with temporal context) subclass scikit-learn's ``BaseEstimator``. They live
here so that :mod:`~hypnoscope.models.feature_classifiers`, whose fitted
:class:`~hypnoscope.models.feature_classifiers.FeatureStagingModel` the shipped model
is, imports no scikit-learn (it offers the three names on first use). The options both
feature classifiers share are in :mod:`hypnoscope.models.feature_options`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from hypnoscope.models.feature_options import (
    ALGORITHMS,
    estimator_proba,
    flatten_epochs,
    night_slices,
    resolve_class_weight,
    resolve_context,
)


def subsample_weights(class_weight: Any, y_idx: np.ndarray, sub: np.ndarray,
                       ) -> dict[int, float]:
    """Weights for training on ``y_idx[sub]`` that stand for the whole of ``y_idx``:
    requested class weight x (class size / subsample size), normalised to mean 1."""
    k = int(y_idx.max()) + 1
    cw = resolve_class_weight(class_weight, y_idx) or {}
    n = np.bincount(y_idx, minlength=k).astype(float)
    m = np.bincount(y_idx[sub], minlength=k).astype(float)
    w = np.array([cw.get(c, 1.0) for c in range(k)]) * n / np.maximum(m, 1.0)
    w = w / w[m > 0].mean()
    return {c: float(w[c]) for c in range(k)}


class SubsampledSVC(ClassifierMixin, BaseEstimator):
    """RBF support-vector classifier made tractable on large epoch sets.

    Features are standardised; the SVM is fitted on a class-stratified random subsample
    of at most ``max_per_class`` samples per class; probabilities come from a
    multinomial logistic regression fitted on the SVM decision values of up to
    ``max_per_class`` further samples per class that the SVM did not see (or of the
    SVM's own training samples when no others are left). The class weights given refer
    to the full training set: they are multiplied by ``n_c / m_c`` (class size over
    subsample size) so that the capped subsample stands for the full data.

    Parameters
    ----------
    C, gamma : float, str
        RBF SVM parameters (:class:`sklearn.svm.SVC`).
    max_per_class : int
        Subsample cap per class for the SVM (and for the calibration set).
    class_weight : {"balanced", "sqrt", None} or dict
        Class weighting (see :func:`resolve_class_weight`).
    random_state : int
        Seed of the subsampling.
    """

    def __init__(self, C: float = 1.0, gamma: str | float = "scale",
                 max_per_class: int = 2000, class_weight: Any = "balanced",
                 random_state: int = 0) -> None:
        self.C = C
        self.gamma = gamma
        self.max_per_class = max_per_class
        self.class_weight = class_weight
        self.random_state = random_state

    def _split(self, y_idx: np.ndarray, rng: np.random.Generator,
               ) -> tuple[np.ndarray, np.ndarray]:
        fit_idx, cal_idx = [], []
        for k in range(len(self.classes_)):
            idx = rng.permutation(np.flatnonzero(y_idx == k))
            fit_idx.append(idx[: self.max_per_class])
            cal_idx.append(idx[self.max_per_class: 2 * self.max_per_class])
        return np.sort(np.concatenate(fit_idx)), np.sort(np.concatenate(cal_idx))

    def fit(self, X, y) -> SubsampledSVC:
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"SubsampledSVC needs at least 2 classes in y, got "
                             f"{len(self.classes_)} class")
        if int(self.max_per_class) < 1:
            raise ValueError(f"max_per_class must be >= 1, got {self.max_per_class}")
        if isinstance(self.class_weight, dict):  # keys are class labels: map to indices
            lookup = {c: i for i, c in enumerate(self.classes_.tolist())}
            cw = {lookup[c]: v for c, v in self.class_weight.items() if c in lookup}
        else:
            cw = self.class_weight
        rng = np.random.default_rng(self.random_state)
        fit_idx, cal_idx = self._split(y_idx, rng)
        if len(np.unique(y_idx[cal_idx])) < len(self.classes_):
            cal_idx = fit_idx  # too little data left over: calibrate on the fit set
        self.scaler_ = StandardScaler().fit(X)
        Xs = self.scaler_.transform(X)
        weights = [subsample_weights(cw, y_idx, sub) for sub in (fit_idx, cal_idx)]
        self.svc_ = SVC(kernel="rbf", C=self.C, gamma=self.gamma,
                        class_weight=weights[0], decision_function_shape="ovr",
                        random_state=self.random_state)
        self.svc_.fit(Xs[fit_idx], y_idx[fit_idx])
        self.calibrator_ = LogisticRegression(C=1.0, class_weight=weights[1],
                                              max_iter=1000)
        self.calibrator_.fit(self._decision(Xs[cal_idx]), y_idx[cal_idx])
        return self

    def _decision(self, Xs: np.ndarray) -> np.ndarray:
        d = self.svc_.decision_function(Xs)
        return d.reshape(len(Xs), -1)

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated class probabilities, columns in :attr:`classes_` order."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.calibrator_.predict_proba(self._decision(self.scaler_.transform(X)))

    def predict(self, X) -> np.ndarray:
        """Most probable class (consistent with :meth:`predict_proba`)."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


def build_estimator(algorithm: str, seed: int = 0, class_weight: Any = "balanced",
                    n_jobs: int = 1, **params: Any):
    """Epoch-level scikit-learn classifier for ``algorithm`` in ``svm``, ``rf``, ``lightgbm``.

    ``params`` override the defaults (e.g. ``n_estimators``, ``C``, ``max_per_class``).
    The defaults are sized for ~100k training epochs on a laptop. ``class_weight``
    ``"sqrt"`` needs the labels: for ``rf`` and ``lightgbm`` pass the dict of
    :func:`resolve_class_weight` instead (``svm`` resolves it itself).
    """
    if algorithm in ("rf", "lightgbm") and isinstance(class_weight, str) \
            and class_weight != "balanced":
        raise ValueError(f"class_weight {class_weight!r} for {algorithm}: pass 'balanced', "
                         "None or a dict (see resolve_class_weight)")
    if algorithm == "svm":
        kw = {"C": 1.0, "gamma": "scale", "max_per_class": 2000}
        kw.update(params)
        return SubsampledSVC(class_weight=class_weight, random_state=seed, **kw)
    if algorithm == "rf":
        from sklearn.ensemble import RandomForestClassifier

        kw = {"n_estimators": 100, "max_features": "sqrt", "min_samples_leaf": 3,
              "max_samples": 0.25}
        kw.update(params)
        cw = "balanced_subsample" if class_weight == "balanced" else class_weight
        return RandomForestClassifier(class_weight=cw, random_state=seed, n_jobs=n_jobs,
                                      **kw)
    if algorithm == "lightgbm":
        import lightgbm as lgb

        kw = {"n_estimators": 250, "learning_rate": 0.06, "num_leaves": 31,
              "min_child_samples": 50, "colsample_bytree": 0.4, "subsample": 0.8,
              "subsample_freq": 1, "reg_lambda": 1.0, "max_bin": 63}
        kw.update(params)
        return lgb.LGBMClassifier(class_weight=class_weight, random_state=seed,
                                  n_jobs=n_jobs, verbose=-1, **kw)
    raise ValueError(f"unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")


class EpochStager(ClassifierMixin, BaseEstimator):
    """scikit-learn classifier on per-epoch features, with optional temporal context.

    The epoch-level counterpart of :class:`FeatureStagingModel`: ``X`` holds precomputed
    per-epoch features (e.g. of :func:`hypnoscope.signal.features.epoch_features`, or the real
    band-power set; extra axes are flattened) in time order, ``groups`` says which night
    each epoch belongs to, and with ``context=True`` the features get
    :func:`hypnoscope.signal.features.add_context` per night before the classifier sees them.
    Works in :class:`~sklearn.pipeline.Pipeline`, ``GridSearchCV`` (pass ``groups`` as a
    fit parameter) and pickles.

    Parameters
    ----------
    algorithm : {"svm", "rf", "lightgbm"}
    context : bool or dict
        ``True``: :data:`DEFAULT_CONTEXT`; a dict overrides it; ``False``: none.
    class_weight : {"sqrt", "balanced", None} or dict
        See :func:`resolve_class_weight`.
    ignore_label : int or None
        Epochs with this label (e.g. ``-100``, unscored) are kept for the context of
        their neighbours but not trained on.
    random_state : int
    estimator_params : dict or None
        Overrides of :func:`build_estimator`'s defaults (e.g. ``{"n_estimators": 50}``).
    n_jobs : int
    """

    def __init__(self, algorithm: str = "lightgbm", context: bool | dict = False,
                 class_weight: Any = "sqrt", ignore_label: int | None = None,
                 random_state: int = 0, estimator_params: dict | None = None,
                 n_jobs: int = 1) -> None:
        self.algorithm = algorithm
        self.context = context
        self.class_weight = class_weight
        self.ignore_label = ignore_label
        self.random_state = random_state
        self.estimator_params = estimator_params
        self.n_jobs = n_jobs

    def _context_options(self) -> dict[str, Any] | None:
        ctx = resolve_context(self.context)
        if ctx is not None and "span" in ctx:
            raise ValueError("context span 'sleep' needs a night-level model (its sleep "
                             "period comes from its own predictions): use "
                             "FeatureStagingModel, not EpochStager")
        return ctx

    def _design(self, X: np.ndarray, groups) -> np.ndarray:
        from hypnoscope.signal.features import add_context

        ctx = self._context_options()
        if ctx is None:
            return X
        blocks = [add_context(X[sl], **ctx)[0] for sl in night_slices(groups, len(X))]
        return np.nan_to_num(np.vstack(blocks), nan=0.0, posinf=0.0, neginf=0.0)

    def fit(self, X, y, groups=None) -> EpochStager:
        """Fit on epochs ``X`` (n_epochs, ...) with labels ``y``; ``groups``: night ids."""
        X = flatten_epochs(X)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        Z = self._design(X, groups)
        keep = np.ones(len(y), bool) if self.ignore_label is None else y != self.ignore_label
        Z, y = Z[keep], y[keep]
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"EpochStager needs at least 2 classes, got "
                             f"{len(self.classes_)} class")
        cw = resolve_class_weight(self.class_weight, y_idx)
        self.estimator_ = build_estimator(self.algorithm, seed=self.random_state,
                                          class_weight=cw, n_jobs=self.n_jobs,
                                          **(self.estimator_params or {}))
        self.estimator_.fit(Z, y_idx)
        return self

    def predict_proba(self, X, groups=None) -> np.ndarray:
        """Class probabilities, columns in :attr:`classes_` order."""
        check_is_fitted(self)
        X = flatten_epochs(X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return estimator_proba(self.estimator_, self._design(X, groups), len(self.classes_))

    def predict(self, X, groups=None) -> np.ndarray:
        """Most probable class per epoch."""
        proba = self.predict_proba(X, groups)
        return self.classes_[proba.argmax(axis=1)]


__all__ = ["SubsampledSVC", "EpochStager", "build_estimator", "subsample_weights"]
