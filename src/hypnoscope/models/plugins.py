"""Stagers: models that stage a whole recording from its signals, built in or plugged in.

A *stager* receives the recording as hypnoscope resolved and checked it -- the channels
of its roles, in µV, after the unit and quality checks (epochs with unusable signal
bridged) and the crop -- and returns the probability of every stage for every 30-s epoch.
``hypnoscope stage --model NAME`` (Python: ``stage(..., model=NAME)``) stages with one;
the staging layer reads it as the input kind ``"recording"``
(:data:`hypnoscope.staging.model_input.RECORDING`).

Built in: ``yasa`` (:class:`hypnoscope.models.yasa_stager.YasaStager`, the extra
``peers``) and ``consensus`` (:class:`hypnoscope.models.consensus.ConsensusStager`).

Plug-ins
--------
Any installed package adds a stager through the entry-point group
:data:`STAGER_GROUP` (``hypnoscope.stagers``); the entry point's name is the model name.
In the package's ``pyproject.toml``::

    [project.entry-points."hypnoscope.stagers"]
    my-stager = "my_package.staging:MyStager"

The object named is a stager, a class or a factory called without arguments that returns
one. The protocol (:class:`Stager` implements the defaults):

``name`` : str
    The stager's name (the entry point's name is used where it differs).
``channels`` : dict
    ``role -> (min, max)`` channels it reads, roles ``"eeg"``, ``"eog"``, ``"emg"``
    (an EMG waveform; a low-rate EMG envelope has role ``"emg_envelope"``), e.g.
    ``{"eeg": (1, 1), "eog": (0, 1)}``.
``predict_proba(recording)`` -> ndarray ``(n_epochs, n_classes)``
    ``recording`` is a :class:`hypnoscope.io.psg.PSGRecording` holding the channels
    picked (``ch_names``, ``roles``, ``data`` in µV at ``sfreq``, ``start_time``); rows are
    its 30-s epochs from its start, columns the stages of :mod:`hypnoscope.stages`
    (``W, N1, N2, N3, R``).
Optional: ``n_classes`` (5, or 3 for ``W, NREM, R``), ``card`` (a dict shown as the
model in the report: ``summary``, ``version``, ``license`` ...), ``pick(recording)`` (the
indices of the channels to read, default :func:`pick_channels`), ``check(recording)``
(raise ``ValueError`` with the reason when the stager cannot read the recording, e.g. its
rate), ``min_sfreq`` (the lowest rate it reads) and ``sfreq`` (the rate it wants the
recording read at; None, the default, keeps the file's rate).

Names: a shipped model name comes first, then the built-in stagers, then plug-ins; a
plug-in that takes a name already used is not listed.
"""

from __future__ import annotations

import importlib
import inspect
from importlib import metadata
from typing import Any

import numpy as np

#: The entry-point group through which installed packages add stagers.
STAGER_GROUP = "hypnoscope.stagers"
#: Input kind of a stager (as :data:`hypnoscope.staging.model_input.RECORDING`).
RECORDING_INPUT = "recording"
#: Built-in stagers: name -> factory ``"module:callable"``.
BUILTIN_STAGERS: dict[str, str] = {
    "yasa": "hypnoscope.models.yasa_stager:YasaStager",
    "consensus": "hypnoscope.models.consensus:ConsensusStager",
}
#: One line on each built-in stager (``hypnoscope models``).
BUILTIN_DESCRIPTIONS: dict[str, str] = {
    "yasa": ("YASA's pretrained sleep stager (one central EEG, EOG and chin EMG when "
             "present; BSD-3-Clause; the extra peers: pip install 'hypnoscope[peers]')"),
    "consensus": ("soft vote of the stagers that can read the recording: the shipped model "
                  "chosen for its channels, yasa, plug-ins; equal weights, or "
                  "consensus:NAME=W,..."),
}
#: Separator of a consensus specification's members, ``consensus:auto=1,yasa=2``.
SPEC_SEP = ":"
#: Roles a stager may ask for.
STAGER_ROLES = ("eeg", "eog", "emg", "emg_envelope")


class Stager:
    """Base class of a stager (optional: any object following the protocol of this module
    works). Subclasses set :attr:`name`, :attr:`channels` and implement
    :meth:`predict_proba`."""

    name: str = "stager"
    input_kind: str = RECORDING_INPUT
    n_classes: int = 5
    channels: dict[str, tuple[int, int]] = {"eeg": (1, 1)}
    min_sfreq: float = 0.0
    sfreq: float | None = None
    card: dict[str, Any] = {}

    def pick(self, recording) -> list[int]:
        """Indices of the channels to read (:func:`pick_channels`)."""
        return pick_channels(recording, self.channels, self.name)

    def check(self, recording) -> None:
        """Raise ``ValueError`` when the recording's rate is below :attr:`min_sfreq`."""
        if recording.sfreq < self.min_sfreq:
            raise ValueError(f"{recording.source}: stager {self.name!r} needs at least "
                             f"{self.min_sfreq:g} Hz; the recording is at "
                             f"{recording.sfreq:g} Hz")

    def predict_proba(self, recording) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def pick_channels(recording, channels: dict[str, tuple[int, int]],
                  name: str = "stager") -> list[int]:
    """Indices of the first channels of each role (at most ``max``), in the order of
    ``channels``; ``ValueError`` naming the file and the channels found when a role has
    fewer than ``min``."""
    idx: list[int] = []
    for role, (lo, hi) in channels.items():
        have = [i for i, r in enumerate(recording.roles) if r == role]
        if len(have) < lo:
            found = dict(zip(recording.ch_names, recording.roles, strict=True))
            raise ValueError(f"{recording.source}: stager {name!r} needs at least {lo} "
                             f"{role.upper()} channel(s); channels found: {found}")
        idx += have[:hi]
    return idx


