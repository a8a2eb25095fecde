"""NSRR annotation XML: the two forms the National Sleep Research Resource distributes.

SHHS, MESA, MrOS, CFS, CHAT ... ship their scoring beside each EDF in XML:

``*-nsrr.xml`` (NSRR standardised annotations)
    ``<PSGAnnotation>`` with ``<EpochLength>`` and ``<ScoredEvents>``; each
    ``<ScoredEvent>`` has ``<EventType>`` (``Stages|Stages`` for sleep stages,
    ``Arousals|Arousals``, ``Respiratory|Respiratory`` ...), ``<EventConcept>`` (``Stage 2
    sleep|2``, ``REM sleep|5``, ``Arousal|Arousal ()`` ...), ``<Start>`` and ``<Duration>``
    in seconds from the recording start, and optionally ``<SignalLocation>``. Files
    written by the NSRR translator with ontology concepts (``SDO:WakeState``,
    ``SDO:NonRapidEyeMovementSleep-N2``, ``SRO:Stage2Sleep`` ...,
    :data:`hypnoscope.stages.NSRR_ONTOLOGY_STAGES`) may have no ``<EventType>``: an event
    without one is a stage when its concept (after ``label_map``) is a stage label.
``*-profusion.xml`` (Compumedics Profusion export)
    ``<CMPStudyConfig>`` with ``<EpochLength>``, ``<SleepStages>`` holding one
    ``<SleepStage>`` integer per epoch from the recording start
    (:data:`hypnoscope.stages.PROFUSION_STAGE_CODES`: 0 W, 1-4 R&K stages, 5 REM, 6
    movement and 9 unscored), and ``<ScoredEvents>`` of ``<Name>``, ``<Start>``,
    ``<Duration>``, ``<Input>``.

Stage concepts go through the one label table of :mod:`hypnoscope.stages` (R&K stage 4 ->
N3; movement, unscored and unsure -> unscored); ``label_map`` renames site concepts
first. Arousals and every other non-stage event are not stages: they are read with
:func:`read_xml_events`. A malformed file raises a ``ValueError`` naming the file and the
element (``ScoredEvent 12``, ``SleepStage 40``, the missing child ...). The XML gives no
date, so the hypnogram has no ``start_time`` and is placed by its onsets (seconds from
the recording start).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.stages import (
    NSRR_ONTOLOGY_STAGES,
    NSRR_STAGE_CONCEPT,
    PROFUSION_STAGE_CODES,
    UNSCORED,
    accepted_labels,
    is_stage_text,
    label_to_code,
    map_labels,
    parse_label_map,
)
from hypnoscope.utils.files import write_text_atomic

#: Root elements of the two forms.
NSRR_ROOT, PROFUSION_ROOT = "PSGAnnotation", "CMPStudyConfig"
#: ``EventType`` of sleep-stage events in ``*-nsrr.xml``.
STAGE_EVENT_TYPE = "Stages|Stages"
#: Ontology concepts of the stage family (``SDO:NonRapidEyeMovementSleep-N5``,
#: ``SRO:Stage6Sleep``): one not in :data:`NSRR_ONTOLOGY_STAGES` is an unknown stage, never
#: an event to ignore.
_ONTOLOGY_STAGE_LIKE = re.compile(r"^sdo:(wakestate|(nonrapideyemovement|rapideyemovement)sleep)"
                                  r"|^sro:(wake|stage\w*sleep|rapideyemovement)$",
                                  re.IGNORECASE)
#: Columns of :func:`read_xml_events`.
EVENT_COLUMNS = ("onset", "duration", "type", "description", "channel")


def _parse(path: Path) -> ET.Element:
    if not path.is_file():
        raise FileNotFoundError(f"hypnogram file not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, col = getattr(exc, "position", (0, 0))
        raise ValueError(f"{path}: not well-formed XML at line {line}, column {col} "
                         f"({exc}); expected an NSRR <{NSRR_ROOT}> or Compumedics "
                         f"<{PROFUSION_ROOT}> annotation file") from None
    if root.tag not in (NSRR_ROOT, PROFUSION_ROOT):
        raise ValueError(f"{path}: root element <{root.tag}>, expected <{NSRR_ROOT}> "
                         f"(NSRR *-nsrr.xml) or <{PROFUSION_ROOT}> (Compumedics "
                         "*-profusion.xml)")
    return root


def _text(el: ET.Element | None) -> str:
    return "" if el is None or el.text is None else el.text.strip()


def _seconds(event: ET.Element, child: str, where: str, path: Path,
             non_negative: bool = True) -> float:
    el = event.find(child)
    if el is None:
        raise ValueError(f"{path}: {where} has no <{child}> element; expected <{child}> "
                         "in seconds")
    text = _text(el)
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or (non_negative and value < 0):
        raise ValueError(f"{path}: {where}: <{child}> is {text!r}; expected a "
                         f"{'non-negative ' if non_negative else ''}number of seconds")
    return value


def _epoch_length(root: ET.Element, path: Path, default: float | None) -> float:
    el = root.find("EpochLength")
    if el is None:
        if default is None:
            raise ValueError(f"{path}: no <EpochLength> element; expected the scoring "
                             "epoch length in seconds (e.g. <EpochLength>30</EpochLength>)")
        return float(default)
    try:
        value = float(_text(el))
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{path}: <EpochLength> is {_text(el)!r}; expected a positive "
                         "number of seconds")
    return value


def _nsrr_events(root: ET.Element, path: Path) -> list[dict[str, Any]]:
    """Every ``ScoredEvent`` as a dict (number, type, concept, onset, duration, channel)."""
    container = root.find("ScoredEvents")
    if container is None:
        raise ValueError(f"{path}: <{NSRR_ROOT}> has no <ScoredEvents> element")
    out = []
    for k, ev in enumerate(container.findall("ScoredEvent"), 1):
        etype, concept = _text(ev.find("EventType")), _text(ev.find("EventConcept"))
        where = f"ScoredEvent {k}" + (f" ({concept!r})" if concept else "")
        if ev.find("EventConcept") is None:
            raise ValueError(f"{path}: {where} has no <EventConcept> element")
        if concept == "Recording Start Time":  # the recording's span, not an event
            continue
        out.append({"number": k, "type": etype, "concept": concept, "where": where,
                    "onset": _seconds(ev, "Start", where, path),
                    "duration": _seconds(ev, "Duration", where, path),
                    "channel": _text(ev.find("SignalLocation"))})
    return out


def _is_stage_event(event: dict[str, Any], label_map: dict[str, str] | None = None) -> bool:
    """A stage event: ``EventType`` ``Stages|Stages`` (or ``Stages``), or, without an
    ``EventType`` (NSRR translator files with ontology concepts), a concept that is a stage
    label after ``label_map`` or an unknown member of the ontology's stage family."""
    etype = event["type"].strip()
    if etype:
        return etype.split("|")[0].strip().lower() == STAGE_EVENT_TYPE.split("|")[0].lower()
    concept = map_labels([event["concept"]], label_map)[0].strip()
    return bool(concept) and (is_stage_text(concept)
                              or bool(_ONTOLOGY_STAGE_LIKE.match(concept)))


