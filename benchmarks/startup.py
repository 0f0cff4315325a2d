"""Interpreter start-up cost of the autoload hook (medsr_se_autoload.pth).

    python benchmarks/startup.py --out benchmarks/results/startup.json

Median wall time of ``python -c pass`` with the hook on and with ``MEDSR_SE_NO_AUTOLOAD=1`` (interleaved), and
whether ``python -c pass`` imported torch or basicsr (it must not).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_report  # noqa: E402


def start_seconds(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    envs = {"hook on": dict(os.environ), "hook off": dict(os.environ, MEDSR_SE_NO_AUTOLOAD="1")}
    samples: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(repeats):
        for name, env in envs.items():
            samples[name].append(start_seconds(env))
    medians_ms = {name: 1000 * statistics.median(values) for name, values in samples.items()}
    probe = subprocess.run([sys.executable, "-c", "import sys; print(sorted({'torch', 'basicsr', 'medsr_se'} & "
                            "set(sys.modules)), type(sys.meta_path[0]).__name__)"], capture_output=True, text=True)
    print(medians_ms, probe.stdout.strip())
    write_report("startup", {"median_ms": medians_ms, "heavy_modules_at_start_and_first_finder": probe.stdout.strip()},
                 args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
