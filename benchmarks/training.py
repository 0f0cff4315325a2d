"""The one L1 training loop of the benchmarks (quality.py, ablation.py, baselines.py) on the held-out fundus
protocol: L1 loss, Adam lr 1e-4 betas (0.9, 0.999) eps 1e-8, random crops with random flips, stopped either by a
CPU budget (process CPU seconds: a busy machine slows every model alike) or by an iteration count (computed from a
calibrated cost per iteration, so that later load on the machine does not change what is learnt).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

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


def cpu_seconds_per_call(step: Callable[[], None], calls: int, warmup: int = 3) -> float:
    """Median process CPU seconds of ``step`` over ``calls`` calls after ``warmup`` unmeasured ones (at most
    ``calls``: --quick makes one of each)."""
    warmup = min(warmup, calls)
    for _ in range(warmup):
        step()
    samples = []
    for _ in range(calls):
        start = time.process_time()
        step()
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def calibrate_l1(model: nn.Module, regions, scale: int, calls: int, batch: int = 4, patch: int = 32) -> float:
    """CPU seconds per L1 iteration of ``model`` (a throw-away network: its weights are changed)."""
    optimizer, rng = adam(model.train()), np.random.default_rng(0)
    hr, lr = (image_to_tensor(x) for x in regions["train"])
    return cpu_seconds_per_call(lambda: l1_step(model, optimizer, sample_batch(hr, lr, scale, batch, patch, rng)),
                                calls)


def centre_crop(hr: np.ndarray, lr: np.ndarray, size: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """A centred size x size HR crop and its LR (size a multiple of scale)."""
    top, left = (hr.shape[0] - size) // (2 * scale) * scale, (hr.shape[1] - size) // (2 * scale) * scale
    hr_crop = hr[top:top + size, left:left + size]
    lr_crop = lr[top // scale:(top + size) // scale, left // scale:(left + size) // scale]
    return np.ascontiguousarray(hr_crop), np.ascontiguousarray(lr_crop)
