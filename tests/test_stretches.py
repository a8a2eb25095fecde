"""Known-answer tests of the stretch protocol (hypnoscope.evaluation.stretches)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hypnoscope.datasets import Night
from hypnoscope.evaluation.splits import regroup_folds, subject_kfold
from hypnoscope.evaluation.stretches import (
    Stretch,
    cross_validate_stretches,
    length_label,
    random_stretches,
    rezscore_stretch,
    sample_stretches,
    score_stretches,
    select_on_stretches,
    signal_scaling,
    stretch_night,
    stretch_table,
    stretch_zscore_shift,
)
from hypnoscope.signal.bandpower import FEATURE_NAMES
from hypnoscope.stages import W

LOG = [j for j, n in enumerate(FEATURE_NAMES) if n.startswith("log_")]


def _night(subject: str, num: int, n: int, wake: int = 40, seed: int = 0) -> Night:
    """A band-power night of ``n`` epochs: ``wake`` epochs of W, then cycling sleep
    stages, 10 min of W at the end; random features."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(wake, int), np.resize([1, 2, 2, 3, 2, 4, 4], n - wake - 20),
              np.zeros(20, int)]
    y[wake + 5] = -100  # one unscored epoch
    X = rng.normal(size=(n, 3, 10)).astype(np.float32)
    return Night(X=X, y=y, subject_id=subject, night_id=f"{subject}__{num}",
                 onsets_sec=np.arange(n) * 30.0)


@pytest.fixture()
def nights() -> list[Night]:
    return [_night(f"{s:02d}", k, 300 + 37 * s + 11 * k, seed=10 * s + k)
            for s in range(6) for k in (1, 2)]


class Oracle:
    """Predicts the true stages (unscored epochs as W)."""

    def fit(self, nights, val=None):
        self.n_fit = len(nights)
        return self

    def predict_proba(self, night):
        return np.eye(5)[np.maximum(np.asarray(night.y), 0)]


def test_length_labels():
    assert length_label(None) == "whole"
    assert length_label(120) == "2 h"
    assert length_label(60) == "1 h"
    assert length_label(30) == "30 min"
    assert length_label(90) == "90 min"
    assert length_label(30, nap=True) == "nap 30 min"


def test_lengths_are_exact(nights):
    st = sample_stretches(nights, lengths=(None, 120, 60, 30), per_night=3, seed=1)
    size = {"2 h": 240, "1 h": 120, "30 min": 60, "nap 30 min": 60}
    for s in st:
        n = len(nights[s.night].y)
        assert 0 <= s.start < s.stop <= n
        assert s.n_epochs == (n if s.length == "whole" else size[s.length])
    # a night shorter than 2 h (240 epochs) gets no 2-h stretch, still a whole one
    short = [_night("99", 1, 200)]
    kinds = {s.length for s in sample_stretches(short, lengths=(None, 120, 30))}
    assert kinds == {"whole", "30 min", "nap 30 min"}
    # per_night stretches of each length in every night long enough
    for i in range(len(nights)):
        assert sum(s.night == i and s.length == "30 min" for s in st) == 3


def test_sampling_is_deterministic_and_per_night(nights):
    a = sample_stretches(nights, seed=3)
    assert a == sample_stretches(nights, seed=3)
    assert a != sample_stretches(nights, seed=4)
    # a night's stretches depend on the seed and its id, not on the other nights
    rev = sample_stretches(nights[::-1], seed=3)
    key = lambda s: (s.night_id, s.length, s.start, s.stop)  # noqa: E731
    assert sorted(map(key, a)) == sorted(map(key, rev))
    alone = sample_stretches(nights[4:5], seed=3)
    assert [key(s) for s in alone] == [key(s) for s in a if s.night_id == nights[4].night_id]


def test_stretches_never_mix_subjects(nights):
    st = sample_stretches(nights, seed=0)
    for s in st:
        night = nights[s.night]
        assert (s.night_id, s.subject_id) == (night.night_id, night.subject_id)
    folds = subject_kfold(nights, k=3, seed=0)
    res = cross_validate_stretches(nights, lambda f: Oracle(), folds, st)
    seen = []
    for sf, fold in zip(res, folds, strict=True):
        assert {s.subject_id for s in sf.stretches} <= set(fold.test_subjects)
        assert not {s.subject_id for s in sf.stretches} & set(fold.train_subjects)
        seen += sf.stretches
    assert sorted(seen, key=lambda s: (s.night, s.length, s.start)) == \
        sorted(st, key=lambda s: (s.night, s.length, s.start))


