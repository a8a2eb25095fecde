"""What a model reads of a recording, and the one prediction step of staging.

A staging model reads one of two *input kinds* (:data:`INPUT_KINDS`), named here once:

- :data:`BANDPOWER` (``"bandpower"``): per-epoch band-power features of EEG and EOG
  (:mod:`hypnoscope.signal.bandpower`), z-scored per night; the shipped models.
- :data:`SIGNALS` (``"signals"``): the preprocessed signals of the training nights
  (``hypnoscope train --data``, :func:`hypnoscope.signal.nights.load_recording`).
- :data:`RECORDING` (``"recording"``): the recording itself, in µV at the file's rate,
  on the channels a *stager* picks (:mod:`hypnoscope.models.plugins`: YASA, plug-ins,
  the consensus), after the unit and quality checks; the stager computes its own
  features and per-night statistics.

Model cards name it ``input.representation``; fitted models name the kind of
:class:`~hypnoscope.datasets.Night` they were fitted on (``input_kind_`` or
``input_kind``: ``"features"`` or ``"signals"``). :func:`input_kind` reads either and
maps those spellings (:data:`SPELLINGS`) to this vocabulary; :data:`NIGHT_KIND` gives the
night kind a model of each input kind stages.

:func:`model_input` computes a model's input from a recording (read by
:func:`read_recording`) as a :class:`ModelInput`, whose :meth:`ModelInput.predict` is
the prediction step of :func:`hypnoscope.staging.pipeline.stage_recording` (both of its
passes); live staging (:mod:`hypnoscope.live.stream`) builds its nights with
:func:`bandpower_night`, as staging does.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hypnoscope.stages import UNSCORED

#: Input kind of band-power models (the shipped ones).
BANDPOWER = "bandpower"
#: Input kind of models trained on preprocessed signals (``hypnoscope train --data``).
SIGNALS = "signals"
#: Input kind of stagers, which read the recording itself (:mod:`hypnoscope.models.plugins`).
RECORDING = "recording"
#: Every input kind staging knows.
INPUT_KINDS = (BANDPOWER, SIGNALS, RECORDING)
#: Spellings of an input kind found in model cards and fitted models -> input kind.
SPELLINGS = {BANDPOWER: BANDPOWER, "features": BANDPOWER, SIGNALS: SIGNALS,
             RECORDING: RECORDING}
#: Kind of :class:`~hypnoscope.datasets.Night` a model of each input kind stages.
NIGHT_KIND = {BANDPOWER: "features", SIGNALS: "signals"}
#: Rate (Hz) at which band-power models read a recording.
BANDPOWER_SFREQ = 100.0
#: Epoch length (s) of staging.
EPOCH_SEC = 30.0


def input_kind(model, card: dict[str, Any]) -> str:
    """:data:`BANDPOWER` or :data:`SIGNALS`: what ``model`` (with model card ``card``)
    reads.

    The card's (or the model's metadata's) ``input.representation`` decides; else the
    night kind the model was fitted on (``input_kind_`` or ``input_kind``, ``"features"``
    by default). Old spellings are mapped (:data:`SPELLINGS`); an unknown representation
    is returned as found (staging refuses it).
    """
    meta = getattr(model, "metadata", {}) or {}
    rep = card.get("input", {}).get("representation") or meta.get("input", {}).get(
        "representation")
    if rep:
        return SPELLINGS.get(str(rep), str(rep))
    kind = (getattr(model, "input_kind_", None)
            or getattr(model, "input_kind", NIGHT_KIND[BANDPOWER]))
    kind = SPELLINGS.get(str(kind))
    return kind if kind in (SIGNALS, RECORDING) else BANDPOWER


def model_sfreq(model, kind: str) -> float | None:
    """Rate (Hz) at which a model of input kind ``kind`` reads a recording; None: the
    file's rate (a stager without its own ``sfreq``)."""
    if kind == RECORDING:
        sfreq = getattr(model, "sfreq", None)
        return None if sfreq is None else float(sfreq)
    trained = (getattr(model, "metadata", {}) or {}).get("training_data", {}) or {}
    return BANDPOWER_SFREQ if kind == BANDPOWER else float(trained.get("sfreq") or 100.0)


