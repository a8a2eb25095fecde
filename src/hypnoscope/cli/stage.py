"""``hypnoscope stage``: stage one or many PSG recordings and write every output.

Per recording with stem ``S`` (the file name without ``.edf`` and without a Sleep-EDF
``-PSG`` suffix) the command writes into ``--out``
(:func:`hypnoscope.staging.pipeline.stage_file`) an output set that appears all together or not
at all (written into a temporary folder inside ``--out``, then moved in):

- ``S.hypnogram.tsv``: ``onset duration stage confidence p_W p_N1 p_N2 p_N3 p_R``;
- ``S.hypnogram.edf``: EDF+ stage annotations (MNE, EDFbrowser);
- ``S.report.json`` and ``S.report.html``: sleep statistics (+ agreement with
  ``--reference``);
- ``S.hypnogram.png``: hypnogram and hypnodensity.

Batches: recordings whose stems are equal (``a/S-PSG.edf``, ``b/S-PSG.edf``, ``a/S.edf``;
compared ignoring case) get distinct names, announced before staging
(:func:`output_stems`): the parent folder's name is put in front (``a_S``, ``b_S``), and
names still equal get ``-2``, ``-3`` ... in input order (``a_S-2``). ``--out`` is checked
for writing before any work. A rerun skips every recording whose complete output set
exists and was made from the same file with the same options (``--force`` stages it
again); a set in the way that belongs to another recording is refused. The summary counts
staged, skipped and failed recordings; the exit code is 1 if any failed, 130 when
interrupted (finished sets stay complete, nothing of the others remains).
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import sys
from pathlib import Path
from typing import Any

from hypnoscope.cli import CLIError
from hypnoscope.cli.stats import add_label_map_arg


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stage", help="stage PSG recordings (EDF, BrainVision, FIF ... or a BIDS dataset) "
                      "and write hypnograms and reports",
        description="Stage PSG recordings with a shipped or trained model. PSG may be files "
                    "in any format MNE reads (EDF/BDF, BrainVision .vhdr, FIF, EEGLAB .set, "
                    "GDF, Nihon Kohden .eeg ...), directories (every *-PSG.edf, else every "
                    "recording file that is not a hypnogram), glob patterns, or a BIDS root "
                    "(sub-*/[ses-*/]eeg/*_eeg.*; the stages of *_events.tsv are the "
                    "reference, and --out becomes a BIDS derivative dataset with "
                    "dataset_description.json and the outputs in sub-*/[ses-*/]eeg/). "
                    "Per recording with stem S (file name without .edf "
                    "and -PSG) --out gets S.hypnogram.tsv, S.hypnogram.edf, S.report.html, "
                    "S.report.json and S.hypnogram.png, all together or none (an error or "
                    "Ctrl-C leaves nothing of that recording). Recordings with the same "
                    "stem are named after their folder (a/S-PSG.edf, b/S-PSG.edf -> a_S, "
                    "b_S; still equal: a_S-2 ...). A rerun skips recordings whose complete "
                    "output set exists (same file and options; --force redoes them). A bad "
                    "recording is reported and the batch goes on; exit code 1 if any "
                    "failed.")
    p.add_argument("psg", nargs="+", metavar="PSG",
                   help="recording file(s), directories, globs or a BIDS root")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="output directory (created; checked for writing before any work)")
    p.add_argument("--model", "-m", default="auto", metavar="NAME|PATH",
                   help="shipped model name (see 'hypnoscope models') or model file "
                        "(.joblib/.pt from 'hypnoscope train', or .onnx from 'hypnoscope "
                        "export', run with onnxruntime, no PyTorch needed); "
                        "auto (the default) picks the richest shipped model the "
                        "recording's channels allow (two EEG + EOG: default; one EEG + EOG: "
                        "eeg1-eog; two EEG: eeg2; one EEG: eeg1), announces it and records "
                        "it in the report")
    p.add_argument("--eeg", nargs="+", metavar="CH", help="EEG channel(s) to use")
    p.add_argument("--eog", metavar="CH", help="EOG channel to use")
    p.add_argument("--emg", metavar="CH", help="EMG channel to use (models that use EMG)")
    p.add_argument("--reference", "-r", nargs="+", metavar="HYPNOGRAM",
                   help="reference hypnogram(s) for agreement metrics: one file per "
                        "recording (same order), or a directory searched for the matching "
                        "Sleep-EDF *-Hypnogram.edf, NSRR <stem>-nsrr.xml / -profusion.xml "
                        "or <stem>.* file (EDF+, TSV/CSV, text or NSRR XML)")
    add_label_map_arg(p)
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="recordings staged in parallel by local processes (default 1); "
                        "or use --scheduler")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="stage on a Dask distributed cluster, e.g. tcp://HOST:8786 (the "
                        "address 'dask scheduler' prints); PSG, --out and hypnoscope must "
                        "be reachable at the same paths on every worker. Instead of --jobs")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG figure")
    p.add_argument("--lights-off", metavar="TIME",
                   help="lights off: clock time HH:MM[:SS] (taken against each "
                        "recording's start time) or seconds from the recording start; "
                        "only the epochs from lights-off to lights-on are staged and "
                        "counted as time in bed")
    p.add_argument("--lights-on", metavar="TIME",
                   help="lights on (same forms as --lights-off; after midnight is fine)")
    p.add_argument("--crop", choices=["auto", "on", "none"], default=None,
                   help="crop to the main sleep period plus 30 min of wake either side: "
                        "auto (default) for recordings longer than 14 h, such as 24-h "
                        "Sleep-EDF cassette files (announced in the report), on: always, "
                        "none: never")
    p.add_argument("--force", action="store_true",
                   help="stage again recordings whose complete output set already exists "
                        "in --out (default: skip them), and replace a set that belongs "
                        "to another recording (default: refuse)")
    p.add_argument("--strict", action="store_true",
                   help="a recording whose staging gave any warning (units rescaled, "
                        "flat or noisy channel, ...) fails with those warnings and gets "
                        "no outputs; the batch goes on, exit code 1")
    p.set_defaults(func=run)


# ----------------------------------------------------------------- inputs
def _is_hypnogram_file(path: Path) -> bool:
    from hypnoscope.io.recordings import HYPNOGRAM_NAME  # the one rule of scoring-file names

    return bool(HYPNOGRAM_NAME.search(path.stem))


def expand_inputs(items: list[str]) -> list[Path]:
    """Files from paths, directories and glob patterns (sorted, de-duplicated).

    A directory contributes its ``*-PSG.edf`` files, or, if it has none, every recording
    MNE reads (EDF/BDF, BrainVision, FIF ...) whose name does not look like a hypnogram;
    a BIDS root its ``sub-*/[ses-*/]eeg/*_eeg.*`` recordings. A missing path is kept so
    that it is reported as a failure.
    """
    return expand_inputs_and_roots(items)[0]


def expand_inputs_and_roots(items: list[str]) -> tuple[list[Path], dict[Path, Path]]:
    """:func:`expand_inputs` and ``{recording: BIDS root}`` for those found in a BIDS
    root."""
    from hypnoscope.io.bids import is_bids_root, list_bids_recordings

    out: list[Path] = []
    roots: dict[Path, Path] = {}
    for item in items:
        p = Path(item)
        if p.is_dir() and is_bids_root(p):
            found = list_bids_recordings(p)
            if not found:
                raise CLIError(f"{p}: BIDS dataset holds no EEG recording "
                               "(sub-*/[ses-*/]eeg/*_eeg.edf|.bdf|.vhdr|.set|.fif)")
            roots.update({f: p for f in found})
            out.extend(found)
        elif p.is_dir():
            from hypnoscope.io.recordings import list_recordings

            found = list_recordings(p)
            if not found:
                raise CLIError(f"{p}: directory holds no PSG recording (*-PSG.edf, or *.edf, "
                               "*.bdf, *.vhdr, *.fif, *.set ...)")
            out.extend(found)
        elif any(c in item for c in "*?[") and not p.exists():
            found = sorted(Path(f) for f in glob.glob(item)
                           if Path(f).is_file() and not _is_hypnogram_file(Path(f)))
            if not found:
                raise CLIError(f"no recording matches {item!r}")
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


def _references(psgs: list[Path], refs: list[str] | None) -> list[Path | None]:
    if not refs:
        return [None] * len(psgs)
    if len(refs) == 1 and Path(refs[0]).is_dir():
        from hypnoscope.io.recordings import find_hypnogram

        folder = Path(refs[0])
        return [find_hypnogram(p, folder) for p in psgs]
    if len(refs) != len(psgs):
        raise CLIError(f"--reference got {len(refs)} file(s) for {len(psgs)} recording(s); "
                       "give one per recording (same order) or a directory")
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


def existing_outputs(out: Path, stem: str, plot: bool,
                     options: dict[str, Any]) -> tuple[str, Any]:
    """What ``out`` already holds for the output stem ``stem``.

    Returns ``("none", None)``, ``("complete", report)`` (every file of the set, made
    from the same recording with the same ``options``), ``("restage", why)`` (an
    incomplete set, or one made with other options) or ``("other", why)`` (the set of
    another recording).
    """
    from hypnoscope.staging.pipeline import output_names

    names = output_names(stem)
    if not any((out / n).exists() for n in names.values()):
        return "none", None
    report = stored = None
    try:
        report = json.loads((out / names["json"]).read_text(encoding="utf-8"))
        stored = report["recording"]["staging_options"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if isinstance(stored, dict) and stored.get("psg") != options["psg"]:
        return "other", (f"{out / stem}.* holds the outputs of {stored.get('psg')}, not of "
                         f"this recording; choose another --out, or --force to replace them")
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


def _skipped_row(psg: Path, stem: str, out: Path, report: dict[str, Any],
                 plot: bool) -> dict[str, Any]:
    """Summary row of a recording whose complete output set exists (from its report)."""
    from hypnoscope.staging.pipeline import output_names

    hyp = report.get("hypnogram") or {}
    st = report.get("sleep_statistics") or {}
    row: dict[str, Any] = {
        "recording": str(psg), "stem": stem, "status": "skipped",
        "n_epochs": hyp.get("n_epochs"), "hours": hyp.get("duration_h"),
        "tst_min": st.get("total_sleep_min"), "se_pct": st.get("sleep_efficiency_pct"),
        "mean_confidence": hyp.get("mean_confidence"),
        "outputs": {k: str(out / n) for k, n in output_names(stem).items()
                    if plot or k != "png"}}
    agr = report.get("agreement") or {}
    if agr:
        row.update(accuracy=agr.get("accuracy"), kappa=agr.get("kappa"),
                   macro_f1=agr.get("macro_f1"))
    return row


# -------------------------------------------------------------------- CLI
def _fmt(v: Any, spec: str) -> str:
    try:
        return format(float(v), spec)
    except (TypeError, ValueError):
        return "-"


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of a batch run: one row per recording (``ok``, ``skipped`` with
    the figures of its existing outputs, or ``FAILED`` with the reason)."""
    from hypnoscope.io.recordings import recording_stem

    has_ref = any("accuracy" in r for r in rows)
    head = ["recording", "outputs", "status", "epochs", "hours", "TST min", "SE %", "conf"]
    if has_ref:
        head += ["acc", "kappa", "MF1"]
    names = [Path(r["recording"]).name for r in rows]
    if len(set(names)) < len(names):  # same file names in several folders: show paths
        names = [str(r["recording"]) for r in rows]
    lines = []
    for name, r in zip(names, rows, strict=True):
        stem = r.get("stem") or recording_stem(r["recording"])
        if r["status"] not in ("ok", "skipped"):
            why = _without_path(str(r.get("error", "")), r["recording"])
            why = (why.splitlines() or [""])[0]
            lines.append([name, stem, "FAILED", why if len(why) <= 100 else
                          why[:99] + "…"])
            continue
        cells = [name, stem, r["status"], _fmt(r["n_epochs"], ".0f"), _fmt(r["hours"], ".2f"),
                 _fmt(r["tst_min"], ".1f"), _fmt(r["se_pct"], ".1f"),
                 _fmt(r["mean_confidence"], ".2f")]
        if has_ref:
            cells += [_fmt(r.get("accuracy"), ".3f"), _fmt(r.get("kappa"), ".3f"),
                      _fmt(r.get("macro_f1"), ".3f")]
        lines.append(cells)
    full = [c for c in lines if len(c) == len(head)]
    width = [max([len(head[i])] + [len(c[i]) for c in full]) for i in range(len(head))]
    width[0] = max([width[0]] + [len(c[0]) for c in lines])
    width[1] = max([width[1]] + [len(c[1]) for c in lines])
    out = ["  ".join(h.ljust(w) for h, w in zip(head, width, strict=True))]
    out.append("  ".join("-" * w for w in width))
    for c in lines:
        if len(c) == len(head):
            out.append("  ".join(x.ljust(w) for x, w in zip(c, width, strict=True)).rstrip())
        else:
            out.append(f"{c[0].ljust(width[0])}  {c[1].ljust(width[1])}  FAILED  {c[3]}")
    return "\n".join(out)


def _check_lights(value: str | None, what: str) -> str | float | None:
    """Validate a --lights-off/--lights-on value before any work (seconds or HH:MM[:SS])."""
    if value is None:
        return None
    try:
        sec = float(value)
    except ValueError:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", value.strip())
        if not m or int(m[1]) > 23 or int(m[2]) > 59 or int(m[3] or 0) > 59:
            raise CLIError(f"{what} {value!r}: expected seconds from the recording start "
                           "or a clock time HH:MM[:SS]") from None
        return value.strip()
    if not sec >= 0 or sec == float("inf"):
        raise CLIError(f"{what} {value!r}: expected seconds >= 0 from the recording start")
    return sec


def run(args: argparse.Namespace) -> int:
    from hypnoscope.staging.batch import write_summary_csv
    from hypnoscope.utils import check_output_dir, remove_stale_partials, write_json_atomic

    if args.jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {args.jobs}")
    if getattr(args, "scheduler", None) is not None and args.jobs != 1:
        raise CLIError("give --jobs (local processes) or --scheduler (a Dask cluster), "
                       "not both")
    bounds = {k: v for k, v in (
        ("lights_off", _check_lights(getattr(args, "lights_off", None), "--lights-off")),
        ("lights_on", _check_lights(getattr(args, "lights_on", None), "--lights-on")),
        ("crop", {"none": "off"}.get(args.crop, args.crop)),
        ("label_map", args.label_map)) if v is not None}
    out = check_output_dir(args.out, "--out", create=True)  # before any work
    psgs, bids_roots = expand_inputs_and_roots(args.psg)
    refs = _references(psgs, args.reference)
    stems = output_stems(psgs)
    out_dirs = [out] * len(psgs)
    if bids_roots:  # a BIDS derivative dataset: outputs in each recording's own folder
        from hypnoscope.io.bids import bids_events_file, bids_output, write_derivative_description

        for i, p in enumerate(psgs):
            if p in bids_roots:
                rel, stems[i] = bids_output(p, bids_roots[p])
                out_dirs[i] = out / rel
                if refs[i] is None and not args.reference:
                    refs[i] = bids_events_file(p)  # scored stages of *_events.tsv
        for root in dict.fromkeys(bids_roots.values()):
            write_derivative_description(out, root, args.model)
        n_ref = sum(r is not None for p, r in zip(psgs, refs, strict=True) if p in bids_roots)
        print(f"BIDS dataset: {len(bids_roots)} recording(s), {n_ref} with scored stages in "
              f"*_events.tsv (used as reference); writing a derivative dataset to {out}",
              file=sys.stderr)
    plain = [i for i, p in enumerate(psgs) if p not in bids_roots]  # BIDS names are unique
    _announce_renames([psgs[i] for i in plain], [stems[i] for i in plain])
    from hypnoscope.models.storage import load_staging_model, resolve_model_path

    if args.model != "auto":
        resolve_model_path(args.model)  # fail early on an unknown model
    if args.emg:
        from hypnoscope.staging.pipeline import model_input

        mdl, card = load_staging_model("default" if args.model == "auto" else args.model)
        if model_input(mdl, card) == "bandpower":
            print(f"note: model {card.get('name', args.model)!r} uses EEG and EOG only; "
                  f"--emg {' '.join(args.emg) if isinstance(args.emg, list) else args.emg} "
                  "is ignored", file=sys.stderr)
    from hypnoscope.staging.pipeline import staging_options

    for d in remove_stale_partials(out):
        print(f"note: removed {d}, left by an interrupted run", file=sys.stderr)
    plot = not args.no_plot
    tasks = [dict(psg=str(p), out_dir=str(d), model=args.model, eeg=args.eeg, eog=args.eog,
                  emg=args.emg, reference=None if r is None else str(r), plot=plot,
                  out_stem=stem, strict=args.strict, **bounds)
             for p, r, stem, d in zip(psgs, refs, stems, out_dirs, strict=True)]
    rows: list[dict[str, Any] | None] = [None] * len(tasks)
    skipped = []
    for i, t in enumerate(tasks):
        if not Path(t["psg"]).is_file():
            continue  # reported as a failure by stage_file
        options = json.loads(json.dumps(staging_options(
            t["psg"], args.model, args.eeg, args.eog, args.emg, t["reference"], **bounds)))
        state, what = existing_outputs(Path(t["out_dir"]), t["out_stem"], plot, options)
        if state == "complete" and not args.force:
            rows[i] = _skipped_row(Path(t["psg"]), t["out_stem"], Path(t["out_dir"]), what,
                                   plot)
            skipped.append(t["out_stem"])
        elif state == "other" and not args.force:
            rows[i] = {"recording": t["psg"], "stem": t["out_stem"], "status": "failed",
                       "error": what}
            _report_row(rows[i])
        else:
            if state in ("restage", "other"):
                print(f"note: {t['psg']}: staging again: "
                      f"{what if state == 'restage' else 'replacing ' + what.split(';')[0]}",
                      file=sys.stderr)
    if skipped:
        print(f"skipping {len(skipped)} recording(s) whose complete output set exists in "
              f"{out} (same recording and options; --force stages them again): "
              f"{', '.join(skipped)}", file=sys.stderr)
    from hypnoscope.staging.batch import BatchInterrupted, BatchItem, make_executor, run_batch
    from hypnoscope.staging.pipeline import stage_file

    items = [BatchItem(t["psg"], t["out_stem"], t, rows[i]) for i, t in enumerate(tasks)]
    n_todo = sum(it.row is None for it in items)
    scheduler = getattr(args, "scheduler", None)
    executor = make_executor(min(args.jobs, max(n_todo, 1)), scheduler)
    if scheduler is not None:
        print(f"staging {n_todo} recording(s) on the {executor.name}", file=sys.stderr)
    try:
        rows = run_batch(items, stage_file, executor, describe=_describe,
                         debug=bool(getattr(args, "debug", False)), desc="staging",
                         on_row=_report_row)
    except BatchInterrupted as exc:
        left = [it.stem for it, r in zip(items, exc.rows, strict=True) if r is None]
        fresh = [r for it, r in zip(items, exc.rows, strict=True)
                 if it.row is None and r is not None]
        n_ok = sum(r["status"] == "ok" for r in fresh)
        n_fail = sum(r["status"] == "failed" for r in fresh)
        print(f"hypnoscope stage: interrupted: {n_ok} recording(s) staged, {n_fail} failed, "
              f"{len(left)} not finished ({', '.join(left)}; nothing of them was written); "
              "run the same command again to finish (complete output sets are skipped)",
              file=sys.stderr)
        return 130
    for d in remove_stale_partials(out):  # left by a worker that was killed meanwhile
        print(f"note: removed {d}, left by a worker that stopped", file=sys.stderr)
    done = rows
    n_fail = sum(r["status"] not in ("ok", "skipped") for r in done)
    n_skip = sum(r["status"] == "skipped" for r in done)
    print(summary_table(done))
    print(f"{len(done) - n_fail - n_skip} of {len(done)} recording(s) staged, {n_skip} "
          f"skipped (complete outputs exist), {n_fail} failed; outputs in {out}")
    if len(done) > 1:
        write_json_atomic(out / "summary.json", done)
        write_summary_csv(out / "summary.csv", done)
    return 1 if n_fail else 0


def _describe(exc: BaseException) -> str:
    """The one-line error of a failed recording (the CLI's error path)."""
    from hypnoscope.cli import describe_error

    return describe_error(exc)[0]


def _announce_renames(psgs: list[Path], stems: list[str]) -> None:
    from hypnoscope.io.recordings import recording_stem

    renamed = [(p, s) for p, s in zip(psgs, stems, strict=True) if s != recording_stem(p)]
    if renamed:
        print("note: recordings share an output stem, so their outputs are named: "
              + ", ".join(f"{p} -> {s}.*" for p, s in renamed), file=sys.stderr)


def _report_row(row: dict[str, Any]) -> None:
    if row["status"] not in ("ok", "skipped"):
        if row.get("traceback"):
            print(row["traceback"], file=sys.stderr, end="")
        msg = _without_path(str(row["error"]), row["recording"])
        print(f"hypnoscope stage: error: {row['recording']}: {msg}", file=sys.stderr)


def _without_path(message: str, path: str) -> str:
    """``message`` without a leading ``<path>: `` (the caller names the recording)."""
    return message[len(str(path)) + 2:] if message.startswith(f"{path}: ") else message
