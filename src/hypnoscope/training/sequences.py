"""Windows of consecutive epochs over nights, as batches for deep sequence models.

:func:`sequence_windows` indexes windows of L epochs inside one night (a window never
crosses nights), many-to-one (one window per epoch, ending at it) or many-to-many (every
position supervised). :class:`SequenceDataset` serves those windows over any set of a
night's views (``raw`` signals, ``spec`` spectrograms, ``feat`` features, see
:attr:`hypnoscope.datasets.Night.views`) to a PyTorch ``DataLoader``:

- each window is read from its own night's arrays, never from one big tensor of all
  nights, so memory stays flat as nights are added (memory-mapped cached nights and views
  stay on disk until a batch needs them);
- per-night normalisation (:func:`hypnoscope.signal.normalize.normalization_stats`) is
  computed once per night and view, and applied when a batch is gathered;
- a batch is ``{"x": {view: (B, L, ...)}, "y": (B,) or (B, L), "mask": (B, L) bool,
  "night": (B,), "pos": (B, L)}``; :func:`to_device` moves such nested dicts.

The windows, their normalised arrays (:meth:`SequenceDataset.gather`) and the per-epoch
average of overlapping window outputs (:meth:`SequenceDataset.average_over_epochs`) are
NumPy only: PyTorch is imported when a batch is served as tensors, so that the
onnxruntime path (:mod:`hypnoscope.models.onnx_model`) stages without PyTorch.

Unlabelled nights are fine: windows without a scored target are kept for
self-supervised training and inference, and :meth:`SequenceDataset.scored` gives the
windows that have one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hypnoscope.datasets import Night
from hypnoscope.signal.normalize import (
    apply_normalization,
    epoch_norm_axes,
    normalization_stats,
)
from hypnoscope.stages import UNSCORED

IGNORE_INDEX = UNSCORED


def sequence_windows(n_epochs: int, seq_len: int, mode: str = "many-to-one",
                     stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index windows of ``seq_len`` consecutive epochs inside one night.

    Parameters
    ----------
    n_epochs : int
        Epochs in the night.
    seq_len : int
        Window length L.
    mode : {"many-to-one", "many-to-many"}
        ``many-to-one``: one window per epoch ``t`` made of epochs ``t-L+1 .. t`` (the
        target is the last epoch, as in the multimodal seed); the first ``L-1`` windows
        are left-padded by repeating index 0 and the padding is marked in the mask.
        ``many-to-many``: windows of L epochs with ``stride`` (default L); the last window
        is shifted back to end at the last epoch so every epoch is covered.

    Returns
    -------
    index : ndarray (n_windows, seq_len) of int
        Epoch indices of each window (always inside ``[0, n_epochs)``).
    mask : ndarray (n_windows, seq_len) of bool
        True where the position holds a real epoch (False for padding).
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if n_epochs < 1:
        raise ValueError("a night needs at least one epoch")
    if mode == "many-to-one":
        idx = np.arange(n_epochs)[:, None] - np.arange(seq_len - 1, -1, -1)[None, :]
        mask = idx >= 0
        return np.maximum(idx, 0), mask
    if mode == "many-to-many":
        if n_epochs < seq_len:
            idx = np.arange(seq_len)[None, :]
            mask = idx < n_epochs
            return np.minimum(idx, n_epochs - 1), mask
        stride = seq_len if stride is None else int(stride)
        starts = list(range(0, n_epochs - seq_len + 1, stride))
        if starts[-1] != n_epochs - seq_len:
            starts.append(n_epochs - seq_len)
        idx = np.asarray(starts)[:, None] + np.arange(seq_len)[None, :]
        return idx, np.ones_like(idx, dtype=bool)
    raise ValueError(f"mode must be 'many-to-one' or 'many-to-many', got {mode!r}")




def to_device(obj: Any, device: Any) -> Any:
    """Move tensors inside nested dicts / lists / tuples to ``device``."""
    import torch

    if torch.is_tensor(obj):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


class SequenceDataset:
    """Windows of consecutive epochs over a list of nights, for any set of views.

    Parameters
    ----------
    nights : list of Night
        Nights with the requested views (the same per-epoch shape in every night).
    seq_len : int
        Window length L.
    mode : {"many-to-one", "many-to-many"}
        ``many-to-one``: one window per epoch, target = its last epoch (left padding
        masked). ``many-to-many``: windows with ``stride`` and one target per position
        (padding positions get ``-100``).
    stride : int, optional
        Stride of many-to-many windows (default ``seq_len``).
    views : sequence of str, optional
        Views served under ``batch["x"]`` (default: each night's primary view, ``raw``
        or ``feat``).
    normalize : str, dict or None
        Per-night normalisation of each view: ``"zscore"`` or ``"robust"`` for all views,
        a dict ``{view: method or None}``, or None. Statistics per channel for signals
        and spectrograms (per frequency bin), per column for features
        (:func:`hypnoscope.signal.normalize.epoch_norm_axes`), computed once per night
        over its epochs minus ``exclude``.
    clip : float, optional
        Clip normalised values to ``±clip``.
    label_map : callable, optional
        Applied to each night's ``y`` (e.g. :func:`hypnoscope.stages.to_3class`);
        negative results are ignored.
    drop_unlabelled : bool
        Drop windows without any scored target (supervised training); keep every window
        (self-supervised training, inference) with ``False``.
    exclude : callable, optional
        ``exclude(night) -> bool array (n_epochs,)`` of epochs left out of the
        normalisation statistics (e.g. bad signal quality).

    Attributes
    ----------
    index : ndarray (n_windows, L)
        Epoch indices of each window *within its night*; ``mask`` marks real epochs.
    night_of_window : ndarray (n_windows,)
        Position in ``nights`` of each window's night.
    targets : ndarray (n_windows,) or (n_windows, L)
    """

    def __init__(self, nights: Sequence[Night], seq_len: int, mode: str = "many-to-one",
                 stride: int | None = None, views: Sequence[str] | None = None,
                 normalize: str | Mapping[str, str | None] | None = None,
                 clip: float | None = None, label_map: Callable | None = None,
                 drop_unlabelled: bool = True,
                 exclude: Callable[[Night], np.ndarray] | None = None) -> None:
        if not nights:
            raise ValueError("SequenceDataset needs at least one night")
        self.nights = list(nights)
        self.views = list(views) if views else [self.nights[0].primary_view]
        self.seq_len, self.mode = int(seq_len), mode
        self.clip = clip
        methods = (normalize if isinstance(normalize, Mapping)
                   else dict.fromkeys(self.views, normalize))
        self.normalize = {v: methods.get(v) for v in self.views}
        for v, m in self.normalize.items():
            if m not in (None, "none", "zscore", "robust"):
                raise ValueError(f"normalize for view {v!r} must be 'zscore', 'robust' or "
                                 f"None, got {m!r}")
        shapes: dict[str, set] = {v: set() for v in self.views}
        self._arrays: list[dict[str, np.ndarray]] = []
        self._stats: list[dict[str, tuple[np.ndarray, np.ndarray] | None]] = []
        ys, idx, masks, owner = [], [], [], []
        for k, night in enumerate(self.nights):
            arrays = {v: night.view(v) for v in self.views}
            excl = None if exclude is None else np.asarray(exclude(night), bool)
            stats = {}
            for v, arr in arrays.items():
                shapes[v].add(tuple(arr.shape[1:]))
                m = self.normalize[v]
                stats[v] = (None if m in (None, "none") else
                            tuple(s.astype(np.float32) for s in normalization_stats(
                                arr, m, epoch_norm_axes(arr), exclude=excl)))
            self._arrays.append(arrays)
            self._stats.append(stats)
            y = np.asarray(night.y if label_map is None else label_map(night.y), np.int64)
            ys.append(np.where(y < 0, IGNORE_INDEX, y))
            i, m = sequence_windows(len(y), seq_len, mode=mode, stride=stride)
            idx.append(i)
            masks.append(m)
            owner.append(np.full(len(i), k))
        for v, sh in shapes.items():
            if len(sh) > 1:
                raise ValueError(f"nights have different per-epoch shapes of view {v!r}: "
                                 f"{sorted(sh)}; first night: {self.nights[0].night_id}")
        self.shapes = {v: next(iter(sh)) for v, sh in shapes.items()}
        index, mask, night_of_window = (np.concatenate(idx), np.concatenate(masks),
                                        np.concatenate(owner))
        per_window = np.concatenate([ys[k][i] for k, i in enumerate(idx)])
        if mode == "many-to-one":
            targets = per_window[:, -1]
            has_target = targets >= 0
        else:
            targets = np.where(mask, per_window, IGNORE_INDEX)
            has_target = (targets >= 0).any(axis=1)
        self._set_windows(index, mask, night_of_window, targets)
        if drop_unlabelled:
            if not has_target.any():
                raise ValueError("no window has a scored target (all labels unscored?)")
            self._set_windows(index[has_target], mask[has_target],
                              night_of_window[has_target], targets[has_target])

    def _set_windows(self, index, mask, night_of_window, targets) -> None:
        self.index, self.mask = index, mask
        self.night_of_window, self.targets = night_of_window, targets
        self._tensors: tuple | None = None  # (mask, targets) as tensors, made when served

    def _mask_targets_t(self) -> tuple:
        if self._tensors is None:
            import torch

            self._tensors = (torch.from_numpy(np.ascontiguousarray(self.mask)),
                             torch.from_numpy(np.ascontiguousarray(self.targets)))
        return self._tensors

    # -- windows ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    @property
    def has_target(self) -> np.ndarray:
        """Windows with at least one scored target."""
        t = self.targets
        return t >= 0 if t.ndim == 1 else (t >= 0).any(axis=1)

    def subset(self, keep: np.ndarray) -> SequenceDataset:
        """The windows selected by a boolean or index array (arrays shared, not copied)."""
        out = object.__new__(SequenceDataset)
        out.__dict__.update(self.__dict__)
        out._set_windows(self.index[keep], self.mask[keep], self.night_of_window[keep],
                         self.targets[keep])
        return out

    def scored(self) -> SequenceDataset:
        """The windows with a scored target (supervised training and validation)."""
        keep = self.has_target
        if not keep.any():
            raise ValueError("no window has a scored target (all labels unscored?)")
        return self if keep.all() else self.subset(keep)

    def gather(self, items: np.ndarray) -> dict[str, np.ndarray]:
        """Normalised ``float32`` arrays ``{view: (B, L, ...)}`` of the windows ``items``
        (NumPy; the batches of :meth:`loader` and the onnxruntime input)."""
        items = np.asarray(items, dtype=np.int64)
        B = len(items)
        nights = self.night_of_window[items]
        out = {v: np.empty((B, self.seq_len, *self.shapes[v]), np.float32)
               for v in self.views}
        for k in np.unique(nights):
            rows = np.flatnonzero(nights == k)
            idx = self.index[items[rows]]
            for v in self.views:
                x = np.asarray(self._arrays[k][v][idx], dtype=np.float32)
                st = self._stats[k][v]
                if st is not None:
                    x = apply_normalization(x, st[0], st[1], self.clip)
                out[v][rows] = x
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.__getitems__([i])

    def __getitems__(self, items: list[int]) -> dict[str, Any]:
        """A whole batch at once (used by :meth:`loader`)."""
        import torch

        sel = np.asarray(items, dtype=np.int64)
        mask_t, targets_t = self._mask_targets_t()
        x = {v: torch.from_numpy(a) for v, a in self.gather(sel).items()}
        return {"x": x, "y": targets_t[sel], "mask": mask_t[sel],
                "night": torch.from_numpy(self.night_of_window[sel]),
                "pos": torch.from_numpy(self.index[sel])}

    def class_counts(self, n_classes: int) -> np.ndarray:
        """Number of scored targets per class."""
        t = np.asarray(self.targets).ravel()
        return np.bincount(t[t >= 0], minlength=n_classes)[:n_classes]

    def loader(self, batch_size: int = 64, shuffle: bool = False, seed: int = 0):
        """A ``torch.utils.data.DataLoader`` yielding ready batches (dicts) with a seeded
        shuffle."""
        import torch
        from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

        if shuffle:
            gen = torch.Generator().manual_seed(int(seed))
            sampler = RandomSampler(range(len(self)), generator=gen)
        else:
            sampler = SequentialSampler(range(len(self)))
        return DataLoader(self, batch_sampler=BatchSampler(sampler, batch_size, False),
                          collate_fn=_identity)

    def average_over_epochs(self, proba: np.ndarray, night: int = 0) -> np.ndarray:
        """Per-epoch average of many-to-many window outputs ``(n_windows, L, C)`` of the
        windows of night ``night`` (every window covering an epoch counts once)."""
        sel = self.night_of_window == night
        n = self.nights[night].n_epochs
        idx, m = self.index[sel][self.mask[sel]], proba[sel][self.mask[sel]]
        acc = np.zeros((n, proba.shape[-1]))
        cnt = np.zeros(n)
        np.add.at(acc, idx, m)
        np.add.at(cnt, idx, 1)
        return acc / np.maximum(cnt, 1)[:, None]


def _identity(batch):
    return batch


__all__ = ["SequenceDataset", "sequence_windows", "to_device", "IGNORE_INDEX"]
