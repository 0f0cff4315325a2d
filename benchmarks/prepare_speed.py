"""STARE-shaped preparation time: 397 images of 700 x 605 (real fundus pixels), x4/x8/x16, all cores.

    python -m benchmarks.prepare_speed --out benchmarks/results/prepare_speed.json
    python -m benchmarks.prepare_speed --quick     # 6 images

The archive (a zip of plain PPM, like STARE's all-images.zip) is built first from scikit-image's fundus photo
(crops resized to 700 x 605) and is not timed; ``medsr-prepare-stare`` is then timed as a user runs it, in a
fresh process (start-up included). Target: <= 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.lib.reports import write_report
from benchmarks.lib.stare_like import write_stare_shaped_zip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from skimage import data

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        archive, count = write_stare_shaped_zip(data.retina(), tmp / "all-images.zip", 6 if args.quick else 402)
        command = [sys.executable, "-m", "medsr_se.cli.prepare", str(archive), "-o", str(tmp / "STARE")]
        if args.quick:
            command += ["--n-test", "2"]
        start = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return run.returncode
        print(run.stdout.strip())
    print(f"{count} images prepared in {seconds:.1f} s on {os.cpu_count()} cores")
    write_report("prepare_speed", {"images": count, "scales": [4, 8, 16], "seconds": seconds,
                                   "cores": os.cpu_count(), "command": " ".join(command[1:])}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
