"""A night model for nights, a stretch model for anything shorter.

A model trained on whole nights with whole-night statistics stages whole nights best; one
trained on random stretches, with its per-recording statistics shrunk toward the
training population's, stages naps, MSLT/MWT trials and partial nights far better but
gives up on whole nights (``benchmarks/results/real_accuracy_stretches.md``).
:class:`LengthGatedModel` holds both and stages a recording with the one made for its
length: recordings shorter than ``minutes`` (default
:data:`hypnoscope.evaluation.stretches.SHORT_MINUTES`) with ``short``, the others with
``night``. Both members read the same input (same night kind and epoch shape).

Registered as ``length-gated``: ``make_model("length-gated", night={"model":
"lightgbm-context"}, short={"model": "lightgbm-context", "crops": {...}, "shrink":
"auto"})``; ``fit`` trains both members on the same nights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hypnoscope.evaluation.stretches import EPOCH_SEC, SHORT_MINUTES
from hypnoscope.models.base import MemberModel, StagingModel


class LengthGatedModel(MemberModel):
    """Two staging models of one input, chosen per recording by its length.

    Parameters
    ----------
    night, short : StagingModel or dict
        The members (fitted or not), or their specs ``{"model": registered name,
        **options}`` (built with :func:`hypnoscope.models.make_model`, with this model's
        ``seed`` and ``n_jobs`` unless the spec sets them).
    minutes : float
        Recordings shorter than this are staged by ``short``.
    epoch_sec : float
        Epoch length the recording's length is counted in.
    seed, n_jobs : int
        Passed to members built from specs.
    name : str
    """

    def __init__(self, night: StagingModel | dict[str, Any],
                 short: StagingModel | dict[str, Any], minutes: float = SHORT_MINUTES,
                 epoch_sec: float = EPOCH_SEC, seed: int = 0, n_jobs: int = 1,
                 name: str = "length-gated", n_classes: int = 5) -> None:
        if not float(minutes) > 0:
            raise ValueError(f"minutes must be > 0, got {minutes}")
        specs = {k: dict(v) for k, v in (("night", night), ("short", short))
                 if isinstance(v, dict)}
        super().__init__(n_classes=n_classes, minutes=float(minutes), members=specs)
        self.night = _member(night, "night", seed, n_jobs, n_classes)
        self.short = _member(short, "short", seed, n_jobs, n_classes)
        for m in (self.night, self.short):
            if m.n_classes != n_classes:
                raise ValueError(f"member {m.name!r} has {m.n_classes} classes, the gate "
                                 f"{n_classes}")
        self.minutes, self.epoch_sec, self.name = float(minutes), float(epoch_sec), name

    @property
    def members_(self) -> tuple[StagingModel, StagingModel]:
        return self.night, self.short

    def member_for(self, night) -> StagingModel:
        """The member that stages ``night``: ``short`` below :attr:`minutes`."""
        return self.short if len(night.y) * self.epoch_sec / 60.0 < self.minutes \
            else self.night

    def fit(self, nights, val_nights=None) -> LengthGatedModel:
        """Fit both members on ``nights`` (``val_nights`` passed on)."""
        nights = list(nights)
        for m in self.members_:
            m.fit(nights) if val_nights is None else m.fit(nights, val_nights)
        kinds = {getattr(m, "input_kind_", None) for m in self.members_}
        shapes = {str(getattr(m, "epoch_shape_", None)) for m in self.members_}
        if len(kinds) > 1 or len(shapes) > 1:
            raise ValueError(f"the members read different inputs: kinds {sorted(map(str, kinds))},"
                             f" epoch shapes {sorted(shapes)}")
        self.describe_training(nights, members={"night": self.night.metadata.get("config"),
                                                "short": self.short.metadata.get("config")})
        return self

    def predict_proba(self, night, rows=None) -> np.ndarray:
        """Probabilities of the member made for the recording's length (all epochs, or
        ``rows`` only, as the member gives them)."""
        m = self.member_for(night)
        return m.predict_proba(night) if rows is None else m.predict_proba(night, rows=rows)


def _member(spec: StagingModel | dict[str, Any], role: str, seed: int, n_jobs: int,
            n_classes: int) -> StagingModel:
    """A member: a model as given, or built from ``{"model": name, **options}``."""
    if isinstance(spec, StagingModel):
        return spec
    if not isinstance(spec, dict) or "model" not in spec:
        raise ValueError(f"length-gated member {role!r} must be a model or a dict with a "
                         f"'model' name, got {spec!r}")
    from hypnoscope.models import make_model

    opts = {"seed": seed, "n_jobs": n_jobs, "n_classes": n_classes,
            **{k: v for k, v in spec.items() if k != "model"}}
    return make_model(spec["model"], **opts)


#: Default members (those of the shipped ``default``): ``lightgbm-context`` as in
#: hypnoscope 0.1 for nights, and for shorter recordings the same trained only on 8
#: random stretches of 20 min to 4 h and 4 nap-like stretches (20, 25, 30 and 40 min,
#: starting in wake before sleep onset) of every training night, with shrunk
#: per-recording statistics, the recording's length as a feature and 500 boosting rounds.
DEFAULT_NIGHT: dict[str, Any] = {"model": "lightgbm-context"}
DEFAULT_SHORT: dict[str, Any] = {"model": "lightgbm-context",
                                 "crops": {"per_night": 8, "min_minutes": 20,
                                           "max_minutes": 240, "whole": False,
                                           "nap_minutes": [20.0, 25.0, 30.0, 40.0]},
                                 "shrink": "auto", "context": {"length": True},
                                 "n_estimators": 500}


def make_length_gated(name: str = "length-gated", night: dict[str, Any] | None = None,
                      short: dict[str, Any] | None = None, **kw: Any) -> LengthGatedModel:
    """Factory of the registered ``length-gated`` model (see the module docstring);
    ``night`` and ``short`` are member specs (default :data:`DEFAULT_NIGHT` and
    :data:`DEFAULT_SHORT`). Keywords only deep models take are ignored."""
    for deep_only in ("seq_len", "preset", "epochs", "checkpoint_dir", "resume"):
        kw.pop(deep_only, None)
    return LengthGatedModel(DEFAULT_NIGHT if night is None else night,
                            DEFAULT_SHORT if short is None else short, name=name, **kw)


__all__ = ["DEFAULT_NIGHT", "DEFAULT_SHORT", "LengthGatedModel", "make_length_gated"]
