"""Per-night data containers, feature directories and sequence windows.

A :class:`Night` holds the per-epoch inputs of one recording night (``X``: features
``(n_epochs, ...)`` or signals ``(n_epochs, n_channels, n_times)``; further named views
such as a spectrogram in ``views``), its labels (``UNSCORED`` = -100 for unscored epochs)
and its subject and night ids. Every model and every split works on lists of nights, so
both nights of a subject always travel together.

PSG recordings become nights in :mod:`hypnoscope.io.recordings`.
:func:`split_modalities` gives the per-epoch arrays by channel role. Windows of
consecutive epochs for sequence models are in :mod:`hypnoscope.training.sequences`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.notices import Notice
from hypnoscope.stages import STAGES_5, UNSCORED

logger = logging.getLogger(__name__)


@dataclass
class Night:
    """Per-epoch data of one night.

    Attributes
    ----------
    X : ndarray
        ``(n_epochs, ...)`` features, or ``(n_epochs, n_channels, n_times)`` signals.
    y : ndarray of int
        ``(n_epochs,)`` 5-class codes; negative = unscored.
    subject_id, night_id : str
        Identifiers; ``night_id`` is unique within a dataset.
    kind : {"features", "signals"}
        What ``X`` holds.
    sfreq : float or None
        Sampling rate of signals (``kind="signals"``).
    channels : list of str
        Channel names (signals) or channel/feature layout description (features).
    roles : list of str
        Role of each signal channel (``"eeg"``, ``"eog"``, ``"emg"``), if known.
    onsets_sec : ndarray or None
        Epoch onsets in seconds.
    meta : dict
        Free-form description (source files, preprocessing settings).
    views : dict of str to ndarray
        Further per-epoch representations of the same epochs (e.g. ``"spec"``: the
        spectrogram of :mod:`hypnoscope.signal.views`), each ``(n_epochs, ...)``. ``X`` itself is
        the view named :attr:`primary_view` (``"raw"`` for signals, ``"feat"`` for
        features).
    """

    X: np.ndarray
    y: np.ndarray
    subject_id: str
    night_id: str
    kind: str = "features"
    sfreq: float | None = None
    channels: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    onsets_sec: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    views: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64).copy()
        self.y[self.y < 0] = UNSCORED
        if len(self.X) != len(self.y):
            raise ValueError(f"night {self.night_id}: {len(self.X)} epochs of data but "
                             f"{len(self.y)} labels")
        if self.kind not in ("features", "signals"):
            raise ValueError(f"kind must be 'features' or 'signals', got {self.kind!r}")
        for name, arr in self.views.items():
            if name == self.primary_view:
                raise ValueError(f"night {self.night_id}: view {name!r} is X itself")
            if len(arr) != len(self.y):
                raise ValueError(f"night {self.night_id}: view {name!r} has {len(arr)} "
                                 f"epochs, the night {len(self.y)}")

    @property
    def primary_view(self) -> str:
        """Name of ``X`` among the views: ``"raw"`` (signals) or ``"feat"`` (features)."""
        return "raw" if self.kind == "signals" else "feat"

    @property
    def view_names(self) -> list[str]:
        """Every view of the night, ``X`` first."""
        return [self.primary_view, *self.views]

    def view(self, name: str) -> np.ndarray:
        """The per-epoch array of view ``name`` (``X`` for the primary view)."""
        if name == self.primary_view:
            return self.X
        if name not in self.views:
            raise KeyError(f"night {self.night_id} has no view {name!r}; it has "
                           f"{self.view_names}")
        return self.views[name]

    @property
    def n_epochs(self) -> int:
        return int(len(self.y))

    @property
    def scored(self) -> np.ndarray:
        return self.y >= 0


def describe_nights(nights: list[Night]) -> dict[str, Any]:
    """Summary of a list of nights for model metadata: subjects, nights, epoch counts per
    class, input kind and shape."""
    y = np.concatenate([n.y for n in nights]) if nights else np.zeros(0, int)
    counts = Counter(int(v) for v in y[y >= 0])
    first = nights[0] if nights else None
    return {
        "n_subjects": len({n.subject_id for n in nights}),
        "n_nights": len(nights),
        "subjects": sorted({n.subject_id for n in nights}),
        "night_ids": sorted({n.night_id for n in nights}),
        "n_epochs": int(len(y)),
        "n_scored_epochs": int((y >= 0).sum()),
        "epochs_per_class": {STAGES_5[k]: counts.get(k, 0) for k in range(5)},
        "kind": first.kind if first else None,
        "epoch_shape": list(first.X.shape[1:]) if first else None,
        "sfreq": first.sfreq if first else None,
        "channels": list(first.channels) if first else [],
        "roles": list(first.roles) if first else [],
        # continuous preprocessing of signal nights (hypnoscope.signal.preprocessing config), so
        # that staging a new recording repeats it
        "preprocessing": ((first.meta or {}).get("preprocessing") or {}).get("config")
        if first else None,
    }


def describe_input(kind: str, epoch_shape, roles=None) -> str:
    """A model's or a night's input in words: ``input kind 'features', epoch shape
    [3, 10], roles ['eeg', 'eeg', 'eog']`` (roles only where known), for messages that
    state both sides of a mismatch."""
    return (f"input kind {kind!r}, epoch shape {list(epoch_shape)}"
            + (f", roles {list(roles)}" if roles else ""))


def check_training_input(nights: list[Night], training_data: dict[str, Any] | None) -> None:
    """Raise ``ValueError`` if a night's input kind or epoch shape differs from what a model
    was trained on (the record of :func:`describe_nights`; nothing is checked where it
    lacks them). The message states the model's training input and the night's."""
    seen = training_data or {}
    kind, shape = seen.get("kind"), seen.get("epoch_shape")
    if kind is None or shape is None:
        return
    for n in nights:
        if n.kind != kind or list(n.X.shape[1:]) != list(shape):
            raise ValueError(
                f"night {n.night_id} ({(n.meta or {}).get('source', n.night_id)}): the model "
                f"was trained on {describe_input(kind, shape, seen.get('roles'))}, but this "
                f"night has {describe_input(n.kind, n.X.shape[1:], n.roles)}; evaluate it "
                "with a model trained on this kind of input")


def training_overlap(nights: list[Night], training_data: dict[str, Any] | None,
                     ) -> Notice | None:
    """A ``training-overlap`` warning if ``nights`` share subjects or night ids with a
    model's training data (the record of :func:`describe_nights`), else None.

    Scores on such nights estimate how well the model fits what it learned, not how it
    stages people it has not seen.
    """
    seen = training_data or {}
    subjects = {str(s) for s in seen.get("subjects") or []}
    night_ids = {str(n) for n in seen.get("night_ids") or []}
    hit = [n for n in nights if str(n.subject_id) in subjects or str(n.night_id) in night_ids]
    if not hit:
        return None
    same_subj = sorted({str(n.subject_id) for n in hit if str(n.subject_id) in subjects})
    same_night = sum(str(n.night_id) in night_ids for n in hit)
    return Notice("training-overlap", (
        f"{len(hit)} of {len(nights)} evaluated nights overlap the model's training data "
        f"({len(same_subj)} subject(s) it was trained on"
        + (f", e.g. {', '.join(same_subj[:5])}" if same_subj else "")
        + (f"; {same_night} of the very nights it was trained on" if same_night else "")
        + "): the scores are not an estimate for people the model has not seen"))


def load_feature_dir(directory: str | os.PathLike, subject_pattern: str = r"^(\d+)",
                     ) -> list[Night]:
    """Load a directory of per-night ``.npz`` feature files.

    Each ``.npz`` holds ``features`` ``(n_epochs, ...)`` and ``labels`` ``(n_epochs,)``
    (negative = unscored) and optionally ``onsets_sec``. The subject comes from
    ``subject_id`` in a JSON sidecar with the same stem when present, else from the first
    group of ``subject_pattern`` matched against the file stem (default: leading digits).
    This is the layout of the real Sleep-EDF band-power set.

    Raises
    ------
    FileNotFoundError
        If the directory does not exist or holds no ``.npz`` file.
    ValueError
        If a file lacks ``features``/``labels`` or the subject cannot be determined.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"feature directory not found: {directory}")
    files = sorted(directory.glob("*.npz"))
    if not files:
        raise FileNotFoundError(f"no .npz feature files in {directory}")
    from hypnoscope.utils.runtime import progress

    regex = re.compile(subject_pattern)
    nights = []
    for f in progress(files, desc="loading features", unit="night"):
        with np.load(f, allow_pickle=False) as z:
            missing = {"features", "labels"} - set(z.files)
            if missing:
                raise ValueError(f"{f}: missing array(s) {sorted(missing)}; found {z.files}")
            X = z["features"].astype(np.float32)
            y = z["labels"]
            onsets = z["onsets_sec"] if "onsets_sec" in z.files else None
        meta: dict[str, Any] = {"source": str(f)}
        sidecar = f.with_suffix(".json")
        subject = None
        if sidecar.is_file():
            meta.update(json.loads(sidecar.read_text()))
            subject = meta.get("subject_id")
        if subject is None:
            m = regex.search(f.stem)
            if not m:
                raise ValueError(f"{f}: no subject_id in a JSON sidecar and the file name does "
                                 f"not match --subject-pattern {subject_pattern!r}")
            subject = m.group(1) if m.groups() else m.group(0)
        channels = [str(c) for c in meta.get("channel_names", [])]
        nights.append(Night(X=X, y=y, subject_id=str(subject), night_id=f.stem,
                            kind="features", channels=channels, onsets_sec=onsets, meta=meta))
    return nights


def split_modalities(night: Night) -> dict[str, np.ndarray]:
    """Per-epoch signal arrays by channel role, e.g. ``{"eeg": (n_epochs, 2, n_times),
    "eog": (n_epochs, 1, n_times), "emg_envelope": ...}`` (views of ``night.X``)."""
    if night.kind != "signals":
        raise ValueError(f"night {night.night_id}: split_modalities needs kind='signals', "
                         f"got {night.kind!r}")
    if len(night.roles) != night.X.shape[1]:
        raise ValueError(f"night {night.night_id}: {night.X.shape[1]} channels but "
                         f"{len(night.roles)} roles")
    out: dict[str, np.ndarray] = {}
    for role in dict.fromkeys(night.roles):
        idx = [i for i, r in enumerate(night.roles) if r == role]
        out[role] = night.X[:, idx]
    return out
