"""Live staging over LSL: latency per epoch and agreement with offline staging for
look-ahead 0, 1, 2 and 5 epochs.

Usage::

    python -m benchmarks.stream.run [--workdir DIR] [--speed 600] [--lookaheads 0 1 2 5]

**Simulated** nights (``hypnoscope.simulate``, Sleep-EDF layout, 4 subjects, ~8.5 h each,
simulated once into ``WORKDIR``). The shipped ``default`` model (lightgbm-context on band
powers) stages them three ways:

- *offline*: ``hypnoscope.stage_recording`` (zero-phase filters, ICA, whole-night and
  sleep-period z-score, centred context: the product's offline staging);
- *offline causal* with look-ahead k: ``hypnoscope.live.stream.stage_causal`` (the causal model
  of ``hypnoscope.live.stream``), on every night;
- *streamed*: the first night replayed over LSL on this machine (``ReplayOutlet``, loopback,
  ``--speed`` x real time) and staged live by ``hypnoscope.live.stream.stream_lsl``.

Reported per look-ahead: streamed == offline causal (fraction of epochs with the same
stage, largest probability difference), agreement (fraction of equal stages, Cohen's
kappa) of the causal model with offline staging, accuracy against the simulated truth
(scored epochs) for both, and per epoch: compute time (staging one epoch once its data is
in) and latency (from receiving the chunk that completed the data to the written TSV line,
queueing included at the replay speed); the delay of a stage after its epoch ended is
``k x 30 s + 3.3 s`` (filter delay) plus that latency. Results:
``benchmarks/results/stream.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, ROOT, command_line, machine_info, now_utc


def _agreement(nights: list[dict], causal: list[np.ndarray]) -> dict[str, float]:
    """Mean over nights of the causal stages' agreement (and kappa) with the offline
    staging, and the accuracy of both against the driving hypnogram."""
    from hypnoscope.evaluation.metrics import kappa

    agree, kap, acc_c, acc_o = [], [], [], []
    for n, c in zip(nights, causal, strict=True):
        m = min(len(c), len(n["offline"]))
        scored = (n["offline"][:m] >= 0)
        agree.append(np.mean(c[:m][scored] == n["offline"][:m][scored]))
        kap.append(kappa(c[:m][scored], n["offline"][:m][scored]))
        t = n["truth"][:m]
        ok = t >= 0
        acc_c.append(np.mean(c[:m][ok] == t[ok]))
        ok2 = ok & scored
        acc_o.append(np.mean(n["offline"][:m][ok2] == t[ok2]))
    return {"agreement_with_offline": float(np.mean(agree)),
            "kappa_with_offline": float(np.mean(kap)),
            "accuracy_causal": float(np.mean(acc_c)),
            "accuracy_offline": float(np.mean(acc_o))}


def _markdown(result: dict, nights: list[dict], speed: float) -> str:
    """The Markdown report of the results."""
    lines = [
        "# Live staging over LSL: latency and agreement (simulated nights)", "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}  ",
        f"Machine: {result['machine']['platform']}, {result['machine']['cpu_count']} CPUs, "
        f"load average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
        "(shared machine)  ",
        f"Data: {len(nights)} **simulated** Sleep-EDF-layout nights "
        f"({', '.join(str(len(n['truth'])) for n in nights)} epochs); model `default`; "
        f"night 1 replayed over LSL (loopback) at {speed:g}x real time and staged "
        "live; agreement and accuracy over all nights from the offline causal model "
        "(which the stream equals).  ",
        "Delay of a stage after its epoch ends: k x 30 s + 3.3 s (filter delay) + the "
        "latency below.", "",
        "| look-ahead k | streamed = offline causal | agreement with offline staging "
        "(kappa) | accuracy causal | accuracy offline | compute ms/epoch (median / p95 / "
        "max) | latency ms (median / p95) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['lookahead']} | {r['streamed_equals_offline_causal']:.3f} "
            f"({r['streamed_epochs']} epochs, max prob. diff. "
            f"{r['max_proba_diff_streamed']:.0e}) | {r['agreement_with_offline']:.3f} "
            f"({r['kappa_with_offline']:.3f}) | {r['accuracy_causal']:.3f} | "
            f"{r['accuracy_offline']:.3f} | {r['compute_ms_median']:.1f} / "
            f"{r['compute_ms_p95']:.1f} / {r['compute_ms_max']:.1f} | "
            f"{r['latency_ms_median']:.1f} / {r['latency_ms_p95']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "hs-bench-stream"))
    ap.add_argument("--speed", type=float, default=600.0)
    ap.add_argument("--lookaheads", type=int, nargs="+", default=[0, 1, 2, 5])
    ap.add_argument("--subjects", type=int, default=3)
    args = ap.parse_args(argv)
    os.environ.setdefault("LSLAPICFG", str(ROOT / "src" / "hypnoscope" / "data" /
                                           "lsl_api.cfg"))

    from hypnoscope.io.hypnograms import read_hypnogram
    from hypnoscope.live.stream import ReplayOutlet, stage_causal, stream_lsl
    from hypnoscope.simulate.files import reuse_or_simulate_dataset
    from hypnoscope.staging.pipeline import stage_recording

    work = Path(args.workdir)
    data = work / "data"
    meta = reuse_or_simulate_dataset(data, n_subjects=args.subjects, seed=1)
    nights = []
    for r in meta["records"]:
        psg = data / r["psg"]
        t = time.perf_counter()
        res = stage_recording(psg)
        off_sec = time.perf_counter() - t
        truth = read_hypnogram(data / r["hypnogram"]).align_to(res.hypnogram.n_epochs,
                                                               onset_sec=0.0).codes
        nights.append({"psg": psg, "offline": res.hypnogram.codes, "truth": truth,
                       "offline_sec": off_sec})
        print(f"{r['psg']}: {len(truth)} epochs, offline staging {off_sec:.1f} s", flush=True)

    rows = []
    for k in args.lookaheads:
        causal, t_causal, ref = [], 0.0, None
        for n in nights:
            t = time.perf_counter()
            res = stage_causal(n["psg"], lookahead=k)
            t_causal += time.perf_counter() - t
            ref = res if ref is None else ref  # the first night's, to compare the stream
            causal.append(np.array([r.code for r in res]))
        # the live stream: the first night over LSL (loopback)
        name = f"hypnoscope-bench-{os.getpid()}-k{k}"
        replay = ReplayOutlet(nights[0]["psg"], name=name, speed=args.speed)
        replay.start()
        summary = stream_lsl(name, lookahead=k, idle_timeout=3.0, markers=False)
        replay.join()
        if replay.error is not None:
            raise replay.error
        live = summary.results
        live_codes = np.array([r.code for r in live])
        same = float(np.mean(live_codes == causal[0][:len(live_codes)])) if len(
            live_codes) == len(causal[0]) else 0.0
        pdiff = float(np.abs(np.array([r.proba for r in live])
                             - np.array([r.proba for r in ref])).max())
        lat = np.array([r.latency_sec for r in live])
        comp = np.array([r.extra["compute_sec"] for r in live])
        row = {"lookahead": k, "streamed_epochs": len(live),
               "streamed_equals_offline_causal": same, "max_proba_diff_streamed": pdiff,
               **_agreement(nights, causal),
               "compute_ms_median": 1000 * float(np.median(comp)),
               "compute_ms_p95": 1000 * float(np.percentile(comp, 95)),
               "compute_ms_max": 1000 * float(comp.max()),
               "latency_ms_median": 1000 * float(np.median(lat)),
               "latency_ms_p95": 1000 * float(np.percentile(lat, 95)),
               "stream_wall_sec": summary.seconds,
               "offline_causal_sec_per_night": t_causal / len(nights)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    result = {"command": command_line("benchmarks.stream.run", argv),
              "date": now_utc(),
              "data": {"simulated": True, "nights": len(nights),
                       "epochs": [int(len(n["truth"])) for n in nights]},
              "config": {"model": "default (lightgbm-context, band powers)",
                         "speed": args.speed, "lookaheads": args.lookaheads,
                         "streamed_night": str(nights[0]["psg"].name)},
              "machine": machine_info(load_average_at_end=list(os.getloadavg())),
              "rows": rows}
    from hypnoscope.utils.files import write_text_atomic

    write_text_atomic(RESULTS / "stream.json", json.dumps(result, indent=2) + "\n")
    md = _markdown(result, nights, args.speed)
    write_text_atomic(RESULTS / "stream.md", md)
    print(md, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
