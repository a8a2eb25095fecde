"""Matplotlib figures: hypnogram, hypnodensity and confusion matrix, plus saving helpers.

Every ``plot_*`` function draws into ``ax`` (a new figure when ``None``) and returns the
axes, except :func:`plot_night`, which returns the one figure of a staged night (drawn
once per night by staging, for its PNG and its report). :func:`save_figure` writes
PNG/SVG/PDF atomically; :func:`figure_to_png` gives PNG bytes, and
:func:`figure_to_png_base64` and :func:`figure_to_svg` embeddable strings for HTML reports.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hypnoscope.utils.arrays import true_runs
from hypnoscope.utils.files import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hypnoscope.hypnogram import Hypnogram

#: Colour of each stage name (5- and 3-class).
STAGE_COLORS: dict[str, str] = {
    "W": "#f4a261", "N1": "#a8dadc", "N2": "#457b9d", "N3": "#1d3557", "R": "#e63946",
    "NREM": "#457b9d", "?": "#bbbbbb",
}

#: Colour of the band that marks epochs with a signal-quality flag.
QUALITY_COLOR = "#7b2cbf"

#: Vertical order of the hypnogram (top to bottom), the clinical convention.
_ORDER = {5: ("W", "R", "N1", "N2", "N3"), 3: ("W", "R", "NREM")}


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _time_axis(ax: Axes, hyp: Hypnogram, time_axis: str) -> None:
    """Label the x axis (hours from the recording start, or clock time)."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    if time_axis not in ("auto", "hours", "clock"):
        raise ValueError(f"time_axis must be 'auto', 'hours' or 'clock', got {time_axis!r}")
    span_h = max(hyp.duration_sec / 3600.0, 1e-9)
    step = 0.25 if span_h <= 2 else 0.5 if span_h <= 5 else 1.0 if span_h <= 12 else 2.0
    if time_axis == "clock" and hyp.start_time is None:
        raise ValueError("time_axis='clock' needs a hypnogram with a start_time")
    if time_axis in ("auto", "clock") and hyp.start_time is not None:
        start = hyp.start_time
        # put the ticks on whole clock hours (or quarters/halves for short recordings)
        into = (start.hour + start.minute / 60 + start.second / 3600) % step
        ax.xaxis.set_major_locator(MultipleLocator(step, offset=(-into) % step))

        def clock(x: float, _pos: Any) -> str:
            t = start + _dt.timedelta(hours=float(x))
            return t.strftime("%H:%M")

        ax.xaxis.set_major_formatter(FuncFormatter(clock))
        ax.set_xlabel("Clock time")
    else:
        ax.xaxis.set_major_locator(MultipleLocator(step))
        ax.set_xlabel("Time from recording start (h)")


def plot_hypnogram(hyp: Hypnogram, ax: Axes | None = None, time_axis: str = "auto",
                   highlight_rem: bool = True, color: str = "#333333",
                   title: str | None = None, show_unscored: bool = True,
                   figsize: tuple[float, float] = (11, 3.0), show_quality: bool = True,
                   ) -> Axes:
    """Step plot of a hypnogram with REM highlighted.

    Parameters
    ----------
    hyp : Hypnogram
        5- or 3-class hypnogram.
    ax : matplotlib Axes, optional
        Axes to draw into (a new figure when ``None``).
    time_axis : {"auto", "hours", "clock"}
        x axis in hours from the recording start, or wall-clock time (needs
        ``hyp.start_time``); "auto" uses the clock when the start time is known.
    highlight_rem : bool
        Draw REM epochs as thick red bars on the REM row.
    color : str
        Colour of the stage line.
    title : str, optional
        Axes title.
    show_unscored : bool
        Shade unscored epochs in grey (the line has gaps there).
    figsize : tuple
        Size of a new figure.
    show_quality : bool
        With per-epoch quality labels (``hyp.quality``, from staging), draw a purple
        band labelled "bad signal" under the N3 row over the epochs with a
        signal-quality flag (epochs outside the staged span are not marked: they are
        shaded as unscored).

    Returns
    -------
    Axes
    """
    ax = _axes(ax, figsize)
    order = _ORDER[hyp.n_classes]
    names = hyp.stage_names
    ypos = {names.index(n): len(order) - 1 - i for i, n in enumerate(order)}
    codes = hyp.codes
    y = np.array([ypos.get(int(c), np.nan) for c in codes], dtype=float)
    t_h = hyp.onsets / 3600.0
    ep_h = hyp.epoch_sec / 3600.0
    # step line: one point at the start of every epoch plus the end of the last one
    x_line = np.append(t_h, t_h[-1] + ep_h) if len(t_h) else t_h
    y_line = np.append(y, y[-1]) if len(y) else y
    ax.step(x_line, y_line, where="post", color=color, lw=1.0, zorder=2)
    if highlight_rem:
        rem = names.index("R")
        for k, (s, e) in enumerate(true_runs(codes == rem)):
            ax.fill_between([t_h[s], t_h[e - 1] + ep_h], ypos[rem] - 0.18, ypos[rem] + 0.18,
                            color=STAGE_COLORS["R"], lw=0, zorder=3,
                            label="REM" if k == 0 else None)
    if show_unscored:
        for s, e in true_runs(codes < 0):
            ax.axvspan(t_h[s], t_h[e - 1] + ep_h, color=STAGE_COLORS["?"], alpha=0.35, lw=0,
                       zorder=1)
    bottom, ticks, tick_labels = -0.6, list(range(len(order))), list(reversed(order))
    quality = getattr(hyp, "quality", None)
    if show_quality and quality is not None:
        flagged = np.array([q not in ("ok", "outside-span") for q in quality], dtype=bool)
        for k, (s, e) in enumerate(true_runs(flagged)):
            ax.fill_between([t_h[s], t_h[e - 1] + ep_h], -0.95, -0.7, color=QUALITY_COLOR,
                            lw=0, zorder=3, label="signal-quality flag" if k == 0 else None)
        bottom = -1.0
        ticks, tick_labels = [-0.825, *ticks], ["bad signal", *tick_labels]
    ax.set_yticks(ticks)
    ax.set_yticklabels(tick_labels)
    ax.set_ylim(bottom, len(order) - 0.4)
    if len(t_h):
        ax.set_xlim(t_h[0], t_h[-1] + ep_h)
    _time_axis(ax, hyp, time_axis)
    ax.set_ylabel("Stage")
    ax.grid(axis="x", color="#dddddd", lw=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, loc="left")
    return ax


