"""``medsr-evaluate``: the seed's results table (model vs bicubic, PSNR/SSIM) on a prepared test split.

    medsr-evaluate --data datasets/STARE --model x4=experiments/SEEDSR_GAN_x4/models/net_g_latest.pth \\
                   --model x8=... -o results/stare_eval

What is measured and written: :mod:`medsr_se.evaluation`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

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
    args = parser.parse_args(argv)
    try:
        summary = evaluate(args.data, dict(args.model), args.output, args.scales, not args.no_sheets, args.device)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(markdown_table(summary), end="")
    print(f"written: {args.output}/table.md, table.csv, per_image.csv" + ("" if args.no_sheets else ", sheets/"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
