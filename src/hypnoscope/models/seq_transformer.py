"""A Transformer over sequences of per-epoch vectors (the sequence level of MC2SleepNet).

Architecture (:class:`SeqTransformer`): each 30-s epoch is embedded on its own -- a small
MLP over its feature vector (e.g. the 3 x 10 real band powers), or SSNet's 1D CNN over
raw signals -- sinusoidal position encodings are added, a stack of pre-norm Transformer
encoder layers (self-attention over the ``seq_len`` epochs of a window, padding masked,
optionally causal) mixes the sequence, and a linear head gives logits for every
position. It is MC2SleepNet's sequence Transformer without the two-view cross-masking,
on one view, so that the sequence-level idea can be measured on the feature view of
the real band-power set against SSNet's TCN (:mod:`hypnoscope.models.ssnet`).

Night-level model :class:`SeqTransformerModel` (registry name ``seq-transformer``): a
:class:`~hypnoscope.models.deep.DeepStagingModel` with the default supervised phase
(windows, per-night normalisation, validation subjects, checkpoints and the averaging
of overlapping many-to-many windows are the base class's).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hypnoscope.models.deep import DeepStagingModel
from hypnoscope.models.mc2sleepnet import sinusoidal_encoding
from hypnoscope.models.ssnet import _CNNEncoder, _MLPEncoder

#: Network and training settings of each preset.
PRESETS: dict[str, dict[str, Any]] = {
    "small": {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 128, "mlp_hidden": 128,
              "cnn_filters": 16, "dropout": 0.2, "seq_len": 32, "epochs": 8,
              "batch_size": 64, "lr": 1e-3, "patience": 2},
    "paper": {"d_model": 128, "n_layers": 4, "n_heads": 8, "d_ff": 512, "mlp_hidden": 256,
              "cnn_filters": 64, "dropout": 0.2, "seq_len": 20, "epochs": 60,
              "batch_size": 64, "lr": 5e-4, "patience": 10},
}

NET_KEYS = ("d_model", "n_layers", "n_heads", "d_ff", "mlp_hidden", "cnn_filters", "dropout",
            "causal")


class SeqTransformer(nn.Module):
    """Per-epoch encoder + Transformer encoder over the epoch sequence + linear head.

    Parameters
    ----------
    n_chans : int
        Channels per epoch (signals) or feature channels.
    n_outputs : int
        Output classes.
    n_times : int, optional
        Samples per epoch (signal input: SSNet's CNN encoder).
    sfreq : float
        Sampling rate of signal input.
    n_features : int, optional
        Features per channel; when given the encoder is an MLP over the
        ``n_chans * n_features`` vector of each epoch.
    d_model, n_layers, n_heads, d_ff, mlp_hidden, cnn_filters : int
        Sizes.
    dropout : float
    causal : bool
        Each position attends to itself and earlier epochs only (online use).

    Notes
    -----
    Input ``(B, L, n_chans, n_features | n_times)`` (or ``(B, L, n_features)``), ``mask``
    ``(B, L)`` True for real epochs; output logits ``(B, L, n_outputs)``. ``encoder``
    embeds one epoch, :meth:`embed` returns the sequence features before ``head``.
    """

    def __init__(self, n_chans: int, n_outputs: int, n_times: int | None = None,
                 sfreq: float = 100.0, n_features: int | None = None, d_model: int = 64,
                 n_layers: int = 2, n_heads: int = 4, d_ff: int = 128,
                 mlp_hidden: int = 128, cnn_filters: int = 16, dropout: float = 0.2,
                 causal: bool = False) -> None:
        super().__init__()
        if n_features is None and n_times is None:
            raise ValueError("SeqTransformer needs n_times (signal input) or n_features "
                             "(feature input)")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_chans, self.n_outputs = int(n_chans), int(n_outputs)
        self.n_times, self.sfreq, self.n_features = n_times, sfreq, n_features
        self.causal = bool(causal)
        if n_features is not None:
            self.encoder: nn.Module = _MLPEncoder(n_chans * n_features, mlp_hidden, d_model,
                                                  dropout)
        else:
            self.encoder = _CNNEncoder(n_chans, sfreq, cnn_filters, d_model, dropout)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_outputs)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Sequence features ``(B, L, d_model)`` before the classification head."""
        B, L = x.shape[:2]
        if mask is None:
            mask = torch.ones(B, L, dtype=torch.bool, device=x.device)
        emb = self.encoder(x.reshape(B * L, *x.shape[2:]).float()).reshape(B, L, -1)
        h = emb + sinusoidal_encoding(L, emb.shape[-1]).to(emb.device, emb.dtype)
        causal_mask = (torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)
                       if self.causal else None)
        h = self.transformer(h, mask=causal_mask, src_key_padding_mask=~mask.bool())
        return self.norm(h)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.embed(x, mask))


class SeqTransformerModel(DeepStagingModel):
    """Night-level :class:`SeqTransformer` staging model (direct 3- or 5-class).

    Parameters
    ----------
    n_classes : {3, 5}
    causal : bool
        Causal attention (online use).
    **options
        Everything :class:`~hypnoscope.models.deep.DeepStagingModel` takes (preset,
        seq_len, mode, epochs, normalize, ...) and the network sizes of :data:`NET_KEYS`.
    """

    name = "seq-transformer"
    PRESETS = PRESETS
    NET_KEYS = NET_KEYS
    network_class = SeqTransformer

    def __init__(self, n_classes: int = 5, causal: bool = False, **options: Any) -> None:
        super().__init__(n_classes=n_classes, causal=bool(causal), **options)


def make_seq_transformer(name: str = "seq-transformer", n_classes: int = 5,
                         **kw: Any) -> SeqTransformerModel:
    """Registry factory for ``seq-transformer``."""
    if name != "seq-transformer":
        raise ValueError(f"make_seq_transformer builds 'seq-transformer', got {name!r}")
    return SeqTransformerModel(n_classes=n_classes, **kw)


__all__ = ["SeqTransformer", "SeqTransformerModel", "PRESETS", "NET_KEYS",
           "make_seq_transformer"]
