"""Output sets of staged recordings: names, writing, and the complete-set check.

:func:`stage_file` stages one recording file and writes its output set (hypnogram TSV
and EDF+, HTML/JSON report, PNG figure), with agreement metrics when a reference
hypnogram is given; :func:`hypnoscope.staging.batch.stage_folder` (and ``hypnoscope
stage``) call it per recording. :func:`output_names` names the files of a set,
:func:`staging_options` records how it was made (in its report), and
:func:`existing_outputs` tells what an output folder already holds for a stem: nothing,
a complete set made the same way (skipped on a rerun, :func:`skipped_row`), a set to
make again, or the set of another recording.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from hypnoscope.models.storage import AUTO_MODEL
from hypnoscope.staging.pipeline import stage_recording

#: Output kinds of :func:`stage_file` and their file-name suffixes after the stem.
OUTPUT_SUFFIXES = {"tsv": "hypnogram.tsv", "edf": "hypnogram.edf", "html": "report.html",
                   "json": "report.json", "png": "hypnogram.png"}
#: The same in a BIDS derivative dataset (``S_<suffix>``, S ending in ``desc-hypnoscope``):
#: the per-epoch stages are a derivative ``events.tsv`` with its JSON sidecar.
BIDS_OUTPUT_SUFFIXES = {"tsv": "events.tsv", "sidecar": "events.json",
                        "edf": "hypnogram.edf", "html": "report.html", "json": "report.json",
                        "png": "hypnogram.png"}
#: ``.bidsignore`` patterns of the BIDS outputs that BIDS has no file type for.
BIDS_IGNORE = tuple(f"*_{v}" for k, v in BIDS_OUTPUT_SUFFIXES.items()
                    if k not in ("tsv", "sidecar"))


def stage_file(psg: str | os.PathLike, out_dir: str | os.PathLike,
               model: Any = AUTO_MODEL, eeg=None, eog=None, emg=None,
               reference: str | os.PathLike | None = None, plot: bool = True, *,
               out_stem: str | None = None, strict: bool = False,
               lights_off: float | str | None = None, lights_on: float | str | None = None,
               crop: str | None = None, label_map: Any = None,
               bids_source: str | None = None) -> dict[str, Any]:
    """Stage one recording file and write its output set into ``out_dir``.

    With ``S`` the output stem (``out_stem``, default the
    :func:`hypnoscope.io.recordings.recording_stem` of ``psg``) the set is
    ``S.hypnogram.tsv`` (``onset duration stage confidence p_*``), ``S.hypnogram.edf``
    (EDF+ stage annotations), ``S.report.json`` and ``S.report.html`` (sleep statistics,
    plus agreement with ``reference``) and, with ``plot``, ``S.hypnogram.png``
    (:func:`hypnoscope.viz.plots.plot_night`: hypnogram, the reference's hypnogram when
    given, and hypnodensity; the same image is in the report, rendered once; without
    ``plot`` no figure is rendered, not even in the report). The set
    appears all together or not at all: it is written into a temporary folder inside
    ``out_dir`` and moved into place only when
    every file is written (:func:`hypnoscope.utils.files.output_set`); an error or an
    interrupt (SIGINT) leaves nothing of it. Files of an earlier set with the same stem
    are replaced.

    Parameters
    ----------
    psg : path
        Recording in any format MNE reads (EDF/BDF, BrainVision, FIF ...).
    out_dir : path
        Output folder (created if needed).
    model, eeg, eog, emg
        As in :func:`stage`.
    reference : path, optional
        Expert hypnogram of the same recording (any format
        :func:`hypnoscope.read_hypnogram` reads) for agreement metrics.
    label_map : dict, str or None
        Site-specific stage labels of the reference (see
        :func:`hypnoscope.stages.parse_label_map`).
    plot : bool, default True
        Render the figure: the PNG file and the report's figures. False renders none (the
        report says so).
    out_stem : str, optional
        Name of the outputs (``hypnoscope stage`` gives recordings that share a stem
        distinct ones).
    strict : bool, default False
        Fail (:class:`hypnoscope.notices.StrictModeError`, nothing written) if staging
        gave any warning.
    lights_off, lights_on, crop
        Night boundaries (seconds or clock times ``"HH:MM[:SS]"``; crop ``"auto"``,
        ``"on"`` or ``"off"``), passed to :func:`stage_recording` when given (else its
        defaults). Sleep statistics, agreement and the report cover the span staged.
    bids_source : str, optional
        The recording's BIDS URI (:func:`hypnoscope.io.bids.bids_uri`) when ``out_dir`` is
        a folder of a BIDS derivative dataset: the set is named ``S_events.tsv`` (the
        hypnogram TSV) with its sidecar ``S_events.json`` (columns described,
        ``Sources`` this URI), ``S_hypnogram.edf``, ``S_report.html``, ``S_report.json``
        and ``S_hypnogram.png`` (:data:`BIDS_OUTPUT_SUFFIXES`).

    Returns
    -------
    dict
        Summary row: ``recording``, ``stem``, ``status`` ("ok"), ``model`` (the name of
        the model that staged it), ``n_epochs``, ``hours``,
        ``tst_min``, ``se_pct``, ``mean_confidence``, ``seconds``, ``outputs`` (kind ->
        path), ``notices`` (messages) and, with a reference, ``accuracy``, ``kappa``,
        ``macro_f1``.

    Raises
    ------
    FileNotFoundError
        If ``psg`` does not exist. Any staging or writing error is raised too (a batch
        caller decides whether to go on); nothing of the output set is left then.
    """
    from hypnoscope.io.hypnograms import read_hypnogram
    from hypnoscope.io.recordings import recording_stem
    from hypnoscope.notices import raise_if_strict

    psg = Path(psg)
    if not psg.is_file():
        raise FileNotFoundError(f"{psg}: recording not found (expected a recording file "
                                "MNE reads: EDF/BDF, BrainVision .vhdr, FIF ...)")
    out_dir = Path(out_dir)
    stem = out_stem or recording_stem(psg)
    ref = (read_hypnogram(reference, label_map=label_map) if reference is not None
           else None)
    t0 = time.perf_counter()
    bounds = {k: v for k, v in (("lights_off", lights_off), ("lights_on", lights_on),
                                ("crop", crop)) if v is not None}
    result = stage_recording(str(psg), model=model, eeg=eeg, eog=eog, emg=emg, **bounds)
    hyp = result.hypnogram
    # statistics and agreement over the staged span (lights-off/on, crop), computed
    # before anything is written: a reference that does not fit fails here
    stats = result.sleep_statistics()
    cmp = None if ref is None else result.compare(ref)
    off, on = result.lights
    info = dict(result.info)
    notices = result_notices(info)
    raise_if_strict(notices, strict, str(psg))  # before anything is written
    info.update(recording=psg.name, source=str(psg),
                **({"reference": str(reference)} if reference is not None else {}),
                **({"start_time": hyp.start_time.isoformat(sep=" ")}
                   if hyp.start_time is not None else {}),
                staging_options=staging_options(psg, model, eeg, eog, emg, reference,
                                                **bounds, label_map=label_map))
    names = output_names(stem, bids=bids_source is not None)
    _write_set(out_dir, stem, names, hyp, info, ref, cmp, (off, on), plot, bids_source,
               title=psg.name)
    paths = {k: out_dir / v for k, v in names.items() if plot or k != "png"}
    return _staged_row(psg, stem, hyp, stats, cmp, time.perf_counter() - t0, paths, notices,
                       (info.get("model") or {}).get("name"))


def _write_set(out_dir: Path, stem: str, names: dict[str, str], hyp, info: dict[str, Any],
               ref, cmp: dict[str, Any] | None, lights: tuple, plot: bool,
               bids_source: str | None, title: str) -> None:
    """The output set of :func:`stage_file`, all together or not at all."""
    from hypnoscope.utils.files import output_set
    from hypnoscope.viz.plots import figure_to_png, plot_night
    from hypnoscope.viz.report import FIGURE_DPI, write_report

    with output_set(out_dir, stem, replaces=list(names.values())) as tmp:
        hyp.to_tsv(tmp / names["tsv"])
        if bids_source is not None:
            _write_events_sidecar(tmp / names["sidecar"], hyp, bids_source, info)
        hyp.to_edf(tmp / names["edf"])
        # the night's figure is rendered once (embedded in the report and the PNG file),
        # and not at all without plot
        png = (figure_to_png(plot_night(hyp, reference=ref, title=title),
                             dpi=FIGURE_DPI, crop=False) if plot else None)
        write_report(tmp / names["json"][: -len(".json")], hyp, info, reference=ref,
                     lights_off=lights[0], lights_on=lights[1], comparison=cmp,
                     figure_png=png, plot=plot)
        if png is not None:
            _write_png(png, tmp / names["png"])


def _staged_row(psg: Path, stem: str, hyp, stats: dict[str, Any], cmp: dict[str, Any] | None,
                seconds: float, paths: dict[str, Path], notices: list,
                model: str | None = None) -> dict[str, Any]:
    """The summary row of a recording :func:`stage_file` staged with ``model``."""
    row: dict[str, Any] = {
        "recording": str(psg), "stem": stem, "status": "ok", "model": model,
        "n_epochs": hyp.n_epochs,
        "hours": hyp.duration_sec / 3600, "tst_min": stats.get("total_sleep_min"),
        "se_pct": stats.get("sleep_efficiency_pct"),
        # over the staged epochs, as in the report (unscored ones have confidence 0)
        "mean_confidence": (float(hyp.confidence[hyp.codes >= 0].mean())
                            if (hyp.codes >= 0).any() else float("nan")),
        "seconds": seconds, "outputs": {k: str(v) for k, v in paths.items()},
        "notices": [n.message for n in notices],
    }
    if cmp is not None:
        row.update(accuracy=cmp["epochs"]["accuracy"], kappa=cmp["epochs"]["kappa"],
                   macro_f1=cmp["epochs"]["macro_f1"])
    return row


def output_names(stem: str, bids: bool = False) -> dict[str, str]:
    """File names of the output set of stem ``stem`` (kind -> name): ``S.<suffix>``
    (:data:`OUTPUT_SUFFIXES`), or in a BIDS derivative dataset ``S_<suffix>``
    (:data:`BIDS_OUTPUT_SUFFIXES`)."""
    if bids:
        return {k: f"{stem}_{v}" for k, v in BIDS_OUTPUT_SUFFIXES.items()}
    return {k: f"{stem}.{v}" for k, v in OUTPUT_SUFFIXES.items()}


def _write_events_sidecar(path: Path, hyp, source: str, info: dict[str, Any]) -> Path:
    """Write the JSON sidecar of the BIDS ``events.tsv`` of a staged recording."""
    from hypnoscope._version import __version__
    from hypnoscope.io.bids import events_sidecar
    from hypnoscope.utils.files import write_json_atomic

    model = info.get("model")
    name = model.get("name") if isinstance(model, dict) else model
    text = (f"Sleep stages of {hyp.epoch_sec:g}-s epochs scored automatically by hypnoscope "
            f"{__version__}" + (f" (model {name})" if name else ""))
    return write_json_atomic(path, events_sidecar(hyp, [source], text))


def staging_options(psg: str | os.PathLike, model: Any = AUTO_MODEL, eeg=None,
                    eog=None, emg=None, reference: str | os.PathLike | None = None,
                    **bounds: Any) -> dict[str, Any]:
    """What an output set was made from and with (JSON-ready); stored in the report as
    ``recording.staging_options`` so that a rerun of ``hypnoscope stage`` can tell a
    complete set made the same way (skipped) from one made otherwise (staged again)."""
    def names(x):
        return None if x is None else ([x] if isinstance(x, str) else [str(c) for c in x])

    return {"psg": str(Path(psg).resolve()),
            "model": str(model) if isinstance(model, (str, os.PathLike)) else str(
                getattr(model, "name", None) or model),
            "reference": None if reference is None else str(Path(reference).resolve()),
            "eeg": names(eeg), "eog": names(eog), "emg": names(emg),
            **{k: bounds[k] for k in sorted(bounds) if bounds[k] is not None}}


def result_notices(info: dict[str, Any]) -> list:
    """The notices of a staged recording: ``info["notices"]`` (or, from readers that
    still report plain messages, ``info["warnings"]``) as
    :class:`hypnoscope.notices.Notice` objects."""
    from hypnoscope.notices import Notice, Notices

    got = info.get("notices")
    if got:
        return list(Notices().extend_from(got))
    return [Notice("warning", str(m)) for m in info.get("warnings") or []]


def _write_png(png: bytes, path: Path) -> Path:
    """Write the night's figure (:func:`hypnoscope.viz.plots.plot_night`, rendered once for
    the report and this file) into the output set's temporary folder."""
    path.write_bytes(png)
    return path