def _no_stage_error(path: Path, events: list[dict[str, Any]]) -> ValueError:
    concepts = list(dict.fromkeys(e["concept"] for e in events if e["concept"]))
    found = (f"; its concepts are {', '.join(repr(c) for c in concepts[:8])}"
             f"{f' and {len(concepts) - 8} more' if len(concepts) > 8 else ''}"
             if concepts else "")
    return ValueError(
        f"{path}: no sleep-stage event found (neither <EventType>{STAGE_EVENT_TYPE}"
        f"</EventType> nor a stage <EventConcept> such as 'Stage 2 sleep|2' or "
        f"'{next(iter(NSRR_ONTOLOGY_STAGES))}'){found}; map site stage concepts with "
        "label_map (CLI: --label-map 'CONCEPT=N2'), or is the recording unscored?")


def _read_nsrr(root: ET.Element, path: Path, label_map, epoch_sec) -> Hypnogram:
    scored = _nsrr_events(root, path)
    events = [e for e in scored if _is_stage_event(e, label_map)]
    if not events:
        raise _no_stage_error(path, scored)
    concepts = map_labels([e["concept"] for e in events], label_map)
    bad = [(c, e["where"]) for c, e in zip(concepts, events, strict=True)
           if not is_stage_text(c)]
    if bad:
        listed = ", ".join(f"{c!r} ({w})" for c, w in bad[:5])
        raise ValueError(f"{path}: unknown sleep-stage concept(s) {listed}"
                         f"{f' and {len(bad) - 5} more' if len(bad) > 5 else ''}. Accepted "
                         f"labels (case-insensitive): {accepted_labels()}. Map site labels "
                         "with label_map (CLI: --label-map)")
    ep = _epoch_length(root, path, epoch_sec)
    return Hypnogram.from_annotations([e["onset"] for e in events],
                                      [e["duration"] for e in events], concepts,
                                      epoch_sec=ep, source=str(path))


