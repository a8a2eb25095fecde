"""BIDS datasets: finding the recordings, their scored stages and the derivative outputs.

A BIDS root (a folder with ``dataset_description.json``) holds EEG/PSG recordings as
``sub-<label>/[ses-<label>/]eeg/sub-<label>[_ses-<label>]_task-<label>[...]_eeg.<ext>``
(EDF, BDF, BrainVision, EEGLAB or FIF), found with :func:`mne_bids.find_matching_paths`
(:func:`list_bids_recordings`). Scored sleep stages, when the dataset has them, are rows
of the recording's ``*_events.tsv`` whose ``trial_type`` is a stage label (``Sleep stage
W``, ``N2``, ``REM`` ...; :func:`bids_events_file` finds the file, and
:func:`hypnoscope.io.hypnograms.read_table_hypnogram` reads it, ignoring other events).

``hypnoscope stage BIDS_ROOT --out DIR`` writes a BIDS derivative dataset into ``DIR``
(``BIDS_ROOT/derivatives/hypnoscope`` by convention): ``dataset_description.json``
(:func:`write_derivative_description`) and, per recording, its output set in the
recording's own ``sub-*/[ses-*/]eeg/`` folder, named after the recording without the
``_eeg`` suffix (:func:`bids_output`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

#: Recording extensions of BIDS EEG data.
BIDS_EEG_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".set", ".fif")
#: A BIDS file name: entities ``key-value`` joined by ``_``, then the suffix.
_BIDS_NAME = re.compile(r"^(sub-[A-Za-z0-9]+(?:_[a-z]+-[A-Za-z0-9]+)*)_([A-Za-z0-9]+)$")


def is_bids_root(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the root of a BIDS dataset (a ``dataset_description.json`` and
    at least one ``sub-*`` folder)."""
    path = Path(path)
    return (path.is_dir() and (path / "dataset_description.json").is_file()
            and any(p.is_dir() for p in path.glob("sub-*")))


def list_bids_recordings(root: str | os.PathLike) -> list[Path]:
    """The EEG recordings (``*_eeg.<ext>``, :data:`BIDS_EEG_EXTENSIONS`) of a BIDS root,
    sorted; derivatives and ``sourcedata`` are not searched."""
    from mne_bids import find_matching_paths

    root = Path(root)
    paths = find_matching_paths(root, datatypes="eeg", suffixes="eeg",
                                extensions=list(BIDS_EEG_EXTENSIONS))
    out = []
    for bp in paths:
        f = Path(bp.fpath)
        rel = f.relative_to(root).parts
        if rel and rel[0] in ("derivatives", "sourcedata"):
            continue
        if f.is_file():
            out.append(f)
    return sorted(set(out))


def bids_entities(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(entities, suffix)`` of a BIDS file name (``sub-01_ses-1_task-sleep``, ``eeg``),
    or None if the name is not BIDS."""
    from hypnoscope.io.psg import raw_suffix

    name = Path(path).name
    suffix = raw_suffix(name)
    stem = name[: -len(suffix)] if suffix and name.lower().endswith(suffix) else name
    m = _BIDS_NAME.match(stem)
    return (m.group(1), m.group(2)) if m else None


def bids_events_file(psg: str | os.PathLike) -> Path | None:
    """The ``*_events.tsv`` beside a BIDS recording if it holds scored sleep stages."""
    ent = bids_entities(psg)
    if ent is None:
        return None
    events = Path(psg).with_name(f"{ent[0]}_events.tsv")
    return events if events.is_file() and events_have_stages(events) else None


def events_have_stages(path: str | os.PathLike) -> bool:
    """Whether a BIDS events file has a ``trial_type`` that is a sleep-stage label."""
    import pandas as pd

    from hypnoscope.stages import UNSCORED, label_to_code

    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, ValueError):
        return False
    if "trial_type" not in df.columns:
        return False
    for lab in set(df["trial_type"]):
        try:
            if label_to_code(lab) != UNSCORED:
                return True
        except (ValueError, KeyError):
            continue
    return False


def bids_output(psg: str | os.PathLike, root: str | os.PathLike) -> tuple[Path, str]:
    """Where the outputs of a BIDS recording go inside the derivative dataset: its folder
    relative to the root (``sub-01/ses-1/eeg``) and the output stem (the file name
    without ``_eeg`` and extension, ``sub-01_ses-1_task-sleep``)."""
    psg, root = Path(psg), Path(root)
    rel = psg.parent.resolve().relative_to(root.resolve())
    ent = bids_entities(psg)
    return rel, (ent[0] if ent else psg.stem)


def write_derivative_description(out: str | os.PathLike, source_root: str | os.PathLike,
                                 model: str | None = None) -> Path:
    """Write ``dataset_description.json`` of the hypnoscope derivative dataset in
    ``out`` (atomic; an existing one is replaced)."""
    from hypnoscope._version import __version__
    from hypnoscope.utils.files import write_json_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    src = Path(source_root).resolve()
    try:
        url = os.path.relpath(src, out.resolve())
    except ValueError:  # another drive
        url = str(src)
    desc: dict[str, Any] = {
        "Name": "hypnoscope sleep staging",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "hypnoscope", "Version": __version__,
                         "Description": "automatic sleep staging (30-s epochs, AASM "
                                        "W/N1/N2/N3/R)" + (f"; model {model}" if model
                                                           else "")}],
        "SourceDatasets": [{"URL": f"file://{url}"}],
    }
    path = out / "dataset_description.json"
    write_json_atomic(path, desc)
    return path
