"""Memory of one training iteration of the option files' recipe at batch 16, measured on CPU.

    python -m benchmarks.train_memory --out benchmarks/results/train_memory.json
    python -m benchmarks.train_memory --quick

No GPU is available to this project's CI, so the recipe's memory is measured where it runs: the peak resident
memory of one ``RelativisticGANModel.optimize_parameters`` call (options/x{4,8,16}.yml: networks, batch 16,
gt_size; FusionLoss with a random VGG19 of the same size) minus the resident memory before it. The same tensors
(weights, Adam state, activations kept for backward) live in GPU memory on CUDA; add the CUDA context and cuDNN
workspace (typically 0.5–1 GiB) for a GPU estimate. Each scale runs in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.lib.memory import in_fresh_process, measure
from benchmarks.lib.reports import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.quick)))
        return 0
    rows = []
    for scale in args.scales:
        run = in_fresh_process("train_memory", "--one", str(scale), *(["--quick"] if args.quick else []))
        if run.returncode != 0:
            print(run.stderr[-3000:], file=sys.stderr)
            return run.returncode
        rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    write_report("train_memory", {"rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
