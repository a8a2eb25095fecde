"""Epoch-by-epoch evaluation of sleep staging, aggregation and comparison tables.

Its parts:

- :func:`evaluate`: accuracy, macro-F1, Cohen's kappa, per-class precision, recall
  (sensitivity), specificity and F1, confusion matrices and a classification report,
  computed with :mod:`sklearn.metrics`. Epochs whose true *or* predicted label is
  negative (unscored) never count.
- :func:`kappa`: Cohen's kappa of the scored epochs (the one home of kappa).
- :func:`accuracy_macro_f1`: only accuracy and macro-F1, by the same rule as
  :func:`evaluate` and cheap enough to call every training epoch.
- :func:`evaluate_3class`: the same on the 3-class view (W, NREM, R).
- :func:`evaluate_recordings`: pooled over all epochs plus per-recording (or per-fold)
  mean ± sd via :func:`aggregate`.
- :func:`robustness`: agreement across people - per subject (distribution, worst
  decile), per recording night (night 1 vs night 2) and per fold (spread, worst folds).
- :class:`Timer` and the ``train_time_s`` / ``inference_time_s_per_night`` fields carried
  with every result.
- :func:`comparison_table`: the markdown tables of the literature
  (model | accuracy | sensitivity | specificity | MF1 | kappa | per-class F1 | time).
- :func:`compare_hypnograms`: agreement of two hypnograms of the same night, epoch-wise
  and per sleep statistic, refused when their header start times differ by more than
  a tolerance (:func:`hypnoscope.io.recordings.check_start_times`, 60 s by default).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hypnoscope.io.recordings import check_start_times
from hypnoscope.notices import Notices
from hypnoscope.stages import UNSCORED, stage_names, to_3class

if TYPE_CHECKING:  # pragma: no cover
    from hypnoscope.hypnogram import Hypnogram

__all__ = [
    "Timer", "accuracy_macro_f1", "aggregate", "compare_hypnograms", "kappa",
    "comparison_table",
    "evaluate",
    "distribution", "evaluate_3class", "evaluate_recordings", "robustness", "to_3class",
    "SCALAR_METRICS", "LOA_Z", "limits_of_agreement",
]

#: Scalar entries of an :func:`evaluate` result that :func:`aggregate` summarises.
SCALAR_METRICS: tuple[str, ...] = (
    "accuracy", "macro_f1", "kappa", "macro_precision", "macro_recall",
    "macro_specificity", "train_time_s", "inference_time_s_per_night",
)


class Timer:
    """Wall-clock timer (``time.perf_counter``) usable as a context manager.

    Examples
    --------
    >>> with Timer() as t:
    ...     _ = sum(range(10))
    >>> t.elapsed >= 0
    True
    """

    def __init__(self) -> None:
        self.start: float | None = None
        self.elapsed: float = 0.0

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - (self.start or time.perf_counter())


def _names(n_classes: int, labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) != n_classes:
            raise ValueError(f"labels has {len(labels)} names but n_classes={n_classes}")
        return labels
    if n_classes in (3, 5):
        return list(stage_names(n_classes))
    return [str(i) for i in range(n_classes)]


def _codes(y, what: str) -> np.ndarray:
    """Integer codes of labels (ints, or stage names such as ``"N2"``/``"REM"``)."""
    arr = np.asarray(y).ravel()
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isnan(arr) | (arr == np.round(arr))):
            raise ValueError(f"{what} holds non-integer values; expected stage codes")
        return np.where(np.isnan(arr), UNSCORED, arr).astype(np.int64)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    from hypnoscope.stages import labels_to_codes

    try:
        return labels_to_codes([str(x) for x in arr.tolist()])
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _confusion(t: np.ndarray, p: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix (rows = true, columns = predicted) of codes ``0..n_classes-1``."""
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes)


def _f1_per_class(cm: np.ndarray) -> np.ndarray:
    """Per-class F1 ``2 TP / (2 TP + FP + FN)`` of a confusion matrix; ``nan`` for a class
    absent from both the true and the predicted labels (left out of macro-F1)."""
    tp = np.diag(cm).astype(float)
    denom = cm.sum(axis=0) + cm.sum(axis=1)  # = 2 TP + FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / denom, np.nan)


def _nanmean(values) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan


