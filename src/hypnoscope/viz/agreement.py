"""Agreement of stagers with a scorer across recordings: Bland–Altman plots and the HTML
page of a stager benchmark.

:func:`plot_bland_altman` draws the bias and 95 % limits of agreement (Bland & Altman
1986; computed by :func:`hypnoscope.evaluation.metrics.limits_of_agreement`) of a sleep
statistic measured by a stager and by the scorer on the same recordings;
:func:`write_benchmark_html` lays out the result of
:func:`hypnoscope.staging.compare_stagers.benchmark_stagers` as one self-contained HTML
file in the style of the per-night report (:mod:`hypnoscope.viz.report`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.evaluation.metrics import limits_of_agreement


def plot_bland_altman(pred: Sequence[float], ref: Sequence[float], ax=None,
                      title: str | None = None, unit: str = "") -> Any:
    """Bland–Altman plot: per recording the difference (stager − scorer) against the
    mean of the two, with the bias and the limits of agreement as lines."""
    from matplotlib.figure import Figure

    if ax is None:
        ax = Figure(figsize=(3.4, 2.8), layout="constrained").subplots()
    p = np.array([math.nan if x is None else float(x) for x in pred], dtype=float)
    r = np.array([math.nan if x is None else float(x) for x in ref], dtype=float)
    keep = np.isfinite(p) & np.isfinite(r)
    loa = limits_of_agreement(p, r)
    ax.scatter((p[keep] + r[keep]) / 2, p[keep] - r[keep], s=14, color="#1f77b4", alpha=0.8)
    if loa["n"]:
        ax.axhline(loa["bias"], color="#d62728", lw=1.2)
    if loa["n"] > 1:
        for y in (loa["lower"], loa["upper"]):
            ax.axhline(y, color="#d62728", lw=0.9, ls="--")
    ax.axhline(0.0, color="#888888", lw=0.6)
    if not loa["n"]:
        ax.text(0.5, 0.6, "no recording with both values", ha="center", va="center",
                transform=ax.transAxes, fontsize="small", color="#5b6476")
    suffix = f" ({unit})" if unit else ""
    ax.set_xlabel(f"mean of stager and scorer{suffix}", fontsize="small")
    ax.set_ylabel(f"stager − scorer{suffix}", fontsize="small")
    ax.tick_params(labelsize="small")
    if title:
        ax.set_title(f"{title}\nbias {_n(loa['bias'])}, LoA {_n(loa['lower'])} to "
                     f"{_n(loa['upper'])}", fontsize="small")
    return ax


def _n(x: Any, spec: str = ".1f") -> str:
    """A number for display; ``—`` when undefined."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return format(x, spec) if isinstance(x, float) else str(x)


def _bland_altman_figure(stats: dict[str, Any]) -> bytes:
    """One PNG with the Bland–Altman plot of every statistic of one model."""
    from matplotlib.figure import Figure

    from hypnoscope.evaluation.sleepstats import STAT_LABELS
    from hypnoscope.viz.plots import figure_to_png
    from hypnoscope.viz.report import FIGURE_DPI

    keys = list(stats)
    ncol = 4
    nrow = math.ceil(len(keys) / ncol)
    fig = Figure(figsize=(3.0 * ncol, 2.7 * nrow), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol)).ravel()
    for ax, key in zip(axes, keys, strict=False):
        name, unit = STAT_LABELS.get(key, (key, ""))
        plot_bland_altman(stats[key]["pred"], stats[key]["ref"], ax=ax, title=name, unit=unit)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    return figure_to_png(fig, dpi=FIGURE_DPI)


