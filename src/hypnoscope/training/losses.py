"""Losses of the training loop: what a loss receives and returns, and the default
supervised cross-entropy.

A loss is ``loss(model, batch, ctx) -> LossOutput`` (or a dict of named terms): the
terms are summed with the phase's ``loss_weights`` (:func:`weighted_total`) for the
step and, identically, on validation data; logits and targets, when the loss gives
them, feed accuracy and macro-F1. The default, :func:`cross_entropy_loss`, calls
``model(x, mask=mask)`` with the batch's single view (or the dict of views) and expects
logits ``(B, L, C)`` or ``(B, C)``; with many-to-one targets ``(B,)`` the last position
of ``(B, L, C)`` logits is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hypnoscope.training.sequences import IGNORE_INDEX


@dataclass
class LossOutput:
    """What a loss returns: named terms, and logits/targets when it classifies."""

    terms: dict[str, torch.Tensor]
    logits: torch.Tensor | None = None
    targets: torch.Tensor | None = None


@dataclass
class StepContext:
    """Passed to every loss call."""

    class_weight: torch.Tensor | None
    n_classes: int
    phase: str
    training: bool


LossFn = Callable[[nn.Module, dict, StepContext], "LossOutput | dict[str, torch.Tensor]"]


def batch_input(batch: dict) -> Any:
    """The model input of a batch: its only view as a tensor, or the dict of views."""
    x = batch["x"]
    if isinstance(x, Mapping) and len(x) == 1:
        return next(iter(x.values()))
    return x


def select_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Logits matching ``targets``: the last position for many-to-one targets."""
    if logits.ndim == 3 and targets.ndim == 1:
        return logits[:, -1]
    return logits


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, ctx: StepContext,
                        label_smoothing: float = 0.0, name: str = "ce") -> LossOutput:
    """Cross-entropy of logits against targets (``ignore_index=-100``, the context's
    class weights), as a :class:`LossOutput` with one term ``name``."""
    logits = select_logits(logits, targets)
    flat = logits.reshape(-1, logits.shape[-1])
    t = targets.reshape(-1)
    if (t >= 0).any():
        loss = nn.functional.cross_entropy(flat, t, weight=ctx.class_weight,
                                           ignore_index=IGNORE_INDEX,
                                           label_smoothing=float(label_smoothing))
    else:  # a batch without scored targets (possible in mixed phases) adds nothing
        loss = flat.sum() * 0.0
    return LossOutput({name: loss}, logits, targets)


def cross_entropy_loss(model: nn.Module, batch: dict, ctx: StepContext,
                       label_smoothing: float = 0.0) -> LossOutput:
    """Default supervised objective: ``model(input, mask=mask)`` -> one cross-entropy term
    ``"ce"``; bind ``label_smoothing`` with :func:`functools.partial`."""
    logits = model(batch_input(batch), mask=batch["mask"])
    return classification_loss(logits, batch["y"], ctx, label_smoothing)


def balanced_class_weights(counts: np.ndarray) -> np.ndarray:
    """``n / (n_classes * count)`` per class (0 for absent classes)."""
    counts = np.asarray(counts, dtype=float)
    w = np.zeros_like(counts)
    nz = counts > 0
    w[nz] = counts.sum() / (nz.sum() * counts[nz])
    return w


def as_output(out: LossOutput | Mapping[str, torch.Tensor]) -> LossOutput:
    """A loss's return value as a :class:`LossOutput` (a dict is its terms)."""
    if isinstance(out, LossOutput):
        return out
    if isinstance(out, Mapping):
        return LossOutput(dict(out))
    raise TypeError(f"a loss must return LossOutput or a dict of terms, got {type(out)}")


def weighted_total(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]):
    """The sum of the terms, each times its weight (missing names weigh 1)."""
    return sum(float(weights.get(k, 1.0)) * v for k, v in terms.items())


def batch_size(batch: dict) -> int:
    """Windows in a batch."""
    return int(len(batch["mask"])) if "mask" in batch else int(len(batch["y"]))


__all__ = ["LossOutput", "StepContext", "LossFn", "batch_input", "select_logits",
           "classification_loss", "cross_entropy_loss", "balanced_class_weights",
           "as_output", "weighted_total", "batch_size"]
