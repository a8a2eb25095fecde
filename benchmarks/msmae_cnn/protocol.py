"""The MSMAE-CNN benchmark protocol, shared by ``run.py`` (simulated nights) and
``real_sleepedf.py`` (real Sleep-EDF): Table 1 under a subject-wise split and under the
paper's LEAKY epoch-level 80/20 split, side by side, and the ablations (subject-wise,
several seeds).

Every run (protocol, model or ablation arm, seed) is stored as one JSON file in
``<work>/runs/`` as soon as it finishes, so an interrupted benchmark resumes where it
stopped; runs go to ``jobs`` worker processes (one torch thread each).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.datasets import Night
from hypnoscope.evaluation.metrics import aggregate, evaluate
from hypnoscope.evaluation.splits import LEAKY_NOTE, stratified_epoch_split, train_val_test_split
from hypnoscope.signal.preprocessing import PRESETS as PREPROCESSING
from hypnoscope.stages import proba_to_3class, to_3class
from hypnoscope.utils.files import write_json_atomic

#: Sleep-EDF cassette channels (the EMG is the 1 Hz envelope there).
CHANNELS = {"eeg": ["EEG Fpz-Cz", "EEG Pz-Oz"], "eog": ["EOG horizontal"],
            "emg": ["EMG submental"]}
TABLE1 = ("svm", "rf", "cnn", "msmae-cnn", "msmae-cnn-rf")
#: ablation arm -> (description, MSMAE-CNN options, low-pass Hz, with RF voting)
ABLATIONS: dict[str, tuple[str, dict[str, Any], float, bool]] = {
    "default": ("multi-scale 0.5/1/2/5 s, mask 0.5, pre-trained, fine-tuned encoder, "
                "10 Hz, EEG+EOG+EMG", {}, 10.0, False),
    "single-scale": ("one scale (1 s patches)", {"scales": (1.0,)}, 10.0, False),
    "mask-0": ("mask ratio 0 (plain autoencoder)", {"mask_ratio": 0.0}, 10.0, False),
    "mask-0.25": ("mask ratio 0.25", {"mask_ratio": 0.25}, 10.0, False),
    "mask-0.75": ("mask ratio 0.75", {"mask_ratio": 0.75}, 10.0, False),
    "no-pretrain": ("no self-supervised pre-training", {"pretrain_epochs": 0}, 10.0, False),
    "frozen": ("frozen encoder (decoder only fine-tuned)", {"freeze_encoder": True},
               10.0, False),
    "rf-voting": ("default + Random-Forest soft voting", {}, 10.0, True),
    "lowpass-30": ("30 Hz low-pass instead of 10 Hz", {}, 30.0, False),
    "eeg": ("EEG only", {"modalities": ("eeg",)}, 10.0, False),
    "eeg-eog": ("EEG + EOG", {"modalities": ("eeg", "eog")}, 10.0, False),
}


@dataclass
class Settings:
    """Sizes of a benchmark run (``--smoke`` shrinks them)."""

    seed: int = 0
    seeds: tuple[int, ...] = (0, 1, 2)
    val: float = 0.1
    test: float = 0.3
    preset: str = "small"
    epochs: int = 5
    pretrain_epochs: int = 2
    patience: int = 2
    cnn_epochs: int = 5
    rf_trees: int = 100
    jobs: int = 1
    ablations: tuple[str, ...] = tuple(ABLATIONS)
    net: dict[str, Any] = field(default_factory=dict)


def lowpass_config(hz: float) -> dict[str, Any]:
    """The paper's preprocessing (Kaiser-window FIR low-pass, 60 dB) at ``hz``."""
    cfg = dict(PREPROCESSING["msmae-cnn"])
    cfg["lowpass"] = {**cfg["lowpass"], "cutoff": float(hz)}
    return cfg


# --------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------
def build(name: str, s: Settings, seed: int, **msmae: Any):
    """A model of Table 1 / the ablations with the benchmark's settings."""
    from hypnoscope.models import make_model

    deep = {"preset": s.preset, "seed": seed, "num_threads": 1, "device": "cpu",
            "patience": s.patience}
    if name in ("svm", "rf"):
        extra = {"n_estimators": s.rf_trees} if name == "rf" else {}
        return make_model(name, seed=seed, feature_set="msmae-paper", **extra)
    if name == "cnn":
        return make_model("cnn", epochs=s.cnn_epochs, **deep)
    if name == "msmae-cnn":
        opts = {"epochs": s.epochs, "pretrain_epochs": s.pretrain_epochs, **s.net, **msmae}
        return make_model("msmae-cnn", **deep, **opts)
    raise ValueError(f"unknown benchmark model {name!r}")


