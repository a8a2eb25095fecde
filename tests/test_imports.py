"""Import laziness: ``import hypnoscope``, ``hypnoscope --help`` (and a sub-command's
help) and loading the shipped model import no PyTorch, scikit-learn, LightGBM,
Matplotlib, Dask or MNE, each checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Packages that only the commands needing them may import.
HEAVY = ("torch", "sklearn", "mne", "lightgbm", "matplotlib", "distributed", "dask", "numba")

_PROBE = """
import json, sys
{code}
print("MODULES=" + json.dumps(sorted(sys.modules)))
"""


def _modules_after(code: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(code=code)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = [x for x in proc.stdout.splitlines() if x.startswith("MODULES=")][-1]
    return set(json.loads(line[len("MODULES="):]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


HELP = """
from hypnoscope.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    assert exc.code == 0, exc.code
"""


@pytest.mark.parametrize("code", [
    "import hypnoscope",
    HELP.format(argv=["--help"]),
    HELP.format(argv=["stage", "--help"]),
    HELP.format(argv=["train", "--help"]),
    "from hypnoscope.models.storage import load_staging_model\n"
    "model, card = load_staging_model('default')\n"
    "assert type(model).__name__ == 'FeatureStagingModel'",
], ids=["import", "help", "stage-help", "train-help", "load-default-model"])
def test_no_heavy_imports(code):
    modules = _modules_after(code)
    assert "hypnoscope" in modules
    assert _heavy(modules) == []


def test_import_hypnoscope_needs_numpy_only():
    """``import hypnoscope`` (``stage``, ``Hypnogram``, ``read_hypnogram``): no SciPy or
    pandas either; they come when a hypnogram is read or a recording staged."""
    modules = _modules_after("import hypnoscope")
    assert "numpy" in modules
    assert sorted(m for m in modules if m.split(".")[0] in ("scipy", "pandas")) == []


def test_staging_a_file_draws_without_pyplot(tmp_path):
    """``stage_file`` (every output: TSV, EDF+, report, PNG) renders its one figure on a
    plain ``matplotlib.figure.Figure``: no pyplot, no interactive backend, no PyTorch
    or Dask."""
    from conftest import write_psg_edf

    psg = write_psg_edf(tmp_path / "SC4991E0-PSG.edf", duration_sec=300.0, seed=4)
    modules = _modules_after(
        "from hypnoscope.staging.pipeline import stage_file\n"
        f"row = stage_file({str(psg)!r}, {str(tmp_path / 'out')!r})\n"
        "assert sorted(row['outputs']) == ['edf', 'html', 'json', 'png', 'tsv']")
    assert "matplotlib.figure" in modules and "matplotlib.backends.backend_agg" in modules
    assert sorted(m for m in modules if m.startswith("matplotlib.pyplot")) == []
    assert [m for m in _heavy(modules) if m.split(".")[0] in ("torch", "dask", "distributed",
                                                             "numba")] == []
    assert (tmp_path / "out" / "SC4991E0.hypnogram.png").read_bytes()[:4] == b"\x89PNG"
