"""The night's figure is rendered once per staged recording: the same PNG is the
``S.hypnogram.png`` file and the image in ``S.report.html``; with ``--no-plot`` no figure is
rendered at all (no pyplot: ``tests/test_imports.py``)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.staging.outputs import stage_file
from hypnoscope.viz.plots import figure_to_png, plot_night

SC_CHANNELS = {"EEG Fpz-Cz": 100.0, "EEG Pz-Oz": 100.0, "EOG horizontal": 100.0,
               "EMG submental": 1.0}


def _images(html: str) -> list[tuple[str, bytes]]:
    return [(alt, base64.b64decode(data)) for alt, data in re.findall(
        r'<img class="fig" alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"',
        html)]


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.fixture(scope="module")
def psg(tmp_path_factory):
    from conftest import write_psg_edf

    path = tmp_path_factory.mktemp("in") / "SC4991E0-PSG.edf"
    write_psg_edf(path, duration_sec=720.0, channels=SC_CHANNELS, seed=4)
    return path


def test_png_file_is_the_report_figure(psg, tmp_path):
    row = stage_file(psg, tmp_path / "o")
    png = Path(row["outputs"]["png"]).read_bytes()
    html = Path(row["outputs"]["html"]).read_text()
    imgs = _images(html)
    assert [alt for alt, _ in imgs] == ["hypnogram and hypnodensity"]
    assert imgs[0][1] == png  # one rendering, used twice
    assert "<h2>Hypnogram and hypnodensity</h2>" in html
    width, height = _png_size(png)
    assert 1000 < width < 1400 and 350 < height < 700  # 11 in wide at 110 dpi


def test_no_plot_renders_no_figure_and_reference_adds_its_figures(psg, tmp_path):
    from hypnoscope.io.hypnograms import read_hypnogram

    first = stage_file(psg, tmp_path / "a", plot=False)
    assert "png" not in first["outputs"]
    assert not list((tmp_path / "a").glob("*.png"))
    html = Path(first["outputs"]["html"]).read_text()
    assert "<img" not in html and "<svg" not in html and "base64" not in html
    assert "Figure not drawn (plotting was turned off: --no-plot)." in html
    # a reference adds its hypnogram row (a taller figure) and the confusion matrix
    ref = tmp_path / "ref.tsv"
    hyp = read_hypnogram(first["outputs"]["tsv"])
    hyp.to_tsv(ref)
    row = stage_file(psg, tmp_path / "b", reference=ref)
    imgs = _images(Path(row["outputs"]["html"]).read_text())
    assert [a for a, _ in imgs] == ["hypnogram, reference hypnogram and hypnodensity",
                                    "confusion matrix"]
    assert imgs[0][1] == Path(row["outputs"]["png"]).read_bytes()
    solo = _images(Path(stage_file(psg, tmp_path / "c")["outputs"]["html"]).read_text())
    assert _png_size(imgs[0][1])[1] > _png_size(solo[0][1])[1] + 150
    # without plot the confusion matrix is a table of counts: the reference is the
    # prediction itself, so every epoch is on the diagonal
    html = Path(stage_file(psg, tmp_path / "d", reference=ref, plot=False)
                ["outputs"]["html"]).read_text()
    assert "<img" not in html and not list((tmp_path / "d").glob("*.png"))
    table = html[html.index("<th>Reference / predicted</th>"):]
    table = table[:table.index("</table>")]
    cells = [[int(v) for v in re.findall(r"<td class='n'>(\d+)</td>", r)]
             for r in table.split("<tr>")[1:]]
    assert np.trace(np.array(cells)) == int((hyp.codes >= 0).sum()) == np.sum(cells)


def test_plot_night_rows_share_the_time_axis():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=40)
    hyp = Hypnogram(p.argmax(1), probabilities=p, onset_sec=60.0)
    ref = Hypnogram(rng.integers(0, 5, 50))
    fig = plot_night(hyp, reference=ref, title="night")
    axes = fig.axes[:3]
    assert [a.get_title(loc="left") for a in axes] == [
        "Prediction", "Reference", "Hypnodensity (per-epoch probabilities)"]
    for ax in axes:  # the union of both nights, in hours
        assert ax.get_xlim() == pytest.approx((0.0, 50 * 30 / 3600))
    assert [a.xaxis.get_label_text() != "" for a in axes] == [False, False, True]
    assert fig._suptitle.get_text() == "night"
    # a hypnogram without probabilities: one row, no hypnodensity
    fig1 = plot_night(ref)
    assert [a.get_title(loc="left") for a in fig1.axes] == ["Hypnogram"]
    assert _png_size(figure_to_png(fig1))[1] < _png_size(figure_to_png(fig))[1]
    assert type(fig.canvas).__name__ == "FigureCanvasBase"  # no pyplot figure manager

