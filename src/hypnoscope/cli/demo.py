"""``hypnoscope demo``: simulate a night from a real hypnogram, stage it, report.

Offline: the hypnogram ``SC4001EC-Hypnogram.edf`` (PhysioNet Sleep-EDF Expanded,
ODC-By 1.0; see ``hypnoscope/data/ATTRIBUTION.md``) ships with the package. The demo
crops it to the sleep period with 30 min of wake on each side, simulates the PSG with
:func:`hypnoscope.simulate.simulate_night`, writes it as a Sleep-EDF pair, stages the EDF
with the default model exactly as ``hypnoscope stage`` does, and prints the sleep
statistics and the agreement with the simulated truth.
"""

from __future__ import annotations

import argparse
import math
import time
from importlib import resources
from pathlib import Path

DEMO_HYPNOGRAM = "SC4001EC-Hypnogram.edf"
DEMO_RECORD = "SC4001E0"


def demo_hypnogram_path() -> Path:
    """Path of the real Sleep-EDF hypnogram shipped for the demo."""
    return Path(str(resources.files("hypnoscope") / "data" / DEMO_HYPNOGRAM))


def _num(value, digits: int) -> str:
    """A number with ``digits`` decimals; ``n/a`` when undefined (e.g. no REM)."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return f"{float(value):.{digits}f}"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="simulate, stage and report one night (offline, < 1 min)",
        description="Simulate one night from a real Sleep-EDF hypnogram shipped with the "
                    "package, stage it with the default model, print sleep statistics and "
                    "agreement with the simulated truth, and write the report.")
    p.add_argument("--out", "-o", default="hypnoscope-demo", metavar="DIR",
                   help="output directory (checked for writing first; default: "
                        "%(default)s)")
    p.add_argument("--model", "-m", default="default", metavar="NAME|PATH",
                   help="model to stage with (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default: 0)")
    p.add_argument("--hours", type=float, default=None,
                   help="simulate only the first HOURS of the cropped night (quick runs)")
    p.set_defaults(func=run)


def run_demo(out: str | Path = "hypnoscope-demo", model: str = "default", seed: int = 0,
             hours: float | None = None, verbose: bool = True) -> dict:
    """Run the demo; returns the summary row of :func:`hypnoscope.staging.outputs.stage_file`
    with the simulation details added."""
    from hypnoscope.evaluation.metrics import compare_hypnograms
    from hypnoscope.io.hypnograms import read_hypnogram
    from hypnoscope.models.storage import read_model_card, resolve_model_path
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair
    from hypnoscope.staging.outputs import stage_file

    def say(msg: str = "") -> None:
        if verbose:
            print(msg, flush=True)

    out = Path(out)
    t0 = time.perf_counter()
    real = read_hypnogram(demo_hypnogram_path())
    truth = real.crop_to_sleep(wake_pad_min=30)
    if hours is not None:
        truth = truth[: max(1, int(hours * 3600 / truth.epoch_sec))]
    start = truth.start_time
    say(f"Simulating {truth.duration_sec / 3600:.1f} h of PSG from the real hypnogram "
        f"{DEMO_HYPNOGRAM} (Sleep-EDF, ODC-By) ...")
    raw = simulate_night(truth, seed=seed, mode="sleep-edf-sc", start_time=start)
    data_dir = out / "data"
    psg_path, hyp_path = write_sleepedf_pair(raw, truth, data_dir, DEMO_RECORD)
    t_sim = time.perf_counter() - t0
    say(f"  wrote {psg_path} and {hyp_path} ({t_sim:.1f} s)")
    say(f"Staging {Path(psg_path).name} with model {model!r} ...")
    card = read_model_card(resolve_model_path(model))
    if card.get("summary"):
        say(f"  model card: {card['summary']}")
    row = stage_file(psg_path, out, model=model, reference=hyp_path)
    ref = read_hypnogram(hyp_path)
    pred = read_hypnogram(row["outputs"]["tsv"])
    cmp = compare_hypnograms(pred, ref)
    stats = cmp["sleep_statistics"]
    say(f"  staged {row['n_epochs']} epochs in {row['seconds']:.1f} s\n")
    say("Sleep statistics            staged    truth")
    for key, label in (("time_in_bed_min", "Time in bed (min)"),
                       ("total_sleep_min", "Total sleep time (min)"),
                       ("sleep_efficiency_pct", "Sleep efficiency (%)"),
                       ("sleep_onset_latency_min", "Sleep onset latency (min)"),
                       ("rem_latency_min", "REM latency (min)"),
                       ("waso_min", "WASO (min)"),
                       ("n1_pct", "N1 (% TST)"), ("n2_pct", "N2 (% TST)"),
                       ("n3_pct", "N3 (% TST)"), ("rem_pct", "REM (% TST)")):
        if key in stats:
            say(f"  {label:<26}{_num(stats[key]['pred'], 1):>7}  {_num(stats[key]['ref'], 1):>7}")
    ep = cmp["epochs"]
    say(f"\nAgreement with the simulated truth: accuracy {_num(ep['accuracy'], 3)}, "
        f"Cohen's kappa {_num(ep['kappa'], 3)}, macro-F1 {_num(ep['macro_f1'], 3)}")
    say("  per-stage F1: " + ", ".join(f"{k} {_num(v, 2)}"
                                       for k, v in ep["per_class_f1"].items()))
    say(f"\nReport: {row['outputs']['html']}\nHypnogram: {row['outputs']['tsv']}, "
        f"{row['outputs']['edf']}" + (f", {row['outputs']['png']}" if "png" in
                                       row["outputs"] else ""))
    say(f"Done in {time.perf_counter() - t0:.1f} s. (Simulated signals: agreement here shows "
        "the pipeline works, not clinical accuracy; see the model card.)")
    row.update(simulated_hours=truth.duration_sec / 3600, simulate_sec=t_sim,
               psg=str(psg_path), truth=str(hyp_path), agreement=ep)
    return row


def run(args: argparse.Namespace) -> int:
    from hypnoscope.utils.files import check_output_dir

    check_output_dir(args.out, "--out", create=False)  # before simulating and staging
    run_demo(args.out, model=args.model, seed=args.seed, hours=args.hours)
    return 0
