"""Training phases: what each trains, how, and what it monitors.

A training run is a sequence of :class:`Phase` s (e.g. self-supervised pre-training, then
supervised fine-tuning). Each phase names

- its loss (:mod:`hypnoscope.training.losses`) and the weights of its named terms;
- the parameters it trains: name prefixes, each with its own learning rate; every other
  parameter is frozen *for that phase only* (and modules whose parameters are all frozen
  run in eval mode, so their batch-norm statistics stay put too:
  :func:`freeze_frozen_modules`);
- optimiser (AdamW/Adam, :func:`make_optimizer`), per-epoch schedule (cosine/step/none,
  :func:`make_scheduler`), gradient clipping;
- the metric it monitors (``val_loss``, ``val_<term>``, ``val_acc``, ``val_macro_f1``)
  and whether to minimise or maximise it, early stopping, and its own best checkpoint;
- whether it needs labels (``labelled=False``: every window, unscored epochs included).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hypnoscope.training.losses import LossFn, cross_entropy_loss
from hypnoscope.training.sequences import SequenceDataset

_MAXIMISED = ("acc", "macro_f1")


@dataclass
class Phase:
    """One training phase.

    Parameters
    ----------
    name : str
        Unique within a run (checkpoints go to ``<checkpoint_dir>/<name>/``).
    loss : callable, optional
        ``loss(model, batch, ctx) -> LossOutput`` (default :func:`cross_entropy_loss`).
    loss_weights : dict
        Weight of each named term (missing names weigh 1), for training and validation.
    params : dict or sequence of str, optional
        Parameter-name prefixes this phase trains: ``{prefix: lr}`` (each group its own
        learning rate) or a list of prefixes (all at ``lr``); None trains every parameter.
        Everything else is frozen for this phase only.
    freeze : sequence of str
        Prefixes frozen in this phase even if ``params`` selects them.
    epochs, batch_size, lr, weight_decay : int, int, float, float
    optimizer : {"adamw", "adam"}
    schedule : {"cosine", "step", "none"}
        Per-epoch learning-rate schedule (``step``: times ``gamma`` every ``step_size``).
    class_weighting : {None, "balanced"}
        ``balanced`` weights the cross-entropy by ``n / (n_classes * count)``.
    monitor : str
        Validation metric for the best checkpoint and early stopping: ``val_loss``,
        ``val_<term>``, ``val_acc`` or ``val_macro_f1``.
    mode : {"min", "max"}, optional
        Default: ``max`` for accuracy/F1, ``min`` for losses.
    patience : int or None
        Stop after this many epochs without improvement (None: never early).
    labelled : bool
        False: train and validate on every window, unscored epochs included
        (self-supervised phases).
    """

    name: str = "train"
    loss: LossFn | None = None
    loss_weights: dict[str, float] = field(default_factory=dict)
    params: Mapping[str, float] | Sequence[str] | None = None
    freeze: tuple[str, ...] = ()
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    optimizer: str = "adamw"
    schedule: str = "cosine"
    step_size: int = 10
    gamma: float = 0.5
    min_lr_ratio: float = 0.05
    grad_clip: float | None = 5.0
    class_weighting: str | None = None
    monitor: str = "val_acc"
    mode: str | None = None
    patience: int | None = 5
    labelled: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in ("adamw", "adam"):
            raise ValueError(f"optimizer must be 'adamw' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("cosine", "step", "none"):
            raise ValueError(f"schedule must be 'cosine', 'step' or 'none', "
                             f"got {self.schedule!r}")
        if not self.monitor.startswith("val_"):
            raise ValueError(f"monitor must be a validation metric 'val_...', "
                             f"got {self.monitor!r}")
        if self.mode is None:
            self.mode = "max" if self.monitor.endswith(_MAXIMISED) else "min"
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")
        if self.class_weighting not in (None, "none", "balanced"):
            raise ValueError(f"class_weighting must be None or 'balanced', "
                             f"got {self.class_weighting!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        self.freeze = tuple(self.freeze)

    def describe(self) -> dict[str, Any]:
        """JSON-able settings (the loss by name)."""
        d = {k: v for k, v in asdict(self).items() if k != "loss"}
        loss = self.loss or cross_entropy_loss
        d["loss"] = getattr(loss, "__name__", None) or getattr(
            getattr(loss, "func", None), "__name__", type(loss).__name__)
        d["params"] = (dict(self.params) if isinstance(self.params, Mapping)
                       else None if self.params is None else list(self.params))
        d["freeze"] = list(self.freeze)
        return d

    def better(self, score: float, best: float | None) -> bool:
        """Whether ``score`` improves on ``best`` in this phase's direction."""
        if best is None:
            return True
        if not np.isfinite(score):
            return False
        if not np.isfinite(best):
            return True
        return score > best if self.mode == "max" else score < best


