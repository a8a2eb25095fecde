"""MC²SleepNet: raw-signal CNN + spectrogram Transformer, InfoNCE, cross-masking.

The model of Na, Kim, Kim, Lee & Cho (2024), "MC²SleepNet: Multi-modal Cross-masking with
Contrastive learning for Sleep stage classification" (the second seed paper), built on
:class:`~hypnoscope.models.deep.DeepStagingModel`. Where the paper gives a number it is
used; where it is silent or ambiguous the choice is marked *(ours)* and is an option.

Network (:class:`MC2SleepNet`; windows of ``L`` epochs, default ``L = 21``):

1. **Views.** The raw EEG epoch ``(C, 3000)`` at 100 Hz and its spectrogram ``(C, 29,
   129)`` (2-s Hamming window, 1-s overlap, 256-point FFT, log magnitude:
   :class:`hypnoscope.signal.views.SpectrogramView`). ``C = 1`` (the first EEG channel, Fpz-Cz on
   Sleep-EDF, C4-A1 on SHHS) by default; ``channels=k`` takes the first ``k`` channels,
   EEG first. Both views are standardised per night (per channel; per channel and
   frequency bin for the spectrogram) *(ours: the paper scales the spectrum to 0..128)*.
   The recordings are not filtered, as the paper states no filter (the ``"mc2sleepnet"``
   preset of :mod:`hypnoscope.signal.preprocessing`; ``hypnoscope train --bandpass
   default`` or the preset's ``bandpass`` key for the loaders' 0.3-35 Hz EEG band-pass,
   which empties the spectrogram above 35 Hz).
2. **Raw backbone** (:class:`RawCNNBackbone`): 5 CNN blocks of 2, 2, 3, 3, 3 convolutions
   (kernel 3, stride 1, same padding; batch norm + ReLU after each *(ours)*), max-pool 5
   after blocks 2-5, so 3000 samples become 5 time steps (3000 -> 600 -> 120 -> 24 -> 5,
   the last pool rounding up). The paper's "final max-pool of width 2 to match the
   Transformer's dimension" is read as a max-pool over *channels*: block 5 has
   ``2 * d_model`` channels, pooled in pairs to ``d_model`` *(ours: a pool of 2 over time
   would leave 2 tokens, not the paper's 5)*. Channel widths are not given: ``cnn_widths``
   *(ours)*. Output: 5 tokens × ``d_model``.
3. **Spectrogram backbone** (:class:`SpectrogramTransformerBackbone`): the "simple
   CNN-based resizing layer" is a 1-D convolution over the 29 frames taking the ``C × 129``
   bins of a frame to ``d_model`` (kernel ``resize_kernel`` = 3, ReLU) *(ours)*, plus
   sinusoidal positional encoding, then 4 post-norm Transformer layers (``d_model`` 128,
   8 heads so ``d_k`` = 16, ``d_ff`` 1024, dropout 0.1; Eq. 2-8, PyTorch's
   ``nn.TransformerEncoderLayer``; Eq. 7's outer "SA Block(x) +" is read as the standard
   post-norm residual). Output: 29 tokens × ``d_model``.
4. **Epoch-wise attention** (:class:`EpochWiseAttention`, Eq. 9-11, attention size 128):
   ``a_t = tanh(W z_t + b)``, ``α = softmax(a_t · a_e)``, ``Σ α_t z_t`` per view. The
   attention-weighted sum already is one ``d_model`` vector, so Eq. 12's global average
   pooling has nothing left to average and is the identity here.
5. **Contrastive step** (Eq. 13-16): projection heads (``Linear-ReLU-Linear``, ``d_proj``
   128 *(ours: depth)*) and :func:`info_nce` in both directions with in-batch negatives
   at the same sequence position, averaged over the epochs of the windows
   (``-mean log p``; the paper's Eq. 14 writes the mean inside the log, which lets one
   aligned epoch satisfy a whole sequence *(ours)*); cosine similarity with temperature
   ``temperature`` (0.1) *(ours: the paper does not give τ)*.
6. **Sequence level** (Eq. 17-22): per view, a sinusoidal position encoding and a block
   of ``seq_layers`` (4) layers of self-attention + LN, **cross-attention** to the other
   view (its queries from this view, keys and values from the other) + LN, feed-forward
   + LN (:class:`CrossTransformerLayer`). **Cross-masking**: in training, each epoch
   token of each view is replaced by one shared learnable mask token with probability
   ``mask_ratio`` (:func:`cross_mask`), drawn independently for each view *(ours: the paper
   does not say whether the views share a mask; with independent draws an epoch masked in
   one view is visible in the other with probability ``1 - mask_ratio``, which is what
   "enabling features from one modality to aid in restoring masked features of the other
   modality" needs; a shared mask would hide both views of the same epochs)*. Three MLP
   heads (Eq. 20-22): raw, spectrogram (``Linear(d, d)-ReLU-Dropout-Linear(d, classes)``,
   hidden width ``d_model`` *(ours)*; ``view_head="linear"``: one linear layer, the
   networks trained before the MLP heads) and the concatenation's
   (``Linear(2d, d)-ReLU-Dropout-Linear(d, classes)``, used at inference).

Training (:class:`MC2SleepNetModel`, phases on :mod:`hypnoscope.training.loop`):

- ``backbone_raw``, ``backbone_spec`` (before ``pretrain``, ``backbone_epochs`` each; 0 =
  none): "we employ pre-trained backbone networks for epoch-level training". Each
  backbone is pre-trained as a single-epoch classifier: its backbone, its epoch-wise
  attention and a linear epoch head (``raw_epoch_head`` / ``spec_epoch_head``, used in
  these phases only) classify every epoch on its own with cross-entropy; everything else
  is frozen. The phase ends holding its best weights (validation), which ``pretrain``
  starts from. The paper gives neither the classifier nor its length *(ours: the linear
  head, the preset's ``backbone_epochs``, also before a masking-only pre-training, whose
  epoch level trains too)*.
- ``pretrain`` (when ``contrastive`` or ``mask_ratio > 0``, for ``pretrain_epochs``):
  InfoNCE on augmented inputs (:class:`hypnoscope.training.augment.RandomAugment` on the raw
  view, :func:`~hypnoscope.training.augment.spectrogram_noise` on the spectrogram; one
  transformation per epoch) + the sequence loss with cross-masking, term weights
  ``nce`` 1, ``ce_raw`` 1, ``ce_spec`` 0.1, ``ce_cat`` 0.1 (Eq. 19, 23). Everything
  trains but the epoch heads.
- ``finetune`` (``finetune=True``): backbones, epoch-wise attention and projections
  frozen (bit-identical), no masking, no augmentation, weights 1, 1, 1.
- Without pre-training (``contrastive=False, mask_ratio=0``) one ``supervised`` phase
  trains everything with weights 1, 1, 1 (the "TF+CNN (multi)" row).
- Adam, lr 5e-4, betas (0.9, 0.999), weight decay 1e-5, batch 32 (``paper``); checkpoints
  and early stopping on validation subjects (per training epoch rather than every 100
  steps *(ours)*). Gradients clipped at norm 5 (``grad_clip``; None = no clipping)
  *(ours: the paper does not mention clipping; 5 is the training loop's default for every
  deep model here, kept as a guard against the large early gradients of a Transformer
  trained with small batches, which the paper's "unstable optimization" remark also
  worries about)*.

Table 3's variants are options: ``branches="raw"`` / ``"spec"`` with ``seq_layers=0``
(CNN only / TF only, single epoch), ``contrastive``, ``mask_ratio``, ``finetune``;
``init_from`` starts from another trained model's weights (the paper's SHHS → Sleep-EDF
"+" rows; with ``pretrain_epochs=0`` only the fine-tuning phase runs) and
``finetune=False`` keeps the pre-trained model (the "Γ" rows).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from torch import nn

from hypnoscope.datasets import Night
from hypnoscope.models.deep import DeepStagingModel, count_parameters
from hypnoscope.training.augment import RandomAugment, spectrogram_noise
from hypnoscope.training.losses import LossOutput, classification_loss
from hypnoscope.training.phases import Phase

#: Network and training settings of each preset. ``paper``: the paper's sizes (channel
#: widths ours); ``small``: a 2-core CPU trains it in minutes. ``small`` uses batches of 8
#: windows (ours): on a few nights, 32 windows leave so few optimiser steps that the
#: CNN's batch-norm statistics lag its weights (docs/design.md, design notes).
PRESETS: dict[str, dict[str, Any]] = {
    "small": {"d_model": 32, "cnn_widths": (4, 8, 16, 32, 64), "tf_layers": 2,
              "n_heads": 4, "d_ff": 64, "attn_size": 32, "d_proj": 32, "seq_layers": 2,
              "seq_len": 21, "epochs": 3, "pretrain_epochs": 3, "backbone_epochs": 2,
              "batch_size": 8,
              "lr": 1e-3, "patience": 3},
    "paper": {"d_model": 128, "cnn_widths": (64, 128, 128, 256, 256), "tf_layers": 4,
              "n_heads": 8, "d_ff": 1024, "attn_size": 128, "d_proj": 128, "seq_layers": 4,
              "seq_len": 21, "epochs": 30, "pretrain_epochs": 30, "backbone_epochs": 30,
              "batch_size": 32,
              "lr": 5e-4, "patience": 5},
}

NET_KEYS = ("d_model", "cnn_widths", "cnn_layers", "kernel_size", "tf_layers", "n_heads",
            "d_ff", "dropout", "attn_size", "d_proj", "seq_layers", "cross_attention",
            "branches", "resize_kernel", "view_head")

#: Parameter-name prefixes of the single-epoch heads of the backbone phases.
EPOCH_HEAD_PREFIXES = ("raw_epoch_head.", "spec_epoch_head.")
#: Parameter-name prefixes of the epoch-level part, frozen in fine-tuning.
BACKBONE_PREFIXES = ("raw_backbone.", "spec_backbone.", "raw_attention.", "spec_attention.",
                     "raw_proj.", "spec_proj.", *EPOCH_HEAD_PREFIXES)


# --------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------
def sinusoidal_encoding(n_positions: int, d_model: int) -> torch.Tensor:
    """``(n_positions, d_model)`` sine/cosine position encoding (Vaswani et al. 2017)."""
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32)
                    * (-math.log(10000.0) / d_model))
    pe = torch.zeros(n_positions, d_model)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
    return pe


class RawCNNBackbone(nn.Module):
    """5 CNN blocks over a raw epoch ``(N, C, n_times)`` -> ``(N, T, d_model)`` tokens
    (``T = 5`` for 3000 samples). See the module docstring."""

    def __init__(self, n_chans: int, d_model: int = 128,
                 widths: tuple[int, ...] = (64, 128, 128, 256, 256),
                 layers: tuple[int, ...] = (2, 2, 3, 3, 3), kernel_size: int = 3,
                 pool: int = 5) -> None:
        super().__init__()
        if len(widths) != len(layers):
            raise ValueError(f"cnn_widths {widths} and cnn_layers {layers} differ in length")
        if widths[-1] != 2 * d_model:
            raise ValueError(f"the last CNN block must have 2 * d_model = {2 * d_model} "
                             f"channels (pooled in pairs to d_model), got {widths[-1]}")
        blocks, c_in = [], n_chans
        for b, (width, n_conv) in enumerate(zip(widths, layers, strict=True)):
            mods: list[nn.Module] = []
            for _ in range(n_conv):
                mods += [nn.Conv1d(c_in, width, kernel_size, padding="same", bias=False),
                         nn.BatchNorm1d(width), nn.ReLU()]
                c_in = width
            if b > 0:
                mods.append(nn.MaxPool1d(pool, ceil_mode=True))
            blocks.append(nn.Sequential(*mods))
        self.blocks = nn.Sequential(*blocks)
        self.channel_pool = nn.MaxPool1d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x).transpose(1, 2)  # (N, T, 2 d_model)
        return self.channel_pool(h)  # pairs of channels -> (N, T, d_model)


class SpectrogramTransformerBackbone(nn.Module):
    """CNN resizing layer + position encoding + Transformer layers over a spectrogram
    ``(N, C, n_frames, n_freqs)`` -> ``(N, n_frames, d_model)``."""

    def __init__(self, n_chans: int, n_frames: int = 29, n_freqs: int = 129,
                 d_model: int = 128, n_heads: int = 8, d_ff: int = 1024, n_layers: int = 4,
                 dropout: float = 0.1, resize_kernel: int = 3) -> None:
        super().__init__()
        self.resize = nn.Sequential(
            nn.Conv1d(n_chans * n_freqs, d_model, resize_kernel, padding="same"), nn.ReLU())
        self.register_buffer("pe", sinusoidal_encoding(n_frames, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout,
                                           batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        N, C, T, F = s.shape
        h = self.resize(s.permute(0, 1, 3, 2).reshape(N, C * F, T)).transpose(1, 2)
        return self.encoder(h + self.pe[:T])


class EpochWiseAttention(nn.Module):
    """Eq. 9-11: ``a_t = tanh(W z_t + b)``, ``α = softmax_t(a_t · a_e)``, ``Σ_t α_t z_t``."""

    def __init__(self, d_model: int, attn_size: int = 128) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, attn_size)
        self.context = nn.Parameter(torch.randn(attn_size) / math.sqrt(attn_size))

    def weights(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, T)`` attention weights of tokens ``z`` ``(N, T, d_model)``."""
        return torch.softmax(torch.tanh(self.proj(z)) @ self.context, dim=-1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (self.weights(z)[..., None] * z).sum(1)


def info_nce(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None,
             temperature: float = 0.1, normalize: bool = True) -> torch.Tensor:
    """Symmetric InfoNCE between two views of the same epochs (Eq. 14-16).

    ``a``, ``b``: ``(B, L, D)`` embeddings of the ``L`` epochs of ``B`` windows. For the
    epoch at position ``j`` of window ``i``, the positive is ``b[i, j]`` and the negatives
    are ``b[k, j]`` of the other windows of the batch (and the other way round). Returns
    the mean over valid anchors (``mask`` ``(B, L)``; padded epochs are neither anchors
    nor negatives) of ``-log p(positive)``, averaged over both directions.
    """
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"info_nce needs two (B, L, D) tensors of one shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if normalize:
        a, b = nn.functional.normalize(a, dim=-1), nn.functional.normalize(b, dim=-1)
    B, L = a.shape[:2]
    valid = (torch.ones(B, L, dtype=torch.bool, device=a.device) if mask is None
             else mask.bool())
    sim = torch.einsum("ild,kld->lik", a, b) / temperature  # (L, B_anchor, B_other)
    keys = valid.T[:, None, :]  # (L, 1, B): which windows can serve as keys at j
    targets = torch.arange(B, device=a.device).expand(L, B)
    anchors = valid.T  # (L, B)
    if not anchors.any():
        return a.sum() * 0.0

    def one_way(s: torch.Tensor) -> torch.Tensor:
        s = s.masked_fill(~keys, float("-inf"))
        return nn.functional.cross_entropy(s[anchors], targets[anchors])

    return (one_way(sim) + one_way(sim.transpose(1, 2))) / 2


def cross_mask(tokens: torch.Tensor, ratio: float, mask_token: torch.Tensor,
               generator: torch.Generator | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each token ``(B, L, D)`` by ``mask_token`` ``(D,)`` with probability
    ``ratio`` (independently); returns ``(masked tokens, (B, L) bool: masked)``."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {ratio}")
    masked = torch.rand(tokens.shape[:2], generator=generator, device=tokens.device) < ratio
    return torch.where(masked[..., None], mask_token.to(tokens.dtype), tokens), masked


class CrossTransformerLayer(nn.Module):
    """Post-norm layer: self-attention + LN, cross-attention to the other view + LN
    (Eq. 17: queries from this view, keys and values from the other), feed-forward + LN.
    ``cross=False`` drops the cross-attention sub-layer."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float,
                 cross: bool = True) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout,
                                               batch_first=True)
        self.cross_attn = (nn.MultiheadAttention(d_model, n_heads, dropout=dropout,
                                                 batch_first=True) if cross else None)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(d_ff, d_model))
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, other: torch.Tensor | None,
                pad: torch.Tensor | None) -> torch.Tensor:
        a, _ = self.self_attn(x, x, x, key_padding_mask=pad, need_weights=False)
        x = self.norms[0](x + self.drop(a))
        if self.cross_attn is not None and other is not None:
            c, _ = self.cross_attn(x, other, other, key_padding_mask=pad, need_weights=False)
            x = self.norms[1](x + self.drop(c))
        return self.norms[2](x + self.drop(self.ff(x)))


# --------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------
class MC2SleepNet(nn.Module):
    """Raw CNN + spectrogram Transformer, epoch-wise attention, cross-masked sequence
    Transformers and three heads (see the module docstring).

    Parameters
    ----------
    n_chans, n_outputs, n_times, sfreq
        braindecode's signature: channels of both views, classes, samples per epoch,
        sampling rate.
    n_frames, n_freqs : int
        Spectrogram size per channel (29 × 129 for 30-s epochs at 100 Hz).
    d_model, cnn_widths, cnn_layers, kernel_size, tf_layers, n_heads, d_ff, dropout,
    attn_size, d_proj, seq_layers, resize_kernel
        Sizes (``paper`` preset: 128, (64, 128, 128, 256, 256), (2, 2, 3, 3, 3), 3, 4, 8,
        1024, 0.1, 128, 128, 4, 3). ``seq_layers=0``: no sequence level, every epoch is
        classified from its own features (the single-epoch rows of Table 3).
    cross_attention : bool
        Cross-attention between the views' sequence Transformers.
    branches : {"both", "raw", "spec"}
        Which backbones exist (``raw``: CNN only, ``spec``: Transformer only).
    view_head : {"mlp", "linear"}
        The per-view heads: an MLP as the paper's Eq. 20-21, or one linear layer.
    epoch_heads : bool
        A linear single-epoch head per backbone (``<view>_epoch_head``), for the backbone
        pre-training phases (:meth:`epoch_logits`).

    Notes
    -----
    ``forward(x, mask)`` takes ``x = {"raw": (B, L, C, n_times), "spec": (B, L, C, n_frames,
    n_freqs)}`` and ``mask`` ``(B, L)`` (True for real epochs) and returns the inference
    logits ``(B, L, n_outputs)`` (the concatenated head, or the only branch's head);
    :meth:`outputs` returns every head, the epoch features and the cross-masks.
    """

    def __init__(self, n_chans: int, n_outputs: int, n_times: int = 3000,
                 sfreq: float = 100.0, n_frames: int = 29, n_freqs: int = 129,
                 d_model: int = 128, cnn_widths: tuple[int, ...] = (64, 128, 128, 256, 256),
                 cnn_layers: tuple[int, ...] = (2, 2, 3, 3, 3), kernel_size: int = 3,
                 tf_layers: int = 4, n_heads: int = 8, d_ff: int = 1024,
                 dropout: float = 0.1, attn_size: int = 128, d_proj: int = 128,
                 seq_layers: int = 4, cross_attention: bool = True, branches: str = "both",
                 resize_kernel: int = 3, view_head: str = "mlp",
                 epoch_heads: bool = False) -> None:
        super().__init__()
        if branches not in ("both", "raw", "spec"):
            raise ValueError(f"branches must be 'both', 'raw' or 'spec', got {branches!r}")
        if view_head not in ("mlp", "linear"):
            raise ValueError(f"view_head must be 'mlp' or 'linear', got {view_head!r}")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_chans, self.n_outputs, self.n_times, self.sfreq = n_chans, n_outputs, n_times, sfreq
        self.branches = branches
        self.views = ("raw", "spec") if branches == "both" else (branches,)
        self.seq_layers = int(seq_layers)
        if "raw" in self.views:
            self.raw_backbone = RawCNNBackbone(n_chans, d_model, tuple(cnn_widths),
                                               tuple(cnn_layers), kernel_size)
            self.raw_attention = EpochWiseAttention(d_model, attn_size)
        if "spec" in self.views:
            self.spec_backbone = SpectrogramTransformerBackbone(
                n_chans, n_frames, n_freqs, d_model, n_heads, d_ff, tf_layers, dropout,
                resize_kernel)
            self.spec_attention = EpochWiseAttention(d_model, attn_size)
        self.epoch_heads = bool(epoch_heads)
        if self.epoch_heads:
            for v in self.views:
                setattr(self, f"{v}_epoch_head", nn.Linear(d_model, n_outputs))
        if branches == "both":
            self.raw_proj = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(),
                                          nn.Linear(d_model, d_proj))
            self.spec_proj = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(),
                                           nn.Linear(d_model, d_proj))
        cross = bool(cross_attention) and branches == "both"
        self.cross_attention = cross
        if self.seq_layers:
            self.mask_token = nn.Parameter(torch.zeros(d_model))
            nn.init.normal_(self.mask_token, std=0.02)
            for v in self.views:
                setattr(self, f"{v}_seq", nn.ModuleList(
                    CrossTransformerLayer(d_model, n_heads, d_ff, dropout, cross)
                    for _ in range(self.seq_layers)))
        for v in self.views:
            setattr(self, f"{v}_head", nn.Sequential(
                nn.Linear(d_model, d_model), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(d_model, n_outputs)) if view_head == "mlp"
                else nn.Linear(d_model, n_outputs))
        if branches == "both":
            self.head = nn.Sequential(nn.Linear(2 * d_model, d_model), nn.ReLU(),
                                      nn.Dropout(dropout), nn.Linear(d_model, n_outputs))
        self.d_model = d_model

    # -- epoch level ------------------------------------------------------------------
    def backbone_tokens(self, view: str, x: torch.Tensor) -> torch.Tensor:
        """Tokens of one epoch per row: raw ``(N, C, n_times)`` -> ``(N, 5, d_model)``,
        spectrogram ``(N, C, n_frames, n_freqs)`` -> ``(N, n_frames, d_model)``."""
        return getattr(self, f"{view}_backbone")(x.float())

    def epoch_features(self, x: dict[str, torch.Tensor],
                       views: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """``{view: (B, L, d_model)}``: backbone, epoch-wise attention (and GAP), of
        ``views`` (default all)."""
        out = {}
        for v in views or self.views:
            xv = x[v]
            B, L = xv.shape[:2]
            tokens = self.backbone_tokens(v, xv.reshape(B * L, *xv.shape[2:]))
            out[v] = getattr(self, f"{v}_attention")(tokens).reshape(B, L, -1)
        return out

    def epoch_logits(self, view: str, x: torch.Tensor) -> torch.Tensor:
        """Single-epoch classifier of one backbone: ``(B, L, n_outputs)`` logits of each
        epoch of ``x`` (that view's input) from its own features (backbone phases)."""
        if not self.epoch_heads:
            raise ValueError("this network has no epoch heads (built with epoch_heads=False)")
        feats = self.epoch_features({view: x}, (view,))[view]
        return getattr(self, f"{view}_epoch_head")(feats)

    # -- sequence level ---------------------------------------------------------------
    def sequence(self, feats: dict[str, torch.Tensor], mask: torch.Tensor | None,
                 mask_ratio: float = 0.0, generator: torch.Generator | None = None,
                 ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Cross-masked sequence Transformers: ``({view: (B, L, d)}, {view: masked})``."""
        masked = {}
        h = {}
        for v, f in feats.items():
            if mask_ratio > 0:
                h[v], masked[v] = cross_mask(f, mask_ratio, self.mask_token, generator)
            else:
                h[v] = f
                masked[v] = torch.zeros(f.shape[:2], dtype=torch.bool, device=f.device)
        if not self.seq_layers:
            return h, masked
        L = next(iter(h.values())).shape[1]
        pe = sinusoidal_encoding(L, self.d_model).to(next(iter(h.values())).device)
        h = {v: t + pe for v, t in h.items()}
        pad = None if mask is None else ~mask.bool()
        for i in range(self.seq_layers):
            new = {}
            for v in self.views:
                other = [o for o in self.views if o != v]
                new[v] = getattr(self, f"{v}_seq")[i](h[v], h[other[0]] if other else None,
                                                      pad)
            h = new
        return h, masked

    def outputs(self, x: dict[str, torch.Tensor], mask: torch.Tensor | None = None,
                mask_ratio: float = 0.0, generator: torch.Generator | None = None,
                ) -> dict[str, Any]:
        """Everything: ``logits`` (inference head), ``logits_<view>``, ``logits_cat``,
        ``features`` (epoch level), ``masked`` (cross-masks)."""
        feats = self.epoch_features(x)
        h, masked = self.sequence(feats, mask, mask_ratio, generator)
        out: dict[str, Any] = {"features": feats, "masked": masked}
        for v in self.views:
            out[f"logits_{v}"] = getattr(self, f"{v}_head")(h[v])
        if self.branches == "both":
            out["logits_cat"] = self.head(torch.cat([h["raw"], h["spec"]], -1))
            out["logits"] = out["logits_cat"]
        else:
            out["logits"] = out[f"logits_{self.branches}"]
        return out

    def forward(self, x: dict[str, torch.Tensor], mask: torch.Tensor | None = None,
                ) -> torch.Tensor:
        return self.outputs(x, mask)["logits"]


# --------------------------------------------------------------------------------------
# night-level model
# --------------------------------------------------------------------------------------
def eeg_first(roles: list[str] | tuple[str, ...], k: int) -> list[int]:
    """Indices of the first ``k`` channels, EEG channels first (then the order given)."""
    order = sorted(range(len(roles)), key=lambda i: (roles[i] != "eeg", i))
    return order[:k]


class MC2SleepNetModel(DeepStagingModel):
    """Night-level MC²SleepNet (see the module docstring).

    Parameters
    ----------
    n_classes : {3, 5}
    channels : int
        Channels fed to both views: the first ``channels`` channels, EEG first (default 1:
        one EEG channel, as the paper).
    contrastive : bool
        Epoch-level InfoNCE in pre-training ("CL").
    mask_ratio : float
        Cross-masking probability in pre-training ("M"; 0 = none).
    finetune : bool
        Fine-tune the sequence level with frozen backbones after pre-training ("FT");
        False keeps the pre-trained model (the paper's "Γ").
    pretrain_epochs : int, optional
        Pre-training epochs (preset default); ``epochs`` is the fine-tuning (or, without
        pre-training, the supervised) phase's.
    backbone_epochs : int, optional
        Epochs of each backbone's single-epoch pre-training before ``pretrain`` (preset
        default; 0 = none; only with both branches and a pre-training phase).
    temperature : float
        InfoNCE temperature.
    augment : bool
        Augment the inputs of the contrastive step.
    init_from : str, optional
        A trained ``mc2sleepnet`` model file whose weights start this one (parameters of
        equal name and shape).
    weight_decay : float
        Adam's weight decay (paper 1e-5).
    grad_clip : float or None
        Gradient-norm clipping of every phase (None: none, as the paper mentions none).
    **options
        :class:`~hypnoscope.models.deep.DeepStagingModel`'s options (preset, seq_len,
        epochs, batch_size, lr, patience, ...) and the network sizes of :data:`NET_KEYS`.
    """

    name = "mc2sleepnet"
    PRESETS = PRESETS
    NET_KEYS = NET_KEYS
    network_class = MC2SleepNet
    default_views = ("raw", "spec")

    def __init__(self, n_classes: int = 5, channels: int = 1, contrastive: bool = True,
                 mask_ratio: float = 0.5, finetune: bool = True,
                 pretrain_epochs: int | None = None, backbone_epochs: int | None = None,
                 temperature: float = 0.1,
                 augment: bool = True, init_from: str | None = None,
                 weight_decay: float = 1e-5, grad_clip: float | None = 5.0,
                 preset: str = "small",
                 **options: Any) -> None:
        if not 0.0 <= float(mask_ratio) < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        if int(channels) < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if float(temperature) <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        super().__init__(n_classes=n_classes, preset=preset, weight_decay=weight_decay,
                         **options)
        branches = self.config["net"].get("branches", "both")
        seq_layers = self.config["net"].get("seq_layers", 1)
        if branches != "both" and (contrastive or mask_ratio):
            contrastive, mask_ratio = False, 0.0  # one view: nothing to contrast or cross
        if not seq_layers:
            mask_ratio = 0.0
        pe = PRESETS[preset]["pretrain_epochs"] if pretrain_epochs is None else pretrain_epochs
        be = PRESETS[preset]["backbone_epochs"] if backbone_epochs is None else backbone_epochs
        if int(be) < 0:
            raise ValueError(f"backbone_epochs must be >= 0, got {backbone_epochs}")
        self.config.update(channels=int(channels), contrastive=bool(contrastive),
                           mask_ratio=float(mask_ratio), finetune=bool(finetune),
                           pretrain_epochs=int(pe), backbone_epochs=int(be),
                           temperature=float(temperature),
                           augment=bool(augment),
                           grad_clip=None if grad_clip is None else float(grad_clip),
                           init_from=None if init_from is None else str(init_from))
        self.channel_index: list[int] = []

    @property
    def pretrained_scheme(self) -> bool:
        """Whether the scheme has a self-supervised pre-training (CL and/or M)."""
        return self.config["contrastive"] or self.config["mask_ratio"] > 0

    @property
    def backbone_pretraining(self) -> bool:
        """Whether the backbone phases run: both branches, a pre-training phase and
        ``backbone_epochs > 0``."""
        c = self.config
        return (self.pretrained_scheme and c["pretrain_epochs"] > 0
                and c.get("backbone_epochs", 0) > 0
                and c["net"].get("branches", "both") == "both")

    def network_kwargs(self, task: str, n_outputs: int, night: Night) -> dict[str, Any]:
        kw = super().network_kwargs(task, n_outputs, night)
        if night.kind != "signals":
            raise ValueError(f"{self.name} reads raw signals and their spectrograms; "
                             f"night {night.night_id} holds {night.kind}")
        self.channel_index = eeg_first(list(night.roles), self.config["channels"])
        n_frames, n_freqs = night.views["spec"].shape[2:]
        return {**kw, "n_chans": len(self.channel_index), "n_frames": int(n_frames),
                "n_freqs": int(n_freqs), "epoch_heads": self.backbone_pretraining,
                "view_head": self.config["net"].get("view_head", "mlp")}

    def build_network(self, kwargs: dict[str, Any]) -> nn.Module:
        """The network; a file saved before the MLP heads (no ``view_head`` in its
        arguments) rebuilds its linear heads."""
        return MC2SleepNet(**{"view_head": "linear", **kwargs})

    def initialise_network(self, task: str, net: nn.Module) -> None:
        """Warm start from ``init_from`` (parameters of equal name and shape)."""
        if self.config.get("init_from"):
            self._initialise_from(net, self.config["init_from"])

    def _initialise_from(self, net: nn.Module, path: str) -> None:
        from hypnoscope.models.base import load_model

        other = load_model(path)
        if not isinstance(other, DeepStagingModel) or not other.nets:
            raise ValueError(f"--init-from {path}: not a trained deep model")
        theirs = next(iter(other.nets.values())).state_dict()
        mine = net.state_dict()
        same = {k: v for k, v in theirs.items() if k in mine and mine[k].shape == v.shape}
        if not same:
            raise ValueError(f"--init-from {path}: no parameter matches this network "
                             f"({other.name}, other sizes?)")
        net.load_state_dict(same, strict=False)
        self.metadata["initialised_from"] = {
            "path": str(path), "model": other.name, "n_tensors": len(same),
            "n_tensors_total": len(mine),
            "trained_on": (other.metadata.get("training_data") or {}).get("n_subjects")}

    # -- inputs and losses -----------------------------------------------------------
    def inputs(self, batch: dict) -> dict[str, torch.Tensor]:
        """The selected channels of both views."""
        idx = self.channel_index or [0]
        return {v: batch["x"][v][:, :, idx] for v in ("raw", "spec") if v in batch["x"]}

    def forward(self, net: nn.Module, batch: dict) -> torch.Tensor:
        return net(self.inputs(batch), mask=batch["mask"])

    def _augment(self, x: dict[str, torch.Tensor], net: MC2SleepNet) -> dict:
        out = dict(x)
        if "raw" in x:
            r = x["raw"]
            aug = RandomAugment(float(net.sfreq))
            out["raw"] = aug(r.reshape(-1, *r.shape[2:]).float()).reshape(r.shape)
        if "spec" in x:
            out["spec"] = spectrogram_noise(x["spec"].float())
        return out

    def backbone_loss(self, net: MC2SleepNet, batch: dict, ctx, view: str) -> LossOutput:
        """Cross-entropy ``ce`` of ``view``'s single-epoch classifier (backbone phases)."""
        logits = net.epoch_logits(view, self.inputs(batch)[view])
        return classification_loss(logits, batch["y"], ctx, self.config["label_smoothing"])

    def sequence_loss(self, net: MC2SleepNet, batch: dict, ctx, contrastive: bool = False,
                      mask_ratio: float = 0.0, augment: bool = False) -> LossOutput:
        """Eq. 19 (+ Eq. 16 with ``contrastive``): ``ce_raw``, ``ce_spec``, ``ce_cat``
        (``ce`` for one branch) and ``nce``; masking and augmentation only in training."""
        x, y = self.inputs(batch), batch["y"]
        training = ctx.training and net.training
        if training and augment and contrastive:
            x = self._augment(x, net)
        out = net.outputs(x, batch["mask"], mask_ratio if training else 0.0)
        terms: dict[str, torch.Tensor] = {}
        if contrastive:
            terms["nce"] = info_nce(net.raw_proj(out["features"]["raw"]),
                                    net.spec_proj(out["features"]["spec"]), batch["mask"],
                                    self.config["temperature"])
        smooth = self.config["label_smoothing"]
        if net.branches == "both":
            for name in ("raw", "spec", "cat"):
                terms[f"ce_{name}"] = classification_loss(out[f"logits_{name}"], y, ctx,
                                                          smooth).terms["ce"]
        else:
            terms["ce"] = classification_loss(out["logits"], y, ctx, smooth).terms["ce"]
        return LossOutput(terms, out["logits"], y)

    def phases(self, task: str) -> list[Phase]:
        c = self.config
        common = {"batch_size": c["batch_size"], "lr": c["lr"], "optimizer": "adam",
                  "weight_decay": c["weight_decay"], "schedule": "none",
                  "class_weighting": c["class_weighting"], "monitor": c["monitor"],
                  "patience": c["patience"], "grad_clip": c.get("grad_clip", 5.0)}
        phases = []
        if self.backbone_pretraining:  # each backbone a single-epoch classifier first
            for v in ("raw", "spec"):
                phases.append(Phase(name=f"backbone_{v}",
                                    loss=partial(self.backbone_loss, view=v),
                                    epochs=c["backbone_epochs"],
                                    params=(f"{v}_backbone.", f"{v}_attention.",
                                            f"{v}_epoch_head."), **common))
        if self.pretrained_scheme and c["pretrain_epochs"] > 0:
            loss = partial(self.sequence_loss, contrastive=c["contrastive"],
                           mask_ratio=c["mask_ratio"], augment=c["augment"])
            phases.append(Phase(name="pretrain", loss=loss, epochs=c["pretrain_epochs"],
                                loss_weights={"nce": 1.0, "ce_raw": 1.0, "ce_spec": 0.1,
                                              "ce_cat": 0.1}, freeze=EPOCH_HEAD_PREFIXES,
                                **common))
        if c["finetune"] or not phases:
            frozen = self.pretrained_scheme or c.get("init_from")
            phases.append(Phase(name="finetune" if frozen else "supervised",
                                loss=self.sequence_loss, epochs=c["epochs"],
                                freeze=BACKBONE_PREFIXES if frozen else (), **common))
        return phases

def make_mc2sleepnet(name: str = "mc2sleepnet", n_classes: int = 5,
                     **kw: Any) -> MC2SleepNetModel:
    """Registry factory of ``mc2sleepnet``."""
    return MC2SleepNetModel(n_classes=n_classes, **kw)


def preset_network(preset: str, n_chans: int = 1, n_outputs: int = 5) -> MC2SleepNet:
    """The network of ``preset`` for 30-s epochs at 100 Hz (``n_chans`` channels)."""
    p = PRESETS[preset]
    return MC2SleepNet(n_chans, n_outputs, 3000, 100.0, **{k: p[k] for k in NET_KEYS if k in p})


def paper_parameter_count(n_outputs: int = 5) -> int:
    """Parameters of the ``paper`` preset for one 100-Hz EEG channel (paper: 5.76 M)."""
    return count_parameters(preset_network("paper", 1, n_outputs))


__all__ = ["MC2SleepNet", "MC2SleepNetModel", "RawCNNBackbone",
           "SpectrogramTransformerBackbone", "EpochWiseAttention", "CrossTransformerLayer",
           "info_nce", "cross_mask", "make_mc2sleepnet", "paper_parameter_count",
           "preset_network", "PRESETS", "NET_KEYS", "BACKBONE_PREFIXES", "EPOCH_HEAD_PREFIXES",
           "eeg_first"]
