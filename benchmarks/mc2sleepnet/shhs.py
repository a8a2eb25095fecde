"""MC²SleepNet on real SHHS: the paper's two subsets, 100 validation subjects, a 70:30 split.

For users with NSRR access and, ideally, a GPU::

    hypnoscope fetch --nsrr shhs --visit shhs1 --path DIR      # visit 1, EDF + NSRR XML
    python -m benchmarks.mc2sleepnet.shhs --data DIR --dry-run   # the selection, no training
    python -m benchmarks.mc2sleepnet.shhs --data DIR --subset 5463 --preset paper --device cuda

The recordings are the ``shhs1-NNNNNN.edf`` files under ``--data`` (the tree ``hypnoscope
fetch --nsrr`` writes, ``shhs/polysomnography/edfs/shhs1/``, or a flat folder), each paired
with its scoring by :func:`hypnoscope.io.recordings.find_hypnogram` (``-nsrr.xml``, else
``-profusion.xml``, beside the EDF or in ``annotations-events-nsrr/shhs1/``). The paper's
subsets (its section 4.1.1):

- ``5791``: every visit-1 recording with a readable scoring that has scored epochs. The paper
  keeps 5,791 of SHHS-1's 5,793 recordings "following the preprocessing guidelines of the
  previous study" without naming the two it drops *(ours: the recordings without a usable
  scoring are dropped, each listed with the reason; the count found is printed beside 5,791)*;
- ``5463``: of those, the recordings whose scoring has all five stages (W, N1, N2, N3, R).

Then (section 4.1.1) 100 subjects are set aside for validation and the rest is divided 70:30
into training and test subjects, subject-wise, after one seeded shuffle of the sorted subject
numbers (:func:`split_subjects`; the paper does not give its draw). ``--dry-run`` prints and
writes the selection (counts per subset, every dropped recording and why, the split sizes)
without reading any EDF. Without it, MC²SleepNet (EEG ``EEG``, C4-A1, resampled to 100 Hz)
trains on the training subjects with the validation subjects for early stopping, and the test
subjects' pooled metrics are reported beside the paper's Table 5 row for the subset.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, ROOT, command_line, now_utc

#: the SHHS C4-A1 channel the paper uses
CHANNEL = "EEG"
STAGES = ("W", "N1", "N2", "N3", "R")
#: the paper's subset sizes (section 4.1.1, Table 1)
PAPER_SUBSETS = {"5791": 5791, "5463": 5463}
#: the paper's MC²SleepNet rows of Table 5 for SHHS, by subset and masking ratio
PAPER_ROWS = {
    ("5463", 0.5): {"accuracy": 0.8859, "macro_f1": 0.821, "kappa": 0.841,
                    "per_class_f1": dict(zip(STAGES, (0.930, 0.523, 0.893, 0.857, 0.901),
                                             strict=True))},
    ("5463", 0.15): {"accuracy": 0.8846, "macro_f1": 0.823, "kappa": 0.84,
                     "per_class_f1": dict(zip(STAGES, (0.929, 0.535, 0.891, 0.860, 0.898),
                                              strict=True))},
    ("5791", 0.5): {"accuracy": 0.885, "macro_f1": 0.817, "kappa": 0.837,
                    "per_class_f1": dict(zip(STAGES, (0.931, 0.519, 0.892, 0.851, 0.893),
                                             strict=True))},
}


@dataclass
class Selection:
    """The SHHS recordings of one visit and the paper's two subsets.

    Attributes
    ----------
    records : list of dict
        Recordings with a usable scoring (subset ``5791``): ``record``, ``subject``, ``edf``,
        ``xml``, ``stage_epochs`` (scored epochs per stage) and ``missing`` (absent stages).
    dropped : list of dict
        Recordings left out of ``5791``: ``record``, ``edf``, ``reason``.
    """

    records: list[dict] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)

    def subset(self, name: str) -> list[dict]:
        """The recordings of subset ``"5791"`` or ``"5463"`` (all five stages scored)."""
        if name not in PAPER_SUBSETS:
            raise ValueError(f"unknown SHHS subset {name!r}; expected one of "
                             f"{sorted(PAPER_SUBSETS)}")
        return [r for r in self.records if name == "5791" or not r["missing"]]


def _record(edf: Path, visit: str) -> tuple[dict, str | None]:
    """One recording's entry, or its reason to be dropped from subset 5791."""
    from hypnoscope.io.nsrr_xml import read_xml_hypnogram
    from hypnoscope.io.recordings import find_hypnogram, recording_stem

    stem = recording_stem(edf)
    rec = {"record": stem, "subject": stem[len(visit) + 1:], "edf": str(edf)}
    xml = find_hypnogram(edf)
    if xml is None or not xml.name.endswith(".xml"):
        return rec, (f"no scoring file ({stem}-nsrr.xml or {stem}-profusion.xml beside the "
                     f"EDF or in annotations-events-nsrr/{visit}/)")
    rec["xml"] = str(xml)
    try:
        codes = np.asarray(read_xml_hypnogram(xml).codes)
    except ValueError as e:
        return rec, f"scoring unreadable: {e}"
    counts = np.bincount(codes[codes >= 0], minlength=5)[:5]
    if counts.sum() == 0:
        return rec, f"{xml.name}: no scored epoch"
    rec["stage_epochs"] = dict(zip(STAGES, (int(c) for c in counts), strict=True))
    rec["missing"] = [s for s, c in rec["stage_epochs"].items() if c == 0]
    return rec, None


