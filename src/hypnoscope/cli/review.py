"""``hypnoscope review``: review and correct a night's automatic scoring in the browser
(:class:`hypnoscope.review.session.ReviewSession` served by :func:`hypnoscope.review.app.serve`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hypnoscope.cli import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "review", help="review and correct a scoring in the browser (local web app)",
        description="Open a recording with its automatic scoring in a local web app: 30-s "
                    "pages of EEG/EOG/EMG, the whole night's hypnogram and hypnodensity, "
                    "the epochs to check first, keyboard scoring (W/0 1 2 3 R/5, arrows, "
                    "u = undo). Every correction is saved at once as a new scoring "
                    "beside the automatic one (STEM.reviewed.tsv, .edf, .xml and the "
                    "review's state STEM.review.json); reopening continues where the "
                    "scorer stopped. Given a recording file it is staged first (into "
                    "--out) unless that folder holds its scoring; given an output folder "
                    "of hypnoscope stage, its scoring and the recording its report names "
                    "are opened. The server listens on 127.0.0.1 only and every request "
                    "needs the random token of the printed URL. Ctrl-C stops it.")
    p.add_argument("source", metavar="RECORDING_OR_OUTPUT_DIR",
                   help="a recording file, or an output folder of hypnoscope stage")
    p.add_argument("--out", metavar="DIR",
                   help="review folder for a recording file (default: RECORDING_STEM_review "
                        "beside it): the automatic outputs and the review files")
    p.add_argument("--scorer", metavar="NAME",
                   help="your name, saved with every correction (else asked on the page)")
    p.add_argument("--port", type=int, default=0,
                   help="port on 127.0.0.1 (default 0: a free port)")
    p.add_argument("--model", default=None,
                   help="staging model when the recording is staged first: auto (default), "
                        "a shipped name or a model file")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--open", action="store_true",
                     help="open the URL in the default web browser")
    how.add_argument("--no-browser", action="store_true",
                     help="only print the URL (the default)")
    p.set_defaults(func=_review)


def _review(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be 0 (a free port) to 65535, got {args.port}")
    try:
        from hypnoscope.review.app import serve
    except ImportError as exc:
        raise CLIError(f"hypnoscope review needs the web framework ({exc.name} is missing): "
                       "pip install 'hypnoscope[review]'") from None
    from hypnoscope.review.session import ReviewSession, check_scorer

    if args.scorer is not None:
        check_scorer(args.scorer)
    if args.model is not None and Path(args.source).is_dir():
        raise CLIError(f"--model stages a recording file; {args.source} is an output folder "
                       "(already staged): give the recording file to stage it otherwise")
    session = ReviewSession.open(args.source, out=args.out, model=args.model,
                                 scorer=args.scorer, note=lambda m: print(m, flush=True))

    def ready(url: str) -> None:
        print(f"reviewing {session.recording.name} ({session.auto.n_epochs} epochs); "
              f"corrections are saved in {session.out_dir}", flush=True)
        print(f"open {url}", flush=True)
        print("Ctrl-C stops the server", flush=True)
        if args.open:
            import webbrowser

            webbrowser.open(url)

    try:
        serve(session, port=args.port, on_ready=ready)
    finally:
        session.close()
    print("review server stopped; corrections are saved", file=sys.stderr)
    return 0
