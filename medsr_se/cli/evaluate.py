"""``medsr-evaluate``: the seed's results table (model vs bicubic, PSNR/SSIM) on a prepared test split.

    medsr-evaluate --data datasets/STARE --model x4=experiments/SEEDSR_GAN_x4/models/net_g_latest.pth \\
                   --model x8=... -o results/stare_eval

What is measured and written: :mod:`medsr_se.evaluation`. Progress per image on stderr (``-q``: none, and no
table either; ``-v``: one line per image); ``per_image_psnr.png`` plots model vs bicubic per image when matplotlib
(the ``plots`` extra) is installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from medsr_se.cli.console import Console, add_verbosity_arguments
from medsr_se.evaluation import evaluate, markdown_table


def parse_model_argument(text: str) -> tuple[int, str]:
    """``x4=path`` / ``4=path`` -> (4, path)."""
    scale, separator, path = text.partition("=")
    if not separator or not scale.lstrip("x").isdigit():
        raise argparse.ArgumentTypeError(f"--model {text!r}: expected SCALE=CHECKPOINT, e.g. x4=net_g_latest.pth")
    return int(scale.lstrip("x")), path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medsr-evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("datasets") / "STARE", help="prepared dataset root")
    parser.add_argument("--model", type=parse_model_argument, action="append", default=[],
                        help="SCALE=CHECKPOINT (repeat for several scales); none: bicubic only")
    parser.add_argument("--scales", type=int, nargs="+", help="scales to evaluate (default: the dataset's)")
    parser.add_argument("-o", "--output", type=Path, default=Path("results") / "evaluation")
    parser.add_argument("--no-sheets", action="store_true", help="skip the comparison PNGs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-plot", action="store_true", help="skip per_image_psnr.png")
    add_verbosity_arguments(parser)
    args = parser.parse_args(argv)
    console = Console(args.verbosity)
    plot = not args.no_plot and bool(args.model)
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            console.note('no per_image_psnr.png: plots need matplotlib (pip install "medsr-se[plots]")')
            plot = False
    try:
        summary = evaluate(args.data, dict(args.model), args.output, args.scales, not args.no_sheets, args.device,
                           lambda scale, total: console.progress(total, f"x{scale}: {total} test image(s)"), plot,
                           console.warning)
    except (FileNotFoundError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    console.result(markdown_table(summary), end="")
    written = ["table.md", "table.csv", "per_image.csv", *(["sheets/"] if not args.no_sheets and args.model else []),
               *(["per_image_psnr.png"] if plot else [])]
    console.result(f"written: {args.output}/{', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
