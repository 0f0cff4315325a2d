"""Memory of one training iteration of the option files' recipe at batch 16, measured on CPU.

    python benchmarks/train_memory.py --out benchmarks/results/train_memory.json
    python benchmarks/train_memory.py --quick

No GPU is available to this project's CI, so the recipe's memory is measured where it runs: the peak resident
memory of one ``RelativisticGANModel.optimize_parameters`` call (options/x{4,8,16}.yml: networks, batch 16,
gt_size; FusionLoss with a random VGG19 of the same size) minus the resident memory before it. The same tensors
(weights, Adam state, activations kept for backward) live in GPU memory on CUDA; add the CUDA context and cuDNN
workspace (typically 0.5–1 GiB) for a GPU estimate. Each scale runs in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from common import recipe_for_cpu_training, write_report  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(scale: int, quick: bool, iterations: int = 1) -> dict:
    """Memory and time of the recipe's iteration; with ``iterations`` > 1 the time is that of the last one (warm)."""
    import time

    import torch
    from basicsr.models import build_model

    import medsr_se  # noqa: F401

    torch.set_num_threads(2)
    opt = recipe_for_cpu_training(scale, Path(tempfile.mkdtemp()))
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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    parameters = sum(p.numel() for p in model.net_g.parameters()) + sum(p.numel() for p in model.net_d.parameters())
    return {"scale": scale, "batch": batch, "gt_size": gt_size, "iteration_mib": peak - before,
            "process_peak_mib": peak, "cpu_iteration_seconds": seconds, "g_plus_d_parameters": parameters}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.quick)))
        return 0
    rows = []
    for scale in args.scales:
        command = [sys.executable, __file__, "--one", str(scale)] + (["--quick"] if args.quick else [])
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr[-3000:], file=sys.stderr)
            return run.returncode
        rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    write_report("train_memory", {"rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
