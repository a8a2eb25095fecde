"""Feature-based staging models: SVM, Random Forest and LightGBM, with or without context.

Three layers:

- epoch-level scikit-learn estimators (:func:`build_estimator`): a
  :class:`SubsampledSVC` (RBF SVM), :class:`~sklearn.ensemble.RandomForestClassifier`
  and :class:`lightgbm.LGBMClassifier`, all with class weighting
  (:func:`resolve_class_weight`: ``"sqrt"`` by default, ``"balanced"``, none or a dict);
- :class:`EpochStager`, a scikit-learn classifier (``fit(X, y, groups=None)``,
  ``predict``, ``predict_proba``, picklable, passes ``check_estimator``) on precomputed
  per-epoch features that adds the temporal context per night (``groups``) itself;
- the night-level :class:`FeatureStagingModel` (a
  :class:`~hypnoscope.models.base.StagingModel`) that turns every night into a feature
  matrix (precomputed features of ``Night.kind == "features"`` are flattened; raw signals
  of ``kind == "signals"`` go through :func:`hypnoscope.signal.features.epoch_features`), adds
  temporal context per night (:func:`hypnoscope.signal.features.add_context`, never across
  nights) for the ``*-context`` models, and fits the estimator on the scored epochs.

Registered names (see :data:`hypnoscope.models.MODEL_REGISTRY`): ``svm``, ``rf``,
``lightgbm``, ``svm-context``, ``rf-context``, ``lightgbm-context``; all built by
:func:`make_feature_model`.

Tractability of the RBF SVM on ~100k epochs: an exact kernel SVM scales quadratically or
worse with the number of samples, so :class:`SubsampledSVC` trains on a class-stratified
random subsample (at most ``max_per_class`` epochs of each class; default 2000) and
calibrates probabilities with a multinomial logistic regression on the SVM decision values
of *other* training epochs (a Platt-style calibration that needs no internal CV refits).

The scikit-learn parts (:func:`build_estimator`, :class:`SubsampledSVC`,
:class:`EpochStager`) live in :mod:`hypnoscope.models.sklearn_estimators` and are imported
from here on first use, so that loading and running a fitted :class:`FeatureStagingModel`
(the shipped ``default`` model) imports no scikit-learn; the options and helpers both
feature classifiers share (class weighting, context, augmentation) are in
:mod:`hypnoscope.models.feature_options`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hypnoscope.datasets import describe_input
from hypnoscope.evaluation.probability import hmm_smooth, transition_matrix
from hypnoscope.models.base import StagingModel
from hypnoscope.models.feature_options import (  # noqa: F401 - public names of this module
    ALGORITHMS,
    CONTEXT_SPANS,
    DEFAULT_AUGMENT,
    DEFAULT_CONTEXT,
    estimator_proba,
    resolve_augment,
    resolve_class_weight,
    resolve_context,
    resolve_options,
)
from hypnoscope.signal.features import PAPER_FEATURES
from hypnoscope.stages import W, sleep_period_slice, stage_names, to_3class

#: ``span="sleep"`` at inference: at most this many passes of the model (the first with
#: whole-night statistics), and a predicted sleep period shorter than
#: ``MIN_SLEEP_SPAN`` epochs counts as none (whole-night statistics).
SLEEP_SPAN_PASSES = 3
MIN_SLEEP_SPAN = 20

#: Names of :mod:`hypnoscope.models.sklearn_estimators` also offered here, imported on
#: first use (they import scikit-learn).
_SKLEARN_NAMES = ("SubsampledSVC", "EpochStager", "build_estimator")


def __getattr__(name: str):
    """:class:`SubsampledSVC`, :class:`EpochStager` and :func:`build_estimator`, imported
    on first use."""
    if name in _SKLEARN_NAMES:
        from hypnoscope.models import sklearn_estimators

        return getattr(sklearn_estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Feature sets of signal nights: name -> None (every feature of
#: :func:`~hypnoscope.signal.features.epoch_features`) or (channel roles, feature names).
FEATURE_SETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]] | None] = {
    "all": None,
    "msmae-paper": (("eeg",), PAPER_FEATURES),
}


def night_feature_matrix(night, context: dict[str, Any] | None = None,
                         feature_set: str = "all", stats_rows=None, prior=None,
                         ) -> tuple[np.ndarray, list[str]]:
    """Per-epoch feature matrix of one night (optionally with temporal context).

    ``kind == "features"``: ``X`` is flattened to ``(n_epochs, n_features)`` (names from
    the JSON sidecar's ``channel_names`` x ``feature_names`` when available);
    ``kind == "signals"``: :func:`~hypnoscope.signal.features.epoch_features` of the epochs,
    all of them or the :data:`FEATURE_SETS` entry ``feature_set`` (``"msmae-paper"``:
    the MSMAE-CNN paper's mean, SD, skewness, kurtosis and five band log powers of each
    EEG channel). Non-finite values become 0. ``stats_rows`` (with ``context``): the
    epochs whose statistics the per-night normalisation uses (see
    :func:`~hypnoscope.signal.features.add_context`); the context option ``span`` is the
    model's business (:class:`FeatureStagingModel`) and is ignored here. ``prior``
    (with ``context``): population statistics the per-night normalisation shrinks
    toward (:func:`~hypnoscope.signal.features.night_normalize`).
    """
    from hypnoscope.signal.features import add_context, epoch_features

    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature_set {feature_set!r}; expected one of "
                         f"{sorted(FEATURE_SETS)}")
    if night.kind == "signals":
        if night.sfreq is None:
            raise ValueError(f"night {night.night_id}: signals without a sampling rate")
        if not night.roles:
            raise ValueError(f"night {night.night_id}: signals without channel roles "
                             "(eeg/eog/emg/emg_envelope)")
        chans = list(night.channels or [f"ch{i}" for i in range(night.X.shape[1])])
        subset = FEATURE_SETS[feature_set]
        if subset is None:
            X, names = epoch_features(night.X, night.sfreq, night.roles, chans)
        else:
            idx = [i for i, r in enumerate(night.roles) if r in subset[0]]
            if not idx:
                raise ValueError(f"night {night.night_id}: feature set {feature_set!r} "
                                 f"needs {'/'.join(subset[0])} channels; roles are "
                                 f"{list(night.roles)}")
            X, names = epoch_features(night.X[:, idx], night.sfreq,
                                      [night.roles[i] for i in idx], [chans[i] for i in idx])
            wanted = {f"{chans[i]}_{f}" for i in idx for f in subset[1]}
            keep = [j for j, n in enumerate(names) if n in wanted]
            X, names = X[:, keep], [names[j] for j in keep]
    elif feature_set != "all":
        raise ValueError(f"feature_set {feature_set!r} is computed from signals; night "
                         f"{night.night_id} holds precomputed features")
    else:
        X = np.asarray(night.X, dtype=np.float32).reshape(night.n_epochs, -1)
        chs = list(night.meta.get("channel_names", night.channels or []))
        fn = list(night.meta.get("feature_names", []))
        if chs and fn and len(chs) * len(fn) == X.shape[1]:
            names = [f"{c}_{f}" for c in chs for f in fn]
        else:
            names = [f"f{i}" for i in range(X.shape[1])]
    if context is not None:
        ctx = {k: v for k, v in context.items() if k != "span"}
        X, names = add_context(X, names, **ctx, stats_rows=stats_rows, prior=prior)
    return np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32), names


def augmented_nights(nights, augment: dict[str, Any], seed: int = 0) -> list:
    """``augment["copies"]`` jittered copies of every band-power night (see
    :func:`hypnoscope.signal.bandpower.jitter_band_powers`), one seeded generator per copy."""
    import dataclasses

    from hypnoscope.signal.bandpower import FEATURE_NAMES, jitter_band_powers

    out = []
    for c in range(int(augment["copies"])):
        rng = np.random.default_rng([int(seed), 7919, c])
        for n in nights:
            names = tuple(n.meta.get("feature_names", FEATURE_NAMES))
            if (n.kind != "features" or n.X.ndim != 3 or names != FEATURE_NAMES
                    or n.X.shape[-1] != len(FEATURE_NAMES)):
                raise ValueError(
                    f"night {n.night_id}: band-power augmentation needs precomputed band "
                    f"powers (n_epochs, n_channels, {len(FEATURE_NAMES)}) named "
                    f"{list(FEATURE_NAMES)}; got kind {n.kind!r}, shape "
                    f"{list(n.X.shape)}")
            out.append(dataclasses.replace(
                n, X=jitter_band_powers(n.X, rng, augment["gain_sd"], augment["tilt_sd"]),
                night_id=f"{n.night_id}~aug{c}"))
    return out


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
        ``{"span": "sleep"}`` takes the per-night normalisation's statistics from the
        sleep period only (:meth:`sleep_period`), not from the wake before and after it
        (training: the scored sleep period; staging: the predicted one, up to
        :data:`SLEEP_SPAN_PASSES` passes of the model per night).
    smoothing : {None, "hmm"}
        ``"hmm"``: forward-backward smoothing with the stage-transition matrix of the
        training nights.
    class_weight : {"sqrt", "balanced", None} or dict
        Class weighting (:func:`resolve_class_weight`), resolved on the training labels.
        Default ``"sqrt"`` (inverse square-root class frequency): on the real Sleep-EDF
        features it kept macro-F1 of ``"balanced"`` while raising accuracy and kappa.
    feature_set : {"all", "msmae-paper"}
        Features of signal nights (:data:`FEATURE_SETS`): every feature of
        :func:`~hypnoscope.signal.features.epoch_features`, or the MSMAE-CNN paper's EEG set.
    augment : dict, optional
        Train also on ``copies`` (default 1) jittered copies of every band-power night
        (:func:`hypnoscope.signal.bandpower.jitter_band_powers` with ``gain_sd`` and
        ``tilt_sd``; seeded by ``seed``): other amplitudes and spectral tilts, as other
        people and amplifiers give them. Needs nights of precomputed band powers.
    shrink : float or "auto", optional
        Shrink every recording's per-night normalisation statistics toward the training
        population's (:func:`~hypnoscope.signal.features.population_stats` of the
        training nights), with weight ``(n - 1) / (n - 1 + shrink)`` on its own for
        ``n`` epochs (:func:`~hypnoscope.signal.features.shrink_weight`): a short
        recording, whose own statistics say little, is normalised mostly like the
        population. ``"auto"``: the constant is estimated on the training nights
        (:func:`~hypnoscope.signal.features.estimate_shrink` on
        :data:`SHRINK_STRETCHES` random stretches of each, drawn as ``crops`` are), and
        kept as ``shrink_``. Needs context with ``robust`` or ``zscore`` normalisation.
    crops : dict, optional
        Train also on ``per_night`` (default 2) random stretches of every training
        night, from ``min_minutes`` (default 20) to the whole night or ``max_minutes``
        (:func:`hypnoscope.evaluation.stretches.random_stretches`), each as a recording
        of its own (scaled as a recording of its own,
        :func:`hypnoscope.evaluation.stretches.stretch_night`); seeded by ``seed``.
        ``nap_minutes`` (default none) adds, per night and length given, a nap-like
        stretch that starts in wake before sleep onset
        (:func:`hypnoscope.evaluation.stretches.sample_stretches`), so that the model
        sees recordings of mostly wake that end soon after falling asleep.
        ``whole=False`` trains on the stretches alone, not on the whole nights (a
        model for short recordings only, as the short member of
        :class:`~hypnoscope.models.length_gate.LengthGatedModel`).
    seed, n_jobs, **params
        Passed to :func:`build_estimator`.
    """

    input_kind = "features"

    def __init__(self, name: str = "lightgbm", algorithm: str = "lightgbm",
                 n_classes: int = 5, context: bool | dict[str, Any] = False,
                 smoothing: str | None = None, seed: int = 0,
                 class_weight: Any = "sqrt", n_jobs: int = 1, feature_set: str = "all",
                 augment: dict[str, Any] | None = None, shrink: float | str | None = None,
                 crops: dict[str, Any] | None = None, **params: Any) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}; expected one of "
                             f"{ALGORITHMS}")
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"unknown feature_set {feature_set!r}; expected one of "
                             f"{sorted(FEATURE_SETS)}")
        if smoothing not in (None, "hmm"):
            raise ValueError(f"smoothing must be None or 'hmm', got {smoothing!r}")
        ctx = resolve_context(context)
        augment = resolve_augment(augment)
        super().__init__(n_classes=n_classes, algorithm=algorithm, context=ctx,
                         smoothing=smoothing, seed=seed, class_weight=class_weight,
                         feature_set=feature_set, params=dict(params))
        if augment is not None:  # only then, so that older model cards stay the same
            self.config["augment"] = augment
        self.augment = augment
        self.shrink, self.crops = _resolve_shrink(shrink, ctx), _resolve_crops(crops)
        if self.shrink is not None:
            self.config["shrink"] = self.shrink
        if self.crops is not None:
            self.config["crops"] = self.crops
        self.name = name
        self.feature_set = feature_set
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
        return stage_names(self.n_classes)

    def _labels(self, night) -> np.ndarray:
        return to_3class(night.y) if self.n_classes == 3 else night.y

    @property
    def span(self) -> str:
        """Epochs of the per-night normalisation's statistics: ``"night"`` or
        ``"sleep"`` (the context option ``span``)."""
        return (self.context or {}).get("span", "night")

    def sleep_period(self, night, labels=None) -> slice | None:
        """The sleep period of ``night`` whose statistics ``span="sleep"`` normalises by.

        From the first to the last sleep (non-wake) epoch
        (:func:`hypnoscope.stages.sleep_period_slice`, no pad) of ``labels`` when given
        (training: the scored stages), else of the model's own prediction, which needs
        no labels: a first pass normalises by the whole night; each further pass (at
        most :data:`SLEEP_SPAN_PASSES` in all) by the sleep period that the previous one
        predicted, until it stops changing. ``None`` (whole-night statistics) when no
        sleep period of at least :data:`MIN_SLEEP_SPAN` epochs is found, and always for
        ``span="night"``.
        """
        return self._sleep_period(night, labels)[0]

    def _sleep_period(self, night, labels=None) -> tuple[slice | None, np.ndarray | None]:
        """:meth:`sleep_period` and, when predicted, the feature matrix normalised by it."""
        if self.span != "sleep":
            return None, None
        if labels is not None:
            return _long_enough(sleep_period_slice(labels, wake_pad_min=0.0)), None
        if self.estimator_ is None:
            raise RuntimeError(f"model {self.name!r} is not fitted: its sleep period "
                               "comes from its own prediction")
        rows, X = None, self._matrix(night, None)
        for _ in range(SLEEP_SPAN_PASSES - 1):
            pred = self._proba(X).argmax(axis=1)
            new = _long_enough(sleep_period_slice(np.where(pred == W, W, W + 1),
                                                  wake_pad_min=0.0))
            if new == rows:
                break
            rows, X = new, self._matrix(night, new)
        return rows, X

    def _prior(self):
        """``(center, scale, k)`` the per-night normalisation shrinks toward, or None."""
        if getattr(self, "shrink", None) is None:  # absent in older pickles
            return None
        k = getattr(self, "shrink_", self.shrink)
        return None if k == "auto" else (*self.population_, k)

    def _estimate_shrink(self, nights, whole: list[np.ndarray]) -> float:
        """``shrink="auto"``: the constant of
        :func:`~hypnoscope.signal.features.estimate_shrink` on random stretches of the
        training nights (seeded by ``seed``); ``whole`` are the nights' feature matrices
        without context."""
        from hypnoscope.evaluation.stretches import random_stretches, stretch_night
        from hypnoscope.signal.features import estimate_shrink

        st = random_stretches(nights, SHRINK_STRETCHES, DEFAULT_CROPS["min_minutes"],
                              seed=self.seed + 1)
        parts: list[list[np.ndarray]] = [[] for _ in nights]
        for s in st:
            parts[s.night].append(night_feature_matrix(stretch_night(nights[s.night], s),
                                                       None, self.feature_set)[0])
        return estimate_shrink(whole, parts, self.context["normalize"])

    def _matrix(self, night, stats_rows) -> np.ndarray:
        X, names = night_feature_matrix(night, self.context, getattr(self, "feature_set", "all"),
                                        stats_rows=stats_rows, prior=self._prior())
        if self.estimator_ is not None and X.shape[1] != len(self.feature_names_):
            seen = (getattr(self, "metadata", None) or {}).get("training_data") or {}
            missing = [n for n in self.feature_names_ if n not in set(names)]
            extra = [n for n in names if n not in set(self.feature_names_)]
            raise ValueError(
                f"night {night.night_id}: the model was trained on "
                f"{len(self.feature_names_)} features ("
                f"{describe_input(self.input_kind_, self.epoch_shape_, seen.get('roles'))}), "
                f"but this night gives {X.shape[1]} "
                f"({describe_input(night.kind, night.X.shape[1:], night.roles)})"
                + (f"; missing {len(missing)}, e.g. {missing[:3]}" if missing else "")
                + (f"; not in the model {len(extra)}, e.g. {extra[:3]}" if extra else ""))
        return X

    def transform(self, night) -> np.ndarray:
        """Feature matrix of one night as the estimator sees it (with ``span="sleep"``,
        normalised by its predicted :meth:`sleep_period`)."""
        if self.span == "sleep" and self.estimator_ is not None:
            return self._sleep_period(night)[1]
        return self._matrix(night, None)

    def training_nights(self, nights: list, augment: bool = True) -> list:
        """The nights this model trains on for ``nights``: them (unless ``crops`` says
        ``whole=False``), their amplitude-augmented copies (``augment``, when asked) and
        their random stretches (``crops``)."""
        out = list(nights)
        if augment and getattr(self, "augment", None):
            out = out + augmented_nights(nights, self.augment, self.seed)
        if self.crops is not None:
            crops = cropped_nights(nights, self.crops, self.seed)
            out = out + crops if self.crops.get("whole", True) else crops
        return out

    def training_matrix(self, nights: list) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The scored epochs of ``nights`` as this model sees them in training (its
        temporal context; the training population's shrinkage once fitted):
        ``(X, y, feature names)``."""
        from hypnoscope.utils.runtime import progress

        Xs, ys = [], []
        names: list[str] = []
        for n in progress(nights, desc="features", unit="night"):
            rows = self.sleep_period(n, labels=n.y)
            X, names = night_feature_matrix(n, self.context, self.feature_set, rows,
                                            prior=self._prior())
            y = self._labels(n)
            keep = y >= 0
            Xs.append(X[keep])
            ys.append(y[keep])
        return np.vstack(Xs), np.concatenate(ys), names

    def fit(self, nights, val_nights=None) -> FeatureStagingModel:
        """Fit on the scored epochs of ``nights`` (``val_nights`` are not needed and are
        ignored: feature models use all training nights)."""
        nights = list(nights)
        if not nights:
            raise ValueError("fit needs at least one night")
        kinds = {n.kind for n in nights}
        if len(kinds) > 1:
            raise ValueError(f"nights mix input kinds {sorted(kinds)}")
        from hypnoscope.utils.runtime import progress

        fit_nights = self.training_nights(nights)
        if self.shrink is not None:
            from hypnoscope.signal.features import population_stats

            whole = [night_feature_matrix(n, None, self.feature_set)[0] for n in nights]
            self.population_ = population_stats(
                whole, self.context["normalize"],
                [self.sleep_period(n, labels=n.y) for n in nights])
            self.shrink_ = (self._estimate_shrink(nights, whole) if self.shrink == "auto"
                            else self.shrink)
        X, y, names = self.training_matrix(fit_nights)
        if len(np.unique(y)) < 2:
            raise ValueError(f"training data holds {len(np.unique(y))} scored class(es); "
                             "at least 2 are needed")
        self.feature_names_ = names
        self.input_kind_ = nights[0].kind
        self.epoch_shape_ = list(nights[0].X.shape[1:])
        from hypnoscope.models.sklearn_estimators import build_estimator

        self.class_weight_ = resolve_class_weight(self.class_weight, y, self.n_classes)
        self.estimator_ = build_estimator(self.algorithm, seed=self.seed,
                                          class_weight=self.class_weight_,
                                          n_jobs=self.n_jobs, **self.params)
        if self.algorithm == "lightgbm":  # a bar over the boosting rounds (rate, ETA)
            total = int(self.estimator_.get_params()["n_estimators"])
            with progress(total=total, desc=f"fitting {self.algorithm} ({len(y)} epochs)",
                          unit="round") as bar:
                self.estimator_.fit(X, y, callbacks=[lambda env: bar.update(1)])
        else:
            with progress(total=1, desc=f"fitting {self.algorithm} ({len(y)} epochs)",
                          unit="fit") as bar:
                self.estimator_.fit(X, y)
                bar.update(1)
        counts = np.bincount(y, minlength=self.n_classes).astype(float)
        self.train_prior_ = counts / counts.sum()
        # class prior the estimator effectively learnt under the class weights
        w = np.array([(self.class_weight_ or {}).get(k, 1.0) for k in range(self.n_classes)])
        self.effective_prior_ = counts * w / (counts * w).sum()
        if self.smoothing == "hmm":
            self.transmat_ = transition_matrix(nights, self.n_classes)
        extra = {"shrink_estimated": self.shrink_} if self.shrink == "auto" else {}
        self.describe_training(nights, feature_names=names, n_features=len(names), **extra)
        return self

    def predict_proba(self, night, rows=None) -> np.ndarray:
        """``(n_epochs, n_classes)`` probabilities for every epoch of ``night``; with
        ``rows`` (indices) only for those epochs (their features still use the whole
        night: context, per-night normalisation), as live staging needs."""
        if self.estimator_ is None:
            raise RuntimeError(f"model {self.name!r} is not fitted")
        X = self.transform(night)
        if rows is None:
            return self._proba(X)
        if self.smoothing == "hmm":  # smoothing runs over the whole night
            return self._proba(X)[rows]
        return self._proba(X[rows])

    def _proba(self, X: np.ndarray) -> np.ndarray:
        out = estimator_proba(self.estimator_, X, self.n_classes)
        if self.smoothing == "hmm":
            prior = getattr(self, "effective_prior_", None)  # absent in older pickles
            if prior is None:
                prior = (np.full(self.n_classes, 1.0 / self.n_classes)
                         if self.class_weight == "balanced" else self.train_prior_)
            out = hmm_smooth(out, self.transmat_, prior)
        return out


def _resolve_shrink(shrink: float | str | None, context: dict[str, Any] | None,
                    ) -> float | str | None:
    """The ``shrink`` option checked: None, ``"auto"`` or a number >= 0, with a
    robust/zscore context normalisation."""
    if shrink is None:
        return None
    if shrink != "auto" and (not isinstance(shrink, (int, float)) or float(shrink) < 0):
        raise ValueError(f"shrink must be a number >= 0 or 'auto', got {shrink!r}")
    if not context or context.get("normalize") not in ("robust", "zscore"):
        raise ValueError("shrink needs temporal context with 'robust' or 'zscore' "
                         "per-night normalisation")
    return "auto" if shrink == "auto" else float(shrink)


#: ``shrink="auto"``: random stretches of every training night its constant is
#: estimated on (lengths drawn as :data:`DEFAULT_CROPS` draws them).
SHRINK_STRETCHES = 8

#: Defaults of the ``crops`` option (see :func:`cropped_nights`).
DEFAULT_CROPS: dict[str, Any] = {"per_night": 2, "min_minutes": 20.0, "max_minutes": None,
                                  "whole": True, "nap_minutes": ()}


def _resolve_crops(crops: dict[str, Any] | bool | None) -> dict[str, Any] | None:
    """The ``crops`` option: None, or :data:`DEFAULT_CROPS` updated by a dict."""
    out = resolve_options(crops, DEFAULT_CROPS, "crops")
    if out is None:
        return None
    if int(out["per_night"]) < 1 or float(out["min_minutes"]) <= 0:
        raise ValueError(f"crops needs per_night >= 1 and min_minutes > 0, got {out}")
    if out["max_minutes"] is not None and float(out["max_minutes"]) < float(out["min_minutes"]):
        raise ValueError(f"crops needs max_minutes >= min_minutes, got {out}")
    if any(float(m) <= 0 for m in out["nap_minutes"] or ()):
        raise ValueError(f"crops needs nap_minutes > 0, got {out['nap_minutes']}")
    naps = [float(m) for m in out.pop("nap_minutes") or ()]
    if naps:  # recorded only when asked, so other models' settings read as before
        out["nap_minutes"] = naps
    return out


def cropped_nights(nights, crops: dict[str, Any], seed: int = 0) -> list:
    """Random stretches of every night as nights of their own, to train on (see the
    ``crops`` option of :class:`FeatureStagingModel`)."""
    from hypnoscope.evaluation.stretches import random_stretches, sample_stretches, stretch_night

    st = random_stretches(nights, int(crops["per_night"]), float(crops["min_minutes"]), seed,
                          max_minutes=crops.get("max_minutes"))
    if crops.get("nap_minutes"):
        st = st + sample_stretches(nights, lengths=(), nap_lengths=crops["nap_minutes"],
                                   seed=seed)
    return [stretch_night(nights[s.night], s) for s in st]


def _long_enough(span: slice | None) -> slice | None:
    """``span`` unless it is shorter than :data:`MIN_SLEEP_SPAN` epochs."""
    if span is None or span.stop - span.start < MIN_SLEEP_SPAN:
        return None
    return span


def make_feature_model(name: str = "lightgbm", n_classes: int = 5, seed: int = 0,
                       class_weight: Any = "sqrt", **kw: Any) -> FeatureStagingModel:
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