def test_nap_stretches_start_in_wake(nights):
    st = [s for s in sample_stretches(nights, nap_lengths=(30,), nap_wake_min=(5, 15),
                                      seed=0) if s.nap]
    assert len(st) == len(nights)
    for s in st:
        y = np.asarray(nights[s.night].y)
        onset = int(np.flatnonzero(y > W)[0])
        assert y[s.start] == W and s.start < onset < s.stop
        assert 10 <= onset - s.start <= 30  # 5 to 15 min of wake, in epochs
        assert s.length == "nap 30 min" and s.n_epochs == 60
    # a night that starts in sleep has no nap-like stretch
    n = _night("77", 1, 300, wake=0)
    n.y[0] = 2
    assert not [s for s in sample_stretches([n]) if s.nap]


def test_renormalisation_shift_known_answer():
    # summed band powers per epoch (channel 0): 1, 1, 4, 4 -> night mean 2.5, stretch
    # 2:4 mean 4; channel 1: 2 everywhere -> no shift
    X = np.zeros((4, 2, 10))
    totals = np.array([[1, 2], [1, 2], [4, 2], [4, 2]], float)
    share = np.array([0.4, 0.3, 0.1, 0.1, 0.1])
    X[..., :5] = np.log(totals[..., None] * share)
    X[..., 5:] = share
    shift = stretch_zscore_shift(X, 2, 4, LOG)
    assert shift == pytest.approx([math.log(4 / 2.5), 0.0], abs=1e-12)
    out = rezscore_stretch(X, 2, 4, LOG)
    assert out[:, 0, :5] == pytest.approx(X[2:4, 0, :5] - math.log(4 / 2.5), abs=1e-6)
    assert out[:, 1, :5] == pytest.approx(X[2:4, 1, :5], abs=1e-6)
    assert np.array_equal(out[..., 5:], X[2:4, :, 5:].astype(np.float32))  # relative
    # the whole night is its own z-scoring: no shift
    assert stretch_zscore_shift(X, 0, 4, LOG) == pytest.approx([0.0, 0.0], abs=1e-12)


def test_stretch_night(nights):
    n = nights[0]
    s = Stretch(0, n.night_id, n.subject_id, "30 min", 10, 70)
    sn = stretch_night(n, s)
    assert sn.night_id == f"{n.night_id}[10:70]" and sn.subject_id == n.subject_id
    assert np.array_equal(sn.y, n.y[10:70]) and sn.X.shape == (60, 3, 10)
    assert sn.onsets_sec[0] == 0.0 and sn.meta["stretch"]["renormalized"]
    shift = stretch_zscore_shift(n.X, 10, 70, LOG)
    assert sn.X[:, :, :5] == pytest.approx(n.X[10:70, :, :5] - shift[:, None], abs=1e-5)
    raw = stretch_night(n, (10, 70), renormalize=False)
    assert np.array_equal(raw.X, n.X[10:70])
    plain = Night(X=np.zeros((50, 4)), y=np.zeros(50, int), subject_id="a", night_id="a")
    assert stretch_night(plain, (0, 10)).X.shape == (10, 4)  # not band powers: as is
    with pytest.raises(ValueError, match="band-power"):
        stretch_night(plain, (0, 10), renormalize=True)
    with pytest.raises(ValueError, match="not inside"):
        stretch_night(n, (0, 10_000))


@pytest.mark.parametrize("method", ["zscore", "robust"])
def test_stretch_night_rescales_signals_like_staging(method):
    """A stretch of a signal night scaled per recording is scaled again over the
    stretch, exactly as scaling the stretch's raw signals on their own: the wake of a
    nap-like stretch no longer carries the whole night's scale (at staging each
    recording is scaled over itself)."""
    from hypnoscope.signal.normalize import normalize_epochs

    rng = np.random.default_rng(3)
    raw = rng.standard_normal((80, 2, 100)) * np.array([40.0, 5.0])[None, :, None]
    raw[:20] *= 3.0  # a loud stretch: its own scale differs from the night's
    raw[:, 1] += 12.0  # an offset (an envelope's level)
    meta = {"preprocessing": {"config": {"normalize": method}}}
    night = Night(X=normalize_epochs(raw, method).astype(np.float32), y=np.zeros(80, int),
                  subject_id="s", night_id="n", kind="signals", sfreq=100 / 30,
                  meta=meta)
    assert signal_scaling(night) == method
    st = stretch_night(night, (0, 30))
    expected = normalize_epochs(raw[:30], method)
    assert st.meta["stretch"]["renormalized"] and st.X.dtype == np.float32
    assert st.X == pytest.approx(expected, abs=1e-4)
    assert not np.allclose(st.X, night.X[:30], atol=0.05)  # the old, night-scaled cut
    assert np.array_equal(stretch_night(night, (0, 30), renormalize=False).X, night.X[:30])
    unscaled = Night(X=raw, y=np.zeros(80, int), subject_id="s", night_id="n",
                     kind="signals", meta={"preprocessing": {"config": {"normalize": None}}})
    assert signal_scaling(unscaled) is None
    assert np.array_equal(stretch_night(unscaled, (0, 30)).X, raw[:30])


