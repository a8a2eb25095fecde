"""Render the results tables of the documentation from ``benchmarks/results``.

Every table of measured numbers in ``README.md`` and ``docs/*.md`` sits between two marker
comments, ``<!-- results:NAME -->`` and ``<!-- /results -->``, and is written by the renderer
``NAME`` below from the committed results files (``benchmarks/results/*.json``, the shipped
model cards ``src/hypnoscope/data/models/*.json`` and the demo transcript
``benchmarks/results/demo_output.txt``); the Architecture page's layer list and staging
steps and the Design page's module list are rendered from the code (``.importlinter``,
``hypnoscope.staging.pipeline.STEPS``, the modules' docstrings; checked on their names only).
Nothing between the markers is edited by hand.

Usage::

    python docs/gen_results.py           # rewrite the marked blocks
    python docs/gen_results.py --check   # exit 1 and name the blocks that differ

``tests/test_docs.py`` runs the check, so a document whose numbers differ from its results
file fails the test suite.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CARDS = ROOT / "src" / "hypnoscope" / "data" / "models"
DOCUMENTS = ("README.md", "docs/*.md")
BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results -->)",
                   re.S)
STAGES = ("W", "N1", "N2", "N3", "R")

# The seed papers' own numbers (their tables, not measured here).
# MSMAE-CNN's Table 1: accuracy %, sensitivity, "Exec. Time (s)"; its "MSMAE-CNN (Proposed)"
# row is the proposed framework, MSMAE-CNN with the Random Forest vote
MSMAE_PAPER = {"svm": ("82.3", "0.79", "12.4"), "rf": ("86.7", "0.84", "9.1"),
               "cnn": ("91.2", "0.89", "14.3"), "msmae-cnn": ("–", "–", "–"),
               "msmae-cnn-rf": ("96.5", "0.95", "11.8")}
MC2_PAPER_TABLE3 = {"tf-only": "73.8", "cnn-only": "79.6", "multi": "83.5", "cl-ft": "83.7",
                    "m-ft": "84.2", "pt": "84.4", "pt-ft": "–"}
MC2_PAPER_TABLE4 = {"0%": ("–", "88.398"), "15%": ("88.394", "88.46"),
                    "25%": ("88.324", "88.453"), "30%": ("88.451", "88.513"),
                    "40%": ("88.261", "88.476"), "50%": ("88.324", "88.593"),
                    "60%": ("88.292", "88.426"), "70%": ("88.495", "88.506"),
                    "75%": ("88.398", "88.495"), "85%": ("88.354", "88.515")}
MC2_MASK_ARMS = {"0%": "cl-ft", "15%": "mask-0.15", "25%": "mask-0.25", "30%": "mask-0.3",
                 "40%": "mask-0.4", "50%": "pt-ft", "60%": "mask-0.6", "70%": "mask-0.7",
                 "75%": "mask-0.75", "85%": "mask-0.85"}

Renderer = Callable[[], str]
RENDERERS: dict[str, Renderer] = {}


def renderer(name: str) -> Callable[[Renderer], Renderer]:
    """Register ``func`` as the renderer of the blocks named ``name``."""
    def register(func: Renderer) -> Renderer:
        RENDERERS[name] = func
        return func
    return register


@cache
def load(name: str) -> Any:
    """A results file of ``benchmarks/results`` (``name`` without ``.json``)."""
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


@cache
def card(name: str) -> dict[str, Any]:
    """The model card of the shipped model ``name``."""
    return json.loads((CARDS / f"{name}.json").read_text(encoding="utf-8"))


def f3(x: float) -> str:
    """A fraction with three decimals (``0.820``)."""
    return f"{x:.3f}"


def f2(x: float) -> str:
    """A fraction with two decimals (``0.91``)."""
    return f"{x:.2f}"


def pct(x: float) -> str:
    """A fraction as a percentage with one decimal (``83.2``)."""
    return f"{100 * x:.1f}"


def mean_sd_pct(values: Sequence[float]) -> str:
    """Mean ± sample SD of fractions, in percent with one decimal (``87.3 ± 0.4``)."""
    if len(values) == 1:
        return pct(values[0])
    return f"{pct(statistics.mean(values))} ± {pct(statistics.stdev(values))}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]],
          align: Sequence[str] | None = None) -> str:
    """A Markdown table (``align``: one ``---``/``---:`` rule per column)."""
    rule = align or ["---"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# -- user guide ------------------------------------------------------------------------------

@renderer("demo_output")
def demo_output() -> str:
    """The demo transcript (``benchmarks/results/demo_output.txt``)."""
    text = (RESULTS / "demo_output.txt").read_text(encoding="utf-8").rstrip("\n")
    return f"```text\n{text}\n```\n"


@renderer("bad_inputs_examples")
def bad_inputs_examples() -> str:
    """Two cases of the damaged-input benchmark: a noisy hour and a 24-h recording."""
    cases = {r["case"]: r["metrics"] for r in load("bad_inputs")["results"]}
    noisy, crop = cases["noisy_hour"], cases["cassette_24h"]
    waso, tst = crop["waso_min"], crop["total_sleep_min"]
    return (f"- a simulated 7-h night with one hour of 800-µV noise on every channel the model "
            f"reads (case `noisy_hour`): {noisy['defect_flagged']} of the hour's "
            f"{noisy['defect_epochs']} epochs are unscored, and the other hours are staged with "
            f"accuracy {f3(noisy['accuracy_clean'])} (the clean night: "
            f"{f3(noisy['baseline_accuracy_clean'])});\n"
            f"- a simulated 24-h cassette recording, cropped automatically (case `cassette_24h`): "
            f"WASO {waso['staged']:.1f} min (truth {waso['truth']:.1f}), total sleep time "
            f"{tst['staged']:.1f} min (truth {tst['truth']:.1f}).\n")


@renderer("shipped_models")
def shipped_models() -> str:
    """The shipped models' subject-wise CV (model cards) and the vote's nested CV."""
    rows = []
    for name, chosen in (
            ("default", "two EEG (one parieto-occipital or of unknown site) + EOG"),
            ("eeg1-eog", "one EEG + EOG, or only frontal/central EEG + EOG (SHHS)"),
            ("eeg2", "two EEG (one parieto-occipital or of unknown site), no EOG"),
            ("eeg1", "one EEG (a headband), or only frontal/central EEG, no EOG")):
        c = card(name)
        p = c["cross_validation"]["pooled"]
        rows.append([f"`{name}`", ", ".join(c["input"]["channels"]), chosen, f3(p["accuracy"]),
                     f3(p["macro_f1"]), f3(p["kappa"])]
                    + [f2(p["per_class_f1"][s]) for s in STAGES])
    v = load("real_accuracy_nested")["procedures"]["first vote"]
    rows.append(["`vote` (only with `--model vote`)", ", ".join(card("vote")["input"]["channels"]),
                 "never chosen automatically", f3(v["pooled"]["accuracy"]),
                 f3(v["pooled"]["macro_f1"]), f3(v["pooled"]["kappa"])]
                + [f2(v["f1"][s]) for s in STAGES])
    return table(["name", "input (training channels)", "chosen by `--model auto` for",
                  "accuracy", "macro-F1", "kappa"] + [f"F1 {s}" for s in STAGES], rows)


@renderer("readme_summary")
def readme_summary() -> str:
    """The README's few headline numbers, each from its results file."""
    ctx = load("real_features")["cv"]["lightgbm-context"]["5class"]["pooled"]
    vote = load("real_accuracy_nested")["procedures"]["first vote"]["pooled"]
    speed = {(r["night"], r["tool"]): r for r in load("staging_speed")["results"]}
    call, yasa = speed[("9h", "hypnoscope")], speed[("9h", "yasa")]
    local = next(r for r in load("cohort")["results"] if r["config"] == "local-1")
    bad = load("bad_inputs")["summary"]
    st = load("real_accuracy_stretches")["models"]
    short, old = ({r["length"]: r["accuracy"] for r in st[n]["lengths"]}
                  for n in ("default", "default@0.1"))
    rows = [
        ["`default` on real Sleep-EDF nights (59 subjects, subject-wise 10-fold CV)",
         f"accuracy {f3(ctx['accuracy'])}, macro-F1 {f3(ctx['macro_f1'])}, "
         f"kappa {f3(ctx['kappa'])}", "`real_features.json`"],
        ["`vote` (nested subject-wise CV)",
         f"accuracy {f3(vote['accuracy'])}, macro-F1 {f3(vote['macro_f1'])}, "
         f"kappa {f3(vote['kappa'])}", "`real_accuracy_nested.json`"],
        ["`default` on stretches of unseen nights, each staged as its own recording",
         f"accuracy 2 h {f3(short['2 h'])}, 1 h {f3(short['1 h'])}, "
         f"30 min {f3(short['30 min'])}, whole night {f3(short['whole'])} (0.1: "
         f"{f3(old['2 h'])}, {f3(old['1 h'])}, {f3(old['30 min'])}, {f3(old['whole'])})",
         "`real_accuracy_stretches.json`"],
        ["a 9-h night, fresh process (`hypnoscope.stage`)",
         f"{call['process_sec']:.2f} s (YASA {yasa['process_sec']:.2f} s), "
         f"{call['peak_rss_mb']:.0f} MB", "`staging_speed.json`"],
        ["a cohort, one local worker, every output",
         f"{local['nights_per_core_hour']:,} nights per core-hour", "`cohort.json`"],
        ["damaged and unusual inputs", f"{bad['pass']} of {bad['cases']} cases pass",
         "`bad_inputs.json`"],
    ]
    return table(["what", "measured", "results file"], rows)


