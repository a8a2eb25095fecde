"""Deep staging models as ONNX files: export with PyTorch, stage with onnxruntime only.

:func:`export_onnx` turns any fitted :class:`~hypnoscope.models.deep.DeepStagingModel`
whose :meth:`~hypnoscope.models.deep.DeepStagingModel.forward` is traceable (SSNet,
ssnet-hier, MSMAE-CNN, the plain CNN, and deep models added later on the same base) into
one ``.onnx`` file: a graph with one input per view the network reads (``(B, L, ...)``
float32, ``L`` the window length, the batch dimension dynamic) plus the window ``mask``
``(B, L)`` where the network reads it, and one softmax output ``proba_<task>`` per task
(``(B, C)`` for many-to-one, ``(B, L, C)`` for many-to-many windows).

Everything else staging needs is stored in the file's ``metadata_props`` under the key
``hypnoscope`` (JSON): the model name, classes, tasks and their merge rule, the window
settings (``seq_len``, ``mode``, inference stride, per-night normalisation, views), the
input layout (kind, channels, roles, per-epoch shape, sampling rate, preprocessing) --
the whole training ``metadata`` of the model -- and its model card.

:class:`OnnxStagingModel` reads such a file with onnxruntime and stages nights through
:class:`~hypnoscope.models.windowed.WindowedStagingModel` -- the same views, windows,
normalisation and window averaging as the PyTorch model, NumPy only -- so that
``hypnoscope stage --model model.onnx`` runs where PyTorch is not installed. A file is
loaded like any model: this module registers :func:`load_onnx_model` as the reader of
``.onnx`` files (:func:`hypnoscope.models.storage.register_model_loader`), which
:func:`hypnoscope.models.storage.load_staging_model` dispatches to.

Soft-voting ensembles (``msmae-cnn-rf``: MSMAE-CNN + a scikit-learn Random Forest) are not
exported: the Random Forest is not a network and there is no onnxruntime operator set in
this project's dependencies for it. :func:`export_onnx` refuses them with a message; with
``member=i`` it exports the deep member ``i`` alone (without the vote), and the ensemble
itself stays a ``.joblib`` model.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.models.base import DEEP_EXTRA, MissingExtraError, is_torch_missing
from hypnoscope.models.storage import load_staging_model, register_model_loader
from hypnoscope.models.windowed import WindowedStagingModel
from hypnoscope.training.sequences import SequenceDataset
from hypnoscope.utils.files import atomic_path

#: ``metadata_props`` key of the hypnoscope description in an exported file.
META_KEY = "hypnoscope"
ONNX_FORMAT = "hypnoscope-onnx"
ONNX_FORMAT_VERSION = 1
#: ONNX operator set of exported graphs (TorchScript exporter; onnxruntime >= 1.16 runs it).
OPSET = 17
#: Largest difference of probabilities between PyTorch and onnxruntime that an export
#: accepts on its check windows.
EXPORT_TOLERANCE = 1e-4
ONNX_SUFFIX = ".onnx"


def _jsonable(obj: Any) -> Any:
    """``obj`` with NumPy scalars/arrays, tuples, paths and other leaves made JSON-able."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)


# ------------------------------------------------------------------ export (PyTorch)
def _import_torch():
    """``torch``, or a :class:`~hypnoscope.models.base.MissingExtraError` naming the
    extra that installs it."""
    try:
        import torch
    except ModuleNotFoundError as exc:
        if is_torch_missing(exc):
            raise MissingExtraError(f"exporting to ONNX needs PyTorch: {DEEP_EXTRA}") from None
        raise
    return torch


