"""Plots, saved figures, HTML/JSON reports and the ``stats``/``compare`` CLI."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hypnoscope.evaluation.metrics import evaluate  # noqa: E402
from hypnoscope.evaluation.sleepstats import sleep_statistics, stage_minutes  # noqa: E402
from hypnoscope.hypnogram import Hypnogram  # noqa: E402
from hypnoscope.viz.plots import (  # noqa: E402
    figure_to_svg,
    plot_confusion_matrix,
    plot_hypnodensity,
    plot_hypnogram,
    save_figure,
)
from hypnoscope.viz.report import report_paths, write_report  # noqa: E402

START = dt.datetime(2021, 3, 4, 22, 47, 30)


def _night(seed=0, probabilities=False) -> Hypnogram:
    rng = np.random.default_rng(seed)
    runs = [0] * 20 + list(np.repeat(rng.integers(0, 5, 60), 12)) + [0] * 20
    codes = np.array(runs)
    codes[30:33] = -100
    proba = None
    if probabilities:
        proba = rng.dirichlet(np.ones(5) * 0.5, codes.size)
        proba[np.arange(codes.size), np.maximum(codes, 0)] += 1.5
        proba /= proba.sum(1, keepdims=True)
        codes = proba.argmax(1)
    return Hypnogram(codes, start_time=START, probabilities=proba)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _rem_runs(codes) -> int:
    m = np.concatenate([[0], (np.asarray(codes) == 4).astype(int), [0]])
    return int((np.diff(m) == 1).sum())


def test_plot_hypnogram_axes_and_rem_highlight():
    hyp = _night()
    ax = plot_hypnogram(hyp, time_axis="hours")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["N3", "N2", "N1", "R", "W"]
    assert ax.get_xlim() == pytest.approx((0.0, hyp.duration_sec / 3600))
    assert ax.get_xlabel() == "Time from recording start (h)"
    rem_patches = [c for c in ax.collections if c.get_label() == "REM" or
                   np.allclose(c.get_facecolor()[0][:3], matplotlib.colors.to_rgb("#e63946"))]
    assert len(rem_patches) == _rem_runs(hyp.codes)
    ax2 = plot_hypnogram(hyp)  # clock time from start_time, ticks on whole hours
    assert ax2.get_xlabel() == "Clock time"
    ax2.figure.canvas.draw()
    labels = [t.get_text() for t in ax2.get_xticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"\d\d:00", t) for t in labels)
    with pytest.raises(ValueError, match="start_time"):
        plot_hypnogram(hyp.copy(start_time=None), time_axis="clock")


def test_plot_hypnodensity_and_confusion_matrix():
    hyp = _night(probabilities=True)
    ax = plot_hypnodensity(hyp)
    assert ax.get_ylim() == (0.0, 1.0)
    assert len(ax.collections) == 5
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["W", "N1", "N2", "N3", "R"]
    with pytest.raises(ValueError, match="no per-epoch probabilities"):
        plot_hypnodensity(_night())
    cm = [[50, 2], [5, 20]]
    ax = plot_confusion_matrix(cm, ["W", "Sleep"], normalize=True)
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["96%\n(50)", "4%\n(2)", "20%\n(5)", "80%\n(20)"]
    ax = plot_confusion_matrix(cm, ["W", "Sleep"], normalize=False)
    assert [t.get_text() for t in ax.texts] == ["50", "2", "5", "20"]
    with pytest.raises(ValueError, match="square matrix matching 3 labels"):
        plot_confusion_matrix(cm, ["a", "b", "c"])


def test_save_figure_png_svg_atomic(tmp_path):
    ax = plot_hypnogram(_night())
    png = save_figure(ax.figure, tmp_path / "h.png")
    svg = save_figure(ax.figure, tmp_path / "sub" / "h.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()
    assert figure_to_svg(ax.figure).startswith("<svg")
    with pytest.raises(ValueError, match="unsupported figure format"):
        save_figure(ax.figure, tmp_path / "h.jpg")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["h.png", "h.svg"]


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in
            re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def test_report_without_reference(tmp_path):
    hyp = _night()
    info = {"recording": "SC4001E0-PSG.edf", "channels": {"eeg": ["EEG Fpz-Cz"]},
            "model": {"name": "lightgbm", "version": "1"}}
    html_path, json_path = write_report(tmp_path / "night1", hyp, info)
    assert (html_path.name, json_path.name) == ("night1.html", "night1.json")
    data = json.loads(json_path.read_text())
    stats = sleep_statistics(hyp)
    for k, v in stats.items():
        assert data["sleep_statistics"][k] == (None if math.isnan(v) else pytest.approx(v))
    assert data["stage_minutes"] == pytest.approx(stage_minutes(hyp))
    assert data["channels"] == {"eeg": ["EEG Fpz-Cz"]}
    assert data["model"]["name"] == "lightgbm"
    assert data["recording"]["recording"] == "SC4001E0-PSG.edf"
    assert data["hypnogram"]["n_epochs"] == hyp.n_epochs
    assert data["hypnogram"]["start_time"] == START.isoformat()
    assert "agreement" not in data
    html = html_path.read_text()
    assert f"{stats['total_sleep_min']:.1f} min" in html
    assert f"{stats['sleep_efficiency_pct']:.1f} %" in html
    assert "EEG Fpz-Cz" in html and "lightgbm" in html
    imgs = _images(html)
    assert len(imgs) == 1 and imgs[0][:4] == b"\x89PNG"
    assert "<script" not in html and not re.search(r"(src|href)=\"https?:", html)


def test_report_with_reference_and_probabilities(tmp_path):
    ref = _night(seed=1)
    pred = _night(seed=1, probabilities=True)
    html_path, json_path = write_report(str(tmp_path / "cmp.html"), pred,
                                        {"source": "x.edf"}, reference=ref)
    assert json_path == tmp_path / "cmp.json"
    data = json.loads(json_path.read_text())
    ev = evaluate(ref.codes, pred.codes)
    agr = data["agreement"]
    assert agr["accuracy"] == pytest.approx(ev["accuracy"])
    assert agr["kappa"] == pytest.approx(ev["kappa"])
    assert agr["confusion_matrix"] == ev["confusion_matrix"]
    assert agr["three_class"]["labels"] == ["W", "NREM", "R"]
    assert agr["mean_confidence"] == pytest.approx(pred.probabilities.max(1).mean())
    diff = data["sleep_statistics_difference"]["total_sleep_min"]
    assert diff == pytest.approx(data["sleep_statistics"]["total_sleep_min"]
                                 - data["reference"]["sleep_statistics"]["total_sleep_min"])
    html = html_path.read_text()
    assert f"{ev['kappa']:.3f}" in html and f"{100 * ev['accuracy']:.1f} %" in html
    # the night's figure (prediction, reference, hypnodensity) and the confusion matrix
    assert len(_images(html)) == 2 and "Hypnogram and hypnodensity</h2>" in html
    assert report_paths("a/b.json") == report_paths("a/b")


def test_report_lights_and_non_json_info(tmp_path):
    from pathlib import Path

    hyp = _night()
    info = {"recording": Path("a/b.edf"), "recorded": START, "n_channels": np.int64(3)}
    _, json_path = write_report(tmp_path / "l", hyp, info, lights_off=600.0, lights_on=3000.0)
    data = json.loads(json_path.read_text())
    assert data["recording"] == {"recording": "a/b.edf", "recorded": START.isoformat(),
                                 "n_channels": 3}
    assert data["time_in_bed"] == {"start_sec": 600.0, "end_sec": 3000.0,
                                   "lights_off_sec": 600.0, "lights_on_sec": 3000.0}
    assert data["sleep_statistics"]["time_in_bed_min"] == pytest.approx(40.0)
    html = (tmp_path / "l.html").read_text()
    assert "time in bed 22:57:30–23:37:30" in html
    # lights-on beyond the hypnogram: clipped, with a notice (no Python warning), and the
    # report says so in its notices, its warnings and the banner
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, json_path = write_report(tmp_path / "c", hyp, {}, lights_on=1e6)
    data = json.loads(json_path.read_text())
    tib = data["time_in_bed"]
    assert tib["end_sec"] == hyp.duration_sec and tib["lights_on_sec"] == 1e6
    assert [n["code"] for n in data["notices"]] == ["lights-outside"]
    assert data["notices"][0]["severity"] == "warning"
    assert re.search(r"lights_on \(1e\+06 s\) lies outside the hypnogram", data["warnings"][0])
    assert "lies outside the hypnogram" in (tmp_path / "c.html").read_text().split("<h1>")[0]


def test_report_rejects_reference_of_another_night(tmp_path):
    pred = _night()
    # a reference with 100 scored epochs past the prediction's end is another night
    longer = Hypnogram(np.concatenate([pred.codes, np.full(100, 2)]))
    with pytest.raises(ValueError, match="same night"):
        write_report(tmp_path / "r", pred, {}, reference=longer)
    assert not list(tmp_path.iterdir())
    # a scoring that covers less than the recording is compared on what it covers
    write_report(tmp_path / "r", longer, {}, reference=pred)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["agreement"]["n_common_epochs"] == pred.n_epochs
    assert data["agreement"]["accuracy"] == 1.0


# ------------------------------------------------------------------ CLI
def test_cli_stats_json(tmp_path, capsys, cli_handler):
    hyp = _night()
    path = hyp.to_tsv(tmp_path / "n.tsv")
    assert cli_handler(["stats", str(path), "--json", "-o", str(tmp_path / "s.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == list(sleep_statistics(hyp))
    assert out["total_sleep_min"] == pytest.approx(sleep_statistics(hyp)["total_sleep_min"])
    assert json.loads((tmp_path / "s.json").read_text()) == out
    assert cli_handler(["stats", str(path), "--json", "--lights-off", "600",
                 "--lights-on", "3000"]) == 0
    bounded = json.loads(capsys.readouterr().out)
    assert bounded["time_in_bed_min"] == pytest.approx(40.0)
    assert cli_handler(["stats", str(path)]) == 0
    assert "Total sleep time (TST)" in capsys.readouterr().out


def test_cli_clock_lights(tmp_path, capsys, cli_handler):
    from hypnoscope.cli import CLIError
    from hypnoscope.cli.stats import parse_time

    assert parse_time("23:00", START, "--lights-off") == 12.5 * 60
    assert parse_time("06:30", START, "--lights-on", after=750.0) == pytest.approx(
        (7 * 60 + 42.5) * 60)
    with pytest.raises(CLIError, match="needs the recording start time"):
        parse_time("23:00", None, "--lights-off")
    with pytest.raises(CLIError, match="HH:MM"):
        parse_time("late", START, "--lights-off")
    path = _night().to_tsv(tmp_path / "n.tsv")  # TSV carries no start time
    with pytest.raises(CLIError, match="--lights-off '23:00'"):
        cli_handler(["stats", str(path), "--lights-off", "23:00"])


def test_cli_compare(tmp_path, capsys, cli_handler):
    ref = _night(seed=2)
    pred = _night(seed=2, probabilities=True)
    rp, pp = ref.to_tsv(tmp_path / "ref.tsv"), pred.to_tsv(tmp_path / "pred.tsv")
    assert cli_handler(["compare", str(pp), str(rp), "--json", "--report",
                 str(tmp_path / "rep")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epochs"]["accuracy"] == pytest.approx(evaluate(ref.codes, pred.codes)["accuracy"])
    assert set(out["sleep_statistics"]["waso_min"]) == {"pred", "ref", "diff"}
    assert (tmp_path / "rep.html").is_file() and (tmp_path / "rep.json").is_file()
    assert cli_handler(["compare", str(pp), str(rp)]) == 0
    assert "kappa" in capsys.readouterr().out
