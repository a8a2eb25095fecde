"""Issue #29: the MC²SleepNet benchmark's tables rendered from stored runs: the paper's ten
masking ratios (Table 4, "not run" with the command for a missing arm), Table 5's 15 % and
Γ rows, Fig. 3's confusion matrices by masking ratio."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("W", "N1", "N2", "N3", "R")


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks.mc2sleepnet.run")


def _scores(acc: float, diag: int) -> dict:
    cm = np.full((5, 5), 1) + np.eye(5, dtype=int) * (diag - 1)
    return {"accuracy": acc, "macro_f1": acc - 0.1, "kappa": acc - 0.2,
            "per_class_f1": dict(zip(STAGES, (0.9, 0.2, 0.8, 0.7, 0.6), strict=True)),
            "confusion_matrix": cm.tolist()}


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row (empty for any other line)."""
    if not line.startswith("| "):
        return []
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def _store(tmp_path: Path, bench) -> Path:
    runs = tmp_path / "mc2t_runs"
    runs.mkdir()
    arms = {"pt-ft": (0.80, 0.70), "mask-0.15": (0.82, 0.75), "mask-0.25": (0.84, 0.76)}
    for arm, (post, pre) in arms.items():
        for seed in (0, 1):
            (runs / f"{arm}__seed{seed}.json").write_text(json.dumps({
                "scores": _scores(post + 0.02 * seed, 10 + seed),
                "pretrain_scores": _scores(pre + 0.02 * seed, 5), "train_s": 100.0}))
    cost = {p: {"n_parameters": 1e6, "s_per_1000_steps_1_threads": 1.0,
                "s_per_1000_steps_2_threads": 1.0, "steps_timed": 1}
            for p in ("small", "paper")}
    meta = {"title": "t", "date": "d", "command": "c", "machine": "m", "data": "x",
            "protocol": "p", "cost": cost, "yasa": None}
    (tmp_path / "mc2t.json").write_text(json.dumps({"meta": meta, "runs": {}}))
    return runs


def test_tables_and_fig3_rendered_from_stored_runs(tmp_path, bench):
    runs_dir = _store(tmp_path, bench)
    md = bench.render_stored(tmp_path, "mc2t", runs_dir, ["--render-only"])
    assert list(bench.MASK_ARMS) == [0.0, 0.15, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.85]
    assert set(bench.MASK_ARMS.values()) <= set(bench.ARMS)
    rows = {c[0]: c for c in map(_cells, md.splitlines()) if c and c[0].endswith("%")}
    # Table 4: ratio, seeds, after pre-training, after fine-tuning, the paper's two
    assert rows["25%"][1:6] == ["2", "77.0 ± 1.4", "85.0 ± 1.4", "88.324", "88.453"]
    assert rows["50%"][1:4] == ["2", "71.0 ± 1.4", "81.0 ± 1.4"]
    assert rows["85%"][1] == "0" and rows["85%"][2] == (
        "not run: `nice -n 10 python -m benchmarks.mc2sleepnet.run --arms mask-0.85 "
        "--name mc2t`")
    assert rows["40%"][4:6] == ["88.261", "88.476"]
    # Table 5: the 15 % and the Γ (pre-training only) rows
    t5 = {c[0]: c for c in map(_cells, md.splitlines()) if c and c[0].startswith("MC²")}
    assert t5["MC²SleepNet 15 % (PT+FT)"][2:4] == ["2", "83.0 ± 1.4"]
    assert t5["MC²SleepNet 15 % Γ (PT only)"][2:4] == ["2", "76.0 ± 1.4"]
    assert t5["MC²SleepNet 50 % Γ (PT only)"][3] == "71.0 ± 1.4"
    assert t5["MC²SleepNet, Sleep-EDF-78, 15 % Γ"][1:4] == ["84.4", "78.7", "0.784"]
    # Fig. 3: the confusion matrices summed over seeds, one panel per ratio that ran
    cms = bench.confusion_by_ratio({p.stem: json.loads(p.read_text())
                                    for p in runs_dir.glob("*.json")})
    assert sorted(cms) == [0.15, 0.25, 0.5]
    np.testing.assert_array_equal(np.diag(cms[0.25]), [21] * 5)  # 10 + 11
    assert cms[0.25].sum() == 2 * 20 + 21 * 5
    png = tmp_path / "mc2t_fig3.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"]({png})" in md
    # the stored meta keeps its measurement and records the re-rendering
    stored = json.loads((tmp_path / "mc2t.json").read_text())
    assert stored["meta"]["date"] == "d" and stored["meta"]["rendered"]
    assert len(stored["runs"]) == 6


def test_measured_runs_keep_their_settings(bench):
    import argparse

    s = argparse.Namespace(patience=2, pretrain_epochs=1, epochs=1, smoke=True,
                           model_defaults=False)
    m = bench.build("mask-0.4", 0, s, Path("/tmp/unused"))
    assert m.config["backbone_epochs"] == 0 and m.config["net"]["view_head"] == "linear"
    assert m.config["mask_ratio"] == 0.4 and m.config["contrastive"]
    s.model_defaults = True
    m = bench.build("mask-0.4", 0, s, Path("/tmp/unused"))
    assert m.config["backbone_epochs"] > 0 and "view_head" not in m.config["net"]


def test_real_data_scripts_take_the_table_arms_each_in_its_own_folder(bench):
    from benchmarks.mc2sleepnet.sleepedf78 import arm_options, run_name

    assert arm_options(None) == {}
    assert arm_options("tf-only") == {"branches": "spec", "seq_layers": 0,
                                      "contrastive": False, "mask_ratio": 0.0}
    assert arm_options("mask-0.85") == {"contrastive": True, "mask_ratio": 0.85}
    with pytest.raises(ValueError, match="arm"):
        arm_options("ssnet")
    base = "mc2sleepnet_sleepedf78"
    assert run_name(base, None, 0.5, False, False) == base  # the default keeps its name
    assert run_name(base, None, 0.15, False, False) == base + "_mask15"
    assert run_name(base, "cl-ft", 0.5, True, False) == base + "_cl-ft_ft"
    assert run_name("mc2sleepnet_shhs5463", None, 0.5, False, True) == \
        "mc2sleepnet_shhs5463_pt"
    assert len({run_name(base, a, 0.5, f, False) for a in bench.ARMS for f in (0, 1)}) == \
        2 * len(bench.ARMS)
