"""Quality at equal CPU budget: SEEDSR (bicubic skip on / off) vs BasicSR's EDSR vs bicubic, on a real fundus photo.

    python -m benchmarks.quality --scale 4 --cpu-seconds 600 --out benchmarks/results/quality_x4.json
    python -m benchmarks.quality --quick      # seconds; what the test suite runs so this script does not rot

Data (:mod:`benchmarks.lib.fundus`): scikit-image's fundus photograph (1411 x 1411, RGB), mod-cropped to 1408.
Columns [0, 896) train, columns [896, 1408) are held out (it includes the dark border, so whole-image and FOV metrics
differ). LR = MATLAB-style bicubic of each region (medsr_se.utils.bicubic.matlab_bicubic), as the STARE preparation
does.

Training (same for every model): L1 loss, Adam lr 1e-4 betas (0.9, 0.999) eps 1e-8, batch 4, LR patch 32, random
flips, torch threads = 2, until the process has used ``--cpu-seconds`` of CPU time (process_time, so a busy
machine slows every model alike). Models: SEEDSRGenerator 64x16 with img_residual on / off, BasicSR EDSR 64x16.
``seedsr_gan`` is the recipe scaled down: the first ``--gan-start`` share of the same budget as ``seedsr_skip``
(the L1 pretraining stage), the rest through ``RelativisticGANModel`` built from ``options/x{scale}.yml``
(FusionSEDiscriminator, FusionLoss, EMA) with batch 4 and gt 128. Its VGG19 is ``--vgg`` (local ImageNet
weights) or, by default, an explicitly random VGG19 (ImageNet weights cannot be downloaded here): with random
features the perceptual term is not the paper's, and the report says which one ran.
Evaluation on the held-out region: BasicSR PSNR/SSIM (crop_border = scale), Y channel, FOV-masked; bicubic is
the MATLAB-style upsampling of the same LR.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

import medsr_se  # noqa: F401  (compat + registration)
from benchmarks.lib.fundus import centre_crop, evaluate, fundus_regions
from benchmarks.lib.reports import write_report
from benchmarks.lib.training import build_model, recipe_for_cpu_training, sample_batch, train_l1
from medsr_se.inference import image_to_tensor
from medsr_se.losses.vgg_features import MissingVGGWeights, resolve_vgg_weights

MODELS = ("seedsr_skip", "seedsr_plain", "edsr", "seedsr_gan")


def train(model: torch.nn.Module, regions, scale: int, cpu_seconds: float, seed: int) -> dict:
    """L1 + Adam on random crops until ``cpu_seconds`` of process CPU time are spent (``lib.training.train_l1``)."""
    return train_l1(model, regions, scale, seed, cpu_seconds=cpu_seconds, batch=4, patch=32)


def recipe_gan_model(generator: torch.nn.Module, scale: int, vgg: str, tmp: Path):
    """RelativisticGANModel from options/x{scale}.yml, narrowed to ``generator``'s size, starting from its weights."""
    from basicsr.models import build_model as build_basicsr_model

    opt = recipe_for_cpu_training(scale, tmp, vgg)
    opt["network_g"].update(num_feat=generator.conv_first.out_channels, num_block=len(generator.body))
    opt["network_d"]["num_feat"] = generator.conv_first.out_channels
    model = build_basicsr_model(opt)
    model.net_g.load_state_dict(generator.state_dict())
    model.model_ema(decay=0)  # the EMA copy starts from the pretrained generator too
    return model


