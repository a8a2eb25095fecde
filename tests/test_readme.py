"""The README runs verbatim: every code block of ``README.md`` is run here, or parsed where it
cannot run (a network, a cluster, your own recordings), so that it cannot drift.

How each block is tested is in its marker (``<!-- readme-test: KIND NAME -->``); the engine
and its normalisation (durations in seconds, the session folder's path, trailing spaces) are
documented in ``docs/readme_transcripts.py``. All blocks run in README order in one fresh
folder, as a user does in the repository: the demo transcript's ``hypnoscope demo`` writes
``hypnoscope-demo/`` and the blocks after it read it. When a transcript differs, rerun
``python docs/readme_transcripts.py`` and review the README diff (never edit a transcript by
hand).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _engine():
    spec = importlib.util.spec_from_file_location("readme_transcripts",
                                                  ROOT / "docs" / "readme_transcripts.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("readme_transcripts", module)
    spec.loader.exec_module(module)
    return module


rt = _engine()
TEXT = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = rt.blocks(TEXT)
TRANSCRIPTS = [b.name for b in BLOCKS if b.kind == "transcript"]
HINT = "rerun `python docs/readme_transcripts.py` and review the README diff"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """Every block of the README that runs, run in order in one fresh folder."""
    folder = tmp_path_factory.mktemp("readme-session").resolve()
    return folder, {o.block.name: o for o in rt.run_session(TEXT, folder)}


# -- the markers, the parser of blocks, the normalisation (fast) --------------------------

def test_every_code_block_is_marked_once_with_a_unique_name():
    assert rt.unmarked_blocks(TEXT) == [], "README code blocks without a readme-test marker"
    names = [b.name for b in BLOCKS]
    assert len(names) == len(set(names)), names
    kinds = {b.kind for b in BLOCKS}
    assert kinds == {"transcript", "python", "run", "parse"}
    assert {"demo", "aasm", "headband", "bids", "shhs"} <= set(TRANSCRIPTS)
    # a transcript is a console block (the demo's is the results block of demo_output.txt)
    assert all(b.lang == "console" for b in BLOCKS if b.kind == "transcript" and b.name != "demo")
    assert all(b.why for b in BLOCKS if b.kind == "parse")


def test_an_unmarked_block_is_found():
    text = "x\n\n<!-- readme-test: run a -->\n```bash\nls\n```\n\n```bash\nls -l\n```\n"
    assert [b.name for b in rt.blocks(text)] == ["a"]
    assert rt.unmarked_blocks(text) == [9]
    with pytest.raises(ValueError, match="unknown readme-test kind 'runs'"):
        rt.blocks("<!-- readme-test: runs a -->\n```bash\nls\n```\n")


def test_transcript_steps_split_commands_from_their_output():
    steps = rt.transcript_steps("$ a --x\none\ntwo\n$ b\n$ c\nthree\n")
    assert [(s.command, s.expected) for s in steps] == [
        ("a --x", "one\ntwo\n"), ("b", ""), ("c", "three\n")]
    with pytest.raises(ValueError, match="starts with output"):
        rt.transcript_steps("one\n$ a\n")


def test_command_lines_join_continuations_and_drop_comments():
    body = "# a comment\nmake demo   # set up\nhypnoscope stage x \\\n    --out y/\n\n"
    assert rt.command_lines(body) == ["make demo", "hypnoscope stage x --out y/"]


def test_normalise_replaces_durations_and_the_folder_only():
    folder = "/tmp/readme-session-1"
    text = (f"wrote {folder}/a.edf (1.9 s)   \n  staged 841 epochs in 12 s\n"
            "Done in 3.30 s. 30-s epochs, 7.01 h, 0 skipped, kappa 0.755 s2\n\n")
    assert rt.normalise(text, folder) == (
        "wrote ./a.edf (<t> s)\n  staged 841 epochs in <t> s\n"
        "Done in <t> s. 30-s epochs, 7.01 h, 0 skipped, kappa 0.755 s2")


def test_a_changed_number_in_a_transcript_is_a_difference(tmp_path):
    block = rt.Block("transcript", "t", None, "console", "$ echo 'acc 0.818 (1.2 s)'\n"
                     "acc 0.818 (9.9 s)\n", 1, (0, 0))
    outcome = rt.run_block(block, tmp_path)
    assert rt.differences(outcome, tmp_path) == []
    block.body = block.body.replace("acc 0.818 (9", "acc 0.819 (9")
    diff = rt.differences(rt.run_block(block, tmp_path), tmp_path)
    assert len(diff) == 1 and "-acc 0.819 (<t> s)" in diff[0] and "+acc 0.818" in diff[0]


def test_rewrite_replaces_what_differs_and_keeps_what_reproduces(tmp_path):
    text = ("intro\n\n<!-- readme-test: transcript t -->\n```console\n"
            "$ echo 'took 1.5 s'\ntook 9.9 s\n$ echo new\nold\n```\nend\n")
    outcomes = rt.run_session(text, tmp_path)
    assert len(rt.differences(outcomes[0], tmp_path)) == 1  # 'old' is not 'new'
    edited = "edited intro\n" + text  # an edit made while the session ran is kept
    assert rt.rewrite(edited, outcomes, tmp_path) == edited.replace("$ echo new\nold\n",
                                                                    "$ echo new\nnew\n")
    assert "took 1.5 s\n$ echo new" in rt.rewrite(text, outcomes, tmp_path, keep=False)
    # a transcript whose commands changed meanwhile is left alone
    changed = text.replace("$ echo new", "$ echo newer")
    assert rt.rewrite(changed, outcomes, tmp_path) == changed


def test_parse_blocks_are_right():
    problems = [p for b in BLOCKS if b.kind == "parse" for p in rt.parse_problems(b)]
    assert problems == []
    checked = sum(len(rt.command_lines(b.body)) for b in BLOCKS if b.kind == "parse")
    assert checked > 25


def test_the_parse_check_catches_wrong_commands():
    body = ("hypnoscope stage x --out y --no-such-option\nhypnoscope stage x --model\n"
            "make no-such-target\npython -m benchmarks.no_such.run\npython scripts/nope.py\n"
            "torchrun --nproc-per-node 2 -m hypnoscope train --data D\nrsync a b\n"
            "hypnoscope stage x --out y\nDATA=~/x\nmake demo test\n"
            "python -m benchmarks.<name>.run\n")
    problems = rt.parse_problems(rt.Block("parse", "t", "why", "bash", body, 1, (0, 0)))
    assert len(problems) == 7, problems
    for text in ("unrecognized arguments: --no-such-option", "expected one argument",
                 "no Makefile target ['no-such-target']", "no module benchmarks.no_such.run",
                 "no file scripts/nope.py", "the following arguments are required",
                 "program 'rsync' is not checked"):
        assert any(text in p for p in problems), text


# -- hypnoscope simulate --hypnogram takes the shipped file by its bare name ---------------

def test_a_bare_shipped_name_resolves_and_a_local_file_comes_first(tmp_path, monkeypatch,
                                                                    capsys, caplog):
    from hypnoscope.cli import main
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.utils.files import shipped_data_file

    shipped = shipped_data_file("SC4001EC-Hypnogram.edf")
    assert shipped is not None and shipped.is_file()
    assert shipped.parent.name == "data" and shipped.parent.parent.name == "hypnoscope"
    assert shipped_data_file("data/SC4001EC-Hypnogram.edf") is None  # a folder part
    assert shipped_data_file("nope.edf") is None
    assert shipped_data_file("..") is None

    monkeypatch.chdir(tmp_path)
    # a file of that name here is the one read: a 10-epoch hypnogram, not the shipped 24 h
    Hypnogram(np.array([0, 0, 1, 2, 2, 3, 3, 2, 4, 0])).to_edf("SC4001EC-Hypnogram.edf")
    assert main(["simulate", "--hypnogram", "SC4001EC-Hypnogram.edf", "--out", "sim"]) == 0
    out = capsys.readouterr().out
    assert "(10 epochs, 0.08 h" in out and "shipped" not in caplog.text
    assert main(["simulate", "--hypnogram", "nope.edf", "--out", "sim2"]) == 2
    assert "hypnogram file not found: nope.edf" in capsys.readouterr().err


# -- the session: every block that runs (slow) ---------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_transcript_reproduces(session, name):
    folder, outcomes = session
    outcome = outcomes[name]
    assert outcome.steps, name
    found = rt.differences(outcome, folder)
    assert not found, f"README transcript {name!r} differs from fresh output ({HINT}):\n" + \
        "\n".join(found)


@pytest.mark.slow
def test_the_demo_transcript_is_the_recorded_one(session):
    """The README's demo block is rendered from demo_output.txt, which reproduces."""
    demo = next(b for b in BLOCKS if b.name == "demo")
    recorded = (ROOT / "benchmarks" / "results" / "demo_output.txt").read_text(encoding="utf-8")
    assert demo.body.rstrip("\n") == recorded.rstrip("\n")
    folder, _ = session
    for name in ("SC4001E0-PSG.edf", "SC4001E0-Hypnogram.edf"):
        assert (folder / "hypnoscope-demo" / "data" / name).is_file()


