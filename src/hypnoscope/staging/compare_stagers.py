"""Which stager fits my lab: every model on the same scored recordings, side by side.

:func:`benchmark_stagers` is the Python API behind ``hypnoscope benchmark``: it stages
every recording with every model through the batch engine of :func:`stage_folder`
(resumable: a rerun skips the output sets that are complete; ``jobs``/``scheduler`` as
in ``hypnoscope stage``), each model into its own folder ``OUT/models/<label>/``, then
reads the agreement and sleep statistics that staging wrote in each recording's report
(:func:`hypnoscope.evaluation.metrics.compare_hypnograms` over the staged span) and
compares the models:

- per model, pooled over every compared epoch and as the mean ± sd of the recordings
  (:func:`hypnoscope.evaluation.metrics.evaluate_recordings`): accuracy, Cohen's κ,
  macro-F1, per-stage F1 and the confusion matrix;
- per recording, worst κ first;
- per sleep statistic (:data:`BLAND_ALTMAN_STATISTICS`), the bias and 95 % limits of
  agreement against the scorer (:func:`hypnoscope.evaluation.metrics.limits_of_agreement`);
- per pair of models, the paired per-recording difference in accuracy and κ (mean, sd,
  range, wins);
- per model, the staging time per night (read, checks, features and prediction, as
  recorded in each report, so a resumed run keeps the times of the first).

A recording or model that fails is reported (``failures``) and the others go on.
:func:`write_benchmark` writes ``benchmark.json``, ``benchmark.html`` (with Bland–Altman
plots and confusion matrices) and the CSV tables ``models.csv``, ``recordings.csv``,
``sleep_statistics.csv`` and ``paired.csv``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

#: Sleep statistics compared with the scorer by their bias and limits of agreement
#: (keys of :data:`hypnoscope.evaluation.sleepstats.STAT_KEYS`).
BLAND_ALTMAN_STATISTICS: tuple[str, ...] = (
    "total_sleep_min", "sleep_efficiency_pct", "waso_min", "sleep_onset_latency_min",
    "rem_latency_min", "wake_min", "n1_min", "n2_min", "n3_min", "rem_min")
#: Per-recording metrics of the paired comparison between models.
PAIRED_METRICS: tuple[str, ...] = ("accuracy", "kappa")
#: The folder of ``out_dir`` that holds one output folder per model.
MODELS_FOLDER = "models"


# ------------------------------------------------------------------ models
def model_labels(models: Sequence[Any]) -> list[str]:
    """A distinct folder-safe label per model, in order: a shipped name as given
    (``default``), a model file by its stem (``lab/my-model.joblib`` -> ``my-model``),
    an object by its ``name``; labels still equal get ``-2``, ``-3`` ..."""
    out: list[str] = []
    for m in models:
        if isinstance(m, str | os.PathLike):
            text = str(m)
            base = Path(text).stem if Path(text).suffix else Path(text).name
        else:
            base = str(getattr(m, "name", None) or type(m).__name__)
        base = re.sub(r"[^A-Za-z0-9._-]", "_", base) or "model"
        label, i = base, 1
        while label.casefold() in {x.casefold() for x in out}:
            i += 1
            label = f"{base}-{i}"
        out.append(label)
    return out


def check_models(models: Sequence[Any]) -> None:
    """Refuse, before any work, a model that staging would refuse (unknown name,
    missing file), naming it; the same check as ``hypnoscope stage``'s."""
    from hypnoscope.staging.batch import _check_model

    if not models:
        raise ValueError("no model to benchmark; give at least one (e.g. default)")
    for m in models:
        try:
            _check_model(m, None, lambda msg: None)
        except ValueError as exc:
            raise ValueError(f"model {m!r}: {exc}") from None