# -- results: real Sleep-EDF band powers -----------------------------------------------------

@renderer("real_features")
def real_features() -> str:
    """Feature models, subject-wise 10-fold CV (``real_features.json``)."""
    cv = load("real_features")["cv"]
    rows = []
    for name in ("svm", "rf", "lightgbm", "svm-context", "rf-context", "lightgbm-context"):
        p = cv[name]["5class"]["pooled"]
        main = [f3(p["accuracy"]), f3(p["macro_f1"]), f3(p["kappa"])]
        label = name
        if name == "lightgbm-context":
            label, main = f"**{name}**", [f"**{x}**" for x in main]
        rows.append([label] + main + [f3(p["per_class_f1"][s]) for s in STAGES]
                    + [f3(cv[name]["3class"]["pooled"]["accuracy"])])
    return table(["model", "accuracy", "macro-F1", "kappa"] + [f"F1 {s}" for s in STAGES]
                 + ["3-class acc."], rows)


@renderer("real_features_leaky")
def real_features_leaky() -> str:
    """The MSMAE-CNN paper's leaky epoch split against subject-wise CV."""
    d = load("real_features")
    rows = []
    for name in ("lightgbm", "lightgbm-context", "rf-context"):
        leaky = d["leaky"][name]["5class"]["accuracy"]
        subject = d["cv"][name]["5class"]["pooled"]["accuracy"]
        rows.append([name, f3(leaky), f3(subject), f"{leaky - subject:+.3f}"])
    return table(["model", "LEAKY 80/20 accuracy", "subject-wise accuracy", "inflation"], rows)


@renderer("real_accuracy_spread")
def real_accuracy_spread() -> str:
    """Per-fold and per-subject accuracy of the default's configuration."""
    cv = load("real_accuracy")["cv"]
    rows = []
    for label, dist in (("per fold (10-fold CV)", cv["fold_distribution"]["accuracy"]),
                        ("per subject (10-fold CV)", cv["subject_distribution"]["accuracy"]),
                        ("per subject, kappa (10-fold CV)", cv["subject_distribution"]["kappa"])):
        rows.append([label, str(dist["n"])] + [f3(dist[k]) for k in (
            "mean", "sd", "min", "p10", "worst_decile_mean", "median")])
    return table(["5-class accuracy", "n", "mean", "sd", "min", "10th pct", "worst-decile mean",
                  "median"], rows, ["---"] + ["---:"] * 7)


STRETCH_LENGTHS = ("whole", "2 h", "1 h", "30 min", "nap 30 min")
STRETCH_HEADER = ["whole", "2 h", "1 h", "30 min", "nap-like 30 min"]


def _accuracy_cells(acc: dict[str, float]) -> list[str]:
    """Accuracy per stretch length (``{length: accuracy}``), "-" where not measured."""
    return [f3(acc[k]) if k in acc else "-" for k in STRETCH_LENGTHS]


def _stretch_cells(m: dict) -> list[str]:
    """A stretch-results row's folds and pooled accuracy per length."""
    return [str(m["n_folds_done"])] + _accuracy_cells(
        {r["length"]: r["accuracy"] for r in m["lengths"]})


