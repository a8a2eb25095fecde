"""Helpers shared by the benchmarks: paths, the real band-power set, result headers.

Benchmarks run as modules from the repository root (``python -m benchmarks.<name>.run``,
see :mod:`benchmarks`) and import this module as ``benchmarks.common``. Every result
file records what made it: :func:`result_header` gives the benchmark name, the date
(UTC), the machine and the command line; :func:`command_line`, :func:`machine_line` and
:func:`machine_info` are its parts for benchmarks that lay their header out otherwise.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The repository root.
ROOT = Path(__file__).resolve().parents[1]
#: The shipped models and their cards (``<name>.joblib``, ``<name>.json``) in the source tree.
SHIPPED_MODELS = ROOT / "src" / "hypnoscope" / "data" / "models"
#: Where the benchmarks write their results (JSON and Markdown).
RESULTS = ROOT / "benchmarks" / "results"
#: The data folder shared beside the repository.
SHARED_DATA = ROOT.parent / "shared" / "data"
#: The real Sleep-EDF band-power set (59 subjects, 115 nights).
BANDPOWER_DIR = SHARED_DATA / "sleepedf_bandpower"
#: The real Sleep-EDF cassette hypnograms (``*-Hypnogram.edf``).
HYPNOGRAM_DIR = SHARED_DATA / "sleepedf_hypnograms" / "sleep-cassette"


def load_bandpower(path: str | os.PathLike | None = None) -> list:
    """The nights of the real band-power set (:func:`hypnoscope.datasets.load_feature_dir`
    of ``path``, default :data:`BANDPOWER_DIR`)."""
    from hypnoscope.datasets import load_feature_dir

    return load_feature_dir(str(path or BANDPOWER_DIR))


def now_utc() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def command_line(module: str, argv: Sequence[str] | None = None, prefix: str = "python",
                 ) -> str:
    """The command that runs benchmark ``module`` with ``argv`` (default: this process's
    arguments), e.g. ``python -m benchmarks.cohort.run --quick``.

    ``module`` is the benchmark's ``__spec__.name``; ``prefix`` what comes before
    ``-m`` (e.g. ``"nice -n 10 python"``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join([prefix, "-m", module, *([shlex.join(args)] if args else [])])


def machine_line() -> str:
    """One line on the machine: node, architecture, processor, Python and core count."""
    return (" ".join(x for x in (platform.node(), platform.machine(), platform.processor(),
                                 "python", platform.python_version()) if x)
            + f", {os.cpu_count()} cores")


def machine_info(**extra: Any) -> dict[str, Any]:
    """The machine as a dict (platform, processor, CPU count, Python), plus ``extra``."""
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), **extra}


def write_results(name: str, res: dict[str, Any], markdown: str) -> None:
    """Write a benchmark's results, ``RESULTS/<name>.json`` (``res``) and
    ``RESULTS/<name>.md`` (``markdown``), each atomically."""
    from hypnoscope.utils.files import write_json_atomic, write_text_atomic

    write_json_atomic(RESULTS / f"{name}.json", res)
    write_text_atomic(RESULTS / f"{name}.md", markdown)


def result_header(benchmark: str, module: str, argv: Sequence[str] | None = None,
                  prefix: str = "python") -> dict[str, str]:
    """The name, date (UTC), machine and command line every result file starts with."""
    return {"benchmark": benchmark, "date": now_utc(), "machine": machine_line(),
            "command": command_line(module, argv, prefix)}