def score(nights: list[Night], probas: list[np.ndarray]) -> dict[str, Any]:
    """5-class metrics (accuracy, sensitivity and specificity macro and per stage,
    macro-F1, kappa) and 3-class accuracy/kappa, pooled over the scored epochs."""
    y = np.concatenate([n.y for n in nights])
    p = np.concatenate(probas)
    keep = y >= 0
    e5 = evaluate(y[keep], p[keep].argmax(1), n_classes=5)
    e3 = evaluate(to_3class(y[keep]), proba_to_3class(p[keep]).argmax(1), n_classes=3)
    keys = ("accuracy", "macro_f1", "kappa", "macro_recall", "macro_specificity",
            "precision", "recall", "specificity", "per_class_f1", "confusion_matrix",
            "n_epochs", "macro_precision",
            "labels", "n_classes")
    out = {k: e5[k] for k in keys if k in e5}
    out["acc_3class"], out["kappa_3class"] = e3["accuracy"], e3["kappa"]
    return out


def _fit_predict(model, train, val, test) -> tuple[list[np.ndarray], float, float]:
    t0 = time.perf_counter()
    model.fit(train, val)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    probas = [np.asarray(model.predict_proba(n)) for n in test]
    return probas, train_s, (time.perf_counter() - t0) / max(len(test), 1)


# --------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------
def _sub_night(n: Night, keep: np.ndarray, tag: str, subject_tag: str | None = None,
               ) -> Night:
    idx = np.flatnonzero(keep)
    subject = n.subject_id if subject_tag is None else f"{n.subject_id}|{subject_tag}"
    return replace(n, X=np.ascontiguousarray(n.X[idx]), y=n.y[idx], subject_id=subject,
                   night_id=f"{n.night_id}:{tag}",
                   onsets_sec=None if n.onsets_sec is None else n.onsets_sec[idx],
                   views={})


def subject_split(nights: list[Night], s: Settings):
    """Fixed subject-wise train / validation / test split (both nights of a subject on
    one side)."""
    fold = train_val_test_split(nights, val=s.val, test=s.test, seed=s.seed)
    return (*fold.select(nights), fold.to_dict())


def leaky_split(nights: list[Night], s: Settings):
    """The paper's epoch-level stratified 80/20 split (LEAKY), validation = a further
    stratified 10 % of the training epochs (also leaky). Returns sub-nights holding only
    their side's epochs, so no test epoch reaches training, not even unlabelled. The
    validation and test sub-nights carry the subject id tagged ``|leaky-val`` /
    ``|leaky-test``: the models refuse validation subjects that are also training
    subjects, and on this split (labelled LEAKY) they are, by the paper's design."""
    outer = stratified_epoch_split(nights, test=0.2, seed=s.seed)
    train_full = [_sub_night(n, m, "train") for n, m in zip(nights, outer.train, strict=True)]
    inner = stratified_epoch_split(train_full, test=0.1, seed=s.seed + 1)
    train = [_sub_night(n, m, "fit") for n, m in zip(train_full, inner.train, strict=True)]
    val = [_sub_night(n, m, "val", "leaky-val")
           for n, m in zip(train_full, inner.test, strict=True)]
    test = [_sub_night(n, m, "test", "leaky-test")
            for n, m in zip(nights, outer.test, strict=True)]
    keep = [i for i, n in enumerate(test) if n.n_epochs]
    return ([n for n in train if n.n_epochs], [n for n in val if n.n_epochs],
            [test[i] for i in keep], {"leaky": True, "note": LEAKY_NOTE,
                                      **outer.to_dict()})


