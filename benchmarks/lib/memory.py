"""Memory in the benchmarks: resident memory of this process, the recipe's training iteration measured (train_memory,
loader), and a benchmark case run in a fresh process so that its peak resident memory is its own (inference,
train_memory).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.lib.training import recipe_for_cpu_training

REPO_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the benchmarks package


def rss_mib() -> float:
    """Resident memory of this process now (VmRSS), MiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (``ru_maxrss``, KiB on Linux), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_process(module: str, *arguments: str) -> subprocess.CompletedProcess:
    """``python -m benchmarks.<module> arguments`` in a new interpreter (output captured), started in the folder that
    holds the benchmarks package so that it is the one found, wherever this process was started."""
    return subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *arguments], cwd=REPO_ROOT,
                          capture_output=True, text=True)


def measure(scale: int, quick: bool, iterations: int = 1) -> dict:
    """Memory and time of the recipe's iteration; with ``iterations`` > 1 the time is that of the last one (warm)."""
    import time

    import torch
    from basicsr.models import build_model

    import medsr_se  # noqa: F401

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:  # the recipe's output paths (nothing is written there)
        opt = recipe_for_cpu_training(scale, Path(tmp))
        batch, gt_size = opt["datasets"]["train"]["batch_size_per_gpu"], opt["datasets"]["train"]["gt_size"]
        if quick:
            batch, gt_size = 2, 64
            opt["network_g"].update(num_feat=8, num_block=1)
            opt["network_d"].update(num_feat=8)
            opt["train"]["fusion_opt"]["vgg_layers"] = {"conv1_2": 1.0}
        model = build_model(opt)
        lq = torch.rand(batch, 3, gt_size // scale, gt_size // scale)
        gt = torch.rand(batch, 3, gt_size, gt_size)
        model.feed_data({"lq": lq, "gt": gt})
        before = rss_mib()
        for iteration in range(1, iterations + 1):
            start = time.perf_counter()
            model.optimize_parameters(iteration)
            seconds = time.perf_counter() - start
        peak = peak_rss_mib()
    parameters = sum(p.numel() for p in model.net_g.parameters()) + sum(p.numel() for p in model.net_d.parameters())
    return {"scale": scale, "batch": batch, "gt_size": gt_size, "iteration_mib": peak - before,
            "process_peak_mib": peak, "cpu_iteration_seconds": seconds, "g_plus_d_parameters": parameters}
