"""``medsr-export``: a trained generator as ONNX, with dynamic batch, height and width, checked after export.

Any BasicSR generator checkpoint works (SEEDSRGenerator, EDSR, RRDBNet, ...): its network_g is read from the
checkpoint, or from ``--opt options.yml`` for a checkpoint that does not record it.

    medsr-export --model experiments/SEEDSR_GAN_x4/models/net_g_latest.pth -o seedsr_x4.onnx

Input ``lr`` (N, C, h, w) float in [0, 1], RGB (or 1 channel); output ``sr`` (N, C, s·h, s·w), not clamped. After
exporting, onnxruntime runs the file on a random input of another size than the one traced and the result is
compared with PyTorch (max abs difference <= ``--tolerance``, 1e-4 by default); a larger difference is an error
and nothing is written (the file is exported under a temporary name and renamed only after the check).
Needs the extra: ``pip install "medsr-se[onnx]"`` (onnx, onnxruntime).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli.console import Console, add_verbosity_arguments
from medsr_se.inference import CheckpointError, load_generator
from medsr_se.inference.checkpoint import network_option_file
from medsr_se.io.atomic import WriteError, write_atomically

DYNAMIC_AXES = {"lr": {0: "batch", 2: "height", 3: "width"}, "sr": {0: "batch", 2: "out_height", 3: "out_width"}}


def export_onnx(net: SEEDSRGenerator, path: Path, opset: int = 17) -> None:
    example = torch.rand(1, net.conv_first.in_channels, 32, 32)
    torch.onnx.export(net.eval().cpu(), (example,), str(path), input_names=["lr"], output_names=["sr"],
                      dynamic_axes=DYNAMIC_AXES, opset_version=opset, dynamo=False)


def check_onnx(net: SEEDSRGenerator, path: Path, shape: tuple[int, int, int, int]) -> float:
    """Max abs difference between onnxruntime and PyTorch on a random input of ``shape``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    lr = torch.rand(*shape)
    (onnx_out,) = session.run(None, {"lr": lr.numpy()})
    with torch.no_grad():
        reference = net.eval().cpu()(lr).numpy()
    if onnx_out.shape != reference.shape:
        raise ValueError(f"ONNX output shape {onnx_out.shape} differs from PyTorch's {reference.shape}")
    return float(np.abs(onnx_out - reference).max())


def export_checked(net: SEEDSRGenerator, output: Path, opset: int, tolerance: float) -> float:
    """Export to a temporary name beside ``output``, check it, and only then rename it onto ``output``
    (:func:`~medsr_se.io.atomic.write_atomically`). A model that fails its check (or an export that fails) leaves
    nothing at ``output``."""
    differences: list[float] = []

    def export_and_check(temporary: Path) -> None:
        export_onnx(net, temporary, opset)
        differences.append(check_onnx(net, temporary, (2, net.conv_first.in_channels, 45, 37)))
        if differences[-1] > tolerance:
            raise ValueError(f"{output}: onnxruntime differs from PyTorch by {differences[-1]:.2e} (> {tolerance}); "
                             "nothing was written")

    write_atomically(output, export_and_check)
    return differences[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medsr-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="BasicSR net_g checkpoint (SEEDSRGenerator or any BasicSR "
                        "generator)")
    parser.add_argument("--opt", help="the option file (or recipe name) the checkpoint was trained with, for a "
                        "checkpoint that does not record its network_g")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    add_verbosity_arguments(parser)
    args = parser.parse_args(argv)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        print('error: ONNX export needs the extra: pip install "medsr-se[onnx]"', file=sys.stderr)
        return 2
    try:
        if args.output.is_dir():
            raise ValueError(f"-o {args.output}: is a folder; give the .onnx file to write")
        net = load_generator(args.model, options=network_option_file(args.opt))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        difference = export_checked(net, args.output, args.opset, args.tolerance)
    except (FileNotFoundError, CheckpointError, ValueError, WriteError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {args.output}: cannot write it ({error.strerror or error})", file=sys.stderr)
        return 2
    scale = f"x{net.scale_hw[0]} (height)" if net.scale_hw[1] == 1 else f"x{net.upscale}"
    Console(args.verbosity).result(f"{args.output}: {scale}, dynamic batch/height/width; onnxruntime vs "
                                   f"PyTorch on 2x45x37: max abs diff {difference:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
