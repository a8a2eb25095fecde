"""``hypnoscope stats`` (sleep statistics of a hypnogram) and ``hypnoscope compare``
(agreement of a predicted and a reference hypnogram)."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from hypnoscope.cli import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stats", help="sleep statistics (AASM) of a hypnogram",
        description="Print AASM sleep statistics (TST, sleep efficiency, latencies, WASO, "
                    "stage minutes, ...) of a hypnogram file (EDF+, TSV/CSV or text). A "
                    "scoring longer than 14 h (a 24-h Sleep-EDF hypnogram) is cropped as "
                    "'hypnoscope stage' crops a recording: to its main sleep period plus "
                    "30 min of wake either side, announced with the times used.")
    p.add_argument("hypnogram", help="hypnogram file (.edf, .tsv, .csv, .txt)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _lights_args(p)
    p.add_argument("--crop", choices=["auto", "on", "none"], default="auto",
                   help="crop to the main sleep period plus 30 min of wake either side "
                        "(the bound not given by --lights-off/--lights-on), as 'hypnoscope "
                        "stage' does: auto (default) for scorings longer than 14 h, on: "
                        "always, none: never (time in bed = first to last scored epoch)")
    p.add_argument("--epoch-sec", type=float, default=30.0,
                   help="epoch length in seconds (default: 30)")
    p.add_argument("-o", "--output", help="also write the statistics as JSON to this file "
                   "(checked for writing before anything is read)")
    add_label_map_arg(p)
    _strict_arg(p)
    p.set_defaults(func=_stats)

    c = subparsers.add_parser(
        "compare", help="agreement of a predicted and a reference hypnogram",
        description="Epoch-by-epoch agreement (accuracy, macro-F1, kappa, per-class "
                    "metrics, confusion matrix) and sleep-statistic differences between "
                    "two hypnograms of the same night.")
    c.add_argument("pred", help="predicted hypnogram file")
    c.add_argument("ref", help="reference hypnogram file (e.g. the scorer's)")
    c.add_argument("--json", action="store_true", help="print JSON instead of text")
    _lights_args(c)
    c.add_argument("--report", metavar="STEM",
                   help="also write an HTML + JSON report (STEM.html, STEM.json; checked "
                        "for writing before anything is read)")
    add_label_map_arg(c)
    _strict_arg(c)
    c.set_defaults(func=_compare)


def _strict_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 2, nothing written) on any warning, e.g. a lights-off/on "
                        "outside the hypnogram" + (
                            " or scored epochs the two hypnograms do not share"
                            if p.prog.endswith("compare") else ""))


def _warnings(hyps, off: float | None, on: float | None, strict: bool, what: str) -> None:
    """With ``strict``, raise :class:`~hypnoscope.notices.StrictModeError` for what the
    statistics would warn about: lights-off/on outside a hypnogram and, for two
    hypnograms (prediction, reference), scored epochs outside the span both cover
    (they are not compared)."""
    if not strict:
        return
    from hypnoscope.evaluation.sleepstats import time_in_bed_slice
    from hypnoscope.notices import Notice, Notices, raise_if_strict

    notes = Notices()
    for path, hyp in hyps:
        if (hyp.codes >= 0).any():
            local = Notices()
            time_in_bed_slice(hyp, off, on, local)
            notes.extend_from(Notice(n.code, f"{path}: {n.message}", n.severity, n.channel)
                              for n in local)
    if len(hyps) == 2:
        (_, a), (_, b) = hyps
        lo = max(a.onset_sec, b.onset_sec)
        hi = min(a.onset_sec + a.duration_sec, b.onset_sec + b.duration_sec)
        for path, hyp in hyps:
            mid = hyp.onsets + hyp.epoch_sec / 2
            k = int(((hyp.codes >= 0) & ((mid < lo) | (mid > hi))).sum())
            if k:
                notes.add("epochs-not-compared",
                          f"{path}: {k} scored epoch(s) lie outside the {lo:g}-{hi:g} s "
                          "that both hypnograms cover and are not compared")
    raise_if_strict(notes, True, what)


def add_label_map_arg(p: argparse.ArgumentParser) -> None:
    """The ``--label-map`` option of the commands that read hypnograms."""
    p.add_argument("--label-map", metavar="MAP",
                   help="site-specific stage labels of the hypnogram file(s): a JSON file "
                        "{\"LABEL\": \"STAGE\"} or 'LABEL=STAGE,...' (e.g. 'NREM2=N2,N 2=N2');"
                        " an unknown label is an error that lists the accepted ones")
    p.add_argument("--stage-codes", choices=("rk", "yasa", "aasm"), default=None,
                   help="numeric stages of text/TSV/CSV hypnograms: 'rk' = R&K numbering "
                        "(0 W, 1-4 stages 1-4 with 4 -> N3, 5 REM; Sleep-EDF, NSRR) or "
                        "'yasa' (= 'aasm') = YASA/AASM numbering (0 W, 1 N1, 2 N2, 3 N3, "
                        "4 REM). Default: from the file's legend (YASA's '# ... 4: REM') or a "
                        "5 (R&K); a file with a 4, no 5 and no legend is refused")


def _lights_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lights-off", metavar="S",
                   help="lights off: seconds from the recording start, or clock time "
                        "HH:MM[:SS] (needs a start time in the file)")
    p.add_argument("--lights-on", metavar="S", help="lights on (same forms as --lights-off)")


def parse_time(value: str | None, start: dt.datetime | None, what: str,
               after: float | None = None) -> float | None:
    """Seconds from the recording start of a ``--lights-*`` value
    (:func:`hypnoscope.evaluation.sleepstats.resolve_time`).

    ``value`` is a number of seconds or a clock time ``HH:MM[:SS]``; clock times need
    the recording ``start`` and are taken on the first occasion at or after it (or after
    ``after`` seconds, so lights-on can fall after midnight).
    """
    from hypnoscope.evaluation.sleepstats import resolve_time

    try:
        return resolve_time(value, start, what, after=after, before_start_sec=0.0)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _load(path: str, epoch_sec: float = 30.0, label_map: str | None = None,
          stage_codes: str | None = None):
    from hypnoscope.io.hypnograms import read_hypnogram

    return read_hypnogram(path, epoch_sec=epoch_sec, label_map=label_map,
                          stage_codes=stage_codes)


def _stats(args: argparse.Namespace) -> int:
    from hypnoscope.evaluation.sleepstats import (
        STAT_KEYS,
        STAT_LABELS,
        json_safe,
        sleep_statistics,
        statistics_lights,
    )
    from hypnoscope.notices import Notices
    from hypnoscope.utils.files import check_output_file, write_json_atomic

    if args.output:
        check_output_file(args.output, "-o/--output")
    hyp = _load(args.hypnogram, args.epoch_sec, args.label_map, args.stage_codes)
    off = parse_time(args.lights_off, hyp.start_time, "--lights-off")
    on = parse_time(args.lights_on, hyp.start_time, "--lights-on", after=off)
    _warnings([(args.hypnogram, hyp)], off, on, args.strict, args.hypnogram)
    try:  # the night of a long scoring, as stage crops a recording (announced)
        off, on = statistics_lights(hyp, off, on, {"none": "off"}.get(args.crop, args.crop),
                                    Notices(), args.hypnogram)
    except ValueError as exc:
        raise CLIError(f"{args.hypnogram}: {exc}") from None
    stats = json_safe(sleep_statistics(hyp, lights_off=off, lights_on=on))
    if args.output:
        write_json_atomic(args.output, stats)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"{args.hypnogram}: {hyp!r}")
    width = max(len(STAT_LABELS[k][0]) for k in STAT_KEYS)
    for k in STAT_KEYS:
        label, unit = STAT_LABELS[k]
        v = stats[k]
        text = "n/a" if v is None else (f"{v:.0f}" if unit == "" else f"{v:.1f} {unit}")
        print(f"  {label:<{width}}  {text}")
    return 0


def confusion_matrix_lines(cm, names) -> list[str]:
    """Text of a confusion matrix of counts: a title, then one row per reference stage
    and one column per predicted stage, labelled with the stage names."""
    width = max(7, max(len(str(v)) for row in cm for v in row) + 1,
                max(len(str(s)) for s in names) + 1)
    return (["confusion matrix (rows = reference, columns = predicted)",
             " " * 6 + "".join(f"{s:>{width}}" for s in names)]
            + [f"{s:<6}" + "".join(f"{v:>{width}}" for v in row)
               for s, row in zip(names, cm, strict=True)])


def _compare(args: argparse.Namespace) -> int:
    from hypnoscope.evaluation.metrics import compare_hypnograms
    from hypnoscope.evaluation.sleepstats import STAT_KEYS, STAT_LABELS, json_safe

    if args.report:
        from hypnoscope.utils.files import check_output_file
        from hypnoscope.viz.report import report_paths

        for path in report_paths(args.report):
            check_output_file(path, "--report")
    pred, ref = [_load(p, label_map=args.label_map, stage_codes=args.stage_codes)
                 for p in (args.pred, args.ref)]
    start = ref.start_time or pred.start_time
    off = parse_time(args.lights_off, start, "--lights-off")
    on = parse_time(args.lights_on, start, "--lights-on", after=off)
    _warnings([(args.pred, pred), (args.ref, ref)], off, on, args.strict,
              f"{args.pred} vs {args.ref}")
    res = compare_hypnograms(pred, ref, lights_off=off, lights_on=on)
    if args.report:
        from hypnoscope.viz.report import write_report

        html_path, _ = write_report(args.report, pred, {"prediction": args.pred,
                                                        "reference": args.ref},
                                    reference=ref, lights_off=off, lights_on=on,
                                    comparison=res)
        if not args.json:
            print(f"report: {html_path}")
    if args.json:
        print(json.dumps(json_safe(res), indent=2))
        return 0
    ep = res["epochs"]
    print(f"{ep['n_epochs']} epochs compared ({ep['n_excluded']} unscored left out)")
    print(f"accuracy {100 * ep['accuracy']:.1f} %   macro-F1 {ep['macro_f1']:.3f}   "
          f"kappa {ep['kappa']:.3f}")
    print(ep["classification_report"])
    print("\n".join(confusion_matrix_lines(ep["confusion_matrix"], ep["labels"])))
    print()
    width = max(len(STAT_LABELS[k][0]) for k in STAT_KEYS)
    print(f"  {'statistic':<{width}}  {'pred':>8} {'ref':>8} {'diff':>8}")
    for k in STAT_KEYS:
        v = res["sleep_statistics"][k]
        cells = ["n/a" if x != x else f"{x:.1f}" for x in (v["pred"], v["ref"], v["diff"])]
        print(f"  {STAT_LABELS[k][0]:<{width}}  {cells[0]:>8} {cells[1]:>8} {cells[2]:>8}")
    return 0
