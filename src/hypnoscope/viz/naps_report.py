"""Report of a day of naps (MSLT/MWT): one self-contained HTML file, a JSON file with the
same numbers and a CSV file with one row per nap.

The HTML shows the day's result (mean sleep latency, SOREMPs, the narcolepsy criterion
for an MSLT; mean latency and mean latency to unequivocal sleep for an MWT), the notices,
a table of the naps (clock times and minutes from lights off), the epochs a scorer should
check first (every epoch a latency depends on, lowest confidence first) and a small
hypnogram of each nap with those epochs marked and the time after the protocol's end
greyed out. The day's data come as plain dicts
(:meth:`hypnoscope.staging.naps.NapDay.to_dict`) and the naps' hypnograms.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypnoscope.evaluation.naps import (
    MSLT_NO_SLEEP_MIN,
    MWT_MAX_MIN,
    NARCOLEPSY_MEAN_MAX_MIN,
    NARCOLEPSY_MIN_SOREMPS,
    SOREMP_MAX_MIN,
)
from hypnoscope.evaluation.sleepstats import json_safe
from hypnoscope.utils.files import output_set
from hypnoscope.viz.report import _CSS, FIGURE_DPI, _banner_html, _esc, _img_tag, _notice_dicts

if TYPE_CHECKING:  # pragma: no cover
    from hypnoscope.hypnogram import Hypnogram

#: Columns of the CSV file, in order.
CSV_COLUMNS = ("nap", "source", "lights_off", "lights_on", "duration_min",
               "sleep_latency_min", "sleep_onset", "latency_for_mean_min", "rem_latency_min",
               "soremp", "mwt_unequivocal_latency_min", "protocol_end", "complete",
               "lowest_key_confidence", "problems")
_EXTRA_CSS = """
.key{color:#9b2226;font-weight:600}
.ok{color:#2a6f4e;font-weight:600}
td.low{background:#ffe5e5}
"""


def report_names(protocol: str) -> dict[str, str]:
    """File names of the report of ``protocol``: ``html``, ``json``, ``csv``."""
    return {"html": f"{protocol}_report.html", "json": f"{protocol}_report.json",
            "csv": f"{protocol}_naps.csv"}


def _m(x: Any) -> str:
    return "—" if x is None else f"{float(x):.1f}"


def _yes(x: Any) -> str:
    return "—" if x is None else ("yes" if x else "no")


def nap_figure(hyp: Hypnogram, nap: dict[str, Any]):
    """A small hypnogram of one nap: the checked epochs marked (confidence beside them),
    lights off at the left edge and the time after the protocol's end greyed."""
    from matplotlib.figure import Figure

    from hypnoscope.viz.plots import plot_hypnogram

    fig = Figure(figsize=(6.4, 2.0), layout="constrained")
    ax = fig.subplots()
    plot_hypnogram(hyp, ax=ax, time_axis="clock" if hyp.start_time else "hours",
                   show_quality=False)
    end_h = nap["protocol_end_min"] / 60.0
    if end_h < hyp.duration_sec / 3600.0:
        ax.axvspan(end_h, hyp.duration_sec / 3600.0, color="#888888", alpha=0.25, lw=0)
    for row in nap["check"]:
        x = (row["minute"] * 60.0 + hyp.epoch_sec / 2) / 3600.0
        color = "#9b2226" if row["key"] else "#6c757d"
        ax.axvline(x, color=color, lw=0.9, ls="-" if row["key"] else ":", zorder=4)
        if row["confidence"] is not None:
            ax.annotate(f"{row['confidence']:.2f}", (x, ax.get_ylim()[1]), fontsize=7,
                        color=color, ha="center", va="bottom", annotation_clip=False)
    _minute_axis(ax, hyp)
    ax.set_title(f"Nap {nap['nap']}", loc="left", fontsize=9)
    ax.set_ylabel("")
    ax.tick_params(labelsize=7)
    ax.xaxis.label.set_size(7)
    return fig


def _minute_axis(ax, hyp: Hypnogram) -> None:
    """x ticks every 5 min from lights off, with the clock time under each."""
    import datetime as dt

    from matplotlib.ticker import FuncFormatter, MultipleLocator

    start = hyp.start_time

    def label(x: float, _pos: Any) -> str:
        text = f"{x * 60:.0f}"
        if start is not None:
            text += f"\n{start + dt.timedelta(hours=float(x)):%H:%M}"
        return text

    ax.xaxis.set_major_locator(MultipleLocator(5 / 60))
    ax.xaxis.set_major_formatter(FuncFormatter(label))
    ax.set_xlabel("Minutes from lights off" + (" (clock time)" if start is not None else ""))


def _cards_html(day: dict[str, Any]) -> str:
    s = day["summary"]
    cards = [("Mean sleep latency", f"{_m(s['mean_sleep_latency_min'])} min"),
             ("Naps", f"{s['n_naps']} ({s['n_incomplete']} incomplete)")]
    if day["protocol"] == "mslt":
        cards += [("SOREMPs", str(s["n_soremps"])),
                  (f"Mean ≤ {NARCOLEPSY_MEAN_MAX_MIN:g} min and ≥ {NARCOLEPSY_MIN_SOREMPS} "
                   "SOREMPs", _yes(s["narcolepsy_criterion_met"]))]
    else:
        cards.append(("Mean latency to unequivocal sleep",
                      f"{_m(s['mean_unequivocal_latency_min'])} min"))
    return "<div class='cards'>" + "".join(
        f"<div class='card'><div class='k'>{_esc(k)}</div><div class='v'>{_esc(v)}</div></div>"
        for k, v in cards) + "</div>"


def _naps_table_html(day: dict[str, Any]) -> str:
    mwt = day["protocol"] == "mwt"
    head = ["Nap", "Lights off", "Lights on", "Sleep latency (min)", "Sleep onset",
            "REM latency (min)", "SOREMP", "Protocol end", "Complete", "Lowest key conf."]
    if mwt:
        head[5:7] = ["Unequivocal sleep (min)"]
    rows = []
    for n in day["naps"]:
        lat = _m(n["sleep_latency_min"])
        if n["sleep_latency_min"] is None and n["latency_for_mean_min"] is not None:
            lat = f"no sleep ({n['latency_for_mean_min']:g})"
        key = n["lowest_key_confidence"]
        cells = [_esc(n["nap"]), _esc(n["lights_off"] or f"{n['lights_off_sec']:g} s"),
                 _esc(n["lights_on"] or f"{n['lights_on_sec']:g} s"), _esc(lat),
                 _esc(n["sleep_onset"] or "—"), _esc(_m(n["rem_latency_min"])),
                 "<span class='key'>yes</span>" if n["soremp"] else "no",
                 _esc(f"{n['protocol_end'] or ''} ({_m(n['protocol_end_min'])} min)"),
                 ("yes" if n["complete"] else "<span class='key'>no</span>")
                 + (": " + _esc("; ".join(n["problems"])) if n["problems"] else ""),
                 "—" if key is None else f"{key:.2f}"]
        if mwt:
            cells[5:7] = [_esc(_m(n["mwt_unequivocal_latency_min"]))]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<table><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr>"
            + "".join(rows) + "</table>")


def _check_table_html(day: dict[str, Any]) -> str:
    rows = []
    for n in day["naps"]:
        for r in n["check"]:
            conf = r["confidence"]
            low = conf is not None and conf < 0.6
            what = r["role"] + ("" if r["probability"] is None
                                else f" (p = {r['probability']:.2f})")
            rows.append((conf if conf is not None else 2.0,
                         f"<tr><td>{n['nap']}</td><td>{_esc(r['clock'] or '—')}</td>"
                         f"<td class='n'>{r['minute']:.1f}</td><td>{r['epoch']}</td>"
                         f"<td>{_esc(r['stage'])}</td><td>{_esc(what)}</td>"
                         f"<td class='n{' low' if low else ''}'>"
                         f"{'—' if conf is None else f'{conf:.2f}'}</td></tr>"))
    if not rows:
        return "<p class='sub'>No epoch to check: no nap had sleep.</p>"
    rows.sort(key=lambda r: r[0])
    return ("<table><tr><th>Nap</th><th>Clock</th><th class='n'>Min from lights off</th>"
            "<th>Epoch</th><th>Stage</th><th>Why</th><th class='n'>Confidence</th></tr>"
            + "".join(r for _, r in rows) + "</table>")


def _rules_html(protocol: str) -> str:
    if protocol == "mslt":
        text = (f"Sleep latency: lights off to the first epoch of any sleep stage; a nap "
                f"without sleep ends after {MSLT_NO_SLEEP_MIN:g} min and counts "
                f"{MSLT_NO_SLEEP_MIN:g} min in the mean. After sleep onset the nap goes on "
                "15 min from after the first sleep epoch. SOREMP: REM starting at most "
                f"{SOREMP_MAX_MIN:g} min after sleep onset.")
    else:
        text = ("Sleep latency: lights off to the first epoch of any sleep stage. The trial "
                "ends at unequivocal sleep (three epochs of N1 in a row, or one epoch of N2, "
                f"N3 or REM) or after {MWT_MAX_MIN:g} min; a trial without sleep counts "
                f"{MWT_MAX_MIN:g} min in the mean.")
    return f"<p class='note'>{_esc(text)} Stages are the model's; check the marked epochs.</p>"


def _html(day: dict[str, Any], figures: list[bytes], title: str) -> str:
    notices = _notice_dicts(day["notices"])
    figs = "".join(f"<div class='panel'>{_img_tag(png, f'hypnogram of nap {i}')}</div>"
                   for i, png in enumerate(figures, 1))
    model = day.get("model") or {}
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_esc(title)}</title><style>{_CSS}{_EXTRA_CSS}</style></head><body><main>"
        f"<h1>{_esc(title)}</h1><div class='sub'>Model: {_esc(model.get('name', '—'))}</div>"
        + _banner_html(notices) + _cards_html(day)
        + "<h2>Naps</h2>" + _naps_table_html(day)
        + "<h2>Check these epochs first</h2><p class='sub'>Every epoch a latency or SOREMP "
        "depends on, with the model's confidence (highest probability), lowest first; "
        "'possible ...' rows are epochs where the decision could go the other way (p: the "
        "model's probability of sleep, or of REM, there).</p>"
        + _check_table_html(day) + "<h2>Hypnograms</h2><div class='grid'>" + figs + "</div>"
        + _rules_html(day["protocol"]) + "</main></body></html>")