def check_proba(proba: np.ndarray, n_epochs: int, n_classes: int, name: str) -> np.ndarray:
    """Probabilities ``(n_epochs, n_classes)`` as float64 rows that sum to 1 (NaN and
    negative values 0, an all-zero row uniform); a wrong shape raises ``RuntimeError``."""
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


def bandpower_night(features: np.ndarray, channels: list[str], roles: list[str],
                    onsets_sec: np.ndarray | None = None, subject_id: str = "subject",
                    night_id: str = "night"):
    """The :class:`~hypnoscope.datasets.Night` a band-power model stages: per-epoch
    features ``(n_epochs, n_channels, n_features)`` of unknown stage."""
    from hypnoscope.datasets import Night

    return Night(X=features, y=np.full(len(features), UNSCORED), subject_id=subject_id,
                 night_id=night_id, kind=NIGHT_KIND[BANDPOWER], channels=list(channels),
                 roles=list(roles), onsets_sec=onsets_sec)


def read_recording(recording, kind: str, eeg, eog, emg, sfreq: float | None):
    """The recording as a :class:`~hypnoscope.io.psg.PSGRecording` in µV at ``sfreq``
    (None: the file's rate, :data:`RECORDING` only), with the channels a model of input
    kind ``kind`` can use (band power: EEG and EOG)."""
    from hypnoscope.io.psg import PSGRecording, recording_info
    from hypnoscope.signal.checks import read_psg_checked

    emg_too = kind in (SIGNALS, RECORDING)
    if not isinstance(recording, PSGRecording):
        if sfreq is None:
            sfreq = recording_info(recording, eeg=eeg, eog=eog, emg=emg)["file_sfreq"]
        return read_psg_checked(recording, eeg=eeg, eog=eog,
                                emg=emg if emg_too else None, sfreq=sfreq,
                                include_emg=emg_too)
    rec = recording
    if sfreq is not None and not np.isclose(rec.sfreq, sfreq):
        raise ValueError(f"{rec.source}: the recording is at {rec.sfreq:g} Hz but the model "
                         f"needs {sfreq:g} Hz; read it with hypnoscope.io.psg.read_psg(..., "
                         f"sfreq={sfreq:g})")
    if kind == BANDPOWER:
        keep = [i for i, r in enumerate(rec.roles) if r in ("eeg", "eog")]
        if len(keep) < rec.n_channels:
            rec = rec.copy(data=rec.data[keep], ch_names=[rec.ch_names[i] for i in keep],
                           roles=[rec.roles[i] for i in keep])
    return rec


@dataclass
class ModelInput:
    """A model's input computed from one recording, epoch by epoch.

    Attributes
    ----------
    model, card
        The model and its card.
    night
        The per-epoch input (a :class:`~hypnoscope.signal.bandpower.BandPowerNight` or a
        signal :class:`~hypnoscope.datasets.Night`).
    channels : list of str
        The channels read, in the model's order.
    roles : list of str
        Their roles.
    info : dict
        ``channels`` (name -> role), ``source`` and, for band power, ``ica``.
    notices : list
        What choosing the channels noticed (reordered or ignored channels).
    """

    model: Any
    card: dict[str, Any]
    night: Any
    channels: list[str]
    roles: list[str]
    info: dict[str, Any] = field(default_factory=dict)
    notices: list = field(default_factory=list)

    @property
    def n_epochs(self) -> int:
        """Epochs of the recording (the 30-s grid from its start)."""
        return int(self.night.n_epochs)

    def epochs(self, sel: np.ndarray, window: slice, exclude: np.ndarray):
        """The night the model stages for epochs ``sel`` (indices within ``window``),
        normalised over ``window`` less the ``exclude`` epochs."""
        raise NotImplementedError

    def predict(self, window: slice, keep: np.ndarray, exclude: np.ndarray) -> np.ndarray:
        """Probabilities ``(epochs of window, n_classes)`` of the ``keep`` epochs of
        ``window`` (other rows 0), the per-night statistics taken over ``window`` less
        the ``exclude`` epochs: the training nights were cropped the same way before any
        per-night statistic."""
        k = self.model.n_classes
        idx = np.arange(self.n_epochs)[window]
        use = keep[idx]
        out = np.zeros((idx.size, k))
        if use.any():
            sel = idx[use]
            out[use] = check_proba(self.model.predict_proba(self.epochs(sel, window, exclude)),
                                   sel.size, k, self.card.get("name", "model"))
        return out


