"""Tests of hypnoscope.training.loop: phases, losses, freezing, checkpoints, kill and resume."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hypnoscope.stages import UNSCORED
from hypnoscope.training.loop import (
    LossOutput,
    Phase,
    StepContext,
    TrainConfig,
    balanced_class_weights,
    cross_entropy_loss,
    evaluate_loader,
    train_model,
)
from hypnoscope.training.sequences import SequenceDataset
from two_phase_setup import EncoderHeadNet, datasets, make_nights, phases, run

HERE = Path(__file__).parent


class TinySeqNet(nn.Module):
    """Per-position linear classifier over (B, L, F) input."""

    def __init__(self, n_feat=4, n_outputs=5, hidden=32):
        super().__init__()
        self.n_outputs = n_outputs
        self.encoder = nn.Sequential(nn.Linear(n_feat, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, x, mask=None):
        return self.head(self.encoder(x))


def _encoder_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if k.startswith("encoder.")}


def test_balanced_class_weights():
    w = balanced_class_weights(np.array([10, 30, 0, 60]))
    np.testing.assert_allclose(w, [100 / 30, 100 / 90, 0, 100 / 180])


def test_tiny_model_overfits_tiny_batch():
    nights = make_nights(n_nights=1, n_epochs=24, unscored=())
    ds = SequenceDataset(nights, seq_len=4, mode="many-to-many", stride=4)
    torch.manual_seed(0)
    model = TinySeqNet()
    phase = Phase(epochs=60, batch_size=64, lr=2e-2, weight_decay=0.0, schedule="none",
                  patience=None)
    res = train_model(model, ds, None, phase)
    first, last = res.history[0]["train_loss"], res.history[-1]["train_loss"]
    assert last < first / 10, (first, last)  # the loss drops by at least 10x
    assert res.history[-1]["train_acc"] == 1.0


def test_weighted_terms_in_training_and_validation():
    ds = SequenceDataset(make_nights(2), seq_len=4, mode="many-to-one")
    val = SequenceDataset(make_nights(1, seed=1), seq_len=4, mode="many-to-one")

    def two_terms(model, batch, ctx):
        out = cross_entropy_loss(model, batch, ctx)
        out.terms["l2"] = out.logits.pow(2).mean()
        return out

    phase = Phase(epochs=2, batch_size=16, loss=two_terms, loss_weights={"l2": 0.5},
                  patience=None, monitor="val_loss")
    res = train_model(TinySeqNet(), ds, val, phase)
    for row in res.history:
        assert row["train_loss"] == pytest.approx(row["train_ce"] + 0.5 * row["train_l2"],
                                                  rel=1e-5)
        # validation uses the same weights: its loss is the weighted sum of its terms
        assert row["val_loss"] == pytest.approx(row["val_ce"] + 0.5 * row["val_l2"],
                                                rel=1e-5)
        assert row["val_loss"] != pytest.approx(row["val_ce"] + row["val_l2"], rel=1e-3)
    # evaluate_loader on its own gives the same numbers as the last epoch's row
    m = evaluate_loader(TinySeqNet(), val.loader(32), 5, two_terms, loss_weights={"l2": 0.5})
    assert m["loss"] == pytest.approx(m["ce"] + 0.5 * m["l2"], rel=1e-6)


def test_two_phase_pretrain_then_frozen_finetune(tmp_path):
    """Self-supervised reconstruction on unlabelled nights, then supervised fine-tuning
    with the encoder frozen: the encoder (weights and batch-norm buffers) is bit-identical
    after phase 2, and trainable again in a later phase."""
    train, val = datasets()
    assert (train.targets < 0).all(axis=1).sum() > 0  # unlabelled windows present
    torch.manual_seed(0)
    model = EncoderHeadNet()
    init = _encoder_state(model)
    head0 = model.head.weight.clone()
    ph = phases()
    res = train_model(model, train, val, ph[:1], TrainConfig(seed=0))
    pretrained = _encoder_state(model)
    assert any(not torch.equal(pretrained[k], init[k]) for k in init)
    assert torch.equal(model.head.weight, head0)  # not in phase 1's parameter groups
    # phase 1 trained on every window (unlabelled nights too), phase 2 on scored ones
    assert res.phases[0].name == "pretrain"
    assert [r["phase"] for r in res.history] == ["pretrain"] * 3
    assert "val_acc" not in res.history[0]  # no logits in a reconstruction loss

    res2 = train_model(model, train, val, ph[1:], TrainConfig(seed=0))
    after = _encoder_state(model)
    for k in pretrained:
        assert torch.equal(after[k], pretrained[k]), k
    assert not torch.equal(model.head.weight, head0)
    assert res2.history[-1]["val_acc"] > 0.5
    assert all(p.requires_grad for p in model.parameters())  # frozen for that phase only

    again = Phase(name="unfrozen", params=["encoder."], epochs=1, batch_size=8, lr=1e-2,
                  patience=None)
    train_model(model, train, val, again, TrainConfig(seed=0))
    assert any(not torch.equal(_encoder_state(model)[k], after[k]) for k in after)


def test_per_group_learning_rates_and_schedule():
    ds = SequenceDataset(make_nights(2), seq_len=4)
    phase = Phase(params={"encoder.": 1e-2, "head.": 1e-3}, epochs=2, batch_size=16,
                  schedule="cosine", min_lr_ratio=0.1, patience=None)
    model = TinySeqNet()
    seen = []

    def spy(model, batch, ctx):
        return cross_entropy_loss(model, batch, ctx)

    phase.loss = spy
    res = train_model(model, ds, None, phase)
    assert res.history[0]["lr"] == pytest.approx(1e-2)  # first group's lr, epoch 1
    assert res.history[1]["lr"] == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5))  # half-way
    del seen
    with pytest.raises(ValueError, match=r"no parameter starts with \['decoder.'\]"):
        train_model(TinySeqNet(), ds, None, Phase(params=["decoder.", "head."], epochs=1))
    with pytest.raises(ValueError, match="trains no parameter"):
        train_model(TinySeqNet(), ds, None, Phase(freeze=("",), epochs=1))


def test_early_stopping_best_checkpoint_and_min_mode(tmp_path):
    ds = SequenceDataset(make_nights(2), seq_len=4)
    val = SequenceDataset(make_nights(1, seed=1), seq_len=4)
    # lr = 0: the validation score never improves after epoch 1
    phase = Phase(epochs=10, lr=0.0, patience=2, monitor="val_macro_f1")
    res = train_model(TinySeqNet(), ds, val, phase, TrainConfig(checkpoint_dir=str(tmp_path)))
    assert res.stopped_early and len(res.history) == 3 and res.best_epoch == 1
    assert (tmp_path / "train" / "best.pt").is_file() and (tmp_path / "last.pt").is_file()
    with open(tmp_path / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"phase", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1", "lr",
            "time_s"} <= set(rows[0])
    # minimising the validation loss keeps the epoch with the lowest one
    res = train_model(TinySeqNet(), ds, val, Phase(epochs=4, lr=5e-2, monitor="val_loss",
                                                   patience=None))
    losses = [r["val_loss"] for r in res.history]
    assert res.best_epoch == int(np.argmin(losses)) + 1 and res.best_score == min(losses)
    # a monitor the loss cannot give is a clear error
    def no_logits(model, batch, ctx):
        return {"l2": model(batch["x"]["feat"]).pow(2).mean()}

    with pytest.raises(ValueError, match="monitors 'val_acc'.*val_l2"):
        train_model(TinySeqNet(), ds, val, Phase(epochs=1, loss=no_logits))


def test_kill_in_phase_two_then_resume_matches_uninterrupted(tmp_path):
    full_model, full = run(tmp_path / "full")
    assert [p.name for p in full.phases] == ["pretrain", "finetune"]
    # a real SIGKILL in the second epoch of phase 2 (no clean-up of any kind)
    train, _ = datasets()
    per_epoch = -(-int(train.scored().__len__()) // 8)
    ckpt = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH",
                                                                              "")}
    proc = subprocess.run([sys.executable, str(HERE / "two_phase_setup.py"), str(ckpt),
                           str(per_epoch + 2)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    state = torch.load(ckpt / "last.pt", weights_only=False)
    assert (state["phase_index"], state["epoch"]) == (1, 1)  # phase 2, epoch 1 complete
    resumed_model, resumed = run(ckpt, resume=True)
    assert resumed.resumed_from == ("finetune", 1)
    assert [(r["phase"], r["epoch"]) for r in resumed.history] == \
        [(r["phase"], r["epoch"]) for r in full.history]
    for k, v in full_model.state_dict().items():
        assert torch.equal(resumed_model.state_dict()[k], v), k
    # resuming a finished run changes nothing; other phases are refused
    again_model, _ = run(ckpt, resume=True)
    for k, v in full_model.state_dict().items():
        assert torch.equal(again_model.state_dict()[k], v), k
    with pytest.raises(ValueError, match="written for phases"):
        train_model(EncoderHeadNet(), train, None, Phase(name="other", epochs=1),
                    TrainConfig(checkpoint_dir=str(ckpt), resume=True))
    with pytest.raises(ValueError, match="needs checkpoint_dir"):
        train_model(EncoderHeadNet(), train, None, Phase(epochs=1), TrainConfig(resume=True))


def test_resume_refuses_another_architecture(tmp_path):
    ds = SequenceDataset(make_nights(2), seq_len=4)
    train_model(TinySeqNet(), ds, None, Phase(epochs=1, patience=None),
                TrainConfig(checkpoint_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="cannot resume from .*last.pt"):
        train_model(TinySeqNet(hidden=8), ds, None, Phase(epochs=2),
                    TrainConfig(checkpoint_dir=str(tmp_path), resume=True))


def test_phase_validation():
    with pytest.raises(ValueError, match="optimizer"):
        Phase(optimizer="sgd")
    with pytest.raises(ValueError, match="monitor"):
        Phase(monitor="loss")
    with pytest.raises(ValueError, match="schedule"):
        Phase(schedule="linear")
    with pytest.raises(ValueError, match="mode"):
        Phase(mode="up")
    assert Phase(monitor="val_rec").mode == "min" and Phase().mode == "max"
    with pytest.raises(ValueError, match="unique"):
        train_model(TinySeqNet(), SequenceDataset(make_nights(1), 4), None,
                    [Phase(epochs=1), Phase(epochs=1)])


def test_cross_entropy_label_smoothing_matches_the_formula():
    class Fixed(nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, x, mask=None):
            return self.logits

    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]]])
    y = torch.tensor([[0, UNSCORED]])
    batch = {"x": {"feat": torch.zeros(1, 2, 1)}, "mask": torch.ones(1, 2, dtype=torch.bool),
             "y": y}
    ctx = StepContext(None, 3, "t", True)
    plain = cross_entropy_loss(Fixed(logits), batch, ctx).terms["ce"].item()
    smooth = cross_entropy_loss(Fixed(logits), batch, ctx, label_smoothing=0.3).terms["ce"]
    logp = torch.log_softmax(logits[0, 0], -1)
    assert plain == pytest.approx(-logp[0].item(), rel=1e-6)  # unscored position ignored
    expected = -(0.7 * logp[0] + 0.3 * logp.mean()).item()
    assert smooth.item() == pytest.approx(expected, rel=1e-6)
    assert isinstance(cross_entropy_loss(Fixed(logits), batch, ctx), LossOutput)
