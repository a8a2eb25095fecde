"""``hypnoscope stage``: stage one or many PSG recordings and write every output.

The command parses its arguments, calls :func:`hypnoscope.staging.batch.stage_folder`
(discovery, naming, resume and the batch itself) and prints what it reports. Per
recording with stem ``S`` (the file name without ``.edf`` and without a Sleep-EDF
``-PSG`` suffix) it writes into ``--out``
(:func:`hypnoscope.staging.outputs.stage_file`) an output set that appears all together or
not at all (written into a temporary folder inside ``--out``, then moved in):

- ``S.hypnogram.tsv``: ``onset duration stage confidence p_W p_N1 p_N2 p_N3 p_R``;
- ``S.hypnogram.edf``: EDF+ stage annotations (MNE, EDFbrowser);
- ``S.report.json`` and ``S.report.html``: sleep statistics (+ agreement with
  ``--reference``);
- ``S.hypnogram.png``: hypnogram and hypnodensity.

Batches: recordings whose stems are equal (``a/S-PSG.edf``, ``b/S-PSG.edf``, ``a/S.edf``;
compared ignoring case) get distinct names, announced before staging
(:func:`hypnoscope.staging.inputs.output_stems`): the parent folder's name is put in front
(``a_S``, ``b_S``), and names still equal get ``-2``, ``-3`` ... in input order
(``a_S-2``). ``--out`` is checked for writing before any work. A rerun skips every
recording whose complete output set exists and was made from the same file with the same
options (``--force`` stages it again); a set in the way that belongs to another recording
is refused. The summary counts staged, skipped and failed recordings; the exit code is 1
if any failed, 130 when interrupted (finished sets stay complete, nothing of the others
remains).
"""

from __future__ import annotations

import argparse
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
                    "dataset_description.json and the outputs in sub-*/[ses-*/]eeg/, named "
                    "<entities>_desc-hypnoscope_events.tsv (+ .json sidecar), _report.html "
                    "..., see the README). "
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
                        "it in the report; stagers: yasa (YASA, the extra peers), "
                        "consensus[:NAME=W,...] (a soft vote) and plug-ins of the entry-point "
                        "group hypnoscope.stagers ('hypnoscope models' lists them)")
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
    p.add_argument("--no-plot", action="store_true",
                   help="draw no figure: no PNG, and the report says it was not drawn")
    p.add_argument("--lights-off", metavar="TIME",
                   help="lights off: clock time HH:MM[:SS] (taken against each "
                        "recording's start time) or seconds from the recording start; "
                        "only the epochs from lights-off to lights-on are staged and "
                        "counted as time in bed")
    p.add_argument("--lights-on", metavar="TIME",
                   help="lights on (same forms as --lights-off; after midnight is fine, a "
                        "pair that only fits swapped is refused)")
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
    from hypnoscope.stages import stage_codes_label_map
    from hypnoscope.staging.batch import BatchInterrupted, stage_folder
    from hypnoscope.utils.files import check_output_dir

    if args.jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {args.jobs}")
    if getattr(args, "scheduler", None) is not None and args.jobs != 1:
        raise CLIError("give --jobs (local processes) or --scheduler (a Dask cluster), "
                       "not both")
    lights_off = _check_lights(getattr(args, "lights_off", None), "--lights-off")
    lights_on = _check_lights(getattr(args, "lights_on", None), "--lights-on")
    out = check_output_dir(args.out, "--out", create=True)  # before any work
    try:
        done = stage_folder(
            args.psg, out, args.model, reference=args.reference, eeg=args.eeg, eog=args.eog,
            emg=args.emg, plot=not args.no_plot, strict=args.strict, lights_off=lights_off,
            lights_on=lights_on, crop={"none": "off"}.get(args.crop, args.crop),
            label_map=stage_codes_label_map(args.stage_codes, args.label_map),
            jobs=args.jobs, scheduler=getattr(args, "scheduler", None),
            resume=not args.force, debug=bool(getattr(args, "debug", False)),
            describe=_describe, note=_note, on_row=_report_row)
    except BatchInterrupted as exc:
        fresh = exc.finished
        n_ok = sum(r["status"] == "ok" for r in fresh)
        n_fail = sum(r["status"] == "failed" for r in fresh)
        left = exc.unfinished
        print(f"hypnoscope stage: interrupted: {n_ok} recording(s) staged, {n_fail} failed, "
              f"{len(left)} not finished ({', '.join(left)}; nothing of them was written); "
              "run the same command again to finish (complete output sets are skipped)",
              file=sys.stderr)
        return 130
    n_fail = sum(r["status"] not in ("ok", "skipped") for r in done)
    n_skip = sum(r["status"] == "skipped" for r in done)
    print(summary_table(done))
    print(f"{len(done) - n_fail - n_skip} of {len(done)} recording(s) staged, {n_skip} "
          f"skipped (complete outputs exist), {n_fail} failed; outputs in {out}")
    return 1 if n_fail else 0


def _describe(exc: BaseException) -> str:
    """The one-line error of a failed recording (the CLI's error path)."""
    from hypnoscope.cli import describe_error

    return describe_error(exc)[0]


def _note(message: str) -> None:
    """A message of the batch, on stderr."""
    print(message, file=sys.stderr)


def _report_row(row: dict[str, Any]) -> None:
    if row["status"] not in ("ok", "skipped"):
        if row.get("traceback"):
            print(row["traceback"], file=sys.stderr, end="")
        msg = _without_path(str(row["error"]), row["recording"])
        print(f"hypnoscope stage: error: {row['recording']}: {msg}", file=sys.stderr)


def _without_path(message: str, path: str) -> str:
    """``message`` without a leading ``<path>: `` (the caller names the recording)."""
    return message[len(str(path)) + 2:] if message.startswith(f"{path}: ") else message