def _stretch_label(name: str, shipped: bool = True) -> str:
    """``default@0.1`` -> "`default` in 0.1"; a shipped name -> "**`default`** now"."""
    if name.endswith("@0.1"):
        return f"`{name[:-4]}` in 0.1 (before)"
    return f"**`{name}`** now" if shipped else f"`{name}` (candidate)"


def _one_eeg_rows() -> list[list[str]]:
    """The pooled one-EEG model (``eeg1`` now) from the derivations benchmark."""
    d = load("real_accuracy_derivations")["models"].get("both")
    return [] if d is None else [["**`eeg1`** now (Fpz-Cz and Pz-Oz, pooled)"]
                                 + _stretch_cells(d)]


@renderer("stretches")
def stretches() -> str:
    """Stretches of held-out nights staged as their own recordings
    (``real_accuracy_stretches.json``; the pooled one-EEG model from
    ``real_accuracy_derivations.json``): pooled accuracy per length, per model, before
    (0.1) and now."""
    models = load("real_accuracy_stretches")["models"]
    shipped = ("default", "eeg1-eog", "eeg2", "eeg1", "vote")
    rows = []
    for name in shipped:
        for row in (f"{name}@0.1", name):
            if row == "eeg1":
                rows += _one_eeg_rows()
            elif row in models and not (row == name and card(name).get("stretches", {})
                                        .get("row") == f"{name}@0.1"):
                rows.append([_stretch_label(row)] + _stretch_cells(models[row]))
    rows += [[_stretch_label(n, shipped=False)] + _stretch_cells(m) for n, m in models.items()
             if "@" not in n and n not in shipped]
    return table(["model (its configuration, retrained per outer fold)", "folds",
                  *STRETCH_HEADER], rows, ["---", "---:"] + ["---:"] * len(STRETCH_LENGTHS))


@renderer("stretches_readme")
def stretches_readme() -> str:
    """The README's stretch table: each shipped model before (0.1) and now."""
    models = load("real_accuracy_stretches")["models"]
    rows = []
    for name in ("default", "eeg1-eog", "eeg2", "eeg1", "vote"):
        st = card(name).get("stretches") or {}
        before = models.get(f"{name}@0.1")
        if before:
            rows.append([f"`{name}` 0.1"] + _stretch_cells(before))
        if st and st.get("row") != f"{name}@0.1":
            acc = st["accuracy"]
            both = "derivations" in st.get("source", "")  # the pooled one-EEG model
            rows.append([f"**`{name}` now**" + (" (Fpz-Cz and Pz-Oz)" if both else ""),
                         str(st["n_folds"])] + _accuracy_cells(acc))
    return table(["model", "folds", *STRETCH_HEADER], rows,
                 ["---", "---:"] + ["---:"] * len(STRETCH_LENGTHS))


def _derivation_rows(d: dict) -> list[list[str]]:
    """Training derivation, test derivation, folds and accuracy per length of every model
    of a derivations benchmark's results."""
    return [[train, test, str(m["n_folds_done"])]
            + _accuracy_cells({r["length"]: r["accuracy"] for r in lengths})
            for train, m in d["models"].items() for test, lengths in m["tested_on"].items()]


@renderer("derivations")
def derivations() -> str:
    """The one-EEG model trained on Fpz-Cz, Pz-Oz or both, tested on each
    (``real_accuracy_derivations.json``)."""
    rows = _derivation_rows(load("real_accuracy_derivations"))
    return table(["trained on", "tested on", "folds", *STRETCH_HEADER], rows,
                 ["---", "---", "---:"] + ["---:"] * len(STRETCH_LENGTHS))


@renderer("derivations_eeg1eog")
def derivations_eeg1eog() -> str:
    """The one-EEG + EOG model across derivations: 0.1's ``eeg1-eog`` and the stretch
    candidate, each trained with Fpz-Cz or Pz-Oz in its EEG slot and tested on each
    (``real_accuracy_derivations_eeg1eog01.json``, ``real_accuracy_derivations_eeg1eog
    .json``)."""
    rows = [[f"`{d['config']['candidate']}`", *row]
            for d in map(load, ("real_accuracy_derivations_eeg1eog01",
                                "real_accuracy_derivations_eeg1eog"))
            for row in _derivation_rows(d)]
    return table(["model", "EEG slot trained on", "tested on", "folds", *STRETCH_HEADER],
                 rows, ["---", "---", "---", "---:"] + ["---:"] * len(STRETCH_LENGTHS))


@renderer("simulated_short")
def simulated_short() -> str:
    """Mean agreement per simulated set of 2.5-h recordings (``simulated_short.json``)."""
    d = load("simulated_short")
    labels = list(d["models"])
    rows = [[name, str(len(r))] + [f3(statistics.fmean([x[k] for x in r])) for k in labels]
            for name, r in d["sets"].items()]
    rows.append(["all", str(sum(map(len, d["sets"].values())))]
                + [f3(d["mean"][k]) for k in labels])
    return table(["SIMULATED set (2.5 h each)", "recordings", *[f"`{k}`" for k in labels]],
                 rows, ["---", "---:"] + ["---:"] * len(labels))


@renderer("amplitude")
def amplitude() -> str:
    """The same simulated nights at 0.3x to 5x amplitude (``amplitude.json``), all channels
    scaled, with the tree before relative quality thresholds beside it."""
    d = load("amplitude")
    before = {(r["night"], r["variant"], r["scale"]): r for r in d["before"]["rows"]}
    rows = []
    for r in d["rows"]:
        if r["variant"] != "all":
            continue
        b = before.get((r["night"], r["variant"], r["scale"]))
        rows.append([r["night"], f"{r['scale']:g}x", f"{r['median_sd_uv']:.0f}",
                     f3(r["accuracy"]), f"{r['delta_pts']:+.1f}",
                     f"{r['unscored_amplitude']} ({r['unscored_amplitude_n3']})",
                     f"{r['tst_min']:.1f}"]
                    + ([f"{b['unscored_amplitude']} ({b['unscored_amplitude_n3']})",
                        f"{b['tst_min']:.1f}"] if b else ["-", "-"]))
    return table(["night (simulated)", "amplitude", "EEG SD µV", "accuracy", "vs 1x (pts)",
                  "unscored for amplitude (N3)", "TST min", "before: unscored (N3)",
                  "before: TST min"], rows, ["---"] + ["---:"] * 8)


