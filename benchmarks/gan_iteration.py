"""Full GAN iteration through the model classes: RelativisticGANModel vs BasicSR's ESRGANModel.

    python -m benchmarks.gan_iteration --out benchmarks/results/gan_iteration.json
    python -m benchmarks.gan_iteration --quick

Ours: SEEDSRGenerator 64x16 (bicubic skip), FusionSEDiscriminator 64, FusionLoss (VGG19 conv5_4, L1, RaGAN, MSE).
ESRGAN: RRDBNet 64x23, VGGStyleDiscriminator 64, L1 0.01 + perceptual (VGG19 conv5_4) + vanilla GAN 0.005.
Both: batch 4, gt 128 (x4), EMA 0.999, Adam; one ``optimize_parameters`` call timed, interleaved, medians.
Both VGGs load the same randomly initialised VGG19 file (no ImageNet weights here; the cost is the same).
Target: ours >= 3x ESRGAN's iterations per second.

Also timed, interleaved with the iterations: the perceptual term alone in each model (VGG19 forward on sr and gt,
backward to sr), which both iterations must pay; ``ESRGAN / perceptual`` bounds the speed-up any generator and
discriminator could reach. And counted (``torch.utils.flop_counter``): the floating-point operations of one
iteration of each model, in total and per network, forward and backward; their ratio is the speed-up the two
iterations would show at equal arithmetic throughput.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import torch

import medsr_se  # noqa: F401
from benchmarks.lib.reports import write_report
from benchmarks.lib.timing import interleaved_medians
from benchmarks.lib.training import build_models, optimize_step


def iteration_flops(model, batch: dict) -> dict[str, float]:
    """GFLOPs of one ``optimize_parameters`` (forward and backward), in total and per top-level module."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model.feed_data(batch)
        model.optimize_parameters(10**6)  # any iteration past the warm-up that updates G
    per_module = {name: sum(counts.values()) / 1e9 for name, counts in counter.get_flop_counts().items()
                  if "." not in name and name != "Global"}
    return {"total": counter.get_total_flops() / 1e9, **per_module}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from torchvision.models import vgg19

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        vgg_file = tmp / "vgg19-random.pth"
        torch.save(vgg19(weights=None).state_dict(), vgg_file)
        models = build_models(vgg_file, tmp, args.quick)
        count = 1 if args.quick else 4  # quick: one image (the 128-px input BasicSR's VGG discriminator needs)
        batch = {"lq": torch.rand(count, 3, 32, 32), "gt": torch.rand(count, 3, 128, 128)}
        counter = itertools.count(1)

        def perceptual_of(loss_fn):
            def step() -> None:
                sr = torch.rand(count, 3, 128, 128, requires_grad=True)
                loss_fn(sr, batch["gt"]).backward()
            return step

        ours, esrgan = models["RelativisticGANModel"], models["ESRGANModel"]
        steps = {name: optimize_step(m, batch, counter) for name, m in models.items()}
        steps["perceptual_ours"] = perceptual_of(ours.cri_fusion.perceptual)
        steps["perceptual_esrgan"] = perceptual_of(lambda sr, gt: esrgan.cri_perceptual(sr, gt)[0])
        medians = interleaved_medians(steps, 1 if args.quick else args.repeats, warmup=1)
        gflops = {name: iteration_flops(model, batch) for name, model in models.items()}
    flop_ratio = gflops["ESRGANModel"]["total"] / gflops["RelativisticGANModel"]["total"]
    print({"gflops": gflops, "flop_ratio": flop_ratio}, flush=True)
    speedup = medians["ESRGANModel"] / medians["RelativisticGANModel"]
    bound = medians["ESRGANModel"] / medians["perceptual_ours"]
    print({**medians, "speedup": speedup, "bound_with_free_g_and_d": bound}, flush=True)
    write_report("gan_iteration", {"batch": count, "gt_size": 128, "seconds": medians, "speedup_vs_esrgan": speedup,
                                   "speedup_bound_with_free_g_and_d": bound, "gflops_per_iteration": gflops,
                                   "flop_ratio_esrgan_over_ours": flop_ratio}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
