"""Inference time per night, PyTorch vs onnxruntime, for every deep model (this CPU).

Usage::

    python -m benchmarks.onnx.run [--workdir DIR] [--repeats 3] [--models ssnet cnn ...]

**Simulated** nights (``hypnoscope.simulate``, Sleep-EDF layout, ~8.5 h each; 4 subjects,
simulated once into ``WORKDIR`` and reused). Each deep model of the registry is trained
for one epoch on the first 2 h of 2 nights (``small`` preset; accuracy is not the point:
the networks' arithmetic is), exported with ``hypnoscope.models.onnx_model.export_onnx``, and both
forms stage the 2 test nights from the same loaded ``Night``:
``model.predict_proba(night)`` -- the same NumPy views, windows, normalisation and
window averaging, the network run by PyTorch or by onnxruntime. Reported per model:
median seconds per night over ``--repeats`` runs (after one warm-up run), the speed-up,
the largest probability difference and the stage agreement, the export time and file
size. Threads: PyTorch's default (``torch.get_num_threads()``) and onnxruntime's
default intra-op pool, both recorded. Results: ``benchmarks/results/onnx.md`` and
``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, command_line, machine_info, now_utc

DEFAULT_MODELS = ["ssnet", "ssnet-hier", "cnn", "msmae-cnn", "mc2sleepnet"]
OPTIONS = {"ssnet-hier": {"n_classes": 3}, "msmae-cnn": {"pretrain_epochs": 1},
           "mc2sleepnet": {"pretrain_epochs": 1}}


#: epochs of each training / validation night used to train (the first 2 h)
TRAIN_EPOCHS = 240


def _head(night, n: int):
    """The first ``n`` epochs of a night."""
    import dataclasses

    return dataclasses.replace(
        night, X=night.X[:n], y=night.y[:n],
        onsets_sec=None if night.onsets_sec is None else night.onsets_sec[:n], views={})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "hs-bench-onnx"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    args = ap.parse_args(argv)

    import onnxruntime
    import torch

    from hypnoscope.models import make_model
    from hypnoscope.models.onnx_model import export_onnx, load_onnx_model
    from hypnoscope.signal.nights import load_recording
    from hypnoscope.simulate.files import reuse_or_simulate_dataset

    work = Path(args.workdir)
    data = work / "data"
    meta = reuse_or_simulate_dataset(data, n_subjects=4, seed=0)
    recs = meta["records"]
    nights = [load_recording(data / r["psg"], data / r["hypnogram"], cache=False,
                             subject_id=f"s{r['subject']}") for r in recs]
    # training is not what is measured: 2 h of each training/validation night keep it short
    train, val = ([_head(n, TRAIN_EPOCHS) for n in part] for part in (nights[:2], nights[2:3]))
    test = nights[3:]
    t_epochs = sum(n.n_epochs for n in test)
    print(f"{len(nights)} simulated nights; test {len(test)} nights, {t_epochs} epochs",
          flush=True)
    rows = []
    for name in args.models:
        t = time.perf_counter()
        model = make_model(name, epochs=1, seed=0, device="cpu", **OPTIONS.get(name, {}))
        model.fit(train, val)
        fit_sec = time.perf_counter() - t
        path = work / f"{name}.onnx"
        t = time.perf_counter()
        export_onnx(model, path)
        export_sec = time.perf_counter() - t
        om = load_onnx_model(path)
        timing = {"pytorch": [], "onnxruntime": []}
        diffs, agree = [], []
        for night in test:
            for label, m in (("pytorch", model), ("onnxruntime", om)):
                m.predict_proba(night)  # warm-up
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    m.predict_proba(night)
                    timing[label].append((time.perf_counter() - t) / 1.0)
            a, b = model.predict_proba(night), om.predict_proba(night)
            diffs.append(float(np.abs(a - b).max()))
            agree.append(float((a.argmax(1) == b.argmax(1)).mean()))
        per_night = {k: statistics.median(v) for k, v in timing.items()}
        row = {"model": name, "fit_sec_1_epoch": fit_sec, "export_sec": export_sec,
               "onnx_mb": path.stat().st_size / 1e6,
               "exporter": om.description["exported"]["exporter"],
               "seq_len": model.config["seq_len"], "views": model.input_views,
               "sec_per_night_pytorch": per_night["pytorch"],
               "sec_per_night_onnxruntime": per_night["onnxruntime"],
               "speedup": per_night["pytorch"] / per_night["onnxruntime"],
               "max_abs_proba_diff": max(diffs), "stage_agreement": min(agree)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    result = {
        "command": command_line("benchmarks.onnx.run", argv),
        "date": now_utc(),
        "data": {"simulated": True, "nights": len(nights), "test_nights": len(test),
                 "test_epochs": t_epochs, "hours_per_test_night":
                 round(t_epochs / len(test) / 120, 2)},
        "config": {"repeats": args.repeats,
                   "training": f"1 epoch, small preset, first {TRAIN_EPOCHS} epochs of 2 "
                               "nights (validation: 1 night)",
                   "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                   "onnxruntime": onnxruntime.__version__,
                   "onnxruntime_threads": "default (one per core)"},
        "machine": machine_info(load_average_at_end=list(os.getloadavg())),
        "rows": rows,
    }
    from hypnoscope.utils.files import write_text_atomic

    write_text_atomic(RESULTS / "onnx.json", json.dumps(result, indent=2) + "\n")
    lines = [
        "# ONNX inference: PyTorch vs onnxruntime (simulated nights)", "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}  ",
        f"Machine: {result['machine']['platform']}, {result['machine']['cpu_count']} CPUs, "
        f"load average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
        "(shared machine)  ",
        f"Data: **simulated** Sleep-EDF-layout nights; {len(test)} test nights of "
        f"{result['data']['hours_per_test_night']} h on average ({t_epochs} epochs); models "
        f"trained 1 epoch (small preset) on {TRAIN_EPOCHS} epochs of 2 nights -- the "
        "timing and the agreement of the two runtimes are measured, not accuracy.  ",
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime "
        f"{onnxruntime.__version__} (default threads); median of {args.repeats} runs per "
        "night after a warm-up; the time is `predict_proba(night)` of a loaded night "
        "(views, windows, normalisation and averaging included, EDF reading excluded).", "",
        "| model | views | window | PyTorch s/night | onnxruntime s/night | speed-up | "
        "max abs. prob. diff. | stage agreement | export s | .onnx MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {', '.join(r['views'])} | {r['seq_len']} | "
            f"{r['sec_per_night_pytorch']:.3f} | {r['sec_per_night_onnxruntime']:.3f} | "
            f"{r['speedup']:.2f}x | {r['max_abs_proba_diff']:.1e} | "
            f"{r['stage_agreement']:.4f} | {r['export_sec']:.1f} | {r['onnx_mb']:.2f} |")
    write_text_atomic(RESULTS / "onnx.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