def test_perfect_model_scores_one(nights):
    rows = score_stretches(Oracle(), nights, seed=0)
    assert [r["length"] for r in rows] == ["whole", "2 h", "1 h", "30 min", "nap 30 min"]
    for r in rows:
        assert r["accuracy"] == 1.0 and r["macro_f1"] == 1.0 and r["kappa"] == 1.0
        assert r["n_subjects"] == 6 and r["n_nights"] == 12
    whole = rows[0]
    assert whole["n_stretches"] == 12
    assert whole["n_epochs"] == sum(int((n.y >= 0).sum()) for n in nights)


def test_table_known_answer():
    st = [Stretch(0, "a__1", "a", "30 min", 0, 4), Stretch(1, "b__1", "b", "30 min", 0, 4),
          Stretch(0, "a__1", "a", "whole", 0, 4)]
    yt = [np.array([0, 1, 2, -100]), np.array([2, 2, 2, 2]), np.array([0, 1, 2, -100])]
    yp = [np.array([0, 1, 1, 3]), np.array([2, 2, 2, 0]), np.array([0, 1, 2, 0])]
    rows = {r["length"]: r for r in stretch_table(st, yt, yp)}
    assert rows["30 min"]["accuracy"] == pytest.approx(5 / 7)
    assert rows["30 min"]["stretch_accuracy_mean"] == pytest.approx((2 / 3 + 3 / 4) / 2)
    assert rows["30 min"]["n_epochs"] == 7 and rows["30 min"]["n_subjects"] == 2
    assert rows["whole"]["accuracy"] == 1.0 and rows["whole"]["n_stretches"] == 1


def test_cross_validation_cache(nights, tmp_path):
    st = sample_stretches(nights, seed=0)
    folds = subject_kfold(nights, k=3, seed=0)
    fresh = cross_validate_stretches(nights, lambda f: Oracle(), folds, st,
                                     cache_dir=tmp_path, cache_key="oracle")
    again = cross_validate_stretches(nights, lambda f: 1 / 0, folds, st,
                                     cache_dir=tmp_path, cache_key="oracle")
    assert not any(f.cached for f in fresh) and all(f.cached for f in again)
    assert cross_validate_stretches(nights, lambda f: 1 / 0, folds, st, cache_dir=tmp_path,
                                    cache_key="other", cached_only=True) == []
    for a, b in zip(fresh, again, strict=True):
        assert a.stretches == b.stretches
        assert all(np.array_equal(p, q) for p, q in zip(a.proba, b.proba, strict=True))


def test_random_training_stretches(nights):
    st = random_stretches(nights, per_night=4, min_minutes=20, seed=5)
    assert st == random_stretches(nights, per_night=4, min_minutes=20, seed=5)
    assert st != random_stretches(nights, per_night=4, min_minutes=20, seed=6)
    assert len(st) == 4 * len(nights)
    for s in st:
        n = len(nights[s.night].y)
        assert 40 <= s.n_epochs <= n and 0 <= s.start and s.stop <= n
        assert s.subject_id == nights[s.night].subject_id and s.length == "random"
    many = random_stretches(nights, per_night=200, min_minutes=20, seed=0)
    sizes = np.array([s.n_epochs for s in many])
    assert sizes.min() < 60 and sizes.max() > 300  # from ~20 min to about the whole night
    assert [(s.start, s.stop) for s in random_stretches([_night("99", 1, 30, wake=5)])] == \
        [(0, 30), (0, 30)]  # shorter than 20 min: the whole night


