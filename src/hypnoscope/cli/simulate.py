"""``hypnoscope simulate``: write simulated whole-night PSG in the Sleep-EDF layout.

Two forms::

    hypnoscope simulate --hypnogram H.edf --out DIR [--seed 0] [--mode sleep-edf-sc]
    hypnoscope simulate --n-subjects 20 --seed 0 --out DIR [--hypnogram-dir DIR]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from . import CLIError
from .stats import add_label_map_arg


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate realistic whole-night PSG (Sleep-EDF layout)",
        description="Simulate EEG Fpz-Cz/Pz-Oz, EOG and submental EMG that follow a "
                    "hypnogram (given, or sampled from a sleep-architecture model fitted "
                    "to Sleep-EDF) and write <ID>-PSG.edf + <ID>-Hypnogram.edf pairs.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--hypnogram", type=Path,
                     help="one hypnogram file (EDF+, TSV/CSV or text) to simulate")
    src.add_argument("--n-subjects", type=int,
                     help="simulate this many subjects (each with their own traits)")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder (created; checked for writing before simulating)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--mode", choices=["sleep-edf-sc", "telemetry"], default="sleep-edf-sc",
                   help="sleep-edf-sc: cassette layout with the EMG as a 1 Hz envelope; "
                        "telemetry: 100 Hz EMG waveform (default: %(default)s)")
    p.add_argument("--hypnogram-dir", type=Path,
                   help="with --n-subjects: drive the nights with the hypnograms in this "
                        "folder (Sleep-EDF names are grouped by subject)")
    p.add_argument("--nights", type=int, choices=[1, 2], default=1,
                   help="nights per subject for sampled hypnograms (default: %(default)s)")
    p.add_argument("--duration-h", type=float, default=8.5,
                   help="hours of a sampled night (plus 30 min of final wake; default: "
                        "%(default)s)")
    p.add_argument("--crop-wake-min", type=float, default=None,
                   help="crop given hypnograms to this many minutes of wake around the "
                        "sleep period (default: whole file for --hypnogram, 60 min for "
                        "--hypnogram-dir)")
    p.add_argument("--difficulty", type=float, default=None,
                   help="scorer/physiology disagreement: 0 = every epoch shows its scored "
                        "stage; 1 (default) = about half the published inter-scorer "
                        "disagreement, N1 most; 2 = harder")
    add_label_map_arg(p)
    p.add_argument("--record-id", default=None,
                   help="with --hypnogram: output file stem (default: from the input name)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hypnogram import read_hypnogram
    from ..simulate import simulate_dataset, simulate_night, write_sleepedf_pair
    from ..utils import check_output_dir

    if args.difficulty is not None and args.difficulty < 0:
        raise CLIError(f"--difficulty must be >= 0, got {args.difficulty}")
    difficulty = {} if args.difficulty is None else {"difficulty": args.difficulty}
    if args.hypnogram is not None and args.hypnogram_dir is not None:
        raise CLIError("--hypnogram-dir goes with --n-subjects, not with --hypnogram")
    if args.n_subjects is not None and args.n_subjects < 1:
        raise CLIError(f"--n-subjects must be >= 1, got {args.n_subjects}")
    check_output_dir(args.out, "--out", create=False)  # before any simulating
    if args.hypnogram is not None:
        hyp = read_hypnogram(args.hypnogram, label_map=args.label_map)
        if args.crop_wake_min is not None:
            hyp = hyp.crop_to_sleep(args.crop_wake_min)
        record_id = args.record_id
        if record_id is None:
            stem = re.sub(r"[-_.]?hypnogram$", "", args.hypnogram.stem, flags=re.I)
            record_id = re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "SIM0001"
        raw = simulate_night(hyp, seed=args.seed, mode=args.mode, **difficulty)
        psg, hyp_path = write_sleepedf_pair(raw, hyp, args.out, record_id)
        print(f"wrote {psg} and {hyp_path} ({hyp.n_epochs} epochs, "
              f"{hyp.duration_sec / 3600:.2f} h, mode {args.mode}, seed {args.seed})")
        return 0
    crop = 60.0 if args.crop_wake_min is None else args.crop_wake_min
    records = simulate_dataset(args.out, args.n_subjects, seed=args.seed,
                               hypnograms=args.hypnogram_dir, mode=args.mode,
                               nights_per_subject=args.nights, duration_h=args.duration_h,
                               crop_wake_min=crop, **difficulty)
    print(f"wrote {len(records)} nights of {args.n_subjects} subjects to {args.out} "
          f"(mode {args.mode}, seed {args.seed}; details in simulation.json)")
    return 0