def train_gan(model, regions, scale: int, cpu_seconds: float, seed: int) -> dict:
    """``optimize_parameters`` of the recipe on random crops (gt 128) until ``cpu_seconds`` are spent."""
    hr, lr = (image_to_tensor(x) for x in regions["train"])
    rng = np.random.default_rng(seed + 1)
    start_cpu, start_wall, iterations = time.process_time(), time.time(), 0
    while time.process_time() - start_cpu < cpu_seconds:
        lq, gt = sample_batch(hr, lr, scale, 4, 128 // scale, rng)
        model.feed_data({"lq": lq, "gt": gt})
        iterations += 1
        model.optimize_parameters(iterations)
    return {"gan_iterations": iterations, "gan_cpu_seconds": time.process_time() - start_cpu,
            "gan_wall_seconds": time.time() - start_wall}


def run_gan(regions, args) -> dict:
    """seedsr_gan: L1 stage for ``gan_start`` of the budget, then the GAN recipe for the rest (module docstring)."""
    import tempfile

    generator = build_model("seedsr_skip", args.scale, args.width, args.depth)
    untrained = evaluate(generator, regions, args.scale)
    pretrain = train(generator.train(), regions, args.scale, args.cpu_seconds * args.gan_start, args.seed)
    after_l1 = evaluate(generator, regions, args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        model = recipe_gan_model(generator, args.scale, args.vgg, Path(tmp))
        gan = train_gan(model, regions, args.scale, args.cpu_seconds * (1 - args.gan_start), args.seed)
    return {"untrained": untrained, "after_l1_stage": after_l1, "metrics": evaluate(model.net_g, regions, args.scale),
            "ema_metrics": evaluate(model.net_g_ema, regions, args.scale), "vgg": args.vgg, **pretrain, **gan}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--cpu-seconds", type=float, default=600)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["seedsr_skip", "seedsr_plain", "edsr"])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gan-start", type=float, default=0.5, help="share of the budget spent on the L1 stage")
    parser.add_argument("--vgg", default="random", help="VGG19 weights for seedsr_gan: a local file or 'random'")
    parser.add_argument("--quick", action="store_true", help="tiny networks, 0.5 CPU-seconds each, 128-px test crop")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:  # seconds: tiny networks and budgets, evaluated on a centred 128-px crop
        args.cpu_seconds, args.width, args.depth = 0.5, 8, 2
    if "seedsr_gan" in args.models:
        try:  # a wrong --vgg path fails now, not after the L1 stage
            resolve_vgg_weights("vgg19", args.vgg)
        except MissingVGGWeights as error:
            parser.error(f"--vgg: {error}")
    torch.set_num_threads(args.threads)
    regions = fundus_regions(args.scale)
    if args.quick:
        regions["test"] = centre_crop(*regions["test"], 128, args.scale)
    results = {"bicubic": {"metrics": evaluate(None, regions, args.scale)}}
    for name in args.models:
        if name == "seedsr_gan":
            results[name] = run_gan(regions, args)
        else:
            model = build_model(name, args.scale, args.width, args.depth)
            untrained = evaluate(model, regions, args.scale)
            run = train(model.train(), regions, args.scale, args.cpu_seconds, args.seed)
            results[name] = {"untrained": untrained, "metrics": evaluate(model, regions, args.scale), **run}
        print(f"{name}: {results[name]['iterations']} iterations, PSNR {results[name]['metrics']['psnr']:.2f} "
              f"(bicubic {results['bicubic']['metrics']['psnr']:.2f})", flush=True)
    write_report("quality", {"scale": args.scale, "cpu_seconds_per_model": args.cpu_seconds, "width": args.width,
                             "depth": args.depth, "results": results}, args.out)
    bicubic = results["bicubic"]["metrics"]
    print("| model | iterations | PSNR | SSIM | PSNR-Y | PSNR-FOV | SSIM-FOV | gain over bicubic (PSNR / PSNR-FOV) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = [(name, entry["metrics"]) for name, entry in results.items()]
    if "seedsr_gan" in results:
        rows += [("seedsr_gan, L1 stage only", results["seedsr_gan"]["after_l1_stage"]),
                 ("seedsr_gan, EMA weights", results["seedsr_gan"]["ema_metrics"])]
    for name, m in rows:
        entry = results.get(name, {})
        print(f"| {name} | {entry.get('iterations', '–')} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['psnr_y']:.2f} | "
              f"{m['psnr_fov']:.2f} | {m['ssim_fov']:.4f} | {m['psnr'] - bicubic['psnr']:+.2f} / "
              f"{m['psnr_fov'] - bicubic['psnr_fov']:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