def select_recordings(data: str | Path, visit: str = "shhs1") -> Selection:
    """Find the ``<visit>-NNNNNN.edf`` recordings under ``data`` and build the subsets.

    Raises
    ------
    ValueError
        If ``data`` holds no ``<visit>-*.edf`` file.
    """
    edfs = sorted(Path(data).rglob(f"{visit}-*.edf"), key=lambda p: p.name)
    if not edfs:
        raise ValueError(f"{data}: no {visit}-NNNNNN.edf recording under this folder "
                         "(expected the tree of `hypnoscope fetch --nsrr shhs --visit "
                         f"{visit}`: shhs/polysomnography/edfs/{visit}/)")
    sel = Selection()
    for edf in edfs:
        rec, reason = _record(edf, visit)
        if reason is None:
            sel.records.append(rec)
        else:
            sel.dropped.append({"record": rec["record"], "edf": rec["edf"], "reason": reason})
    return sel


def split_subjects(subjects, n_val: int = 100, test: float = 0.3,
                   seed: int = 0) -> dict[str, list[str]]:
    """The paper's split: ``n_val`` validation subjects, the rest ``1 - test`` : ``test``.

    The sorted distinct subjects are shuffled once with ``seed``; the first ``n_val``
    validate, the next ``round(test * rest)`` test, the others train.

    Raises
    ------
    ValueError
        If fewer than ``n_val + 2`` subjects are given.
    """
    subs = sorted(set(subjects))
    if len(subs) < n_val + 2:
        raise ValueError(f"{len(subs)} subjects: at least {n_val + 2} are needed for "
                         f"{n_val} validation subjects and a training/test split")
    order = [subs[i] for i in np.random.default_rng(seed).permutation(len(subs))]
    rest = order[n_val:]
    n_test = min(max(int(round(test * len(rest))), 1), len(rest) - 1)
    return {"train": sorted(rest[n_test:]), "val": sorted(order[:n_val]),
            "test": sorted(rest[:n_test])}


def selection_report(sel: Selection, n_val: int, test: float, seed: int) -> dict:
    """Counts per subset, dropped recordings with reasons, and each subset's split sizes."""
    out = {"n_edf": len(sel.records) + len(sel.dropped), "dropped_5791": sel.dropped,
           "dropped_5463": [{"record": r["record"], "edf": r["edf"],
                             "reason": "missing stage(s): " + ", ".join(r["missing"])}
                            for r in sel.records if r["missing"]],
           "subsets": {}}
    for name, paper_n in PAPER_SUBSETS.items():
        recs = sel.subset(name)
        entry = {"n_recordings": len(recs), "paper_n": paper_n}
        try:
            split = split_subjects([r["subject"] for r in recs], n_val, test, seed)
            entry["split"] = {k: len(v) for k, v in split.items()}
        except ValueError as e:
            entry["split_error"] = str(e)
        out["subsets"][name] = entry
    return out


def report_lines(rep: dict) -> list[str]:
    """The dry-run's text: counts, split sizes, and every dropped recording with its reason."""
    lines = [f"{rep['n_edf']} visit-1 EDF recording(s) found"]
    for name, e in rep["subsets"].items():
        split = (f"train {e['split']['train']} / validation {e['split']['val']} / test "
                 f"{e['split']['test']} subjects" if "split" in e else e["split_error"])
        lines.append(f"SHHS {name}: {e['n_recordings']} recording(s) (paper {e['paper_n']}); "
                     + split)
    for key, what in (("dropped_5791", "5791"), ("dropped_5463", "5463")):
        lines.append(f"dropped from {what}: {len(rep[key])}")
        lines += [f"  {d['record']}: {d['reason']}" for d in rep[key]]
    return lines


