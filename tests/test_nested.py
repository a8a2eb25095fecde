"""Nested selection (hypnoscope.evaluation.nested), per-night normalisation variants and band-power
jitter, on constructed data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from hypnoscope.datasets import Night
from hypnoscope.evaluation.nested import Combination, choose_combination, cross_fit
from hypnoscope.models.feature_classifiers import augmented_nights, make_feature_model
from hypnoscope.signal.bandpower import FEATURE_NAMES, assemble_features, jitter_band_powers
from hypnoscope.signal.features import add_context, night_normalize


def _onehot(y, k=5, p=0.9):
    out = np.full((len(y), k), (1 - p) / (k - 1))
    out[np.arange(len(y)), y] = p
    return out


def test_choose_combination_weights_the_member_that_is_right():
    """Member 0 is right on every epoch, member 1 on none: all weight goes to member 0;
    with both equally good, the most even weights win."""
    rng = np.random.default_rng(0)
    y = [rng.integers(0, 5, 200) for _ in range(3)]
    good = [_onehot(v) for v in y]
    bad = [_onehot((v + 1) % 5) for v in y]
    c = choose_combination([bad, good], y, smoothings=(None,), prior_exponents=(0.0,))
    np.testing.assert_allclose(c.weights, [0.0, 1.0])
    assert c.scores["members_accuracy"] == [0.0, 1.0]
    c2 = choose_combination([good, good], y, smoothings=(None,), prior_exponents=(0.0,))
    np.testing.assert_allclose(c2.weights, [0.5, 0.5])


def test_choose_combination_mixes_complementary_members():
    """Each member knows half of the classes: only a mixture gets both halves right."""
    rng = np.random.default_rng(1)
    y = [rng.integers(0, 4, 400)]
    a, b = _onehot(y[0], k=4, p=0.7), _onehot(y[0], k=4, p=0.7)
    a[y[0] >= 2] = 0.25  # a knows classes 0 and 1 only, b classes 2 and 3
    b[y[0] < 2] = 0.25
    c = choose_combination([[a], [b]], y, smoothings=(None,), prior_exponents=(0.0,))
    assert 0.2 <= c.weights[0] <= 0.8
    acc = (c.apply([a, b]).argmax(1) == y[0]).mean()
    assert acc > 0.9 > max((a.argmax(1) == y[0]).mean(), (b.argmax(1) == y[0]).mean())


def test_choose_combination_class_reweighting_lifts_an_under_called_class():
    """A member that always under-calls class 1 by a constant factor: re-weighting by the
    predicted prior recovers it, and is chosen."""
    rng = np.random.default_rng(2)
    y = [rng.integers(0, 3, 3000)]
    p = np.full((3000, 3), 0.2)
    p[np.arange(3000), y[0]] = 0.6
    p[:, 1] *= 0.3  # class 1 is under-called
    p /= p.sum(1, keepdims=True)
    c = choose_combination([[p]], y, smoothings=(None,), prior_exponents=(0.0, 0.75))
    assert c.prior_exponent == 0.75
    before = (p.argmax(1) == y[0]).mean()
    after = (c.apply([p]).argmax(1) == y[0]).mean()
    assert after > before + 0.2


def test_choose_combination_picks_hmm_for_noisy_but_persistent_stages():
    rng = np.random.default_rng(3)
    y = [np.repeat(rng.integers(0, 5, 40), 20)]  # stages last 20 epochs
    noisy = _onehot(np.where(rng.random(800) < 0.35, rng.integers(0, 5, 800), y[0]), p=0.6)
    tm = np.full((5, 5), 0.05 / 4)
    np.fill_diagonal(tm, 0.95)
    c = choose_combination([[noisy]], y, tm, prior_exponents=(0.0,))
    assert c.smoothing == "hmm"
    assert (c.apply([noisy]).argmax(1) == y[0]).mean() > (noisy.argmax(1) == y[0]).mean()


def test_choose_combination_members_restriction_and_errors():
    y = [np.array([0, 1, 2, 3, 4])]
    good, bad = [_onehot(y[0])], [_onehot((y[0] + 1) % 5)]
    c = choose_combination([good, bad], y, smoothings=(None,), prior_exponents=(0.0,),
                           members=[1])
    np.testing.assert_allclose(c.weights, [0.0, 1.0])
    with pytest.raises(ValueError, match="transition matrix"):
        choose_combination([good], y)
    with pytest.raises(ValueError, match="members"):
        choose_combination([good], y, smoothings=(None,), members=[3])
    with pytest.raises(ValueError, match="no scored epoch"):
        choose_combination([good], [np.full(5, -1)], smoothings=(None,))
    with pytest.raises(ValueError, match="weights"):
        Combination(np.array([1.0])).apply([good[0], good[0]])


class _Spy:
    """A model that records the subjects it is fit on and predicts a constant."""

    fitted: list[set] = []

    def fit(self, nights):
        _Spy.fitted.append({n.subject_id for n in nights})
        self.subjects = {n.subject_id for n in nights}
        return self

    def predict_proba(self, night):
        assert night.subject_id not in self.subjects, "predicted a training subject"
        return np.full((night.n_epochs, 5), 0.2)


def _nights(n_subjects, n_epochs=30, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for s in range(n_subjects):
        for k in (1, 2):
            out.append(Night(X=rng.normal(size=(n_epochs, 3, 10)).astype(np.float32),
                             y=rng.integers(0, 5, n_epochs), subject_id=f"{s:02d}",
                             night_id=f"{s:02d}__{k}", meta={"feature_names": FEATURE_NAMES}))
    return out


def test_cross_fit_never_trains_on_the_subjects_it_predicts():
    """Inner models see only the other inner fold; the outer test subjects are never
    trained on, and their probabilities are the average of the k inner models."""
    train, test = _nights(6), _nights(2, seed=1)
    for n in test:
        n.subject_id = "T" + n.subject_id
    _Spy.fitted = []
    oof, bag, models = cross_fit(_Spy, train, test, k=3)
    assert len(_Spy.fitted) == 3 and len(models) == 3
    all_train = {n.subject_id for n in train}
    for s in _Spy.fitted:
        assert len(s) == 4 and s < all_train
    assert [o.shape for o in oof] == [(30, 5)] * len(train)
    np.testing.assert_allclose(bag[0], 0.2)
    with pytest.raises(ValueError, match="both in the nights"):
        cross_fit(_Spy, train, train[:1])


def test_night_normalize_variants_known_values():
    X = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [100.0, 5.0]])
    z = night_normalize(X, "zscore")
    np.testing.assert_allclose(z[:, 0], (X[:, 0] - X[:, 0].mean()) / X[:, 0].std())
    np.testing.assert_allclose(z[:, 1], 0.0)
    q = night_normalize(X, "quantile")
    from scipy.stats import norm

    np.testing.assert_allclose(q[:, 0], norm.ppf([0.125, 0.375, 0.625, 0.875]))
    np.testing.assert_allclose(q[:, 1], 0.0)  # a constant column: every rank ties
    # quantile normalisation ignores amplitude, offset and monotone distortions
    np.testing.assert_allclose(night_normalize(np.exp(3 * X + 7), "quantile"), q)
    r = night_normalize(X, "robust")
    np.testing.assert_allclose(r[:, 0], (X[:, 0] - 2.5) / (25.5 / 1.349))  # median, IQR
    with pytest.raises(ValueError, match="quantile"):
        night_normalize(X, "minmax")
    Xc, names = add_context(X, ["a", "b"], normalize="quantile", windows=(), past_windows=(),
                            std_windows=(), diffs=False, keep_raw=False)
    np.testing.assert_allclose(Xc, q.astype(np.float32), rtol=1e-6)
    assert names == ["a|z", "b|z"]


def test_jitter_band_powers_gain_and_tilt():
    rng = np.random.default_rng(0)
    bp = rng.uniform(0.1, 5.0, size=(50, 3, 5))
    feats = assemble_features(bp).astype(np.float32)
    same = jitter_band_powers(feats, np.random.default_rng(1), gain_sd=0.0, tilt_sd=0.0)
    np.testing.assert_allclose(same, feats, rtol=1e-5, atol=1e-6)
    gain = jitter_band_powers(feats, np.random.default_rng(1), gain_sd=1.0, tilt_sd=0.0)
    d = gain[..., :5] - feats[..., :5]
    # one gain per channel, the same for every band and epoch; relative powers unchanged
    np.testing.assert_allclose(d, np.broadcast_to(d[:1, :, :1], d.shape), atol=1e-4)
    assert np.ptp(d[0, :, 0]) > 0.1
    np.testing.assert_allclose(gain[..., 5:], feats[..., 5:], atol=1e-5)
    tilt = jitter_band_powers(feats, np.random.default_rng(1), gain_sd=0.0, tilt_sd=1.0)
    dt = tilt[..., :5] - feats[..., :5]
    # a tilt is linear in the log band centre: monotone over bands, same for all epochs
    assert all(np.all(np.diff(np.sign(np.diff(dt[0, c]))) == 0) for c in range(3))
    np.testing.assert_allclose(tilt[..., 5:].sum(-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="band-power features"):
        jitter_band_powers(feats[..., :6], rng)


def test_augmented_feature_model_trains_on_jittered_copies():
    nights = _nights(4, n_epochs=40)
    copies = augmented_nights(nights, {"copies": 2, "gain_sd": 0.5, "tilt_sd": 0.2}, seed=3)
    assert len(copies) == 2 * len(nights) and copies[0].night_id.endswith("~aug0")
    assert not np.allclose(copies[0].X[..., :5], nights[0].X[..., :5])
    again = augmented_nights(nights, {"copies": 2, "gain_sd": 0.5, "tilt_sd": 0.2}, seed=3)
    np.testing.assert_array_equal(copies[5].X, again[5].X)  # seeded
    m = make_feature_model("lightgbm-context", augment={"copies": 1}, n_estimators=5)
    m.fit(nights)
    assert m.config["augment"] == {"copies": 1, "gain_sd": 0.5, "tilt_sd": 0.25}
    assert m.metadata["training_data"]["n_nights"] == len(nights)
    assert m.predict_proba(nights[0]).shape == (40, 5)
    with pytest.raises(ValueError, match="unknown augment"):
        make_feature_model("lightgbm-context", augment={"copy": 1})
    bad = [Night(X=np.zeros((5, 4)), y=np.zeros(5, int), subject_id="x", night_id="x")]
    with pytest.raises(ValueError, match="band-power augmentation needs"):
        augmented_nights(bad, {"copies": 1, "gain_sd": 0.1, "tilt_sd": 0.1})


def _learnable_nights(n_subjects, n_epochs=60, seed=0):
    """Band-power nights whose stage shows in the delta power of channel 0."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(n_subjects):
        y = np.repeat(rng.integers(0, 5, n_epochs // 10), 10)
        bp = rng.uniform(0.5, 1.5, size=(n_epochs, 3, 5))
        bp[:, 0, 0] *= np.exp(y)  # the stage code sets channel 0's delta power
        out.append(Night(X=assemble_features(bp).astype(np.float32), y=y,
                         subject_id=f"{s:02d}", night_id=f"{s:02d}__1",
                         meta={"feature_names": FEATURE_NAMES}))
    return out


def test_cross_fit_vote_fits_chooses_and_round_trips(tmp_path):
    from hypnoscope.models import load_model, make_model
    from hypnoscope.models.storage import make_portable, model_file_modules

    small = {"n_estimators": 30, "min_child_samples": 5}
    members = [("a", "lightgbm-context", small),
               ("b", "lightgbm-context", {**small, "context": {"normalize": "quantile"}})]
    nights = _learnable_nights(12)
    m = make_model("lightgbm-vote", members=members, seed=1).fit(nights)
    w = m.combination.weights
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert [len(ms) for ms in m.models] == [2 if wi > 0 else 0 for wi in w]  # bags
    assert m.metadata["combination"]["weights"] == pytest.approx(list(w))
    test = _learnable_nights(2, seed=5)
    p = m.predict_proba(test[0])
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert (p.argmax(1) == test[0].y).mean() > 0.8  # chance: about 0.2
    if m.combination.smoothing is None:
        np.testing.assert_allclose(m.predict_proba(test[0], rows=[3, 7]), p[[3, 7]])
    path = make_portable(m).save(tmp_path / "vote.joblib")
    assert {mod.split(".")[0] for mod in model_file_modules(path)} <= {
        "hypnoscope", "numpy", "joblib", "builtins", "copyreg", "collections", "datetime",
        "_codecs", "pathlib"}
    np.testing.assert_allclose(load_model(path).predict_proba(test[0]), p, atol=1e-9)
    refit = make_model("lightgbm-vote", members=members, seed=1, refit=True).fit(nights)
    np.testing.assert_allclose(refit.combination.weights, w)  # same choice, one model each
    assert [len(ms) for ms in refit.models] == [1 if wi > 0 else 0 for wi in w]
    with pytest.raises(ValueError, match="at least k=2 training subjects"):
        make_model("lightgbm-vote", members=members).fit(nights[:1])
    # what it reads, as a length-gated model's night member needs to know
    assert m.input_kind_ == nights[0].kind and m.epoch_shape_ == list(nights[0].X.shape[1:])
    gated = make_model("length-gated", night={"model": "lightgbm-vote", "members": members},
                       short={"model": "lightgbm-context", **small}, seed=1).fit(nights)
    np.testing.assert_allclose(gated.night.predict_proba(test[0]), p)
    assert make_model("lightgbm-vote").input_kind_ is None  # not fitted
