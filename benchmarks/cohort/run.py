"""Staging a cohort: wall time and memory per worker with 1 and 2 local processes and a
2-worker Dask ``LocalCluster``, and the projection to 10,000 nights.

Usage::

    python -m benchmarks.cohort.run [--nights 50] [--workdir DIR]

``--nights`` simulated Sleep-EDF-layout nights (``hypnoscope.simulate.
reuse_or_simulate_dataset``: architecture sampled from the model fitted to real
hypnograms, 8.5 h of sleep chain plus 30 min of wake, i.e. ~9-h recordings, simulated once
and reused) are staged three times, each by a fresh ``hypnoscope stage`` process with the
default model and every output (TSV, EDF+, HTML/JSON report, PNG):

- ``local-1``: ``hypnoscope stage DIR --out OUT --jobs 1``;
- ``local-2``: ``hypnoscope stage DIR --out OUT --jobs 2``;
- ``dask-2``: ``hypnoscope stage DIR --out OUT --scheduler ADDRESS`` against a
  ``distributed.LocalCluster`` of 2 worker processes with 1 thread each, started by this
  script before the clock starts (a cluster is started once and serves many batches).

Measured: wall time of the command, nights per core-hour, the per-night seconds of the
summary CSV, and the peak resident memory of each worker process (sampled every 0.2 s
over every descendant process with ``psutil``; for ``local-1`` the staging process
itself). The outputs of the three runs are compared (TSV files byte for byte). Results
go to ``benchmarks/results/cohort.md`` and ``.json`` with the command, configuration,
date, machine and load average (the machine is shared, so absolute times vary).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import RESULTS, command_line, machine_line, now_utc

TARGET_NIGHTS = 10_000


class PeakMemory:
    """Peak RSS (MB) of every descendant process of ``root_pid`` (and of itself when
    ``include_root``), sampled in a thread every ``interval`` seconds."""

    def __init__(self, root_pid: int, include_root: bool = False,
                 interval: float = 0.2) -> None:
        import psutil

        self.root = psutil.Process(root_pid)
        self.include_root, self.interval = include_root, interval
        self.peak: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = self.root.children(recursive=True)
                if self.include_root:
                    procs.append(self.root)
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    rss = p.memory_info().rss / 2**20
                    name = " ".join(p.cmdline()[:4])
                except psutil.Error:
                    continue
                if rss > self.peak.get(p.pid, ("", 0.0))[1]:
                    self.peak[p.pid] = (name, rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _stage(args_: list[str], env: dict[str, str],
           ) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run ``hypnoscope stage``; wall seconds, CPU seconds of the command and every
    process it started (``RUSAGE_CHILDREN``: waited-for descendants), the result."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hypnoscope", "stage", *args_], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def _cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _summary(out: Path) -> list[dict[str, str]]:
    with open(out / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def _worker_peaks(mem: PeakMemory, pick) -> list[float]:
    return sorted((round(rss) for name, rss in mem.peak.values() if pick(name)),
                  reverse=True)


def run_config(name: str, data: Path, out: Path, env: dict[str, str], n_nights: int,
               ) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    if name == "dask-2":
        import distributed

        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      memory_limit="3GiB", dashboard_address=None) as lc:
            client = distributed.Client(lc)
            pids = list(client.run(os.getpid).values())
            cpu0 = _cpu_seconds(pids)
            with PeakMemory(os.getpid()) as mem:
                wall, cpu, proc = _stage([str(data), "--out", str(out), "--scheduler",
                                          lc.scheduler_address], env)
            # the workers' CPU (they outlive the command) plus the client's
            pids = list(client.run(os.getpid).values())  # a restarted worker counts anew
            cpu += _cpu_seconds(pids) - cpu0
            client.close()
        peaks = _worker_peaks(mem, lambda n: "hypnoscope" not in n and "spawn_main" in n)
        workers, cores = 2, 2
    else:
        jobs = int(name.split("-")[1])
        extra = ["--no-plot"] if name.endswith("-noplot") else []
        with PeakMemory(os.getpid()) as mem:
            wall, cpu, proc = _stage([str(data), "--out", str(out), "--jobs", str(jobs),
                                      *extra], env)
        if jobs == 1:
            peaks = _worker_peaks(mem, lambda n: "hypnoscope" in n)
        else:
            peaks = _worker_peaks(mem, lambda n: "spawn_main" in n)
        workers = cores = jobs
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rows = _summary(out)
    ok = [r for r in rows if r["status"] == "ok"]
    per_night = sorted(float(r["seconds"]) for r in ok)
    core_sec_per_night = wall * cores / n_nights
    cpu_per_night = cpu / n_nights
    return {"config": name, "date": dt.datetime.now(dt.timezone.utc).isoformat(
                timespec="seconds"), "load_average_1min": round(os.getloadavg()[0], 1),
            "workers": workers, "cores": cores, "wall_sec": round(wall, 1),
            "nights": len(rows), "ok": len(ok),
            "nights_per_core_hour": round(3600 / core_sec_per_night),
            "cpu_sec_per_night": round(cpu_per_night, 2),
            "nights_per_cpu_hour": round(3600 / cpu_per_night),
            "projected_cpu_hours_10000": round(TARGET_NIGHTS * cpu_per_night / 3600, 1),
            "median_night_sec": round(per_night[len(per_night) // 2], 2),
            "worker_peak_mb": peaks[:workers],
            "projected_hours_10000_per_core": round(
                TARGET_NIGHTS * core_sec_per_night / 3600, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="where the simulated nights are kept")
    ap.add_argument("--configs", nargs="+", default=["local-1", "local-2", "dask-2"],
                    help="local-N (N processes), local-N-noplot (the same with --no-plot), "
                         "dask-2; results of other configurations already in the results "
                         "file for the same nights are kept")
    args = ap.parse_args()
    from hypnoscope.simulate import reuse_or_simulate_dataset

    work = Path(args.workdir or Path(tempfile.gettempdir()) / "hypnoscope-cohort")
    data = work / "data"
    t0 = time.perf_counter()
    sim = reuse_or_simulate_dataset(data, args.nights, seed=args.seed)
    sim_sec = time.perf_counter() - t0
    env = dict(os.environ, MPLBACKEND="Agg", HYPNOSCOPE_PROGRESS="0")
    results = []
    for name in args.configs:
        print(f"{name} ...", flush=True)
        results.append(run_config(name, data, work / f"out-{name}", env, args.nights))
        print(json.dumps(results[-1]), flush=True)
    old, merged = RESULTS / "cohort.json", False
    if old.is_file():  # keep the other configurations of an earlier run on the same nights
        prev = json.loads(old.read_text())
        if (prev.get("nights"), prev.get("seed")) == (args.nights, args.seed):
            mine = {r["config"] for r in results}
            kept = [r for r in prev["results"] if r["config"] not in mine]
            merged = bool(kept)
            results = kept + results
            args.configs = [r["config"] for r in results]
    # the same outputs everywhere
    ref = work / f"out-{args.configs[0]}"
    same = all((work / f"out-{c}" / f.name).read_bytes() == f.read_bytes()
               for c in args.configs[1:] for f in ref.glob("*.hypnogram.tsv"))
    n_epochs = sum(int(r["n_epochs"]) for r in _summary(ref))
    record = {
        "command": command_line("benchmarks.cohort.run"),
        "command_note": ("rows of other configurations from an earlier run of the same "
                         "nights (each row's date and load in cohort.json)" if merged
                         else None),
        "date": now_utc(),
        "machine": machine_line(),
        "load_average_end": [round(x, 1) for x in os.getloadavg()],
        "nights": args.nights, "seed": args.seed, "epochs_total": n_epochs,
        "hours_mean": round(n_epochs * 30 / 3600 / args.nights, 2),
        "simulation_sec": round(sim.get("simulation_seconds", sim_sec), 1),
        "outputs_identical": same, "results": results}
    from hypnoscope.utils.files import write_text_atomic

    write_text_atomic(RESULTS / "cohort.json", json.dumps(record, indent=2) + "\n")
    write_text_atomic(RESULTS / "cohort.md", render(record))
    print(render(record))


def render(rec: dict) -> str:
    lines = [
        "# Staging a cohort: local processes and a Dask cluster", "",
        f"Command: `{rec['command'].strip()}`"
        + (f" ({rec['command_note']})" if rec.get("command_note") else "") + "  ",
        f"Date: {rec['date']}  ",
        f"Machine: {rec['machine']} (load average at the end: "
        f"{', '.join(map(str, rec['load_average_end']))}; the machine is shared with a "
        "long training benchmark, so absolute times vary)", "",
        f"{rec['nights']} **simulated** Sleep-EDF-layout nights (seed {rec['seed']}, "
        f"{rec['epochs_total']} epochs, {rec['hours_mean']} h per recording on average), "
        "default model, every output (TSV, EDF+, HTML/JSON report, PNG; `-noplot`: "
        "without the PNG, `--no-plot`); each "
        "configuration is one fresh `hypnoscope stage` command. Per-night seconds from "
        "`summary.csv` (staging and writing one recording inside a worker); worker memory: "
        "peak resident set of each worker process. The Dask cluster "
        "(`distributed.LocalCluster`, 2 worker processes x 1 thread) is started before "
        "the clock (its workers then import hypnoscope inside the timed run, as the "
        "local processes do).", "",
        "| configuration | workers | wall s | median s per night (in a worker) | nights "
        "per core-hour (wall) | CPU s per night | nights per CPU-hour | worker peak MB | "
        "10,000 nights, one worker-core (h, wall / CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rec["results"]:
        lines.append(f"| {r['config']} | {r['workers']} | {r['wall_sec']} | "
                     f"{r['median_night_sec']} | {r['nights_per_core_hour']} | "
                     f"{r['cpu_sec_per_night']} | {r['nights_per_cpu_hour']} | "
                     f"{', '.join(map(str, r['worker_peak_mb']))} | "
                     f"{r['projected_hours_10000_per_core']} / "
                     f"{r['projected_cpu_hours_10000']} |")
    lines += ["", f"Outputs identical across configurations (hypnogram TSVs byte for "
              f"byte): {'yes' if rec['outputs_identical'] else 'NO'}. *CPU s per night*: "
              "user + system time of every process of the run (command, workers, imports "
              "included) over the nights; on a machine this loaded it is the cost that "
              "does not depend on how many cores the run actually got. Projection for "
              "10,000 nights on one worker-core: 10,000 x (wall s x cores / nights) / 3600 "
              "(under this load) and 10,000 x CPU s per night / 3600 (a dedicated core); "
              "divide by the number of worker cores of a cluster.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
