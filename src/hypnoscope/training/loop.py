"""One PyTorch training loop for every deep staging model, in phases.

A training run is a sequence of :class:`Phase` s (e.g. self-supervised pre-training, then
supervised fine-tuning). Each phase names

- its loss: ``loss(model, batch, ctx) -> LossOutput`` (named terms, summed with the
  phase's ``loss_weights`` for the step and, identically, on validation data; logits and
  targets when it has them, for accuracy and macro-F1);
- the parameters it trains: name prefixes, each with its own learning rate; every other
  parameter is frozen *for that phase only* (and modules whose parameters are all frozen
  run in eval mode, so their batch-norm statistics stay put too);
- optimiser (AdamW/Adam), per-epoch schedule (cosine/step/none), gradient clipping;
- the metric it monitors (``val_loss``, ``val_<term>``, ``val_acc``, ``val_macro_f1``)
  and whether to minimise or maximise it, early stopping, and its own best checkpoint;
- whether it needs labels (``labelled=False``: every window, unscored epochs included).

:func:`train_model` runs the phases in order on :class:`~hypnoscope.training.sequences.
SequenceDataset` s (or any iterables of batches) with fixed seeds, a progress bar, a
per-epoch metrics CSV, a ``last.pt`` checkpoint every epoch and ``<phase>/best.pt``;
``resume=True`` continues in the phase and epoch where an interrupted run stopped and ends
with the same weights as an uninterrupted run. At the end of each phase the model holds
that phase's best weights.

Distributed training
--------------------
Started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment, or with a process group
already initialised), :func:`train_model` trains with PyTorch's
:class:`~torch.nn.parallel.DistributedDataParallel` (gloo on CPU, NCCL on GPU, one GPU
per process at ``cuda:LOCAL_RANK``) and needs no change in the model: each phase wraps
the model *and its loss* in a fresh DDP module (:class:`_LossModule`), so a loss may
call any method or submodule of the model and return several outputs, parameters
frozen by the phase are left out of the gradient reduction, and parameters that a
step does not use are allowed (``find_unused_parameters=True``). ``Phase.batch_size``
is the *global* batch: every rank draws the same seeded permutation and takes its share
of each global batch (a last global batch smaller than the number of processes is
dropped), gradients are averaged by DDP, and the epoch's training and validation
metrics are reduced over the ranks (each rank validates a disjoint share of the
windows), so early stopping and checkpoint choice agree everywhere. Only rank 0 writes
checkpoints and the metrics CSV and shows progress bars; ``resume`` works with any
number of processes (the checkpoint holds no per-rank state; on several nodes the
checkpoint folder must be shared). For a model without batch norm or dropout, N
processes give the weights of one process with the same global batch up to float
rounding (``tests/test_distributed.py``); with batch norm each rank normalises its own
share of the batch, as usual under DDP. On CUDA, automatic mixed precision
(``TrainConfig.amp``, on by default there) runs the forward pass in bfloat16 (float16
with a gradient scaler where bfloat16 is unsupported).

A batch is ``{"x": {view: (B, L, ...)}, "y": (B,) or (B, L), "mask": (B, L) bool, ...}``
(see :mod:`hypnoscope.training.sequences`). The default loss, :func:`cross_entropy_loss`, calls
``model(x, mask=mask)`` with the batch's single view (or the dict of views) and expects
logits ``(B, L, C)`` or ``(B, C)``; with many-to-one targets ``(B,)`` the last position of
``(B, L, C)`` logits is used.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hypnoscope.evaluation.metrics import accuracy_macro_f1
from hypnoscope.training.sequences import IGNORE_INDEX, SequenceDataset, to_device
from hypnoscope.utils import atomic_path, progress, seed_everything, write_text_atomic

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------
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


def _as_output(out: LossOutput | Mapping[str, torch.Tensor]) -> LossOutput:
    if isinstance(out, LossOutput):
        return out
    if isinstance(out, Mapping):
        return LossOutput(dict(out))
    raise TypeError(f"a loss must return LossOutput or a dict of terms, got {type(out)}")


# --------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------
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
        to a process group of several (``torchrun``; see "Distributed training");
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
class PhaseResult:
    """Outcome of one phase; the model ended it holding the best weights."""

    name: str
    best_epoch: int
    best_score: float | None
    epochs_run: int
    stopped_early: bool
    seconds_per_epoch: float


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


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU."""
    if isinstance(device, torch.device):
        return device
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def init_distributed(device: str | torch.device | None = None) -> bool:
    """Join the process group that ``torchrun`` describes in the environment
    (``WORLD_SIZE`` > 1, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``), once.

    The backend is NCCL when CUDA is available and ``device`` is not a CPU, else gloo;
    with NCCL this process's GPU is ``cuda:LOCAL_RANK``. Returns whether this process
    is one of several (also when the group was initialised by the caller).
    """
    import torch.distributed as dist

    if not dist.is_available():
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    use_cuda = torch.cuda.is_available() and (device is None or
                                              torch.device(device).type == "cuda")
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_world_size() > 1


