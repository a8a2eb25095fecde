"""MSMAE-CNN (hypnoscope.models.msmae_cnn), the plain CNN baseline (models.cnn), the
paper's Random-Forest features and the msmae-cnn-rf soft-voting ensemble."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hypnoscope.models import MODEL_REGISTRY, load_model, make_model
from hypnoscope.models.cnn import ChambonCNN, CNNModel
from hypnoscope.models.ensemble import score_weights, simplex_grid
from hypnoscope.models.feature_classifiers import night_feature_matrix
from hypnoscope.models.msmae_cnn import (
    MSMAECNN,
    MSMAECNNModel,
    channel_groups,
    n_masked,
    patch_targets,
    patchify,
    random_mask,
)
from hypnoscope.signal.features import PAPER_FEATURES, epoch_features
from hypnoscope.training.loop import evaluate_loader

#: tiny network overrides: the tests run in seconds on one core
TINY = {"d_model": 16, "depth": 2, "n_heads": 2, "grid": 6, "decoder_filters": (16,),
        "batch_size": 32, "lr": 3e-3, "num_threads": 1, "device": "cpu"}
GROUPS = {"eeg": [0, 1], "eog": [2], "emg": [3]}


@pytest.fixture(scope="module")
def sim_nights():
    """Simulated 100-Hz nights (hypnoscope.simulate, EEG Fpz-Cz/Pz-Oz, EOG, EMG) after the
    paper's 10-Hz Kaiser low-pass: 3 training, 1 validation and 1 test subject, 60 epochs
    each."""
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.signal.nights import load_recording
    from hypnoscope.simulate import simulate_night

    rng = np.random.default_rng(0)
    out = []
    for i in range(5):
        hyp = Hypnogram(np.repeat(rng.permutation([0, 1, 2, 3, 4, 2, 0, 3, 4, 2]), 4))
        raw = simulate_night(hyp, seed=i, mode="telemetry")
        out.append(load_recording(raw, hyp, preprocessing="msmae-cnn", cache=False,
                                  crop_wake_min=None, subject_id=f"s{i}",
                                  night_id=f"s{i}n1"))
    return out[:3], out[3:4], out[4:]


@pytest.fixture(scope="module")
def fitted(sim_nights, tmp_path_factory):
    """Two fitted models: ``frozen`` (4 pre-training epochs, decoder-only fine-tuning,
    dropout in the encoder) and ``tuned`` (1 pre-training epoch, encoder fine-tuned;
    scales 1 and 5 s), with their checkpoint folders."""
    train, val, _ = sim_nights
    root = tmp_path_factory.mktemp("msmae")
    kw = {**TINY, "batch_size": 16, "lr": 1e-2, "seed": 0, "patience": None}
    frozen = MSMAECNNModel(pretrain_epochs=4, epochs=3, freeze_encoder=True,
                           encoder_dropout=0.2, checkpoint_dir=str(root / "frozen"),
                           **kw).fit(train, val)
    tuned = MSMAECNNModel(pretrain_epochs=1, epochs=5, freeze_encoder=False,
                          scales=(1.0, 5.0), checkpoint_dir=str(root / "tuned"),
                          **kw).fit(train, val)
    return {"frozen": (frozen, root / "frozen"), "tuned": (tuned, root / "tuned")}


# -- patches, masks, feature tensor ------------------------------------------------------
@pytest.mark.parametrize("scale,n_patches", [(0.5, 60), (1.0, 30), (2.0, 15), (5.0, 6)])
def test_patching_and_masking_shapes_at_every_scale(scale, n_patches):
    P = int(scale * 100)
    x = torch.randn(3, 2, 3000 + P // 2)  # a tail shorter than a patch is dropped
    p = patchify(x, P)
    assert p.shape == (3, n_patches, 2 * P)
    j = n_patches - 1  # a patch holds its channels one after the other
    np.testing.assert_array_equal(p[1, j], torch.cat([x[1, 0, j * P:(j + 1) * P],
                                                      x[1, 1, j * P:(j + 1) * P]]))
    assert patch_targets(p, 2).shape == (3, n_patches, 2 * (P // 2 + 1))
    assert patch_targets(p, 2, "waveform") is p
    for ratio in (0.25, 0.5, 0.75):
        m = random_mask(500, n_patches, ratio, torch.Generator().manual_seed(1))
        k = n_masked(n_patches, ratio)
        assert m.shape == (500, n_patches) and m.dtype == torch.bool
        assert (m.sum(1) == k).all() and 1 <= k < n_patches
        assert abs(k - ratio * n_patches) <= 0.5
        # uniform over positions, reproducible from the generator's seed
        assert m.float().mean(0).sub(k / n_patches).abs().max() < 0.12
        np.testing.assert_array_equal(
            m, random_mask(500, n_patches, ratio, torch.Generator().manual_seed(1)))
    assert n_masked(n_patches, 0.0) == 0
    with pytest.raises(ValueError, match="mask_ratio"):
        n_masked(n_patches, 1.0)


def test_masked_patches_are_hidden_from_the_encoder():
    torch.manual_seed(0)
    net = MSMAECNN(4, 5, 3000, 100.0, channel_groups=GROUPS, d_model=16, depth=2,
                   n_heads=2, grid=6).eval()
    enc = net.encoder["eeg"]
    x = torch.randn(2, 2, 3000)
    for s, n in enumerate(net.n_patches):  # every scale
        mask = random_mask(2, n, 0.5, torch.Generator().manual_seed(s))
        P = net.patch_lens[s]
        y = x.clone().reshape(2, 2, n, P)
        y[mask[:, None, :, None].expand_as(y)] = 99.0  # change only the masked patches
        y = y.reshape(2, 2, 3000)
        a, b = enc(x, s, mask), enc(y, s, mask)
        assert len(a) == 2 and a[-1].shape == (2, n, 16)
        for ha, hb in zip(a, b, strict=True):
            torch.testing.assert_close(ha, hb)
        assert not torch.allclose(enc(x, s)[-1], enc(y, s)[-1])  # visible: it would see


def test_multilevel_tensor_has_the_documented_shape_and_order():
    torch.manual_seed(0)
    net = MSMAECNN(4, 5, 3000, 100.0, channel_groups=GROUPS, d_model=16, depth=3,
                   n_heads=2, levels=(1, 3), grid=6).eval()
    x = torch.randn(2, 4, 3000)
    with torch.no_grad():
        z = net.multilevel_features(x)
        # (B, n_modalities * n_scales * n_levels, d_model, grid)
        assert z.shape == (2, 3 * 4 * 2, 16, 6)
        # map (modality m, scale s, level k) sits at (m * S + s) * K + k: EOG, 2 s, layer 3
        h = net.encoder["eog"](x[:, [2]], 2)[2]
        want = torch.nn.functional.adaptive_avg_pool1d(
            net.level_norm["eog"][1](h).transpose(1, 2), 6)
        torch.testing.assert_close(z[:, (1 * 4 + 2) * 2 + 1], want)
        assert net(x).shape == (2, 5)
    single = MSMAECNN(4, 5, 3000, 100.0, channel_groups={"eeg": [0, 1]}, scales=(1.0,),
                      d_model=16, depth=2, n_heads=2, grid=6)
    assert single.multilevel_features(x).shape == (2, 1 * 1 * 2, 16, 6)
    assert channel_groups(["eeg", "eeg", "eog", "emg_envelope"]) == GROUPS
    assert channel_groups(["eog", "eeg"], ["eeg"]) == {"eeg": [1]}
    with pytest.raises(ValueError, match="no channel"):
        channel_groups(["eeg", "eog"], ["eeg", "emg"])


# -- training phases ---------------------------------------------------------------------
def test_masked_patch_reconstruction_loss_falls_tenfold(sim_nights, fitted):
    """Pre-training brings the validation masked-patch loss (spectrum target, 50 % of
    the patches masked) below a tenth of the untrained network's on the same masks."""
    _, val, _ = sim_nights
    model = fitted["frozen"][0]  # frozen: it holds exactly the pre-trained encoder
    hist = model.training_summary["direct"]["history"]
    rec = [r["val_rec"] for r in hist if r["phase"] == "pretrain"]
    assert len(rec) == 4 and rec[-1] < rec[0]
    torch.manual_seed(0)  # the fit's initial weights
    untrained = model.build_network(model.net_kwargs["direct"])
    ds = model._dataset(val, None, training=True)
    # validation batches of twice the batch size, as in training: the same fixed masks
    before = evaluate_loader(untrained, ds.loader(32), 5, model.pretrain_loss)["rec"]
    after = evaluate_loader(model.nets["direct"], ds.loader(32), 5,
                            model.pretrain_loss)["rec"]
    assert after == pytest.approx(min(rec), rel=1e-5)  # the best epoch is kept
    assert after < before / 10, (before, after)


