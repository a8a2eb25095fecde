"""The consensus stager: ``hypnoscope stage --model consensus``.

Soft vote: the consensus hypnodensity of an epoch is the weighted mean of the
probabilities its members give it, ``sum_m w_m p_m / sum_m w_m``, and its stage the most
probable. The members are the stagers that can read the recording, each staging it as it
would alone (its channels, its rate, its per-night statistics; a band-power model's second
pass over the sleep period it found):

- ``auto``: the shipped model chosen for the recording's channels
  (:func:`hypnoscope.staging.pipeline.choose_model`);
- ``yasa``: YASA (:mod:`hypnoscope.models.yasa_stager`) when it is installed;
- every plug-in of the entry-point group ``hypnoscope.stagers``
  (:mod:`hypnoscope.models.plugins`).

A member that cannot read the recording (no channel of its kind, a rate it refuses,
YASA not installed) is left out with an info notice naming why. Weights are equal by
default; ``consensus:auto=1,yasa=2`` (Python: ``ConsensusStager(weights={...})``) names
the members and gives their weights, which need not sum to 1: the weights of the members
staged are normalised to sum 1 and stated in the report (``model.weights``). A member
may also be a shipped model name or a model file. The consensus reads the union of its
members' channels, so hypnoscope's unstageable-epoch rule applies to all of them: an epoch
with unusable signal on any member's channel stays unscored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hypnoscope.models.plugins import RECORDING_INPUT, Stager

#: The member that is the shipped model chosen for the recording's channels.
AUTO_MEMBER = "auto"
#: Where the weights come from when none are given.
EQUAL_WEIGHTS = "equal (default)"


def parse_weights(spec: str) -> dict[str, float]:
    """``"auto=1,yasa=2"`` -> ``{"auto": 1.0, "yasa": 2.0}`` (a member without ``=W``
    weighs 1); ``ValueError`` naming the part that is not ``NAME[=WEIGHT]``."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, eq, w = part.rpartition("=") if "=" in part else (part, "", "1")
        try:
            weight = float(w)
        except ValueError:
            raise ValueError(f"consensus member {part!r}: expected NAME=WEIGHT with a number "
                             f"as weight (e.g. consensus:auto=1,yasa=2)") from None
        if not name.strip() or weight < 0 or not np.isfinite(weight):
            raise ValueError(f"consensus member {part!r}: expected NAME=WEIGHT with a weight "
                             ">= 0 (e.g. consensus:auto=1,yasa=2)")
        out[name.strip()] = weight
    if not out or sum(out.values()) <= 0:
        raise ValueError(f"consensus:{spec}: no member with a positive weight")
    return out


def soft_vote(probas: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted mean ``sum_m w_m p_m / sum_m w_m`` of probabilities of one shape."""
    w = np.asarray(weights, dtype=np.float64)
    if len(probas) != w.size or not len(probas):
        raise ValueError(f"{len(probas)} probability arrays but {w.size} weights")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {w.tolist()}")
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in probas])
    return np.tensordot(w / w.sum(), stack, axes=1)


class ConsensusStager(Stager):
    """Soft vote of the stagers that can read a recording (see the module docstring).

    Parameters
    ----------
    weights : mapping or str, optional
        Member name -> weight (or ``"auto=1,yasa=2"``); given, only these members vote.
        None: every available member, equal weights.
    spec : str, optional
        The text after ``consensus:`` of a model name (the same as ``weights``).
    """

    name = "consensus"
    input_kind = RECORDING_INPUT
    n_classes = 5
    channels = {"eeg": (1, 10**6), "eog": (0, 10**6), "emg": (0, 10**6)}

    def __init__(self, weights: Mapping[str, float] | str | None = None,
                 spec: str | None = None) -> None:
        given = spec if weights is None else weights
        self.weights: dict[str, float] | None = (
            parse_weights(given) if isinstance(given, str)
            else (None if given is None else {str(k): float(v) for k, v in given.items()}))
        if self.weights is not None:
            parse_weights(",".join(f"{k}={v}" for k, v in self.weights.items()))  # checks
        self.card: dict[str, Any] = {
            "summary": ("soft vote (weighted mean of the hypnodensities) of the stagers "
                        "that can read the recording: the shipped model chosen for its "
                        "channels, YASA when installed, and plug-in stagers"),
            "weights": ("given" if self.weights is not None else EQUAL_WEIGHTS),
        }

    def candidates(self, available: Sequence[str]) -> dict[str, float]:
        """Members to try and their weights: the given ones, or every name of
        ``available`` with weight 1."""
        if self.weights is not None:
            return {k: v for k, v in self.weights.items() if v > 0}
        return dict.fromkeys(available, 1.0)

    def describe(self, staged: Mapping[str, float], names: Mapping[str, str]) -> None:
        """Record the members staged and their normalised weights in :attr:`card`
        (``names``: member -> what it is, e.g. the shipped model chosen)."""
        total = sum(staged.values())
        self.card["members"] = {m: names.get(m, m) for m in staged}
        self.card["weights"] = {m: round(w / total, 6) for m, w in staged.items()}
        self.card["weights_source"] = ("given" if self.weights is not None
                                       else EQUAL_WEIGHTS)

    def predict_proba(self, recording) -> np.ndarray:  # pragma: no cover - by staging
        raise RuntimeError("the consensus stager is staged by hypnoscope.staging (stage, "
                           "stage_recording, hypnoscope stage --model consensus), which "
                           "gives each member its own input")
