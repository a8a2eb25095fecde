"""BIDS datasets written with mne-bids: found, staged against their *_events.tsv stages,
written as a derivative dataset, and trained on."""

from __future__ import annotations

import json
import re
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


def _derivative_validator():
    """The pip BIDS validator's file-name check with the rules a derivative dataset adds
    (``desc-`` on events ...): BIDSValidator matches the schema's common and raw file
    rules; the validator applies the schema's derivative rules as well to a dataset
    whose DatasetType is derivative. Same schema (bidsschematools), same regexes."""
    import bidsschematools.rules
    import bidsschematools.schema
    from bids_validator import BIDSValidator

    class DerivativeValidator(BIDSValidator):
        regexes = None

        @classmethod
        def _init_regexes(cls):
            schema = bidsschematools.schema.load_schema()
            files = schema.rules.files
            cls.regexes = [rule["regex"] for group in (files.common, files.raw, files.deriv)
                           for rule in bidsschematools.rules.regexify_filename_rules(
                               group, schema, level=2)]

    return DerivativeValidator()


def _bidsignored(rel: str, patterns: list[str]) -> bool:
    """Whether ``.bidsignore`` patterns (globs without ``/``: any folder) match a file."""
    from fnmatch import fnmatchcase

    return any(fnmatchcase(rel.rsplit("/", 1)[-1], p) for p in patterns)


def test_stage_bids_root_writes_a_derivative_dataset(bids_root, tmp_path, capsys):
    import bidsschematools.schema
    import pandas as pd
    from bids_validator import BIDSValidator

    from hypnoscope import __version__
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
    assert desc["GeneratedBy"][0]["Version"] == __version__
    # the source is a BIDS URI whose dataset name DatasetLinks maps to the source root
    uri = bidsschematools.schema.load_schema().objects.formats.bids_uri.pattern
    assert desc["SourceDatasets"] == [{"URL": "bids:raw:"}]
    assert re.fullmatch(uri, desc["SourceDatasets"][0]["URL"])
    assert desc["DatasetLinks"] == {"raw": "../.."}
    assert (out / desc["DatasetLinks"]["raw"]).resolve() == root.resolve()

    one = out / "sub-01" / "eeg"
    two = out / "sub-02" / "ses-1" / "eeg"
    stem = "sub-01_task-sleep_desc-hypnoscope"
    assert sorted(p.name for p in one.iterdir()) == [
        f"{stem}_events.json", f"{stem}_events.tsv", f"{stem}_hypnogram.edf",
        f"{stem}_report.html", f"{stem}_report.json"]
    # every file is BIDS for the validator, or one BIDS has no type for, in .bidsignore
    ignore = (out / ".bidsignore").read_text().split()
    files = sorted("/" + p.relative_to(out).as_posix() for p in out.rglob("*")
                   if p.is_file() and p.name != ".bidsignore")
    validator = _derivative_validator()
    ignored = [f for f in files if _bidsignored(f, ignore)]
    assert [f for f in files if f not in ignored and not validator.is_bids(f)] == []
    assert sorted(f.rsplit("/", 1)[-1].rsplit("_", 1)[-1] for f in ignored) == [
        "hypnogram.edf", "hypnogram.edf", "report.html", "report.html", "report.json",
        "report.json", "summary.csv", "summary.json"]
    assert BIDSValidator().is_bids("/dataset_description.json")
    assert validator.parse(f"/sub-01/eeg/{stem}_events.tsv") == {
        "subject": "01", "datatype": "eeg", "task": "sleep", "description": "hypnoscope",
        "suffix": "events", "extension": ".tsv"}
    assert not validator.is_bids("/sub-01/eeg/sub-01_task-sleep.hypnogram.tsv")  # old name

    # the events sidecar describes every column and names the recording by BIDS URI
    side = json.loads((one / f"{stem}_events.json").read_text())
    assert side["Sources"] == ["bids:raw:sub-01/eeg/sub-01_task-sleep_eeg.edf"]
    assert (out / "../.." / side["Sources"][0].removeprefix("bids:raw:")).is_file()
    events = pd.read_csv(one / f"{stem}_events.tsv", sep="\t", dtype=str,
                         keep_default_na=False)
    assert list(events.columns[:2]) == ["onset", "duration"]
    assert set(side) - {"Description", "Sources"} == set(events.columns)
    assert set(events["stage"]) <= set(side["stage"]["Levels"])
    assert (events != "").all().all()  # BIDS: no empty cell
    hyp = read_hypnogram(one / f"{stem}_events.tsv")
    rep1 = json.loads((one / f"{stem}_report.json").read_text())
    rep2 = json.loads((two / "sub-02_ses-1_task-sleep_desc-hypnoscope_report.json").read_text())
    assert hyp.n_epochs == rep1["hypnogram"]["n_epochs"] == len(events)
    assert hyp.probabilities is not None
    assert rep1["recording"]["reference"].endswith("sub-01_task-sleep_events.tsv")
    # staged from the right signals against the right reference (a 1.5-h SIMULATED
    # recording, staged by the default's short member: 0.80 with the shipped one)
    assert rep1["agreement"]["accuracy"] > 0.75
    assert "agreement" not in rep2 or not rep2["agreement"]
    assert rep1["model"]["name"] == "default"
    # a rerun finds the same two recordings (not the derivative) and skips them
    assert main(["stage", str(root), "--out", str(out), "--no-plot"]) == 0
    assert "skipping 2 recording(s)" in capsys.readouterr().err

    # the derivative's folder opens in review; its files keep the dataset valid
    pytest.importorskip("fastapi")
    from hypnoscope.review.session import ReviewSession

    session = ReviewSession.open(one, scorer="Ann Example")
    assert session.recording.resolve() == (root / "sub-01/eeg/sub-01_task-sleep_eeg.edf").resolve()
    assert session.stem == stem and session.auto.n_epochs == hyp.n_epochs
    session.score(3, "N3")
    session.close()
    reviewed = read_hypnogram(one / f"{stem}.reviewed.tsv")
    assert reviewed.labels[3] == "N3" and reviewed.n_epochs == hyp.n_epochs
    files = sorted("/" + p.relative_to(out).as_posix() for p in out.rglob("*")
                   if p.is_file() and p.name != ".bidsignore")
    ignore = (out / ".bidsignore").read_text().split()
    assert [f for f in files if not _bidsignored(f, ignore) and not validator.is_bids(f)] == []


