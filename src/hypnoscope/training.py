"""One PyTorch training loop for every deep staging model.

- :class:`SequenceDataset`: windows of ``seq_len`` consecutive epochs taken from single
  nights (:func:`hypnoscope.datasets.sequence_windows`; a window never crosses nights),
  many-to-one (target = last epoch) or many-to-many (one target per position), with a
  padding mask.
- :class:`TrainConfig` + :func:`train_model`: AdamW/Adam, cosine/step/no learning-rate
  schedule, plain or class-weighted cross-entropy (``ignore_index=-100``), several named
  losses summed with weights, frozen parameter groups (pre-train / fine-tune), early
  stopping and best-checkpoint selection on validation data (accuracy or macro-F1), a
  checkpoint every epoch with resume, fixed seeds, a progress bar and a per-epoch
  metrics CSV.

A batch is a dict ``{"x": (B, L, ...), "y": (B,) or (B, L), "mask": (B, L) bool}``.
A model is any ``nn.Module`` called as ``model(x, mask=mask)`` returning logits
``(B, L, C)`` or ``(B, C)``; with many-to-one targets ``(B,)`` the last position of
``(B, L, C)`` logits is used. Custom objectives pass ``loss_fn(model, batch,
class_weight) -> (dict name -> loss, logits, targets)``.
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from .datasets import Night, sequence_windows
from .stages import UNSCORED
from .utils import atomic_path, progress, seed_everything, write_text_atomic

logger = logging.getLogger(__name__)

IGNORE_INDEX = UNSCORED

LossFn = Callable[[nn.Module, dict, "torch.Tensor | None"],
                  "tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]"]


# --------------------------------------------------------------------------------------
# sequence dataset
# --------------------------------------------------------------------------------------
class SequenceDataset(Dataset):
    """Windows of consecutive epochs over a list of nights.

    Parameters
    ----------
    nights : list of Night
        Nights with ``X`` of shape ``(n_epochs, ...)`` (the same trailing shape for all).
    seq_len : int
        Window length L.
    mode : {"many-to-one", "many-to-many"}
        ``many-to-one``: one window per epoch, target = its last epoch (left padding
        masked). ``many-to-many``: windows with ``stride`` and one target per position
        (padding positions get ``-100``).
    stride : int, optional
        Stride of many-to-many windows (default ``seq_len``).
    label_map : callable, optional
        Applied to each night's ``y`` (e.g. :func:`hypnoscope.stages.to_3class`);
        negative results are ignored.
    transform : callable, optional
        Applied to each night's ``X`` (e.g. per-night normalisation); must keep its shape.
    drop_unlabelled : bool
        Drop windows without any scored target (training); keep every window for
        inference with ``False``.

    Attributes
    ----------
    index : ndarray (n_windows, L)
        Row indices into the concatenated epoch array; ``mask`` marks real epochs.
    targets : ndarray (n_windows,) or (n_windows, L)
    night_of_window : ndarray (n_windows,)
        Position in ``nights`` of the night each window comes from.
    """

    def __init__(self, nights: Sequence[Night], seq_len: int, mode: str = "many-to-one",
                 stride: int | None = None, label_map: Callable | None = None,
                 transform: Callable | None = None, drop_unlabelled: bool = True) -> None:
        if not nights:
            raise ValueError("SequenceDataset needs at least one night")
        shapes = {tuple(n.X.shape[1:]) for n in nights}
        if len(shapes) > 1:
            raise ValueError(f"nights have different per-epoch shapes {sorted(shapes)}; "
                             f"first: {nights[0].night_id}")
        self.seq_len, self.mode = int(seq_len), mode
        xs, ys, idx, masks, owner = [], [], [], [], []
        offset = 0
        for k, night in enumerate(nights):
            X = night.X if transform is None else transform(night.X)
            y = np.asarray(night.y if label_map is None else label_map(night.y), np.int64)
            y = np.where(y < 0, IGNORE_INDEX, y)
            i, m = sequence_windows(len(y), seq_len, mode=mode, stride=stride)
            xs.append(np.asarray(X, np.float32))
            ys.append(y)
            idx.append(i + offset)
            masks.append(m)
            owner.append(np.full(len(i), k))
            offset += len(y)
        self.X = torch.from_numpy(np.concatenate(xs))
        y_epochs = np.concatenate(ys)
        index, mask = np.concatenate(idx), np.concatenate(masks)
        night_of_window = np.concatenate(owner)
        if mode == "many-to-one":
            targets = y_epochs[index[:, -1]]
            keep = targets >= 0
        else:
            targets = np.where(mask, y_epochs[index], IGNORE_INDEX)
            keep = (targets >= 0).any(axis=1)
        if drop_unlabelled:
            index, mask, targets = index[keep], mask[keep], targets[keep]
            night_of_window = night_of_window[keep]
        if len(index) == 0:
            raise ValueError("no window has a scored target (all labels unscored?)")
        self.index = index
        self.mask = mask
        self.targets = targets
        self.night_of_window = night_of_window
        self._index_t = torch.from_numpy(index)
        self._mask_t = torch.from_numpy(mask)
        self._targets_t = torch.from_numpy(np.ascontiguousarray(targets))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.X[self._index_t[i]], "y": self._targets_t[i],
                "mask": self._mask_t[i]}

    def __getitems__(self, items: list[int]) -> dict[str, torch.Tensor]:
        """Vectorised batch gather (used by :meth:`loader`)."""
        sel = torch.as_tensor(items, dtype=torch.long)
        return {"x": self.X[self._index_t[sel]], "y": self._targets_t[sel],
                "mask": self._mask_t[sel]}

    def class_counts(self, n_classes: int) -> np.ndarray:
        """Number of scored targets per class."""
        t = np.asarray(self.targets).ravel()
        return np.bincount(t[t >= 0], minlength=n_classes)[:n_classes]

    def loader(self, batch_size: int = 64, shuffle: bool = False,
               seed: int = 0) -> DataLoader:
        """A ``DataLoader`` yielding ready batches (dicts) with a seeded shuffle."""
        if shuffle:
            gen = torch.Generator().manual_seed(int(seed))
            sampler = RandomSampler(self, generator=gen)
        else:
            sampler = SequentialSampler(self)
        return DataLoader(self, batch_sampler=BatchSampler(sampler, batch_size, False),
                          collate_fn=_identity)


def _identity(batch):
    return batch


# --------------------------------------------------------------------------------------
# configuration and losses
# --------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Settings of :func:`train_model`.

    Parameters
    ----------
    epochs : int
        Maximum number of training epochs (passes over the data).
    batch_size, lr, weight_decay : int, float, float
        Optimiser settings.
    optimizer : {"adamw", "adam"}
    schedule : {"cosine", "step", "none"}
        Per-epoch learning-rate schedule (``step`` multiplies by ``gamma`` every
        ``step_size`` epochs).
    class_weighting : {None, "balanced"}
        ``balanced`` weights the cross-entropy by ``n / (n_classes * count)``.
    loss_weights : dict
        Weight of each named loss (missing names weigh 1).
    freeze : tuple of str
        Parameter-name prefixes to freeze (e.g. ``("encoder.",)`` to fine-tune the rest).
    monitor : {"val_acc", "val_macro_f1"}
        Validation metric for best-checkpoint selection and early stopping.
    patience : int or None
        Stop after this many epochs without improvement (None: never stop early).
    checkpoint_dir : str or None
        Write ``last.pt`` (full state) and ``best.pt`` every epoch, and ``metrics.csv``.
    resume : bool
        Continue from ``checkpoint_dir/last.pt`` when it exists.
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    optimizer: str = "adamw"
    schedule: str = "cosine"
    step_size: int = 10
    gamma: float = 0.5
    min_lr_ratio: float = 0.05
    class_weighting: str | None = None
    loss_weights: dict[str, float] = field(default_factory=dict)
    freeze: tuple[str, ...] = ()
    monitor: str = "val_acc"
    patience: int | None = 5
    grad_clip: float | None = 5.0
    seed: int = 0
    device: str | None = None
    num_threads: int | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    metrics_csv: str | None = None
    n_classes: int | None = None
    desc: str = "train"

    def __post_init__(self) -> None:
        if self.optimizer not in ("adamw", "adam"):
            raise ValueError(f"optimizer must be 'adamw' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("cosine", "step", "none"):
            raise ValueError(f"schedule must be 'cosine', 'step' or 'none', "
                             f"got {self.schedule!r}")
        if self.monitor not in ("val_acc", "val_macro_f1"):
            raise ValueError(f"monitor must be 'val_acc' or 'val_macro_f1', "
                             f"got {self.monitor!r}")
        if self.class_weighting not in (None, "none", "balanced"):
            raise ValueError(f"class_weighting must be None or 'balanced', "
                             f"got {self.class_weighting!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")


@dataclass
class TrainResult:
    """What :func:`train_model` returns; the model passed in holds the best weights."""

    history: list[dict[str, float]]
    best_epoch: int
    best_score: float | None
    best_state: dict[str, torch.Tensor]
    stopped_early: bool
    resumed_from: int | None
    seconds_per_epoch: float


def balanced_class_weights(counts: np.ndarray) -> np.ndarray:
    """``n / (n_classes * count)`` per class (0 for absent classes)."""
    counts = np.asarray(counts, dtype=float)
    w = np.zeros_like(counts)
    nz = counts > 0
    w[nz] = counts.sum() / (nz.sum() * counts[nz])
    return w


def select_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Logits matching ``targets``: the last position for many-to-one targets."""
    if logits.ndim == 3 and targets.ndim == 1:
        return logits[:, -1]
    return logits


