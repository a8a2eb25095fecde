"""Evaluation splits: subject-wise folds, validation subjects and the epoch-level split.

Subject-wise splits (:func:`subject_kfold`, :func:`leave_one_subject_out`,
:func:`sleepedf20_folds`, :func:`train_val_test_split`) take a list of
:class:`~hypnoscope.datasets.Night` (or one subject id per item) and return
:class:`Fold` objects holding *indices into that list*; every night of a subject is on
exactly one side, so no subject's data is seen in training and testing.

:func:`validation_split` holds out whole subjects for validation (early stopping,
checkpoint selection) from a list of training nights; it is the one rule every trainer
and the CLI use.

:func:`dissimilar_subject_split` holds out the subjects least like the rest by their
per-night feature statistics (:func:`subject_atypicality`), to mimic a new population.

:func:`stratified_epoch_split` is the epoch-level stratified 80/20 split of the MSMAE-CNN
paper. It mixes epochs of the same night (and subject) across training and test and is
therefore **subject-leaky**: its scores overestimate performance on new people. It is
offered only to reproduce that paper; its result carries ``leaky=True`` and any report of
its scores must say so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

LEAKY_NOTE = ("epoch-level stratified split (MSMAE-CNN paper): epochs of the same night and "
              "subject are on both sides - subject-leaky, scores overestimate performance on "
              "new subjects")


@dataclass(frozen=True)
class Fold:
    """One subject-wise split: indices into the list of nights given to the splitter.

    Attributes
    ----------
    train, val, test : ndarray of int
        Item indices (``val`` may be empty).
    train_subjects, val_subjects, test_subjects : tuple of str
        Subjects on each side (sorted).
    name : str
        Human-readable label (e.g. ``"fold 3/20"``).
    leaky : bool
        Always False for subject-wise folds.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_subjects: tuple[str, ...]
    val_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]
    name: str = ""
    leaky: bool = False

    def select(self, items: Sequence[Any]) -> tuple[list, list, list]:
        """Return ``(train_items, val_items, test_items)`` taken from ``items``."""
        return ([items[i] for i in self.train], [items[i] for i in self.val],
                [items[i] for i in self.test])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (subjects per side, ``leaky``)."""
        return {"name": self.name, "leaky": self.leaky,
                "train_subjects": list(self.train_subjects),
                "val_subjects": list(self.val_subjects),
                "test_subjects": list(self.test_subjects)}


@dataclass(frozen=True)
class EpochSplit:
    """An epoch-level split: boolean masks per night (``leaky`` is True).

    Attributes
    ----------
    train, test : list of ndarray of bool
        One mask per night, over its epochs; unscored epochs are on neither side.
    leaky : bool
        True: epochs of one subject are on both sides.
    note : str
        Warning text to show beside any score computed on this split.
    """

    train: list[np.ndarray]
    test: list[np.ndarray]
    leaky: bool = True
    note: str = LEAKY_NOTE
    seed: int = 0
    test_size: float = 0.2
    meta: dict[str, Any] = field(default_factory=dict)

    def arrays(self, nights: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                     np.ndarray]:
        """``(X_train, y_train, X_test, y_test)``: the selected epochs of ``nights``
        concatenated (the nights must be the ones the split was made from)."""
        if len(nights) != len(self.train):
            raise ValueError(f"split was made for {len(self.train)} nights, got {len(nights)}")
        out = []
        for masks in (self.train, self.test):
            out.append(np.concatenate([n.X[m] for n, m in zip(nights, masks, strict=True)]))
            out.append(np.concatenate([n.y[m] for n, m in zip(nights, masks, strict=True)]))
        return out[0], out[1], out[2], out[3]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, with ``leaky`` and the warning ``note``."""
        return {"leaky": self.leaky, "note": self.note, "seed": self.seed,
                "test_size": self.test_size,
                "n_train_epochs": int(sum(m.sum() for m in self.train)),
                "n_test_epochs": int(sum(m.sum() for m in self.test))}


def subjects_of(items: Sequence[Any]) -> np.ndarray:
    """Subject id (str) of each item: ``item.subject_id`` for nights, else ``str(item)``."""
    if len(items) == 0:
        raise ValueError("cannot split an empty list of nights")
    return np.array([str(getattr(it, "subject_id", it)) for it in items], dtype=object)