@dataclass
class PhaseResult:
    """Outcome of one phase; the model ended it holding the best weights."""

    name: str
    best_epoch: int
    best_score: float | None
    epochs_run: int
    stopped_early: bool
    seconds_per_epoch: float


def _matches(name: str, prefixes: Iterable[str]) -> str | None:
    best = None
    for p in prefixes:
        if name.startswith(p) and (best is None or len(p) > len(best)):
            best = p
    return best


def param_groups(model: nn.Module, phase: Phase) -> list[dict[str, Any]]:
    """Set ``requires_grad`` for this phase and return the optimiser's parameter groups."""
    spec = phase.params
    lrs = (dict(spec) if isinstance(spec, Mapping)
           else dict.fromkeys(spec, phase.lr) if spec is not None else None)
    groups: dict[str, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        prefix = "" if lrs is None else _matches(name, lrs)
        train = prefix is not None and _matches(name, phase.freeze) is None
        p.requires_grad_(train)
        if train:
            groups.setdefault(prefix, []).append(p)
    if not groups:
        raise ValueError(f"phase {phase.name!r} trains no parameter (params={spec}, "
                         f"freeze={phase.freeze})")
    if lrs is not None:
        unused = [p for p in lrs if p not in groups]
        if unused:
            raise ValueError(f"phase {phase.name!r}: no parameter starts with {unused}")
    return [{"params": ps, "lr": phase.lr if lrs is None else float(lrs[prefix]),
             "name": prefix or "all"} for prefix, ps in groups.items()]


def make_optimizer(model: nn.Module, phase: Phase) -> torch.optim.Optimizer:
    """The phase's optimiser over the parameters it trains (the others frozen)."""
    groups = param_groups(model, phase)
    cls = torch.optim.AdamW if phase.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=phase.lr, weight_decay=phase.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, phase: Phase):
    """The phase's per-epoch learning-rate schedule."""
    if phase.schedule == "cosine":  # from each group's lr down to lr * min_lr_ratio
        return torch.optim.lr_scheduler.LambdaLR(opt, [
            _Cosine(phase.epochs, phase.min_lr_ratio) for _ in opt.param_groups])
    if phase.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=phase.step_size,
                                               gamma=phase.gamma)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _e: 1.0)


class _Cosine:  # picklable lr lambda (scheduler state_dict stores callables' __dict__)
    def __init__(self, epochs: int, floor: float) -> None:
        self.epochs, self.floor = max(int(epochs), 1), float(floor)

    def __call__(self, e: int) -> float:
        return self.floor + (1 - self.floor) * 0.5 * (1 + np.cos(np.pi * min(e, self.epochs)
                                                                 / self.epochs))


def freeze_frozen_modules(model: nn.Module) -> None:
    """Eval mode for modules whose parameters (their submodules' included) are all
    frozen: batch-norm statistics and dropout of a frozen encoder stay put, also dropout
    layers inside a frozen block that holds no parameter of its own."""
    for m in model.modules():
        params = list(m.parameters())
        if params and not any(p.requires_grad for p in params):
            m.eval()


def phase_data(data, phase: Phase):
    """The data a phase trains on: the scored windows of a dataset for a labelled phase."""
    if isinstance(data, SequenceDataset) and phase.labelled:
        return data.scored()
    return data


__all__ = ["Phase", "PhaseResult", "param_groups", "make_optimizer", "make_scheduler",
           "freeze_frozen_modules", "phase_data"]
