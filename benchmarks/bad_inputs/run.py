"""Bad inputs: what ``hypnoscope`` does with damaged, unusual and mismatched recordings.

Usage::

    python -m benchmarks.bad_inputs.run [--workdir DIR] [--cases NAME ...] [--fresh]
                                        [--jobs N] [--list]

The corpus (``corpus.py``; cases in ``cases.py``, one table) is generated once into
``WORKDIR/corpus`` from simulated nights with a known true hypnogram and reused
(``--fresh`` regenerates it). Each case then runs in a fresh folder ``WORKDIR/runs/<case>``
holding a copy of its inputs (``in/``), as a user would: ``python -m hypnoscope ...`` in a
subprocess (one case, NaNs, uses the Python API since EDF cannot store NaN; the Ctrl-C
cases send SIGINT to the process group when the first output appears, then rerun), with
a timeout, so that a hang is a FAIL row rather than a stuck run.

Per case it records the exit code, the first line of stderr, whether a Python traceback
or a raw Python warning (source line) was printed, the outputs left (complete / partial
output sets, temporary files, changed inputs) and, where the truth is known, the accuracy
of the staged epochs against the simulated truth: on the clean epochs against the clean
night's accuracy on the same epochs, and how many defective epochs were flagged
(unscored, or a quality column saying so) instead of staged with confidence. The verdict
applies issue 11's target -- no traceback, no silent wrong answer, no partial output
set, clean-hour accuracy within 2 points of the clean night -- and the case's own
expectation (``cases.py``), and gives the reasons for a FAIL.

A full run writes ``benchmarks/results/bad_inputs.md`` and ``.json`` (a ``--cases``
subset writes ``WORKDIR/results.md``/``.json`` only). Signals are simulated: the accuracy
checks the pipeline's handling of bad input, not clinical accuracy. Takes a few minutes on
two cores (the first run also simulates the corpus, about a minute).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bad_inputs import corpus
from benchmarks.bad_inputs.cases import BY_NAME, CASES, Case
from benchmarks.common import RESULTS, command_line, machine_info

ACCURACY_POINTS = 0.02       # clean epochs may lose at most 2 points against the clean night
FLAGGED_FRACTION = 0.9       # share of defective epochs that must be flagged
CONFIDENT = 0.5              # a stage given with at least this probability is "confident"
SIGINT_GRACE_SEC = 30.0      # how long a Ctrl-C'd run may take to stop
SET_KINDS = ("hypnogram.tsv", "hypnogram.edf", "report.html", "report.json", "hypnogram.png")
#: The summary files a batch writes beside its output sets, also when one recording of it
#: fails (``hypnoscope.staging.batch.stage_folder``; README, cohorts): not left-over output.
BATCH_SUMMARIES = ("summary.json", "summary.csv")
STAGE_CODES = {"W": 0, "WAKE": 0, "N1": 1, "N2": 2, "N3": 3, "N4": 3, "R": 4, "REM": 4}
GOOD_QUALITY = {"", "ok", "good", "clean", "0", "0.0", "none", "nan", "false", "pass"}
TRACEBACK = "Traceback (most recent call last)"
RAW_WARNING = re.compile(r"^\S.*:\d+: [A-Za-z]*Warning: |^\s+warnings\.warn\(", re.MULTILINE)
USAGE_ERROR = re.compile(r"unrecognized arguments|invalid choice|arguments are required|"
                         r"error: argument ")
WARNING_LINE = re.compile(r"(?i)\bwarning\b")


# ------------------------------------------------------------------ corpus
def generate(case: Case, corpus_dir: Path, fresh: bool) -> dict:
    """Write the case's inputs into ``corpus_dir/<case>`` (reused while its builder spec
    and ``corpus.py`` are unchanged) and return its facts."""
    from hypnoscope.utils.files import write_text_atomic

    folder, meta_path = corpus_dir / case.name, corpus_dir / f"{case.name}.json"
    source = hashlib.sha1(Path(corpus.__file__).read_bytes()).hexdigest()[:12]
    key = f"v{corpus.GENERATOR_VERSION} corpus.py {source} {case.build.spec}"
    if not fresh and meta_path.is_file() and folder.is_dir():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == key:
            return meta["facts"]
    tmp = corpus_dir / f".{case.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.mkdir(parents=True)
    facts = case.build(tmp)
    tmp.rename(folder)
    write_text_atomic(meta_path, json.dumps({"key": key, "facts": facts}))
    return facts


# ------------------------------------------------------------------ one run
@dataclass
class Proc:
    argv: list[str]
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


def _command(case: Case, argv: tuple[str, ...] | None = None) -> list[str]:
    argv = tuple(argv if argv is not None else case.argv)
    return [sys.executable, *argv] if case.mode == "api" else \
        [sys.executable, "-m", "hypnoscope", *argv]


def display(case: Case, argv: tuple[str, ...] | None = None) -> str:
    """The command as a user would type it."""
    argv = tuple(argv if argv is not None else case.argv)
    prog = "python" if case.mode == "api" else "hypnoscope"
    return " ".join([prog, *(shlex.quote(a) for a in argv)])


def _env(run_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(HYPNOSCOPE_PROGRESS="0", HYPNOSCOPE_CACHE=str(run_dir / "cache"),
               MPLBACKEND="Agg")
    return env


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(cmd: list[str], run_dir: Path, log: Path) -> tuple[subprocess.Popen, Any, Any]:
    out, err = open(f"{log}.stdout.txt", "w+"), open(f"{log}.stderr.txt", "w+")
    # SIGINT at its default in the child even when the benchmark itself runs as a
    # background job (which inherits SIGINT ignored): the Ctrl-C cases need it
    p = subprocess.Popen(cmd, cwd=run_dir, env=_env(run_dir), stdout=out, stderr=err,
                         stdin=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=_default_sigint)
    return p, out, err


def _finish(p: subprocess.Popen, files, timeout: float) -> tuple[int | None, str, str, bool]:
    timed_out = False
    try:
        p.wait(timeout=max(timeout, 0.1))
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    texts = []
    for f in files:
        f.seek(0)
        texts.append(f.read())
        f.close()
    return p.returncode, texts[0], texts[1], timed_out


def invoke(case: Case, run_dir: Path, log: Path, argv: tuple[str, ...] | None = None
           ) -> Proc:
    cmd = _command(case, argv)
    t0 = time.perf_counter()
    p, out, err = _spawn(cmd, run_dir, log)
    rc, so, se, to = _finish(p, (out, err), case.timeout)
    return Proc(cmd, rc, so, se, time.perf_counter() - t0, to)


def file_digests(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(folder.parent))] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


@dataclass
class Inventory:
    """What a run left in its folder (inputs excluded)."""

    sets: dict[str, list[str]] = field(default_factory=dict)  # stem -> kinds present
    temp: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    mtimes: dict[str, float] = field(default_factory=dict)

    def complete(self, required: tuple[str, ...]) -> list[str]:
        return sorted(s for s, k in self.sets.items() if set(required) <= set(k))

    def partial(self, required: tuple[str, ...]) -> list[str]:
        return sorted(s for s, k in self.sets.items() if not set(required) <= set(k))


def _is_temp(part: str) -> bool:
    return part.startswith(".") or ".part" in part or ".tmp" in part or part.startswith("tmp")


def take_inventory(run_dir: Path, inputs_before: dict[str, str]) -> Inventory:
    """Output sets (``<stem>.<kind>`` files), temporary files (hidden, ``.part``, ``.tmp``)
    and other files a run created under ``run_dir`` (outside its inputs and cache)."""
    inv = Inventory()
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir)
        name = str(rel)
        if rel.parts[0] == "cache" or name in inputs_before:
            continue
        temp = any(_is_temp(x) for x in rel.parts)
        if p.is_dir():
            if temp and not any(p.iterdir()):
                inv.temp.append(name + "/")
            continue
        if temp:
            inv.temp.append(name)
            continue
        for kind in SET_KINDS:
            if p.name.endswith("." + kind):
                stem = str(rel.parent / p.name[: -len(kind) - 1])
                stem = stem[4:] if stem.startswith("out/") else stem
                inv.sets.setdefault(stem, []).append(kind)
                inv.mtimes[name] = p.stat().st_mtime_ns
                break
        else:
            inv.other.append(name)
    for s in inv.sets:
        inv.sets[s] = sorted(inv.sets[s], key=SET_KINDS.index)
    return inv


@dataclass
class Run:
    """One executed case: what the checks in ``checks.py`` see."""

    case: Case
    run_dir: Path
    facts: dict
    proc: Proc
    inv: Inventory
    changed_inputs: list[str]
    required: tuple[str, ...]

    @property
    def rc(self) -> int | None:
        return self.proc.rc

    @property
    def stdout(self) -> str:
        return self.proc.stdout

    @property
    def complete_stems(self) -> list[str]:
        return self.inv.complete(self.required)

    def _out(self, stem: str, kind: str) -> Path:
        return self.run_dir / "out" / f"{stem}.{kind}"

    def tsv(self, stem: str):
        import pandas as pd

        p = self._out(stem, "hypnogram.tsv")
        try:
            return pd.read_csv(p, sep="\t", keep_default_na=False) if p.is_file() else None
        except Exception:  # noqa: BLE001 - an unreadable output is reported as such
            return None

    def report(self, stem: str) -> dict | None:
        p = self._out(stem, "report.json")
        try:
            return json.loads(p.read_text()) if p.is_file() else None
        except ValueError:
            return None

    def staged(self, stem: str) -> dict[str, np.ndarray] | None:
        """The output TSV aligned with the truth: ``pred``, ``flagged``, ``conf``."""
        df, truth = self.tsv(stem), self.truth(stem)
        return None if df is None or truth is None else staged_codes(df, len(truth))

    def truth(self, stem: str) -> np.ndarray | None:
        truths = self.facts.get("truth", {})
        text = truths.get(stem)
        if text is None and len(truths) == 1 and len(self.inv.sets) == 1:
            text = next(iter(truths.values()))  # one recording, renamed outputs
        if text is None:
            return None
        return np.array([corpus.UNSCORED if ch == "?" else int(ch) for ch in text])


# ------------------------------------------------------------------ scoring
def staged_codes(df, n: int) -> dict[str, np.ndarray]:
    """Stage codes, flags and confidence per truth epoch from an output TSV (aligned by
    onset; an epoch the TSV does not cover is unscored)."""
    pred = np.full(n, corpus.UNSCORED)
    flagged = np.ones(n, bool)
    conf = np.zeros(n)
    cols = {c.lower(): c for c in df.columns}
    if "onset" not in cols or "stage" not in cols:
        return {"pred": pred, "flagged": flagged, "conf": conf}
    onset = np.asarray([_num(x) for x in df[cols["onset"]]])
    idx = np.rint(onset / corpus.EPOCH_SEC)
    ok = np.isfinite(idx) & (idx >= 0) & (idx < n)
    idx = idx[ok].astype(int)
    codes = np.array([STAGE_CODES.get(str(s).strip().upper(), corpus.UNSCORED)
                      for s in df[cols["stage"]]])[ok]
    qcols = [c for lc, c in cols.items() if "quality" in lc or "flag" in lc or lc == "qc"]
    bad = np.zeros(len(df), bool)
    for c in qcols:
        bad |= np.array([str(v).strip().lower() not in GOOD_QUALITY for v in df[c]])
    pred[idx] = codes
    flagged[idx] = (codes < 0) | bad[ok]
    if "confidence" in cols:
        conf[idx] = np.array([_num(x) for x in df[cols["confidence"]]])[ok]
    return {"pred": pred, "flagged": flagged, "conf": np.nan_to_num(conf)}


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def accuracy(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    m = mask & (truth >= 0)
    return float(np.mean(pred[m] == truth[m])) if m.any() else math.nan


def score(run: Run, baseline: Run | None) -> tuple[dict, list[str], str]:
    """Accuracy metrics, failures and the table's accuracy cell of a staged case."""
    case = run.case
    stems = run.complete_stems or run.inv.partial(run.required)
    if len(stems) != 1 or run.tsv(stems[0]) is None or run.truth(stems[0]) is None:
        return {}, [], ""
    truth = run.truth(stems[0])
    got = staged_codes(run.tsv(stems[0]), len(truth))
    n = len(truth)
    clean = np.ones(n, bool)
    if case.bad:
        clean[case.bad[0]:case.bad[1]] = False
    m: dict[str, Any] = {"accuracy_all": accuracy(got["pred"], truth, np.ones(n, bool)),
                         "accuracy_clean": accuracy(got["pred"], truth, clean),
                         "clean_epochs_unscored": int(np.sum(got["flagged"] & clean))}
    failures: list[str] = []
    what = "clean epochs" if case.bad else "accuracy"
    cell = f"{what} {m['accuracy_clean']:.3f}"
    if baseline is not None:
        b_stems = baseline.complete_stems
        b_df = baseline.tsv(b_stems[0]) if len(b_stems) == 1 else None
        b_truth = baseline.truth(b_stems[0]) if b_df is not None else None
        if b_truth is None or len(b_truth) != n:
            cell += " (no clean-night baseline)"
            failures.append(f"baseline {baseline.case.name} has no usable output")
        else:
            b = staged_codes(b_df, n)
            base = accuracy(b["pred"], truth, clean)
            delta = m["accuracy_clean"] - base
            m.update(baseline_accuracy_clean=base, delta_points=100 * delta)
            cell += f" vs {base:.3f} clean night ({100 * delta:+.1f} pts)"
            if not delta >= -ACCURACY_POINTS - 1e-9:
                failures.append(f"{what} {m['accuracy_clean']:.3f} vs {base:.3f} on the clean "
                                f"night ({100 * delta:+.1f} points)")
    if case.bad:
        a, b_ = case.bad
        n_bad = b_ - a
        flagged = int(got["flagged"][a:b_].sum())
        confident = int(np.sum(~got["flagged"][a:b_] & (got["conf"][a:b_] >= CONFIDENT)))
        m.update(defect_epochs=n_bad, defect_flagged=flagged, defect_confident=confident,
                 defect_mean_confidence=float(np.mean(got["conf"][a:b_])))
        cell += f"; defect {flagged}/{n_bad} flagged, {confident} confidently staged"
        if flagged < FLAGGED_FRACTION * n_bad:
            failures.append(f"{n_bad - flagged} of {n_bad} defective epochs staged without a "
                            f"flag ({confident} with confidence >= {CONFIDENT})")
    return m, failures, cell