@renderer("real_accuracy_sets")
def real_accuracy_sets() -> str:
    """The default's configuration on the CV, per night number and on atypical subjects."""
    d = load("real_accuracy")
    keys = ("accuracy", "macro_f1", "kappa")
    nights = d["cv"]["by_night_number"]
    rows = [["all subjects, 10-fold CV (pooled)"] + [f3(d["cv"]["pooled"][k]) for k in keys],
            ["night 1 / night 2 of all subjects (CV)"]
            + [f"{f3(nights['1'][k])} / {f3(nights['2'][k])}" for k in keys],
            ["12 most atypical subjects, held out together"]
            + [f3(d["dissimilar"]["pooled"][k]) for k in keys],
            ["the same 12 subjects in the 10-fold CV"]
            + [f3(d["cv_on_dissimilar_subjects"]["pooled"][k]) for k in keys]]
    return table(["test set", "accuracy", "macro-F1", "kappa"], rows,
                 ["---", "---:", "---:", "---:"])


NESTED_ROWS: tuple[tuple[str, str, str | None], ...] = (
    # (label, procedure, the paired comparison shown: "A - B" keys of "paired", ";"-joined)
    ("lgbm alone (the first default, bag of 2)", "lgbm alone", None),
    ("lgbm-quantile alone", "lgbm-quantile alone", "lgbm-quantile alone - lgbm alone"),
    ("lgbm-augment alone", "lgbm-augment alone", "lgbm-augment alone - lgbm alone"),
    ("lgbm-sleepnorm alone (statistics of the sleep period only; added later)",
     "lgbm-sleepnorm alone", "lgbm-sleepnorm alone - lgbm alone"),
    ("lgbm-nightstats alone (with the night's median and IQR of every feature; added later; "
     "not shipped)", "lgbm-nightstats alone", "lgbm-nightstats alone - lgbm alone"),
    ("lgbm-quantile-nightstats alone (added later)", "lgbm-quantile-nightstats alone",
     "lgbm-quantile-nightstats alone - lgbm-quantile alone"),
    ("lgbm-augment-nightstats alone (added later)", "lgbm-augment-nightstats alone",
     "lgbm-augment-nightstats alone - lgbm-augment alone"),
    ("SSNet alone", "ssnet alone", "ssnet alone - lgbm alone"),
    ("seq-transformer alone", "seq-transformer alone", "seq-transformer alone - lgbm alone"),
    ("SSNet with label smoothing 0.1 alone (added later)", "ssnet-ls alone",
     "ssnet-ls alone - ssnet alone"),
    ("seq-transformer with label smoothing 0.1 alone (added later)", "seq-transformer-ls alone",
     "seq-transformer-ls alone - seq-transformer alone"),
    ("SSNet paper-size network, 12 epochs on a CPU, label smoothing 0.1 (added later)",
     "ssnet-paper-ls alone",
     "ssnet-paper-ls alone - lgbm alone;ssnet-paper-ls alone - ssnet-ls alone"),
    ("lgbm + class re-weighting/HMM", "lgbm + class/HMM", "lgbm + class/HMM - lgbm alone"),
    ("**first vote: the 3 LightGBM variants (`lightgbm-vote`, shipped as `vote`)**",
     "first vote", "first vote - lgbm alone"),
    ("first vote + lgbm-sleepnorm (4 members)", "first vote with lgbm-sleepnorm",
     "first vote with lgbm-sleepnorm - first vote"),
    ("night-statistics vote: the 3 variants with night statistics (not shipped)",
     "night-statistics vote", "night-statistics vote - first vote;"
     "night-statistics vote - lgbm-nightstats alone"),
    ("vote of all 5 (first vote + SSNet + seq-transformer; needs PyTorch)",
     "all vote + class/HMM", "all vote + class/HMM - lgbm alone"),
    ("vote of all 5, sequence models label-smoothed", "all vote, label-smoothed sequence models",
     "all vote, label-smoothed sequence models - all vote"),
    ("vote of all 5, paper-size SSNet in place of the small one", "all vote, paper-size SSNet",
     "all vote, paper-size SSNet - all vote"),
    ("vote of all 5 with the night-statistics variants", "all vote, night statistics",
     "all vote, night statistics - all vote"),
)


NESTED_NAMES = {"ssnet alone": "SSNet", "ssnet-ls alone": "small SSNet with label smoothing",
                "seq-transformer alone": "seq-transformer", "all vote": "all 5",
                "lgbm-quantile alone": "lgbm-quantile", "lgbm-augment alone": "lgbm-augment"}


def _paired(key: str, lhs: str, paired: dict[str, str]) -> str:
    """One paired difference, ``+0.22 ± 0.17 (9/10)``, prefixed ``vs B`` unless B is lgbm."""
    value = paired[key]
    m = re.fullmatch(r"(.*) \(better in (\d+/\d+) folds\)", value)
    text = f"{m.group(1)} ({m.group(2)})" if m else value
    reference = key[len(lhs) + 3:]
    if reference == "lgbm alone":
        return text
    return f"vs {NESTED_NAMES.get(reference, reference)} {text}"


@renderer("nested")
def nested() -> str:
    """Nested subject-wise CV of the candidate stagers (``real_accuracy_nested.json``)."""
    d = load("real_accuracy_nested")
    rows = []
    for label, proc, pairs in NESTED_ROWS:
        p = d["procedures"][proc]
        acc = p["fold_distribution"]["accuracy"]
        main = [f3(p["pooled"][k]) for k in ("accuracy", "macro_f1", "kappa")]
        shown = ""
        if proc == "lgbm + class/HMM":
            shown = "never chosen"
        elif pairs:
            shown = "; ".join(_paired(k, proc, d["paired"]) for k in pairs.split(";"))
        if label.startswith("**"):
            main, shown = [f"**{x}**" for x in main], f"**{shown}**"
        rows.append([label] + main + [f3(p["f1"][s]) for s in ("N1", "N3", "R")]
                    + [f"{f3(acc['mean'])} ± {f3(acc['sd'])} ({f3(acc['min'])})", shown])
    return table(["procedure (choices in the inner folds)", "accuracy", "macro-F1", "kappa",
                  "F1 N1", "F1 N3", "F1 R", "fold acc. mean ± sd (worst)",
                  "paired vs `lgbm alone`"], rows)


@renderer("nested_targets")
def nested_targets() -> str:
    """The shipped vote against the targets of issue 17 (``real_accuracy_nested.json``)."""
    labels = {"accuracy": "accuracy", "macro_f1": "macro-F1", "kappa": "kappa",
              "f1_N3": "F1 N3", "f1_R": "F1 R", "worst_fold_accuracy": "worst outer fold"}
    rows = [[labels.get(k, k), f3(t["value"]), f"{t['target']:.3f}", "met" if t["met"] else
             "**not met**"] for k, t in load("real_accuracy_nested")["targets"].items()]
    return table(["measure", "`vote`", "target", ""], rows)


