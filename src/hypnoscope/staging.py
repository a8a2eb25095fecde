"""Stage a whole night: recording in, :class:`~hypnoscope.hypnogram.Hypnogram` out.

:func:`stage` reads a PSG (path or :class:`mne.io.BaseRaw`), computes the input of the
chosen model and returns a hypnogram with per-epoch stages, probabilities and confidence.

Shipped models live in ``hypnoscope/data/models/<name>.joblib``, each with a model card
``<name>.json`` (training data, subject-wise cross-validated accuracy, expected channels,
limits); :func:`shipped_models` lists them. ``default`` is a band-power model trained on
the real Sleep-EDF band-power set (see :mod:`hypnoscope.bandpower`).

Normalisation window
--------------------
The real band-power set z-scores each recording over the night cropped to 30 min of wake
around the sleep period. Without a hypnogram that period is unknown, so band-power models
stage twice (``normalize="sleep-period"``, the default): first with statistics over the
whole recording, then with statistics over the sleep period (+-30 min) that the first
pass found, on the epochs of that period only (as the training nights were cropped before
any per-night statistic); epochs outside it keep the first pass. The spectra are computed
once (see :class:`hypnoscope.bandpower.BandPowerNight`), so the second pass costs one
more model prediction.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .hypnogram import Hypnogram

#: Model used when none is named.
DEFAULT_MODEL = "default"
MODEL_SUFFIX = ".joblib"


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
    """Path of a model given as a shipped name (``default``) or a file path."""
    path = Path(model)
    if path.suffix and path.is_file():
        return path
    name = str(model)
    shipped = models_dir() / f"{name}{MODEL_SUFFIX}"
    if shipped.is_file():
        return shipped
    if path.exists():
        return path
    names = ", ".join(shipped_models()) or "none"
    raise ValueError(f"unknown model {name!r}: not a shipped model (available: {names}) and "
                     "not a model file")


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float):
    from .models.base import load_model

    return load_model(path)


def load_staging_model(model: Any = DEFAULT_MODEL):
    """Return ``(model, card)`` for a shipped name, a file path or a model object."""
    if hasattr(model, "predict_proba"):
        meta = dict(getattr(model, "metadata", {}) or {})
        return model, {"name": getattr(model, "name", "model"), **meta.get("card", {})}
    path = resolve_model_path(model)
    obj = _load_cached(str(path.resolve()), path.stat().st_mtime)
    card = read_model_card(path)
    card.setdefault("path", str(path))
    return obj, card


def model_input(model, card: dict[str, Any]) -> str:
    """``"bandpower"`` or ``"signals"``: what the model consumes."""
    meta = getattr(model, "metadata", {}) or {}
    rep = card.get("input", {}).get("representation") or meta.get("input", {}).get(
        "representation")
    if rep:
        return str(rep)
    # feature models record what they were fitted on in ``input_kind_``
    kind = getattr(model, "input_kind_", None) or getattr(model, "input_kind", "features")
    return "signals" if kind == "signals" else "bandpower"


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
            import lightgbm as lgb

            self._booster = lgb.Booster(model_str=self.model_str)
        p = np.asarray(self._booster.predict(np.asarray(X, dtype=np.float64)))
        if p.ndim == 1:  # binary objective: probability of the positive class
            p = np.column_stack([1.0 - p, p])
        return p

    def predict(self, X) -> np.ndarray:
        """Most probable class."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


#: Top-level modules a shipped model file may refer to.
SHIPPABLE_MODULES = ("hypnoscope", "numpy", "joblib", "builtins", "copyreg", "collections",
                     "datetime", "_codecs", "pathlib")


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


def make_portable(model):
    """Replace a fitted LightGBM estimator inside ``model`` by :class:`PortableLightGBM`
    (in place; other models are returned unchanged)."""
    est = getattr(model, "estimator_", None)
    if est is not None and type(est).__module__.startswith("lightgbm"):
        model.estimator_ = PortableLightGBM.from_estimator(est)
    return model


@dataclass
class StagingResult:
    """A staged recording: the hypnogram plus what was done to get it."""

    hypnogram: Hypnogram
    info: dict[str, Any] = field(default_factory=dict)


