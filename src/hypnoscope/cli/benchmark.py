"""``hypnoscope benchmark``: which stager fits my lab, on my own scored recordings.

Stages every recording with every model given (:func:`hypnoscope.staging.compare_stagers.
benchmark_stagers`, each model into ``--out/models/<label>/`` through the batch engine
of ``hypnoscope stage``: resumable, ``--jobs``/``--scheduler``) and writes
``benchmark.html``, ``benchmark.json`` and CSV tables comparing them with the scorer.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hypnoscope.cli import CLIError
from hypnoscope.cli.stats import add_label_map_arg


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "benchmark", help="compare stagers (models) on your own scored recordings",
        description="Stage every recording with every model (--models: shipped names, "
                    "model files, or other stagers such as yasa and consensus where "
                    "installed) and compare each with the scorer's hypnograms "
                    "(--reference): per model accuracy, Cohen's kappa, macro-F1, per-stage "
                    "F1 and confusion matrix; per recording, worst first; the bias and "
                    "limits of agreement of each sleep statistic (TST, SE, WASO, SOL, REM "
                    "latency, stage minutes) with Bland-Altman plots; a paired per-recording "
                    "comparison of the models; the staging time per night. Writes "
                    "benchmark.html, benchmark.json, models.csv, recordings.csv, "
                    "sleep_statistics.csv and paired.csv into --out, and each model's "
                    "outputs into --out/models/<model>/. A rerun stages nothing that is "
                    "complete; a bad recording is reported and the others go on (exit "
                    "code 1).")
    p.add_argument("psg", nargs="+", metavar="DATA",
                   help="recording file(s), directories, globs or a BIDS root (as for "
                        "'hypnoscope stage')")
    p.add_argument("--reference", "-r", nargs="+", metavar="HYPNOGRAM",
                   help="the scorer's hypnograms: one file per recording (same order) or a "
                        "directory searched for each (as for 'hypnoscope stage'); a BIDS "
                        "root's *_events.tsv are used without it")
    p.add_argument("--models", "-m", nargs="+", required=True, metavar="MODEL",
                   help="models to compare: shipped names (default, eeg2, eeg1 ...), model "
                        "files (.joblib/.pt/.onnx) or other stagers installed (yasa, "
                        "consensus)")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="output directory (created; checked for writing before any work)")
    p.add_argument("--eeg", nargs="+", metavar="CH", help="EEG channel(s) every model uses "
                   "(default: each model's own choice, as for 'hypnoscope stage')")
    p.add_argument("--eog", metavar="CH", help="EOG channel every model uses")
    p.add_argument("--emg", metavar="CH", help="EMG channel (models that use EMG)")
    add_label_map_arg(p)
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="recordings staged in parallel by local processes (default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="stage on a Dask distributed cluster (as for 'hypnoscope stage'); "
                        "instead of --jobs")
    p.add_argument("--crop", choices=["auto", "on", "none"], default=None,
                   help="crop to the main sleep period (as for 'hypnoscope stage')")
    p.add_argument("--lights-off", metavar="TIME",
                   help="lights off for every recording and model, as for stage: clock "
                        "time HH:MM[:SS] or seconds from the recording start; agreement "
                        "and sleep statistics are computed from lights-off to lights-on")
    p.add_argument("--lights-on", metavar="TIME", help="lights on (as for stage)")
    p.add_argument("--plot", action="store_true",
                   help="also draw each night's figure in the per-model outputs (the "
                        "benchmark's own figures are always drawn)")
    p.add_argument("--force", action="store_true",
                   help="stage again recordings whose complete outputs exist")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hypnoscope.cli.stage import _check_lights, _describe, _without_path
    from hypnoscope.stages import stage_codes_label_map
    from hypnoscope.staging.batch import BatchInterrupted
    from hypnoscope.staging.compare_stagers import benchmark_stagers, model_table
    from hypnoscope.utils.files import check_output_dir

    if args.jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {args.jobs}")
    if args.scheduler is not None and args.jobs != 1:
        raise CLIError("give --jobs (local processes) or --scheduler (a Dask cluster), "
                       "not both")
    lights_off = _check_lights(args.lights_off, "--lights-off")
    lights_on = _check_lights(args.lights_on, "--lights-on")
    out = check_output_dir(args.out, "--out", create=True)  # before any work

    def on_row(row: dict[str, Any]) -> None:
        if row["status"] not in ("ok", "skipped"):
            msg = _without_path(str(row.get("error", "")), row["recording"])
            print(f"hypnoscope benchmark: error: model {row['benchmark_model']}: "
                  f"{row['recording']}: {msg}", file=sys.stderr)

    try:
        result = benchmark_stagers(
            args.psg, args.reference, args.models, out, jobs=args.jobs,
            scheduler=args.scheduler, resume=not args.force, plot=args.plot,
            label_map=stage_codes_label_map(args.stage_codes, args.label_map),
            crop={"none": "off"}.get(args.crop, args.crop), eeg=args.eeg, eog=args.eog,
            emg=args.emg, lights_off=lights_off, lights_on=lights_on,
            debug=bool(getattr(args, "debug", False)), describe=_describe,
            note=lambda m: print(m, file=sys.stderr), on_row=on_row)
    except BatchInterrupted:
        print("hypnoscope benchmark: interrupted; run the same command again to finish "
              "(complete outputs are skipped)", file=sys.stderr)
        return 130
    print(format_table(*model_table(result)))
    n_fail = len(result["failures"])
    print(f"{result['n_recordings']} recording(s), {len(result['models'])} model(s), "
          f"{n_fail} failure(s); report in {result['outputs']['html']}")
    return 1 if n_fail else 0


def format_table(head: list[str], rows: list[list[Any]]) -> str:
    """Plain-text table of the per-model summary (``-`` where undefined)."""
    keep = [i for i, h in enumerate(head) if h not in ("kappa_sd", "sec_per_hour")]

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if v == v else "-"
        return "-" if v is None else str(v)

    table = [[head[i] for i in keep]] + [[cell(r[i]) for i in keep] for r in rows]
    width = [max(len(r[j]) for r in table) for j in range(len(keep))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)).rstrip()
                     for r in table)