@renderer("ssnet_real")
def ssnet_real() -> str:
    """SSNet on the real folds against the feature models (``ssnet_real*.json``)."""
    d, gpu = load("ssnet_real"), load("ssnet_real_paper_gpu")
    lgbm_ctx = load("real_features")["cv"]["lightgbm-context"]

    def with_folds(pooled: dict[str, float], folds: dict[str, Any]) -> str:
        a = folds["accuracy"]
        return f"{f3(pooled['accuracy'])} ({f3(a['mean'])} ± {f3(a['sd'])})"

    def scores(pooled: dict[str, float]) -> list[str]:
        return [f3(pooled["macro_f1"]), f3(pooled["kappa"])]

    p, s = d["pooled"], d["summary_per_fold_mean_sd"]
    ctx5, ctx3 = lgbm_ctx["5class"]["pooled"], lgbm_ctx["3class"]["pooled"]
    ctx_folds = load("real_accuracy")["cv"]["fold_distribution"]
    rows = [
        ["SSNet direct", "5", with_folds(p["ssnet"], s["ssnet"])] + scores(p["ssnet"]),
        ["SSNet direct, `paper` preset (one run on an H200 GPU)", "5",
         with_folds(gpu["pooled"]["ssnet"], gpu["summary_per_fold_mean_sd"]["ssnet"])]
        + scores(gpu["pooled"]["ssnet"]),
        ["lightgbm-context (above)", "5", with_folds(ctx5, ctx_folds)] + scores(ctx5),
        ["lightgbm (no context)", "5", f3(p["lightgbm"]["accuracy"])] + scores(p["lightgbm"]),
        ["SSNet hierarchical (Wake/Sleep, then REM/NREM on sleep)", "3",
         with_folds(p["ssnet-hier"], s["ssnet-hier"])] + scores(p["ssnet-hier"]),
        ["SSNet direct, 3-class view", "3", with_folds(p["ssnet_as3"], s["ssnet_as3"])]
        + scores(p["ssnet_as3"]),
        ["lightgbm-context, 3-class view", "3", f3(ctx3["accuracy"])] + scores(ctx3),
    ]
    return table(["model", "classes", "accuracy (pooled; fold mean ± sd)", "macro-F1", "kappa"],
                 rows)


# -- results: engineering --------------------------------------------------------------------

@renderer("foundation_memory")
def foundation_memory() -> str:
    """Peak memory of the deep-learning data path (``foundation_memory.json``)."""
    rows = load("foundation_memory")["rows"]
    concat = {r["nights"]: r for r in rows if r["mode"] == "concat"}
    out = []
    for r in (r for r in rows if r["mode"] == "windows"):
        old = concat.get(r["nights"])
        previous = (f"{old['peak_anon_mb']:.0f} MB" if old else
                    f"(not run: ~{r['arrays_in_ram_would_be_mb'] / 1000:.0f} GB)")
        out.append([str(r["nights"]), f"{r['arrays_in_ram_would_be_mb'] / 1000:.1f} GB",
                    f"{r['peak_anon_mb']:.0f} MB", previous])
    return table(["nights", "all arrays in RAM would be",
                  "peak anonymous memory, this design (memory-mapped caches)",
                  "previous design (one concatenated array)"], out)


@renderer("simulator_realism")
def simulator_realism() -> str:
    """YASA on simulated nights against the simulated truth."""
    y = load("simulator_realism")["yasa"]
    return table(["", "accuracy", "kappa", "macro-F1"] + [f"F1 {s}" for s in STAGES],
                 [["YASA on simulated nights (target >= 0.80 / 0.70)", f3(y["accuracy"]),
                   f3(y["kappa"]), f3(y["macro_f1"])] + [f3(y["per_stage_f1"][s]) for s in STAGES]])


@renderer("simulator_montages")
def simulator_montages() -> str:
    """YASA on each simulated montage's own channels."""
    rows = []
    for name, m in load("simulator_realism")["yasa_by_montage"].items():
        ch, y = m["yasa_channels"], m["yasa"]
        rows.append([f"`{name}`", f"{ch['eeg']} + {ch['eog']} + {ch['emg']}",
                     f"{m['sfreq']:.0f} Hz", f3(y["accuracy"]), f3(y["kappa"]),
                     f3(y["macro_f1"])] + [f3(y["per_stage_f1"][s]) for s in STAGES])
    return table(["montage", "YASA channels", "rate", "accuracy", "kappa", "macro-F1"]
                 + [f"F1 {s}" for s in STAGES], rows)


@renderer("peers")
def peers() -> str:
    """The stager benchmark on simulated nights of every montage (``peers.json``)."""
    res = load("peers")
    rows = []
    for r in res["rows"]:
        tst = r["tst"]
        rows.append([r["montage"], f"`{r['model']}`", str(r["nights"]), f3(r["accuracy"]),
                     f3(r["kappa"]), f3(r["macro_f1"]),
                     f"{tst['bias']:+.1f} [{tst['lower']:+.1f}, {tst['upper']:+.1f}]",
                     f"{r['sec_per_night']:.1f}"])
    return table(["simulated montage", "model", "nights", "accuracy", "kappa", "macro-F1",
                  "TST bias [95 % LoA], min", "s per night"], rows,
                 ["---", "---"] + ["---:"] * 6)


def _within(x: dict[str, Any]) -> str:
    """Share of naps with a latency within one epoch of the truth, in percent."""
    return f"{100 * x['within_1_epoch']:.0f} %"


