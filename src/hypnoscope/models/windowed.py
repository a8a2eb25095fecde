"""Inference of window-based (deep) staging models, without PyTorch.

:class:`WindowedStagingModel` is the half of :class:`~hypnoscope.models.deep.
DeepStagingModel` that needs no network library: the views a model reads (computed and
cached by :mod:`hypnoscope.signal.views`), the windows of ``seq_len`` epochs with their per-night
normalisation (:class:`hypnoscope.training.sequences.SequenceDataset`, NumPy), the checks of a
night against the training layout, and the per-epoch average of overlapping
many-to-many window outputs. A subclass gives :meth:`WindowedStagingModel.window_proba`
(softmax probabilities of the windows of one task): PyTorch in ``DeepStagingModel``,
onnxruntime in :class:`~hypnoscope.models.onnx_model.OnnxStagingModel`, so both stage a
night through the same code.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from hypnoscope.datasets import Night
from hypnoscope.models.base import StagingModel
from hypnoscope.stages import TASK_MERGES, stage_names
from hypnoscope.training.sequences import SequenceDataset

#: ``normalize`` option -> (method of :func:`hypnoscope.signal.normalize.normalization_stats`,
#: clip)
NORMALIZATION = {"night": ("zscore", None), "robust": ("robust", 8.0), "none": (None, None)}


class WindowedStagingModel(StagingModel):
    """A staging model that reads windows of epochs over views of a night.

    Attributes used: ``config`` (``seq_len``, ``mode``, ``infer_stride``, ``normalize``,
    ``views``), ``nets`` (``{task: network}``, empty until fitted), ``input_kind``,
    ``input_views`` and ``metadata`` (``input_shape``, ``channels``).
    """

    #: views the network reads; None: the night's primary view (``raw`` or ``feat``)
    default_views: ClassVar[tuple[str, ...] | None] = None

    nets: dict[str, Any]
    input_kind: str
    input_views: list[str]

    # -- to implement ----------------------------------------------------------------
    def window_proba(self, task: str, dataset: SequenceDataset) -> np.ndarray:
        """Softmax probabilities of every window of ``dataset`` for ``task``:
        ``(n_windows, C)`` (many-to-one) or ``(n_windows, L, C)`` (many-to-many)."""
        raise NotImplementedError

    def task_merge(self) -> str | None:
        """Name in :data:`hypnoscope.stages.TASK_MERGES` of the rule that merges the
        probabilities of several tasks into classes (None: one task)."""
        return None

    # -- data ------------------------------------------------------------------------
    @property
    def classes(self) -> tuple[str, ...]:
        """Names of the output classes (``W N1 N2 N3 R`` or ``W NREM R``)."""
        return stage_names(self.n_classes)

    def _views(self, night: Night) -> list[str]:
        return list(self.config.get("views") or self.default_views or [night.primary_view])

    def _with_views(self, nights: list[Night]) -> list[Night]:
        from hypnoscope.signal.views import add_views

        derived = [v for v in self._views(nights[0]) if v != nights[0].primary_view]
        if derived:
            add_views(nights, derived, cache=self.config.get("views_cache", True))
        return nights

    def _dataset(self, nights: list[Night], label_map, training: bool) -> SequenceDataset:
        L, mode = self.config["seq_len"], self.config["mode"]
        stride = max(1, L // 2) if mode == "many-to-many" else None
        if mode == "many-to-many" and not training and self.config.get("infer_stride"):
            stride = min(L, self.config["infer_stride"])
        method, clip = NORMALIZATION[self.config["normalize"]]
        return SequenceDataset(nights, L, mode=mode, stride=stride,
                               views=self.input_views or self._views(nights[0]),
                               normalize=method, clip=clip, label_map=label_map,
                               drop_unlabelled=False)

    # -- predict ---------------------------------------------------------------------
    def _task_proba(self, task: str, night: Night) -> np.ndarray:
        ds = self._dataset([night], None, training=False)
        proba = self.window_proba(task, ds)
        if self.config["mode"] == "many-to-one":
            return proba
        return ds.average_over_epochs(proba)

    def _check_night(self, night: Night) -> None:
        if not self.nets:
            raise RuntimeError(f"{self.name} model is not fitted")
        if night.kind != self.input_kind:
            raise ValueError(f"night {night.night_id}: model was trained on "
                             f"{self.input_kind} input, got {night.kind}")
        want = self.metadata.get("input_shape")
        if want is not None and list(night.X.shape[1:]) != list(want):
            raise ValueError(f"night {night.night_id}: per-epoch input shape "
                             f"{list(night.X.shape[1:])} differs from the training shape {want}")
        chans = self.metadata.get("channels")
        if chans and night.channels and list(night.channels) != list(chans):
            raise ValueError(f"night {night.night_id}: channels {list(night.channels)} differ "
                             f"from the training channels {chans} (same names, same order "
                             "expected)")

    def stage_probabilities(self, night: Night) -> dict[str, np.ndarray]:
        """Per-task probabilities ``{task: (n_epochs, n_outputs)}``."""
        self._check_night(night)
        self._with_views([night])
        return {task: self._task_proba(task, night) for task in self.nets}

    def predict_proba(self, night: Night) -> np.ndarray:
        """``(n_epochs, n_classes)`` probabilities for every epoch of ``night`` (several
        tasks merged by :meth:`task_merge`'s rule)."""
        p = self.stage_probabilities(night)
        if len(p) == 1:
            return next(iter(p.values()))
        merge = self.task_merge()
        if merge is None:
            raise NotImplementedError(f"{self.name}: several tasks {sorted(p)} need a "
                                      "predict_proba that merges them")
        return TASK_MERGES[merge][0](*p.values())

    def predict(self, night: Night) -> np.ndarray:
        """Arg-max codes (several tasks: the hard rule of :meth:`task_merge`)."""
        merge = self.task_merge()
        if merge is None:
            return self.predict_proba(night).argmax(axis=1)
        return TASK_MERGES[merge][1](*self.stage_probabilities(night).values())


__all__ = ["WindowedStagingModel", "NORMALIZATION"]
