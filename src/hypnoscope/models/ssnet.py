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

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..datasets import Night
from ..stages import N1, N2, N3, STAGES_3, STAGES_5, UNSCORED, R, W, to_3class
from ..training import (
    SequenceDataset,
    TrainConfig,
    cross_entropy_loss,
    predict_windows,
    train_model,
)
from .base import StagingModel

logger = logging.getLogger(__name__)

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

_NET_KEYS = ("emb_dim", "cnn_filters", "mlp_hidden", "tcn_channels", "tcn_levels",
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
    n_channels : int
        Input channels per epoch (EEG/EOG/EMG signals, or feature channels).
    n_classes : int
        Output classes.
    n_times : int, optional
        Samples per epoch (signal input).
    sfreq : float
        Sampling rate of signal input (sets the first convolution's width and stride).
    n_features : int, optional
        Features per channel; when given the encoder is an MLP over the
        ``n_channels * n_features`` vector of each epoch instead of the CNN.
    emb_dim, cnn_filters, mlp_hidden, tcn_channels, tcn_levels, kernel_size, n_heads : int
        Sizes; TCN block ``i`` has dilation ``2**i``.
    dropout : float
    causal : bool
        Causal TCN and attention (a position sees only itself and earlier epochs).

    Notes
    -----
    Input ``x`` is ``(B, L, n_channels, n_times)`` (signals) or ``(B, L, n_channels,
    n_features)`` / ``(B, L, n_features)`` (features); ``mask`` ``(B, L)`` is True for real
    epochs. Output logits are ``(B, L, n_classes)``.
    """

    def __init__(self, n_channels: int, n_classes: int, n_times: int | None = None,
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
        self.n_channels, self.n_classes = int(n_channels), int(n_classes)
        self.n_times, self.sfreq, self.n_features = n_times, sfreq, n_features
        self.causal = bool(causal)
        if n_features is not None:
            self.encoder: nn.Module = _MLPEncoder(n_channels * n_features, mlp_hidden,
                                                  emb_dim, dropout)
        else:
            self.encoder = _CNNEncoder(n_channels, sfreq, cnn_filters, emb_dim, dropout)
        self.tcn = nn.ModuleList(
            TemporalBlock(emb_dim if i == 0 else tcn_channels, tcn_channels, kernel_size,
                          2 ** i, causal, dropout) for i in range(tcn_levels))
        self.attention = nn.MultiheadAttention(tcn_channels, n_heads, dropout=dropout,
                                               batch_first=True)
        self.norm = nn.LayerNorm(tcn_channels)
        self.classifier = nn.Sequential(nn.Linear(tcn_channels, tcn_channels), nn.ReLU(),
                                        nn.Dropout(dropout),
                                        nn.Linear(tcn_channels, n_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
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
        h = self.norm(h + a)
        return self.classifier(h)


# --------------------------------------------------------------------------------------
# hierarchical helpers
# --------------------------------------------------------------------------------------
def wake_sleep_labels(y: np.ndarray) -> np.ndarray:
    """Stage-1 targets: W -> 0, N1/N2/N3/R -> 1 (sleep), unscored stays -100."""
    y = np.asarray(y, np.int64)
    out = np.full(y.shape, UNSCORED, np.int64)
    out[y == W] = 0
    out[np.isin(y, (N1, N2, N3, R))] = 1
    return out


def rem_nrem_labels(y: np.ndarray) -> np.ndarray:
    """Stage-2 targets on sleep epochs only: N1/N2/N3 -> 0 (NREM), R -> 1; wake and
    unscored epochs are ignored (-100)."""
    y = np.asarray(y, np.int64)
    out = np.full(y.shape, UNSCORED, np.int64)
    out[np.isin(y, (N1, N2, N3))] = 0
    out[y == R] = 1
    return out


def merge_hierarchical(p_wake_sleep: np.ndarray, p_nrem_rem: np.ndarray) -> np.ndarray:
    """Merge stage probabilities into W / NREM / R.

    ``p(W) = p1(W)``, ``p(NREM) = p1(S) * p2(NREM)``, ``p(R) = p1(S) * p2(R)``; rows sum to 1.

    Parameters
    ----------
    p_wake_sleep : ndarray (n, 2)
        Stage-1 probabilities [wake, sleep].
    p_nrem_rem : ndarray (n, 2)
        Stage-2 probabilities [NREM, REM].
    """
    p1, p2 = np.asarray(p_wake_sleep, float), np.asarray(p_nrem_rem, float)
    if p1.shape != p2.shape or p1.ndim != 2 or p1.shape[1] != 2:
        raise ValueError(f"expected two (n, 2) probability arrays, got {p1.shape} and "
                         f"{p2.shape}")
    return np.stack([p1[:, 0], p1[:, 1] * p2[:, 0], p1[:, 1] * p2[:, 1]], axis=1)


def cascade_predict(p_wake_sleep: np.ndarray, p_nrem_rem: np.ndarray) -> np.ndarray:
    """Hard hierarchical decision: W where stage 1 says wake, otherwise stage 2's NREM (1)
    or R (2). Stage 2 only decides epochs that stage 1 calls sleep."""
    p1, p2 = np.asarray(p_wake_sleep), np.asarray(p_nrem_rem)
    sleep = p1.argmax(axis=1) == 1
    out = np.zeros(len(p1), np.int64)
    out[sleep] = 1 + p2[sleep].argmax(axis=1)
    return out


# --------------------------------------------------------------------------------------
# night-level model
# --------------------------------------------------------------------------------------
def normalize_night_robust(X: np.ndarray, clip: float = 8.0) -> np.ndarray:
    """Per-night robust z-score: ``(x - median) / (IQR / 1.349)`` of each feature column
    (or each channel of signal input, as :func:`normalize_night`), clipped to ``±clip``."""
    X = np.asarray(X, np.float32)
    axes = (0, 2) if X.ndim == 3 and X.shape[2] > 64 else (0,)
    q25, med, q75 = np.nanpercentile(X, [25, 50, 75], axis=axes, keepdims=True)
    scale = (q75 - q25) / 1.349
    sd = np.nanstd(X, axis=axes, keepdims=True)
    scale = np.where(scale > 1e-6, scale, np.maximum(sd, 1e-6))
    out = np.clip((X - med) / scale, -clip, clip)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def normalize_night(X: np.ndarray) -> np.ndarray:
    """Per-night z-score: each feature column (feature input, ``(n, ...)``) or each channel
    over all its samples (signal input, ``(n, C, T)`` with ``T > 64``)."""
    X = np.asarray(X, np.float32)
    if X.ndim == 3 and X.shape[2] > 64:  # signals: per channel
        mu = X.mean(axis=(0, 2), keepdims=True)
        sd = X.std(axis=(0, 2), keepdims=True)
    else:
        mu, sd = X.mean(axis=0, keepdims=True), X.std(axis=0, keepdims=True)
    out = (X - mu) / np.maximum(sd, 1e-6)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def split_validation_subjects(nights: list[Night], fraction: float = 0.15, seed: int = 0,
                              ) -> tuple[list[Night], list[Night]]:
    """Hold out whole subjects (at least one) for validation; none with < 3 subjects."""
    from ..splits import train_val_test_split

    if len({n.subject_id for n in nights}) < 3 or fraction <= 0:
        return list(nights), []
    train, val, _ = train_val_test_split(nights, val=fraction, test=0.0,
                                         seed=seed).select(nights)
    return train, val


class SSNetModel(StagingModel):
    """Night-level SSNet staging model (direct or hierarchical).

    Parameters
    ----------
    n_classes : {3, 5}
    hierarchical : bool
        Two binary stages merged into W / NREM / R (forces ``n_classes=3``).
    preset : {"small", "paper", "full"}
    seq_len : int, optional
        Epochs per window (preset default).
    mode : {"many-to-many", "many-to-one"}
        Training/inference windows. ``many-to-one`` is the seed's formulation (every
        epoch predicted from the ``seq_len`` epochs ending at it, one window per epoch);
        ``many-to-many`` supervises every position of windows with stride ``seq_len/2``
        and averages the overlapping predictions at inference -- ``seq_len`` times
        cheaper to train on a CPU.
    epochs, batch_size, lr, weight_decay, patience : optional
        Training settings (preset defaults).
    monitor : {"val_acc", "val_macro_f1"}
        Best-checkpoint criterion on the validation subjects.
    class_weighting : {None, "balanced"}
    causal : bool
        Causal TCN/attention (online use).
    normalize : {"night", "robust", "none"}
        Per-night z-score of inputs (``robust``: median / IQR, clipped).
    label_smoothing : float
        Label smoothing of the cross-entropy (0 = none).
    infer_stride : int, optional
        Stride of many-to-many windows at inference (default ``seq_len // 2``; 1 averages
        every window covering an epoch).
    val_fraction : float
        Fraction of training subjects held out for validation when ``fit`` gets no
        ``val_nights``.
    checkpoint_dir, resume, seed, device, num_threads
        Passed to :class:`hypnoscope.training.TrainConfig`.
    **net_options
        Overrides of the preset's network sizes (``emb_dim``, ``tcn_channels``, ...).
    """

    def __init__(self, n_classes: int = 5, hierarchical: bool = False, preset: str = "small",
                 seq_len: int | None = None, mode: str = "many-to-many",
                 epochs: int | None = None, batch_size: int | None = None,
                 lr: float | None = None, weight_decay: float = 1e-2,
                 patience: int | None = None, monitor: str = "val_acc",
                 class_weighting: str | None = None, causal: bool = False,
                 normalize: str = "night", val_fraction: float = 0.15,
                 label_smoothing: float = 0.0, infer_stride: int | None = None,
                 checkpoint_dir: str | None = None, resume: bool = False, seed: int = 0,
                 device: str | None = None, num_threads: int | None = None,
                 **net_options: Any) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
        if hierarchical and n_classes != 3:
            raise ValueError("the hierarchical SSNet (ssnet-hier) is 3-class "
                             f"(W/NREM/R); got n_classes={n_classes} (pass n_classes=3; "
                             "on the command line --classes 3)")
        if mode not in ("many-to-many", "many-to-one"):
            raise ValueError(f"mode must be 'many-to-many' or 'many-to-one', got {mode!r}")
        if normalize not in ("night", "robust", "none"):
            raise ValueError(f"normalize must be 'night', 'robust' or 'none', "
                             f"got {normalize!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if infer_stride is not None and int(infer_stride) < 1:
            raise ValueError(f"infer_stride must be >= 1, got {infer_stride}")
        unknown = set(net_options) - set(_NET_KEYS)
        if unknown:
            raise ValueError(f"unknown SSNet option(s) {sorted(unknown)}; network options "
                             f"are {list(_NET_KEYS)}")
        p = PRESETS[preset]
        net = {k: p[k] for k in _NET_KEYS if k in p}
        net.update(net_options)
        net["causal"] = bool(causal)
        super().__init__(
            n_classes=n_classes, hierarchical=hierarchical, preset=preset,
            seq_len=int(seq_len or p["seq_len"]), mode=mode,
            epochs=int(epochs or p["epochs"]), batch_size=int(batch_size or p["batch_size"]),
            lr=float(lr or p["lr"]), weight_decay=weight_decay,
            patience=p["patience"] if patience is None else patience, monitor=monitor,
            class_weighting=class_weighting, normalize=normalize, val_fraction=val_fraction,
            label_smoothing=float(label_smoothing),
            infer_stride=None if infer_stride is None else int(infer_stride),
            checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
            resume=resume, seed=seed, device=device, num_threads=num_threads, net=net)
        self.hierarchical = hierarchical
        self.name = "ssnet-hier" if hierarchical else "ssnet"
        self.nets: dict[str, SSNet] = {}
        self.net_kwargs: dict[str, dict[str, Any]] = {}
        self.input_kind: str = "features"
        self.training_summary: dict[str, Any] = {}

    # -- tasks -----------------------------------------------------------------------
    def _tasks(self) -> list[tuple[str, int, Any]]:
        if self.hierarchical:
            return [("wake_sleep", 2, wake_sleep_labels), ("rem_nrem", 2, rem_nrem_labels)]
        return [("direct", self.n_classes, to_3class if self.n_classes == 3 else None)]

    def _input_kwargs(self, night: Night) -> dict[str, Any]:
        shape = night.X.shape[1:]
        if night.kind == "signals":
            if len(shape) != 2:
                raise ValueError(f"night {night.night_id}: signal input must be (n_epochs, "
                                 f"n_channels, n_times), got {night.X.shape}")
            return {"n_channels": shape[0], "n_times": shape[1],
                    "sfreq": float(night.sfreq or 100.0)}
        if len(shape) == 1:
            return {"n_channels": 1, "n_features": shape[0]}
        return {"n_channels": shape[0], "n_features": int(np.prod(shape[1:]))}

    def _transform(self):
        return {"night": normalize_night, "robust": normalize_night_robust}.get(
            self.config["normalize"])

    def _train_config(self, task: str, n_out: int) -> TrainConfig:
        c = self.config
        ckpt = c["checkpoint_dir"]
        if ckpt is not None and self.hierarchical:
            ckpt = str(Path(ckpt) / task)
        return TrainConfig(
            epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"],
            weight_decay=c["weight_decay"], optimizer="adamw", schedule="cosine",
            class_weighting=c["class_weighting"], monitor=c["monitor"],
            patience=c["patience"], seed=c["seed"], device=c["device"],
            num_threads=c["num_threads"], checkpoint_dir=ckpt, resume=c["resume"],
            n_classes=n_out, desc=f"{self.name}:{task}")

    def _dataset(self, nights: list[Night], label_map, training: bool) -> SequenceDataset:
        L, mode = self.config["seq_len"], self.config["mode"]
        stride = max(1, L // 2) if mode == "many-to-many" else None
        if mode == "many-to-many" and not training and self.config.get("infer_stride"):
            stride = min(L, self.config["infer_stride"])
        return SequenceDataset(nights, L, mode=mode, stride=stride, label_map=label_map,
                               transform=self._transform(), drop_unlabelled=training)

    # -- fit / predict -------------------------------------------------------------------
    def fit(self, nights: list[Night], val_nights: list[Night] | None = None) -> SSNetModel:
        """Train on ``nights``; pick the best epoch on ``val_nights`` (validation subjects).

        Without ``val_nights``, ``val_fraction`` of the training subjects are held out.
        """
        if not nights:
            raise ValueError("fit needs at least one night")
        kinds = {n.kind for n in nights}
        if len(kinds) > 1:
            raise ValueError(f"cannot mix input kinds {sorted(kinds)} in one model")
        self.input_kind = nights[0].kind
        if val_nights is None:
            nights, val_nights = split_validation_subjects(
                list(nights), self.config["val_fraction"], self.config["seed"])
        overlap = {n.subject_id for n in nights} & {n.subject_id for n in val_nights or []}
        if overlap:
            raise ValueError(f"validation subjects also in training: {sorted(overlap)[:5]}")
        in_kw = self._input_kwargs(nights[0])
        summary: dict[str, Any] = {}
        for task, n_out, label_map in self._tasks():
            train_ds = self._dataset(nights, label_map, training=True)
            val_ds = self._dataset(val_nights, label_map, training=True) if val_nights else None
            kwargs = {**in_kw, "n_classes": n_out, **self.config["net"]}
            torch.manual_seed(self.config["seed"])
            net = SSNet(**kwargs)
            t0 = time.perf_counter()
            loss_fn = partial(cross_entropy_loss,
                              label_smoothing=self.config.get("label_smoothing", 0.0))
            result = train_model(net, train_ds, val_ds, self._train_config(task, n_out),
                                 loss_fn=loss_fn)
            net.cpu().eval()
            self.nets[task], self.net_kwargs[task] = net, kwargs
            summary[task] = {
                "best_epoch": result.best_epoch, "best_val_score": result.best_score,
                "epochs_run": len(result.history), "stopped_early": result.stopped_early,
                "seconds_per_epoch": result.seconds_per_epoch,
                "train_seconds": time.perf_counter() - t0,
                "n_train_windows": len(train_ds), "history": result.history,
                "n_parameters": int(sum(p.numel() for p in net.parameters()))}
        self.training_summary = summary
        first = nights[0]
        preprocessing = {
            "normalize": {"night": "per-night z-score of each ",
                          "robust": "per-night robust z-score (median, IQR) of each ",
                          }.get(self.config["normalize"], "none")
            + ("" if self.config["normalize"] == "none" else
               "channel" if self.input_kind == "signals" else "feature"),
            "sfreq": first.sfreq, "epoch_sec": 30.0,
            "input": first.meta.get("preprocessing") if first.meta else None}
        self.describe_training(nights, validation_subjects=sorted(
            {n.subject_id for n in val_nights or []}), input_kind=self.input_kind,
            input_shape=list(first.X.shape[1:]), channels=list(first.channels),
            roles=list(first.roles), classes=list(self.classes),
            tasks={t: n for t, n, _ in self._tasks()}, preprocessing=preprocessing,
            training=summary)
        return self

    @property
    def classes(self) -> tuple[str, ...]:
        """Names of the output classes (``W N1 N2 N3 R`` or ``W NREM R``)."""
        return STAGES_5 if self.n_classes == 5 else STAGES_3

    def _task_proba(self, task: str, night: Night) -> np.ndarray:
        net = self.nets[task]
        ds = self._dataset([night], None, training=False)
        proba = predict_windows(net, ds, batch_size=256, device=self.config["device"])
        net.cpu()
        if self.config["mode"] == "many-to-one":
            return proba
        acc = np.zeros((night.n_epochs, proba.shape[-1]))
        cnt = np.zeros(night.n_epochs)
        idx, m = ds.index[ds.mask], proba[ds.mask]
        np.add.at(acc, idx, m)
        np.add.at(cnt, idx, 1)
        return acc / cnt[:, None]

    def _check_night(self, night: Night) -> None:
        if not self.nets:
            raise RuntimeError(f"{self.name} model is not fitted")
        if night.kind != self.input_kind:
            raise ValueError(f"night {night.night_id}: model was trained on "
                             f"{self.input_kind} input, got {night.kind}")
        want = self.metadata.get("input_shape")
        if want is not None and list(night.X.shape[1:]) != list(want):
            raise ValueError(f"night {night.night_id}: per-epoch input shape "
                             f"{list(night.X.shape[1:])} differs from the training shape {want}")
        chans = self.metadata.get("channels")
        if chans and night.channels and list(night.channels) != list(chans):
            raise ValueError(f"night {night.night_id}: channels {list(night.channels)} differ "
                             f"from the training channels {chans} (same names, same order "
                             "expected)")

    def stage_probabilities(self, night: Night) -> dict[str, np.ndarray]:
        """Raw per-task probabilities (``direct``, or ``wake_sleep`` and ``rem_nrem``)."""
        self._check_night(night)
        with torch.no_grad():
            return {task: self._task_proba(task, night) for task in self.nets}

    def predict_proba(self, night: Night) -> np.ndarray:
        """``(n_epochs, n_classes)`` probabilities for every epoch of ``night``."""
        p = self.stage_probabilities(night)
        if self.hierarchical:
            return merge_hierarchical(p["wake_sleep"], p["rem_nrem"])
        return p["direct"]

    def predict(self, night: Night) -> np.ndarray:
        """Arg-max codes; the hierarchical model uses the cascade (:func:`cascade_predict`)."""
        if self.hierarchical:
            p = self.stage_probabilities(night)
            return cascade_predict(p["wake_sleep"], p["rem_nrem"])
        return self.predict_proba(night).argmax(axis=1)

    # -- pickling: weights as state_dicts, no live optimiser state -------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["nets"] = {k: {kk: v.detach().cpu().clone() for kk, v in net.state_dict().items()}
                         for k, net in self.nets.items()}
        state["_state_dicts"] = True
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        weights = state.pop("nets")
        state.pop("_state_dicts", None)
        self.__dict__.update(state)
        self.nets = {}
        for task, sd in weights.items():
            net = SSNet(**self.net_kwargs[task])
            net.load_state_dict(sd)
            self.nets[task] = net.eval()


def sleep_statistics_difference(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 5,
                                epoch_sec: float = 30.0) -> dict[str, dict[str, float]]:
    """Sleep statistics of the predicted and the true hypnogram of one night.

    Both use the true hypnogram's time in bed (first to last scored epoch); see
    :func:`hypnoscope.evaluation.compare_hypnograms`.

    Parameters
    ----------
    y_true, y_pred : ndarray (n_epochs,)
        Codes of the same epochs (``y_true`` negative = unscored).
    n_classes : {3, 5}
        Class set of both arrays.
    epoch_sec : float

    Returns
    -------
    dict
        ``{statistic: {"pred", "ref", "diff"}}`` with ``diff = pred - ref`` (minutes, %,
        counts; see :data:`hypnoscope.sleepstats.STAT_KEYS`).
    """
    from ..evaluation import compare_hypnograms
    from ..hypnogram import Hypnogram

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in length")
    ref = Hypnogram(y_true, epoch_sec=epoch_sec, n_classes=n_classes)
    pred = Hypnogram(y_pred, epoch_sec=epoch_sec, n_classes=n_classes)
    return compare_hypnograms(pred, ref)["sleep_statistics"]


def make_ssnet(name: str = "ssnet", n_classes: int = 5, seq_len: int | None = None,
               preset: str = "small", epochs: int | None = None,
               checkpoint_dir: str | None = None, resume: bool = False, seed: int = 0,
               device: str | None = None, **kw: Any) -> SSNetModel:
    """Registry factory for ``ssnet`` (direct) and ``ssnet-hier`` (hierarchical 3-class).

    ``ssnet-hier`` is always 3-class; asking it for ``n_classes=5`` raises ``ValueError``.
    """
    if name not in ("ssnet", "ssnet-hier"):
        raise ValueError(f"make_ssnet builds 'ssnet' or 'ssnet-hier', got {name!r}")
    hierarchical = name == "ssnet-hier"
    return SSNetModel(n_classes=n_classes, hierarchical=hierarchical, preset=preset,
                      seq_len=seq_len, epochs=epochs, checkpoint_dir=checkpoint_dir,
                      resume=resume, seed=seed, device=device, **kw)


__all__ = ["SSNet", "SSNetModel", "TemporalBlock", "PRESETS", "make_ssnet",
           "merge_hierarchical", "cascade_predict", "wake_sleep_labels", "rem_nrem_labels",
           "normalize_night", "normalize_night_robust", "split_validation_subjects",
           "sleep_statistics_difference"]
