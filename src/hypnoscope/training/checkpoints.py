"""Checkpoints and the metrics CSV of a training run.

Every epoch :func:`~hypnoscope.training.loop.train_model` writes ``last.pt``, the whole
run state (:func:`save_run_state`: weights, optimiser, scheduler, random-number
generators, history, the best weights so far), so that ``resume=True``
(:func:`load_run_state`, :func:`restore_phase_state`) continues in the phase and epoch
where an interrupted run stopped and ends with the same weights as an uninterrupted run;
each phase also keeps ``<phase>/best.pt``. Files are written atomically.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hypnoscope.training.phases import PhaseResult
from hypnoscope.utils.files import atomic_path, write_text_atomic

logger = logging.getLogger(__name__)


def write_history_csv(path: Path, history: list[dict[str, Any]]) -> None:
    """The per-epoch metrics as CSV (columns in order of first appearance)."""
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(path, buf.getvalue())


def save_checkpoint(path: Path, obj: dict) -> None:
    """``torch.save(obj)`` to ``path``, atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's weights."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save_run_state(path: Path, *, names: list[str], phase_index: int, epoch: int,
                   model: nn.Module, optimizer, scheduler, history: list[dict[str, Any]],
                   best: dict[str, Any], done: list[PhaseResult], phase_config: dict,
                   run_config: dict) -> None:
    """Write ``last.pt``: everything a resumed run needs. ``best`` holds
    ``best_score``, ``best_epoch``, ``best_state`` and ``bad_epochs`` of the phase."""
    save_checkpoint(path, {
        "phases": names, "phase_index": phase_index, "epoch": epoch,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "history": history,
        "best_score": best["best_score"], "best_epoch": best["best_epoch"],
        "best_state": best["best_state"], "bad_epochs": best["bad_epochs"],
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "done": [asdict(d) for d in done], "phase_config": phase_config,
        "run_config": run_config})


def load_run_state(ckpt_dir: Path, names: list[str], model: nn.Module,
                   ) -> dict[str, Any] | None:
    """The state of ``ckpt_dir/last.pt`` with its weights loaded into ``model``, or None
    (with a warning) when there is no such file.

    Raises
    ------
    ValueError
        If the checkpoint was written for other phases or another model.
    """
    last = ckpt_dir / "last.pt"
    if not last.is_file():
        logger.warning("resume requested but %s does not exist; starting fresh", last)
        return None
    state = torch.load(last, map_location="cpu", weights_only=False)
    if state.get("phases") != names:
        raise ValueError(f"cannot resume from {last}: it was written for phases "
                         f"{state.get('phases')}, this run has {names}; use "
                         "another checkpoint_dir or resume=False")
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise ValueError(f"cannot resume from {last}: the checkpoint does not match "
                         f"this model ({str(exc).splitlines()[0]}); use another "
                         "checkpoint_dir or resume=False") from None
    logger.info("resuming %s from phase %s, epoch %d", last, names[state["phase_index"]],
                state["epoch"])
    return state


def restore_phase_state(state: dict[str, Any], optimizer, scheduler) -> None:
    """Put the optimiser, scheduler and random-number generators of the interrupted
    phase back as ``last.pt`` has them."""
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if torch.cuda.is_available() and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state_all(state["cuda_rng"])


__all__ = ["write_history_csv", "save_checkpoint", "model_state", "save_run_state",
           "load_run_state", "restore_phase_state"]
