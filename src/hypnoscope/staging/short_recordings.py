"""Recordings shorter than a night: the ``short-recording`` notice.

Every per-recording statistic of a staging model (the band-power z-score, the per-night
normalisation of the features, the temporal context) is taken over the recording staged.
On a whole night it rests on hours of every stage; on a nap, an MSLT/MWT trial or a split
night it rests on a few minutes of one or two stages, and the model's accuracy is lower.
How much lower is measured by the stretch protocol
(:mod:`hypnoscope.evaluation.stretches`: stretches of held-out nights, each staged as its
own recording) and stated in the model card under ``"stretches"``::

    {"source": "benchmarks/results/real_accuracy_stretches.json", "protocol": "...",
     "accuracy": {"whole": ..., "2 h": ..., "1 h": ..., "30 min": ..., "nap 30 min": ...}}

(length labels as :func:`hypnoscope.evaluation.stretches.length_label` writes them).
A recording whose staged span is shorter than :data:`SHORT_RECORDING_MIN` gets a
``short-recording`` notice naming its length and the accuracy the card states for the
measured stretch length nearest to it (:func:`nearest_stretch`); a card without
``"stretches"`` gets the same notice saying that the card gives no stretch accuracy.
The notice is of severity ``info``, so ``--strict`` does not refuse it: a nap or an
MSLT trial is a valid recording, not a questionable one; the notice says what accuracy
to expect of it.
"""

from __future__ import annotations

import math
from typing import Any

from hypnoscope.evaluation.stretches import SHORT_MINUTES, parse_length_label
from hypnoscope.notices import Notice, Notices

#: Staged spans shorter than this (minutes) get the ``short-recording`` notice: the
#: length below which a recording is a stretch, not a night
#: (:data:`hypnoscope.evaluation.stretches.SHORT_MINUTES`, which says why; README,
#: "Signal quality and night boundaries").
SHORT_RECORDING_MIN = SHORT_MINUTES
#: Key of the stretch accuracies in a model card.
CARD_KEY = "stretches"

def _accuracy(value: Any) -> float | None:
    """A finite accuracy in [0, 1], else None."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and 0.0 <= x <= 1.0 else None


def nearest_stretch(card: dict[str, Any], minutes: float) -> dict[str, Any] | None:
    """The stretch accuracy a model card states for the measured length nearest to
    ``minutes``.

    Nearest on a log scale (30 min, 1 h and 2 h are doublings) among the card's
    stretches of a stated length that do not start in wake; a tie goes to the shorter
    length (the lower estimate, as a rule). ``"whole"`` (nights of no single length) is
    never the nearest; it is returned beside it for comparison.

    Parameters
    ----------
    card : dict
        A model card (``card["stretches"]["accuracy"]``: label -> accuracy).
    minutes : float
        Length of the recording staged.

    Returns
    -------
    dict or None
        ``length`` (label), ``minutes``, ``accuracy``; ``nap`` (the accuracy of nap-like
        stretches of that length, which start in wake, or None); ``whole`` (or None);
        ``source`` and ``protocol`` of the card's entry. None when the card has no
        ``"stretches"`` entry or no stretch of a stated length with a valid accuracy.
    """
    entry = card.get(CARD_KEY) if isinstance(card, dict) else None
    acc = entry.get("accuracy") if isinstance(entry, dict) else None
    if not isinstance(acc, dict):
        return None
    plain: dict[float, tuple[str, float]] = {}
    naps: dict[float, float] = {}
    whole = None
    for label, value in acc.items():
        parsed, a = parse_length_label(label), _accuracy(value)
        if parsed is None or a is None:
            continue
        length, nap = parsed
        if length is None:
            whole = a
        elif nap:
            naps[length] = a
        else:
            plain[length] = (str(label), a)
    if not plain or minutes <= 0:
        return None
    best = min(plain, key=lambda m: (abs(math.log(minutes / m)), m))
    label, a = plain[best]
    return {"length": label, "minutes": best, "accuracy": a, "nap": naps.get(best),
            "whole": whole, "source": entry.get("source"), "protocol": entry.get("protocol")}


def _minutes_text(minutes: float) -> str:
    """``"10 min"``, ``"9.5 min"`` (epochs are 30 s)."""
    return f"{round(minutes * 2) / 2:g} min"


def short_recording_message(src: str, minutes: float, card: dict[str, Any],
                            what: str = "recording",
                            threshold: float = SHORT_RECORDING_MIN) -> str:
    """The ``short-recording`` notice's message (see :func:`short_recording_notice`)."""
    name = card.get("name", "model") if isinstance(card, dict) else "model"
    length = _minutes_text(minutes)
    head = (f"{src}: short recording: the {what} lasts {length}, less than "
            f"{threshold / 60:g} h; what the model learns of the recording's own levels "
            f"rests on these {length}, so expect a lower accuracy than on whole nights")
    near = nearest_stretch(card, minutes)
    if near is None:
        return (f"{head}: the model card of {name!r} gives no stretch accuracy (accuracy "
                "on stretches of nights, each staged as its own recording, was not "
                "measured for it)")
    extra = []
    if near["nap"] is not None:
        extra.append(f"{near['nap']:.2f} on nap-like {near['length']} stretches, which "
                     "start in wake")
    if near["whole"] is not None:
        extra.append(f"{near['whole']:.2f} on whole nights")
    source = f"; {near['source']}" if near["source"] else ""
    return (f"{head}: the model card of {name!r} states an accuracy of "
            f"{near['accuracy']:.2f} on {near['length']} stretches of held-out nights, "
            "each staged as its own recording"
            + (f" ({', '.join(extra)}{source})" if extra or source else ""))


def short_recording_notice(notices: Notices, src: str, minutes: float,
                           card: dict[str, Any], what: str = "recording",
                           threshold: float = SHORT_RECORDING_MIN) -> Notice | None:
    """Add the ``short-recording`` notice (info) to ``notices`` when ``minutes`` (the length
    of the span staged) is below ``threshold``.

    Parameters
    ----------
    notices : Notices
        Where the notice goes.
    src : str
        The recording's name (file path), which starts the message.
    minutes : float
        Length of the span staged (minutes).
    card : dict
        The model card; its ``"stretches"`` entry gives the accuracy named
        (:func:`nearest_stretch`).
    what : str
        What was staged, in words (``"recording"``, ``"span from lights-off to
        lights-on"``).
    threshold : float
        :data:`SHORT_RECORDING_MIN` by default.

    Returns
    -------
    Notice or None
        The notice added, or None for a span of at least ``threshold`` minutes.
    """
    if minutes >= threshold:
        return None
    return notices.add("short-recording",
                       short_recording_message(src, minutes, card, what, threshold),
                       severity="info")


__all__ = ["CARD_KEY", "SHORT_RECORDING_MIN", "nearest_stretch", "parse_length_label",
           "short_recording_message", "short_recording_notice"]
