"""``hypnoscope export``: a trained deep model as an ONNX file (staged without PyTorch)."""

from __future__ import annotations

import argparse

from hypnoscope.cli import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export a deep model to ONNX (stage it without PyTorch)",
        description="Write a trained deep model (ssnet, ssnet-hier, msmae-cnn, cnn, or any "
                    "deep model on hypnoscope's DeepStagingModel) as an .onnx file that "
                    "carries everything staging needs (channels, rate, classes, views, "
                    "normalisation, window length, model card). 'hypnoscope stage --model "
                    "OUT.onnx' then stages with onnxruntime, without PyTorch. The export "
                    "is checked: onnxruntime and PyTorch must agree within 1e-4.")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="trained model file (.joblib/.pt written by hypnoscope train)")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="ONNX file to write")
    p.add_argument("--member", type=int, default=None, metavar="I",
                   help="for a soft-voting ensemble (msmae-cnn-rf): export its deep member "
                        "I alone, without the vote (the Random Forest member is not a "
                        "network)")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    import time

    from hypnoscope.models.onnx_model import export_onnx, load_onnx_model
    from hypnoscope.utils.files import check_output_file

    if not str(args.onnx).lower().endswith(".onnx"):
        raise CLIError(f"--onnx {args.onnx}: expected a file name ending in .onnx")
    check_output_file(args.onnx, "--onnx")
    t0 = time.perf_counter()
    path = export_onnx(args.model, args.onnx, member=args.member)
    model = load_onnx_model(path)
    d = model.description
    size = path.stat().st_size / 1e6
    print(f"Exported {d['name']} ({', '.join(d['classes'])}; windows of "
          f"{d['config']['seq_len']} epochs, {d['config']['mode']}; views "
          f"{', '.join(d['input_views'])}) to {path} ({size:.1f} MB, "
          f"{time.perf_counter() - t0:.1f} s; onnxruntime = PyTorch within 1e-4)")
    print(f"Stage with: hypnoscope stage RECORDING.edf --model {path} --out DIR")
    return 0