# --------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One unit of work: Table 1 (``protocol`` subject/leaky, ``model``) or an ablation
    arm (``protocol`` "ablation", ``model`` the arm)."""

    protocol: str
    model: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.protocol}__{self.model}__seed{self.seed}"


_STATE: dict[str, Any] = {}  # loaded nights and splits, inherited by forked workers


def _source(run: Run, s: Settings) -> Run:
    """The MSMAE-CNN run whose stored probabilities an ensemble run votes with."""
    if run.protocol in ("subject", "leaky"):
        return Run(run.protocol, "msmae-cnn", run.seed)
    if run.seed == s.seed:
        return Run("subject", "msmae-cnn", run.seed)
    return Run("ablation", "default", run.seed)


def _is_ensemble(run: Run) -> bool:
    return run.model in ("msmae-cnn-rf", "rf-voting")


def _data(run: Run):
    if run.protocol in ("subject", "leaky"):
        return _STATE["splits"][run.protocol]
    return _STATE["ablation_splits"][ABLATIONS[run.model][2]]


def _run(run: Run) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    s: Settings = _STATE["settings"]
    train, val, test, split = _data(run)
    if _is_ensemble(run):
        res = _ensemble(run, train, val, test, split)
    else:
        if run.protocol == "ablation":
            model = build("msmae-cnn", s, run.seed, **ABLATIONS[run.model][1])
        else:
            model = build(run.model, s, run.seed)
        probas, tr, inf = _fit_predict(model, train, val, test)
        res = {"scores": score(test, probas), "train_s": tr, "infer_s_per_night": inf,
               "split": split}
        summ = getattr(model, "training_summary", {}).get("direct")
        if summ:
            res.update(n_parameters=summ["n_parameters"], epochs_run=summ["epochs_run"],
                       seconds_per_epoch=summ["seconds_per_epoch"],
                       n_train_windows=summ["n_train_windows"])
        if getattr(model, "name", "") == "msmae-cnn":  # kept for the RF-voting runs
            stored = {f"test:{n.night_id}": p for n, p in zip(test, probas, strict=True)}
            stored.update({f"val:{n.night_id}": np.asarray(model.predict_proba(n))
                           for n in val})
            np.savez_compressed(_STATE["runs_dir"] / f"{run.key}.npz", **stored)
    if run.protocol == "ablation":
        res["arm"] = ABLATIONS[run.model][0]
    res["wall_s"] = time.perf_counter() - t0
    return res


class _Stored:
    """A fitted member that returns the probabilities a finished run stored."""

    n_classes = 5
    name = "msmae-cnn (stored)"
    input_kind = "signals"

    def __init__(self, path: Path) -> None:
        with np.load(path) as z:
            self.p = {k.split(":", 1)[1]: z[k] for k in z.files}

    def fit(self, nights, val_nights=None):
        return self

    def predict_proba(self, night: Night) -> np.ndarray:
        return self.p[night.night_id]


def _ensemble(run: Run, train, val, test, split) -> dict[str, Any]:
    """MSMAE-CNN + RF soft voting: the RF is trained here, MSMAE-CNN's probabilities
    come from its own run (same seed, same data); the weight is chosen on the validation
    nights by :class:`~hypnoscope.models.ensemble.SoftVotingEnsemble`."""
    from hypnoscope.models.ensemble import SoftVotingEnsemble

    s: Settings = _STATE["settings"]
    src = _source(run, s)
    src_res = json.loads((_STATE["runs_dir"] / f"{src.key}.json").read_text())
    cnn = _Stored(_STATE["runs_dir"] / f"{src.key}.npz")
    rf = build("rf", s, run.seed)
    t0 = time.perf_counter()
    rf.fit(train, val)
    rf_train = time.perf_counter() - t0
    ens = SoftVotingEnsemble([cnn, rf], grid_step=0.05, seed=run.seed, refit=False)
    ens.fit(train, val)
    t0 = time.perf_counter()
    rf_probas = [np.asarray(rf.predict_proba(n)) for n in test]
    rf_inf = (time.perf_counter() - t0) / max(len(test), 1)
    probas = [ens.predict_proba(n) for n in test]
    return {"scores": score(test, probas), "train_s": src_res["train_s"] + rf_train,
            "infer_s_per_night": src_res["infer_s_per_night"] + rf_inf, "split": split,
            "weights": [float(w) for w in ens.weights], "msmae_run": src.key,
            "members": {"msmae-cnn": src_res["scores"]["accuracy"],
                        "rf": score(test, rf_probas)["accuracy"]},
            "validation": ens.validation}


def plan(s: Settings) -> list[Run]:
    """Every run of the benchmark; ensemble runs last (they use stored MSMAE-CNN
    probabilities)."""
    runs = [Run(p, m, s.seed) for p in ("subject", "leaky") for m in TABLE1]
    for arm in s.ablations:
        for seed in s.seeds:
            if arm == "default" and seed == s.seed:
                continue  # the same as Table 1's subject-wise MSMAE-CNN: reused
            runs.append(Run("ablation", arm, seed))
    return sorted(runs, key=_is_ensemble)


def execute(nights_for: Callable[[float], list[Night]], s: Settings, work: Path,
            log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Run (or resume) every run of :func:`plan` and return ``{key: result}``."""
    import multiprocessing as mp

    runs_dir = work / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    if "rf-voting" in s.ablations and "default" not in s.ablations:
        raise ValueError("the rf-voting arm votes with the default arm's runs")
    everything = plan(s)
    todo = [r for r in everything if not (runs_dir / f"{r.key}.json").is_file()]
    hzs = sorted({ABLATIONS[a][2] for a in s.ablations} | {10.0})
    nights = {hz: nights_for(hz) for hz in hzs}
    _STATE.update(settings=s, runs_dir=runs_dir,
                  splits={"subject": subject_split(nights[10.0], s),
                          "leaky": leaky_split(nights[10.0], s)},
                  ablation_splits={hz: subject_split(nights[hz], s) for hz in hzs})
    log(f"{len(todo)} of {len(everything)} runs to do ({s.jobs} worker(s))")

    def done(run: Run, res: dict[str, Any]) -> None:
        res["run"] = {"protocol": run.protocol, "model": run.model, "seed": run.seed}
        write_json_atomic(runs_dir / f"{run.key}.json", res)
        log(f"{run.key}: accuracy {res['scores']['accuracy']:.3f} "
            f"({res['train_s']:.0f} s training, {res['wall_s']:.0f} s in all)")

    for stage in (False, True):  # models first, then the votes that use them
        batch = [r for r in todo if _is_ensemble(r) == stage]
        if s.jobs <= 1 or len(batch) <= 1:
            for run in batch:
                done(run, _run(run))
            continue
        with ProcessPoolExecutor(s.jobs, mp_context=mp.get_context("fork")) as pool:
            futures = {pool.submit(_run, r): r for r in batch}
            for fut, run in futures.items():
                done(run, fut.result())
    return {r.key: json.loads((runs_dir / f"{r.key}.json").read_text()) for r in everything}


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------
STAGES = ("W", "N1", "N2", "N3", "R")
MODEL_NAMES = {"svm": "SVM (paper features)", "rf": "Random Forest (paper features)",
               "cnn": "CNN (Chambon et al. 2018)", "msmae-cnn": "MSMAE-CNN",
               "msmae-cnn-rf": "MSMAE-CNN + RF (soft voting)"}
