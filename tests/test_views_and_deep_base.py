"""Derived views (spectrogram, cached on disk) and the DeepStagingModel base: a new deep
model is a network plus its phases; a two-view batch reaches it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hypnoscope.datasets import Night
from hypnoscope.models import load_model
from hypnoscope.models.deep import DeepStagingModel
from hypnoscope.signal import spectral, views
from hypnoscope.training.loop import LossOutput, Phase, cross_entropy_loss


def signal_nights(n=3, n_epochs=24, seed=0):
    """100-Hz signal nights where stage k adds a (5 + 4k)-Hz rhythm to the EEG."""
    rng = np.random.default_rng(seed)
    t = np.arange(3000) / 100.0
    nights = []
    for i in range(n):
        y = np.repeat(rng.integers(0, 5, n_epochs // 4), 4)
        X = rng.normal(0, 1.0, (n_epochs, 2, 3000)).astype(np.float32)
        X[:, 0] += 3 * np.sin(2 * np.pi * (5 + 4 * y[:, None]) * t)
        nights.append(Night(X=X, y=y, subject_id=f"s{seed}{i}", night_id=f"n{seed}{i}",
                            kind="signals", sfreq=100.0, channels=["EEG", "EOG"],
                            roles=["eeg", "eog"]))
    return nights


def test_spectrogram_view_shape_and_disk_cache(tmp_path, monkeypatch):
    nights = signal_nights(2)
    views.add_views(nights, ["spec"], cache=tmp_path)
    spec = nights[0].views["spec"]
    assert spec.shape == (24, 2, 29, 129) and spec.dtype == np.float32
    assert isinstance(spec, np.memmap)  # read back memory-mapped
    np.testing.assert_allclose(spec, spectral.spectrogram(nights[0].X, 100.0),
                               rtol=1e-6)
    assert nights[0].meta["views"]["spec"]["from_cache"] is False
    assert len(list(tmp_path.glob("*.npy"))) == 2

    def boom(*a, **k):
        raise AssertionError("spectrogram recomputed although cached")

    monkeypatch.setattr(views, "spectrogram", boom)
    again = signal_nights(2)  # same content, fresh objects: read from the cache
    views.add_views(again, ["spec"], cache=tmp_path)
    assert again[0].meta["views"]["spec"]["from_cache"] is True
    np.testing.assert_array_equal(again[0].views["spec"], spec)
    # another configuration or other signals are other keys -> computed
    other = signal_nights(1, seed=7)
    with pytest.raises(AssertionError, match="recomputed"):
        views.add_views(other, ["spec"], cache=tmp_path)
    with pytest.raises(AssertionError, match="recomputed"):
        views.add_views(signal_nights(1), {"spec": views.SpectrogramView(nfft=512)},
                        cache=tmp_path)
    with pytest.raises(ValueError, match="unknown view"):
        views.add_views(again, ["wavelet"])
    feat = Night(X=np.zeros((3, 4)), y=[0, 1, 2], subject_id="s", night_id="f")
    with pytest.raises(ValueError, match="needs signal epochs"):
        views.add_views([feat], ["spec"], cache=False)


class TwoViewNet(nn.Module):
    """Raw-signal CNN encoder + spectrogram encoder, fused, per-epoch head."""

    def __init__(self, n_chans, n_outputs, n_times, sfreq, n_frames=29, n_freqs=129,
                 hidden=16):
        super().__init__()
        self.n_outputs = n_outputs
        self.raw_encoder = nn.Sequential(nn.Conv1d(n_chans, 8, 25, stride=10), nn.ReLU(),
                                         nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                                         nn.Linear(8, hidden))
        self.spec_encoder = nn.Sequential(nn.Flatten(), nn.Linear(n_chans * n_freqs, hidden))
        self.spec_decoder = nn.Linear(hidden, n_chans * n_freqs)
        self.head = nn.Linear(2 * hidden, n_outputs)
        self.seen: list[dict] = []

    def spec_features(self, spec):  # (B, L, C, F, K) -> (B, L, hidden), frames averaged
        B, L = spec.shape[:2]
        return self.spec_encoder(spec.mean(3).reshape(B * L, -1)).reshape(B, L, -1)

    def forward(self, x, mask=None):
        raw, spec = x["raw"], x["spec"]
        self.seen.append({"raw": tuple(raw.shape), "spec": tuple(spec.shape)})
        B, L = raw.shape[:2]
        r = self.raw_encoder(raw.reshape(B * L, *raw.shape[2:])).reshape(B, L, -1)
        return self.head(torch.cat([r, self.spec_features(spec)], -1))


def spec_reconstruction(net, batch, ctx):
    spec = batch["x"]["spec"].mean(3)  # (B, L, C, K)
    rec = net.spec_decoder(net.spec_features(batch["x"]["spec"]))
    return LossOutput({"rec": ((rec - spec.flatten(2)) ** 2).mean()})


class TwoViewModel(DeepStagingModel):
    """All a new deep model writes: its network, views and phases."""

    name = "two-view"
    network_class = TwoViewNet
    default_views = ("raw", "spec")
    PRESETS = {"small": {"hidden": 16, "seq_len": 4, "epochs": 3, "batch_size": 8,
                         "lr": 1e-2, "patience": None}}
    NET_KEYS = ("hidden",)

    def network_kwargs(self, task, n_outputs, night):
        kw = super().network_kwargs(task, n_outputs, night)
        n_frames, n_freqs = night.views["spec"].shape[2:]
        return {**kw, "n_frames": int(n_frames), "n_freqs": int(n_freqs)}

    def phases(self, task):
        c = self.config
        return [Phase(name="pretrain", loss=spec_reconstruction,
                      params=["spec_encoder.", "spec_decoder."], epochs=2, lr=c["lr"],
                      batch_size=c["batch_size"], monitor="val_rec", patience=None,
                      labelled=False),
                Phase(name="finetune", loss=cross_entropy_loss, freeze=("spec_",),
                      epochs=c["epochs"], lr=c["lr"], batch_size=c["batch_size"],
                      patience=None)]


def test_two_view_batch_reaches_a_new_deep_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    train, val = signal_nights(4), signal_nights(1, seed=3)
    unlabelled = signal_nights(1, seed=9)
    unlabelled[0].y[:] = -100  # unlabelled nights serve the self-supervised phase
    model = TwoViewModel(seed=0, num_threads=1, epochs=8,
                         checkpoint_dir=str(tmp_path / "ckpt"))
    model.fit(train + unlabelled, val)
    net = model.nets["direct"]
    assert net.seen[0] == {"raw": (8, 4, 2, 3000), "spec": (8, 4, 2, 29, 129)}
    hist = model.training_summary["direct"]["history"]
    assert [r["phase"] for r in hist] == ["pretrain"] * 2 + ["finetune"] * 8
    assert "val_rec" in hist[0] and "val_acc" in hist[-1]
    assert model.metadata["views"] == ["raw", "spec"]
    assert (tmp_path / "ckpt" / "pretrain" / "best.pt").is_file()
    test = signal_nights(1, seed=5)[0]
    proba = model.predict_proba(test)
    assert proba.shape == (24, 5)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert (proba.argmax(1) == test.y).mean() > 0.5  # chance: 0.2
    loaded = load_model(model.save(tmp_path / "m.joblib"))
    np.testing.assert_allclose(loaded.predict_proba(signal_nights(1, seed=5)[0]), proba,
                               atol=1e-6)
