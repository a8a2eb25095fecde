"""Calibrate the simulator's background band gains against the real Sleep-EDF band powers.

Simulates nights driven by real hypnograms, measures the median relative band power per
stage and channel exactly as the real feature set was computed (see ``measures.py``), and
updates ``BAND_LOG_GAINS`` multiplicatively until they match. Prints the new table to be
pasted into ``src/hypnoscope/simulate/physiology.py``.

Usage: ``python -m benchmarks.simulator_realism.calibrate [--iters 5] [--nights 4]``
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.simulator_realism.measures import (
    HYPNO_DIR,
    real_band_targets,
    real_log_total,
    simulated_relative_powers,
)
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.simulate import physiology


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--nights", type=int, default=4)
    ap.add_argument("--step", type=float, default=0.7)
    args = ap.parse_args()
    target = real_band_targets()  # (5 stages, 3 channels, 5 bands)
    target_tot = real_log_total()  # (5 stages, 3 channels), relative to N2
    files = sorted(HYPNO_DIR.glob("*-Hypnogram.edf"))[::7][: args.nights]
    hyps = []
    for f in files:
        h = read_hypnogram(f)
        h = h[h.sleep_period_slice(30)].copy(onset_sec=0.0)
        hyps.append(h)
    for it in range(args.iters):
        meas, meas_tot = simulated_relative_powers(hyps, seed=100 + it)
        err = np.log(target / meas)
        err_tot = target_tot - meas_tot
        physiology.BACKGROUND_STD *= np.exp(0.5 * args.step * err_tot)
        print("log total power vs N2 (sim - real):", np.round(-err_tot, 2).tolist())
        physiology.BAND_LOG_GAINS += args.step * err
        physiology.BAND_LOG_GAINS -= physiology.BAND_LOG_GAINS.mean(axis=2, keepdims=True)
        np.clip(physiology.BAND_LOG_GAINS, -2.5, 2.5, out=physiology.BAND_LOG_GAINS)
        print(f"iter {it}: mean |log ratio| = {np.abs(err).mean():.3f}", flush=True)
    np.set_printoptions(precision=3, suppress=True)
    print("BACKGROUND_STD = np.array(" + np.array2string(
        physiology.BACKGROUND_STD, separator=", ") + ")")
    print("BAND_LOG_GAINS = np.array(" + np.array2string(
        physiology.BAND_LOG_GAINS, separator=", ", max_line_width=95) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