@renderer("mslt")
def mslt() -> str:
    """Daytime nap studies: simulated days and real sleep-onset periods (``mslt.json``)."""
    res = load("mslt")
    rows = []
    runs = res.get("simulated_runs") or [{"stager": "default", "difficulty": 1.0,
                                          "summary": res["simulated"]}]
    for k, run in enumerate(runs):
        who = ("" if k == 0 else f" — {run['stager']}") + \
            f", simulator difficulty {run['difficulty']:g}"
        for proto in ("mslt", "mwt"):
            profiles = run["summary"][proto]["profiles"]
            for prof, m in (profiles.items() if k == 0 else [("all", profiles["all"])]):
                so = m["soremp"]
                extra = (f"{100 * m['unequivocal_within_1_epoch']:.0f} %"
                         if "unequivocal_within_1_epoch" in m else "-")
                rows.append([f"SIMULATED {proto.upper()}, {prof}{who}", str(m["n_naps"]),
                             _within(m["latency"]), f"{m['latency']['median_abs_min']:.1f}",
                             f"{100 * so['agreement']:.0f} % ({so['false_pos']} false, "
                             f"{so['false_neg']} missed)", extra])
    for name, m in res["real_models"].items():
        lat, so = m["latency_mslt"], m["soremp_complete_naps"]
        rows.append([f"real sleep onsets, `{name}` ({m['n_folds']} folds)", str(m["n_naps"]),
                     _within(lat), f"{lat['median_abs_min']:.1f} "
                     f"[{lat['iqr_abs_min'][0]:.1f}, {lat['iqr_abs_min'][1]:.1f}]",
                     f"{100 * so['agreement']:.0f} % ({so['false_pos']} false, "
                     f"{so['false_neg']} missed)", "-"])
    return table(["naps", "n", "latency within 1 epoch", "median abs. latency error, min",
                  "SOREMP agreement", "MWT unequivocal sleep within 1 epoch"], rows,
                 ["---"] + ["---:"] * 5)


@renderer("latent_state")
def latent_state() -> str:
    """How often the simulator's latent state differs from the scored stage."""
    lat = load("simulator_realism")["latent_state"]
    per = lat["differs_per_stage"]
    return table(["", "all epochs", *STAGES],
                 [["latent state differs from the scored stage",
                   f"{100 * lat['differs_all']:.1f} %"]
                  + [f"{100 * per[s]:.1f} %" for s in STAGES]])


@renderer("ssnet_simulated")
def ssnet_simulated() -> str:
    """Raw-signal SSNet and YASA on simulated nights (``ssnet_simulated.json``)."""
    d = load("ssnet_simulated")
    rows = []
    for label, key in (("SSNet (raw signals, trained on simulated nights)", "ssnet"),
                       ("YASA SleepStaging (pretrained on real nights)", "yasa")):
        p5, p3 = d[key]["pooled"]["5class"], d[key]["pooled"]["3class"]
        rows.append([label, f3(p5["accuracy"]), f3(p5["macro_f1"]), f3(p5["kappa"]),
                     f3(p3["accuracy"])])
    return table(["model", "5-class accuracy", "macro-F1", "kappa", "3-class accuracy"], rows)


@renderer("cohort")
def cohort() -> str:
    """Staging 50 simulated nights locally and on a Dask cluster (``cohort.json``)."""
    labels = {"local-1": "`--jobs 1`", "local-2": "`--jobs 2`",
              "dask-2": "`--scheduler` (2-worker LocalCluster)",
              "local-1-noplot": "`--jobs 1 --no-plot`"}
    by_config = {r["config"]: r for r in load("cohort")["results"]}
    rows = []
    for config, label in labels.items():
        r = by_config[config]
        rows.append([label, f"{r['wall_sec']:.1f}", f"{r['nights_per_core_hour']:,}",
                     f"{r['cpu_sec_per_night']:.2f}", f"{r['nights_per_cpu_hour']:,}",
                     ", ".join(str(m) for m in r["worker_peak_mb"]) + " MB",
                     f"{r['projected_cpu_hours_10000']:.1f} h"])
    return table(["configuration", "wall s", "nights per core-hour (wall)", "CPU s per night",
                  "nights per CPU-hour", "worker peak memory",
                  "10,000 nights on one worker-core (CPU)"], rows,
                 ["---"] + ["---:"] * 6)


@renderer("staging_speed")
def staging_speed() -> str:
    """Fresh-process staging time and memory against YASA (``staging_speed.json``)."""
    res = {(r["night"], r["tool"]): r for r in load("staging_speed")["results"]}
    rows = []
    for night in ("9h", "24h"):
        call, cli, yasa = (res[(night, t)] for t in ("hypnoscope", "hypnoscope-cli", "yasa"))

        def cell(r: dict[str, Any]) -> str:
            return f"{r['process_sec']:.2f} s ({r['process_sec_best']:.2f})"

        first = cell(call)
        speedup = f"{yasa['process_sec'] / call['process_sec']:.1f}x"
        if night == "9h":
            first, speedup = f"**{first.split(' (')[0]}** ({call['process_sec_best']:.2f})", \
                f"**{speedup}**"
        rows.append([night.replace("h", " h"), first, cell(cli), cell(yasa),
                     f"{speedup} / {yasa['process_sec'] / cli['process_sec']:.1f}x",
                     f"{call['peak_rss_mb']:.0f} / {yasa['peak_rss_mb']:.0f} MB"])
    return table(["night", "`hypnoscope.stage`", "`hypnoscope stage` (all outputs)", "YASA",
                  "speed-up vs YASA (call / command)", "peak memory (hypnoscope / YASA)"], rows)


@renderer("onnx")
def onnx() -> str:
    """PyTorch against onnxruntime per night (``onnx.json``)."""
    rows = []
    for r in load("onnx")["rows"]:
        rows.append([r["model"], f"{r['sec_per_night_pytorch']:.2f}",
                     f"{r['sec_per_night_onnxruntime']:.2f}", f"{r['speedup']:.1f}x",
                     f"{r['max_abs_proba_diff']:.1e}",
                     f"{100 * r['stage_agreement']:.0f} %"])
    return table(["model", "PyTorch s/night", "onnxruntime s/night", "speed-up",
                  "max prob. difference", "same stage"], rows)


@renderer("stream")
def stream() -> str:
    """Live staging latency and agreement by look-ahead (``stream.json``)."""
    d = load("stream")
    rows = []
    for i, r in enumerate(d["rows"]):
        n = r["streamed_epochs"]
        same = (f"{round(r['streamed_equals_offline_causal'] * n)}/{n}"
                + (" epochs, probabilities identical" if i == 0 else ", identical")
                if r["max_proba_diff_streamed"] == 0 else
                f"{round(r['streamed_equals_offline_causal'] * n)}/{n}, "
                f"max difference {r['max_proba_diff_streamed']:.0e}")
        rows.append([str(r["lookahead"]), same,
                     f"{f3(r['agreement_with_offline'])} ({f3(r['kappa_with_offline'])})",
                     f3(r["accuracy_causal"]), f3(r["accuracy_offline"]),
                     f"{r['compute_ms_median']:.1f} / {r['compute_ms_p95']:.0f}",
                     f"{r['latency_ms_median']:.0f} / {r['latency_ms_p95']:.0f}"])
    return table(["look-ahead K", "streamed = offline causal",
                  "agreement with offline staging (kappa)", "accuracy, causal",
                  "accuracy, offline", "compute ms/epoch (median / p95)",
                  "latency ms (median / p95)"], rows)


