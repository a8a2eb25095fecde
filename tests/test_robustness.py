"""Robustness across people: per-subject / per-night / per-fold metrics and the
dissimilar-subject split."""

from __future__ import annotations

import numpy as np
import pytest

from hypnoscope.datasets import Night
from hypnoscope.evaluation.metrics import distribution, robustness
from hypnoscope.evaluation.splits import dissimilar_subject_split, subject_atypicality


def _night(n_correct: int, n: int = 10, unscored: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions with ``n_correct`` of ``n`` scored epochs right, plus
    ``unscored`` epochs (true code -1) that must not count."""
    y = np.arange(n) % 5
    p = y.copy()
    p[n_correct:] = (y[n_correct:] + 1) % 5
    return np.r_[y, -np.ones(unscored, int)], np.r_[p, np.zeros(unscored, int)]


def test_distribution_known_values():
    d = distribution([0.1 * k for k in range(1, 11)] + [float("nan")])
    assert d["n"] == 10
    assert d["min"] == pytest.approx(0.1) and d["max"] == pytest.approx(1.0)
    assert d["mean"] == pytest.approx(0.55)
    assert d["median"] == pytest.approx(0.55)
    assert d["p10"] == pytest.approx(0.19)  # linear interpolation between 0.1 and 0.2
    assert d["worst_decile_mean"] == pytest.approx(0.1)  # ceil(10 / 10) = 1 lowest
    assert d["sd"] == pytest.approx(np.std([0.1 * k for k in range(1, 11)], ddof=1))
    assert distribution([0.2, 0.4, 0.9])["worst_decile_mean"] == pytest.approx(0.2)


def test_robustness_per_subject_night_and_fold():
    # correct epochs (of 10 scored) per night, so every pooled accuracy is known
    yt, yp, subj, num, fold = {}, {}, {}, {}, {}
    correct = {"a": (10, 6), "b": (8, 8), "c": (2, 4)}  # (night 1, night 2) of 10 epochs
    for s, (c1, c2) in correct.items():
        for k, c in ((1, c1), (2, c2)):
            key = f"{s}__{k}"
            yt[key], yp[key] = _night(c, unscored=3)
            subj[key], num[key] = s, k
            fold[key] = "f1" if s in "ab" else "f2"
    res = robustness(yt, yp, subj, num, fold)
    accs = {r["subject"]: r["accuracy"] for r in res["per_subject"]}
    assert accs == pytest.approx({"a": 0.8, "b": 0.8, "c": 0.3})
    assert [r["subject"] for r in res["per_subject"]][0] == "c"  # worst first
    assert res["per_subject"][0]["n_epochs"] == 20  # unscored epochs left out
    assert res["worst_subjects"] == ["c"]
    d = res["subject_distribution"]["accuracy"]
    assert d["min"] == pytest.approx(0.3) and d["mean"] == pytest.approx(1.9 / 3)
    assert d["worst_decile_mean"] == pytest.approx(0.3)
    assert res["pooled"]["accuracy"] == pytest.approx(38 / 60)
    assert res["by_night_number"][1]["accuracy"] == pytest.approx(20 / 30)
    assert res["by_night_number"][2]["accuracy"] == pytest.approx(18 / 30)
    assert res["by_night_number"][1]["n_subjects"] == 3
    folds = {r["fold"]: r["accuracy"] for r in res["per_fold"]}
    assert folds == pytest.approx({"f1": 0.8, "f2": 0.3})
    assert res["worst_folds"] == ["f2", "f1"]
    assert res["fold_distribution"]["accuracy"]["sd"] == pytest.approx(
        np.std([0.8, 0.3], ddof=1))
    # perfect agreement on a night gives kappa 1
    one = robustness({"x": yt["a__1"]}, {"x": yp["a__1"]}, {"x": "a"})
    assert one["per_subject"][0]["kappa"] == pytest.approx(1.0)
    assert "by_night_number" not in one and "per_fold" not in one


def test_robustness_rejects_mismatched_input():
    y = np.zeros(5, int)
    with pytest.raises(ValueError, match="'n1': 5 true labels but 4 predictions"):
        robustness({"n1": y}, {"n1": y[:4]}, {"n1": "s"})
    with pytest.raises(ValueError, match=r"subject_of has no entry for night\(s\) \['n1'\]"):
        robustness({"n1": y}, {"n1": y}, {})


def _cohort(n_subjects: int = 12, shifted=("s03", "s08"), seed: int = 0) -> list[Night]:
    rng = np.random.default_rng(seed)
    nights = []
    for i in range(n_subjects):
        s = f"s{i:02d}"
        for k in (1, 2):
            X = rng.normal(0, 1, (60, 3, 4))
            if s in shifted:
                X[:, 0, :2] += 4.0  # a different "population" on a few features
            y = rng.integers(0, 5, 60)
            y[:5] = -1  # unscored epochs are on no side of the statistics
            X[:5] = 1e6  # ... so these wild values must not matter
            nights.append(Night(X=X, y=y, subject_id=s, night_id=f"{s}__{k}"))
    return nights


def test_dissimilar_split_picks_planted_outliers_and_keeps_subjects_whole():
    nights = _cohort()
    scores = subject_atypicality(nights)
    assert sorted(scores, key=scores.get)[-2:] in (["s03", "s08"], ["s08", "s03"])
    fold = dissimilar_subject_split(nights, test=2 / 12, val=0.1, seed=0)
    assert fold.test_subjects == ("s03", "s08")
    assert fold.name == "dissimilar subjects (2 of 12)" and not fold.leaky
    assert len(fold.val_subjects) == 1
    sides = [set(fold.train_subjects), set(fold.val_subjects), set(fold.test_subjects)]
    assert set().union(*sides) == {n.subject_id for n in nights}
    assert sum(len(s) for s in sides) == 12  # disjoint
    for idx, subj in ((fold.train, sides[0]), (fold.val, sides[1]), (fold.test, sides[2])):
        assert {nights[i].subject_id for i in idx} == subj
    assert sorted(np.r_[fold.train, fold.val, fold.test].tolist()) == list(range(24))
    # deterministic, and the test side does not depend on the seed
    again = dissimilar_subject_split(nights, test=2 / 12, val=0.1, seed=5)
    assert again.test_subjects == fold.test_subjects
    same = dissimilar_subject_split(nights, test=2 / 12, val=0.1, seed=0)
    assert same.to_dict() == fold.to_dict()
    assert np.array_equal(same.test, fold.test) and np.array_equal(same.train, fold.train)


@pytest.mark.parametrize(("kw", "msg"), [
    ({"test": 1.2}, r"test fraction must be in \(0, 1\), got 1.2"),
    ({"test": 0.0}, r"test fraction must be in \(0, 1\), got 0.0"),
    ({"val": -0.1}, r"val fraction must be in \[0, 1\), got -0.1"),
    ({"test": 0.99}, "12 subjects are too few for test=0.99"),
])
def test_dissimilar_split_bad_fractions_name_the_value(kw, msg):
    with pytest.raises(ValueError, match=msg):
        dissimilar_subject_split(_cohort(), **kw)


def test_atypicality_needs_two_subjects_and_scored_epochs():
    nights = _cohort(n_subjects=1)
    with pytest.raises(ValueError, match=r"at least 2 subjects.*\['s00'\]"):
        subject_atypicality(nights)
    nights = _cohort(n_subjects=2)
    nights[1].y[:] = -1
    with pytest.raises(ValueError, match="night s00__2 has no scored epoch"):
        subject_atypicality(nights)