def distributed_rank() -> tuple[int, int]:
    """``(rank, world_size)`` of this process (``(0, 1)`` outside a process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """Whether this process writes files and prints (rank 0, or not distributed)."""
    return distributed_rank()[0] == 0


class _LossModule(nn.Module):
    """The model and a phase's loss as one module, so that DDP sees the whole step:
    the loss may call any method or submodule of the model and return several
    outputs (DDP finds the tensors in the returned :class:`LossOutput`)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: dict, ctx: StepContext) -> LossOutput:
        return _as_output(self.loss_fn(self.model, batch, ctx))


class _RankBatches:
    """Batches of this rank: every rank draws the same seeded permutation (or order),
    cuts it into global batches of ``batch_size`` and takes share ``rank`` of each
    (``np.array_split``); a last global batch smaller than ``world`` is dropped so
    that every rank takes the same number of steps."""

    def __init__(self, data: SequenceDataset, batch_size: int, shuffle: bool, seed: int,
                 rank: int, world: int) -> None:
        self.data, self.batch_size, self.shuffle = data, int(batch_size), shuffle
        self.seed, self.rank, self.world = int(seed), rank, world

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.data))
        gen = torch.Generator().manual_seed(self.seed)  # as SequenceDataset.loader
        return torch.randperm(len(self.data), generator=gen).numpy()

    def __len__(self) -> int:
        n = len(self.data)
        full, rest = divmod(n, self.batch_size)
        return full + (rest >= self.world)

    def __iter__(self):
        order = self._order()
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            if len(chunk) < self.world:
                break
            yield self.data.__getitems__(np.array_split(chunk, self.world)[self.rank].tolist())


def _all_reduce_sums(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Sum each value over the ranks (keys in the same order everywhere)."""
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist(), strict=True))


def _amp_context(device: torch.device, enabled: bool):
    """Autocast for the forward pass (bfloat16, or float16 without bf16 support)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _matches(name: str, prefixes: Iterable[str]) -> str | None:
    best = None
    for p in prefixes:
        if name.startswith(p) and (best is None or len(p) > len(best)):
            best = p
    return best


def _param_groups(model: nn.Module, phase: Phase) -> list[dict[str, Any]]:
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


def _make_optimizer(model: nn.Module, phase: Phase) -> torch.optim.Optimizer:
    groups = _param_groups(model, phase)
    cls = torch.optim.AdamW if phase.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=phase.lr, weight_decay=phase.weight_decay)


def _make_scheduler(opt: torch.optim.Optimizer, phase: Phase):
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


def _freeze_frozen_modules(model: nn.Module) -> None:
    """Eval mode for modules whose parameters (their submodules' included) are all
    frozen: batch-norm statistics and dropout of a frozen encoder stay put, also dropout
    layers inside a frozen block that holds no parameter of its own."""
    for m in model.modules():
        params = list(m.parameters())
        if params and not any(p.requires_grad for p in params):
            m.eval()


def _infer_n_classes(model: nn.Module) -> int:
    for attr in ("n_outputs", "n_classes"):
        n = getattr(model, attr, None)
        if n is not None:
            return int(n)
    raise ValueError("set TrainConfig.n_classes (the model has no n_outputs attribute)")


def _phase_data(data, phase: Phase):
    if isinstance(data, SequenceDataset) and phase.labelled:
        return data.scored()
    return data


