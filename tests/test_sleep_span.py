"""Per-night normalisation over the sleep period only (context option ``span="sleep"``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtri

from hypnoscope.datasets import Night
from hypnoscope.models import load_model, make_model
from hypnoscope.models.feature_classifiers import (
    DEFAULT_CONTEXT,
    EpochStager,
    night_feature_matrix,
    resolve_context,
)
from hypnoscope.signal.features import _quantile_against, add_context, night_normalize
from hypnoscope.stages import N2, N3, UNSCORED, R, W

IQR_TO_SD = 1.349


def wake_then_sleep(n_sleep: int = 101, n_wake: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Two columns; sleep rows 1..n_sleep (column 2 = 10x), wake rows around them 1e6."""
    s = np.arange(1.0, n_sleep + 1)
    X = np.full((n_wake + n_sleep + n_wake, 2), 1e6)
    X[n_wake:n_wake + n_sleep] = np.c_[s, 10 * s]
    mask = np.zeros(len(X), bool)
    mask[n_wake:n_wake + n_sleep] = True
    return X, mask


def test_robust_over_the_sleep_rows_uses_their_median_and_iqr():
    X, mask = wake_then_sleep()
    Z = night_normalize(X, "robust", stats_rows=mask)
    # sleep rows 1..101: median 51, IQR 76 - 26 = 50 (column 2: ten times both)
    scale = np.array([50.0, 500.0]) / IQR_TO_SD
    np.testing.assert_allclose(Z, (X - np.array([51.0, 510.0])) / scale)
    np.testing.assert_allclose(Z[mask][50], 0.0)  # the sleep median maps to 0
    # whole-night statistics are dominated by the wake epochs: different
    assert not np.allclose(night_normalize(X, "robust"), Z)


def test_zscore_over_rows_equals_zscore_of_those_rows():
    X, mask = wake_then_sleep()
    Z = night_normalize(X, "zscore", stats_rows=mask)
    sub = X[mask]
    np.testing.assert_allclose(Z, (X - sub.mean(0)) / sub.std(0))
    np.testing.assert_allclose(Z[mask].mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z[mask].std(0), 1.0)


def test_stats_rows_as_slice_indices_or_mask_agree_and_all_rows_is_the_default():
    X, mask = wake_then_sleep()
    by_mask = night_normalize(X, "robust", stats_rows=mask)
    np.testing.assert_array_equal(by_mask, night_normalize(X, "robust", slice(20, 121)))
    np.testing.assert_array_equal(by_mask, night_normalize(X, "robust",
                                                           np.flatnonzero(mask)))
    for method in ("robust", "zscore", "quantile"):
        np.testing.assert_array_equal(night_normalize(X, method, slice(None)),
                                      night_normalize(X, method))
    with pytest.raises(ValueError, match="shape"):
        night_normalize(X, "robust", stats_rows=mask[:-1])
    with pytest.raises(ValueError, match="indices"):
        night_normalize(X, "robust", stats_rows=np.array([0, len(X)]))


def test_quantile_over_rows_ranks_against_the_sleep_rows():
    rng = np.random.default_rng(3)
    Y = rng.standard_normal((50, 3))
    Y[:5, 1] = 0.25  # ties
    Y[7, 2] = np.nan
    # against all rows it is the within-night quantile score, ties and NaNs included
    np.testing.assert_allclose(_quantile_against(Y, Y), night_normalize(Y, "quantile"))
    X, mask = wake_then_sleep(n_sleep=100)
    Z = night_normalize(X, "quantile", stats_rows=mask)
    expect = ndtri((np.arange(1, 101) - 0.5) / 100)  # ranks 1..100 among the sleep rows
    np.testing.assert_allclose(Z[mask][:, 0], expect)
    np.testing.assert_allclose(Z[mask][:, 1], expect)
    np.testing.assert_allclose(Z[~mask], expect[-1])  # above every sleep row: clipped


def test_add_context_normalises_by_the_rows_and_needs_a_normalisation():
    X, mask = wake_then_sleep()
    Xc, names = add_context(X, ["a", "b"], windows=(3,), past_windows=(), std_windows=(),
                            diffs=False, stats_rows=mask)
    z = [names.index("a|z"), names.index("b|z")]
    np.testing.assert_allclose(Xc[:, z], night_normalize(X, "robust", mask), rtol=1e-6)
    with pytest.raises(ValueError, match="needs normalize"):
        add_context(X, normalize=None, stats_rows=mask)