def _check_exportable(model, member: int | None):
    from hypnoscope.models.deep import DeepStagingModel

    members = getattr(model, "members", None)
    if members is not None:
        names = [getattr(m, "name", type(m).__name__) for m in members]
        if member is None:
            deep = [i for i, m in enumerate(members) if isinstance(m, DeepStagingModel)]
            raise ValueError(
                f"model {model.name!r} is a soft-voting ensemble of {names}; only PyTorch "
                f"networks export to ONNX, and its other members (e.g. a scikit-learn "
                f"Random Forest) do not. Export a deep member alone with member="
                f"{deep[0] if deep else 0} (--member; it stages without the vote) or keep "
                f"the ensemble as a .joblib model")
        if not 0 <= member < len(members):
            raise ValueError(f"member {member} does not exist: the ensemble has members "
                             f"0..{len(members) - 1} ({names})")
        model = members[member]
    elif member is not None:
        raise ValueError(f"member={member} applies to ensembles; model "
                         f"{getattr(model, 'name', type(model).__name__)!r} is not one")
    if not isinstance(model, DeepStagingModel):
        raise ValueError(
            f"model {getattr(model, 'name', type(model).__name__)!r} is not a deep (PyTorch) "
            "model; only deep models export to ONNX (feature models stage without PyTorch "
            "already)")
    if not model.nets:
        raise ValueError(f"model {model.name!r} is not fitted")
    if len(model.nets) > 1 and model.task_merge() is None:
        raise ValueError(f"model {model.name!r} has several tasks {sorted(model.nets)} and "
                         "no merge rule (task_merge) to combine them")
    return model


def _probe_night(model):
    """A night of noise in the model's training layout, with its views (for tracing)."""
    from hypnoscope.datasets import Night

    meta = model.metadata
    shape = meta.get("input_shape")
    if shape is None:
        raise ValueError(f"model {model.name!r} has no recorded input shape (metadata "
                         "'input_shape'); fit it with this version of hypnoscope")
    n = max(2 * int(model.config["seq_len"]), 8)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, *shape)).astype(np.float32)
    sfreq = (meta.get("training_data") or {}).get("sfreq") or (
        meta.get("preprocessing") or {}).get("sfreq")
    night = Night(X=X, y=np.full(n, -100), subject_id="probe", night_id="probe",
                  kind=model.input_kind, sfreq=None if sfreq is None else float(sfreq),
                  channels=list(meta.get("channels") or []),
                  roles=list(meta.get("roles") or []))
    saved = model.config.get("views_cache")
    model.config["views_cache"] = False
    try:
        model._with_views([night])
    finally:
        if saved is None:
            model.config.pop("views_cache", None)
        else:
            model.config["views_cache"] = saved
    return night


def _wrapper(model):
    import torch
    from torch import nn

    tasks = list(model.nets)
    views = list(model.input_views)
    many_to_one = model.config["mode"] == "many-to-one"

    class Exported(nn.Module):
        """All task networks of ``model`` behind ``forward(*views, mask)``."""

        def __init__(self) -> None:
            super().__init__()
            self.nets = nn.ModuleDict({t: model.nets[t] for t in tasks})

        def forward(self, *inputs):
            *xs, mask = inputs
            y = (torch.zeros(mask.shape[0], dtype=torch.long) if many_to_one
                 else torch.zeros(mask.shape, dtype=torch.long))
            batch = {"x": dict(zip(views, xs, strict=True)), "mask": mask, "y": y}
            out = []
            for t in tasks:
                logits = model.forward(self.nets[t], batch)
                if many_to_one and logits.ndim == 3:
                    logits = logits[:, -1]
                out.append(torch.softmax(logits.float(), -1))
            return tuple(out)

    return Exported().eval(), tasks, views


def _trace(wrapper, inputs, input_names, output_names, dynamic):
    """ONNX proto of ``wrapper`` traced on ``inputs`` (TorchScript exporter)."""
    import onnx
    import torch

    buf = io.BytesIO()
    torch.onnx.export(wrapper, tuple(inputs), buf, input_names=input_names,
                      output_names=output_names, dynamic_axes=dynamic, opset_version=OPSET,
                      dynamo=False, do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue())


