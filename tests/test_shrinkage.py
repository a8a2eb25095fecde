"""Known-answer tests of the per-night normalisation shrunk toward the training
population (signal.features.night_normalize ``prior``) and of the FeatureStagingModel
options ``shrink`` and ``crops`` (issue #25)."""

from __future__ import annotations

import numpy as np
import pytest

from hypnoscope.datasets import Night
from hypnoscope.signal.features import (
    add_context,
    night_normalize,
    population_stats,
    shrink_weight,
)


def test_shrink_weight():
    assert shrink_weight(1, 50) == 0.0
    assert shrink_weight(51, 50) == 0.5
    assert shrink_weight(1, 0) == 1.0 and shrink_weight(500, 0) == 1.0
    assert shrink_weight(100_001, 10) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError):
        shrink_weight(10, -1)


def test_one_epoch_recording_gets_the_population_statistics():
    center, scale = np.array([[2.0, -1.0]]), np.array([[4.0, 0.5]])
    X = np.array([[10.0, 3.0]])
    Z = night_normalize(X, "robust", prior=(center, scale, 30.0))
    np.testing.assert_allclose(Z, (X - center) / scale)
    Z = night_normalize(X, "zscore", prior=(center, scale, 30.0))
    np.testing.assert_allclose(Z, (X - center) / scale)


def test_long_recording_gets_about_its_own_statistics():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(20_000, 3))
    prior = (np.zeros((1, 3)), np.ones((1, 3)), 10.0)
    np.testing.assert_allclose(night_normalize(X, "robust", prior=prior),
                               night_normalize(X, "robust"), atol=5e-3)
    # k = 0: exactly its own, whatever the length
    np.testing.assert_array_equal(night_normalize(X[:7], "robust", prior=(*prior[:2], 0.0)),
                                  night_normalize(X[:7], "robust"))


def test_shrinkage_known_answer():
    X = np.array([[1.0], [3.0]])  # zscore: mean 2, SD 1; n = 2 -> w = 1 / (1 + k)
    Z = night_normalize(X, "zscore", prior=(np.array([[0.0]]), np.array([[3.0]]), 1.0))
    c, s = 0.5 * 2.0 + 0.5 * 0.0, 0.5 * 1.0 + 0.5 * 3.0
    np.testing.assert_allclose(Z, (X - c) / s)
    # the statistics' epochs count, not the night's
    Y = np.array([[1.0], [3.0], [100.0]])
    Zs = night_normalize(Y, "zscore", stats_rows=slice(0, 2),
                         prior=(np.array([[0.0]]), np.array([[3.0]]), 1.0))
    np.testing.assert_allclose(Zs, (Y - c) / s)
    with pytest.raises(ValueError, match="quantile"):
        night_normalize(X, "quantile", prior=(np.zeros((1, 1)), np.ones((1, 1)), 1.0))


def test_population_stats_is_the_median_night():
    nights = [np.array([[0.0], [2.0]]), np.array([[10.0], [14.0]]), np.array([[4.0], [5.0]])]
    c, s = population_stats(nights, "zscore")
    assert c.shape == (1, 1) and c[0, 0] == 4.5  # night means 1, 12, 4.5
    assert s[0, 0] == 1.0  # night SDs 1, 2, 0.5


def test_add_context_passes_the_prior():
    X = np.array([[7.0, 1.0]])
    prior = (np.array([[5.0, 0.0]]), np.array([[2.0, 4.0]]), 25.0)
    Xc, names = add_context(X, ["a", "b"], windows=(), past_windows=(), std_windows=(),
                            diffs=False, prior=prior)
    np.testing.assert_allclose(Xc[0, [names.index("a|z"), names.index("b|z")]],
                               [1.0, 0.25])


def _night(i: int, n: int = 200) -> Night:
    rng = np.random.default_rng(i)
    y = np.resize([0, 1, 2, 2, 3, 4], n)
    X = rng.normal(size=(n, 3, 10)).astype(np.float32) + y[:, None, None] * 0.3
    return Night(X=X, y=y, subject_id=f"{i:02d}", night_id=f"{i:02d}__1")


def test_model_options_shrink_and_crops():
    pytest.importorskip("lightgbm")
    from hypnoscope.models import make_model

    nights = [_night(i) for i in range(4)]
    m = make_model("lightgbm-context", shrink=60, crops={"per_night": 1}, n_estimators=5)
    m.fit(nights)
    assert m.config["shrink"] == 60.0 and m.config["crops"]["per_night"] == 1
    assert m.population_[0].shape == (1, 30)
    p = m.predict_proba(_night(9, n=1))
    assert p.shape == (1, 5) and np.allclose(p.sum(1), 1)
    plain = make_model("lightgbm-context", n_estimators=5)
    assert "shrink" not in plain.config and "crops" not in plain.config
    with pytest.raises(ValueError, match="shrink"):
        make_model("lightgbm-context", shrink=10, context={"normalize": "quantile"})
    with pytest.raises(ValueError, match="crops"):
        make_model("lightgbm-context", crops={"copies": 2})


def test_crops_alone_up_to_a_maximum(monkeypatch):
    """``crops={"whole": False, "max_minutes": ...}`` trains on stretches of at most that
    length and on no whole night."""
    pytest.importorskip("lightgbm")
    import hypnoscope.models.feature_classifiers as fc
    from hypnoscope.models import make_model

    nights = [_night(i, n=400) for i in range(4)]
    seen: list[int] = []
    real = fc.night_feature_matrix

    def spy(night, *a, **k):
        seen.append(len(night.y))
        return real(night, *a, **k)

    monkeypatch.setattr(fc, "night_feature_matrix", spy)
    crops = {"per_night": 3, "min_minutes": 20, "max_minutes": 60, "whole": False}
    m = make_model("lightgbm-context", crops=crops, n_estimators=5).fit(nights)
    assert m.config["crops"] == crops
    assert len(seen) == 12 and 40 <= min(seen) and max(seen) <= 120
    seen.clear()
    make_model("lightgbm-context", crops={"per_night": 1}, n_estimators=5).fit(nights)
    assert seen.count(400) >= 4 and len(seen) == 8  # the whole nights and one crop each
    with pytest.raises(ValueError, match="max_minutes"):
        make_model("lightgbm-context", crops={"min_minutes": 30, "max_minutes": 20})


