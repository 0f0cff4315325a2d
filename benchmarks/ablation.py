"""Ablation of the paper's two claims, with controls and seeds, on the held-out fundus protocol (benchmarks.lib).

    python -m benchmarks.ablation --out benchmarks/results/ablation.json     # about 70 min on 2 cores, run alone
    python -m benchmarks.ablation --quick                                    # seconds; what the test suite runs

Claim 1, "improved SE blocks preserve essential channels in deep networks": at equal CPU budget, SEEDSR with
``se: improved`` against the same network with ``se: plain`` (Hu et al.'s SE) and ``se: none``, with and without
the bicubic image skip, and BasicSR's EDSR with and without the same zero-initialised bicubic skip (the control
that isolates the SE blocks from the skip). The mechanism: mean |feature| after each residual block and the mean
SE scale of each block, at initialisation and after training, for improved / plain / none.
Claim 2, "fusion loss balances fidelity, realism and perceptual quality": from the same L1-trained generator
(each seed's SEEDSR improved + skip), the recipe's GAN stage (FusionSEDiscriminator + FusionLoss) against BasicSR's
VGGStyleDiscriminator with FusionLoss, and FusionSEDiscriminator with ESRGAN's loss weights (L1 0.01, perceptual 1,
GAN 0.005, no MSE), at equal GAN budget.

Protocol (:mod:`benchmarks.lib.fundus`): scikit-image's fundus photograph, columns 0-895 train, 896-1407 held out; LR by
MATLAB-style bicubic; L1, Adam 1e-4 (0.9, 0.999) eps 1e-8, batch 4, HR patch 128 (LR 128/scale), random flips.
Networks are narrowed to ``--width`` (32) features so three seeds of every row fit the time; the depth stays 16
blocks (the claim is about depth). Equal CPU budget: the CPU seconds per iteration of every variant are measured
first, all together while the process is alone on the machine (``calibrate_all``), and every run then trains for
budget / cost iterations, so a busy machine later slows the runs without changing what they learn. The GAN
stage's VGG19 is random unless ``--vgg`` names a local ImageNet file (not downloadable here), so its
perceptual term is not the paper's.
Metrics on the held-out region: PSNR, SSIM (RGB, crop_border = scale), PSNR-FOV and vessel F1
(medsr_se.metrics.vessel_metrics); every row is the mean ± sample std over ``--seeds``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import medsr_se  # noqa: F401  (compat + registration)
from benchmarks.lib import training
from benchmarks.lib.fundus import centre_crop, evaluate, fundus_regions
from benchmarks.lib.reports import write_report
from benchmarks.lib.timing import cpu_seconds_per_call
from benchmarks.lib.training import recipe_for_cpu_training, sample_batch
from medsr_se.archs.improved_se import spatial_mean
from medsr_se.archs.seedsr_arch import SEEDSRGenerator, bicubic_upsample
from medsr_se.inference import image_to_tensor

HR_PATCH = 128
BATCH = 4
COLUMNS = ("psnr", "ssim", "psnr_fov", "vessel_f1")
# row name -> (architecture, bicubic skip, se); the x8 block repeats the rows that decide claim 1
L1_ROWS = {
    "EDSR (BasicSR)": ("edsr", False, None),
    "EDSR + bicubic skip": ("edsr", True, None),
    "SEEDSR + skip, se: improved": ("seedsr", True, "improved"),
    "SEEDSR + skip, se: plain": ("seedsr", True, "plain"),
    "SEEDSR + skip, se: none": ("seedsr", True, "none"),
    "SEEDSR paper layout, se: improved": ("seedsr", False, "improved"),
    "SEEDSR paper layout, se: plain": ("seedsr", False, "plain"),
}
X8_ROWS = ("EDSR + bicubic skip", "SEEDSR + skip, se: improved", "SEEDSR + skip, se: plain", "SEEDSR + skip, se: none")
GAN_START = "SEEDSR + skip, se: improved"
GAN_ROWS = {  # row name -> (discriminator type, FusionLoss weights)
    "FusionSEDiscriminator + FusionLoss (recipe)": ("FusionSEDiscriminator", {}),
    "VGGStyleDiscriminator + FusionLoss": ("VGGStyleDiscriminator", {}),
    "FusionSEDiscriminator + ESRGAN loss": ("FusionSEDiscriminator",
                                             {"l1_weight": 0.01, "vgg_weight": 1.0, "gan_weight": 0.005,
                                              "mse_weight": 0.0}),
}


class EDSRWithSkip(nn.Module):
    """BasicSR's EDSR plus SEEDSR's image skip: out = EDSR(x) − mean + bicubic(x), EDSR's last conv starting at zero.

    EDSR adds its RGB mean back to its output (``x / img_range + mean``); that constant is taken off again so the
    untrained network is bicubic exactly, like ``SEEDSRGenerator(img_residual=True)``."""

    def __init__(self, edsr: nn.Module, scale: int) -> None:
        super().__init__()
        self.edsr, self.scale = edsr, scale
        nn.init.zeros_(edsr.conv_last.weight)
        nn.init.zeros_(edsr.conv_last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.edsr(x) - self.edsr.mean + bicubic_upsample(x, self.scale)


def build(row: str, scale: int, width: int, depth: int, seed: int) -> nn.Module:
    """The network of ``row`` with weights drawn from ``seed``."""
    torch.manual_seed(seed)
    arch, skip, se = L1_ROWS[row]
    if arch == "edsr":
        from basicsr.archs.edsr_arch import EDSR

        edsr = EDSR(3, 3, num_feat=width, num_block=depth, upscale=scale)
        return EDSRWithSkip(edsr, scale) if skip else edsr
    return SEEDSRGenerator(num_feat=width, num_block=depth, upscale=scale, img_residual=skip, se=se)


def calibrate_l1(row: str, scale: int, regions, args) -> float:
    """CPU seconds per L1 iteration of ``row`` (a throw-away network, seed 0)."""
    return training.calibrate_l1(build(row, scale, args.width, args.depth, seed=0), regions, scale,
                                 args.calibration_calls, BATCH, HR_PATCH // scale)


def train_l1(model: nn.Module, regions, scale: int, iterations: int, seed: int) -> dict:
    return training.train_l1(model, regions, scale, seed, iterations=iterations, batch=BATCH,
                             patch=HR_PATCH // scale)


@torch.no_grad()
def depth_profile(model: nn.Module, lr_image: np.ndarray) -> dict[str, list[float]]:
    """Mean |feature| after each residual block and mean SE scale s of each block, on a 64x64 LR crop."""
    body = model.edsr.body if isinstance(model, EDSRWithSkip) else model.body
    magnitudes, scales, hooks = [], [], []
    for block in body:
        hooks.append(block.register_forward_hook(lambda _m, _i, out: magnitudes.append(out.abs().mean().item())))
        if hasattr(block, "se") and hasattr(block.se, "fc1"):
            hooks.append(block.se.register_forward_hook(
                lambda se, inputs, _out: scales.append(se.channel_scale(spatial_mean(inputs[0])).mean().item())))
    top, left = lr_image.shape[0] // 2 - 32, lr_image.shape[1] // 2 - 32
    model.eval()(image_to_tensor(np.ascontiguousarray(lr_image[top:top + 64, left:left + 64])))
    for hook in hooks:
        hook.remove()
    return {"feature_magnitude": magnitudes, "se_scale": scales}


def run_l1(row: str, scale: int, seed: int, iterations: int, regions, args) -> tuple[dict, nn.Module]:
    model = build(row, scale, args.width, args.depth, seed)
    profile_at_init = depth_profile(model, regions["test"][1])
    run = train_l1(model, regions, scale, iterations, seed)
    return {"seed": seed, **run, "metrics": evaluate(model, regions, scale), "profile_init": profile_at_init,
            "profile_trained": depth_profile(model, regions["test"][1])}, model


def gan_model(generator: SEEDSRGenerator, discriminator: str, loss_weights: dict, args, tmp: Path):
    """The x4 recipe's RelativisticGANModel at the ablation's width, starting from ``generator``'s weights."""
    from basicsr.models import build_model

    opt = recipe_for_cpu_training(4, tmp, args.vgg)
    opt["network_g"].update(num_feat=args.width, num_block=args.depth, img_residual=True, se="improved")
    if discriminator == "VGGStyleDiscriminator":
        opt["network_d"] = {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": args.width,
                            "input_size": HR_PATCH}
    else:
        opt["network_d"].update(num_feat=args.width)
    opt["train"]["fusion_opt"].update(loss_weights)
    model = build_model(opt)
    model.net_g.load_state_dict(generator.state_dict())
    model.model_ema(decay=0)
    return model