def _loader(data, batch_size: int, shuffle: bool, seed: int):
    if isinstance(data, SequenceDataset):
        return data.loader(batch_size, shuffle=shuffle, seed=seed)
    return data


def _batch_size(batch: dict) -> int:
    return int(len(batch["mask"])) if "mask" in batch else int(len(batch["y"]))


def _weighted_total(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]):
    return sum(float(weights.get(k, 1.0)) * v for k, v in terms.items())


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
    sums, n, preds, trues = _evaluation_sums(model, loader, n_classes, loss_fn, device,
                                             class_weight, loss_weights, phase)
    res = {k: v / max(n, 1) for k, v in sums.items()}
    if preds:
        res["acc"], res["macro_f1"] = accuracy_macro_f1(np.concatenate(trues),
                                                        np.concatenate(preds), n_classes)
    return res


@torch.no_grad()
def _evaluation_sums(model, loader, n_classes, loss_fn, device, class_weight, loss_weights,
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
        out = _as_output(loss_fn(model, batch, ctx))
        bs = _batch_size(batch)
        n += bs
        for k, v in out.terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) * bs
        sums["loss"] = sums.get("loss", 0.0) + float(_weighted_total(out.terms, weights)) * bs
        if out.logits is not None and out.targets is not None:
            preds.append(out.logits.argmax(-1).reshape(-1).cpu().numpy())
            trues.append(out.targets.reshape(-1).cpu().numpy())
    model.train(was_training)
    return sums, n, preds, trues


def _evaluate_distributed(model, val: SequenceDataset, batch_size: int, n_classes: int,
                          loss_fn, device, class_weight, loss_weights, phase: str,
                          rank: int, world: int) -> dict[str, float]:
    """:func:`evaluate_loader` over a disjoint share of ``val`` per rank, reduced: the
    same metrics as one process over all of it."""
    import torch.distributed as dist

    share = val.subset(np.arange(rank, len(val), world))
    loader = share.loader(batch_size) if len(share) else []
    sums, n, preds, trues = _evaluation_sums(model, loader, n_classes, loss_fn, device,
                                             class_weight, loss_weights, phase)
    gathered: list[Any] = [None] * world  # a rank with no window has no terms: objects
    dist.all_gather_object(gathered, (sums, n, np.concatenate(trues) if trues else None,
                                      np.concatenate(preds) if preds else None))
    total: dict[str, float] = {}
    for part, _, _, _ in gathered:
        for k, v in part.items():
            total[k] = total.get(k, 0.0) + v
    n_all = sum(g[1] for g in gathered)
    res = {k: v / max(n_all, 1) for k, v in total.items()}
    t_all = [g[2] for g in gathered if g[2] is not None]
    if t_all:
        res["acc"], res["macro_f1"] = accuracy_macro_f1(
            np.concatenate(t_all), np.concatenate([g[3] for g in gathered if g[3] is not None]),
            n_classes)
    return res


def _write_history_csv(path: Path, history: list[dict[str, Any]]) -> None:
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


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------
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
    n_classes = cfg.n_classes or _infer_n_classes(model)
    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    metrics_csv = Path(cfg.metrics_csv) if cfg.metrics_csv else (
        ckpt_dir / "metrics.csv" if ckpt_dir else None)

    history: list[dict[str, Any]] = []
    done: list[PhaseResult] = []
    resume_state: dict[str, Any] | None = None
    resumed_from = None
    if cfg.resume:
        if ckpt_dir is None:
            raise ValueError("resume=True needs checkpoint_dir")
        last = ckpt_dir / "last.pt"
        if last.is_file():
            resume_state = torch.load(last, map_location="cpu", weights_only=False)
            if resume_state.get("phases") != names:
                raise ValueError(f"cannot resume from {last}: it was written for phases "
                                 f"{resume_state.get('phases')}, this run has {names}; use "
                                 "another checkpoint_dir or resume=False")
            try:
                model.load_state_dict(resume_state["model"])
            except (RuntimeError, KeyError) as exc:
                raise ValueError(f"cannot resume from {last}: the checkpoint does not match "
                                 f"this model ({str(exc).splitlines()[0]}); use another "
                                 "checkpoint_dir or resume=False") from None
            history = resume_state["history"]
            done = [PhaseResult(**d) for d in resume_state["done"]]
            resumed_from = (names[resume_state["phase_index"]], resume_state["epoch"])
            logger.info("resuming %s from phase %s, epoch %d", last, *resumed_from)
        else:
            logger.warning("resume requested but %s does not exist; starting fresh", last)

    for p_idx, phase in enumerate(phases):
        if p_idx < len(done):
            continue  # finished before the interruption
        # the phase the run stopped in continues after its last completed epoch (a
        # finished phase runs no epoch, ends with its best weights, and the next begins)
        state = (resume_state if resume_state and resume_state["phase_index"] == p_idx
                 else None)
        done.append(_run_phase(model, phase, p_idx, len(phases), train_data, val_data, cfg,
                               device, n_classes, ckpt_dir, metrics_csv, history, done,
                               names, state, rank, world))
    if world > 1:  # nobody leaves before rank 0 has written the last checkpoint
        import torch.distributed as dist

        dist.barrier()
    return TrainResult(history=history, phases=done, resumed_from=resumed_from)


