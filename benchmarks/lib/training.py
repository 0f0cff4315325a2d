"""Training in the benchmarks: the one L1 loop (quality, ablation, baselines) on the held-out fundus protocol, the
recipes made ready for in-process CPU training, and the networks and GAN models several scripts build.

The L1 loop: L1 loss, Adam lr 1e-4 betas (0.9, 0.999) eps 1e-8, random crops with random flips, stopped either by
a CPU budget (process CPU seconds: a busy machine slows every model alike) or by an iteration count (computed from
a calibrated cost per iteration, so that later load on the machine does not change what is learnt).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.lib.timing import cpu_seconds_per_call
from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.inference import image_to_tensor


def sample_batch(hr: torch.Tensor, lr: torch.Tensor, scale: int, batch: int, patch: int,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random LR patches of ``patch`` pixels and their HR patches, each flipped at random."""
    lqs, gts = [], []
    for _ in range(batch):
        top = int(rng.integers(0, lr.shape[-2] - patch + 1))
        left = int(rng.integers(0, lr.shape[-1] - patch + 1))
        lq = lr[..., top:top + patch, left:left + patch]
        gt = hr[..., top * scale:(top + patch) * scale, left * scale:(left + patch) * scale]
        if rng.random() < 0.5:
            lq, gt = lq.flip(-1), gt.flip(-1)
        if rng.random() < 0.5:
            lq, gt = lq.flip(-2), gt.flip(-2)
        lqs.append(lq)
        gts.append(gt)
    return torch.cat(lqs), torch.cat(gts)


def adam(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)


def l1_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    lq, gt = batch
    loss = F.l1_loss(model(lq), gt)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def train_l1(model: nn.Module, regions, scale: int, seed: int, *, iterations: int | None = None,
             cpu_seconds: float | None = None, batch: int = 4, patch: int = 32) -> dict:
    """L1 + Adam on random crops of ``regions['train']`` until ``iterations`` steps are done or ``cpu_seconds`` of
    process CPU time are spent (exactly one of them); returns the iterations and the CPU and wall seconds."""
    if (iterations is None) == (cpu_seconds is None):
        raise ValueError("train_l1: give iterations or cpu_seconds (one of them)")
    hr, lr = (image_to_tensor(x) for x in regions["train"])
    optimizer, rng = adam(model.train()), np.random.default_rng(seed)
    torch.manual_seed(seed)
    start_cpu, start_wall, done = time.process_time(), time.time(), 0
    while (done < iterations) if iterations is not None else (time.process_time() - start_cpu < cpu_seconds):
        l1_step(model, optimizer, sample_batch(hr, lr, scale, batch, patch, rng))
        done += 1
    return {"iterations": done, "cpu_seconds": time.process_time() - start_cpu,
            "wall_seconds": time.time() - start_wall}


def calibrate_l1(model: nn.Module, regions, scale: int, calls: int, batch: int = 4, patch: int = 32) -> float:
    """CPU seconds per L1 iteration of ``model`` (a throw-away network: its weights are changed)."""
    optimizer, rng = adam(model.train()), np.random.default_rng(0)
    hr, lr = (image_to_tensor(x) for x in regions["train"])
    return cpu_seconds_per_call(lambda: l1_step(model, optimizer, sample_batch(hr, lr, scale, batch, patch, rng)),
                                calls)


def build_model(name: str, scale: int, width: int, depth: int) -> torch.nn.Module:
    """``edsr`` (BasicSR's EDSR) or SEEDSRGenerator with (``seedsr_skip``) or without the bicubic image skip."""
    if name == "edsr":
        from basicsr.archs.edsr_arch import EDSR

        return EDSR(3, 3, num_feat=width, num_block=depth, upscale=scale)
    return SEEDSRGenerator(num_feat=width, num_block=depth, upscale=scale, img_residual=(name == "seedsr_skip"))


def load_recipe(scale: int) -> dict:
    """The option file ``options/x{scale}.yml`` as BasicSR reads it (ordered mapping)."""
    from medsr_se.utils.options import load_recipe as load

    return load(f"x{scale}")


def recipe_for_cpu_training(scale: int, tmp: Path, vgg_weights: str = "random") -> dict:
    """``load_recipe(scale)`` made ready for ``basicsr.models.build_model`` in this process: one CPU process, every
    output path under ``tmp``, the perceptual term's VGG19 from ``vgg_weights`` (a file, or ``random``)."""
    from medsr_se.utils.options import for_in_process_model

    opt = for_in_process_model(load_recipe(scale), tmp)
    opt["train"]["fusion_opt"]["vgg_weights_path"] = vgg_weights
    return opt


def optimize_step(model, batch: dict, counter: itertools.count) -> Callable[[], None]:
    """One ``feed_data`` + ``optimize_parameters`` of a BasicSR model; iterations numbered by the shared counter."""

    def step() -> None:
        model.feed_data(batch)
        model.optimize_parameters(next(counter))

    return step


def build_models(vgg_file: Path, tmp: Path, quick: bool):
    """RelativisticGANModel and BasicSR's ESRGANModel, both from ``options/x4.yml`` (batch, optimizers, EMA as in the
    recipe); ESRGAN swaps in its networks and losses (RRDBNet 64x23, VGGStyleDiscriminator, L1 0.01 + perceptual +
    vanilla GAN 0.005). Both VGGs load ``vgg_file``. ``quick`` shrinks the networks to seconds."""
    from basicsr.archs import vgg_arch
    from basicsr.models import build_model as build_basicsr_model

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
    return {"RelativisticGANModel": build_basicsr_model(ours), "ESRGANModel": build_basicsr_model(esrgan)}
