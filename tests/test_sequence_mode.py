"""Issue #29, seed 3: ``hypnoscope train --mode`` chooses many-to-one (each sequence
predicts its last epoch, the multimodal hierarchical README) or many-to-many windows."""

from __future__ import annotations

import numpy as np
import pytest

from hypnoscope.cli import main
from hypnoscope.models import load_model


def _feature_dir(folder, n_nights=4, n_epochs=48, seed=0):
    """Band-power-like nights: stage k shifts feature k, so the stages are learnable."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for i in range(n_nights):
        y = np.repeat(rng.integers(0, 5, n_epochs // 6), 6)
        X = rng.normal(0, 1, (n_epochs, 6)).astype(np.float32)
        X[np.arange(n_epochs), y] += 3.0
        np.savez(folder / f"{i:02d}__1.npz", features=X, labels=y,
                 onsets_sec=np.arange(n_epochs) * 30.0)
    return folder


def test_train_mode_flag_many_to_one_uses_only_the_past(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    data = _feature_dir(tmp_path / "feat")
    base = ["train", "--model", "ssnet", "--features", str(data), "--seq-len", "8",
            "--epochs", "1", "--val-fraction", "0.25"]
    paths = {}
    for mode in ("many-to-one", "many-to-many", None):
        paths[mode] = tmp_path / f"{mode}.joblib"
        extra = [] if mode is None else ["--mode", mode]
        assert main(base + extra + ["--out", str(paths[mode])]) == 0
    models = {m: load_model(p) for m, p in paths.items()}
    assert models["many-to-one"].config["mode"] == "many-to-one"
    assert models["many-to-many"].config["mode"] == "many-to-many"
    assert models[None].config["mode"] == "many-to-many"  # the default is unchanged
    from hypnoscope.datasets import load_feature_dir

    night = load_feature_dir(data)[0]
    # reorder the epochs after t (the night's normalisation statistics stay the same): a
    # many-to-one prediction at t cannot see them, a many-to-many window around t does
    t = 20
    later = type(night)(X=night.X.copy(), y=night.y, subject_id=night.subject_id,
                        night_id=night.night_id)
    later.X[t + 1:] = later.X[t + 1:][::-1]
    for mode, same in (("many-to-one", True), ("many-to-many", False)):
        m = models[mode]
        p, q = m.predict_proba(night), m.predict_proba(later)
        assert p.shape == (len(night.y), 5)
        np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
        assert np.allclose(p[: t + 1], q[: t + 1], atol=1e-6) is same, mode


def test_mode_benchmark_summary_on_constructed_runs(monkeypatch):
    """benchmarks/ssnet_mode: per-mode mean ± sd, the paired difference and pooled F1."""
    import importlib
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    bench = importlib.import_module("benchmarks.ssnet_mode.run")

    def run(i, mode, acc, diag):
        cm = np.eye(5, dtype=int) * diag + 1  # off-diagonal 1, diagonal diag + 1
        return {"index": i, "mode": mode, "train_s": 10.0 * (1 + (mode == "many-to-one")),
                "seconds_per_epoch": 2.0, "n_train_windows": 100, "epochs_run": 3,
                "infer_s_per_night": 0.1,
                "scores": {"accuracy": acc, "macro_f1": acc, "kappa": acc,
                           "confusion_matrix": cm.tolist()}}

    runs = [run(0, "many-to-many", 0.80, 9), run(1, "many-to-many", 0.82, 9),
            run(0, "many-to-one", 0.81, 9), run(1, "many-to-one", 0.80, 9),
            run(2, "many-to-one", 0.90, 9)]
    s = bench.summarise(runs)
    m2m, m2o = s["modes"]["many-to-many"], s["modes"]["many-to-one"]
    assert m2m["folds"] == [0, 1] and m2o["folds"] == [0, 1, 2]
    assert m2m["accuracy"]["mean"] == pytest.approx(0.81)
    assert m2m["accuracy"]["sd"] == pytest.approx(np.std([0.80, 0.82], ddof=1))
    assert m2o["train_s"] == 20.0
    # pooled over the folds: every stage has TP 2 * 10, FP = FN = 2 * 4
    for f1 in m2m["pooled_per_class_f1"].values():
        assert f1 == pytest.approx(2 * 20 / (2 * 20 + 8 + 8))
    p = s["paired"]  # only the folds both modes ran
    assert p["folds"] == [0, 1]
    assert p["many_to_one_minus_many_to_many"] == pytest.approx([0.01, -0.02])
    assert p["mean"] == pytest.approx(-0.005) and p["many_to_one_better_in"] == 1
    md = bench.render({"summary": s, "config": {"fold_source": "f.json", "folds": [0, 1, 2],
                                                "seq_len": 32, "epochs": 3, "patience": 2},
                       "date": "d", "command": "c", "machine": "m", "data": "x"})
    assert "| many-to-one | 3 | 83.7 ± 5.5 |" in md
    assert "-0.50 ± 2.12 points (many-to-one better in 1/2)" in md
