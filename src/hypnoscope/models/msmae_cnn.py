"""MSMAE-CNN: multi-scale masked-autoencoder encoder + CNN decoder (+ Random Forest voting).

The model of Khamkar & Bharati (2026), "Learning sleep stages from multi-modal signals
using a dual-stream encoder-decoder design" (IJISRT 11(4); the seed paper), built on
:class:`~hypnoscope.models.deep.EpochStagingModel`. The paper gives the ideas and almost
no sizes; every choice below that it does not state is marked *(ours)* and is an option.

Network (:class:`MSMAECNN`, one 30-s epoch ``(B, n_chans, n_times)`` in):

1. **Modalities.** The channels are grouped by role (EEG, EOG, EMG; any subset,
   ``channel_groups``); each modality has its own encoder (:class:`ModalityEncoder`).
2. **Multi-scale patches.** Each modality's epoch is cut into non-overlapping patches at
   every temporal scale (``scales``, default 0.5, 1, 2 and 5 s: 60, 30, 15 and 6 patches of
   a 30-s epoch; a tail shorter than a patch is dropped); a patch of ``C_m`` channels and
   ``P`` samples is the vector of its ``C_m * P`` values (:func:`patchify`), projected to
   ``d_model`` by a linear layer of its scale, plus a learnt position embedding of the
   scale *(ours)*.
3. **Masking.** In pre-training a random ``mask_ratio`` (default 0.5) of the patches of
   each sample, scale and modality is replaced by a learnt mask token (:func:`random_mask`:
   exactly ``round(mask_ratio * N)`` per sequence); the patch sequence goes through a
   transformer encoder (pre-norm, GELU, ``depth`` layers, shared by the scales of a
   modality *(ours)*) and a linear head per scale reconstructs the masked patches from the
   last layer (SimMIM-style mask tokens rather than MAE's dropped tokens, so every depth
   keeps every position *(ours)*). The loss is the mean squared error over the masked
   patches, averaged over scales and modalities; ``mask_ratio=0`` reconstructs every patch
   (a plain autoencoder, the ablation's "no masking"). What is reconstructed
   (``target``, :func:`patch_targets`) is *(ours)*: by default each masked patch's log
   power spectrum per channel (``"spectrum"``); ``"waveform"`` reconstructs the samples
   themselves. On simulated nights the waveform of a masked EEG/EOG/EMG patch cannot be
   predicted from its neighbours (random phase: the loss settles at that of predicting
   zero), whereas the spectrum of a masked patch can (docs/design.md, design notes).
4. **Multi-scale, multi-level feature tensor.** Without masking, the hidden states after
   the layers in ``levels`` (default: every layer of the ``small`` preset, layers 2, 4 and 6
   of ``paper``), each layer-normalised, of every scale and modality are average-pooled
   (or repeated) onto a common grid of ``grid`` time steps and stacked:
   ``(B, n_modalities * n_scales * n_levels, d_model, grid)``, maps in the order
   modality, scale, level (:meth:`MSMAECNN.multilevel_features`).
5. **CNN decoder** (:class:`CNNDecoder`): the maps' features become channels,
   ``(B, M*S*K*d_model, grid)``, and 1-D convolutions over the time grid with batch norm
   and ReLU (``decoder_filters``, kernel ``kernel_size``) learn from the combined
   features *(ours: convolving over the embedding axis would have no meaning)*, then
   global average pooling, dropout 0.3 and a fully connected layer to the stage logits
   (softmax in the loss).

Training (:class:`MSMAECNNModel`, the phases on :mod:`hypnoscope.training.loop`):

- ``pretrain``: masked-patch reconstruction on every epoch of the *training* nights,
  unscored epochs included (``labelled=False``), for ``pretrain_epochs`` epochs, best
  epoch on the validation subjects' reconstruction loss (fixed masks there). Test-subject
  signals never enter pre-training unless passed explicitly as ``pretrain_nights`` to
  :meth:`MSMAECNNModel.fit` (transductive use; their labels are dropped).
  ``pretrain_epochs=0`` skips it (the "no pre-training" ablation).
- ``finetune``: cross-entropy through encoder and decoder; with ``freeze_encoder=True``
  only the decoder trains (the encoder's weights and normalisation statistics stay as
  pre-trained and its features are computed without gradients), otherwise the encoder
  trains too at ``lr * encoder_lr_scale`` (default 0.1 *(ours)*). Best epoch on validation
  accuracy.

Presets (parameter counts for the Sleep-EDF layout: EEG Fpz-Cz + Pz-Oz, EOG, EMG at
100 Hz; 5 classes; spectrum target):

- ``small`` (2-core CPU, minutes): ``d_model`` 32, 2 layers of 2 heads, levels 1 and 2,
  grid 15, decoder (32, 32): feature tensor ``(B, 24, 32, 15)``; **306,073 parameters**
  (248,677 without the pre-training heads); 3 pre-training + 8 fine-tuning epochs.
- ``paper`` (GPU): ``d_model`` 128, 6 layers of 4 heads, levels 2, 4, 6, grid 30, decoder
  (128, 128, 128): feature tensor ``(B, 36, 128, 30)``; **6,144,569 parameters**
  (5,920,133 without the heads); 50 + 50 epochs. The paper states no size: this is our
  larger configuration of the same architecture, not a reproduction.

``msmae-cnn-rf`` (:func:`make_msmae_cnn_rf`) is the paper's second stream: a
:class:`~hypnoscope.models.ensemble.SoftVotingEnsemble` of MSMAE-CNN and a Random Forest on
the paper's handcrafted EEG features (mean, SD, skewness, kurtosis, delta/theta/alpha/
sigma/beta log power; ``feature_set="msmae-paper"`` of
:class:`~hypnoscope.models.feature_classifiers.FeatureStagingModel`), the weight chosen on
the validation subjects (log-loss on a 0.05 grid).

Preprocessing: the paper low-passes EEG, EOG and EMG with a Kaiser-window FIR (10 Hz,
60 dB at 100 Hz): the ``"msmae-cnn"`` preset of :mod:`hypnoscope.signal.preprocessing`
(``hypnoscope train --lowpass``), then removes baseline wander with a 0.5-Hz Kaiser
high-pass (the paper's "baseline wandering", its cut-off ours; ``--highpass``, 0 = off);
each night is then z-scored per channel by the base.
A 10 Hz cut-off removes sigma (spindles) and beta; ``benchmarks/msmae_cnn`` measures it
against 30 Hz.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hypnoscope.datasets import Night
from hypnoscope.models.deep import EpochStagingModel
from hypnoscope.models.ensemble import SoftVotingEnsemble
from hypnoscope.stages import UNSCORED
from hypnoscope.training.losses import LossOutput
from hypnoscope.training.phases import Phase

#: Modality of each channel role (the EMG envelope of cassette recordings is EMG).
ROLE_MODALITY = {"eeg": "eeg", "eog": "eog", "emg": "emg", "emg_envelope": "emg"}
MODALITIES = ("eeg", "eog", "emg")

#: Network and training settings of each preset.
PRESETS: dict[str, dict[str, Any]] = {
    "small": {"scales": (0.5, 1.0, 2.0, 5.0), "d_model": 32, "depth": 2, "n_heads": 2,
              "levels": (1, 2), "mlp_ratio": 2, "grid": 15, "decoder_filters": (32, 32),
              "kernel_size": 3, "dropout": 0.3, "encoder_dropout": 0.0,
              "seq_len": 1, "epochs": 8, "pretrain_epochs": 3, "batch_size": 64,
              "lr": 2e-3, "patience": 3},
    "paper": {"scales": (0.5, 1.0, 2.0, 5.0), "d_model": 128, "depth": 6, "n_heads": 4,
              "levels": (2, 4, 6), "mlp_ratio": 4, "grid": 30,
              "decoder_filters": (128, 128, 128), "kernel_size": 3, "dropout": 0.3,
              "encoder_dropout": 0.1, "seq_len": 1, "epochs": 50, "pretrain_epochs": 50,
              "batch_size": 128, "lr": 5e-4, "patience": 10},
}

NET_KEYS = ("scales", "d_model", "depth", "n_heads", "levels", "mlp_ratio", "grid",
            "decoder_filters", "kernel_size", "dropout", "encoder_dropout", "target")


# --------------------------------------------------------------------------------------
# patches and masks
# --------------------------------------------------------------------------------------
def patch_length(scale_sec: float, sfreq: float) -> int:
    """Samples per patch of ``scale_sec`` seconds (at least 1)."""
    n = int(round(float(scale_sec) * float(sfreq)))
    if n < 1:
        raise ValueError(f"a {scale_sec}-s patch at {sfreq} Hz has no sample")
    return n


def adaptive_avg_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """``F.adaptive_avg_pool1d(x, size)`` over the last axis as a product with a constant
    averaging matrix (bin ``i`` averages ``floor(i N / size) .. ceil((i + 1) N / size)``):
    the same values, and exportable to ONNX for any ``N`` (the ONNX exporter converts
    adaptive pooling only when ``size`` divides ``N``)."""
    n = int(x.shape[-1])  # a constant of the network (and of a traced graph)
    w = np.zeros((n, size), np.float32)
    for i in range(size):
        a, b = (i * n) // size, -((-(i + 1) * n) // size)
        w[a:b, i] = 1.0 / (b - a)
    return x @ torch.from_numpy(w).to(device=x.device, dtype=x.dtype)


def patchify(x: torch.Tensor, patch_len: int) -> torch.Tensor:
    """Non-overlapping patches: ``(B, C, T)`` -> ``(B, T // patch_len, C * patch_len)``.

    A patch's vector holds its channels one after the other; a tail shorter than a patch
    is dropped.
    """
    B, C, T = x.shape
    n = T // patch_len
    if n < 1:
        raise ValueError(f"{T} samples hold no patch of {patch_len} samples")
    p = x[..., :n * patch_len].reshape(B, C, n, patch_len)
    return p.permute(0, 2, 1, 3).reshape(B, n, C * patch_len)


def patch_targets(patches: torch.Tensor, n_chans: int, target: str = "spectrum",
                  ) -> torch.Tensor:
    """Reconstruction targets of patches ``(B, N, n_chans * P)``.

    ``"waveform"``: the patch values themselves. ``"spectrum"``: per channel the log10
    power spectrum of the Hann-windowed patch (``P // 2 + 1`` bins, power normalised by
    the window energy, floor 1e-3) -> ``(B, N, n_chans * (P // 2 + 1))``.
    """
    if target == "waveform":
        return patches
    if target != "spectrum":
        raise ValueError(f"target must be 'spectrum' or 'waveform', got {target!r}")
    B, N, CP = patches.shape
    P = CP // n_chans
    win = torch.hann_window(P, periodic=False, dtype=patches.dtype, device=patches.device)
    spec = torch.fft.rfft(patches.reshape(B, N, n_chans, P) * win, dim=-1).abs() ** 2
    return torch.log10(spec / (win ** 2).sum() + 1e-3).reshape(B, N, -1)


def target_size(n_chans: int, patch_len: int, target: str = "spectrum") -> int:
    """Values per patch of :func:`patch_targets`."""
    return n_chans * (patch_len if target == "waveform" else patch_len // 2 + 1)


def n_masked(n_patches: int, ratio: float) -> int:
    """Patches masked per sequence: ``round(ratio * n_patches)``, at least one when
    ``ratio > 0`` and at most ``n_patches - 1``."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {ratio}")
    if ratio == 0:
        return 0
    return int(min(max(int(np.floor(ratio * n_patches + 0.5)), 1), n_patches - 1))


def random_mask(batch: int, n_patches: int, ratio: float,
                generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> torch.Tensor:
    """``(batch, n_patches)`` boolean mask, True = masked, exactly
    :func:`n_masked` ``(n_patches, ratio)`` per row, uniformly at random (MAE's
    argsort of uniform noise)."""
    k = n_masked(n_patches, ratio)
    noise = torch.rand(batch, n_patches, generator=generator)
    mask = noise.argsort(dim=1).argsort(dim=1) < k
    return mask if device is None else mask.to(device)


# --------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------
class ModalityEncoder(nn.Module):
    """Multi-scale masked-autoencoder encoder of one modality.

    Parameters
    ----------
    n_chans : int
        Channels of the modality.
    patch_lens : sequence of int
        Samples per patch, one per scale.
    n_patches : sequence of int
        Patches per epoch at each scale.
    d_model, depth, n_heads, mlp_ratio : int
        Transformer sizes (shared by the scales).
    dropout : float
        Dropout inside the transformer layers.
    """

    def __init__(self, n_chans: int, patch_lens: Sequence[int], n_patches: Sequence[int],
                 d_model: int, depth: int, n_heads: int, mlp_ratio: int,
                 dropout: float) -> None:
        super().__init__()
        self.patch_lens, self.n_patches = list(patch_lens), list(n_patches)
        self.embed = nn.ModuleList(nn.Linear(n_chans * p, d_model) for p in patch_lens)
        self.pos = nn.ParameterList(nn.Parameter(torch.zeros(1, n, d_model))
                                    for n in n_patches)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, mlp_ratio * d_model, dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(depth))
        for p in (*self.pos, self.mask_token):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x: torch.Tensor, scale: int, mask: torch.Tensor | None = None,
                ) -> list[torch.Tensor]:
        """Hidden states ``(B, N, d_model)`` after every layer for scale ``scale``;
        masked patches (``mask`` True) enter as the mask token."""
        tok = self.embed[scale](patchify(x, self.patch_lens[scale]))
        if mask is not None:
            tok = torch.where(mask[..., None], self.mask_token.to(tok.dtype), tok)
        h = tok + self.pos[scale]
        out = []
        for layer in self.layers:
            h = layer(h)
            out.append(h)
        return out


class CNNDecoder(nn.Module):
    """Conv1d + batch norm + ReLU blocks over time, global average pooling, dropout,
    fully connected layer: ``(B, in_channels, grid)`` -> ``(B, n_outputs)`` logits."""

    def __init__(self, in_channels: int, n_outputs: int, filters: Sequence[int] = (32, 32),
                 kernel_size: int = 3, dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for f in filters:
            layers += [nn.Conv1d(c, f, kernel_size, padding=kernel_size // 2, bias=False),
                       nn.BatchNorm1d(f), nn.ReLU()]
            c = f
        self.blocks = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, n_outputs)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(z).mean(-1)  # global average pooling over the grid
        return self.fc(self.dropout(h))


class MSMAECNN(nn.Module):
    """Multi-scale masked-autoencoder encoders (one per modality) + CNN decoder.

    Parameters
    ----------
    n_chans : int
        Input channels.
    n_outputs : int
        Classes.
    n_times : int
        Samples per epoch.
    sfreq : float
        Sampling rate (patch lengths are ``scale * sfreq`` samples).
    channel_groups : dict of str to list of int, optional
        Modality -> channel indices, e.g. ``{"eeg": [0, 1], "eog": [2], "emg": [3]}``
        (default: every channel one modality ``"all"``).
    scales : sequence of float
        Patch lengths in seconds.
    d_model, depth, n_heads, mlp_ratio : int
        Transformer sizes of each modality encoder.
    levels : sequence of int, optional
        Encoder depths (1-based layer numbers) whose hidden states form the feature
        tensor (default: every layer).
    grid : int
        Time steps of the feature tensor.
    decoder_filters : sequence of int
        Filters of the decoder's convolution blocks.
    kernel_size : int
        Decoder kernel (time steps).
    dropout : float
        Dropout before the decoder's fully connected layer (the paper's 0.3).
    encoder_dropout : float
        Dropout inside the transformer layers.
    target : {"spectrum", "waveform"}
        What pre-training reconstructs of a masked patch (:func:`patch_targets`).

    Notes
    -----
    ``forward(x)`` takes ``(B, n_chans, n_times)`` and returns ``(B, n_outputs)`` logits.
    The parts: ``encoder`` (a ``ModuleDict`` of :class:`ModalityEncoder`),
    ``reconstruction`` (the pre-training heads, unused for staging) and ``decoder``
    (:class:`CNNDecoder`). :meth:`multilevel_features` returns the tensor
    ``(B, n_modalities * n_scales * n_levels, d_model, grid)``;
    :meth:`reconstruction_loss` is the pre-training objective.
    """

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, sfreq: float = 100.0,
                 channel_groups: dict[str, Sequence[int]] | None = None,
                 scales: Sequence[float] = (0.5, 1.0, 2.0, 5.0), d_model: int = 32,
                 depth: int = 2, n_heads: int = 2, levels: Sequence[int] | None = None,
                 mlp_ratio: int = 2, grid: int = 15,
                 decoder_filters: Sequence[int] = (32, 32), kernel_size: int = 3,
                 dropout: float = 0.3, encoder_dropout: float = 0.0,
                 target: str = "spectrum") -> None:
        super().__init__()
        if target not in ("spectrum", "waveform"):
            raise ValueError(f"target must be 'spectrum' or 'waveform', got {target!r}")
        self.n_chans, self.n_outputs = int(n_chans), int(n_outputs)
        self.n_times, self.sfreq = int(n_times), float(sfreq)
        groups = {k: [int(i) for i in v] for k, v in
                  (channel_groups or {"all": list(range(n_chans))}).items()}
        if not groups or any(not v for v in groups.values()):
            raise ValueError(f"channel_groups must name channels for every modality, "
                             f"got {channel_groups}")
        bad = [i for v in groups.values() for i in v if not 0 <= i < n_chans]
        if bad:
            raise ValueError(f"channel_groups index channels {bad} outside 0..{n_chans - 1}")
        if not scales:
            raise ValueError("scales must name at least one patch length")
        levels = list(levels) if levels else list(range(1, depth + 1))
        if any(not 1 <= k <= depth for k in levels):
            raise ValueError(f"levels must be layer numbers in 1..{depth}, got {levels}")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.channel_groups = groups
        self.scales = [float(s) for s in scales]
        self.patch_lens = [patch_length(s, sfreq) for s in self.scales]
        self.n_patches = [self.n_times // p for p in self.patch_lens]
        if min(self.n_patches) < 2:
            raise ValueError(f"scales {self.scales} s leave fewer than 2 patches in a "
                             f"{self.n_times / self.sfreq:g}-s epoch")
        self.levels, self.grid, self.d_model = levels, int(grid), int(d_model)
        self.encoder = nn.ModuleDict({
            m: ModalityEncoder(len(idx), self.patch_lens, self.n_patches, d_model, depth,
                               n_heads, mlp_ratio, encoder_dropout)
            for m, idx in groups.items()})
        self.level_norm = nn.ModuleDict({
            m: nn.ModuleList(nn.LayerNorm(d_model) for _ in levels) for m in groups})
        self.target = target
        self.reconstruction = nn.ModuleDict({
            m: nn.ModuleList(nn.Sequential(nn.LayerNorm(d_model),
                                           nn.Linear(d_model, target_size(len(idx), p, target)))
                             for p in self.patch_lens)
            for m, idx in groups.items()})
        self.n_maps = len(groups) * len(self.scales) * len(levels)
        self.decoder = CNNDecoder(self.n_maps * d_model, n_outputs, decoder_filters,
                                  kernel_size, dropout)

    def _modality_input(self, x: torch.Tensor, m: str) -> torch.Tensor:
        return x[:, self.channel_groups[m]].float()

    def multilevel_features(self, x: torch.Tensor) -> torch.Tensor:
        """The multi-scale, multi-level feature tensor of ``x`` ``(B, n_chans, n_times)``:
        ``(B, n_modalities * n_scales * n_levels, d_model, grid)``, maps ordered by
        modality, then scale, then level."""
        maps = []
        for m, enc in self.encoder.items():
            xm = self._modality_input(x, m)
            for s in range(len(self.scales)):
                hidden = enc(xm, s)
                for norm, k in zip(self.level_norm[m], self.levels, strict=True):
                    h = norm(hidden[k - 1]).transpose(1, 2)  # (B, d_model, N_s)
                    maps.append(adaptive_avg_pool(h, self.grid))
        return torch.stack(maps, dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Stage logits ``(B, n_outputs)`` (``mask`` is accepted and ignored: one epoch
        per sample). A fully frozen encoder runs without gradients."""
        if torch.is_grad_enabled() and not any(p.requires_grad
                                               for p in self.encoder.parameters()):
            with torch.no_grad():
                z = self.multilevel_features(x)
        else:
            z = self.multilevel_features(x)
        return self.decoder(z.flatten(1, 2))

    def reconstruction_loss(self, x: torch.Tensor, mask_ratio: float = 0.5,
                            generator: torch.Generator | None = None,
                            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Masked-patch reconstruction loss of ``x`` ``(B, n_chans, n_times)``.

        Every modality and scale gets its own random mask (:func:`random_mask`); the
        loss is the mean squared error over the masked patches (every patch when
        ``mask_ratio`` is 0), averaged over modalities and scales. Returns the loss and
        the term of every ``"<modality>@<scale>s"``.
        """
        terms: dict[str, torch.Tensor] = {}
        for m, enc in self.encoder.items():
            xm = self._modality_input(x, m)
            for s, scale in enumerate(self.scales):
                n = self.n_patches[s]
                mask = (random_mask(len(xm), n, mask_ratio, generator, xm.device)
                        if mask_ratio > 0 else None)
                hidden = enc(xm, s, mask)
                pred = self.reconstruction[m][s](hidden[-1])
                goal = patch_targets(patchify(xm, self.patch_lens[s]), xm.shape[1],
                                     self.target)
                err = ((pred - goal) ** 2).mean(-1)
                terms[f"{m}@{scale:g}s"] = err.mean() if mask is None else err[mask].mean()
        return torch.stack(list(terms.values())).mean(), terms


# --------------------------------------------------------------------------------------
# night-level model
# --------------------------------------------------------------------------------------
def channel_groups(roles: Sequence[str], modalities: Sequence[str] | None = None,
                   ) -> dict[str, list[int]]:
    """Modality -> channel indices from channel roles (:data:`ROLE_MODALITY`), in the
    order EEG, EOG, EMG; ``modalities`` keeps only those (each must be present)."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(roles):
        m = ROLE_MODALITY.get(str(r).lower())
        if m is not None:
            groups.setdefault(m, []).append(i)
    groups = {m: groups[m] for m in MODALITIES if m in groups}
    if modalities is not None:
        missing = [m for m in modalities if m not in groups]
        if missing:
            raise ValueError(f"modalities {missing} have no channel (roles {list(roles)})")
        groups = {m: groups[m] for m in MODALITIES if m in modalities}
    if not groups:
        raise ValueError(f"no EEG, EOG or EMG channel among roles {list(roles)}")
    return groups


def unlabelled_copies(nights: Sequence[Night]) -> list[Night]:
    """The nights with every label unscored (signals shared, not copied): they serve the
    self-supervised phase only."""
    from dataclasses import replace

    return [replace(n, y=np.full(n.n_epochs, UNSCORED), views=dict(n.views))
            for n in nights]


class MSMAECNNModel(EpochStagingModel):
    """Night-level MSMAE-CNN (see the module docstring).

    Parameters
    ----------
    n_classes : {3, 5}
    mask_ratio : float
        Fraction of patches masked in pre-training (paper: masking; 0.5 *(ours)*).
    pretrain_epochs : int, optional
        Pre-training epochs (preset default); 0 skips pre-training.
    freeze_encoder : bool
        Fine-tune the decoder only (True) or encoder and decoder (False).
    encoder_lr_scale : float
        Learning rate of the encoder in fine-tuning, relative to ``lr``.
    modalities : sequence of {"eeg", "eog", "emg"}, optional
        Modalities used (default: every one present; other channels are ignored).
    **options
        Everything :class:`~hypnoscope.models.deep.DeepStagingModel` takes (preset,
        epochs, batch_size, lr, patience, seed, checkpoint_dir, ...) and the network
        options :data:`NET_KEYS` (``scales``, ``d_model``, ``depth``, ``levels`` ...).
    """

    name = "msmae-cnn"
    PRESETS = PRESETS
    NET_KEYS = NET_KEYS
    network_class = MSMAECNN

    def __init__(self, n_classes: int = 5, mask_ratio: float = 0.5,
                 pretrain_epochs: int | None = None, freeze_encoder: bool = False,
                 encoder_lr_scale: float = 0.1,
                 modalities: Sequence[str] | None = None, **options: Any) -> None:
        n_masked(100, mask_ratio)  # validates the ratio
        if modalities is not None:
            bad = [m for m in modalities if m not in MODALITIES]
            if bad or not modalities:
                raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, "
                                 f"got {modalities}")
        if encoder_lr_scale <= 0:
            raise ValueError(f"encoder_lr_scale must be > 0, got {encoder_lr_scale}")
        if "scales" in options and options["scales"] is not None:
            options["scales"] = tuple(float(s) for s in options["scales"])
        super().__init__(n_classes=n_classes, **options)
        p = self.PRESETS[self.config["preset"]]
        pre = p["pretrain_epochs"] if pretrain_epochs is None else int(pretrain_epochs)
        if pre < 0:
            raise ValueError(f"pretrain_epochs must be >= 0, got {pre}")
        self.config.update(mask_ratio=float(mask_ratio), pretrain_epochs=pre,
                           freeze_encoder=bool(freeze_encoder),
                           encoder_lr_scale=float(encoder_lr_scale),
                           modalities=None if modalities is None else list(modalities))

    def network_kwargs(self, task: str, n_outputs: int, night: Night) -> dict[str, Any]:
        kw = super().network_kwargs(task, n_outputs, night)
        if night.kind != "signals":
            raise ValueError(f"{self.name} needs signal nights (hypnoscope train --data), "
                             f"got {night.kind!r}")
        kw["channel_groups"] = channel_groups(night.roles, self.config["modalities"])
        return kw

    # -- losses ----------------------------------------------------------------------
    def pretrain_loss(self, net: MSMAECNN, batch: dict, ctx) -> LossOutput:
        """Masked-patch reconstruction (term ``"rec"``); validation batches use masks
        fixed by the position of their first epoch, so epochs compare."""
        x = self.epoch_input(batch)
        gen = None
        if not ctx.training:
            seed = int(batch["night"][0]) * 1_000_003 + int(batch["pos"][0, -1])
            gen = torch.Generator().manual_seed(seed)
        loss, _ = net.reconstruction_loss(x, self.config["mask_ratio"], gen)
        return LossOutput({"rec": loss})

    def phases(self, task: str) -> list[Phase]:
        c = self.config
        out = []
        if c["pretrain_epochs"] > 0:
            out.append(Phase(name="pretrain", loss=self.pretrain_loss,
                             params=["encoder.", "reconstruction."],
                             epochs=c["pretrain_epochs"], batch_size=c["batch_size"],
                             lr=c["lr"], weight_decay=c["weight_decay"], monitor="val_rec",
                             patience=None, labelled=False))
        if c["freeze_encoder"]:
            params: dict[str, float] | None = {"decoder.": c["lr"]}
        else:
            params = {"encoder.": c["lr"] * c["encoder_lr_scale"],
                      "level_norm.": c["lr"], "decoder.": c["lr"]}
        out.append(self.supervised_phase(name="finetune", params=params))
        return out

    # -- fit -------------------------------------------------------------------------
    def fit(self, nights: list[Night], val_nights: list[Night] | None = None,
            pretrain_nights: list[Night] | None = None) -> MSMAECNNModel:
        """Train on ``nights``; checkpoints on ``val_nights`` (validation subjects).

        ``pretrain_nights`` (e.g. the test nights, for transductive pre-training) join
        the self-supervised phase only: their labels are dropped, they never reach
        fine-tuning. By default nothing but the training nights is pre-trained on.
        """
        from hypnoscope.evaluation.splits import validation_split

        nights = list(nights)
        if val_nights is None:
            nights, val_nights = validation_split(nights, self.config["val_fraction"],
                                                  self.config["seed"])
        extra = unlabelled_copies(pretrain_nights or [])
        super().fit(nights + extra, val_nights)
        self.metadata["pretrain_nights"] = [n.night_id for n in extra]
        return self


def make_msmae_cnn(name: str = "msmae-cnn", n_classes: int = 5, **kw: Any) -> MSMAECNNModel:
    """Registry factory of ``msmae-cnn``."""
    if name != "msmae-cnn":
        raise ValueError(f"make_msmae_cnn builds 'msmae-cnn', got {name!r}")
    return MSMAECNNModel(n_classes=n_classes, **kw)


def make_msmae_cnn_rf(name: str = "msmae-cnn-rf", n_classes: int = 5, seed: int = 0,
                      rf_options: dict[str, Any] | None = None, metric: str = "log_loss",
                      grid_step: float = 0.05, weights: Sequence[float] | None = None,
                      **msmae_options: Any) -> SoftVotingEnsemble:
    """Registry factory of ``msmae-cnn-rf``: soft voting of MSMAE-CNN and a Random Forest
    on the paper's handcrafted EEG features, the weight chosen on validation subjects.

    Parameters
    ----------
    rf_options : dict, optional
        Options of the Random Forest (:func:`~hypnoscope.models.feature_classifiers.
        make_feature_model`, e.g. ``n_estimators``); ``feature_set`` defaults to
        ``"msmae-paper"``.
    metric, grid_step, weights
        Of :class:`~hypnoscope.models.ensemble.SoftVotingEnsemble` (``weights`` fixed
        instead of chosen, in the order MSMAE-CNN, RF).
    **msmae_options
        Options of :class:`MSMAECNNModel` (``val_fraction`` also carves the ensemble's
        validation subjects when ``fit`` gets none).
    """
    from hypnoscope.models.feature_classifiers import make_feature_model

    if name != "msmae-cnn-rf":
        raise ValueError(f"make_msmae_cnn_rf builds 'msmae-cnn-rf', got {name!r}")
    cnn = MSMAECNNModel(n_classes=n_classes, seed=seed, **msmae_options)
    rf_kw = {"feature_set": "msmae-paper", **(rf_options or {})}
    rf = make_feature_model("rf", n_classes=n_classes, seed=seed, **rf_kw)
    ens = SoftVotingEnsemble([cnn, rf], n_classes=n_classes, weights=weights, metric=metric,
                             grid_step=grid_step, seed=seed,
                             val_fraction=cnn.config["val_fraction"])
    ens.name = name
    return ens


__all__ = ["MSMAECNN", "MSMAECNNModel", "ModalityEncoder", "CNNDecoder", "PRESETS",
           "NET_KEYS", "channel_groups", "patchify", "patch_length", "patch_targets",
           "target_size", "random_mask", "n_masked", "unlabelled_copies", "make_msmae_cnn",
           "make_msmae_cnn_rf"]