def _train(args, recs: list[dict], split: dict, work: Path) -> dict:
    """Train MC²SleepNet on the split's training subjects; pooled metrics on its test ones."""
    from benchmarks.mc2sleepnet.sleepedf78 import arm_options, fold_result, preprocessing
    from hypnoscope.evaluation.cross_validation import cross_validate
    from hypnoscope.evaluation.splits import Fold
    from hypnoscope.models import make_model
    from hypnoscope.signal.nights import load_recording

    nights = [load_recording(r["edf"], r["xml"], eeg=[CHANNEL], subject_id=r["subject"],
                             night_id=r["record"], cache=str(work / "cache"),
                             preprocessing=preprocessing(args.bandpass))
              for r in recs]
    side = {s: k for k, subs in split.items() for s in subs}
    idx = {k: np.array([i for i, n in enumerate(nights) if side[n.subject_id] == k], int)
           for k in ("train", "val", "test")}
    fold = Fold(idx["train"], idx["val"], idx["test"], tuple(split["train"]),
                tuple(split["val"]), tuple(split["test"]), name=f"shhs {args.subset}")
    options = {"preset": args.preset, "mask_ratio": args.mask_ratio, "seed": args.seed,
               "finetune": not args.pretrain_only, "device": args.device,
               **arm_options(args.arm), **json.loads(args.net)}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    if args.pretrain_epochs is not None:
        options["pretrain_epochs"] = args.pretrain_epochs
    cv = cross_validate(nights, lambda f: make_model(
        "mc2sleepnet", checkpoint_dir=str(work / "ckpt"), resume=True, **options),
        folds=[fold], cache_dir=work / "folds", score=lambda y, p: {}, desc="split",
        cache_key=json.dumps({k: v for k, v in options.items() if k != "device"},
                             sort_keys=True))
    rec = cv.records[0]
    return {"options": options, "train_s": rec.train_s,
            "pooled": fold_result([nights[i] for i in rec.fold.test],
                                  [p for _, p in rec.nights()])}


def main(argv: list[str] | None = None) -> int:
    import platform

    from hypnoscope.utils.files import write_json_atomic, write_text_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True,
                    help="the --path folder of `hypnoscope fetch --nsrr shhs`")
    ap.add_argument("--subset", default="5463", choices=sorted(PAPER_SUBSETS))
    ap.add_argument("--visit", default="shhs1")
    ap.add_argument("--n-val", type=int, default=100, help="validation subjects (paper: 100)")
    ap.add_argument("--test", type=float, default=0.3, help="test share of the rest (0.3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dry-run", action="store_true", help="list the selection, no training")
    ap.add_argument("--preset", default="paper", help="mc2sleepnet preset (paper, small)")
    ap.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs")
    ap.add_argument("--pretrain-epochs", type=int, default=None)
    ap.add_argument("--mask-ratio", type=float, default=0.5)
    ap.add_argument("--device", default=None, help="cpu, cuda (default: cuda if present)")
    ap.add_argument("--bandpass", choices=("none", "default"), default="none",
                    help="EEG band-pass: none (the paper states none) or the loaders' "
                         "default 0.3-35 Hz")
    ap.add_argument("--net", default="{}", help="JSON of network overrides (smoke tests)")
    ap.add_argument("--arm", default=None,
                    help="an MC²SleepNet arm of the paper's Table 3/4 (see "
                         "benchmarks/mc2sleepnet/run.py ARMS)")
    ap.add_argument("--pretrain-only", action="store_true",
                    help="no fine-tuning (Table 4's 'masking acc.', Table 3's PT row)")
    ap.add_argument("--name", default=None,
                    help="default mc2sleepnet_shhs<subset>, with the arm, a masking ratio "
                         "other than 50 %% or --pretrain-only appended")
    ap.add_argument("--work-dir", default=None)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    from benchmarks.mc2sleepnet.sleepedf78 import run_name

    name = args.name or (f"mc2sleepnet_shhs{args.subset}_selection" if args.dry_run else
                         run_name(f"mc2sleepnet_shhs{args.subset}", args.arm, args.mask_ratio,
                                  not args.pretrain_only, True))
    t0 = time.perf_counter()
    sel = select_recordings(args.data, args.visit)
    rep = selection_report(sel, args.n_val, args.test, args.seed)
    lines = report_lines(rep)
    meta = {"title": f"MC²SleepNet on REAL SHHS {args.subset}"
                     + (" (selection only, --dry-run)" if args.dry_run else ""),
            "date": now_utc(), "command": command_line("benchmarks.mc2sleepnet.shhs", argv),
            "machine": f"{platform.platform()}, python {platform.python_version()}",
            "settings": vars(args)}
    result = {"meta": meta, "selection": rep}
    if not args.dry_run:
        recs = sel.subset(args.subset)
        split = split_subjects([r["subject"] for r in recs], args.n_val, args.test, args.seed)
        work = Path(args.work_dir or ROOT / ".cache" / name)
        result.update(_train(args, recs, split, work), split=split)
        p = result["pooled"]  # the paper's rows are fine-tuned at --mask-ratio
        paper = (None if args.pretrain_only or args.arm else
                 PAPER_ROWS.get((args.subset, round(args.mask_ratio, 4))))
        lines += ["", "| | accuracy | macro-F1 | kappa |", "|---|---|---|---|",
                  f"| test subjects | {100 * p['accuracy']:.1f} | {100 * p['macro_f1']:.1f} | "
                  f"{p['kappa']:.3f} |"]
        if paper is not None:
            lines.append(f"| paper (Table 5) | {100 * paper['accuracy']:.2f} | "
                         f"{100 * paper['macro_f1']:.1f} | {paper['kappa']:.3f} |")
        result["paper"] = paper
    meta["wall_s"] = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / f"{name}.json", result)
    text = [f"# {meta['title']}", "", f"{meta['date']} · `{meta['command']}`", "", *lines]
    write_text_atomic(out / f"{name}.md", "\n".join(text) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
