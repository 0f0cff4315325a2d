"""``medsr-export``: a trained generator as ONNX, with dynamic batch, height and width, checked after export.

Any BasicSR generator checkpoint works (SEEDSRGenerator, EDSR, RRDBNet, ...): its network_g is read from the
checkpoint, or from ``--opt options.yml`` for a checkpoint that does not record it.

    medsr-export --model experiments/SEEDSR_GAN_x4/models/net_g_latest.pth -o seedsr_x4.onnx

Input ``lr`` (N, C, h, w) float in [0, 1], RGB (or 1 channel); output ``sr`` (N, C, s·h, s·w), not clamped. After
exporting, onnxruntime runs the file on a random input of another size than the one traced and the result is
compared with PyTorch (max abs difference <= ``--tolerance``, 1e-4 by default); a larger difference is an error
and nothing is written (the file is exported under a temporary name and renamed only after the check).
A network that takes multiples of a size only (SwinIR, RRDBNet at scale 2 / 1) takes any height and width through
its padding inside the graph; a windowed-attention network's batch is fixed at 1 (the result line says so).
How: :mod:`medsr_se.inference.onnx_export`. Needs the extra: ``pip install "medsr-se[onnx]"`` (onnx, onnxruntime).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medsr_se.cli.console import Console, add_verbosity_arguments
from medsr_se.cli.messages import about_given_path, error_line, show_flags
from medsr_se.errors import MedSRError, UsageError, WriteError
from medsr_se.inference import load_generator
from medsr_se.inference.checkpoint import network_option_file
from medsr_se.inference.onnx_export import export_checked, summary
from medsr_se.utils.logs import log_to_stderr

# the library's parameter names -> this command's flags, for its errors and log lines (medsr_se.cli.messages)
FLAGS = {"options": "--opt", "tolerance": "--tolerance", "opset": "--opset"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsr-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="BasicSR net_g checkpoint (SEEDSRGenerator or any BasicSR "
                        "generator)")
    parser.add_argument("--opt", help="the option file (or recipe name) the checkpoint was trained with, for a "
                        "checkpoint that does not record its network_g")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    add_verbosity_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> float:
    """The export, checked; the difference onnxruntime vs PyTorch."""
    if args.output.is_dir():
        raise UsageError(f"-o {args.output}: is a folder; give the .onnx file to write")
    net = load_generator(args.model, options=network_option_file(args.opt))
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(f"{args.output}: cannot write it ({error.strerror or error})") from error
    difference = export_checked(net, args.output, args.opset, args.tolerance)
    Console(args.verbosity).result(summary(net, args.output, difference))
    return difference


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_to_stderr(args.verbosity)  # the library's records; -v adds the warnings of loading and tracing (debug)
    show_flags(FLAGS)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        print('error: ONNX export needs the extra: pip install "medsr-se[onnx]"', file=sys.stderr)
        return 2
    try:
        run(args)
    except MedSRError as error:
        print(f"error: {error_line(error, FLAGS)}", file=sys.stderr)
        return 2
    except OSError as error:
        if not about_given_path(error, (args.model, args.opt, args.output)):
            raise  # a bug: its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
