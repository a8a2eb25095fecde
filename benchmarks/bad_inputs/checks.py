"""Case-specific checks of the bad-inputs benchmark.

A check is ``check(run) -> (metrics, failures)``: ``run`` is the runner's record of one
case (``run.rc``, ``run.stdout``, ``run.facts``, ``run.run_dir``, ``run.complete_stems``,
``run.tsv(stem)``, ``run.staged(stem)``, ``run.report(stem)``, ``run.truth(stem)``),
``metrics`` a dict for the results (its ``cell``, if any, replaces the table's accuracy
cell) and ``failures`` the reasons for a FAIL (empty: this check passes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

EPOCH_MIN = 0.5
Check = Callable[[Any], tuple[dict, list[str]]]


def span_statistics(codes: np.ndarray, first: int, stop: int) -> dict[str, float]:
    """Sleep-onset latency, sleep period, WASO and TST (min) of epochs ``[first, stop)``:
    the plain AASM definitions (sleep = N1..R; latency from ``first``)."""
    c = np.asarray(codes[first:stop])
    sleep = np.flatnonzero((c >= 1) & (c <= 4))
    if sleep.size == 0:
        return {k: math.nan for k in ("sleep_onset_latency_min", "sleep_period_min",
                                      "waso_min", "total_sleep_min")}
    f, last = int(sleep[0]), int(sleep[-1])
    return {"sleep_onset_latency_min": f * EPOCH_MIN,
            "sleep_period_min": (last - f + 1) * EPOCH_MIN,
            "waso_min": float(np.count_nonzero(c[f:last + 1] == 0)) * EPOCH_MIN,
            "total_sleep_min": float(sleep.size) * EPOCH_MIN}


def night_statistics(tol_min: float = 30.0, lights: bool = False) -> Check:
    """The report's sleep-onset latency, sleep period and WASO within ``tol_min`` of the
    truth's over the same span: the span the report says it used (``time_in_bed``
    start/end), else the whole recording. With ``lights``, the span must be the one
    given on the command line (the facts' ``night_epochs``). Accuracy is reported on that
    span (epochs outside it are not staged when the recording is cropped)."""
    gated = ("sleep_onset_latency_min", "sleep_period_min", "waso_min")

    def check(run) -> tuple[dict, list[str]]:
        stems = run.complete_stems
        if len(stems) != 1:
            return {}, []  # judged by the output-set rules
        stem = stems[0]
        rep, truth = run.report(stem), run.truth(stem)
        if rep is None or truth is None:
            return {}, ["no report JSON / truth to check the sleep statistics against"]
        n = len(truth)
        tib = rep.get("time_in_bed") or {}
        if tib.get("start_sec") is not None and tib.get("end_sec") is not None:
            first = int(round(float(tib["start_sec"]) / 30))
            stop = int(round(float(tib["end_sec"]) / 30))
            span_src = "report"
        else:
            first, stop, span_src = 0, n, "whole recording"
        failures = []
        if lights:
            want = run.facts["night_epochs"]
            if (first, stop) != tuple(want):
                failures.append(f"report span epochs {first}-{stop} ({span_src}) is not the "
                                f"lights-off/on span {want[0]}-{want[1]}")
                first, stop = want
        truth_stats = span_statistics(truth, first, stop)
        staged = rep.get("sleep_statistics") or {}
        metrics: dict[str, Any] = {"span_epochs": [first, stop], "span_from": span_src}
        cells = []
        for key, ref in truth_stats.items():
            got = staged.get(key)
            metrics[key] = {"staged": got, "truth": ref}
            short = key.replace("_min", "").replace("sleep_onset_latency", "SOL")
            cells.append(f"{short} {_fmt(got)}/{ref:g}")
            if key in gated and (got is None or not math.isfinite(float(got))
                                 or abs(float(got) - ref) > tol_min):
                failures.append(f"{short} {_fmt(got)} min vs truth {ref:g}")
        got = run.staged(stem)
        span = slice(first, stop)
        ok = truth[span] >= 0
        acc = float(np.mean(got["pred"][span][ok] == truth[span][ok])) if ok.any() else math.nan
        metrics.update(accuracy_span=acc, cell=f"{'; '.join(cells)} min (staged/truth, span "
                                              f"{stop - first} epochs); accuracy {acc:.3f}")
        return metrics, failures

    return check


def _fmt(x: Any) -> str:
    try:
        return f"{float(x):g}"
    except (TypeError, ValueError):
        return "-"


def distinct_outputs(epochs: tuple[int, ...]) -> Check:
    """After a successful run, one complete output set per input, told apart by their
    length (the inputs are nights of ``epochs`` epochs)."""
    def check(run) -> tuple[dict, list[str]]:
        if run.rc != 0:
            return {}, []  # a refusal is judged by the refusal rules
        stems = run.complete_stems
        lengths = sorted(len(df) for s in stems if (df := run.tsv(s)) is not None)
        metrics = {"output_sets": stems, "tsv_epochs": lengths}
        if len(stems) < len(epochs):
            return metrics, [f"{len(stems)} output set(s) for {len(epochs)} recordings "
                             f"({', '.join(stems) or 'none'}): outputs overwrote each other"]
        if lengths != sorted(epochs):
            return metrics, [f"output sets hold {lengths} epochs, inputs have "
                             f"{sorted(epochs)}"]
        return metrics, []

    return check


def no_data_read() -> Check:
    """The output path was refused before the training data was read (the run's empty
    ``HYPNOSCOPE_CACHE`` stays empty)."""
    def check(run) -> tuple[dict, list[str]]:
        cached = [p for p in (run.run_dir / "cache").rglob("*") if p.is_file()]
        metrics = {"cache_files": len(cached)}
        if cached:
            return metrics, [f"the training data was read before the output path was "
                             f"checked ({len(cached)} cache files written)"]
        return metrics, []

    return check


def channel_roles(expected: dict[str, tuple[str, ...]]) -> Check:
    """``hypnoscope info --json`` gives each named channel one of the expected roles."""
    def check(run) -> tuple[dict, list[str]]:
        if run.rc != 0:
            return {}, []
        try:
            channels = {c["name"]: c.get("role") for c in json.loads(run.stdout)["channels"]}
        except (ValueError, KeyError, TypeError) as exc:
            return {}, [f"info --json output not readable: {exc}"]
        failures = [f"'{name}' gets role {channels.get(name)!r}, expected "
                    f"{' or '.join(roles)}" for name, roles in expected.items()
                    if channels.get(name) not in roles]
        return {"roles": {k: channels.get(k) for k in expected}}, failures

    return check