#: The paper's Table 1 (its unidentified Kaggle PSG set, stratified 80/20 epoch split):
#: accuracy %, sensitivity and "Exec. Time (s)" (undefined: training, inference or a whole
#: run). Its "MSMAE-CNN (Proposed)" row is the framework it proposes, MSMAE-CNN with the
#: Random Forest's soft-weighted vote, so it maps to ``msmae-cnn-rf``; the paper reports no
#: MSMAE-CNN without the vote.
PAPER = {"svm": {"accuracy": 82.3, "sensitivity": 0.79, "time_s": 12.4},
         "rf": {"accuracy": 86.7, "sensitivity": 0.84, "time_s": 9.1},
         "cnn": {"accuracy": 91.2, "sensitivity": 0.89, "time_s": 14.3},
         "msmae-cnn-rf": {"accuracy": 96.5, "sensitivity": 0.95, "time_s": 11.8}}


def paper_cells(model: str) -> list[str]:
    """The paper's accuracy (%), sensitivity and time (s) of ``model``, "–" where it has
    no row."""
    p = PAPER.get(model)
    if p is None:
        return ["–", "–", "–"]
    return [f"{p['accuracy']:.1f}", f"{p['sensitivity']:.2f}", f"{p['time_s']:.1f}"]


def summarise(results: dict[str, dict[str, Any]], s: Settings) -> dict[str, Any]:
    """Table 1 rows per protocol and ablation mean ± sd over seeds."""
    table1 = {p: {m: results[Run(p, m, s.seed).key] for m in TABLE1}
              for p in ("subject", "leaky")}
    ablation = {}
    for arm in s.ablations:
        runs = [results[Run("subject", "msmae-cnn", seed).key] if arm == "default"
                and seed == s.seed else results[Run("ablation", arm, seed).key]
                for seed in s.seeds]
        agg = aggregate([{**r["scores"], "train_time_s": r["train_s"]} for r in runs])
        ablation[arm] = {"description": ABLATIONS[arm][0], "n_seeds": len(runs),
                         "accuracy": agg["accuracy"], "macro_f1": agg["macro_f1"],
                         "kappa": agg["kappa"], "train_s": agg["train_time_s"],
                         "per_seed_accuracy": [r["scores"]["accuracy"] for r in runs]}
    return {"table1": table1, "ablation": ablation}


