"""``hypnoscope simulate``: write simulated whole-night PSG in a file layout.

Two forms::

    hypnoscope simulate --hypnogram H.edf --out DIR [--seed 0] [--mode sleep-edf-sc]
    hypnoscope simulate --n-subjects 20 --seed 0 --out DIR [--hypnogram-dir DIR]

``--layout sleep-edf|shhs`` picks the file layout (naming, annotation format;
:data:`hypnoscope.simulate.LAYOUTS`), ``--montage sleep-edf|aasm|shhs`` the channel set
and its physiology (:data:`hypnoscope.simulate.MONTAGES`; default: the layout's).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from hypnoscope.cli import CLIError
from hypnoscope.cli.stats import add_label_map_arg


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate realistic whole-night PSG (Sleep-EDF or SHHS layout; "
                         "Sleep-EDF, AASM or SHHS montage)",
        description="Simulate EEG, EOG and chin EMG that follow a hypnogram (given, or "
                    "sampled from a sleep-architecture model fitted to Sleep-EDF) in a "
                    "montage (--montage: Sleep-EDF Fpz-Cz/Pz-Oz, AASM F4-M1/C4-M1/O2-M1/"
                    "E1-M2/E2-M2/chin, or SHHS C3-A2/C4-A1/EOG(L)/EOG(R)/EMG) and write "
                    "<ID>-PSG.edf + <ID>-Hypnogram.edf pairs, or with --layout shhs "
                    "shhs1-NNNNNN.edf + shhs1-NNNNNN-nsrr.xml pairs with the SHHS channel "
                    "labels and rates.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--hypnogram", type=Path,
                     help="one hypnogram file (EDF+, TSV/CSV or text) to simulate; a bare "
                          "name that is no file here but ships with hypnoscope "
                          "(SC4001EC-Hypnogram.edf, the demo's real Sleep-EDF scoring) "
                          "is the shipped file, and the command says so")
    src.add_argument("--n-subjects", type=int,
                     help="simulate this many subjects (each with their own traits)")
    src.add_argument("--protocol", choices=["mslt", "mwt"],
                     help="simulate a day of naps instead of a night: mslt = 5 naps 2 h "
                          "apart (a nap ends 15 min after sleep onset or after 20 min "
                          "without sleep), mwt = 4 trials of up to 40 min; each nap a file "
                          "pair with 'Lights off'/'Lights on' annotations in the PSG, and "
                          "truth.json/truth.csv (lights times, sleep latency, REM latency, "
                          "SOREMP) beside them (hypnoscope.simulate.naps)")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder (created; checked for writing before simulating)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--mode", choices=["sleep-edf-sc", "telemetry"], default=None,
                   help="with --layout sleep-edf: sleep-edf-sc = cassette files with the "
                        "EMG as a 1 Hz envelope; telemetry = 100 Hz EMG waveform (default: "
                        "sleep-edf-sc)")
    p.add_argument("--layout", choices=["sleep-edf", "shhs"], default="sleep-edf",
                   help="file layout: sleep-edf = <ID>-PSG.edf + <ID>-Hypnogram.edf with "
                        "EEG Fpz-Cz/Pz-Oz, EOG horizontal, EMG submental; shhs = "
                        "shhs1-NNNNNN.edf + shhs1-NNNNNN-nsrr.xml (NSRR XML) with the SHHS "
                        "channels EEG(sec), EEG (125 Hz), EOG(L), EOG(R) (50 Hz), EMG "
                        "(125 Hz) (default: %(default)s)")
    p.add_argument("--montage", choices=["sleep-edf", "aasm", "shhs"], default=None,
                   help="channel set and physiology: sleep-edf = EEG Fpz-Cz/Pz-Oz, EOG "
                        "horizontal, EMG submental (100 Hz); aasm = F4-M1, C4-M1, O2-M1, "
                        "E1-M2, E2-M2, Chin1-Chin2 (256 Hz, files named like Sleep-EDF "
                        "telemetry ST7ssNJ0); shhs = EEG(sec) (C3-A2), EEG (C4-A1), EOG(L), "
                        "EOG(R), EMG (125 Hz) (default: the layout's: sleep-edf, or shhs "
                        "with --layout shhs)")
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
    p.add_argument("--profile", choices=["healthy", "narcolepsy-like"], default=None,
                   help="with --protocol: the day's latency and SOREMP distributions "
                        "(healthy: MSLT latency around 11 min, SOREMP in 5%% of naps; "
                        "narcolepsy-like: around 3 min, 65%%; default: healthy)")
    p.add_argument("--naps", type=int, default=None,
                   help="with --protocol: naps in the day (default: 5 for mslt, 4 for mwt)")
    add_label_map_arg(p)
    p.add_argument("--record-id", default=None,
                   help="with --hypnogram: output file stem (default: from the input name)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hypnoscope.io.hypnograms import read_hypnogram
    from hypnoscope.simulate import simulate_dataset, simulate_night
    from hypnoscope.simulate.files import get_layout, layout_settings
    from hypnoscope.utils.files import check_output_dir

    base = get_layout(args.layout)
    if base["mode"] is not None and args.mode is not None:
        raise CLIError(f"--mode chooses the Sleep-EDF file form; --layout {args.layout} "
                       f"simulates in {base['mode']} mode at {base['sfreq']:g} Hz")
    try:
        layout = layout_settings(args.layout, args.montage, args.mode)
    except ValueError as exc:
        raise CLIError(f"--montage {args.montage} with --mode {args.mode}: {exc}") from None
    args.mode = layout["mode"]

    if args.difficulty is not None and args.difficulty < 0:
        raise CLIError(f"--difficulty must be >= 0, got {args.difficulty}")
    difficulty = {} if args.difficulty is None else {"difficulty": args.difficulty}
    if args.hypnogram is not None and args.hypnogram_dir is not None:
        raise CLIError("--hypnogram-dir goes with --n-subjects, not with --hypnogram")
    if args.n_subjects is not None and args.n_subjects < 1:
        raise CLIError(f"--n-subjects must be >= 1, got {args.n_subjects}")
    if args.protocol is None and (args.profile is not None or args.naps is not None):
        raise CLIError("--profile and --naps go with --protocol mslt|mwt")
    if args.protocol is not None and args.hypnogram_dir is not None:
        raise CLIError("--hypnogram-dir goes with --n-subjects, not with --protocol")
    check_output_dir(args.out, "--out", create=False)  # before any simulating
    if args.protocol is not None:
        return _simulate_naps(args, layout, difficulty)
    if args.hypnogram is not None:
        args.hypnogram = _resolve_hypnogram(args.hypnogram)
        hyp = read_hypnogram(args.hypnogram, label_map=args.label_map,
                             stage_codes=args.stage_codes)
        if args.crop_wake_min is not None:
            hyp = hyp.crop_to_sleep(args.crop_wake_min)
        record_id = args.record_id
        if record_id is None and (args.layout != "sleep-edf"
                                  or layout["montage"] != "sleep-edf"):
            record_id = layout["record_id"](0, 0)
        elif record_id is None:
            stem = re.sub(r"[-_.]?hypnogram$", "", args.hypnogram.stem, flags=re.I)
            record_id = re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "SIM0001"
        raw = simulate_night(hyp, seed=args.seed, mode=args.mode, sfreq=layout["sfreq"],
                             montage=layout["montage"], **difficulty)
        psg, hyp_path = layout["write"](raw, hyp, args.out, record_id)
        print(f"wrote {psg} and {hyp_path} ({hyp.n_epochs} epochs, "
              f"{hyp.duration_sec / 3600:.2f} h, montage {layout['montage']}, mode "
              f"{args.mode}, seed {args.seed})")
        return 0
    crop = 60.0 if args.crop_wake_min is None else args.crop_wake_min
    records = simulate_dataset(args.out, args.n_subjects, seed=args.seed,
                               hypnograms=args.hypnogram_dir, mode=args.mode,
                               nights_per_subject=args.nights, duration_h=args.duration_h,
                               crop_wake_min=crop, layout=args.layout,
                               montage=layout["montage"], **difficulty)
    print(f"wrote {len(records)} nights of {args.n_subjects} subjects to {args.out} "
          f"(layout {args.layout}, montage {layout['montage']}, mode {args.mode}, seed "
          f"{args.seed}; details in "
          "simulation.json)")
    return 0


def _simulate_naps(args: argparse.Namespace, layout: dict, difficulty: dict) -> int:
    """``--protocol``: one day of naps (:func:`hypnoscope.simulate.naps.simulate_nap_day`)."""
    from hypnoscope.simulate.naps import simulate_nap_day

    if args.naps is not None and args.naps < 1:
        raise CLIError(f"--naps must be >= 1, got {args.naps}")
    profile = args.profile or "healthy"
    truth = simulate_nap_day(args.out, protocol=args.protocol, profile=profile,
                             seed=args.seed, n_naps=args.naps, layout=args.layout,
                             montage=layout["montage"], mode=args.mode, **difficulty)
    day = truth["day"]
    print(f"wrote {day['n_naps']} {args.protocol.upper()} naps ({profile}, seed "
          f"{args.seed}) to {args.out}: mean sleep latency "
          f"{day['mean_sleep_latency_min']:.1f} min"
          + (f", {day['n_soremps']} SOREMP" if "n_soremps" in day else "")
          + "; truth in truth.json and truth.csv")
    return 0


def _resolve_hypnogram(path: Path) -> Path:
    """``path``, or the shipped data file of that bare name when ``path`` is no file here
    (stated on the log)."""
    from hypnoscope.notices import logger
    from hypnoscope.utils.files import shipped_data_file

    shipped = None if path.exists() else shipped_data_file(path)
    if shipped is None:
        return path
    logger.info("%s: no such file here; using the hypnogram of that name shipped with "
                "hypnoscope (hypnoscope/data/%s)", path, shipped.name)
    return shipped
