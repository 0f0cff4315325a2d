"""``medsr-plot``: training curves (losses, validation metrics) of a BasicSR experiment folder, as a PNG.

    medsr-plot experiments/SEEDSR_GAN_x4                 # -> experiments/SEEDSR_GAN_x4/curves.png
    medsr-plot experiments/SEEDSR_GAN_x4 -o curves.png

Needs matplotlib (``pip install "medsr-se[plots]"``). What is read: :mod:`medsr_se.evaluation.plots`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medsr_se.cli.console import Console, add_verbosity_arguments
from medsr_se.errors import MedSRError
from medsr_se.utils.logs import log_to_stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medsr-plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", type=Path, help="a BasicSR experiment folder (holding train_*.log)")
    parser.add_argument("-o", "--output", type=Path, help="PNG to write (default: <experiment>/curves.png)")
    add_verbosity_arguments(parser)
    args = parser.parse_args(argv)
    log_to_stderr(args.verbosity)
    from medsr_se.evaluation.plots import plot_training_curves

    try:
        written = plot_training_curves(args.experiment, args.output or args.experiment / "curves.png")
    except (MedSRError, OSError) as error:  # no log, no matplotlib, a PNG that cannot be written (WriteError)
        print(f"error: {error}", file=sys.stderr)
        return 2
    Console(args.verbosity).result(f"written: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
