"""Does the discriminator learn? Each D alone, HR fundus patches against their bicubic reconstruction.

    python -m benchmarks.discriminator --out benchmarks/results/discriminator.json   # ~25 min on 2 cores, run alone
    python -m benchmarks.discriminator --quick                                      # seconds; what the suite runs

Data: scikit-image's fundus photograph (:mod:`benchmarks.lib.fundus`: columns 0-895 train, 896-1407 held out);
HR patches of ``--patch`` px from the field of view and, as the "fake", the same patch after MATLAB-style bicubic x4
down and bicubic up (what an untrained SEEDSR with the image skip outputs). Each iteration: ``--batch`` HR + ``--batch``
bicubic patches in one pass (as RelativisticGANModel passes cat[HR, SR]), BCE with logits (HR 1, bicubic 0), Adam
1e-4 (0.9, 0.999). Every ``--every`` iterations, on a fixed held-out batch (same size, same one-pass form, no
gradient): the loss, the separation (mean HR logit − mean bicubic logit) and the fraction of (HR, bicubic) pairs
ranked right (0.5 = chance; :func:`medsr_se.models.discriminator_watch.separation`).

Rows: FusionSEDiscriminator (se: improved / plain / none), the same network without its BN layers (the 0.1.x layout,
block convolutions with bias), and BasicSR's VGGStyleDiscriminator (SRGAN/ESRGAN's D, the reference). Also the
spread of the initial logits over the held-out inputs (std / |mean|), the quantity that was 1e-4 for the 0.1.x D.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import medsr_se  # noqa: F401  (compat + registration)
from benchmarks.lib.fundus import fundus_regions
from benchmarks.lib.reports import write_report
from medsr_se.archs.fusion_discriminator_arch import FusionSEDiscriminator
from medsr_se.archs.seedsr_arch import bicubic_upsample
from medsr_se.inference import image_to_tensor
from medsr_se.models.discriminator_watch import separation

FOV_MARGIN = 200  # patches from the inner part of the photograph (inside the field of view)
ROWS = ("FusionSE, se: improved", "FusionSE, se: plain", "FusionSE, se: none", "FusionSE without BN (0.1.x)",
        "VGGStyle (BasicSR)")


def fundus_pairs(scale: int = 4) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{'train' | 'test': (HR, bicubic reconstruction)} as (1, 3, H, W) tensors in [0, 1] (BGR like cv2), from the
    regions of :func:`benchmarks.lib.fundus.fundus_regions`."""
    return {name: (image_to_tensor(hr), bicubic_upsample(image_to_tensor(lr), scale).clamp(0, 1))
            for name, (hr, lr) in fundus_regions(scale).items()}


