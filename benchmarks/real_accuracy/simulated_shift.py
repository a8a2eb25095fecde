"""Shipped stagers on simulated nights: a check under a shift of domain, not an accuracy.

The real-data benchmarks beside this file train and test on Sleep-EDF cassette band
powers. Simulated nights (:func:`hypnoscope.simulate.simulate_night`, Sleep-EDF
cassette montage, driven by real Sleep-EDF hypnograms) are a different domain: their
band-power distributions are the simulator's, not real people's. How much a model's
agreement with the driving hypnogram changes between two versions of a model on such
nights says how sensitive it is to a night whose overall distribution is unlike the
training set's -- it does **not** estimate accuracy on real recordings.

Every model stages the same nights end to end (``hypnoscope.staging.pipeline.stage_recording``:
EDF file, band powers, model); the agreement is over the scored epochs of the cropped
hypnogram (sleep period +- 30 min).

Usage (from the repository root)::

    python -m benchmarks.real_accuracy.simulated_shift \\
        --models default=src/hypnoscope/data/models/default.joblib \\
                 previous=/path/to/previous/default.joblib

(``git show REV:src/hypnoscope/data/models/default.joblib > previous.joblib`` gives an
earlier shipped model.) Writes ``benchmarks/results/simulated_shift.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import HYPNOGRAM_DIR, result_header, write_results
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.simulate import simulate_night, write_sleepedf_pair
from hypnoscope.staging.pipeline import stage_recording
from hypnoscope.utils.runtime import progress


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", metavar="LABEL=PATH",
                    default=["default=default", "vote=vote"],
                    help="models to compare: a shipped name or a model file")
    ap.add_argument("--hypnograms", default=str(HYPNOGRAM_DIR))
    ap.add_argument("--n-nights", type=int, default=8,
                    help="every 6th hypnogram of the folder, this many")
    ap.add_argument("--name", default="simulated_shift")
    args = ap.parse_args(argv)
    models = dict(m.split("=", 1) for m in args.models)
    files = sorted(Path(args.hypnograms).glob("*Hypnogram.edf"))[::6][:args.n_nights]
    if not files:
        print(f"no *Hypnogram.edf in {args.hypnograms}", file=sys.stderr)
        return 1
    agree: dict[str, list[float]] = {k: [] for k in models}
    with tempfile.TemporaryDirectory() as tmp:
        for i, f in enumerate(progress(files, desc="simulated nights", unit="night")):
            truth = read_hypnogram(f).crop_to_sleep(wake_pad_min=30)
            raw = simulate_night(truth, seed=i, mode="sleep-edf-sc",
                                 start_time=truth.start_time)
            psg, _ = write_sleepedf_pair(raw, truth, Path(tmp) / str(i), "SC4001E0")
            t = np.asarray(truth.codes)
            for label, model in models.items():
                c = np.asarray(stage_recording(str(psg), model=model).hypnogram.codes)
                n = min(len(c), len(t))
                ok = t[:n] >= 0
                agree[label].append(float((c[:n][ok] == t[:n][ok]).mean()))
    res = {**result_header("simulated_shift", "benchmarks.real_accuracy.simulated_shift", argv),
           "data": "SIMULATED nights (hypnoscope.simulate, sleep-edf-sc montage, seeds 0..), "
                   "driven by real Sleep-EDF hypnograms: a domain-shift check, not an "
                   "accuracy estimate",
           "config": {"models": models, "n_nights": args.n_nights,
                      "hypnograms": "every 6th *Hypnogram.edf of " + args.hypnograms,
                      "simulation": "simulate_night(mode='sleep-edf-sc', seed=night index), "
                                    "hypnogram cropped to 30 min of wake around sleep"},
           "nights": [f.name for f in files], "models": models,
           "agreement": agree,
           "mean": {k: float(np.mean(v)) for k, v in agree.items()}}
    labels = list(models)
    L = ["# Shipped stagers on SIMULATED nights (a domain-shift check)", "",
         f"Command: `{res['command']}`  ", f"Date: {res['date']}  ",
         f"Machine: {res['machine']}", "", res["data"] + ".", "",
         "| hypnogram driving the night | " + " | ".join(labels) + " |",
         "|---|" + "---|" * len(labels)]
    for j, f in enumerate(files):
        L.append(f"| {f.name} | " + " | ".join(f"{agree[k][j]:.3f}" for k in labels) + " |")
    L.append("| **mean** | " + " | ".join(f"**{res['mean'][k]:.3f}**" for k in labels) + " |")
    L += ["", "Models: " + ", ".join(f"{k} = `{v}`" for k, v in models.items()), ""]
    write_results(args.name, res, "\n".join(L))
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    sys.exit(main())
