"""SSNet: multimodal CNN + TCN + attention sequence model (the multimodal hierarchical seed).

Architecture (:class:`SSNet`): a per-epoch encoder turns each 30-s epoch into an
embedding -- a 1D-CNN over the stacked EEG/EOG/EMG channels (any subset) for raw
signals, or a small MLP for per-epoch feature vectors (the real band-power set) --, a
temporal convolution network (dilated residual blocks, causal or not) runs over the
sequence of ``seq_len`` epoch embeddings, a multi-head self-attention layer (padding
masked; causal when the TCN is) mixes the sequence, and a fully connected classifier
gives logits for every position. Many-to-one training (the seed: a sequence predicts its
last epoch) uses the last position; many-to-many uses all of them.

Night-level models (:class:`SSNetModel`, registry names ``ssnet`` / ``ssnet-hier``):

- ``ssnet``: direct 5-class (W, N1, N2, N3, R), or 3-class with ``n_classes=3``.
- ``ssnet-hier``: hierarchical 3-class. Stage 1 Wake vs Sleep on all epochs; stage 2
  REM vs NREM trained on sleep epochs only (wake targets ignored) and applied to the
  epochs stage 1 calls sleep. Probabilities merge as ``p(W) = p1(W)``, ``p(NREM) =
  p1(S) p2(NREM)``, ``p(R) = p1(S) p2(R)`` (:func:`merge_hierarchical`); hard predictions
  follow the cascade (:func:`cascade_predict`).

Presets: ``small`` trains on a 2-core CPU in minutes; ``paper`` (alias ``full``) is a
GPU-sized configuration. The seed README does not publish layer sizes, so ``paper`` is
our larger configuration in the same architecture, not a reproduction of stated sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from hypnoscope.datasets import Night
from hypnoscope.models.deep import DeepStagingModel
from hypnoscope.stages import (
    cascade_predict,
    merge_hierarchical,
    rem_nrem_labels,
    wake_sleep_labels,
)

#: Network and training settings of each preset.
PRESETS: dict[str, dict[str, Any]] = {
    "small": {"emb_dim": 64, "cnn_filters": 16, "mlp_hidden": 128, "tcn_channels": 64,
              "tcn_levels": 3, "kernel_size": 3, "n_heads": 4, "dropout": 0.2,
              "seq_len": 16, "epochs": 10, "batch_size": 32, "lr": 2e-3, "patience": 4},
    "paper": {"emb_dim": 128, "cnn_filters": 64, "mlp_hidden": 256, "tcn_channels": 128,
              "tcn_levels": 5, "kernel_size": 3, "n_heads": 8, "dropout": 0.3,
              "seq_len": 20, "epochs": 60, "batch_size": 64, "lr": 1e-3, "patience": 10},
}
PRESETS["full"] = PRESETS["paper"]

NET_KEYS = ("emb_dim", "cnn_filters", "mlp_hidden", "tcn_channels", "tcn_levels",
            "kernel_size", "n_heads", "dropout", "causal")


# --------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------
class _CNNEncoder(nn.Module):
    """Per-epoch 1D-CNN: wide first convolution (~0.5 s), pooling, two narrow convolutions,
    global average pooling, linear projection."""

    def __init__(self, n_channels: int, sfreq: float, filters: int, emb_dim: int,
                 dropout: float) -> None:
        super().__init__()
        k1 = max(3, int(round(sfreq / 2)))
        s1 = max(1, int(round(sfreq / 16)))
        f2 = 2 * filters
        self.net = nn.Sequential(
            nn.Conv1d(n_channels, filters, k1, stride=s1, padding=k1 // 2, bias=False),
            nn.BatchNorm1d(filters), nn.ReLU(), nn.MaxPool1d(8, ceil_mode=True),
            nn.Dropout(dropout),
            nn.Conv1d(filters, f2, 7, padding=3, bias=False), nn.BatchNorm1d(f2), nn.ReLU(),
            nn.Conv1d(f2, f2, 7, padding=3, bias=False), nn.BatchNorm1d(f2), nn.ReLU(),
            nn.MaxPool1d(4, ceil_mode=True), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
            nn.Linear(f2, emb_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _MLPEncoder(nn.Module):
    """Per-epoch MLP over a flattened feature vector."""

    def __init__(self, n_inputs: int, hidden: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, emb_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class TemporalBlock(nn.Module):
    """Residual block of two dilated 1D convolutions over time (causal or centred)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int,
                 causal: bool, dropout: float) -> None:
        super().__init__()
        pad = (kernel_size - 1) * dilation
        self.pad = (pad, 0) if causal else (pad // 2, pad - pad // 2)
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, dilation=dilation)
        self.drop = nn.Dropout(dropout)
        self.down = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[:, None, :].to(x.dtype)
        h = self.drop(torch.relu(self.conv1(nn.functional.pad(x * m, self.pad))))
        h = self.drop(torch.relu(self.conv2(nn.functional.pad(h * m, self.pad))))
        return torch.relu(h + self.down(x)) * m


