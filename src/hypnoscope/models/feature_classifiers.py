"""Feature-based staging models: SVM, Random Forest and LightGBM, with or without context.

Two layers:

- epoch-level scikit-learn estimators (:func:`build_estimator`): a
  :class:`SubsampledSVC` (RBF SVM), :class:`~sklearn.ensemble.RandomForestClassifier`
  and :class:`lightgbm.LGBMClassifier`, all with class weighting;
- the night-level :class:`FeatureStagingModel` (a
  :class:`~hypnoscope.models.base.StagingModel`) that turns every night into a feature
  matrix (precomputed features of ``Night.kind == "features"`` are flattened; raw signals
  of ``kind == "signals"`` go through :func:`hypnoscope.features.epoch_features`), adds
  temporal context per night (:func:`hypnoscope.features.add_context`, never across
  nights) for the ``*-context`` models, and fits the estimator on the scored epochs.

Registered names (see :data:`hypnoscope.models.MODEL_REGISTRY`): ``svm``, ``rf``,
``lightgbm``, ``svm-context``, ``rf-context``, ``lightgbm-context``; all built by
:func:`make_feature_model`.

Tractability of the RBF SVM on ~100k epochs: an exact kernel SVM scales quadratically or
worse with the number of samples, so :class:`SubsampledSVC` trains on a class-stratified
random subsample (at most ``max_per_class`` epochs of each class; default 2000) and
calibrates probabilities with a multinomial logistic regression on the SVM decision values
of *other* training epochs (a Platt-style calibration that needs no internal CV refits).
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

from ..stages import STAGES_3, STAGES_5, to_3class
from .base import StagingModel

ALGORITHMS = ("svm", "rf", "lightgbm")

#: Default context settings of the ``*-context`` models (see ``add_context``).
DEFAULT_CONTEXT: dict[str, Any] = {
    "windows": (5, 11, 21),
    "past_windows": (4, 10),
    "std_windows": (11,),
    "diffs": True,
    "normalize": "robust",
    "keep_raw": True,
}


class SubsampledSVC(ClassifierMixin, BaseEstimator):
    """RBF support-vector classifier made tractable on large epoch sets.

    Features are standardised; the SVM is fitted on a class-stratified random subsample
    of at most ``max_per_class`` samples per class; probabilities come from a
    multinomial logistic regression fitted on the SVM decision values of up to
    ``max_per_class`` further samples per class that the SVM did not see (or of the
    SVM's own training samples when no others are left).

    Parameters
    ----------
    C, gamma : float, str
        RBF SVM parameters (:class:`sklearn.svm.SVC`).
    max_per_class : int
        Subsample cap per class for the SVM (and for the calibration set).
    class_weight : {"balanced", None} or dict
        Class weighting of the SVM and of the calibration.
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
        rng = np.random.default_rng(self.random_state)
        fit_idx, cal_idx = self._split(y_idx, rng)
        self.scaler_ = StandardScaler().fit(X)
        Xs = self.scaler_.transform(X)
        self.svc_ = SVC(kernel="rbf", C=self.C, gamma=self.gamma,
                        class_weight=self.class_weight, decision_function_shape="ovr",
                        random_state=self.random_state)
        self.svc_.fit(Xs[fit_idx], y_idx[fit_idx])
        if len(np.unique(y_idx[cal_idx])) < len(self.classes_):
            cal_idx = fit_idx  # too little data left over: calibrate on the fit set
        self.calibrator_ = LogisticRegression(C=1.0, class_weight=self.class_weight,
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
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def build_estimator(algorithm: str, seed: int = 0, class_weight: Any = "balanced",
                    n_jobs: int = 1, **params: Any):
    """Epoch-level scikit-learn classifier for ``algorithm`` in ``svm``, ``rf``, ``lightgbm``.

    ``params`` override the defaults (e.g. ``n_estimators``, ``C``, ``max_per_class``).
    The defaults are sized for ~100k training epochs on a laptop.
    """
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


def night_feature_matrix(night, context: dict[str, Any] | None = None,
                         ) -> tuple[np.ndarray, list[str]]:
    """Per-epoch feature matrix of one night (optionally with temporal context).

    ``kind == "features"``: ``X`` is flattened to ``(n_epochs, n_features)`` (names from
    the JSON sidecar's ``channel_names`` x ``feature_names`` when available);
    ``kind == "signals"``: :func:`~hypnoscope.features.epoch_features` of the epochs.
    Non-finite values become 0.
    """
    from ..features import add_context, epoch_features

    if night.kind == "signals":
        if night.sfreq is None:
            raise ValueError(f"night {night.night_id}: signals without a sampling rate")
        if not night.roles:
            raise ValueError(f"night {night.night_id}: signals without channel roles "
                             "(eeg/eog/emg/emg_envelope)")
        X, names = epoch_features(night.X, night.sfreq, night.roles,
                                  night.channels or None)
    else:
        X = np.asarray(night.X, dtype=np.float32).reshape(night.n_epochs, -1)
        chs = list(night.meta.get("channel_names", night.channels or []))
        fn = list(night.meta.get("feature_names", []))
        if chs and fn and len(chs) * len(fn) == X.shape[1]:
            names = [f"{c}_{f}" for c in chs for f in fn]
        else:
            names = [f"f{i}" for i in range(X.shape[1])]
    if context is not None:
        X, names = add_context(X, names, **context)
    return np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32), names


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
    lik = np.asarray(proba, float) / np.maximum(prior, 1e-12)
    n, k = lik.shape
    fwd = np.empty((n, k))
    p = np.full(k, 1.0 / k) * lik[0]
    fwd[0] = p / p.sum()
    for t in range(1, n):
        p = (fwd[t - 1] @ transmat) * lik[t]
        fwd[t] = p / max(p.sum(), 1e-300)
    bwd = np.ones(k)
    post = np.empty((n, k))
    post[-1] = fwd[-1]
    for t in range(n - 2, -1, -1):
        bwd = transmat @ (lik[t + 1] * bwd)
        bwd /= max(bwd.sum(), 1e-300)
        q = fwd[t] * bwd
        post[t] = q / max(q.sum(), 1e-300)
    return post


class FeatureStagingModel(StagingModel):
    """Night-level staging with a feature classifier (see the module docstring).

    Parameters
    ----------
    name : str
        Registered model name.
    algorithm : {"svm", "rf", "lightgbm"}
    n_classes : {5, 3}
        With 3, 5-class labels are mapped with :func:`hypnoscope.stages.to_3class`.
    context : bool or dict
        ``True`` for :data:`DEFAULT_CONTEXT`, a dict to override it, ``False`` for none.
    smoothing : {None, "hmm"}
        ``"hmm"``: forward-backward smoothing with the stage-transition matrix of the
        training nights.
    seed, class_weight, n_jobs, **params
        Passed to :func:`build_estimator`.
    """

    input_kind = "features"

    def __init__(self, name: str = "lightgbm", algorithm: str = "lightgbm",
                 n_classes: int = 5, context: bool | dict[str, Any] = False,
                 smoothing: str | None = None, seed: int = 0,
                 class_weight: Any = "balanced", n_jobs: int = 1, **params: Any) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}; expected one of "
                             f"{ALGORITHMS}")
        if smoothing not in (None, "hmm"):
            raise ValueError(f"smoothing must be None or 'hmm', got {smoothing!r}")
        ctx = None
        if context:
            ctx = dict(DEFAULT_CONTEXT)
            if isinstance(context, dict):
                unknown = set(context) - set(DEFAULT_CONTEXT)
                if unknown:
                    raise ValueError(f"unknown context option(s) {sorted(unknown)}; "
                                     f"expected {sorted(DEFAULT_CONTEXT)}")
                ctx.update(context)
        super().__init__(n_classes=n_classes, algorithm=algorithm, context=ctx,
                         smoothing=smoothing, seed=seed, class_weight=class_weight,
                         params=dict(params))
        self.name = name
        self.algorithm = algorithm
        self.context = ctx
        self.smoothing = smoothing
        self.seed = seed
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.params = dict(params)
        self.estimator_ = None

    @property
    def class_names(self) -> tuple[str, ...]:
        return STAGES_5 if self.n_classes == 5 else STAGES_3

    def _labels(self, night) -> np.ndarray:
        return to_3class(night.y) if self.n_classes == 3 else night.y

    def transform(self, night) -> np.ndarray:
        """Feature matrix of one night as the estimator sees it."""
        X, names = night_feature_matrix(night, self.context)
        if self.estimator_ is not None and X.shape[1] != len(self.feature_names_):
            raise ValueError(
                f"night {night.night_id}: {X.shape[1]} features but the model was trained "
                f"on {len(self.feature_names_)} (input kind {self.input_kind_!r}, epoch "
                f"shape {self.epoch_shape_}); got kind {night.kind!r}, epoch shape "
                f"{list(night.X.shape[1:])}")
        return X

    def fit(self, nights, val_nights=None) -> FeatureStagingModel:
        """Fit on the scored epochs of ``nights`` (``val_nights`` are not needed and are
        ignored: feature models use all training nights)."""
        nights = list(nights)
        if not nights:
            raise ValueError("fit needs at least one night")
        kinds = {n.kind for n in nights}
        if len(kinds) > 1:
            raise ValueError(f"nights mix input kinds {sorted(kinds)}")
        from ..utils import progress

        Xs, ys = [], []
        names: list[str] = []
        for n in progress(nights, desc="features", unit="night"):
            X, names = night_feature_matrix(n, self.context)
            y = self._labels(n)
            keep = y >= 0
            Xs.append(X[keep])
            ys.append(y[keep])
        X = np.vstack(Xs)
        y = np.concatenate(ys)
        if len(np.unique(y)) < 2:
            raise ValueError(f"training data holds {len(np.unique(y))} scored class(es); "
                             "at least 2 are needed")
        self.feature_names_ = names
        self.input_kind_ = nights[0].kind
        self.epoch_shape_ = list(nights[0].X.shape[1:])
        self.estimator_ = build_estimator(self.algorithm, seed=self.seed,
                                          class_weight=self.class_weight,
                                          n_jobs=self.n_jobs, **self.params)
        self.estimator_.fit(X, y)
        counts = np.bincount(y, minlength=self.n_classes).astype(float)
        self.train_prior_ = counts / counts.sum()
        if self.smoothing == "hmm":
            self.transmat_ = transition_matrix(nights, self.n_classes)
        self.describe_training(nights, feature_names=names, n_features=len(names))
        return self

    def predict_proba(self, night) -> np.ndarray:
        """``(n_epochs, n_classes)`` probabilities for every epoch of ``night``."""
        if self.estimator_ is None:
            raise RuntimeError(f"model {self.name!r} is not fitted")
        X = self.transform(night)
        out = np.zeros((len(X), self.n_classes))
        p = self.estimator_.predict_proba(X)
        out[:, np.asarray(self.estimator_.classes_, dtype=int)] = p
        if self.smoothing == "hmm":
            # balanced class weights make the posteriors relative to a uniform prior
            prior = (np.full(self.n_classes, 1.0 / self.n_classes)
                     if self.class_weight == "balanced" else self.train_prior_)
            out = hmm_smooth(out, self.transmat_, prior)
        return out


def make_feature_model(name: str = "lightgbm", n_classes: int = 5, seed: int = 0,
                       class_weight: Any = "balanced", **kw: Any) -> FeatureStagingModel:
    """Factory for the registered names ``svm``, ``rf``, ``lightgbm`` and their
    ``-context`` variants. Unknown keyword options that only deep models use
    (``seq_len``, ``preset``, ``epochs``, ``checkpoint_dir``, ``resume``) are ignored;
    other keywords go to :class:`FeatureStagingModel` / :func:`build_estimator`.
    """
    for deep_only in ("seq_len", "preset", "epochs", "checkpoint_dir", "resume"):
        kw.pop(deep_only, None)
    base, _, suffix = name.partition("-")
    if base not in ALGORITHMS or suffix not in ("", "context"):
        raise ValueError(f"unknown feature model {name!r}; expected one of "
                         f"{[a + s for a in ALGORITHMS for s in ('', '-context')]}")
    context = kw.pop("context", suffix == "context")
    return FeatureStagingModel(name=name, algorithm=base, n_classes=n_classes,
                               context=context, seed=seed, class_weight=class_weight, **kw)