def _make_fold(groups: np.ndarray, train_s, val_s, test_s, name: str) -> Fold:
    def idx(subj) -> np.ndarray:
        return np.flatnonzero(np.isin(groups, list(subj))).astype(np.int64)

    return Fold(train=idx(train_s), val=idx(val_s), test=idx(test_s),
                train_subjects=tuple(sorted(train_s)), val_subjects=tuple(sorted(val_s)),
                test_subjects=tuple(sorted(test_s)), name=name)


def _with_val(groups: np.ndarray, train_s: list[str], test_s: list[str], val: float,
              seed: int, name: str) -> Fold:
    # callers pass ``seed + fold index``, so that folds do not share validation subjects
    train_s, val_s = validation_split(train_s, val, seed)
    return _make_fold(groups, train_s, val_s, test_s, name)


def subject_kfold(nights: Sequence[Any], k: int = 5, seed: int = 0, val: float = 0.0,
                  ) -> list[Fold]:
    """Subject-wise k-fold cross-validation.

    Subjects are shuffled with ``seed`` and dealt into ``k`` test groups by
    :class:`sklearn.model_selection.GroupKFold` (balancing the number of nights per
    fold); each subject is tested exactly once. With ``val > 0`` that fraction of each
    fold's training subjects is held out for validation (:func:`validation_split`).

    Raises
    ------
    ValueError
        If ``k < 2`` or there are fewer subjects than folds.
    """
    from sklearn.model_selection import GroupKFold

    groups = subjects_of(nights)
    uniq = sorted(set(groups))
    if k < 2 or k > len(uniq):
        raise ValueError(f"k must be between 2 and the number of subjects ({len(uniq)}), "
                         f"got {k}")
    gkf = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = []
    for i, (_, te) in enumerate(gkf.split(np.zeros(len(groups)), groups=groups)):
        test_s = sorted(set(groups[te]))
        train_s = [s for s in uniq if s not in set(test_s)]
        folds.append(_with_val(groups, train_s, test_s, val, seed + i,
                               f"fold {i + 1}/{k}"))
    return folds


def regroup_folds(folds: Sequence[Fold], items: Sequence[Any], *,
                  train_mask: Sequence[bool] | None = None) -> list[Fold]:
    """The same subject-wise folds over another list of the same subjects' items (e.g.
    several views of every night): each fold keeps its subjects on the same side.

    Parameters
    ----------
    folds : sequence of Fold
    items : sequence
        Items with a ``subject_id`` (see :func:`subjects_of`).
    train_mask : sequence of bool, optional
        Only these items may be trained on (e.g. one derivation's views); every item of a
        test or validation subject is still tested or validated.

    Raises
    ------
    ValueError
        If an item's subject is in none of the folds.
    """
    groups = subjects_of(items)
    known = set().union(*(set(f.train_subjects) | set(f.val_subjects) | set(f.test_subjects)
                          for f in folds)) if folds else set()
    unknown = sorted(set(groups) - known)
    if unknown:
        raise ValueError(f"subjects {unknown[:5]} of the items are in none of the folds")
    keep = None if train_mask is None else np.asarray(train_mask, dtype=bool)
    if keep is not None and keep.shape != (len(items),):
        raise ValueError(f"train_mask must have {len(items)} entries, got {keep.shape}")
    out = []
    for f in folds:
        g = _make_fold(groups, f.train_subjects, f.val_subjects, f.test_subjects, f.name)
        out.append(g if keep is None else replace(g, train=g.train[keep[g.train]]))
    return out


def leave_one_subject_out(nights: Sequence[Any], val: float = 0.0, seed: int = 0,
                          ) -> list[Fold]:
    """One fold per subject (sorted by subject id), that subject being the test set."""
    groups = subjects_of(nights)
    uniq = sorted(set(groups))
    if len(uniq) < 2:
        raise ValueError(f"leave-one-subject-out needs at least 2 subjects, got {uniq}")
    return [_with_val(groups, [u for u in uniq if u != s], [s], val, seed + i,
                      f"subject {s} ({i + 1}/{len(uniq)})") for i, s in enumerate(uniq)]


