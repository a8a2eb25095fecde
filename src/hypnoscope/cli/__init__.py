"""``hypnoscope`` command line: a thin layer over the Python API.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
``argparse.Namespace``; returns the exit code). Heavy imports happen inside ``func`` so
that ``hypnoscope --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__

#: Modules of this package that register sub-commands, in ``--help`` order.
COMMAND_MODULES = ["demo", "stage", "simulate", "stats", "train", "data"]


class CLIError(Exception):
    """An error the CLI reports as one line (no traceback) with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hypnoscope",
        description="Automated sleep staging from polysomnography (EEG, EOG, EMG).",
    )
    parser.add_argument("--version", action="version", version=f"hypnoscope {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hypnoscope`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (CLIError, FileNotFoundError, ValueError) as exc:
        if args.verbose:
            raise
        print(f"hypnoscope {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hypnoscope {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