def _csv_text(day: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    w.writeheader()
    for n in day["naps"]:
        row = {k: n.get(k) for k in CSV_COLUMNS}
        row["problems"] = "; ".join(n["problems"])
        w.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def write_nap_report(out_dir: str | os.PathLike, day: dict[str, Any],
                     hypnograms: list[Hypnogram], title: str | None = None,
                     ) -> dict[str, Path]:
    """Write the HTML, JSON and CSV report of a day of naps into ``out_dir``, all
    together or none (:func:`hypnoscope.utils.files.output_set`).

    Parameters
    ----------
    out_dir : path
        Output folder (created).
    day : dict
        :meth:`hypnoscope.staging.naps.NapDay.to_dict`.
    hypnograms : list of Hypnogram
        The naps' hypnograms, in the order of ``day["naps"]``.
    title : str, optional
        Report title (default: the protocol's name).

    Returns
    -------
    dict
        ``html``, ``json``, ``csv``: the paths written.
    """
    from hypnoscope.utils.files import write_json_atomic, write_text_atomic
    from hypnoscope.viz.plots import figure_to_png

    if len(hypnograms) != len(day["naps"]):
        raise ValueError(f"{len(hypnograms)} hypnograms for {len(day['naps'])} naps")
    protocol = day["protocol"]
    title = title or ("Multiple sleep latency test" if protocol == "mslt"
                      else "Maintenance of wakefulness test")
    names = report_names(protocol)
    figures = [figure_to_png(nap_figure(h, n), dpi=FIGURE_DPI)
               for h, n in zip(hypnograms, day["naps"], strict=True)]
    payload = dict(day)
    payload["naps"] = [{**n, "stages": h.labels} for n, h in
                       zip(day["naps"], hypnograms, strict=True)]
    out = Path(out_dir)
    with output_set(out, f"{protocol}_report", replaces=tuple(names.values())) as tmp:
        write_text_atomic(tmp / names["html"], _html(day, figures, title))
        write_json_atomic(tmp / names["json"], json_safe(payload))
        write_text_atomic(tmp / names["csv"], _csv_text(day))
    return {k: out / v for k, v in names.items()}


__all__ = ["CSV_COLUMNS", "nap_figure", "report_names", "write_nap_report"]
