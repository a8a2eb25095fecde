"""Subject-wise cross-validation of a staging model, resumable from a per-fold cache.

:func:`cross_validate` trains a fresh model on each subject-wise fold's training nights
(folds from :mod:`hypnoscope.evaluation.splits`, :func:`~hypnoscope.evaluation.splits.
subject_kfold` by default) and predicts the fold's test nights: every night is predicted
by a model that did not see its subject (out-of-fold, OOF). With ``cache_dir`` each
finished fold's test labels and probabilities are written there atomically
(:func:`hypnoscope.utils.files.atomic_path`), so an interrupted run resumes at the first fold
not done without refitting the others.

The model factory is any callable taking the :class:`~hypnoscope.evaluation.splits.Fold`
and returning an object with ``fit(nights[, val_nights])`` and ``predict_proba(night) ->
(n_epochs, n_classes)`` (every :class:`~hypnoscope.models.base.StagingModel`); this
module imports no model.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.evaluation.splits import Fold

#: Version of the cache records; part of every cache file name.
CACHE_VERSION = 1
#: The per-fold scores of :func:`default_score`.
SCORE_KEYS = ("accuracy", "macro_f1", "kappa")


@dataclass
class FoldRecord:
    """One fold's out-of-fold result (as computed or as read back from the cache).

    Attributes
    ----------
    fold : Fold
        The split.
    y : ndarray of int
        True codes of the fold's test nights, concatenated in ``fold.test`` order.
    proba : ndarray (n_epochs, n_classes)
        Their predicted probabilities, in ``proba_dtype``.
    lengths : ndarray of int
        Epochs per test night (to cut ``y``/``proba`` back into nights).
    train_s, infer_s : float
        Fit time, and prediction time per test night, in seconds (of the run that
        computed the fold).
    scores : dict
        ``score(y, proba)`` of the fold.
    cached : bool
        True if read from the cache.
    """

    fold: Fold
    y: np.ndarray
    proba: np.ndarray
    lengths: np.ndarray
    train_s: float
    infer_s: float
    scores: dict[str, Any]
    cached: bool = False

    def nights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(y, proba)`` of each test night, in ``fold.test`` order."""
        bounds = np.cumsum(np.r_[0, self.lengths])
        return [(self.y[a:b], self.proba[a:b]) for a, b in zip(bounds[:-1], bounds[1:],
                                                                 strict=True)]


@dataclass
class CrossValidation:
    """What :func:`cross_validate` returns.

    Attributes
    ----------
    records : list of FoldRecord
        One per fold run, in fold order.
    proba : list of (ndarray or None)
        Out-of-fold probabilities of every night of the input list, in its order (None
        for a night in no fold that was run).
    """

    records: list[FoldRecord]
    proba: list[np.ndarray | None]

    @property
    def fold_scores(self) -> list[dict[str, Any]]:
        """The scores of each fold run (fold order)."""
        return [r.scores for r in self.records]

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """``(y, proba)`` of every test epoch of the folds run, concatenated in fold
        order."""
        if not self.records:
            raise ValueError("no fold was run")
        return (np.concatenate([r.y for r in self.records]),
                np.concatenate([r.proba for r in self.records]))


def default_score(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and Cohen's kappa of the arg-max of ``proba`` against ``y``
    (:func:`hypnoscope.evaluation.metrics.evaluate`, ``n_classes = proba.shape[1]``)."""
    from hypnoscope.evaluation.metrics import evaluate

    res = evaluate(y, np.asarray(proba).argmax(axis=1), n_classes=np.shape(proba)[1])
    return {k: res[k] for k in SCORE_KEYS}


def fold_cache_path(cache_dir: str | Path, cache_key: str, fold: Fold) -> Path:
    """Cache file of ``fold`` under ``cache_key``: a readable name (fold name first, then
    the key) plus a hash of the key and the fold's subjects, so that a different model or
    split never reads it."""
    blob = json.dumps({"v": CACHE_VERSION, "key": cache_key,
                       "train": list(fold.train_subjects), "val": list(fold.val_subjects),
                       "test": list(fold.test_subjects)}, sort_keys=True)
    digest = hashlib.sha1(blob.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._=+-]+", "_", f"{fold.name}_{cache_key}".replace("/", "of"))
    return Path(cache_dir) / f"{name[:120]}_{digest}.npz"


def fit_fold(make_model: Callable[[Fold], Any], nights: Sequence[Any], fold: Fold,
             ) -> tuple[Any, list[Any], float]:
    """A fresh model fitted on the fold's training nights (with its validation nights, if
    any); returns ``(model, test nights, training seconds)``."""
    train, val, test = fold.select(nights)
    model = make_model(fold)
    t0 = time.perf_counter()
    if val:
        model.fit(train, val)
    else:
        model.fit(train)
    return model, test, time.perf_counter() - t0


def _run_fold(make_model: Callable[[Fold], Any], nights: Sequence[Any], fold: Fold,
              proba_dtype: Any) -> dict[str, np.ndarray]:
    """Fit a fresh model on the fold (:func:`fit_fold`), predict its test nights."""
    model, test, train_s = fit_fold(make_model, nights, fold)
    t0 = time.perf_counter()
    probas = [np.asarray(model.predict_proba(n)) for n in test]
    infer_s = (time.perf_counter() - t0) / max(len(test), 1)
    return {"y": np.concatenate([np.asarray(n.y) for n in test]),
            "p": np.concatenate(probas).astype(proba_dtype),
            "lengths": np.array([len(n.y) for n in test]),
            "night_ids": _night_ids(test),
            "train_s": np.array(train_s), "infer_s": np.array(infer_s)}


def _night_ids(nights: Sequence[Any]) -> np.ndarray:
    """The nights' ``night_id`` (their position where they have none)."""
    return np.array([str(getattr(n, "night_id", i)) for i, n in enumerate(nights)])


