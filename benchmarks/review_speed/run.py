"""How fast ``hypnoscope review`` opens and pages a 24-hour recording (SIMULATED signals).

Usage::

    nice -n 10 python -m benchmarks.review_speed.run [--pages 50] [--workdir DIR]

A 24-h recording is simulated with :func:`hypnoscope.simulate.simulate_night` (the
``aasm`` montage: F4-M1, C4-M1, O2-M1, E1-M2, E2-M2, Chin1-Chin2 at 256 Hz; wake, a
night of sleep from :func:`hypnoscope.simulate.sample_hypnogram`, wake again) and written
as EDF (once; reused from ``--workdir``). Then, each in a fresh Python process:

1. ``stage``: :meth:`hypnoscope.review.session.ReviewSession.open` of the recording file,
   which stages it (``hypnoscope stage``'s output set) and opens it;
2. ``open``: ``ReviewSession.open`` of that output folder (what a reopening costs; then
   once more in the same process, without the first use's imports), and
   ``--pages`` requests ``GET /api/page/{epoch}`` of random epochs through the app
   (FastAPI's TestClient: routing, the security guard, reading, filtering with each
   channel's default band-pass, min/max decimation and the JSON encoding, i.e. all but the
   network), the first one timed apart; then the same epochs with other filters
   (``filters`` of the request: designs made on first use); then 20 corrections
   (``POST /api/score``, each saving the reviewed scoring in three formats and the state)
   and 5 undos.

Results: ``benchmarks/results/review_speed.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

NAME = "review_speed"
HOURS = 24.0
SFREQ = 256.0
STEM = "REVIEW24H"


def simulate(workdir: Path) -> Path:
    """The simulated 24-h recording in ``workdir`` (written once)."""
    import numpy as np

    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.simulate import sample_hypnogram, simulate_night, write_sleepedf_pair

    psg = workdir / f"{STEM}-PSG.edf"
    if psg.is_file():
        return psg
    night = sample_hypnogram(seed=7, duration_h=9.0)
    n = int(HOURS * 120)
    before = 12 * 120  # 12 h of wake first: the night starts at about 10:30 pm
    codes = np.zeros(n, dtype=int)
    codes[before:before + night.n_epochs] = night.codes[: n - before]
    raw = simulate_night(Hypnogram(codes), seed=7, mode="telemetry", montage="aasm",
                         sfreq=SFREQ)
    psg, _ = write_sleepedf_pair(raw, None, workdir, STEM)
    return psg


def _stats(times: list[float]) -> dict[str, float]:
    import numpy as np

    t = np.asarray(times) * 1000
    return {"n": len(t), "mean_ms": float(t.mean()), "median_ms": float(np.median(t)),
            "p95_ms": float(np.percentile(t, 95)), "max_ms": float(t.max())}


def worker(kind: str, path: Path, pages: int) -> dict:
    """One measurement in this (fresh) process."""
    t0 = time.perf_counter()
    from fastapi.testclient import TestClient

    from hypnoscope.review.app import create_app
    from hypnoscope.review.session import ReviewSession

    out: dict = {"import_sec": time.perf_counter() - t0}
    t0 = time.perf_counter()
    session = ReviewSession.open(path, out=path.parent / "review" if kind == "stage" else None)
    out["open_sec"] = time.perf_counter() - t0
    out["n_epochs"] = session.auto.n_epochs
    out["channels"] = [f"{c.name} ({c.role}, {c.sfreq:g} Hz)" for c in session.channels]
    if kind == "stage":
        return out
    t0 = time.perf_counter()
    ReviewSession.open(path).close()  # again, its imports made
    out["open_again_sec"] = time.perf_counter() - t0
    import numpy as np

    client = TestClient(create_app(session, "t", port=1), base_url="http://127.0.0.1:1",
                        headers={"X-Review-Token": "t"})
    epochs = np.random.default_rng(0).integers(0, session.auto.n_epochs, pages + 1).tolist()

    def get(epoch: int, **params) -> float:
        t = time.perf_counter()
        r = client.get(f"/api/page/{epoch}", params=params)
        r.raise_for_status()
        return time.perf_counter() - t

    t0 = time.perf_counter()
    client.get("/api/night").raise_for_status()
    out["night_sec"] = time.perf_counter() - t0
    out["first_page_sec"] = get(epochs[0])
    out["pages"] = _stats([get(e) for e in epochs[1:]])
    out["pages_n3"] = _stats([get(e, n=3) for e in epochs[1:11]])
    bands = [[1.0, 20.0], [0.5, 30.0], [None, 10.0], [5.0, None]]
    out["pages_other_filters"] = _stats([
        get(e, filters=json.dumps({c.name: bands[i % len(bands)] for c in session.channels}))
        for i, e in enumerate(epochs[1:11])])
    out["page_points"] = len(client.get(f"/api/page/{epochs[0]}").json()["channels"][0]["data"])

    def post(path: str, **body) -> float:
        t = time.perf_counter()
        client.post(path, json=body).raise_for_status()
        return time.perf_counter() - t

    out["scores"] = _stats([post("/api/score", epoch=e, stage="N2", scorer="Benchmark")
                            for e in epochs[1:21]])
    out["undos"] = _stats([post("/api/undo") for _ in range(5)])
    session.close()
    return out


def _run(kind: str, path: Path, pages: int) -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.review_speed.run", "--worker",
                           kind, str(path), "--pages", str(pages)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(res: dict) -> str:
    """The results as Markdown."""
    s, o = res["stage"], res["open"]

    def row(name: str, st: dict) -> str:
        return (f"| {name} | {st['n']} | {st['mean_ms']:.1f} | {st['median_ms']:.1f} | "
                f"{st['p95_ms']:.1f} | {st['max_ms']:.1f} |")

    return "\n".join([
        "# Review speed: a 24-h recording in hypnoscope review", "",
        f"Command: `{res['command']}`  ", f"Date: {res['date']}  ",
        f"Machine: {res['machine']} (shared; load average at the end: {res['load']})", "",
        f"SIMULATED recording: {res['recording']['hours']:g} h, {o['n_epochs']} epochs, "
        f"EDF of {res['recording']['size_mb']:.0f} MB, channels "
        f"{', '.join(o['channels'])}. Each step in a fresh Python process.", "",
        "| step | seconds |", "|---|---:|",
        f"| stage the recording and open it (`hypnoscope review REC.edf`) | "
        f"{s['open_sec']:.2f} |",
        f"| reopen the staged folder (`hypnoscope review FOLDER`; MNE, pandas and the "
        f"filter designs imported on first use) | {o['open_sec']:.2f} |",
        f"| open it again in the same process | {o['open_again_sec']:.2f} |",
        f"| imports (FastAPI app and session) | {o['import_sec']:.2f} |",
        f"| `GET /api/night` (the whole night, queue, hypnodensity) | {o['night_sec']:.3f} |",
        f"| first `GET /api/page` after opening | {o['first_page_sec']:.3f} |", "",
        f"Requests (`GET /api/page/{{epoch}}` of random epochs, {o['page_points']} "
        "points per channel; corrections of random epochs; TestClient: everything but the "
        "network):", "",
        "| request | n | mean ms | median ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
        row("1 epoch, default filters", o["pages"]),
        row("3 epochs, default filters", o["pages_n3"]),
        row("1 epoch, other filters (designed on first use)", o["pages_other_filters"]),
        row("`POST /api/score` (saves TSV, EDF+, NSRR XML and the state)", o["scores"]),
        row("`POST /api/undo` (saves them too)", o["undos"]),
        "", "Target (issue #28): a 24-h recording opens and pages in well under a second "
        f"per page: {'met' if o['pages']['max_ms'] < 1000 else 'NOT met'} (max "
        f"{o['pages']['max_ms']:.0f} ms over {o['pages']['n']} pages).", ""])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--worker``, one measurement)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=50)
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the simulated recording is kept (default: a temporary folder)")
    p.add_argument("--worker", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]), args.pages)))
        return 0
    import os
    import shutil
    import tempfile

    from benchmarks.common import result_header, write_results

    header = result_header(NAME, __spec__.name, argv, prefix="nice -n 10 python")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="review_speed."))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        psg = simulate(workdir)
        size_mb = psg.stat().st_size / 1e6
        shutil.rmtree(workdir / "review", ignore_errors=True)
        stage = _run("stage", psg, args.pages)
        opened = _run("open", workdir / "review", args.pages)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    res = {**header, "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
           "recording": {"simulated": True, "hours": HOURS, "sfreq": SFREQ,
                         "montage": "aasm", "size_mb": size_mb},
           "stage": stage, "open": opened}
    write_results(NAME, res, markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
