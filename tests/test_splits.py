"""Subject-wise splits and the (leaky) epoch-level stratified split."""

from __future__ import annotations

import numpy as np
import pytest

from hypnoscope.datasets import Night, load_feature_dir
from hypnoscope.evaluation.splits import (
    leave_one_subject_out,
    sleepedf20_folds,
    sleepedf_subject_number,
    stratified_epoch_split,
    subject_kfold,
    train_val_test_split,
    validation_split,
)


def _nights(n_subjects: int = 10, single: tuple[int, ...] = (3,), prefix: str = "S",
            n_epochs: int = 50, seed: int = 0) -> list[Night]:
    rng = np.random.default_rng(seed)
    out = []
    for s in range(n_subjects):
        for night in (1, 2):
            if night == 2 and s in single:
                continue
            y = rng.integers(0, 5, n_epochs)
            y[:3] = -1  # a few unscored epochs
            out.append(Night(X=rng.standard_normal((n_epochs, 4)).astype(np.float32), y=y,
                             subject_id=f"{prefix}{s:02d}", night_id=f"{prefix}{s:02d}{night}"))
    return out


def _check_fold(fold, nights) -> None:
    subj = np.array([n.subject_id for n in nights])
    sides = [set(subj[fold.train]), set(subj[fold.val]), set(subj[fold.test])]
    assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]
    # every night of a side's subjects is on that side; all items covered exactly once
    allidx = np.concatenate([fold.train, fold.val, fold.test])
    assert sorted(allidx.tolist()) == list(range(len(nights)))
    assert set(fold.test_subjects) == sides[2] and set(fold.train_subjects) == sides[0]
    assert fold.leaky is False


def test_subject_kfold_partitions_subjects():
    nights = _nights()
    folds = subject_kfold(nights, k=5, seed=1)
    assert len(folds) == 5
    tested = []
    for f in folds:
        _check_fold(f, nights)
        tested += list(f.test_subjects)
    assert sorted(tested) == sorted({n.subject_id for n in nights})  # each tested once
    # both nights of every subject travel together
    for f in folds:
        tr, _, te = f.select(nights)
        assert {n.subject_id for n in tr}.isdisjoint({n.subject_id for n in te})


def test_subject_kfold_deterministic_and_seeded():
    nights = _nights(n_subjects=12)
    a = [f.test_subjects for f in subject_kfold(nights, k=4, seed=3)]
    b = [f.test_subjects for f in subject_kfold(nights, k=4, seed=3)]
    c = [f.test_subjects for f in subject_kfold(nights, k=4, seed=4)]
    assert a == b
    assert a != c


def test_subject_kfold_with_validation_and_errors():
    nights = _nights()
    for f in subject_kfold(nights, k=5, seed=0, val=0.2):
        _check_fold(f, nights)
        assert len(f.val_subjects) == round(0.2 * 8)  # 8 training subjects per fold
    with pytest.raises(ValueError, match="between 2 and the number of subjects"):
        subject_kfold(nights, k=11)


def test_leave_one_subject_out():
    nights = _nights(n_subjects=4)
    folds = leave_one_subject_out(nights)
    assert [f.test_subjects for f in folds] == [("S00",), ("S01",), ("S02",), ("S03",)]
    for f in folds:
        _check_fold(f, nights)
        assert len(f.train_subjects) == 3


def test_splits_accept_subject_ids():
    ids = ["a", "a", "b", "c", "c", "d"]
    fold = train_val_test_split(ids, val=0.25, test=0.25, seed=0)
    assert len(fold.test_subjects) == 1 and len(fold.val_subjects) == 1
    got = sorted(np.concatenate([fold.train, fold.val, fold.test]).tolist())
    assert got == list(range(6))
    for side in (fold.train, fold.val, fold.test):
        # both entries of a subject on the same side
        subj = {ids[i] for i in side}
        assert all(ids[j] not in subj for other in (fold.train, fold.val, fold.test)
                   if other is not side for j in other)


def test_sleepedf20_folds_standard():
    nights = _nights(n_subjects=22, single=(13,), prefix="SC4")
    assert len(nights) == 43
    folds = sleepedf20_folds(nights)
    assert len(folds) == 20
    for i, f in enumerate(folds):
        assert f.test_subjects == (f"SC4{i:02d}",)
        assert len(f.train_subjects) == 19
        assert not {"SC420", "SC421"} & set(f.train_subjects + f.test_subjects)
        n_test_nights = len(f.test)
        assert n_test_nights == (1 if i == 13 else 2)
    # the 39 Sleep-EDF-20 nights are each tested exactly once
    assert sum(len(f.test) for f in folds) == 39
    with pytest.raises(ValueError, match=r"missing \[5\]"):
        sleepedf20_folds([n for n in nights if n.subject_id != "SC405"])
    assert len(sleepedf20_folds([n for n in nights if n.subject_id != "SC405"],
                                strict=False)) == 19
    assert sleepedf_subject_number("07") == 7 and sleepedf_subject_number("SC4071") == 7
    with pytest.raises(ValueError, match="subject number"):
        sleepedf_subject_number("patient-x")


