"""Tests of hypnoscope.training: sequence windows, the loop, checkpoints and resume."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch import nn

from hypnoscope.datasets import Night
from hypnoscope.stages import UNSCORED, to_3class
from hypnoscope.training import (
    SequenceDataset,
    TrainConfig,
    balanced_class_weights,
    cross_entropy_loss,
    train_model,
)


def make_nights(n_nights=3, n_epochs=40, n_feat=4, seed=0, unscored=(0, 5)):
    """Feature nights whose labels are readable from the features (learnable)."""
    rng = np.random.default_rng(seed)
    nights = []
    for k in range(n_nights):
        y = rng.integers(0, 5, n_epochs)
        X = rng.normal(0, 0.3, (n_epochs, n_feat)).astype(np.float32)
        X[:, 0] += y
        y[list(unscored)] = UNSCORED
        nights.append(Night(X=X, y=y, subject_id=f"s{k}", night_id=f"s{k}n1"))
    return nights


class TinySeqNet(nn.Module):
    """Per-position linear classifier over (B, L, F) input."""

    def __init__(self, n_feat=4, n_classes=5, hidden=32):
        super().__init__()
        self.n_classes = n_classes
        self.encoder = nn.Sequential(nn.Linear(n_feat, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x, mask=None):
        return self.head(self.encoder(x))


def test_many_to_one_windows_shapes_masks_and_targets():
    nights = make_nights(n_nights=2, n_epochs=30, unscored=(3,))
    ds = SequenceDataset(nights, seq_len=5, mode="many-to-one")
    # one window per scored epoch (one unscored epoch per night is dropped)
    assert len(ds) == 2 * 29
    b = ds.__getitems__([0, 1, 2])
    assert b["x"].shape == (3, 5, 4) and b["mask"].shape == (3, 5) and b["y"].shape == (3,)
    # first window of a night: 4 padded positions on the left, target = epoch 0
    assert b["mask"][0].tolist() == [False, False, False, False, True]
    assert int(b["y"][0]) == nights[0].y[0]
    torch.testing.assert_close(b["x"][0, -1], torch.from_numpy(nights[0].X[0]))
    # windows never cross nights: all indices of a window lie in one night's range
    night_of_row = np.repeat([0, 1], 30)
    assert (night_of_row[ds.index] == night_of_row[ds.index[:, :1]]).all()
    # the target is the label of the last epoch of each window
    y_all = np.concatenate([n.y for n in nights])
    np.testing.assert_array_equal(ds.targets, y_all[ds.index[:, -1]])
    full = SequenceDataset(nights, seq_len=5, drop_unlabelled=False)
    assert len(full) == 60


def test_many_to_many_windows_cover_night_and_pad_targets():
    night = make_nights(n_nights=1, n_epochs=23, unscored=())[0]
    ds = SequenceDataset([night], seq_len=10, mode="many-to-many", stride=5)
    covered = np.unique(ds.index[ds.mask])
    np.testing.assert_array_equal(covered, np.arange(23))
    assert ds.targets.shape == (len(ds), 10)
    short = make_nights(n_nights=1, n_epochs=4, unscored=())[0]
    ds2 = SequenceDataset([short], seq_len=6, mode="many-to-many", label_map=to_3class)
    assert ds2.mask.tolist() == [[True] * 4 + [False] * 2]
    assert ds2.targets[0, 4:].tolist() == [UNSCORED, UNSCORED]
    np.testing.assert_array_equal(ds2.targets[0, :4], to_3class(short.y))


def test_dataset_rejects_mixed_shapes():
    a = make_nights(1, n_feat=4)[0]
    b = make_nights(1, n_feat=3)[0]
    with pytest.raises(ValueError, match="different per-epoch shapes"):
        SequenceDataset([a, b], seq_len=3)


def test_balanced_class_weights():
    w = balanced_class_weights(np.array([10, 30, 0, 60]))
    np.testing.assert_allclose(w, [100 / 30, 100 / 90, 0, 100 / 180])


def test_tiny_model_overfits_tiny_batch():
    nights = make_nights(n_nights=1, n_epochs=24, unscored=())
    ds = SequenceDataset(nights, seq_len=4, mode="many-to-many", stride=4)
    torch.manual_seed(0)
    model = TinySeqNet()
    cfg = TrainConfig(epochs=60, batch_size=64, lr=2e-2, weight_decay=0.0, schedule="none",
                      patience=None, seed=0)
    res = train_model(model, ds, None, cfg)
    first, last = res.history[0]["train_loss"], res.history[-1]["train_loss"]
    assert last < first / 10, (first, last)  # the loss drops by at least 10x
    assert res.history[-1]["train_acc"] == 1.0


def test_named_losses_are_summed_with_weights():
    ds = SequenceDataset(make_nights(2), seq_len=4, mode="many-to-one")

    def two_losses(model, batch, cw):
        losses, logits, targets = cross_entropy_loss(model, batch, cw)
        return {"ce": losses["ce"], "l2": logits.pow(2).mean()}, logits, targets

    cfg = TrainConfig(epochs=2, batch_size=16, loss_weights={"l2": 0.5}, patience=None)
    res = train_model(TinySeqNet(), ds, None, cfg, loss_fn=two_losses)
    for row in res.history:
        assert row["train_loss"] == pytest.approx(row["train_ce"] + 0.5 * row["train_l2"],
                                                  rel=1e-5)


def test_frozen_parameters_do_not_move():
    ds = SequenceDataset(make_nights(2), seq_len=4)
    model = TinySeqNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_model(model, ds, None, TrainConfig(epochs=2, batch_size=16, freeze=("encoder.",),
                                             patience=None))
    after = model.state_dict()
    torch.testing.assert_close(after["encoder.0.weight"], before["encoder.0.weight"])
    assert not torch.equal(after["head.weight"], before["head.weight"])
    with pytest.raises(ValueError, match="every parameter is frozen"):
        train_model(TinySeqNet(), ds, None, TrainConfig(epochs=1, freeze=("",)))


def test_early_stopping_and_best_checkpoint(tmp_path):
    ds = SequenceDataset(make_nights(2), seq_len=4)
    val = SequenceDataset(make_nights(1, seed=1), seq_len=4)
    # lr = 0: the validation score never improves after epoch 1
    cfg = TrainConfig(epochs=10, lr=0.0, patience=2, checkpoint_dir=str(tmp_path),
                      monitor="val_macro_f1")
    res = train_model(TinySeqNet(), ds, val, cfg)
    assert res.stopped_early and len(res.history) == 3 and res.best_epoch == 1
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()
    with open(tmp_path / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"train_loss", "train_acc", "val_acc", "val_macro_f1", "lr", "time_s"} <= set(rows[0])


def test_resume_continues_from_saved_epoch(tmp_path):
    nights = make_nights(2)
    ds = SequenceDataset(nights, seq_len=4)

    def run(epochs, ckpt, resume):
        torch.manual_seed(0)
        model = TinySeqNet()
        cfg = TrainConfig(epochs=epochs, batch_size=16, patience=None, seed=3,
                          checkpoint_dir=str(ckpt), resume=resume, schedule="step",
                          step_size=1)
        return model, train_model(model, ds, None, cfg)

    full_model, full = run(4, tmp_path / "full", False)
    _, part = run(2, tmp_path / "part", False)
    # a resumed run with a larger budget continues at epoch 3 ...
    cont_model, cont = run(4, tmp_path / "part", True)
    assert cont.resumed_from == 3
    assert [r["epoch"] for r in cont.history] == [1, 2, 3, 4]
    assert cont.history[:2] == part.history
    # ... and ends exactly where an uninterrupted run ends
    for k, v in full_model.state_dict().items():
        torch.testing.assert_close(cont_model.state_dict()[k], v)
    assert cont.history[-1]["train_loss"] == pytest.approx(full.history[-1]["train_loss"])
    with pytest.raises(ValueError, match="needs checkpoint_dir"):
        train_model(TinySeqNet(), ds, None, TrainConfig(epochs=1, resume=True))
    # a checkpoint of another architecture is refused with a clear message
    with pytest.raises(ValueError, match="cannot resume from .*last.pt"):
        train_model(TinySeqNet(hidden=8), ds, None,
                    TrainConfig(epochs=5, checkpoint_dir=str(tmp_path / "part"), resume=True))


def test_config_validation():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="monitor"):
        TrainConfig(monitor="loss")
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")


def test_cross_entropy_label_smoothing_matches_the_formula():
    class Fixed(nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, x, mask=None):
            return self.logits

    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]]])
    y = torch.tensor([[0, UNSCORED]])
    batch = {"x": torch.zeros(1, 2, 1), "mask": torch.ones(1, 2, dtype=torch.bool), "y": y}
    plain = cross_entropy_loss(Fixed(logits), batch, None)[0]["ce"].item()
    smooth = cross_entropy_loss(Fixed(logits), batch, None, label_smoothing=0.3)[0]["ce"]
    logp = torch.log_softmax(logits[0, 0], -1)
    assert plain == pytest.approx(-logp[0].item(), rel=1e-6)  # unscored position ignored
    expected = -(0.7 * logp[0] + 0.3 * logp.mean()).item()
    assert smooth.item() == pytest.approx(expected, rel=1e-6)
