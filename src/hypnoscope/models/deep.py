"""The base of every deep staging model: a network plus its training phases.

:class:`DeepStagingModel` is a :class:`~hypnoscope.models.base.StagingModel` (``fit`` /
``predict_proba`` / ``predict`` / ``save`` / :func:`~hypnoscope.models.base.load_model`)
that does everything but the network:

- validation subjects for checkpoint selection
  (:func:`~hypnoscope.evaluation.splits.validation_split`
  when ``fit`` gets no ``val_nights``), never the nights it is evaluated on;
- derived views (``spec`` ...) computed and cached once per night
  (:func:`hypnoscope.signal.views.add_views`) and windows of ``seq_len`` epochs over every view
  the network reads (:class:`hypnoscope.training.sequences.SequenceDataset`), with per-night
  normalisation;
- one or several tasks (a direct classifier, or the two stages of a hierarchy), each
  trained through the model's :class:`~hypnoscope.training.phases.Phase` s by
  :func:`hypnoscope.training.loop.train_model` (checkpoints, resume, early stopping);
- many-to-many windows averaged at inference; the bundle saved with the network's
  constructor arguments and weights, the configuration, channels, classes and a
  description of the training data.

A subclass sets :attr:`network_class` (an ``nn.Module`` built as ``network_class(n_chans,
n_outputs, n_times, sfreq, **options)``, braindecode's signature, with its encoder
separable from its head), :attr:`PRESETS` and :attr:`NET_KEYS`, and overrides
:meth:`phases` (default: one supervised cross-entropy phase), :meth:`tasks`,
:meth:`network_kwargs` or :meth:`forward` where it needs to.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from hypnoscope.datasets import Night
from hypnoscope.models.windowed import NORMALIZATION, WindowedStagingModel
from hypnoscope.stages import to_3class
from hypnoscope.training.loop import TrainConfig, predict_windows, train_model
from hypnoscope.training.losses import batch_input, classification_loss, cross_entropy_loss
from hypnoscope.training.phases import Phase
from hypnoscope.training.sequences import SequenceDataset

logger = logging.getLogger(__name__)

#: Training settings every preset gives (network sizes come on top).
TRAIN_KEYS = ("seq_len", "epochs", "batch_size", "lr", "patience")


def count_parameters(net: nn.Module) -> int:
    """Number of parameters of a network."""
    return int(sum(p.numel() for p in net.parameters()))


class DeepStagingModel(WindowedStagingModel):
    """Night-level deep staging model; subclasses give the network and its phases.

    Views, windows, normalisation, night checks and the averaging of overlapping windows
    are :class:`~hypnoscope.models.windowed.WindowedStagingModel`'s (NumPy, shared with
    the onnxruntime path); this class adds the PyTorch network, training and
    :meth:`window_proba`.

    Parameters
    ----------
    n_classes : {3, 5}
    preset : str
        Key of :attr:`PRESETS` (network sizes and training settings).
    seq_len : int, optional
        Epochs per window (preset default).
    mode : {"many-to-many", "many-to-one"}
        ``many-to-one``: every epoch predicted from the ``seq_len`` epochs ending at it.
        ``many-to-many``: every position of windows with stride ``seq_len // 2``
        supervised, overlapping predictions averaged at inference (``seq_len`` times
        cheaper to train).
    epochs, batch_size, lr, weight_decay, patience : optional
        Training settings (preset defaults).
    monitor : {"val_acc", "val_macro_f1", "val_loss"}
        Best-checkpoint criterion of the supervised phase, on validation subjects.
    class_weighting : {None, "balanced"}
    normalize : {"night", "robust", "none"}
        Per-night scaling of every view: z-score, or median/IQR clipped to ±8.
    views : sequence of str, optional
        Views the network reads (default :attr:`default_views`, else the night's primary
        view); derived ones (``spec``) are computed and cached (:mod:`hypnoscope.signal.views`).
    val_fraction : float
        Fraction of training subjects held out for validation when ``fit`` gets no
        ``val_nights``.
    label_smoothing : float
    infer_stride : int, optional
        Stride of many-to-many windows at inference (default ``seq_len // 2``).
    checkpoint_dir, resume, seed, device, num_threads
        See :class:`hypnoscope.training.loop.TrainConfig`.
    **net_options
        Overrides of the preset's network options (:attr:`NET_KEYS`).
    """

    name: str = "deep"
    #: preset -> network options (``NET_KEYS``) and training settings (``TRAIN_KEYS``)
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: network options a preset or the caller may set
    NET_KEYS: ClassVar[tuple[str, ...]] = ()
    #: the network: ``network_class(n_chans=, n_outputs=, n_times=, sfreq=, **options)``
    network_class: ClassVar[type[nn.Module]]

    def __init__(self, n_classes: int = 5, preset: str = "small", seq_len: int | None = None,
                 mode: str = "many-to-many", epochs: int | None = None,
                 batch_size: int | None = None, lr: float | None = None,
                 weight_decay: float = 1e-2, patience: int | None = None,
                 monitor: str = "val_acc", class_weighting: str | None = None,
                 normalize: str = "night", views: tuple[str, ...] | list[str] | None = None,
                 val_fraction: float = 0.15, label_smoothing: float = 0.0,
                 infer_stride: int | None = None, checkpoint_dir: str | None = None,
                 resume: bool = False, seed: int = 0, device: str | None = None,
                 num_threads: int | None = None, **net_options: Any) -> None:
        if preset not in self.PRESETS:
            raise ValueError(f"unknown preset {preset!r}; expected one of "
                             f"{sorted(self.PRESETS)}")
        if mode not in ("many-to-many", "many-to-one"):
            raise ValueError(f"mode must be 'many-to-many' or 'many-to-one', got {mode!r}")
        if normalize not in NORMALIZATION:
            raise ValueError(f"normalize must be one of {sorted(NORMALIZATION)}, "
                             f"got {normalize!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if infer_stride is not None and int(infer_stride) < 1:
            raise ValueError(f"infer_stride must be >= 1, got {infer_stride}")
        unknown = set(net_options) - set(self.NET_KEYS)
        if unknown:
            raise ValueError(f"unknown {self.name} option(s) {sorted(unknown)}; network "
                             f"options are {list(self.NET_KEYS)}")
        p = self.PRESETS[preset]
        net = {k: p[k] for k in self.NET_KEYS if k in p}
        net.update(net_options)
        super().__init__(
            n_classes=n_classes, preset=preset, seq_len=int(seq_len or p["seq_len"]),
            mode=mode, epochs=int(epochs or p["epochs"]),
            batch_size=int(batch_size or p["batch_size"]), lr=float(lr or p["lr"]),
            weight_decay=weight_decay, patience=p["patience"] if patience is None else patience,
            monitor=monitor, class_weighting=class_weighting, normalize=normalize,
            views=None if views is None else list(views), val_fraction=val_fraction,
            label_smoothing=float(label_smoothing),
            infer_stride=None if infer_stride is None else int(infer_stride),
            checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
            resume=resume, seed=seed, device=device, num_threads=num_threads, net=net)
        self.nets: dict[str, nn.Module] = {}
        self.net_kwargs: dict[str, dict[str, Any]] = {}
        self.input_kind: str = "features"
        self.input_views: list[str] = []
        self.training_summary: dict[str, Any] = {}

    # -- what a subclass may override ------------------------------------------------
    def tasks(self) -> list[tuple[str, int, Any]]:
        """``(task, n_outputs, label_map)`` per network; default one direct classifier."""
        return [("direct", self.n_classes, to_3class if self.n_classes == 3 else None)]

    def network_kwargs(self, task: str, n_outputs: int, night: Night) -> dict[str, Any]:
        """Constructor arguments of the network of ``task`` for nights like ``night``:
        braindecode's ``n_chans``, ``n_outputs``, ``n_times``, ``sfreq`` from the primary
        view (``n_features`` instead of ``n_times`` for feature input) plus the network
        options."""
        shape = night.X.shape[1:]
        if night.kind == "signals":
            if len(shape) != 2:
                raise ValueError(f"night {night.night_id}: signal input must be (n_epochs, "
                                 f"n_channels, n_times), got {night.X.shape}")
            kw = {"n_chans": int(shape[0]), "n_times": int(shape[1]),
                  "sfreq": float(night.sfreq or 100.0)}
        elif len(shape) == 1:
            kw = {"n_chans": 1, "n_features": int(shape[0])}
        else:
            kw = {"n_chans": int(shape[0]), "n_features": int(np.prod(shape[1:]))}
        return {**kw, "n_outputs": int(n_outputs), **self.config["net"]}

    def build_network(self, kwargs: dict[str, Any]) -> nn.Module:
        """The network from its constructor arguments."""
        return self.network_class(**kwargs)

    def initialise_network(self, task: str, net: nn.Module) -> None:
        """Starting weights of a freshly built network before training (default: its
        own initialisation; a subclass may warm-start it, e.g. from another model)."""

    def phases(self, task: str) -> list[Phase]:
        """Training phases of ``task``'s network (default: one supervised phase)."""
        c = self.config
        loss = partial(cross_entropy_loss, label_smoothing=c["label_smoothing"])
        return [Phase(name="supervised", loss=loss, epochs=c["epochs"],
                      batch_size=c["batch_size"], lr=c["lr"], weight_decay=c["weight_decay"],
                      class_weighting=c["class_weighting"], monitor=c["monitor"],
                      patience=c["patience"])]

    def forward(self, net: nn.Module, batch: dict) -> torch.Tensor:
        """Logits of ``net`` for a batch (default: its single view and the mask)."""
        return net(batch_input(batch), mask=batch["mask"])

    # -- data ------------------------------------------------------------------------
    def _train_config(self, task: str) -> TrainConfig:
        c = self.config
        ckpt = c["checkpoint_dir"]
        if ckpt is not None and len(self.tasks()) > 1:
            ckpt = str(Path(ckpt) / task)
        return TrainConfig(seed=c["seed"], device=c["device"], num_threads=c["num_threads"],
                           checkpoint_dir=ckpt, resume=c["resume"],
                           desc=f"{self.name}:{task}")

    # -- fit / predict ---------------------------------------------------------------
    def fit(self, nights: list[Night], val_nights: list[Night] | None = None,
            ) -> DeepStagingModel:
        """Train on ``nights``; pick checkpoints on ``val_nights`` (validation subjects).

        Without ``val_nights``, ``val_fraction`` of the training subjects are held out
        (:func:`~hypnoscope.evaluation.splits.validation_split`).
        Nights may be unlabelled: they serve
        the self-supervised phases of models that have them.
        """
        from hypnoscope.evaluation.splits import validation_split

        if not nights:
            raise ValueError("fit needs at least one night")
        kinds = {n.kind for n in nights}
        if len(kinds) > 1:
            raise ValueError(f"cannot mix input kinds {sorted(kinds)} in one model")
        self.input_kind = nights[0].kind
        if val_nights is None:
            nights, val_nights = validation_split(list(nights), self.config["val_fraction"],
                                                  self.config["seed"])
        overlap = {n.subject_id for n in nights} & {n.subject_id for n in val_nights or []}
        if overlap:
            raise ValueError(f"validation subjects also in training: {sorted(overlap)[:5]}")
        nights = self._with_views(list(nights))
        val_nights = self._with_views(list(val_nights)) if val_nights else []
        self.input_views = self._views(nights[0])
        summary: dict[str, Any] = {}
        for task, n_out, label_map in self.tasks():
            train_ds = self._dataset(nights, label_map, training=True)
            val_ds = self._dataset(val_nights, label_map, training=True) if val_nights else None
            kwargs = self.network_kwargs(task, n_out, nights[0])
            torch.manual_seed(self.config["seed"])
            net = self.build_network(kwargs)
            self.initialise_network(task, net)
            t0 = time.perf_counter()
            result = train_model(net, train_ds, val_ds, self.phases(task),
                                 self._train_config(task))
            net.cpu().eval()
            self.nets[task], self.net_kwargs[task] = net, kwargs
            last = result.phases[-1]
            summary[task] = {
                "best_epoch": last.best_epoch, "best_val_score": last.best_score,
                "epochs_run": sum(p.epochs_run for p in result.phases),
                "stopped_early": last.stopped_early,
                "seconds_per_epoch": result.seconds_per_epoch,
                "train_seconds": time.perf_counter() - t0,
                "n_train_windows": len(train_ds), "history": result.history,
                "phases": [p.describe() for p in self.phases(task)],
                "n_parameters": count_parameters(net)}
        self.training_summary = summary
        first = nights[0]
        method = NORMALIZATION[self.config["normalize"]][0]
        what = {"zscore": "z-score", "robust": "robust z-score (median, IQR / 1.349, "
                "clipped at ±8)"}.get(method)
        unit = "channel" if first.kind == "signals" else "feature"
        if "spec" in self.input_views:
            unit += " (spectrograms: each channel and frequency bin)"
        preprocessing = {
            "normalize": "none" if what is None else f"per-night {what} of each {unit}",
            "views": {v: (first.meta.get("views") or {}).get(v, {}).get("config", "input")
                      for v in self.input_views},
            "sfreq": first.sfreq, "epoch_sec": 30.0,
            "input": first.meta.get("preprocessing") if first.meta else None}
        self.describe_training(nights, validation_subjects=sorted(
            {n.subject_id for n in val_nights}), input_kind=self.input_kind,
            input_shape=list(first.X.shape[1:]), channels=list(first.channels),
            roles=list(first.roles), classes=list(self.classes),
            tasks={t: n for t, n, _ in self.tasks()}, views=list(self.input_views),
            preprocessing=preprocessing, training=summary)
        return self

    def window_proba(self, task: str, dataset: SequenceDataset) -> np.ndarray:
        """Softmax probabilities of the windows of ``dataset`` from ``task``'s network."""
        net = self.nets[task]
        proba = predict_windows(net, dataset, batch_size=256, device=self.config["device"],
                                forward=self.forward)
        net.cpu()
        return proba

    # -- pickling: weights as state_dicts, no live optimiser state ----------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["nets"] = {k: {kk: v.detach().cpu().clone() for kk, v in net.state_dict().items()}
                         for k, net in self.nets.items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        weights = state.pop("nets")
        self.__dict__.update(state)
        self.nets = {}
        for task, sd in weights.items():
            net = self.build_network(self.net_kwargs[task])
            net.load_state_dict(sd)
            self.nets[task] = net.eval()


class EpochStagingModel(DeepStagingModel):
    """Base of per-epoch deep models: one 30-s epoch in, its stage out.

    Windows are single epochs (``seq_len=1``, ``many-to-one``) and the network is called
    braindecode-style on ``(B, n_chans, n_times)`` (the raw view of the window's epoch)
    returning ``(B, n_outputs)`` logits; the default phase is supervised cross-entropy
    through :meth:`forward`. A subclass sets the network, presets and phases as for
    :class:`DeepStagingModel`.
    """

    def __init__(self, n_classes: int = 5, seq_len: int | None = None,
                 mode: str = "many-to-one", **options: Any) -> None:
        if seq_len not in (None, 1) or mode != "many-to-one":
            raise ValueError(f"{self.name} is a per-epoch model: seq_len must be 1 and mode "
                             f"'many-to-one', got seq_len={seq_len}, mode={mode!r}")
        super().__init__(n_classes=n_classes, seq_len=1, mode="many-to-one", **options)

    def epoch_input(self, batch: dict) -> torch.Tensor:
        """``(B, n_chans, n_times)``: the epoch of each single-epoch window."""
        x = batch["x"][self.input_views[0] if self.input_views else "raw"]
        return x[:, -1]

    def forward(self, net: nn.Module, batch: dict) -> torch.Tensor:
        """``(B, n_outputs)`` logits of the window's epoch."""
        return net(self.epoch_input(batch))

    def supervised_loss(self, net: nn.Module, batch: dict, ctx) -> Any:
        """Cross-entropy of :meth:`forward` (``label_smoothing`` of the config)."""
        return classification_loss(self.forward(net, batch), batch["y"], ctx,
                                   self.config["label_smoothing"])

    def supervised_phase(self, **overrides: Any) -> Phase:
        """The supervised phase with the model's training settings (``overrides`` on
        top, e.g. ``params``)."""
        c = self.config
        kw = {"name": "supervised", "loss": self.supervised_loss, "epochs": c["epochs"],
              "batch_size": c["batch_size"], "lr": c["lr"],
              "weight_decay": c["weight_decay"], "class_weighting": c["class_weighting"],
              "monitor": c["monitor"], "patience": c["patience"]}
        kw.update(overrides)
        return Phase(**kw)

    def phases(self, task: str) -> list[Phase]:
        return [self.supervised_phase()]


__all__ = ["DeepStagingModel", "EpochStagingModel", "NORMALIZATION"]
