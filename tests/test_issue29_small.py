"""Issue #29: ``hypnoscope evaluate``'s classification report and the MSMAE-CNN
baseline-wander high-pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hypnoscope.cli import main

# a constructed night: true stages and the predictions of a stub model
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4])
Y_PRED = np.array([0, 0, 0, 1, 0, 1, 2, 2, 2, 2, 2, 2, 4, 4])
# W: TP 3 FP 1 FN 1; N1: TP 1 FP 1 FN 1; N2: TP 4 FP 2 FN 0; N3: TP 0 FP 0 FN 2 (never
# predicted: precision undefined); R: TP 2 FP 0 FN 0
EXPECTED = {"W": (0.75, 0.75, 0.75, 4), "N1": (0.5, 0.5, 0.5, 2), "N2": (4 / 6, 1.0, 0.8, 4),
            "N3": (None, 0.0, 0.0, 2), "R": (1.0, 1.0, 1.0, 2)}


class _StubModel:
    name = "stub"
    n_classes = 5
    metadata: dict = {}

    def predict(self, night) -> np.ndarray:
        assert len(night.y) == len(Y_PRED)
        return Y_PRED.copy()


def _evaluate(tmp_path: Path, capsys, monkeypatch, *extra: str) -> str:
    import hypnoscope.models.storage as storage

    d = tmp_path / "feat"
    d.mkdir()
    X = np.random.default_rng(0).standard_normal((len(Y_TRUE), 2, 3)).astype(np.float32)
    np.savez(d / "01__1.npz", features=X, labels=Y_TRUE, onsets_sec=np.arange(14) * 30.0)
    monkeypatch.setattr(storage, "load_staging_model", lambda name: (_StubModel(), None))
    code = main(["evaluate", "--model", "stub", "--features", str(d), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_evaluate_json_reports_precision_recall_support(tmp_path, capsys, monkeypatch):
    out = json.loads(_evaluate(tmp_path, capsys, monkeypatch, "--json"))
    for stage, (prec, rec, f1, support) in EXPECTED.items():
        row = out["per_class"][stage]
        assert row["precision"] == (None if prec is None else pytest.approx(prec))
        assert out["precision"][stage] == row["precision"]
        assert row["recall"] == pytest.approx(rec) == out["recall"][stage]
        assert row["f1"] == pytest.approx(f1) == out["per_class_f1"][stage]
        assert row["support"] == support == out["support"][stage]
    # macro averages leave the undefined N3 precision out
    assert out["macro_precision"] == pytest.approx((0.75 + 0.5 + 4 / 6 + 1.0) / 4)
    assert out["macro_recall"] == pytest.approx((0.75 + 0.5 + 1.0 + 0.0 + 1.0) / 5)
    assert out["n_epochs"] == 14


def test_evaluate_text_prints_the_classification_report(tmp_path, capsys, monkeypatch):
    lines = _evaluate(tmp_path, capsys, monkeypatch).splitlines()
    start = lines.index("classification report")
    assert lines[start + 1].split() == ["stage", "precision", "recall", "F1", "support"]
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[start + 2: start + 7]}
    assert rows["W"] == ["0.750", "0.750", "0.750", "4"]
    assert rows["N1"] == ["0.500", "0.500", "0.500", "2"]
    assert rows["N2"] == ["0.667", "1.000", "0.800", "4"]
    assert rows["N3"] == ["n/a", "0.000", "0.000", "2"]
    assert rows["R"] == ["1.000", "1.000", "1.000", "2"]
    macro = lines[start + 7].split()
    assert macro[:2] == ["macro", "avg"] and macro[-1] == "14"
    assert float(macro[2]) == pytest.approx((0.75 + 0.5 + 4 / 6 + 1.0) / 4, abs=5e-4)
    assert float(macro[3]) == pytest.approx(0.65, abs=5e-4)
