"""MSMAE-CNN benchmark on nights simulated from the real Sleep-EDF hypnograms.

No raw PSG reaches these machines: :func:`hypnoscope.simulate.simulate_dataset` turns the
real Sleep-EDF cassette hypnograms (``../shared/data/sleepedf_hypnograms``; a subject's two
real nights become one simulated subject's two nights) into Sleep-EDF file pairs with
EEG Fpz-Cz, EEG Pz-Oz, EOG horizontal and the 1 Hz EMG envelope, loaded at 100 Hz with the
paper's Kaiser-window low-pass (10 Hz, 60 dB; 30 Hz for one ablation arm) and 30 min of
wake around sleep. The protocol (``protocol.py``): Table 1 for SVM, RF, CNN, MSMAE-CNN and
MSMAE-CNN + RF under a fixed subject-wise train/validation/test split (k-fold would not
fit the 2-hour CPU budget) and under the paper's LEAKY epoch-level stratified 80/20 split,
side by side; then the ablations on the subject-wise split, 3 model seeds each. Runs are
stored one by one under the work folder, so an interrupted run resumes.

Run (from the repository root; about 1 to 2 hours on 2 cores with the defaults)::

    nice -n 10 python -m benchmarks.msmae_cnn.run
    python -m benchmarks.msmae_cnn.run --render-only   # the report again from <name>.json
    python -m benchmarks.msmae_cnn.run --smoke --subjects 3 --name msmae_cnn_smoke
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from benchmarks.common import HYPNOGRAM_DIR, ROOT, command_line, now_utc
from benchmarks.msmae_cnn import protocol as P


def simulate(data_dir: Path, n_subjects: int, seed: int, difficulty: float) -> dict:
    """Simulate (or reuse) ``n_subjects`` subjects from the real hypnograms."""
    from hypnoscope.simulate import reuse_or_simulate_dataset

    return reuse_or_simulate_dataset(data_dir, n_subjects, seed=seed, hypnograms=HYPNOGRAM_DIR,
                                     difficulty=difficulty)


def render_only(name: str, out: Path) -> str:
    """Write ``<name>.md`` again from ``<name>.json`` (its stored summary and meta: no
    simulation, no training), e.g. after the report's paper columns changed."""
    from hypnoscope.utils.files import write_text_atomic

    path = out / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"--render-only: {path} does not exist (run the benchmark first)")
    res = json.loads(path.read_text())
    md = P.render({"table1": res["table1"], "ablation": res["ablation"]}, res["meta"])
    write_text_atomic(out / f"{name}.md", md)
    return md


def main(argv: list[str] | None = None) -> int:
    from hypnoscope.signal.nights import load_psg_dir
    from hypnoscope.simulate import DEFAULT_DIFFICULTY

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=10,
                    help="simulated subjects (two nights each where the real one has two)")
    ap.add_argument("--difficulty", type=float, default=DEFAULT_DIFFICULTY,
                    help="simulator scorer-disagreement strength")
    ap.add_argument("--name", default="msmae_cnn")
    ap.add_argument("--runs-dir", default=None,
                    help="where each finished run is stored (default benchmarks/results/"
                         "<name>_runs/<data fingerprint>: committed with the results, so a "
                         "later session resumes instead of recomputing)")
    ap.add_argument("--render-only", action="store_true",
                    help="write <name>.md again from <name>.json (no simulation, no training)")
    P.add_arguments(ap)
    args = ap.parse_args(argv)
    if args.render_only:
        print(render_only(args.name, Path(args.out) if args.out else ROOT / "benchmarks"
                          / "results"))
        return 0
    s = P.settings_from(args)
    work = Path(args.work_dir or ROOT / ".cache" / args.name)
    t_start = time.perf_counter()
    sim = simulate(work / "data", args.subjects, args.seed, args.difficulty)
    fp = hashlib.sha256(json.dumps({k: v for k, v in sim.items()
                                    if k != "simulation_seconds"}, sort_keys=True)
                        .encode()).hexdigest()[:12]

    def nights_for(hz: float):
        return P.middle(load_psg_dir(work / "data", preprocessing=P.lowpass_config(hz),
                                     cache=str(work / "cache" / fp), **P.CHANNELS),
                        args.max_epochs_per_night)

    runs_dir = Path(args.runs_dir) if args.runs_dir else (
        ROOT / "benchmarks" / "results" / f"{args.name}_runs" / fp)
    results = P.execute(nights_for, s, runs_dir,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    nights = nights_for(10.0)
    label = "SIMULATED nights"
    meta = {
        "title": "MSMAE-CNN (paper Table 1 and ablations) on SIMULATED nights",
        "date": now_utc(),
        "command": command_line("benchmarks.msmae_cnn.run", argv),
        "data_label": label,
        "data_text": (
            f"Data: **simulated** — {len({n.subject_id for n in nights})} subjects / "
            f"{len(nights)} nights / {sum(int(n.scored.sum()) for n in nights)} scored "
            "epochs from `hypnoscope.simulate.simulate_dataset` (difficulty "
            f"{args.difficulty:g}, seed {args.seed}), driven by the real Sleep-EDF "
            "cassette hypnograms (Kemp et al. 2000, Goldberger et al. 2000, ODC-By); EEG "
            "Fpz-Cz, EEG Pz-Oz, EOG horizontal and the 1 Hz EMG envelope at 100 Hz, "
            "Kaiser-window FIR low-pass (60 dB) at 10 Hz. No raw PSG reaches this machine: "
            "these numbers test the method on the simulator's physiology, they are not an "
            "estimate of accuracy on real recordings."
            + (" SMOKE run: tiniest settings, measures nothing." if args.smoke else "")),
        "protocol_text": (
            "Subject-wise: one fixed train/validation/test split of subjects (validation "
            f"{s.val:g}, test {s.test:g} of the subjects, seed {s.seed}); early stopping, "
            "checkpoints and the soft-voting weight on the validation subjects. LEAKY: the "
            "paper's stratified 80/20 split of all epochs (validation: 10 % of the training "
            "epochs), the test epochs removed from the training nights. MSMAE-CNN preset "
            f"`{s.preset}`, {s.pretrain_epochs} pre-training + at most {s.epochs} "
            f"fine-tuning epochs (patience {s.patience}); CNN {s.cnn_epochs} epochs; RF "
            f"{s.rf_trees} trees and SVM on the paper's EEG features."),
        "wall_s": time.perf_counter() - t_start,
        "data": {"generator": "hypnoscope.simulate.simulate_dataset", "fingerprint": fp,
                 "n_subjects": len({n.subject_id for n in nights}),
                 "n_nights": len(nights), "difficulty": args.difficulty,
                 "simulation_seconds": sim.get("simulation_seconds")},
    }
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results"
    print(P.finish(results, s, meta, out, args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
