"""Cohort batches on a Dask cluster (``--scheduler``) and the shared batch engine:
the same outputs as a local run, a worker killed mid-run loses no recording and leaves
no half-written file, failures reported and the rest go on, reruns skip complete
outputs, summary CSV; the same engine for ``train --data`` feature extraction."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hypnoscope.cli import main
from hypnoscope.utils.batch import BatchItem, make_executor, run_batch, summary_csv_text
from test_batch import SET, leftovers, output_files, simulated_psg

distributed = pytest.importorskip("distributed")

N_NIGHTS = 4


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """Four simulated 1-h recordings with hypnograms."""
    folder = tmp_path_factory.mktemp("cohort") / "in"
    for i in range(N_NIGHTS):
        simulated_psg(folder, f"C{i}", n_epochs=120, seed=10 + i)
    return folder


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes, 1 thread and 2 GiB each."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit="2GiB", dashboard_address=None) as lc:
        with distributed.Client(lc, set_as_default=False) as client:
            yield lc, client


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as f:
        return {r["stem"]: r for r in csv.DictReader(f)}


def test_dask_cluster_stages_like_a_local_run_and_survives_a_killed_worker(
        cohort, cluster, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    lc, client = cluster
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert main(["stage", str(cohort), "--out", str(local), "--jobs", "1"]) == 0
    capsys.readouterr()

    # the cluster run, with one worker killed (SIGKILL) while it stages a recording
    pids = client.run(os.getpid)
    result: dict[str, int] = {}
    run = threading.Thread(target=lambda: result.setdefault("code", main(
        ["stage", str(cohort), "--out", str(remote), "--scheduler", lc.scheduler_address])))
    run.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline:
        busy = [w for w, tasks in client.processing().items() if tasks and w in pids]
        if busy:
            killed = busy[0]
            os.kill(pids[killed], signal.SIGKILL)
        time.sleep(0.05)
    run.join(timeout=180)
    assert not run.is_alive()
    _, err = capsys.readouterr()
    assert killed is not None, f"no worker was ever busy: {result} {err}"
    assert result["code"] == 0, err
    assert f"staging {N_NIGHTS} recording(s) on the Dask cluster" in err
    # nothing lost, nothing half-written, and the same outputs as the local run
    assert output_files(remote) == {f"C{i}": SET for i in range(N_NIGHTS)}
    assert leftovers(remote) == []
    for i in range(N_NIGHTS):
        for suffix in ("hypnogram.tsv", "hypnogram.edf"):
            name = f"C{i}.{suffix}"
            assert (remote / name).read_bytes() == (local / name).read_bytes(), name
    rows = _summary(remote)
    assert {k: r["status"] for k, r in rows.items()} == {f"C{i}": "ok"
                                                         for i in range(N_NIGHTS)}
    assert all(r["n_epochs"] == "120" and float(r["seconds"]) > 0 and r["error"] == ""
               for r in rows.values())

    # a rerun skips every complete set and stages a missing one on the cluster
    (remote / "C2.hypnogram.tsv").unlink()
    assert main(["stage", str(cohort), "--out", str(remote), "--scheduler",
                 lc.scheduler_address]) == 0
    out, err = capsys.readouterr()
    assert f"1 of {N_NIGHTS} recording(s) staged, {N_NIGHTS - 1} skipped" in out
    assert (remote / "C2.hypnogram.tsv").read_bytes() == (local / "C2.hypnogram.tsv"
                                                          ).read_bytes()
    rows = _summary(remote)
    assert rows["C2"]["status"] == "ok"
    assert [rows[f"C{i}"]["status"] for i in (0, 1, 3)] == ["skipped"] * 3


def test_a_bad_recording_fails_alone_on_the_cluster(cohort, cluster, tmp_path, capsys):
    lc, _ = cluster
    folder = tmp_path / "in"
    shutil.copytree(cohort, folder)
    (folder / "C1-PSG.edf").write_bytes(b"not an EDF file at all")
    out = tmp_path / "out"
    code = main(["stage", str(folder), "--out", str(out), "--scheduler",
                 lc.scheduler_address, "--no-plot"])
    stdout, err = capsys.readouterr()
    assert code == 1
    assert f"hypnoscope stage: error: {folder / 'C1-PSG.edf'}:" in err
    assert f"3 of {N_NIGHTS} recording(s) staged, 0 skipped (complete outputs exist), " \
           "1 failed" in stdout
    rows = _summary(out)
    assert rows["C1"]["status"] == "failed" and rows["C1"]["error"] != ""
    assert rows["C1"]["n_epochs"] == ""
    assert sorted(output_files(out)) == ["C0", "C2", "C3"]
    assert leftovers(out) == []


def test_scheduler_errors_are_one_line(tmp_path, cohort, capsys):
    code = main(["stage", str(cohort), "--out", str(tmp_path / "o"), "--scheduler",
                 "tcp://127.0.0.1:9", "--jobs", "2"])
    assert code == 2
    assert "give --jobs (local processes) or --scheduler (a Dask cluster), not both" in \
        capsys.readouterr().err


def test_feature_extraction_on_the_cluster_equals_the_local_one(cohort, cluster, tmp_path):
    from hypnoscope.signal.nights import load_psg_dir, recording_cache_file

    lc, client = cluster
    local = load_psg_dir(cohort, cache=False)
    summary = tmp_path / "summary.csv"
    remote = load_psg_dir(cohort, scheduler=client, cache=str(tmp_path / "cache"),
                          summary_csv=summary)
    assert [n.night_id for n in remote] == [n.night_id for n in local]
    for a, b in zip(local, remote, strict=True):
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.y, b.y)
        assert isinstance(b.X, np.memmap)  # read back from the cache the workers wrote
    with open(summary, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok"] * N_NIGHTS
    assert [int(r["n_epochs"]) for r in rows] == [len(n.y) for n in local]
    # a rerun resumes: complete cache entries are skipped, a lost one is made again
    lost = recording_cache_file(cohort / "C3-PSG.edf", cohort / "C3-Hypnogram.edf",
                                cache=str(tmp_path / "cache"))
    assert lost.is_file()
    lost.unlink()
    again = load_psg_dir(cohort, scheduler=client, cache=str(tmp_path / "cache"),
                         summary_csv=summary)
    with open(summary, newline="") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["skipped"] * 3 + ["ok"]
    np.testing.assert_array_equal(again[3].X, local[3].X)


def _square(x: int) -> dict:
    if x == 3:
        raise ValueError("three is bad")
    return {"status": "ok", "n_epochs": x * x}


@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_engine_rows_skips_and_failures(jobs):
    items = [BatchItem(f"r{i}", f"s{i}", {"x": i}) for i in range(5)]
    items[1].row = {"recording": "r1", "stem": "s1", "status": "skipped", "n_epochs": 7}
    seen = []
    rows = run_batch(items, _square, make_executor(jobs), on_row=seen.append)
    assert [r["status"] for r in rows] == ["ok", "skipped", "ok", "failed", "ok"]
    assert [r.get("n_epochs") for r in rows] == [0, 7, 4, None, 16]
    assert rows[3]["error"] == "ValueError: three is bad"
    assert sorted(r["stem"] for r in seen) == ["s0", "s2", "s3", "s4"]  # not the skipped
    text = summary_csv_text(rows).splitlines()
    assert text[0] == "recording,stem,status,n_epochs,seconds,error"
    assert text[2] == "r1,s1,skipped,7,,"
    assert text[4].startswith("r3,s3,failed,,") and text[4].endswith(",ValueError: three is bad")


def _die(x: int) -> dict:
    os._exit(3)  # a worker killed mid-task (as by the OOM killer)


def test_a_local_worker_that_dies_is_a_failed_row_not_an_internal_error():
    rows = run_batch([BatchItem("r0", "s0", {"x": 0})], _die, make_executor(2))
    assert rows[0]["status"] == "failed"
    assert rows[0]["error"].startswith("the worker process died while working on it "
                                       "(killed, or out of memory?): BrokenProcessPool")
