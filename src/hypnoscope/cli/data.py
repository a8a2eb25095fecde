"""``hypnoscope fetch`` (Sleep-EDF and NSRR downloaders) and ``hypnoscope info`` (PSG
summary)."""

from __future__ import annotations

import argparse
import json


def _subject_list(text: str) -> list[int]:
    """Parse ``"0-4,7 9"`` into ``[0, 1, 2, 3, 4, 7, 9]``."""
    out: list[int] = []
    for part in text.replace(",", " ").split():
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                out += list(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid subject list {text!r}; expected numbers and ranges like '0-4,7'"
            ) from None
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fetch", help="download Sleep-EDF (PhysioNet) or NSRR cohorts such as SHHS "
                      "(checksummed, resumable)",
        description="Download Sleep-EDF Expanded (sleep-edfx 1.0.0) PSG and hypnogram files "
                    "into a local cache, verifying each file's SHA-256 (or its EDF header "
                    "when no checksum is known). Files already cached and verified are not "
                    "downloaded again, so an interrupted fetch resumes where it stopped. "
                    "With --nsrr DATASET --token TOKEN: EDF + scoring XML of an NSRR cohort "
                    "(shhs, mesa, mros, cfs, chat ...) from sleepdata.org, size and MD5 "
                    "checked, interrupted files resumed (HTTP Range); NSRR data need an "
                    "approved data access request.")
    p.add_argument("--subset", default="sleep-edf-20",
                   choices=["sc", "sleep-cassette", "sleep-edf-78", "sleep-edf-20", "st",
                            "sleep-telemetry"],
                   help="which recordings: sc/sleep-edf-78 = all 153 cassette nights, "
                        "sleep-edf-20 = cassette subjects 0-19 (39 nights), st = telemetry "
                        "(default: %(default)s)")
    p.add_argument("--subjects", type=_subject_list, action="extend", default=None,
                   metavar="LIST", help="subject numbers, e.g. '0-4,7' (default: all)")
    p.add_argument("--recording", type=int, nargs="+", choices=[1, 2], default=[1, 2],
                   help="night number(s) (default: 1 2)")
    p.add_argument("--path", default=None,
                   help="local folder (default: $HYPNOSCOPE_DATA/sleep-edfx or "
                        "~/hypnoscope_data/sleep-edfx)")
    p.add_argument("--base-url", default=None, help="database URL or mirror (PhysioNet "
                   "sleep-edfx 1.0.0 layout; default: PhysioNet)")
    p.add_argument("--catalog", default=None,
                   help="custom catalog CSV (default: the one shipped with hypnoscope)")
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.add_argument("--nsrr", metavar="DATASET", default=None,
                   help="download an NSRR dataset instead (its sleepdata.org slug: shhs, "
                        "mesa, mros, cfs, chat ...); --subjects are then participant "
                        "numbers, e.g. 200001-200010 for SHHS")
    p.add_argument("--token", default=None,
                   help="with --nsrr: your NSRR download token (https://sleepdata.org/token; "
                        "default: $NSRR_TOKEN, which keeps it out of the shell history)")
    p.add_argument("--visit", nargs="+", default=None, metavar="NAME",
                   help="with --nsrr: sub-folder(s) of polysomnography/edfs, e.g. shhs1")
    p.add_argument("--annotations", choices=["nsrr", "profusion"], default="nsrr",
                   help="with --nsrr: XML form fetched beside each EDF (default: "
                        "%(default)s)")
    p.add_argument("--list", action="store_true",
                   help="only list the files that would be fetched (no network)")
    p.set_defaults(func=run_fetch)

    q = subparsers.add_parser(
        "info", help="describe a PSG file: channels, roles, sampling rates, duration",
        description="Print the channels of a PSG recording with the role hypnoscope "
                    "assigns to each (eeg/eog/emg or unused), their sampling rates, and the "
                    "recording's duration and start time.")
    q.add_argument("psg", metavar="PSG", help="EDF/EDF+ recording")
    q.add_argument("--eeg", nargs="+", default=None, help="EEG channel name(s) (override)")
    q.add_argument("--eog", nargs="+", default=None, help="EOG channel name(s) (override)")
    q.add_argument("--emg", nargs="+", default=None, help="EMG channel name(s) (override)")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q.set_defaults(func=run_info)