def plot_hypnodensity(hyp: Hypnogram, ax: Axes | None = None, time_axis: str = "auto",
                      title: str | None = None, legend: bool = True,
                      figsize: tuple[float, float] = (11, 2.6)) -> Axes:
    """Stacked per-epoch stage probabilities (hypnodensity).

    Parameters
    ----------
    hyp : Hypnogram
        Hypnogram with ``probabilities`` (e.g. from a model).
    ax, time_axis, title, figsize
        As in :func:`plot_hypnogram`.
    legend : bool
        Add a stage legend to the right of the axes.

    Raises
    ------
    ValueError
        If the hypnogram has no probabilities.
    """
    if hyp.probabilities is None:
        raise ValueError("this hypnogram has no per-epoch probabilities to plot (a "
                         "hypnodensity needs a model's output, not a scored hypnogram)")
    ax = _axes(ax, figsize)
    proba = np.asarray(hyp.probabilities, dtype=float)
    t_h = hyp.onsets / 3600.0
    ep_h = hyp.epoch_sec / 3600.0
    # repeat each epoch's value over its whole width (step-like stack)
    x = np.repeat(np.append(t_h, t_h[-1] + ep_h), 2)[1:-1]
    order = list(hyp.stage_names)
    # N3 at the bottom, W on top, so the deep stages read like the hypnogram's bottom rows
    draw = list(reversed(order))
    ys = [np.repeat(proba[:, order.index(n)], 2) for n in draw]
    ax.stackplot(x, ys, colors=[STAGE_COLORS[n] for n in draw], labels=draw, lw=0)
    ax.set_ylim(0, 1)
    ax.set_xlim(t_h[0], t_h[-1] + ep_h)
    ax.set_ylabel("Probability")
    _time_axis(ax, hyp, time_axis)
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], loc="upper left", bbox_to_anchor=(1.005, 1),
                  frameon=False, fontsize="small")
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, loc="left")
    return ax


