"""Run the README's code blocks as a user would, and rewrite its transcripts from fresh output.

Every fenced code block of ``README.md`` follows a marker that says how it is tested
(``tests/test_readme.py`` runs them all):

- ``<!-- readme-test: transcript NAME -->`` before a ``console`` block (or before the demo's
  results block): each ``$ `` line is a command, run with ``bash`` in the session folder; the
  lines after it, up to the next ``$ ``, are what it prints (stdout and stderr together, in
  the order a terminal shows them), compared after :func:`normalise`;
- ``<!-- readme-test: python NAME -->``: the block is run with ``exec`` in the session folder;
- ``<!-- readme-test: run NAME -->``: each command of a ``bash`` block is run in the session
  folder and must exit 0 (its output is not shown in the README);
- ``<!-- readme-test: parse NAME (WHY) -->``: the commands cannot run here (WHY: they need a
  network, an NSRR account, a cluster or your own recordings); each ``hypnoscope`` command
  (also after ``torchrun ... -m``) must be accepted by the command-line parser, each ``make``
  target must exist in the Makefile, each ``python FILE`` and ``python -m MODULE`` must exist.

The blocks run in README order in one fresh folder, the *session*, as a user who follows
the README in the repository root: the demo's ``hypnoscope demo`` writes ``hypnoscope-demo/``
(what ``make demo`` writes), and later blocks read it. ``hypnoscope`` and ``python`` are those
of the running interpreter's environment (first on ``PATH``, as after ``. .venv/bin/activate``,
which lines in run blocks therefore skip). Progress bars are drawn on a terminal only, so no
transcript has them.

Normalisation (:func:`normalise`, applied to both sides): a duration printed in seconds
(``(1.9 s)``, ``in 1.3 s``) becomes ``<t> s``; the session folder's absolute path becomes
``.``; trailing spaces and trailing blank lines are dropped. Nothing else: every count,
statistic and agreement is compared exactly.

``python docs/readme_transcripts.py`` runs the session and rewrites each transcript of
README.md whose output differs with the fresh output (a command whose output reproduces keeps
its text, unless ``--all``; the demo's goes to ``benchmarks/results/demo_output.txt``,
rendered into the README by ``docs/gen_results.py``); ``--check`` only reports the
differences (exit 1 when there are any).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEMO_OUTPUT = ROOT / "benchmarks" / "results" / "demo_output.txt"

KINDS = ("transcript", "python", "run", "parse")
MARKER = re.compile(r"<!-- readme-test: (?P<kind>\w+) (?P<name>[\w-]+)(?: \((?P<why>[^)]*)\))? -->"
                    r"\n(?P<results><!-- results:[\w-]+ -->\n)?"
                    r"```(?P<lang>\w*)\n(?P<body>.*?)^```", re.S | re.M)
FENCE = re.compile(r"^```(\w*)\n.*?^```", re.S | re.M)
#: a duration in seconds as the commands print it: ``(1.9 s)``, ``in 1.3 s``, ``12 s``
SECONDS = re.compile(r"(?<![\w.-])\d+(?:\.\d+)? s\b")
#: programs of parse blocks that are not hypnoscope's and are not checked (why)
EXTERNAL = {"dask": "Dask's own command line", "export": "a shell builtin",
            ".": "a shell builtin"}


@dataclass
class Block:
    """One marked code block of the README."""

    kind: str
    name: str
    why: str | None
    lang: str
    body: str
    line: int
    span: tuple[int, int]  # of ``body`` in the text


@dataclass
class Step:
    """One command of a transcript or run block: what the README shows and what it gave."""

    command: str
    expected: str
    output: str = ""
    returncode: int | None = None


@dataclass
class Outcome:
    """What running one block gave: its steps, or the namespace of a Python block."""

    block: Block
    steps: list[Step] = field(default_factory=list)
    namespace: dict = field(default_factory=dict)
    error: str | None = None


def blocks(text: str) -> list[Block]:
    """The marked code blocks of ``text``, in order."""
    found = []
    for m in MARKER.finditer(text):
        if m["kind"] not in KINDS:
            raise ValueError(f"README.md line {text.count(chr(10), 0, m.start()) + 1}: unknown "
                             f"readme-test kind {m['kind']!r}; expected one of {KINDS}")
        found.append(Block(m["kind"], m["name"], m["why"], m["lang"], m["body"],
                           text.count("\n", 0, m.start("body")) + 1, m.span("body")))
    return found


def unmarked_blocks(text: str) -> list[int]:
    """Line numbers of the fenced code blocks of ``text`` that no marker governs."""
    marked = {b.line for b in blocks(text)}
    return [text.count("\n", 0, m.start()) + 2 for m in FENCE.finditer(text)
            if text.count("\n", 0, m.start()) + 2 not in marked]


def transcript_steps(body: str) -> list[Step]:
    """The commands of a transcript (``$ `` lines) with the output shown after each."""
    steps: list[Step] = []
    for line in body.rstrip("\n").split("\n"):
        if line.startswith("$ "):
            steps.append(Step(line[2:], ""))
        elif not steps:
            raise ValueError(f"a transcript starts with output, not a '$ ' command: {line!r}")
        else:
            steps[-1].expected += line + "\n"
    return steps


def command_lines(body: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks left out."""
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = [shlex.join(shlex.split(line, comments=True)) for line in joined.split("\n")]
    return [line for line in lines if line]