@pytest.mark.parametrize("which", ["frozen", "tuned"])
def test_frozen_encoder_weights_do_not_change_during_decoder_training(fitted, which):
    model, ckpt = fitted[which]
    pre = torch.load(ckpt / "pretrain" / "best.pt", weights_only=False)["model"]
    after = model.nets["direct"].state_dict()
    enc = [k for k in pre if k.startswith(("encoder.", "level_norm."))]
    dec = [k for k in pre if k.startswith("decoder.") and k.endswith("weight")]
    assert enc and dec
    changed = [k for k in enc if not torch.equal(pre[k], after[k])]
    assert (changed == []) if which == "frozen" else len(changed) > len(enc) // 2
    assert all(not torch.equal(pre[k], after[k]) for k in dec)  # the decoder trained
    phases = model.training_summary["direct"]["phases"]
    assert [p["name"] for p in phases] == ["pretrain", "finetune"]
    assert phases[0]["labelled"] is False and phases[0]["monitor"] == "val_rec"
    expected = ({"decoder.": 1e-2} if which == "frozen" else
                {"encoder.": 1e-3, "level_norm.": 1e-2, "decoder.": 1e-2})
    assert phases[1]["params"] == pytest.approx(expected)


class _Stop(Exception):
    pass


def test_pretraining_uses_training_subjects_only_unless_asked(sim_nights, monkeypatch):
    train, val, test = sim_nights
    seen: list[set] = []
    import hypnoscope.models.deep as deep

    def spy(net, train_ds, val_ds, phases, cfg):
        seen.append({n.night_id for n in train_ds.nights})
        seen.append({n.night_id for n in val_ds.nights})
        raise _Stop

    monkeypatch.setattr(deep, "train_model", spy)
    with pytest.raises(_Stop):
        MSMAECNNModel(**TINY).fit(train, val)
    assert seen == [{n.night_id for n in train}, {n.night_id for n in val}]
    model = MSMAECNNModel(**TINY)
    with pytest.raises(_Stop):
        model.fit(train, val, pretrain_nights=test)
    assert seen[2] == {n.night_id for n in train + test}
    with pytest.raises(ValueError, match="per-epoch model"):
        MSMAECNNModel(seq_len=5)
    with pytest.raises(ValueError, match="modalities"):
        MSMAECNNModel(modalities=("ecg",))


