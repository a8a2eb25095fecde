"""The units rule of the PSG reader: µV amplitudes that are powers of 1000 off.

Data are returned in µV (MNE applies the header's physical dimension). Unit mistakes in
exports are powers of 1000 (values in V or mV under a µV header, µV values under an mV or
V header), so that is what is corrected; smaller factors cannot be told apart from the
spread of human amplitudes and are only flagged when far outside it.

1. The amplitude of an EEG or EOG waveform channel is the **median over its 30-s epochs
   of the per-epoch standard deviation** (flat epochs left out), in µV as the header
   says (:func:`epoch_amplitude`). The median over epochs is robust to artefacts,
   disconnected stretches and the sleep-stage mix; adult scalp EEG/EOG gives about
   5-60 µV.
2. It is **plausible** within ``PLAUSIBLE_EPOCH_SD_UV`` (1-150 µV): nothing is done.
3. Outside it, the factors of ``UNIT_FACTORS`` (x1e3, x1e6, x1e-3, x1e-6) are tried; a
   factor is **unambiguous** when it brings the amplitude into the narrower
   ``RESCALE_TARGET_UV`` (3-100 µV) and every implausible EEG/EOG channel with the same
   header unit gets the same factor (:func:`unit_factor`). Those channels (and the EMG
   channels with the same header unit) are then multiplied by it, with a
   ``units-rescaled`` warning naming the channel, the amplitude, the header unit and the
   factor. Otherwise the channel is kept as it is with a ``units-implausible`` warning.
4. An EMG channel with no EEG/EOG companion of its unit is only checked against the
   broad ``MIN_PLAUSIBLE_UV``-``MAX_PLAUSIBLE_UV`` range of its median absolute
   amplitude (``units-implausible``).

On simulated nights (EEG/EOG amplitude 17-36 µV) this rescales data scaled by 1e-6
(volts under a µV header) and 1e-3 (mV), warns for 1e-2 (0.17-0.36 µV; x1000 would give
170-360 µV, outside the target range, so no factor is unambiguous) and for x10
(170-360 µV), and accepts x0.1 (1.7-3.6 µV, the range of real low-amplitude EEG) and x1.
:func:`unit_factors` applies the rule to the channels of a recording.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hypnoscope.notices import add_notice
from hypnoscope.utils.arrays import epoch_view

#: Plausible range of the median absolute amplitude of a PSG channel, in µV (the broad
#: check of EMG channels, and the floor of the envelope flat test in ``quality``).
MIN_PLAUSIBLE_UV = 0.05
MAX_PLAUSIBLE_UV = 5000.0
#: Plausible range of an EEG/EOG channel's amplitude (median over 30-s epochs of the
#: per-epoch standard deviation), in µV; see "Units (the decision rule)".
PLAUSIBLE_EPOCH_SD_UV = (1.0, 150.0)
#: Range a unit factor must bring an implausible amplitude into to be applied, in µV.
RESCALE_TARGET_UV = (3.0, 100.0)
#: Unit factors tried (V or mV under a µV header; µV under an mV or V header).
UNIT_FACTORS = (1e3, 1e6, 1e-3, 1e-6)


def epoch_amplitude(x: np.ndarray, fs: float, epoch_sec: float = 30.0) -> float:
    """Median over 30-s epochs of the per-epoch standard deviation (flat epochs left
    out); the amplitude of the units rule. NaN for a channel with no non-flat epoch."""
    n = max(1, int(round(epoch_sec * fs)))
    k = x.size // n
    ep = epoch_view(x, n) if k else x[None, :]
    sd = ep.std(axis=1)
    sd = sd[sd > 0]
    return float(np.median(sd)) if sd.size else float("nan")


def unit_factor(amplitude_uv: float) -> float | None:
    """The factor of the units rule for an EEG/EOG amplitude (µV, :func:`epoch_amplitude`):
    1.0 when plausible, the one power of 1000 of ``UNIT_FACTORS`` that brings it into
    ``RESCALE_TARGET_UV`` when implausible, None when no factor is unambiguous."""
    lo, hi = PLAUSIBLE_EPOCH_SD_UV
    if not np.isfinite(amplitude_uv) or lo <= amplitude_uv <= hi:
        return 1.0
    tlo, thi = RESCALE_TARGET_UV
    fits = [f for f in UNIT_FACTORS if tlo <= amplitude_uv * f <= thi]
    return fits[0] if len(fits) == 1 else None


def unit_factors(picks: list[str], native: list[tuple[np.ndarray, float]],
                 role_of: dict[str, str], units: dict[str, str], envelopes: set[str],
                 name: str, meta: dict[str, Any], fix_units: bool) -> dict[str, float]:
    """The units rule of the module docstring: ``{channel: factor}`` applied, with the
    ``units-rescaled`` / ``units-implausible`` notices and ``meta`` entries.

    ``native`` holds each channel's samples (µV as the header says) and rate,
    ``envelopes`` the EMG channels that are amplitude envelopes, ``meta`` the reader's
    (with ``flat_channels``; ``amplitude_uv``, ``unit_factors`` and ``unit_warnings``
    are filled in).
    """
    lo, hi = PLAUSIBLE_EPOCH_SD_UV
    tlo, thi = RESCALE_TARGET_UV
    amp: dict[str, float] = {}
    want: dict[str, float | None] = {}
    measure: dict[str, str] = {}
    for ch, (x, fs) in zip(picks, native, strict=True):
        if ch in meta["flat_channels"]:
            continue
        if ch in envelopes:
            # an envelope is an amplitude already: its median (subsampled, ~1e6 values)
            amp[ch] = float(np.median(np.abs(x[::max(1, x.size // 1_000_000)])))
            measure[ch] = "median |amplitude|"
        else:
            amp[ch] = epoch_amplitude(x, fs)
        meta["amplitude_uv"][ch] = amp[ch]
        if role_of[ch] in ("eeg", "eog"):
            want[ch] = unit_factor(amp[ch])
    # one factor per header unit: every implausible EEG/EOG channel of the unit agrees
    by_unit: dict[str, set] = {}
    for ch, f in want.items():
        if f != 1.0:
            by_unit.setdefault(units[ch], set()).add(f)
    group_factor = {u: next(iter(fs)) for u, fs in by_unit.items()
                    if len(fs) == 1 and None not in fs}
    factors: dict[str, float] = {}
    for ch in picks:
        if ch not in amp:
            continue
        a, unit, role = amp[ch], units[ch], role_of[ch]
        f = group_factor.get(unit)
        if role in ("eeg", "eog"):
            implausible = want[ch] != 1.0
            what = (f"an amplitude of {a:.3g} µV (median over 30-s epochs of the standard "
                    f"deviation; header unit {unit!r}; expected {lo:g}-{hi:g} µV)")
        else:
            implausible = not (MIN_PLAUSIBLE_UV <= a <= MAX_PLAUSIBLE_UV)
            what = (f"an amplitude of {a:.3g} µV ("
                    f"{measure.get(ch, 'median over 30-s epochs of the standard deviation')}"
                    f"; header unit {unit!r}; expected {MIN_PLAUSIBLE_UV:g}-"
                    f"{MAX_PLAUSIBLE_UV:g} µV)")
        if f is not None and (implausible if role != "emg"
                              else MIN_PLAUSIBLE_UV <= a * f <= MAX_PLAUSIBLE_UV):
            cause = _unit_cause(f, unit)
            if fix_units:
                factors[ch] = f
                msg = (f"{name}: channel {ch!r} has {what}: {cause}; rescaled by {f:g} to "
                       f"{a * f:.3g} µV")
            else:
                msg = (f"{name}: channel {ch!r} has {what}: {cause}; multiplying by {f:g} "
                       f"would give {a * f:.3g} µV (not done: fix_units=False)")
            if fix_units:
                meta["unit_factors"][ch] = f
            meta["unit_warnings"][ch] = {"amplitude_uv": a, "factor": f, "message": msg}
            add_notice(meta, "units-rescaled" if fix_units else "units-implausible", msg,
                    channel=ch)
            continue
        if implausible:
            small = (a < lo) if role in ("eeg", "eog") else (a < MIN_PLAUSIBLE_UV)
            cause = ("data in volts or mV under a µV header, a disconnected electrode or an "
                     "amplifier fault?" if small else
                     "wrong physical unit, a loose electrode or an amplifier fault?")
            msg = (f"{name}: channel {ch!r} has an implausibly {'small' if small else 'large'} "
                   f"{what.removeprefix('an ')} - {cause} No power-of-1000 "
                   f"unit factor brings it unambiguously into {tlo:g}-{thi:g} µV, so it is "
                   "kept as it is")
            meta["unit_warnings"][ch] = {"amplitude_uv": a, "factor": None, "message": msg}
            add_notice(meta, "units-implausible", msg, channel=ch)
    return factors


_UNIT_SCALE = {"v": 1.0, "mv": 1e-3, "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "nv": 1e-9}


_UNIT_NAME = {1.0: "V", 1e-3: "mV", 1e-6: "µV", 1e-9: "nV"}


def _unit_cause(factor: float, unit: str) -> str:
    """'the values look like mV under a 'uV' header' for a factor and a header unit
    (the values are in units of header scale x factor volts)."""
    u = unit.strip().lower()
    scale = _UNIT_SCALE.get(u)
    actual = None if scale is None else _UNIT_NAME.get(float(f"{scale * factor:.3g}"))
    if actual is None:
        how = f"{factor:g} times too small" if factor > 1 else f"{1 / factor:g} times too large"
        return f"the values look {how} for their unit {unit!r}"
    return f"the values look like {actual} under a {unit!r} header"

