"""Tests of the feature-based staging models (SVM / RF / LightGBM, with/without context)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator

from hypnoscope.datasets import Night
from hypnoscope.models import MODEL_REGISTRY, load_model, make_model
from hypnoscope.models.feature_classifiers import (
    DEFAULT_CONTEXT,
    EpochStager,
    FeatureStagingModel,
    SubsampledSVC,
    build_estimator,
    hmm_smooth,
    make_feature_model,
    night_feature_matrix,
    resolve_class_weight,
    transition_matrix,
)
from hypnoscope.stages import UNSCORED, to_3class

FEATURE_MODELS = ["svm", "rf", "lightgbm", "svm-context", "rf-context", "lightgbm-context"]
FAST = {"svm": {"max_per_class": 150}, "rf": {"n_estimators": 15},
        "lightgbm": {"n_estimators": 20, "min_child_samples": 5}}
#: class means of a toy (3 channels x 4 features) layout, one row per stage
MEANS = np.array([[2.0, 0, 0, 1], [0.8, 0.8, 0, 0], [0, 1.6, 0.5, 0], [0, 0.5, 2, 0],
                  [1, 0, 0.5, 2]])


def toy_night(seed: int, n_epochs: int = 160, subject: str | None = None,
              noise: float = 0.6) -> Night:
    """A night of (n_epochs, 3, 4) features: stage runs + class-dependent means."""
    rng = np.random.default_rng(seed)
    runs = rng.integers(0, 5, size=n_epochs // 8)
    y = np.repeat(runs, 8)[:n_epochs]
    X = MEANS[y][:, None, :] + noise * rng.standard_normal((n_epochs, 3, 4))
    y = y.copy()
    y[:3] = UNSCORED
    return Night(X=X.astype(np.float32), y=y, subject_id=subject or f"s{seed}",
                 night_id=f"n{seed}", kind="features")


@pytest.fixture(scope="module")
def nights() -> list[Night]:
    return [toy_night(s) for s in range(6)]


def fast_model(name: str, **kw) -> FeatureStagingModel:
    return make_feature_model(name, **FAST[name.split("-")[0]], **kw)


@pytest.mark.parametrize("name", FEATURE_MODELS)
def test_models_learn_separable_stages_and_give_probabilities(nights, name):
    model = fast_model(name).fit(nights[:4])
    for night in nights[4:]:
        proba = model.predict_proba(night)
        assert proba.shape == (night.n_epochs, 5)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
        assert (proba >= 0).all()
        pred = model.predict(night)
        np.testing.assert_array_equal(pred, proba.argmax(1))
        acc = (pred[night.scored] == night.y[night.scored]).mean()
        assert acc > 0.8, f"{name}: accuracy {acc:.2f}"
    assert model.metadata["training_data"]["n_nights"] == 4
    n_in = 12
    assert model.metadata["n_features"] == (n_in * 10 if "context" in name else n_in)


@pytest.mark.parametrize("name", ["svm", "rf-context", "lightgbm"])
def test_three_class_models(nights, name):
    model = fast_model(name, n_classes=3).fit(nights[:4])
    night = nights[4]
    proba = model.predict_proba(night)
    assert proba.shape == (night.n_epochs, 3)
    y3 = to_3class(night.y)
    acc = (proba.argmax(1)[night.scored] == y3[night.scored]).mean()
    assert acc > 0.85
    assert model.class_names == ("W", "NREM", "R")


def test_models_pickle_and_save_load_round_trip(nights, tmp_path):
    model = fast_model("lightgbm-context").fit(nights[:3])
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(clone.predict_proba(nights[5]), model.predict_proba(nights[5]))
    path = model.save(tmp_path / "m.joblib")
    loaded = load_model(path)
    assert loaded.name == "lightgbm-context"
    np.testing.assert_allclose(loaded.predict_proba(nights[5]),
                               model.predict_proba(nights[5]))


def test_same_seed_same_model(nights):
    a = fast_model("rf", seed=3).fit(nights[:3]).predict_proba(nights[4])
    b = fast_model("rf", seed=3).fit(nights[:3]).predict_proba(nights[4])
    np.testing.assert_array_equal(a, b)


def test_context_is_computed_per_night(nights):
    """A night's context features do not depend on the other nights."""
    X1, names = night_feature_matrix(nights[0], DEFAULT_CONTEXT)
    X1b, _ = night_feature_matrix(nights[0], DEFAULT_CONTEXT)
    np.testing.assert_array_equal(X1, X1b)
    assert X1.shape == (nights[0].n_epochs, len(names))
    assert names[0] == "f0" and "f0|c5" in names and "f0|p10" in names and "f11|s11" in names