@pytest.mark.slow
def test_the_staging_commands_run_and_write_their_outputs(session):
    folder, outcomes = session
    outcome = outcomes["staging"]
    assert [s.command.split()[1] for s in outcome.steps] == ["info", "stage", "stage", "stage"]
    assert rt.differences(outcome, folder) == []
    info, one, again, lights = (s.output for s in outcome.steps)
    assert re.search(r"EEG Fpz-Cz\s+100\s+µV\s+eeg", info)
    assert "Duration:  25230 s (7.01 h, 841 epochs of 30 s)" in info
    assert "1 of 1 recording(s) staged" in one
    assert "0 of 1 recording(s) staged, 1 skipped" in again  # the folder: same night, done
    # every file of the README's output table, for stem S = SC4001E0
    for suffix in (".hypnogram.tsv", ".hypnogram.edf", ".report.html", ".report.json",
                   ".hypnogram.png"):
        assert (folder / "results" / f"SC4001E0{suffix}").is_file(), suffix
    # lights-off 00:30 and lights-on 07:00 on a night recorded from 00:13:30: 16.5 min in,
    # 6.5 h in bed; the 33 + 28 epochs outside are unscored
    report = json.loads((folder / "results-lights" / "SC4001E0.report.json").read_text())
    assert report["span"]["lights_off_sec"] == 990.0
    assert report["span"]["lights_on_sec"] == 990.0 + 6.5 * 3600
    assert report["sleep_statistics"]["time_in_bed_min"] == 390.0
    rows = (folder / "results-lights" / "SC4001E0.hypnogram.tsv").read_text().splitlines()
    assert sum(r.endswith("outside-span") for r in rows) == 33 + 28