# ------------------------------------------------------------------ messages
def notices_text(report: dict | None) -> list[str]:
    """Strings under ``notices``/``warnings`` keys (any depth) of a report JSON."""
    out: list[str] = []

    def leaves(x, keep: bool) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                leaves(v, keep or ("notice" in str(k).lower() or "warning" in str(k).lower()))
        elif isinstance(x, list):
            for v in x:
                leaves(v, keep)
        elif keep and isinstance(x, str):
            out.append(x)

    leaves(report or {}, False)
    return out


def warning_notices(report: dict | None) -> list[str]:
    """Messages of the report's notices of severity warning (or listed as warnings)."""
    out: list[str] = []

    def walk(x, under_warnings: bool) -> None:
        if isinstance(x, dict):
            if x.get("severity") == "warning" and isinstance(x.get("message"), str):
                out.append(x["message"])
            for k, v in x.items():
                walk(v, under_warnings or "warning" in str(k).lower())
        elif isinstance(x, list):
            for v in x:
                walk(v, under_warnings)
        elif under_warnings and isinstance(x, str):
            out.append(x)

    walk(report or {}, False)
    return out


def _lines(text: str) -> list[str]:
    return [ln.rstrip() for ln in text.splitlines() if ln.strip()]


def message_of(case: Case, proc: Proc) -> str:
    """The message a user reads: the exception line of a failed API call, the
    ``hypnoscope <cmd>: ...`` line of a failed command, else the first line of stderr."""
    lines = _lines(proc.stderr)
    if not lines:
        return ""
    if case.mode == "api" and TRACEBACK in proc.stderr:
        return lines[-1]
    first = 0
    if proc.rc not in (0, None):
        own = [i for i, ln in enumerate(lines) if ln.startswith(f"hypnoscope {case.argv[0]}:")]
        first = own[0] if own else 0
    msg = lines[first]
    if msg.endswith(":") and first + 1 < len(lines):  # "N recordings failed:" + the first
        msg += " " + lines[first + 1].strip()
    return msg


