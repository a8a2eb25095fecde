"""hypnoscope.evaluation.cross_validation.cross_validate: known answers."""

from __future__ import annotations

import numpy as np
import pytest

from hypnoscope.datasets import Night
from hypnoscope.evaluation.cross_validation import cross_validate, fold_cache_path
from hypnoscope.evaluation.splits import leave_one_subject_out, subject_kfold

N_SUBJECTS = 10


def _nights() -> list[Night]:
    """Two nights per subject; every epoch of subject ``i`` has feature ``i`` and stage
    ``i % 5``: a model can only learn a subject it has seen."""
    out = []
    for i in range(N_SUBJECTS):
        for night in (1, 2):
            n = 20 + 3 * i + night
            out.append(Night(X=np.full((n, 1), float(i)), y=np.full(n, i % 5),
                             subject_id=f"S{i:02d}", night_id=f"S{i:02d}__{night}"))
    return out


class Memoriser:
    """Looks the feature up among the training epochs; unseen: uniform probabilities."""

    fits = 0

    def __init__(self, fold=None) -> None:
        self.fold = fold

    def fit(self, nights):
        Memoriser.fits += 1
        self.table = {float(n.X[0, 0]): int(n.y[0]) for n in nights}
        return self

    def predict_proba(self, night):
        p = np.full((len(night.y), 5), 0.2)
        code = self.table.get(float(night.X[0, 0]))
        if code is not None:
            p[:] = np.eye(5)[code]
        return p


def test_subject_wise_folds_cannot_memorise_subjects():
    nights = _nights()
    cv = cross_validate(nights, Memoriser, k=5, seed=0)
    y, p = cv.pooled()
    # every subject is unseen when tested: uniform probabilities, arg-max W (code 0),
    # right only for the subjects whose stage is W (S00 and S05)
    assert (p == 0.2).all()
    expected = (sum(len(n.y) for n in nights if n.subject_id in ("S00", "S05"))
                / sum(len(n.y) for n in nights))
    assert np.mean(p.argmax(1) == y) == pytest.approx(expected)
    assert len(cv.records) == 5
    assert np.mean([s["accuracy"] for s in cv.fold_scores]) < 0.5
    # an epoch-level split would have seen every subject: the memoriser is then perfect
    assert (Memoriser().fit(nights).predict_proba(nights[3]).argmax(1) == nights[3].y).all()


def test_folds_are_subject_wise_deterministic_and_cover_every_night():
    nights = _nights()
    a = cross_validate(nights, Memoriser, k=5, seed=3)
    b = cross_validate(nights, Memoriser, k=5, seed=3)
    folds = subject_kfold(nights, k=5, seed=3)
    assert [r.fold.test_subjects for r in a.records] == [f.test_subjects for f in folds]
    for r in a.records:
        assert not set(r.fold.train_subjects) & set(r.fold.test_subjects)
        assert len(r.y) == sum(len(nights[i].y) for i in r.fold.test)
    tested = np.concatenate([r.fold.test for r in a.records])
    assert sorted(tested) == list(range(len(nights)))
    for pa, pb, n in zip(a.proba, b.proba, nights, strict=True):
        assert pa.shape == (len(n.y), 5)
        np.testing.assert_array_equal(pa, pb)
    # given folds are used as they are (leave one subject out: 10 folds)
    loso = cross_validate(nights, Memoriser, folds=leave_one_subject_out(nights))
    assert [r.fold.test_subjects for r in loso.records] == [(f"S{i:02d}",)
                                                             for i in range(N_SUBJECTS)]


def test_cache_resumes_without_refitting_finished_folds(tmp_path):
    nights = _nights()
    Memoriser.fits = 0
    first = cross_validate(nights, Memoriser, k=5, seed=0, max_folds=2, cache_dir=tmp_path,
                           cache_key="memo", proba_dtype=np.float32)
    assert Memoriser.fits == 2 and not any(r.cached for r in first.records)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert not list(tmp_path.glob("*.part*"))  # written atomically, no leftovers
    seen = []
    full = cross_validate(nights, Memoriser, k=5, seed=0, cache_dir=tmp_path,
                          cache_key="memo", proba_dtype=np.float32,
                          on_fold=lambda r: seen.append(r.fold.name))
    assert Memoriser.fits == 5  # only the 3 folds not done
    assert [r.cached for r in full.records] == [True, True, False, False, False]
    assert seen == [f.name for f in subject_kfold(nights, k=5, seed=0)]
    fresh = cross_validate(nights, Memoriser, k=5, seed=0, proba_dtype=np.float32)
    for a, b in zip(full.records, fresh.records, strict=True):
        assert a.proba.dtype == b.proba.dtype == np.float32
        np.testing.assert_array_equal(a.proba, b.proba)
        np.testing.assert_array_equal(a.y, b.y)
        assert a.scores == b.scores
    # the same subjects in another order of nights: the cached folds are not reused
    Memoriser.fits = 0
    cross_validate(nights[::-1], Memoriser, k=5, seed=0, max_folds=2, cache_dir=tmp_path,
                   cache_key="memo")
    assert Memoriser.fits == 2
    # another key (another model) never reads these files
    Memoriser.fits = 0
    cross_validate(nights, Memoriser, k=5, seed=0, max_folds=1, cache_dir=tmp_path,
                   cache_key="other")
    assert Memoriser.fits == 1
    fold = subject_kfold(nights, k=5, seed=0)[0]
    assert fold_cache_path(tmp_path, "memo", fold).is_file()
    assert fold_cache_path(tmp_path, "memo", fold) != fold_cache_path(tmp_path, "other", fold)


class WithValidation(Memoriser):
    """Records the nights given to fit (training and validation)."""

    seen: list = []

    def fit(self, nights, val_nights=None):
        WithValidation.seen.append((self.fold, nights, val_nights))
        return super().fit(nights)


def test_factory_gets_the_fold_and_fit_gets_its_validation_nights():
    nights = _nights()
    WithValidation.seen = []
    folds = subject_kfold(nights, k=5, seed=0, val=0.2)
    cross_validate(nights, WithValidation, folds=folds)
    assert all(s[0] is f for s, f in zip(WithValidation.seen, folds, strict=True))
    for fold, train, val in WithValidation.seen:
        assert {n.subject_id for n in train} == set(fold.train_subjects)
        assert {n.subject_id for n in val} == set(fold.val_subjects) != set()
    WithValidation.seen = []
    cross_validate(nights, WithValidation, k=5)  # no validation subjects: fit(train)
    assert all(val is None for _, _, val in WithValidation.seen)
