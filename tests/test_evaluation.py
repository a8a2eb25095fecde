"""Epoch-wise metrics, aggregation, comparison tables and hypnogram agreement."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from hypnoscope.evaluation.metrics import (
    Timer,
    accuracy_macro_f1,
    aggregate,
    compare_hypnograms,
    comparison_table,
    evaluate,
    evaluate_3class,
    evaluate_recordings,
    kappa,
)
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.stages import UNSCORED, to_3class


def _random_pair(n=600, seed=0, n_classes=5):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, n_classes, n)
    p = np.where(rng.random(n) < 0.7, t, rng.integers(0, n_classes, n))
    return t, p


def test_kappa_is_the_one_kappa():
    t, p = _random_pair(seed=11)
    t[::7] = UNSCORED  # unscored reference epochs never count
    keep = t >= 0
    ref = cohen_kappa_score(t[keep], p[keep], labels=np.arange(5))
    assert kappa(t, p, 5) == ref == evaluate(t, p)["kappa"]
    sub = (t[keep] < 4) & (p[keep] < 4)  # no class 4: labels of the classes present
    assert kappa(t[keep][sub], p[keep][sub]) == cohen_kappa_score(t[keep][sub], p[keep][sub])


def test_hand_computed_three_class():
    t = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 2, 0]
    r = evaluate(t, p, n_classes=3)
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["per_class_f1"] == pytest.approx({"W": 0.5, "NREM": 0.8, "R": 2 / 3})
    assert r["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # p_o = 4/6, p_e = (2*2 + 2*3 + 2*1) / 36 = 1/3
    assert r["kappa"] == pytest.approx((4 / 6 - 1 / 3) / (1 - 1 / 3))
    assert r["precision"] == pytest.approx({"W": 0.5, "NREM": 2 / 3, "R": 1.0})
    assert r["recall"] == pytest.approx({"W": 0.5, "NREM": 1.0, "R": 0.5})
    assert r["specificity"] == pytest.approx({"W": 3 / 4, "NREM": 3 / 4, "R": 4 / 4})
    assert r["macro_specificity"] == pytest.approx((0.75 + 0.75 + 1) / 3)
    assert r["macro_recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert np.allclose(r["confusion_matrix_normalized"],
                       [[0.5, 0.5, 0], [0, 1, 0], [0.5, 0, 0.5]])
    assert r["support"] == {"W": 2, "NREM": 2, "R": 2}
    assert r["per_class"]["NREM"]["f1"] == pytest.approx(0.8)
    assert r["n_epochs"] == 6 and r["n_excluded"] == 0
    assert "NREM" in r["classification_report"]


def test_unscored_never_counts():
    t = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 2, 0]
    base = evaluate(t, p, n_classes=3)
    r = evaluate(t + [UNSCORED, 2, -1], p + [0, UNSCORED, 1], n_classes=3)
    assert r["n_excluded"] == 3 and r["n_epochs"] == 6
    for key in ("accuracy", "macro_f1", "kappa", "confusion_matrix"):
        assert r[key] == base[key]


def test_matches_sklearn_five_class():
    t, p = _random_pair()
    t[::37] = UNSCORED
    r = evaluate(t, p)
    keep = t >= 0
    tk, pk = t[keep], p[keep]
    assert r["accuracy"] == pytest.approx(accuracy_score(tk, pk))
    assert r["macro_f1"] == pytest.approx(f1_score(tk, pk, average="macro"))
    assert r["kappa"] == pytest.approx(cohen_kappa_score(tk, pk))
    prec, rec, f1, sup = precision_recall_fscore_support(tk, pk, labels=range(5))
    names = ["W", "N1", "N2", "N3", "R"]
    assert [r["precision"][n] for n in names] == pytest.approx(prec)
    assert [r["recall"][n] for n in names] == pytest.approx(rec)
    assert [r["per_class_f1"][n] for n in names] == pytest.approx(f1)
    assert [r["support"][n] for n in names] == list(sup)
    cm = confusion_matrix(tk, pk, labels=range(5))
    assert r["confusion_matrix"] == cm.tolist()
    # specificity from the one-vs-rest counts
    for k, n in enumerate(names):
        neg = tk != k
        assert r["specificity"][n] == pytest.approx(np.mean(pk[neg] != k))
    assert np.allclose(np.sum(r["confusion_matrix_normalized"], axis=1), 1.0)


def test_absent_class_is_nan_and_left_out_of_macro():
    t = np.array([0, 0, 2, 2, 2, 4, 4])
    p = np.array([0, 2, 2, 2, 0, 4, 2])  # no N1, no N3 anywhere
    r = evaluate(t, p)
    assert math.isnan(r["per_class_f1"]["N1"]) and math.isnan(r["per_class_f1"]["N3"])
    assert r["macro_f1"] == pytest.approx(f1_score(t, p, labels=[0, 2, 4], average="macro"))
    # a class present but never predicted has F1 = 0 and undefined precision
    r2 = evaluate([0, 1, 2], [0, 2, 2])
    assert r2["per_class_f1"]["N1"] == 0.0
    assert math.isnan(r2["precision"]["N1"])


def test_accuracy_macro_f1_values_and_absent_class():
    # N3 (3) absent from truth and prediction, unscored truth epochs (-100) ignored
    t = np.array([0, 0, 1, 2, 2, 4, UNSCORED, UNSCORED])
    p = np.array([0, 1, 1, 2, 4, 4, 3, 2])
    acc, mf1 = accuracy_macro_f1(t, p, n_classes=5)
    assert acc == pytest.approx(4 / 6)
    # F1: W 2/3, N1 2/3, N2 2/3, R 2/3; N3 left out (not scored 0)
    assert mf1 == pytest.approx(2 / 3)
    r = evaluate(t, p, n_classes=5)
    assert (acc, mf1) == (pytest.approx(r["accuracy"]), pytest.approx(r["macro_f1"]))
    # a class present only in the prediction counts, with F1 0
    acc, mf1 = accuracy_macro_f1([0, 0, 1, 1], [0, 0, 1, 2], n_classes=3)
    assert acc == pytest.approx(0.75)
    assert mf1 == pytest.approx((1 + 2 / 3 + 0) / 3)
    for seed in range(3):  # the same numbers as evaluate on random labels
        t, p = _random_pair(seed=seed)
        t[::7] = UNSCORED
        r = evaluate(t, p)
        assert accuracy_macro_f1(t, p, 5) == (pytest.approx(r["accuracy"], abs=1e-12),
                                              pytest.approx(r["macro_f1"], abs=1e-12))


def test_accuracy_macro_f1_nothing_scored_and_errors():
    acc, mf1 = accuracy_macro_f1([UNSCORED, -1], [0, 1], n_classes=5)
    assert math.isnan(acc) and math.isnan(mf1)
    acc, mf1 = accuracy_macro_f1(np.array([], int), np.array([], int), n_classes=5)
    assert math.isnan(acc) and math.isnan(mf1)
    with pytest.raises(ValueError, match="3 epochs but y_pred has 2"):
        accuracy_macro_f1([0, 1, 2], [0, 1], n_classes=3)
    with pytest.raises(ValueError, match="stage code 4 found but n_classes=3"):
        accuracy_macro_f1([0, 1, 2], [0, 1, 4], n_classes=3)


def test_errors_are_clear():
    with pytest.raises(ValueError, match="3 epochs but y_pred has 2"):
        evaluate([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="evaluate_3class"):
        evaluate([0, 4], [0, 1], n_classes=3)
    with pytest.raises(ValueError, match="no epoch is scored"):
        evaluate([UNSCORED, 1], [0, UNSCORED])
    with pytest.raises(ValueError, match="labels has 2 names"):
        evaluate([0, 1], [0, 1], labels=["a", "b"])


def test_three_class_view():
    t, p = _random_pair(seed=3)
    r = evaluate_3class(t, p)
    ref = evaluate(to_3class(t), to_3class(p), n_classes=3)
    assert r["labels"] == ["W", "NREM", "R"]
    assert r["accuracy"] == ref["accuracy"] >= evaluate(t, p)["accuracy"]
    assert r["kappa"] == pytest.approx(cohen_kappa_score(to_3class(t), to_3class(p)))


def test_evaluate_recordings_accepts_stage_names_like_evaluate():
    names = np.array(["W", "N1", "N2", "N3", "R"])
    pairs = [_random_pair(n=150, seed=i) for i in range(2)]
    as_names = [(names[a], names[b]) for a, b in pairs]
    by_name = evaluate_recordings([a for a, _ in as_names], [b for _, b in as_names])
    by_code = evaluate_recordings([a for a, _ in pairs], [b for _, b in pairs])
    assert by_name["pooled"]["accuracy"] == by_code["pooled"]["accuracy"]
    assert [r["kappa"] for r in by_name["per_recording"]] == [
        r["kappa"] for r in by_code["per_recording"]]


def test_aggregate_mean_sd_and_pooled():
    pairs = [_random_pair(n=200 + 50 * i, seed=i) for i in range(4)]
    res = evaluate_recordings([a for a, _ in pairs], [b for _, b in pairs],
                              train_time_s=12.5, inference_time_s_per_night=0.8)
    per = res["per_recording"]
    accs = [accuracy_score(a, b) for a, b in pairs]
    agg = res["mean"]
    assert agg["n"] == 4
    assert agg["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert agg["accuracy"]["sd"] == pytest.approx(np.std(accs, ddof=1))
    assert agg["n_epochs"] == sum(len(a) for a, _ in pairs)
    assert agg["train_time_s"]["mean"] == pytest.approx(12.5)
    assert agg["per_class_f1"]["N2"]["mean"] == pytest.approx(
        np.mean([r["per_class_f1"]["N2"] for r in per]))
    pooled = res["pooled"]
    allt = np.concatenate([a for a, _ in pairs])
    allp = np.concatenate([b for _, b in pairs])
    assert pooled["accuracy"] == pytest.approx(accuracy_score(allt, allp))
    assert pooled["inference_time_s_per_night"] == 0.8
    # a class missing from one night is skipped, not counted as zero
    one = evaluate([0, 2, 2], [0, 2, 2])
    two = evaluate([0, 1, 2], [0, 1, 1])
    agg2 = aggregate([one, two])
    assert agg2["per_class_f1"]["N1"]["mean"] == pytest.approx(2 / 3)
    assert agg2["per_class_f1"]["N1"]["n"] == 1
    assert agg2["per_class_f1"]["W"]["n"] == 2
    assert math.isnan(agg2["per_class_f1"]["N1"]["sd"])
    with pytest.raises(ValueError, match="different class labels"):
        aggregate([one, evaluate_3class([0, 1], [0, 1])])


def test_timer_measures_elapsed_time():
    with Timer() as t:
        time.sleep(0.02)
    assert 0.015 <= t.elapsed < 1.0


def _parse_md(table: str) -> list[list[str]]:
    rows = [ln.strip().strip("|").split("|") for ln in table.strip().splitlines()]
    return [[c.strip() for c in r] for r in rows]


def test_comparison_table_markdown():
    t, p = _random_pair(seed=1)
    a = evaluate(t, p, train_time_s=10.0, inference_time_s_per_night=1.25)
    t2, p2 = _random_pair(seed=2)
    agg = evaluate_recordings([t, t2], [p, p2])["mean"]
    rows = _parse_md(comparison_table({"svm": a, "cnn (mean ± sd)": agg}))
    header = rows[0]
    assert header[:6] == ["Model", "Accuracy (%)", "Sensitivity", "Specificity", "MF1", "κ"]
    assert header[6:11] == ["F1 W", "F1 N1", "F1 N2", "F1 N3", "F1 R"]
    assert header[-2:] == ["Train time (s)", "Inference (s/night)"]
    assert set(rows[1]) <= {"---", "---:"}
    svm = dict(zip(header, rows[2], strict=True))
    assert svm["Model"] == "svm"
    assert svm["Accuracy (%)"] == f"{100 * a['accuracy']:.1f}"
    assert svm["Sensitivity"] == f"{a['macro_recall']:.3f}"
    assert svm["κ"] == f"{a['kappa']:.3f}"
    assert svm["F1 N3"] == f"{a['per_class_f1']['N3']:.3f}"
    assert svm["Train time (s)"] == "10.0" and svm["Inference (s/night)"] == "1.25"
    cnn = dict(zip(header, rows[3], strict=True))
    m, s = agg["macro_f1"]["mean"], agg["macro_f1"]["sd"]
    assert cnn["MF1"] == f"{m:.3f} ± {s:.3f}"
    assert cnn["Train time (s)"] == "—"
    short = comparison_table({"x": a}, per_class=False, times=False)
    assert _parse_md(short)[0] == header[:6]


# ------------------------------------------------------------ hypnograms
def _night(seed=0, n=300):
    rng = np.random.default_rng(seed)
    stages = np.repeat(rng.integers(0, 5, n // 10), 10)
    stages[:20] = 0
    stages[-20:] = 0
    return Hypnogram(stages)


def test_compare_identical_and_changed():
    ref = _night()
    same = compare_hypnograms(ref.copy(), ref)
    assert same["epochs"]["accuracy"] == 1.0 and same["offset_epochs"] == 0
    assert all(v["diff"] == 0 for v in same["sleep_statistics"].values())
    # turn one N2 epoch inside the sleep period into wake
    codes = ref.codes.copy()
    i = int(np.flatnonzero(codes == 2)[len(np.flatnonzero(codes == 2)) // 2])
    codes[i] = 0
    res = compare_hypnograms(ref.copy(stages=codes), ref)
    assert res["epochs"]["n_epochs"] == ref.n_epochs
    assert res["epochs"]["accuracy"] == pytest.approx(1 - 1 / ref.n_epochs)
    st = res["sleep_statistics"]
    assert st["total_sleep_min"]["diff"] == pytest.approx(-0.5)
    assert st["waso_min"]["diff"] == pytest.approx(0.5)
    assert st["n2_min"]["pred"] - st["n2_min"]["ref"] == pytest.approx(-0.5)
    assert res["epochs_3class"]["labels"] == ["W", "NREM", "R"]


def test_compare_alignment_rule():
    ref = _night()
    # reference starts 3 epochs earlier with unscored padding: shifted grid, still aligned
    padded = Hypnogram(np.concatenate([[UNSCORED] * 3, ref.codes]), onset_sec=-90.0)
    res = compare_hypnograms(ref, padded)
    assert res["offset_epochs"] == 3 and res["epochs"]["accuracy"] == 1.0
    assert res["n_common_epochs"] == ref.n_epochs
    with pytest.raises(ValueError, match="epoch lengths differ"):
        compare_hypnograms(Hypnogram(ref.codes, epoch_sec=20), ref)
    with pytest.raises(ValueError, match="epoch grids differ"):
        compare_hypnograms(ref.copy(onset_sec=10.0), ref)
    longer = Hypnogram(np.concatenate([ref.codes, np.full(50, 2)]))
    with pytest.raises(ValueError, match="the reference has 50 scored epochs outside"):
        compare_hypnograms(ref, longer)  # a shorter reference is fine, a longer one not
    with pytest.raises(ValueError, match="do not overlap"):
        compare_hypnograms(ref.copy(onset_sec=ref.duration_sec + 300), ref)


def test_compare_with_probabilities_and_mixed_classes():
    ref = _night(seed=4)
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(5), ref.n_epochs)
    pred = Hypnogram(proba.argmax(1), probabilities=proba)
    res = compare_hypnograms(pred, ref)
    ok = pred.codes == ref.codes
    assert res["mean_confidence"] == pytest.approx(proba.max(1).mean())
    assert res["mean_confidence_correct"] == pytest.approx(proba.max(1)[ok].mean())
    assert res["epochs"]["accuracy"] == pytest.approx(ok.mean())
    mixed = compare_hypnograms(ref.as_3class(), ref)
    assert mixed["epochs"]["n_classes"] == 3 and mixed["epochs"]["accuracy"] == 1.0


def test_stage_names_and_float_codes_are_accepted():
    r = evaluate(["W", "N2", "REM", "?"], [0, 2, 2, 1])
    assert r["n_epochs"] == 3 and r["accuracy"] == pytest.approx(2 / 3)
    assert evaluate(np.array([0.0, np.nan, 4.0]), [0, 1, 4])["n_excluded"] == 1
    with pytest.raises(ValueError, match="y_pred: unknown sleep-stage label 'deep'"):
        evaluate(["W"], ["deep"])


def test_compare_refuses_reference_of_another_night_by_start_time():
    import datetime as dt

    from hypnoscope.io.recordings import check_start_times

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, 840)
    start = dt.datetime(1989, 4, 24, 22, 44)
    pred = Hypnogram(codes, start_time=start)
    # another night of the same length, header start 46 h later: refused, both times given
    other = Hypnogram(rng.integers(0, 5, 840), start_time=start + dt.timedelta(hours=46))
    with pytest.raises(ValueError, match=r"the reference starts at 1989-04-26 20:44:00 but "
                                         r"the prediction at 1989-04-24 22:44:00: 46\.0 h "
                                         r"after it, more than the 60 s allowed"):
        compare_hypnograms(pred, other)
    # the same scoring with a 1-h start shift: refused too (it used to be compared as is)
    with pytest.raises(ValueError, match=r"60\.0 min before it"):
        compare_hypnograms(pred, pred.copy(start_time=start - dt.timedelta(hours=1)))
    # within the tolerance the reference is put on the prediction's clock: a reference
    # starting 30 s later has its epochs one epoch later
    late = Hypnogram(codes[1:], start_time=start + dt.timedelta(seconds=30))
    res = compare_hypnograms(pred, late)
    assert res["start_offset_sec"] == 30.0 and res["offset_epochs"] == -1
    assert res["n_common_epochs"] == 839 and res["epochs"]["accuracy"] == 1.0
    # ... unless the difference breaks the epoch grid, which is said
    with pytest.raises(ValueError, match=r"epoch grids differ.*moved by \+10 s, the "
                                         r"difference of the header start times"):
        compare_hypnograms(pred, pred.copy(start_time=start + dt.timedelta(seconds=10)))
    # no limit on request: still placed by the clock (46 h apart: no overlap); an
    # unknown start time (TSV) compares by onsets alone
    with pytest.raises(ValueError, match="do not overlap in time"):
        compare_hypnograms(pred, other, max_start_offset_sec=None)
    assert compare_hypnograms(pred, other.copy(start_time=None))["start_offset_sec"] is None
    assert compare_hypnograms(pred, pred.copy())["start_offset_sec"] == 0.0
    assert check_start_times(None, start) is None
    assert check_start_times(start, start + dt.timedelta(seconds=-60)) == -60.0
    with pytest.raises(ValueError, match=r"starts at 1989-04-24 22:45:01 .* 61 s after"):
        check_start_times(start, start + dt.timedelta(seconds=61))
