"""The one error path of the CLI: ``hypnoscope <cmd>: error: <message>``, a non-zero exit
code and no traceback (unless ``--debug``); output paths checked before any work."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from hypnoscope import Hypnogram
from hypnoscope.cli import describe_error, main
from hypnoscope.utils.files import OutputPathError, check_output_dir, check_output_file

HYP_CODES = np.array([0] * 4 + [1, 2, 2, 2, 3, 3, 2, 4, 4, 0])


@pytest.fixture
def hyp_file(tmp_path) -> Path:
    return Hypnogram(HYP_CODES).to_tsv(tmp_path / "night.tsv")


@pytest.fixture
def a_file(tmp_path) -> Path:
    """A plain file, used where a folder is needed (works as root, unlike chmod)."""
    path = tmp_path / "not-a-folder"
    path.write_text("x")
    return path


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error(err: str, cmd: str) -> str:
    """The error line of ``err``; asserts the form and that no traceback was printed."""
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith(f"hypnoscope {cmd}: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def _forbid(monkeypatch, target: str) -> None:
    """Make ``target`` (module:attribute) fail the test if it is called: the work must
    not start when an output path is bad."""
    import importlib

    mod, attr = target.split(":")

    def boom(*a, **k):
        raise AssertionError(f"{target} called although the output path is bad")

    monkeypatch.setattr(importlib.import_module(mod), attr, boom)


# ----------------------------------------------------------------- output paths
def test_stage_into_an_uncreatable_folder_fails_before_work(tmp_path, a_file, capsys,
                                                           monkeypatch):
    _forbid(monkeypatch, "hypnoscope.staging.outputs:stage_file")
    _forbid(monkeypatch, "hypnoscope.staging.batch:stage_folder")
    out = a_file / "results"
    code, _, err = _run(capsys, "stage", tmp_path / "x-PSG.edf", "--out", out)
    line = _one_error(err, "stage")
    assert code == 2
    assert line == (f"hypnoscope stage: error: --out {out}: {a_file} is a file, so no "
                    "folder can be created inside it; expected a folder")


def test_stage_out_naming_a_file(tmp_path, a_file, capsys, monkeypatch):
    _forbid(monkeypatch, "hypnoscope.staging.outputs:stage_file")
    code, _, err = _run(capsys, "stage", tmp_path / "x-PSG.edf", "--out", a_file)
    assert code == 2
    assert _one_error(err, "stage").endswith(
        f"--out {a_file} is a file; expected a folder (or a path where one can be created)")
    assert a_file.read_text() == "x"  # untouched


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs /sys (no new entries allowed)")
def test_stage_into_a_folder_that_cannot_be_written(tmp_path, capsys, monkeypatch):
    probe = Path("/sys/hypnoscope-probe")
    try:  # /sys refuses new entries even to root; anywhere that allows it, skip
        probe.mkdir()
    except OSError:
        pass
    else:  # pragma: no cover
        probe.rmdir()
        pytest.skip("/sys is writable here")
    _forbid(monkeypatch, "hypnoscope.staging.outputs:stage_file")
    code, _, err = _run(capsys, "stage", tmp_path / "x-PSG.edf", "--out", probe)
    line = _one_error(err, "stage")
    assert code == 2 and f"--out {probe}: cannot create the folder" in line


def test_compare_report_into_a_bad_path(hyp_file, a_file, tmp_path, capsys, monkeypatch):
    _forbid(monkeypatch, "hypnoscope.evaluation.metrics:compare_hypnograms")
    code, out, err = _run(capsys, "compare", hyp_file, hyp_file, "--report", a_file / "r")
    assert code == 2 and out == ""
    line = _one_error(err, "compare")
    assert f"--report {a_file / 'r.html'}: folder {a_file} is a file" in line
    # a report stem that names an existing folder: its .html/.json are fine
    monkeypatch.undo()
    code, out, err = _run(capsys, "compare", hyp_file, hyp_file, "--report", tmp_path)
    assert code == 0 and Path(f"{tmp_path}.html").is_file()


def test_stats_output_into_a_bad_path(hyp_file, a_file, tmp_path, capsys):
    code, out, err = _run(capsys, "stats", hyp_file, "-o", a_file / "s.json")
    assert code == 2 and out == ""
    assert f"-o/--output {a_file / 's.json'}: folder {a_file} is a file" in \
        _one_error(err, "stats")
    code, out, err = _run(capsys, "stats", hyp_file, "-o", tmp_path)
    assert code == 2
    assert _one_error(err, "stats").endswith(f"-o/--output {tmp_path} is a folder; "
                                             "expected a file name")
    # the folder of -o is created when missing
    code, _, _ = _run(capsys, "stats", hyp_file, "-o", tmp_path / "new" / "s.json")
    assert code == 0 and (tmp_path / "new" / "s.json").is_file()


def test_simulate_out_bad_fails_before_simulating(tmp_path, a_file, capsys, monkeypatch):
    _forbid(monkeypatch, "hypnoscope.simulate:simulate_night")
    _forbid(monkeypatch, "hypnoscope.simulate:simulate_dataset")
    hyp = Hypnogram(HYP_CODES).to_edf(tmp_path / "X-Hypnogram.edf")
    code, _, err = _run(capsys, "simulate", "--hypnogram", hyp, "--out", a_file)
    assert code == 2 and f"--out {a_file} is a file" in _one_error(err, "simulate")
    code, _, err = _run(capsys, "simulate", "--n-subjects", 2, "--out", a_file / "sub")
    assert code == 2 and f"--out {a_file / 'sub'}: {a_file} is a file" in \
        _one_error(err, "simulate")


def test_train_checks_out_before_loading_or_training(tmp_path, a_file, capsys, monkeypatch):
    _forbid(monkeypatch, "hypnoscope.cli.train:_load_nights")
    for name in ("rf", "ssnet"):
        code, _, err = _run(capsys, "train", "--model", name, "--features",
                            tmp_path / "absent", "--out", a_file / "m.joblib")
        assert code == 2
        assert f"--out {a_file / 'm.joblib'}: folder {a_file} is a file" in \
            _one_error(err, "train")
    code, _, err = _run(capsys, "train", "--model", "rf", "--features", tmp_path,
                        "--out", tmp_path)
    assert code == 2 and f"--out {tmp_path} is a folder; expected a file name" in \
        _one_error(err, "train")
    # a sequence model's checkpoint folder is checked too
    code, _, err = _run(capsys, "train", "--model", "ssnet", "--features", tmp_path,
                        "--out", tmp_path / "m.joblib", "--checkpoint-dir", a_file)
    assert code == 2 and f"--checkpoint-dir {a_file} is a file" in _one_error(err, "train")
    assert not (tmp_path / "m.joblib").exists()


def test_check_output_helpers_create_nothing_unless_asked(tmp_path, a_file):
    deep = tmp_path / "a" / "b" / "c"
    assert check_output_dir(deep, create=False) == deep and not (tmp_path / "a").exists()
    assert check_output_file(deep / "f.json") == deep / "f.json"
    assert not (tmp_path / "a").exists()
    assert check_output_dir(deep) == deep and deep.is_dir()  # create=True makes it
    assert list(deep.iterdir()) == []  # the write probe leaves nothing
    with pytest.raises(OutputPathError, match="names no file"):
        check_output_file(tmp_path / "absent" / "..")
    with pytest.raises(OutputPathError, match=f"{a_file} is a file"):
        check_output_dir(a_file / "x" / "y", "--out")


# --------------------------------------------------------------- error messages
def test_disk_full_names_the_path(hyp_file, tmp_path, capsys, monkeypatch):
    import hypnoscope.utils.files

    target = tmp_path / "s.json"

    def full(path, obj, indent=2):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(hypnoscope.utils.files, "write_json_atomic", full)
    code, _, err = _run(capsys, "stats", hyp_file, "-o", target)
    assert code == 2
    assert _one_error(err, "stats") == (f"hypnoscope stats: error: {target}: no space left "
                                        "on the device; free some space or write elsewhere")


@pytest.mark.parametrize(("exc", "message"), [
    (PermissionError(errno.EACCES, "Permission denied", "/data/x.tsv"),
     "/data/x.tsv: permission denied"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/data/out"),
     "/data/out: is a folder; expected a file"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/data/f/x"),
     "/data/f/x: a part of this path is a file; expected a folder"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x"),
     "/mnt/ro/x: read-only file system; expected a writable location"),
    (FileNotFoundError("recording not found: a.edf"), "recording not found: a.edf"),
    (ValueError("night.tsv, row 3, column 'stage': unknown label 'XYZ'"),
     "night.tsv, row 3, column 'stage': unknown label 'XYZ'"),
])
def test_describe_error_input_errors(exc, message):
    assert describe_error(exc) == (message, False)


def test_describe_error_calls_a_bug_an_internal_error():
    msg, internal = describe_error(KeyError("n_epochs"))
    assert internal and msg.startswith("internal error: KeyError: 'n_epochs'")
    assert "--debug" in msg


def test_internal_error_says_so_and_debug_shows_the_traceback(hyp_file, capsys, monkeypatch):
    import hypnoscope.evaluation.sleepstats

    def bug(*a, **k):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")

    monkeypatch.setattr(hypnoscope.evaluation.sleepstats, "sleep_statistics", bug)
    code, _, err = _run(capsys, "stats", hyp_file)
    line = _one_error(err, "stats")
    assert code == 3
    assert line.startswith("hypnoscope stats: error: internal error: TypeError: unsupported")
    assert "rerun with --debug" in line
    for argv in (["--debug", "stats", hyp_file], ["stats", hyp_file, "--debug"]):
        code, _, err = _run(capsys, *argv)
        assert code == 3 and "Traceback (most recent call last)" in err
        assert err.rstrip().splitlines()[-1] == line  # the same one-line message ends it


def test_verbose_is_logging_only(hyp_file, a_file, capsys):
    code, _, err = _run(capsys, "-v", "stats", hyp_file, "-o", a_file / "s.json")
    assert code == 2 and "Traceback" not in err


def test_debug_is_off_by_default_and_in_every_command_help(capsys):
    from hypnoscope.cli import build_parser

    args = build_parser().parse_args(["stats", "x.tsv"])
    assert args.debug is False
    assert build_parser().parse_args(["--debug", "stats", "x.tsv"]).debug is True
    assert build_parser().parse_args(["stats", "x.tsv", "--debug"]).debug is True
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--debug" in capsys.readouterr().out


# ---------------------------------------------------------------------- --strict
def test_stats_strict_fails_on_a_warning(hyp_file, tmp_path, capsys):
    argv = ["stats", hyp_file, "--lights-on", "99999", "-o", tmp_path / "s.json"]
    assert _run(capsys, *argv)[0] == 0  # a warning only
    (tmp_path / "s.json").unlink()
    code, out, err = _run(capsys, *argv, "--strict")
    line = _one_error(err, "stats")
    assert code == 2 and out == ""
    assert line.startswith(f"hypnoscope stats: error: {hyp_file}: 1 warning(s) in strict "
                           f"mode: {hyp_file}: lights_on (99999 s) lies outside")
    assert not (tmp_path / "s.json").exists()


def test_compare_strict_fails_on_epochs_not_compared(hyp_file, tmp_path, capsys):
    ref = Hypnogram(np.concatenate([HYP_CODES, [2, 2, 0]])).to_tsv(tmp_path / "ref.tsv")
    code, out, _ = _run(capsys, "compare", hyp_file, ref)
    assert code == 0 and "14 epochs compared" in out
    code, out, err = _run(capsys, "compare", hyp_file, ref, "--strict", "--report",
                          tmp_path / "r")
    assert code == 2 and out == ""
    assert _one_error(err, "compare") == (
        f"hypnoscope compare: error: {hyp_file} vs {ref}: 1 warning(s) in strict mode: "
        f"{ref}: 3 scored epoch(s) lie outside the 0-420 s that both hypnograms cover and "
        "are not compared")
    assert not list(tmp_path.glob("r.*"))
    assert _run(capsys, "compare", hyp_file, hyp_file, "--strict")[0] == 0


def test_train_strict_refuses_nights_with_reader_warnings(tmp_path, capsys, monkeypatch):
    from test_batch import simulated_psg

    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    simulated_psg(data, "SC4001E0", seed=1)
    volts = simulated_psg(data, "SC4011E0", seed=2, volts_as_uv=True)
    _forbid(monkeypatch, "hypnoscope.models:make_model")  # refused before training
    code, _, err = _run(capsys, "train", "--model", "rf", "--data", data, "--out",
                        tmp_path / "m.joblib", "--strict")
    line = _one_error(err, "train")
    assert code == 2
    assert line.startswith(f"hypnoscope train: error: training data {data}: ")
    assert "warning(s) in strict mode" in line and str(volts) in line
    assert "V under a 'µV' header" in line
    assert not (tmp_path / "m.joblib").exists()


def test_key_value_options_are_read_as_json_or_kept_as_strings():
    from hypnoscope.utils.runtime import parse_options

    assert parse_options(['context={"night_stats": true}', "epochs=3", "preset=paper",
                          " k = [1, 2]"]) == {"context": {"night_stats": True}, "epochs": 3,
                                              "preset": "paper", "k": [1, 2]}
    assert parse_options([]) == {}
    for bad in ("night_stats", "=3"):
        with pytest.raises(ValueError, match=f"option '{bad}': expected KEY=VALUE"):
            parse_options([bad])


def test_stage_lights_on_before_lights_off_on_the_clock(make_psg_edf, tmp_path, capsys):
    """The recording runs 22:30 to 22:40; lights-on 22:32 only fits as the next day, a
    day beyond the recording: one error naming both times and the swap, nothing written.
    The swapped pair stages."""
    import json

    psg = make_psg_edf("x-PSG.edf", duration_sec=600.0)
    code, out, err = _run(capsys, "stage", psg, "--out", tmp_path / "o", "--no-plot",
                          "--lights-off", "22:35", "--lights-on", "22:32")
    line = _one_error(err, "stage")
    assert code == 1 and not list((tmp_path / "o").iterdir())
    assert line == (
        f"hypnoscope stage: error: {psg}: lights-on 22:32:00 is before lights-off 22:35:00 on "
        "the clock, and taken on the next day it lies beyond the recording's end and makes "
        "a span of 23.9 h (recording 2020-01-01 22:30:00 to 2020-01-01 22:40:00, 0.2 h); "
        "probably meant lights-off 22:32:00 and lights-on 22:35:00 (the two swapped)")
    code, _, err = _run(capsys, "stage", psg, "--out", tmp_path / "p", "--no-plot",
                        "--lights-off", "22:32", "--lights-on", "22:35")
    assert code == 0 and "error" not in err
    got = json.loads((tmp_path / "p" / "x.report.json").read_text())["span"]
    assert (got["lights_off_sec"], got["lights_on_sec"]) == (120.0, 300.0)