def _run_phase(model, phase: Phase, p_idx: int, n_phases: int, train_data, val_data,
               cfg: TrainConfig, device, n_classes: int, ckpt_dir: Path | None,
               metrics_csv: Path | None, history: list, done: list[PhaseResult],
               names: list[str], state: dict | None, rank: int = 0,
               world: int = 1) -> PhaseResult:
    loss_fn = phase.loss or cross_entropy_loss
    train = _phase_data(train_data, phase)
    val = _phase_data(val_data, phase) if val_data is not None else None
    optimizer = _make_optimizer(model, phase)
    scheduler = _make_scheduler(optimizer, phase)
    amp = device.type == "cuda" if cfg.amp is None else bool(cfg.amp)
    scaler = (torch.amp.GradScaler("cuda") if amp and device.type == "cuda"
              and not torch.cuda.is_bf16_supported() else None)
    step_module = None
    if world > 1:
        if not isinstance(train, SequenceDataset) or (
                val is not None and not isinstance(val, SequenceDataset)):
            raise ValueError("distributed training needs SequenceDataset training and "
                             "validation data (to give each process its share)")
        from torch.nn.parallel import DistributedDataParallel

        # built per phase, after this phase froze what it does not train: DDP reduces
        # the gradients of exactly the parameters the phase trains
        step_module = DistributedDataParallel(
            _LossModule(model, loss_fn),
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)
    writer = rank == 0
    quiet = None if writer else True
    class_weight = None
    if phase.class_weighting == "balanced":
        if not isinstance(train, SequenceDataset):
            raise ValueError("class_weighting='balanced' needs a SequenceDataset")
        w = balanced_class_weights(train.class_counts(n_classes))
        class_weight = torch.as_tensor(w, dtype=torch.float32, device=device)
    ctx = StepContext(class_weight, n_classes, phase.name, training=True)

    best_score: float | None = None
    best_epoch, bad_epochs, start = 0, 0, 1
    best_state = _state(model)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        best_score, best_epoch = state["best_score"], state["best_epoch"]
        best_state, bad_epochs = state["best_state"], state["bad_epochs"]
        torch.set_rng_state(state["torch_rng"])
        if torch.cuda.is_available() and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        start = state["epoch"] + 1
    stopped = (state is not None and val is not None and phase.patience is not None
               and bad_epochs >= phase.patience)
    if stopped:
        start = phase.epochs + 1
    label = f"{cfg.desc}:{phase.name}" if n_phases > 1 else cfg.desc
    epoch_bar = progress(range(start, phase.epochs + 1), total=phase.epochs,
                         initial=start - 1, desc=label, unit="epoch", disable=quiet)
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        model.train()
        _freeze_frozen_modules(model)
        shuffle_seed = cfg.seed + 1000 * p_idx + epoch
        loader = (_RankBatches(train, phase.batch_size, True, shuffle_seed, rank, world)
                  if world > 1 else _loader(train, phase.batch_size, True, shuffle_seed))
        sums: dict[str, float] = {}
        n_items, n_seen, n_correct = 0, 0, 0
        bar = progress(loader, desc=f"{phase.name} {epoch}/{phase.epochs}", unit="batch",
                       leave=False, disable=quiet)
        trainable = [p for g in optimizer.param_groups for p in g["params"]]
        for batch in bar:
            batch = to_device(batch, device)
            if step_module is None and not amp:  # the one-process path, unchanged
                out = _as_output(loss_fn(model, batch, ctx))
            else:
                with _amp_context(device, amp):
                    out = (step_module(batch, ctx) if step_module is not None
                           else _as_output(loss_fn(model, batch, ctx)))
            total = _weighted_total(out.terms, phase.loss_weights)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(total).backward()
                scaler.unscale_(optimizer)
            else:
                total.backward()
            if phase.grad_clip:
                nn.utils.clip_grad_norm_(trainable, phase.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            bs = _batch_size(batch)
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
        if world > 1:  # the epoch's training metrics over every rank's share
            got = _all_reduce_sums({**{f"s:{k}": v for k, v in sums.items()},
                                    "n_items": n_items, "n_seen": n_seen,
                                    "n_correct": n_correct}, device)
            n_items, n_seen = int(got.pop("n_items")), int(got.pop("n_seen"))
            n_correct = int(got.pop("n_correct"))
            sums = {k[2:]: v for k, v in got.items()}
        lrs = [g["lr"] for g in optimizer.param_groups]
        scheduler.step()
        row: dict[str, Any] = {"phase": phase.name, "epoch": epoch, "lr": lrs[0]}
        row.update({f"train_{k}": v / max(n_items, 1) for k, v in sums.items()})
        if n_seen:
            row["train_acc"] = n_correct / n_seen
        improved = False
        if val is not None:
            if world > 1:
                vm = _evaluate_distributed(model, val, phase.batch_size * 2, n_classes,
                                           loss_fn, device, class_weight,
                                           phase.loss_weights, phase.name, rank, world)
            else:
                vm = evaluate_loader(model, _loader(val, phase.batch_size * 2, False, 0),
                                     n_classes, loss_fn, device, class_weight,
                                     phase.loss_weights, phase.name)
            row.update({f"val_{k}": v for k, v in vm.items()})
            if phase.monitor not in row:
                have = sorted(k for k in row if k.startswith("val_"))
                raise ValueError(f"phase {phase.name!r} monitors {phase.monitor!r}, but "
                                 f"validation gives {have}")
            score = float(row[phase.monitor])
            if phase.better(score, best_score):
                improved, best_score, best_epoch, bad_epochs = True, score, epoch, 0
            else:
                bad_epochs += 1
        else:
            improved, best_epoch = True, epoch
        if improved:
            best_state = _state(model)
        row["time_s"] = time.perf_counter() - t0
        history.append(row)
        epoch_bar.set_postfix({k: f"{row[k]:.3f}" for k in ("train_loss", phase.monitor)
                               if k in row})
        if metrics_csv is not None and writer:
            _write_history_csv(metrics_csv, history)
        if ckpt_dir is not None and writer:
            if improved:
                _save_checkpoint(ckpt_dir / phase.name / "best.pt", {
                    "phase": phase.name, "epoch": epoch, "model": best_state,
                    "score": best_score, "monitor": phase.monitor})
            _save_checkpoint(ckpt_dir / "last.pt", {
                "phases": names, "phase_index": p_idx, "epoch": epoch,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "history": history,
                "best_score": best_score, "best_epoch": best_epoch, "best_state": best_state,
                "bad_epochs": bad_epochs, "torch_rng": torch.get_rng_state(),
                "cuda_rng": (torch.cuda.get_rng_state_all() if torch.cuda.is_available()
                             else None),
                "done": [asdict(d) for d in done], "phase_config": phase.describe(),
                "run_config": asdict(cfg)})
        if val is not None and phase.patience is not None and bad_epochs >= phase.patience:
            stopped = True
            break
    epoch_bar.close()
    del step_module  # its hooks and buckets go with it; the next phase builds its own
    model.load_state_dict(best_state)
    for p in model.parameters():  # frozen for this phase only
        p.requires_grad_(True)
    rows = [r for r in history if r.get("phase") == phase.name]
    times = [r["time_s"] for r in rows]
    result = PhaseResult(name=phase.name, best_epoch=best_epoch, best_score=best_score,
                         epochs_run=len(rows), stopped_early=stopped,
                         seconds_per_epoch=float(np.mean(times)) if times else float("nan"))
    return result


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