def gan_step(model, batch: tuple[torch.Tensor, torch.Tensor], counter: list[int]) -> None:
    model.feed_data({"lq": batch[0], "gt": batch[1]})
    counter[0] += 1
    model.optimize_parameters(counter[0])


def run_gan(row: str, generator: SEEDSRGenerator, seed: int, iterations: int | None, regions, args) -> dict:
    """GAN stage of ``row`` from ``generator``; ``iterations`` None = calibrate (returns cpu s per iteration)."""
    discriminator, weights = GAN_ROWS[row]
    hr, lr = (image_to_tensor(x) for x in regions["train"])
    rng, counter = np.random.default_rng(seed + 1), [0]
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(seed)
        model = gan_model(generator, discriminator, weights, args, Path(tmp))
        step = lambda: gan_step(model, sample_batch(hr, lr, 4, BATCH, HR_PATCH // 4, rng), counter)  # noqa: E731
        if iterations is None:
            return {"cpu_per_iteration": cpu_seconds_per_call(step, max(2, args.calibration_calls * 2 // 3), warmup=2)}
        start_cpu = time.process_time()
        for _ in range(iterations):
            step()
        log = model.get_current_log()  # the last iteration's logged terms
        return {"seed": seed, "iterations": iterations, "cpu_seconds": time.process_time() - start_cpu,
                "metrics": evaluate(model.net_g, regions, 4), "ema_metrics": evaluate(model.net_g_ema, regions, 4),
                "d_pairs_ranked": log.get("d_pairs_ranked"), "d_separation": log.get("d_separation"),
                "l_g_gan": log.get("l_g_gan")}


def mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summary_row(runs: list[dict], key: str = "metrics") -> dict:
    return {column: mean_std([run[key][column] for run in runs]) for column in COLUMNS}


def format_table(title: str, rows: dict[str, dict], bicubic: dict) -> str:
    lines = [f"| {title} | iterations | PSNR | SSIM | PSNR-FOV | vessel F1 | PSNR gain over bicubic |",
             "| --- | --- | --- | --- | --- | --- | --- |",
             f"| bicubic (MATLAB) | – | {bicubic['psnr']:.2f} | {bicubic['ssim']:.4f} | {bicubic['psnr_fov']:.2f} | "
             f"{bicubic['vessel_f1']:.3f} | – |"]
    for name, row in rows.items():
        cells = " | ".join(f"{m:.{4 if c == 'ssim' else 3 if c == 'vessel_f1' else 2}f} ± "
                           f"{s:.{4 if c == 'ssim' else 3 if c == 'vessel_f1' else 2}f}"
                           for c, (m, s) in ((c, row["summary"][c]) for c in COLUMNS))
        gain = row["summary"]["psnr"][0] - bicubic["psnr"]
        lines.append(f"| {name} | {row['iterations']} | {cells} | {gain:+.2f} ± {row['summary']['psnr'][1]:.2f} |")
    return "\n".join(lines)


def profile_table(rows: dict[str, dict]) -> str:
    """Mean |feature| after blocks 1, 4, 8, 12, 16 and mean SE scale, at init and trained, averaged over seeds."""
    picks = [0, 3, 7, 11, 15]
    lines = ["| variant | state | |f| after block 1 / 4 / 8 / 12 / 16 | mean SE scale, block 1 / 4 / 8 / 12 / 16 |",
             "| --- | --- | --- | --- |"]
    for name, row in rows.items():
        for state in ("profile_init", "profile_trained"):
            magnitudes = np.mean([run[state]["feature_magnitude"] for run in row["runs"]], axis=0)
            scales = [run[state]["se_scale"] for run in row["runs"] if run[state]["se_scale"]]
            chosen = [i for i in picks if i < len(magnitudes)]
            scale_text = (" / ".join(f"{np.mean(scales, axis=0)[i]:.3f}" for i in chosen) if scales else "–")
            lines.append(f"| {name} | {state.split('_')[1]} | {' / '.join(f'{magnitudes[i]:.3f}' for i in chosen)} "
                         f"| {scale_text} |")
    return "\n".join(lines)


def l1_rows(scale: int, args) -> list[str]:
    """The L1 rows run at ``scale``: all of them, or with --gan-only just the GAN stage's start."""
    if args.gan_only:
        return [GAN_START]
    return list(L1_ROWS) if scale == 4 else list(X8_ROWS)


def calibrate_all(scales: tuple[int, ...], args) -> dict[str, float]:
    """CPU seconds per iteration of every run to come, measured first and together while the machine is quiet."""
    costs = {}
    for scale in scales:
        regions = fundus_regions(scale)
        for name in l1_rows(scale, args):
            costs[f"x{scale} {name}"] = calibrate_l1(name, scale, regions, args)
        if scale == 4 and not args.no_gan:
            start = build(GAN_START, 4, args.width, args.depth, seed=0)  # the cost does not depend on the weights
            for name in GAN_ROWS:
                costs[f"gan {name}"] = run_gan(name, start, 0, None, regions, args)["cpu_per_iteration"]
    for key, cost in costs.items():
        print(f"calibration: {key}: {cost:.3f} CPU-s per iteration", flush=True)
    return costs


def l1_block(scale: int, names: list[str], regions, costs: dict[str, float],
             args) -> tuple[dict, dict[int, nn.Module]]:
    """Every row of ``names`` at ``scale``, all seeds; returns the rows and the GAN start generators per seed."""
    rows, gan_starts = {}, {}
    for name in names:
        cost = costs[f"x{scale} {name}"]
        iterations = max(1, round(args.cpu_seconds / cost))
        runs = []
        for seed in args.seeds:
            run, model = run_l1(name, scale, seed, iterations, regions, args)
            runs.append(run)
            if scale == 4 and name == GAN_START:
                gan_starts[seed] = model
            print(f"x{scale} {name} seed {seed}: {iterations} it, PSNR {run['metrics']['psnr']:.2f}, "
                  f"vessel F1 {run['metrics']['vessel_f1']:.3f} ({run['wall_seconds']:.0f} s)", flush=True)
        rows[name] = {"cpu_per_iteration": cost, "iterations": iterations, "runs": runs,
                      "summary": summary_row(runs)}
    return rows, gan_starts


def gan_block(gan_starts: dict[int, nn.Module], regions, costs: dict[str, float], args) -> dict:
    rows = {}
    for name in GAN_ROWS:
        cost = costs[f"gan {name}"]
        iterations = max(1, round(args.gan_cpu_seconds / cost))
        runs = [run_gan(name, gan_starts[seed], seed, iterations, regions, args) for seed in args.gan_seeds]
        for run in runs:
            print(f"GAN {name} seed {run['seed']}: {iterations} it, PSNR {run['metrics']['psnr']:.2f}, "
                  f"D pairs ranked (last iteration) {run['d_pairs_ranked']}", flush=True)
        rows[name] = {"cpu_per_iteration": cost, "iterations": iterations, "runs": runs,
                      "summary": summary_row(runs), "ema_summary": summary_row(runs, "ema_metrics")}
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-seconds", type=float, default=150, help="CPU budget of each L1 run")
    parser.add_argument("--gan-cpu-seconds", type=float, default=120, help="CPU budget of each GAN-stage run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calibration-calls", type=int, default=10)
    parser.add_argument("--no-x8", action="store_true", help="skip the x8 block")
    parser.add_argument("--no-gan", action="store_true", help="skip the GAN-stage block")
    parser.add_argument("--gan-only", action="store_true",
                        help="x4 only, L1 rows reduced to the GAN stage's start (its generator), then the GAN block")
    parser.add_argument("--vgg", default="random", help="VGG19 weights of the GAN stage: a local file or 'random'")
    parser.add_argument("--test-crop", type=int, default=0, help="evaluate on a centred crop of this size (0: all)")
    parser.add_argument("--quick", action="store_true", help="tiny networks and budgets (seconds); for the tests")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    args.gan_seeds = args.seeds
    if args.quick:
        args.cpu_seconds, args.gan_cpu_seconds, args.width, args.depth = 0.5, 0.5, 4, 2
        args.seeds, args.calibration_calls, args.no_x8, args.test_crop = [0, 1], 1, True, 128
        args.gan_seeds = [0]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.time()
    report: dict = {"test_crop": args.test_crop, "cpu_seconds": args.cpu_seconds,
                    "gan_cpu_seconds": args.gan_cpu_seconds, "seeds": args.seeds,
                    "width": args.width, "depth": args.depth, "hr_patch": HR_PATCH, "batch": BATCH, "vgg": args.vgg}
    tables, scales = [], (4,) if args.no_x8 or args.gan_only else (4, 8)
    costs = calibrate_all(scales, args)
    report["calibration_cpu_seconds_per_iteration"] = costs
    for scale in scales:
        regions = fundus_regions(scale)
        if args.test_crop:
            regions["test"] = centre_crop(*regions["test"], args.test_crop, scale)
        bicubic = evaluate(None, regions, scale)
        names = l1_rows(scale, args)
        rows, gan_starts = l1_block(scale, names, regions, costs, args)
        report[f"x{scale}"] = {"bicubic": bicubic, "rows": rows}
        tables.append(format_table(f"x{scale}, L1", rows, bicubic))
        if scale == 4:
            if not args.gan_only:
                tables.append(profile_table({name: rows[name] for name in rows if name.startswith("SEEDSR + skip")}))
            if not args.no_gan:
                gan_rows = gan_block(gan_starts, regions, costs, args)
                report["gan_x4"] = {"start": GAN_START, "rows": gan_rows}
                tables.append(format_table("x4, GAN stage from the L1 model", gan_rows, bicubic))
    report["wall_seconds"] = time.time() - started
    write_report("ablation", report, args.out)
    print("\n\n".join(tables))
    print(f"\ntotal {report['wall_seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