def _read_profusion(root: ET.Element, path: Path, label_map, epoch_sec) -> Hypnogram:
    stages = root.find("SleepStages")
    if stages is None:
        raise ValueError(f"{path}: <{PROFUSION_ROOT}> has no <SleepStages> element; "
                         "expected one <SleepStage> integer per epoch")
    codes = []
    for k, el in enumerate(stages.findall("SleepStage"), 1):
        text = _text(el)
        if label_map and text.lower() in label_map:
            codes.append(label_to_code(label_map[text.lower()]))
            continue
        try:
            value = int(text)
        except ValueError:
            value = None
        if value not in PROFUSION_STAGE_CODES:
            known = ", ".join(f"{i}" for i in PROFUSION_STAGE_CODES)
            raise ValueError(f"{path}: SleepStage {k}: {text!r} is not a Profusion stage "
                             f"code; expected one of {known} (0 wake, 1-4 R&K stages, 5 "
                             "REM, 6 movement, 9 unscored)")
        codes.append(PROFUSION_STAGE_CODES[value])
    if not codes:
        raise ValueError(f"{path}: <SleepStages> holds no <SleepStage> element")
    ep = _epoch_length(root, path, epoch_sec)
    return Hypnogram(np.array(codes, dtype=np.int64), epoch_sec=ep, onset_sec=0.0)


def read_xml_hypnogram(path: str | os.PathLike, label_map: dict[str, str] | str | None = None,
                       epoch_sec: float | None = None) -> Hypnogram:
    """Read the sleep stages of an NSRR ``*-nsrr.xml`` or Compumedics ``*-profusion.xml``
    file (the form is told by the root element).

    Parameters
    ----------
    path : path-like
        The XML file.
    label_map : dict, str or None
        Site stage labels (``EventConcept`` texts or Profusion integers as text) to stage
        labels, applied before the label table (:func:`hypnoscope.stages.parse_label_map`);
        in files without ``EventType`` a mapped concept makes its events stages.
    epoch_sec : float or None
        Used only when the file has no ``<EpochLength>``.

    Raises
    ------
    ValueError
        Not well-formed XML, an unknown root, a ``ScoredEvent`` without ``Start``/
        ``Duration`` or with a non-numeric one, an unknown stage concept or Profusion code,
        or no stage at all; the message names the file and the element.
    """
    path = Path(path)
    root = _parse(path)
    label_map = parse_label_map(label_map)
    if root.tag == NSRR_ROOT:
        return _read_nsrr(root, path, label_map, epoch_sec)
    return _read_profusion(root, path, label_map, epoch_sec)


