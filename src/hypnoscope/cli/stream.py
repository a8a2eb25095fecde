"""``hypnoscope stream``: stage a live Lab Streaming Layer stream epoch by epoch."""

from __future__ import annotations

import argparse
import sys

from hypnoscope.cli import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stream", help="stage a live LSL stream epoch by epoch (real time)",
        description="Stage an incoming Lab Streaming Layer stream (mne-lsl) every 30-s epoch "
                    "as soon as LOOKAHEAD further epochs are in (0 = causal), with a "
                    "live hypnogram line in the terminal. Each epoch is written as it "
                    "comes: a line of DIR/NAME.stages.tsv (complete or absent) and an LSL "
                    "marker on the stream NAME-stages. The stages equal offline staging "
                    "of the recording cut after epoch t+LOOKAHEAD (causal filtering, "
                    "running normalisation; see hypnoscope.live.stream). --replay FILE.edf "
                    "plays a recording as the stream NAME for testing. The stream ends "
                    "after --idle-timeout seconds without samples.")
    p.add_argument("--lsl", required=True, metavar="NAME", help="name of the LSL stream")
    p.add_argument("--model", "-m", default="default", metavar="NAME|PATH",
                   help="model on band-power features (default: %(default)s)")
    p.add_argument("--lookahead", type=int, default=0, metavar="K",
                   help="future epochs to wait for before staging an epoch (default 0: "
                        "causal; latency K x 30 s)")
    p.add_argument("--out", "-o", metavar="DIR",
                   help="folder for NAME.stages.tsv (one line per epoch as it is staged)")
    p.add_argument("--eeg", nargs="+", metavar="CH", help="EEG channels of the stream")
    p.add_argument("--eog", metavar="CH", help="EOG channel of the stream")
    p.add_argument("--replay", metavar="FILE.edf",
                   help="replay this recording as the LSL stream NAME (for testing)")
    p.add_argument("--speed", type=float, default=60.0,
                   help="replay speed, x real time (default: %(default)s)")
    p.add_argument("--idle-timeout", type=float, default=10.0, metavar="SEC",
                   help="end when no sample came for SEC seconds (default: %(default)s)")
    p.add_argument("--resolve-timeout", type=float, default=15.0, metavar="SEC",
                   help="wait up to SEC seconds for the stream to appear")
    p.add_argument("--no-markers", action="store_true",
                   help="do not open the NAME-stages LSL marker outlet")
    p.set_defaults(func=_stream)


def _stream(args: argparse.Namespace) -> int:
    import os
    from importlib import resources

    # liblsl's own logging (set before it loads): fatal errors only, unless configured
    os.environ.setdefault("LSLAPICFG", str(resources.files("hypnoscope") / "data" /
                                           "lsl_api.cfg"))
    from hypnoscope.live.stream import ReplayOutlet, print_progress, stages_path, stream_lsl
    from hypnoscope.utils.files import check_output_dir

    if args.lookahead < 0:
        raise CLIError(f"--lookahead must be >= 0 epochs, got {args.lookahead}")
    if args.speed <= 0:
        raise CLIError(f"--speed must be > 0, got {args.speed:g}")
    if args.out:
        check_output_dir(args.out, "--out")
        if stages_path(args.out, args.lsl).exists():
            raise CLIError(f"{stages_path(args.out, args.lsl)} exists (an earlier session of "
                           f"stream {args.lsl!r}); remove it or choose another --out")
    replay = None
    if args.replay:
        replay = ReplayOutlet(args.replay, name=args.lsl, speed=args.speed)
        hours = replay.rec.data.shape[1] / replay.rec.sfreq / 3600
        print(f"Replaying {args.replay} ({hours:.1f} h) as LSL stream {args.lsl!r} at "
              f"{args.speed:g}x real time", file=sys.stderr)
        replay.start()
    print(f"Staging LSL stream {args.lsl!r} (look-ahead {args.lookahead} epochs) ...",
          file=sys.stderr)
    stages: list[str] = []
    summary = stream_lsl(args.lsl, model=args.model, lookahead=args.lookahead,
                         out_dir=args.out, eeg=args.eeg, eog=args.eog,
                         resolve_timeout=args.resolve_timeout,
                         idle_timeout=args.idle_timeout, markers=not args.no_markers,
                         on_epoch=lambda r: print_progress(r, stages))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if replay is not None:
        replay.join()
        if replay.error is not None:
            raise CLIError(f"replay of {args.replay} failed: {replay.error}")
    res = summary.results
    if not res:
        raise CLIError(f"LSL stream {args.lsl!r} ended before one complete 30-s epoch")
    lat = sorted(r.latency_sec for r in res if r.latency_sec is not None)
    counts = {c: sum(r.stage == c for r in res) for c in dict.fromkeys(r.stage for r in res)}
    print(f"Staged {len(res)} epochs ({len(res) * 0.5:.1f} min) from "
          f"{', '.join(summary.channels)} in {summary.seconds:.1f} s; median latency "
          f"{1000 * lat[len(lat) // 2]:.0f} ms after the data; stages "
          + ", ".join(f"{c} {n}" for c, n in counts.items()))
    if summary.path is not None:
        print(f"Stages: {summary.path}")
    return 0