def run_fetch(args: argparse.Namespace) -> int:
    from hypnoscope.cli import CLIError
    from hypnoscope.io.fetch import (
        SLEEPEDF_URL,
        FetchError,
        default_data_dir,
        fetch_sleepedf,
        select_records,
    )

    if args.nsrr:
        return _run_fetch_nsrr(args)
    if args.token or args.visit:
        raise CLIError("--token and --visit go with --nsrr DATASET")
    if args.list:
        entries = select_records(args.subset, args.subjects, args.recording, args.catalog)
        for e in entries:
            print(f"{e.psg_file}\t{e.hypnogram_file}")
        print(f"{len(entries)} nights of {len({e.subject for e in entries})} subjects "
              f"(subset {args.subset}) -> {args.path or default_data_dir()}")
        return 0
    from pathlib import Path

    from hypnoscope.utils.files import check_output_dir

    check_output_dir(Path(args.path).expanduser() if args.path else default_data_dir(),
                     "--path", create=False)
    try:
        pairs = fetch_sleepedf(subjects=args.subjects, recording=args.recording,
                               subset=args.subset, path=args.path,
                               base_url=args.base_url or SLEEPEDF_URL,
                               force_update=args.force, catalog=args.catalog)
    except FetchError as exc:
        raise CLIError(str(exc)) from None
    for psg, hyp in pairs:
        print(f"{psg}\t{hyp}")
    print(f"{len(pairs)} nights ready")
    return 0


def _run_fetch_nsrr(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from hypnoscope.cli import CLIError
    from hypnoscope.io.fetch import (
        NSRR_URL,
        FetchError,
        NsrrClient,
        default_nsrr_dir,
        fetch_nsrr,
        list_nsrr_recordings,
    )
    from hypnoscope.utils.files import check_output_dir

    if args.catalog:
        raise CLIError("--catalog is the Sleep-EDF catalog; it does not go with --nsrr")
    token = args.token or os.environ.get("NSRR_TOKEN", "")
    root = Path(args.path).expanduser() if args.path else default_nsrr_dir()
    try:
        if args.list:
            client = NsrrClient(token, args.base_url or NSRR_URL)
            client.check_token()
            pairs = list_nsrr_recordings(client, args.nsrr, args.subjects, args.visit,
                                         args.annotations)
            for edf, xml in pairs:
                print(f"{edf.full_path}\t{xml.full_path if xml else '(no XML listed)'}")
            print(f"{len(pairs)} recordings of NSRR {args.nsrr} -> {root / args.nsrr}")
            return 0
        check_output_dir(root, "--path", create=False)
        pairs = fetch_nsrr(args.nsrr, token, subjects=args.subjects, visits=args.visit,
                           path=root, base_url=args.base_url or NSRR_URL,
                           annotations=args.annotations, force_update=args.force)
    except FetchError as exc:
        raise CLIError(str(exc)) from None
    for edf, xml in pairs:
        print(f"{edf}\t{xml if xml else '(no XML listed)'}")
    print(f"{len(pairs)} recordings ready")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from hypnoscope.io.psg import recording_info

    info = recording_info(args.psg, eeg=args.eeg or None, eog=args.eog or None,
                          emg=args.emg or None)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(format_recording_info(info))
    return 0


def format_recording_info(info: dict) -> str:
    """Human-readable text of :func:`hypnoscope.io.psg.recording_info` (``hypnoscope
    info``)."""
    from hypnoscope.io.psg import gaps_text

    if info.get("kind") == "annotations":
        a, b = info["annotation_span_sec"]
        n, k = info["n_annotations"], info["n_stage_annotations"]
        what = "a hypnogram" if k else "no sleep stages"
        return "\n".join([
            f"File:      {info['source']}",
            f"Kind:      annotation file, no signals ({what}: {k} of {n} annotations are "
            "sleep stages)",
            f"Start:     {info['start_time'] or 'unknown'}",
            f"Annotations: {n}, spanning {a:g}-{b:g} s ({(b - a) / 3600:.2f} h)"])
    dur = info["duration_sec"]
    lines = [f"File:      {info['source']}",
             f"Start:     {info['start_time'] or 'unknown'}",
             f"Duration:  {dur:.0f} s ({dur / 3600:.2f} h, {int(dur // 30)} epochs of 30 s)",
             f"Annotations: {info['n_annotations']}",
             f"{'Channel':<24}{'Rate (Hz)':>10}  {'Unit':<8}Role"]
    if info.get("gaps"):
        lines.insert(3, f"Gaps:      {len(info['gaps'])} (discontinuous EDF+D): "
                        f"{gaps_text(info['gaps'])}")
    for ch in info["channels"]:
        lines.append(f"{ch['name']:<24}{ch['sfreq']:>10g}  {ch['unit']:<8}{ch['role'] or '-'}")
    return "\n".join(lines)