def read_xml_events(path: str | os.PathLike,
                    label_map: dict[str, str] | str | None = None) -> pd.DataFrame:
    """The scored events that are not sleep stages (arousals, respiratory events,
    desaturations, limb movements ...) of either XML form (stage events as told by
    :func:`read_xml_hypnogram`, with the same ``label_map``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EVENT_COLUMNS`: ``onset`` and ``duration`` (s from the recording
        start), ``type`` (the ``EventType`` before ``|``, e.g. ``Arousals``; empty for
        Profusion), ``description`` (the ``EventConcept`` before ``|`` or the Profusion
        ``Name``, e.g. ``Arousal``) and ``channel`` (``SignalLocation``/``Input``), in
        file order.
    """
    path = Path(path)
    root = _parse(path)
    label_map = parse_label_map(label_map)
    rows = []
    if root.tag == NSRR_ROOT:
        for e in _nsrr_events(root, path):
            if not _is_stage_event(e, label_map):
                rows.append((e["onset"], e["duration"], e["type"].split("|")[0],
                             e["concept"].split("|")[0], e["channel"]))
    else:
        container = root.find("ScoredEvents")
        for k, ev in enumerate([] if container is None else container.findall("ScoredEvent"),
                               1):
            name = _text(ev.find("Name"))
            where = f"ScoredEvent {k}" + (f" ({name!r})" if name else "")
            rows.append((_seconds(ev, "Start", where, path),
                         _seconds(ev, "Duration", where, path), "", name,
                         _text(ev.find("Input"))))
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS)).astype(
        {"onset": float, "duration": float})


def _num(x: float) -> str:
    """Seconds as NSRR writes them (``30.0``), to the millisecond."""
    text = f"{x:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _runs(codes: np.ndarray) -> list[tuple[int, int, int]]:
    change = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate([[0], change]).astype(int)
    stops = np.concatenate([change, [len(codes)]]).astype(int)
    return [(int(a), int(b), int(codes[a])) for a, b in zip(starts, stops, strict=True)]


def write_nsrr_xml(hypnogram: Hypnogram, path: str | os.PathLike,
                   events: pd.DataFrame | list[dict[str, Any]] | None = None,
                   recording_sec: float | None = None) -> Path:
    """Write a hypnogram (and optional events) as an NSRR ``*-nsrr.xml`` file, atomically.

    Stages are written as runs of ``Stages|Stages`` events with the concepts of
    :data:`hypnoscope.stages.NSRR_STAGE_CONCEPT`; ``events`` (rows with the columns of
    :func:`read_xml_events`) follow them. The ``Recording Start Time`` event spans
    ``recording_sec`` (default: the hypnogram's end) and carries the clock time of the
    hypnogram's ``start_time`` when known.
    """
    from hypnoscope._version import __version__

    if hypnogram.n_classes != 5:
        raise ValueError("only 5-class hypnograms can be written as NSRR XML")
    root = ET.Element(NSRR_ROOT)
    ET.SubElement(root, "SoftwareVersion").text = f"hypnoscope {__version__}"
    ET.SubElement(root, "EpochLength").text = f"{hypnogram.epoch_sec:g}"
    container = ET.SubElement(root, "ScoredEvents")

    def add(etype: str, concept: str, start: float, duration: float, channel: str = "",
            clock: str | None = None) -> None:
        ev = ET.SubElement(container, "ScoredEvent")
        ET.SubElement(ev, "EventType").text = etype or None
        ET.SubElement(ev, "EventConcept").text = concept
        ET.SubElement(ev, "Start").text = _num(start)
        ET.SubElement(ev, "Duration").text = _num(duration)
        if channel:
            ET.SubElement(ev, "SignalLocation").text = channel
        if clock:
            ET.SubElement(ev, "ClockTime").text = clock

    end = hypnogram.onset_sec + hypnogram.duration_sec
    start = hypnogram.start_time
    add("", "Recording Start Time", 0.0, float(recording_sec or end),
        clock=None if start is None else f"00.00.00 {start:%H.%M.%S}")
    for a, b, code in _runs(hypnogram.codes):
        add(STAGE_EVENT_TYPE, NSRR_STAGE_CONCEPT[code if code >= 0 else UNSCORED],
            hypnogram.onset_sec + a * hypnogram.epoch_sec, (b - a) * hypnogram.epoch_sec)
    rows = events.to_dict("records") if isinstance(events, pd.DataFrame) else (events or [])
    for r in rows:
        etype = str(r.get("type") or "")
        desc = str(r["description"])
        add(f"{etype}|{etype}" if etype and "|" not in etype else etype,
            desc if "|" in desc else f"{desc}|{desc}", float(r["onset"]),
            float(r["duration"]), str(r.get("channel") or ""))
    ET.indent(root)
    text = ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            + ET.tostring(root, encoding="unicode") + "\n")
    return write_text_atomic(path, text)
