"""``hypnoscope`` command line: a thin layer over the Python API.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
``argparse.Namespace``; returns the exit code). Heavy imports happen inside ``func`` so
that ``hypnoscope --help`` stays fast.

Errors have one path: a handler raises, and :func:`main` prints ``hypnoscope <cmd>:
error: <message>`` (:func:`describe_error`: input errors give their message, an
``OSError`` its path and cause, anything else is called an internal error) and returns
2 (3 for an internal error); ``--debug`` adds the traceback. A handler that writes files
checks its output paths (:func:`hypnoscope.utils.files.check_output_dir`,
:func:`~hypnoscope.utils.files.check_output_file`) before any work.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

from hypnoscope._version import __version__

#: Modules of this package that register sub-commands, in ``--help`` order.
COMMAND_MODULES = ["demo", "stage", "benchmark", "mslt", "simulate", "stats", "train", "data",
                   "export", "stream", "review", "adapt"]


class CLIError(Exception):
    """An error the CLI reports as one line (no traceback) with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hypnoscope",
        description="Automated sleep staging from polysomnography (EEG, EOG, EMG).",
    )
    parser.add_argument("--version", action="version", version=f"hypnoscope {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="on an error, also print the Python traceback (for bug "
                             "reports); without it an error is one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    for cmd in sub.choices.values():  # `hypnoscope stage ... --debug` works as well
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="on an error, also print the Python traceback")
    return parser


#: Exceptions that bad input, a bad path or the machine (memory, disk) raise: their
#: message is the error. Anything else is an internal error (a bug) and is called one.
INPUT_ERRORS: tuple[type[BaseException], ...] = (CLIError, ValueError, OSError,
                                                 RuntimeError, MemoryError)

_OS_HINTS = {
    errno.ENOSPC: "no space left on the device; free some space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded; free some space or write elsewhere",
    errno.EROFS: "read-only file system; expected a writable location",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder; expected a file",
    errno.ENOTDIR: "a part of this path is a file; expected a folder",
    errno.EEXIST: "exists and is not a folder; expected a folder",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "file name too long",
}


def describe_error(exc: BaseException) -> tuple[str, bool]:
    """One-line message for ``exc`` and whether it is an internal error.

    An :class:`OSError` names its path and what went wrong (``/x/y: permission
    denied``); input errors (:data:`INPUT_ERRORS`) give their own message; any other
    exception is an internal error, reported with its type and a pointer to
    ``--debug``.
    """
    if isinstance(exc, MemoryError):
        return ("out of memory" + (f": {exc}" if str(exc) else "")
                + " (try --jobs 1, or a machine with more memory)"), False
    if isinstance(exc, OSError) and exc.filename is not None:
        why = _OS_HINTS.get(exc.errno) or (exc.strerror or type(exc).__name__).lower()
        where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
        return f"{where}: {why}", False
    if isinstance(exc, INPUT_ERRORS):
        return str(exc) or type(exc).__name__, False
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return (f"internal error: {detail} (this is a bug in hypnoscope, or an input it does "
            "not expect; rerun with --debug for the traceback and report it)"), True


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hypnoscope`` console script.

    Every error ends the same way: ``hypnoscope <cmd>: error: <message>`` on stderr and
    exit code 2 (3 for an internal error, which also says so); ``--debug`` adds the
    Python traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"hypnoscope {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the one error path of every command
        message, internal = describe_error(exc)
        if getattr(args, "debug", False):
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        print(f"hypnoscope {args.command}: error: {message}", file=sys.stderr)
        return 3 if internal else 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
