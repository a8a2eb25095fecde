"""Train the shipped ``default`` staging model on the real Sleep-EDF band-power set.

One command (from the repository root)::

    nice -n 10 python scripts/train_default_model.py

Trains ``--model`` (a name of ``hypnoscope.models.MODEL_REGISTRY``, default
``lightgbm-context``; ``--smoothing hmm`` adds the forward-backward stage-transition
smoothing) on all 59 subjects / 115 nights of ``../shared/data/sleepedf_bandpower`` and
writes ``src/hypnoscope/data/models/default.joblib`` with its model card
``default.json`` and ``default.md``. The LightGBM estimator is stored as LightGBM's text
model (:class:`hypnoscope.models.storage.PortableLightGBM`), so the pickle refers only to
hypnoscope, NumPy, joblib and the standard library (checked after writing).

The card's cross-validated metrics come from the feature benchmark
(``benchmarks/results/real_features.json``, subject-wise 10-fold CV) for the matching
benchmark row (``--bench-model``, default ``--model`` plus ``+HMM`` with smoothing), else
from a subject-wise ``--cv-folds``-fold CV run here. ``--card-only`` rewrites the card of
the existing model file (e.g. once the benchmark has finished) without retraining.

``--setup`` trains the shipped model of another channel setup
(:data:`hypnoscope.staging.channel_setups.CHANNEL_SETUPS`: ``eeg1`` one frontal EEG, ``eeg1-eog``
one EEG + EOG, ``eeg2`` two EEG without EOG) on those channels of the same set, named after
the setup, with its own subject-wise 10-fold CV on the benchmark's folds::

    nice -n 10 python scripts/train_default_model.py --setup eeg1 --cv-folds 10

``--option KEY=JSON`` passes a model option (e.g. ``--option 'context={"night_stats":
true}'``); a model with options is cross-validated here unless ``--bench-model`` names
the benchmark row that measured exactly it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


BENCH_PROTOCOL = ("subject-wise 10-fold cross-validation on the same 59 subjects (both "
                  "nights of a subject in one fold; folds in "
                  "benchmarks/results/real_folds.json)")


#: Limit of a model that reads the night's own feature statistics (context ``night_stats``).
NIGHT_STATS_LIMIT = (
    "the night's median and IQR of every feature are inputs: a night unlike the training "
    "nights as a whole moves every epoch's input. On real held-out subjects this helped "
    "(benchmarks/results/real_accuracy_nightstats.md), but on SIMULATED nights, a different "
    "domain, such models agreed about 2 points less with the truth than the ones without "
    "(benchmarks/results/simulated_shift.md), and on a 24-h recording the first pass "
    "misplaced the sleep period; why the shipped models do not use them: README, Results")

#: Procedure of ``benchmarks/results/real_accuracy_nested.json`` that is the training of
#: a registered model (the same cross-fit, choice and refit).
#: Why a model trained on random stretches with shrunk statistics replaced 0.1's.
STRETCH_RULE = (
    "issue #25: a configuration fixed before its results (random training stretches of "
    "20 min to the whole night, per-recording statistics shrunk toward the training "
    "population's with a constant estimated on the training nights, the recording's "
    "length as a feature) replaces 0.1's when it stages stretches of held-out nights "
    "better and its whole-night CV does not drop (benchmarks/results/"
    "real_accuracy_stretches.md, paired per outer fold)")
#: The rule of a model trained with ``--stretch-choice``.
STRETCH_CHOICE_RULE = (
    "issue #25: the length gate's short member chosen by the stretch benchmark's nested "
    "rule made on all subjects (select_on_stretches, 2 subject-wise inner folds, scored on "
    "the stretches shorter than the gate's 4 h) among the candidates of "
    "benchmarks.real_accuracy.stretches.NESTED_GRID; whole nights staged by 0.1's default")
#: The rule of a channel-setup model given the short member chosen for ``default``.
STRETCH_SPECIALIST_RULE = (
    "issue #25: the short member chosen for the default model by nested CV (the "
    "short-recordings specialist, trained only on random stretches of 20 min to 4 h), fixed "
    "before its results on this setup's channels, stages this setup's recordings under 4 h "
    "(in place of the previous model) when it stages stretches of held-out nights better "
    "and the whole-night CV does not drop "
    "(benchmarks/results/real_accuracy_stretches.md, paired per outer fold)")
#: Results of ``benchmarks.real_accuracy.stretches`` (stretch tables of the cards).
STRETCH_RESULTS = ROOT / "benchmarks" / "results" / "real_accuracy_stretches.json"
NESTED_PROCEDURES = {"lightgbm-vote": "torch-free vote + class/HMM"}
NESTED_PROTOCOL = ("nested subject-wise cross-validation on the same 59 subjects: outer "
                   "10 folds of benchmarks/results/real_folds.json for the estimate, every "
                   "choice (weights, class re-weighting, smoothing) made on 2 inner "
                   "subject-wise folds of the outer training subjects")


def _nested_metrics(model: str) -> dict | None:
    """Nested-CV metrics of ``model`` from ``real_accuracy_nested.json``, if present."""
    path = ROOT / "benchmarks" / "results" / "real_accuracy_nested.json"
    proc = NESTED_PROCEDURES.get(model)
    if proc is None or not path.is_file():
        return None
    data = json.loads(path.read_text())
    entry = (data.get("procedures") or {}).get(proc)
    if entry is None:
        return None
    fd = entry["fold_distribution"]
    return {"source": "benchmarks/results/real_accuracy_nested.json",
            "benchmark_model": proc, "protocol": NESTED_PROTOCOL, "date": data.get("date"),
            "pooled": {**{k: entry["pooled"][k] for k in ("accuracy", "macro_f1", "kappa")},
                       "per_class_f1": entry["f1"]},
            "mean_over_folds": {k: fd[k]["mean"] for k in ("accuracy", "macro_f1", "kappa")},
            "sd_over_folds": {k: fd[k]["sd"] for k in ("accuracy", "macro_f1", "kappa")},
            "worst_fold_accuracy": fd["accuracy"]["min"],
            "paired_vs_default": (data.get("paired") or {}).get(f"{proc} - lgbm alone"),
            "subject_accuracy": entry["subject_distribution"]["accuracy"],
            "n_folds": data.get("n_outer_folds_done"), "n_folds_total": 10}


def _bench_metrics(model: str) -> dict | None:
    """Subject-wise CV metrics of ``model`` from the benchmark results, if present.

    ``model`` is a name of ``benchmarks/results/real_features.json`` (``cv`` block, e.g.
    ``lightgbm-context`` or ``lightgbm-context+HMM``), of ``ssnet_real.json``, or a model
    whose training is a procedure of ``real_accuracy_nested.json``
    (:data:`NESTED_PROCEDURES`).
    """
    nested = _nested_metrics(model)
    if nested is not None:
        return nested
    for name in ("real_features.json", "ssnet_real.json"):
        path = ROOT / "benchmarks" / "results" / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        entry = (data.get("cv") or {}).get(model) or (data.get("pooled") or {}).get(model)
        if not isinstance(entry, dict):
            continue
        e5 = entry.get("5class", entry)
        pooled = e5.get("pooled", e5)
        if "accuracy" not in pooled:
            continue
        keys = ("accuracy", "macro_f1", "kappa")
        out = {"source": f"benchmarks/results/{name}", "benchmark_model": model,
               "protocol": BENCH_PROTOCOL, "date": data.get("date"),
               "pooled": {k: pooled[k] for k in keys if k in pooled}}
        if "per_class_f1" in pooled:
            out["pooled"]["per_class_f1"] = pooled["per_class_f1"]
        per_fold = e5.get("per_fold") or {}
        if all(isinstance(per_fold.get(k), dict) for k in keys):
            out["mean_over_folds"] = {k: per_fold[k]["mean"] for k in keys}
            out["sd_over_folds"] = {k: per_fold[k]["sd"] for k in keys}
            out["n_folds"] = per_fold.get("n")
        cfg = (data.get("config") or {}).get("model_configs", {}).get(model.split("+")[0])
        if cfg is not None:
            out["benchmark_model_config"] = cfg
        total = (data.get("config") or {}).get("n_folds")
        if total:
            out["n_folds_total"] = total
        three = entry.get("3class", {}).get("pooled")
        if three:
            out["pooled_3class"] = {k: three[k] for k in keys if k in three}
        return out
    return None


def selection_table() -> dict:
    """5-class subject-wise CV (pooled) of every candidate in the benchmark results, to
    document why the shipped model was chosen."""
    rows: dict[str, dict] = {}
    keys = ("accuracy", "macro_f1", "kappa")
    path = ROOT / "benchmarks" / "results" / "real_features.json"
    if path.is_file():
        for name, e in (json.loads(path.read_text()).get("cv") or {}).items():
            if "5class" in e:
                rows[name] = {k: round(e["5class"]["pooled"][k], 4) for k in keys}
                rows[name]["n_folds"] = e["5class"]["per_fold"].get("accuracy", {}).get("n")
                rows[name]["source"] = "real_features.json"
    path = ROOT / "benchmarks" / "results" / "ssnet_real.json"
    if path.is_file():
        data = json.loads(path.read_text())
        for name, e in (data.get("pooled") or {}).items():
            if name == "ssnet" and "accuracy" in e and "kappa" in e:  # 5-class only
                rows[f"{name} (sequence)"] = {k: round(e[k], 4) for k in keys if k in e}
                rows[f"{name} (sequence)"]["n_folds"] = len(
                    (data.get("per_fold") or {}).get(name, []))
                rows[f"{name} (sequence)"]["source"] = "ssnet_real.json"
    path = ROOT / "benchmarks" / "results" / "real_accuracy_nested.json"
    if path.is_file():
        data = json.loads(path.read_text())
        for name, e in (data.get("procedures") or {}).items():
            rows[f"{name} (nested)"] = {k: round(e["pooled"][k], 4) for k in keys}
            rows[f"{name} (nested)"]["n_folds"] = data.get("n_outer_folds_done")
            rows[f"{name} (nested)"]["source"] = "real_accuracy_nested.json"
    return rows


def audit_pickle(path: Path) -> list[str]:
    """Modules the model file's pickle refers to; raises if one is not shippable."""
    from hypnoscope.models.storage import SHIPPABLE_MODULES, model_file_modules

    seen = model_file_modules(path)
    bad = sorted(m for m in seen if m.split(".")[0] not in SHIPPABLE_MODULES)
    if bad:
        raise RuntimeError(f"{path}: the pickle refers to modules {bad}; a shipped model "
                           f"may only use {SHIPPABLE_MODULES}")
    return sorted(seen)