def accuracy_macro_f1(y_true, y_pred, n_classes: int) -> tuple[float, float]:
    """Accuracy and macro-F1 over the scored epochs, by the rule of :func:`evaluate`.

    Parameters
    ----------
    y_true, y_pred : array-like of int
        Stage codes ``0 .. n_classes-1``; an epoch counts only if ``y_true >= 0`` (and,
        as in :func:`evaluate`, its prediction is not negative).
    n_classes : int
        Number of classes.

    Returns
    -------
    accuracy, macro_f1 : float
        Macro-F1 averages the per-class F1 of the classes present in ``y_true`` or
        ``y_pred`` (a class absent from both is left out, not scored 0). Both are
        ``nan`` when no epoch is scored.

    Raises
    ------
    ValueError
        If the arrays differ in length or hold a code ``>= n_classes``.
    """
    t = np.asarray(y_true).ravel().astype(np.int64)
    p = np.asarray(y_pred).ravel().astype(np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} epochs but y_pred has {p.size}")
    keep = (t >= 0) & (p >= 0)
    t, p = t[keep], p[keep]
    if t.size == 0:
        return math.nan, math.nan
    top = int(max(t.max(), p.max()))
    if top >= n_classes:
        raise ValueError(f"stage code {top} found but n_classes={n_classes}")
    cm = _confusion(t, p, n_classes)
    return float(np.trace(cm) / t.size), _nanmean(_f1_per_class(cm))


def kappa(y_true, y_pred, n_classes: int | None = None) -> float:
    """Cohen's kappa (scikit-learn) of the epochs scored in ``y_true`` (``>= 0``), over
    the classes ``0 .. n_classes - 1`` (None: the classes present): the one home of the
    kappa every evaluation reports."""
    from sklearn.metrics import cohen_kappa_score

    t = np.asarray(y_true)
    keep = t >= 0
    labels = None if n_classes is None else np.arange(n_classes)
    return float(cohen_kappa_score(t[keep], np.asarray(y_pred)[keep], labels=labels))


def evaluate(y_true, y_pred, n_classes: int = 5, labels: Sequence[str] | None = None,
             train_time_s: float | None = None,
             inference_time_s_per_night: float | None = None) -> dict[str, Any]:
    """Epoch-by-epoch agreement of predicted and true stages.

    Parameters
    ----------
    y_true, y_pred : array-like of int
        Stage codes ``0 .. n_classes-1`` (or 5-class stage names such as ``"N2"``);
        negative codes, ``nan`` and ``"?"`` are unscored. An epoch counts only if both
        its true and its predicted code are scored.
    n_classes : int, default 5
        Number of classes (5: W, N1, N2, N3, R; 3: W, NREM, R).
    labels : sequence of str, optional
        Class names (default :func:`hypnoscope.stages.stage_names`).
    train_time_s, inference_time_s_per_night : float, optional
        Execution times carried with the result (``None`` when unknown).

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``kappa`` (Cohen's), ``macro_precision``,
        ``macro_recall`` (mean sensitivity), ``macro_specificity``; per-class dicts
        ``{name: value}`` ``per_class_f1``, ``precision``, ``recall``, ``specificity``,
        ``support``; ``per_class`` (``{name: {precision, recall, specificity, f1,
        support}}``); ``confusion_matrix`` (counts, rows = true, columns = predicted,
        list of lists) and ``confusion_matrix_normalized`` (rows sum to 1);
        ``classification_report`` (text); ``n_epochs`` (counted), ``n_excluded``
        (unscored), ``labels``, ``n_classes``, ``train_time_s``,
        ``inference_time_s_per_night``.

    Notes
    -----
    Undefined per-class values (a class that is never predicted has no precision; one
    absent from both ``y_true`` and ``y_pred`` has no recall or F1) are ``nan`` and are
    left out of the macro averages, so a night without N3 is not penalised for it
    (``macro_f1`` then equals scikit-learn's ``f1_score(average="macro")``, which
    averages over the classes present in either array).
    Specificity of class *k* is TN / (TN + FP) from the one-vs-rest confusion matrix.

    Raises
    ------
    ValueError
        If the arrays differ in length, contain codes ``>= n_classes`` or no epoch is
        scored in both.
    """
    from sklearn.metrics import classification_report, precision_recall_fscore_support

    names = _names(n_classes, labels)
    t, p = _codes(y_true, "y_true"), _codes(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} epochs but y_pred has {p.size}")
    for what, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and arr.max() >= n_classes:
            hint = (" (for the 3-class view of 5-class codes use evaluate_3class or "
                    "hypnoscope.stages.to_3class)" if n_classes == 3 else "")
            raise ValueError(f"{what} contains code {int(arr.max())} but n_classes="
                             f"{n_classes}; expected codes 0-{n_classes - 1} or negative "
                             f"for unscored{hint}")
    keep = (t >= 0) & (p >= 0)
    t, p = t[keep], p[keep]
    if t.size == 0:
        raise ValueError("no epoch is scored in both y_true and y_pred; nothing to evaluate")
    classes = list(range(n_classes))
    cm = _confusion(t, p, n_classes)
    prec, rec, _, support = precision_recall_fscore_support(
        t, p, labels=classes, zero_division=np.nan)
    # F1 is undefined only when the class is absent from both y_true and y_pred
    f1 = _f1_per_class(cm)
    absent = np.isnan(f1)
    accuracy, macro_f1 = accuracy_macro_f1(t, p, n_classes)
    tp = np.diag(cm).astype(float)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    with np.errstate(invalid="ignore", divide="ignore"):
        spec = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
        row = cm.sum(axis=1, keepdims=True)
        cm_norm = np.where(row > 0, cm / np.maximum(row, 1), 0.0)

    def per(values) -> dict[str, float]:
        return {n: float(v) for n, v in zip(names, values, strict=True)}

    present = [c for c in classes if not absent[c]]
    report = classification_report(t, p, labels=present, target_names=[names[c] for c in present],
                                   digits=3, zero_division=0)
    return {
        "n_classes": int(n_classes),
        "labels": names,
        "n_epochs": int(t.size),
        "n_excluded": int((~keep).sum()),
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "kappa": kappa(t, p, n_classes),
        "macro_precision": _nanmean(prec),
        "macro_recall": _nanmean(rec),
        "macro_specificity": _nanmean(spec),
        "per_class_f1": per(f1),
        "precision": per(prec),
        "recall": per(rec),
        "specificity": per(spec),
        "support": {n: int(s) for n, s in zip(names, support, strict=True)},
        "per_class": {n: {"precision": float(prec[i]), "recall": float(rec[i]),
                          "specificity": float(spec[i]), "f1": float(f1[i]),
                          "support": int(support[i])} for i, n in enumerate(names)},
        "confusion_matrix": cm.astype(int).tolist(),
        "confusion_matrix_normalized": cm_norm.tolist(),
        "classification_report": report,
        "train_time_s": None if train_time_s is None else float(train_time_s),
        "inference_time_s_per_night": (None if inference_time_s_per_night is None
                                       else float(inference_time_s_per_night)),
    }