# ------------------------------------------------------------------ the run
def benchmark_stagers(inputs: str | os.PathLike | Iterable[str | os.PathLike],
                      reference: str | os.PathLike | Iterable | None,
                      models: Sequence[Any], out_dir: str | os.PathLike, *,
                      jobs: int = 1, scheduler: Any = None, resume: bool = True,
                      plot: bool = False, label_map: Any = None, crop: str | None = None,
                      eeg=None, eog=None, emg=None, lights_off=None, lights_on=None,
                      title: str | None = None, data_note: str | None = None,
                      debug: bool = False,
                      describe: Callable[[BaseException], str] | None = None,
                      note: Callable[[str], None] | None = None,
                      on_row: Callable[[dict[str, Any]], None] | None = None,
                      write: bool = True) -> dict[str, Any]:
    """Stage every recording with every model and compare them against the scorer.

    Parameters
    ----------
    inputs : path, glob pattern or list of them
        Recordings (as for :func:`hypnoscope.staging.batch.stage_folder`).
    reference : path or list of paths
        The scorer's hypnograms: one file per recording (same order) or a folder
        searched for each (:func:`hypnoscope.staging.inputs.pair_references`).
    models : sequence
        Shipped model names, model files or model objects (as ``stage --model``).
    out_dir : path
        Output folder: ``models/<label>/`` per model (:func:`model_labels`) and the
        benchmark's own files (:func:`write_benchmark`).
    jobs, scheduler, resume, plot, label_map, crop, eeg, eog, emg, debug, describe, note, on_row
        As in :func:`~hypnoscope.staging.batch.stage_folder`, for every model (``plot`` draws each
        night's figure; the benchmark's own figures are drawn in any case).
    lights_off, lights_on : str or float, optional
        As in :func:`~hypnoscope.staging.batch.stage_folder`: every recording is staged and
        compared from lights-off to lights-on.
    title, data_note : str, optional
        The report's title, and a line on the data (e.g. that it is simulated).
    write : bool, default True
        Write the report files (:func:`write_benchmark`).

    Returns
    -------
    dict
        The benchmark (see :func:`summarize`), with ``outputs`` (kind -> path) when
        written.

    Raises
    ------
    ValueError
        An unknown model (named), inputs that match nothing or references that do not
        pair, before any work.
    """
    from hypnoscope.staging.batch import stage_folder
    from hypnoscope.utils.files import check_output_dir

    say = note or (lambda msg: None)
    out = check_output_dir(out_dir, "out_dir", create=True)
    models = list(models)
    check_models(models)
    labels = model_labels(models)
    rows: dict[str, list[dict[str, Any]]] = {}
    for label, model in zip(labels, models, strict=True):
        say(f"model {label}: staging into {out / MODELS_FOLDER / label}")

        def tagged(row: dict[str, Any], label: str = label) -> None:
            if on_row is not None:
                on_row({**row, "benchmark_model": label})

        rows[label] = stage_folder(
            inputs, out / MODELS_FOLDER / label, model, reference=reference, plot=plot,
            crop=crop, label_map=label_map, eeg=eeg, eog=eog, emg=emg,
            lights_off=lights_off, lights_on=lights_on, jobs=jobs,
            scheduler=scheduler, resume=resume,
            debug=debug, describe=describe, note=say, on_row=tagged)
    records = collect_records(rows)
    result = summarize(records, labels, title=title, data_note=data_note)
    result["models_given"] = [str(m) if isinstance(m, str | os.PathLike)
                              else labels[i] for i, m in enumerate(models)]
    if write:
        result["outputs"] = {k: str(v) for k, v in write_benchmark(out, result).items()}
    return result


