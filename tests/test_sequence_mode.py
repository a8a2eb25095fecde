"""Issue #29, seed 3: ``hypnoscope train --mode`` chooses many-to-one (each sequence
predicts its last epoch, the multimodal hierarchical README) or many-to-many windows."""

from __future__ import annotations

import numpy as np

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
