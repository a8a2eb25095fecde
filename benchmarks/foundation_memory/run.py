"""Peak memory of serving training windows from 10, 30 and 100 simulated nights.

Checks that the deep-learning data path keeps memory flat as nights are added: nights
come from the recording cache (:func:`hypnoscope.signal.nights.load_recording`, signals
memory-mapped), the spectrogram view from the view cache (:func:`hypnoscope.signal.views.
add_views`, memory-mapped), and :class:`hypnoscope.training.sequences.SequenceDataset` gathers each
batch from its own nights, normalising per night at gather time. For contrast, the
``concat`` mode measures the previous design, which copied every night into one big
in-memory array.

Steps (each measurement in a fresh process, so its peak is its own):

1. simulate 50 subjects x 2 nights (Sleep-EDF layout, 100 Hz EEG Fpz-Cz, EEG Pz-Oz, EOG,
   EMG envelope) into ``WORKDIR/data`` (skipped when present);
2. build the recording and view caches once (``prepare``);
3. for N in 10, 30, 100: load N nights from the caches, add the ``spec`` view, build a
   many-to-many ``SequenceDataset`` over ``raw`` + ``spec`` (seq_len 20, stride 10,
   per-night z-score) and gather one full pass of shuffled batches of 32 windows.

Reported: peak resident memory (``VmHWM``; it counts memory-mapped file pages that were
touched, which the kernel can drop), peak anonymous memory (``RssAnon`` sampled every
20 ms: memory the process really owns), windows, batches per second, and the bytes all
nights' arrays would take in RAM. Results: ``benchmarks/results/foundation_memory.md`` and
``.json``. Usage::

    nice -n 10 python -m benchmarks.foundation_memory.run [--workdir DIR] [--nights 10 30 100]

Each measurement runs this file as a script in a fresh process (``--worker``), which
imports nothing of the harness (:mod:`benchmarks.common` is imported by :func:`main`
only), so that the measured memory is the loader's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path


def _status_kb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return float("nan")


def _files(data: Path, n: int) -> list[Path]:
    files = sorted(data.glob("*-PSG.edf"))
    if len(files) < n:
        raise SystemExit(f"{data} holds {len(files)} recordings, {n} asked")
    return files[:n]


def worker(data: Path, cache: Path, n: int, mode: str) -> dict:
    """Load ``n`` nights and gather one pass of batches; returns the measurements."""
    import numpy as np

    from hypnoscope.io.recordings import find_hypnogram
    from hypnoscope.signal.nights import load_recording
    from hypnoscope.signal.views import add_views
    from hypnoscope.training.sequences import SequenceDataset

    peak_anon = [_status_kb("RssAnon")]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak_anon.append(_status_kb("RssAnon"))
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    base_anon = _status_kb("RssAnon")
    t0 = time.perf_counter()
    nights = [load_recording(f, find_hypnogram(f), cache=cache / "recordings")
              for f in _files(data, n)]
    add_views(nights, ["spec"], cache=cache / "views")
    t_load = time.perf_counter() - t0
    nbytes = sum(int(np.prod(x.shape)) * 4 for nt in nights for x in (nt.X, nt.views["spec"]))
    if mode == "concat":  # the previous design: every night copied into one array
        big = {v: np.concatenate([np.asarray(nt.view(v), np.float32) for nt in nights])
               for v in ("raw", "spec")}
        n_windows = None
        rate = float("nan")
        del big
    else:
        ds = SequenceDataset(nights, seq_len=20, mode="many-to-many", stride=10,
                             views=["raw", "spec"], normalize="zscore")
        n_windows = len(ds)
        t1 = time.perf_counter()
        n_batches = 0
        for batch in ds.loader(32, shuffle=True, seed=0):
            assert batch["x"]["raw"].shape[1:3] == (20, nights[0].X.shape[1])
            n_batches += 1
        rate = n_batches / (time.perf_counter() - t1)
    stop.set()
    return {"nights": n, "mode": mode, "windows": n_windows,
            "batches_per_s": rate, "load_s": t_load,
            "peak_rss_mb": _status_kb("VmHWM") / 1024,
            "peak_anon_mb": max(peak_anon) / 1024,
            "anon_after_imports_mb": base_anon / 1024,
            "arrays_in_ram_would_be_mb": nbytes / 2**20}


def _run_worker(args, n: int, mode: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", str(n), "--mode", mode, "--workdir",
           str(args.workdir)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from benchmarks.common import RESULTS, ROOT, command_line, machine_info, now_utc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=ROOT / ".cache" / "foundation_memory")
    ap.add_argument("--nights", type=int, nargs="+", default=[10, 30, 100])
    ap.add_argument("--concat", type=int, nargs="*", default=[10, 30],
                    help="night counts also measured with the previous concatenating "
                         "design (default 10 30; 100 would need ~7 GB)")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="windows", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    data, cache = args.workdir / "data", args.workdir / "cache"
    if args.worker is not None:
        print(json.dumps(worker(data, cache, args.worker, args.mode)))
        return 0

    from hypnoscope.simulate import simulate_dataset

    n_max = max(args.nights)
    t0 = time.perf_counter()
    if len(list(data.glob("*-PSG.edf"))) < n_max:
        print(f"simulating {n_max} nights into {data} ...", file=sys.stderr, flush=True)
        simulate_dataset(data, n_subjects=(n_max + 1) // 2, seed=0, nights_per_subject=2)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    prep = _run_worker(args, n_max, "prepare")  # builds both caches
    t_prep = time.perf_counter() - t0
    rows = []
    for n in args.nights:
        rows.append(_run_worker(args, n, "windows"))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for n in args.concat or []:
        rows.append(_run_worker(args, n, "concat"))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    out = {"benchmark": "foundation_memory",
           "command": command_line("benchmarks.foundation_memory.run", argv,
                                   "nice -n 10 python"),
           "date": now_utc(),
           "machine": machine_info(),
           "config": {"seq_len": 20, "stride": 10, "batch_size": 32,
                      "views": ["raw", "spec"], "normalize": "zscore",
                      "nights": "simulated (hypnoscope.simulate, 50 subjects x 2 nights, "
                                "seed 0)"},
           "simulate_s": t_sim, "prepare_s": t_prep, "prepare": prep, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    from hypnoscope.utils.files import write_text_atomic

    write_text_atomic(RESULTS / "foundation_memory.json", json.dumps(out, indent=2))
    lines = ["# Peak memory of the deep-learning data path vs number of nights", "",
             "Simulated nights (they check the pipeline, not accuracy). Command: "
             f"`{out['command'].strip()}`; {out['date']}; {platform.platform()}, "
             f"{os.cpu_count()} CPUs.", "",
             "`windows`: nights memory-mapped from the recording and view caches, batches "
             "gathered per night (this design). `concat`: every night copied into one "
             "in-memory array (the previous design), measured for contrast.", "",
             "| nights | mode | windows | batches/s | peak anonymous memory (MB) | "
             "peak RSS incl. mapped pages (MB) | all arrays in RAM would be (MB) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        bps = "" if r["batches_per_s"] != r["batches_per_s"] else f"{r['batches_per_s']:.0f}"
        win = "" if r["windows"] is None else r["windows"]
        lines.append(f"| {r['nights']} | {r['mode']} | {win} | {bps} | "
                     f"{r['peak_anon_mb']:.0f} | {r['peak_rss_mb']:.0f} | "
                     f"{r['arrays_in_ram_would_be_mb']:.0f} |")
    lines += ["", "Peak RSS counts the pages of memory-mapped caches that a pass touched; "
              "the kernel reclaims them under pressure, so the anonymous peak is the "
              "memory a run needs."]
    write_text_atomic(RESULTS / "foundation_memory.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
