"""Tests of hypnoscope.models.ensemble: soft voting with weights chosen on validation
subjects only."""

from __future__ import annotations

import numpy as np
import pytest

from hypnoscope.models import load_model, make_model
from hypnoscope.models.base import StagingModel
from hypnoscope.models.ensemble import SoftVotingEnsemble, score_weights, simplex_grid
from test_feature_classifiers import toy_night


class Memoriser(StagingModel):
    """Perfect on the nights it was trained on, uniform elsewhere (an overfitted member)."""

    name = "memoriser"

    def fit(self, nights, val_nights=None):
        self.known = {n.night_id: n.y.copy() for n in nights}
        return self

    def predict_proba(self, night):
        p = np.full((night.n_epochs, 5), 0.2)
        if night.night_id in self.known:
            y = self.known[night.night_id]
            p[y >= 0] = np.eye(5)[y[y >= 0]] * 0.96 + 0.01
        return p


class Spy(StagingModel):
    """Wraps a member and records every night it is asked to predict."""

    def __init__(self, inner):
        super().__init__(n_classes=inner.n_classes)
        self.inner, self.name, self.seen = inner, inner.name, []

    def fit(self, nights, val_nights=None):
        self.inner.fit(nights, val_nights)
        return self

    def predict_proba(self, night):
        self.seen.append(night.night_id)
        return self.inner.predict_proba(night)


def test_simplex_grid_and_scores():
    g = simplex_grid(3, 0.25)
    assert len(g) == 15 and np.allclose(g.sum(1), 1) and (g >= 0).all()
    with pytest.raises(ValueError, match="divide 1"):
        simplex_grid(2, 0.3)
    p1 = np.array([[0.9, 0.1], [0.2, 0.8]])
    p2 = np.array([[0.5, 0.5], [0.5, 0.5]])
    y = np.array([0, 1])
    assert score_weights([p1, p2], y, np.array([1.0, 0.0]), "accuracy") == 1.0
    expected = -np.mean(np.log([0.7, 0.65]))
    assert score_weights([p1, p2], y, np.array([0.5, 0.5]), "log_loss") == \
        pytest.approx(expected)


def test_weights_are_chosen_on_validation_nights_only():
    train = [toy_night(s, subject=f"t{s}") for s in range(4)]
    val = [toy_night(10 + s, subject=f"v{s}") for s in range(2)]
    test = [toy_night(20, subject="x")]
    good = Spy(make_model("lightgbm", n_estimators=30, min_child_samples=5))
    memo = Spy(Memoriser())
    ens = SoftVotingEnsemble([memo, good], grid_step=0.1).fit(train, val)
    # on the training nights the memoriser is perfect; on validation subjects it is chance,
    # so weights chosen there go (almost) all to the model that generalises
    assert ens.weights[1] >= 0.9, ens.weights
    assert ens.validation["accuracy_members"][1] > 0.8
    assert ens.validation["accuracy_members"][0] < 0.4
    assert ens.metadata["validation_subjects"] == ["v0", "v1"]
    val_ids = {n.night_id for n in val}
    assert set(memo.seen) == val_ids and set(good.seen) == val_ids  # never train/test
    # had the weights been picked on training nights, the memoriser would have won
    cheat = SoftVotingEnsemble([Memoriser(), make_model("lightgbm", n_estimators=30,
                                                          min_child_samples=5)],
                               grid_step=0.1, refit=False)
    for m in cheat.members:
        m.fit(train)
    assert cheat.choose_weights(train)[0] >= 0.9
    proba = ens.predict_proba(test[0])
    np.testing.assert_allclose(proba.sum(1), 1.0)
    expected = sum(w * m.predict_proba(test[0]) for w, m in
                   zip(ens.weights, ens.members, strict=True))
    np.testing.assert_allclose(proba, expected)


def test_ensemble_carves_validation_subjects_and_round_trips(tmp_path):
    nights = [toy_night(s, subject=f"s{s}") for s in range(7)]
    ens = SoftVotingEnsemble([make_model("rf", n_estimators=10),
                              make_model("lightgbm", n_estimators=20, min_child_samples=5)],
                             val_fraction=0.3, grid_step=0.25).fit(nights)
    train_s = set(ens.metadata["training_data"]["subjects"])
    val_s = set(ens.metadata["validation_subjects"])
    assert len(val_s) == 2 and not train_s & val_s and len(train_s) == 5
    loaded = load_model(ens.save(tmp_path / "ens.joblib"))
    np.testing.assert_allclose(loaded.predict_proba(nights[0]),
                               ens.predict_proba(nights[0]))


def test_ensemble_rejects_bad_setups():
    a, b = make_model("rf"), make_model("lightgbm", n_classes=3)
    with pytest.raises(ValueError, match="at least 2 members"):
        SoftVotingEnsemble([a])
    with pytest.raises(ValueError, match="not 5-class"):
        SoftVotingEnsemble([a, b])
    with pytest.raises(ValueError, match="weights must be"):
        SoftVotingEnsemble([a, make_model("rf")], weights=[1, -1])
    nights = [toy_night(s, subject="same") for s in range(2)]
    with pytest.raises(ValueError, match="needs validation nights"):
        SoftVotingEnsemble([a, make_model("rf")]).fit(nights)
    fixed = SoftVotingEnsemble([make_model("rf", n_estimators=5),
                                make_model("rf", n_estimators=5, seed=1)], weights=[3, 1])
    fixed.fit(nights)
    np.testing.assert_allclose(fixed.weights, [0.75, 0.25])