class SSNet(nn.Module):
    """CNN (or MLP) + TCN + attention + FC sequence classifier.

    Parameters
    ----------
    n_chans : int
        Input channels per epoch (EEG/EOG/EMG signals, or feature channels).
    n_outputs : int
        Output classes.
    n_times : int, optional
        Samples per epoch (signal input).
    sfreq : float
        Sampling rate of signal input (sets the first convolution's width and stride).
    n_features : int, optional
        Features per channel; when given the encoder is an MLP over the
        ``n_chans * n_features`` vector of each epoch instead of the CNN.
    emb_dim, cnn_filters, mlp_hidden, tcn_channels, tcn_levels, kernel_size, n_heads : int
        Sizes; TCN block ``i`` has dilation ``2**i``.
    dropout : float
    causal : bool
        Causal TCN and attention (a position sees only itself and earlier epochs).

    Notes
    -----
    Input ``x`` is ``(B, L, n_chans, n_times)`` (signals) or ``(B, L, n_chans,
    n_features)`` / ``(B, L, n_features)`` (features); ``mask`` ``(B, L)`` is True for real
    epochs. Output logits are ``(B, L, n_outputs)``. The parts: ``encoder`` (one epoch ->
    ``emb_dim``), :meth:`embed` (the sequence -> ``tcn_channels`` per position: encoder,
    TCN, attention) and ``head`` (the classifier).
    """

    def __init__(self, n_chans: int, n_outputs: int, n_times: int | None = None,
                 sfreq: float = 100.0, n_features: int | None = None, emb_dim: int = 64,
                 cnn_filters: int = 16, mlp_hidden: int = 128, tcn_channels: int = 64,
                 tcn_levels: int = 3, kernel_size: int = 3, n_heads: int = 4,
                 dropout: float = 0.2, causal: bool = False) -> None:
        super().__init__()
        if n_features is None and n_times is None:
            raise ValueError("SSNet needs n_times (signal input) or n_features (feature input)")
        if tcn_channels % n_heads:
            raise ValueError(f"tcn_channels ({tcn_channels}) must be divisible by "
                             f"n_heads ({n_heads})")
        self.n_chans, self.n_outputs = int(n_chans), int(n_outputs)
        self.n_times, self.sfreq, self.n_features = n_times, sfreq, n_features
        self.causal = bool(causal)
        if n_features is not None:
            self.encoder: nn.Module = _MLPEncoder(n_chans * n_features, mlp_hidden,
                                                  emb_dim, dropout)
        else:
            self.encoder = _CNNEncoder(n_chans, sfreq, cnn_filters, emb_dim, dropout)
        self.tcn = nn.ModuleList(
            TemporalBlock(emb_dim if i == 0 else tcn_channels, tcn_channels, kernel_size,
                          2 ** i, causal, dropout) for i in range(tcn_levels))
        self.attention = nn.MultiheadAttention(tcn_channels, n_heads, dropout=dropout,
                                               batch_first=True)
        self.norm = nn.LayerNorm(tcn_channels)
        self.head = nn.Sequential(nn.Linear(tcn_channels, tcn_channels), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(tcn_channels, n_outputs))

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Sequence features ``(B, L, tcn_channels)`` before the classification head."""
        B, L = x.shape[:2]
        if mask is None:
            mask = torch.ones(B, L, dtype=torch.bool, device=x.device)
        mask = mask.bool()
        emb = self.encoder(x.reshape(B * L, *x.shape[2:]).float()).reshape(B, L, -1)
        h = emb.transpose(1, 2)  # (B, D, L)
        for block in self.tcn:
            h = block(h, mask)
        h = h.transpose(1, 2)  # (B, L, D)
        attn_mask = None
        if self.causal:
            attn_mask = torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)
        a, _ = self.attention(h, h, h, key_padding_mask=~mask, attn_mask=attn_mask,
                              need_weights=False)
        return self.norm(h + a)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.embed(x, mask))


# --------------------------------------------------------------------------------------
# hierarchical helpers
# --------------------------------------------------------------------------------------
# merge_hierarchical and cascade_predict live in hypnoscope.stages (NumPy only, so the
# onnxruntime path uses them too) and are re-exported here.


# --------------------------------------------------------------------------------------
# night-level model
# --------------------------------------------------------------------------------------
class SSNetModel(DeepStagingModel):
    """Night-level SSNet staging model (direct or hierarchical), on
    :class:`~hypnoscope.models.deep.DeepStagingModel`.

    Parameters
    ----------
    n_classes : {3, 5}
    hierarchical : bool
        Two binary stages merged into W / NREM / R (needs ``n_classes=3``).
    causal : bool
        Causal TCN/attention (online use).
    **options
        Everything :class:`~hypnoscope.models.deep.DeepStagingModel` takes (preset,
        seq_len, mode, epochs, normalize, ...) and the network sizes of :data:`NET_KEYS`.
    """

    PRESETS = PRESETS
    NET_KEYS = NET_KEYS
    network_class = SSNet

    def __init__(self, n_classes: int = 5, hierarchical: bool = False, causal: bool = False,
                 **options: Any) -> None:
        if hierarchical and n_classes != 3:
            raise ValueError("the hierarchical SSNet (ssnet-hier) is 3-class "
                             f"(W/NREM/R); got n_classes={n_classes} (pass n_classes=3; "
                             "on the command line --classes 3)")
        self.name = "ssnet-hier" if hierarchical else "ssnet"
        super().__init__(n_classes=n_classes, causal=bool(causal), **options)
        self.config["hierarchical"] = self.hierarchical = hierarchical

    def tasks(self) -> list[tuple[str, int, Any]]:
        if self.hierarchical:
            return [("wake_sleep", 2, wake_sleep_labels), ("rem_nrem", 2, rem_nrem_labels)]
        return super().tasks()

    def task_merge(self) -> str | None:
        """``"hierarchical"`` for ssnet-hier (see :data:`hypnoscope.stages.TASK_MERGES`)."""
        return "hierarchical" if self.hierarchical else None

    def predict_proba(self, night: Night) -> np.ndarray:
        """``(n_epochs, n_classes)`` probabilities (hierarchical: merged, see
        :func:`merge_hierarchical`)."""
        if not self.hierarchical:
            return super().predict_proba(night)
        p = self.stage_probabilities(night)
        return merge_hierarchical(p["wake_sleep"], p["rem_nrem"])

    def predict(self, night: Night) -> np.ndarray:
        """Arg-max codes; the hierarchical model uses the cascade (:func:`cascade_predict`)."""
        if self.hierarchical:
            p = self.stage_probabilities(night)
            return cascade_predict(p["wake_sleep"], p["rem_nrem"])
        return self.predict_proba(night).argmax(axis=1)


def make_ssnet(name: str = "ssnet", n_classes: int = 5, **kw: Any) -> SSNetModel:
    """Registry factory for ``ssnet`` (direct) and ``ssnet-hier`` (hierarchical 3-class).

    ``ssnet-hier`` is always 3-class; asking it for ``n_classes=5`` raises ``ValueError``.
    """
    if name not in ("ssnet", "ssnet-hier"):
        raise ValueError(f"make_ssnet builds 'ssnet' or 'ssnet-hier', got {name!r}")
    return SSNetModel(n_classes=n_classes, hierarchical=name == "ssnet-hier", **kw)


__all__ = ["SSNet", "SSNetModel", "TemporalBlock", "PRESETS", "NET_KEYS", "make_ssnet",
           "merge_hierarchical", "cascade_predict", "wake_sleep_labels", "rem_nrem_labels"]