def cross_entropy_loss(model: nn.Module, batch: dict, class_weight: torch.Tensor | None,
                       label_smoothing: float = 0.0,
                       ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Default objective: one cross-entropy named ``"ce"`` (ignore_index=-100), optionally
    with label smoothing (bind it with :func:`functools.partial`)."""
    logits = select_logits(model(batch["x"], mask=batch["mask"]), batch["y"])
    targets = batch["y"]
    flat = logits.reshape(-1, logits.shape[-1])
    loss = nn.functional.cross_entropy(flat, targets.reshape(-1), weight=class_weight,
                                       ignore_index=IGNORE_INDEX,
                                       label_smoothing=float(label_smoothing))
    return {"ce": loss}, logits, targets


def _accuracy_f1(pred: np.ndarray, true: np.ndarray, n_classes: int) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    keep = true >= 0
    if not keep.any():
        return float("nan"), float("nan")
    pred, true = pred[keep], true[keep]
    acc = float((pred == true).mean())
    f1 = float(f1_score(true, pred, labels=list(range(n_classes)), average="macro",
                        zero_division=0))
    return acc, f1


# --------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------
def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def resolve_device(device: str | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    for name, p in model.named_parameters():
        if any(name.startswith(prefix) for prefix in cfg.freeze):
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"every parameter is frozen by freeze={cfg.freeze}")
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(cfg.epochs, 1), eta_min=cfg.lr * cfg.min_lr_ratio)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _e: 1.0)


@torch.no_grad()
def evaluate_loader(model: nn.Module, loader: Iterable, n_classes: int,
                    loss_fn: LossFn = cross_entropy_loss, device: torch.device | None = None,
                    class_weight: torch.Tensor | None = None) -> dict[str, float]:
    """Loss, accuracy and macro-F1 of ``model`` over ``loader`` (scored targets only)."""
    device = device or torch.device("cpu")
    was_training = model.training
    model.eval()
    preds, trues, total, n = [], [], 0.0, 0
    for batch in loader:
        batch = _to_device(batch, device)
        losses, logits, targets = loss_fn(model, batch, class_weight)
        total += float(sum(losses.values())) * len(targets)
        n += len(targets)
        preds.append(logits.argmax(-1).reshape(-1).cpu().numpy())
        trues.append(targets.reshape(-1).cpu().numpy())
    model.train(was_training)
    acc, f1 = _accuracy_f1(np.concatenate(preds), np.concatenate(trues), n_classes)
    return {"loss": total / max(n, 1), "acc": acc, "macro_f1": f1}


def _write_history_csv(path: Path, history: list[dict[str, float]]) -> None:
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(path, buf.getvalue())


def _save_checkpoint(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train_model(model: nn.Module, train_data: SequenceDataset | Iterable,
                val_data: SequenceDataset | Iterable | None = None,
                config: TrainConfig | None = None, loss_fn: LossFn = cross_entropy_loss,
                ) -> TrainResult:
    """Train ``model`` in place and leave it holding the best weights.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(x, mask=mask)`` by the default loss.
    train_data, val_data : SequenceDataset or iterable of batches
        A :class:`SequenceDataset` is wrapped in a seeded, shuffled loader (re-seeded
        every epoch with ``seed + epoch`` so a resumed run sees the same order).
    config : TrainConfig
    loss_fn : callable
        ``loss_fn(model, batch, class_weight) -> (losses, logits, targets)``; the named
        losses are summed with ``config.loss_weights``.

    Returns
    -------
    TrainResult
        Per-epoch history (also in ``metrics.csv``), the best epoch (1-based) and score.
        Without validation data the last epoch is kept.
    """
    cfg = config or TrainConfig()
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    model.to(device)
    n_classes = cfg.n_classes or _infer_n_classes(model)
    optimizer = _make_optimizer(model, cfg)
    scheduler = _make_scheduler(optimizer, cfg)

    class_weight = None
    if cfg.class_weighting == "balanced":
        if not isinstance(train_data, SequenceDataset):
            raise ValueError("class_weighting='balanced' needs a SequenceDataset")
        w = balanced_class_weights(train_data.class_counts(n_classes))
        class_weight = torch.as_tensor(w, dtype=torch.float32, device=device)

    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    metrics_csv = Path(cfg.metrics_csv) if cfg.metrics_csv else (
        ckpt_dir / "metrics.csv" if ckpt_dir else None)
    history: list[dict[str, float]] = []
    best_score: float | None = None
    best_epoch = 0
    best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
    bad_epochs = 0
    start_epoch = 1
    resumed_from = None
    if cfg.resume:
        last = ckpt_dir / "last.pt" if ckpt_dir else None
        if last is None:
            raise ValueError("resume=True needs checkpoint_dir")
        if last.is_file():
            state = torch.load(last, map_location="cpu", weights_only=False)
            try:
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
            except (RuntimeError, ValueError, KeyError) as exc:
                raise ValueError(f"cannot resume from {last}: the checkpoint does not match "
                                 f"this model/optimizer ({str(exc).splitlines()[0]}); use "
                                 "another checkpoint_dir or resume=False") from None
            scheduler.load_state_dict(state["scheduler"])
            history = state["history"]
            best_score, best_epoch = state["best_score"], state["best_epoch"]
            best_state, bad_epochs = state["best_state"], state["bad_epochs"]
            torch.set_rng_state(state["torch_rng"])
            start_epoch = resumed_from = state["epoch"] + 1
            logger.info("resuming %s from epoch %d", last, state["epoch"])
        else:
            logger.warning("resume requested but %s does not exist; starting fresh", last)

    stopped_early = False
    if best_score is not None and cfg.patience is not None and bad_epochs >= cfg.patience:
        stopped_early = True
        start_epoch = cfg.epochs + 1
    epoch_bar = progress(range(start_epoch, cfg.epochs + 1), total=cfg.epochs,
                         initial=start_epoch - 1, desc=cfg.desc, unit="epoch")
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        model.train()
        if isinstance(train_data, SequenceDataset):
            loader = train_data.loader(cfg.batch_size, shuffle=True, seed=cfg.seed + epoch)
        else:
            loader = train_data
        sums: dict[str, float] = {}
        n_seen, n_correct, n_items = 0, 0, 0
        bar = progress(loader, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", leave=False)
        for batch in bar:
            batch = _to_device(batch, device)
            losses, logits, targets = loss_fn(model, batch, class_weight)
            total = sum(cfg.loss_weights.get(k, 1.0) * v for k, v in losses.items())
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            bs = len(targets)
            n_items += bs
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * bs
            sums["loss"] = sums.get("loss", 0.0) + float(total.detach()) * bs
            with torch.no_grad():
                scored = targets >= 0
                n_correct += int((logits.argmax(-1) == targets)[scored].sum())
                n_seen += int(scored.sum())
            bar.set_postfix(loss=f"{sums['loss'] / n_items:.3f}",
                            acc=f"{n_correct / max(n_seen, 1):.3f}")
        bar.close()
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        row: dict[str, float] = {"epoch": epoch, "lr": lr}
        row.update({f"train_{k}": v / max(n_items, 1) for k, v in sums.items()})
        row["train_acc"] = n_correct / max(n_seen, 1)
        improved = False
        if val_data is not None:
            vloader = (val_data.loader(cfg.batch_size * 2) if isinstance(val_data,
                       SequenceDataset) else val_data)
            vm = evaluate_loader(model, vloader, n_classes, loss_fn, device, class_weight)
            row.update({"val_loss": vm["loss"], "val_acc": vm["acc"],
                        "val_macro_f1": vm["macro_f1"]})
            score = row[cfg.monitor]
            if best_score is None or score > best_score:
                improved, best_score, best_epoch, bad_epochs = True, score, epoch, 0
            else:
                bad_epochs += 1
        else:
            improved, best_epoch = True, epoch
        if improved:
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        row["time_s"] = time.perf_counter() - t0
        history.append(row)
        epoch_bar.set_postfix({k: f"{row[k]:.3f}" for k in ("train_loss", "val_acc")
                               if k in row})
        if metrics_csv is not None:
            _write_history_csv(metrics_csv, history)
        if ckpt_dir is not None:
            _save_checkpoint(ckpt_dir / "last.pt", {
                "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "history": history, "best_score": best_score, "best_epoch": best_epoch,
                "best_state": best_state, "bad_epochs": bad_epochs,
                "torch_rng": torch.get_rng_state(), "config": _config_dict(cfg)})
            if improved:
                _save_checkpoint(ckpt_dir / "best.pt", {"epoch": epoch, "model": best_state,
                                                        "score": best_score})
        if (val_data is not None and cfg.patience is not None
                and bad_epochs >= cfg.patience):
            stopped_early = True
            break
    epoch_bar.close()
    model.load_state_dict(best_state)
    times = [r["time_s"] for r in history if "time_s" in r]
    return TrainResult(history=history, best_epoch=best_epoch, best_score=best_score,
                       best_state=best_state, stopped_early=stopped_early,
                       resumed_from=resumed_from,
                       seconds_per_epoch=float(np.mean(times)) if times else float("nan"))


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["freeze"] = list(d["freeze"])
    return d


def _infer_n_classes(model: nn.Module) -> int:
    n = getattr(model, "n_classes", None)
    if n is None:
        raise ValueError("set TrainConfig.n_classes (the model has no n_classes attribute)")
    return int(n)


@torch.no_grad()
def predict_windows(model: nn.Module, dataset: SequenceDataset, batch_size: int = 256,
                    device: str | torch.device | None = None) -> np.ndarray:
    """Softmax probabilities per window: ``(n_windows, C)`` for many-to-one datasets,
    ``(n_windows, L, C)`` for many-to-many."""
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    model.eval()
    model.to(device)
    out = []
    for batch in dataset.loader(batch_size):
        batch = _to_device(batch, device)
        logits = select_logits(model(batch["x"], mask=batch["mask"]), batch["y"])
        out.append(torch.softmax(logits.float(), -1).cpu().numpy())
    return np.concatenate(out)


__all__ = ["SequenceDataset", "TrainConfig", "TrainResult", "train_model", "evaluate_loader",
           "predict_windows", "balanced_class_weights", "cross_entropy_loss",
           "select_logits", "resolve_device", "IGNORE_INDEX"]