def _check_proba(proba: np.ndarray, n_epochs: int, n_classes: int, name: str) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (n_epochs, n_classes):
        raise RuntimeError(f"model {name!r} returned probabilities of shape {proba.shape}, "
                           f"expected ({n_epochs}, {n_classes})")
    proba = np.clip(np.nan_to_num(proba, nan=0.0), 0.0, None)
    s = proba.sum(axis=1, keepdims=True)
    bad = s[:, 0] <= 0
    proba[bad] = 1.0 / n_classes
    s[bad] = 1.0
    return proba / s


def _predict_bandpower(model, card, recording, eeg, eog, normalize: str,
                       timings: dict[str, float]) -> tuple[np.ndarray, dict[str, Any]]:
    from . import bandpower
    from .datasets import Night

    trained = ((getattr(model, "metadata", {}) or {}).get("training_data") or {})
    shape = trained.get("epoch_shape")
    if shape is not None and list(shape) != [len(bandpower.CHANNEL_LAYOUT),
                                             len(bandpower.FEATURE_NAMES)]:
        raise ValueError(
            f"model {card.get('name', 'model')!r} was trained on precomputed per-epoch "
            f"features of shape {list(shape)}; staging a recording can compute only the "
            f"band-power features of the shipped models ({len(bandpower.CHANNEL_LAYOUT)} "
            f"channels x {len(bandpower.FEATURE_NAMES)}). Train with 'hypnoscope train "
            "--data DIR' to get a model that stages raw recordings.")
    t = time.perf_counter()
    night = bandpower.extract_bandpower_from(recording, eeg=eeg, eog=eog)
    timings["features_sec"] = time.perf_counter() - t
    n = night.n_epochs
    name = card.get("name", "model")

    def predict(window: slice) -> np.ndarray:
        # features of the epochs in ``window`` only, z-scored over that window: the
        # training nights were cropped the same way before any per-night statistic
        feats = night.features(window)[window]
        m = len(feats)
        nt = Night(X=feats, y=np.full(m, -100), subject_id="subject", night_id="night",
                   kind="features", channels=list(bandpower.CHANNEL_LAYOUT),
                   roles=list(bandpower.CHANNEL_ROLES),
                   onsets_sec=night.onsets_sec[window])
        return _check_proba(model.predict_proba(nt), m, model.n_classes, name)

    if normalize not in ("sleep-period", "recording"):
        raise ValueError(f"normalize must be 'sleep-period' or 'recording', got {normalize!r}")
    t = time.perf_counter()
    window = slice(0, n)
    proba = predict(window)
    if normalize == "sleep-period":
        crop = bandpower.crop_window(proba.argmax(axis=1), n)
        if crop is not None and (crop.start, crop.stop) != (0, n):
            # epochs outside the detected sleep period (+-30 min) keep the first pass
            window = crop
            proba[crop] = predict(crop)
    timings["predict_sec"] = time.perf_counter() - t
    info = {"channels": dict(zip(night.ch_names, night.roles, strict=True)),
            "normalization_window_epochs": [window.start, window.stop],
            "ica": night.meta.get("ica"), "start_time": night.meta.get("start_time"),
            "source": night.meta.get("source")}
    if night.meta.get("reader_warnings"):  # units, flat channels, NaNs: shown in the report
        info["warnings"] = night.meta["reader_warnings"]
    return proba, info