def test_signals_nights_use_the_feature_extractor():
    rng = np.random.default_rng(0)
    fs, n = 100.0, 3000
    t = np.arange(n) / fs
    y = np.tile([0, 2, 3, 4], 10)
    freq = {0: 10.0, 2: 13.0, 3: 1.5, 4: 6.0}
    X = np.stack([np.stack([30 * np.sin(2 * np.pi * freq[s] * t)
                            + 5 * rng.standard_normal(n),
                            5 * rng.standard_normal(n)]) for s in y])
    night = Night(X=X.astype(np.float32), y=y, subject_id="a", night_id="a1", kind="signals",
                  sfreq=fs, channels=["EEG Fpz-Cz", "EOG horizontal"], roles=["eeg", "eog"])
    model = fast_model("rf").fit([night])
    assert (model.predict(night) == y).mean() > 0.95
    assert "EEG Fpz-Cz_rel_alpha" in model.feature_names_
    feature_night = toy_night(1)
    with pytest.raises(ValueError,
                       match=r"the model was trained on \d+ features .* but this night gives"):
        model.predict_proba(feature_night)
    no_roles = Night(X=X, y=y, subject_id="a", night_id="a2", kind="signals", sfreq=fs)
    with pytest.raises(ValueError, match="roles"):
        model.predict_proba(no_roles)


def test_registry_names_and_factory_errors():
    for name in FEATURE_MODELS:
        assert name in MODEL_REGISTRY
        model = make_model(name, n_classes=5, seq_len=20, preset="small")  # deep opts ignored
        assert model.name == name
        assert (model.context is not None) == name.endswith("-context")
    with pytest.raises(ValueError, match="unknown feature model"):
        make_feature_model("xgboost")
    with pytest.raises(ValueError, match="unknown context option"):
        make_feature_model("rf-context", context={"window": 3})
    with pytest.raises(ValueError, match="n_classes"):
        make_feature_model("rf", n_classes=4)
    with pytest.raises(RuntimeError, match="not fitted"):
        make_feature_model("rf").predict_proba(toy_night(0))


def test_fit_errors(nights):
    with pytest.raises(ValueError, match="at least one night"):
        make_feature_model("rf").fit([])
    one_class = Night(X=np.zeros((10, 3)), y=np.full(10, 2), subject_id="a", night_id="x")
    with pytest.raises(ValueError, match="1 scored class"):
        make_feature_model("rf").fit([one_class])


def test_resolve_class_weight():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    bal = resolve_class_weight("balanced", y)
    # balanced: every class carries the same total weight
    totals = [bal[c] * (y == c).sum() for c in range(3)]
    np.testing.assert_allclose(totals, totals[0])
    sq = resolve_class_weight("sqrt", y)
    for c in range(3):
        assert sq[c] == pytest.approx(np.sqrt(bal[c]))
    assert resolve_class_weight(None, y) is None
    assert resolve_class_weight({0: 2}, y) == {0: 2.0}
    with pytest.raises(ValueError, match="class_weight"):
        resolve_class_weight("inverse", y)
    with pytest.raises(ValueError, match="class_weight"):
        build_estimator("rf", class_weight="sqrt")


def test_class_weighting_raises_recall_of_a_rare_class():
    rng = np.random.default_rng(0)
    n = 3000
    y = (rng.random(n) < 0.06).astype(int)
    X = (y[:, None] * 0.9 + rng.standard_normal((n, 2))).astype(np.float32)
    night = Night(X=X, y=y, subject_id="a", night_id="a")
    recall = {}
    for cw in (None, "balanced"):
        model = make_feature_model("lightgbm", class_weight=cw, n_estimators=30).fit([night])
        pred = model.predict(night)
        recall[cw] = (pred[y == 1] == 1).mean()
    assert recall["balanced"] > recall[None] + 0.2


@pytest.mark.filterwarnings("ignore")
def test_subsampled_svc_passes_sklearn_check_estimator():
    check_estimator(SubsampledSVC(max_per_class=50))


def test_subsampled_svc_caps_the_training_set():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(900, int), np.ones(100, int)]
    X = rng.standard_normal((1000, 3)) + y[:, None] * 2
    svc = SubsampledSVC(max_per_class=60, class_weight=None).fit(X, y)
    assert svc.svc_.shape_fit_[0] == 120  # 60 epochs of each class
    # without weighting the capped subsample is reweighted back to the 9:1 class ratio
    assert svc.svc_.class_weight_[0] / svc.svc_.class_weight_[1] == pytest.approx(9.0 / 1.0)
    assert (svc.predict(X) == y).mean() > 0.9
    with pytest.raises(ValueError, match="max_per_class"):
        SubsampledSVC(max_per_class=0).fit(X, y)