# ------------------------------------------------------------------ verdicts
def _process_failures(run: Run) -> list[str]:
    """Failures of any run whatever the case expects: tracebacks, raw warnings, usage
    errors, changed inputs, partial output sets, temporary files left."""
    case, proc, inv = run.case, run.proc, run.inv
    fails: list[str] = []
    stderr = proc.stderr
    api_error = case.mode == "api" and TRACEBACK in stderr
    if TRACEBACK in stderr + proc.stdout and not api_error:
        fails.append("Python traceback")
    if RAW_WARNING.search(stderr):
        fails.append("raw Python warning with source line")
    if USAGE_ERROR.search(stderr):
        fails.append("option not supported (argparse usage error)")
    if run.changed_inputs:
        fails.append(f"input changed or removed: {', '.join(run.changed_inputs[:3])}")
    partial = inv.partial(run.required)
    if partial:
        fails.append("partial output set: " + "; ".join(
            f"{s} ({', '.join(inv.sets[s])})" for s in partial))
    if inv.temp:
        fails.append(f"temporary files left: {', '.join(inv.temp[:3])}")
    return fails


def _expectation_failures(run: Run, same: Proc | None, text: str) -> list[str]:
    """Failures against what the case expects (``ok``, ``warn``, ``refuse``, ...);
    ``text`` holds the run's warnings (stderr lines and report notices)."""
    case, proc, inv = run.case, run.proc, run.inv
    fails: list[str] = []
    stderr = proc.stderr
    cmd = case.argv[0]
    refused = proc.rc != 0
    expect = case.expect

    def refusal_checks() -> None:
        if case.mode == "api":
            last = message_of(case, proc)
            if not re.match(r"^[\w.]*(Error|Exception)\b", last):
                fails.append("no exception message")
            err_text = last
        else:
            if not any(ln.startswith(f"hypnoscope {cmd}:") for ln in _lines(stderr)):
                fails.append(f"no 'hypnoscope {cmd}: ...' message")
            err_text = stderr
        missing = [rx for rx in case.match if not re.search(rx, err_text)]
        if missing:
            fails.append("message does not name " + ", ".join(f"/{rx}/" for rx in missing))
        left = [s for s in inv.sets if s not in case.complete_sets] + \
            [o for o in inv.other if Path(o).name not in BATCH_SUMMARIES]
        if left:
            fails.append(f"outputs left behind: {', '.join(left[:4])}")

    def warned() -> None:
        missing = [rx for rx in case.match if not re.search(rx, text)]
        if missing:
            fails.append("no warning matching " + ", ".join(f"/{rx}/" for rx in missing)
                         + " (silent)")

    if expect == "ok":
        if refused:
            fails.append(f"failed (exit {proc.rc}): {message_of(case, proc)[:120]}")
    elif expect == "warn":
        if refused:
            fails.append(f"failed (exit {proc.rc}): {message_of(case, proc)[:120]}")
        else:
            warned()
    elif expect == "refuse":
        if refused:
            refusal_checks()
        else:
            fails.append("accepted (exit 0): silent wrong answer")
    elif expect == "warn_or_refuse":
        if refused:
            refusal_checks()
        else:
            warned()
    elif expect == "ok_or_refuse":
        if refused:
            refusal_checks()
    elif expect == "refuse_or_same":
        if refused:
            refusal_checks()
        elif same is not None:
            if _parsed(proc.stdout) != _parsed(same.stdout):
                fails.append("accepted, and the result differs from the clean file's "
                             "(label silently changed)")
    else:
        raise ValueError(f"{case.name}: unknown expect {expect!r}")
    return fails


