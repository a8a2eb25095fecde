"""Run-time helpers: seeding, progress bars and ``KEY=VALUE`` options."""

from __future__ import annotations

import json
import os
import random
from typing import Any

import numpy as np


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (if installed) PyTorch; return a NumPy ``Generator``."""
    random.seed(seed)
    # seeding the legacy global RNG is the point: third-party code (sklearn, yasa) uses it
    np.random.seed(seed % (2**32))  # noqa: NPY002
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a hard dependency, but stay usable
        pass
    return np.random.default_rng(seed)


def progress(iterable=None, total: int | None = None, desc: str = "", unit: str = "it",
             disable: bool | None = None, **kwargs):
    """A tqdm progress bar (rate and ETA) that stays quiet when output is not a terminal
    unless ``HYPNOSCOPE_PROGRESS=1`` is set."""
    from tqdm.auto import tqdm

    if disable is None:
        env = os.environ.get("HYPNOSCOPE_PROGRESS")
        disable = (env == "0") if env is not None else None  # tqdm: None = auto (tty only)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable,
                dynamic_ncols=True, **kwargs)


def parse_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (e.g. from a repeated ``--option``) -> a dict of options.

    A value is read as JSON (``true``, ``3``, ``{"night_stats": true}``); one that is not
    JSON stays a string (``preset=paper``). Raises ``ValueError`` naming an item without
    ``=`` or without a key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"option {item!r}: expected KEY=VALUE, e.g. "
                             "'context={\"night_stats\": true}'")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out