@pytest.mark.slow
def test_the_python_snippet_runs_and_agrees_with_the_demo(session):
    folder, outcomes = session
    outcome = outcomes["snippet"]
    assert outcome.error is None, outcome.error
    ns = outcome.namespace
    hyp, ref, agreement = ns["hyp"], ns["ref"], ns["agreement"]
    assert hyp.n_epochs == ref.n_epochs == 841
    assert hyp.probabilities.shape == (841, 5)
    # the same night and model as the demo: the agreement the demo transcript prints
    demo = next(b for b in BLOCKS if b.name == "demo").body
    printed = re.search(r"accuracy ([\d.]+), Cohen's kappa ([\d.]+), macro-F1 ([\d.]+)", demo)
    acc, kappa, mf1 = map(float, printed.groups())
    epochs = agreement["epochs"]  # per-epoch agreement (the demo's unit)
    assert agreement["n_common_epochs"] == 841
    assert epochs["accuracy"] == pytest.approx(acc, abs=5e-4)
    assert epochs["kappa"] == pytest.approx(kappa, abs=5e-4)
    assert epochs["macro_f1"] == pytest.approx(mf1, abs=5e-4)
    from hypnoscope.io.hypnograms import read_hypnogram

    for name in ("night.tsv", "night-Hypnogram.edf"):
        np.testing.assert_array_equal(read_hypnogram(folder / name).codes, hyp.codes)


@pytest.mark.slow
def test_the_bids_block_writes_a_dataset_with_stage_events(session):
    folder, outcomes = session
    assert outcomes["bids-setup"].error is None, outcomes["bids-setup"].error
    for sub in ("01", "02"):
        events = folder / "bids" / f"sub-{sub}" / "eeg" / f"sub-{sub}_task-sleep_events.tsv"
        labels = {line.split("\t")[2] for line in events.read_text().splitlines()[1:]}
        assert labels & {"Sleep stage W", "W", "Wake"} and len(labels) >= 4, labels