def cross_validate(nights, model_name: str, folds: int, seed: int,
                   state_dir: Path | None = None, **model_kw) -> dict:
    """Subject-wise k-fold CV; pooled and per-fold accuracy / macro-F1 / kappa.

    Runs :func:`hypnoscope.evaluation.cross_validation.cross_validate`; with ``state_dir``
    every fold's test labels and probabilities are kept there (keyed by the model, folds,
    seed and the nights' channels), so an interrupted run resumes at the first fold not
    done."""
    from hypnoscope.evaluation import cross_validation
    from hypnoscope.evaluation.metrics import evaluate
    from hypnoscope.models import make_model

    keys = ("accuracy", "macro_f1", "kappa")

    def score(y: np.ndarray, p: np.ndarray) -> dict:
        res = evaluate(y, p.argmax(1), n_classes=5)
        return {k: res[k] for k in keys}

    def report(rec) -> None:
        s = rec.scores
        print(f"{rec.fold.name}: acc {s['accuracy']:.3f} MF1 {s['macro_f1']:.3f} "
              f"kappa {s['kappa']:.3f} ({rec.train_s + rec.infer_s * len(rec.lengths):.0f} s)"
              + (" (cached)" if rec.cached else ""), flush=True)

    tag = "-".join([model_name, *(f"{k}={v}" for k, v in sorted(model_kw.items())),
                    f"k{folds}", f"s{seed}", *nights[0].channels])
    cv = cross_validation.cross_validate(
        nights, lambda _fold: make_model(model_name, seed=seed, **model_kw), k=folds, seed=seed,
        cache_dir=state_dir, cache_key=tag, score=score, on_fold=report)
    per_fold = cv.fold_scores
    y_all, p_all = cv.pooled()
    pooled = evaluate(y_all, p_all.argmax(1), n_classes=5)
    return {"source": f"scripts/train_default_model.py ({folds}-fold subject-wise CV, "
                      f"seed {seed})",
            "protocol": f"subject-wise {folds}-fold cross-validation (both nights of a "
                        "subject in one fold)",
            "n_folds": len(per_fold), "n_folds_total": folds,
            "pooled": {k: pooled[k] for k in keys} | {"per_class_f1": pooled["per_class_f1"]},
            "mean_over_folds": {k: float(np.mean([f[k] for f in per_fold])) for k in keys},
            "sd_over_folds": {k: float(np.std([f[k] for f in per_fold], ddof=1)) for k in keys},
            "folds": per_fold}


