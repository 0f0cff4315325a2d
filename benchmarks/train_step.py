"""Generator training step (L1 + Adam): SEEDSRGenerator vs BasicSR's EDSR (same width and depth) vs RRDBNet.

    python -m benchmarks.train_step --out benchmarks/results/train_step.json
    python -m benchmarks.train_step --quick

Batch 4, LR patch 32 (HR 32·s), 2 torch threads, interleaved repeats, medians. Target: SEEDSR <= 1.2x EDSR.
RRDBNet (ESRGAN's generator, 23 blocks) is BasicSR's x4 architecture and is timed at x4 only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.nn import functional as F

import medsr_se  # noqa: F401
from benchmarks.lib.reports import write_report
from benchmarks.lib.timing import interleaved_medians
from medsr_se.archs.seedsr_arch import SEEDSRGenerator


def make_step(model: torch.nn.Module, scale: int, batch: int, patch: int):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    lq, gt = torch.rand(batch, 3, patch, patch), torch.rand(batch, 3, patch * scale, patch * scale)

    def step() -> None:
        optimizer.zero_grad()
        F.l1_loss(model(lq), gt).backward()
        optimizer.step()

    return step


def models_for(scale: int, width: int, depth: int, rrdb_blocks: int) -> dict[str, torch.nn.Module]:
    from basicsr.archs.edsr_arch import EDSR
    from basicsr.archs.rrdbnet_arch import RRDBNet

    models = {"SEEDSR": SEEDSRGenerator(num_feat=width, num_block=depth, upscale=scale, img_residual=True),
              "EDSR": EDSR(3, 3, num_feat=width, num_block=depth, upscale=scale)}
    if scale == 4:
        models["RRDBNet"] = RRDBNet(3, 3, num_feat=width, num_block=rrdb_blocks, num_grow_ch=32)
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny networks, 1 repeat")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    width, depth, rrdb, repeats, patch = (64, 16, 23, args.repeats, 32) if not args.quick else (8, 2, 1, 1, 8)
    rows = []
    for scale in args.scales:
        models = models_for(scale, width, depth, rrdb)
        steps = {name: make_step(model, scale, 4, patch) for name, model in models.items()}
        medians = interleaved_medians(steps, repeats, warmup=1 if args.quick else 2)
        row = {"scale": scale, **{f"{name}_s": value for name, value in medians.items()},
               "SEEDSR_over_EDSR": medians["SEEDSR"] / medians["EDSR"]}
        if "RRDBNet" in medians:
            row["RRDBNet_over_SEEDSR"] = medians["RRDBNet"] / medians["SEEDSR"]
        rows.append(row)
        print(row, flush=True)
    write_report("train_step", {"batch": 4, "lr_patch": patch, "width": width, "depth": depth, "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
