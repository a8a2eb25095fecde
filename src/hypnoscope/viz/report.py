"""Per-night report: one self-contained HTML file plus a JSON file with the same numbers.

The HTML embeds its figures as base64 PNG and its CSS inline, so it can be mailed or
archived as a single file. The JSON holds recording info, channels and model (from
``info``), the hypnogram summary, sleep statistics, stage minutes and, with a
reference hypnogram, agreement metrics and the confusion matrix.

Warnings as data: the notices of staging and reading (``info["notices"]``, see
:mod:`hypnoscope.notices`) are stored as ``notices`` (a list of ``{code, message,
severity, channel}``) and ``warnings`` (the messages of severity warning) in the JSON,
and shown as a banner at the top of the HTML. Staging's signal quality
(``info["quality"]``) becomes ``quality`` in the JSON and a per-channel table in the
HTML; the staged span (``info["span"]``) sets the time in bed of the statistics and
agreement when no lights-off/on are given, and is stored as ``span``.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hypnoscope.evaluation.sleepstats import (
    STAT_KEYS,
    STAT_LABELS,
    json_safe,
    sleep_statistics,
    stage_minutes,
    time_in_bed_slice,
)
from hypnoscope.utils.files import write_json_atomic, write_text_atomic

if TYPE_CHECKING:  # pragma: no cover
    from hypnoscope.hypnogram import Hypnogram

#: Resolution of the report's figures and of ``S.hypnogram.png`` (dots per inch).
FIGURE_DPI = 110

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0;background:#f5f6f8;color:#1d2330;line-height:1.4}
main{max-width:1080px;margin:0 auto;padding:24px 28px 40px}
h1{font-size:1.55rem;margin:0 0 4px}
h2{font-size:1.15rem;margin:28px 0 10px;border-bottom:1px solid #d9dde5;padding-bottom:4px}
.sub{color:#5b6476;font-size:.92rem;margin-bottom:14px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #e0e3ea;border-radius:8px;padding:10px 14px;
 min-width:130px;flex:1}
.card .v{font-size:1.45rem;font-weight:600}
.card .k{font-size:.78rem;color:#5b6476;text-transform:uppercase;letter-spacing:.03em}
.panel{background:#fff;border:1px solid #e0e3ea;border-radius:8px;padding:12px 14px}
.fig{width:100%;height:auto;display:block}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px;align-items:start}
@media (max-width:800px){.grid{grid-template-columns:1fr}}
table{border-collapse:collapse;width:100%;font-size:.9rem;background:#fff}
th,td{padding:4px 8px;border-bottom:1px solid #eceff4;text-align:left}
th{background:#f0f2f6;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
dl.info{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0;
 font-size:.9rem}
dl.info dt{color:#5b6476}
dl.info dd{margin:0;overflow-wrap:anywhere}
.note{color:#5b6476;font-size:.82rem;margin-top:24px}
.banner{border-radius:8px;padding:10px 14px;margin:0 0 16px;font-size:.92rem}
.banner.warn{background:#fff4e5;border:1px solid #f0b35b;color:#5c3b00}
.banner.info{background:#eef4fb;border:1px solid #b9cfe8;color:#1d3557}
.banner ul{margin:4px 0 0 18px;padding:0}
.banner b{font-weight:600}
"""


