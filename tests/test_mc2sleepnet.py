"""MC²SleepNet: shapes of the paper's backbones, epoch-wise attention, InfoNCE by hand,
cross-masking, cross-attention, frozen fine-tuning, save/load, overfitting; and the
augmentations of its contrastive step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hypnoscope.models import load_model, make_model
from hypnoscope.models.mc2sleepnet import (
    BACKBONE_PREFIXES,
    EPOCH_HEAD_PREFIXES,
    PRESETS,
    EpochWiseAttention,
    MC2SleepNet,
    RawCNNBackbone,
    SpectrogramTransformerBackbone,
    cross_mask,
    eeg_first,
    info_nce,
)
from hypnoscope.training import augment
from test_views_and_deep_base import signal_nights

TINY = {"d_model": 16, "cnn_widths": (4, 4, 8, 8, 32), "tf_layers": 1, "n_heads": 2,
        "d_ff": 32, "attn_size": 8, "d_proj": 8, "seq_layers": 1}


def tiny_net(**kw):
    torch.manual_seed(0)
    return MC2SleepNet(1, 5, 3000, 100.0, **{**TINY, **kw}).eval()


def batch(B=3, L=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"raw": torch.randn(B, L, 1, 3000, generator=g),
            "spec": torch.randn(B, L, 1, 29, 129, generator=g)}


def test_backbones_give_the_papers_token_shapes():
    raw = RawCNNBackbone(1, 128, (64, 128, 128, 256, 256))
    spec = SpectrogramTransformerBackbone(1, 29, 129, 128, 8, 1024, 4)
    with torch.no_grad():
        assert raw(torch.randn(2, 1, 3000)).shape == (2, 5, 128)
        assert spec(torch.randn(2, 1, 29, 129)).shape == (2, 29, 128)
    # 5 blocks of 2, 2, 3, 3, 3 convolutions, kernel 3
    convs = [m for m in raw.modules() if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) == 13 and {c.kernel_size for c in convs} == {(3,)}
    with pytest.raises(ValueError, match="2 \\* d_model"):
        RawCNNBackbone(1, 128, (64, 128, 128, 256, 128))


def test_paper_preset_parameter_count_is_near_the_papers():
    from hypnoscope.models.mc2sleepnet import paper_parameter_count

    n = paper_parameter_count()
    assert abs(n - 5.76e6) / 5.76e6 < 0.1, n  # the paper: 5.76 M (widths are ours)
    assert PRESETS["paper"]["lr"] == 5e-4 and PRESETS["paper"]["batch_size"] == 32


def test_epoch_wise_attention_weights_sum_to_one_and_pool():
    torch.manual_seed(0)
    ew = EpochWiseAttention(16, 8)
    z = torch.randn(5, 7, 16)
    w = ew.weights(z)
    assert w.shape == (5, 7) and (w > 0).all()
    torch.testing.assert_close(w.sum(1), torch.ones(5))
    torch.testing.assert_close(ew(z), (w[..., None] * z).sum(1))


def test_info_nce_equals_a_hand_computation_and_is_lowest_when_aligned():
    a = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # B=2, L=1, D=2
    b = torch.tensor([[[0.6, 0.8]], [[0.8, -0.6]]])
    tau = 0.5
    # by hand: sim[i, k] = a_i . b_k / tau (unit vectors already)
    s = np.array([[0.6, 0.8], [0.8, -0.6]]) / tau
    a2b = -np.mean([s[0, 0] - np.log(np.exp(s[0]).sum()), s[1, 1] - np.log(np.exp(s[1]).sum())])
    b2a = -np.mean([s[0, 0] - np.log(np.exp(s[:, 0]).sum()),
                    s[1, 1] - np.log(np.exp(s[:, 1]).sum())])
    got = info_nce(a, b, temperature=tau)
    assert math.isclose(float(got), (a2b + b2a) / 2, rel_tol=1e-6)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 16, generator=g)
    aligned = info_nce(x, x + 0.01 * torch.randn(8, 3, 16, generator=g))
    shuffled = info_nce(x, x[torch.randperm(8, generator=g)])
    assert float(aligned) < float(shuffled)
    assert float(aligned) < math.log(8)  # chance level is log(B)
    # padded epochs are neither anchors nor negatives
    mask = torch.ones(8, 3, dtype=torch.bool)
    mask[5:, 2] = False
    y = x.clone()
    y[5:, 2] = 100.0
    part = info_nce(x[:5, 2:], y[:5, 2:])
    whole = info_nce(x[:, :2], y[:, :2])
    expected = (whole * 16 + part * 5) / 21  # mean over the 21 valid anchors
    torch.testing.assert_close(info_nce(x, y, mask), expected, rtol=1e-5, atol=1e-6)


def test_cross_masking_ratio_and_shared_token():
    token = torch.arange(4, dtype=torch.float32)
    x = torch.randn(200, 50, 4)
    for r in (0.15, 0.5, 0.7):
        out, masked = cross_mask(x, r, token, torch.Generator().manual_seed(0))
        assert abs(masked.float().mean().item() - r) < 0.02
        assert (out[masked] == token).all()
        torch.testing.assert_close(out[~masked], x[~masked])
    with pytest.raises(ValueError, match="mask_ratio"):
        cross_mask(x, 1.0, token)
    net = tiny_net()
    net.train()
    out = net.outputs(batch(), mask_ratio=0.5, generator=torch.Generator().manual_seed(0))
    assert out["masked"]["raw"].any() and not out["masked"]["raw"].all()
    # masking only when asked
    assert not net.outputs(batch())["masked"]["spec"].any()


def test_cross_attention_uses_the_other_view():
    x, y = batch(), batch(seed=5)
    changed = {"raw": x["raw"], "spec": y["spec"]}
    net = tiny_net()
    with torch.no_grad():
        a = net.outputs(x)["logits_raw"]
        b = net.outputs(changed)["logits_raw"]
    assert not torch.allclose(a, b)
    net = tiny_net(cross_attention=False)
    with torch.no_grad():
        torch.testing.assert_close(net.outputs(x)["logits_raw"],
                                   net.outputs(changed)["logits_raw"])


def test_single_epoch_variants_do_not_mix_epochs():
    net = tiny_net(branches="raw", seq_layers=0)
    x = batch()
    x2 = {k: v.clone() for k, v in x.items()}
    x2["raw"][:, 1] = 0.0
    with torch.no_grad():
        a, b = net(x), net(x2)
    torch.testing.assert_close(a[:, [0, 2, 3]], b[:, [0, 2, 3]])
    assert not hasattr(net, "spec_backbone") and not hasattr(net, "head")


def _state(net, prefixes):
    return {k: v.clone() for k, v in net.state_dict().items() if k.startswith(prefixes)}


def test_finetuning_leaves_backbones_bit_identical_and_save_load(tmp_path):
    tr = signal_nights(3, 24, seed=0)
    va = signal_nights(1, 24, seed=1)
    te = signal_nights(1, 24, seed=2)[0]
    model = make_model("mc2sleepnet", seq_len=6, batch_size=4, pretrain_epochs=2, epochs=2,
                       backbone_epochs=0, seed=0, checkpoint_dir=str(tmp_path / "ckpt"),
                       **TINY)
    model.fit(tr, va)
    assert [p["name"] for p in model.training_summary["direct"]["phases"]] == [
        "pretrain", "finetune"]
    hist = model.training_summary["direct"]["history"]
    assert {"train_nce", "train_ce_raw", "train_ce_spec", "train_ce_cat"} <= set(hist[0])
    assert "train_nce" not in hist[-1]  # fine-tuning: no contrastive term
    # the pre-trained backbones (best pre-training checkpoint) are the final ones, bit for bit
    pre = torch.load(tmp_path / "ckpt" / "pretrain" / "best.pt", weights_only=False)["model"]
    final = model.nets["direct"].state_dict()
    for k, v in pre.items():
        if k.startswith(BACKBONE_PREFIXES):
            assert torch.equal(v, final[k]), k
    assert any(not torch.equal(v, final[k]) for k, v in pre.items()
               if k.startswith(("raw_seq.", "spec_seq.", "head.")))
    p = model.predict_proba(te)
    assert p.shape == (24, 5)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
    model.save(tmp_path / "m.joblib")
    again = load_model(tmp_path / "m.joblib")
    np.testing.assert_array_equal(again.predict_proba(te), p)
    # one EEG channel by default, EEG first
    assert model.channel_index == [0] and again.channel_index == [0]
    assert eeg_first(["eog", "eeg", "emg", "eeg"], 2) == [1, 3]
    # init_from: another model starts from these weights
    init = make_model("mc2sleepnet", seq_len=6, batch_size=4, pretrain_epochs=0, epochs=1,
                      seed=1, init_from=str(tmp_path / "m.joblib"), **TINY)
    init.fit(tr, va)
    assert [p["name"] for p in init.training_summary["direct"]["phases"]] == ["finetune"]
    assert init.metadata["initialised_from"]["n_tensors"] == len(final)
    for k, v in final.items():
        if k.startswith(BACKBONE_PREFIXES):
            assert torch.equal(v, init.nets["direct"].state_dict()[k]), k


def test_backbone_phases_train_one_backbone_each_and_hand_their_weights_on(tmp_path):
    """The backbone pre-training phases: which weights each phase trains, and that each
    phase starts from the best weights of the one before (its best.pt)."""
    tr = signal_nights(3, 24, seed=0)
    va = signal_nights(1, 24, seed=1)
    ckpt = tmp_path / "ckpt"
    model = make_model("mc2sleepnet", seq_len=6, batch_size=4, backbone_epochs=1,
                       pretrain_epochs=1, epochs=1, seed=0, checkpoint_dir=str(ckpt), **TINY)
    start: dict[str, tuple[set, dict]] = {}  # phase -> (trainable names, weights at start)

    def spy(name):
        inner = getattr(model, name)

        def loss(net, batch, ctx, **kw):
            if ctx.training and ctx.phase not in start:
                start[ctx.phase] = ({k for k, p in net.named_parameters() if p.requires_grad},
                                    {k: v.clone() for k, v in net.state_dict().items()})
            return inner(net, batch, ctx, **kw)
        setattr(model, name, loss)

    spy("backbone_loss")
    spy("sequence_loss")
    model.fit(tr, va)
    names = ["backbone_raw", "backbone_spec", "pretrain", "finetune"]
    assert list(start) == names
    assert [p["name"] for p in model.training_summary["direct"]["phases"]] == names
    net = model.nets["direct"]
    every = {k for k, _ in net.named_parameters()}

    def under(prefixes):
        return {k for k in every if k.startswith(prefixes)}

    for v in ("raw", "spec"):  # one backbone, its attention and its epoch head
        assert start[f"backbone_{v}"][0] == under((f"{v}_backbone.", f"{v}_attention.",
                                                   f"{v}_epoch_head."))
    assert start["pretrain"][0] == every - under(EPOCH_HEAD_PREFIXES)
    assert start["finetune"][0] == every - under(BACKBONE_PREFIXES)
    assert under(EPOCH_HEAD_PREFIXES) == {f"{v}_epoch_head.{w}" for v in ("raw", "spec")
                                          for w in ("weight", "bias")}

    best = {p: torch.load(ckpt / p / "best.pt", weights_only=False)["model"] for p in names}
    for prev, nxt in zip(names, names[1:], strict=False):  # each starts from the best before
        for k, v in best[prev].items():
            assert torch.equal(start[nxt][1][k], v), (nxt, k)
    init = start["backbone_raw"][1]
    for k, v in best["backbone_raw"].items():  # the raw phase left the spectrogram side alone
        if not k.startswith(("raw_backbone.", "raw_attention.", "raw_epoch_head.")):
            assert torch.equal(v, init[k]), k
    assert any(not torch.equal(v, init[k]) for k, v in best["backbone_raw"].items()
               if k.startswith("raw_backbone."))  # and trained the CNN
    assert any(not torch.equal(v, best["backbone_raw"][k])
               for k, v in best["backbone_spec"].items() if k.startswith("spec_backbone."))
    final = net.state_dict()
    for k in under(EPOCH_HEAD_PREFIXES):  # the epoch heads serve their phase only
        assert torch.equal(final[k], best["backbone_spec"][k]), k
    # no backbone phases (and no epoch heads) without both branches or with 0 epochs
    single = make_model("mc2sleepnet", branches="raw", seq_layers=0, **{
        k: v for k, v in TINY.items() if k != "seq_layers"})
    assert [p.name for p in single.phases("direct")] == ["supervised"]
    off = make_model("mc2sleepnet", backbone_epochs=0, seq_len=6, batch_size=4,
                     pretrain_epochs=1, epochs=1, **TINY)
    assert off.network_kwargs("direct", 5, off._with_views(tr[:1])[0])["epoch_heads"] is False
    with pytest.raises(ValueError, match="no epoch heads"):
        tiny_net().epoch_logits("raw", batch()["raw"])


def test_per_view_heads_are_mlps_as_eq_20_21_and_old_files_keep_linear_heads():
    d, n = TINY["d_model"], 5
    net = tiny_net()
    for v in ("raw", "spec"):  # Linear(d, d) - ReLU - Dropout - Linear(d, classes)
        head = getattr(net, f"{v}_head")
        layers = [m for m in head if isinstance(m, torch.nn.Linear)]
        assert [type(m) for m in head] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Dropout,
                                           torch.nn.Linear]
        assert [tuple(m.weight.shape) for m in layers] == [(d, d), (n, d)]
    cat = [tuple(m.weight.shape) for m in net.head if isinstance(m, torch.nn.Linear)]
    assert cat == [(d, 2 * d), (n, d)]
    with torch.no_grad():
        out = net.outputs(batch(B=3, L=4))
    assert {k: tuple(out[k].shape) for k in ("logits_raw", "logits_spec", "logits_cat")} == {
        k: (3, 4, n) for k in ("logits_raw", "logits_spec", "logits_cat")}
    lin = tiny_net(view_head="linear")
    assert isinstance(lin.raw_head, torch.nn.Linear) and lin.raw_head.weight.shape == (n, d)
    assert (sum(p.numel() for p in net.parameters()) - sum(p.numel() for p in lin.parameters())
            == 2 * (d * d + d))  # the two hidden layers
    with pytest.raises(ValueError, match="view_head"):
        tiny_net(view_head="deep")
    # a model file saved before the MLP heads (no view_head among its network arguments)
    model = make_model("mc2sleepnet", **TINY)
    kwargs = {"n_chans": 1, "n_outputs": n, "n_times": 3000, "sfreq": 100.0, **TINY}
    assert isinstance(model.build_network(kwargs).raw_head, torch.nn.Linear)
    assert isinstance(model.build_network({**kwargs, "view_head": "mlp"}).raw_head,
                      torch.nn.Sequential)
    # gradient clipping at norm 5 (ours), None as the paper (which mentions none)
    assert model.config["grad_clip"] == 5.0
    assert all(p.grad_clip == 5.0 for p in model.phases("direct"))
    assert all(p.grad_clip is None
               for p in make_model("mc2sleepnet", grad_clip=None).phases("direct"))


def test_cross_masks_are_drawn_independently_per_view():
    net = tiny_net()
    net.train()
    x = batch(B=40, L=25)
    out = net.outputs(x, mask_ratio=0.5, generator=torch.Generator().manual_seed(0))
    raw, spec = out["masked"]["raw"], out["masked"]["spec"]
    both = (raw & spec).float().mean().item()
    assert abs(raw.float().mean().item() - 0.5) < 0.05
    assert abs(both - 0.25) < 0.05  # independent draws: 0.5 * 0.5 of the epochs in both


def test_a_tiny_model_overfits_a_tiny_batch():
    torch.manual_seed(0)
    net = MC2SleepNet(1, 5, 500, 100.0, n_frames=5, n_freqs=17, **{**TINY, "dropout": 0.0})
    g = torch.Generator().manual_seed(3)
    x = {"raw": torch.randn(3, 4, 1, 500, generator=g),
         "spec": torch.randn(3, 4, 1, 5, 17, generator=g)}
    y = torch.randint(0, 5, (3, 4), generator=g)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    net.train()
    for _ in range(60):
        out = net.outputs(x, mask_ratio=0.0)
        loss = sum(torch.nn.functional.cross_entropy(out[k].reshape(-1, 5), y.reshape(-1))
                   for k in ("logits_raw", "logits_spec", "logits_cat"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        assert (net(x).argmax(-1) == y).float().mean() == 1.0


def test_variants_and_bad_options():
    m = make_model("mc2sleepnet", contrastive=False, mask_ratio=0.0)
    assert [p.name for p in m.phases("direct")] == ["supervised"]
    assert m.phases("direct")[0].freeze == ()
    m = make_model("mc2sleepnet", finetune=False)
    assert [p.name for p in m.phases("direct")] == ["backbone_raw", "backbone_spec",
                                                     "pretrain"]
    ph = make_model("mc2sleepnet").phases("direct")
    assert [p.epochs for p in ph[:2]] == [PRESETS["small"]["backbone_epochs"]] * 2
    assert ph[2].loss_weights == {"nce": 1.0, "ce_raw": 1.0, "ce_spec": 0.1, "ce_cat": 0.1}
    assert ph[2].freeze == EPOCH_HEAD_PREFIXES
    assert ph[3].freeze == BACKBONE_PREFIXES and ph[3].optimizer == "adam"
    assert [p.name for p in make_model("mc2sleepnet", backbone_epochs=0).phases("direct")] == [
        "pretrain", "finetune"]
    with pytest.raises(ValueError, match="backbone_epochs"):
        make_model("mc2sleepnet", backbone_epochs=-1)
    m = make_model("mc2sleepnet", branches="spec", seq_layers=0)
    assert not m.config["contrastive"] and m.config["mask_ratio"] == 0
    with pytest.raises(ValueError, match="mask_ratio"):
        make_model("mc2sleepnet", mask_ratio=1.2)
    with pytest.raises(ValueError, match="branches"):
        MC2SleepNet(1, 5, branches="eeg")
    feat = signal_nights(1)[0]
    feat = type(feat)(X=np.zeros((4, 3)), y=np.zeros(4, int), subject_id="s", night_id="n")
    with pytest.raises(ValueError, match="raw signals"):
        make_model("mc2sleepnet").network_kwargs("direct", 5, feat)


# -- augmentations ----------------------------------------------------------------------
def test_augmentations_do_what_they_say():
    g = torch.Generator().manual_seed(0)
    t = torch.arange(3000) / 100.0
    x = torch.stack([torch.sin(2 * math.pi * 10 * t) + torch.sin(2 * math.pi * 2 * t)] * 4)[
        :, None]  # (4, 1, 3000): 2 Hz + 10 Hz
    s = augment.amplitude_scale(x, 0.5, 2.0, g)
    ratio = (s / x)[x.abs() > 0.1].reshape(-1)
    assert 0.5 <= ratio.min() and ratio.max() < 2.0
    sh = augment.amplitude_shift(x, 1.0, g) - x
    assert torch.allclose(sh, sh[..., :1].expand_as(sh), atol=1e-6)  # constant per sample
    n = augment.gaussian_noise(torch.zeros(2, 1, 100000), 0.2, g)
    assert abs(float(n.std()) - 0.2) < 0.005
    bs = augment.band_stop(x, 100.0, width=2.0, low=9.0, high=12.0, generator=g)
    spec_in, spec_out = torch.fft.rfft(x).abs(), torch.fft.rfft(bs).abs()
    f = torch.fft.rfftfreq(3000, 0.01)
    at10, at2 = int((f - 10).abs().argmin()), int((f - 2).abs().argmin())
    assert (spec_out[..., at10] < 1e-3 * spec_in[..., at10]).all()  # the band is gone
    torch.testing.assert_close(spec_out[..., at2], spec_in[..., at2])  # the rest stays
    ts = augment.time_shift(x, 50, g)
    assert any(torch.equal(ts[0, 0], torch.roll(x[0, 0], k)) for k in range(-50, 51))
    z = augment.zero_mask(torch.ones(50, 1, 1000), 0.1, g)
    zeros = (z == 0).sum(-1).reshape(-1)
    assert zeros.max() <= 100 and zeros.sum() > 0
    runs = [np.flatnonzero(row.numpy() == 0) for row in z[:, 0]]
    assert all(len(r) == 0 or r[-1] - r[0] + 1 == len(r) for r in runs)  # contiguous
    sn = augment.spectrogram_noise(torch.zeros(3, 1, 29, 129), 0.1, g)
    assert 0.08 < float(sn.std()) < 0.12
    ra = augment.RandomAugment(100.0, seed=0)
    out = ra(x.repeat(10, 1, 1))
    assert out.shape == (40, 1, 3000) and not torch.equal(out, x.repeat(10, 1, 1))
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment.RandomAugment(100.0, names=["flip"])
    with pytest.raises(ValueError, match="band_stop"):
        augment.band_stop(x, 100.0, width=60.0)


# -- command line and the real-data protocol script -------------------------------------
def _tiny_sleepedf(folder, n_subjects=3, nights=(1,)):
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    rng = np.random.default_rng(0)
    for subj in range(n_subjects):
        for night in nights:
            stages = np.repeat(rng.permutation([0, 1, 2, 3, 4, 2, 0, 2, 4, 0]), 4)
            write_sleepedf_pair(simulate_night(Hypnogram(stages), seed=10 * subj + night),
                                None, folder, f"SC40{subj}{night}E0")


def test_cli_train_evaluate_stage_init_from(tmp_path, monkeypatch, capsys):
    import json

    from hypnoscope.cli import main
    from hypnoscope.staging.outputs import output_names

    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    _tiny_sleepedf(data)
    model_path = tmp_path / "mc2.joblib"
    args = ["train", "--model", "mc2sleepnet", "--data", str(data), "--seq-len", "6",
            "--epochs", "1", "--val-fraction", "0.34"]
    assert main(args + ["--out", str(model_path), "--pretrain-epochs", "1",
                        "--mask-ratio", "0.3"]) == 0
    assert "trained mc2sleepnet" in capsys.readouterr().out
    model = load_model(model_path)
    assert model.config["mask_ratio"] == 0.3 and model.input_views == ["raw", "spec"]
    assert model.metadata["channels"] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal",
                                          "EMG submental"]
    assert model.channel_index == [0]  # one EEG channel, as the paper
    # trained (and so staged) without a band-pass, as the paper
    assert model.metadata["training_data"]["preprocessing"]["bandpass"] is None
    assert main(["evaluate", "--model", str(model_path), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_epochs"] == 3 * 40
    assert main(["stage", str(data / "SC4001E0-PSG.edf"), "--model", str(model_path),
                 "--out", str(tmp_path / "staged")]) == 0
    tsv = tmp_path / "staged" / output_names("SC4001E0")["tsv"]
    assert len(tsv.read_text().splitlines()) > 40
    # the "+" rows: start from a trained model, fine-tune only
    plus = tmp_path / "plus.joblib"
    assert main(args + ["--out", str(plus), "--init-from", str(model_path),
                        "--pretrain-epochs", "0"]) == 0
    m2 = load_model(plus)
    assert m2.metadata["initialised_from"]["path"] == str(model_path)
    assert [p["name"] for p in m2.training_summary["direct"]["phases"]] == ["finetune"]
    # "Gamma": pre-training only (the flag becomes finetune=False)
    from hypnoscope.cli import build_parser
    from hypnoscope.cli.train import _model_options

    ns = build_parser().parse_args(args + ["--out", "g.joblib", "--pretrain-only"])
    assert _model_options(ns) == {"finetune": False}
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "x.joblib"), "--init-from",
                        str(tmp_path / "missing.joblib")]) == 2
    assert "missing.joblib: no such model file" in capsys.readouterr().err
    assert main(["train", "--model", "cnn", "--data", str(data), "--out",
                 str(tmp_path / "c.joblib"), "--pretrain-only"]) == 2
    assert "--pretrain-only do(es) not apply to cnn" in capsys.readouterr().err


def test_sleepedf78_protocol_script_runs_end_to_end(tmp_path, monkeypatch):
    import importlib
    import json
    from pathlib import Path

    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "sleep-edf"
    _tiny_sleepedf(data, n_subjects=4)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))  # the repository
    mod = importlib.import_module("benchmarks.mc2sleepnet.sleepedf78")
    net = json.dumps({**TINY, "cnn_widths": list(TINY["cnn_widths"])})
    args = ["--data", str(data), "--folds", "2", "--preset", "small", "--epochs", "1",
            "--pretrain-epochs", "1", "--net", net, "--work-dir", str(tmp_path / "work"),
            "--out", str(tmp_path / "results"), "--device", "cpu"]
    assert mod.main(args) == 0
    res = json.loads((tmp_path / "results" / "mc2sleepnet_sleepedf78.json").read_text())
    assert res["pooled"]["n_epochs"] == 4 * 40  # every subject tested exactly once
    tested = [s for f in res["folds"] for s in f["fold"]["test_subjects"]]
    assert sorted(tested) == sorted(set(tested)) and len(tested) == 4
    assert len(list((tmp_path / "work" / "folds").glob("fold*.npz"))) == 2
    # a rerun resumes from the stored folds (no training)
    monkeypatch.setattr("hypnoscope.models.make_model",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    assert mod.main(args) == 0


# -- preprocessing: none by default (the paper states none), the band-pass an option ------
def _amplitude(x: np.ndarray, freq: float, fs: float = 100.0) -> float:
    spec = np.abs(np.fft.rfft(x)) * 2 / len(x)
    return float(spec[int(round(freq * len(x) / fs))])


def test_mc2sleepnet_preprocessing_keeps_the_band_above_35_hz_unless_asked(monkeypatch):
    from argparse import Namespace
    from pathlib import Path

    from hypnoscope.cli.train import _training_preprocessing
    from hypnoscope.signal.preprocessing import Pipeline

    def cfg(model="mc2sleepnet", **kw):
        args = Namespace(model=model, lowpass=None, highpass=None, features=None,
                         bandpass=None)
        for k, v in kw.items():
            setattr(args, k, v)
        return _training_preprocessing(args)

    assert cfg() == {"notch": None, "bandpass": None, "lowpass": None, "normalize": "zscore"}
    assert cfg(bandpass="default")["bandpass"] == "default"
    assert cfg(lowpass=0.0) is None  # 0: the loaders' default preprocessing
    assert cfg(model="ssnet") is None and cfg(model="ssnet", bandpass="none")["bandpass"] is None
    assert cfg(model="msmae-cnn")["lowpass"]["cutoff"] == 10.0  # unchanged
    # a 45-Hz rhythm survives the default, the option removes it
    t = np.arange(60 * 100) / 100.0
    x = np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 45 * t)
    inner = slice(1000, -1000)
    kept = Pipeline(cfg()).apply(x[None], 100.0, ["eeg"])[0]
    cut = Pipeline(cfg(bandpass="default")).apply(x[None], 100.0, ["eeg"])[0]
    assert _amplitude(kept[inner], 45) == pytest.approx(_amplitude(kept[inner], 10), rel=0.02)
    assert _amplitude(cut[inner], 45) < 0.01 * _amplitude(cut[inner], 10)
    # the real-data protocol scripts: the same default, the same option
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from benchmarks.mc2sleepnet.sleepedf78 import preprocessing

    assert preprocessing() == cfg() and preprocessing("default") == cfg(bandpass="default")