def _load_or_run(make_model: Callable[[Fold], Any], nights: Sequence[Any], fold: Fold,
                 path: Path | None, proba_dtype: Any) -> tuple[dict[str, np.ndarray], bool]:
    """The fold's record from the cache ``path`` if it is there and holds the fold's test
    nights in the same order, else computed (and written to ``path`` atomically)."""
    from hypnoscope.utils.files import atomic_path

    if path is not None and path.is_file():
        with np.load(path) as z:
            rec = {k: z[k] for k in z.files}
        if np.array_equal(rec.get("night_ids"), _night_ids([nights[i] for i in fold.test])):
            rec["p"] = rec["p"].astype(proba_dtype, copy=False)
            return rec, True
    rec = _run_fold(make_model, nights, fold, proba_dtype)
    if path is not None:
        with atomic_path(path) as tmp:
            np.savez_compressed(tmp, **rec)
    return rec, False


def cross_validate(nights: Sequence[Any], make_model: Callable[[Fold], Any], *, k: int = 5,
                   seed: int = 0, folds: Sequence[Fold] | None = None,
                   max_folds: int | None = None, cache_dir: str | Path | None = None,
                   cache_key: str = "model", proba_dtype: Any = np.float64,
                   score: Callable[[np.ndarray, np.ndarray], dict] | None = None,
                   on_fold: Callable[[FoldRecord], None] | None = None,
                   desc: str = "cross-validation") -> CrossValidation:
    """Subject-wise cross-validation: out-of-fold probabilities and per-fold scores.

    Parameters
    ----------
    nights : sequence of Night
        Nights with ``y`` and ``subject_id``.
    make_model : callable
        ``make_model(fold)`` returns a fresh, unfitted model with ``fit(nights)`` and
        ``predict_proba(night)``; called once per fold computed. A fold with validation
        nights (``fold.val``, e.g. ``subject_kfold(..., val=0.1)``) fits
        ``fit(train_nights, val_nights)`` (early stopping, checkpoint selection).
    k, seed : int
        ``subject_kfold(nights, k, seed)`` when ``folds`` is not given.
    folds : sequence of Fold, optional
        The splits (indices into ``nights``), e.g. from
        :func:`~hypnoscope.evaluation.splits.leave_one_subject_out`.
    max_folds : int, optional
        Run only the first ``max_folds`` folds.
    cache_dir : path, optional
        Keep each finished fold's record there (:func:`fold_cache_path`) and read it back
        instead of refitting.
    cache_key : str
        What was cross-validated (model name, options, data): a different key never
        reads another's cache.
    proba_dtype : dtype
        Probabilities are cast to it, stored and returned so, whether computed or read
        back (a resumed run gives the numbers of a fresh one).
    score : callable, optional
        ``score(y, proba) -> dict`` of each fold; default :func:`default_score`.
    on_fold : callable, optional
        Called with each :class:`FoldRecord` as soon as it is ready (e.g. to print it
        or re-render partial results).
    desc : str
        Label of the progress bar (:func:`hypnoscope.utils.runtime.progress`).

    Returns
    -------
    CrossValidation
        The per-fold records and the out-of-fold probabilities of every night.
    """
    from hypnoscope.evaluation.splits import subject_kfold
    from hypnoscope.utils.runtime import progress

    nights = list(nights)
    folds = list(folds) if folds is not None else subject_kfold(nights, k=k, seed=seed)
    if max_folds is not None:
        folds = folds[:max_folds]
    score = score or default_score
    records: list[FoldRecord] = []
    proba: list[np.ndarray | None] = [None] * len(nights)
    for fold in progress(folds, desc=desc, unit="fold"):
        path = None if cache_dir is None else fold_cache_path(cache_dir, cache_key, fold)
        rec, cached = _load_or_run(make_model, nights, fold, path, proba_dtype)
        record = FoldRecord(fold, rec["y"], rec["p"], rec["lengths"], float(rec["train_s"]),
                            float(rec["infer_s"]), score(rec["y"], rec["p"]), cached)
        for i, (_, p) in zip(fold.test, record.nights(), strict=True):
            proba[i] = p
        records.append(record)
        if on_fold is not None:
            on_fold(record)
    return CrossValidation(records, proba)


__all__ = ["CACHE_VERSION", "CrossValidation", "FoldRecord", "SCORE_KEYS", "cross_validate",
           "default_score", "fold_cache_path"]