def sleepedf_subject_number(subject_id: str) -> int:
    """Sleep-EDF subject number from ``"07"``, ``"SC407"`` or ``"SC4071"``-style ids."""
    s = str(subject_id)
    m = re.match(r"^(?:SC4|ST7)(\d\d)", s) or re.fullmatch(r"0*(\d+)", s)
    if not m:
        raise ValueError(f"cannot read a Sleep-EDF subject number from subject id {s!r} "
                         "(expected e.g. '07' or 'SC407')")
    return int(m.group(1))


def sleepedf20_folds(nights: Sequence[Any], val: float = 0.0, seed: int = 0,
                     strict: bool = True) -> list[Fold]:
    """The standard 20-fold cross-validation of Sleep-EDF-20 (one subject per fold).

    Only items of sleep-cassette subjects 0-19 take part (others are on no side). Fold
    ``i`` tests subject ``i`` and trains on the other 19 (minus ``val`` of them for
    validation, if asked).

    Raises
    ------
    ValueError
        If ``strict`` and any of the 20 subjects is missing.
    """
    groups = subjects_of(nights)
    numbers = {g: sleepedf_subject_number(g) for g in set(groups)}
    if any(str(g).startswith("ST7") for g in numbers):
        raise ValueError("sleepedf20_folds needs sleep-cassette subjects, got telemetry ids")
    inside = sorted((g for g in numbers if numbers[g] < 20), key=numbers.get)
    present = {numbers[g] for g in inside}
    missing = sorted(set(range(20)) - present)
    if missing and strict:
        raise ValueError(f"Sleep-EDF-20 folds need subjects 0-19; missing {missing}")
    if len(inside) != len(present):
        raise ValueError("several subject ids map to the same Sleep-EDF subject number: "
                         f"{sorted(inside)}")
    return [_with_val(groups, [u for u in inside if u != s], [s], val, seed + i,
                      f"Sleep-EDF-20 fold {numbers[s] + 1}/20 (subject {numbers[s]})")
            for i, s in enumerate(inside)]


def _shuffled(subjects: list[str], seed: int) -> list[str]:
    """The sorted ``subjects`` in the seeded random order that subject-wise
    train/validation/test splits deal from."""
    return np.random.default_rng(seed).permutation(sorted(subjects)).tolist()


