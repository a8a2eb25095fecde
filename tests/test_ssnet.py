"""Tests of the SSNet sequence model (direct 5-class and hierarchical 3-class)."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
import torch

from hypnoscope.datasets import Night
from hypnoscope.models import load_model, make_model
from hypnoscope.models.ssnet import (
    SSNet,
    SSNetModel,
    cascade_predict,
    merge_hierarchical,
    rem_nrem_labels,
    wake_sleep_labels,
)
from hypnoscope.signal.normalize import normalize_epochs
from hypnoscope.stages import UNSCORED

TINY = {"emb_dim": 16, "tcn_channels": 16, "tcn_levels": 2, "n_heads": 2, "mlp_hidden": 16,
        "cnn_filters": 4}


def feature_nights(n_subjects=4, n_epochs=60, seed=0):
    """Band-power-like feature nights (n, 2, 3) whose stage is readable from the input."""
    rng = np.random.default_rng(seed)
    nights = []
    for s in range(n_subjects):
        y = np.repeat(rng.integers(0, 5, n_epochs // 5), 5)
        X = rng.normal(0, 0.3, (n_epochs, 2, 3)).astype(np.float32)
        X[:, 0, 0] += y
        X[:, 1, 1] += (y == 4) * 2.0
        y[7] = UNSCORED
        nights.append(Night(X=X, y=y, subject_id=f"{s:02d}", night_id=f"{s:02d}_1",
                            channels=["a", "b"], roles=["eeg", "eog"]))
    return nights


# -- network ------------------------------------------------------------------------------
def test_ssnet_shapes_signal_and_feature_input():
    sig = SSNet(n_chans=3, n_outputs=5, n_times=300, sfreq=10.0, **TINY).eval()
    x = torch.randn(2, 6, 3, 300)
    assert sig(x).shape == (2, 6, 5)
    # the encoder is separable from the head: embed() then head() is forward()
    emb = sig.embed(x)
    assert emb.shape == (2, 6, TINY["tcn_channels"])
    torch.testing.assert_close(sig.head(emb), sig(x))
    assert sig.encoder(x[:, 0]).shape == (2, TINY["emb_dim"])
    feat = SSNet(n_chans=3, n_outputs=2, n_features=10, **TINY).eval()
    assert feat(torch.randn(4, 7, 3, 10)).shape == (4, 7, 2)
    with pytest.raises(ValueError, match="n_times"):
        SSNet(n_chans=3, n_outputs=5)


def test_causal_model_ignores_the_future_and_mask_ignores_padding():
    torch.manual_seed(0)
    x = torch.randn(1, 8, 3, 10)
    x2 = x.clone()
    x2[:, 5:] += 3.0  # change only epochs 5..7
    causal = SSNet(3, 5, n_features=10, causal=True, **TINY).eval()
    with torch.no_grad():
        a, b = causal(x), causal(x2)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])
    centred = SSNet(3, 5, n_features=10, causal=False, **TINY).eval()
    with torch.no_grad():
        assert not torch.allclose(centred(x)[:, :5], centred(x2)[:, :5])
    # masked (padding) positions do not influence real ones
    mask = torch.tensor([[False, False, True, True, True, True, True, True]])
    x3 = x.clone()
    x3[:, :2] = 100.0
    with torch.no_grad():
        torch.testing.assert_close(centred(x, mask)[:, 2:], centred(x3, mask)[:, 2:])


# -- hierarchical logic --------------------------------------------------------------------
def test_hierarchical_label_maps():
    y = np.array([0, 1, 2, 3, 4, UNSCORED])
    assert wake_sleep_labels(y).tolist() == [0, 1, 1, 1, 1, UNSCORED]
    assert rem_nrem_labels(y).tolist() == [UNSCORED, 0, 0, 0, 1, UNSCORED]


def test_merge_and_cascade_on_hand_made_predictions():
    p1 = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.45, 0.55]])  # [wake, sleep]
    p2 = np.array([[0.5, 0.5], [0.75, 0.25], [0.1, 0.9], [0.5, 0.5]])  # [NREM, REM]
    merged = merge_hierarchical(p1, p2)
    np.testing.assert_allclose(merged, [[0.9, 0.05, 0.05], [0.2, 0.6, 0.2],
                                        [0.3, 0.07, 0.63], [0.45, 0.275, 0.275]])
    np.testing.assert_allclose(merged.sum(1), 1.0)
    # the cascade: stage 1 decides wake; stage 2 decides only sleep epochs
    assert cascade_predict(p1, p2).tolist() == [0, 1, 2, 1]
    # ... which can differ from the arg-max of the merged probabilities (last epoch)
    assert merged.argmax(1).tolist() == [0, 1, 2, 0]
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        merge_hierarchical(p1, p2[:, :1])


# -- night-level models --------------------------------------------------------------------
def test_direct_model_learns_saves_and_loads(tmp_path):
    nights = feature_nights()
    model = make_model("ssnet", n_classes=5, seq_len=6, epochs=12, batch_size=8, lr=1e-2,
                       num_threads=1, **TINY)
    model.fit(nights[:3], val_nights=nights[3:])
    test = feature_nights(n_subjects=1, seed=5)[0]
    proba = model.predict_proba(test)
    assert proba.shape == (60, 5)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    scored = test.y >= 0
    assert (model.predict(test)[scored] == test.y[scored]).mean() > 0.6
    meta = model.metadata
    assert meta["config"]["preset"] == "small" and meta["training_data"]["n_subjects"] == 3
    assert meta["validation_subjects"] == ["03"]
    # the bundle describes classes, channels/roles and preprocessing
    assert meta["classes"] == ["W", "N1", "N2", "N3", "R"]
    assert meta["channels"] == ["a", "b"] and meta["roles"] == ["eeg", "eog"]
    assert meta["preprocessing"]["normalize"] == "per-night z-score of each feature"
    path = model.save(tmp_path / "ssnet.hyp")
    payload = joblib.load(path)
    # the pickled model stores plain state_dicts, not live modules or optimiser state
    assert all(isinstance(v, dict) for v in payload["model"].__getstate__()["nets"].values())
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(test), proba)
    assert loaded.metadata["input_shape"] == [2, 3]
    bad = Night(X=np.zeros((10, 3, 3), np.float32), y=np.zeros(10), subject_id="x",
                night_id="bad")
    with pytest.raises(ValueError, match="input shape"):
        loaded.predict_proba(bad)
    swapped = Night(X=test.X, y=test.y, subject_id="x", night_id="swapped",
                    channels=["b", "a"], roles=["eog", "eeg"])
    with pytest.raises(ValueError, match=r"channels \['b', 'a'\] differ"):
        loaded.predict_proba(swapped)


def test_hierarchical_model_three_classes_and_many_to_one():
    nights = feature_nights()
    model = make_model("ssnet-hier", n_classes=3, seq_len=4, epochs=2, batch_size=16,
                       mode="many-to-one", num_threads=1, **TINY)
    model.fit(nights)  # validation subjects carved out of the training nights
    assert set(model.nets) == {"wake_sleep", "rem_nrem"}
    assert len(model.metadata["validation_subjects"]) == 1
    test = nights[0]
    proba = model.predict_proba(test)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    p = model.stage_probabilities(test)
    np.testing.assert_array_equal(model.predict(test),
                                  cascade_predict(p["wake_sleep"], p["rem_nrem"]))
    with pytest.raises(ValueError, match="3-class"):
        make_model("ssnet-hier", n_classes=5)


def test_signal_input_and_checkpoint_resume(tmp_path):
    rng = np.random.default_rng(0)
    nights = [Night(X=rng.normal(size=(20, 2, 100)).astype(np.float32),
                    y=rng.integers(0, 5, 20), subject_id=f"s{i}", night_id=f"s{i}",
                    kind="signals", sfreq=10.0) for i in range(2)]
    kw = dict(n_classes=5, seq_len=4, batch_size=8, num_threads=1,
              checkpoint_dir=str(tmp_path), **TINY)
    model = make_model("ssnet", epochs=1, **kw).fit(nights[:1], nights[1:])
    assert model.predict_proba(nights[1]).shape == (20, 5)
    resumed = make_model("ssnet", epochs=2, resume=True, **kw).fit(nights[:1], nights[1:])
    hist = resumed.training_summary["direct"]["history"]
    assert [r["epoch"] for r in hist] == [1, 2]
    assert hist[0] == model.training_summary["direct"]["history"][0]
    feats = feature_nights(1)[0]
    with pytest.raises(ValueError, match="trained on signals"):
        resumed.predict_proba(feats)


def test_bad_options():
    with pytest.raises(ValueError, match="preset"):
        SSNetModel(preset="huge")
    with pytest.raises(ValueError, match=r"unknown ssnet option\(s\) \[.tcn_width.\]"):
        make_model("ssnet", n_classes=5, tcn_width=3)
    with pytest.raises(ValueError, match="mode"):
        SSNetModel(mode="one-to-one")
    with pytest.raises(ValueError, match="normalize"):
        SSNetModel(normalize="minmax")
    with pytest.raises(ValueError, match="label_smoothing"):
        SSNetModel(label_smoothing=1.0)
    with pytest.raises(ValueError, match="infer_stride"):
        SSNetModel(infer_stride=0)


def test_robust_normalisation_ignores_outliers():
    """The model's ``normalize="robust"``: median / (IQR / 1.349), clipped at ±8."""
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 2.0, (2000, 2, 3)).astype(np.float32)
    X[:20] = 1e4  # a few artefact epochs
    Z = normalize_epochs(X, "robust", clip=8.0)
    assert Z.shape == X.shape and Z.dtype == np.float32
    clean = Z[20:]
    np.testing.assert_allclose(np.median(clean, axis=0), 0.0, atol=0.1)
    np.testing.assert_allclose(clean.std(axis=0), 1.0, atol=0.1)
    assert Z.max() == pytest.approx(8.0)  # outliers clipped
    # the plain z-score is dominated by the artefacts: clean epochs shrink far below 1
    assert normalize_epochs(X)[20:].std(axis=0).max() < 0.1
    # a constant column stays finite
    X[:, 0, 0] = 3.0
    assert np.isfinite(normalize_epochs(X, "robust", clip=8.0)).all()


def test_inference_stride_one_averages_every_covering_window():
    nights = feature_nights(n_subjects=3)
    model = make_model("ssnet", n_classes=5, seq_len=6, epochs=1, batch_size=8,
                       num_threads=1, infer_stride=1, label_smoothing=0.1,
                       normalize="robust", **TINY).fit(nights[:2], nights[2:])
    night = nights[2]
    proba = model.predict_proba(night)
    net = model.nets["direct"]
    X = torch.from_numpy(normalize_epochs(night.X, "robust", clip=8.0))
    with torch.no_grad():
        acc = np.zeros((60, 5))
        cnt = np.zeros(60)
        for start in range(0, 60 - 6 + 1):  # every full window covering each epoch
            p = torch.softmax(net(X[None, start:start + 6]), -1)[0].numpy()
            acc[start:start + 6] += p
            cnt[start:start + 6] += 1
    np.testing.assert_allclose(proba, acc / cnt[:, None], atol=1e-5)
    assert cnt.min() == 1 and cnt.max() == 6
    assert model.metadata["preprocessing"]["normalize"].startswith("per-night robust")
