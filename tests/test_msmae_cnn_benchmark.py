"""benchmarks/msmae_cnn/real_sleepedf.py end to end on a tiny simulated folder in the
Sleep-EDF layout (proves the protocol runs; measures nothing)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))  # benchmarks are modules of the repository root
    return (importlib.import_module("benchmarks.msmae_cnn.real_sleepedf"),
            importlib.import_module("benchmarks.msmae_cnn.protocol"))


def test_real_sleepedf_script_runs_the_protocol_end_to_end(tmp_path, monkeypatch, bench):
    from hypnoscope.hypnogram import Hypnogram
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    real, protocol = bench
    monkeypatch.setenv("HYPNOSCOPE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "sleep-edf"
    rng = np.random.default_rng(0)
    for subj in range(4):  # SC4ssN: 4 subjects, subject 0 with two nights
        for night in (1, 2) if subj == 0 else (1,):
            stages = np.repeat(rng.permutation([0, 1, 2, 3, 4, 2, 0, 2, 4, 0]), 4)
            write_sleepedf_pair(simulate_night(Hypnogram(stages), seed=10 * subj + night),
                                None, data, f"SC40{subj}{night}E0")
    out = tmp_path / "results"
    code = real.main(["--data", str(data), "--smoke", "--jobs", "1", "--seeds", "0", "1",
                      "--ablations", "default", "rf-voting", "lowpass-30", "eeg",
                      "--work-dir", str(tmp_path / "work"), "--out", str(out)])
    assert code == 0
    res = json.loads((out / "msmae_cnn_real.json").read_text())
    for proto in ("subject", "leaky"):
        assert set(res["table1"][proto]) == set(protocol.TABLE1)
        for row in res["table1"][proto].values():
            sc = row["scores"]
            assert 0 <= sc["accuracy"] <= 1 and set(sc["recall"]) == {"W", "N1", "N2",
                                                                     "N3", "R"}
            assert row["train_s"] > 0 and row["infer_s_per_night"] > 0
    # subject-wise: test subjects never trained on; leaky: epochs of every night both sides
    split = res["table1"]["subject"]["svm"]["split"]
    assert not set(split["test_subjects"]) & set(split["train_subjects"] +
                                                 split["val_subjects"])
    assert res["table1"]["leaky"]["svm"]["split"]["leaky"] is True
    w = res["table1"]["subject"]["msmae-cnn-rf"]["weights"]
    assert len(w) == 2 and sum(w) == pytest.approx(1.0)
    assert res["table1"]["subject"]["msmae-cnn-rf"]["msmae_run"] == \
        "subject__msmae-cnn__seed0"
    assert set(res["ablation"]) == {"default", "rf-voting", "lowpass-30", "eeg"}
    assert all(v["n_seeds"] == 2 for v in res["ablation"].values())
    md = (out / "msmae_cnn_real.md").read_text()
    assert md.count("real Sleep-EDF recordings") >= 4  # named in every table
    assert "LEAKY" in md and "MSMAE-CNN + RF" in md and "SMOKE" in md
    # resumable: a second call finds every run done and trains nothing
    runs = sorted((tmp_path / "work" / "runs").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in runs]
    assert real.main(["--data", str(data), "--smoke", "--jobs", "1", "--seeds", "0", "1",
                      "--ablations", "default", "rf-voting", "lowpass-30", "eeg",
                      "--work-dir", str(tmp_path / "work"), "--out", str(out)]) == 0
    assert [p.stat().st_mtime_ns for p in runs] == stamps


PAPER_TXT = Path("/work/shared/seeds/msmae-cnn-paper.txt")


def test_table1_paper_columns_and_the_proposed_row(tmp_path, bench):
    """The paper's accuracy, sensitivity and time beside ours; its "MSMAE-CNN (Proposed)"
    row (96.5 %) on the MSMAE-CNN + RF vote row; re-rendered from a stored results file."""
    import shutil

    _, protocol = bench
    run = importlib.import_module("benchmarks.msmae_cnn.run")
    assert protocol.paper_cells("msmae-cnn-rf") == ["96.5", "0.95", "11.8"]
    assert protocol.paper_cells("msmae-cnn") == ["–", "–", "–"]
    assert protocol.paper_cells("cnn") == ["91.2", "0.89", "14.3"]
    if PAPER_TXT.exists():  # the numbers are the paper's Table 1
        text = PAPER_TXT.read_text()
        assert "Kaggle" in text
        for row, (acc, sens, sec) in (("SVM", ("82.3", "0.79", "12.4")),
                                      ("Random Forest", ("86.7", "0.84", "9.1")),
                                      ("CNN", ("91.2", "0.89", "14.3")),
                                      ("MSMAE-CNN (Proposed)", ("96.5", "0.95", "11.8"))):
            assert f"\n{row}\t{acc}\t{sens}\t{sec}\n" in text, row
    stored = ROOT / "benchmarks" / "results" / "msmae_cnn.json"  # committed
    shutil.copy(stored, tmp_path / "msmae_cnn.json")
    md = run.render_only("msmae_cnn", tmp_path)
    assert (tmp_path / "msmae_cnn.md").read_text() == md
    res = json.loads(stored.read_text())
    acc = res["table1"]["subject"]["msmae-cnn-rf"]["scores"]["accuracy"]
    row = next(line for line in md.splitlines() if line.startswith("| MSMAE-CNN + RF"))
    assert row.split(" | ")[1:5] == ["96.5", "0.95", "11.8", f"{100 * acc:.1f}"]
    assert next(line for line in md.splitlines()
                if line.startswith("| MSMAE-CNN |")).split(" | ")[1:4] == ["–", "–", "–"]
