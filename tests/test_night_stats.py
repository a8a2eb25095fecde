"""The night's own statistics as features (context option ``night_stats``)."""

from __future__ import annotations

import numpy as np
import pytest

from hypnoscope.datasets import Night
from hypnoscope.models import load_model, make_model
from hypnoscope.models.feature_classifiers import resolve_context
from hypnoscope.signal.features import add_context
from hypnoscope.stages import N2, N3

IQR_TO_SD = 1.349


def test_night_stats_are_the_median_and_scaled_iqr_of_every_column():
    s = np.arange(1.0, 102.0)  # 1..101: median 51, IQR 76 - 26 = 50
    X = np.c_[s, 10 * s][::-1].copy()  # order within the night does not matter
    plain, names = add_context(X, ["a", "b"])
    Xc, names_ns = add_context(X, ["a", "b"], night_stats=True)
    np.testing.assert_array_equal(Xc[:, :plain.shape[1]], plain)  # nothing else changes
    assert names_ns == names + ["a|nmed", "b|nmed", "a|niqr", "b|niqr"]
    extra = Xc[:, plain.shape[1]:]
    np.testing.assert_allclose(extra, np.tile([51.0, 510.0, 50 / IQR_TO_SD,
                                               500 / IQR_TO_SD], (101, 1)), rtol=1e-6)


def test_night_stats_follow_the_stats_rows():
    s = np.arange(1.0, 102.0)
    X = np.r_[np.full(30, 1e6), s, np.full(10, 1e6)][:, None]
    rows = slice(30, 131)
    Xc, names = add_context(X, ["a"], night_stats=True, stats_rows=rows)
    np.testing.assert_allclose(Xc[:, names.index("a|nmed")], 51.0)
    np.testing.assert_allclose(Xc[:, names.index("a|niqr")], 50 / IQR_TO_SD, rtol=1e-6)
    whole, _ = add_context(X, ["a"], night_stats=True)
    assert whole[0, names.index("a|nmed")] > 51.0  # the wake rows pull it up


def test_context_option_is_validated_and_kept_only_when_true():
    assert "night_stats" not in resolve_context(True)
    assert "night_stats" not in resolve_context({"night_stats": False})
    assert resolve_context({"night_stats": 1})["night_stats"] is True
    with pytest.raises(ValueError, match="night_stat"):
        resolve_context({"night_stat": True})


def level_nights(n_nights: int, seed: int) -> list[Night]:
    """Nights of one feature column whose stage is set by the NIGHT's level alone (N3
    all night if the night's level is high, else N2); within a night the values are
    noise around that level, so a per-night normalisation removes what decides."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_nights):
        high = i % 2 == 0
        level = rng.uniform(2.0, 4.0) if high else rng.uniform(-4.0, -2.0)
        X = level + rng.standard_normal((80, 1, 1))
        y = np.full(80, N3 if high else N2)
        out.append(Night(X=X.astype(np.float32), y=y, subject_id=f"s{seed}-{i}",
                         night_id=f"n{seed}-{i}", kind="features"))
    return out


@pytest.fixture(scope="module")
def trained():
    train = level_nights(12, seed=0)
    kw = {"seed": 0, "n_estimators": 30, "min_child_samples": 5}
    normalised_only = {"keep_raw": False, "windows": (), "past_windows": (),
                       "std_windows": (), "diffs": False}
    without = make_model("lightgbm-context", context=normalised_only, **kw).fit(train)
    with_stats = make_model("lightgbm-context", context={**normalised_only,
                                                         "night_stats": True}, **kw)
    return without, with_stats.fit(train)


def test_night_stats_give_back_what_the_normalisation_removes(trained):
    without, with_stats = trained
    test = level_nights(6, seed=1)
    acc = [np.mean([(m.predict(n) == n.y).mean() for n in test]) for m in trained]
    assert acc[1] == 1.0  # the night's median tells N3 nights from N2 nights
    assert acc[0] < 0.8  # normalised values alone cannot
    assert with_stats.config["context"]["night_stats"] is True
    assert "night_stats" not in without.config["context"]


def test_night_stats_model_saves_and_loads(trained, tmp_path):
    _, model = trained
    night = level_nights(2, seed=2)[1]
    back = load_model(model.save(tmp_path / "m.joblib"))
    assert back.metadata["config"]["context"]["night_stats"] is True
    np.testing.assert_array_equal(back.predict_proba(night), model.predict_proba(night))
    rows = np.arange(10, 20)  # live staging: some rows, the night's statistics
    np.testing.assert_allclose(back.predict_proba(night, rows=rows),
                               back.predict_proba(night)[rows])