def test_transition_matrix_and_hmm_smoothing():
    night = Night(X=np.zeros((6, 1)), y=[0, 0, 2, 2, UNSCORED, 2], subject_id="a",
                  night_id="a")
    T = transition_matrix([night], n_classes=5, alpha=0.0 + 1e-9)
    # counted transitions: 0->0, 0->2, 2->2 (pairs touching an unscored epoch skipped)
    assert T[0, 0] == pytest.approx(0.5) and T[0, 2] == pytest.approx(0.5)
    assert T[2, 2] == pytest.approx(1.0)
    np.testing.assert_allclose(transition_matrix([night]).sum(axis=1), 1.0)
    # a sticky chain overrides one uncertain, isolated epoch
    sticky = np.full((2, 2), 0.05) + np.eye(2) * 0.9
    proba = np.array([[0.9, 0.1]] * 5 + [[0.4, 0.6]] + [[0.9, 0.1]] * 5)
    post = hmm_smooth(proba, sticky, np.array([0.5, 0.5]))
    np.testing.assert_allclose(post.sum(axis=1), 1.0)
    assert post.argmax(1).tolist() == [0] * 11
    # a memoryless chain with the classifier's prior leaves the posteriors unchanged
    flat = np.full((2, 2), 0.5)
    np.testing.assert_allclose(hmm_smooth(proba, flat, np.array([0.5, 0.5])), proba)


def test_hmm_smoothing_option(nights):
    model = fast_model("lightgbm", smoothing="hmm").fit(nights[:4])
    plain = fast_model("lightgbm").fit(nights[:4])  # same seed: the same classifier
    np.testing.assert_allclose(model.transmat_, transition_matrix(nights[:4], 5))
    for night in nights[4:]:
        proba = model.predict_proba(night)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        # the smoothed posteriors are forward-backward over the unsmoothed ones
        np.testing.assert_allclose(proba, hmm_smooth(plain.predict_proba(night),
                                                     model.transmat_,
                                                     model.effective_prior_), atol=1e-12)
        # stages come in runs of 8 epochs: smoothing removes spurious stage changes
        s, pred, raw = night.scored, proba.argmax(1), plain.predict(night)
        assert (np.diff(pred) != 0).sum() < (np.diff(raw) != 0).sum()
        assert (pred[s] == night.y[s]).mean() >= (raw[s] == night.y[s]).mean()
    with pytest.raises(ValueError, match="smoothing"):
        make_feature_model("rf", smoothing="viterbi")


ORDER_CHECKS = {
    "check_methods_sample_order_invariance": "temporal context depends on epoch order",
    "check_methods_subset_invariance": "temporal context depends on the neighbouring epochs",
}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("algorithm,context", [("svm", False), ("rf", False),
                                               ("lightgbm", False), ("lightgbm", True)])
def test_epoch_stager_passes_sklearn_check_estimator(algorithm, context):
    params = {"svm": {"max_per_class": 40}, "rf": {"n_estimators": 5},
              "lightgbm": {"n_estimators": 5, "min_child_samples": 2}}[algorithm]
    check_estimator(EpochStager(algorithm, context=context, estimator_params=params),
                    expected_failed_checks=ORDER_CHECKS if context else None)


def test_epoch_stager_matches_the_night_level_model(nights):
    """Same features, context per night, class weights and seed -> same probabilities."""
    train, test = nights[:3], nights[4]
    X = np.concatenate([n.X for n in train])
    y = np.concatenate([n.y for n in train])
    groups = np.concatenate([[n.night_id] * n.n_epochs for n in train])
    est = EpochStager("rf", context=True, ignore_label=UNSCORED,
                      estimator_params={"n_estimators": 15}).fit(X, y, groups=groups)
    model = fast_model("rf-context").fit(train)
    np.testing.assert_allclose(est.predict_proba(test.X), model.predict_proba(test))
    np.testing.assert_array_equal(est.classes_, np.arange(5))
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(test.X), est.predict(test.X))
    # three classes: map the labels first
    y3 = to_3class(y)
    est3 = EpochStager("lightgbm", ignore_label=UNSCORED,
                       estimator_params={"n_estimators": 20, "min_child_samples": 5})
    est3.fit(X, y3)
    assert est3.predict_proba(test.X).shape == (test.n_epochs, 3)
    assert (est3.predict(test.X)[test.scored] == to_3class(test.y)[test.scored]).mean() > 0.85


def test_epoch_stager_group_errors():
    X, y = np.zeros((6, 2)), np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="contiguous"):
        EpochStager("rf", context=True).fit(X, y, groups=[1, 1, 2, 2, 1, 1])
    with pytest.raises(ValueError, match="one value per epoch"):
        EpochStager("rf", context=True).fit(X, y, groups=[1, 2])
