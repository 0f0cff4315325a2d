"""``medsr-export``: a trained generator as ONNX, with dynamic batch, height and width, checked after export.

Any BasicSR generator checkpoint works (SEEDSRGenerator, EDSR, RRDBNet, ...): its network_g is read from the
checkpoint, or from ``--opt options.yml`` for a checkpoint that does not record it.

    medsr-export --model experiments/SEEDSR_GAN_x4/models/net_g_latest.pth -o seedsr_x4.onnx

Input ``lr`` (N, C, h, w) float in [0, 1], RGB (or 1 channel); output ``sr`` (N, C, s·h, s·w), not clamped. After
exporting, onnxruntime runs the file on a random input of another size than the one traced and the result is
compared with PyTorch (max abs difference <= ``--tolerance``, 1e-4 by default); a larger difference is an error
and nothing is written (the file is exported under a temporary name and renamed only after the check).

A network that takes multiples of a size only (BasicSR's SwinIR: its attention window; RRDBNet at scale 2 / 1: its
pixel unshuffle) is exported with its reflection padding to that multiple and the crop back inside the graph
(:mod:`medsr_se.inference.window`), so it takes any height and width (each side more than half the multiple),
checked on a size that is no multiple of it. A windowed-attention network's batch is fixed at 1, because SwinIR's
traced graph holds the batch size as a constant (the result line says so).
Needs the extra: ``pip install "medsr-se[onnx]"`` (onnx, onnxruntime).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from medsr_se.cli.console import Console, add_verbosity_arguments, log_to_stderr
from medsr_se.inference import CheckpointError, load_generator
from medsr_se.inference.checkpoint import network_option_file, one_line
from medsr_se.inference.halo import round_up
from medsr_se.inference.upscale import input_channels
from medsr_se.inference.window import attention_window, input_multiple, multiple_reason
from medsr_se.io.publish import WriteError, write_atomically

logger = logging.getLogger(__name__)

DYNAMIC_AXES = {"lr": {0: "batch", 2: "height", 3: "width"}, "sr": {0: "batch", 2: "out_height", 3: "out_width"}}
TRACE_SIZE = (32, 40)  # LR height, width of the traced example (rounded up to the multiple the input needs)
CHECK_SIZE = (45, 37)  # LR height, width of the check: another size than the traced one, no multiple of 2, 4, 7 or 8
CHECK_BATCH = 2
SILENT_RUNTIME = 4  # onnxruntime's log_severity_level: fatal only


def dynamic_axes(net: torch.nn.Module) -> dict:
    """Dynamic batch, height and width; a windowed-attention network (SwinIR) keeps the batch fixed at 1: its
    ``window_reverse`` turns the batch size into a Python int, which tracing records as a constant (a batch of 2
    through such a graph gives wrong values, measured with onnxruntime)."""
    if attention_window(net) is None:
        return DYNAMIC_AXES
    return {name: {axis: label for axis, label in axes.items() if axis != 0} for name, axes in DYNAMIC_AXES.items()}


def batch_size(net: torch.nn.Module) -> int:
    """The batch of the check: :data:`CHECK_BATCH` when the batch is dynamic, else 1."""
    return CHECK_BATCH if 0 in dynamic_axes(net)["lr"] else 1


def trace_size(net: torch.nn.Module) -> tuple[int, int]:
    """:data:`TRACE_SIZE` rounded up to the multiple the input needs, and moved off every ``input_resolution`` the
    network was built for (BasicSR's SwinIR uses its stored attention mask, a constant, for an input of exactly that
    size; any other size computes the mask from the input's size, which the graph then does too)."""
    multiple = input_multiple(net) or 1
    built_for = {tuple(size) for module in net.modules()
                 if isinstance(size := getattr(module, "input_resolution", None), (tuple, list))}
    height, width = (round_up(side, multiple) for side in TRACE_SIZE)
    while (height, width) in built_for or (width, height) in built_for:
        height, width = height + multiple, width + 2 * multiple
    return height, width


def export_onnx(net: torch.nn.Module, path: Path, opset: int = 17) -> None:
    """The graph of ``net`` (with the reflection padding and crop of a network that takes multiples of a size only:
    any height and width) traced on a random example of :func:`trace_size`; the tracer's warnings (sizes it records
    as constants: the check after the export is what tells whether the graph is right) at debug level only."""
    example = torch.rand(1, input_channels(net), *trace_size(net))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(net.eval().cpu(), (example,), str(path), input_names=["lr"], output_names=["sr"],
                          dynamic_axes=dynamic_axes(net), opset_version=opset, dynamo=False)
    for warning in caught:
        logger.debug("%s: %s", warning.category.__name__, warning.message)


def check_onnx(net: torch.nn.Module, path: Path, shape: tuple[int, int, int, int], name: Path | None = None) -> float:
    """Max abs difference between onnxruntime and PyTorch (the network's forward, padding included) on a random
    input of ``shape``; a graph onnxruntime cannot run is a ValueError naming ``name`` (the file to write)."""
    import onnxruntime
    from onnxruntime.capi import onnxruntime_pybind11_state as runtime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = SILENT_RUNTIME  # its failure is our one line below, not its own coloured log
    lr = torch.rand(*shape)
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        (onnx_out,) = session.run(None, {"lr": lr.numpy()})
    except (runtime.Fail, runtime.InvalidArgument, runtime.InvalidGraph, runtime.RuntimeException,
            runtime.NotImplemented) as error:
        raise ValueError(f"{name or path}: onnxruntime cannot run the exported graph on {'x'.join(map(str, shape))} "
                         f"({one_line(error)}); nothing was written") from error
    with torch.no_grad():
        reference = net.eval().cpu()(lr).numpy()
    if onnx_out.shape != reference.shape:
        raise ValueError(f"ONNX output shape {onnx_out.shape} differs from PyTorch's {reference.shape}")
    return float(np.abs(onnx_out - reference).max())


def export_checked(net: torch.nn.Module, output: Path, opset: int, tolerance: float) -> float:
    """Export to a temporary name beside ``output``, check it on a batch of :func:`batch_size` images of
    :data:`CHECK_SIZE`, and only then rename it onto ``output`` (:func:`~medsr_se.io.publish.write_atomically`).
    A model that fails its check (or an export that fails) leaves nothing at ``output``."""
    differences: list[float] = []

    def export_and_check(temporary: Path) -> None:
        export_onnx(net, temporary, opset)
        differences.append(check_onnx(net, temporary, (batch_size(net), input_channels(net), *CHECK_SIZE), output))
        if differences[-1] > tolerance:
            raise ValueError(f"{output}: onnxruntime differs from PyTorch by {differences[-1]:.2e} (> {tolerance}); "
                             "nothing was written")

    write_atomically(output, export_and_check)
    return differences[-1]


def summary(net: torch.nn.Module, output: Path, difference: float) -> str:
    """The result line: scale, what is dynamic, the check."""
    scale = f"x{net.scale_hw[0]} (height)" if net.scale_hw[0] != net.scale_hw[1] else f"x{net.upscale}"
    axes = ("dynamic batch/height/width" if attention_window(net) is None else
            f"dynamic height/width, batch 1 (fixed: {type(net).__name__}'s traced graph reads the batch as a "
            "constant)")
    multiple = input_multiple(net)
    if multiple is not None:
        axes += (f"; inputs padded by reflection to multiples of {multiple} ({multiple_reason(net)}) inside the "
                 f"graph (each side >= {multiple // 2 + 1})")
    shape = "x".join(map(str, (batch_size(net), *CHECK_SIZE)))
    return f"{output}: {scale}, {axes}; onnxruntime vs PyTorch on {shape}: max abs diff {difference:.1e}"


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
    log_to_stderr(args.verbosity)  # the library's records: -v adds the warnings of loading and tracing (debug)
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
    Console(args.verbosity).result(summary(net, args.output, difference))
    return 0


if __name__ == "__main__":
    sys.exit(main())