# -- the seed papers -------------------------------------------------------------------------

@renderer("msmae_table1")
def msmae_table1() -> str:
    """MSMAE-CNN's Table 1 as reproduced on simulated nights (``msmae_cnn.json``)."""
    t = load("msmae_cnn")["table1"]
    labels = {"svm": "SVM (paper features)", "rf": "Random Forest (paper features)",
              "cnn": "CNN (Chambon et al. 2018)", "msmae-cnn": "MSMAE-CNN",
              "msmae-cnn-rf": "MSMAE-CNN + RF (soft voting)"}
    rows = []
    for key, label in labels.items():
        s = t["subject"][key]["scores"]
        rows.append([label, *MSMAE_PAPER[key], pct(t["leaky"][key]["scores"]["accuracy"]),
                     pct(s["accuracy"]), pct(s["macro_recall"]), pct(s["macro_f1"]),
                     pct(s["kappa"]), f"{t['subject'][key]['train_s']:.0f}"])
    return table(["model", "paper acc. (leaky)", "paper sens.", "paper time s",
                  "leaky 80/20 here", "subject-wise here", "sens. (subject-wise)",
                  "macro-F1 (subject-wise)", "kappa", "train s here"], rows)


@renderer("msmae_ablation")
def msmae_ablation() -> str:
    """MSMAE-CNN's ablations, subject-wise, mean ± SD accuracy over seeds."""
    rows = []
    for name, a in load("msmae_cnn")["ablation"].items():
        acc = a["accuracy"]
        rows.append([f"`{name}`", a["description"], str(a["n_seeds"]),
                     f"{pct(acc['mean'])} ± {pct(acc['sd'])}"])
    return table(["variant", "what changes", "seeds", "accuracy % (mean ± sd)"], rows)


def _mc2_runs(arm: str) -> list[dict[str, Any]]:
    """The runs (one per seed) of a MC²SleepNet benchmark arm."""
    return [r for k, r in load("mc2sleepnet")["runs"].items() if k.split("__")[0] == arm]


def _mc2(arm: str, key: str, pretrain: bool = False) -> str:
    scores = [r["pretrain_scores" if pretrain else "scores"] for r in _mc2_runs(arm)]
    return mean_sd_pct([s[key] for s in scores if s is not None])


@renderer("mc2_table3")
def mc2_table3() -> str:
    """MC²SleepNet's Table 3 (ablation)."""
    arms = (("TF only (single epoch)", "tf-only", False),
            ("CNN only (single epoch)", "cnn-only", False), ("TF+CNN (multi)", "multi", False),
            ("TF+CNN+CL+FT", "cl-ft", False), ("TF+CNN+M+FT", "m-ft", False),
            ("TF+CNN+PT(CL+M)", "pt-ft", True), ("TF+CNN+PT(CL+M)+FT", "pt-ft", False))
    rows = [[label] + [_mc2(arm, k, pre) for k in ("accuracy", "macro_f1", "kappa")]
            + [MC2_PAPER_TABLE3["pt" if pre else arm]] for label, arm, pre in arms]
    return table(["variant", "accuracy", "macro-F1", "kappa", "paper acc. (Sleep-EDF-78)"],
                 rows)


@renderer("mc2_table4")
def mc2_table4() -> str:
    """MC²SleepNet's Table 4 (masking ratio)."""
    rows = []
    for ratio, arm in MC2_MASK_ARMS.items():
        n = len(_mc2_runs(arm))
        ours = ([_mc2(arm, "accuracy", True), _mc2(arm, "accuracy")] if n
                else ["not run", "not run"])
        rows.append([ratio, str(n), *ours, *MC2_PAPER_TABLE4[ratio]])
    return table(["masking ratio", "seeds", "after pre-training", "after fine-tuning",
                  "paper pre-training", "paper fine-tuning"], rows)


@renderer("mc2_table5")
def mc2_table5() -> str:
    """MC²SleepNet's Table 5 (comparison on the same test epochs)."""
    rows = []
    for label, arm, pre, inputs in (
            ("MC²SleepNet 50 % (PT+FT)", "pt-ft", False, "RS + SP, 1 EEG"),
            ("MC²SleepNet 15 % (PT+FT)", "mask-0.15", False, "RS + SP, 1 EEG"),
            ("MC²SleepNet 50 % Γ (PT only)", "pt-ft", True, "RS + SP, 1 EEG"),
            ("MC²SleepNet 15 % Γ (PT only)", "mask-0.15", True, "RS + SP, 1 EEG"),
            ("SSNet (raw EEG)", "ssnet", False, "RS, 1 EEG"),
            ("CNN (Chambon et al. 2018)", "cnn", False, "RS, 1 EEG")):
        scores = [r["pretrain_scores" if pre else "scores"] for r in _mc2_runs(arm)]
        rows.append([label, inputs] + [_mc2(arm, k, pre) for k in ("accuracy", "macro_f1",
                                                                  "kappa")]
                    + [mean_sd_pct([sc["per_class_f1"][s] for sc in scores]) for s in STAGES])
    y = load("mc2sleepnet")["meta"]["yasa"]["scores"]
    rows.append(["YASA SleepStaging (pretrained)", "EEG + EOG + EMG"]
                + [pct(y[k]) for k in ("accuracy", "macro_f1", "kappa")]
                + [pct(y["per_class_f1"][s]) for s in STAGES])
    return table(["method", "input", "accuracy", "macro-F1", "kappa", *STAGES], rows)


@renderer("mc2_table2")
def mc2_table2() -> str:
    """MC²SleepNet's Table 2 (cost per 1000 pre-training steps on this CPU)."""
    cost = load("mc2sleepnet")["meta"]["cost"]
    rows = [[preset, f"{e['n_parameters'] / 1e6:.2f} M", f"{e['s_per_1000_steps_1_threads']:.0f}",
             f"{e['s_per_1000_steps_2_threads']:.0f}", f"this CPU ({e['steps_timed']} steps timed)"]
            for preset, e in ((p, cost[p]) for p in ("small", "paper"))]
    rows.append(["paper", "–", "–", "–", "GPU: not run (no GPU was lent to this session)"])
    return table(["preset", "parameters", "s / 1000 steps, 1 thread", "s / 1000 steps, 2 threads",
                  "device"], rows)


