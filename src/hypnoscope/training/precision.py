"""Automatic mixed precision of the training step (CUDA): the forward pass in bfloat16,
or in float16 with a gradient scaler where bfloat16 is unsupported."""

from __future__ import annotations

import contextlib

import torch


def amp_enabled(device: torch.device, amp: bool | None) -> bool:
    """``TrainConfig.amp``: ``None`` means on CUDA devices only."""
    return device.type == "cuda" if amp is None else bool(amp)


def grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler | None:
    """A gradient scaler for float16 autocast (CUDA without bfloat16), else None."""
    if enabled and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.amp.GradScaler("cuda")
    return None


def amp_context(device: torch.device, enabled: bool):
    """Autocast for the forward pass (bfloat16, or float16 without bf16 support)."""
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


__all__ = ["amp_enabled", "grad_scaler", "amp_context"]
