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
(:func:`write_derivative_description`: ``DatasetType`` derivative, ``GeneratedBy``
hypnoscope and its version, ``SourceDatasets`` the BIDS URI ``bids:raw:`` that
``DatasetLinks`` resolves to the source root) and, per recording, its output set in the
recording's own ``sub-*/[ses-*/]eeg/`` folder, named after the recording's entities with
``desc-hypnoscope`` (:func:`bids_output`): the per-epoch stages as a derivative
``*_desc-hypnoscope_events.tsv`` with its JSON sidecar (:func:`events_sidecar`, whose
``Sources`` name the recording by BIDS URI, :func:`bids_uri`). Outputs that BIDS has no
file type for (report, figure, EDF+ hypnogram) keep BIDS-style names and are listed in
the dataset's ``.bidsignore``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypnoscope.hypnogram import Hypnogram

#: Recording extensions of BIDS EEG data.
BIDS_EEG_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".set", ".fif")
#: The ``desc-`` label of every output of the derivative dataset.
DERIVATIVE_DESC = "hypnoscope"
#: ``DatasetLinks`` name of the source dataset in the derivative's BIDS URIs.
SOURCE_LINK = "raw"
#: BIDS version of the derivative dataset's description.
BIDS_VERSION = "1.9.0"
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
    """Whether a BIDS events file has a ``trial_type`` that is a sleep-stage label, in rows
    that may be a scoring (not task events of duration 0 at arbitrary onsets,
    :func:`hypnoscope.io.hypnograms.is_scoring_table`)."""
    import pandas as pd

    from hypnoscope.io.hypnograms import is_scoring_table
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
                return is_scoring_table(path)
        except (ValueError, KeyError):
            continue
    return False


def bids_output(psg: str | os.PathLike, root: str | os.PathLike) -> tuple[Path, str]:
    """Where the outputs of a BIDS recording go inside the derivative dataset: its folder
    relative to the root (``sub-01/ses-1/eeg``) and the output stem, the recording's
    entities with :data:`DERIVATIVE_DESC` (``sub-01_ses-1_task-sleep_desc-hypnoscope``;
    the file name without ``_eeg`` and extension if it is not a BIDS name)."""
    psg, root = Path(psg), Path(root)
    rel = psg.parent.resolve().relative_to(root.resolve())
    ent = bids_entities(psg)
    return rel, (f"{ent[0]}_desc-{DERIVATIVE_DESC}" if ent else psg.stem)


def bids_uri(path: str | os.PathLike, root: str | os.PathLike,
             dataset: str = SOURCE_LINK) -> str:
    """The BIDS URI of a file of the dataset at ``root`` named ``dataset`` in
    ``DatasetLinks`` (``bids:raw:sub-01/eeg/sub-01_task-sleep_eeg.edf``)."""
    rel = Path(path).resolve().relative_to(Path(root).resolve())
    return f"bids:{dataset}:{rel.as_posix()}"


def source_links(roots: Sequence[str | os.PathLike]) -> dict[Path, str]:
    """The ``DatasetLinks`` name of each source root: :data:`SOURCE_LINK` for one,
    ``raw1``, ``raw2`` ... for several."""
    roots = list(dict.fromkeys(Path(r).resolve() for r in roots))
    if len(roots) == 1:
        return {roots[0]: SOURCE_LINK}
    return {r: f"{SOURCE_LINK}{i}" for i, r in enumerate(roots, 1)}


def _link_location(out: Path, root: Path) -> str:
    """Where ``DatasetLinks`` points for the source ``root`` of the derivative dataset in
    ``out``: a relative path when ``out`` lies inside ``root`` (``../..`` for
    ``root/derivatives/hypnoscope``: the pair moves together), else an absolute
    ``file://`` URI."""
    if out.is_relative_to(root) and out != root:
        return Path(os.path.relpath(root, out)).as_posix()
    return root.as_uri()


def _source_doi(root: Path) -> str | None:
    """The source's ``DatasetDOI`` as a ``doi:`` URI, if its description gives one."""
    try:
        doi = json.loads((root / "dataset_description.json").read_text(encoding="utf-8")
                         ).get("DatasetDOI")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(doi, str) or not doi.strip():
        return None
    doi = doi.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "http://dx.doi.org/", "doi:"):
        if doi.lower().startswith(prefix):
            doi = doi[len(prefix):]
    return f"doi:{doi}"


