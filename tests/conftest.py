"""Shared test fixtures.

``SHARED_DATA`` points at ``../shared/data`` (the real Sleep-EDF hypnograms, band-power
set and YASA snippets); tests that read it use the ``shared_data`` fixture, which skips
cleanly when the folder is absent. ``make_psg_edf`` writes small synthetic EDF files in
the Sleep-EDF channel layout so that every reader path is tested without downloads.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HYPNOSCOPE_PROGRESS", "0")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: Sleep-EDF cassette channel labels and their stored sampling rates.
SLEEPEDF_SC_CHANNELS = {
    "EEG Fpz-Cz": 100.0,
    "EEG Pz-Oz": 100.0,
    "EOG horizontal": 100.0,
    "Resp oro-nasal": 1.0,
    "EMG submental": 1.0,
    "Temp rectal": 1.0,
    "Event marker": 1.0,
}


@pytest.fixture
def shared_data() -> Path:
    """Path of ``../shared/data``; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not available at {SHARED_DATA}")
    return SHARED_DATA


def write_psg_edf(path: Path, duration_sec: float = 300.0,
                  channels: dict[str, float] | None = None, seed: int = 0,
                  amplitude_uv: float = 30.0, units: str = "uV",
                  annotations: list[tuple[float, float, str]] | None = None) -> Path:
    """Write a synthetic EDF(+) file with the given ``{label: sampling rate}`` channels.

    Signals are white noise plus a 10 Hz sine of ``amplitude_uv``; ``units`` sets the
    physical dimension written in the header ('uV' or 'V', the latter scaling values).
    """
    import edfio

    rng = np.random.default_rng(seed)
    channels = channels or SLEEPEDF_SC_CHANNELS
    signals = []
    for label, fs in channels.items():
        n = int(round(duration_sec * fs))
        t = np.arange(n) / fs
        x = amplitude_uv * np.sin(2 * np.pi * min(10.0, fs / 4) * t) + 5 * rng.standard_normal(n)
        if units == "V":
            x = x * 1e-6
        lim = float(np.abs(x).max() * 1.5 + 1e-9)
        signals.append(edfio.EdfSignal(x, sampling_frequency=fs, label=label,
                                       physical_dimension=units,
                                       physical_range=(-lim, lim)))
    anns = [edfio.EdfAnnotation(o, d, t) for o, d, t in (annotations or [])]
    edf = edfio.Edf(signals, annotations=anns or None,
                    starttime=dt.time(22, 30, 0))
    edf.startdate = dt.date(2020, 1, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    edf.write(path)
    return path


@pytest.fixture
def make_psg_edf(tmp_path):
    """Factory fixture: ``make_psg_edf(name="x-PSG.edf", **write_psg_edf kwargs)``."""
    def _make(name: str = "SC4001E0-PSG.edf", **kwargs) -> Path:
        return write_psg_edf(tmp_path / name, **kwargs)
    return _make


@pytest.fixture
def cli_handler():
    """Run a command through the real ``hypnoscope`` parser and call its handler directly,
    so that user errors propagate as exceptions (``main`` turns them into exit code 2)."""
    from hypnoscope.cli import build_parser

    def run(argv: list[str]) -> int:
        args = build_parser().parse_args(argv)
        return args.func(args)

    return run