def test_pretrain_nights_lose_their_labels(sim_nights):
    from hypnoscope.models.msmae_cnn import unlabelled_copies

    test = sim_nights[2]
    copies = unlabelled_copies(test)
    assert (copies[0].y == -100).all() and (test[0].y >= 0).any()
    assert copies[0].X is test[0].X  # signals shared, not copied


def test_msmae_cnn_learns_and_round_trips(sim_nights, fitted, tmp_path):
    model = fitted["tuned"][0]
    assert model.nets["direct"].channel_groups == GROUPS
    night = sim_nights[2][0]
    sub = MSMAECNNModel(modalities=("eeg", "eog")).network_kwargs("direct", 5, night)
    assert sub["channel_groups"] == {"eeg": [0, 1], "eog": [2]}  # EMG left out
    proba = model.predict_proba(night)
    assert proba.shape == (40, 5)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert (proba.argmax(1) == night.y).mean() > 0.3  # chance 0.2, after 120 epochs
    loaded = load_model(model.save(tmp_path / "m.joblib"))
    np.testing.assert_array_equal(loaded.predict_proba(night), proba)
    assert loaded.config["net"]["scales"] == (1.0, 5.0) and loaded.config["mask_ratio"] == 0.5


# -- baselines and the Random-Forest stream -----------------------------------------------
def test_chambon_cnn_layout_and_training(sim_nights, tmp_path):
    net = ChambonCNN(4, 5, 3000, 100.0)
    # braindecode's SleepStagerChambon2018 on 30 s at 100 Hz: 8 maps x 4 virtual
    # channels x 20 time steps after two (conv 0.5 s, max-pool 0.125 s) blocks
    assert net.n_features == 640
    assert sum(p.numel() for p in net.parameters()) == 6841
    assert net.encoder(torch.randn(3, 4, 3000)).shape == (3, 640)
    train, val, test = sim_nights
    model = make_model("cnn", epochs=2, seed=0, num_threads=1, device="cpu", patience=None)
    assert isinstance(model, CNNModel)
    model.fit(train, val)
    assert model.training_summary["direct"]["n_parameters"] == 6841
    p = model.predict_proba(test[0])
    assert p.shape == (40, 5)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(load_model(model.save(tmp_path / "c.joblib"))
                                  .predict_proba(test[0]), p)


def test_paper_feature_set_is_the_eeg_subset_of_epoch_features(sim_nights):
    night = sim_nights[0][0]
    X, names = night_feature_matrix(night, feature_set="msmae-paper")
    eeg = ["EEG Fpz-Cz", "EEG Pz-Oz"]
    assert names == [f"{c}_{f}" for c in eeg for f in PAPER_FEATURES]
    full, full_names = epoch_features(night.X, 100.0, night.roles, night.channels)
    np.testing.assert_allclose(X, full[:, [full_names.index(n) for n in names]], rtol=1e-6)
    np.testing.assert_allclose(X[:, 1], night.X[:, 0].std(axis=1), rtol=1e-4)
    with pytest.raises(ValueError, match="unknown feature_set"):
        night_feature_matrix(night, feature_set="nope")


