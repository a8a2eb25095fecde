"""``hypnoscope stage``: stage one or many PSG recordings and write every output.

Per recording with stem ``S`` (the file name without ``.edf`` and without a Sleep-EDF
``-PSG`` suffix) the command writes, atomically, into ``--out``
(:func:`hypnoscope.staging.stage_file`):

- ``S.hypnogram.tsv``: ``onset duration stage confidence p_W p_N1 p_N2 p_N3 p_R``;
- ``S.hypnogram.edf``: EDF+ stage annotations (MNE, EDFbrowser);
- ``S.report.json`` and ``S.report.html``: sleep statistics (+ agreement with
  ``--reference``);
- ``S.hypnogram.png``: hypnogram and hypnodensity.
"""

from __future__ import annotations

import argparse
import glob
import re
import sys
from pathlib import Path
from typing import Any

from . import CLIError

_HYPNOGRAM_NAME = re.compile(r"hypnogram|annotation|scoring|\.hypnogram", re.IGNORECASE)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stage", help="stage PSG recordings (EDF) and write hypnograms and reports",
        description="Stage PSG recordings with a shipped or trained model. PSG may be files, "
                    "directories (every *-PSG.edf, else every *.edf that is not a hypnogram) "
                    "or glob patterns.")
    p.add_argument("psg", nargs="+", metavar="PSG", help="EDF file(s), directories or globs")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output directory")
    p.add_argument("--model", "-m", default="default", metavar="NAME|PATH",
                   help="shipped model name (see 'hypnoscope models') or model file "
                        "(default: %(default)s)")
    p.add_argument("--eeg", nargs="+", metavar="CH", help="EEG channel(s) to use")
    p.add_argument("--eog", metavar="CH", help="EOG channel to use")
    p.add_argument("--emg", metavar="CH", help="EMG channel to use (models that use EMG)")
    p.add_argument("--reference", "-r", nargs="+", metavar="HYPNOGRAM",
                   help="reference hypnogram(s) for agreement metrics: one file per "
                        "recording (same order), or a directory searched for the matching "
                        "Sleep-EDF *-Hypnogram.edf / <stem>.* file")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="recordings staged in parallel (processes; default 1)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG figure")
    p.set_defaults(func=run)


# ----------------------------------------------------------------- inputs
def _is_hypnogram_file(path: Path) -> bool:
    return bool(_HYPNOGRAM_NAME.search(path.stem))


def expand_inputs(items: list[str]) -> list[Path]:
    """Files from paths, directories and glob patterns (sorted, de-duplicated).

    A directory contributes its ``*-PSG.edf`` files, or, if it has none, every EDF/BDF
    whose name does not look like a hypnogram. A missing path is kept so that it is
    reported as a failure.
    """
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*-PSG.edf")) or sorted(
                f for f in p.iterdir()
                if f.suffix.lower() in (".edf", ".bdf") and not _is_hypnogram_file(f))
            if not found:
                raise CLIError(f"{p}: directory holds no PSG recording (*-PSG.edf or *.edf)")
            out.extend(found)
        elif any(c in item for c in "*?[") and not p.exists():
            found = sorted(Path(f) for f in glob.glob(item)
                           if Path(f).is_file() and not _is_hypnogram_file(Path(f)))
            if not found:
                raise CLIError(f"no recording matches {item!r}")
            out.extend(found)
        else:
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _references(psgs: list[Path], refs: list[str] | None) -> list[Path | None]:
    if not refs:
        return [None] * len(psgs)
    if len(refs) == 1 and Path(refs[0]).is_dir():
        from ..recordings import find_hypnogram

        folder = Path(refs[0])
        return [find_hypnogram(p, folder) for p in psgs]
    if len(refs) != len(psgs):
        raise CLIError(f"--reference got {len(refs)} file(s) for {len(psgs)} recording(s); "
                       "give one per recording (same order) or a directory")
    return [Path(r) for r in refs]


