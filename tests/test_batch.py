"""Safe batches of ``hypnoscope stage``: distinct output names, all-or-nothing output
sets (also under SIGINT, with a real interrupted batch), reruns that skip complete sets,
``--strict``, and the summary counts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hypnoscope import Hypnogram
from hypnoscope.cli import main
from hypnoscope.staging.inputs import output_stems
from hypnoscope.staging.outputs import OUTPUT_SUFFIXES, stage_file
from hypnoscope.utils.files import PARTIAL_PREFIX, output_set, remove_stale_partials

#: A short night pattern (W N1 N2 N3 N2 R), repeated to the length asked for.
PATTERN = np.array([0] * 4 + [1] * 2 + [2] * 8 + [3] * 6 + [2] * 4 + [4] * 6)
SET = sorted(OUTPUT_SUFFIXES.values())


def simulated_psg(folder: Path, record_id: str, n_epochs: int = 40, seed: int = 0,
                  volts_as_uv: bool = False) -> Path:
    """Write a small simulated Sleep-EDF pair. ``volts_as_uv``: the EEG/EOG/EMG values
    in volts under a µV header (the PSG only, at full resolution)."""
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    raw = simulate_night(Hypnogram(np.resize(PATTERN, n_epochs)), seed=seed)
    psg, _ = write_sleepedf_pair(raw, None, folder, record_id)
    if volts_as_uv:
        import edfio

        signals = []
        for ch, kind in zip(raw.ch_names, raw.get_channel_types(), strict=True):
            if kind in ("eeg", "eog", "emg"):
                x = raw.get_data(picks=[ch])[0]  # volts, written as if they were µV
                lim = float(np.abs(x).max() * 1.5)
                signals.append(edfio.EdfSignal(x, sampling_frequency=raw.info["sfreq"],
                                               label=ch, physical_dimension="uV",
                                               physical_range=(-lim, lim)))
        edfio.Edf(signals, starttime=raw.info["meas_date"].time().replace(tzinfo=None),
                  recording=edfio.Recording(startdate=raw.info["meas_date"].date())
                  ).write(psg)
    return psg


def output_files(out: Path) -> dict[str, list[str]]:
    """Output stem -> sorted suffixes of its files in ``out`` (summary.json left out)."""
    sets: dict[str, list[str]] = {}
    for f in out.iterdir():
        for suffix in OUTPUT_SUFFIXES.values():
            if f.name.endswith("." + suffix):
                sets.setdefault(f.name[: -len(suffix) - 1], []).append(suffix)
    return {k: sorted(v) for k, v in sets.items()}


def leftovers(out: Path) -> list[str]:
    """Temporary files or folders anywhere under ``out``."""
    return [str(p) for p in out.rglob("*") if ".part" in p.name
            or p.name.startswith(PARTIAL_PREFIX) or ".hypnoscope-write-test" in p.name]


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -------------------------------------------------------------------- names
def test_output_stems_rule(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert output_stems([a / "S-PSG.edf", b / "S-PSG.edf", a / "S.edf"]) == \
        ["a_S", "b_S", "a_S-2"]
    # unique stems are kept; equal stems are compared ignoring case
    assert output_stems([a / "X-PSG.edf", a / "Y.edf"]) == ["X", "Y"]
    assert output_stems([a / "n1.edf", b / "N1-PSG.edf"]) == ["a_n1", "b_N1"]
    # same folder name in different places, and a stem equal to a new name
    assert output_stems([tmp_path / "x" / "a" / "S.edf", tmp_path / "y" / "a" / "S.edf",
                         a / "a_S.edf"]) == ["a_S", "a_S-2", "a_S-3"]
    # folder names are made safe for file names
    assert output_stems([tmp_path / "site 1" / "S.edf", tmp_path / "site#2" / "S.edf"]) \
        == ["site_1_S", "site_2_S"]


def test_batch_with_equal_stems_writes_distinct_sets(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    inputs = [simulated_psg(a, "S", seed=1), simulated_psg(b, "S", seed=2)]
    third = simulated_psg(tmp_path / "c", "S", seed=3)
    inputs.append(Path(shutil.move(third, a / "S.edf")))
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, "stage", *inputs, "--out", out, "--no-plot")
    assert code == 0
    assert (f"{inputs[0]} -> a_S.*, {inputs[1]} -> b_S.*, {inputs[2]} -> a_S-2.*"
            in err)  # announced before staging
    assert "3 of 3 recording(s) staged, 0 skipped" in stdout
    no_png = sorted(s for s in SET if s != "hypnogram.png")
    assert output_files(out) == {"a_S": no_png, "b_S": no_png, "a_S-2": no_png}
    # each set holds its own recording
    for stem, psg in zip(["a_S", "b_S", "a_S-2"], inputs, strict=True):
        rec = json.loads((out / f"{stem}.report.json").read_text())["recording"]
        assert rec["source"] == str(psg)
        assert rec["staging_options"]["psg"] == str(psg.resolve())
    rows = json.loads((out / "summary.json").read_text())
    assert [r["stem"] for r in rows] == ["a_S", "b_S", "a_S-2"]
    # the summary table shows paths when file names repeat, and the output names
    table = [ln.split()[:3] for ln in stdout.splitlines() if ln.startswith(str(tmp_path))]
    assert table == [[str(inputs[0]), "a_S", "ok"], [str(inputs[1]), "b_S", "ok"],
                     [str(inputs[2]), "a_S-2", "ok"]]


# ------------------------------------------------------------ all or nothing
def test_output_set_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk gone"), output_set(out, "S") as tmp:
        (tmp / "S.hypnogram.tsv").write_text("a")
        assert not (out / "S.hypnogram.tsv").exists()  # nothing visible while writing
        raise RuntimeError("disk gone")
    assert list(out.iterdir()) == []
    (out / "S.hypnogram.png").write_text("old figure")
    (out / "S.hypnogram.tsv").write_text("old")
    with output_set(out, "S", replaces=["S.hypnogram.tsv", "S.hypnogram.png"]) as tmp:
        (tmp / "S.hypnogram.tsv").write_text("new")
        (tmp / "S.report.json").write_text("{}")
    # the new set replaced the old one, and the old set's PNG (not in the new) went
    assert sorted(p.name for p in out.iterdir()) == ["S.hypnogram.tsv", "S.report.json"]
    assert (out / "S.hypnogram.tsv").read_text() == "new"


def test_stale_partial_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    stale = tmp_path / f"{PARTIAL_PREFIX}S.{pid}.abc123"
    live = tmp_path / f"{PARTIAL_PREFIX}T.{os.getpid()}.def456"
    for d in (stale, live):
        d.mkdir()
        (d / "S.hypnogram.tsv").write_text("x")
    assert remove_stale_partials(tmp_path) == [stale]
    assert not stale.exists() and live.exists()


def test_reference_mismatch_fails_and_leaves_nothing(tmp_path, capsys):
    good = simulated_psg(tmp_path / "in", "GOOD", seed=1)
    bad = simulated_psg(tmp_path / "in", "BAD", seed=2)
    ref_good = tmp_path / "in" / "GOOD-Hypnogram.edf"
    # a reference of another, much longer night
    ref_bad = Hypnogram(np.resize(PATTERN, 400)).to_tsv(tmp_path / "other-night.tsv")
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, "stage", good, bad, "--out", out, "--reference",
                             ref_good, ref_bad)
    assert code == 1
    assert "Traceback" not in err
    line = next(ln for ln in err.splitlines() if "BAD-PSG.edf" in ln)
    assert line.startswith(f"hypnoscope stage: error: {bad}: ")
    assert "1 of 2 recording(s) staged, 0 skipped (complete outputs exist), 1 failed" in stdout
    assert output_files(out) == {"GOOD": SET}  # no TSV/EDF of the failed night
    assert leftovers(out) == []
    rows = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in rows] == ["ok", "failed"]


def test_stage_file_interrupted_leaves_nothing(tmp_path, monkeypatch):
    import hypnoscope.staging.outputs

    psg = simulated_psg(tmp_path / "in", "N", seed=1)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(hypnoscope.staging.outputs, "_write_png", interrupted)  # the last file
    with pytest.raises(KeyboardInterrupt):
        stage_file(psg, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


# --------------------------------------------------------------------- strict
def test_strict_fails_a_recording_with_warnings_and_goes_on(tmp_path, capsys):
    clean = simulated_psg(tmp_path / "in", "CLEAN", seed=1)
    volts = simulated_psg(tmp_path / "in", "VOLTS", seed=2, volts_as_uv=True)
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, "stage", clean, volts, "--out", out)
    assert code == 0  # without --strict a warning does not fail
    rescaled = json.loads((out / "VOLTS.report.json").read_text())
    assert output_files(out) == {"CLEAN": SET, "VOLTS": SET}
    out2 = tmp_path / "out-strict"
    code, stdout, err = _run(capsys, "stage", clean, volts, "--out", out2, "--strict")
    assert code == 1 and "Traceback" not in err
    line = next(ln for ln in err.splitlines() if "VOLTS-PSG.edf" in ln)
    assert line.startswith(f"hypnoscope stage: error: {volts}: ")
    assert "warning(s) in strict mode" in line and "V under a 'µV' header" in line
    assert "1 of 2 recording(s) staged, 0 skipped (complete outputs exist), 1 failed" in stdout
    assert output_files(out2) == {"CLEAN": SET}
    assert leftovers(out2) == []
    assert rescaled["recording"]["staging_options"]["psg"] == str(volts.resolve())


# -------------------------------------------------------------------- reruns
def test_rerun_skips_complete_sets_and_restages_the_rest(tmp_path, capsys):
    folder = tmp_path / "in"
    psgs = [simulated_psg(folder, f"N{i}", seed=i) for i in range(2)]
    out = tmp_path / "out"
    assert _run(capsys, "stage", folder, "--out", out)[0] == 0
    mtimes = {f.name: f.stat().st_mtime_ns for f in out.iterdir()}
    code, stdout, err = _run(capsys, "stage", folder, "--out", out)
    assert code == 0
    assert ("skipping 2 recording(s) whose complete output set exists in "
            f"{out} (same recording and options; --force stages them again): N0, N1") in err
    assert "0 of 2 recording(s) staged, 2 skipped (complete outputs exist), 0 failed" in stdout
    # the skipped rows carry the figures of the existing outputs
    rows = {r["stem"]: r for r in json.loads((out / "summary.json").read_text())}
    first = json.loads((out / "N0.report.json").read_text())
    assert rows["N0"]["status"] == "skipped"
    assert rows["N0"]["n_epochs"] == first["hypnogram"]["n_epochs"] == 40
    assert rows["N0"]["tst_min"] == first["sleep_statistics"]["total_sleep_min"]
    assert all(f.stat().st_mtime_ns == mtimes[f.name] for f in out.iterdir()
               if f.name not in ("summary.json", "summary.csv"))
    # an incomplete set (a file lost) is staged again; the other is skipped
    (out / "N1.hypnogram.png").unlink()
    code, stdout, err = _run(capsys, "stage", folder, "--out", out)
    assert code == 0 and "1 of 2 recording(s) staged, 1 skipped" in stdout
    assert "N1-PSG.edf: staging again: the earlier output set is incomplete " \
           "(no N1.hypnogram.png)" in err
    assert output_files(out) == {"N0": SET, "N1": SET}
    # other options (here a reference) make a set out of date
    code, stdout, err = _run(capsys, "stage", psgs[0], "--out", out, "--reference",
                             folder / "N0-Hypnogram.edf")
    assert code == 0 and "1 of 1 recording(s) staged, 0 skipped" in stdout
    assert "staging again: the earlier outputs were made otherwise (reference)" in err
    assert "agreement" in json.loads((out / "N0.report.json").read_text())
    # --force stages complete sets again
    code, stdout, _ = _run(capsys, "stage", folder, "--out", out, "--force")
    assert code == 0 and "2 of 2 recording(s) staged, 0 skipped" in stdout


def test_a_set_of_another_recording_is_not_overwritten(tmp_path, capsys):
    first = simulated_psg(tmp_path / "x", "S", seed=1)
    other = simulated_psg(tmp_path / "y", "S", seed=2)
    out = tmp_path / "out"
    assert _run(capsys, "stage", first, "--out", out, "--no-plot")[0] == 0
    before = (out / "S.hypnogram.tsv").read_bytes()
    code, stdout, err = _run(capsys, "stage", other, "--out", out, "--no-plot")
    assert code == 1
    assert (f"hypnoscope stage: error: {other}: {out / 'S'}.* holds the outputs of "
            f"{first.resolve()}, not of this recording; choose another --out, or --force "
            "to replace them") in err
    assert "0 of 1 recording(s) staged, 0 skipped (complete outputs exist), 1 failed" in stdout
    assert (out / "S.hypnogram.tsv").read_bytes() == before
    code, stdout, err = _run(capsys, "stage", other, "--out", out, "--no-plot", "--force")
    assert code == 0 and f"replacing {out / 'S'}.* holds the outputs of" in err
    rec = json.loads((out / "S.report.json").read_text())["recording"]
    assert rec["staging_options"]["psg"] == str(other.resolve())


# ----------------------------------------------------- a real interrupted batch
@pytest.fixture(scope="module")
def five_nights(tmp_path_factory) -> Path:
    """Five simulated 2-h recordings (about a second of staging each)."""
    folder = tmp_path_factory.mktemp("five") / "in"
    for i in range(5):
        simulated_psg(folder, f"R{i}", n_epochs=240, seed=i)
    return folder


@pytest.mark.parametrize(("jobs", "to_group"), [(1, False), (2, True)],
                         ids=["serial-SIGINT-to-parent", "jobs2-SIGINT-to-group"])
def test_sigint_during_a_batch_leaves_only_complete_sets(five_nights, tmp_path, jobs,
                                                         to_group):
    """SIGINT as soon as the first output set appears (to the parent only, as `kill
    -INT` does, or to the whole process group, as Ctrl-C in a terminal does): every set
    present is complete, nothing temporary remains, and a rerun skips the complete sets
    and stages the rest."""
    out = tmp_path / "out"
    env = dict(os.environ, MPLBACKEND="Agg", HYPNOSCOPE_PROGRESS="0")
    cmd = [sys.executable, "-m", "hypnoscope", "stage", str(five_nights), "--out", str(out),
           "--jobs", str(jobs)]
    # SIGINT at its default in the child even when this test runs in a background job
    # (which inherits SIGINT ignored, as shells start background jobs)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not list(out.glob("*.report.json")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no output set appeared"
        time.sleep(0.01)
    if to_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "hypnoscope stage: interrupted:" in err
    sets = output_files(out)
    assert 1 <= len(sets) < 5  # the interrupt stopped the batch
    assert all(v == SET for v in sets.values()), sets  # every set present is complete
    assert leftovers(out) == []
    mtimes = {f.name: f.stat().st_mtime_ns for f in out.iterdir()}

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert (f"{5 - len(sets)} of 5 recording(s) staged, {len(sets)} skipped (complete "
            "outputs exist), 0 failed") in rerun.stdout
    assert f"skipping {len(sets)} recording(s)" in rerun.stderr
    assert output_files(out) == {f"R{i}": SET for i in range(5)}
    assert leftovers(out) == []
    for name, t in mtimes.items():  # the complete sets were not written again
        assert (out / name).stat().st_mtime_ns == t, name


# ------------------------------------------------------------- night boundaries
def test_lights_and_crop_flags_reach_staging(tmp_path, capsys):
    import datetime as dt

    psg = simulated_psg(tmp_path / "in", "L", n_epochs=40, seed=1)
    import mne

    meas = mne.io.read_raw_edf(psg, verbose="error").info["meas_date"].replace(tzinfo=None)
    off_clock = (meas + dt.timedelta(minutes=5)).strftime("%H:%M:%S")
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, "stage", psg, "--out", out, "--no-plot",
                             "--lights-off", off_clock, "--lights-on", "900", "--crop", "none")
    assert code == 0, err
    report = json.loads((out / "L.report.json").read_text())
    span = report.get("span") or report["recording"]["span"]
    assert (span["lights_off_sec"], span["lights_on_sec"], span["crop"]) == (300.0, 900.0,
                                                                             "off")
    assert report["recording"]["staging_options"]["lights_off"] == off_clock
    stages = [ln.split("\t")[2] for ln in
              (out / "L.hypnogram.tsv").read_text().splitlines()[1:]]
    assert set(stages[:10]) == {"?"} and set(stages[30:]) == {"?"}  # outside: unscored
    assert "?" not in stages[10:30]
    # other lights are other options: staged again, not skipped
    code, stdout, err = _run(capsys, "stage", psg, "--out", out, "--no-plot")
    assert code == 0 and "1 of 1 recording(s) staged" in stdout
    assert "made otherwise (crop, lights_off, lights_on)" in err


@pytest.mark.parametrize(("flag", "value", "why"), [
    ("--lights-off", "25:00", "expected seconds from the recording start or a clock time "
                              "HH:MM[:SS]"),
    ("--lights-on", "7h", "expected seconds from the recording start or a clock time "
                          "HH:MM[:SS]"),
    ("--lights-off", "-30", "expected seconds >= 0 from the recording start"),
])
def test_bad_lights_values_fail_before_work(tmp_path, capsys, monkeypatch, flag, value, why):
    import hypnoscope.staging.batch

    monkeypatch.setattr(hypnoscope.staging.batch, "stage_folder", None)  # must not be reached
    code, _, err = _run(capsys, "stage", tmp_path / "x.edf", "--out", tmp_path / "o",
                        flag, value)
    assert code == 2 and "Traceback" not in err
    assert err.strip() == f"hypnoscope stage: error: {flag} {value!r}: {why}"
    assert not (tmp_path / "o").exists()


_FAULTS = """
import json, resource, sys
import numpy as np
from hypnoscope.utils.batch import tune_worker_malloc
tuned = tune_worker_malloc() if sys.argv[1] == "tune" else False
again = tune_worker_malloc() if sys.argv[1] == "tune" else False
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):  # a 1-MB array made and dropped, as a night's chunks are
    a = np.ones(1 << 17)
    del a
print(json.dumps([tuned, again, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator")
def test_dask_worker_allocator_reuses_arrays():
    """With Dask's MALLOC_TRIM_THRESHOLD_ in the environment every 1-MB array is mapped
    and faulted in again; tune_worker_malloc (what a Dask task runs first) makes the
    allocator reuse it; without the variable it leaves the allocator alone."""
    def run(mode, **env):
        base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], env={**base, **env},
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    trimmed = {"MALLOC_TRIM_THRESHOLD_": "65536"}
    _, _, faults_dask = run("plain", **trimmed)
    tuned, again, faults_tuned = run("tune", **trimmed)
    assert tuned and again
    assert faults_dask > 200 * 200  # ~256 pages per array, every time
    assert faults_tuned < faults_dask / 20
    assert run("tune")[:2] == [False, False]  # no Dask environment: nothing to do
    assert run("tune", MALLOC_MMAP_THRESHOLD_="1048576", **trimmed)[:2] == [False, False]
