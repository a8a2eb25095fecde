"""Stagers on SIMULATED short recordings of several montages: a domain-shift check.

The stretch benchmark (``benchmarks.real_accuracy.stretches``) measures how the stagers do
on real stretches of Sleep-EDF nights. This one stages short SIMULATED recordings
(``hypnoscope simulate --duration-h 2``: 2 h of a sampled night plus 30 min of final wake,
so 2.5 h, staged by a length-gated model's short member) of the simulator's montages: the
SHHS layout (C3-A2/C4-A1, EOG(L)/EOG(R), 125/50 Hz; its first set is the one of
``tests/test_shhs_layout.py``), the AASM montage (F4-M1/C4-M1/O2-M1, E1/E2) and the
Sleep-EDF one (Fpz-Cz/Pz-Oz). Their band-power distributions are the simulator's, not real
people's, so the agreement with the simulated scorer says how two versions of a model
compare on recordings unlike their training data -- it does **not** estimate accuracy on
real recordings.

Every model stages every recording end to end (``hypnoscope.staging.pipeline.stage_recording``,
the channels resolved as ``hypnoscope stage`` resolves them for that model); the agreement is
over the scored epochs (``hypnoscope.evaluation.metrics.compare_hypnograms``).

Usage (from the repository root)::

    git show REV:src/hypnoscope/data/models/eeg1-eog.joblib > /tmp/old/eeg1-eog.joblib
    git show REV:src/hypnoscope/data/models/eeg1-eog.json > /tmp/old/eeg1-eog.json
    python -m benchmarks.real_accuracy.simulated_short \\
        --models eeg1-eog=eeg1-eog eeg1-eog@0.1=/tmp/old/eeg1-eog.joblib

Writes ``benchmarks/results/simulated_short.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import result_header, write_results

#: The simulated sets: name -> arguments of ``hypnoscope simulate`` (2.5-h recordings).
SETS: dict[str, list[str]] = {
    "shhs (the test's)": ["--layout", "shhs", "--n-subjects", "2", "--seed", "0"],
    "shhs": ["--layout", "shhs", "--n-subjects", "6", "--seed", "1"],
    "aasm": ["--montage", "aasm", "--n-subjects", "4", "--seed", "2"],
    "sleep-edf": ["--n-subjects", "4", "--seed", "3"],
}
DURATION_H = 2.0


def agreement(psg: Path, model: str) -> float:
    """Accuracy of ``model`` on the simulated recording against its simulated scorer."""
    from hypnoscope.evaluation.metrics import compare_hypnograms
    from hypnoscope.io.hypnograms import read_hypnogram
    from hypnoscope.io.recordings import find_hypnogram
    from hypnoscope.staging.pipeline import stage_recording

    ref = read_hypnogram(find_hypnogram(psg))
    res = stage_recording(str(psg), model=model)
    return float(compare_hypnograms(res.hypnogram, ref)["epochs"]["accuracy"])


def markdown(res: dict[str, Any]) -> str:
    labels = list(res["models"])
    L = ["# Stagers on SIMULATED short recordings of several montages (a domain-shift check)",
         "", f"Command: `{res['command']}`  ", f"Date: {res['date']}  ",
         f"Machine: {res['machine']}", "", res["data"] + ".", "",
         "## Mean agreement per set", "",
         "| simulated set | recordings | " + " | ".join(labels) + " |",
         "|---|---:|" + "---:|" * len(labels)]
    for name, rows in res["sets"].items():
        L.append(f"| {name} | {len(rows)} | " + " | ".join(
            f"{np.mean([r[k] for r in rows]):.3f}" for k in labels) + " |")
    L.append(f"| **all** | {sum(map(len, res['sets'].values()))} | " + " | ".join(
        f"**{res['mean'][k]:.3f}**" for k in labels) + " |")
    L += ["", "## Every recording", "",
          "| simulated set | recording | " + " | ".join(labels) + " |",
          "|---|---|" + "---:|" * len(labels)]
    for name, rows in res["sets"].items():
        for r in rows:
            L.append(f"| {name} | {r['recording']} | "
                     + " | ".join(f"{r[k]:.3f}" for k in labels) + " |")
    L += ["", "Models: " + ", ".join(f"{k} = `{v}`" for k, v in res["models"].items()), ""]
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    from hypnoscope.cli import main as cli
    from hypnoscope.io.recordings import list_recordings
    from hypnoscope.utils.runtime import progress

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", metavar="LABEL=MODEL", required=True,
                    help="models to compare: a shipped name or a model file")
    ap.add_argument("--name", default="simulated_short")
    args = ap.parse_args(argv)
    models = dict(m.split("=", 1) for m in args.models)
    sets: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, sim) in enumerate(SETS.items()):
            folder = Path(tmp) / str(i)
            if cli(["simulate", *sim, "--duration-h", f"{DURATION_H:g}", "--out",
                    str(folder)]) != 0:
                raise SystemExit(f"simulating set {name!r} failed")
            sets[name] = [{"recording": psg.name,
                           **{k: agreement(psg, m) for k, m in models.items()}}
                          for psg in progress(list_recordings(folder), desc=name,
                                              unit="recording")]
    every = [r for rows in sets.values() for r in rows]
    res = {**result_header(args.name, "benchmarks.real_accuracy.simulated_short", argv),
           "data": (f"SIMULATED recordings ({DURATION_H:g} h of a sampled night + 30 min of "
                    "final wake, hypnoscope simulate, seeds per set as listed), staged end to "
                    "end: a domain-shift check, not an accuracy estimate"),
           "config": {"sets": SETS, "duration_h": DURATION_H},
           "models": models, "sets": sets,
           "mean": {k: float(np.mean([r[k] for r in every])) for k in models}}
    md = markdown(res)
    write_results(args.name, res, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
