"""What the two feature classifiers share: algorithms, class weighting, temporal-context
and augmentation options, and the epoch-matrix helpers.

The night-level :class:`~hypnoscope.models.feature_classifiers.FeatureStagingModel` (the
shipped models) and the epoch-level scikit-learn classifier
:class:`~hypnoscope.models.sklearn_estimators.EpochStager` both import these; NumPy only,
so that loading a fitted ``FeatureStagingModel`` imports no scikit-learn. The
estimators themselves are built by
:func:`hypnoscope.models.sklearn_estimators.build_estimator`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
#: Values of the context option ``span``: the epochs whose statistics the per-night
#: normalisation uses (see :meth:`~hypnoscope.models.feature_classifiers.
#: FeatureStagingModel.sleep_period`).
CONTEXT_SPANS = ("night", "sleep")


def resolve_class_weight(class_weight: Any, y, n_classes: int | None = None,
                         ) -> dict[int, float] | None:
    """Per-class weights ``{class: weight}`` for the labels ``y``.

    Parameters
    ----------
    class_weight : {"balanced", "sqrt", None} or dict
        ``"balanced"``: ``n / (k * n_c)`` (every class weighs the same in total);
        ``"sqrt"``: ``sqrt(n / (k * n_c))``, a softer weighting that lifts rare stages
        (N1, N3) without giving up as much accuracy on the frequent ones; ``None``: no
        weighting; a dict is returned as is (missing classes weigh 1).
    y : array-like of int
        Training labels (non-negative codes).
    n_classes : int, optional
        Unused classes below ``n_classes`` are left out of the result.

    Returns
    -------
    dict or None
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, dict):
        return {int(k): float(v) for k, v in class_weight.items()}
    if class_weight not in ("balanced", "sqrt"):
        raise ValueError(f"class_weight must be 'balanced', 'sqrt', None or a dict, got "
                         f"{class_weight!r}")
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if n_classes is not None and len(classes) and classes.max() >= n_classes:
        raise ValueError(f"label {classes.max()} out of range for {n_classes} classes")
    w = counts.sum() / (len(classes) * counts.astype(float))
    if class_weight == "sqrt":
        w = np.sqrt(w)
    return {int(c): float(v) for c, v in zip(classes, w, strict=True)}


def night_slices(groups, n: int) -> list[slice]:
    """Contiguous runs of equal ``groups`` values (one slice per night, in order)."""
    if groups is None:
        return [slice(0, n)]
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have one value per epoch ({n}), got shape {g.shape}")
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    if len(np.unique(g)) != len(starts):
        raise ValueError("the epochs of each night (equal 'groups' values) must be "
                         "contiguous and in time order")
    ends = np.r_[starts[1:], n]
    return [slice(a, b) for a, b in zip(starts, ends, strict=True)]


def flatten_epochs(X):
    """``(n_epochs, a, b, ...)`` arrays -> ``(n_epochs, a*b*...)``; anything else as is."""
    if isinstance(X, np.ndarray) and X.ndim > 2:
        return X.reshape(len(X), -1)
    return X


#: Defaults of the ``augment`` option (see
#: :func:`hypnoscope.models.feature_classifiers.augmented_nights`).
DEFAULT_AUGMENT: dict[str, Any] = {"copies": 1, "gain_sd": 0.5, "tilt_sd": 0.25}


def resolve_options(value: bool | dict[str, Any] | None, defaults: dict[str, Any], what: str,
                    ) -> dict[str, Any] | None:
    """``None`` for a false ``value``, else ``defaults`` updated by a dict ``value``
    (unknown keys raise a ``ValueError`` naming them)."""
    if not value:
        return None
    out = dict(defaults)
    if isinstance(value, dict):
        unknown = set(value) - set(defaults)
        if unknown:
            raise ValueError(f"unknown {what} option(s) {sorted(unknown)}; expected "
                             f"{sorted(defaults)}")
        out.update(value)
    return out


def resolve_augment(augment: dict[str, Any] | bool | None) -> dict[str, Any] | None:
    """Augmentation options: ``None`` for none, else :data:`DEFAULT_AUGMENT` updated."""
    out = resolve_options(augment, DEFAULT_AUGMENT, "augment")
    if out is None:
        return None
    if int(out["copies"]) < 1 or out["gain_sd"] < 0 or out["tilt_sd"] < 0:
        raise ValueError(f"augment needs copies >= 1 and non-negative gain_sd/tilt_sd, got "
                         f"{out}")
    return out


def resolve_context(context: bool | dict[str, Any] | None) -> dict[str, Any] | None:
    """Temporal-context options: ``None`` for none, else :data:`DEFAULT_CONTEXT` updated.

    ``False``/``None`` mean no context, ``True`` the defaults, a dict overrides them
    (unknown keys raise a ``ValueError`` naming them). Besides the
    :func:`~hypnoscope.signal.features.add_context` options, ``span`` (one of
    :data:`CONTEXT_SPANS`, default ``"night"``) says which epochs the per-night
    normalisation takes its statistics from; it is kept in the result only when it is
    ``"sleep"``, and ``night_stats``, ``length`` and ``edges`` only when true (so that
    older model cards stay the same).
    """
    out = resolve_options(context, {**DEFAULT_CONTEXT, "span": "night", "night_stats": False,
                                    "length": False, "edges": False}, "context")
    if out is None:
        return None
    for flag in ("night_stats", "length", "edges"):
        if out[flag]:
            out[flag] = True
        else:
            del out[flag]
    if out["span"] not in CONTEXT_SPANS:
        raise ValueError(f"context span must be one of {CONTEXT_SPANS}, got "
                         f"{out['span']!r}")
    if out["span"] == "night":
        del out["span"]
    elif out["normalize"] is None:
        raise ValueError("context span 'sleep' chooses the epochs of the per-night "
                         "normalisation; it needs normalize (e.g. 'robust')")
    return out


def estimator_proba(estimator, X: np.ndarray, n_columns: int) -> np.ndarray:
    """``estimator.predict_proba(X)`` in ``n_columns`` columns, the column of each class
    code in ``estimator.classes_`` (classes it never saw keep probability 0)."""
    out = np.zeros((len(X), n_columns))
    p = estimator.predict_proba(X)
    out[:, np.asarray(estimator.classes_, dtype=int)] = p
    return out


__all__ = ["ALGORITHMS", "CONTEXT_SPANS", "DEFAULT_AUGMENT", "DEFAULT_CONTEXT",
           "estimator_proba", "flatten_epochs", "night_slices", "resolve_augment",
           "resolve_class_weight", "resolve_context"]
