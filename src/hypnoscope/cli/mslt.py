"""``hypnoscope mslt``: a day of naps (MSLT or MWT) staged, the nap rules applied, a
report written (:func:`hypnoscope.staging.naps.stage_naps`,
:func:`hypnoscope.viz.naps_report.write_nap_report`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "mslt", help="daytime nap study (MSLT or MWT): latencies, SOREMPs and a report",
        description="Stage each nap of a multiple sleep latency test (MSLT) or maintenance "
                    "of wakefulness test (MWT) and apply the AASM nap rules: sleep latency "
                    "(lights off to the first epoch of any sleep stage), REM latency and "
                    "sleep-onset REM periods (REM within 15 min of sleep onset), the MWT "
                    "latency to unequivocal sleep, and the day's mean latency and SOREMP "
                    "count. Naps are one file each, or one recording with --naps or with "
                    "lights-off/lights-on annotations. Writes PROTOCOL_report.html, "
                    "PROTOCOL_report.json and PROTOCOL_naps.csv into --out; every epoch a "
                    "latency depends on is listed with its confidence.")
    p.add_argument("naps", nargs="+", metavar="NAPS",
                   help="recordings: one file per nap, or one recording of the whole day; "
                        "a folder gives its recordings (*-PSG.edf, else every recording file)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--protocol", choices=["mslt", "mwt"], default="mslt",
                   help="mslt (default): naps end 15 min after sleep onset or after 20 min "
                        "without sleep; mwt: trials end at unequivocal sleep or after 40 min")
    p.add_argument("--naps", dest="nap_times", metavar="OFF-ON,...",
                   help="lights-off/lights-on of each nap in one recording, clock times or "
                        "seconds from its start, e.g. 09:00-09:20,11:00-11:20 (default: "
                        "the file's lights-off/on annotations, else the whole file)")
    p.add_argument("--model", default="auto",
                   help="staging model: auto (default; the shipped length-gated model for "
                        "the channels found), a shipped name or a model file")
    p.add_argument("--eeg", help="EEG channel(s), comma-separated (default: automatic)")
    p.add_argument("--eog", help="EOG channel (default: automatic)")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 2, nothing written) on any warning, e.g. a nap that "
                        "does not meet the protocol")
    p.set_defaults(func=_mslt)


def _channels(value: str | None):
    if value is None:
        return None
    parts = [c.strip() for c in value.split(",") if c.strip()]
    return parts if len(parts) > 1 else (parts[0] if parts else None)


def _mslt(args: argparse.Namespace) -> int:
    from hypnoscope.notices import raise_if_strict
    from hypnoscope.staging.naps import stage_naps
    from hypnoscope.utils.files import check_output_dir
    from hypnoscope.viz.naps_report import write_nap_report

    out = check_output_dir(args.out, "--out")
    day = stage_naps(args.naps, protocol=args.protocol, model=args.model,
                     naps=args.nap_times, eeg=_channels(args.eeg), eog=_channels(args.eog))
    raise_if_strict(day.notices, args.strict, f"hypnoscope mslt --protocol {args.protocol}")
    paths = write_nap_report(out, day.to_dict(), [n.hypnogram for n in day.naps])
    for line in summary_lines(day.to_dict()):
        print(line)
    print(f"report: {paths['html']}")
    return 0


def summary_lines(day: dict) -> list[str]:
    """The day's result as printed: one line per nap, then the day."""
    def m(x) -> str:
        return "-" if x is None else f"{x:.1f}"

    lines = []
    for n in day["naps"]:
        lat = "no sleep" if n["sleep_latency_min"] is None else \
            f"{n['sleep_latency_min']:.1f} min"
        rem = "no REM" if n["rem_latency_min"] is None else \
            f"REM latency {n['rem_latency_min']:.1f} min"
        extra = (f"{rem}, SOREMP "
                 f"{'yes' if n['soremp'] else 'no'}" if day["protocol"] == "mslt" else
                 f"unequivocal sleep {m(n['mwt_unequivocal_latency_min'])} min")
        when = f" {n['lights_off']}" if n["lights_off"] else ""
        lines.append(f"nap {n['nap']}{when}: sleep latency {lat}, {extra}"
                     + ("" if n["complete"] else " (incomplete)"))
    s = day["summary"]
    text = f"mean sleep latency {m(s['mean_sleep_latency_min'])} min over {s['n_in_mean']} nap(s)"
    if day["protocol"] == "mslt":
        crit = s["narcolepsy_criterion_met"]
        text += (f", {s['n_soremps']} SOREMP(s); mean <= 8 min with >= 2 SOREMPs: "
                 f"{'-' if crit is None else 'yes' if crit else 'no'}")
    else:
        text += f", mean latency to unequivocal sleep {m(s['mean_unequivocal_latency_min'])} min"
    lines.append(text)
    for n in day["notices"]:
        if n["severity"] == "warning":
            lines.append(f"warning: {n['message']}")
    return lines