# --------------------------------------------------------------- one night
def _worker(kwargs: dict[str, Any]) -> dict[str, Any]:
    from ..staging import stage_file

    try:
        return stage_file(**kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, the batch goes on
        return {"recording": str(kwargs["psg"]), "status": "failed",
                "error": f"{type(exc).__name__}: {exc}"}


# -------------------------------------------------------------------- CLI
def _fmt(v: Any, spec: str) -> str:
    try:
        return format(float(v), spec)
    except (TypeError, ValueError):
        return "-"


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of a batch run."""
    has_ref = any("accuracy" in r for r in rows)
    head = ["recording", "status", "epochs", "hours", "TST min", "SE %", "conf"]
    if has_ref:
        head += ["acc", "kappa", "MF1"]
    lines = []
    for r in rows:
        name = Path(r["recording"]).name
        if r["status"] != "ok":
            lines.append([name, "FAILED", r.get("error", "")])
            continue
        cells = [name, "ok", str(r["n_epochs"]), _fmt(r["hours"], ".2f"), _fmt(r["tst_min"], ".1f"),
                 _fmt(r["se_pct"], ".1f"), _fmt(r["mean_confidence"], ".2f")]
        if has_ref:
            cells += [_fmt(r.get("accuracy"), ".3f"), _fmt(r.get("kappa"), ".3f"),
                      _fmt(r.get("macro_f1"), ".3f")]
        lines.append(cells)
    full = [c for c in lines if len(c) == len(head)]
    width = [max([len(head[i])] + [len(c[i]) for c in full]) for i in range(len(head))]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, width, strict=True))]
    out.append("  ".join("-" * w for w in width))
    for c in lines:
        if len(c) == len(head):
            out.append("  ".join(x.ljust(w) for x, w in zip(c, width, strict=True)))
        else:
            out.append(f"{c[0].ljust(width[0])}  FAILED  {c[2]}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from ..utils import progress, write_json_atomic

    psgs = expand_inputs(args.psg)
    refs = _references(psgs, args.reference)
    if args.jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {args.jobs}")
    from ..models.storage import load_staging_model, resolve_model_path

    resolve_model_path(args.model)  # fail early on an unknown model
    if args.emg:
        from ..staging import model_input

        mdl, card = load_staging_model(args.model)
        if model_input(mdl, card) == "bandpower":
            print(f"note: model {card.get('name', args.model)!r} uses EEG and EOG only; "
                  f"--emg {' '.join(args.emg) if isinstance(args.emg, list) else args.emg} "
                  "is ignored", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [dict(psg=str(p), out_dir=str(out), model=args.model, eeg=args.eeg, eog=args.eog,
                  emg=args.emg, reference=None if r is None else str(r),
                  plot=not args.no_plot) for p, r in zip(psgs, refs, strict=True)]
    rows: list[dict[str, Any]] = []
    bar = progress(total=len(tasks), desc="staging", unit="night")
    if args.jobs == 1 or len(tasks) == 1:
        for t in tasks:
            bar.set_postfix_str(Path(t["psg"]).name)
            rows.append(_worker(t))
            _report_row(rows[-1])
            bar.update(1)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # "spawn": forked workers can deadlock in OpenMP (LightGBM) or MNE threads that
        # the parent already started
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(args.jobs, len(tasks)),
                                 mp_context=ctx) as pool:
            futures = {pool.submit(_worker, t): i for i, t in enumerate(tasks)}
            done: dict[int, dict[str, Any]] = {}
            for fut in as_completed(futures):
                done[futures[fut]] = fut.result()
                _report_row(done[futures[fut]])
                bar.update(1)
        rows = [done[i] for i in range(len(tasks))]
    bar.close()
    n_fail = sum(r["status"] != "ok" for r in rows)
    print(summary_table(rows))
    print(f"{len(rows) - n_fail} of {len(rows)} recording(s) staged; outputs in {out}")
    if len(rows) > 1:
        write_json_atomic(out / "summary.json", rows)
    return 1 if n_fail else 0


def _report_row(row: dict[str, Any]) -> None:
    if row["status"] != "ok":
        print(f"hypnoscope stage: {row['recording']}: {row['error']}", file=sys.stderr)
