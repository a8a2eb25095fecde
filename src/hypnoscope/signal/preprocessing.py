"""The continuous preprocessing of a recording, described by a config and run by
:class:`Pipeline`.

A config (:func:`resolve_config`; a dict or a preset of :data:`PRESETS`) names the
steps, applied in this order: mains ``notch`` (:func:`hypnoscope.signal.filters.notch`,
off by default), ``bandpass`` per channel role
(:func:`hypnoscope.signal.filters.bandpass_by_role`, the ``"default"`` band table of
:data:`hypnoscope.signal.filters.ROLE_BANDS`; an EMG envelope is never band-passed),
``lowpass`` (the MSMAE-CNN Kaiser low-pass, :func:`hypnoscope.signal.filters.
kaiser_lowpass`) and ``normalize`` (per-channel z-score or robust scaling over the whole
recording, :func:`hypnoscope.signal.normalize.normalize`). :func:`preprocess` applies a
config to a :class:`hypnoscope.io.psg.PSGRecording`; :func:`config_hash` keys caches on
that config.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hypnoscope.signal.filters import (
    BANDPASS_DEFAULTS,
    ROLE_BANDS,
    bandpass_by_role,
    kaiser_highpass,
    kaiser_lowpass,
    notch,
)
from hypnoscope.signal.normalize import normalize
from hypnoscope.utils.arrays import as_float

if TYPE_CHECKING:  # pragma: no cover
    from hypnoscope.io.psg import PSGRecording

#: Bump when a step's numerical behaviour changes, so cached results are recomputed.
PREPROCESSING_VERSION = 1


#: Default continuous preprocessing: per-modality band-pass, then per-channel z-score.
DEFAULT_CONFIG: dict[str, Any] = {
    "notch": None,
    "bandpass": "default",
    "lowpass": None,
    "normalize": "zscore",
}

#: Named configurations.
PRESETS: dict[str, dict[str, Any]] = {
    "default": DEFAULT_CONFIG,
    "none": {"notch": None, "bandpass": None, "lowpass": None, "normalize": None},
    # MSMAE-CNN: Kaiser-window FIR low-pass, 10 Hz, 60 dB, 100 Hz ("remove high-frequency
    # noise"), then a 0.5-Hz Kaiser high-pass ("and baseline wandering"; cut-off ours)
    "msmae-cnn": {"notch": None, "bandpass": None,
                  "lowpass": {"cutoff": 10.0, "attenuation_db": 60.0, "highpass": 0.5},
                  "normalize": None},
    # MC²SleepNet: its paper states no filter, so none (the default band-pass would empty
    # the spectrogram above 35 Hz); per-channel z-score only (the network standardises its
    # views per night anyway)
    "mc2sleepnet": {"notch": None, "bandpass": None, "lowpass": None, "normalize": "zscore"},
    # settings of the real band-power feature set in ../shared/data (without ICA)
    "bandpower": {"notch": None,
                  "bandpass": {k: list(v) for k, v in ROLE_BANDS["bandpower"].items()},
                  "lowpass": None, "normalize": "zscore"},
}

_STEP_ORDER = ("notch", "bandpass", "lowpass", "normalize")


def resolve_config(config: dict[str, Any] | str | None = None) -> dict[str, Any]:
    """Complete a config (a dict, a preset name or None = default) with defaults.

    Keys (applied in this order): ``notch`` (None, a frequency or a list),
    ``bandpass`` (None, ``"default"`` = :data:`BANDPASS_DEFAULTS`, or ``{role: [lo, hi]
    | None}`` merged over the defaults), ``lowpass`` (None or :func:`kaiser_lowpass`
    keyword arguments, plus ``highpass``: the cut-off in Hz of a :func:`kaiser_highpass`
    with the same attenuation applied after it, removing baseline wander; absent or None
    = no high-pass), ``normalize`` (None, ``"zscore"`` or ``"robust"``). A key
    ``steps`` with a list of step names sets a different order.
    """
    if config is None:
        config = "default"
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"unknown preprocessing preset {config!r}; "
                             f"choose from {sorted(PRESETS)}")
        config = PRESETS[config]
    unknown = set(config) - set(_STEP_ORDER) - {"steps"}
    if unknown:
        raise ValueError(f"unknown preprocessing option(s) {sorted(unknown)}; "
                         f"expected {list(_STEP_ORDER)} or 'steps'")
    out = {k: config.get(k, DEFAULT_CONFIG[k]) for k in _STEP_ORDER}
    bp = out["bandpass"]
    if bp == "default":
        out["bandpass"] = {k: (list(v) if v else None) for k, v in BANDPASS_DEFAULTS.items()}
    elif isinstance(bp, dict):
        merged = {k: (list(v) if v else None) for k, v in BANDPASS_DEFAULTS.items()}
        merged.update({k: (list(v) if v else None) for k, v in bp.items()})
        out["bandpass"] = merged
    elif bp is not None:
        raise ValueError(f"bandpass must be None, 'default' or a dict role -> [lo, hi], "
                         f"got {bp!r}")
    if out["lowpass"] is True:
        out["lowpass"] = {}
    if isinstance(out["lowpass"], dict):
        lp = {"cutoff": 10.0, "attenuation_db": 60.0, "transition_hz": None}
        lp.update(out["lowpass"])
        out["lowpass"] = lp
    if out["normalize"] not in (None, "zscore", "robust"):
        raise ValueError(f"normalize must be None, 'zscore' or 'robust', got "
                         f"{out['normalize']!r}")
    steps = list(config.get("steps", _STEP_ORDER))
    bad = [s for s in steps if s not in _STEP_ORDER]
    if bad:
        raise ValueError(f"unknown preprocessing step(s) {bad}; expected {list(_STEP_ORDER)}")
    out["steps"] = steps
    return out


def config_hash(config: dict[str, Any] | str | None, extra: dict[str, Any] | None = None,
                length: int = 16) -> str:
    """Stable hex digest of a (resolved) preprocessing config, for cache keys.

    ``extra`` adds other settings that shape the output (sampling rate, channels,
    crop...). The digest includes :data:`PREPROCESSING_VERSION`.
    """
    payload = {"version": PREPROCESSING_VERSION, "config": resolve_config(config),
               "extra": extra or {}}
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


class Pipeline:
    """Continuous preprocessing steps built from a config (see :func:`resolve_config`).

    Calling the pipeline on a :class:`~hypnoscope.io.psg.PSGRecording` returns a filtered
    copy whose ``meta["preprocessing"]`` records the config and its hash; calling
    :meth:`apply` works on a bare array with channel roles.
    """

    def __init__(self, config: dict[str, Any] | str | None = None) -> None:
        self.config = resolve_config(config)
        self.hash = config_hash(self.config)

    @property
    def steps(self) -> list[tuple[str, Callable[[np.ndarray, float, Sequence[str]], np.ndarray]]]:
        """Active steps as ``(name, function(data, sfreq, roles))``."""
        cfg = self.config
        makers = {
            "notch": lambda: None if cfg["notch"] is None else (
                lambda d, fs, roles: notch(d, fs, cfg["notch"])),
            "bandpass": lambda: None if cfg["bandpass"] is None else (
                lambda d, fs, roles: bandpass_by_role(d, fs, roles, cfg["bandpass"])),
            "lowpass": lambda: None if cfg["lowpass"] is None else (
                lambda d, fs, roles: _lowpass_waveforms(d, fs, roles, cfg["lowpass"])),
            "normalize": lambda: None if cfg["normalize"] is None else (
                lambda d, fs, roles: normalize(d, cfg["normalize"])),
        }
        out = []
        for name in cfg["steps"]:
            fn = makers[name]()
            if fn is not None:
                out.append((name, fn))
        return out

    def apply(self, data: np.ndarray, sfreq: float, roles: Sequence[str]) -> np.ndarray:
        """Run the steps on ``(n_channels, n_samples)`` data."""
        out = np.asarray(data)
        for _, fn in self.steps:
            out = fn(out, sfreq, roles)
        return out

    def __call__(self, recording: PSGRecording) -> PSGRecording:
        data = self.apply(recording.data, recording.sfreq, recording.roles)
        meta = dict(recording.meta)
        meta["preprocessing"] = {"config": self.config, "hash": self.hash,
                                 "version": PREPROCESSING_VERSION}
        return recording.copy(data=data.astype(np.float32), meta=meta)

    def __repr__(self) -> str:
        return f"<Pipeline {[n for n, _ in self.steps]} hash={self.hash}>"


def _lowpass_waveforms(data: np.ndarray, sfreq: float, roles: Sequence[str],
                       params: dict[str, Any]) -> np.ndarray:
    params = dict(params)
    highpass = params.pop("highpass", None)
    out = as_float(np.asarray(data)).copy()
    idx = [i for i, r in enumerate(roles) if r != "emg_envelope"]
    if idx:
        out[idx] = kaiser_lowpass(out[idx], sfreq, **params)
        if highpass:
            out[idx] = kaiser_highpass(out[idx], sfreq, cutoff=float(highpass),
                                       attenuation_db=params.get("attenuation_db", 60.0))
    return out


def preprocess(recording: PSGRecording, config: dict[str, Any] | str | None = None,
               ) -> PSGRecording:
    """Apply the continuous steps of ``config`` (see :func:`resolve_config`) to a
    recording; returns a new :class:`~hypnoscope.io.psg.PSGRecording`."""
    return Pipeline(config)(recording)
