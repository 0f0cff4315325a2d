"""Full GAN iteration through the model classes: RelativisticGANModel vs BasicSR's ESRGANModel.

    python benchmarks/gan_iteration.py --out benchmarks/results/gan_iteration.json
    python benchmarks/gan_iteration.py --quick

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved_medians, optimize_step, recipe_for_cpu_training, write_report  # noqa: E402

import medsr_se  # noqa: E402,F401


def build_models(vgg_file: Path, tmp: Path, quick: bool):
    """Both models from ``options/x4.yml`` (batch, optimizers, EMA as in the recipe); ESRGAN swaps in its networks
    and losses. ``quick`` shrinks the networks to seconds."""
    from basicsr.archs import vgg_arch
    from basicsr.models import build_model

    from medsr_se.utils.options import deep_update

    width, g_blocks, rrdb_blocks = (8, 2, 1) if quick else (64, 16, 23)
    vgg_arch.VGG_PRETRAIN_PATH = str(vgg_file)
    ours = deep_update(recipe_for_cpu_training(4, tmp / "ours", str(vgg_file)), {
        "name": "ours", "network_g": {"num_feat": width, "num_block": g_blocks}, "network_d": {"num_feat": width}})
    esrgan = recipe_for_cpu_training(4, tmp / "esrgan", str(vgg_file))
    del esrgan["train"]["fusion_opt"]
    esrgan["network_g"] = {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": width,
                           "num_block": rrdb_blocks, "num_grow_ch": 32}
    esrgan["network_d"] = {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": width}
    deep_update(esrgan, {
        "name": "esrgan", "model_type": "ESRGANModel",
        "train": {"pixel_opt": {"type": "L1Loss", "loss_weight": 0.01, "reduction": "mean"},
                  "perceptual_opt": {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1}, "vgg_type": "vgg19",
                                     "use_input_norm": True, "range_norm": False, "perceptual_weight": 1.0,
                                     "style_weight": 0, "criterion": "l1"},
                  "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "real_label_val": 1.0,
                              "fake_label_val": 0.0, "loss_weight": 0.005}}})
    for opt in (ours, esrgan):
        opt["train"]["scheduler"]["milestones"] = [10**6]
    if quick:  # both perceptual terms stop at conv1_2: the VGG to conv5_4 would be most of the time
        ours["train"]["fusion_opt"]["vgg_layers"] = {"conv1_2": 1.0}
        esrgan["train"]["perceptual_opt"]["layer_weights"] = {"conv1_2": 1}
    return {"RelativisticGANModel": build_model(ours), "ESRGANModel": build_model(esrgan)}


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