def existing_outputs(out: Path, stem: str, plot: bool, options: dict[str, Any],
                     bids: bool = False) -> tuple[str, Any]:
    """What ``out`` already holds for the output stem ``stem`` (named the BIDS way with
    ``bids``, :func:`output_names`).

    Returns ``("none", None)``, ``("complete", report)`` (every file of the set, made
    from the same recording with the same ``options``, see :func:`staging_options`),
    ``("restage", why)`` (an incomplete set, or one made with other options) or
    ``("other", why)`` (the set of another recording).
    """
    names = output_names(stem, bids)
    if not any((out / n).exists() for n in names.values()):
        return "none", None
    report = stored = None
    try:
        report = json.loads((out / names["json"]).read_text(encoding="utf-8"))
        stored = report["recording"]["staging_options"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if isinstance(stored, dict) and stored.get("psg") != options["psg"]:
        return "other", (f"{out / stem}{'_' if bids else '.'}* holds the outputs of "
                         f"{stored.get('psg')}, not of this recording; choose another --out, "
                         "or --force to replace them")
    missing = [n for k, n in names.items() if (plot or k != "png")
               and not (out / n).is_file()]
    if missing:
        return "restage", f"the earlier output set is incomplete (no {', '.join(missing)})"
    if not isinstance(stored, dict):
        return "restage", "the earlier outputs do not record how they were made"
    if stored != options:
        diff = [k for k in sorted(set(stored) | set(options)) if stored.get(k) != options.get(k)]
        return "restage", f"the earlier outputs were made otherwise ({', '.join(diff)})"
    return "complete", report


def skipped_row(psg: Path, stem: str, out: Path, report: dict[str, Any],
                plot: bool, bids: bool = False) -> dict[str, Any]:
    """Summary row of a recording whose complete output set exists (from its report)."""
    hyp = report.get("hypnogram") or {}
    st = report.get("sleep_statistics") or {}
    row: dict[str, Any] = {
        "recording": str(psg), "stem": stem, "status": "skipped",
        "model": (report.get("model") or {}).get("name"), "n_epochs": hyp.get("n_epochs"),
        "hours": hyp.get("duration_h"),
        "tst_min": st.get("total_sleep_min"), "se_pct": st.get("sleep_efficiency_pct"),
        "mean_confidence": hyp.get("mean_confidence"),
        "outputs": {k: str(out / n) for k, n in output_names(stem, bids).items()
                    if plot or k != "png"}}
    agr = report.get("agreement") or {}
    if agr:
        row.update(accuracy=agr.get("accuracy"), kappa=agr.get("kappa"),
                   macro_f1=agr.get("macro_f1"))
    return row
