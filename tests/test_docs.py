"""The documentation tells the truth: its numbers, Python names and commands.

- every results table of ``README.md`` and ``docs/*.md`` (a block between
  ``<!-- results:NAME -->`` and ``<!-- /results -->``) is exactly what ``docs/gen_results.py``
  renders from ``benchmarks/results`` (run ``python docs/gen_results.py`` after a benchmark);
- every ``hypnoscope.x.y`` name they mention can be imported;
- every ``hypnoscope COMMAND --option`` they show is a command with that option.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _gen_results():
    spec = importlib.util.spec_from_file_location("gen_results", ROOT / "docs" / "gen_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_results", module)
    spec.loader.exec_module(module)
    return module


gen = _gen_results()
DOCUMENTS = gen.documents()
TEXTS = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in DOCUMENTS}


def test_documents_are_found():
    assert "README.md" in TEXTS
    assert {"docs/results.md", "docs/papers.md", "docs/architecture.md"} <= set(TEXTS)


@pytest.mark.parametrize("doc", sorted(TEXTS))
def test_results_tables_match_their_results_files(doc):
    for name, body in gen.blocks(TEXTS[doc]):
        expected = gen.render(name)
        assert not gen.differs(name, body), (
            f"{doc}: the results block {name!r} differs from what its results file gives; "
            f"run `python docs/gen_results.py` (never edit the numbers by hand)\n"
            f"in the document:\n{body}\nfrom the results file:\n{expected}")


def test_every_renderer_has_a_block_and_every_marker_is_closed():
    used = {name for text in TEXTS.values() for name, _ in gen.blocks(text)}
    assert used == set(gen.RENDERERS), f"renderers without a block: {set(gen.RENDERERS) - used}"
    for doc, text in TEXTS.items():
        assert text.count("<!-- results:") == text.count("<!-- /results -->"), doc


def test_a_changed_number_is_caught(tmp_path):
    text = TEXTS["docs/results.md"]
    name, body = next((n, b) for n, b in gen.blocks(text) if n == "real_features")
    changed = body.replace("0.820", "0.821", 1)
    assert changed != body
    path = tmp_path / "page.md"
    path.write_text(f"<!-- results:{name} -->\n{changed}<!-- /results -->\n", encoding="utf-8")
    assert gen.stale(path) == [name]
    # a block rendered from the code is checked on its names: a docstring edit passes
    steps = gen.render("staging_steps")
    edited = steps.replace("Read the recording", "Reads the recording")
    assert edited != steps and not gen.differs("staging_steps", edited)
    assert gen.differs("staging_steps", steps.replace("`_read`", "`_load`"))
    path.write_text(gen.rendered(path.read_text(encoding="utf-8")), encoding="utf-8")
    assert gen.stale(path) == []


def test_numbers_without_a_results_file_are_gone():
    # the noisy-hour accuracy and the vote's timing had no committed output behind them
    # (the blocks rendered from results files may hold the same digits for other numbers)
    for doc, text in TEXTS.items():
        text = gen.BLOCK.sub("", text)
        assert "0.844" not in text, doc
        assert "2.39 s" not in text, doc


def test_no_old_flat_module_names():
    text = "\n".join(TEXTS.values())
    for old in ("staging.py", "`io.py`", "preprocessing.py", "evaluation.py", "training.py"):
        assert old not in text, old


NAME = re.compile(r"\bhypnoscope(?:\.[A-Za-z_]\w*)+")
#: Dotted names in the documents that are not Python names: the entry-point group of
#: plug-in stagers (hypnoscope.models.plugins.STAGER_GROUP).
NOT_PYTHON_NAMES = {"hypnoscope.stagers"}


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the module exists but an import inside it fails
                raise
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


#: ``staging.batch``-style names (a subpackage, then more) in inline code, read as hypnoscope's
SHORT_NAME = re.compile(r"`((?:cli|live|staging|models|training|viz|evaluation|signal|simulate"
                        r"|io|utils)(?:\.[A-Za-z_]\w*)+)`")


def test_python_names_in_the_documents_exist():
    names = {m.group(0) for text in TEXTS.values() for m in NAME.finditer(text)}
    names |= {f"hypnoscope.{m.group(1)}" for text in TEXTS.values()
              for m in SHORT_NAME.finditer(text)}
    assert "hypnoscope.sleep_statistics" in names
    missing = sorted(n for n in names - NOT_PYTHON_NAMES if not _resolves(n))
    assert not missing, f"names in README.md/docs that do not import: {missing}"


def _command_lines(text: str) -> list[str]:
    """Every ``hypnoscope COMMAND ...`` the text shows (code blocks and inline code)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found, fenced = [], False
    for line in joined.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        start = r"(?:^|\$ |-m )" if fenced else r"(?:`|`\$ )"
        found += re.findall(start + r"hypnoscope ([a-z]+(?=[\s`]|$)[^`\n]*)", line.strip())
    return found


def test_commands_and_options_in_the_documents_exist():
    from hypnoscope.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    commands = sub.choices
    checked, bad = 0, []
    for doc, text in TEXTS.items():
        for line in _command_lines(text):
            command = line.split()[0]
            if command not in commands:
                bad.append(f"{doc}: `hypnoscope {line}`: no command {command!r}")
                continue
            options = commands[command]._option_string_actions
            for opt in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line.split("#")[0]):
                checked += 1
                if opt not in options:
                    bad.append(f"{doc}: `hypnoscope {line}`: {command} has no option {opt}")
    assert checked > 50
    assert not bad, "\n".join(bad)


def test_the_site_builds_strictly(tmp_path):
    """``mkdocs build --strict`` (what ``make docs`` runs): no broken link or anchor."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    import os
    import subprocess

    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "architecture" / "index.html").exists()


def test_benchmark_commands_and_files_in_the_documents_exist():
    """``python -m benchmarks.x.y`` and ``benchmarks/x/y.py``, ``scripts/z.py`` name real files."""
    text = "\n".join(TEXTS.values())
    modules = set(re.findall(r"python\s+-m\s+(benchmarks(?:\.\w+)+)", text))
    files = set(re.findall(r"\b((?:benchmarks|scripts)/[\w/]+\.py)\b", text))
    assert len(modules) > 10
    missing = [m for m in modules if not (ROOT / (m.replace(".", "/") + ".py")).exists()]
    missing += [f for f in files if not (ROOT / f).exists()]
    assert not missing, f"README.md/docs name benchmark files that do not exist: {missing}"