def export_onnx(model, path: str | os.PathLike, member: int | None = None,
                card: dict[str, Any] | None = None, check: bool = True) -> Path:
    """Write a fitted deep model as an ``.onnx`` file that stages without PyTorch.

    Parameters
    ----------
    model : DeepStagingModel, SoftVotingEnsemble, path or shipped name
        The model (or a model file, loaded with
        :func:`~hypnoscope.models.storage.load_staging_model`).
    path : path
        Output file (written atomically).
    member : int, optional
        For an ensemble: export its deep member ``member`` alone.
    card : dict, optional
        Model card stored in the file (default: the model file's card, if any).
    check : bool
        Run the exported graph with onnxruntime on windows of a noise night and compare
        with PyTorch (raises if they differ by more than :data:`EXPORT_TOLERANCE`).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        Not a deep model, an ensemble without ``member``, an unfitted model, or an
        exported graph whose probabilities differ from PyTorch's.
    """
    torch = _import_torch()
    import onnx

    if not hasattr(model, "predict_proba"):
        model, file_card = load_staging_model(model)
        card = card if card is not None else file_card
    deep = _check_exportable(model, member)
    night = _probe_night(deep)
    ds = deep._dataset([night], None, training=False)
    items = np.arange(min(len(ds), 4))
    if len(items) < 2:
        items = np.array([0, 0])
    arrays = ds.gather(items)
    mask = ds.mask[items]
    wrapper, tasks, views = _wrapper(deep)
    inputs = [torch.from_numpy(arrays[v]) for v in views] + [torch.from_numpy(mask)]
    input_names = [*views, "mask"]
    output_names = [f"proba_{t}" for t in tasks]
    dynamic = {name: {0: "batch"} for name in input_names + output_names}
    # nn.MultiheadAttention's inference fast path is one fused operator that has no
    # ONNX form; the regular path computes the same attention
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the exporters' notes on tracing and constant folding are not the user's
            warnings.filterwarnings("ignore", module=r"torch(\.|$)")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            ref = [o.numpy() for o in wrapper(*inputs)]
            try:  # the TorchScript exporter: fast, no onnxscript needed
                exporter = "torch.onnx.export(dynamo=False)"
                proto = _trace(wrapper, inputs, input_names, output_names, dynamic)
            except torch.onnx.errors.OnnxExporterError as first:
                # an operator the TorchScript exporter cannot convert: the
                # torch.export-based exporter (needs onnxscript; slower)
                exporter = "torch.onnx.export(dynamo=True)"
                try:
                    import onnxscript  # noqa: F401
                except ImportError:
                    raise ValueError(
                        f"{deep.name!r}: the TorchScript ONNX exporter failed ({first}); "
                        "the dynamo exporter needs onnxscript (pip install "
                        "onnxscript)") from first
                batch = torch.export.Dim("batch", min=1)
                prog = torch.onnx.export(
                    wrapper, tuple(inputs), input_names=input_names,
                    output_names=output_names, dynamo=True, opset_version=18,
                    dynamic_shapes=(tuple({0: batch} for _ in inputs),), verbose=False,
                    report=False)
                proto = prog.model_proto
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    uses_mask = any(i.name == "mask" for i in proto.graph.input)
    config = {k: deep.config.get(k) for k in ("seq_len", "mode", "infer_stride", "normalize",
                                               "views", "preset")}
    description = {
        "format": ONNX_FORMAT, "format_version": ONNX_FORMAT_VERSION, "name": deep.name,
        "n_classes": deep.n_classes, "classes": list(deep.classes), "tasks": tasks,
        "task_outputs": {t: int(r.shape[-1]) for t, r in zip(tasks, ref, strict=True)},
        "merge": deep.task_merge(), "input_kind": deep.input_kind,
        "input_views": views,
        "inputs": {"views": views, "mask": uses_mask},
        "config": config, "metadata": deep.metadata,
        "card": card or {"name": deep.name},
        "exported": {"at": _dt.datetime.now().isoformat(timespec="seconds"),
                     "torch": torch.__version__, "onnx": onnx.__version__,
                     "opset": OPSET, "exporter": exporter,
                     "ensemble_member": member},
    }
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(_jsonable(description))
    proto.producer_name = "hypnoscope"
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    if check:
        got = OnnxStagingModel.from_bytes(data).run_windows(arrays, mask)
        for t, r in zip(tasks, ref, strict=True):
            diff = float(np.abs(got[t] - r).max())
            if not diff <= EXPORT_TOLERANCE:
                raise ValueError(f"the ONNX graph of {deep.name!r} (task {t}) differs from "
                                 f"PyTorch by {diff:.2g} (> {EXPORT_TOLERANCE:g}); the "
                                 "network's forward is probably not traceable")
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