def patch_batch(pair: tuple[torch.Tensor, torch.Tensor], count: int, patch: int,
                rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random co-located (HR, bicubic) patches from inside the field of view."""
    hr, fake = pair
    height, width = hr.shape[-2:]
    real_patches, fake_patches = [], []
    for _ in range(count):
        top = int(rng.integers(FOV_MARGIN, height - FOV_MARGIN - patch))
        left = int(rng.integers(min(FOV_MARGIN, width // 4), width - min(FOV_MARGIN, width // 4) - patch))
        real_patches.append(hr[..., top:top + patch, left:left + patch])
        fake_patches.append(fake[..., top:top + patch, left:left + patch])
    return torch.cat(real_patches), torch.cat(fake_patches)


def without_batch_norm(model: FusionSEDiscriminator) -> FusionSEDiscriminator:
    """The 0.1.x layout: every block's BN removed and its convolution given a bias again (default initialisation)."""
    for block in model.blocks:
        old = block.conv
        block.conv = nn.Conv2d(old.in_channels, old.out_channels, 3, stride=old.stride, padding=1, bias=True)
        block.norm = nn.Identity()
    return model


def build(row: str, num_feat: int, patch: int) -> nn.Module:
    if row.startswith("VGGStyle"):
        from basicsr.archs.discriminator_arch import VGGStyleDiscriminator

        return VGGStyleDiscriminator(3, num_feat, input_size=patch)
    if row == "FusionSE without BN (0.1.x)":
        return without_batch_norm(FusionSEDiscriminator(3, num_feat))
    return FusionSEDiscriminator(3, num_feat, se=row.rsplit(" ", 1)[-1])


def one_pass(model: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits of real, logits of fake) from one pass over cat[real, fake]."""
    return model(torch.cat([real, fake])).split(real.shape[0])


def bce(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))


def held_out_record(model: nn.Module, held_out: tuple[torch.Tensor, torch.Tensor], iteration: int) -> dict:
    with torch.no_grad():
        d_real, d_fake = one_pass(model, *held_out)
    gap, ranked = separation(d_real, d_fake)
    return {"iteration": iteration, "loss": round(float(bce(d_real, d_fake)), 4), "separation": round(float(gap), 4),
            "pairs_ranked": round(float(ranked), 4)}


def initial_spread(model: nn.Module, held_out: tuple[torch.Tensor, torch.Tensor]) -> float:
    """std / |mean| of the initial logits over the held-out inputs (HR and bicubic, one pass)."""
    with torch.no_grad():
        logits = torch.cat(one_pass(model, *held_out)).flatten()
    return float(logits.std() / logits.mean().abs().clamp_min(1e-12))


def train_alone(model: nn.Module, pairs, iterations: int, batch: int, patch: int, every: int, seed: int) -> dict:
    """Train ``model`` alone on HR vs bicubic; the held-out records every ``every`` iterations and at the end."""
    rng = np.random.default_rng(seed)
    held_out = patch_batch(pairs["test"], batch, patch, np.random.default_rng(10_000 + seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    model.train()
    records = [held_out_record(model, held_out, 0)]
    spread = initial_spread(model, held_out)
    start = time.process_time()
    for iteration in range(1, iterations + 1):
        loss = bce(*one_pass(model, *patch_batch(pairs["train"], batch, patch, rng)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if iteration % every == 0 or iteration == iterations:
            records.append(held_out_record(model, held_out, iteration))
    return {"records": records, "initial_spread": spread, "cpu_seconds": round(time.process_time() - start, 1)}


def first_separated(records: list[dict], level: float) -> int | None:
    """The first logged iteration with pairs_ranked >= level (None: never)."""
    return next((r["iteration"] for r in records if r["pairs_ranked"] >= level), None)


def summary_table(results: dict[str, list[dict]], level: float) -> str:
    lines = [f"| D | initial spread (std/|mean|) | pairs ranked at the end | separation at the end | "
             f"first iteration ranked >= {level} |", "| --- | --- | --- | --- | --- |"]
    for row, runs in results.items():
        ranked = [run["records"][-1]["pairs_ranked"] for run in runs]
        gaps = [run["records"][-1]["separation"] for run in runs]
        spreads = [run["initial_spread"] for run in runs]
        firsts = [first_separated(run["records"], level) for run in runs]

        def fmt(values: list[float], digits: int) -> str:
            if len(values) == 1:
                return f"{values[0]:.{digits}f}"
            return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"

        lines.append(f"| {row} | {fmt(spreads, 4)} | {fmt(ranked, 3)} | {fmt(gaps, 3)} | "
                     f"{', '.join('never' if f is None else str(f) for f in firsts)} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--batch", type=int, default=8, help="HR patches per iteration (as many bicubic)")
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--num-feat", type=int, default=64, help="base width (64 as in options/x4.yml)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--level", type=float, default=0.9, help="pairs-ranked level reported as 'separated'")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that the script runs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.every, args.batch, args.patch, args.num_feat, args.seeds = 4, 2, 2, 32, 8, 1
        args.rows = ["FusionSE, se: improved", "FusionSE without BN (0.1.x)"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    pairs = fundus_pairs()
    results: dict[str, list[dict]] = {}
    for row in args.rows:
        results[row] = []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = build(row, args.num_feat, args.patch)
            results[row].append(train_alone(model, pairs, args.iterations, args.batch, args.patch, args.every, seed))
            print(f"{row} seed {seed}: {results[row][-1]['records'][-1]}", file=sys.stderr, flush=True)
    table = summary_table(results, args.level)
    print(table)
    write_report("discriminator", {"settings": {k: v for k, v in vars(args).items() if k != "out"} | {
        "out": str(args.out) if args.out else None}, "results": results, "table": table}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