# ------------------------------------------------------------------ reading
def collect_records(rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One record per model and recording from the rows of :func:`stage_folder` and the
    reports they point to: ``model``, ``recording``, ``stem``, ``status`` (``ok``,
    ``failed`` or ``no-reference``), ``error``, and for compared ones ``accuracy``,
    ``kappa``, ``macro_f1``, ``n_epochs``, ``labels``, ``confusion_matrix``,
    ``confusion_matrix_3class``, ``per_class_f1``, ``statistics`` ``{key: {"pred",
    "ref"}}``, ``staging_sec``, ``hours`` and ``report`` (the path)."""
    import json

    records = []
    for label, model_rows in rows.items():
        for row in model_rows:
            rec: dict[str, Any] = {"model": label, "recording": str(row["recording"]),
                                   "stem": row.get("stem")}
            if row.get("status") not in ("ok", "skipped"):
                rec.update(status="failed", error=str(row.get("error") or "failed"))
                records.append(rec)
                continue
            path = Path((row.get("outputs") or {}).get("json", ""))
            try:
                report = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                rec.update(status="failed", error=f"{path}: report not readable ({exc})")
                records.append(rec)
                continue
            rec.update(_record_from_report(report, row))
            rec["report"] = str(path)
            records.append(rec)
    return records


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


def _record_from_report(report: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The figures of one staged recording from its report (JSON)."""
    timings = (report.get("recording") or {}).get("timings") or {}
    seconds = timings.get("total_sec", row.get("seconds"))
    hyp = report.get("hypnogram") or {}
    card = report.get("model") if isinstance(report.get("model"), dict) else {}
    rec: dict[str, Any] = {"staging_sec": _num(seconds), "hours": _num(hyp.get("duration_h")),
                           "model_name": card.get("name"),
                           "model_card": {k: v for k, v in card.items() if k != "path"}}
    agr = report.get("agreement")
    if not agr:
        rec.update(status="no-reference",
                   error=f"{row['recording']}: no reference hypnogram was paired with it")
        return rec
    ref_stats = (report.get("reference") or {}).get("sleep_statistics") or {}
    pred_stats = report.get("sleep_statistics") or {}
    three = agr.get("three_class") or {}
    rec.update(status="ok", accuracy=_num(agr["accuracy"]), kappa=_num(agr["kappa"]),
               macro_f1=_num(agr["macro_f1"]), n_epochs=int(agr["n_epochs"]),
               labels=list(agr["labels"]), confusion_matrix=agr["confusion_matrix"],
               confusion_matrix_3class=three.get("confusion_matrix"),
               per_class_f1={k: _num(v) for k, v in agr["per_class_f1"].items()},
               statistics={k: {"pred": _num(pred_stats.get(k)), "ref": _num(ref_stats.get(k))}
                           for k in ref_stats})
    return rec


def confusion_to_codes(cm: Any) -> tuple[np.ndarray, np.ndarray]:
    """Reference and predicted codes of the epochs a confusion matrix counts (rows =
    reference, columns = predicted), in row-major order: the epoch pairs behind it, for
    :func:`hypnoscope.evaluation.metrics.evaluate` (whose metrics do not depend on the
    epochs' order)."""
    cm = np.asarray(cm, dtype=int)
    n = cm.shape[0]
    true = np.repeat(np.repeat(np.arange(n), n), cm.ravel())
    pred = np.repeat(np.tile(np.arange(n), n), cm.ravel())
    return true, pred


# ------------------------------------------------------------------ summary
def summarize(records: list[dict[str, Any]], labels: Sequence[str], title: str | None = None,
              data_note: str | None = None) -> dict[str, Any]:
    """The benchmark from :func:`collect_records`' records.

    Returns
    -------
    dict
        ``title``, ``data_note``, ``models`` (labels), ``n_recordings``, ``per_model``
        ``{label: {...}}`` (``n_compared``, ``n_failed``, ``pooled`` and ``mean``
        (:func:`~hypnoscope.evaluation.metrics.evaluate_recordings`), ``statistics``
        ``{key: limits of agreement + per-recording values}``, ``time``, ``card``: the
        model as its first report describes it), ``recordings``
        (the records, worst κ first per model), ``paired`` (:func:`paired_comparison`)
        and ``failures`` (model, recording, error).
    """
    from hypnoscope.evaluation.metrics import evaluate_recordings

    per_model: dict[str, Any] = {}
    for label in labels:
        mine = [r for r in records if r["model"] == label]
        ok = [r for r in mine if r["status"] == "ok"]
        entry: dict[str, Any] = {"n_recordings": len(mine), "n_compared": len(ok),
                                 "n_failed": sum(r["status"] == "failed" for r in mine),
                                 "n_without_reference": sum(r["status"] == "no-reference"
                                                            for r in mine)}
        if ok:
            three = any(len(r["labels"]) == 3 for r in ok)
            cms = [r["confusion_matrix_3class"] if three and len(r["labels"]) == 5
                   else r["confusion_matrix"] for r in ok]
            pairs = [confusion_to_codes(cm) for cm in cms]
            ev = evaluate_recordings([t for t, _ in pairs], [p for _, p in pairs],
                                     n_classes=3 if three else 5)
            entry["pooled"] = {k: ev["pooled"][k] for k in (
                "n_epochs", "accuracy", "kappa", "macro_f1", "per_class_f1", "labels",
                "confusion_matrix", "confusion_matrix_normalized")}
            entry["mean"] = {k: ev["mean"][k] for k in ("n", "accuracy", "kappa", "macro_f1",
                                                        "per_class_f1")}
            entry["statistics"] = _statistics(ok)
        entry["time"] = _time(mine)
        cards = [r["model_card"] for r in mine if r.get("model_card")]
        entry["card"] = cards[0] if cards else None  # what the report says of the model
        per_model[label] = entry
    order = {label: i for i, label in enumerate(labels)}
    ranked = sorted(records, key=lambda r: (order[r["model"]], r["status"] != "failed",
                                            _num(r.get("kappa")) if r.get("kappa") is not None
                                            else -math.inf))
    return {"title": title or "Stager benchmark", "data_note": data_note,
            "models": list(labels), "n_recordings": len({r["recording"] for r in records}),
            "per_model": per_model,
            "recordings": [{k: v for k, v in r.items() if k != "model_card"} for r in ranked],
            "paired": paired_comparison(records, labels),
            "failures": [{"model": r["model"], "recording": r["recording"],
                          "error": r["error"]} for r in records if r["status"] != "ok"]}


def _statistics(ok: list[dict[str, Any]]) -> dict[str, Any]:
    """Bias and limits of agreement of each :data:`BLAND_ALTMAN_STATISTICS` over the
    recordings where both values are defined, with the per-recording values."""
    from hypnoscope.evaluation.metrics import limits_of_agreement

    out = {}
    for key in BLAND_ALTMAN_STATISTICS:
        pred = np.array([_num(r["statistics"].get(key, {}).get("pred")) for r in ok])
        ref = np.array([_num(r["statistics"].get(key, {}).get("ref")) for r in ok])
        loa = limits_of_agreement(pred, ref)
        out[key] = {**loa, "recordings": [r["recording"] for r in ok],
                    "pred": pred.tolist(), "ref": ref.tolist()}
    return out


def _time(records: list[dict[str, Any]]) -> dict[str, float]:
    """Staging time per night of a model: mean, median, max (s) and seconds per hour of
    recording, over the recordings it staged."""
    sec = np.array([r.get("staging_sec", math.nan) for r in records
                    if r["status"] != "failed"], dtype=float)
    hours = np.array([r.get("hours", math.nan) for r in records
                      if r["status"] != "failed"], dtype=float)
    good = np.isfinite(sec)
    if not good.any():
        return {"n": 0, "mean_sec": math.nan, "median_sec": math.nan, "max_sec": math.nan,
                "sec_per_hour": math.nan}
    both = good & np.isfinite(hours) & (hours > 0)
    return {"n": int(good.sum()), "mean_sec": float(sec[good].mean()),
            "median_sec": float(np.median(sec[good])), "max_sec": float(sec[good].max()),
            "sec_per_hour": (float(sec[both].sum() / hours[both].sum()) if both.any()
                             else math.nan)}


def paired_comparison(records: list[dict[str, Any]], labels: Sequence[str],
                      metrics: Sequence[str] = PAIRED_METRICS) -> list[dict[str, Any]]:
    """Each pair of models on the recordings both compared: per metric the mean and sd
    (sample) of the per-recording difference (first minus second), its range, and how
    many recordings each model wins (ties apart).

    Returns
    -------
    list of dict
        ``a``, ``b``, ``metric``, ``n``, ``mean_diff``, ``sd_diff``, ``min_diff``,
        ``max_diff``, ``wins_a``, ``wins_b``, ``ties``.
    """
    by = {(r["model"], r["recording"]): r for r in records if r["status"] == "ok"}
    recs = sorted({r["recording"] for r in records})
    out = []
    for a, b in combinations(labels, 2):
        both = [x for x in recs if (a, x) in by and (b, x) in by]
        for metric in metrics:
            d = np.array([by[a, x][metric] - by[b, x][metric] for x in both], dtype=float)
            d = d[np.isfinite(d)]
            row: dict[str, Any] = {"a": a, "b": b, "metric": metric, "n": int(d.size)}
            row.update(mean_diff=float(d.mean()) if d.size else math.nan,
                       sd_diff=float(d.std(ddof=1)) if d.size > 1 else math.nan,
                       min_diff=float(d.min()) if d.size else math.nan,
                       max_diff=float(d.max()) if d.size else math.nan,
                       wins_a=int((d > 0).sum()), wins_b=int((d < 0).sum()),
                       ties=int((d == 0).sum()))
            out.append(row)
    return out


# ------------------------------------------------------------------ writing
#: Columns of ``recordings.csv``.
RECORDING_COLUMNS = ("model", "recording", "stem", "status", "accuracy", "kappa", "macro_f1",
                     "n_epochs", "staging_sec", "hours", "error")


def write_benchmark(out_dir: str | os.PathLike, result: dict[str, Any]) -> dict[str, Path]:
    """Write the benchmark into ``out_dir``: ``benchmark.json`` (everything),
    ``benchmark.html`` (:func:`hypnoscope.viz.agreement.write_benchmark_html`),
    ``models.csv`` (one row per model), ``recordings.csv`` (one per model and
    recording, worst κ first), ``sleep_statistics.csv`` (bias and limits of agreement)
    and ``paired.csv``; each written atomically. Returns kind -> path."""
    from hypnoscope.evaluation.sleepstats import json_safe
    from hypnoscope.utils.files import write_json_atomic, write_text_atomic
    from hypnoscope.viz.agreement import write_benchmark_html

    out = Path(out_dir)
    paths = {"json": out / "benchmark.json", "html": out / "benchmark.html",
             "models_csv": out / "models.csv", "recordings_csv": out / "recordings.csv",
             "statistics_csv": out / "sleep_statistics.csv", "paired_csv": out / "paired.csv"}
    write_json_atomic(paths["json"], json_safe(result))
    write_text_atomic(paths["models_csv"], _csv(*model_table(result)))
    write_text_atomic(paths["recordings_csv"], _csv(
        list(RECORDING_COLUMNS), [[r.get(c) for c in RECORDING_COLUMNS]
                                  for r in result["recordings"]]))
    stat_cols = ["model", "statistic", "n", "bias", "sd", "lower", "upper"]
    write_text_atomic(paths["statistics_csv"], _csv(stat_cols, [
        [m, k, s["n"], s["bias"], s["sd"], s["lower"], s["upper"]]
        for m, e in result["per_model"].items() for k, s in (e.get("statistics") or {}).items()]))
    pair_cols = ["a", "b", "metric", "n", "mean_diff", "sd_diff", "min_diff", "max_diff",
                 "wins_a", "wins_b", "ties"]
    write_text_atomic(paths["paired_csv"], _csv(pair_cols, [[p[c] for c in pair_cols]
                                                            for p in result["paired"]]))
    write_benchmark_html(paths["html"], result)
    return paths


def model_table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the per-model table (``models.csv``, the CLI's summary):
    pooled accuracy, κ, macro-F1 and per-stage F1, the mean ± sd κ of the recordings,
    counts and the staging time per night."""
    stages = ["W", "N1", "N2", "N3", "R"]
    head = ["model", "n_compared", "n_failed", "accuracy", "kappa", "macro_f1",
            *[f"f1_{s}" for s in stages], "kappa_mean", "kappa_sd", "sec_per_night",
            "sec_per_hour"]
    rows = []
    for m, e in result["per_model"].items():
        pooled, mean, t = e.get("pooled") or {}, e.get("mean") or {}, e["time"]
        f1 = pooled.get("per_class_f1") or {}
        rows.append([m, e["n_compared"], e["n_failed"], pooled.get("accuracy"),
                     pooled.get("kappa"), pooled.get("macro_f1"),
                     *[f1.get(s) for s in stages],
                     (mean.get("kappa") or {}).get("mean"), (mean.get("kappa") or {}).get("sd"),
                     t["mean_sec"], t["sec_per_hour"]])
    return head, rows


def _csv(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text; undefined numbers (nan, None) are empty cells."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for row in rows:
        w.writerow(["" if v is None or (isinstance(v, float) and not math.isfinite(v))
                    else (f"{v:.6g}" if isinstance(v, float) else v) for v in row])
    return buf.getvalue()
