"""Interpreter start-up cost of the autoload hook (medsr_se_autoload.pth).

    python -m benchmarks.startup --out benchmarks/results/startup.json
    python -m benchmarks.startup --quick     # 3 repeats

Median wall time of ``python -c pass`` with the hook on and with ``MEDSR_SE_NO_AUTOLOAD=1`` (interleaved), and
whether ``python -c pass`` imported torch or basicsr (it must not).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.lib.reports import write_report
from benchmarks.lib.timing import interleaved_medians


def start(env: dict[str, str]) -> None:
    """``python -c pass`` in ``env``: one interpreter start (and exit)."""
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    envs = {"hook on": dict(os.environ), "hook off": dict(os.environ, MEDSR_SE_NO_AUTOLOAD="1")}
    seconds = interleaved_medians({name: lambda env=env: start(env) for name, env in envs.items()}, repeats, warmup=0)
    medians_ms = {name: 1000 * value for name, value in seconds.items()}
    probe = subprocess.run([sys.executable, "-c", "import sys; print(sorted({'torch', 'basicsr', 'medsr_se'} & "
                            "set(sys.modules)), type(sys.meta_path[0]).__name__)"], capture_output=True, text=True)
    print(medians_ms, probe.stdout.strip())
    write_report("startup", {"median_ms": medians_ms, "heavy_modules_at_start_and_first_finder": probe.stdout.strip()},
                 args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