def test_derivative_description_links_each_source(tmp_path):
    from hypnoscope.io.bids import write_derivative_description

    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    for d in (a, b):
        d.mkdir()
    (a / "dataset_description.json").write_text(json.dumps(
        {"Name": "a", "BIDSVersion": "1.9.0",
         "DatasetDOI": "https://doi.org/10.18112/openneuro.ds000001.v1.0.0"}))
    write_derivative_description(out, a, "default", ignore=["*_report.html"])
    desc = json.loads((out / "dataset_description.json").read_text())
    # outside the source: an absolute file URI; the source's DOI as a doi: URI
    assert desc["DatasetLinks"] == {"raw": a.resolve().as_uri()}
    assert desc["SourceDatasets"] == [{"URL": "bids:raw:",
                                       "DOI": "doi:10.18112/openneuro.ds000001.v1.0.0"}]
    assert (out / ".bidsignore").read_text() == "*_report.html\n"
    write_derivative_description(out, [a, b])
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetLinks"] == {"raw1": a.resolve().as_uri(), "raw2": b.resolve().as_uri()}
    assert [s["URL"] for s in desc["SourceDatasets"]] == ["bids:raw1:", "bids:raw2:"]


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


def test_events_sidecar_describes_the_columns_of_a_three_class_hypnogram(tmp_path):
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.io.bids import events_sidecar

    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.0, 0.0, 0.0]])
    hyp = Hypnogram([0, 1, 2, -1], n_classes=3, probabilities=proba,
                    quality=["ok", "ok", "noise:EEG C3", "outside-span"])
    hyp.to_tsv(tmp_path / "h.tsv")
    header = (tmp_path / "h.tsv").read_text().splitlines()[0].split("\t")
    side = events_sidecar(hyp, ["bids:raw:sub-01/eeg/sub-01_task-sleep_eeg.edf"], "staged")
    assert header == ["onset", "duration", "stage", "confidence", "p_W", "p_NREM", "p_R",
                      "quality"]
    assert [k for k in side if k not in ("Description", "Sources")] == header
    assert sorted(side["stage"]["Levels"]) == ["?", "NREM", "R", "W"]
    assert side["onset"]["Units"] == side["duration"]["Units"] == "s"
    assert side["Sources"] == ["bids:raw:sub-01/eeg/sub-01_task-sleep_eeg.edf"]
    # without probabilities or quality labels, only the columns written are described
    bare = Hypnogram([0, 1, 2], n_classes=3)
    bare.to_tsv(tmp_path / "bare.tsv")
    assert [k for k in events_sidecar(bare, [], "x") if k[0].islower()] == (
        tmp_path / "bare.tsv").read_text().splitlines()[0].split("\t") == [
        "onset", "duration", "stage"]