@renderer("mc2_findings")
def mc2_findings() -> str:
    """The MC²SleepNet benchmark's findings, as its run wrote them, and the training time."""
    train = [r["train_s"] for r in _mc2_runs("pt-ft")]
    return ("\n".join(load("mc2sleepnet")["meta"]["findings"])
            + f"\n- Training one `small` MC²SleepNet (PT+FT) on the training nights took "
              f"{statistics.mean(train):.0f} s on average (1 thread).\n")


@renderer("seed3_mode")
def seed3_mode() -> str:
    """Seed 3: SSNet many-to-one against many-to-many on the real band powers
    (``ssnet_mode.json``)."""
    res = load("ssnet_mode")
    rows = []
    for mode, e in res["summary"]["modes"].items():
        rows.append([mode, str(len(e["folds"])),
                     *(f"{pct(e[k]['mean'])} ± {pct(e[k]['sd'])}" if len(e["folds"]) > 1
                       else pct(e[k]["mean"]) for k in ("accuracy", "macro_f1", "kappa")),
                     *(pct(e["pooled_per_class_f1"][s]) for s in STAGES),
                     f"{e['n_train_windows']:.0f}", f"{e['train_s']:.0f}"])
    return table(["mode", "folds", "accuracy", "macro-F1", "kappa", *STAGES,
                  "training windows", "training s"], rows)


# -- architecture (from the code, so that the page follows it) -------------------------------

def _first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring, Sphinx roles turned into Markdown code."""
    text = " ".join((doc or "").split())
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")
    m = re.match(r"(.+?(?<!\bal)\.)(\s+[A-Z`(]|$)", text)
    return m.group(1) if m else text


def _layer_rows() -> list[list[str]]:
    """The layers of ``.importlinter``, top to bottom, each a list of module names."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter", encoding="utf-8")
    section = next(s for s in config.sections() if config[s].get("type") == "layers")
    return [[p.strip().removeprefix("hypnoscope.") for p in line.split("|")]
            for line in config[section]["layers"].splitlines() if line.strip()]


@renderer("layers")
def layers() -> str:
    """The layer contract of ``.importlinter``, top to bottom."""
    names = [" | ".join(row) for row in _layer_rows()]
    return "```text\n" + "\n      ↓\n".join(f"{i + 1:>2}.  {n}" for i, n in enumerate(names)) \
        + "\n```\n"


@renderer("modules")
def modules() -> str:
    """Every module of ``src/hypnoscope``, layer by layer, with its docstring's first sentence."""
    import ast

    src = ROOT / "src" / "hypnoscope"
    rows = []
    for i, row in enumerate(_layer_rows()):
        for name in row:
            base = src / name
            paths = sorted(base.glob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
            for path in paths:
                if path.name == "__main__.py" or not path.exists():
                    continue
                module = path.relative_to(src).with_suffix("").as_posix().replace("/", ".")
                module = module.removesuffix(".__init__")
                doc = _first_sentence(ast.get_docstring(ast.parse(path.read_text("utf-8"))))
                if doc.rstrip(".").lower() == module.rsplit(".", 1)[-1]:
                    doc = "(the package)"
                rows.append([str(i + 1), f"`{module}`", doc])
    return table(["layer", "module (`hypnoscope.`...)", "what it holds"], rows)


@renderer("staging_steps")
def staging_steps() -> str:
    """The steps of ``hypnoscope.staging.pipeline.stage_recording`` (its ``STEPS``)."""
    from hypnoscope.staging import outputs, pipeline

    steps = [pipeline._open, *pipeline.STEPS, pipeline._result]
    rows = [[str(i + 1), f"`{f.__name__}`", _first_sentence(f.__doc__)]
            for i, f in enumerate(steps)]
    rows.append([str(len(steps) + 1), "`hypnoscope.staging.outputs.stage_file`",
                 _first_sentence(outputs.stage_file.__doc__)])
    return table(["#", "step", "what it does"], rows)


# -- the blocks ------------------------------------------------------------------------------

def documents() -> list[Path]:
    """The documents whose marked blocks this script writes."""
    paths: list[Path] = []
    for pattern in DOCUMENTS:
        paths += sorted(ROOT.glob(pattern))
    return paths


def blocks(text: str) -> list[tuple[str, str]]:
    """The ``(name, body)`` of every marked block of ``text``."""
    return [(m["name"], m["body"]) for m in BLOCK.finditer(text)]


def render(name: str) -> str:
    """The body of the block ``name`` as its renderer writes it."""
    if name not in RENDERERS:
        raise KeyError(f"no renderer for the results block {name!r} "
                       f"(known: {', '.join(sorted(RENDERERS))})")
    return RENDERERS[name]()


def rendered(text: str) -> str:
    """``text`` with every marked block rewritten by its renderer."""
    return BLOCK.sub(lambda m: m.group(1) + render(m["name"]) + m.group(4), text)


#: Blocks rendered from the code whose check compares only their names column (the step
#: functions, the modules), so that editing a docstring does not fail the check; a step or
#: module added, removed or renamed does.
NAMES_ONLY = {"staging_steps": 1, "modules": 1}


def _names_column(body: str, column: int) -> list[str]:
    """The cells of one column of the Markdown table in ``body``."""
    rows = [line.split(" | ") for line in body.splitlines() if line.startswith("| ")]
    return [row[column].strip() for row in rows[1:] if len(row) > column]


def differs(name: str, body: str) -> bool:
    """Whether the block ``name`` with content ``body`` differs from its renderer's output."""
    expected = render(name)
    if name in NAMES_ONLY:
        return _names_column(body, NAMES_ONLY[name]) != _names_column(expected, NAMES_ONLY[name])
    return body != expected


def stale(path: Path) -> list[str]:
    """The names of the blocks of ``path`` that differ from their renderer's output."""
    return [name for name, body in blocks(path.read_text(encoding="utf-8"))
            if differs(name, body)]


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` only compare) the marked blocks of every document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a block differs from its results file")
    args = parser.parse_args(argv)
    status = 0
    for path in documents():
        names = stale(path) if args.check else [
            name for name, body in blocks(path.read_text(encoding="utf-8"))
            if body != render(name)]
        if not names:
            continue
        rel = path.relative_to(ROOT)
        if args.check:
            print(f"{rel}: out of date: {', '.join(names)}", file=sys.stderr)
            status = 1
        else:
            path.write_text(rendered(path.read_text(encoding="utf-8")), encoding="utf-8")
            print(f"{rel}: rewrote {', '.join(names)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
