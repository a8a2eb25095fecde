"""The MSMAE-CNN benchmark protocol on real Sleep-EDF recordings.

For users who have the data (``hypnoscope fetch --subset sleep-edf-20 --path DIR``: the
cassette PSG + hypnogram EDF pairs) and, ideally, a GPU: the same protocol as
``run.py`` (``protocol.py``: Table 1 subject-wise vs the paper's LEAKY 80/20 split, the
ablations with several seeds), with the recordings read by
:func:`hypnoscope.signal.nights.load_psg_dir` (EEG Fpz-Cz, EEG Pz-Oz, EOG horizontal, the
1 Hz EMG envelope; 100 Hz; the paper's Kaiser low-pass; 30 min of wake around sleep).

Run (from the repository root)::

    python -m benchmarks.msmae_cnn.real_sleepedf --data DIR [--preset paper --jobs 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, command_line, now_utc
from benchmarks.msmae_cnn import protocol as P


def main(argv: list[str] | None = None) -> int:
    from hypnoscope.signal.nights import load_psg_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder of Sleep-EDF PSG + hypnogram "
                    "pairs (hypnoscope fetch)")
    ap.add_argument("--name", default="msmae_cnn_real")
    P.add_arguments(ap)
    args = ap.parse_args(argv)
    s = P.settings_from(args)
    data = Path(args.data)
    work = Path(args.work_dir or ROOT / ".cache" / args.name)
    t_start = time.perf_counter()

    def nights_for(hz: float):
        return P.middle(load_psg_dir(data, preprocessing=P.lowpass_config(hz),
                                     cache=str(work / "cache"), on_error="warn",
                                     **P.CHANNELS), args.max_epochs_per_night)

    results = P.execute(nights_for, s, work,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    nights = nights_for(10.0)
    meta = {
        "title": "MSMAE-CNN (paper Table 1 and ablations) on REAL Sleep-EDF recordings",
        "date": now_utc(),
        "command": command_line("benchmarks.msmae_cnn.real_sleepedf", argv),
        "data_label": "real Sleep-EDF recordings",
        "data_text": (
            f"Data: real Sleep-EDF recordings from `{data}` — "
            f"{len({n.subject_id for n in nights})} subjects / {len(nights)} nights / "
            f"{sum(int(n.scored.sum()) for n in nights)} scored epochs (Kemp et al. 2000, "
            "Goldberger et al. 2000, ODC-By); EEG Fpz-Cz, EEG Pz-Oz, EOG horizontal and the "
            "EMG at 100 Hz, Kaiser-window FIR low-pass (60 dB) at 10 Hz."
            + (" SMOKE run: tiniest settings, measures nothing." if args.smoke else "")),
        "protocol_text": (
            "Subject-wise: one fixed train/validation/test split of subjects (validation "
            f"{s.val:g}, test {s.test:g}, seed {s.seed}); LEAKY: the paper's stratified "
            f"80/20 epoch split. MSMAE-CNN preset `{s.preset}`, {s.pretrain_epochs} + "
            f"{s.epochs} epochs; CNN {s.cnn_epochs} epochs; RF {s.rf_trees} trees."),
        "wall_s": time.perf_counter() - t_start,
        "data": {"folder": str(data), "n_nights": len(nights)},
    }
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results"
    print(P.finish(results, s, meta, out, args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
