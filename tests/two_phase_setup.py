"""A small two-phase training setup shared by tests/test_training.py and the subprocess
it kills (not a test module)."""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import torch
from torch import nn

from hypnoscope.datasets import Night
from hypnoscope.stages import UNSCORED
from hypnoscope.training.loop import LossOutput, Phase, TrainConfig, cross_entropy_loss, train_model
from hypnoscope.training.sequences import SequenceDataset


def make_nights(n_nights=3, n_epochs=40, n_feat=4, seed=0, unscored=(0, 5), labelled=True):
    """Feature nights whose labels are readable from the features (learnable)."""
    rng = np.random.default_rng(seed)
    nights = []
    for k in range(n_nights):
        y = rng.integers(0, 5, n_epochs)
        X = rng.normal(0, 0.3, (n_epochs, n_feat)).astype(np.float32)
        X[:, 0] += y
        y[list(unscored)] = UNSCORED
        if not labelled:
            y[:] = UNSCORED
        nights.append(Night(X=X, y=y, subject_id=f"s{seed}-{k}", night_id=f"s{seed}-{k}n1"))
    return nights


class EncoderHeadNet(nn.Module):
    """Per-epoch encoder (with batch norm) + reconstruction decoder + classification head."""

    def __init__(self, n_feat=4, n_outputs=5, hidden=16):
        super().__init__()
        self.n_outputs = n_outputs
        self.encoder = nn.Sequential(nn.Linear(n_feat, hidden), nn.BatchNorm1d(hidden),
                                     nn.ReLU(), nn.Dropout(0.1))
        self.decoder = nn.Linear(hidden, n_feat)
        self.head = nn.Linear(hidden, n_outputs)

    def embed(self, x):
        B, L = x.shape[:2]
        return self.encoder(x.reshape(B * L, -1)).reshape(B, L, -1)

    def forward(self, x, mask=None):
        return self.head(self.embed(x))


def reconstruction_loss(model, batch, ctx):
    """Self-supervised: rebuild the (masked-out) input from its embedding."""
    x = batch["x"]["feat"]
    rec = model.decoder(model.embed(x))
    m = batch["mask"][..., None].float()
    return LossOutput({"rec": ((rec - x) ** 2 * m).sum() / (m.sum() * x.shape[-1])})


def phases(finetune_epochs=3):
    return [Phase(name="pretrain", loss=reconstruction_loss, params=["encoder.", "decoder."],
                  epochs=3, batch_size=8, lr=1e-2, monitor="val_loss", patience=None,
                  labelled=False),
            Phase(name="finetune", loss=cross_entropy_loss, params={"head.": 5e-2},
                  epochs=finetune_epochs, batch_size=8, lr=1e-3, schedule="step",
                  step_size=1, monitor="val_acc", patience=None)]


def datasets():
    train = SequenceDataset(make_nights(2) + make_nights(2, seed=5, labelled=False), 4,
                            mode="many-to-many", stride=2, drop_unlabelled=False)
    val = SequenceDataset(make_nights(1, seed=1), 4, mode="many-to-many", stride=2,
                          drop_unlabelled=False)
    return train, val


def run(checkpoint_dir, resume=False, kill_in_finetune_after=None):
    """Train the two phases; optionally SIGKILL this process after that many batches of
    the fine-tuning phase (a real kill: nothing is cleaned up)."""
    train, val = datasets()
    torch.manual_seed(0)
    model = EncoderHeadNet()
    ph = phases()
    if kill_in_finetune_after is not None:
        count = {"n": 0}

        def killing_loss(model, batch, ctx):
            count["n"] += 1
            if count["n"] > kill_in_finetune_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return cross_entropy_loss(model, batch, ctx)

        ph[1].loss = killing_loss
    cfg = TrainConfig(seed=3, num_threads=1, checkpoint_dir=str(checkpoint_dir),
                      resume=resume)
    result = train_model(model, train, val, ph, cfg)
    return model, result


if __name__ == "__main__":  # python two_phase_setup.py CKPT N
    run(sys.argv[1], kill_in_finetune_after=int(sys.argv[2]))
