"""The Python API of batch staging (:func:`hypnoscope.staging.stage_folder`): a folder
of recordings staged into output sets, a rerun that resumes, a bad file reported at the
end while the others are staged."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import write_psg_edf
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.staging import stage, stage_folder
from hypnoscope.staging.inputs import expand_inputs, output_stems, pair_references
from hypnoscope.staging.outputs import OUTPUT_SUFFIXES

NO_PNG = sorted(v for k, v in OUTPUT_SUFFIXES.items() if k != "png")


@pytest.fixture
def folder(tmp_path):
    """Two short recordings and a corrupt one, as a Sleep-EDF style folder."""
    d = tmp_path / "psg"
    d.mkdir()
    write_psg_edf(d / "SC4001E0-PSG.edf", duration_sec=300.0, seed=1)
    write_psg_edf(d / "SC4002E0-PSG.edf", duration_sec=330.0, seed=2)
    (d / "SC4003E0-PSG.edf").write_bytes(b"not an EDF file at all")
    return d


def _files(out, stem):
    return sorted(p.name[len(stem) + 1:] for p in out.glob(f"{stem}.*"))


def test_stage_folder_stages_reports_the_bad_file_and_resumes(folder, tmp_path):
    out = tmp_path / "out"
    notes, reported = [], []
    rows = stage_folder(folder, out, plot=False, note=notes.append, on_row=reported.append)

    assert [r["stem"] for r in rows] == ["SC4001E0", "SC4002E0", "SC4003E0"]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert "SC4003E0-PSG.edf" in rows[2]["recording"] and rows[2]["error"]
    assert [r["stem"] for r in reported] == ["SC4001E0", "SC4002E0", "SC4003E0"]
    assert [r["n_epochs"] for r in rows[:2]] == [10, 11]
    # the outputs are those of staging each recording alone
    for r, name in zip(rows[:2], ["SC4001E0-PSG.edf", "SC4002E0-PSG.edf"], strict=True):
        assert _files(out, r["stem"]) == NO_PNG
        written = read_hypnogram(r["outputs"]["tsv"])
        np.testing.assert_array_equal(written.codes, stage(folder / name).codes)
    assert _files(out, "SC4003E0") == []  # nothing of the failed recording
    summary = json.loads((out / "summary.json").read_text())
    assert [s["status"] for s in summary] == ["ok", "ok", "failed"]
    with open(out / "summary.csv", newline="") as fh:
        assert [s["status"] for s in csv.DictReader(fh)] == ["ok", "ok", "failed"]

    # a second call skips the complete sets (files untouched) and tries the bad one again
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("SC400*")}
    notes.clear()
    again = stage_folder(folder, out, plot=False, note=notes.append)
    assert [r["status"] for r in again] == ["skipped", "skipped", "failed"]
    assert [r["n_epochs"] for r in again[:2]] == [10, 11]
    assert [r["tst_min"] for r in again[:2]] == [r["tst_min"] for r in rows[:2]]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("SC400*")} == before
    assert any(n.startswith("skipping 2 recording(s) whose complete output set exists")
               for n in notes)

    # without resume they are staged again; other options restage them too
    assert [r["status"] for r in stage_folder(folder, out, plot=False, resume=False)] == [
        "ok", "ok", "failed"]
    notes.clear()
    redo = stage_folder([folder / "SC4001E0-PSG.edf"], out, plot=False, crop="off",
                        note=notes.append)
    assert [r["status"] for r in redo] == ["ok"]
    assert any("staging again: the earlier outputs were made otherwise (crop)" in n
               for n in notes)


def test_stage_folder_with_a_plot_and_references(folder, tmp_path):
    """A reference per recording adds agreement; the PNG is part of a complete set."""
    from hypnoscope import Hypnogram

    good = [folder / "SC4001E0-PSG.edf"]
    ref = tmp_path / "ref.tsv"
    Hypnogram(np.full(10, 2)).to_tsv(ref)
    out = tmp_path / "out"
    (row,) = stage_folder(good, out, reference=[ref])
    assert row["status"] == "ok" and 0.0 <= row["accuracy"] <= 1.0
    assert _files(out, "SC4001E0") == sorted(OUTPUT_SUFFIXES.values())
    assert not (out / "summary.json").exists()  # one recording: no batch summary
    (again,) = stage_folder(good, out, reference=[ref])
    assert again["status"] == "skipped" and again["accuracy"] == row["accuracy"]


def test_stage_folder_checks_before_any_work(folder, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="got 2 file"):
        stage_folder(folder, out, reference=[folder / "a.tsv", folder / "b.tsv"])
    with pytest.raises(ValueError, match="not both"):
        stage_folder(folder, out, jobs=2, scheduler="tcp://localhost:1")
    with pytest.raises(ValueError, match="no recording matches"):
        stage_folder(str(tmp_path / "nothing*.edf"), out)
    assert not any(out.glob("*.tsv"))


def test_inputs_and_names(folder, tmp_path):
    psgs = expand_inputs([folder, str(folder / "SC4001*")])
    assert [p.name for p in psgs] == ["SC4001E0-PSG.edf", "SC4002E0-PSG.edf",
                                      "SC4003E0-PSG.edf"]  # de-duplicated
    assert pair_references(psgs, None) == [None, None, None]
    other = tmp_path / "b"
    other.mkdir()
    twin = write_psg_edf(other / "SC4001E0-PSG.edf")
    assert output_stems([psgs[0], twin]) == ["psg_SC4001E0", "b_SC4001E0"]
