"""A trained generator as ONNX, with dynamic batch, height and width, checked with onnxruntime before it is
published (``medsr-export``; needs the ``onnx`` extra: onnx, onnxruntime).

    net = load_generator("net_g_latest.pth")
    difference = export_checked(net, Path("seedsr_x4.onnx"), opset=17, tolerance=1e-4)

Input ``lr`` (N, C, h, w) float in [0, 1], RGB (or 1 channel); output ``sr`` (N, C, s·h, s·w), not clamped. The
graph is traced on a random input of :func:`trace_size`, then onnxruntime runs it on a random input of another size
(:data:`CHECK_SIZE`) and its result is compared with PyTorch's: max |onnxruntime − PyTorch| over a larger
``tolerance`` is an error and nothing is written (the file is exported under a temporary name and renamed only
after the check). A network that takes multiples of a size only (SwinIR's attention window, RRDBNet's pixel
unshuffle) is exported with its reflection padding and crop inside the graph (:mod:`medsr_se.inference.window`);
a windowed-attention network's batch is fixed at 1 (:func:`dynamic_axes`). The exporter's and the tracer's
warnings (sizes it records as constants: the check is what tells whether the graph is right) are logged at debug
level (:func:`export_onnx`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from medsr_se.checkpoint_format import one_line
from medsr_se.errors import CheckpointError
from medsr_se.inference.halo import round_up
from medsr_se.inference.upscale import input_channels
from medsr_se.inference.window import attention_window, input_multiple, multiple_reason
from medsr_se.io.publish import write_atomically

__all__ = ["CHECK_BATCH", "CHECK_SIZE", "DYNAMIC_AXES", "TRACE_SIZE", "batch_size", "check_onnx", "dynamic_axes",
           "export_checked", "export_onnx", "exporter_log_as_debug", "summary", "trace_size"]

DYNAMIC_AXES = {"lr": {0: "batch", 2: "height", 3: "width"}, "sr": {0: "batch", 2: "out_height", 3: "out_width"}}
TRACE_SIZE = (32, 40)  # LR height, width of the traced example (rounded up to the multiple the input needs)
CHECK_SIZE = (45, 37)  # LR height, width of the check: another size than the traced one, no multiple of 2, 4, 7 or 8
CHECK_BATCH = 2
SILENT_RUNTIME = 4  # onnxruntime's log_severity_level: fatal only

logger = logging.getLogger(__name__)


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
    any height and width) traced on a random example of :func:`trace_size` and written to ``path``. The warnings
    torch raises meanwhile (the legacy exporter's notice, the tracer's constants) are torch's: a command shows them
    with ``-v`` (:func:`medsr_se.utils.logs.log_to_stderr`)."""
    example = torch.rand(1, input_channels(net), *trace_size(net))
    try:
        with exporter_log_as_debug():
            torch.onnx.export(net.eval().cpu(), (example,), str(path), input_names=["lr"], output_names=["sr"],
                              dynamic_axes=dynamic_axes(net), opset_version=opset, dynamo=False)
    except torch.onnx.OnnxExporterError as error:  # an operator ONNX cannot express (ATD's stable sort)
        reason = " ".join(str(error).split("Please feel free")[0].split())
        raise CheckpointError(f"{type(net).__name__} cannot be exported to ONNX (opset {opset}): {reason}") from error


@contextlib.contextmanager
def exporter_log_as_debug() -> Iterator[None]:
    """The TorchScript exporter's own log (``torch._C._jit_onnx_log``: the whole traced graph when an operator
    cannot be exported, written by C++ to stdout; torch switches that log on for every export) as debug records of
    this module's logger while the export runs; a torch without that hook is left as it is."""
    original = getattr(torch._C, "_jit_onnx_log", None)
    if original is None:
        yield
        return

    def log(*parts: object) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("torch.onnx: %s", "".join(map(str, parts)))

    torch._C._jit_onnx_log = log
    try:
        yield
    finally:
        torch._C._jit_onnx_log = original


def check_onnx(net: torch.nn.Module, path: Path, shape: tuple[int, int, int, int], name: Path | None = None) -> float:
    """Max abs difference between onnxruntime and PyTorch (the network's forward, padding included) on a random
    input of ``shape``; a graph onnxruntime cannot run, or one whose output has another shape, is a
    CheckpointError naming ``name`` (the file to write)."""
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
        raise CheckpointError(f"{name or path}: onnxruntime cannot run the exported graph on "
                              f"{'x'.join(map(str, shape))} ({one_line(error)}); nothing was written") from error
    with torch.no_grad():
        reference = net.eval().cpu()(lr).numpy()
    if onnx_out.shape != reference.shape:
        raise CheckpointError(f"{name or path}: the ONNX output's shape {onnx_out.shape} differs from PyTorch's "
                              f"{reference.shape}; nothing was written")
    return float(np.abs(onnx_out - reference).max())


def export_checked(net: torch.nn.Module, output: Path, opset: int = 17, tolerance: float = 1e-4) -> float:
    """Export to a temporary name beside ``output``, check it on a batch of :func:`batch_size` images of
    :data:`CHECK_SIZE`, and only then rename it onto ``output`` (:func:`~medsr_se.io.publish.write_atomically`);
    the difference measured. A model that fails its check (a CheckpointError naming ``tolerance=`` when the
    difference exceeds it), or an export that fails, leaves nothing at ``output``."""
    differences: list[float] = []

    def export_and_check(temporary: Path) -> None:
        export_onnx(net, temporary, opset)
        differences.append(check_onnx(net, temporary, (batch_size(net), input_channels(net), *CHECK_SIZE), output))
        if differences[-1] > tolerance:
            raise CheckpointError(f"{output}: onnxruntime differs from PyTorch by {differences[-1]:.2e} (> "
                                  f"tolerance={tolerance}); nothing was written", parameter="tolerance")

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
