"""Stagers side by side on simulated nights of every montage: ``hypnoscope benchmark``.

Usage::

    nice -n 10 python -m benchmarks.peers.run [--nights 4] [--duration-h 6] [--seed 7]
                                             [--models default eeg2 ...] [--jobs 1]
                                             [--workdir DIR]

For every montage of the simulator (:data:`hypnoscope.simulate.montages.MONTAGES`:
Sleep-EDF Fpz-Cz/Pz-Oz in the Sleep-EDF layout, AASM F4/C4/O2-M1 in the Sleep-EDF
telemetry layout, SHHS C3-A2/C4-A1 in the SHHS layout with NSRR XML scorings) it
simulates ``--nights`` nights (one per subject; reused from ``WORKDIR`` when already
there) and runs the stager benchmark
(:func:`hypnoscope.staging.compare_stagers.benchmark_stagers`, resumable) with every
shipped model, and with ``yasa`` and ``consensus`` where they are installed (a model that
is not is listed under ``not_available`` with the reason). Per montage and model it
reports the pooled accuracy, Cohen's κ and macro-F1 against the simulated scorer, the κ
per night (mean ± sd), the bias and 95 % limits of agreement of total sleep time and
REM minutes, the paired per-night κ difference to ``default`` (mean ± sd, wins) and the
staging time per night (read, checks, features and prediction, as each report records
it).

Results: ``benchmarks/results/peers.json`` and ``.md``, and each montage's full benchmark
report (HTML, CSV) in ``WORKDIR/bench/<montage>/``. The nights are **simulated**: the
numbers check the stagers on signals with a known scoring, not clinical accuracy.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, machine_info, result_header

#: The file layout each montage is simulated in.
LAYOUT_OF = {"sleep-edf": "sleep-edf", "aasm": "sleep-edf", "shhs": "shhs"}
#: Peers that are not shipped model files, used when installed.
PEERS = ("yasa", "consensus")
DATA_NOTE = ("Simulated nights (hypnoscope.simulate): the scorer is the simulated "
             "hypnogram; the numbers check the stagers on signals with a known scoring, not "
             "clinical accuracy.")


def available_models(wanted: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """The models to run (shipped ones, then the installed peers) and those not
    available with the reason."""
    from hypnoscope.models.storage import shipped_models
    from hypnoscope.staging.compare_stagers import check_models

    names = wanted or [*shipped_models(), *PEERS]
    keep, missing = [], {}
    for name in names:
        try:
            check_models([name])
        except (ValueError, ImportError) as exc:
            missing[name] = str(exc)
        else:
            keep.append(name)
    return keep, missing


def simulate(montage: str, root: Path, nights: int, duration_h: float, seed: int) -> Path:
    """The montage's simulated nights in ``root`` (reused when already simulated)."""
    from hypnoscope.simulate.files import layout_settings, reuse_or_simulate_dataset

    layout = LAYOUT_OF[montage]
    mode = layout_settings(layout, montage)["mode"]
    folder = root / "data" / f"{montage}-{nights}x{duration_h:g}h-seed{seed}"
    reuse_or_simulate_dataset(folder, n_subjects=nights, seed=seed, duration_h=duration_h,
                              layout=layout, montage=montage, mode=mode)
    return folder


def _f(x: Any, spec: str = ".3f") -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(
        x, spec)


