"""Sleep-stage label conventions shared by every module.

Integer codes follow the AASM 5-class scheme used by Sleep-EDF benchmarks and by the
real band-power set: ``W=0, N1=1, N2=2, N3=3, R=4``. Epochs that carry no usable
label (``Sleep stage ?``, ``Movement time``, rejected epochs) are ``UNSCORED = -100``,
which is also PyTorch's default ``ignore_index``. Any negative label is treated as
unscored. The 3-class view maps ``W -> 0``, ``N1/N2/N3 -> 1 (NREM)``, ``R -> 2``.
"""

from __future__ import annotations

import numpy as np

STAGES_5: tuple[str, ...] = ("W", "N1", "N2", "N3", "R")
STAGES_3: tuple[str, ...] = ("W", "NREM", "R")
UNSCORED: int = -100
UNSCORED_LABEL: str = "?"

W, N1, N2, N3, R = range(5)

#: Map of free-text stage labels (R&K, AASM, Sleep-EDF annotation texts, YASA letters)
#: to 5-class codes. R&K stages 3 and 4 merge into N3. Keys are lower-case.
_LABEL_MAP: dict[str, int] = {}
for _code, _names in {
    W: ("w", "wake", "0", "sleep stage w", "stage w"),
    N1: ("n1", "1", "s1", "sleep stage 1", "sleep stage n1", "stage 1"),
    N2: ("n2", "2", "s2", "sleep stage 2", "sleep stage n2", "stage 2"),
    N3: (
        "n3", "3", "4", "s3", "s4", "n4", "sleep stage 3", "sleep stage 4",
        "sleep stage n3", "sleep stage n4", "stage 3", "stage 4",
    ),
    R: ("r", "rem", "5", "sleep stage r", "sleep stage rem", "stage r", "stage rem"),
    UNSCORED: (
        "?", "sleep stage ?", "movement time", "mt", "m", "movement", "unscored",
        "artefact", "artifact", "-1", "-100", "-2", "nan", "",
    ),
}.items():
    for _name in _names:
        _LABEL_MAP[_name] = _code


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


def labels_to_codes(labels) -> np.ndarray:
    """Vector version of :func:`label_to_code`; returns an ``int64`` array."""
    return np.array([label_to_code(x) for x in labels], dtype=np.int64)


def codes_to_labels(codes, n_classes: int = 5) -> list[str]:
    """Names of integer codes (``UNSCORED`` becomes ``'?'``)."""
    names = STAGES_5 if n_classes == 5 else STAGES_3
    return [names[c] if c >= 0 else UNSCORED_LABEL for c in np.asarray(codes, dtype=int)]


def to_3class(codes) -> np.ndarray:
    """Map 5-class codes to the 3-class view (W=0, NREM=1, R=2); unscored stays unscored."""
    codes = np.asarray(codes, dtype=np.int64)
    out = np.full(codes.shape, UNSCORED, dtype=np.int64)
    out[codes == W] = 0
    out[(codes == N1) | (codes == N2) | (codes == N3)] = 1
    out[codes == R] = 2
    return out


def proba_to_3class(proba: np.ndarray) -> np.ndarray:
    """Sum 5-class probabilities (n, 5) into 3-class probabilities (n, 3)."""
    proba = np.asarray(proba, dtype=float)
    return np.stack([proba[:, W], proba[:, N1:N3 + 1].sum(axis=1), proba[:, R]], axis=1)


def is_scored(codes) -> np.ndarray:
    """Boolean mask of epochs with a usable label."""
    return np.asarray(codes) >= 0
