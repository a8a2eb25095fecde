"""The recordings of a staging batch: discovery, reference pairing and output names.

:func:`expand_inputs` turns paths, folders, glob patterns and BIDS roots into recording
files; :func:`pair_references` pairs each with its reference hypnogram (one file per
recording, or a folder searched for the matching one); :func:`output_stems` gives the
recordings of a batch distinct output names; :func:`place_outputs` puts the outputs of
recordings found in a BIDS root into a BIDS derivative dataset.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from pathlib import Path


def is_hypnogram_file(path: str | os.PathLike) -> bool:
    """Whether a file's name looks like a hypnogram (scoring) file rather than a
    recording (:data:`hypnoscope.io.recordings.HYPNOGRAM_NAME`)."""
    from hypnoscope.io.recordings import HYPNOGRAM_NAME  # the one rule of scoring-file names

    return bool(HYPNOGRAM_NAME.search(Path(path).stem))


def expand_inputs(items: Iterable[str | os.PathLike]) -> list[Path]:
    """Files from paths, directories and glob patterns (sorted, de-duplicated).

    A directory contributes its ``*-PSG.edf`` files, or, if it has none, every recording
    MNE reads (EDF/BDF, BrainVision, FIF ...) whose name does not look like a hypnogram;
    a BIDS root its ``sub-*/[ses-*/]eeg/*_eeg.*`` recordings. A missing path is kept so
    that it is reported as a failure.

    Raises
    ------
    ValueError
        If a directory, BIDS root or glob pattern holds no recording.
    """
    return expand_inputs_and_roots(items)[0]


def expand_inputs_and_roots(items: Iterable[str | os.PathLike],
                            ) -> tuple[list[Path], dict[Path, Path]]:
    """:func:`expand_inputs` and ``{recording: BIDS root}`` for those found in a BIDS
    root."""
    from hypnoscope.io.bids import is_bids_root, list_bids_recordings
    from hypnoscope.io.recordings import folder_recordings

    out: list[Path] = []
    roots: dict[Path, Path] = {}
    for item in [items] if isinstance(items, str | os.PathLike) else items:
        item = str(item)
        p = Path(item)
        if p.is_dir() and is_bids_root(p):
            found = list_bids_recordings(p)
            if not found:
                raise ValueError(f"{p}: BIDS dataset holds no EEG recording "
                                 "(sub-*/[ses-*/]eeg/*_eeg.edf|.bdf|.vhdr|.set|.fif)")
            roots.update({f: p for f in found})
            out.extend(found)
        elif p.is_dir():
            out.extend(folder_recordings(p))
        elif any(c in item for c in "*?[") and not p.exists():
            found = sorted(Path(f) for f in glob.glob(item)
                           if Path(f).is_file() and not is_hypnogram_file(f))
            if not found:
                raise ValueError(f"no recording matches {item!r}")
            out.extend(found)
        else:
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, roots


def pair_references(psgs: list[Path], refs: str | os.PathLike | list | None,
                    ) -> list[Path | None]:
    """The reference hypnogram of each recording (None where there is none).

    ``refs`` is None, one file per recording (same order), or a single directory
    searched for each recording's hypnogram
    (:func:`hypnoscope.io.recordings.find_hypnogram`: Sleep-EDF ``*-Hypnogram.edf``,
    NSRR XML or ``<stem>.*``).

    Raises
    ------
    ValueError
        If the number of files differs from the number of recordings.
    """
    if isinstance(refs, str | os.PathLike):
        refs = [refs]
    if not refs:
        return [None] * len(psgs)
    if len(refs) == 1 and Path(refs[0]).is_dir():
        from hypnoscope.io.recordings import find_hypnogram

        folder = Path(refs[0])
        return [find_hypnogram(p, folder) for p in psgs]
    if len(refs) != len(psgs):
        raise ValueError(f"--reference got {len(refs)} file(s) for {len(psgs)} "
                         "recording(s); give one per recording (same order) or a directory")
    return [Path(r) for r in refs]


def output_stems(psgs: list[Path]) -> list[str]:
    """Distinct output stems for a batch, in input order.

    A recording keeps its :func:`~hypnoscope.io.recordings.recording_stem` ``S`` unless
    another recording of the batch has the same one (ignoring case, as file systems
    may): then the name of its parent folder is put in front (``a/S-PSG.edf`` ->
    ``a_S``). Names that are still equal (same folder, e.g. ``a/S-PSG.edf`` and
    ``a/S.edf``) get ``-2``, ``-3`` ... in input order (``a_S``, ``a_S-2``).
    """
    from collections import Counter

    from hypnoscope.io.recordings import recording_stem

    stems = [recording_stem(p) for p in psgs]
    count = Counter(s.casefold() for s in stems)
    named = []
    for p, s in zip(psgs, stems, strict=True):
        if count[s.casefold()] > 1:
            parent = re.sub(r"[^A-Za-z0-9._-]", "_", Path(p).resolve().parent.name) or "root"
            s = f"{parent}_{s}"
        named.append(s)
    used: set[str] = set()
    out = []
    for s in named:
        cand, i = s, 1
        while cand.casefold() in used:
            i += 1
            cand = f"{s}-{i}"
        used.add(cand.casefold())
        out.append(cand)
    return out


def renamed(psgs: list[Path], stems: list[str]) -> list[tuple[Path, str]]:
    """The recordings whose output stem is not their own
    :func:`~hypnoscope.io.recordings.recording_stem` (shared stems), with that stem."""
    from hypnoscope.io.recordings import recording_stem

    return [(p, s) for p, s in zip(psgs, stems, strict=True) if s != recording_stem(p)]


def place_outputs(psgs: list[Path], roots: dict[Path, Path], out: Path, stems: list[str],
                  refs: list[Path | None], references_given: bool,
                  ) -> tuple[list[Path], list[str], list[Path | None]]:
    """Output folder, stem and reference of each recording: ``out`` for plain files; for
    a recording of a BIDS root, its folder of the derivative dataset in ``out``
    (:func:`hypnoscope.io.bids.bids_output`) and, unless references were given, the
    scored stages of its ``*_events.tsv``."""
    from hypnoscope.io.bids import bids_events_file, bids_output

    out_dirs, stems, refs = [out] * len(psgs), list(stems), list(refs)
    for i, p in enumerate(psgs):
        if p in roots:
            rel, stems[i] = bids_output(p, roots[p])
            out_dirs[i] = out / rel
            if refs[i] is None and not references_given:
                refs[i] = bids_events_file(p)  # scored stages of *_events.tsv
    return out_dirs, stems, refs