@dataclass
class BandPowerInput(ModelInput):
    """Band-power features (:data:`BANDPOWER`), z-scored per window; ``setup`` is the
    model's :class:`~hypnoscope.staging.channel_setups.ChannelSetup` (its slots name the
    channels of the nights staged)."""

    setup: Any = None

    def epochs(self, sel: np.ndarray, window: slice, exclude: np.ndarray):
        return bandpower_night(self.night.features(window, exclude)[sel], self.setup.channels,
                               self.setup.roles, self.night.onsets_sec[sel])


@dataclass
class SignalsInput(ModelInput):
    """Preprocessed signals (:data:`SIGNALS`), scaled per window as in training
    (``normalize``: the method of the training preprocessing, or None)."""

    normalize: str | None = None

    def epochs(self, sel: np.ndarray, window: slice, exclude: np.ndarray):
        from hypnoscope.signal.normalize import apply_normalization, normalization_stats

        night, method = self.night, self.normalize
        X = night.X[sel]
        if method is not None:
            center, scale = normalization_stats(night.X[window], method, axes=(0, 2),
                                                exclude=exclude[window])
            X = apply_normalization(X, center, scale).astype(np.float32)
        return dataclasses.replace(
            night, X=X, y=night.y[sel],
            onsets_sec=None if night.onsets_sec is None else night.onsets_sec[sel],
            views={v: a[sel] for v, a in night.views.items()})


def model_input(kind: str, model, card: dict[str, Any], rec, eeg=None, eog=None,
                timings: dict[str, float] | None = None) -> ModelInput:
    """The input of ``model`` (of input kind ``kind``) computed from the recording
    ``rec`` (:func:`read_recording`); ``timings["features_sec"]`` gets the time taken.

    Raises
    ------
    ValueError
        If the recording lacks a channel the model needs, or the model reads features
        staging cannot compute.
    """
    t = time.perf_counter()
    build = {BANDPOWER: _bandpower_input, SIGNALS: _signals_input,
             RECORDING: _recording_input}[kind]
    inp = build(model, card, rec, eeg, eog)
    if timings is not None:
        timings["features_sec"] = time.perf_counter() - t
    return inp


def _bandpower_input(model, card, rec, eeg, eog) -> BandPowerInput:
    """Spectra of the recording (:func:`hypnoscope.signal.bandpower.extract_bandpower_from`)
    on the channels of the model's setup."""
    from hypnoscope.signal import bandpower
    from hypnoscope.staging.channel_setups import setup_of_card

    setup = setup_of_card(card)
    trained = ((getattr(model, "metadata", {}) or {}).get("training_data") or {})
    shape = trained.get("epoch_shape")
    if shape is not None and list(shape) != [len(setup.slots), len(bandpower.FEATURE_NAMES)]:
        raise ValueError(
            f"model {card.get('name', 'model')!r} was trained on precomputed per-epoch "
            f"features of shape {list(shape)}; staging a recording can compute only the "
            f"band-power features of the shipped models ({len(bandpower.CHANNEL_LAYOUT)} "
            f"channels x {len(bandpower.FEATURE_NAMES)}). Train with 'hypnoscope train "
            "--data DIR' to get a model that stages raw recordings.")
    night = bandpower.extract_bandpower_from(rec, eeg=eeg, eog=eog, n_eeg=setup.n_eeg,
                                             n_eog=setup.n_eog)
    info = {"channels": dict(zip(night.ch_names, night.roles, strict=True)),
            "ica": night.meta.get("ica"), "source": night.meta.get("source")}
    return BandPowerInput(model, card, night, list(night.ch_names), list(night.roles), info,
                          list(night.meta.get("notices") or []), setup=setup)


