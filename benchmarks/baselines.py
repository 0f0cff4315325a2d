"""The seed's comparison at equal CPU budget: every baseline it names against SEEDSR, on the held-out fundus
protocol of quality / ablation (:mod:`benchmarks.lib.fundus`, the shared loop of :mod:`benchmarks.lib.training`).

    python -m benchmarks.baselines --out benchmarks/results/baselines.json   # ~80 min on 2 cores (estimate), alone
    python -m benchmarks.baselines --quick --out /tmp/baselines.json        # well under a minute; the tests run it

Methods (architectures of medsr_se.archs and BasicSR, narrowed to ``--width`` features and ``--depth`` blocks so
that three seeds of every row fit the time): bicubic, SRCNN (paper widths 64/32), VDSR (20 layers of ``--width``),
EDSR, SRResNet and SRGAN (MSRResNet; LargeScaleMSRResNet above x4), ESRGAN (RRDBNet, ``--depth`` // 4 RRDB
blocks: each holds 15 convolutions), P-GAN (``--depth`` // stages residual blocks per x2 stage), SEEDSR
(img_residual). Equal budget: the CPU seconds per iteration of every network are measured first, together, while
the process is alone (as the ablation does); each row then trains budget / cost iterations, so load on the machine
later does not change what is learnt. GAN rows (SRGAN, ESRGAN, P-GAN) start from their PSNR stage: the first
``--gan-start`` of the budget is the L1 stage, the rest BasicSR's SRGANModel / ESRGANModel built from
``options/baselines/<method>_x<scale>.yml`` (narrowed; its VGG perceptual term dropped: ImageNet VGG19 weights
cannot be downloaded here, so the GAN rows are L1 + adversarial only; the report says so).
Metrics on the held-out region (mean ± sample std over ``--seeds``): PSNR, SSIM (RGB, crop_border = scale),
PSNR-FOV, vessel F1, NIQE (BasicSR's) and LR consistency (medsr_se.metrics.lr_consistency).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import medsr_se  # noqa: F401  (compat + registration)
from benchmarks.lib import training
from benchmarks.lib.fundus import centre_crop, fundus_regions
from benchmarks.lib.reports import write_report
from benchmarks.lib.timing import cpu_seconds_per_call, interleaved_medians
from medsr_se.evaluation import image_metrics
from medsr_se.inference import image_to_tensor, tensor_to_image
from medsr_se.metrics.complexity import gflops_per_megapixel, parameter_count
from medsr_se.utils.bicubic import matlab_bicubic
from medsr_se.utils.options import deep_update, for_in_process_model, load_recipe

HR_PATCH = 128
BATCH = 4
COLUMNS = ("psnr", "ssim", "psnr_fov", "vessel_f1", "niqe", "lr_psnr")
GAN_METHODS = ("srgan", "esrgan", "pgan")
TRANSFORMERS = ("swinir", "hat", "dat", "drct", "atd")  # narrowed: transformer_options
WINDOW = 8  # attention windows of the narrowed transformers (SwinIR's published size; HAT / DRCT / ATD use 16)


def transformer_options(method: str, scale: int, width: int, depth: int) -> dict:
    """The ``network_g`` of a transformer row, narrowed as the CNN rows are: ``width`` channels in 4 heads,
    ``depth`` // 4 blocks in each of 4 residual groups (DRCT: 4 groups of its fixed 5 blocks), windows of 8
    (DAT: 8 x 16 / 16 x 8), MLPs twice as wide; the rest scaled down with the width (HAT's channel attention, ATD's
    dictionary and categories); at least 16 channels (DAT's interaction branches divide the width by 16)."""
    width = max(16, width)
    groups = [max(1, depth // 4)] * 4
    common = {"upscale": scale, "img_size": HR_PATCH // scale, "embed_dim": width, "depths": groups,
              "num_heads": [4] * 4}
    return {
        "swinir": {"type": "SwinIR", "in_chans": 3, "window_size": WINDOW, "mlp_ratio": 2.0, "img_range": 1.0,
                   "upsampler": "pixelshuffle", "resi_connection": "1conv", **common},
        "hat": {"type": "HATSR", "num_in_ch": 3, "num_out_ch": 3, "window_size": WINDOW, "mlp_ratio": 2.0,
                "compress_ratio": 2, "squeeze_factor": max(1, min(8, width // 4)), **common},
        "dat": {"type": "DATSR", "num_in_ch": 3, "num_out_ch": 3, "split_size": [WINDOW, 2 * WINDOW],
                "expansion_factor": 2.0, **common},
        "drct": {"type": "DRCTSR", "num_in_ch": 3, "num_out_ch": 3, "window_size": WINDOW, "mlp_ratio": 2.0,
                 "gc": max(8, width // 2), **common},
        "atd": {"type": "ATDSR", "num_in_ch": 3, "num_out_ch": 3, "window_size": WINDOW, "mlp_ratio": 2.0,
                "category_size": 64, "num_tokens": 32, "reducted_dim": 8, **common},
    }[method]


def network_options(method: str, scale: int, width: int, depth: int) -> dict:
    """The ``network_g`` of a row: the recipe's type, narrowed."""
    if method in TRANSFORMERS:
        return transformer_options(method, scale, width, depth)
    stages = scale.bit_length() - 1
    srresnet_type = "MSRResNet" if scale <= 4 else "LargeScaleMSRResNet"  # BasicSR's builds x2-x4 only
    return {
        "srcnn": {"type": "SRCNN", "num_in_ch": 3, "num_out_ch": 3, "upscale": scale},
        "vdsr": {"type": "VDSR", "num_in_ch": 3, "num_out_ch": 3, "upscale": scale, "num_feat": width},
        "edsr": {"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": width, "num_block": depth,
                 "upscale": scale},
        "srresnet": {"type": srresnet_type, "num_in_ch": 3, "num_out_ch": 3, "num_feat": width, "num_block": depth,
                     "upscale": scale},
        "srgan": {"type": srresnet_type, "num_in_ch": 3, "num_out_ch": 3, "num_feat": width, "num_block": depth,
                  "upscale": scale},
        "esrgan": {"type": "RRDBNet" if scale <= 4 else "LargeScaleRRDBNet", "num_in_ch": 3, "num_out_ch": 3,
                   "scale": scale, "num_feat": width,
                   "num_block": max(1, depth // 4), "num_grow_ch": max(2, width // 2)},
        "pgan": {"type": "PGANGenerator", "num_in_ch": 3, "num_out_ch": 3, "num_feat": width,
                 "num_block": max(1, depth // stages), "upscale": scale},
        "seedsr": {"type": "SEEDSRGenerator", "num_feat": width, "num_block": depth, "upscale": scale,
                   "img_residual": True},
    }[method]


def build(method: str, scale: int, args, seed: int) -> nn.Module:
    from basicsr.archs import build_network

    from medsr_se.inference.window import any_size

    torch.manual_seed(seed)
    return any_size(build_network(network_options(method, scale, args.width, args.depth)))  # SwinIR: padded


@torch.no_grad()
def inference_costs(method: str, scale: int, regions, args) -> dict[str, float]:
    """Parameters, GFLOPs per output megapixel (:func:`medsr_se.metrics.complexity.gflops_per_megapixel`, the
    comparison table's: convolutions, linear layers and attention's products) and wall seconds per held-out image
    (its LR region; median of 3 after a warm-up, ``--threads`` threads)."""
    model = build(method, scale, args, 0).eval()
    lr = image_to_tensor(regions["test"][1])
    seconds = interleaved_medians({"infer": lambda: model(lr)}, repeats=3, warmup=1)["infer"]
    return {"parameters": parameter_count(model), "gflops_per_mp": gflops_per_megapixel(model, 3),
            "s_per_image": seconds}


def gan_model(method: str, generator: nn.Module, scale: int, args, tmp: Path):
    """BasicSR's GAN model of the method's recipe, narrowed, its generator starting from ``generator``."""
    from basicsr.models import build_model

    opt = for_in_process_model(load_recipe(f"baselines/{method}_x{scale}"), tmp)
    opt["network_g"] = network_options(method, scale, args.width, args.depth)
    opt["network_d"] = deep_update(dict(opt["network_d"]), {"num_feat": args.width})
    if opt["network_d"]["type"] == "VGGStyleDiscriminator":
        opt["network_d"]["input_size"] = HR_PATCH
    opt["train"].pop("perceptual_opt", None)  # module docstring
    opt["train"].setdefault("pixel_opt", {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"})
    model = build_model(opt)
    model.net_g.load_state_dict(generator.state_dict())
    model.model_ema(decay=0)
    return model


def gan_steps(model, regions, scale: int, seed: int):
    """A function running one GAN iteration on a random batch, and its iteration counter."""
    hr, lr = (image_to_tensor(x) for x in regions["train"])
    rng, counter = np.random.default_rng(seed + 1), [0]

    def step() -> None:
        lq, gt = training.sample_batch(hr, lr, scale, BATCH, HR_PATCH // scale, rng)
        model.feed_data({"lq": lq, "gt": gt})
        counter[0] += 1
        model.optimize_parameters(counter[0])

    return step, counter


def calibrate(rows: list[tuple[int, str]], regions_by_scale, args) -> dict[str, float]:
    """CPU seconds per L1 (and GAN) iteration of every row, measured first and together."""
    costs = {}
    for scale, method in rows:
        regions = regions_by_scale[scale]
        costs[f"x{scale} {method}"] = training.calibrate_l1(build(method, scale, args, 0), regions, scale,
                                                            args.calibration_calls, BATCH, HR_PATCH // scale)
        if method in GAN_METHODS:
            with tempfile.TemporaryDirectory() as tmp:
                step, _ = gan_steps(gan_model(method, build(method, scale, args, 0), scale, args, Path(tmp)),
                                    regions, scale, 0)
                costs[f"x{scale} {method} gan"] = cpu_seconds_per_call(step, args.calibration_calls)
    for key, cost in costs.items():
        print(f"calibration: {key}: {cost:.3f} CPU-s per iteration", flush=True)
    return costs


def saved_report(option: str, path: Path, key: str) -> dict:
    """A saved report given as ``option``, holding ``key``; one ``error:`` line naming the option and the file (exit
    status 1) when it cannot be read or is not such a report."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: {option} {path}: cannot read a JSON report ({' '.join(str(error).split())})") \
            from error
    if not isinstance(report, dict) or key not in report:
        raise SystemExit(f"error: {option} {path}: not a report of python -m benchmarks.baselines (no {key})")
    return report


def saved_calibration(report: Path, rows: list[tuple[int, str]]) -> dict[str, float]:
    """The CPU seconds per iteration a saved report measured, for every row of this run (each must be there)."""
    saved = saved_report("--calibration", report, "calibration_cpu_seconds_per_iteration")[
        "calibration_cpu_seconds_per_iteration"]
    wanted = {key for scale, method in rows for key in saved if key.split(" gan")[0] == f"x{scale} {method}"}
    missing = {f"x{scale} {method}" for scale, method in rows} - {key.split(" gan")[0] for key in wanted}
    if missing:
        raise SystemExit(f"error: --calibration {report}: no calibration of {', '.join(sorted(missing))}")
    print(f"calibration: from {report}", flush=True)
    return {key: saved[key] for key in wanted}


@torch.no_grad()
def evaluate(model: nn.Module | None, regions, scale: int) -> dict:
    hr, lr = regions["test"]
    output = matlab_bicubic(lr, scale) if model is None else tensor_to_image(model.eval()(image_to_tensor(lr)),
                                                                               np.uint8)
    metrics = image_metrics(output, hr, scale, lr=lr, niqe=True)
    return {column: metrics[column] for column in COLUMNS}


def run_row(method: str, scale: int, seed: int, costs: dict[str, float], regions, args) -> dict:
    model = build(method, scale, args, seed)
    l1_budget = args.cpu_seconds * (args.gan_start if method in GAN_METHODS else 1.0)
    iterations = max(1, round(l1_budget / costs[f"x{scale} {method}"]))
    run = training.train_l1(model, regions, scale, seed, iterations=iterations, batch=BATCH,
                            patch=HR_PATCH // scale)
    if method not in GAN_METHODS:
        return {"seed": seed, **run, "metrics": evaluate(model, regions, scale)}
    run["l1_metrics"] = evaluate(model, regions, scale)
    gan_iterations = max(1, round(args.cpu_seconds * (1 - args.gan_start) / costs[f"x{scale} {method} gan"]))
    with tempfile.TemporaryDirectory() as tmp:
        gan = gan_model(method, model, scale, args, Path(tmp))
        step, _ = gan_steps(gan, regions, scale, seed)
        start = time.process_time()
        for _ in range(gan_iterations):
            step()
        run.update(gan_iterations=gan_iterations, gan_cpu_seconds=time.process_time() - start,
                   metrics=evaluate(gan.net_g, regions, scale), ema_metrics=evaluate(gan.net_g_ema, regions, scale))
    return {"seed": seed, **run}


def mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def iterations_cell(row: dict) -> str:
    """``L1 iterations`` (``L1 + GAN`` for the GAN rows), as trained by seed 0."""
    first = row["runs"][0]
    if "gan_iterations" in first:
        return f"{first['iterations']} + {first['gan_iterations']}"
    return str(first["iterations"])


def cpu_seconds_cell(row: dict) -> str:
    """Mean CPU seconds each seed trained (L1 and GAN stages together), measured while training."""
    return f"{np.mean([run['cpu_seconds'] + run.get('gan_cpu_seconds', 0.0) for run in row['runs']]):.0f}"


def cost_cells(costs: dict | None) -> str:
    """``GFLOPs/MP | s/image`` of a row (``–`` where the report has none)."""
    if not costs:
        return "– | –"
    return f"{costs['gflops_per_mp']:.1f} | {costs['s_per_image']:.2f}"


def format_table(scale: int, rows: dict[str, dict], bicubic: dict, costs: dict[str, dict]) -> str:
    lines = [f"x{scale}, {len(next(iter(rows.values()))['runs']) if rows else 0} seed(s)",
             "| method | iterations | CPU-s | GFLOPs/MP | s/image | PSNR | SSIM | PSNR-FOV | vessel F1 | NIQE "
             "| LR-PSNR |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
             "| bicubic | – | – | – | – | " + " | ".join(f"{bicubic[c]:.3f}" for c in COLUMNS) + " |"]
    for method, row in rows.items():
        cells = " | ".join(f"{row['summary'][c][0]:.3f} ± {row['summary'][c][1]:.3f}" for c in COLUMNS)
        lines.append(f"| {method} | {iterations_cell(row)} | {cpu_seconds_cell(row)} | "
                     f"{cost_cells(costs.get(f'x{scale} {method}'))} | {cells} |")
        if "l1_metrics" in row["runs"][0]:  # a GAN row: where its GAN stage started
            start = {c: mean_std([run["l1_metrics"][c] for run in row["runs"]]) for c in COLUMNS}
            cells = " | ".join(f"{start[c][0]:.3f} ± {start[c][1]:.3f}" for c in COLUMNS)
            lines.append(f"| {method}, its L1 stage | {row['runs'][0]['iterations']} | – | – | – | {cells} |")
    return "\n".join(lines)


def cost_table(costs: dict[str, dict]) -> str:
    """Parameters, GFLOPs per output megapixel and seconds per held-out image of every row measured."""
    lines = ["| row | parameters | GFLOPs/MP | s/image |", "| --- | --- | --- | --- |"]
    lines += [f"| {key} | {c['parameters']:,} | {c['gflops_per_mp']:.1f} | {c['s_per_image']:.2f} |"
              for key, c in costs.items()]
    return "\n".join(lines)


def tables(report: dict) -> str:
    """The markdown tables of a report (one per scale, and the inference costs)."""
    costs = report.get("inference_costs", {})
    blocks = [format_table(int(key[1:]), report[key]["rows"], report[key]["bicubic"], costs)
              for key in report if key[:1] == "x" and key[1:].isdigit()]
    return "\n\n".join(blocks + ([cost_table(costs)] if costs else []))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-seconds", type=float, default=150, help="CPU budget of every row (each seed)")
    parser.add_argument("--gan-start", type=float, default=0.5, help="share of a GAN row's budget in its L1 stage")
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--methods", nargs="+", default=["srcnn", "vdsr", "edsr", "srresnet", "srgan", "esrgan",
                                                        "pgan", "seedsr", *TRANSFORMERS])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calibration-calls", type=int, default=10)
    parser.add_argument("--test-crop", type=int, default=0, help="evaluate on a centred crop of this size (0: all)")
    parser.add_argument("--quick", action="store_true", help="tiny networks and budgets, x4, one seed; for the tests")
    parser.add_argument("--calibration", type=Path, metavar="REPORT",
                        help="take the CPU seconds per iteration from a saved report (measured alone) instead of "
                             "measuring them again")
    parser.add_argument("--costs-only", action="store_true",
                        help="measure parameters, GFLOPs/MP and s/image of every row, train nothing")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", type=Path, metavar="REPORT", help="print the tables of a saved report and stop")
    parser.add_argument("--costs", type=Path, metavar="REPORT",
                        help="with --table: take the inference costs from this --costs-only report")
    args = parser.parse_args(argv)
    if args.quick:
        args.cpu_seconds, args.width, args.depth, args.seeds = 0.2, 4, 2, [0]
        args.scales, args.calibration_calls, args.test_crop = [4], 1, 256
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table:
        report = saved_report("--table", args.table, "calibration_cpu_seconds_per_iteration")
        if args.costs:
            report["inference_costs"] = saved_report("--costs", args.costs, "inference_costs")["inference_costs"]
        print(tables(report))
        return 0
    torch.set_num_threads(args.threads)
    started = time.time()
    regions_by_scale = {scale: fundus_regions(scale) for scale in args.scales}
    if args.test_crop:
        for scale, regions in regions_by_scale.items():
            regions["test"] = centre_crop(*regions["test"], args.test_crop, scale)
    rows = [(scale, method) for scale in args.scales for method in args.methods]
    saved = (saved_report("--calibration", args.calibration, "calibration_cpu_seconds_per_iteration")
             .get("inference_costs", {}) if args.calibration else {})
    inference = {f"x{scale} {method}": saved.get(f"x{scale} {method}") or inference_costs(
        method, scale, regions_by_scale[scale], args) for scale, method in rows}  # first, alone, like the calibration
    if args.costs_only:
        report = {"inference_costs": inference, "threads": args.threads, "test_crop": args.test_crop}
        write_report("baselines_costs", report, args.out)
        print(cost_table(inference))
        return 0
    costs = saved_calibration(args.calibration, rows) if args.calibration else calibrate(rows, regions_by_scale, args)
    report: dict = {"cpu_seconds": args.cpu_seconds, "gan_start": args.gan_start, "seeds": args.seeds,
                    "width": args.width, "depth": args.depth, "hr_patch": HR_PATCH, "batch": BATCH,
                    "test_crop": args.test_crop, "perceptual_loss": "none (no ImageNet VGG19 here)",
                    "calibration_cpu_seconds_per_iteration": costs, "inference_costs": inference}
    for scale in args.scales:
        regions = regions_by_scale[scale]
        bicubic = evaluate(None, regions, scale)
        block = {}
        for _, method in [row for row in rows if row[0] == scale]:
            runs = [run_row(method, scale, seed, costs, regions, args) for seed in args.seeds]
            block[method] = {"iterations": runs[0]["iterations"], "runs": runs,
                             "summary": {c: mean_std([run["metrics"][c] for run in runs]) for c in COLUMNS},
                             "network_g": network_options(method, scale, args.width, args.depth)}
            print(f"x{scale} {method}: PSNR {block[method]['summary']['psnr'][0]:.2f}", flush=True)
            report[f"x{scale}"] = {"bicubic": bicubic, "rows": block}
            write_report("baselines", {**report, "complete": False}, args.out)  # a crash keeps the rows done
    report["wall_seconds"] = time.time() - started
    write_report("baselines", {**report, "complete": True}, args.out)
    print(tables(report))
    print(f"\ntotal {report['wall_seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