# -- msmae-cnn-rf --------------------------------------------------------------------------
def test_msmae_cnn_rf_soft_voting_weight_from_validation_nights(sim_nights, tmp_path):
    train, val, test = sim_nights
    for name in ("msmae-cnn", "msmae-cnn-rf", "cnn"):
        assert name in MODEL_REGISTRY
    ens = make_model("msmae-cnn-rf", seed=0, pretrain_epochs=1, epochs=2,
                     rf_options={"n_estimators": 30}, grid_step=0.1, **TINY)
    cnn, rf = ens.members
    assert isinstance(cnn, MSMAECNNModel) and rf.feature_set == "msmae-paper"
    seen: dict[str, list[str]] = {"cnn": [], "rf": []}
    for key, m in (("cnn", cnn), ("rf", rf)):
        inner = m.predict_proba
        m.predict_proba = (lambda night, inner=inner, key=key:
                           seen[key].append(night.night_id) or inner(night))
    ens.fit(train, val)
    val_ids = [n.night_id for n in val]
    assert seen == {"cnn": val_ids, "rf": val_ids}  # weights from validation nights only
    assert ens.metadata["validation_subjects"] == ["s3"]
    # the weight is the grid point with the best validation log-loss
    probas = [cnn.predict_proba(val[0]), rf.predict_proba(val[0])]
    grid = simplex_grid(2, 0.1)
    scores = [score_weights(probas, val[0].y, w, "log_loss") for w in grid]
    assert ens.validation["ensemble"] == pytest.approx(min(scores))
    for m in ens.members:
        del m.predict_proba
    # soft voting is the weighted mean of the members
    night = test[0]
    proba = ens.predict_proba(night)
    w = ens.weights
    np.testing.assert_allclose(proba, w[0] * cnn.predict_proba(night)
                               + w[1] * rf.predict_proba(night))
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    assert ens.name == "msmae-cnn-rf" and ens.input_kind == "signals"
    loaded = load_model(ens.save(tmp_path / "e.joblib"))
    np.testing.assert_array_equal(loaded.predict_proba(night), proba)
    np.testing.assert_array_equal(loaded.weights, w)


# -- command line ------------------------------------------------------------------------
def test_cli_train_msmae_cnn_rf_then_stage_writes_every_output(tmp_path, monkeypatch,
                                                               capsys):
    """``hypnoscope train --model msmae-cnn-rf --data DIR`` on a tiny simulated Sleep-EDF
    folder (1 + 1 epochs), then ``evaluate`` and ``stage --model PATH``."""
    import json

    from hypnoscope.cli import main
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair
    from hypnoscope.staging.outputs import output_names

    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    stages = np.repeat([0, 1, 2, 3, 2, 4, 0, 2, 4, 0], [4, 3, 6, 6, 4, 5, 2, 5, 5, 4])
    for i, rid in enumerate(["SC4001E0", "SC4011E0", "SC4021E0"]):
        write_sleepedf_pair(simulate_night(Hypnogram(stages), seed=i), None, data, rid)
    model_path = tmp_path / "m.joblib"
    code = main(["train", "--model", "msmae-cnn-rf", "--data", str(data), "--out",
                 str(model_path), "--preset", "small", "--epochs", "1",
                 "--pretrain-epochs", "1", "--mask-ratio", "0.25", "--scales", "1", "5",
                 "--val-fraction", "0.34"])
    out = capsys.readouterr().out
    assert code == 0 and "(validation: 1 nights)" in out
    ens = load_model(model_path)
    cnn = ens.members[0]
    assert ens.name == "msmae-cnn-rf" and cnn.config["mask_ratio"] == 0.25
    assert cnn.config["net"]["scales"] == (1.0, 5.0) and cnn.config["pretrain_epochs"] == 1
    pre = ens.metadata["training_data"]["preprocessing"]
    assert pre["lowpass"]["cutoff"] == 10.0 and pre["bandpass"] is None  # the paper's
    assert main(["evaluate", "--model", str(model_path), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n_epochs"] == 3 * 44
    psg = data / "SC4021E0-PSG.edf"
    code = main(["stage", str(psg), "--model", str(model_path), "--out",
                 str(tmp_path / "staged")])
    assert code == 0
    for name in output_names("SC4021E0").values():
        f = tmp_path / "staged" / name
        assert f.is_file() and f.stat().st_size > 0, name
    rows = (tmp_path / "staged" / output_names("SC4021E0")["tsv"]).read_text().splitlines()
    assert len(rows) > 44  # every epoch of the recording, one line each, and a header
    code = main(["train", "--model", "rf", "--data", str(data), "--out",
                 str(tmp_path / "rf.joblib"), "--mask-ratio", "0.3"])
    err = capsys.readouterr().err
    assert code == 2 and "--mask-ratio do(es) not apply to rf" in err
    assert "models that take it: mc2sleepnet, msmae-cnn, msmae-cnn-rf" in err
