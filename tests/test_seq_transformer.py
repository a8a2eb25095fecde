"""The Transformer over per-epoch feature sequences (models/seq_transformer.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hypnoscope.datasets import Night
from hypnoscope.models import make_model
from hypnoscope.models.seq_transformer import SeqTransformer


def test_network_shapes_padding_and_causality():
    torch.manual_seed(0)
    net = SeqTransformer(n_chans=3, n_outputs=5, n_features=10, causal=True).eval()
    x = torch.randn(2, 12, 3, 10)
    out = net(x)
    assert out.shape == (2, 12, 5)
    x2 = x.clone()
    x2[:, 8:] = torch.randn(2, 4, 3, 10)  # change the future only
    np.testing.assert_allclose(net(x2)[:, :8].detach(), out[:, :8].detach(), atol=1e-5)
    assert not torch.allclose(net(x2)[:, 8:], out[:, 8:])
    # a padded position does not change the real ones
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[:, 10:] = False
    x3 = x.clone()
    x3[:, 10:] = 100.0
    full = SeqTransformer(n_chans=3, n_outputs=5, n_features=10).eval()
    np.testing.assert_allclose(full(x3, mask)[:, :10].detach(), full(x, mask)[:, :10].detach(),
                               atol=1e-5)
    raw = SeqTransformer(n_chans=2, n_outputs=5, n_times=3000, sfreq=100.0)
    assert raw(torch.randn(1, 4, 2, 3000)).shape == (1, 4, 5)
    with pytest.raises(ValueError, match="divisible"):
        SeqTransformer(n_chans=1, n_outputs=5, n_features=4, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="n_times"):
        SeqTransformer(n_chans=1, n_outputs=5)


def test_model_learns_a_feature_sequence_task():
    """Stage = sign pattern of feature 0, readable only with the neighbours' help
    (each epoch alone is noisy): the model must beat the single-epoch rule."""
    rng = np.random.default_rng(0)
    nights = []
    for s in range(8):
        y = np.repeat(rng.integers(0, 3, 30), 8)
        X = rng.normal(0, 1.5, size=(len(y), 1, 4)).astype(np.float32)
        X[:, 0, 0] += y
        nights.append(Night(X=X, y=y, subject_id=f"s{s}", night_id=f"s{s}__1"))
    m = make_model("seq-transformer", epochs=6, seq_len=16, batch_size=16, lr=3e-3,
                   num_threads=1, patience=6)
    m.fit(nights[:6], nights[6:7])
    test = nights[7]
    acc = (m.predict(test) == test.y).mean()
    single = (np.clip(np.round(test.X[:, 0, 0]), 0, 2) == test.y).mean()
    assert acc > single + 0.1
    assert m.metadata["training"]["direct"]["n_parameters"] > 10_000
