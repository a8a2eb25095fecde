"""Model files: shipped models, model cards and the portable form of fitted estimators.

Shipped models live in ``hypnoscope/data/models/<name>.joblib``, each with a model card
``<name>.json`` (training data, subject-wise cross-validated accuracy, expected channels,
limits); :func:`shipped_models` lists them and :func:`load_staging_model` loads a shipped
name, a model file or a model object (files cached by path and modification time).

A shipped pickle may refer only to :data:`SHIPPABLE_MODULES`
(:func:`model_file_modules` checks it): :func:`make_portable` replaces a fitted LightGBM
estimator by :class:`PortableLightGBM`, LightGBM's own text model, so that no
scikit-learn or LightGBM wrapper state (whose layout changes between releases) is
pickled.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

#: The shipped model of the full channel setup (two EEG + EOG).
DEFAULT_MODEL = "default"
#: Model name meaning "the richest shipped model the recording's channels allow"
#: (:func:`hypnoscope.staging.pipeline.choose_model`); the default of staging.
AUTO_MODEL = "auto"
MODEL_SUFFIX = ".joblib"

#: Readers of model files by suffix (lower case), ``loader(path) -> model``: a module that
#: defines a file format registers its reader (:func:`register_model_loader`;
#: :mod:`hypnoscope.models.onnx_model` registers ``.onnx``, and ``hypnoscope.models``
#: imports it). Any other file is a joblib model file (:func:`~hypnoscope.models.base.
#: load_model`).
MODEL_LOADERS: dict[str, Callable[[str], Any]] = {}

#: Top-level modules a shipped model file may refer to.
SHIPPABLE_MODULES = ("hypnoscope", "numpy", "joblib", "builtins", "copyreg", "collections",
                     "datetime", "_codecs", "pathlib")


# ------------------------------------------------------------------ shipped models
def models_dir() -> Path:
    """Folder of the shipped models inside the installed package."""
    return Path(str(resources.files("hypnoscope") / "data" / "models"))


def shipped_models() -> dict[str, dict[str, Any]]:
    """``{name: model card}`` of every model shipped with the package."""
    out: dict[str, dict[str, Any]] = {}
    folder = models_dir()
    if not folder.is_dir():
        return out
    for f in sorted(folder.glob(f"*{MODEL_SUFFIX}")):
        out[f.stem] = read_model_card(f)
    return out


def read_model_card(model_path: str | os.PathLike) -> dict[str, Any]:
    """The model card (JSON beside the model file), or a minimal card if there is none."""
    model_path = Path(model_path)
    card_path = model_path.with_suffix(".json")
    if card_path.is_file():
        return json.loads(card_path.read_text(encoding="utf-8"))
    return {"name": model_path.stem, "summary": "no model card", "path": str(model_path)}


def resolve_model_path(model: str | os.PathLike) -> Path:
    """Path of a model given as a shipped name (``default``) or a file path.

    Raises
    ------
    ValueError
        If ``model`` is neither a shipped name nor an existing file (the message lists
        the shipped models).
    """
    path = Path(model)
    if path.suffix and path.is_file():
        return path
    name = str(model)
    shipped = models_dir() / f"{name}{MODEL_SUFFIX}"
    if shipped.is_file():
        return shipped
    if path.exists():
        return path
    from hypnoscope.models.plugins import stager_names

    names = ", ".join(shipped_models()) or "none"
    raise ValueError(f"unknown model {name!r}: not a shipped model (available: {names}), "
                     f"not a stager ({', '.join(stager_names())}) and not a model file")


def register_model_loader(suffix: str, loader: Callable[[str], Any]) -> None:
    """Read model files ending in ``suffix`` (e.g. ``".onnx"``) with ``loader(path)``."""
    MODEL_LOADERS[suffix.lower()] = loader


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float):
    loader = MODEL_LOADERS.get(Path(path).suffix.lower())
    if loader is not None:
        return loader(path)
    from hypnoscope.models.base import load_model

    return load_model(path)


def load_staging_model(model: Any = DEFAULT_MODEL):
    """Return ``(model, card)`` for a shipped name, a file path (``.joblib``, or a suffix
    of :data:`MODEL_LOADERS` such as ``.onnx``, staged with onnxruntime), a stager name
    (``yasa``, ``consensus``, a plug-in: :mod:`hypnoscope.models.plugins`) or a model
    object."""
    if hasattr(model, "predict_proba"):
        meta = dict(getattr(model, "metadata", {}) or {})
        if getattr(model, "input_kind", None) == "recording":  # a stager object
            from hypnoscope.models.plugins import stager_card

            return model, stager_card(model)
        return model, {"name": getattr(model, "name", "model"), **meta.get("card", {})}
    if (isinstance(model, str) and not (models_dir() / f"{model}{MODEL_SUFFIX}").is_file()
            and not Path(model).is_file()):
        from hypnoscope.models.plugins import is_stager_name, load_stager, stager_card

        if is_stager_name(model):
            stager = load_stager(model)
            return stager, stager_card(stager)
    path = resolve_model_path(model)
    obj = _load_cached(str(path.resolve()), path.stat().st_mtime)
    card = read_model_card(path)
    if card.get("summary") == "no model card" and getattr(obj, "card", None):
        card = {**obj.card, "path": str(path)}  # an .onnx file carries its card
    card.setdefault("path", str(path))
    return obj, card


# ------------------------------------------------------------------ portable pickles
@functools.lru_cache(maxsize=1)
def _lightgbm_library():
    """LightGBM's compiled library (``lib_lightgbm``), found where the ``lightgbm`` package
    keeps it, without importing the package (whose import pulls in scikit-learn, SciPy's
    statistics and pandas: a visible share of the staging time; docs/design.md, design notes);
    None if absent. Looked up once per process (a vote has six boosters)."""
    import ctypes
    import importlib.util
    import sys

    spec = importlib.util.find_spec("lightgbm")
    if spec is None or spec.origin is None:
        return None
    pkg = Path(spec.origin).parent
    name = {"win32": "lib_lightgbm.dll", "darwin": "lib_lightgbm.dylib"}.get(
        sys.platform, "lib_lightgbm.so")
    for path in (pkg / "lib" / name, pkg / "bin" / name, pkg.parent / name):
        if path.is_file():
            try:
                return ctypes.cdll.LoadLibrary(str(path))
            except OSError:  # pragma: no cover - a broken installation
                return None
    return None  # pragma: no cover


class _NativeBooster:
    """A LightGBM text model behind LightGBM's C API: the calls ``lightgbm.Booster``
    makes for ``Booster(model_str=...).predict(X)`` (float64 row-major input, normal
    prediction, every iteration), hence the same numbers, without the Python package."""

    def __init__(self, lib, model_str: str) -> None:
        import ctypes

        self._lib, self._ct = lib, ctypes
        self._handle = ctypes.c_void_p()
        n_iter = ctypes.c_int(0)
        self._check(lib.LGBM_BoosterLoadModelFromString(
            ctypes.c_char_p(model_str.encode("utf-8")), ctypes.byref(n_iter),
            ctypes.byref(self._handle)))
        n_classes = ctypes.c_int(0)
        self._check(lib.LGBM_BoosterGetNumClasses(self._handle, ctypes.byref(n_classes)))
        self.n_classes = n_classes.value

    def _check(self, ret: int) -> None:
        if ret != 0:
            self._lib.LGBM_GetLastError.restype = self._ct.c_char_p
            raise RuntimeError(f"LightGBM: {self._lib.LGBM_GetLastError().decode()}")

    def predict(self, X: np.ndarray, num_threads: int | None = None) -> np.ndarray:
        ct = self._ct
        X = np.ascontiguousarray(X, dtype=np.float64)
        n, k = X.shape
        out = np.empty(n * self.n_classes, dtype=np.float64)
        out_len = ct.c_int64(0)
        param = f"num_threads={num_threads}" if num_threads else ""
        self._check(self._lib.LGBM_BoosterPredictForMat(
            self._handle, X.ctypes.data_as(ct.c_void_p), ct.c_int(1),  # C_API_DTYPE_FLOAT64
            ct.c_int32(n), ct.c_int32(k), ct.c_int(1),  # row-major
            ct.c_int(0), ct.c_int(0), ct.c_int(-1),  # normal prediction, all iterations
            ct.c_char_p(param.encode()), ct.byref(out_len),
            out.ctypes.data_as(ct.POINTER(ct.c_double))))
        if out_len.value != out.size:  # pragma: no cover - a LightGBM API change
            raise RuntimeError(f"LightGBM returned {out_len.value} values, expected {out.size}")
        return out if self.n_classes == 1 else out.reshape(n, self.n_classes)

    def __del__(self) -> None:
        if getattr(self, "_handle", None) and self._handle.value:
            self._lib.LGBM_BoosterFree(self._handle)


class PortableLightGBM:
    """A fitted LightGBM classifier stored as LightGBM's text model (version-robust).

    Shipped models keep their LightGBM estimator in this form so that the pickle holds
    only this class, the model text and NumPy arrays: no scikit-learn or LightGBM
    wrapper state whose layout changes between releases. Predictions are those of the
    original :class:`lightgbm.LGBMClassifier`.

    Parameters
    ----------
    model_str : str
        ``booster_.model_to_string()`` of the fitted classifier.
    classes : array-like
        ``classes_`` of the fitted classifier (column order of :meth:`predict_proba`).
    """

    def __init__(self, model_str: str, classes) -> None:
        self.model_str = model_str
        self.classes_ = np.asarray(classes)
        self._booster = None

    @classmethod
    def from_estimator(cls, est) -> PortableLightGBM:
        """Convert a fitted :class:`lightgbm.LGBMClassifier`."""
        return cls(est.booster_.model_to_string(), est.classes_)

    def __getstate__(self) -> dict[str, Any]:
        return {"model_str": self.model_str, "classes_": self.classes_}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.model_str = state["model_str"]
        self.classes_ = np.asarray(state["classes_"])
        self._booster = None

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` in :attr:`classes_` order."""
        if self._booster is None:
            lib = _lightgbm_library()
            if lib is not None:
                self._booster = _NativeBooster(lib, self.model_str)
            else:  # pragma: no cover - no compiled library next to the package
                import lightgbm as lgb

                self._booster = lgb.Booster(model_str=self.model_str)
        X = np.asarray(X, dtype=np.float64)
        # a few rows (live staging: one epoch) on one thread: starting LightGBM's OpenMP
        # threads costs more than the trees for a few rows (docs/design.md, design notes)
        kw = {"num_threads": 1} if len(X) <= 16 else {}
        p = np.asarray(self._booster.predict(X, **kw))
        if p.ndim == 1:  # binary objective: probability of the positive class
            p = np.column_stack([1.0 - p, p])
        return p

    def predict(self, X) -> np.ndarray:
        """Most probable class."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def make_portable(model):
    """Replace a fitted LightGBM estimator inside ``model`` by :class:`PortableLightGBM`
    (in place; other models are returned unchanged)."""
    est = getattr(model, "estimator_", None)
    if est is not None and type(est).__module__.startswith("lightgbm"):
        model.estimator_ = PortableLightGBM.from_estimator(est)
    for fitted in getattr(model, "models", None) or []:  # a vote: models of each member
        for member in fitted:
            make_portable(member)
    for member in getattr(model, "members_", ()):  # a length-gated model
        make_portable(member)
    return model


def model_file_modules(path: str | os.PathLike) -> set[str]:
    """Modules whose classes or functions the pickle in a model file refers to.

    A shipped model must need only :data:`SHIPPABLE_MODULES` (no scikit-learn or
    LightGBM wrapper classes, no test modules), so that it loads with any supported
    version of its dependencies.
    """
    import joblib
    from joblib import numpy_pickle

    seen: set[str] = set()
    orig = numpy_pickle.NumpyUnpickler.find_class

    def find_class(self, module, name):
        seen.add(module)
        return orig(self, module, name)

    numpy_pickle.NumpyUnpickler.find_class = find_class
    try:
        joblib.load(path)
    finally:
        numpy_pickle.NumpyUnpickler.find_class = orig
    return seen
