"""One PyTorch training loop for every deep staging model, in phases.

:func:`train_model` runs a model's :class:`~hypnoscope.training.phases.Phase` s in order
(e.g. self-supervised pre-training, then supervised fine-tuning) on
:class:`~hypnoscope.training.sequences.SequenceDataset` s (or any iterables of batches)
with fixed seeds, a progress bar, a per-epoch metrics CSV, a ``last.pt`` checkpoint
every epoch and ``<phase>/best.pt``; ``resume=True`` continues in the phase and epoch
where an interrupted run stopped and ends with the same weights as an uninterrupted run.
At the end of each phase the model holds that phase's best weights.

The concerns live beside this module, in :mod:`hypnoscope.training`:

- :mod:`~hypnoscope.training.losses`: what a loss gets and returns, the default
  cross-entropy;
- :mod:`~hypnoscope.training.phases`: :class:`Phase` (what a phase trains, its optimiser,
  schedule, monitor and early stopping);
- :mod:`~hypnoscope.training.checkpoints`: ``last.pt``, ``best.pt``, the metrics CSV,
  resuming;
- :mod:`~hypnoscope.training.distributed`: DistributedDataParallel under ``torchrun``
  (each rank's share of the batches, reduced metrics);
- :mod:`~hypnoscope.training.precision`: automatic mixed precision on CUDA;
- :mod:`~hypnoscope.training.validation`: validation metrics.

A batch is ``{"x": {view: (B, L, ...)}, "y": (B,) or (B, L), "mask": (B, L) bool, ...}``
(see :mod:`hypnoscope.training.sequences`). The names of those modules that models and
scripts use are also importable from here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hypnoscope.training.checkpoints import (
    load_run_state,
    model_state,
    restore_phase_state,
    save_checkpoint,
    save_run_state,
    write_history_csv,
)
from hypnoscope.training.distributed import (
    RankBatches,
    all_reduce_sums,
    distributed_rank,
    evaluate_distributed,
    init_distributed,
    is_main_process,
    wrap_for_ddp,
)
from hypnoscope.training.losses import (
    LossFn,
    LossOutput,
    StepContext,
    as_output,
    balanced_class_weights,
    batch_input,
    batch_size,
    classification_loss,
    cross_entropy_loss,
    select_logits,
    weighted_total,
)
from hypnoscope.training.phases import (
    Phase,
    PhaseResult,
    freeze_frozen_modules,
    make_optimizer,
    make_scheduler,
    phase_data,
)
from hypnoscope.training.precision import amp_context, amp_enabled, grad_scaler
from hypnoscope.training.sequences import IGNORE_INDEX, SequenceDataset, to_device
from hypnoscope.training.validation import evaluate_loader
from hypnoscope.utils.runtime import progress, seed_everything


@dataclass
class TrainConfig:
    """Run-level settings of :func:`train_model` (the phases hold the rest).

    Parameters
    ----------
    seed : int
        Seeds torch/NumPy; the shuffle of phase ``p``, epoch ``e`` uses
        ``seed + 1000 * p + e`` so a resumed run sees the same order.
    device : str, optional
        ``None``: CUDA when available, else CPU.
    num_threads : int, optional
        ``torch.set_num_threads``.
    checkpoint_dir : str, optional
        Write ``last.pt`` (the whole run state) every epoch, ``<phase>/best.pt`` and
        ``metrics.csv``.
    resume : bool
        Continue from ``checkpoint_dir/last.pt`` when it exists.
    metrics_csv : str, optional
        Per-epoch metrics (default ``checkpoint_dir/metrics.csv``).
    n_classes : int, optional
        Classes of the logits (default: the model's ``n_outputs``/``n_classes``).
    desc : str
        Progress-bar label.
    distributed : bool, optional
        ``None`` (default): train with DistributedDataParallel when this process belongs
        to a process group of several (``torchrun``; see
        :mod:`hypnoscope.training.distributed`);
        ``False``: never.
    amp : bool, optional
        Automatic mixed precision; ``None`` (default): on CUDA devices only.
    """

    seed: int = 0
    device: str | None = None
    num_threads: int | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    metrics_csv: str | None = None
    n_classes: int | None = None
    desc: str = "train"
    distributed: bool | None = None
    amp: bool | None = None


@dataclass
class TrainResult:
    """What :func:`train_model` returns; the model passed in holds the final weights."""

    history: list[dict[str, Any]]
    phases: list[PhaseResult]
    #: ``(phase, last completed epoch of it)`` a resumed run started from, else None
    resumed_from: tuple[str, int] | None

    @property
    def best_epoch(self) -> int:
        """Best epoch (1-based) of the last phase."""
        return self.phases[-1].best_epoch

    @property
    def best_score(self) -> float | None:
        return self.phases[-1].best_score

    @property
    def stopped_early(self) -> bool:
        return self.phases[-1].stopped_early

    @property
    def seconds_per_epoch(self) -> float:
        times = [r["time_s"] for r in self.history if "time_s" in r]
        return float(np.mean(times)) if times else float("nan")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU."""
    if isinstance(device, torch.device):
        return device
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _infer_n_classes(model: nn.Module) -> int:
    for attr in ("n_outputs", "n_classes"):
        n = getattr(model, attr, None)
        if n is not None:
            return int(n)
    raise ValueError("set TrainConfig.n_classes (the model has no n_outputs attribute)")


def _loader(data, batch_size: int, shuffle: bool, seed: int):
    if isinstance(data, SequenceDataset):
        return data.loader(batch_size, shuffle=shuffle, seed=seed)
    return data


# --------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------
@dataclass
class _Run:
    """What every phase of one :func:`train_model` call shares."""

    cfg: TrainConfig
    device: torch.device
    n_classes: int
    ckpt_dir: Path | None
    metrics_csv: Path | None
    names: list[str]
    history: list[dict[str, Any]]
    done: list[PhaseResult]
    rank: int = 0
    world: int = 1

    @property
    def writer(self) -> bool:
        """Whether this process writes checkpoints and the metrics CSV (rank 0)."""
        return self.rank == 0

    @property
    def quiet(self) -> bool | None:
        """``disable`` of the progress bars: only rank 0 shows them."""
        return None if self.writer else True


@dataclass
class _Best:
    """A phase's best epoch so far, and the epochs since it improved."""

    score: float | None
    epoch: int
    bad_epochs: int
    state: dict[str, torch.Tensor]

    def as_checkpoint(self) -> dict[str, Any]:
        return {"best_score": self.score, "best_epoch": self.epoch,
                "best_state": self.state, "bad_epochs": self.bad_epochs}


@dataclass
class _Step:
    """One optimisation step of a phase: loss (through DDP and autocast when they are
    on), weighted total, backward, clipping, optimiser step."""

    model: nn.Module
    phase: Phase
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    device: torch.device
    amp: bool
    scaler: Any
    ddp: nn.Module | None
    ctx: StepContext

    def __call__(self, batch: dict, trainable: list[nn.Parameter]):
        if self.ddp is None and not self.amp:  # the one-process path, unchanged
            out = as_output(self.loss_fn(self.model, batch, self.ctx))
        else:
            with amp_context(self.device, self.amp):
                out = (self.ddp(batch, self.ctx) if self.ddp is not None
                       else as_output(self.loss_fn(self.model, batch, self.ctx)))
        total = weighted_total(out.terms, self.phase.loss_weights)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            total.backward()
        if self.phase.grad_clip:
            nn.utils.clip_grad_norm_(trainable, self.phase.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return out, total


def train_model(model: nn.Module, train_data: SequenceDataset | Iterable,
                val_data: SequenceDataset | Iterable | None = None,
                phases: Phase | Sequence[Phase] | None = None,
                config: TrainConfig | None = None) -> TrainResult:
    """Train ``model`` in place through ``phases``.

    Parameters
    ----------
    model : nn.Module
    train_data, val_data : SequenceDataset or iterable of batches
        A :class:`~hypnoscope.training.sequences.SequenceDataset` is wrapped in a seeded, shuffled
        loader; a labelled phase uses its windows with scored targets
        (:meth:`~hypnoscope.training.sequences.SequenceDataset.scored`), an unlabelled one all.
    phases : Phase or list of Phase
        Run in order (default: one supervised cross-entropy phase).
    config : TrainConfig

    Returns
    -------
    TrainResult
        Per-epoch history (also in ``metrics.csv``; column ``phase``) and one
        :class:`PhaseResult` per phase. Without validation data a phase keeps its last
        epoch.
    """
    cfg = config or TrainConfig()
    phases = [phases] if isinstance(phases, Phase) else list(phases or [Phase()])
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise ValueError(f"phase names must be unique, got {names}")
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    if cfg.distributed is not False and init_distributed(device if cfg.device else None):
        rank, world = distributed_rank()
        if device.type == "cuda" and device.index is None:  # one GPU per process
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    else:
        rank, world = 0, 1
    model.to(device)
    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    run = _Run(cfg, device, cfg.n_classes or _infer_n_classes(model), ckpt_dir,
               Path(cfg.metrics_csv) if cfg.metrics_csv else (
                   ckpt_dir / "metrics.csv" if ckpt_dir else None),
               names, [], [], rank, world)
    resume_state: dict[str, Any] | None = None
    resumed_from = None
    if cfg.resume:
        if ckpt_dir is None:
            raise ValueError("resume=True needs checkpoint_dir")
        resume_state = load_run_state(ckpt_dir, names, model)
        if resume_state is not None:
            run.history = resume_state["history"]
            run.done = [PhaseResult(**d) for d in resume_state["done"]]
            resumed_from = (names[resume_state["phase_index"]], resume_state["epoch"])

    for p_idx, phase in enumerate(phases):
        if p_idx < len(run.done):
            continue  # finished before the interruption
        # the phase the run stopped in continues after its last completed epoch (a
        # finished phase runs no epoch, ends with its best weights, and the next begins)
        state = (resume_state if resume_state and resume_state["phase_index"] == p_idx
                 else None)
        run.done.append(_run_phase(model, phase, p_idx, len(phases), train_data, val_data,
                                   run, state))
    if world > 1:  # nobody leaves before rank 0 has written the last checkpoint
        import torch.distributed as dist

        dist.barrier()
    return TrainResult(history=run.history, phases=run.done, resumed_from=resumed_from)


def _run_phase(model: nn.Module, phase: Phase, p_idx: int, n_phases: int, train_data,
               val_data, run: _Run, state: dict | None) -> PhaseResult:
    """Train one phase (from the epoch after ``state``'s when resuming) and leave the
    model with its best weights."""
    loss_fn = phase.loss or cross_entropy_loss
    train = phase_data(train_data, phase)
    val = phase_data(val_data, phase) if val_data is not None else None
    optimizer = make_optimizer(model, phase)
    scheduler = make_scheduler(optimizer, phase)
    amp = amp_enabled(run.device, run.cfg.amp)
    scaler = grad_scaler(run.device, amp)
    ddp = _ddp_module(model, loss_fn, train, val, run)
    class_weight = _class_weight(phase, train, run)
    step = _Step(model, phase, loss_fn, optimizer, run.device, amp, scaler, ddp,
                 StepContext(class_weight, run.n_classes, phase.name, training=True))
    best, start = _Best(None, 0, 0, model_state(model)), 1
    if state is not None:
        restore_phase_state(state, optimizer, scheduler)
        best = _Best(state["best_score"], state["best_epoch"], state["bad_epochs"],
                     state["best_state"])
        start = state["epoch"] + 1
    stopped = (state is not None and val is not None and phase.patience is not None
               and best.bad_epochs >= phase.patience)
    if stopped:
        start = phase.epochs + 1
    label = f"{run.cfg.desc}:{phase.name}" if n_phases > 1 else run.cfg.desc
    epoch_bar = progress(range(start, phase.epochs + 1), total=phase.epochs,
                         initial=start - 1, desc=label, unit="epoch", disable=run.quiet)
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        row = _train_epoch(step, train, epoch, p_idx, run)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        row = {"phase": phase.name, "epoch": epoch, "lr": lr, **row}
        improved = True
        if val is not None:
            row.update(_validate(model, phase, val, loss_fn, class_weight, run))
            improved = _update_best(best, phase, row, epoch)
        else:
            best.epoch = epoch
        if improved:
            best.state = model_state(model)
        row["time_s"] = time.perf_counter() - t0
        run.history.append(row)
        epoch_bar.set_postfix({k: f"{row[k]:.3f}" for k in ("train_loss", phase.monitor)
                               if k in row})
        _write_epoch(model, phase, p_idx, epoch, improved, best, optimizer, scheduler, run)
        if val is not None and phase.patience is not None and best.bad_epochs >= phase.patience:
            stopped = True
            break
    epoch_bar.close()
    step.ddp = ddp = None  # its hooks and buckets go with it; the next phase builds its own
    model.load_state_dict(best.state)
    for p in model.parameters():  # frozen for this phase only
        p.requires_grad_(True)
    times = [r["time_s"] for r in run.history if r.get("phase") == phase.name]
    return PhaseResult(name=phase.name, best_epoch=best.epoch, best_score=best.score,
                       epochs_run=len(times), stopped_early=stopped,
                       seconds_per_epoch=float(np.mean(times)) if times else float("nan"))


def _ddp_module(model: nn.Module, loss_fn: LossFn, train, val, run: _Run) -> nn.Module | None:
    """The phase's DistributedDataParallel module when there are several processes."""
    if run.world <= 1:
        return None
    if not isinstance(train, SequenceDataset) or (
            val is not None and not isinstance(val, SequenceDataset)):
        raise ValueError("distributed training needs SequenceDataset training and "
                         "validation data (to give each process its share)")
    return wrap_for_ddp(model, loss_fn, run.device)


def _class_weight(phase: Phase, train, run: _Run) -> torch.Tensor | None:
    """The cross-entropy's class weights of a ``class_weighting="balanced"`` phase."""
    if phase.class_weighting != "balanced":
        return None
    if not isinstance(train, SequenceDataset):
        raise ValueError("class_weighting='balanced' needs a SequenceDataset")
    w = balanced_class_weights(train.class_counts(run.n_classes))
    return torch.as_tensor(w, dtype=torch.float32, device=run.device)


def _train_epoch(step: _Step, train, epoch: int, p_idx: int, run: _Run) -> dict[str, Any]:
    """One epoch of training steps: ``train_<term>``, ``train_loss`` (per window) and
    ``train_acc``, over every rank's share."""
    model, phase = step.model, step.phase
    model.train()
    freeze_frozen_modules(model)
    shuffle_seed = run.cfg.seed + 1000 * p_idx + epoch
    loader = (RankBatches(train, phase.batch_size, True, shuffle_seed, run.rank, run.world)
              if run.world > 1 else _loader(train, phase.batch_size, True, shuffle_seed))
    sums: dict[str, float] = {}
    n_items, n_seen, n_correct = 0, 0, 0
    bar = progress(loader, desc=f"{phase.name} {epoch}/{phase.epochs}", unit="batch",
                   leave=False, disable=run.quiet)
    trainable = [p for g in step.optimizer.param_groups for p in g["params"]]
    for batch in bar:
        batch = to_device(batch, run.device)
        out, total = step(batch, trainable)
        bs = batch_size(batch)
        n_items += bs
        for k, v in out.terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach()) * bs
        sums["loss"] = sums.get("loss", 0.0) + float(total.detach()) * bs
        if out.logits is not None and out.targets is not None:
            with torch.no_grad():
                scored = out.targets >= 0
                n_correct += int((out.logits.argmax(-1) == out.targets)[scored].sum())
                n_seen += int(scored.sum())
        bar.set_postfix(loss=f"{sums['loss'] / n_items:.3f}")
    bar.close()
    if run.world > 1:  # the epoch's training metrics over every rank's share
        got = all_reduce_sums({**{f"s:{k}": v for k, v in sums.items()},
                               "n_items": n_items, "n_seen": n_seen,
                               "n_correct": n_correct}, run.device)
        n_items, n_seen = int(got.pop("n_items")), int(got.pop("n_seen"))
        n_correct = int(got.pop("n_correct"))
        sums = {k[2:]: v for k, v in got.items()}
    row = {f"train_{k}": v / max(n_items, 1) for k, v in sums.items()}
    if n_seen:
        row["train_acc"] = n_correct / n_seen
    return row


def _validate(model: nn.Module, phase: Phase, val, loss_fn: LossFn,
              class_weight: torch.Tensor | None, run: _Run) -> dict[str, float]:
    """The epoch's ``val_*`` metrics (over every rank's share)."""
    if run.world > 1:
        vm = evaluate_distributed(model, val, phase.batch_size * 2, run.n_classes, loss_fn,
                                  run.device, class_weight, phase.loss_weights, phase.name,
                                  run.rank, run.world)
    else:
        vm = evaluate_loader(model, _loader(val, phase.batch_size * 2, False, 0),
                             run.n_classes, loss_fn, run.device, class_weight,
                             phase.loss_weights, phase.name)
    return {f"val_{k}": v for k, v in vm.items()}


def _update_best(best: _Best, phase: Phase, row: dict[str, Any], epoch: int) -> bool:
    """Score the epoch by the phase's monitor; whether it improved on ``best``."""
    if phase.monitor not in row:
        have = sorted(k for k in row if k.startswith("val_"))
        raise ValueError(f"phase {phase.name!r} monitors {phase.monitor!r}, but "
                         f"validation gives {have}")
    score = float(row[phase.monitor])
    if phase.better(score, best.score):
        best.score, best.epoch, best.bad_epochs = score, epoch, 0
        return True
    best.bad_epochs += 1
    return False


def _write_epoch(model: nn.Module, phase: Phase, p_idx: int, epoch: int, improved: bool,
                 best: _Best, optimizer, scheduler, run: _Run) -> None:
    """Rank 0 writes the metrics CSV, ``<phase>/best.pt`` when the epoch improved, and
    ``last.pt``."""
    if not run.writer:
        return
    if run.metrics_csv is not None:
        write_history_csv(run.metrics_csv, run.history)
    if run.ckpt_dir is None:
        return
    if improved:
        save_checkpoint(run.ckpt_dir / phase.name / "best.pt", {
            "phase": phase.name, "epoch": epoch, "model": best.state,
            "score": best.score, "monitor": phase.monitor})
    save_run_state(run.ckpt_dir / "last.pt", names=run.names, phase_index=p_idx,
                   epoch=epoch, model=model, optimizer=optimizer, scheduler=scheduler,
                   history=run.history, best=best.as_checkpoint(), done=run.done,
                   phase_config=phase.describe(), run_config=asdict(run.cfg))


@torch.no_grad()
def predict_windows(model: nn.Module, dataset: SequenceDataset, batch_size: int = 256,
                    device: str | torch.device | None = None,
                    forward: Callable[[nn.Module, dict], torch.Tensor] | None = None,
                    ) -> np.ndarray:
    """Softmax probabilities per window: ``(n_windows, C)`` for many-to-one datasets,
    ``(n_windows, L, C)`` for many-to-many. ``forward(model, batch) -> logits`` defaults
    to ``model(input, mask=mask)``."""
    device = resolve_device(device)
    model.eval()
    model.to(device)
    out = []
    for batch in dataset.loader(batch_size):
        batch = to_device(batch, device)
        logits = (forward(model, batch) if forward is not None
                  else model(batch_input(batch), mask=batch["mask"]))
        logits = select_logits(logits, batch["y"])
        out.append(torch.softmax(logits.float(), -1).cpu().numpy())
    return np.concatenate(out)


__all__ = ["Phase", "TrainConfig", "TrainResult", "PhaseResult", "LossOutput", "StepContext",
           "train_model", "evaluate_loader", "predict_windows", "balanced_class_weights",
           "cross_entropy_loss", "classification_loss", "batch_input", "select_logits",
           "resolve_device", "IGNORE_INDEX", "init_distributed", "distributed_rank",
           "is_main_process"]
