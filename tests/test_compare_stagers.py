"""The stager benchmark (hypnoscope.staging.compare_stagers, ``hypnoscope benchmark``):
its numbers are evaluation's on the same pairs, it resumes, and a bad file is reported
while the rest go on."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from hypnoscope.evaluation.metrics import compare_hypnograms, evaluate, limits_of_agreement
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.models.storage import models_dir
from hypnoscope.staging.compare_stagers import (
    benchmark_stagers,
    confusion_to_codes,
    model_labels,
    paired_comparison,
)


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> Path:
    """Two short simulated Sleep-EDF nights with their scorings, and a model file."""
    from hypnoscope.simulate import simulate_dataset

    root = tmp_path_factory.mktemp("nights")
    simulate_dataset(root / "psg", n_subjects=2, seed=3, duration_h=0.5)
    for ext in (".joblib", ".json"):  # a model given as a file
        shutil.copy(models_dir() / f"eeg2{ext}", root / f"my-model{ext}")
    return root


@pytest.fixture(scope="module")
def bench(nights, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    models = ["default", str(nights / "my-model.joblib")]
    return out, models, benchmark_stagers(nights / "psg", nights / "psg", models, out)


def _pairs(out: Path, label: str, psg: Path):
    """(prediction, reference) hypnograms of every recording as staged for ``label``."""
    pairs = {}
    for ref_path in sorted(psg.glob("*-Hypnogram.edf")):
        stem = ref_path.name.replace("-Hypnogram.edf", "")
        pred = read_hypnogram(out / "models" / label / f"{stem}.hypnogram.tsv")
        pairs[stem] = (pred, read_hypnogram(ref_path))
    return pairs


def test_report_numbers_are_evaluations_on_the_same_pairs(bench, nights):
    out, _, result = bench
    assert result["models"] == ["default", "my-model"]
    assert result["failures"] == [] and result["n_recordings"] == 2
    assert result["per_model"]["default"]["card"]["name"] == "default"
    assert "model_card" not in result["recordings"][0]
    for label in result["models"]:
        pairs = _pairs(out, label, nights / "psg")
        cmps = {s: compare_hypnograms(p, r) for s, (p, r) in pairs.items()}
        recs = {Path(r["recording"]).name.replace("-PSG.edf", ""): r
                for r in result["recordings"] if r["model"] == label}
        for stem, cmp in cmps.items():
            for key in ("accuracy", "kappa", "macro_f1"):
                assert recs[stem][key] == pytest.approx(cmp["epochs"][key], abs=1e-12)
        # pooled over every compared epoch: evaluate on the concatenated pairs
        for p, r in pairs.values():
            assert p.n_epochs == r.n_epochs and p.onset_sec == r.onset_sec
        ev = evaluate(np.concatenate([r.codes for _, r in pairs.values()]),
                      np.concatenate([p.codes for p, _ in pairs.values()]))
        pooled = result["per_model"][label]["pooled"]
        for key in ("accuracy", "kappa", "macro_f1"):
            assert pooled[key] == pytest.approx(ev[key], abs=1e-12)
        assert pooled["confusion_matrix"] == ev["confusion_matrix"]
        np.testing.assert_allclose(list(pooled["per_class_f1"].values()),
                                   list(ev["per_class_f1"].values()), equal_nan=True)
        mean = result["per_model"][label]["mean"]
        kappas = [c["epochs"]["kappa"] for c in cmps.values()]
        assert mean["kappa"]["mean"] == pytest.approx(np.mean(kappas))
        assert mean["kappa"]["sd"] == pytest.approx(np.std(kappas, ddof=1))
        # sleep statistics: bias and limits of the differences compare_hypnograms gives
        stats = result["per_model"][label]["statistics"]
        for key in ("total_sleep_min", "sleep_efficiency_pct", "n2_min"):
            d = np.array([c["sleep_statistics"][key]["diff"] for c in cmps.values()])
            assert stats[key]["bias"] == pytest.approx(d.mean())
            assert stats[key]["upper"] == pytest.approx(d.mean() + 1.96 * d.std(ddof=1))
        assert result["per_model"][label]["time"]["n"] == 2
        assert result["per_model"][label]["time"]["mean_sec"] > 0
    # the files hold the same numbers
    with open(out / "models.csv", newline="") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    assert float(rows["default"]["kappa"]) == pytest.approx(
        result["per_model"]["default"]["pooled"]["kappa"], rel=1e-5)
    saved = json.loads((out / "benchmark.json").read_text())
    assert saved["per_model"]["my-model"]["pooled"]["accuracy"] == pytest.approx(
        result["per_model"]["my-model"]["pooled"]["accuracy"])
    html = (out / "benchmark.html").read_text()
    assert "Bland-Altman plots default" in html and "my-model" in html
    paired = [p for p in result["paired"] if p["metric"] == "kappa"]
    assert len(paired) == 1 and paired[0]["n"] == 2
    assert paired[0]["wins_a"] + paired[0]["wins_b"] + paired[0]["ties"] == 2


def test_second_run_stages_nothing(bench, nights, monkeypatch):
    out, models, first = bench

    def fail(**kwargs):
        raise AssertionError(f"staged again: {kwargs.get('psg')}")

    monkeypatch.setattr("hypnoscope.staging.outputs.stage_file", fail)
    again = benchmark_stagers(nights / "psg", nights / "psg", models, out)
    assert again["failures"] == []
    for label in first["models"]:
        a, b = first["per_model"][label], again["per_model"][label]
        assert a["pooled"]["confusion_matrix"] == b["pooled"]["confusion_matrix"]
        assert a["time"]["mean_sec"] == pytest.approx(b["time"]["mean_sec"])


def test_bad_file_is_reported_and_the_rest_go_on(nights, tmp_path, capsys):
    from hypnoscope.cli import main

    data = tmp_path / "data"
    shutil.copytree(nights / "psg", data)
    (data / "SC4999E0-PSG.edf").write_bytes(b"not an EDF file")
    code = main(["benchmark", str(data), "-r", str(data), "--models", "eeg2",
                 "--eeg", "EEG Fpz-Cz", "EEG Pz-Oz", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "model eeg2:" in err and "SC4999E0-PSG.edf" in err
    result = json.loads((tmp_path / "out" / "benchmark.json").read_text())
    assert result["per_model"]["eeg2"]["n_compared"] == 2
    assert result["per_model"]["eeg2"]["n_failed"] == 1
    (fail,) = result["failures"]
    assert fail["model"] == "eeg2" and fail["recording"].endswith("SC4999E0-PSG.edf")
    assert result["recordings"][0]["status"] == "failed"  # worst first
    report = json.loads(Path(result["recordings"][1]["report"]).read_text())
    assert report["recording"]["staging_options"]["eeg"] == ["EEG Fpz-Cz", "EEG Pz-Oz"]


def test_unknown_model_refused_before_any_work(nights, tmp_path):
    with pytest.raises(ValueError, match="model 'nosuch'"):
        benchmark_stagers(nights / "psg", nights / "psg", ["default", "nosuch"], tmp_path)
    assert not (tmp_path / "models").exists()


def test_limits_of_agreement_equal_numpy():
    pred = [410.0, 380.5, None, 402.0, 395.0, 420.0]
    ref = [400.0, 390.0, 350.0, 400.0, math.nan, 405.0]
    d = np.array([10.0, -9.5, 2.0, 15.0])
    loa = limits_of_agreement(pred, ref)
    assert loa["n"] == 4
    assert loa["bias"] == pytest.approx(d.mean())
    assert loa["sd"] == pytest.approx(d.std(ddof=1))
    assert loa["lower"] == pytest.approx(d.mean() - 1.96 * d.std(ddof=1))
    assert loa["upper"] == pytest.approx(d.mean() + 1.96 * d.std(ddof=1))
    one = limits_of_agreement([1.0], [3.0])
    assert one["bias"] == -2.0 and math.isnan(one["sd"])


def test_paired_comparison_and_labels():
    recs = [{"model": m, "recording": r, "status": "ok", "accuracy": a, "kappa": k}
            for m, r, a, k in (("a", "x", 0.8, 0.7), ("a", "y", 0.6, 0.5), ("a", "z", 0.9, 0.9),
                               ("b", "x", 0.7, 0.7), ("b", "y", 0.7, 0.6),
                               ("b", "z", 0.5, 0.4))]
    recs.append({"model": "b", "recording": "w", "status": "failed", "error": "bad"})
    acc, kap = paired_comparison(recs, ["a", "b"])
    d = np.array([0.1, -0.1, 0.4])
    assert acc["n"] == 3 and acc["mean_diff"] == pytest.approx(d.mean())
    assert acc["sd_diff"] == pytest.approx(d.std(ddof=1))
    assert (acc["wins_a"], acc["wins_b"], acc["ties"]) == (2, 1, 0)
    assert (kap["wins_a"], kap["wins_b"], kap["ties"]) == (1, 1, 1)
    assert model_labels(["default", "lab/my-model.joblib", "other/my-model.joblib"]) == [
        "default", "my-model", "my-model-2"]


def test_confusion_to_codes_gives_back_the_matrix():
    cm = [[5, 1, 0], [2, 0, 3], [0, 0, 4]]
    t, p = confusion_to_codes(cm)
    assert evaluate(t, p, n_classes=3)["confusion_matrix"] == cm


def test_peer_stagers_by_name(nights, tmp_path):
    """yasa and consensus are benchmarked like shipped models (the 'peers' extra)."""
    pytest.importorskip("yasa")
    result = benchmark_stagers(nights / "psg", nights / "psg", ["yasa", "consensus"], tmp_path)
    assert result["failures"] == [] and result["models"] == ["yasa", "consensus"]
    assert result["per_model"]["yasa"]["card"]["name"] == "yasa"
    for label in result["models"]:
        cmps = {s: compare_hypnograms(p, r)
                for s, (p, r) in _pairs(tmp_path, label, nights / "psg").items()}
        for rec in (r for r in result["recordings"] if r["model"] == label):
            cmp = cmps[Path(rec["recording"]).name.replace("-PSG.edf", "")]
            assert rec["kappa"] == pytest.approx(cmp["epochs"]["kappa"], abs=1e-12)


def test_lights_off_and_on_reach_every_model(nights, tmp_path, capsys):
    from hypnoscope.cli import main

    out = tmp_path / "out"
    assert main(["benchmark", str(nights / "psg"), "-r", str(nights / "psg"), "--models",
                 "eeg2", "--lights-off", "300", "--lights-on", "1500", "--out",
                 str(out)]) == 0
    capsys.readouterr()
    result = json.loads((out / "benchmark.json").read_text())
    assert len(result["recordings"]) == 2
    for rec in result["recordings"]:
        report = json.loads(Path(rec["report"]).read_text())
        assert report["span"]["lights_off_sec"] == 300.0
        assert report["span"]["lights_on_sec"] == 1500.0
        # agreement over the 40 epochs in bed only (the recording has 120)
        assert report["agreement"]["n_common_epochs"] == 120
        assert report["agreement"]["n_epochs"] == 40
    assert main(["benchmark", str(nights / "psg"), "-r", str(nights / "psg"), "--models",
                 "eeg2", "--lights-off", "25:00", "--out", str(tmp_path / "o2")]) == 2
    assert "--lights-off '25:00': expected seconds" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()