def plot_night(hyp: Hypnogram, reference: Hypnogram | None = None, title: str | None = None,
               time_axis: str = "auto", width: float = 11.0) -> Figure:
    """One figure of a staged night: hypnogram, reference hypnogram (if given) and
    hypnodensity (if ``hyp`` has probabilities), stacked on a shared time axis.

    Drawn on a :class:`matplotlib.figure.Figure` (no pyplot state: garbage-collected
    like any object) with fixed margins (no layout engine, no cropping on saving: save
    it with ``figure_to_png(fig, crop=False)``), which halves the rendering time of a
    constrained layout cropped to its content. Staging renders it once per night and
    uses the same PNG for ``S.hypnogram.png`` and the report.

    Parameters
    ----------
    hyp : Hypnogram
        The staged (or any) hypnogram.
    reference : Hypnogram, optional
        A reference hypnogram of the same night, drawn below as "Reference".
    title : str, optional
        Figure title (e.g. the recording's file name).
    time_axis : {"auto", "hours", "clock"}
        As in :func:`plot_hypnogram`.
    width : float
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    hyps = [(hyp, "Prediction" if reference is not None else "Hypnogram")]
    if reference is not None:
        hyps.append((reference, "Reference"))
    density = hyp.probabilities is not None
    ratios = [1.1] * len(hyps) + ([1.0] if density else [])
    top = 0.62 if title else 0.35  # margins in inches: title, axes titles
    height = 2.1 * sum(ratios) + top - 0.3
    fig = Figure(figsize=(width, height))
    # left: the "bad signal" tick label and the y label; right: the hypnodensity legend
    grid = {"height_ratios": ratios, "left": 1.15 / width, "right": 1 - 0.65 / width,
            "top": 1 - top / height, "bottom": 0.5 / height, "hspace": 0.32}
    axes = fig.subplots(len(ratios), 1, sharex=True, squeeze=False, gridspec_kw=grid)[:, 0]
    for ax, (h, name) in zip(axes, hyps, strict=False):
        plot_hypnogram(h, ax=ax, time_axis=time_axis, title=name)
    if density:
        plot_hypnodensity(hyp, ax=axes[-1], time_axis=time_axis,
                          title="Hypnodensity (per-epoch probabilities)")
    lo = min(h.onset_sec for h, _ in hyps) / 3600.0
    hi = max(h.onset_sec + h.duration_sec for h, _ in hyps) / 3600.0
    axes[-1].set_xlim(lo, hi)  # shared by every row
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
        ax.set_xlabel("")
    if title:
        fig.suptitle(title, x=0.01, ha="left")
    return fig


def plot_confusion_matrix(cm, labels: Sequence[str], normalize: bool = True,
                          ax: Axes | None = None, title: str | None = None,
                          cmap: str = "Blues", figsize: tuple[float, float] = (4.6, 4.0)) -> Axes:
    """Confusion-matrix heat map (rows = reference, columns = prediction).

    Parameters
    ----------
    cm : array-like (n, n)
        Counts (e.g. ``evaluate(...)["confusion_matrix"]``).
    labels : sequence of str
        Class names.
    normalize : bool
        Colour and annotate by row-normalised proportions (recall per class), with the
        counts in brackets; otherwise by counts.
    ax, title, figsize
        As in :func:`plot_hypnogram`.
    cmap : str
        Matplotlib colour map.
    """
    cm = np.asarray(cm, dtype=float)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(labels):
        raise ValueError(f"cm must be a square matrix matching {len(labels)} labels, "
                         f"got shape {cm.shape}")
    ax = _axes(ax, figsize)
    row = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, row, out=np.zeros_like(cm), where=row > 0)
    shown = norm if normalize else cm
    vmax = 1.0 if normalize else max(float(cm.max()), 1.0)
    ax.imshow(shown, cmap=cmap, vmin=0, vmax=vmax)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            text = (f"{norm[i, j]:.0%}\n({int(cm[i, j])})" if normalize
                    else f"{int(cm[i, j])}")
            dark = shown[i, j] > 0.55 * vmax
            ax.text(j, i, text, ha="center", va="center", fontsize="small",
                    color="white" if dark else "#222222")
    n = len(labels)
    ax.set_xticks(range(n), labels=list(labels))
    ax.set_yticks(range(n), labels=list(labels))
    ax.set_xlabel("Predicted")
    ax.set_ylabel("Reference")
    if title:
        ax.set_title(title)
    return ax


# ------------------------------------------------------------------ saving
def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 150,
                close: bool = False) -> Path:
    """Save a figure atomically; the format follows the suffix (.png, .svg, .pdf)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"{path}: unsupported figure format {fmt!r}; use .png, .svg or .pdf")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path


def figure_to_png(fig: Figure, dpi: int = 110, crop: bool = True) -> bytes:
    """PNG of a figure (bytes), cropped to its content like :func:`save_figure`
    (``crop=False``: the whole figure, for figures laid out with fixed margins such as
    :func:`plot_night`'s; saves a layout pass)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if crop else None)
    return buf.getvalue()


def figure_to_png_base64(fig: Figure, dpi: int = 110) -> str:
    """PNG of a figure as a base64 string (for ``<img src="data:image/png;base64,...">``)."""
    return base64.b64encode(figure_to_png(fig, dpi)).decode("ascii")


def figure_to_svg(fig: Figure) -> str:
    """Inline SVG markup of a figure (without the XML prolog)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    svg = buf.getvalue()
    return svg[svg.find("<svg"):]
