"""Distributed training: the process group, each rank's share of the data, the
reductions, and the lifecycle a command line needs.

Started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment, or with a process group
already initialised), :func:`~hypnoscope.training.loop.train_model` trains with PyTorch's
:class:`~torch.nn.parallel.DistributedDataParallel` (gloo on CPU, NCCL on GPU, one GPU
per process at ``cuda:LOCAL_RANK``) and needs no change in the model: each phase wraps
the model *and its loss* in a fresh DDP module (:class:`LossModule`), so a loss may
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
(``TrainConfig.amp``, on by default there; :mod:`hypnoscope.training.precision`) runs the
forward pass in bfloat16 (float16 with a gradient scaler where bfloat16 is unsupported).

A command that trains (``hypnoscope train`` under ``torchrun``) calls
:func:`end_of_training` after fitting (every rank waits for the others; rank 0 goes on
to save and report, the others leave the process group) and :func:`shutdown_distributed`
when it is done.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from hypnoscope.evaluation.metrics import accuracy_macro_f1
from hypnoscope.training.losses import LossFn, LossOutput, StepContext, as_output
from hypnoscope.training.sequences import SequenceDataset
from hypnoscope.training.validation import evaluation_sums


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


class LossModule(nn.Module):
    """The model and a phase's loss as one module, so that DDP sees the whole step:
    the loss may call any method or submodule of the model and return several
    outputs (DDP finds the tensors in the returned :class:`LossOutput`)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: dict, ctx: StepContext) -> LossOutput:
        return as_output(self.loss_fn(self.model, batch, ctx))


class RankBatches:
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


def all_reduce_sums(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Sum each value over the ranks (keys in the same order everywhere)."""
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist(), strict=True))


def evaluate_distributed(model, val: SequenceDataset, batch_size: int, n_classes: int,
                          loss_fn, device, class_weight, loss_weights, phase: str,
                          rank: int, world: int) -> dict[str, float]:
    """:func:`evaluate_loader` over a disjoint share of ``val`` per rank, reduced: the
    same metrics as one process over all of it."""
    import torch.distributed as dist

    share = val.subset(np.arange(rank, len(val), world))
    loader = share.loader(batch_size) if len(share) else []
    sums, n, preds, trues = evaluation_sums(model, loader, n_classes, loss_fn, device,
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


def wrap_for_ddp(model: nn.Module, loss_fn: LossFn, device: torch.device) -> nn.Module:
    """The model and a phase's loss as one DistributedDataParallel module. Built per
    phase, after the phase froze what it does not train: DDP reduces the gradients of
    exactly the parameters the phase trains."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        LossModule(model, loss_fn),
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=True)


def wait_for_all_ranks() -> tuple[int, int]:
    """``(rank, world_size)``, after every rank of a process group of several has got
    here (a barrier); ``(0, 1)`` outside one."""
    import torch.distributed as dist

    rank, world = distributed_rank()
    if world > 1:
        dist.barrier()
    return rank, world


def end_of_training() -> tuple[bool, int]:
    """After fitting: wait for every rank (:func:`wait_for_all_ranks`); return whether
    this process saves and reports (rank 0, or not distributed) and the world size. A
    process that does not has left the process group."""
    rank, world = wait_for_all_ranks()
    if rank != 0:
        shutdown_distributed()
    return rank == 0, world


def shutdown_distributed() -> None:
    """Leave the process group, if this process is in one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["init_distributed", "distributed_rank", "is_main_process", "LossModule",
           "RankBatches", "all_reduce_sums", "evaluate_distributed", "wrap_for_ddp",
           "wait_for_all_ranks", "end_of_training", "shutdown_distributed"]