def judge(run: Run, baseline: Run | None, same: Proc | None) -> tuple[list[str], dict, str]:
    """Failures (empty = PASS), metrics and the accuracy cell of one run."""
    case, proc, inv = run.case, run.proc, run.inv
    metrics: dict[str, Any] = {}
    stderr = proc.stderr
    if proc.timed_out:
        return [f"hung: no exit within {case.timeout:.0f} s (killed)"], metrics, ""
    fails = _process_failures(run)
    reports = [run.report(s) for s in inv.sets]
    warn_texts = _lines(stderr) + [t for r in reports for t in notices_text(r)]
    refused = proc.rc != 0
    fails += _expectation_failures(run, same, "\n".join(warn_texts))
    hits = [ln for ln in warn_texts if case.must_not and re.search(case.must_not, ln)]
    if hits:
        fails.append(f"misleading message: {hits[0].strip()[:120]}")
    for stem in case.complete_sets:
        if stem not in run.complete_stems:
            fails.append(f"no complete output set for {stem}")
    if case.quiet and not refused:
        noisy = [ln for ln in _lines(stderr) if WARNING_LINE.search(ln)] + \
            [t for r in reports for t in warning_notices(r)]
        if noisy:
            fails.append(f"warning on a clean recording: {noisy[0][:100]}")
    cell = ""
    if not refused:
        m, f, cell = score(run, baseline)
        metrics.update(m)
        fails += f
    if case.check is not None:
        m, f = case.check(run)
        metrics.update(m)
        fails += f
        if "cell" in m:
            cell = metrics.pop("cell")
    return fails, metrics, cell


