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
    "assert type(model).__name__ == 'LengthGatedModel'\n"
    "assert {type(m).__name__ for m in model.members_} == {'FeatureStagingModel'}",
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
        "from hypnoscope.staging.outputs import stage_file\n"
        f"row = stage_file({str(psg)!r}, {str(tmp_path / 'out')!r})\n"
        "assert sorted(row['outputs']) == ['edf', 'html', 'json', 'png', 'tsv']")
    assert "matplotlib.figure" in modules and "matplotlib.backends.backend_agg" in modules
    assert sorted(m for m in modules if m.startswith("matplotlib.pyplot")) == []
    assert [m for m in _heavy(modules) if m.split(".")[0] in ("torch", "dask", "distributed",
                                                             "numba")] == []
    assert (tmp_path / "out" / "SC4991E0.hypnogram.png").read_bytes()[:4] == b"\x89PNG"


#: Run first in a probe: PyTorch is not installed, as far as this interpreter knows.
_NO_TORCH = "import sys\nsys.modules['torch'] = None\n"


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _NO_TORCH + code], capture_output=True,
                          text=True, timeout=300)


def test_without_torch_a_deep_model_names_the_extra(tmp_path):
    """Without PyTorch, asking for a deep model (by name, as a model file, or on the
    command line) is a one-line error that names ``pip install 'hypnoscope[deep]'``;
    the feature models are built as usual."""
    from hypnoscope.models import make_model

    deep_file = make_model("cnn").save(tmp_path / "cnn.joblib")
    code = f"""
from hypnoscope.models import MissingExtraError, load_model, make_model
from hypnoscope.cli import main
assert make_model("lightgbm-context").name == "lightgbm-context"
for call in (lambda: make_model("mc2sleepnet"), lambda: load_model({str(deep_file)!r})):
    try:
        call()
    except MissingExtraError as exc:
        print("ERROR:", exc)
    else:
        raise AssertionError("no error")
rc = main(["train", "--model", "ssnet", "--features", {str(tmp_path)!r}, "--out",
           {str(tmp_path / "m.joblib")!r}])
print("RC:", rc)
"""
    proc = _run_without_torch(code)
    assert proc.returncode == 0, proc.stderr
    errors = [x for x in proc.stdout.splitlines() if x.startswith("ERROR:")]
    assert errors[0] == ("ERROR: model 'mc2sleepnet' needs PyTorch: "
                         "pip install 'hypnoscope[deep]'")
    assert errors[1].endswith("cnn.joblib: a deep model, which needs PyTorch: "
                              "pip install 'hypnoscope[deep]'")
    assert "RC: 2" in proc.stdout
    assert proc.stderr.strip() == ("hypnoscope train: error: model 'ssnet' needs PyTorch: "
                                   "pip install 'hypnoscope[deep]'")


def test_staging_with_the_shipped_models_needs_no_torch(tmp_path):
    """The default install (no PyTorch) loads every shipped model and stages a
    recording with the default one."""
    from conftest import write_psg_edf

    psg = write_psg_edf(tmp_path / "SC4991E0-PSG.edf", duration_sec=300.0, seed=4)
    proc = _run_without_torch(
        "from hypnoscope.models.storage import load_staging_model, shipped_models\n"
        "from hypnoscope.staging.outputs import stage_file\n"
        "names = list(shipped_models())\n"
        "assert 'default' in names and len(names) >= 2, names\n"
        "for name in names:\n"
        "    load_staging_model(name)\n"
        f"row = stage_file({str(psg)!r}, {str(tmp_path / 'out')!r})\n"
        "print('OUTPUTS', sorted(row['outputs']))\n")
    assert proc.returncode == 0, proc.stderr
    assert "OUTPUTS ['edf', 'html', 'json', 'png', 'tsv']" in proc.stdout