def _signals_input(model, card, rec, eeg=None, eog=None) -> SignalsInput:
    """The recording through the training nights' continuous preprocessing
    (:func:`hypnoscope.signal.nights.load_recording`, no crop, no per-night scaling: that
    is computed per window), on the channels matched to the training roles."""
    from hypnoscope.signal.nights import load_recording
    from hypnoscope.signal.preprocessing import resolve_config

    trained = (getattr(model, "metadata", {}) or {}).get("training_data", {}) or {}
    config = resolve_config(trained.get("preprocessing") or "default")
    night = load_recording(rec, None, sfreq=rec.sfreq, crop_wake_min=None,
                           preprocessing={**config, "normalize": None}, cache=False)
    roles = list(night.roles)
    want = card.get("input", {}).get("roles") or trained.get("roles")
    idx = _match_roles(roles, want, night, card) if want else list(range(len(roles)))
    if idx != list(range(len(roles))):  # keep only the channels the model was trained on
        night = dataclasses.replace(night, X=night.X[:, idx],
                                    channels=[night.channels[i] for i in idx],
                                    roles=[roles[i] for i in idx])
    info = {"channels": dict(zip(night.channels, night.roles, strict=True)),
            "source": night.meta.get("source")}
    return SignalsInput(model, card, night, list(night.channels), list(night.roles), info,
                        normalize=config["normalize"])