def test_random_training_stretches_up_to_a_maximum(nights):
    capped = random_stretches(nights, per_night=50, min_minutes=20, seed=3, max_minutes=60)
    sizes = np.array([s.n_epochs for s in capped])
    assert sizes.min() == 40 and sizes.max() <= 120 and sizes.max() > 100
    assert all(0 <= s.start and s.stop <= len(nights[s.night].y) for s in capped)
    # no maximum: the same draws as before the option existed
    assert random_stretches(nights, per_night=3, seed=1) == \
        random_stretches(nights, per_night=3, seed=1, max_minutes=None)
    with pytest.raises(ValueError, match="max_minutes"):
        random_stretches(nights, min_minutes=20, max_minutes=10)


def test_benchmark_reads_the_shipped_cards_and_renders():
    from benchmarks.real_accuracy import stretches as bench

    specs = {name: bench.model_spec(name, 2) for name in bench.SHIPPED}
    assert specs["default"]["model"] == "length-gated"
    assert specs["default"]["options"]["short"]["shrink"] == "auto"
    assert specs["default"]["setup"] == "default" and specs["eeg1"]["setup"] == "eeg1"
    assert specs["vote"]["model"] == "length-gated"
    assert specs["vote"]["options"]["night"] == {"model": "lightgbm-vote"}
    assert all(s["options"]["n_jobs"] == 2 for s in specs.values())
    rows = [{"length": k, "accuracy": 0.8, "macro_f1": 0.7, "kappa": 0.6,
             "stretch_accuracy_mean": 0.8, "n_stretches": 3, "n_nights": 2, "n_subjects": 1,
             "n_epochs": 100, "minutes": 30.0, "fold_accuracy_sd": None,
             "fold_accuracy_min": 0.8} for k in ("whole", "30 min")]
    res = {"command": "c", "date": "d", "machine": "m", "run_time_s": 60.0, "run_note": "n",
           "protocol": "p", "models": {"default": {"spec": specs["default"], "lengths": rows,
                                                   "n_folds_done": 1,
                                                   "train_s_per_fold": 1.0}}}
    md = bench.markdown(res)
    assert "| default | 1 | 0.800 | 0.800 |" in md and "| 30 min | >= 0.76 | 0.800 | yes |" in md


class Constant:
    """Predicts one stage everywhere; records the subjects it was trained on."""

    def __init__(self, stage: int, seen: list):
        self.stage, self.seen = stage, seen

    def fit(self, nights, val=None):
        self.seen.append({n.subject_id for n in nights})
        return self

    def predict_proba(self, night):
        return np.eye(5)[np.full(len(night.y), self.stage)]


def test_selection_on_inner_folds_of_the_training_nights(nights, tmp_path):
    outer = subject_kfold(nights, k=3, seed=0)[0]
    train = [nights[i] for i in outer.train]
    seen: list = []
    cands = {"n2": lambda f: Constant(2, seen), "oracle": lambda f: Oracle(),
             "also oracle": lambda f: Oracle()}
    sel = select_on_stretches(train, cands, k=2, seed=0, cache_dir=tmp_path)
    assert sel.chosen == "oracle"  # ties go to the candidate given first
    assert sel.scores["oracle"]["score"] == 1.0 == sel.scores["also oracle"]["score"]
    assert set(sel.scores["n2"]) == {"whole", "2 h", "1 h", "30 min", "nap 30 min", "score"}
    assert 0 < sel.scores["n2"]["score"] < 1
    # the outer test subjects take no part: every inner model saw training subjects only
    assert len(seen) == 2 and all(s <= set(outer.train_subjects) for s in seen)
    assert not set().union(*seen) & set(outer.test_subjects)
    again = select_on_stretches(train, {"n2": lambda f: 1 / 0, "oracle": lambda f: 1 / 0,
                                        "also oracle": lambda f: 1 / 0},
                                k=2, seed=0, cache_dir=tmp_path, cached_only=True)
    assert again == sel
    with pytest.raises(ValueError, match="no candidate"):
        select_on_stretches(train, {"x": lambda f: Oracle()}, cache_dir=tmp_path / "none",
                            cached_only=True)


class LengthOracle:
    """The true stages on recordings of at least ``min_epochs`` (``below=False``) or
    shorter ones (``below=True``), W elsewhere."""

    def __init__(self, min_epochs: int, below: bool):
        self.min_epochs, self.below = min_epochs, below

    def fit(self, nights, val=None):
        return self

    def predict_proba(self, night):
        right = (len(night.y) < self.min_epochs) == self.below
        y = np.where(night.y >= 0, night.y, 0) if right else np.zeros(len(night.y), int)
        return np.eye(5)[y]