def _nested_procedure(proc: str) -> dict:
    """Pooled metrics, worst fold and paired gain over 'lgbm alone' of a procedure of
    ``real_accuracy_nested.json``."""
    data = json.loads((ROOT / "benchmarks" / "results" / "real_accuracy_nested.json")
                      .read_text())
    if proc not in data["procedures"]:
        raise SystemExit(f"--nested-procedure {proc!r} is not in real_accuracy_nested.json; "
                         f"expected one of {sorted(data['procedures'])}")
    e = data["procedures"][proc]
    return {"procedure": proc, "source": "benchmarks/results/real_accuracy_nested.json",
            **{k: e["pooled"][k] for k in ("accuracy", "macro_f1", "kappa")},
            "per_class_f1": e["f1"],
            "worst_fold_accuracy": e["fold_distribution"]["accuracy"]["min"],
            "paired_vs_lgbm_alone": data["paired"].get(f"{proc} - lgbm alone",
                                                       "not measured")}


def _reads_night_stats(model: str, options: dict) -> bool:
    """Whether the model (or, for ``lightgbm-vote``, one of its members) is given the
    night's own feature statistics (context option ``night_stats``)."""
    from hypnoscope.models.vote import DEFAULT_MEMBERS

    members = options.get("members") or DEFAULT_MEMBERS if model == "lightgbm-vote" else \
        [("", model, options)]
    return any(isinstance(o.get("context"), dict) and o["context"].get("night_stats")
               for _, _, o in members)