def montage_rows(montage: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """One summary row per model of a montage's benchmark."""
    rows = []
    paired = {(p["a"], p["b"], p["metric"]): p for p in result["paired"]}
    for model, e in result["per_model"].items():
        pooled, mean, stats = e.get("pooled") or {}, e.get("mean") or {}, e.get("statistics")
        vs = paired.get(("default", model, "kappa"))
        rows.append({
            "montage": montage, "model": model, "nights": e["n_compared"],
            "failed": e["n_failed"], "accuracy": pooled.get("accuracy"),
            "kappa": pooled.get("kappa"), "macro_f1": pooled.get("macro_f1"),
            "per_class_f1": pooled.get("per_class_f1"),
            "kappa_night_mean": (mean.get("kappa") or {}).get("mean"),
            "kappa_night_sd": (mean.get("kappa") or {}).get("sd"),
            "tst": {k: (stats or {}).get("total_sleep_min", {}).get(k)
                    for k in ("bias", "lower", "upper")},
            "rem": {k: (stats or {}).get("rem_min", {}).get(k)
                    for k in ("bias", "lower", "upper")},
            "kappa_vs_default": None if vs is None else {
                k: vs[k] for k in ("n", "mean_diff", "sd_diff", "wins_a", "wins_b", "ties")},
            "sec_per_night": e["time"]["mean_sec"], "sec_per_hour": e["time"]["sec_per_hour"],
        })
    return rows


def markdown(payload: dict[str, Any]) -> str:
    h = payload["header"]
    lines = [
        "# Stagers on simulated nights of every montage (`hypnoscope benchmark`)", "",
        f"Command: `{h['command']}`  ", f"Date: {h['date']}  ", f"Machine: {h['machine']}",
        "", f"**{DATA_NOTE}**", "",
        f"Config: {payload['config']['nights']} nights per montage of "
        f"{payload['config']['duration_h']:g} h (+30 min of final wake), seed "
        f"{payload['config']['seed']}, difficulty: the simulator's default. Models: "
        f"{', '.join(payload['models'])}."]
    if payload["not_available"]:
        lines.append("Not available here: " + "; ".join(
            f"`{k}` ({v.splitlines()[0]})" for k, v in payload["not_available"].items()) + ".")
    lines += ["", "Pooled over every compared epoch; κ per night as mean ± sd; TST and REM "
              "bias [95 % limits of agreement] in minutes against the simulated scorer; "
              "Δκ vs default: paired per-night difference default − model (mean ± sd, wins "
              "default/model); time: staging (read, checks, features, prediction) per "
              "night.", "",
              "| montage | model | nights | accuracy | κ | macro-F1 | κ per night | "
              "TST bias [LoA] | REM bias [LoA] | Δκ default − model (wins) | s per night |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in payload["rows"]:
        vs = r["kappa_vs_default"]
        vs_text = "" if vs is None else (f"{_f(vs['mean_diff'], '+.3f')} ± "
                                         f"{_f(vs['sd_diff'])} ({vs['wins_a']}/{vs['wins_b']})")
        fail = f" ({r['failed']} failed)" if r["failed"] else ""
        lines.append(
            f"| {r['montage']} | {r['model']} | {r['nights']}{fail} | {_f(r['accuracy'])} | "
            f"{_f(r['kappa'])} | {_f(r['macro_f1'])} | {_f(r['kappa_night_mean'])} ± "
            f"{_f(r['kappa_night_sd'])} | {_f(r['tst']['bias'], '+.1f')} "
            f"[{_f(r['tst']['lower'], '.1f')}, {_f(r['tst']['upper'], '.1f')}] | "
            f"{_f(r['rem']['bias'], '+.1f')} [{_f(r['rem']['lower'], '.1f')}, "
            f"{_f(r['rem']['upper'], '.1f')}] | {vs_text} | {_f(r['sec_per_night'], '.2f')} |")
    if payload["failures"]:
        lines += ["", "Failures:", ""] + [
            f"- {f['montage']} / {f['model']}: {Path(f['recording']).name}: "
            f"{f['error'].splitlines()[0]}" for f in payload["failures"]]
    load = payload.get("load_average")
    lines += ["", f"Total run time {payload['seconds']:.0f} s (simulation included)"
              + (f"; load average at the end {', '.join(f'{x:.1f}' for x in load)} (the "
                 "machine is shared, so times vary)" if load else "") + ". Full "
              "per-montage reports (HTML with Bland–Altman plots, CSV) are written to "
              "WORKDIR/bench/<montage>/ by the run.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from hypnoscope.simulate.montages import MONTAGES
    from hypnoscope.staging.compare_stagers import benchmark_stagers
    from hypnoscope.utils.files import write_json_atomic, write_text_atomic

    ap = argparse.ArgumentParser(prog="python -m benchmarks.peers.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nights", type=int, default=4, help="nights per montage (default 4)")
    ap.add_argument("--duration-h", type=float, default=6.0,
                    help="hours of each simulated night (default 6)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--models", nargs="+", help="default: every shipped model, then yasa "
                    "and consensus where installed")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--workdir", type=Path,
                    default=Path(tempfile.gettempdir()) / "hypnoscope-peers")
    ap.add_argument("--results", type=Path, default=RESULTS,
                    help="where peers.json/.md go (default benchmarks/results)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    os.environ.setdefault("HYPNOSCOPE_PROGRESS", "0")
    models, missing = available_models(args.models)
    for name, why in missing.items():
        print(f"not available: {name}: {why.splitlines()[0]}", file=sys.stderr)
    rows, failures, reports = [], [], {}
    for montage in MONTAGES:
        data = simulate(montage, args.workdir, args.nights, args.duration_h, args.seed)
        print(f"{montage}: benchmarking {', '.join(models)} on {data}", file=sys.stderr)
        result = benchmark_stagers(data, data, models, args.workdir / "bench" / montage,
                                   jobs=args.jobs, title=f"Stagers on simulated {montage} "
                                   "nights", data_note=DATA_NOTE)
        rows += montage_rows(montage, result)
        failures += [{"montage": montage, **f} for f in result["failures"]]
        reports[montage] = result["outputs"]["html"]
    payload = {"header": result_header("peers", __spec__.name if __spec__ else
                                       "benchmarks.peers.run", argv, "nice -n 10 python"),
               "simulated": True, "data_note": DATA_NOTE,
               "config": {"nights": args.nights, "duration_h": args.duration_h,
                          "seed": args.seed, "jobs": args.jobs,
                          "montages": list(MONTAGES)},
               "machine_info": machine_info(), "models": models, "not_available": missing,
               "rows": rows, "failures": failures, "reports": reports,
               "seconds": time.perf_counter() - t0,
               "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    from hypnoscope.evaluation.sleepstats import json_safe

    args.results.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.results / "peers.json", json_safe(payload))
    text = markdown(payload)
    write_text_atomic(args.results / "peers.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