def test_nap_crops_start_in_wake():
    """``crops={"nap_minutes": [...]}`` adds one nap-like stretch per night and length:
    of that length, starting in wake before the night's first sleep epoch; without it
    the recorded crops are those of before (no ``nap_minutes`` key)."""
    from hypnoscope.models.feature_classifiers import _resolve_crops, cropped_nights

    y = np.r_[np.zeros(60, int), np.resize([1, 2, 2, 3, 4], 340)]
    nights = [Night(X=np.zeros((400, 3, 10), np.float32), y=y, subject_id=f"{i}",
                    night_id=f"{i}__1") for i in range(3)]
    crops = _resolve_crops({"per_night": 1, "whole": False, "nap_minutes": [20, 30]})
    assert crops["nap_minutes"] == [20.0, 30.0]
    assert "nap_minutes" not in _resolve_crops({"per_night": 1})
    out = cropped_nights(nights, crops, seed=4)
    naps = [n for n in out if n.meta["stretch"]["stop"] - n.meta["stretch"]["start"]
            in (40, 60) and n.y[0] == 0]
    assert len(out) == 3 + 6 and len(naps) >= 6
    for n in naps:  # wake first, then sleep (5 to 20 min of wake before sleep onset)
        onset = int(np.argmax(n.y != 0))
        assert 10 <= onset <= 40 and n.meta["stretch"]["start"] + onset == 60
    again = cropped_nights(nights, crops, seed=4)
    assert [n.night_id for n in again] == [n.night_id for n in out]
    with pytest.raises(ValueError, match="nap_minutes"):
        _resolve_crops({"nap_minutes": [0]})


def test_estimate_shrink_known_answers():
    from hypnoscope.signal.features import estimate_shrink

    rng = np.random.default_rng(0)
    # nights that differ a lot (offsets -20..20) and stretches that equal their night:
    # a stretch's own statistics are right, so no shrinkage is best (smallest k)
    nights = [rng.normal(o, 1.0, size=(400, 2)) for o in np.linspace(-20, 20, 9)]
    same = [[X, X[:200]] for X in nights]  # about the night's own statistics
    grid = [0.0, 1.0, 10.0, 100.0, 1000.0]
    assert estimate_shrink(nights, [[X] for X in nights], "zscore", grid) == 0.0
    assert estimate_shrink(nights, same, "zscore", grid) <= 1.0
    # nights all alike, stretches whose statistics are far off (a stretch of one
    # "stage"): the population's statistics are best (largest k)
    alike = [rng.normal(0.0, 1.0, size=(400, 2)) for _ in range(9)]
    off = [[np.sort(X, axis=0)[:40]] for X in alike]  # the lowest tenth of each night
    assert estimate_shrink(alike, off, "zscore", grid) == 1000.0
    with pytest.raises(ValueError, match="stretches for"):
        estimate_shrink(alike, off[:3])
    with pytest.raises(ValueError, match="at least one stretch"):
        estimate_shrink(alike, [[] for _ in alike])


def test_add_context_length_and_edges_columns():
    X = np.arange(30, dtype=float).reshape(15, 2)
    Xc, names = add_context(X, ["a", "b"], windows=(5,), past_windows=(4,), std_windows=(),
                            length=True, edges=True)
    assert names[-3:] == ["recording|log_epochs", "recording|from_start", "recording|to_end"]
    np.testing.assert_allclose(Xc[:, -3], np.log(15), rtol=1e-6)
    # the longest reach is 3 epochs (past window 4): distances capped there
    np.testing.assert_array_equal(Xc[:, -2], np.minimum(np.arange(15), 3))
    np.testing.assert_array_equal(Xc[:, -1], np.minimum(np.arange(15)[::-1], 3))
    plain, pn = add_context(X, ["a", "b"], windows=(5,), past_windows=(4,), std_windows=())
    assert pn == names[:-3]
    np.testing.assert_array_equal(plain, Xc[:, :-3])


def test_model_shrink_auto_estimates_on_training_nights():
    pytest.importorskip("lightgbm")
    from hypnoscope.models import make_model

    nights = [_night(i, n=300) for i in range(4)]
    m = make_model("lightgbm-context", shrink="auto", context={"length": True, "edges": True},
                   n_estimators=5)
    assert m.config["shrink"] == "auto" and m.config["context"]["length"] is True
    m.fit(nights)
    assert isinstance(m.shrink_, float) and m.shrink_ >= 1.0
    assert m.metadata["shrink_estimated"] == m.shrink_
    assert m._prior()[2] == m.shrink_
    assert m.feature_names_[-3:] == ["recording|log_epochs", "recording|from_start",
                                     "recording|to_end"]
    again = make_model("lightgbm-context", shrink="auto", context={"length": True,
                                                                   "edges": True},
                       n_estimators=5).fit(nights)
    assert again.shrink_ == m.shrink_  # seeded
    with pytest.raises(ValueError, match="shrink must be"):
        make_model("lightgbm-context", shrink="often")
    with pytest.raises(ValueError, match="shrink"):
        make_model("lightgbm-context", shrink="auto", context={"normalize": "quantile"})
