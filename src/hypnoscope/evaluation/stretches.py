"""Stretches of held-out nights, each staged as its own recording.

A model that is good on whole nights may fall apart on a shorter recording: its
per-recording normalisation and its temporal context see less of the night. This module
is the stretch protocol that measures it:

- :func:`sample_stretches` cuts, from each night, ``per_night`` stretches of every
  length (30 min, 1 h, 2 h by default; start times stratified over the night, seeded
  per night id, so the same seed gives the same stretches whatever the list order),
  the whole night once, and a nap-like stretch that starts in wake shortly before sleep
  onset. A stretch is a contiguous run of epochs of ONE night, so stretches of different
  subjects (or nights) are never mixed.
- :func:`stretch_night` turns a stretch into a night of its own, scaled as staging it
  as a recording would scale it: band-power nights get :func:`rezscore_stretch`, the
  shift of their log-absolute powers that z-scoring the stretch's signals on their own
  would have given; signal nights scaled per recording (their preprocessing's
  ``normalize``) are scaled again over the stretch alone, as staging scales each
  recording (:class:`hypnoscope.staging.model_input.SignalsInput`).
- :func:`predict_stretches` stages every stretch as its own recording;
  :func:`stretch_table` scores them per length with
  :func:`hypnoscope.evaluation.metrics.evaluate`; :func:`score_stretches` does both.
- :func:`cross_validate_stretches` trains a model on each subject-wise fold
  (:mod:`hypnoscope.evaluation.splits`) and stages the stretches of the fold's test
  nights, with a per-fold cache as :func:`hypnoscope.evaluation.cross_validation.
  cross_validate` keeps one; :func:`select_on_stretches` chooses among candidate
  models on inner subject-wise folds of an outer fold's training nights (nested).

This module imports no model: a model is anything with ``predict_proba(night)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.evaluation.cross_validation import fit_fold, fold_cache_path
from hypnoscope.evaluation.splits import Fold, subjects_of
from hypnoscope.stages import W, sleep_period_slice

#: Epoch length of the stretch lengths given in minutes.
EPOCH_SEC = 30.0
#: Default stretch lengths in minutes (``None``: the whole night), longest first.
DEFAULT_LENGTHS: tuple[float | None, ...] = (None, 120.0, 60.0, 30.0)
#: Default lengths (minutes) of the nap-like stretches, which start in wake.
DEFAULT_NAP_LENGTHS: tuple[float, ...] = (30.0,)
#: Minutes of wake before sleep onset at the start of a nap-like stretch (drawn
#: uniformly between the two, in whole epochs, clipped at the start of the night).
DEFAULT_NAP_WAKE = (5.0, 20.0)
#: Recordings shorter than this (minutes) are stretches, not nights: the stretch protocol
#: measures 30 min, 1 h, 2 h and whole (cropped, about 9-h) nights, and already at 2 h every
#: measured configuration is several points below its whole-night accuracy; 4 h is about
#: the geometric mean of 2 h and the median training night. The short-recording notice
#: (:mod:`hypnoscope.staging.short_recordings`) and the length-gated model
#: (:mod:`hypnoscope.models.length_gate`) both use it.
SHORT_MINUTES = 240.0
#: Version of :func:`cross_validate_stretches` cache records.
CACHE_VERSION = 1


@dataclass(frozen=True)
class Stretch:
    """Epochs ``start:stop`` of one night, to be staged as a recording of its own.

    Attributes
    ----------
    night : int
        Index of the night in the list the stretches were sampled from.
    night_id, subject_id : str
        The night's identifiers.
    length : str
        Label of the stretch kind (:func:`length_label`): ``"whole"``, ``"2 h"``,
        ``"30 min"``, ``"nap 30 min"`` ...
    start, stop : int
        Epoch range within the night.
    nap : bool
        A nap-like stretch (starts in wake before sleep onset).
    """

    night: int
    night_id: str
    subject_id: str
    length: str
    start: int
    stop: int
    nap: bool = False

    @property
    def n_epochs(self) -> int:
        """Number of epochs of the stretch."""
        return self.stop - self.start

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


def length_label(minutes: float | None, nap: bool = False) -> str:
    """Label of a stretch length: ``None`` -> ``"whole"``, 120 -> ``"2 h"``, 30 ->
    ``"30 min"`` (with ``nap``: ``"nap 30 min"``)."""
    if minutes is None:
        if nap:
            raise ValueError("a nap-like stretch needs a length")
        return "whole"
    m = float(minutes)
    text = f"{m / 60:g} h" if m >= 60 and m % 60 == 0 else f"{m:g} min"
    return f"nap {text}" if nap else text


_LABEL = re.compile(r"^\s*(nap\s+)?(\d+(?:\.\d+)?)\s*(h|min)\s*$", re.IGNORECASE)


def parse_length_label(label: str) -> tuple[float | None, bool] | None:
    """``(minutes, nap)`` of a stretch length label: ``"whole"`` -> ``(None, False)``,
    ``"2 h"`` -> ``(120.0, False)``, ``"nap 30 min"`` -> ``(30.0, True)``; None for a
    label of another form (the inverse of :func:`length_label`)."""
    text = str(label).strip().lower()
    if text == "whole":
        return None, False
    m = _LABEL.match(text)
    if m is None:
        return None
    value = float(m.group(2)) * (60.0 if m.group(3).lower() == "h" else 1.0)
    return value, m.group(1) is not None

def _epochs(minutes: float, epoch_sec: float) -> int:
    n = int(round(float(minutes) * 60.0 / epoch_sec))
    if n < 1:
        raise ValueError(f"a stretch of {minutes} min is shorter than one {epoch_sec} s epoch")
    return n


def _rng(seed: int, night_id: str, label: str) -> np.random.Generator:
    """The generator of one night's stretches of one kind: seeded by ``seed``, the night
    id and the kind, so that no other night or kind changes them."""
    return np.random.default_rng([int(seed), zlib.crc32(f"{night_id}|{label}".encode())])


def _stratified_starts(n: int, length: int, k: int, rng: np.random.Generator) -> list[int]:
    """``k`` start epochs of stretches of ``length`` epochs in a night of ``n``: one drawn
    uniformly in each of ``k`` equal parts of the possible starts ``0 .. n - length``
    (repeats removed)."""
    span = n - length + 1
    edges = np.linspace(0, span, k + 1)
    starts = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        a, b = int(np.floor(lo)), max(int(np.floor(hi)), int(np.floor(lo)) + 1)
        starts.append(int(rng.integers(a, min(b, span))))
    return sorted(set(starts))


def _nap_start(y: np.ndarray, length: int, wake_epochs: tuple[int, int],
               rng: np.random.Generator) -> int | None:
    """Start of a nap-like stretch: ``w`` epochs (uniform in ``wake_epochs``) before the
    first sleep epoch, clipped at 0; None when the night starts in sleep, has none, or
    is too short."""
    sp = sleep_period_slice(y, wake_pad_min=0.0)
    if sp is None or sp.start == 0:
        return None
    start = max(0, sp.start - int(rng.integers(wake_epochs[0], wake_epochs[1] + 1)))
    if start + length > len(y) or y[start] != W:
        return None
    return start


def sample_stretches(nights: Sequence[Any], lengths: Sequence[float | None] = DEFAULT_LENGTHS,
                     per_night: int = 3, seed: int = 0,
                     nap_lengths: Sequence[float] = DEFAULT_NAP_LENGTHS,
                     nap_wake_min: tuple[float, float] = DEFAULT_NAP_WAKE,
                     epoch_sec: float = EPOCH_SEC) -> list[Stretch]:
    """Stretches of every night, deterministic for a seed.

    Parameters
    ----------
    nights : sequence of Night
        Nights with ``y``, ``subject_id`` and ``night_id`` (unique).
    lengths : sequence of float or None
        Stretch lengths in minutes; ``None`` is the whole night (one stretch). A night
        shorter than a length gets no stretch of it.
    per_night : int
        Stretches of each (not whole) length per night: the possible start epochs are
        cut into ``per_night`` equal parts and one start is drawn in each, so the
        stretches cover the night from its beginning to its end (they may overlap).
    seed : int
        Seed; each night's stretches of each length come from their own generator
        (seed, night id, length), so the same seed gives the same stretches whatever
        the other nights or their order.
    nap_lengths : sequence of float
        Lengths (minutes) of the nap-like stretches: one per night and length, starting
        in wake ``nap_wake_min`` minutes before the first sleep epoch (drawn uniformly,
        clipped at the start of the night). A night without wake before its first sleep
        epoch, or too short, gets none.
    nap_wake_min : (float, float)
        Range of the wake before sleep onset of a nap-like stretch, in minutes.
    epoch_sec : float
        Epoch length in seconds (lengths in epochs are ``round(minutes * 60 /
        epoch_sec)``).

    Returns
    -------
    list of Stretch
        In night order, then by ``lengths`` and ``nap_lengths`` order, then by start.
    """
    if int(per_night) < 1:
        raise ValueError(f"per_night must be >= 1, got {per_night}")
    lo, hi = (_epochs(m, epoch_sec) if m > 0 else 0 for m in nap_wake_min)
    if hi < lo:
        raise ValueError(f"nap_wake_min must be (low, high), got {nap_wake_min}")
    subjects = subjects_of(nights) if len(nights) else []
    ids = [str(n.night_id) for n in nights]
    if len(set(ids)) != len(ids):
        raise ValueError("night ids must be unique to seed their stretches")
    out: list[Stretch] = []
    for i, (night, subj) in enumerate(zip(nights, subjects, strict=True)):
        n, nid = len(night.y), ids[i]
        for minutes in lengths:
            label = length_label(minutes)
            if minutes is None:
                out.append(Stretch(i, nid, str(subj), label, 0, n))
                continue
            size = _epochs(minutes, epoch_sec)
            if size > n:
                continue
            for a in _stratified_starts(n, size, int(per_night), _rng(seed, nid, label)):
                out.append(Stretch(i, nid, str(subj), label, a, a + size))
        for minutes in nap_lengths:
            label, size = length_label(minutes, nap=True), _epochs(minutes, epoch_sec)
            a = _nap_start(np.asarray(night.y), size, (lo, hi), _rng(seed, nid, label))
            if a is not None:
                out.append(Stretch(i, nid, str(subj), label, a, a + size, nap=True))
    return out


def random_stretches(nights: Sequence[Any], per_night: int = 2, min_minutes: float = 20.0,
                     seed: int = 0, epoch_sec: float = EPOCH_SEC,
                     max_minutes: float | None = None) -> list[Stretch]:
    """Random stretches of every night, to train on (a model that must never rely on
    seeing a whole night).

    Each night gets ``per_night`` stretches whose lengths are drawn log-uniformly
    between ``min_minutes`` and the whole night, or ``max_minutes`` if that is shorter
    (short stretches as likely per doubling of length as long ones) and whose starts
    are uniform among those possible; a night shorter than ``min_minutes`` gets its
    whole self. Seeded per night id (see :func:`sample_stretches`).

    Returns
    -------
    list of Stretch
        Labelled ``"random"``, in night order.
    """
    if int(per_night) < 0:
        raise ValueError(f"per_night must be >= 0, got {per_night}")
    low = _epochs(min_minutes, epoch_sec)
    if max_minutes is not None and float(max_minutes) < float(min_minutes):
        raise ValueError(f"max_minutes ({max_minutes}) is below min_minutes ({min_minutes})")
    high = None if max_minutes is None else _epochs(max_minutes, epoch_sec)
    subjects = subjects_of(nights) if len(nights) else []
    out = []
    for i, (night, subj) in enumerate(zip(nights, subjects, strict=True)):
        n = len(night.y)
        top = n if high is None else min(n, high)
        rng = _rng(seed, str(night.night_id), "random")
        for _ in range(int(per_night)):
            size = n if n <= low else int(round(np.exp(rng.uniform(np.log(low),
                                                                   np.log(top)))))
            size = min(max(size, min(low, n)), top)
            a = int(rng.integers(0, n - size + 1))
            out.append(Stretch(i, str(night.night_id), str(subj), "random", a, a + size))
    return out


def _log_absolute_columns(night: Any) -> list[int] | None:
    """Indices (last axis) of the log-absolute band powers of a band-power night, None
    for any other night."""
    from hypnoscope.signal.bandpower import FEATURE_NAMES

    X = night.X
    names = tuple(night.meta.get("feature_names", FEATURE_NAMES)) if night.meta else \
        FEATURE_NAMES
    if night.kind != "features" or X.ndim != 3 or names != FEATURE_NAMES \
            or X.shape[-1] != len(FEATURE_NAMES):
        return None
    return [j for j, name in enumerate(FEATURE_NAMES) if name.startswith("log_")]


def stretch_zscore_shift(X: np.ndarray, start: int, stop: int,
                         log_columns: Sequence[int]) -> np.ndarray:
    """Per-channel shift of the log-absolute band powers of epochs ``start:stop``.

    The band powers of a night were computed from signals z-scored over the whole night;
    z-scoring over the stretch instead divides each channel's signal by the stretch's
    SD, which subtracts ``log(stretch variance / night variance)`` from every log power
    (relative powers do not move). An epoch's variance of the band-passed signal is
    close to the sum of its band powers, so the shift of channel ``c`` is

        ``log(mean over the stretch of sum_b exp(X[t, c, b]) /
        mean over the night of the same)``

    over the ``log_columns`` ``b`` (non-finite epochs left out).

    Parameters
    ----------
    X : ndarray (n_epochs, n_channels, n_features)
        A night's band-power features (natural-log absolute powers in ``log_columns``).
    start, stop : int
        The stretch.
    log_columns : sequence of int
        Indices of the log-absolute powers along the last axis.

    Returns
    -------
    ndarray (n_channels,) float64
        The shift to subtract from the stretch's log-absolute powers.
    """
    from scipy.special import logsumexp

    L = np.asarray(X, dtype=np.float64)[..., list(log_columns)]
    if not 0 <= start < stop <= len(L):
        raise ValueError(f"stretch {start}:{stop} is not inside a night of {len(L)} epochs")
    log_var = logsumexp(L, axis=-1)  # (n_epochs, n_channels): log of the summed powers
    ok = np.isfinite(log_var)

    def log_mean(rows: slice) -> np.ndarray:
        v, k = log_var[rows], ok[rows]
        return np.array([logsumexp(v[k[:, c], c]) - np.log(max(k[:, c].sum(), 1))
                         if k[:, c].any() else 0.0 for c in range(v.shape[1])])

    return log_mean(slice(start, stop)) - log_mean(slice(None))


def rezscore_stretch(X: np.ndarray, start: int, stop: int,
                     log_columns: Sequence[int]) -> np.ndarray:
    """Band-power features of epochs ``start:stop`` as if the stretch's signals had been
    z-scored on their own: the log-absolute powers minus :func:`stretch_zscore_shift`
    (a copy, float32; relative powers unchanged)."""
    out = np.array(X[start:stop], dtype=np.float32)
    shift = stretch_zscore_shift(X, start, stop, log_columns)
    cols = list(log_columns)
    out[..., cols] -= shift[:, None].astype(np.float32)
    return out


def signal_scaling(night: Any) -> str | None:
    """The per-recording scaling (``"zscore"`` or ``"robust"``) a signal night's
    preprocessing applied (``meta["preprocessing"]["config"]["normalize"]``), None for a
    night of features or one not scaled."""
    if night.kind != "signals" or np.ndim(night.X) != 3:
        return None
    config = ((night.meta or {}).get("preprocessing") or {}).get("config") or {}
    return config.get("normalize")


def stretch_night(night: Any, stretch: Stretch | tuple[int, int],
                  renormalize: bool | None = None) -> Any:
    """The epochs of ``stretch`` as a night of their own.

    Parameters
    ----------
    night : Night
        The whole night.
    stretch : Stretch or (start, stop)
        The epochs.
    renormalize : bool, optional
        Scale the stretch as a recording of its own: :func:`rezscore_stretch` for
        band-power nights (``kind "features"``, ``X`` of shape ``(n_epochs, n_channels,
        10)`` in the order of :data:`hypnoscope.signal.bandpower.FEATURE_NAMES`); for
        signal nights scaled per recording (:func:`signal_scaling`), the same scaling
        again over the stretch's epochs (an affine scaling of each channel, so the
        result is that of scaling the stretch's own signals). ``None`` (default): when
        the night is one of these; ``True`` for another night is an error.

    Returns
    -------
    Night
        ``X``, ``y``, views and onsets (from the stretch's start) cut to the stretch;
        ``night_id`` ``"<id>[start:stop]"``; ``meta["stretch"]`` says where it came from.
    """
    a, b = (stretch.start, stretch.stop) if isinstance(stretch, Stretch) else stretch
    a, b = int(a), int(b)
    if not 0 <= a < b <= len(night.y):
        raise ValueError(f"stretch {a}:{b} is not inside night {night.night_id} of "
                         f"{len(night.y)} epochs")
    cols, scaling = _log_absolute_columns(night), signal_scaling(night)
    if renormalize and cols is None and scaling is None:
        raise ValueError(f"night {night.night_id}: renormalising a stretch needs band-power "
                         "features (n_epochs, n_channels, 10) or signals scaled per "
                         "recording")
    do = (cols is not None or scaling is not None) if renormalize is None \
        else bool(renormalize)
    if not do:
        X = night.X[a:b]
    elif cols is not None:
        X = rezscore_stretch(night.X, a, b, cols)
    else:
        from hypnoscope.signal.normalize import normalize_epochs

        X = normalize_epochs(night.X[a:b], scaling).astype(night.X.dtype, copy=False)
    onsets = None if night.onsets_sec is None else \
        np.asarray(night.onsets_sec[a:b]) - float(night.onsets_sec[a])
    meta = {**(night.meta or {}), "stretch": {"night_id": night.night_id, "start": a,
                                              "stop": b, "renormalized": do}}
    return dataclasses.replace(night, X=X, y=np.asarray(night.y)[a:b],
                               night_id=f"{night.night_id}[{a}:{b}]", onsets_sec=onsets,
                               meta=meta, views={k: v[a:b] for k, v in night.views.items()})


def predict_stretches(model: Any, nights: Sequence[Any], stretches: Sequence[Stretch],
                      renormalize: bool | None = None) -> list[np.ndarray]:
    """``model.predict_proba`` of every stretch, each staged as its own recording
    (:func:`stretch_night`)."""
    return [np.asarray(model.predict_proba(stretch_night(nights[s.night], s, renormalize)))
            for s in stretches]


def stretch_table(stretches: Sequence[Stretch], y_true: Sequence[np.ndarray],
                  y_pred: Sequence[np.ndarray], n_classes: int = 5) -> list[dict[str, Any]]:
    """Agreement per stretch kind, pooled over the epochs of its stretches.

    Parameters
    ----------
    stretches : sequence of Stretch
    y_true, y_pred : sequence of ndarray of int
        True and predicted codes of each stretch (unscored epochs never count).
    n_classes : int

    Returns
    -------
    list of dict
        One row per kind, in order of first appearance: ``length``, ``accuracy``,
        ``macro_f1``, ``kappa`` (:func:`hypnoscope.evaluation.metrics.evaluate` of the
        pooled epochs), ``stretch_accuracy_mean`` (mean of the per-stretch accuracies),
        ``n_stretches`` (with at least one scored epoch), ``n_nights``, ``n_subjects``,
        ``n_epochs`` (scored) and ``minutes`` (mean stretch length).
    """
    from hypnoscope.evaluation.metrics import accuracy_macro_f1, evaluate

    if not len(stretches) == len(y_true) == len(y_pred):
        raise ValueError(f"{len(stretches)} stretches, {len(y_true)} true and "
                         f"{len(y_pred)} predicted sequences")
    rows = []
    for kind in dict.fromkeys(s.length for s in stretches):
        idx = [i for i, s in enumerate(stretches) if s.length == kind
               and (np.asarray(y_true[i]) >= 0).any()]
        if not idx:
            continue
        t = np.concatenate([np.asarray(y_true[i]) for i in idx])
        p = np.concatenate([np.asarray(y_pred[i]) for i in idx])
        res = evaluate(t, p, n_classes=n_classes)
        per = [accuracy_macro_f1(y_true[i], y_pred[i], n_classes)[0] for i in idx]
        rows.append({"length": kind, "accuracy": float(res["accuracy"]),
                     "macro_f1": float(res["macro_f1"]), "kappa": float(res["kappa"]),
                     "stretch_accuracy_mean": float(np.mean(per)),
                     "n_stretches": len(idx),
                     "n_nights": len({stretches[i].night_id for i in idx}),
                     "n_subjects": len({stretches[i].subject_id for i in idx}),
                     "n_epochs": int((t >= 0).sum()),
                     "minutes": float(np.mean([stretches[i].n_epochs for i in idx])
                                      * EPOCH_SEC / 60.0)})
    return rows


def score_stretches(model: Any, nights: Sequence[Any],
                    stretches: Sequence[Stretch] | None = None, *,
                    renormalize: bool | None = None, n_classes: int = 5,
                    **sample_kw: Any) -> list[dict[str, Any]]:
    """Stage every stretch of ``nights`` as its own recording and score it per length.

    Parameters
    ----------
    model : object
        A fitted model with ``predict_proba(night) -> (n_epochs, n_classes)``; it must
        not have seen the subjects of ``nights``.
    nights : sequence of Night
    stretches : sequence of Stretch, optional
        Default: :func:`sample_stretches` of ``nights`` with ``sample_kw`` (``lengths``,
        ``per_night``, ``seed``, ``nap_lengths`` ...).
    renormalize : bool, optional
        See :func:`stretch_night`.
    n_classes : int

    Returns
    -------
    list of dict
        :func:`stretch_table` rows.
    """
    stretches = list(stretches) if stretches is not None else \
        sample_stretches(nights, **sample_kw)
    probas = predict_stretches(model, nights, stretches, renormalize)
    y = [np.asarray(nights[s.night].y)[s.start:s.stop] for s in stretches]
    return stretch_table(stretches, y, [p.argmax(axis=1) for p in probas], n_classes)


@dataclass
class StretchFold:
    """One fold's stretches of its test nights and their predicted probabilities."""

    fold: Fold
    stretches: list[Stretch]
    proba: list[np.ndarray]
    train_s: float
    cached: bool = False


def _stretch_fold(make_model: Callable[[Fold], Any], nights: Sequence[Any], fold: Fold,
                  stretches: list[Stretch], renormalize: bool | None,
                  ) -> dict[str, np.ndarray]:
    model, _, train_s = fit_fold(make_model, nights, fold)
    probas = predict_stretches(model, nights, stretches, renormalize)
    return {"p": np.concatenate(probas).astype(np.float32),
            "bounds": np.array([[s.night, s.start, s.stop] for s in stretches]),
            "train_s": np.array(train_s)}


def cross_validate_stretches(nights: Sequence[Any], make_model: Callable[[Fold], Any],
                             folds: Sequence[Fold], stretches: Sequence[Stretch], *,
                             renormalize: bool | None = None,
                             cache_dir: str | Path | None = None, cache_key: str = "model",
                             on_fold: Callable[[StretchFold], None] | None = None,
                             cached_only: bool = False) -> list[StretchFold]:
    """Subject-wise CV on stretches: train on each fold's training nights, stage each
    stretch of its test nights as its own recording.

    Parameters
    ----------
    nights : sequence of Night
    make_model : callable
        ``make_model(fold)`` returns a fresh, unfitted model (see
        :func:`hypnoscope.evaluation.cross_validation.cross_validate`).
    folds : sequence of Fold
        Subject-wise splits of ``nights`` (:mod:`hypnoscope.evaluation.splits`).
    stretches : sequence of Stretch
        Stretches of ``nights`` (:func:`sample_stretches`); each fold stages those of
        its test nights.
    renormalize : bool, optional
        See :func:`stretch_night`.
    cache_dir : path, optional
        Keep each fold's probabilities there (name by
        :func:`hypnoscope.evaluation.cross_validation.fold_cache_path` of ``cache_key``
        and the stretches) and read them back instead of refitting.
    cache_key : str
        What was trained (model, options, data).
    on_fold : callable, optional
        Called with each :class:`StretchFold` when it is ready.
    cached_only : bool
        Only the folds found in ``cache_dir`` (e.g. to report a run still under way);
        the others are left out.

    Returns
    -------
    list of StretchFold
        In fold order.
    """
    from hypnoscope.utils.files import atomic_path
    from hypnoscope.utils.runtime import progress

    out = []
    for fold in progress(list(folds), desc="stretch folds", unit="fold"):
        test = set(int(i) for i in fold.test)
        mine = [s for s in stretches if s.night in test]
        bounds = np.array([[s.night, s.start, s.stop] for s in mine])
        blob = json.dumps({"v": CACHE_VERSION, "renormalize": renormalize,
                           "stretches": bounds.tolist()}, sort_keys=True)
        key = f"{cache_key}_stretches-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"
        path = None if cache_dir is None else fold_cache_path(cache_dir, key, fold)
        cached = path is not None and path.is_file()
        if cached_only and not cached:
            continue
        if cached:
            with np.load(path) as z:
                rec = {k: z[k] for k in z.files}
        else:
            rec = _stretch_fold(make_model, nights, fold, mine, renormalize)
            if path is not None:
                with atomic_path(path) as tmp:
                    np.savez_compressed(tmp, **rec)
        if not np.array_equal(rec["bounds"].reshape(-1, 3), bounds.reshape(-1, 3)):
            raise RuntimeError(f"{path}: cached stretches differ from the ones asked for")
        cut = np.cumsum([0, *[s.n_epochs for s in mine]])
        sf = StretchFold(fold, mine, [rec["p"][a:b] for a, b in zip(cut[:-1], cut[1:],
                                                                     strict=True)],
                         float(rec["train_s"]), cached)
        out.append(sf)
        if on_fold is not None:
            on_fold(sf)
    return out


def folds_table(folds: Sequence[StretchFold], nights: Sequence[Any],
                n_classes: int = 5) -> list[dict[str, Any]]:
    """:func:`stretch_table` of the stretches of cross-validated folds, pooled over the
    folds (``nights``: the list the folds' stretches index)."""
    st = [s for f in folds for s in f.stretches]
    y = [np.asarray(nights[s.night].y)[s.start:s.stop] for s in st]
    return stretch_table(st, y, [p.argmax(axis=1) for f in folds for p in f.proba], n_classes)


@dataclass
class StretchSelection:
    """What :func:`select_on_stretches` chose and why.

    Attributes
    ----------
    chosen : str
        The candidate with the highest ``score``.
    scores : dict
        ``{candidate: {length: accuracy, ..., "score": mean over lengths}}`` on the
        inner folds' stretches, pooled over the inner folds.
    """

    chosen: str
    scores: dict[str, dict[str, float]]


def select_on_stretches(nights: Sequence[Any],
                        candidates: dict[str, Callable[[Fold], Any]], *, k: int = 2,
                        seed: int = 0, per_night: int = 5,
                        cache_dir: str | Path | None = None, cache_key: str = "",
                        cached_only: bool = False,
                        lengths: Sequence[str] | None = None) -> StretchSelection:
    """Choose among candidate models by how they stage stretches of ``nights`` alone.

    The model selection of a nested cross-validation: give it an outer fold's training
    nights and the outer test subjects take no part in the choice. ``nights`` are split
    into ``k`` subject-wise inner folds (:func:`hypnoscope.evaluation.splits.
    subject_kfold`, ``seed``); every candidate is trained on each inner fold's training
    nights and stages the stretches of its test nights (:func:`sample_stretches` of
    ``nights``, ``per_night``, ``seed``; :func:`cross_validate_stretches`). A candidate's
    score is the mean over stretch lengths (whole, 2 h, 1 h, 30 min, nap-like) of its
    pooled accuracy: every length weighs the same, so no length can buy the others
    (``lengths``: only those, e.g. the lengths a gated model's short member stages).
    Ties go to the candidate given first.

    Parameters
    ----------
    nights : sequence of Night
    candidates : dict
        ``{name: make_model}``, ``make_model(fold)`` a fresh unfitted model; in order of
        preference.
    k, seed, per_night : int
    cache_dir : path, optional
        Per-(candidate, inner fold) cache (see :func:`cross_validate_stretches`), under
        ``cache_dir/<candidate>``.
    cache_key : str
        What ``nights`` are (e.g. the outer fold), added to each candidate's cache key.
    cached_only : bool
        Score only what the cache holds (a candidate with no inner fold cached is left
        out); raises if none is.
    lengths : sequence of str, optional
        Stretch labels (``"2 h"``, ``"nap 30 min"`` ...) the score averages; all by
        default.

    Returns
    -------
    StretchSelection
    """
    from hypnoscope.evaluation.splits import subject_kfold

    if not candidates:
        raise ValueError("select_on_stretches needs at least one candidate")
    inner = subject_kfold(nights, k=k, seed=seed)
    stretches = sample_stretches(nights, per_night=per_night, seed=seed)
    scores: dict[str, dict[str, float]] = {}
    for name, make in candidates.items():
        done = cross_validate_stretches(
            nights, make, inner, stretches,
            cache_dir=None if cache_dir is None else Path(cache_dir) / name,
            cache_key=f"{cache_key}_{name}", cached_only=cached_only)
        if len(done) < len(inner):
            continue
        rows = folds_table(done, nights)
        scores[name] = {r["length"]: r["accuracy"] for r in rows}
        counted = [r["accuracy"] for r in rows if lengths is None or r["length"] in lengths]
        if not counted:
            raise ValueError(f"no stretch of lengths {list(lengths or [])} among "
                             f"{[r['length'] for r in rows]}")
        scores[name]["score"] = float(np.mean(counted))
    if not scores:
        raise ValueError("no candidate has every inner fold in the cache")
    chosen = max(scores, key=lambda c: (scores[c]["score"], -list(candidates).index(c)))
    return StretchSelection(chosen, scores)


__all__ = ["CACHE_VERSION", "DEFAULT_LENGTHS", "DEFAULT_NAP_LENGTHS", "DEFAULT_NAP_WAKE",
           "EPOCH_SEC", "SHORT_MINUTES", "Stretch", "StretchFold", "StretchSelection",
           "cross_validate_stretches", "folds_table", "length_label", "parse_length_label",
           "predict_stretches", "random_stretches", "rezscore_stretch", "sample_stretches",
           "score_stretches", "select_on_stretches", "signal_scaling", "stretch_night",
           "stretch_table",
           "stretch_zscore_shift"]