@dataclass
class RecordingInput(ModelInput):
    """The recording itself (:data:`RECORDING`) on the channels a stager picked: the
    stager predicts each window from its samples (its own features and per-night
    statistics over the window; the epochs flagged by the quality check are bridged by
    straight lines, and the ``exclude`` mask is not passed on)."""

    @property
    def n_epochs(self) -> int:
        return int(self.night.n_samples // self.samples_per_epoch)

    @property
    def samples_per_epoch(self) -> int:
        return int(round(EPOCH_SEC * self.night.sfreq))

    def window(self, window: slice):
        """The recording of the epochs of ``window`` (its start time that of the first)."""
        import datetime as _dt

        spe = self.samples_per_epoch
        a, b, _ = window.indices(self.n_epochs)
        start = self.night.start_time
        if start is not None:
            start = start + _dt.timedelta(seconds=a * EPOCH_SEC)
        return self.night.copy(data=self.night.data[:, a * spe:b * spe], start_time=start)

    def predict(self, window: slice, keep: np.ndarray, exclude: np.ndarray) -> np.ndarray:
        idx = np.arange(self.n_epochs)[window]
        out = np.zeros((idx.size, self.model.n_classes))
        use = keep[idx]
        if use.any():
            proba = check_proba(self.model.predict_proba(self.window(window)), idx.size,
                                self.model.n_classes, self.card.get("name", "model"))
            out[use] = proba[use]
        return out


def _recording_input(model, card, rec, eeg=None, eog=None) -> RecordingInput:
    """The recording on the channels the stager picks (its ``pick``, else
    :func:`hypnoscope.models.plugins.pick_channels` of its ``channels``), checked by the
    stager (its ``check``: a ``ValueError`` with its reason)."""
    from hypnoscope.models.plugins import pick_channels, stager_card, subset

    name = card.get("name", getattr(model, "name", "stager"))
    pick = getattr(model, "pick", None)
    idx = pick(rec) if callable(pick) else pick_channels(rec, model.channels, name)
    sub = subset(rec, list(idx))
    check = getattr(model, "check", None)
    if callable(check):
        check(sub)
    card = {**card, **stager_card(model)}
    info = {"channels": dict(zip(sub.ch_names, sub.roles, strict=True)),
            "source": str(rec.source), "sfreq": float(rec.sfreq)}
    return RecordingInput(model, card, sub, list(sub.ch_names), list(sub.roles), info)


@dataclass
class ConsensusInput(ModelInput):
    """The inputs of a consensus's members (:mod:`hypnoscope.models.consensus`), each
    computed as for the member alone; :meth:`predict` soft-votes their probabilities
    with ``weights`` (:func:`hypnoscope.models.consensus.soft_vote`).

    A band-power member is staged as staging stages it alone (``normalize=
    "sleep-period"``): its first prediction (the first pass over the span) is followed by
    one over the sleep period +-30 min that it found, on the epochs of that period
    (``sleep_period``: the members staged so); later predictions (the crop of a long
    recording) are single, as for the member alone."""

    members: list[ModelInput] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    sleep_period: list[bool] = field(default_factory=list)
    passes: int = 0

    @property
    def n_epochs(self) -> int:
        return min(m.n_epochs for m in self.members)

    def predict(self, window: slice, keep: np.ndarray, exclude: np.ndarray) -> np.ndarray:
        from hypnoscope.models.consensus import soft_vote

        first, self.passes = self.passes == 0, self.passes + 1
        probas = []
        for m, two in zip(self.members, self.sleep_period or [False] * len(self.members),
                          strict=True):
            p = m.predict(window, keep, exclude)
            if first and two:
                p = _sleep_period_pass(m, p, window, keep, exclude)
            probas.append(p)
        return soft_vote(probas, self.weights)


def sleep_period_window(proba: np.ndarray, keep: np.ndarray, span: slice) -> slice | None:
    """The sleep period +- :data:`~hypnoscope.evaluation.sleepstats.CROP_PAD_MIN` min
    that a first pass shows over the epochs ``span`` (``proba``: their probabilities;
    ``keep``: the stageable epochs of the recording), in the recording's epochs; None
    if it shows no sleep. The window of staging's second pass."""
    from hypnoscope.evaluation.sleepstats import CROP_PAD_MIN
    from hypnoscope.stages import sleep_period_slice

    codes = np.where(keep[span], proba.argmax(axis=1), UNSCORED)
    sp = sleep_period_slice(codes, CROP_PAD_MIN, EPOCH_SEC)
    return None if sp is None else slice(span.start + sp.start, span.start + sp.stop)


def _sleep_period_pass(inp: ModelInput, proba: np.ndarray, window: slice, keep: np.ndarray,
                       exclude: np.ndarray) -> np.ndarray:
    """``proba`` (of ``window``) with the epochs of the sleep period +-30 min it finds
    staged again with the per-night statistics of that period (the second pass of
    :func:`hypnoscope.staging.pipeline.stage_recording`)."""
    a, b, _ = window.indices(inp.n_epochs)
    sp = sleep_period_window(proba, keep, slice(a, b))
    if sp is None or (sp.start, sp.stop) == (a, b):
        return proba
    proba = proba.copy()
    proba[sp.start - a:sp.stop - a] = inp.predict(sp, keep, exclude)
    return proba


def at_rate(rec, sfreq: float, kind: str):
    """The recording ``rec`` at ``sfreq`` (the reader's resampling,
    :func:`hypnoscope.io.psg.resample`) with the channels a model of input kind ``kind``
    reads (band power: EEG and EOG)."""
    if kind == BANDPOWER:
        keep = [i for i, r in enumerate(rec.roles) if r in ("eeg", "eog")]
        rec = rec.copy(data=rec.data[keep], ch_names=[rec.ch_names[i] for i in keep],
                       roles=[rec.roles[i] for i in keep])
    if np.isclose(rec.sfreq, sfreq):
        return rec
    from hypnoscope.io.psg import resample

    n_out = int(np.floor(rec.n_samples * sfreq / rec.sfreq + 1e-9))
    data = resample(rec.data, rec.sfreq, sfreq, n_out)
    return rec.copy(data=data.astype(np.float32), sfreq=float(sfreq))


def consensus_input(stager, card: dict[str, Any], rec, eeg, eog, choose, notices,
                    normalize: str = "sleep-period") -> ConsensusInput:
    """The input of a :class:`~hypnoscope.models.consensus.ConsensusStager`: every member
    that can read ``rec`` (``choose(roles, ch_names) -> (name, choice)`` picks the shipped
    model of the member ``auto``), with its weight; a member that cannot is left out with
    a ``consensus-member`` notice in ``notices`` (a warning if it was named, else info).
    ``normalize``: as in :func:`~hypnoscope.staging.pipeline.stage_recording` (band-power
    members, see :class:`ConsensusInput`).

    Raises
    ------
    ValueError
        If no member can read the recording (naming each member's reason).
    """
    from hypnoscope.models.consensus import AUTO_MEMBER
    from hypnoscope.models.plugins import plugin_entry_points, stager_card
    from hypnoscope.models.storage import load_staging_model

    src = str(rec.source or "recording")
    members: list[ModelInput] = []
    staged: dict[str, float] = {}
    names: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for m, w in stager.candidates([AUTO_MEMBER, "yasa", *plugin_entry_points()]).items():
        try:
            if m.partition(":")[0] == "consensus":
                raise ValueError("a consensus is not a member of a consensus")
            target = choose(list(rec.roles), list(rec.ch_names))[0] if m == AUTO_MEMBER else m
            mdl, mcard = load_staging_model(target)
            if getattr(mdl, "n_classes", 5) != stager.n_classes:
                raise ValueError(f"a {mdl.n_classes}-class model; the consensus votes "
                                 f"{stager.n_classes} classes")
            kind = input_kind(mdl, mcard)
            sub = rec if kind == RECORDING else at_rate(rec, model_sfreq(mdl, kind), kind)
            inp = model_input(kind, mdl, mcard, sub, eeg, eog)
        except (ValueError, ImportError, TypeError) as exc:  # MissingExtraError: ImportError
            reasons[m] = str(exc).replace(src + ": ", "").splitlines()[0]
            notices.add("consensus-member",
                        f"{src}: consensus member {m!r} left out: {reasons[m]}",
                        severity="warning" if stager.weights is not None else "info")
            continue
        members.append(inp)
        staged[m] = w
        names[m] = (f"shipped model {target!r}, chosen for the channels" if m == AUTO_MEMBER
                    else ", ".join(str(v) for v in (inp.card.get("version") or target,
                                                    inp.card.get("classifier"),
                                                    inp.card.get("license")) if v))
    if not members:
        raise ValueError(f"{src}: no member of the consensus can stage it: " + "; ".join(
            f"{m}: {r}" for m, r in reasons.items()))
    stager.describe(staged, names)
    channels: dict[str, str] = {}
    for inp in members:
        channels.update(zip(inp.channels, inp.roles, strict=True))
    info = {"channels": dict(channels), "source": src,
            "members": {m: list(i.channels) for m, i in zip(staged, members, strict=True)}}
    return ConsensusInput(stager, {**card, **stager_card(stager)}, members[0].night,
                          list(channels), list(channels.values()), info,
                          [n for i in members for n in i.notices  # read by another member
                           if not (n.code == "channel-ignored" and n.channel in channels)],
                          members=members, weights=list(staged.values()),
                          sleep_period=[isinstance(i, BandPowerInput)
                                        and normalize == "sleep-period" for i in members])


def _match_roles(roles: list[str], want: list[str], night, card) -> list[int]:
    """Index of the first unused channel of each wanted role (``eeg`` matches ``eeg`` and
    ``eeg...``), in the order wanted."""
    idx: list[int] = []
    for role in want:
        cand = [i for i, r in enumerate(roles)
                if i not in idx and (r == role or r.startswith(role))]
        if not cand:
            raise ValueError(
                f"{night.meta.get('source', 'recording')}: model {card.get('name')!r} "
                f"needs channels with roles {list(want)}; channels found: "
                f"{dict(zip(night.channels, roles, strict=True))}")
        idx.append(cand[0])
    return idx
