"""Mixed precision (``train:precision``, ``medsr-infer --precision``): speed and quality, fp32 vs bf16 (fp16: CUDA).

    python -m benchmarks.precision --out benchmarks/results/precision_cpu.json          # 2-core CPU: ~10 min
    python -m benchmarks.precision --device cuda --out benchmarks/results/precision_cuda.json
    python -m benchmarks.precision --quick                                                # seconds (test suite)

Speed (interleaved medians, one call of ``optimize_parameters`` each, batch 4, gt 128, x4):
  - G step: ``SEEDSRModel`` from ``options/pretrain_x4.yml`` (SEEDSR 64x16, L1, Adam) in each precision;
  - GAN iteration: ``RelativisticGANModel`` from ``options/x4.yml`` (G, FusionSEDiscriminator, FusionLoss with a
    random VGG19 of the real size, EMA) in each precision, and BasicSR's ``ESRGANModel`` in fp32 (what a BasicSR
    user has today; built as :mod:`benchmarks.gan_iteration` builds it).
With ``--compile``, the GAN iteration also runs with ``train:compile: true`` (torch.compile, inductor) in each
precision: steady-state time and the seconds its first two iterations took (compilation).
Quality, on the held-out fundus protocol (:mod:`benchmarks.lib.fundus`: columns 896+ of scikit-image's retina
held out):
  - the L1 stage at equal iterations (``--l1-iters``, same seed and crops) in fp32 and in bf16, evaluated in fp32;
  - a GAN run of ``--gan-iters`` iterations of the x4 recipe in bf16 from the bf16 L1 weights: every logged loss
    must be finite (the count of non-finite values is reported);
  - inference of the held-out LR with the fp32-trained generator in fp32 and bf16: time, and PSNR of the bf16
    output against the fp32 output.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

import medsr_se  # noqa: F401
from benchmarks.lib.fundus import evaluate, fundus_regions
from benchmarks.lib.reports import write_report
from benchmarks.lib.timing import interleaved_medians
from benchmarks.lib.training import build_model, optimize_step, recipe_for_cpu_training, sample_batch
from benchmarks.lib.training import build_models as build_esrgan_pair
from medsr_se.inference import image_to_tensor, tensor_to_image
from medsr_se.utils.options import deep_update, for_in_process_model, load_recipe

AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def synchronised(step, device: str):
    def run() -> None:
        step()
        if device == "cuda":
            torch.cuda.synchronize()
    return run


def recipe_model(recipe: str, precision: str, tmp: Path, device: str, quick: bool, vgg_file: Path,
                 compile_: bool = False):
    from basicsr.models import build_model as build_basicsr_model

    if recipe == "x4":
        opt = recipe_for_cpu_training(4, tmp / f"gan_{precision}", str(vgg_file))
    else:
        opt = for_in_process_model(load_recipe(recipe), tmp / f"g_{precision}")
    width, depth = (8, 2) if quick else (64, 16)
    deep_update(opt, {"num_gpu": 1 if device == "cuda" else 0, "train": {"precision": precision, "compile": compile_},
                      "network_g": {"num_feat": width, "num_block": depth}})
    if "network_d" in opt:
        opt["network_d"]["num_feat"] = width
    if quick and "fusion_opt" in opt["train"]:  # the VGG to conv5_4 would be most of the time (bf16: emulated)
        opt["train"]["fusion_opt"]["vgg_layers"] = {"conv1_2": 1.0}
    opt["train"]["scheduler"]["milestones"] = [10**6]
    return build_basicsr_model(opt)


def speed(precisions: list[str], tmp: Path, device: str, quick: bool, repeats: int, vgg_file: Path,
          compile_: bool) -> dict:
    count, size = (1, 16) if quick else (4, 32)  # quick: the wiring only (a CPU without bf16 units emulates it)
    batch = {"lq": torch.rand(count, 3, size, size), "gt": torch.rand(count, 3, 4 * size, 4 * size)}
    counter = itertools.count(1)

    def step_of(model):
        return synchronised(optimize_step(model, batch, counter), device)

    steps, compile_seconds = {}, {}
    for precision in precisions:
        steps[f"g_step_{precision}"] = step_of(recipe_model("pretrain_x4", precision, tmp, device, quick, vgg_file))
        steps[f"gan_{precision}"] = step_of(recipe_model("x4", precision, tmp, device, quick, vgg_file))
    if compile_:  # train:compile (inductor); the warm-up below includes the compilation, timed separately
        for precision in precisions:
            model = recipe_model("x4", precision, tmp / "compiled", device, quick, vgg_file, compile_=True)
            start = time.time()
            step_of(model)()
            step_of(model)()  # G's step with D frozen compiles a second graph of D
            compile_seconds[precision] = time.time() - start
            steps[f"gan_{precision}_compiled"] = step_of(model)
    if device == "cpu" and not quick:  # its discriminator takes 128-px inputs only (quick: gan_iteration runs it)
        steps["gan_esrgan_fp32"] = step_of(build_esrgan_pair(vgg_file, tmp / "esrgan", quick)["ESRGANModel"])
    medians = interleaved_medians(steps, repeats, warmup=1)
    ratios = {f"{kind}_{p}_speedup_over_fp32": medians[f"{kind}_fp32"] / medians[f"{kind}_{p}"]
              for kind in ("g_step", "gan") for p in precisions if p != "fp32"}
    if "gan_esrgan_fp32" in medians:
        ratios.update({f"gan_{p}_speedup_over_esrgan_fp32": medians["gan_esrgan_fp32"] / medians[f"gan_{p}"]
                       for p in precisions})
    if compile_:
        ratios.update({f"gan_{p}_compiled_speedup_over_eager": medians[f"gan_{p}"] / medians[f"gan_{p}_compiled"]
                       for p in precisions})
        ratios["compile_seconds_first_two_iterations"] = compile_seconds
    return {"seconds": medians, **ratios}


def train_l1(generator, regions, iterations: int, precision: str, seed: int, device: str) -> dict:
    """The L1 stage of benchmarks.quality, at a fixed number of iterations, in ``precision``."""
    hr, lr = (image_to_tensor(x) for x in regions["train"])
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    scaler = torch.amp.GradScaler(device, enabled=precision == "fp16")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    start = time.time()
    for _ in range(iterations):
        lq, gt = (t.to(device) for t in sample_batch(hr, lr, 4, 4, 32, rng))
        with torch.autocast(device, dtype=AUTOCAST[precision], enabled=precision != "fp32"):
            sr = generator(lq)
        loss = F.l1_loss(sr.float(), gt)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return {"iterations": iterations, "seconds": time.time() - start}


def gan_run(generator, regions, iterations: int, precision: str, tmp: Path, device: str, vgg_file: Path,
            quick: bool) -> dict:
    model = recipe_model("x4", precision, tmp / "gan_run", device, quick, vgg_file)
    model.net_g.load_state_dict(generator.state_dict())
    model.model_ema(decay=0)
    hr, lr = (image_to_tensor(x) for x in regions["train"])
    rng = np.random.default_rng(7)
    values = []
    for iteration in range(1, iterations + 1):
        lq, gt = sample_batch(hr, lr, 4, 1 if quick else 4, 16 if quick else 32, rng)
        model.feed_data({"lq": lq, "gt": gt})
        model.optimize_parameters(iteration)
        values += list(model.get_current_log().values())
    return {"gan_iterations": iterations, "logged_values": len(values),
            "non_finite_values": sum(not math.isfinite(v) for v in values),
            "metrics_after": evaluate(model.net_g.float().cpu(), regions, 4)}


@torch.no_grad()
def inference(generator, regions, precisions: list[str], device: str, repeats: int) -> dict:
    lr = image_to_tensor(regions["test"][1]).to(device)
    nets = {p: generator.to(device).eval() if p == "fp32" else _copy(generator, device).to(AUTOCAST[p])
            for p in precisions}
    outputs = {p: tensor_to_image(net(lr.to(next(net.parameters()).dtype)), np.uint8) for p, net in nets.items()}
    steps = {p: synchronised(lambda net=net, p=p: net(lr.to(next(net.parameters()).dtype)), device)
             for p, net in nets.items()}
    medians = interleaved_medians(steps, repeats, warmup=1)
    result = {"seconds": medians, "lr_shape": list(lr.shape)}
    for p in precisions:
        if p != "fp32":
            mse = np.mean((outputs[p].astype(np.float64) - outputs["fp32"]) ** 2)
            result[f"psnr_{p}_vs_fp32_output"] = float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)
            result[f"{p}_speedup"] = medians["fp32"] / medians[p]
    return result


def _copy(module, device):
    import copy

    return copy.deepcopy(module).to(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--l1-iters", type=int, default=300)
    parser.add_argument("--gan-iters", type=int, default=200)
    parser.add_argument("--compile", action="store_true", help="also time train:compile (torch.compile, inductor)")
    parser.add_argument("--precisions", nargs="+", choices=list(AUTOCAST), help="default: fp32 bf16 (+ fp16 on CUDA)")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality and inference parts")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    precisions = args.precisions or ["fp32", "bf16"] + (["fp16"] if args.device == "cuda" else [])
    if args.quick:
        args.repeats, args.l1_iters, args.gan_iters = 1, 2, 2
    from torchvision.models import vgg19

    report: dict = {"device": args.device, "precisions": precisions,
                    "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "cpu"}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        vgg_file = tmp / "vgg19-random.pth"
        torch.save(vgg19(weights=None).state_dict(), vgg_file)
        report["speed"] = speed(precisions, tmp, args.device, args.quick, args.repeats, vgg_file, args.compile)
        print(report["speed"], flush=True)
        if args.speed_only:
            write_report("precision", report, args.out)
            return 0
        regions = fundus_regions(4)
        width, depth = (8, 2) if args.quick else (64, 16)
        generators, quality = {}, {"bicubic": evaluate(None, regions, 4)}
        for precision in ("fp32", "bf16"):
            generator = build_model("seedsr_skip", 4, width, depth).to(args.device)
            quality[f"l1_{precision}"] = train_l1(generator.train(), regions, args.l1_iters, precision, 0, args.device)
            quality[f"l1_{precision}"]["metrics"] = evaluate(generator.float().cpu(), regions, 4)
            generators[precision] = generator
        quality["psnr_bf16_minus_fp32_dB"] = (quality["l1_bf16"]["metrics"]["psnr"]
                                              - quality["l1_fp32"]["metrics"]["psnr"])
        print(quality, flush=True)
        report["quality"] = quality
        report["gan_bf16"] = gan_run(generators["bf16"], regions, args.gan_iters, "bf16", tmp, args.device, vgg_file,
                                     args.quick)
        print(report["gan_bf16"], flush=True)
        report["inference"] = inference(generators["fp32"], regions, precisions, args.device, args.repeats)
        print(report["inference"], flush=True)
    write_report("precision", report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