def _pct(v: float | None) -> str:
    """A percentage, or "–" where undefined (e.g. a stage absent from the test set)."""
    return "–" if v is None or not np.isfinite(v) else f"{v * 100:.0f}"


def _pm(d: dict[str, float], scale: float = 100.0) -> str:
    sd = d.get("sd")
    return (f"{d['mean'] * scale:.1f} ± {sd * scale:.1f}" if sd is not None
            and np.isfinite(sd) else f"{d['mean'] * scale:.1f}")


def render(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    """Markdown of Table 1 (both protocols side by side), per-stage sensitivity and
    specificity, and the ablations; ``meta["data_label"]`` names the data in every
    table."""
    label = meta["data_label"]
    t1 = summary["table1"]
    lines = [f"# {meta['title']}", "", f"{meta['date']} · command `{meta['command']}`", "",
             meta["data_text"], "", meta["protocol_text"], "",
             f"## Table 1 — {label}: subject-wise vs LEAKY epoch-level 80/20", "",
             "Accuracy, macro sensitivity (recall) and specificity, macro-F1 and Cohen's "
             "kappa in %, pooled over the test epochs; training time per model and "
             "inference time per test night in seconds (1 torch thread). **LEAKY**: "
             + LEAKY_NOTE + ". Paper: its Table 1 (accuracy %, sensitivity, \"Exec. "
             "Time (s)\", undefined in the paper) on its own data — an unidentified Kaggle "
             "PSG set — and split; its \"MSMAE-CNN (Proposed)\" row is the proposed "
             "framework, MSMAE-CNN with the Random Forest vote.",
             "",
             "| model | paper acc. | paper sens. | paper time s | subject-wise acc. | sens. "
             "| spec. | macro-F1 | kappa | 3-class acc. | train s | infer s/night | LEAKY acc. "
             "| LEAKY sens. | LEAKY spec. | LEAKY kappa | LEAKY − subject-wise |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in TABLE1:
        a, b = t1["subject"][m], t1["leaky"][m]
        sa, sb = a["scores"], b["scores"]
        lines.append(
            f"| {MODEL_NAMES[m]} | {' | '.join(paper_cells(m))} | {sa['accuracy'] * 100:.1f} | "
            f"{sa['macro_recall'] * 100:.1f} | {sa['macro_specificity'] * 100:.1f} | "
            f"{sa['macro_f1'] * 100:.1f} | {sa['kappa'] * 100:.1f} | "
            f"{sa['acc_3class'] * 100:.1f} | {a['train_s']:.0f} | "
            f"{a['infer_s_per_night']:.2f} | {sb['accuracy'] * 100:.1f} | "
            f"{sb['macro_recall'] * 100:.1f} | {sb['macro_specificity'] * 100:.1f} | "
            f"{sb['kappa'] * 100:.1f} | {(sb['accuracy'] - sa['accuracy']) * 100:+.1f} |")
    for proto, title in (("subject", "subject-wise"), ("leaky", "LEAKY 80/20")):
        lines += ["", f"Per-stage sensitivity / specificity (%), {title}, {label}:", "",
                  "| model | " + " | ".join(STAGES) + " |",
                  "|---|" + "---|" * len(STAGES)]
        for m in TABLE1:
            sc = t1[proto][m]["scores"]
            lines.append(f"| {MODEL_NAMES[m]} | " + " | ".join(
                f"{_pct(sc['recall'][k])} / {_pct(sc['specificity'][k])}"
                for k in STAGES) + " |")
    ens = t1["subject"]["msmae-cnn-rf"]
    lines += ["", f"MSMAE-CNN + RF weight (MSMAE-CNN, RF) chosen on the validation subjects: "
              f"{ens['weights']} (validation accuracy of the members "
              f"{[round(v, 3) for v in ens['validation']['accuracy_members']]}, of the "
              f"ensemble {ens['validation']['accuracy_ensemble']:.3f})."]
    ab = summary["ablation"]
    if ab:
        n = max(v["n_seeds"] for v in ab.values())
        lines += ["", f"## Ablations — {label}, subject-wise split, mean ± sd over {n} "
                  "seeds (model seeds; the split is fixed)", "",
                  "| arm | what | accuracy | macro-F1 | kappa | train s |",
                  "|---|---|---|---|---|---|"]
        for arm, v in ab.items():
            lines.append(f"| {arm} | {v['description']} | {_pm(v['accuracy'])} | "
                         f"{_pm(v['macro_f1'])} | {_pm(v['kappa'])} | "
                         f"{_pm(v['train_s'], 1.0)} |")
    lines += ["", meta.get("reading", ""), "",
              f"Machine: {meta['machine']}. Total wall time {meta['wall_s'] / 60:.1f} min "
              f"with {meta['jobs']} worker(s).", ""]
    return "\n".join(lines)


def machine() -> str:
    import platform

    import torch

    return (f"{platform.platform()}, python {platform.python_version()}, torch "
            f"{torch.__version__}, {os.cpu_count()} CPU(s)")


# --------------------------------------------------------------------------------------
# command line (shared by run.py and real_sleepedf.py)
# --------------------------------------------------------------------------------------
#: ``--smoke``: the tiniest settings, to prove the whole protocol runs (minutes or less)
SMOKE = {"seeds": (0, 1), "epochs": 1, "pretrain_epochs": 1, "cnn_epochs": 1,
         "rf_trees": 10, "net": {"d_model": 8, "depth": 1, "n_heads": 1, "levels": (1,),
                                 "grid": 5, "decoder_filters": (8,)}}


def add_arguments(ap) -> None:
    """Options common to both scripts."""
    ap.add_argument("--seed", type=int, default=0, help="split and Table 1 seed")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="model seeds of the ablations (>= 3 for the report)")
    ap.add_argument("--val", type=float, default=0.1, help="validation subject fraction")
    ap.add_argument("--test", type=float, default=0.3, help="test subject fraction")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--epochs", type=int, default=5, help="MSMAE-CNN fine-tuning epochs")
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--patience", type=int, default=2)
    ap.add_argument("--cnn-epochs", type=int, default=5)
    ap.add_argument("--rf-trees", type=int, default=100)
    ap.add_argument("--ablations", nargs="+", default=list(ABLATIONS),
                    choices=list(ABLATIONS), help="ablation arms to run")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (1 thread each)")
    ap.add_argument("--max-epochs-per-night", type=int, default=None,
                    help="keep only this many epochs from the middle of each night "
                         "(smoke tests)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiniest settings (1 epoch, tiny network, 2 seeds, 100 epochs "
                         "per night): proves the protocol runs, measures nothing")
    ap.add_argument("--work-dir", default=None, help="runs, caches (resumable)")
    ap.add_argument("--out", default=None, help="results folder (default "
                    "benchmarks/results)")


def settings_from(args) -> Settings:
    s = Settings(seed=args.seed, seeds=tuple(args.seeds), val=args.val, test=args.test,
                 preset=args.preset, epochs=args.epochs,
                 pretrain_epochs=args.pretrain_epochs, patience=args.patience,
                 cnn_epochs=args.cnn_epochs, rf_trees=args.rf_trees, jobs=args.jobs,
                 ablations=tuple(args.ablations))
    if args.smoke:
        s = replace(s, **{k: v for k, v in SMOKE.items()
                          if k != "seeds" or args.seeds == [0, 1, 2]})
        if args.max_epochs_per_night is None:
            args.max_epochs_per_night = 100
    return s


def middle(nights: list[Night], n: int | None) -> list[Night]:
    """The ``n`` middle epochs of each night (all when None)."""
    if not n:
        return nights
    out = []
    for night in nights:
        a = max(0, (night.n_epochs - n) // 2)
        keep = np.zeros(night.n_epochs, bool)
        keep[a:a + n] = True
        out.append(replace(_sub_night(night, keep, "mid"), night_id=night.night_id))
    return out


def finish(results: dict[str, dict[str, Any]], s: Settings, meta: dict[str, Any],
           out_dir: Path, name: str) -> str:
    """Write ``<name>.json`` and ``<name>.md`` and return the markdown."""
    from hypnoscope.utils.files import write_text_atomic

    summary = summarise(results, s)
    meta = {**meta, "machine": machine(), "jobs": s.jobs,
            "settings": {k: v for k, v in s.__dict__.items()}}
    md = render(summary, meta)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / f"{name}.json", {"meta": meta, **summary,
                                                 "runs": results})
    write_text_atomic(out_dir / f"{name}.md", md)
    return md
