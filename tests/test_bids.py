"""BIDS datasets written with mne-bids: found, staged against their *_events.tsv stages,
written as a derivative dataset, and trained on."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("mne_bids")

from hypnoscope.io.bids import bids_events_file, is_bids_root, list_bids_recordings  # noqa: E402
from hypnoscope.io.hypnograms import read_hypnogram  # noqa: E402
from hypnoscope.io.recordings import find_hypnogram, sleepedf_ids  # noqa: E402


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory):
    """Two simulated 1.5-h nights as a BIDS dataset: sub-01 (EDF, no session) and
    sub-02/ses-1 (BrainVision), with their scored stages as events."""
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    from hypnoscope.simulate import sample_hypnogram, simulate_night

    base = tmp_path_factory.mktemp("bids")
    root, src = base / "ds", base / "src"
    src.mkdir()
    hyps = {}
    for i, (sub, ses, fmt) in enumerate([("01", None, "EDF"), ("02", "1", "BrainVision")]):
        hyp = sample_hypnogram(seed=i, duration_h=1.5, wake_pad_min=10)
        raw = simulate_night(hyp, seed=i, mode="telemetry", sfreq=128.0)
        f = src / f"night{i}.edf"
        mne.export.export_raw(f, raw, verbose="error")
        bp = BIDSPath(subject=sub, session=ses, task="sleep", datatype="eeg", root=root)
        write_raw_bids(mne.io.read_raw_edf(f, verbose="error"), bp, format=fmt,
                       verbose="error")
        hyps[sub] = hyp
    return root, hyps


def test_recordings_subjects_and_event_stages_are_found(bids_root):
    root, hyps = bids_root
    assert is_bids_root(root) and not is_bids_root(root / "sub-01")
    recs = list_bids_recordings(root)
    assert [r.relative_to(root).as_posix() for r in recs] == [
        "sub-01/eeg/sub-01_task-sleep_eeg.edf",
        "sub-02/ses-1/eeg/sub-02_ses-1_task-sleep_eeg.vhdr"]
    assert [sleepedf_ids(r.name)[0] for r in recs] == ["sub-01", "sub-02"]
    for rec, sub in zip(recs, ("01", "02"), strict=True):
        events = find_hypnogram(rec)
        assert events == bids_events_file(rec) and events.name.endswith("_events.tsv")
        hyp = read_hypnogram(events)
        n = min(hyp.n_epochs, hyps[sub].n_epochs)
        assert n >= hyps[sub].n_epochs - 1
        np.testing.assert_array_equal(hyp.codes[:n], hyps[sub].codes[:n])


def test_stage_bids_root_writes_a_derivative_dataset(bids_root, tmp_path, capsys):
    from hypnoscope.cli import main

    src, _ = bids_root
    root = tmp_path / "ds"
    shutil.copytree(src, root)
    # sub-02's events lose their stages: it is staged without a reference
    ev = root / "sub-02/ses-1/eeg/sub-02_ses-1_task-sleep_events.tsv"
    ev.write_text("onset\tduration\ttrial_type\n0.0\t0.0\tLights off\n")
    out = root / "derivatives" / "hypnoscope"
    assert main(["stage", str(root), "--out", str(out), "--no-plot"]) == 0
    err = capsys.readouterr().err
    assert "BIDS dataset: 2 recording(s), 1 with scored stages" in err
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "hypnoscope"
    one = out / "sub-01" / "eeg"
    two = out / "sub-02" / "ses-1" / "eeg"
    assert sorted(p.name for p in one.iterdir()) == [
        "sub-01_task-sleep.hypnogram.edf", "sub-01_task-sleep.hypnogram.tsv",
        "sub-01_task-sleep.report.html", "sub-01_task-sleep.report.json"]
    rep1 = json.loads((one / "sub-01_task-sleep.report.json").read_text())
    rep2 = json.loads((two / "sub-02_ses-1_task-sleep.report.json").read_text())
    assert rep1["recording"]["reference"].endswith("sub-01_task-sleep_events.tsv")
    assert rep1["agreement"]["accuracy"] > 0.8
    assert "agreement" not in rep2 or not rep2["agreement"]
    assert rep1["model"]["name"] == "default"
    # a rerun finds the same two recordings (not the derivative) and skips them
    assert main(["stage", str(root), "--out", str(out), "--no-plot"]) == 0
    assert "skipping 2 recording(s)" in capsys.readouterr().err


def test_train_data_accepts_a_bids_root(bids_root, tmp_path, monkeypatch):
    from hypnoscope.cli import main
    from hypnoscope.models import load_model

    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    root, hyps = bids_root
    model = tmp_path / "bids.joblib"
    assert main(["train", "--model", "lightgbm", "--data", str(root), "--out",
                 str(model)]) == 0
    card = load_model(model).metadata["training_data"]
    assert card["n_subjects"] == 2 and card["n_nights"] == 2
