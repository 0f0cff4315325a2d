"""``medsr-evaluate``: the seed's results table (methods vs bicubic, PSNR/SSIM, ...) on a prepared test split.

    medsr-evaluate --data datasets/STARE --model x4=experiments/SEEDSR_GAN_x4/models/net_g_latest.pth \\
                   --model x8=... -o results/stare_eval
    medsr-evaluate --data datasets/STARE --model seedsr@x4=... --model edsr@x4=experiments/EDSR_x4/models/... \\
                   --model esrgan@x8=... -o results/comparison      (several methods per scale: one row each)

``x4=PATH`` is the seed's model (row "SEEDSR-GAN"); ``NAME@x4=PATH`` names the row. Any BasicSR generator
checkpoint works (its network_g is stored in it when it was trained with the plugin loaded); one without it needs
``--opt NAME=options.yml`` (or ``--opt options.yml`` for all such checkpoints). Every test pair is read and checked
against every model (channels, type, size, HR = scale x LR) before the first is computed: a run writes all its
results or none.

What is measured and written: :mod:`medsr_se.evaluation`. Progress per image on stderr (``-q``: none, and no
table either; ``-v``: one line per image); ``per_image_psnr.png`` plots model vs bicubic per image when matplotlib
(the ``plots`` extra) is installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import torch

from medsr_se.cli.console import Console, add_verbosity_arguments
from medsr_se.cli.messages import about_given_path, error_line, show_flags
from medsr_se.errors import MedSRError, UsageError
from medsr_se.evaluation import evaluate, markdown_table
from medsr_se.evaluation.table import DEFAULT_METHOD
from medsr_se.inference.checkpoint import network_option_file
from medsr_se.utils.logs import log_to_stderr

# the library's parameter names -> this command's flags, for its errors and log lines (medsr_se.cli.messages)
FLAGS = {"options": "--opt", "scales": "--scales", "device": "--device", "data": "--data"}


def parse_model_argument(text: str) -> tuple[str, int, str]:
    """``x4=path`` / ``4=path`` -> (DEFAULT_METHOD, 4, path); ``edsr@x4=path`` -> ("edsr", 4, path)."""
    key, separator, path = text.partition("=")
    method, at, scale = key.rpartition("@")
    if not separator or not path or not scale.lstrip("x").isdigit() or (at and not method):
        raise argparse.ArgumentTypeError(f"--model {text!r}: expected [METHOD@]SCALE=CHECKPOINT, e.g. "
                                         "x4=net_g_latest.pth or edsr@x4=net_g_latest.pth")
    if method.lower() == "bicubic":
        raise argparse.ArgumentTypeError(f"--model {text!r}: bicubic is always in the table; name the model otherwise")
    return (method or DEFAULT_METHOD), int(scale.lstrip("x")), path


def models_by_scale(models: list[tuple[str, int, str]]) -> dict[int, list[tuple[str, str]]]:
    """{scale: [(method, checkpoint), ...]} in command-line order; a method given twice for a scale is an error."""
    by_scale: dict[int, list[tuple[str, str]]] = {}
    for method, scale, path in models:
        if any(method == known for known, _ in by_scale.get(scale, [])):
            raise UsageError(f"--model {method}@x{scale}: given twice")
        by_scale.setdefault(scale, []).append((method, path))
    return by_scale


def option_files(texts: list[str], methods: set[str]) -> dict[str, dict]:
    """``--opt FILE`` (every checkpoint without stored options: a stored network_g is used as it is) and
    ``--opt METHOD=FILE`` (that method's checkpoint: it must agree with a stored network_g) -> {method or '*':
    network_g}."""
    options = {}
    for text in texts:
        method, separator, path = text.partition("=")
        if not separator or method not in methods:
            method, path = "*", text
        options[method] = network_option_file(path, fallback=method == "*")
    return options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medsr-evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("datasets") / "STARE", help="prepared dataset root")
    parser.add_argument("--model", type=parse_model_argument, action="append", default=[],
                        help="[METHOD@]SCALE=CHECKPOINT, e.g. x4=... or edsr@x4=... (repeat for several methods and "
                        "scales); none: bicubic only")
    parser.add_argument("--opt", action="append", default=[], metavar="[METHOD=]OPTIONS",
                        help="option file (or recipe name) holding the network_g of a checkpoint that does not "
                        "record it; METHOD= for one method (an error if it contradicts a network_g the checkpoint "
                        "stores), else for all such checkpoints (one that stores its own keeps it)")
    parser.add_argument("--no-niqe", action="store_true", help="skip NIQE (~0.7 s per 600x600 image and method)")
    parser.add_argument("--scales", type=int, nargs="+", help="scales to evaluate (default: the dataset's)")
    parser.add_argument("-o", "--output", type=Path, default=Path("results") / "evaluation")
    parser.add_argument("--no-sheets", action="store_true", help="skip the comparison PNGs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-plot", action="store_true", help="skip per_image_psnr.png")
    add_verbosity_arguments(parser)
    args = parser.parse_args(argv)
    log_to_stderr(args.verbosity)  # the library's records: -v adds the warnings of loading (debug)
    show_flags(FLAGS)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our messages name the file instead
    console = Console(args.verbosity)
    plot = not args.no_plot and bool(args.model)
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            console.note('no per_image_psnr.png: plots need matplotlib (pip install "medsr-se[plots]")')
            plot = False
    try:
        options = option_files(args.opt, {method for method, _, _ in args.model})
        progress = lambda scale, total: console.progress(total, f"x{scale}: {total} test image(s)")  # noqa: E731
        summary = evaluate(args.data, models_by_scale(args.model), args.output, scales=args.scales,
                           sheets=not args.no_sheets, device=args.device, progress=progress, plot=plot,
                           niqe=not args.no_niqe, options=options)
    except MedSRError as error:
        print(f"error: {error_line(error, FLAGS)}", file=sys.stderr)
        return 2
    except OSError as error:
        given = (args.data, args.output, *(path for _, _, path in args.model),
                 *(text.partition("=")[2] or text for text in args.opt))
        if not about_given_path(error, given):
            raise  # a bug: its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    console.result(markdown_table(summary), end="")
    written = ["table.md", "table.csv", "per_image.csv", *(["sheets/"] if not args.no_sheets and args.model else []),
               *(["per_image_psnr.png"] if plot else [])]
    console.result(f"written: {args.output}/{', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