def validation_split(nights, fraction: float = 0.15, seed: int = 0) -> tuple[list, list]:
    """Hold out whole subjects of ``nights`` for validation.

    Rule: with ``fraction == 0`` or fewer than 2 subjects there is no validation set.
    Otherwise ``round(fraction * n_subjects)`` subjects, but at least one and at most
    ``n_subjects - 1``, are validation subjects, taken from the front of the seeded
    subject order of :func:`train_val_test_split` (so they are the validation subjects of
    ``train_val_test_split(nights, val=fraction, test=0, seed=seed)`` wherever that one
    is defined). Every night of a subject is on the same side.

    Parameters
    ----------
    nights : sequence of Night (or of subject ids)
        Training nights; the subject is ``item.subject_id`` (else ``str(item)``).
    fraction : float, default 0.15
        Fraction of subjects held out, in ``[0, 1)``.
    seed : int, default 0
        Seed of the subject order.

    Returns
    -------
    train_nights, val_nights : list
        The items of each side, in their input order (``val_nights`` may be empty).

    Raises
    ------
    ValueError
        If ``fraction`` is outside ``[0, 1)`` or ``nights`` is empty.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    groups = subjects_of(nights)
    uniq = sorted(set(groups))
    if fraction == 0 or len(uniq) < 2:
        return list(nights), []
    n_val = min(max(int(round(fraction * len(uniq))), 1), len(uniq) - 1)
    val_s = set(_shuffled(uniq, seed)[:n_val])
    is_val = [g in val_s for g in groups]
    return ([n for n, v in zip(nights, is_val, strict=True) if not v],
            [n for n, v in zip(nights, is_val, strict=True) if v])


def train_val_test_split(nights: Sequence[Any], val: float = 0.1, test: float = 0.2,
                         seed: int = 0) -> Fold:
    """Train/validation/test split by subject.

    ``round(test * n_subjects)`` subjects (at least one if ``test > 0``) go to test,
    then ``round(val * n_subjects)`` (at least one if ``val > 0``) to validation, the
    rest to training; the choice depends only on the subject set and ``seed``.

    Raises
    ------
    ValueError
        Fractions outside [0, 1) or no subject left for training.
    """
    groups = subjects_of(nights)
    uniq = sorted(set(groups))
    for what, frac in (("val", val), ("test", test)):
        if not 0 <= frac < 1:
            raise ValueError(f"{what} fraction must be in [0, 1), got {frac}")
    if val + test >= 1:
        raise ValueError(f"val + test must be < 1, got {val} + {test}")
    order = _shuffled(uniq, seed)
    n_test = max(int(round(test * len(uniq))), int(test > 0))
    n_val = max(int(round(val * len(uniq))), int(val > 0))
    if n_test + n_val >= len(uniq):
        raise ValueError(f"{len(uniq)} subjects are too few for val={val}, test={test} "
                         "with at least one training subject")
    test_s, val_s = order[:n_test], order[n_test:n_test + n_val]
    train_s = order[n_test + n_val:]
    return _make_fold(groups, train_s, val_s, test_s, f"train/val/test seed {seed}")


def stratified_epoch_split(nights: Sequence[Any], test: float = 0.2, seed: int = 0,
                           ) -> EpochSplit:
    """Epoch-level stratified train/test split (MSMAE-CNN paper, 80/20) - SUBJECT-LEAKY.

    All scored epochs of all nights are pooled and split with
    :func:`sklearn.model_selection.train_test_split` stratified by stage; unscored
    epochs are on neither side. Neighbouring epochs of one night land on both sides, so
    the scores are optimistic; the result has ``leaky=True`` and a ``note`` to print
    beside them. Use the subject-wise splits for any claim about new subjects.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test < 1:
        raise ValueError(f"test fraction must be in (0, 1), got {test}")
    if len(nights) == 0:
        raise ValueError("cannot split an empty list of nights")
    ys = [np.asarray(n.y) for n in nights]
    night_idx = np.concatenate([np.full(len(y), i) for i, y in enumerate(ys)])
    epoch_idx = np.concatenate([np.arange(len(y)) for y in ys])
    y_all = np.concatenate(ys)
    scored = np.flatnonzero(y_all >= 0)
    if scored.size < 2:
        raise ValueError("need at least two scored epochs for an epoch-level split")
    tr, te = train_test_split(scored, test_size=test, random_state=seed,
                              stratify=y_all[scored])
    train = [np.zeros(len(y), dtype=bool) for y in ys]
    tst = [np.zeros(len(y), dtype=bool) for y in ys]
    for sel, masks in ((tr, train), (te, tst)):
        for i, mask in enumerate(masks):
            mask[epoch_idx[sel][night_idx[sel] == i]] = True
    logger.warning("using the %s", LEAKY_NOTE)
    return EpochSplit(train=train, test=tst, seed=seed, test_size=test)


def _night_features(night: Any) -> np.ndarray:
    """Default per-epoch features of a night for :func:`subject_atypicality`: ``X``
    flattened to ``(n_epochs, n_features)``."""
    X = np.asarray(night.X, dtype=float)
    return X.reshape(len(X), -1)