def _confusion_figure(pooled: dict[str, Any], title: str) -> bytes:
    from matplotlib.figure import Figure

    from hypnoscope.viz.plots import figure_to_png, plot_confusion_matrix
    from hypnoscope.viz.report import FIGURE_DPI

    ax = Figure(figsize=(4.2, 3.8), layout="constrained").subplots()
    plot_confusion_matrix(pooled["confusion_matrix"], pooled["labels"], normalize=True, ax=ax,
                          title=title)
    return figure_to_png(ax.figure, dpi=FIGURE_DPI)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    from hypnoscope.viz.report import _esc

    th = "".join(f"<th{' class=n' if i >= numeric_from else ''}>{_esc(h)}</th>"
                 for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(
        f"<td{' class=n' if i >= numeric_from else ''}>{_esc(c)}</td>"
        for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _models_html(result: dict[str, Any]) -> str:
    stages = ["W", "N1", "N2", "N3", "R"]
    rows = []
    for m, e in result["per_model"].items():
        pooled, mean, t = e.get("pooled") or {}, e.get("mean") or {}, e["time"]
        f1 = pooled.get("per_class_f1") or {}
        k = mean.get("kappa") or {}
        rows.append([m, f"{e['n_compared']} / {e['n_recordings']}",
                     _n(pooled.get("accuracy"), ".3f"), _n(pooled.get("kappa"), ".3f"),
                     _n(pooled.get("macro_f1"), ".3f"),
                     *[_n(f1.get(s), ".2f") for s in stages],
                     f"{_n(k.get('mean'), '.3f')} ± {_n(k.get('sd'), '.3f')}",
                     _n(t["mean_sec"], ".1f"), _n(t["sec_per_hour"], ".1f")])
    head = ["Model", "Compared", "Accuracy", "κ", "Macro-F1", *[f"F1 {s}" for s in stages],
            "κ per recording (mean ± sd)", "s per night", "s per hour"]
    return _table(head, rows)


def _statistics_html(result: dict[str, Any]) -> str:
    from hypnoscope.evaluation.sleepstats import STAT_LABELS

    models = [m for m, e in result["per_model"].items() if e.get("statistics")]
    if not models:
        return "<p class='sub'>No recording was compared with a reference.</p>"
    keys = list(result["per_model"][models[0]]["statistics"])
    rows = []
    for key in keys:
        name, unit = STAT_LABELS.get(key, (key, ""))
        cells = [f"{name} ({unit})" if unit else name]
        for m in models:
            s = result["per_model"][m]["statistics"][key]
            cells.append(f"{_n(s['bias'])} [{_n(s['lower'])}, {_n(s['upper'])}]")
        rows.append(cells)
    return _table(["Statistic", *models], rows)


def _paired_html(result: dict[str, Any]) -> str:
    if not result["paired"]:
        return "<p class='sub'>One model: no pair to compare.</p>"
    rows = [[f"{p['a']} − {p['b']}", p["metric"], p["n"],
             f"{_n(p['mean_diff'], '+.3f')} ± {_n(p['sd_diff'], '.3f')}",
             f"{_n(p['min_diff'], '+.3f')} to {_n(p['max_diff'], '+.3f')}",
             f"{p['wins_a']} / {p['wins_b']} / {p['ties']}"] for p in result["paired"]]
    return _table(["Models (a − b)", "Metric", "Recordings", "Mean difference ± sd", "Range",
                   "Wins a / b / ties"], rows, numeric_from=2)


def _recordings_html(records: list[dict[str, Any]]) -> str:
    rows = []
    for r in records:
        if r["status"] != "ok":
            rows.append([Path(r["recording"]).name, r["status"], "—", "—", "—", "—",
                         _n(r.get("staging_sec"), ".1f"), r.get("error", "")])
            continue
        rows.append([Path(r["recording"]).name, "ok", _n(r["accuracy"], ".3f"),
                     _n(r["kappa"], ".3f"), _n(r["macro_f1"], ".3f"), r["n_epochs"],
                     _n(r.get("staging_sec"), ".1f"), ""])
    return _table(["Recording", "Status", "Accuracy", "κ", "Macro-F1", "Epochs", "Staging s",
                   "Error"], rows)


def write_benchmark_html(path: str | os.PathLike, result: dict[str, Any],
                         plot: bool = True) -> Path:
    """Write the HTML page of a stager benchmark (one self-contained file): the models
    side by side, the sleep statistics' bias [limits of agreement], the paired
    comparison, and per model its confusion matrix, Bland–Altman plots and recordings
    (worst κ first); failures listed with their errors. ``plot=False`` draws no figure."""
    from hypnoscope._version import __version__
    from hypnoscope.utils.files import write_text_atomic
    from hypnoscope.viz.report import _CSS, _esc, _img_tag

    title = result.get("title") or "Stager benchmark"
    sub = (f"{result['n_recordings']} recording(s), {len(result['models'])} model(s): "
           + ", ".join(result["models"]))
    parts = [f"<h1>{_esc(title)}</h1><div class='sub'>{_esc(sub)}</div>"]
    if result.get("data_note"):
        parts.append(f"<div class='banner info'>{_esc(result['data_note'])}</div>")
    parts += ["<h2>Models (pooled over every compared epoch)</h2>", _models_html(result),
              "<h2>Sleep statistics against the scorer: bias [95 % limits of agreement]"
              "</h2>", _statistics_html(result),
              "<h2>Paired comparison per recording</h2>", _paired_html(result)]
    for m, e in result["per_model"].items():
        parts.append(f"<h2>Model {_esc(m)}</h2>")
        card = e.get("card") or {}
        if card.get("summary"):
            parts.append(f"<p class='sub'>{_esc(card['summary'])}</p>")
        if plot and e.get("pooled"):
            parts.append("<div class='grid'><div class='panel'>"
                         + _img_tag(_confusion_figure(e["pooled"], m), f"confusion matrix {m}")
                         + "</div><div></div></div>")
        if plot and e.get("statistics"):
            parts.append("<div class='panel'>" + _img_tag(
                _bland_altman_figure(e["statistics"]), f"Bland-Altman plots {m}") + "</div>")
        parts.append(_recordings_html([r for r in result["recordings"] if r["model"] == m]))
    if result["failures"]:
        parts.append("<h2>Failures</h2>" + _table(
            ["Model", "Recording", "Error"],
            [[f["model"], f["recording"], f["error"]] for f in result["failures"]]))
    parts.append(f"<p class='note'>Generated by hypnoscope {_esc(__version__)}. Agreement and "
                 "statistics over each recording's staged span "
                 "(hypnoscope.evaluation.metrics.compare_hypnograms).</p>")
    doc = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>"
           + "\n".join(parts) + "</main></body></html>\n")
    return write_text_atomic(path, doc)