def evaluate_3class(y_true, y_pred, **kwargs: Any) -> dict[str, Any]:
    """:func:`evaluate` on the 3-class view (W, NREM, R) of 5-class codes."""
    return evaluate(to_3class(y_true), to_3class(y_pred), n_classes=3, **kwargs)


def aggregate(results: Sequence[Mapping[str, Any]], ddof: int = 1) -> dict[str, Any]:
    """Mean ± sd of per-recording (or per-fold) :func:`evaluate` results.

    Parameters
    ----------
    results : sequence of dict
        Outputs of :func:`evaluate` for the same label set.
    ddof : int, default 1
        Delta degrees of freedom of the standard deviation (1: sample sd). With a
        single result the sd is ``nan``.

    Returns
    -------
    dict
        ``n`` (number of results), ``labels``, ``n_classes``, ``n_epochs`` (total),
        each of :data:`SCALAR_METRICS` and ``per_class_f1``/``recall``/``specificity``
        /``precision`` ``{name: ...}`` as ``{"mean": m, "sd": s, "n": k}`` where
        ``k`` counts the results in which the value is defined (``nan`` values, e.g.
        F1 of a class absent from a night, are skipped).
    """
    results = list(results)
    if not results:
        raise ValueError("aggregate() needs at least one result")
    labels = list(results[0]["labels"])
    if any(list(r["labels"]) != labels for r in results):
        raise ValueError("cannot aggregate results with different class labels")

    def summary(values) -> dict[str, float]:
        v = np.array([math.nan if x is None else float(x) for x in values], dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return {"mean": math.nan, "sd": math.nan, "n": 0}
        sd = float(np.std(v, ddof=ddof)) if v.size > ddof else math.nan
        return {"mean": float(v.mean()), "sd": sd, "n": int(v.size)}

    out: dict[str, Any] = {"n": len(results), "labels": labels,
                           "n_classes": results[0]["n_classes"],
                           "n_epochs": int(sum(r["n_epochs"] for r in results))}
    for key in SCALAR_METRICS:
        out[key] = summary(r.get(key) for r in results)
    for key in ("per_class_f1", "precision", "recall", "specificity"):
        out[key] = {n: summary(r[key][n] for r in results) for n in labels}
    return out


def evaluate_recordings(y_true: Sequence, y_pred: Sequence, n_classes: int = 5,
                        labels: Sequence[str] | None = None,
                        train_time_s: float | None = None,
                        inference_time_s_per_night: float | None = None) -> dict[str, Any]:
    """Evaluate several recordings: pooled, per recording, and mean ± sd.

    Parameters
    ----------
    y_true, y_pred : sequences of arrays
        One array of codes per recording (or per fold).
    n_classes, labels, train_time_s, inference_time_s_per_night
        As in :func:`evaluate`.

    Returns
    -------
    dict
        ``pooled`` (:func:`evaluate` on all epochs), ``per_recording`` (list of
        :func:`evaluate` results; ``None`` for a recording with no scored epoch) and
        ``mean`` (:func:`aggregate` of the per-recording results).
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true label arrays but {len(y_pred)} predictions")
    kw = dict(n_classes=n_classes, labels=labels, train_time_s=train_time_s,
              inference_time_s_per_night=inference_time_s_per_night)
    per: list[dict[str, Any] | None] = []
    for i, (t, p) in enumerate(zip(y_true, y_pred, strict=True)):
        t, p = _codes(t, f"y_true[{i}]"), _codes(p, f"y_pred[{i}]")
        if t.shape != p.shape:
            raise ValueError(f"recording {i}: {t.size} true labels but {p.size} predictions")
        per.append(evaluate(t, p, **kw) if ((t >= 0) & (p >= 0)).any() else None)
    pooled = evaluate(np.concatenate([np.asarray(t).ravel() for t in y_true]),
                      np.concatenate([np.asarray(p).ravel() for p in y_pred]), **kw)
    return {"pooled": pooled, "per_recording": per,
            "mean": aggregate([r for r in per if r is not None])}


# -------------------------------------------------------------- robustness
ROBUSTNESS_METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "kappa")


#: Width of the limits of agreement in standard deviations of the differences.
LOA_Z = 1.96


def limits_of_agreement(pred: Sequence[float], ref: Sequence[float]) -> dict[str, Any]:
    """Bias and 95 % limits of agreement of paired measurements.

    Parameters
    ----------
    pred, ref : sequence of float
        The same statistic by the stager and by the scorer, one value per recording;
        pairs where either is undefined (``nan``/None) are left out.

    Returns
    -------
    dict
        ``n`` (pairs used), ``bias`` (mean of ``pred - ref``), ``sd`` (sample sd of the
        differences, ``nan`` with fewer than two pairs), ``lower``/``upper`` (bias ∓
        :data:`LOA_Z` sd) and ``mean_ref`` (mean of the scorer's values).
    """
    p = np.array([math.nan if x is None else float(x) for x in pred], dtype=float)
    r = np.array([math.nan if x is None else float(x) for x in ref], dtype=float)
    if p.shape != r.shape:
        raise ValueError(f"limits_of_agreement: {p.size} stager values but {r.size} scorer "
                         "values; expected one pair per recording")
    keep = np.isfinite(p) & np.isfinite(r)
    d = p[keep] - r[keep]
    bias = float(d.mean()) if d.size else math.nan
    sd = float(d.std(ddof=1)) if d.size > 1 else math.nan
    return {"n": int(d.size), "bias": bias, "sd": sd, "lower": bias - LOA_Z * sd,
            "upper": bias + LOA_Z * sd,
            "mean_ref": float(r[keep].mean()) if d.size else math.nan}


def distribution(values) -> dict[str, float]:
    """Spread of per-subject (or per-fold) scores: ``n``, ``mean``, ``sd`` (sample),
    ``min``, ``p10`` (10th percentile, linear interpolation), ``worst_decile_mean`` (mean
    of the ``ceil(n / 10)`` lowest values), ``median`` and ``max``; ``nan`` values are
    left out."""
    v = np.asarray([math.nan if x is None else float(x) for x in values], dtype=float)
    v = np.sort(v[np.isfinite(v)])
    if v.size == 0:
        return {"n": 0, **{k: math.nan for k in ("mean", "sd", "min", "p10",
                                                 "worst_decile_mean", "median", "max")}}
    return {"n": int(v.size), "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)) if v.size > 1 else math.nan,
            "min": float(v[0]), "p10": float(np.percentile(v, 10)),
            "worst_decile_mean": float(v[: math.ceil(v.size / 10)].mean()),
            "median": float(np.median(v)), "max": float(v[-1])}


def _pooled(keys: Sequence[str], y_true: Mapping[str, Any], y_pred: Mapping[str, Any],
            n_classes: int) -> dict[str, Any]:
    """accuracy / macro-F1 / kappa of the nights ``keys`` pooled (``nan`` if none scored)."""
    t = np.concatenate([_codes(y_true[k], f"y_true[{k!r}]") for k in keys])
    p = np.concatenate([_codes(y_pred[k], f"y_pred[{k!r}]") for k in keys])
    n = int(((t >= 0) & (p >= 0)).sum())
    out: dict[str, Any] = {"n_nights": len(keys), "n_epochs": n}
    if n == 0:
        return out | {m: math.nan for m in ROBUSTNESS_METRICS}
    r = evaluate(t, p, n_classes=n_classes)
    return out | {m: r[m] for m in ROBUSTNESS_METRICS}


def robustness(y_true_by_night: Mapping[str, Any], y_pred_by_night: Mapping[str, Any],
               subject_of: Mapping[str, str], night_number_of: Mapping[str, int] | None = None,
               fold_of: Mapping[str, str] | None = None, n_classes: int = 5,
               ) -> dict[str, Any]:
    """Agreement across people: per subject, per recording night and per fold.

    Epochs count by the rule of :func:`evaluate` (a negative true or predicted code is
    unscored and left out).

    Parameters
    ----------
    y_true_by_night, y_pred_by_night : mapping night id -> array of int
        True and predicted stage codes of each test night (same keys, same lengths).
    subject_of : mapping night id -> str
        Subject of each night.
    night_number_of : mapping night id -> int, optional
        Recording night of each night within its subject (e.g. 1 or 2 in Sleep-EDF).
    fold_of : mapping night id -> str, optional
        Cross-validation fold whose model predicted each night.
    n_classes : int, default 5
        Number of classes.

    Returns
    -------
    dict
        ``pooled`` (accuracy, macro_f1, kappa, n_nights, n_epochs over all nights);
        ``per_subject`` (list of ``{subject, n_nights, n_epochs, accuracy, macro_f1,
        kappa}``, each subject's nights pooled, worst accuracy first);
        ``subject_distribution`` (``{metric: distribution(...)}``, see
        :func:`distribution`: mean, sd, min, p10, worst_decile_mean, median, max over
        subjects); ``worst_subjects`` (the ``ceil(n / 10)`` subjects of lowest
        accuracy); with ``night_number_of``: ``by_night_number`` (``{number: pooled
        metrics and n_subjects}``); with ``fold_of``: ``per_fold`` (list like
        ``per_subject`` with ``fold``, in fold order), ``fold_distribution`` and
        ``worst_folds`` (names, lowest accuracy first).

    Raises
    ------
    ValueError
        If the night ids of the mappings differ, or a night's arrays differ in length.
    """
    nights = list(y_true_by_night)
    if not nights:
        raise ValueError("robustness() needs at least one night")
    for what, other in (("y_pred_by_night", y_pred_by_night), ("subject_of", subject_of),
                        ("night_number_of", night_number_of), ("fold_of", fold_of)):
        if other is None:
            continue
        missing = [k for k in nights if k not in other]
        if missing:
            raise ValueError(f"{what} has no entry for night(s) {missing[:5]}")
    extra = [k for k in y_pred_by_night if k not in y_true_by_night]
    if extra:
        raise ValueError(f"y_pred_by_night has night(s) {extra[:5]} not in y_true_by_night")
    for k in nights:
        nt, npred = np.asarray(y_true_by_night[k]).size, np.asarray(y_pred_by_night[k]).size
        if nt != npred:
            raise ValueError(f"night {k!r}: {nt} true labels but {npred} predictions")

    def grouped(key_of: Mapping[str, Any]) -> dict[Any, list[str]]:
        out: dict[Any, list[str]] = {}
        for k in nights:
            out.setdefault(key_of[k], []).append(k)
        return out

    def pooled(keys: Sequence[str]) -> dict[str, Any]:
        return _pooled(keys, y_true_by_night, y_pred_by_night, n_classes)

    def by_accuracy(row: Mapping[str, Any]) -> float:
        return row["accuracy"] if np.isfinite(row["accuracy"]) else math.inf

    per_subject = sorted(({"subject": str(s), **pooled(ks)}
                          for s, ks in sorted(grouped(subject_of).items())), key=by_accuracy)
    res: dict[str, Any] = {
        "pooled": pooled(nights),
        "per_subject": per_subject,
        "subject_distribution": {m: distribution(r[m] for r in per_subject)
                                 for m in ROBUSTNESS_METRICS},
    }
    n_worst = math.ceil(sum(np.isfinite(r["accuracy"]) for r in per_subject) / 10)
    res["worst_subjects"] = [r["subject"] for r in per_subject[:n_worst]]
    if night_number_of is not None:
        res["by_night_number"] = {
            int(num): {**pooled(ks), "n_subjects": len({subject_of[k] for k in ks})}
            for num, ks in sorted(grouped(night_number_of).items())}
    if fold_of is not None:
        per_fold = [{"fold": str(f), **pooled(ks)} for f, ks in grouped(fold_of).items()]
        res["per_fold"] = per_fold
        res["fold_distribution"] = {m: distribution(r[m] for r in per_fold)
                                    for m in ROBUSTNESS_METRICS}
        res["worst_folds"] = [r["fold"] for r in sorted(per_fold, key=by_accuracy)]
    return res


# ------------------------------------------------------------------ tables
def _value(result: Mapping[str, Any], key: str, cls: str | None = None):
    """(mean, sd) of a metric from an evaluate() or aggregate() result."""
    v = result.get(key)
    if cls is not None:
        v = None if not isinstance(v, Mapping) else v.get(cls)
    if isinstance(v, Mapping):
        return v.get("mean"), v.get("sd")
    return v, None


def _fmt(mean, sd, scale: float, digits: int) -> str:
    if mean is None or not np.isfinite(mean):
        return "—"
    s = f"{mean * scale:.{digits}f}"
    if sd is not None and np.isfinite(sd):
        s += f" ± {sd * scale:.{digits}f}"
    return s


#: Default columns of :func:`comparison_table`: (header, key, scale, digits).
DEFAULT_COLUMNS: tuple[tuple[str, str, float, int], ...] = (
    ("Accuracy (%)", "accuracy", 100.0, 1),
    ("Sensitivity", "macro_recall", 1.0, 3),
    ("Specificity", "macro_specificity", 1.0, 3),
    ("MF1", "macro_f1", 1.0, 3),
    ("κ", "kappa", 1.0, 3),
)


def comparison_table(results: Mapping[str, Mapping[str, Any]],
                     columns: Sequence[tuple[str, str, float, int]] | None = None,
                     per_class: bool = True, times: bool = True,
                     model_header: str = "Model") -> str:
    """Markdown table comparing several evaluated models.

    Parameters
    ----------
    results : mapping name -> result
        Each value is an :func:`evaluate` result, an :func:`aggregate` result (shown as
        ``mean ± sd``) or an :func:`evaluate_recordings` result (its ``pooled`` part).
    columns : sequence of (header, key, scale, digits), optional
        Scalar columns; default :data:`DEFAULT_COLUMNS` (accuracy in %, macro
        sensitivity, macro specificity, MF1, Cohen's kappa).
    per_class : bool
        Add one per-class F1 column per class (union of the results' classes).
    times : bool
        Add training time and inference time per night (seconds), as in MSMAE-CNN's
        Table 1.
    model_header : str
        Header of the first column.

    Returns
    -------
    str
        A GitHub-flavoured markdown table (``—`` where a value is unknown).
    """
    if not results:
        raise ValueError("comparison_table() needs at least one result")
    res = {name: (r["pooled"] if "pooled" in r and "mean" in r else r)
           for name, r in results.items()}
    cols = list(columns or DEFAULT_COLUMNS)
    class_names: list[str] = []
    if per_class:
        for r in res.values():
            for n in r.get("labels", []):
                if n not in class_names:
                    class_names.append(n)
    header = [model_header] + [c[0] for c in cols] + [f"F1 {n}" for n in class_names]
    if times:
        header += ["Train time (s)", "Inference (s/night)"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for name, r in res.items():
        row = [str(name)]
        row += [_fmt(*_value(r, key), scale, digits) for _, key, scale, digits in cols]
        row += [_fmt(*_value(r, "per_class_f1", n), 1.0, 3) for n in class_names]
        if times:
            row += [_fmt(*_value(r, "train_time_s"), 1.0, 1),
                    _fmt(*_value(r, "inference_time_s_per_night"), 1.0, 2)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------ hypnograms
def _common_span(pred: Hypnogram, ref: Hypnogram, max_overhang_epochs: int,
                 tol_sec: float) -> tuple[slice, slice]:
    if not np.isclose(pred.epoch_sec, ref.epoch_sec):
        raise ValueError(f"epoch lengths differ: prediction {pred.epoch_sec:g} s, reference "
                         f"{ref.epoch_sec:g} s; resample one of them first")
    ep = ref.epoch_sec
    shift = (pred.onset_sec - ref.onset_sec) / ep
    k = int(round(shift))
    if abs(shift - k) * ep > tol_sec:
        raise ValueError(
            f"epoch grids differ: prediction epochs start at {pred.onset_sec:g} s, reference "
            f"epochs at {ref.onset_sec:g} s, an offset of {(shift - k) * ep:+.3g} s from "
            f"the {ep:g}-s grid (at most {tol_sec:g} s allowed)")
    # k > 0: prediction starts k epochs after the reference
    r0, p0 = max(0, k), max(0, -k)
    n = min(ref.n_epochs - r0, pred.n_epochs - p0)
    if n <= 0:
        raise ValueError(f"the hypnograms do not overlap in time (reference "
                         f"{ref.onset_sec:g}-{ref.onset_sec + ref.duration_sec:g} s, prediction "
                         f"{pred.onset_sec:g}-{pred.onset_sec + pred.duration_sec:g} s)")
    # a scoring often covers less of the recording than the prediction (it starts late, ends
    # early): only reference epochs scored outside the prediction tell of another night
    outside = np.concatenate([ref.codes[:r0], ref.codes[r0 + n:]])
    n_scored = int((outside >= 0).sum())
    if n_scored > max_overhang_epochs:
        raise ValueError(
            f"the reference has {n_scored} scored epochs outside the time span of the "
            f"prediction (at most {max_overhang_epochs} allowed): prediction "
            f"{pred.n_epochs} epochs from {pred.onset_sec:g} s, reference {ref.n_epochs} "
            f"epochs from {ref.onset_sec:g} s - are these the same night?")
    return slice(p0, p0 + n), slice(r0, r0 + n)


def _coverage(pred: Hypnogram, ps: slice, r: Hypnogram) -> dict[str, Any]:
    """How much of the prediction the reference covers: the shared span (s), its length
    and the prediction's (min), and the prediction's scored epochs outside it."""
    outside = np.concatenate([pred.codes[:ps.start], pred.codes[ps.stop:]])
    return {"start_sec": float(r.onset_sec), "end_sec": float(r.onset_sec + r.duration_sec),
            "covered_min": r.duration_sec / 60.0, "prediction_min": pred.duration_sec / 60.0,
            "n_pred_scored_outside": int((outside >= 0).sum())}


def compare_hypnograms(pred: Hypnogram, ref: Hypnogram, lights_off: float | None = None,
                       lights_on: float | None = None, max_overhang_epochs: int = 10,
                       tol_sec: float = 1.0, max_start_offset_sec: float | None = 60.0,
                       notices: Notices | None = None) -> dict[str, Any]:
    """Agreement between a predicted and a reference hypnogram of the same night.

    Pairing check: when both carry a header start time (``start_time``) and the two
    differ by more than ``max_start_offset_sec`` (60 s; None: no limit), a
    ``ValueError`` giving both times is raised -- the reference is probably of another
    night, even if it has the same length. Within the limit, the reference's epochs
    are placed on the prediction's clock (its onsets moved by the start difference, as
    :func:`hypnoscope.io.recordings.place_hypnogram` does). A hypnogram without a start
    time (TSV, text) is compared by its onsets alone.

    Alignment rule: both must have the same epoch length and epoch grids that differ
    by a whole number of epochs (within ``tol_sec``). They are compared over the time
    span they share. A reference that covers only part of the prediction (a scoring that
    starts after the recording or ends before it) is compared over that part, and an
    info notice ``reference-partial`` says how much it covers; but the reference may have
    at most ``max_overhang_epochs`` *scored* epochs outside the prediction (unscored
    padding, such as Sleep-EDF's trailing ``?``, is fine), otherwise a ``ValueError`` is
    raised: a reference longer than the recording, or one that starts after it ends, is
    of another night. A 3-class and a 5-class hypnogram are compared in the 3-class
    view.

    Parameters
    ----------
    pred, ref : Hypnogram
        Prediction (may carry probabilities) and reference (e.g. the scorer's).
    lights_off, lights_on : float, optional
        Time in bed in seconds from the recording start, for both hypnograms. By default
        it spans the reference's first to last scored epoch within the shared span, so
        both statistics use the same time in bed.
    max_overhang_epochs, tol_sec
        See the alignment rule.
    max_start_offset_sec : float or None, default 60
        See the pairing check.
    notices : Notices, optional
        Where the ``reference-partial`` notice goes (default: a new list; it is logged).

    Returns
    -------
    dict
        ``epochs`` (:func:`evaluate`, in the common label set), ``epochs_3class`` (for
        5-class input), ``n_common_epochs``, ``offset_epochs`` (prediction onset minus
        reference onset, in epochs), ``coverage`` (``start_sec``/``end_sec`` of the span
        compared, ``covered_min``, ``prediction_min``, ``n_pred_scored_outside``: the
        prediction's scored epochs left out), ``start_offset_sec`` (reference start time minus
        prediction start time; None when one is unknown), ``lights_off``/``lights_on``
        (s) used,
        ``sleep_statistics`` ``{key: {"pred", "ref", "diff"}}`` with diff = pred - ref,
        and, when ``pred`` has probabilities, ``mean_confidence``,
        ``mean_confidence_correct`` and ``mean_confidence_wrong``.
    """
    from hypnoscope.evaluation.sleepstats import sleep_statistics

    start_offset = check_start_times(pred.start_time, ref.start_time, max_start_offset_sec,
                                     "prediction", "reference")
    if start_offset:  # the reference on the prediction's clock
        ref = ref.copy(onset_sec=ref.onset_sec + start_offset, start_time=pred.start_time)
    if pred.n_classes != ref.n_classes:
        pred, ref = pred.as_3class(), ref.as_3class()
    try:
        ps, rs = _common_span(pred, ref, max_overhang_epochs, tol_sec)
    except ValueError as exc:
        if not start_offset:
            raise
        raise ValueError(f"{exc} (the reference's epochs were moved by {start_offset:+g} s, "
                         "the difference of the header start times)") from None
    p, r = pred[ps], ref[rs]
    p = p.copy(onset_sec=r.onset_sec)  # exact same grid after the tolerance check
    coverage = _coverage(pred, ps, r)
    if coverage["n_pred_scored_outside"]:
        (Notices() if notices is None else notices).add(
            "reference-partial",
            f"the reference covers {coverage['start_sec']:g}-{coverage['end_sec']:g} s of the "
            f"prediction's {pred.onset_sec:g}-{pred.onset_sec + pred.duration_sec:g} s "
            f"({coverage['covered_min']:.1f} of {coverage['prediction_min']:.1f} min, "
            f"{100 * r.duration_sec / pred.duration_sec:.0f} %); agreement and statistics "
            f"are over that span only ({coverage['n_pred_scored_outside']} scored prediction "
            "epochs outside it are not compared)", severity="info")
    out: dict[str, Any] = {
        "n_common_epochs": r.n_epochs, "coverage": coverage, "start_offset_sec": start_offset,
        "offset_epochs": int(round((pred.onset_sec - ref.onset_sec) / ref.epoch_sec)),
        "epochs": evaluate(r.codes, p.codes, n_classes=r.n_classes),
    }
    if r.n_classes == 5:
        out["epochs_3class"] = evaluate_3class(r.codes, p.codes)
    scored = np.flatnonzero(r.codes >= 0)
    if lights_off is None:
        lights_off = float(r.onsets[scored[0]]) if scored.size else float(r.onset_sec)
    if lights_on is None:
        lights_on = (float(r.onsets[scored[-1]] + r.epoch_sec) if scored.size
                     else float(r.onset_sec + r.duration_sec))
    out["lights_off"], out["lights_on"] = lights_off, lights_on
    sp = sleep_statistics(p, lights_off, lights_on)
    sr = sleep_statistics(r, lights_off, lights_on)
    out["sleep_statistics"] = {k: {"pred": sp[k], "ref": sr[k], "diff": sp[k] - sr[k]}
                               for k in sr}
    if p.probabilities is not None:
        conf = p.probabilities.max(axis=1)
        both = (r.codes >= 0) & (p.codes >= 0)
        ok = both & (r.codes == p.codes)
        bad = both & (r.codes != p.codes)
        out["mean_confidence"] = float(conf.mean())
        out["mean_confidence_correct"] = float(conf[ok].mean()) if ok.any() else math.nan
        out["mean_confidence_wrong"] = float(conf[bad].mean()) if bad.any() else math.nan
    return out
