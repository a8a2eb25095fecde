"""The MC²SleepNet real-data protocol scripts: paper rows and SHHS selection (#29)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository (benchmarks)

from benchmarks.mc2sleepnet import sleepedf78  # noqa: E402

PAPER_TXT = Path("/work/shared/seeds/mc2sleepnet-paper.txt")


def test_sleepedf78_paper_rows_are_table5():
    rows = sleepedf78.PAPER_ROWS
    # Table 5, Sleep-EDF-78: Γ = pre-training only on Sleep-EDF, + = pre-trained on SHHS 5463
    assert rows["50%Γ"]["accuracy"] == 0.844 and rows["50%Γ"]["macro_f1"] == 0.785
    assert rows["50%Γ"]["kappa"] == 0.784
    assert rows["15%Γ"]["macro_f1"] == 0.787 and rows["15%Γ"]["kappa"] == 0.784
    assert (rows["+"]["accuracy"], rows["+"]["macro_f1"], rows["+"]["kappa"]) == (
        0.846, 0.791, 0.787)
    assert rows["50%Γ"]["per_class_f1"] == {"W": 0.933, "N1": 0.493, "N2": 0.865,
                                           "N3": 0.788, "R": 0.846}
    assert sleepedf78.PAPER is rows["50%Γ"]


@pytest.mark.skipif(not PAPER_TXT.exists(), reason="the paper text is not here")
def test_sleepedf78_paper_rows_match_the_paper_text():
    marks = {"+": "⁺", "50%Γ": "^{50%Γ}", "15%Γ": "^{15%Γ}"}
    text = PAPER_TXT.read_text()
    for label, mark in marks.items():
        line = next(ln for ln in text.splitlines()
                    if ln.startswith("SleepEDF-78\tMC ² SleepNet " + mark))
        nums = [float(re.sub(r"</?u>", "", c)) for c in line.split("\t")[4:]]
        row = sleepedf78.PAPER_ROWS[label]
        ours = [100 * row["accuracy"], 100 * row["macro_f1"], row["kappa"],
                *(100 * row["per_class_f1"][s] for s in sleepedf78.STAGES)]
        assert ours == pytest.approx(nums, abs=1e-9), label


def test_sleepedf78_compares_with_gamma_unless_finetuned():
    rows = sleepedf78.paper_rows(0.5, finetune=False)
    assert [(lb, c) for lb, _, c in rows] == [("50%Γ", True), ("+", False)]
    assert [(lb, c) for lb, _, c in sleepedf78.paper_rows(0.15, False)] == [
        ("15%Γ", True), ("+", False)]
    # fine-tuning on Sleep-EDF alone has no paper row; a ratio the paper omits has no Γ row
    assert [(lb, c) for lb, _, c in sleepedf78.paper_rows(0.5, True)] == [
        ("50%Γ", False), ("+", False)]
    assert [lb for lb, _, _ in sleepedf78.paper_rows(0.3, False)] == ["+"]
    line = sleepedf78._paper_line(*sleepedf78.paper_rows(0.5, False)[0])
    assert line == ("| paper MC²SleepNet 50%Γ (pre-training only, Sleep-EDF-78) | 84.4 | 78.5 | "
                    "0.784 | 93.3 | 49.3 | 86.5 | 78.8 | 84.6 |")
    plus = sleepedf78._paper_line(*sleepedf78.paper_rows(0.5, False)[1])
    assert "| 84.6 | 79.1 | 0.787 |" in plus and "not this run's setting" in plus