def _predict_signals(model, card, recording, eeg, eog, emg,
                     timings: dict[str, float]) -> tuple[np.ndarray, dict[str, Any]]:
    """Stage with a model trained on signal nights (``hypnoscope train --data``): the
    recording goes through the same reader and continuous preprocessing as the training
    nights (:func:`hypnoscope.recordings.load_recording`, no crop), then the channels are
    matched to the training roles."""
    from .recordings import load_recording

    t = time.perf_counter()
    trained = (getattr(model, "metadata", {}) or {}).get("training_data", {}) or {}
    night = load_recording(recording, None, eeg=eeg, eog=eog, emg=emg,
                           sfreq=float(trained.get("sfreq") or 100.0), crop_wake_min=None,
                           preprocessing=trained.get("preprocessing") or "default",
                           cache=False)
    roles = list(night.roles)
    want = card.get("input", {}).get("roles") or trained.get("roles")
    idx = list(range(len(roles)))
    if want:
        idx, used = [], set()
        for role in want:
            cand = [i for i, r in enumerate(roles)
                    if i not in used and (r == role or r.startswith(role))]
            if not cand:
                raise ValueError(
                    f"{night.meta.get('source', 'recording')}: model {card.get('name')!r} "
                    f"needs channels with roles {list(want)}; channels found: "
                    f"{dict(zip(night.channels, roles, strict=True))}")
            idx.append(cand[0])
            used.add(cand[0])
    if idx != list(range(len(roles))):  # keep only the channels the model was trained on
        night = dataclasses.replace(night, X=night.X[:, idx],
                                    channels=[night.channels[i] for i in idx],
                                    roles=[roles[i] for i in idx])
    timings["features_sec"] = time.perf_counter() - t
    n = night.n_epochs
    t = time.perf_counter()
    proba = _check_proba(model.predict_proba(night), n, model.n_classes,
                         card.get("name", "model"))
    timings["predict_sec"] = time.perf_counter() - t
    start = night.meta.get("start_time")
    if isinstance(start, str):
        import datetime as _dt

        start = _dt.datetime.fromisoformat(start)
    info = {"channels": dict(zip(night.channels, night.roles, strict=True)),
            "start_time": start,
            "source": night.meta.get("source")}
    warns = (night.meta.get("reader") or {}).get("warnings")
    if warns:  # units, flat channels, NaNs: shown in the report
        info["warnings"] = list(warns)
    return proba, info


def stage_recording(recording, model: Any = DEFAULT_MODEL, eeg=None, eog=None, emg=None,
                    normalize: str = "sleep-period") -> StagingResult:
    """Stage one recording; like :func:`stage` but also returns what was done.

    Returns
    -------
    StagingResult
        ``hypnogram`` and ``info`` (model card summary, channels used, normalisation
        window, ICA report, timings).
    """
    t0 = time.perf_counter()
    mdl, card = load_staging_model(model)
    timings: dict[str, float] = {}
    kind = model_input(mdl, card)
    if kind == "bandpower":
        proba, info = _predict_bandpower(mdl, card, recording, eeg, eog, normalize, timings)
    elif kind == "signals":
        proba, info = _predict_signals(mdl, card, recording, eeg, eog, emg, timings)
    else:
        raise ValueError(f"model {card.get('name')!r} has an unknown input {kind!r}")
    hyp = Hypnogram(proba.argmax(axis=1), epoch_sec=30.0, onset_sec=0.0,
                    start_time=info.pop("start_time", None), probabilities=proba,
                    n_classes=mdl.n_classes)
    timings["total_sec"] = time.perf_counter() - t0
    info.update({
        "model": {k: card.get(k) for k in ("name", "summary", "trained_on", "path")
                  if card.get(k) is not None},
        "input": kind, "n_epochs": hyp.n_epochs, "timings": timings,
    })
    return StagingResult(hyp, info)


def stage(recording, model: Any = DEFAULT_MODEL, eeg=None, eog=None, emg=None) -> Hypnogram:
    """Stage a PSG recording.

    Parameters
    ----------
    recording : str, path or mne.io.BaseRaw
        EDF/EDF+/BDF file or a Raw object (channels recognised by name, see
        :func:`hypnoscope.io.read_psg`).
    model : str, path or StagingModel, default "default"
        A shipped model name (:func:`shipped_models`), a model file or a model object.
    eeg, eog, emg : str, list of str or None
        Channel overrides. The default model uses two EEG channels (Fpz-Cz, Pz-Oz or the
        nearest) and one EOG channel; it ignores EMG.

    Returns
    -------
    Hypnogram
        5-class stages per 30-s epoch from the recording start, with ``probabilities``
        (rows sum to 1) and ``confidence``.

    Raises
    ------
    ValueError
        If the model needs a channel the recording lacks (the message lists the channels
        found), or the file cannot be read.

    Examples
    --------
    >>> hyp = stage("SC4001E0-PSG.edf")  # doctest: +SKIP
    >>> hyp.sleep_statistics()["total_sleep_min"]  # doctest: +SKIP
    """
    return stage_recording(recording, model=model, eeg=eeg, eog=eog, emg=emg).hypnogram
