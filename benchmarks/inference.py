"""Inference time and peak memory: SEEDSRGenerator vs BasicSR's EDSR (64 x 16), and a large tiled output.

    python -m benchmarks.inference --out benchmarks/results/inference.json
    python -m benchmarks.inference --quick      # x4 cases only, tiny networks: what the test suite runs

Cases, each in a fresh process so that its peak resident memory (ru_maxrss) is its own:
- STARE-sized output (688 x 592, the mod-16 STARE frame) at x4 / x8 / x16, SEEDSR and EDSR, whole image;
- a 4096 x 4096 x4 output (LR 1024 x 1024), SEEDSR tiled (tile 128 LR px) — target: within 2 GiB on CPU.
Time: median of repeats after a warm-up, 2 torch threads. Target: SEEDSR <= 1.2x EDSR.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.lib.memory import in_fresh_process, peak_rss_mib
from benchmarks.lib.reports import write_report
from benchmarks.lib.timing import interleaved_medians

STARE_HR = (592, 688)


def run_case(arch: str, scale: int, lr_size: tuple[int, int], tile: int, repeats: int, width: int,
             depth: int) -> dict:
    import torch

    import medsr_se  # noqa: F401
    from medsr_se.archs.seedsr_arch import SEEDSRGenerator
    from medsr_se.inference import upscale

    torch.set_num_threads(2)
    if arch == "EDSR":
        from basicsr.archs.edsr_arch import EDSR

        net = EDSR(3, 3, num_feat=width, num_block=depth, upscale=scale).eval()
    else:
        net = SEEDSRGenerator(num_feat=width, num_block=depth, upscale=scale, img_residual=True).eval()
    x = torch.rand(1, 3, *lr_size)
    image = (x[0].numpy().transpose(1, 2, 0) * 255).astype("uint8")

    def step() -> None:  # whole image: the network alone for both; tiled: as medsr-infer runs it (uint8 in and out)
        upscale(image, net, tile) if tile else net(x)

    with torch.no_grad():
        seconds = interleaved_medians({"case": step}, repeats, warmup=1)["case"]
    return {"seconds": seconds, "peak_rss_mib": peak_rss_mib()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case in this process
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(**json.loads(args.case))))
        return 0
    width, depth, repeats = (8, 2, 1) if args.quick else (64, 16, 3)
    cases = []
    for scale in (4,) if args.quick else (4, 8, 16):  # quick: each kind of case once (a process each)
        lr = (STARE_HR[0] // scale, STARE_HR[1] // scale)
        for arch in ("SEEDSR", "EDSR"):
            cases.append({"arch": arch, "scale": scale, "lr_size": lr, "tile": 0, "repeats": repeats})
    big = (64, 64) if args.quick else (1024, 1024)
    cases.append({"arch": "SEEDSR", "scale": 4, "lr_size": big, "tile": 16 if args.quick else 128, "repeats": 1})
    rows = []
    for case in cases:
        case.update(width=width, depth=depth)
        run = in_fresh_process("inference", "--case", json.dumps(case))
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return run.returncode
        row = {**case, **json.loads(run.stdout.strip().splitlines()[-1])}
        rows.append(row)
        print(row, flush=True)
    write_report("inference", {"rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