def subject_atypicality(nights: Sequence[Any], features: Any = None) -> dict[str, float]:
    """How unlike the other subjects each subject is, by per-night feature statistics.

    Each night is summarised by the mean and the standard deviation of every feature
    over its scored epochs (``y >= 0``); a subject's profile is the average of its
    nights' summaries. Every profile column is robustly standardised across subjects
    (minus the median, over ``1.4826 * MAD``; the standard deviation where the MAD is 0;
    a constant column counts for nothing) and a subject's score is the root-mean-square
    of its standardised profile: its distance to the median subject. The robust scale is
    the spread of typical subjects, so a few subjects shifted on a few features stand out
    instead of inflating the scale they are measured by (a diagonal, outlier-resistant
    stand-in for the Mahalanobis distance, which ~60 subjects cannot estimate for
    dozens of columns).

    Parameters
    ----------
    nights : sequence of Night
        Nights with ``X``, ``y`` and ``subject_id``.
    features : callable, optional
        ``night -> (n_epochs, n_features)`` array; default ``night.X`` flattened.

    Returns
    -------
    dict
        Subject id -> score (higher: less typical), in sorted subject order.

    Raises
    ------
    ValueError
        Fewer than 2 subjects, a night without scored epochs, or nights whose feature
        counts differ.
    """
    groups = subjects_of(nights)
    uniq = sorted(set(groups))
    if len(uniq) < 2:
        raise ValueError(f"need at least 2 subjects to compare, got {uniq}")
    get = features or _night_features
    rows: dict[str, list[np.ndarray]] = {s: [] for s in uniq}
    width = None
    for night, subj in zip(nights, groups, strict=True):
        X = np.asarray(get(night), dtype=float)
        keep = np.asarray(night.y) >= 0
        if X.ndim != 2 or len(X) != len(keep):
            raise ValueError(f"night {getattr(night, 'night_id', '?')}: features of shape "
                             f"{X.shape} for {len(keep)} epochs; expected (n_epochs, "
                             "n_features)")
        if width is not None and X.shape[1] != width:
            raise ValueError(f"night {getattr(night, 'night_id', '?')} has {X.shape[1]} "
                             f"features, the nights before it {width}")
        width = X.shape[1]
        if not keep.any():
            raise ValueError(f"night {getattr(night, 'night_id', '?')} has no scored epoch")
        Xs = X[keep]
        rows[subj].append(np.concatenate([Xs.mean(axis=0), Xs.std(axis=0)]))
    P = np.array([np.mean(rows[s], axis=0) for s in uniq])
    med = np.median(P, axis=0)
    scale = 1.4826 * np.median(np.abs(P - med), axis=0)
    scale = np.where(scale > 0, scale, P.std(axis=0))
    Z = np.where(scale > 0, (P - med) / np.where(scale > 0, scale, 1.0), 0.0)
    score = np.sqrt((Z ** 2).mean(axis=1))
    return {s: float(v) for s, v in zip(uniq, score, strict=True)}


def dissimilar_subject_split(nights: Sequence[Any], test: float = 0.2, val: float = 0.1,
                             seed: int = 0, features: Any = None) -> Fold:
    """Hold out the subjects least like the rest, to mimic a new population.

    The ``round(test * n_subjects)`` subjects (at least one) with the highest
    :func:`subject_atypicality` score are the test subjects (ties: by subject id);
    ``val`` of the remaining subjects are held out for validation by
    :func:`validation_split` (seeded), the rest train. The choice of test subjects is
    deterministic (no randomness); every night of a subject is on one side.

    Parameters
    ----------
    nights : sequence of Night
        Nights with ``X``, ``y`` and ``subject_id``.
    test : float, default 0.2
        Fraction of subjects held out as the atypical test set, in ``(0, 1)``.
    val : float, default 0.1
        Fraction of the other subjects held out for validation, in ``[0, 1)``.
    seed : int, default 0
        Seed of the validation subjects.
    features : callable, optional
        Per-epoch features of a night (see :func:`subject_atypicality`).

    Returns
    -------
    Fold
        Named ``"dissimilar subjects (n of N)"``; ``leaky`` is False.

    Raises
    ------
    ValueError
        Fractions out of range, or no subject left for training.
    """
    if not 0 < test < 1:
        raise ValueError(f"test fraction must be in (0, 1), got {test}")
    if not 0 <= val < 1:
        raise ValueError(f"val fraction must be in [0, 1), got {val}")
    score = subject_atypicality(nights, features)
    uniq = sorted(score)
    n_test = max(int(round(test * len(uniq))), 1)
    if n_test >= len(uniq):
        raise ValueError(f"{len(uniq)} subjects are too few for test={test} with at least "
                         "one training subject")
    order = sorted(uniq, key=lambda s: (-score[s], s))
    test_s = order[:n_test]
    train_s, val_s = validation_split(order[n_test:], val, seed)
    groups = subjects_of(nights)
    return _make_fold(groups, train_s, val_s, test_s,
                      f"dissimilar subjects ({n_test} of {len(uniq)})")