def test_train_val_test_split_sizes_and_determinism():
    nights = _nights(n_subjects=20)
    f1 = train_val_test_split(nights, val=0.1, test=0.2, seed=7)
    f2 = train_val_test_split(nights, val=0.1, test=0.2, seed=7)
    f3 = train_val_test_split(nights, val=0.1, test=0.2, seed=8)
    _check_fold(f1, nights)
    assert (len(f1.train_subjects), len(f1.val_subjects), len(f1.test_subjects)) == (14, 2, 4)
    assert f1.to_dict() == f2.to_dict()
    assert f1.test_subjects != f3.test_subjects
    with pytest.raises(ValueError, match="too few"):
        train_val_test_split(_nights(n_subjects=2), val=0.1, test=0.2)
    with pytest.raises(ValueError, match="val \\+ test"):
        train_val_test_split(nights, val=0.5, test=0.5)


def test_validation_split_rule():
    nights = _nights(n_subjects=10)  # 19 nights, subject S03 has one night
    train, val = validation_split(nights, 0.15, seed=0)
    val_s = {n.subject_id for n in val}
    assert len(val_s) == 2  # round(0.15 * 10)
    assert val_s.isdisjoint({n.subject_id for n in train})
    assert len(train) + len(val) == len(nights)
    # input order kept on each side; every night of a validation subject is in val
    assert [n.night_id for n in val] == [n.night_id for n in nights if n.subject_id in val_s]
    # the validation subjects of train_val_test_split(val=fraction, test=0)
    fold = train_val_test_split(nights, val=0.15, test=0.0, seed=0)
    assert set(fold.val_subjects) == val_s
    assert validation_split(nights, 0.15, seed=0) == (train, val)
    assert {n.subject_id for n in validation_split(nights, 0.15, seed=1)[1]} != val_s
    # at least one validation subject, at least one training subject
    assert len({n.subject_id for n in validation_split(nights, 0.01)[1]}) == 1
    tr, va = validation_split(_nights(n_subjects=3), 0.9)
    assert len({n.subject_id for n in tr}) == 1 and len({n.subject_id for n in va}) == 2
    tr, va = validation_split(["a", "a", "b"], 0.15)
    assert sorted(tr + va) == ["a", "a", "b"] and len(set(va)) == 1 and set(va) != set(tr)


def test_validation_split_none_and_errors():
    nights = _nights(n_subjects=4)
    assert validation_split(nights, 0.0) == (nights, [])
    one = [n for n in nights if n.subject_id == "S00"]
    assert validation_split(one, 0.5) == (one, [])
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=f"in \\[0, 1\\), got {bad}"):
            validation_split(nights, bad)
    with pytest.raises(ValueError, match="empty"):
        validation_split([], 0.15)


def test_stratified_epoch_split_is_flagged_leaky(caplog):
    nights = _nights(n_subjects=5)
    with caplog.at_level("WARNING"):
        sp = stratified_epoch_split(nights, test=0.2, seed=0)
    assert sp.leaky is True and "leaky" in sp.note and "leaky" in caplog.text
    assert sp.to_dict()["leaky"] is True
    y_all = np.concatenate([n.y for n in nights])
    tr = np.concatenate(sp.train)
    te = np.concatenate(sp.test)
    assert not (tr & te).any()
    assert np.array_equal(tr | te, y_all >= 0)  # every scored epoch, no unscored one
    assert abs(te.sum() / (y_all >= 0).sum() - 0.2) < 0.01
    for c in range(5):  # stratified: per-class test fraction ~ 20 %
        frac = te[y_all == c].sum() / (y_all == c).sum()
        assert abs(frac - 0.2) < 0.03
    # leaky by construction: epochs are drawn regardless of the night, so every night
    # (47 scored epochs, 20 % drawn for test: all on one side has probability < 1e-4)
    # has epochs on both sides, and so every subject is in train and test
    both = [n.night_id for n, a, b in zip(nights, sp.train, sp.test, strict=True)
            if a.any() and b.any()]
    assert both == [n.night_id for n in nights]
    assert (sp.to_dict()["n_train_epochs"], sp.to_dict()["n_test_epochs"]) == (tr.sum(),
                                                                              te.sum())
    Xtr, ytr, Xte, yte = sp.arrays(nights)
    assert Xtr.shape == (tr.sum(), 4) and len(yte) == te.sum() and (ytr >= 0).all()
    again = stratified_epoch_split(nights, test=0.2, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(sp.test, again.test, strict=True))


def test_kfold_on_real_bandpower_subjects(shared_data):
    nights = load_feature_dir(shared_data / "sleepedf_bandpower")
    folds = subject_kfold(nights, k=5, seed=0)
    tested = []
    for f in folds:
        _check_fold(f, nights)
        tested += f.test_subjects
    assert len(tested) == len({n.subject_id for n in nights}) == 59
    # the standard Sleep-EDF-20 folds on the real set: 20 folds, its 39 nights tested once
    folds20 = sleepedf20_folds(nights)
    assert len(folds20) == 20 and sum(len(f.test) for f in folds20) == 39
    assert folds20[13].test_subjects == ("13",) and len(folds20[13].test) == 1
    for f in folds20:
        _check_fold_partial(f, nights)


def _check_fold_partial(fold, nights) -> None:
    """Like _check_fold, for splits that leave some items (other subjects) out."""
    subj = np.array([n.subject_id for n in nights])
    sides = [set(subj[fold.train]), set(subj[fold.val]), set(subj[fold.test])]
    assert not sides[0] & sides[2] and not sides[1] & sides[2] and not sides[0] & sides[1]
    for side, idx in zip(sides, (fold.train, fold.val, fold.test), strict=True):
        assert sorted(idx.tolist()) == sorted(np.flatnonzero(np.isin(subj, list(side))))
