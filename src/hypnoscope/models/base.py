"""The night-level staging-model interface shared by every model in ``hypnoscope.models``.

Every model name the CLI accepts (``hypnoscope models``) builds a :class:`StagingModel`:

- ``fit(nights, val_nights=None)`` trains on a list of :class:`hypnoscope.datasets.Night`
  (per-epoch features or signals of whole nights, labels with ``UNSCORED`` = -100);
  ``val_nights`` come from *validation subjects* and are used for early stopping /
  checkpoint selection only.
- ``predict_proba(night)`` returns ``(n_epochs, n_classes)`` probabilities for every epoch
  of one night (unscored epochs included); ``predict(night)`` the arg-max codes.
- ``save(path)`` / :func:`load_model` round-trip the whole model, together with
  ``metadata``: the model name, its configuration, the class set and a description of
  the training data (subjects, nights, epochs per class, feature/channel layout).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from hypnoscope.utils.files import atomic_path

MODEL_FORMAT = "hypnoscope-model"
MODEL_FORMAT_VERSION = 1
#: How to install PyTorch, which the deep models need (the extra ``deep``).
DEEP_EXTRA = "pip install 'hypnoscope[deep]'"


class MissingExtraError(ImportError, RuntimeError):
    """What was asked for (e.g. a deep model) needs an optional dependency that is not
    installed; the message names the extra that installs it. Also a ``RuntimeError``:
    the command line reports it in one line, without a traceback."""


def is_torch_missing(exc: BaseException) -> bool:
    """Whether ``exc`` is the failed import of PyTorch."""
    return (isinstance(exc, ModuleNotFoundError)
            and (exc.name or "").partition(".")[0] == "torch")


@dataclass(frozen=True)
class ModelOption:
    """An option a model takes from ``hypnoscope train``, declared by the model (see
    :data:`hypnoscope.models.MODEL_OPTIONS`) and passed to its factory as
    ``name=value`` when it is given on the command line (or has a default).

    Parameters
    ----------
    name : str
        Keyword of the model's factory (and of its ``config``); the command-line flag is
        ``--name-with-dashes`` unless ``flag`` says otherwise.
    help : str
        Help text.
    type : callable, optional
        Converts the command-line text (``int``, ``float``, ``str``); None for a switch,
        a flag without a value that gives ``switch``.
    default : object
        Value when the option is not given; None leaves the model's own default.
    nargs : str, optional
        ``"+"``: one or more values, passed as a tuple.
    metavar, flag : str, optional
    switch : object
        The value a switch gives (e.g. ``False`` for ``--pretrain-only`` ->
        ``finetune=False``).
    model_file : bool
        The value names a model file, which must exist (checked before any work).
    """

    name: str
    help: str
    type: Callable[[str], Any] | None = None
    default: Any = None
    nargs: str | None = None
    metavar: str | None = None
    flag: str | None = None
    switch: Any = True
    model_file: bool = False

    @property
    def cli_flag(self) -> str:
        """The command-line flag, e.g. ``--mask-ratio``."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments."""
        return self.cli_flag.lstrip("-").replace("-", "_")

    def value(self, given: Any) -> Any:
        """The factory's value for a parsed command-line value (None: not given)."""
        if self.type is None:
            return self.switch if given else self.default
        if given is None:
            return self.default
        return tuple(given) if self.nargs else given


class StagingModel:
    """Base class: a model that stages whole nights.

    Subclasses set :attr:`name`, :attr:`input_kind` (``"features"`` or ``"signals"``)
    and implement :meth:`fit` and :meth:`predict_proba`.
    """

    name: str = "base"
    input_kind: str = "features"

    def __init__(self, n_classes: int = 5, **config: Any) -> None:
        if n_classes not in (3, 5):
            raise ValueError(f"n_classes must be 3 or 5, got {n_classes}")
        self.n_classes = n_classes
        self.config: dict[str, Any] = dict(config)
        self.metadata: dict[str, Any] = {}

    # -- to implement -------------------------------------------------------
    def fit(self, nights, val_nights=None) -> StagingModel:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, night) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared -------------------------------------------------------------
    def predict(self, night) -> np.ndarray:
        """Arg-max class code per epoch."""
        return np.asarray(self.predict_proba(night)).argmax(axis=1)

    def describe_training(self, nights, **extra: Any) -> dict[str, Any]:
        """Record what the model was trained on in :attr:`metadata` and return it."""
        from hypnoscope.datasets import describe_nights

        self.metadata.update({
            "model": self.name,
            "n_classes": self.n_classes,
            "config": dict(self.config),
            "training_data": describe_nights(nights),
            "trained_at": _dt.datetime.now().isoformat(timespec="seconds"),
            **extra,
        })
        return self.metadata

    def save(self, path: str | os.PathLike) -> Path:
        """Save the model and its metadata to one file, atomically."""
        payload = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
                   "name": self.name, "metadata": self.metadata, "model": self}
        with atomic_path(path) as tmp:
            joblib.dump(payload, tmp, compress=3)
        return Path(path)


class MemberModel(StagingModel):
    """A model that stages through member models (:attr:`members_`) which all read one
    input: its input kind, epoch shape and class names are those of its first member
    (a length-gated pair, an adapted model)."""

    @property
    def members_(self) -> tuple[StagingModel, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def input_kind(self) -> str:  # type: ignore[override]
        return self.members_[0].input_kind

    @property
    def input_kind_(self) -> str | None:
        return getattr(self.members_[0], "input_kind_", None)

    @property
    def epoch_shape_(self) -> list[int] | None:
        return getattr(self.members_[0], "epoch_shape_", None)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.members_[0].class_names


#: Modules of hypnoscope 0.1 that moved into subpackages: a model file written by 0.1
#: names them, and :func:`load_model` still reads it.
MOVED_MODULES = {"hypnoscope.nested": "hypnoscope.evaluation.nested",
                 "hypnoscope.sequences": "hypnoscope.training.sequences",
                 "hypnoscope.augment": "hypnoscope.training.augment",
                 "hypnoscope.features": "hypnoscope.signal.features",
                 "hypnoscope.bandpower": "hypnoscope.signal.bandpower",
                 "hypnoscope.splits": "hypnoscope.evaluation.splits"}


def _load_payload(path: Path):
    """``joblib.load(path)``, with a module of :data:`MOVED_MODULES` that the file names
    made importable under its old name while the file is read."""
    aliases: list[str] = []
    try:
        while True:
            try:
                return joblib.load(path)
            except ModuleNotFoundError as exc:
                if exc.name not in MOVED_MODULES or exc.name in sys.modules:
                    raise
                sys.modules[exc.name] = importlib.import_module(MOVED_MODULES[exc.name])
                aliases.append(exc.name)
    finally:
        for old in aliases:
            sys.modules.pop(old, None)


def load_model(path: str | os.PathLike) -> StagingModel:
    """Load a model written by :meth:`StagingModel.save`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        payload = _load_payload(path)
    except ModuleNotFoundError as exc:
        if is_torch_missing(exc):
            raise MissingExtraError(f"{path}: a deep model, which needs PyTorch: "
                                    f"{DEEP_EXTRA}") from None
        raise ValueError(f"{path}: not a hypnoscope model file ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a model"
        raise ValueError(f"{path}: not a hypnoscope model file ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a hypnoscope model file")
    if payload.get("format_version", 0) > MODEL_FORMAT_VERSION:
        raise ValueError(f"{path}: written by a newer hypnoscope (format "
                         f"{payload['format_version']} > {MODEL_FORMAT_VERSION})")
    return payload["model"]