def subset(recording, idx: list[int]):
    """The recording with the channels ``idx`` only (itself when that is all of them)."""
    if list(idx) == list(range(recording.n_channels)):
        return recording
    return recording.copy(data=recording.data[idx],
                          ch_names=[recording.ch_names[i] for i in idx],
                          roles=[recording.roles[i] for i in idx])


def plugin_entry_points() -> dict[str, metadata.EntryPoint]:
    """``{name: entry point}`` of the group :data:`STAGER_GROUP` (names taken by a
    built-in stager left out)."""
    eps = metadata.entry_points(group=STAGER_GROUP)
    return {ep.name: ep for ep in eps if ep.name not in BUILTIN_STAGERS}


def stager_names() -> list[str]:
    """The built-in stagers and the plug-ins installed."""
    return [*BUILTIN_STAGERS, *plugin_entry_points()]


def stager_descriptions() -> dict[str, str]:
    """``{name: one line}`` of the built-in stagers and the plug-ins (a plug-in: the
    object its entry point names and the distribution that installs it)."""
    out = dict(BUILTIN_DESCRIPTIONS)
    for name, ep in plugin_entry_points().items():
        dist = getattr(ep, "dist", None)
        out[name] = f"plug-in {ep.value}" + (f" ({dist.name} {dist.version})" if dist else "")
    return out


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"consensus:yasa=2"`` -> ``("consensus", "yasa=2")``; ``"yasa"`` -> ``("yasa",
    None)``."""
    name, sep, rest = spec.partition(SPEC_SEP)
    return name.strip(), (rest if sep else None)


def is_stager_name(model: Any) -> bool:
    """Whether ``model`` (a string) names a stager (``consensus:...`` included)."""
    if not isinstance(model, str):
        return False
    name, _ = split_spec(model)
    return name in BUILTIN_STAGERS or name in plugin_entry_points()


def _is_range(v: Any) -> bool:
    """Whether ``v`` is ``(min, max)``: two integers, ``0 <= min <= max``."""
    return (isinstance(v, tuple | list) and len(v) == 2
            and all(isinstance(x, int) for x in v) and 0 <= v[0] <= v[1])


def check_stager(obj: Any, where: str) -> Any:
    """``obj`` if it follows the stager protocol, else ``TypeError`` naming ``where``."""
    problems = []
    if not callable(getattr(obj, "predict_proba", None)):
        problems.append("no predict_proba(recording)")
    chans = getattr(obj, "channels", None)
    if not isinstance(chans, dict) or not chans or any(
            r not in STAGER_ROLES or not _is_range(v) for r, v in chans.items()):
        problems.append(f"channels must map roles {STAGER_ROLES} to (min, max), got "
                        f"{chans!r}")
    if getattr(obj, "n_classes", 5) not in (3, 5):
        problems.append(f"n_classes must be 3 or 5, got {obj.n_classes!r}")
    if problems:
        raise TypeError(f"{where} is not a hypnoscope stager: " + "; ".join(problems))
    return obj


def _instantiate(target: Any, **kwargs: Any) -> Any:
    """A stager from an object: itself, or what a class or factory returns."""
    if inspect.isclass(target) or (callable(target)
                                   and not hasattr(target, "predict_proba")):
        return target(**kwargs)
    return target


def load_stager(spec: str) -> Any:
    """The stager named ``spec``: ``yasa``, ``consensus`` (``consensus:NAME=W,...``
    gives the members and their weights), or a plug-in of :data:`STAGER_GROUP`.

    Raises
    ------
    ValueError
        If no stager has that name (the message lists them).
    MissingExtraError
        If the stager needs an optional dependency that is not installed.
    TypeError
        If a plug-in does not follow the protocol.
    """
    name, rest = split_spec(spec)
    if name in BUILTIN_STAGERS:
        module, attr = BUILTIN_STAGERS[name].split(":")
        factory = getattr(importlib.import_module(module), attr)
        obj = factory(spec=rest) if rest is not None else factory()
        return check_stager(obj, f"built-in stager {name!r}")
    eps = plugin_entry_points()
    if name not in eps:
        raise ValueError(f"unknown stager {name!r}; available: {', '.join(stager_names())}")
    if rest is not None:
        raise ValueError(f"stager {name!r} takes no options ({spec!r})")
    ep = eps[name]
    obj = _instantiate(ep.load())
    check_stager(obj, f"plug-in {name!r} ({ep.value}, entry point group {STAGER_GROUP})")
    for attr, value in (("name", name), ("n_classes", getattr(obj, "n_classes", 5)),
                        ("input_kind", RECORDING_INPUT)):
        if getattr(obj, attr, None) != value:
            try:  # the entry point's name; 5 classes by default; read as a stager
                setattr(obj, attr, value)
            except AttributeError as exc:
                raise TypeError(f"plug-in {name!r} ({ep.value}): cannot set its {attr} "
                                f"({exc})") from None
    return obj


def stager_card(stager: Any) -> dict[str, Any]:
    """The model card of a stager: its ``card`` with its ``name``."""
    return {"name": getattr(stager, "name", "stager"),
            **dict(getattr(stager, "card", None) or {})}


__all__ = ["BUILTIN_STAGERS", "RECORDING_INPUT", "STAGER_GROUP", "Stager", "check_stager",
           "is_stager_name", "load_stager", "pick_channels", "plugin_entry_points",
           "split_spec", "stager_card", "stager_descriptions", "stager_names", "subset"]