# ------------------------------------------------------------------ staging (onnxruntime)
class OnnxStagingModel(WindowedStagingModel):
    """A deep staging model read from an ``.onnx`` file written by :func:`export_onnx`;
    stages with onnxruntime (no PyTorch).

    ``metadata``, ``config``, ``n_classes``, ``input_kind`` and ``input_views`` are those
    of the exported model, so :func:`hypnoscope.staging.pipeline.stage` treats it like the
    original; ``card`` is its model card and ``description`` the whole stored JSON.
    """

    def __init__(self, session, description: dict[str, Any], source: str = "model") -> None:
        if description.get("format") != ONNX_FORMAT:
            raise ValueError(f"{source}: not an ONNX file exported by hypnoscope (no "
                             f"'{META_KEY}' metadata)")
        if int(description.get("format_version", 0)) > ONNX_FORMAT_VERSION:
            raise ValueError(f"{source}: written by a newer hypnoscope (format "
                             f"{description['format_version']} > {ONNX_FORMAT_VERSION})")
        super().__init__(n_classes=int(description["n_classes"]),
                         **dict(description["config"]))
        self.name = str(description["name"])
        self.description = description
        self.metadata = dict(description.get("metadata") or {})
        self.card = dict(description.get("card") or {"name": self.name})
        self.input_kind = str(description["input_kind"])
        self.input_views = list(description["input_views"])
        self.session = session
        self.nets = {t: session for t in description["tasks"]}
        self._outputs = [f"proba_{t}" for t in description["tasks"]]
        self._input_names = {i.name for i in session.get_inputs()}

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "model") -> OnnxStagingModel:
        """Open a serialised model (see :func:`load_onnx_model`)."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            sess = ort.InferenceSession(data, sess_options=opts,
                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise ValueError(f"{source}: not a readable ONNX model ({exc})") from exc
        raw = sess.get_modelmeta().custom_metadata_map.get(META_KEY)
        if raw is None:
            raise ValueError(f"{source}: an ONNX model, but not one exported by hypnoscope "
                             f"(no '{META_KEY}' metadata); export it with 'hypnoscope "
                             "export --onnx'")
        return cls(sess, json.loads(raw), source)

    def run_windows(self, arrays: dict[str, np.ndarray], mask: np.ndarray,
                    ) -> dict[str, np.ndarray]:
        """Probabilities ``{task: ...}`` of windows given as normalised arrays."""
        feed = {v: np.ascontiguousarray(arrays[v], np.float32) for v in self.input_views}
        if "mask" in self._input_names:
            feed["mask"] = np.ascontiguousarray(mask, bool)
        out = self.session.run(self._outputs, feed)
        return dict(zip(self.nets, out, strict=True))

    def window_proba(self, task: str, dataset: SequenceDataset,
                     batch_size: int = 256) -> np.ndarray:
        """Softmax probabilities of the windows of ``dataset`` for ``task``."""
        out = []
        for a in range(0, len(dataset), batch_size):
            items = np.arange(a, min(a + batch_size, len(dataset)))
            out.append(self.run_windows(dataset.gather(items), dataset.mask[items])[task])
        return np.concatenate(out).astype(np.float64)

    def task_merge(self) -> str | None:
        return self.description.get("merge")

    def save(self, path: str | os.PathLike) -> Path:  # pragma: no cover - guard
        raise NotImplementedError("an ONNX model is saved by export_onnx")


def load_onnx_model(path: str | os.PathLike) -> OnnxStagingModel:
    """Read an ``.onnx`` file written by :func:`export_onnx` (onnxruntime, no PyTorch)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ValueError(f"{path}: staging an ONNX model needs onnxruntime (pip install "
                         "'hypnoscope[onnx]')") from exc
    return OnnxStagingModel.from_bytes(path.read_bytes(), source=str(path))


register_model_loader(ONNX_SUFFIX, load_onnx_model)


__all__ = ["export_onnx", "load_onnx_model", "OnnxStagingModel", "META_KEY", "OPSET",
           "EXPORT_TOLERANCE", "ONNX_SUFFIX"]