def card_markdown(card: dict) -> str:
    """Human-readable model card."""
    cv = card.get("cross_validation") or {}
    td = card["training_data"]
    lines = [f"# Model card: `{card['name']}`", "", card["summary"], "",
             f"- **Trained on:** {card['trained_on']}; {td['n_subjects']} subjects, "
             f"{td['n_nights']} nights, {td['n_scored_epochs']} scored 30-s epochs "
             f"({td['dataset']}).",
             f"- **Model:** {card['architecture']}"
             + (f" with {card['smoothing']} smoothing" if card.get("smoothing") else "") + ".",
             f"- **Input:** {card['channels_expected']}.",
             "- **Output:** W, N1, N2, N3, R per 30-s epoch with probabilities."]
    if cv.get("pooled"):
        pm = cv["pooled"]
        lines.append(f"- **Subject-wise cross-validation** ({cv.get('protocol', cv['source'])}"
                     f"; source `{cv['source']}`): accuracy {pm['accuracy']:.3f}, macro-F1 "
                     f"{pm['macro_f1']:.3f}, Cohen's kappa {pm['kappa']:.3f} (pooled over "
                     "test epochs)" + (
                         f"; per-fold mean accuracy {cv['mean_over_folds']['accuracy']:.3f} "
                         f"± {cv['sd_over_folds']['accuracy']:.3f}"
                         if cv.get("mean_over_folds") else "")
                     + (f"; {cv['n_folds']} of {cv['n_folds_total']} folds run"
                        if cv.get("n_folds") and cv.get("n_folds_total")
                        and cv["n_folds"] != cv["n_folds_total"] else "") + ".")
        if pm.get("per_class_f1"):
            lines.append("  Per-stage F1: " + ", ".join(
                f"{k} {v:.2f}" for k, v in pm["per_class_f1"].items()) + ".")
    st = card.get("stretches")
    if st:
        lines += ["- **Stretches of held-out nights**, each staged as its own recording "
                  f"(row `{st['row']}` of `{st['source']}`, {st['n_folds']} outer "
                  f"fold{'s' if st['n_folds'] != 1 else ''}; "
                  "accuracy / macro-F1 / kappa pooled over the epochs):", "",
                  "  | stretch | accuracy | macro-F1 | kappa |", "  |---|---:|---:|---:|"]
        lines += [f"  | {k} | {a:.3f} | {st['macro_f1'][k]:.3f} | {st['kappa'][k]:.3f} |"
                  for k, a in st["accuracy"].items()]
        lines.append("")
    if (card.get("model_selection") or {}).get("stretch_rule"):
        lines += [f"- **Why this configuration:** {card['model_selection']['stretch_rule']}."]
    cands = (card.get("model_selection") or {}).get("candidates") or {}
    if cands:
        lines += ["- **Model selection** (5-class subject-wise CV, pooled; benchmarks still "
                  "running when fewer folds are listed):", "",
                  "  | candidate | folds | accuracy | macro-F1 | kappa |",
                  "  |---|---:|---:|---:|---:|"]
        ranked = sorted(cands.items(), key=lambda kv: -kv[1].get("kappa", 0))
        proc = (card["model_selection"].get("nested") or {}).get("procedure")
        mine = [f"{proc} (nested)", "lgbm alone (nested)"] if proc else []
        shown = ranked[:6] + [(n, r) for n, r in ranked[6:] if n in mine]
        for name, r in shown:
            lines.append(f"  | {name} | {r.get('n_folds', '')} | {r['accuracy']:.3f} | "
                         f"{r.get('macro_f1', float('nan')):.3f} | {r['kappa']:.3f} |")
        lines += [""] + [f"  {n}." for n in card["model_selection"].get("comparison", [])]
        if card["model_selection"].get("rationale"):
            lines += [f"  Why {card['model_selection'].get('chosen')}: "
                      f"{card['model_selection']['rationale']}."]
        lines.append("")
    lines += ["- **Limits:**"] + [f"  - {lim}" for lim in card["limits"]]
    lines += ["", f"Licence of the training data: {td['licence']}.",
              f"Rebuild: `{card['command']}`.", ""]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "sleepedf_bandpower"))
    ap.add_argument("--model", default="lightgbm-context")
    ap.add_argument("--smoothing", choices=["none", "hmm"], default="none")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                    help="model option, e.g. 'context={\"night_stats\": true}' "
                         "(repeatable)")
    ap.add_argument("--nested-procedure", default=None,
                    help="procedure of benchmarks/results/real_accuracy_nested.json that "
                         "measured exactly this model (its numbers go on the card)")
    ap.add_argument("--bench-model", default=None,
                    help="row of the benchmark results holding this model's CV metrics")
    ap.add_argument("--setup", default="default",
                    help="channel setup (staging.channel_setups.CHANNEL_SETUPS): default, "
                         "eeg1-eog, eeg2 or eeg1")
    ap.add_argument("--name", default=None, help="model name (default: the setup's name)")
    ap.add_argument("--stretch-choice", action="store_true",
                    help="train with the options the stretch benchmark chose on all "
                         "subjects (shipping_choice of --stretch-results)")
    ap.add_argument("--stretch-row", default=None,
                    help="row of --stretch-results that measured exactly this model: its "
                         "stretch table and whole-night CV go on the card")
    ap.add_argument("--stretch-results", default=str(STRETCH_RESULTS),
                    help="results of benchmarks.real_accuracy.stretches")
    ap.add_argument("--cv-folds", type=int, default=5)
    ap.add_argument("--no-cv", action="store_true", help="only use benchmark metrics")
    ap.add_argument("--card-only", action="store_true",
                    help="rewrite the model card of the existing model file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "src" / "hypnoscope" / "data" / "models"))
    return ap


def _crops_text(options: dict) -> str:
    """How the short member of a length-gated model was trained on stretches."""
    crops = ((options.get("short") or {}).get("crops") or {})
    if crops.get("whole", True):
        return "also on random stretches"
    top, naps = crops.get("max_minutes"), crops.get("nap_minutes") or []
    return (f"only on {crops.get('per_night', 2)} random stretches of "
            f"{crops.get('min_minutes', 20):g} min to "
            + (f"{top / 60:g} h" if top else "the whole night")
            + (f" and {len(naps)} nap-like stretches ({', '.join(f'{m:g}' for m in naps)} "
               "min, starting in wake before sleep onset)" if naps else "")
            + " of every training night")


def _rounds_text(options: dict | None) -> str:
    """The short member's boosting rounds where they are not LightGBM's default."""
    rounds = ((options or {}).get("short") or {}).get("n_estimators")
    return f", {rounds} boosting rounds" if rounds else ""


def _vote_text(night_stats: bool) -> str:
    """What lightgbm-vote is, in the card's words."""
    return (" (soft vote of lightgbm-context with robust and with quantile per-night "
            "normalisation and of one trained also on jittered band powers"
            + (", each also given the night's median and IQR of every feature"
               if night_stats else "") + "; choices made on cross-fitted predictions)")


def _night_model(model: str, options: dict | None) -> str:
    """The registry model that stages whole nights (a length-gated model's night member)."""
    if model != "length-gated":
        return model
    return ((options or {}).get("night") or {}).get("model", "lightgbm-context")


def _summary(model: str, smoothing: str | None, night_stats: bool, setup,
             metrics: dict | None, options: dict | None = None) -> str:
    """The one-paragraph summary at the top of the model card."""
    night = _night_model(model, options)
    return (f"{model}{' + HMM smoothing' if smoothing else ''}"
            + (_vote_text(night_stats) if model == "lightgbm-vote" else "")
            + (f" ({night}{_vote_text(night_stats) if night == 'lightgbm-vote' else ''}"
               " as in 0.1 for recordings of 4 h or more; for shorter "
               f"ones lightgbm-context trained {_crops_text(options)}, with per-recording "
               "statistics shrunk toward the training population's and the recording's "
               "length as a feature" + _rounds_text(options) + ")"
               if model == "length-gated" else "") + " on "
            f"{10 * len(setup.slots)} band-power features ({', '.join(setup.channels)}"
            " x 5 bands, log-absolute + relative) with temporal context"
            + (" and each night's median and IQR of every feature"
               if night_stats and model != "lightgbm-vote" else "")
            + "; trained on "
            "real Sleep-EDF cassette "
            "nights (59 subjects)"
            + (f"; subject-wise CV accuracy {metrics['pooled']['accuracy']:.3f}, "
               f"kappa {metrics['pooled']['kappa']:.3f}" if metrics else ""))


def _limits(setup, night_stats: bool) -> list[str]:
    """The card's limits of a model of ``setup``'s channels."""
    return [
        "no EMG input: REM vs wake relies on EEG/EOG only",
        "trained on the Sleep-EDF cassette population (healthy community-dwelling "
        "adults aged 25-101, ambulatory recordings in the home, 1987-1991); "
        "clinical populations and other montages may perform worse",
        "band-power features only (no waveform detail such as spindles or K-complexes "
        "beyond the sigma band)",
        "scored with R&K rules (stages 3 and 4 merged into N3)",
        "expects 30-s epochs from the recording start; recordings are resampled to "
        "100 Hz; the z-score window is the sleep period found by a first pass",
    ] + ([NIGHT_STATS_LIMIT] if night_stats else []) + ([] if setup.n_eog else [
        "no EOG input: the training features were cleaned of eye components by ICA "
        "against the EOG, a recording without EOG is not, so eye movements stay in "
        "its EEG; REM vs wake and N1 rely on the EEG alone"]) + ([] if setup.n_eeg > 1 else [
        "one EEG channel of any derivation: trained on Fpz-Cz and Pz-Oz alike "
        "(benchmarks/results/real_accuracy_derivations.md); central derivations "
        "(C3/C4) were never in the training data"] if setup.pool else [
        _one_derivation_limit(setup)])


def _one_derivation_limit(setup) -> str:
    """The limit of a one-EEG model trained on Fpz-Cz alone, with what it loses staged
    from Pz-Oz (``real_accuracy_derivations_<setup>.json``, when measured)."""
    text = ("one EEG channel trained on Fpz-Cz alone: any derivation (frontal, central, a "
            "headband's) takes that slot")
    path = ROOT / "benchmarks" / "results" / (
        f"real_accuracy_derivations_{setup.name.replace('-', '')}.json")
    fpz = (json.loads(path.read_text())["models"].get("Fpz-Cz") if path.is_file() else None)
    if not fpz or fpz["n_folds_done"] != 10:
        return text + "; agreement on other derivations is not measured here"
    acc = {t: {r["length"]: r["accuracy"] for r in rows}
           for t, rows in fpz["tested_on"].items()}
    return (text + "; staged from Pz-Oz instead, the same recordings lose "
            + ", ".join(f"{100 * (acc['Fpz-Cz'][k] - acc['Pz-Oz'][k]):.1f} points on "
                        f"{'whole nights' if k == 'whole' else k + ' stretches'}"
                        for k in ("whole", "2 h", "30 min"))
            + f" (real Sleep-EDF, 10 folds; {path.relative_to(ROOT)}); central "
            "derivations (C3/C4) were never in the training data")


def _card(args: argparse.Namespace, setup, options: dict, smoothing: str | None,
          night_stats: bool, metrics: dict | None, desc: dict, fit_sec: float | None,
          chosen_name: str, argv: list[str] | None) -> dict:
    """The model card before the model-selection details (:func:`_model_selection`)."""
    from hypnoscope.signal import bandpower

    card = {
        "name": args.name,
        "summary": _summary(args.model, smoothing, night_stats, setup, metrics, options),
        "trained_on": "real data (PhysioNet Sleep-EDF Expanded, sleep-cassette subset)",
        "architecture": args.model,
        "options": {k: v for k, v in options.items() if k != "smoothing"},
        "smoothing": smoothing,
        "input": {"representation": "bandpower", "channels": setup.channels,
                  "roles": setup.roles, "channel_setup": setup.name,
                  "feature_names": list(bandpower.FEATURE_NAMES),
                  "settings": bandpower.SETTINGS},
        "channels_expected": f"{setup.description}; EMG is not used",
        "output": {"classes": ["W", "N1", "N2", "N3", "R"], "epoch_sec": 30.0},
        "training_data": {
            "dataset": "Sleep-EDF Expanded (sleep-edfx 1.0.0), sleep-cassette study",
            "features": "../shared/data/sleepedf_bandpower (reproduced on new recordings "
                        "by hypnoscope.signal.bandpower)",
            "licence": "ODC-By 1.0; cite Kemp et al., IEEE TBME 47(9) 2000 and Goldberger "
                       "et al., Circulation 101(23) 2000",
            "n_subjects": desc["n_subjects"], "n_nights": desc["n_nights"],
            "n_epochs": desc["n_epochs"], "n_scored_epochs": desc["n_scored_epochs"],
            "epochs_per_class": desc["epochs_per_class"],
            "preprocessing": "nights cropped to 30 min of wake around the sleep period; "
                             "see input.settings",
        },
        "cross_validation": metrics,
        "model_selection": {
            "rule": "the best 5-class model of the subject-wise CV benchmarks (accuracy, "
                    "macro-F1 and kappa on the same folds); a sequence model would have to "
                    "beat it clearly to replace a feature model that needs no deep-learning "
                    "runtime",
            "chosen": chosen_name,
            "candidates": selection_table(),
        },
        "limits": _limits(setup, night_stats),
        "fit_seconds": fit_sec,
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "command": "python scripts/train_default_model.py " + shlex.join(
            a for a in (argv if argv is not None else sys.argv[1:]) if a != "--card-only"),
        "machine": f"{platform.machine()} {platform.system()} python "
                   f"{platform.python_version()}",
        "versions": _versions(),
    }
    card["command"] = card["command"].strip()
    return card


def _vote_selection(card: dict, metrics: dict, mdl) -> None:
    """Selection rule, rationale and chosen combination of a model trained as a
    procedure of the nested benchmark (:data:`NESTED_PROCEDURES`)."""
    card["model_selection"].update({
        "rule": "nested subject-wise CV (benchmarks/results/real_accuracy_nested.md): "
                "the best procedure that needs no PyTorch; paired accuracy against "
                "lightgbm-context per outer fold, in points: "
                + str(metrics.get("paired_vs_default", "not measured")),
        "rationale": "shipped beside `default` (lightgbm-context), not instead of it: "
                     "its six LightGBM models stage a 9-h night about 0.5 s slower in "
                     "a warm process and about 1 s slower in a fresh one (which also "
                     "loads them), which the default's speed budget (1.5 s) does not "
                     "allow for its few tenths of a point; the vote with the two sequence "
                     "models (SSNet, seq-transformer) scored higher still but needs "
                     "PyTorch at staging time; class re-weighting and HMM smoothing "
                     "were offered to the inner folds and never chosen"})
    combo = (mdl.metadata or {}).get("combination")
    if combo:
        card["combination"] = {"members": [s[0] for s in mdl.specs],
                               "weights": combo["weights"],
                               "prior_exponent": combo["prior_exponent"],
                               "smoothing": combo["smoothing"]}


def _model_selection(card: dict, args: argparse.Namespace, setup, bench_model: str,
                     metrics: dict | None, mdl) -> None:
    """Fill in the card's ``model_selection``: why this model (nested procedure, other
    channel setup, or the comparison with the sequence models)."""
    night = _night_model(args.model, card.get("options"))
    if night in NESTED_PROCEDURES and setup.name == "default":
        _vote_selection(card, metrics, mdl.night if args.model == "length-gated" else mdl)
    if setup.name != "default":  # the benchmark's candidates are of the full layout
        card["model_selection"] = {
            "rule": "the architecture of the default model (the best of the full layout's "
                    "subject-wise CV benchmark), trained on this setup's channels",
            "chosen": args.model, "candidates": {}}
    sel = card["model_selection"]
    nested = _nested_procedure(args.nested_procedure) if args.nested_procedure else None
    if nested is not None:
        sel.update({
            "rule": "nested subject-wise CV (benchmarks/results/real_accuracy_nested.md): "
                    "the best procedure that stages as fast as one LightGBM model",
            "nested": nested,
            "rationale": (f"in nested CV (procedure '{args.nested_procedure}') it scores "
                          f"accuracy {nested['accuracy']:.3f}, macro-F1 "
                          f"{nested['macro_f1']:.3f}, kappa {nested['kappa']:.3f}, "
                          f"{nested['paired_vs_lgbm_alone']} accuracy points per outer fold "
                          "against lightgbm-context without its options ('lgbm alone'); "
                          "the votes listed above score higher but run six LightGBM models "
                          "(`vote`, shipped beside it) or need PyTorch")})
    chosen = sel["candidates"].get(bench_model) if nested is None else None
    if chosen:
        notes = []
        for name, r in sel["candidates"].items():
            if name.endswith("(sequence)"):
                d = {k: r[k] - chosen[k] for k in ("accuracy", "macro_f1", "kappa") if k in r}
                notes.append(f"{name} vs {bench_model}: " + ", ".join(
                    f"{k} {v:+.3f}" for k, v in d.items()))
        sel["comparison"] = notes
        seq = [r for n, r in sel["candidates"].items() if n.endswith("(sequence)")]
        if seq and all(abs(r.get("accuracy", 0) - chosen["accuracy"]) < 0.01 for r in seq):
            sel["rationale"] = (
                f"the sequence model is within 1 point of {bench_model} (inside the "
                "fold-to-fold spread) and has a lower macro-F1; the feature model ships "
                "because it needs no PyTorch at staging time and stages a 9-h night in "
                "about 2 s")


def _check_benchmark_config(card: dict, metrics: dict | None, mdl) -> None:
    """Record whether the model's configuration is the benchmarked one (warn if not)."""
    bench_cfg = (metrics or {}).get("benchmark_model_config")
    if bench_cfg is not None:
        mine = json.loads(json.dumps({k: getattr(mdl, k, None) for k in bench_cfg}))
        card["config_matches_benchmark"] = mine == bench_cfg
        if mine != bench_cfg:
            print(f"WARNING: model config {mine} differs from the benchmarked {bench_cfg}",
                  flush=True)


def stretch_row(args: argparse.Namespace) -> dict | None:
    """The ``--stretch-row`` of the stretch benchmark's results, as the card keeps it:
    accuracy, macro-F1 and kappa per stretch length, with the protocol and the whole-night
    CV (None without ``--stretch-row``)."""
    if not args.stretch_row:
        return None
    res = json.loads(Path(args.stretch_results).read_text())
    row = res["models"].get(args.stretch_row)
    if row is None:
        raise SystemExit(f"{args.stretch_results}: no row {args.stretch_row!r}; rows are "
                         f"{sorted(res['models'])}")
    path = Path(args.stretch_results).resolve()
    return {"source": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
            "row": args.stretch_row, "date": res["date"], "protocol": res["protocol"],
            "n_folds": row["n_folds_done"],
            "accuracy": {r["length"]: r["accuracy"] for r in row["lengths"]},
            "macro_f1": {r["length"]: r["macro_f1"] for r in row["lengths"]},
            "kappa": {r["length"]: r["kappa"] for r in row["lengths"]},
            "whole_night_cv": row.get("whole_night_cv")}


def _metrics(args: argparse.Namespace, setup, nights, options: dict, bench_model: str,
             old: dict) -> dict | None:
    """The card's cross-validated metrics: the stretch benchmark's whole nights
    (``--stretch-row``), the benchmark's row, the existing card's (``--card-only``), or a
    CV run here. A model whose whole nights are staged by a procedure of the nested
    benchmark (``lightgbm-vote``, alone or as a length-gated model's night member) takes
    that procedure's nested CV."""
    nested = (_nested_metrics(_night_model(args.model, options))
              if setup.name == "default" else None)
    if nested is not None:
        return nested
    whole = (stretch_row(args) or {}).get("whole_night_cv")
    if whole and whole["n_folds"] == whole["n_folds_total"]:  # every outer fold run
        return whole
    # the benchmark's rows are of the full layout: other setups get their own CV
    # (a model with other options than the benchmark row's: only if named explicitly)
    metrics = (_bench_metrics(bench_model) if setup.name == "default"
               and (args.bench_model or not set(options) - {"smoothing"}) else None)
    if args.card_only and metrics is None:  # keep the CV of the existing card
        metrics = old.get("cross_validation")
    if metrics is None and not args.no_cv:
        metrics = cross_validate(nights, args.model, args.cv_folds, args.seed,
                                 state_dir=ROOT / ".cache" / "train_default_model",
                                 **options)
    if (metrics and str(metrics.get("source", "")).startswith("scripts/")
            and metrics.get("n_folds_total") == 10
            and args.seed == 0):  # subject_kfold(k=10, seed=0): the benchmark's folds
        metrics["protocol"] = BENCH_PROTOCOL
    return metrics


def main(argv: list[str] | None = None) -> int:
    from hypnoscope.staging.channel_setups import CHANNEL_SETUPS, setup_nights

    ap = _parser()
    args = ap.parse_args(argv)
    if args.setup not in CHANNEL_SETUPS:
        ap.error(f"--setup {args.setup!r}: expected one of {list(CHANNEL_SETUPS)}")
    setup = CHANNEL_SETUPS[args.setup]
    args.name = args.name or setup.name

    from hypnoscope.datasets import describe_nights, load_feature_dir
    from hypnoscope.models import load_model, make_model
    from hypnoscope.models.storage import make_portable
    from hypnoscope.utils.files import write_json_atomic, write_text_atomic
    from hypnoscope.utils.runtime import parse_options, seed_everything

    seed_everything(args.seed)
    smoothing = None if args.smoothing == "none" else args.smoothing
    try:
        options = parse_options(args.option)
    except ValueError as err:
        ap.error(f"--{err}")
    choice = None
    if args.stretch_choice:
        choice = json.loads(Path(args.stretch_results).read_text()).get("shipping_choice")
        if not choice or choice["model"] != args.model:
            raise SystemExit(f"{args.stretch_results}: no shipping choice for {args.model}")
        options = {**choice["options"], **options}
    if smoothing:
        options["smoothing"] = smoothing
    bench_model = args.bench_model or (args.model + ("+HMM" if smoothing == "hmm" else ""))
    extra = {k: v for k, v in options.items() if k != "smoothing"}
    night_stats = _reads_night_stats(args.model, options)
    # the name of what was trained: the benchmark row's, or the model with its options
    chosen_name = args.bench_model or (bench_model + "".join(
        f" {k}={json.dumps(v, sort_keys=True)}" for k, v in extra.items()))
    out = Path(args.out)
    path = out / f"{args.name}.joblib"
    nights = setup_nights(load_feature_dir(args.data), setup)
    desc = describe_nights(nights)
    print(f"{desc['n_subjects']} subjects, {desc['n_nights']} nights, "
          f"{desc['n_scored_epochs']} scored epochs", flush=True)
    old = json.loads(path.with_suffix(".json").read_text()) if args.card_only else {}
    metrics = _metrics(args, setup, nights, options, bench_model, old)
    if args.card_only:
        mdl = load_model(path)
        fit_sec = old.get("fit_seconds")
    else:
        t = time.time()
        mdl = make_portable(make_model(args.model, seed=args.seed, **options).fit(nights))
        fit_sec = round(time.time() - t, 1)
    card = _card(args, setup, options, smoothing, night_stats, metrics, desc, fit_sec,
                 chosen_name, argv)
    _model_selection(card, args, setup, bench_model, metrics, mdl)
    _check_benchmark_config(card, metrics, mdl)
    card["stretches"] = stretch_row(args) or old.get("stretches")
    if args.stretch_row and not args.stretch_row.endswith("@0.1"):
        specialist = ((options.get("short") or {}).get("crops") or {}).get("whole") is False
        card["model_selection"]["stretch_rule"] = (STRETCH_SPECIALIST_RULE if specialist
                                                   else STRETCH_RULE)
    if args.stretch_choice:
        card["model_selection"]["stretch_rule"] = STRETCH_CHOICE_RULE
        card["model_selection"]["stretch_choice"] = choice
    if not args.card_only:
        mdl.describe_training(nights, card=card)
        out.mkdir(parents=True, exist_ok=True)
        mdl.save(path)
    card["pickle_modules"] = sorted({m.split(".")[0] for m in audit_pickle(path)})
    card["file_size_mb"] = round(path.stat().st_size / 1e6, 2)
    write_json_atomic(out / f"{args.name}.json", card)
    write_text_atomic(out / f"{args.name}.md", card_markdown(card))
    print(f"wrote {path} ({card['file_size_mb']} MB) and its model card", flush=True)
    return 0


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    return {p: md.version(p) for p in ("hypnoscope", "numpy", "lightgbm", "scikit-learn")}


if __name__ == "__main__":
    sys.exit(main())