def _fmt(x) -> str:
    try:
        return f"{float(x):g}"
    except (TypeError, ValueError):
        return "-"


def _parsed(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


# ------------------------------------------------------------------ running cases
def prepare(case: Case, workdir: Path, name: str | None = None) -> tuple[Path, dict[str, str]]:
    run_dir = workdir / "runs" / (name or case.name)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    shutil.copytree(workdir / "corpus" / case.name, run_dir / "in")
    (run_dir / "cache").mkdir()
    return run_dir, file_digests(run_dir / "in")


def _changed(run_dir: Path, before: dict[str, str]) -> list[str]:
    after = file_digests(run_dir / "in")
    return [k for k, v in before.items() if after.get(k) != v]


def required_kinds(case: Case) -> tuple[str, ...]:
    if case.mode == "api":
        return ("hypnogram.tsv",)
    return tuple(k for k in SET_KINDS if not (k.endswith("png") and "--no-plot" in case.argv))


def run_case(case: Case, workdir: Path, facts: dict, done: dict[str, dict]) -> dict:
    run_dir, before = prepare(case, workdir)
    log = workdir / "runs" / case.name
    if case.mode.startswith("sigint"):
        attempts = [run_interrupt(case, run_dir, before, facts, log)]
        while len(attempts) < case.repeat:  # attempt k in runs/<case>-<k>
            name = f"{case.name}-{len(attempts) + 1}"
            run_dir, before = prepare(case, workdir, name)
            attempts.append(run_interrupt(case, run_dir, before, facts,
                                          workdir / "runs" / name))
        if len(attempts) == 1:
            return attempts[0]
        failed = [(k, a) for k, a in enumerate(attempts, 1) if a["reasons"]]
        k, row = failed[0] if failed else (len(attempts), attempts[-1])
        if failed:
            row["reasons"] = [f"{len(failed)} of {len(attempts)} attempts failed; attempt {k}: "
                              + "; ".join(row["reasons"])]
        row["metrics"]["attempts"] = [a["verdict"] for a in attempts]
        row["seconds"] = round(sum(a["seconds"] for a in attempts), 2)
        return row
    proc = invoke(case, run_dir, log)
    same = invoke(case, run_dir, Path(f"{log}.same"), case.same_as) \
        if case.same_as and proc.rc == 0 else None
    run = Run(case, run_dir, facts, proc, take_inventory(run_dir, before),
              _changed(run_dir, before), required_kinds(case))
    baseline = done.get(case.baseline, {}).get("_run") if case.baseline else None
    fails, metrics, cell = judge(run, baseline, same)
    row = _row(case, proc, run.inv, run.required, fails, metrics, cell)
    row["_run"] = run
    return row


def _outputs_cell(inv: Inventory, required: tuple[str, ...]) -> str:
    parts = []
    if inv.complete(required):
        parts.append(f"complete: {', '.join(inv.complete(required))}")
    if inv.partial(required):
        parts.append("PARTIAL: " + ", ".join(
            f"{s} ({'+'.join(k.split('.')[-1] for k in inv.sets[s])})"
            for s in inv.partial(required)))
    if inv.temp:
        parts.append(f"TEMP: {', '.join(inv.temp[:3])}")
    if inv.other:
        parts.append(f"other: {', '.join(inv.other[:3])}")
    return "; ".join(parts) or "none"


def _row(case: Case, proc: Proc, inv: Inventory, required, fails, metrics, cell) -> dict:
    return {
        "case": case.name, "group": case.group, "command": display(case),
        "exit": proc.rc, "seconds": round(proc.seconds, 2),
        "message": message_of(case, proc),
        "first_stderr_line": (_lines(proc.stderr) or [""])[0],
        "stderr_head": _lines(proc.stderr)[:12],
        "traceback": TRACEBACK in proc.stderr + proc.stdout,
        "raw_warning": bool(RAW_WARNING.search(proc.stderr)),
        "outputs": _outputs_cell(inv, required), "accuracy": cell, "metrics": metrics,
        "verdict": "FAIL" if fails else "PASS", "reasons": fails,
    }


def _first_output(out: Path) -> bool:
    return any(out.glob("*.hypnogram.tsv"))


def _first_write(out: Path) -> bool:
    return out.is_dir() and any(out.iterdir())


def run_interrupt(case: Case, run_dir: Path, before: dict[str, str], facts: dict,
                  log: Path) -> dict:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) when the first output
    TSV appears (``sigint``) or anything at all appears in ``out/`` (``sigint_write``);
    then the same command again, uninterrupted."""
    required = required_kinds(case)
    cmd = _command(case)
    ready = _first_write if case.mode == "sigint_write" else _first_output
    t0 = time.perf_counter()
    p, out, err = _spawn(cmd, run_dir, log)
    trigger, seen = None, []
    while time.perf_counter() - t0 < case.timeout and p.poll() is None:
        if ready(run_dir / "out"):
            trigger = time.perf_counter() - t0
            os.killpg(p.pid, signal.SIGINT)
            seen = sorted(x.name for x in (run_dir / "out").iterdir())
            break
        time.sleep(0.01)
    rc, so, se, stuck = _finish(p, (out, err), SIGINT_GRACE_SEC if trigger else case.timeout)
    proc1 = Proc(cmd, rc, so, se, time.perf_counter() - t0, stuck)
    inv1 = take_inventory(run_dir, before)
    proc2 = invoke(case, run_dir, Path(f"{log}.rerun"))
    inv2 = take_inventory(run_dir, before)
    fails: list[str] = []
    if trigger is None:
        fails.append("the batch ended before any output appeared (not interrupted)"
                     if not stuck else f"hung: no output within {case.timeout:.0f} s")
    elif stuck:
        fails.append(f"did not stop within {SIGINT_GRACE_SEC:.0f} s of Ctrl-C")
    if TRACEBACK in se + so:
        fails.append("Python traceback on Ctrl-C")
    if RAW_WARNING.search(se):
        fails.append("raw Python warning with source line")
    if trigger is not None and rc == 0:
        fails.append("exit 0 after Ctrl-C")
    if inv1.partial(required):
        fails.append("partial output set after Ctrl-C: " + "; ".join(
            f"{s} ({', '.join(inv1.sets[s])})" for s in inv1.partial(required)))
    if inv1.temp:
        fails.append(f"temporary files left after Ctrl-C: {', '.join(inv1.temp[:3])}")
    n_inputs = len(facts.get("truth", {}))
    if proc2.rc != 0 or proc2.timed_out:
        fails.append(f"rerun failed (exit {proc2.rc}): {message_of(case, proc2)[:100]}")
    if TRACEBACK in proc2.stderr:
        fails.append("Python traceback on the rerun")
    if len(inv2.complete(required)) != n_inputs or inv2.partial(required) or inv2.temp:
        fails.append(f"after the rerun: {_outputs_cell(inv2, required)}")
    redone = sorted({s for s in inv1.complete(required)
                     for f, t in inv1.mtimes.items()
                     if f.startswith(f"out/{s}.") and inv2.mtimes.get(f) != t})
    if redone:
        fails.append(f"rerun redid complete sets: {', '.join(redone)}")
    row = _row(case, proc1, inv1, required, fails,
               {"interrupted_after_sec": trigger, "out_at_interrupt": seen[:6],
                "exit_rerun": proc2.rc,
                "sets_after_interrupt": inv1.sets, "sets_after_rerun": inv2.sets,
                "rerun_seconds": round(proc2.seconds, 2)}, "")
    row["command"] += ("  [Ctrl-C at the first file in out/, then rerun]"
                       if case.mode == "sigint_write" else
                       "  [Ctrl-C at the first output, then rerun]")
    row["exit"] = f"{rc} / {proc2.rc}"
    row["outputs"] = (f"after Ctrl-C: {_outputs_cell(inv1, required)}; "
                      f"after rerun: {_outputs_cell(inv2, required)}")
    return row


# ------------------------------------------------------------------ main
def select(names: list[str] | None) -> list[Case]:
    if not names:
        return list(CASES)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown case(s): {', '.join(unknown)} (see --list)")
    picked = {n for n in names}
    picked |= {BY_NAME[n].baseline for n in names if BY_NAME[n].baseline}
    return [c for c in CASES if c.name in picked]


def machine() -> dict:
    return machine_info(load_average_at_end=list(os.getloadavg()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="hypnoscope on damaged and unusual inputs")
    ap.add_argument("--workdir", default=None,
                    help="corpus and run folders (default: $TMPDIR/hypnoscope-bad-inputs)")
    ap.add_argument("--cases", nargs="+", metavar="NAME",
                    help="run only these cases (and the clean nights they compare with)")
    ap.add_argument("--fresh", action="store_true", help="regenerate the corpus")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--attempts", type=int, default=None, metavar="N",
                    help="attempts of the racy Ctrl-C cases (those with repeat > 1 in "
                         "cases.py; default: their repeat)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="cases run at a time after the clean nights (default 1; more "
                         "makes the seconds column noisier)")
    args = ap.parse_args(argv)
    if args.list:
        for c in CASES:
            print(f"{c.name:<28} {c.group:<18} {c.feeds}")
        return 0
    t_start = time.perf_counter()
    workdir = Path(args.workdir or Path(tempfile.gettempdir()) / "hypnoscope-bad-inputs")
    workdir = workdir.resolve()
    (workdir / "corpus").mkdir(parents=True, exist_ok=True)
    cases = select(args.cases)
    if args.attempts:
        cases = [dataclasses.replace(c, repeat=args.attempts) if c.repeat > 1 else c
                 for c in cases]
    t0 = time.perf_counter()
    facts = {}
    for c in cases:
        facts[c.name] = generate(c, workdir / "corpus", args.fresh)
    t_corpus = time.perf_counter() - t0
    print(f"corpus of {len(cases)} cases ready in {workdir / 'corpus'} ({t_corpus:.0f} s)",
          flush=True)
    done: dict[str, dict] = {}

    def one(c: Case) -> dict:
        try:
            row = run_case(c, workdir, facts[c.name], done)
        except Exception as exc:  # noqa: BLE001 - a runner bug is a row, not a lost run
            import traceback

            traceback.print_exc()
            row = {"case": c.name, "group": c.group, "command": display(c), "exit": None,
                   "seconds": 0.0, "message": "", "first_stderr_line": "", "stderr_head": [],
                   "traceback": False, "raw_warning": False, "outputs": "", "accuracy": "",
                   "metrics": {}, "verdict": "FAIL",
                   "reasons": [f"benchmark runner error: {type(exc).__name__}: {exc}"]}
        done[c.name] = row
        why = f": {'; '.join(row['reasons'])}" if row["reasons"] else ""
        print(f"[{len(done):2d}/{len(cases)}] {c.name:<28} exit {str(row['exit']):<6} "
              f"{row['seconds']:6.1f} s  {row['verdict']}{why}", flush=True)
        return row

    baselines = {c.baseline for c in cases if c.baseline}
    for c in cases:  # the clean nights first: the accuracy rows compare with them
        if c.name in baselines:
            one(c)
    rest = [c for c in cases if c.name not in baselines]
    if args.jobs > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(one, rest))
    else:
        for c in rest:
            one(c)
    rows = [done[c.name] for c in cases]
    for r in rows:
        r.pop("_run", None)
    n_pass = sum(r["verdict"] == "PASS" for r in rows)
    full = not args.cases
    meta = {
        "benchmark": "bad_inputs",
        "command": command_line("benchmarks.bad_inputs.run", argv),
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "machine": machine(),
        "config": {"jobs": args.jobs,
                   "sigint_attempts": {c.name: c.repeat for c in cases if c.repeat > 1},
                   "hypnoscope_version": _version(),
                   "generator_version": corpus.GENERATOR_VERSION, "workdir": str(workdir),
                   "accuracy_points": 100 * ACCURACY_POINTS,
                   "flagged_fraction": FLAGGED_FRACTION, "confident": CONFIDENT,
                   "env": {"HYPNOSCOPE_PROGRESS": "0", "MPLBACKEND": "Agg",
                           "HYPNOSCOPE_CACHE": "<run folder>/cache"},
                   "cases": {c.name: {"group": c.group, "feeds": c.feeds,
                                      "expect": c.expect, "match": list(c.match),
                                      "issue": c.issue, "baseline": c.baseline,
                                      "bad_epochs": c.bad, "build": c.build.spec}
                             for c in cases}},
        "seconds": {"corpus": round(t_corpus, 1),
                    "total": round(time.perf_counter() - t_start, 1)},
        "summary": {"cases": len(rows), "pass": n_pass, "fail": len(rows) - n_pass},
        "results": rows,
    }
    md = to_markdown(meta, cases)
    dest = RESULTS if full else workdir
    stem = "bad_inputs" if full else "results"
    dest.mkdir(parents=True, exist_ok=True)
    from hypnoscope.utils.files import write_json_atomic, write_text_atomic

    write_json_atomic(dest / f"{stem}.json", meta)
    write_text_atomic(dest / f"{stem}.md", md)
    print(f"\n{n_pass} PASS, {len(rows) - n_pass} FAIL of {len(rows)} cases in "
          f"{meta['seconds']['total']:.0f} s; results in {dest / stem}.md/.json")
    return 0


def _version() -> str:
    try:
        from hypnoscope import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return "?"


def _cell(x: Any, width: int | None = None) -> str:
    s = str(x if x is not None else "").replace("|", "\\|").replace("\n", " ")
    return s if width is None or len(s) <= width else s[: width - 1] + "…"


def to_markdown(meta: dict, cases: list[Case]) -> str:
    s = meta["summary"]
    lines = [
        "# Bad inputs: damaged, unusual and mismatched recordings through the CLI",
        "",
        f"Command: `{meta['command'].strip()}`  ",
        f"Date: {meta['date']}  ",
        f"Machine: {meta['machine']['platform']}, {meta['machine']['cpu_count']} CPUs, "
        f"Python {meta['machine']['python']}; hypnoscope {meta['config']['hypnoscope_version']}"
        f"  ",
        f"Time: {meta['seconds']['total']:.0f} s in all ({meta['seconds']['corpus']:.0f} s "
        "generating or checking the corpus)",
        "",
        f"**{s['pass']} PASS, {s['fail']} FAIL** of {s['cases']} cases.",
        "",
        "Every input is generated by `benchmarks/bad_inputs/corpus.py` from **simulated** "
        "nights (`hypnoscope.simulate`, Sleep-EDF channel layout) whose true hypnogram is "
        "known; accuracy here checks how the pipeline handles bad input, not clinical "
        "accuracy. Each case runs `python -m hypnoscope ...` in a subprocess in a fresh "
        "folder (`in/` = a copy of the case's inputs), with `HYPNOSCOPE_PROGRESS=0`; the "
        "NaN case calls the Python API (EDF cannot store NaN). Target (issue 11): no "
        "traceback, no silent wrong answer, no partial output set, clean-hour accuracy "
        "within 2 points of the clean night; plus each case's expectation (definitions "
        "below). *Accuracy*: against the simulated truth, on the epochs outside the defect, "
        "compared with the clean night on the same epochs; *flagged*: defective epochs "
        "unscored or marked by a quality column of the TSV.",
        "",
        "| case | command | exit | s | message (error line, else first line of stderr) "
        "| traceback | outputs "
        "| accuracy | verdict |",
        "|---|---|---|---:|---|---|---|---|---|",
    ]
    for r in meta["results"]:
        verdict = "PASS" if r["verdict"] == "PASS" else "**FAIL**: " + "; ".join(r["reasons"])
        lines.append(
            f"| {r['case']} | `{_cell(r['command'], 160)}` | {r['exit']} | {r['seconds']:.1f} | "
            f"{_cell(r['message'], 160)} | {'yes' if r['traceback'] else 'no'} | "
            f"{_cell(r['outputs'], 200)} | {_cell(r['accuracy'])} | {_cell(verdict, 400)} |")
    lines += ["", "## Case definitions", "",
              "| case | group | feeds | expected | issue 11 measured |", "|---|---|---|---|---|"]
    for c in cases:
        exp = c.expect + (f"; message/warning matches {', '.join(f'`{m}`' for m in c.match)}"
                          if c.match else "")
        if c.baseline:
            exp += f"; accuracy vs {c.baseline}"
        if c.bad:
            exp += f"; epochs {c.bad[0]}-{c.bad[1]} flagged"
        lines.append(f"| {c.name} | {c.group} | {_cell(c.feeds)} | {_cell(exp)} | "
                     f"{_cell(c.issue)} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