def test_selection_scored_on_chosen_lengths(nights, tmp_path):
    # "long" is right on whole nights, 2 h and 1 h (>= 120 epochs), "short" on the 30-min
    # and nap stretches: over all five lengths "long" wins, over the short ones "short"
    cands = {"long": lambda f: LengthOracle(120, below=False),
             "short": lambda f: LengthOracle(120, below=True)}
    every = select_on_stretches(nights, cands, k=2, seed=0, per_night=2)
    assert every.chosen == "long"
    short = select_on_stretches(nights, cands, k=2, seed=0, per_night=2,
                                lengths=("30 min", "nap 30 min"))
    assert short.chosen == "short" and short.scores["short"]["score"] == 1.0
    assert short.scores["short"]["whole"] == every.scores["short"]["whole"] < 1.0
    with pytest.raises(ValueError, match="no stretch of lengths"):
        select_on_stretches(nights, cands, k=2, per_night=1, lengths=("3 h",))


def test_regroup_folds_keeps_subjects_on_their_side(nights):
    import dataclasses

    folds = subject_kfold(nights, k=3, seed=0)
    views = nights + [dataclasses.replace(n, night_id=n.night_id + "~b") for n in nights]
    mask = np.r_[np.ones(len(nights), bool), np.zeros(len(nights), bool)]
    for f, g, h in zip(folds, regroup_folds(folds, views),
                       regroup_folds(folds, views, train_mask=mask), strict=True):
        assert g.test_subjects == f.test_subjects and g.name == f.name
        np.testing.assert_array_equal(g.test, np.r_[f.test, f.test + len(nights)])
        np.testing.assert_array_equal(g.train, np.r_[f.train, f.train + len(nights)])
        np.testing.assert_array_equal(h.train, f.train)  # first views only
        np.testing.assert_array_equal(h.test, g.test)  # every view of a test subject
    stranger = dataclasses.replace(nights[0], subject_id="zz")
    with pytest.raises(ValueError, match="zz"):
        regroup_folds(folds, [stranger])


def test_gated_benchmark_pairs_member_folds_by_name(nights, tmp_path):
    """With only cached folds, a length-gated candidate keeps the folds both members have
    (its members may have been run on different folds)."""
    import argparse

    from benchmarks.real_accuracy import stretches as bench

    st = sample_stretches(nights, seed=0)
    folds = subject_kfold(nights, k=3, seed=0)
    args = argparse.Namespace(state_dir=str(tmp_path), seed=0, data="toy", cached_only=False)
    member = {"model": "lightgbm", "n_estimators": 3}
    spec = {"model": "length-gated", "setup": "default",
            "options": {"n_jobs": 1, "night": {"model": "rf", "n_estimators": 3},
                        "short": member}}
    night_spec = {"model": "rf", "setup": "default", "options": {"n_jobs": 1, "n_estimators": 3}}
    short_spec = {"model": "lightgbm", "setup": "default",
                  "options": {"n_jobs": 1, "n_estimators": 3}}
    bench.run_model("night", night_spec, args, nights, folds, st)  # every fold
    short = bench.run_model("short", short_spec, args, nights, folds[1:2], st)  # fold 2 only
    args.cached_only = True
    gated = bench.run_gated(spec, args, nights, folds, st)
    assert [f.fold.name for f in gated] == [folds[1].name]
    # these nights are shorter than 4 h: every stretch is the short member's
    assert all(np.array_equal(p, q) for p, q in zip(gated[0].proba, short[0].proba,
                                                    strict=True))


def test_derivation_views_put_each_eeg_in_the_slot():
    """The derivations benchmark stages the one-EEG + EOG model with Fpz-Cz and with
    Pz-Oz in its EEG slot, the EOG in its own."""
    from benchmarks.real_accuracy.derivations import views

    X = np.stack([np.full((4, 10), c, dtype=np.float32) for c in range(3)], axis=1)
    n = Night(X=X, y=np.zeros(4, int), subject_id="s1", night_id="s1__1",
              meta={"channel_names": ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]})
    two = views([n], "eeg1-eog")
    assert [v.X[0, :, 0].tolist() for v in two] == [[0.0, 2.0], [1.0, 2.0]]
    assert two[1].meta["derivations"] == ["EEG Pz-Oz", "EOG horizontal"]
    assert {v.subject_id for v in two} == {"s1"}
    assert [v.X[0, :, 0].tolist() for v in views([n], "eeg1")] == [[0.0], [1.0]]
