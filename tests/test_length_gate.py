"""The length-gated model: a whole-night model for nights, a stretch model for shorter
recordings (issue #25)."""

from __future__ import annotations

import numpy as np
import pytest

from hypnoscope.datasets import Night
from hypnoscope.evaluation.stretches import SHORT_MINUTES
from hypnoscope.models.base import StagingModel
from hypnoscope.models.length_gate import LengthGatedModel


class Fixed(StagingModel):
    """Predicts one stage everywhere."""

    def __init__(self, stage: int):
        super().__init__(stage=stage)
        self.stage, self.name, self.fitted = stage, f"fixed{stage}", 0

    def fit(self, nights, val_nights=None):
        self.fitted += 1
        return self

    def predict_proba(self, night, rows=None):
        p = np.eye(5)[np.full(len(night.y), self.stage)]
        return p if rows is None else p[rows]


def _night(n: int, seed: int = 0, subject: str = "s") -> Night:
    rng = np.random.default_rng(seed)
    y = np.resize([0, 1, 2, 2, 3, 2, 4], n)
    X = (rng.normal(size=(n, 3, 10)) + y[:, None, None] * 0.4).astype(np.float32)
    return Night(X=X, y=y, subject_id=f"{subject}{seed}", night_id=f"{subject}{seed}__1")


def test_the_recording_length_chooses_the_member():
    gate = LengthGatedModel(Fixed(2), Fixed(0))
    limit = int(SHORT_MINUTES * 2)  # epochs of 30 s in 4 h
    assert gate.predict(_night(limit - 1)).tolist() == [0] * (limit - 1)  # short
    assert gate.predict(_night(limit)).tolist() == [2] * limit  # a night
    assert gate.predict_proba(_night(20), rows=[3, 4]).shape == (2, 5)
    assert LengthGatedModel(Fixed(2), Fixed(0), minutes=5).predict(_night(10))[0] == 2
    gate.fit([_night(30)])
    assert gate.night.fitted == 1 and gate.short.fitted == 1


def test_registered_gate_trains_both_members_and_round_trips(tmp_path):
    pytest.importorskip("lightgbm")
    from hypnoscope.models import is_deep_model, load_model, make_model
    from hypnoscope.models.storage import PortableLightGBM, make_portable

    assert not is_deep_model("length-gated")
    gate = make_model("length-gated", night={"model": "lightgbm-context", "n_estimators": 5},
                      short={"model": "lightgbm-context", "n_estimators": 5, "shrink": 60,
                             "crops": {"per_night": 1}}, minutes=10.0)
    nights = [_night(300, seed=i) for i in range(4)]
    gate.fit(nights)
    assert gate.config["members"]["short"]["shrink"] == 60
    short, long_ = _night(15, seed=9), _night(300, seed=9)  # 7.5 min, 150 min
    np.testing.assert_array_equal(gate.predict_proba(short), gate.short.predict_proba(short))
    np.testing.assert_array_equal(gate.predict_proba(long_), gate.night.predict_proba(long_))
    make_portable(gate)
    assert all(isinstance(m.estimator_, PortableLightGBM) for m in gate.members_)
    again = load_model(gate.save(tmp_path / "gate.joblib"))
    np.testing.assert_allclose(again.predict_proba(short), gate.predict_proba(short))
    assert again.input_kind_ == "features" and again.epoch_shape_ == [3, 10]


def test_bad_members_are_refused():
    from hypnoscope.models import make_model

    gate = make_model("length-gated")  # the default members
    assert gate.short.config["shrink"] == "auto" and "shrink" not in gate.night.config
    with pytest.raises(ValueError, match="'model' name"):
        LengthGatedModel({"n_estimators": 5}, Fixed(0))
    with pytest.raises(ValueError, match="minutes"):
        LengthGatedModel(Fixed(1), Fixed(0), minutes=0)
    three = Fixed(1)
    three.n_classes = 3
    with pytest.raises(ValueError, match="3 classes"):
        LengthGatedModel(three, Fixed(0))


def test_default_members_are_the_shipped_defaults():
    """``make_model("length-gated")`` builds the members the shipped ``default`` was
    trained with (its card's options), so retraining it from code gives that model."""
    from hypnoscope.models.length_gate import DEFAULT_NIGHT, DEFAULT_SHORT
    from hypnoscope.models.storage import shipped_models

    card = shipped_models()["default"]
    assert card["architecture"] == "length-gated"
    assert card["options"] == {"night": DEFAULT_NIGHT, "short": DEFAULT_SHORT}
