"""Sleep-stage label conventions shared by every module.

Integer codes follow the AASM 5-class scheme used by Sleep-EDF benchmarks and by the
real band-power set: ``W=0, N1=1, N2=2, N3=3, R=4``. Epochs that carry no usable
label (``Sleep stage ?``, ``Movement time``, rejected epochs) are ``UNSCORED = -100``,
which is also PyTorch's default ``ignore_index``. Any negative label is treated as
unscored. The 3-class view maps ``W -> 0``, ``N1/N2/N3 -> 1 (NREM)``, ``R -> 2``.

This module is the one home of stage names, codes and label maps: free-text labels to
codes (:func:`label_to_code`, :func:`label_to_code3`), codes to names
(:func:`stage_names`, :func:`codes_to_labels`), the 5 -> 3 class map
(:func:`to_3class`, :func:`proba_to_3class`), the Sleep-EDF annotation texts
(:data:`EDF_STAGE_TEXT`), the NSRR XML stage concepts (:data:`NSRR_STAGE_CONCEPT`),
Compumedics Profusion stage integers (:data:`PROFUSION_STAGE_CODES`) and the sleep-period
crop on stage codes
(:func:`sleep_period_slice`).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

STAGES_5: tuple[str, ...] = ("W", "N1", "N2", "N3", "R")
STAGES_3: tuple[str, ...] = ("W", "NREM", "R")
UNSCORED: int = -100
UNSCORED_LABEL: str = "?"

W, N1, N2, N3, R = range(5)

#: THE stage-label table: every free-text stage label hypnoscope reads (EDF+ annotation
#: texts, TSV/CSV ``stage`` columns, text files, NSRR XML ``EventConcept`` values) goes
#: through it, case-insensitively. Rows (keys are lower-case):
#:
#: ============ ================================================================
#: code         labels
#: ============ ================================================================
#: W            ``W``, ``Wake``, ``0``, ``Sleep stage W``, ``Stage W``, NSRR ``Wake|0``
#: N1           ``N1``, ``1``, ``S1``, ``NREM1``, ``Stage 1``, ``Stage N1``,
#:              ``Sleep stage 1``/``N1``, NSRR ``Stage 1 sleep|1``
#: N2           the same with 2 (``Stage 2``, ``N2``, ``Sleep stage N2``, ``S2``, ``NREM2``,
#:              NSRR ``Stage 2 sleep|2``)
#: N3           the same with 3 and 4: R&K stage 4 merges into N3 (``S4``, ``NREM4``,
#:              ``Sleep stage 4``, NSRR ``Stage 4 sleep|4``)
#: R            ``R``, ``REM``, ``5``, ``Stage R``/``REM``, ``Sleep stage R``/``REM``,
#:              NSRR ``REM sleep|5``
#: UNSCORED     ``?``, ``Sleep stage ?``, ``Movement time``/``MT``/``M``/``Movement``,
#:              ``Unscored``/``U``/``Unknown``, ``Artefact``, negative numbers, empty,
#:              NSRR ``Movement|6``, ``Unscored|9``, ``Unsure|Unsure``
#: ============ ================================================================
#:
#: and the NSRR ontology concepts :data:`NSRR_ONTOLOGY_STAGES` (``SDO:WakeState``,
#: ``SDO:NonRapidEyeMovementSleep-N2``, ``SRO:Stage2Sleep``, ``SRO:RapidEyeMovement`` ...).
#:
#: Vendor variants not listed (``N 2``, ``Stage 6``, ``Wach``) are errors, mapped with a
#: ``label_map`` (:func:`hypnoscope.stages.parse_label_map`). Compumedics Profusion
#: XML stores integers, mapped by :data:`PROFUSION_STAGE_CODES`. Bare numbers of text and
#: TSV/CSV files are first spelled out by :func:`resolve_stage_codes` (R&K or YASA numbering).
_LABEL_MAP: dict[str, int] = {}
for _code, _names in {
    W: ("w", "wake", "0", "sleep stage w", "stage w", "sleep stage wake", "stage wake",
        "wake|0"),
    N3: ("n3", "3", "4", "s3", "s4", "n4", "nrem3", "nrem4", "sleep stage 3", "sleep stage 4",
         "sleep stage n3", "sleep stage n4", "stage 3", "stage 4", "stage n3", "stage n4",
         "stage 3 sleep|3", "stage 4 sleep|4"),
    R: ("r", "rem", "5", "sleep stage r", "sleep stage rem", "stage r", "stage rem",
        "rem sleep|5"),
    UNSCORED: (
        "?", "sleep stage ?", "movement time", "mt", "m", "movement", "unscored",
        "u", "unknown", "artefact", "artifact", "-1", "-100", "-2", "nan", "",
        "movement|6", "unscored|9", "unsure|unsure",
    ),
}.items():
    for _name in _names:
        _LABEL_MAP[_name] = _code
for _code in (N1, N2):
    for _name in ("n{}", "{}", "s{}", "nrem{}", "sleep stage {}", "sleep stage n{}",
                  "stage {}", "stage n{}", "stage {} sleep|{}"):
        _LABEL_MAP[_name.format(_code, _code)] = _code

#: NSRR ontology concepts of sleep stages: the ``EventConcept`` of XML written by the NSRR
#: translator with the Sleep Domain Ontology (``SDO:``, e.g. SHHS) or the older ``SRO:``
#: vocabulary (e.g. SOF), often without an ``EventType``. Stage 4 merges into N3.
NSRR_ONTOLOGY_STAGES: dict[str, int] = {
    "SDO:WakeState": W, "SDO:NonRapidEyeMovementSleep-N1": N1,
    "SDO:NonRapidEyeMovementSleep-N2": N2, "SDO:NonRapidEyeMovementSleep-N3": N3,
    "SDO:NonRapidEyeMovementSleep-N4": N3, "SDO:RapidEyeMovementSleep": R,
    "SRO:Wake": W, "SRO:Stage1Sleep": N1, "SRO:Stage2Sleep": N2, "SRO:Stage3Sleep": N3,
    "SRO:Stage4Sleep": N3, "SRO:Stage34Sleep": N3, "SRO:RapidEyeMovement": R,
}
_LABEL_MAP.update({k.lower(): v for k, v in NSRR_ONTOLOGY_STAGES.items()})

#: Compumedics Profusion ``<SleepStage>`` integers (``*-profusion.xml`` of NSRR): R&K
#: 0 wake, 1-4 sleep stages 1-4 (3 and 4 -> N3), 5 REM; 6 (movement) and 9 (unscored)
#: are unscored. Other values are errors.
PROFUSION_STAGE_CODES: dict[int, int] = {0: W, 1: N1, 2: N2, 3: N3, 4: N3, 5: R,
                                         6: UNSCORED, 9: UNSCORED}


#: Names of the 3-class view (lower-case) -> 3-class codes W=0, NREM=1, R=2.
_LABEL_MAP_3: dict[str, int] = {"w": 0, "wake": 0, "nrem": 1, "r": 2, "rem": 2}

#: Sleep-EDF annotation text of each 5-class code (written to EDF+ hypnograms).
EDF_STAGE_TEXT: dict[int, str] = {W: "Sleep stage W", N1: "Sleep stage 1",
                                  N2: "Sleep stage 2", N3: "Sleep stage 3",
                                  R: "Sleep stage R", UNSCORED: "Sleep stage ?"}


#: NSRR ``EventConcept`` of each 5-class code (written to ``*-nsrr.xml`` files; N3 as R&K
#: stage 3). Reading goes through the label table, which knows these and ``Stage 4 sleep|4``.
NSRR_STAGE_CONCEPT: dict[int, str] = {W: "Wake|0", N1: "Stage 1 sleep|1",
                                      N2: "Stage 2 sleep|2", N3: "Stage 3 sleep|3",
                                      R: "REM sleep|5", UNSCORED: "Unscored|9"}


def stage_names(n_classes: int = 5) -> tuple[str, ...]:
    """Class names of the 5-class (``W, N1, N2, N3, R``) or 3-class (``W, NREM, R``) view.

    Raises
    ------
    ValueError
        If ``n_classes`` is not 3 or 5.
    """
    if n_classes == 5:
        return STAGES_5
    if n_classes == 3:
        return STAGES_3
    raise ValueError(f"n_classes must be 3 or 5, got {n_classes}")


def label_to_code(label: str | int) -> int:
    """Return the 5-class integer code of one stage label.

    Parameters
    ----------
    label : str or int
        A stage name such as ``"N2"``, ``"Sleep stage 4"``, ``"REM"``, ``"W"`` or an
        integer code. Negative integers mean unscored.

    Raises
    ------
    ValueError
        If the label is not a known stage name.
    """
    if isinstance(label, (int, np.integer)):
        code = int(label)
        if code < 0:
            return UNSCORED
        if code >= len(STAGES_5):
            raise ValueError(f"stage code {code} is out of range; expected 0-4 or negative")
        return code
    key = str(label).strip().lower()
    if key not in _LABEL_MAP:
        raise ValueError(
            f"unknown sleep-stage label {label!r}; expected one of W, N1, N2, N3, R "
            "(or R&K / Sleep-EDF names such as 'Sleep stage 4', or '?' for unscored)"
        )
    return _LABEL_MAP[key]


def label_to_code3(label: str) -> int:
    """Return the 3-class code (W=0, NREM=1, R=2) of a ``W``/``Wake``, ``NREM``,
    ``R``/``REM`` label; unscored names (``?``, ``Movement time`` ...) give ``UNSCORED``.

    Raises
    ------
    ValueError
        If the label is not a 3-class stage name.
    """
    key = str(label).strip().lower()
    if key in _LABEL_MAP_3:
        return _LABEL_MAP_3[key]
    if _LABEL_MAP.get(key) == UNSCORED:
        return UNSCORED
    raise ValueError(f"unknown 3-class stage label {label!r}; expected W, NREM, R or ?")


def labels_to_codes(labels) -> np.ndarray:
    """Vector version of :func:`label_to_code`; returns an ``int64`` array."""
    return np.array([label_to_code(x) for x in labels], dtype=np.int64)


def codes_to_labels(codes, n_classes: int = 5) -> list[str]:
    """Names of integer codes (``UNSCORED`` becomes ``'?'``)."""
    names = stage_names(n_classes)
    return [names[c] if c >= 0 else UNSCORED_LABEL for c in np.asarray(codes, dtype=int)]


def to_3class(codes) -> np.ndarray:
    """Map 5-class codes to the 3-class view (W=0, NREM=1, R=2); unscored stays unscored."""
    codes = np.asarray(codes, dtype=np.int64)
    out = np.full(codes.shape, UNSCORED, dtype=np.int64)
    out[codes == W] = 0
    out[(codes == N1) | (codes == N2) | (codes == N3)] = 1
    out[codes == R] = 2
    return out


def wake_sleep_labels(y: np.ndarray) -> np.ndarray:
    """Stage-1 targets: W -> 0, N1/N2/N3/R -> 1 (sleep), unscored stays -100."""
    y = np.asarray(y, np.int64)
    out = np.full(y.shape, UNSCORED, np.int64)
    out[y == W] = 0
    out[np.isin(y, (N1, N2, N3, R))] = 1
    return out


def rem_nrem_labels(y: np.ndarray) -> np.ndarray:
    """Stage-2 targets on sleep epochs only: N1/N2/N3 -> 0 (NREM), R -> 1; wake and
    unscored epochs are ignored (-100)."""
    y = np.asarray(y, np.int64)
    out = np.full(y.shape, UNSCORED, np.int64)
    out[np.isin(y, (N1, N2, N3))] = 0
    out[y == R] = 1
    return out


def merge_hierarchical(p_wake_sleep: np.ndarray, p_nrem_rem: np.ndarray) -> np.ndarray:
    """Merge hierarchical stage probabilities into W / NREM / R.

    ``p(W) = p1(W)``, ``p(NREM) = p1(S) * p2(NREM)``, ``p(R) = p1(S) * p2(R)``; rows sum to 1.

    Parameters
    ----------
    p_wake_sleep : ndarray (n, 2)
        Stage-1 probabilities [wake, sleep].
    p_nrem_rem : ndarray (n, 2)
        Stage-2 probabilities [NREM, REM].
    """
    p1, p2 = np.asarray(p_wake_sleep, float), np.asarray(p_nrem_rem, float)
    if p1.shape != p2.shape or p1.ndim != 2 or p1.shape[1] != 2:
        raise ValueError(f"expected two (n, 2) probability arrays, got {p1.shape} and "
                         f"{p2.shape}")
    return np.stack([p1[:, 0], p1[:, 1] * p2[:, 0], p1[:, 1] * p2[:, 1]], axis=1)


def cascade_predict(p_wake_sleep: np.ndarray, p_nrem_rem: np.ndarray) -> np.ndarray:
    """Hard hierarchical decision: W where stage 1 says wake, otherwise stage 2's NREM (1)
    or R (2). Stage 2 only decides epochs that stage 1 calls sleep."""
    p1, p2 = np.asarray(p_wake_sleep), np.asarray(p_nrem_rem)
    sleep = p1.argmax(axis=1) == 1
    out = np.zeros(len(p1), np.int64)
    out[sleep] = 1 + p2[sleep].argmax(axis=1)
    return out


#: Rules that merge the per-task probabilities of a multi-task model into classes:
#: name -> (probabilities, hard decision), each called with the tasks' ``(n, k)``
#: probabilities in task order (``hierarchical``: Wake/Sleep, then NREM/REM).
TASK_MERGES = {"hierarchical": (merge_hierarchical, cascade_predict)}


def proba_to_3class(proba: np.ndarray) -> np.ndarray:
    """Sum 5-class probabilities (n, 5) into 3-class probabilities (n, 3)."""
    proba = np.asarray(proba, dtype=float)
    return np.stack([proba[:, W], proba[:, N1:N3 + 1].sum(axis=1), proba[:, R]], axis=1)


def is_scored(codes) -> np.ndarray:
    """Boolean mask of epochs with a usable label."""
    return np.asarray(codes) >= 0


def sleep_period_slice(codes, wake_pad_min: float = 30.0, epoch_sec: float = 30.0,
                       ) -> slice | None:
    """Epochs from ``wake_pad_min`` minutes before the first sleep epoch to the same after
    the last one, clipped to the night (the Sleep-EDF literature's crop).

    Sleep is any code above ``W`` (N1, N2, N3, R; NREM or R in the 3-class view);
    unscored epochs are not sleep. Returns None when there is no sleep epoch. The pad is
    ``round(wake_pad_min * 60 / epoch_sec)`` epochs.
    """
    sleep = np.flatnonzero(np.asarray(codes) > W)
    if sleep.size == 0:
        return None
    pad = int(round(wake_pad_min * 60.0 / epoch_sec))
    return slice(max(0, int(sleep[0]) - pad), min(len(codes), int(sleep[-1]) + 1 + pad))


# ------------------------------------------------- label rules of the readers
#: Start written to (and read back as "unknown" from) EDF+ files when no start time is
#: known: 1985-01-01 00:00:00, the EDF header's conventional placeholder date.
UNKNOWN_EDF_START = _dt.datetime(1985, 1, 1, 0, 0, 0)


def is_stage_text(text: str, to_code=label_to_code) -> bool:
    try:
        to_code(text)
    except ValueError:
        return False
    return True


def is_3class(labels) -> bool:
    """True when labels use the 3-class view (some label is ``NREM``), e.g. files
    written by a 3-class hypnogram's ``to_tsv``/``to_txt``."""
    return any(str(x).strip().lower() == "nrem" for x in labels)


#: Annotation texts that claim to be a stage (so an unknown one is an error, not an
#: event to ignore): ``Sleep stage X``, ``Stage X``, ``N 2``, ``NREM2``, ``S-3`` ...
STAGE_LIKE = re.compile(r"^(sleep[\s_-]*stage|stage)\b|^(n|s|nrem|rem)[\s_-]*\d+$")


def accepted_labels(n_classes: int = 5) -> str:
    """Text listing the stage labels the readers accept (case-insensitive), for errors."""
    groups: dict[int, list[str]] = {}
    for name, code in _LABEL_MAP.items():
        groups.setdefault(code, []).append(name)
    unscored = ", ".join(repr(n) for n in groups[UNSCORED] if n)
    if n_classes == 3:
        return f"W (wake), NREM, R (rem), or unscored: {unscored}"
    names = "; ".join(f"{STAGES_5[c]} ({', '.join(repr(n) for n in groups[c])})"
                      for c in range(len(STAGES_5)))
    return f"{names}; unscored: {unscored}"


def parse_label_map(spec: Any) -> dict[str, str] | None:
    """A ``label_map`` (site label -> stage) from a dict, a JSON file (an object of
    strings) or a ``LABEL=STAGE,LABEL=STAGE`` string (the ``--label-map`` option).

    Keys match labels case-insensitively after stripping spaces at both ends; values
    must be stage labels the readers accept (``W``, ``N1`` ... ``R``, ``NREM``, ``?``).
    Raises ``ValueError`` naming the bad entry.
    """
    import json

    if spec is None:
        return None
    what = "label_map"
    if isinstance(spec, str | os.PathLike):
        text = str(spec)
        path = Path(text)
        if path.suffix.lower() == ".json" or path.is_file():
            what = f"label map file {path}"
            if not path.is_file():
                raise FileNotFoundError(f"label map file not found: {path}")
            try:
                spec = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ValueError(f"{what}: not valid JSON ({exc})") from None
            if not isinstance(spec, dict):
                raise ValueError(f"{what}: expected a JSON object {{\"LABEL\": \"STAGE\"}}, "
                                 f"got {type(spec).__name__}")
        else:
            what = f"label map {text!r}"
            items = [x for x in text.split(",") if x.strip()]
            spec = {}
            for item in items:
                if "=" not in item or not item.split("=", 1)[0].strip():
                    raise ValueError(f"{what}: {item.strip()!r} is not LABEL=STAGE (e.g. "
                                     "'NREM2=N2,Wach=W'); use a JSON file for labels with "
                                     "',' or '='")
                k, v = item.split("=", 1)
                spec[k.strip()] = v.strip()
    if not isinstance(spec, dict):
        raise ValueError(f"label_map must be a dict, a JSON file or 'LABEL=STAGE,...', got "
                         f"{type(spec).__name__}")
    out: dict[str, str] = {}
    for k, v in spec.items():
        v = str(v).strip()
        if not (is_stage_text(v) or is_stage_text(v, label_to_code3)):
            raise ValueError(f"{what}: {str(k)!r} -> {v!r}: {v!r} is not a stage; expected "
                             "W, N1, N2, N3, R, NREM or ? (unscored)")
        out[str(k).strip().lower()] = v
    return out


def map_labels(labels, label_map: dict[str, str] | None) -> list[str]:
    """Labels with the ``label_map`` substitutions (keys already normalised)."""
    labels = [str(x) for x in labels]
    if not label_map:
        return labels
    return [label_map.get(x.strip().lower(), x) for x in labels]


def unknown_labels_error(source: str, bad: list[tuple[str, str]], n_classes: int,
                          column: str | None = None) -> ValueError:
    """``bad``: (label, where) of the first row of each unknown label."""
    listed = ", ".join(f"{lab!r} ({where})" for lab, where in bad[:10])
    more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
    col = f" in column {column!r}" if column else ""
    return ValueError(
        f"{source}: unknown stage label(s) {listed}{more}{col}. Accepted labels "
        f"(case-insensitive): {accepted_labels(n_classes)}. Map site-specific labels with "
        "label_map (CLI: --label-map 'NREM2=N2,N 2=N2' or a JSON file)")


# ------------------------------------------------- numeric stage conventions
#: Numeric stage codes of hypnogram files, by convention: ``"rk"`` (Rechtschaffen & Kales,
#: Sleep-EDF, NSRR: 0 W, 1 S1, 2 S2, 3 S3, 4 S4 -> N3, 5 REM) and ``"yasa"`` (alias
#: ``"aasm"``; YASA, AASM five stages: 0 W, 1 N1, 2 N2, 3 N3, 4 REM). They agree on 0-3.
STAGE_CODE_CONVENTIONS: dict[str, dict[str, str]] = {
    "rk": {"0": "W", "1": "N1", "2": "N2", "3": "N3", "4": "N3", "5": "R"},
    "yasa": {"0": "W", "1": "N1", "2": "N2", "3": "N3", "4": "R"},
}
_CONVENTION_ALIASES = {"rk": "rk", "r&k": "rk", "yasa": "yasa", "aasm": "yasa"}
_CONVENTION_TEXT = {"rk": "R&K numbering (0 W, 1-4 stages 1-4 with 4 -> N3, 5 REM)",
                    "yasa": "YASA/AASM numbering (0 W, 1 N1, 2 N2, 3 N3, 4 REM)"}
_LEGEND_ITEM = re.compile(r"^\s*(\d+)\s*[:=]\s*(\S.*?)\s*$")


def stage_code_convention(name: str | None) -> str | None:
    """``"rk"`` or ``"yasa"`` for a ``stage_codes`` value (``"aasm"`` is ``"yasa"``);
    None stays None. Raises ``ValueError`` naming the value and the choices."""
    if name is None:
        return None
    key = str(name).strip().lower()
    if key not in _CONVENTION_ALIASES:
        raise ValueError(f"stage_codes {name!r} is not a numeric stage convention; expected "
                         "'rk' (0 W, 1-4 stages 1-4, 5 REM) or 'yasa'/'aasm' "
                         "(0 W, 1 N1, 2 N2, 3 N3, 4 REM)")
    return _CONVENTION_ALIASES[key]


def stage_code_legend(comments) -> set[str]:
    """Conventions that comment lines declare with a legend such as YASA's
    ``0: Wake, 1: N1, 2: N2, 3: N3, 4: REM`` (``4`` named REM -> ``"yasa"``; ``4`` named
    stage 4/N3, or ``5`` named REM -> ``"rk"``). Empty when no legend names 4 or 5."""
    found: set[str] = set()
    for line in comments:
        for item in re.split(r"[,;|\t]", str(line)):
            m = _LEGEND_ITEM.match(item)
            if not m or m.group(1) not in ("4", "5"):
                continue
            name = m.group(2).strip().lower()
            code = _LABEL_MAP.get(name, R if name in ("rem sleep", "paradoxical") else None)
            if m.group(1) == "4" and code == R:
                found.add("yasa")
            elif (m.group(1) == "4" and code == N3) or (m.group(1) == "5" and code == R):
                found.add("rk")
    return found


def resolve_stage_codes(labels, source: str, stage_codes: str | None = None,
                        comments=()) -> list[str]:
    """Labels with their numeric stage codes spelled out (``"4"`` -> ``"R"`` or ``"N3"``).

    The convention is ``stage_codes`` (``"rk"``, ``"yasa"``/``"aasm"``, see
    :data:`STAGE_CODE_CONVENTIONS`); without it, a legend in the file's ``comments``
    (:func:`stage_code_legend`), else the values: a 5 means R&K (YASA has no 5), only
    0-3 read the same in both, and a 4 without a 5 is ambiguous and raises a
    ``ValueError`` naming ``source``, the values and ``--stage-codes``. Non-numeric labels
    (and negative numbers, unscored) pass unchanged.
    """
    labels = [str(x) for x in labels]
    values = sorted({int(x.strip()) for x in labels if x.strip().isdigit()})
    conv = stage_code_convention(stage_codes)
    if conv is None:
        declared = stage_code_legend(comments)
        if len(declared) > 1:
            raise ValueError(f"{source}: its header declares both {_CONVENTION_TEXT['rk']} "
                             f"and {_CONVENTION_TEXT['yasa']}; give --stage-codes rk or "
                             "--stage-codes yasa (Python: stage_codes=...)")
        conv = declared.pop() if declared else ("rk" if 5 in values else None)
    if conv is None:
        if 4 not in values:
            return labels  # 0-3 mean the same in both conventions
        raise ValueError(
            f"{source}: numeric stages {values} are ambiguous: 4 is REM in "
            f"{_CONVENTION_TEXT['yasa']} but stage 4 (N3) in {_CONVENTION_TEXT['rk']}, and "
            "the file has no 5 and no header legend; give --stage-codes yasa or "
            "--stage-codes rk (Python: stage_codes='yasa'/'rk'), or map the codes with "
            "--label-map '4=R'")
    table = STAGE_CODE_CONVENTIONS[conv]
    extra = [v for v in values if str(v) not in table]
    if conv == "yasa" and extra:
        raise ValueError(f"{source}: numeric stage(s) {extra} are not stages in "
                         f"{_CONVENTION_TEXT['yasa']}; a 5 is REM in R&K numbering "
                         "(--stage-codes rk)")
    return [table.get(x.strip(), x) if x.strip().isdigit() else x for x in labels]


def stage_codes_label_map(stage_codes: str | None, label_map: Any = None) -> Any:
    """``label_map`` with the numeric codes of a ``stage_codes`` convention added (the
    user's own entries win), for code paths that take only a ``label_map``; unchanged
    when ``stage_codes`` is None."""
    conv = stage_code_convention(stage_codes)
    if conv is None:
        return label_map
    return {**STAGE_CODE_CONVENTIONS[conv], **(parse_label_map(label_map) or {})}