def test_context_span_option_is_validated_and_kept_only_when_sleep():
    assert resolve_context(True) == DEFAULT_CONTEXT  # older model cards stay the same
    assert resolve_context({"span": "night"}) == DEFAULT_CONTEXT
    assert resolve_context({"span": "sleep"}) == {**DEFAULT_CONTEXT, "span": "sleep"}
    with pytest.raises(ValueError, match="span must be one of"):
        resolve_context({"span": "day"})
    with pytest.raises(ValueError, match="needs normalize"):
        resolve_context({"span": "sleep", "normalize": None})
    with pytest.raises(ValueError, match="FeatureStagingModel"):
        EpochStager(context={"span": "sleep"}).fit(np.zeros((20, 2)), np.arange(20) % 2)


def night_with_wake(seed: int, lead: int, tail: int, n_sleep: int = 120) -> Night:
    """Features (n, 2, 3): ``lead``/``tail`` wake epochs around a sleep period that starts
    and ends in N2 (runs of N2, N3, R, some W inside); every night has its own gain."""
    rng = np.random.default_rng(seed)
    runs = rng.choice([N2, N3, R, W], size=n_sleep // 10, p=[0.4, 0.25, 0.25, 0.1])
    runs[0] = runs[-1] = N2
    y = np.r_[np.full(lead, W), np.repeat(runs, 10), np.full(tail, W)]
    means = {W: [3.0, 0, 0], N2: [0, 1.5, 0], N3: [0, 3.0, 1.0], R: [1.5, 0, 1.5]}
    X = np.array([means[int(c)] for c in y])[:, None, :] * np.ones((1, 2, 1))
    X = (X + 0.2 * rng.standard_normal(X.shape)) * rng.uniform(0.7, 1.4)
    return Night(X=X.astype(np.float32), y=y, subject_id=f"s{seed}", night_id=f"n{seed}",
                 kind="features")


@pytest.fixture(scope="module")
def sleepnorm_model():
    train = [night_with_wake(s, 10 + 7 * s, 40 - 5 * s) for s in range(6)]
    return make_model("lightgbm-context", seed=0, context={"span": "sleep"},
                      n_estimators=30, min_child_samples=5).fit(train)


def test_training_uses_the_scored_sleep_period(sleepnorm_model):
    night = night_with_wake(11, lead=25, tail=15)
    assert sleepnorm_model.sleep_period(night, labels=night.y) == slice(25, 145)
    unscored = night.y.copy()
    unscored[:30] = UNSCORED  # unscored epochs are not sleep
    assert sleepnorm_model.sleep_period(night, labels=unscored) == slice(30, 145)
    assert sleepnorm_model.sleep_period(night, labels=np.full(night.n_epochs, W)) is None


@pytest.mark.parametrize(("lead", "tail"), [(30, 8), (200, 300)])
def test_label_free_estimate_recovers_the_sleep_period(sleepnorm_model, lead, tail):
    night = night_with_wake(21, lead, tail)
    blind = Night(X=night.X, y=np.full(night.n_epochs, UNSCORED), subject_id="x",
                  night_id="blind", kind="features")
    assert sleepnorm_model.sleep_period(blind) == slice(lead, lead + 120)
    X = sleepnorm_model.transform(blind)
    ref, _ = night_feature_matrix(blind, sleepnorm_model.context,
                                  stats_rows=slice(lead, lead + 120))
    np.testing.assert_array_equal(X, ref)
    pred = sleepnorm_model.predict(blind)
    assert (pred == night.y).mean() > 0.95


def test_sleep_span_model_saves_and_loads(sleepnorm_model, tmp_path):
    night = night_with_wake(31, 40, 20)
    path = sleepnorm_model.save(tmp_path / "m.joblib")
    back = load_model(path)
    assert back.config["context"]["span"] == "sleep"
    assert back.metadata["config"]["context"]["span"] == "sleep"
    np.testing.assert_array_equal(back.predict_proba(night),
                                  sleepnorm_model.predict_proba(night))
    rows = np.arange(50, 60)  # live staging: a few rows, statistics of the whole night
    np.testing.assert_allclose(back.predict_proba(night, rows=rows),
                               back.predict_proba(night)[rows])


def test_night_span_model_is_unchanged_by_the_option():
    train = [night_with_wake(s, 10 + 7 * s, 40 - 5 * s) for s in range(3)]
    a = make_model("lightgbm-context", seed=0, n_estimators=10, min_child_samples=5)
    b = make_model("lightgbm-context", seed=0, n_estimators=10, min_child_samples=5,
                   context={"span": "night"})
    assert a.config == b.config and "span" not in a.config["context"]
    night = night_with_wake(9, 30, 30)
    np.testing.assert_array_equal(a.fit(train).predict_proba(night),
                                  b.fit(train).predict_proba(night))
    assert a.sleep_period(night) is None
