"""Staging a folder: :func:`stage_folder`, a resumable batch of recordings.

:func:`stage_folder` is the Python API behind ``hypnoscope stage``: it finds the
recordings (:mod:`hypnoscope.staging.inputs`), names and places their output sets,
skips the complete ones made the same way (:mod:`hypnoscope.staging.outputs`) and stages
the others with :func:`hypnoscope.staging.outputs.stage_file` on the batch engine of
:mod:`hypnoscope.utils.batch` (in this process, in local processes or on a Dask cluster;
a bad recording is reported in its row and the batch goes on). The engine's names
(:class:`BatchItem`, :func:`run_batch`, :func:`make_executor`, :class:`BatchInterrupted`,
:func:`write_summary_csv` ...) are importable from here too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hypnoscope.utils.batch import (  # noqa: F401 - the engine, importable from here too
    SUMMARY_COLUMNS,
    BatchInterrupted,
    BatchItem,
    make_executor,
    run_batch,
    summary_csv_text,
    tune_worker_malloc,
    write_summary_csv,
)

#: Columns of a staging batch's ``summary.csv``: the engine's, with the model that staged
#: each recording after its status.
STAGING_SUMMARY_COLUMNS = (*SUMMARY_COLUMNS[:3], "model", *SUMMARY_COLUMNS[3:])


# ------------------------------------------------------------- staging a folder
def stage_folder(inputs: str | os.PathLike | Iterable[str | os.PathLike],
                 out_dir: str | os.PathLike, model: Any = "auto", *,
                 reference: str | os.PathLike | Iterable | None = None,
                 eeg=None, eog=None, emg=None, plot: bool = True, strict: bool = False,
                 lights_off: float | str | None = None, lights_on: float | str | None = None,
                 crop: str | None = None, label_map: Any = None, jobs: int = 1,
                 scheduler: Any = None, resume: bool = True, summary: bool = True,
                 debug: bool = False, describe: Callable[[BaseException], str] | None = None,
                 note: Callable[[str], None] | None = None,
                 on_row: Callable[[dict[str, Any]], None] | None = None,
                 ) -> list[dict[str, Any]]:
    """Stage recordings (files, folders, globs or a BIDS root) into ``out_dir``, resuming.

    Every recording gets its output set (:func:`hypnoscope.staging.outputs.stage_file`)
    under a distinct stem (:func:`hypnoscope.staging.inputs.output_stems`); recordings of
    a BIDS root go into a BIDS derivative dataset in ``out_dir`` with the scored stages
    of their ``*_events.tsv`` as reference. With ``resume`` a recording whose complete
    output set exists and was made from the same file with the same options
    (:func:`hypnoscope.staging.outputs.existing_outputs`) is skipped, and a set in the
    way that belongs to another recording fails that recording; without, both are staged
    (again). A recording that fails is reported in its row and the others are staged.

    Parameters
    ----------
    inputs : path, glob pattern or list of them
        Recordings (see :func:`hypnoscope.staging.inputs.expand_inputs`).
    out_dir : path
        Output folder (created; checked for writing before any work).
    model, eeg, eog, emg, lights_off, lights_on, crop, label_map, plot, strict
        As in :func:`hypnoscope.staging.outputs.stage_file`.
    reference : path or list of paths, optional
        One reference hypnogram per recording (same order), or a folder searched for
        each one (:func:`hypnoscope.staging.inputs.pair_references`).
    jobs, scheduler
        Local processes, or a Dask scheduler address / ``distributed.Client``
        (:func:`make_executor`).
    resume : bool, default True
        Skip complete output sets made the same way.
    summary : bool, default True
        With more than one recording, write ``summary.json`` and ``summary.csv``
        (:func:`write_summary_csv`, columns :data:`STAGING_SUMMARY_COLUMNS`) into
        ``out_dir``.
    debug, describe, on_row
        As in :func:`run_batch`.
    note : callable, optional
        Called with each message about the batch (renamed outputs, skipped or restaged
        recordings, the cluster used, partial outputs of an earlier run removed ...).

    Returns
    -------
    list of dict
        One row per recording, in input order: ``status`` ``ok`` (the row of
        ``stage_file``), ``skipped`` (from the existing report) or ``failed`` (with
        ``error``). The notices of each recording are logged as in one process (with
        ``jobs`` or ``scheduler``: collected in the worker and logged here when the
        recording finishes, see :func:`run_batch`).

    Raises
    ------
    ValueError
        Bad inputs or options (an input that matches nothing, references that do not
        pair, an unknown model, ``jobs`` with ``scheduler``) or an ``out_dir`` that
        cannot be written, before any work.
    BatchInterrupted
        On an interrupt (finished output sets stay complete, nothing of the others
        remains; run again to finish).

    Examples
    --------
    >>> rows = stage_folder("psg/", "out/", reference="psg/", jobs=2)  # doctest: +SKIP
    >>> [r["status"] for r in rows]  # doctest: +SKIP
    """
    from hypnoscope.utils.files import check_output_dir, remove_stale_partials, write_json_atomic

    say = note or (lambda msg: None)
    if scheduler is not None and jobs != 1:
        raise ValueError("give jobs (local processes) or scheduler (a Dask cluster), not "
                         "both")
    out = check_output_dir(out_dir, "out_dir", create=True)  # before any work
    bounds = {k: v for k, v in (("lights_off", lights_off), ("lights_on", lights_on),
                                ("crop", crop), ("label_map", label_map)) if v is not None}
    tasks = _staging_tasks(inputs, out, model, reference, say,
                           dict(eeg=eeg, eog=eog, emg=emg, plot=plot, strict=strict, **bounds))
    for d in remove_stale_partials(out):
        say(f"note: removed {d}, left by an interrupted run")
    items = _resume(tasks, out, resume, say, on_row)
    n_todo = sum(it.row is None for it in items)
    executor = make_executor(min(jobs, max(n_todo, 1)), scheduler)
    if scheduler is not None:
        say(f"staging {n_todo} recording(s) on the {executor.name}")
    from hypnoscope.staging.outputs import stage_file

    rows = run_batch(items, stage_file, executor, describe=describe, debug=debug,
                     desc="staging", on_row=on_row)
    for d in remove_stale_partials(out):  # left by a worker that was killed meanwhile
        say(f"note: removed {d}, left by a worker that stopped")
    if summary and len(rows) > 1:
        write_json_atomic(out / "summary.json", rows)
        write_summary_csv(out / "summary.csv", rows, STAGING_SUMMARY_COLUMNS)
    return rows


def _staging_tasks(inputs, out: Path, model: Any, reference, say: Callable[[str], None],
                   options: dict[str, Any]) -> list[dict[str, Any]]:
    """The :func:`~hypnoscope.staging.outputs.stage_file` arguments of every recording:
    inputs found, references paired, outputs named and placed (a BIDS derivative
    dataset for BIDS roots), the model checked."""
    from hypnoscope.staging.inputs import (
        expand_inputs_and_roots,
        output_stems,
        pair_references,
        place_outputs,
        renamed,
    )

    psgs, roots = expand_inputs_and_roots(inputs)
    refs = pair_references(psgs, reference)
    stems = output_stems(psgs)
    given = bool([reference] if isinstance(reference, str | os.PathLike) else reference)
    out_dirs, stems, refs = place_outputs(psgs, roots, out, stems, refs, given)
    sources: dict[Path, str] = {}  # BIDS URI of each recording of a BIDS root
    if roots:  # a BIDS derivative dataset: outputs in each recording's own folder
        from hypnoscope.io.bids import bids_uri, source_links, write_derivative_description
        from hypnoscope.io.recordings import REVIEW_SUFFIXES
        from hypnoscope.models.storage import AUTO_MODEL
        from hypnoscope.staging.outputs import BIDS_IGNORE

        links = source_links(list(roots.values()))
        named = isinstance(model, str | os.PathLike) and model != AUTO_MODEL
        # hypnoscope review writes its files beside the outputs it reviews
        review = [f"*.{v}" for v in REVIEW_SUFFIXES.values()]
        write_derivative_description(out, list(links), str(model) if named else None,
                                     ignore=[*BIDS_IGNORE, "summary.json", "summary.csv",
                                             *review])
        sources = {p: bids_uri(p, r, links[Path(r).resolve()]) for p, r in roots.items()}
        n_ref = sum(r is not None for p, r in zip(psgs, refs, strict=True) if p in roots)
        say(f"BIDS dataset: {len(roots)} recording(s), {n_ref} with scored stages in "
            f"*_events.tsv (used as reference); writing a derivative dataset to {out}")
    moved = renamed([p for p in psgs if p not in roots],  # BIDS names are unique
                    [s for p, s in zip(psgs, stems, strict=True) if p not in roots])
    if moved:
        say("note: recordings share an output stem, so their outputs are named: "
            + ", ".join(f"{p} -> {s}.*" for p, s in moved))
    _check_model(model, options.get("emg"), say)
    return [dict(psg=str(p), out_dir=str(d), model=model,
                 reference=None if r is None else str(r), out_stem=stem,
                 bids_source=sources.get(p), **options)
            for p, r, stem, d in zip(psgs, refs, stems, out_dirs, strict=True)]


def _check_model(model: Any, emg, say: Callable[[str], None]) -> None:
    """Fail early on an unknown model; say that a band-power model ignores ``emg``."""
    from hypnoscope.models.plugins import is_stager_name
    from hypnoscope.models.storage import AUTO_MODEL, load_staging_model, resolve_model_path

    auto = isinstance(model, str) and model == AUTO_MODEL
    if isinstance(model, str | os.PathLike) and not auto:
        try:
            resolve_model_path(model)
        except ValueError:
            if not is_stager_name(model):
                raise
            load_staging_model(model)  # a stager; a missing extra fails here, before any work
    if emg:
        from hypnoscope.staging.model_input import BANDPOWER, input_kind

        mdl, card = load_staging_model("default" if auto else model)
        if input_kind(mdl, card) == BANDPOWER:
            say(f"note: model {card.get('name', model)!r} uses EEG and EOG only; "
                f"--emg {' '.join(emg) if isinstance(emg, list) else emg} is ignored")


def _resume(tasks: list[dict[str, Any]], out: Path, resume: bool, say: Callable[[str], None],
            on_row: Callable[[dict[str, Any]], None] | None) -> list[BatchItem]:
    """The batch's items: a recording whose complete output set exists (made the same
    way) is skipped with ``resume``, one whose stem holds another recording's set fails
    (``resume``) or is replaced; a missing file is left to fail in ``stage_file``."""
    import json

    from hypnoscope.staging.outputs import existing_outputs, skipped_row, staging_options

    items, skipped = [], []
    for t in tasks:
        item = BatchItem(t["psg"], t["out_stem"], t)
        items.append(item)
        if not Path(t["psg"]).is_file():
            continue  # reported as a failure by stage_file
        bounds = {k: t[k] for k in ("lights_off", "lights_on", "crop", "label_map") if k in t}
        options = json.loads(json.dumps(staging_options(
            t["psg"], t["model"], t["eeg"], t["eog"], t["emg"], t["reference"], **bounds)))
        bids = t.get("bids_source") is not None
        state, what = existing_outputs(Path(t["out_dir"]), t["out_stem"], t["plot"], options,
                                       bids)
        if state == "complete" and resume:
            item.row = skipped_row(Path(t["psg"]), t["out_stem"], Path(t["out_dir"]), what,
                                   t["plot"], bids)
            skipped.append(t["out_stem"])
        elif state == "other" and resume:
            item.row = {"recording": t["psg"], "stem": t["out_stem"], "status": "failed",
                        "error": what}
            if on_row is not None:
                on_row(item.row)
        elif state in ("restage", "other"):
            say(f"note: {t['psg']}: staging again: "
                f"{what if state == 'restage' else 'replacing ' + what.split(';')[0]}")
    if skipped:
        say(f"skipping {len(skipped)} recording(s) whose complete output set exists in "
            f"{out} (same recording and options; --force stages them again): "
            f"{', '.join(skipped)}")
    return items