def write_derivative_description(out: str | os.PathLike,
                                 source_roots: str | os.PathLike | Sequence[str | os.PathLike],
                                 model: str | None = None,
                                 ignore: Sequence[str] = ()) -> Path:
    """Write ``dataset_description.json`` of the hypnoscope derivative dataset in ``out``
    (atomic; an existing one is replaced) and, with ``ignore``, its ``.bidsignore``.

    ``SourceDatasets`` names each source root by the BIDS URI ``bids:<name>:`` (with
    its ``DatasetDOI`` as ``doi:`` URI when it has one) and ``DatasetLinks`` maps
    ``<name>`` (:func:`source_links`) to the root's location.

    Parameters
    ----------
    out : path
        Root of the derivative dataset (created).
    source_roots : path or list of paths
        The BIDS dataset(s) staged.
    model : str, optional
        Model name, given in ``GeneratedBy``'s description.
    ignore : list of str
        ``.bidsignore`` patterns: the outputs BIDS has no file type for.
    """
    from hypnoscope._version import __version__
    from hypnoscope.utils.files import write_json_atomic, write_text_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    roots = ([source_roots] if isinstance(source_roots, str | os.PathLike)
             else list(source_roots))
    links = source_links(roots)
    sources = []
    for root, name in links.items():
        doi = _source_doi(root)
        sources.append({"URL": f"bids:{name}:", **({"DOI": doi} if doi else {})})
    desc: dict[str, Any] = {
        "Name": "hypnoscope sleep staging",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "hypnoscope", "Version": __version__,
                         "Description": "automatic sleep staging (30-s epochs, AASM "
                                        "W/N1/N2/N3/R)" + (f"; model {model}" if model
                                                           else "")}],
        "SourceDatasets": sources,
        "DatasetLinks": {name: _link_location(out.resolve(), root)
                         for root, name in links.items()},
    }
    path = out / "dataset_description.json"
    write_json_atomic(path, desc)
    if ignore:
        write_text_atomic(out / ".bidsignore", "\n".join(ignore) + "\n")
    return path


#: Long names of the stage labels, the ``Levels`` of :func:`events_sidecar`.
_STAGE_LEVELS = {"W": "wake", "N1": "NREM stage 1", "N2": "NREM stage 2",
                 "N3": "NREM stage 3 (slow-wave sleep)", "NREM": "NREM sleep (N1, N2, N3)",
                 "R": "REM sleep"}


def events_sidecar(hyp: Hypnogram, sources: Sequence[str],
                   description: str) -> dict[str, Any]:
    """The JSON sidecar of a staged hypnogram written as a derivative ``*_events.tsv``
    (the columns of :meth:`hypnoscope.hypnogram.Hypnogram.to_tsv`): ``Description``,
    ``Sources`` (BIDS URIs of the recording, :func:`bids_uri`) and a description of
    every column (units, the stage labels as ``Levels``)."""
    from hypnoscope.stages import UNSCORED_LABEL

    sec = {"Units": "s"}
    levels = {n: _STAGE_LEVELS[n] for n in hyp.stage_names}
    levels[UNSCORED_LABEL] = ("unscored: outside the staged span, or a channel the model "
                              "reads was unusable (see quality)")
    side: dict[str, Any] = {
        "Description": description, "Sources": list(sources),
        "onset": {"Description": "Start of the epoch from the beginning of the recording",
                  **sec},
        "duration": {"Description": "Length of the epoch", **sec},
        "stage": {"LongName": "Sleep stage", "Description": "Stage scored for the epoch "
                  "(AASM)", "Levels": levels},
    }
    if hyp.probabilities is not None:
        side["confidence"] = {"Description": "Probability of the scored stage, 0 to 1 (0 "
                                             "for an unscored epoch)"}
        for name in hyp.stage_names:
            side[f"p_{name}"] = {"Description": f"Probability of {levels[name]} given by "
                                                "the model, 0 to 1 (0 for an unscored epoch)"}
    if hyp.quality is not None:
        side["quality"] = {"Description": "Signal quality of the epoch: 'ok', the quality "
                           "flags with the channels carrying them ('flat:EEG Fpz-Cz;noise:EOG "
                           "horizontal'), or 'outside-span' for an epoch not staged"}
    return side