def _fmt(value: Any, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    if isinstance(value, (float, np.floating)):
        if unit == "":  # counts
            return f"{value:.0f}"
        if unit == "metric":
            return f"{value:.3f}"
        return f"{value:.1f}"
    return str(value)


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _signed(text: str) -> str:
    return text if text.startswith(("-", "—")) or text.strip("0.") == "" else "+" + text


def _stat_label(key: str) -> str:
    name, unit = STAT_LABELS[key]
    return _esc(f"{name} ({unit})" if unit else name)


def _info_html(d: dict[str, Any]) -> str:
    if not d:
        return "<span class='sub'>not given</span>"

    def short(x: Any) -> str:  # floats to 4 significant digits, lists comma-separated
        if isinstance(x, (float, np.floating)):
            return f"{x:.4g}"
        if isinstance(x, (list, tuple, np.ndarray)):
            return ", ".join(short(b) for b in x)
        return str(x)

    rows = []
    for k, v in d.items():
        if isinstance(v, dict):
            v = "; ".join(f"{a}: {short(b)}" for a, b in v.items() if b not in (None, "", []))
        else:
            v = short(v)
        rows.append(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>")
    return "<dl class='info'>" + "".join(rows) + "</dl>"


def _figure(width: float, height: float, nrows: int = 1, sharex: bool = False):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, 1, sharex=sharex, squeeze=False)[:, 0]
    return fig, list(axes)


def _img(fig, alt: str) -> str:
    from hypnoscope.viz.plots import figure_to_png

    return _img_tag(figure_to_png(fig, dpi=FIGURE_DPI), alt)


def _img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG inline (the report is one self-contained file)."""
    import base64

    return (f'<img class="fig" alt="{_esc(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')


def _hypnogram_json(hyp: Hypnogram) -> dict[str, Any]:
    out: dict[str, Any] = {
        "n_epochs": hyp.n_epochs, "epoch_sec": hyp.epoch_sec, "onset_sec": hyp.onset_sec,
        "n_classes": hyp.n_classes,
        "start_time": hyp.start_time.isoformat() if hyp.start_time else None,
        "duration_h": hyp.duration_sec / 3600.0,
        "stages": hyp.labels,
        "n_unscored": int((~hyp.scored).sum()),
    }
    if hyp.probabilities is not None:
        # over the scored epochs: unscored ones (not staged) have confidence 0
        conf = hyp.probabilities.max(axis=1)[hyp.scored]
        out["mean_confidence"] = float(conf.mean()) if conf.size else None
    if getattr(hyp, "quality", None) is not None:
        out["quality"] = list(hyp.quality)
    return out


def _notice_dicts(notices: Any) -> list[dict[str, Any]]:
    """Notices (Notice objects or dicts) as JSON-ready dicts."""
    out = []
    for n in notices or []:
        d = n.to_dict() if hasattr(n, "to_dict") else dict(n)
        out.append({"code": d.get("code"), "message": d.get("message"),
                    "severity": d.get("severity", "warning"), "channel": d.get("channel")})
    return out


def _banner_html(notices: list[dict[str, Any]]) -> str:
    """Warnings (amber) and notes (blue) at the top of the report."""
    parts = []
    for sev, cls, head in (("warning", "warn", "Warning"), ("info", "info", "Note")):
        items = [n["message"] for n in notices if n["severity"] == sev]
        if not items:
            continue
        title = f"{len(items)} {head.lower()}{'s' if len(items) > 1 else ''}"
        if sev == "warning":
            title += " — check these before trusting the results"
        parts.append(f"<div class='banner {cls}' role='{'alert' if sev == 'warning' else 'note'}'>"
                     f"<b>{_esc(title)}</b><ul>"
                     + "".join(f"<li>{_esc(m)}</li>" for m in items) + "</ul></div>")
    return "".join(parts)


def _quality_html(quality: dict[str, Any]) -> str:
    """Per-channel signal-quality table of staging's ``info["quality"]``."""
    from hypnoscope.signal.quality import FLAG_LABELS

    flags = list(FLAG_LABELS.values())
    used = set(quality.get("channels_used") or [])
    dropped = quality.get("channels_dropped") or {}
    head = ("<tr><th>Channel</th><th>Role</th><th>Use</th><th class='n'>Flagged</th>"
            + "".join(f"<th class='n'>{_esc(f)}</th>" for f in flags) + "</tr>")
    rows = []
    for ch, c in (quality.get("channels") or {}).items():
        use = "dropped" if ch in dropped else ("staged" if ch in used or not used else "not used")
        rows.append(
            f"<tr><td>{_esc(ch)}</td><td>{_esc(c.get('role', ''))}</td><td>{_esc(use)}</td>"
            f"<td class='n'>{100 * float(c.get('bad_fraction') or 0):.1f} %</td>"
            + "".join(f"<td class='n'>{int((c.get('flags') or {}).get(f, 0))}</td>"
                      for f in flags) + "</tr>")
    n = quality.get("n_epochs") or 0
    unscored = quality.get("unscored_epochs")
    lines = []
    if unscored is not None:
        lines.append(f"{unscored} of {n} epochs unscored for signal quality "
                     f"({100 * unscored / n if n else 0:.1f} %)")
    if quality.get("rule"):
        lines.append(f"Rule: {quality['rule']}.")
    for ch, why in dropped.items():
        lines.append(f"Dropped {ch}: {why}.")
    if quality.get("checked") is False:
        lines.append("Signal quality was not checked (check_quality=False).")
    return ("<table>" + head + "".join(rows) + "</table>"
            + "".join(f"<p class='sub'>{_esc(x)}</p>" for x in lines))


def report_paths(out_stem: str | os.PathLike) -> tuple[Path, Path]:
    """HTML and JSON paths of a report stem (a ``.html``/``.json`` suffix is dropped)."""
    stem = Path(out_stem)
    if stem.suffix.lower() in (".html", ".json"):
        stem = stem.with_suffix("")
    return stem.with_name(stem.name + ".html"), stem.with_name(stem.name + ".json")


def write_report(out_stem: str | os.PathLike, hypnogram: Hypnogram, info: dict[str, Any],
                 reference: Hypnogram | None = None, lights_off: float | None = None,
                 lights_on: float | None = None, title: str | None = None,
                 comparison: dict[str, Any] | None = None,
                 figure_png: bytes | None = None, plot: bool = True) -> tuple[Path, Path]:
    """Write the per-night report ``<out_stem>.html`` and ``<out_stem>.json`` atomically.

    Parameters
    ----------
    out_stem : path
        Output path without suffix (``night1`` gives ``night1.html`` and ``night1.json``).
    hypnogram : Hypnogram
        The staged night (with probabilities, a hypnodensity is included).
    info : dict
        Free-form recording information shown and stored as given. Recognised keys:
        ``channels`` (list, or dict role -> list), ``model`` (str or dict), and from
        :func:`hypnoscope.staging.pipeline.stage_recording` ``notices`` (Notice objects or
        dicts), ``warnings`` (messages, used when there are no notices), ``quality``
        and ``span``; every other key is recording information
        (``recording``/``source``, ``subject``, ...).
    reference : Hypnogram, optional
        A reference hypnogram of the same night (e.g. the scorer's); adds agreement
        metrics, the confusion matrix and statistic differences
        (:func:`hypnoscope.evaluation.metrics.compare_hypnograms`).
    lights_off, lights_on : float, optional
        Time in bed in seconds from the recording start (see
        :func:`hypnoscope.evaluation.sleepstats.sleep_statistics`). Default: those of
        ``info["span"]`` (the staged span), else the first and last scored epoch.
    title : str, optional
        Report title (default from ``info['recording']``/``info['source']``).
    comparison : dict, optional
        The caller's ``compare_hypnograms(hypnogram, reference, lights_off, lights_on)``
        result, when it has one already (it is computed again only if its lights-off/on
        differ from those used here, so that statistics and agreement share one time in
        bed).
    figure_png : bytes, optional
        The night's figure as PNG (:func:`hypnoscope.viz.plots.plot_night` of ``hypnogram``
        and ``reference``), when the caller has rendered it already (staging writes the
        same image as ``S.hypnogram.png``); drawn here otherwise.
    plot : bool, default True
        Draw figures. False (``--no-plot``) renders none: the report says the figure was
        not drawn, and the confusion matrix is a table of epoch counts.

    Returns
    -------
    (Path, Path)
        The HTML and JSON paths.
    """
    from hypnoscope.notices import Notices
    from hypnoscope.viz.plots import figure_to_png, plot_night

    html_path, json_path = report_paths(out_stem)
    info, channels, model, notices, quality, span = _split_info(info)
    stat_notices = Notices()
    if lights_off is None and lights_on is None:
        lights_off, lights_on = span.get("lights_off_sec"), span.get("lights_on_sec")
        if comparison is not None and any(
                v is not None and not np.isclose(v, comparison[k])
                for k, v in (("lights_off", lights_off), ("lights_on", lights_on))):
            comparison = None  # computed over another time in bed: redo it below
    name = info.get("recording") or info.get("source") or html_path.stem
    title = title or f"Sleep report — {Path(str(name)).name}"

    if reference is not None:
        if comparison is None:
            from hypnoscope.evaluation.metrics import compare_hypnograms

            comparison = compare_hypnograms(hypnogram, reference, lights_off=lights_off,
                                            lights_on=lights_on)
        stats = {k: v["pred"] for k, v in comparison["sleep_statistics"].items()}
    else:
        stats = sleep_statistics(hypnogram, lights_off=lights_off, lights_on=lights_on,
                                 notices=stat_notices)
    minutes = stage_minutes(hypnogram)
    created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    fields = {"title": title, "created_utc": created, "recording": info,
              "channels": channels, "model": model, "sleep_statistics": stats,
              "stage_minutes": minutes, "notices": notices, "quality": quality, "span": span}
    payload = _report_payload(hypnogram, reference, comparison, fields, lights_off,
                              lights_on, stat_notices)

    # one figure (hypnogram, reference, hypnodensity on a shared time axis), drawn
    # here unless the caller has rendered it already (staging writes the same PNG)
    if not plot:
        figure_png = None
    elif figure_png is None:
        figure_png = figure_to_png(plot_night(hypnogram, reference=reference),
                                   dpi=FIGURE_DPI, crop=False)
    doc = _report_html(hypnogram, reference, comparison, fields, payload["time_in_bed"],
                       figure_png)
    write_json_atomic(json_path, payload)
    write_text_atomic(html_path, doc)
    return html_path, json_path


def _split_info(info: dict[str, Any] | None) -> tuple[dict[str, Any], Any, Any,
                                                      list[dict[str, Any]], Any,
                                                      dict[str, Any]]:
    """``info`` without its recognised keys, and those: ``(info, channels, model,
    notices, quality, span)`` (notices as dicts; plain ``warnings`` become notices)."""
    from hypnoscope.notices import Notice

    info = dict(info or {})
    channels = info.pop("channels", None)
    model = info.pop("model", None)
    notices = _notice_dicts(info.pop("notices", None))
    old_warnings = [str(m) for m in info.pop("warnings", None) or []]
    if not notices:  # callers that only have plain messages
        notices = _notice_dicts(Notice("warning", m) for m in old_warnings)
    quality = info.pop("quality", None)
    span = info.pop("span", None) or {}
    return info, channels, model, notices, quality, span


def _agreement_json(comparison: dict[str, Any]) -> dict[str, Any]:
    """The report's ``agreement`` block from a :func:`compare_hypnograms` result."""
    ep = comparison["epochs"]
    keys = ("n_epochs", "n_excluded", "accuracy", "macro_f1", "kappa", "macro_recall",
            "macro_specificity", "per_class_f1", "precision", "recall", "specificity",
            "support", "labels", "confusion_matrix", "confusion_matrix_normalized")
    agreement = {k: ep[k] for k in keys}
    if "epochs_3class" in comparison:
        e3 = comparison["epochs_3class"]
        agreement["three_class"] = {k: e3[k] for k in keys}
    agreement["offset_epochs"] = comparison["offset_epochs"]
    agreement["n_common_epochs"] = comparison["n_common_epochs"]
    for k in ("mean_confidence", "mean_confidence_correct", "mean_confidence_wrong"):
        if k in comparison:
            agreement[k] = comparison[k]
    return agreement


def _report_payload(hypnogram: Hypnogram, reference: Hypnogram | None,
                    comparison: dict[str, Any] | None, fields: dict[str, Any],
                    lights_off: float | None, lights_on: float | None,
                    stat_notices: Any) -> dict[str, Any]:
    """The report's JSON (made JSON-safe). ``fields`` holds title, created_utc, recording,
    channels, model, sleep_statistics, stage_minutes, notices, quality and span; notices of
    the time-in-bed clipping are added to ``fields["notices"]``."""
    from hypnoscope._version import __version__

    notices = fields["notices"]
    payload: dict[str, Any] = {
        "title": fields["title"],
        "created_utc": fields["created_utc"],
        "hypnoscope_version": __version__,
        **{k: fields[k] for k in ("recording", "channels", "model")},
        "hypnogram": _hypnogram_json(hypnogram),
        **{k: fields[k] for k in ("sleep_statistics", "stage_minutes")},
        "notices": notices,
        "warnings": [n["message"] for n in notices if n["severity"] == "warning"],
    }
    if fields["quality"] is not None:
        payload["quality"] = fields["quality"]
    if fields["span"]:
        payload["span"] = fields["span"]
    if comparison is not None:
        payload["reference"] = {"hypnogram": _hypnogram_json(reference),
                                "sleep_statistics": {k: v["ref"] for k, v in
                                                     comparison["sleep_statistics"].items()}}
        payload["agreement"] = _agreement_json(comparison)
        payload["sleep_statistics_difference"] = {
            k: v["diff"] for k, v in comparison["sleep_statistics"].items()}
    # the time in bed actually used (lights-off/on clipped to the epochs)
    used = (hypnogram, lights_off, lights_on) if comparison is None else (
        reference, comparison["lights_off"], comparison["lights_on"])
    sl = time_in_bed_slice(*used, notices=stat_notices)
    for n in _notice_dicts(stat_notices):  # e.g. lights-off/on outside the hypnogram
        if n not in notices:
            notices.append(n)
            if n["severity"] == "warning":
                payload["warnings"].append(n["message"])
    payload["time_in_bed"] = {
        "start_sec": float(used[0].onsets[sl.start]),
        "end_sec": float(used[0].onsets[sl.stop - 1] + used[0].epoch_sec),
        "lights_off_sec": lights_off, "lights_on_sec": lights_on}
    return json_safe(payload)


def _cards_html(s: dict[str, Any], comparison: dict[str, Any] | None) -> str:
    """The headline cards (sleep statistics, and kappa with a reference)."""
    cards = [
        ("Total sleep time", f"{_fmt(s['total_sleep_min'], 'min')} min"),
        ("Sleep efficiency", f"{_fmt(s['sleep_efficiency_pct'], '%')} %"),
        ("Sleep-onset latency", f"{_fmt(s['sleep_onset_latency_min'], 'min')} min"),
        ("WASO", f"{_fmt(s['waso_min'], 'min')} min"),
        ("REM latency (from onset)", f"{_fmt(s['rem_latency_min'], 'min')} min"),
    ]
    if comparison is not None:
        cards.append(("Agreement (κ)", f"{comparison['epochs']['kappa']:.3f}"))
    return "".join(f"<div class='card'><div class='k'>{_esc(k)}</div>"
                   f"<div class='v'>{_esc(v)}</div></div>" for k, v in cards)


def _stats_table_html(s: dict[str, Any], comparison: dict[str, Any] | None) -> str:
    """Sleep statistics (prediction, reference and difference with a reference)."""
    if comparison is not None:
        head = ("<tr><th>Statistic</th><th class='n'>Prediction</th><th class='n'>Reference"
                "</th><th class='n'>Difference</th></tr>")
        rows = "".join(
            f"<tr><td>{_stat_label(k)}</td><td class='n'>{_fmt(v['pred'], STAT_LABELS[k][1])}</td>"
            f"<td class='n'>{_fmt(v['ref'], STAT_LABELS[k][1])}</td>"
            f"<td class='n'>{_signed(_fmt(v['diff'], STAT_LABELS[k][1]))}</td></tr>"
            for k, v in ((k, comparison["sleep_statistics"][k]) for k in STAT_KEYS))
    else:
        head = "<tr><th>Statistic</th><th class='n'>Value</th></tr>"
        rows = "".join(
            f"<tr><td>{_stat_label(k)}</td><td class='n'>{_fmt(s[k], STAT_LABELS[k][1])}</td>"
            "</tr>" for k in STAT_KEYS)
    return f"<table>{head}{rows}</table>"


def _minutes_table_html(minutes: dict[str, float]) -> str:
    """Minutes and percentage of the recording per stage."""
    total = sum(minutes.values()) or 1.0
    return ("<table><tr><th>Stage</th><th class='n'>Minutes</th>"
            "<th class='n'>% of recording</th></tr>" + "".join(
                f"<tr><td>{'Unscored' if k == '?' else _esc(k)}</td>"
                f"<td class='n'>{v:.1f}</td>"
                f"<td class='n'>{100 * v / total:.1f}</td></tr>"
                for k, v in minutes.items()) + "</table>")


def _subtitle(hypnogram: Hypnogram, tib: dict[str, Any], span: dict[str, Any]) -> str:
    """The line under the title: epochs, duration, start, time in bed and how it was set."""
    sub = (f"{hypnogram.n_epochs} epochs of {hypnogram.epoch_sec:g} s "
           f"({hypnogram.duration_sec / 3600:.2f} h)")
    if hypnogram.start_time is not None:
        start = hypnogram.start_time  # with its fraction of a second (EDF+ sub-second start)
        sub += (f" · start {start:%Y-%m-%d %H:%M:%S}"
                + (f".{start.microsecond:06d}".rstrip("0") if start.microsecond else ""))

    def when(sec: float) -> str:
        if hypnogram.start_time is None:
            return f"{sec / 3600:.2f} h"
        return f"{hypnogram.start_time + _dt.timedelta(seconds=sec):%H:%M:%S}"

    sub += f" · time in bed {when(tib['start_sec'])}–{when(tib['end_sec'])}"
    how = {"lights": "lights-off/on given", "auto-crop": "automatic crop to the sleep "
           f"period ±{span.get('crop_pad_min', 30):g} min",
           "lights+auto-crop": "lights-off/on and automatic crop"}.get(span.get("source"))
    if how:
        sub += f" ({how}; staged epochs {span.get('start_epoch')}–{span.get('stop_epoch')})"
    elif tib["lights_off_sec"] is None and tib["lights_on_sec"] is None:
        sub += " (first to last scored epoch)"
    return sub


def _confusion_table_html(cm: Any, labels: list[str]) -> str:
    """The confusion matrix as a table of epoch counts (rows reference, columns predicted)."""
    head = "".join(f"<th class='n'>{_esc(n)}</th>" for n in labels)
    rows = "".join(f"<tr><td>{_esc(n)}</td>" + "".join(f"<td class='n'>{int(v)}</td>"
                                                        for v in row) + "</tr>"
                   for n, row in zip(labels, np.asarray(cm), strict=True))
    return f"<table><tr><th>Reference / predicted</th>{head}</tr>{rows}</table>"


def _agreement_html(comparison: dict[str, Any], plot: bool = True) -> str:
    """Agreement section: summary, per-stage table and the confusion matrix (a figure, or
    without ``plot`` a table of counts)."""
    from hypnoscope.viz.plots import plot_confusion_matrix

    ep = comparison["epochs"]
    if plot:
        fig, (ax,) = _figure(4.4, 3.9)
        plot_confusion_matrix(ep["confusion_matrix"], ep["labels"], normalize=True, ax=ax)
        cm_img = _img(fig, "confusion matrix")
    else:
        cm_img = _confusion_table_html(ep["confusion_matrix"], ep["labels"])
    summary = [("Epochs compared", f"{ep['n_epochs']}"),
               ("Accuracy", f"{100 * ep['accuracy']:.1f} %"),
               ("Macro F1", f"{ep['macro_f1']:.3f}"),
               ("Cohen's κ", f"{ep['kappa']:.3f}"),
               ("Sensitivity (macro)", f"{ep['macro_recall']:.3f}"),
               ("Specificity (macro)", f"{ep['macro_specificity']:.3f}")]
    if "epochs_3class" in comparison:
        e3 = comparison["epochs_3class"]
        summary += [("3-class accuracy (W/NREM/R)", f"{100 * e3['accuracy']:.1f} %"),
                    ("3-class κ", f"{e3['kappa']:.3f}")]
    sum_table = "<table>" + "".join(f"<tr><td>{_esc(k)}</td><td class='n'>{_esc(v)}</td>"
                                    "</tr>" for k, v in summary) + "</table>"
    cls_table = ("<table><tr><th>Stage</th><th class='n'>Precision</th>"
                 "<th class='n'>Sensitivity</th><th class='n'>Specificity</th>"
                 "<th class='n'>F1</th><th class='n'>Epochs</th></tr>" + "".join(
                     f"<tr><td>{_esc(n)}</td>"
                     f"<td class='n'>{_fmt(c['precision'], 'metric')}</td>"
                     f"<td class='n'>{_fmt(c['recall'], 'metric')}</td>"
                     f"<td class='n'>{_fmt(c['specificity'], 'metric')}</td>"
                     f"<td class='n'>{_fmt(c['f1'], 'metric')}</td>"
                     f"<td class='n'>{c['support']}</td></tr>"
                     for n, c in ep["per_class"].items()) + "</table>")
    return ("<h2>Agreement with the reference</h2><div class='grid'><div>" + sum_table
            + "<br>" + cls_table + "</div><div class='panel'>" + cm_img + "</div></div>")


def _report_html(hypnogram: Hypnogram, reference: Hypnogram | None,
                 comparison: dict[str, Any] | None, fields: dict[str, Any],
                 time_in_bed: dict[str, Any], figure_png: bytes | None) -> str:
    """The whole HTML document of the report; ``fields`` as for :func:`_report_payload`
    (before JSON conversion), ``time_in_bed`` the JSON's; ``figure_png`` None: no figures
    (``--no-plot``)."""
    from hypnoscope._version import __version__

    model, channels, info = fields["model"], fields["channels"], fields["recording"]
    span, quality = fields["span"], fields["quality"]
    title, created = fields["title"], fields["created_utc"]
    density = hypnogram.probabilities is not None
    alt = ("hypnogram" + (", reference hypnogram" if reference is not None else "")
           + (" and hypnodensity" if density else ""))
    heading = "Hypnogram and hypnodensity" if density else "Hypnogram"
    model_info = model if isinstance(model, dict) else ({"model": model} if model else {})
    chan_info = (channels if isinstance(channels, dict)
                 else ({"channels": channels} if channels else {}))
    stats = fields["sleep_statistics"]
    sub = _subtitle(hypnogram, time_in_bed, span)
    parts = [
        _banner_html(fields["notices"]),
        f"<h1>{_esc(title)}</h1><div class='sub'>{_esc(sub)}</div>",
        f"<div class='cards'>{_cards_html(stats, comparison)}</div>",
        f"<h2>{_esc(heading)}</h2><div class='panel'>" + (
            _img_tag(figure_png, alt) if figure_png is not None
            else "<p class='sub'>Figure not drawn (plotting was turned off: --no-plot)."
            "</p>") + "</div>",
    ]
    parts.append("<div class='grid'><div><h2>Sleep statistics</h2>"
                 + _stats_table_html(stats, comparison) + "</div>"
                 "<div><h2>Stage minutes (whole hypnogram)</h2>"
                 + _minutes_table_html(fields["stage_minutes"]) +
                 "<h2>Recording</h2><div class='panel'>" + _info_html(info) + "</div>"
                 "<h2>Channels</h2><div class='panel'>" + _info_html(chan_info) + "</div>"
                 "<h2>Model</h2><div class='panel'>" + _info_html(model_info) + "</div>"
                 "</div></div>")
    if quality is not None:
        parts.append("<h2>Signal quality</h2><div class='panel'>" + _quality_html(quality)
                     + "</div>")
    if comparison is not None:
        parts.append(_agreement_html(comparison, plot=figure_png is not None))
    parts.append(
        f"<p class='note'>Generated by hypnoscope {_esc(__version__)} on {_esc(created)}. "
        "Sleep statistics follow AASM definitions (hypnoscope.evaluation.sleepstats). Automated "
        "staging is a research tool and must be reviewed by a qualified scorer.</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>"
            + "\n".join(parts) + "</main></body></html>\n")