def normalise(text: str, folder: str | os.PathLike | None = None) -> str:
    """``text`` with durations in seconds as ``<t> s``, ``folder`` as ``.``, no trailing
    spaces and no trailing blank lines."""
    if folder is not None:
        text = text.replace(str(folder), ".")
    text = SECONDS.sub("<t> s", text)
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n")


def session_env() -> dict[str, str]:
    """The environment of the commands: this interpreter's ``bin`` first on ``PATH``."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(MPLBACKEND="Agg", HYPNOSCOPE_PROGRESS="0", PYTHONUNBUFFERED="1")
    return env


def run_command(command: str, folder: Path, timeout: float = 300.0) -> tuple[int, str]:
    """Run ``command`` with bash in ``folder``; its exit code and its stdout + stderr."""
    done = subprocess.run(["bash", "-c", command], cwd=folder, env=session_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    return done.returncode, done.stdout


def _exec_python(block: Block, folder: Path) -> Outcome:
    """Run a Python block in ``folder`` (``exec``); its namespace, or the traceback."""
    outcome = Outcome(block)
    here = Path.cwd()
    os.chdir(folder)
    try:
        exec(compile(block.body, f"README.md (block at line {block.line})", "exec"),
             outcome.namespace)
    except Exception:  # reported by the test, with the traceback
        outcome.error = traceback.format_exc()
    finally:
        os.chdir(here)
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
    return outcome


def run_block(block: Block, folder: Path) -> Outcome:
    """Run one block in the session ``folder`` (parse blocks are checked by
    :func:`parse_problems`, not run)."""
    if block.kind == "python":
        return _exec_python(block, folder)
    outcome = Outcome(block)
    if block.kind == "transcript":
        outcome.steps = transcript_steps(block.body)
    elif block.kind == "run":
        outcome.steps = [Step(c, "") for c in command_lines(block.body)
                         if not re.fullmatch(r"(\.|source) \S*activate", c)]
    for step in outcome.steps:
        step.returncode, step.output = run_command(step.command, folder)
    return outcome


def run_session(text: str, folder: Path) -> list[Outcome]:
    """Run every block of ``text`` that runs, in order, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return [run_block(b, folder) for b in blocks(text) if b.kind != "parse"]


def differences(outcome: Outcome, folder: Path | None = None) -> list[str]:
    """What differs between a transcript block and its fresh output (a unified diff per
    command), or which commands of a run block failed; empty when it reproduces."""
    found = []
    for step in outcome.steps:
        if outcome.block.kind == "run":
            if step.returncode != 0:
                found.append(f"$ {step.command}\nexit code {step.returncode}:\n{step.output}")
            continue
        want, got = normalise(step.expected), normalise(step.output, folder)
        if want != got or step.returncode != 0:
            diff = "\n".join(difflib.unified_diff(want.split("\n"), got.split("\n"),
                                                  "README", "fresh output", lineterm=""))
            found.append(f"$ {step.command}\n(exit code {step.returncode})\n{diff}")
    return found


def _parse_hypnoscope(args: list[str]) -> str | None:
    """Why the command-line parser refuses ``hypnoscope ARGS``, or ``None``."""
    from hypnoscope.cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(args)
    except SystemExit as exc:
        return err.getvalue().strip().split("\n")[-1] or f"exit {exc.code}"
    return None


def _module_exists(module: str) -> bool:
    """``python -m MODULE`` names a module (``<name>`` stands for any one folder)."""
    if "<" in module:
        pattern = re.sub(r"<[^>]*>", "*", module).replace(".", "/")
        return any(ROOT.glob(pattern + ".py")) or any(ROOT.glob(pattern + "/__main__.py"))
    path = ROOT / module.replace(".", "/")
    if (ROOT / module.split(".")[0]).is_dir():  # the repository's own (benchmarks ...)
        return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([\w-]+):", text, re.M))


