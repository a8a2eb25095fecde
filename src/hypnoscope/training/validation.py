"""Validation metrics of a model over batches: the loss terms exactly as in training,
accuracy and macro-F1."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from hypnoscope.evaluation.metrics import accuracy_macro_f1
from hypnoscope.training.losses import (
    LossFn,
    StepContext,
    as_output,
    batch_size,
    cross_entropy_loss,
    weighted_total,
)
from hypnoscope.training.sequences import to_device


@torch.no_grad()
def evaluate_loader(model: nn.Module, loader: Iterable, n_classes: int,
                    loss_fn: LossFn | None = None, device: torch.device | None = None,
                    class_weight: torch.Tensor | None = None,
                    loss_weights: Mapping[str, float] | None = None,
                    phase: str = "eval") -> dict[str, float]:
    """Validation metrics of ``model`` over ``loader``.

    Returns ``loss`` (the weighted sum of the terms with ``loss_weights``, exactly as in
    training), every term, and ``acc`` / ``macro_f1`` on scored targets when the loss
    gives logits (:func:`hypnoscope.evaluation.metrics.accuracy_macro_f1`). Averages are per
    window.
    """
    sums, n, preds, trues = evaluation_sums(model, loader, n_classes, loss_fn, device,
                                             class_weight, loss_weights, phase)
    res = {k: v / max(n, 1) for k, v in sums.items()}
    if preds:
        res["acc"], res["macro_f1"] = accuracy_macro_f1(np.concatenate(trues),
                                                        np.concatenate(preds), n_classes)
    return res


@torch.no_grad()
def evaluation_sums(model, loader, n_classes, loss_fn, device, class_weight, loss_weights,
                     phase):
    """Per-window sums of the loss terms, the window count, predictions and targets."""
    loss_fn = loss_fn or cross_entropy_loss
    weights = loss_weights or {}
    device = device or torch.device("cpu")
    ctx = StepContext(class_weight, n_classes, phase, training=False)
    was_training = model.training
    model.eval()
    preds, trues = [], []
    sums: dict[str, float] = {}
    n = 0
    for batch in loader:
        batch = to_device(batch, device)
        out = as_output(loss_fn(model, batch, ctx))
        bs = batch_size(batch)
        n += bs
        for k, v in out.terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) * bs
        sums["loss"] = sums.get("loss", 0.0) + float(weighted_total(out.terms, weights)) * bs
        if out.logits is not None and out.targets is not None:
            preds.append(out.logits.argmax(-1).reshape(-1).cpu().numpy())
            trues.append(out.targets.reshape(-1).cpu().numpy())
    model.train(was_training)
    return sums, n, preds, trues


__all__ = ["evaluate_loader", "evaluation_sums"]