def parse_problems(block: Block) -> list[str]:
    """Why commands of a parse block would not run as written (empty when all are right)."""
    problems = []
    for line in command_lines(block.body):
        words = shlex.split(line)
        program, why = words[0], None
        if re.fullmatch(r"\w+=.*", program) or program in EXTERNAL:
            continue
        if program == "torchrun" and "-m" in words:
            program, words = "hypnoscope", words[words.index("-m") + 1:]
        if program == "hypnoscope":
            why = _parse_hypnoscope(words[1:])
        elif program == "make":
            missing = set(words[1:]) - _make_targets()
            why = f"no Makefile target {sorted(missing)}" if missing else None
        elif program == "python" and words[1:2] == ["-m"]:
            why = None if _module_exists(words[2]) else f"no module {words[2]}"
        elif program == "python":
            why = None if (ROOT / words[1]).is_file() else f"no file {words[1]}"
        else:
            why = f"program {program!r} is not checked (add it to EXTERNAL, with why)"
        if why:
            problems.append(f"README.md block {block.name!r}: `{line}`: {why}")
    return problems


def _fresh_body(outcome: Outcome, folder: Path, keep: bool = True) -> str:
    """The transcript's text with each command's fresh output; with ``keep``, a command whose
    output reproduces keeps the README's text (its durations do not churn with the load)."""
    text = ""
    for step in outcome.steps:
        if keep and normalise(step.expected) == normalise(step.output, folder):
            text += f"$ {step.command}\n{step.expected}"
            continue
        out = "\n".join(line.rstrip() for line in step.output.replace(str(folder), ".")
                        .split("\n")).rstrip("\n")
        text += f"$ {step.command}\n" + (out + "\n" if out else "")
    return text


def rewrite(text: str, outcomes: list[Outcome], folder: Path, keep: bool = True) -> str:
    """``text`` with every transcript replaced by its fresh output (``keep``: a command's
    text is kept where its output reproduces); the demo's (a results block) is written to
    ``benchmarks/results/demo_output.txt`` and rendered from it.

    Blocks are found by name in ``text`` (the README as it is now: others may have edited it
    while the session ran); a transcript whose commands changed meanwhile is left as it is.
    """
    now = {b.name: b for b in blocks(text)}
    demo = False
    for outcome in sorted(outcomes, key=lambda o: -now[o.block.name].span[0]
                          if o.block.name in now else 0):
        block = now.get(outcome.block.name)
        if outcome.block.kind != "transcript" or block is None or block.body != outcome.block.body:
            continue
        body = _fresh_body(outcome, folder, keep)
        if block.name == "demo":
            DEMO_OUTPUT.write_text(body, encoding="utf-8")
            demo = True
            continue
        text = text[:block.span[0]] + body + text[block.span[1]:]
    if demo:
        spec = importlib.util.spec_from_file_location("gen_results",
                                                      ROOT / "docs" / "gen_results.py")
        gen = importlib.util.module_from_spec(spec)
        sys.modules.setdefault("gen_results", gen)
        spec.loader.exec_module(gen)
        text = gen.BLOCK.sub(lambda m: m.group(1) + gen.render("demo_output") + m.group(4)
                             if m["name"] == "demo_output" else m.group(0), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true",
                        help="rewrite every transcript with its fresh output, also those that "
                             "reproduce (new durations)")
    parser.add_argument("--check", action="store_true",
                        help="report the transcripts that differ from fresh output; exit 1 "
                             "if any (README.md is not changed)")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    problems = [p for b in blocks(text) if b.kind == "parse" for p in parse_problems(b)]
    problems += [f"README.md line {n}: a code block without a readme-test marker"
                 for n in unmarked_blocks(text)]
    with tempfile.TemporaryDirectory(prefix="readme-session-") as tmp:
        folder = Path(tmp).resolve()
        outcomes = run_session(text, folder)
        for outcome in outcomes:
            if outcome.error:
                problems.append(f"block {outcome.block.name!r}:\n{outcome.error}")
            elif outcome.block.kind == "run" or args.check:
                problems += [f"block {outcome.block.name!r}:\n{d}"
                             for d in differences(outcome, folder)]
        if not args.check:
            now = README.read_text(encoding="utf-8")  # as others may have edited it meanwhile
            new = rewrite(now, outcomes, folder, keep=not args.all)
            if new != now:
                README.write_text(new, encoding="utf-8")
                print("README.md: transcripts rewritten from fresh output")
    print("\n\n".join(problems) if problems else "README.md: every block reproduces")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
