"""STARE-shaped preparation time: 397 images of 700 x 605 (real fundus pixels), x4/x8/x16, all cores.

    python benchmarks/prepare_speed.py --out benchmarks/results/prepare_speed.json
    python benchmarks/prepare_speed.py --quick     # 6 images

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

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from common import write_report  # noqa: E402

from tests.conftest import stare_like_images, write_stare_zip  # noqa: E402

STARE_MISSING = (17, 100, 200, 300, 400)  # 402 numbers, 397 images, like STARE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from skimage import data

    count = 6 if args.quick else 402
    images = stare_like_images(data.retina(), count)
    for number in STARE_MISSING:
        images.pop(f"im{number:04d}", None)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        archive = write_stare_zip(images, tmp / "all-images.zip")
        command = [sys.executable, "-m", "medsr_se.data.prepare_stare", str(archive), "-o", str(tmp / "STARE")]
        if args.quick:
            command += ["--n-test", "2"]
        start = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return run.returncode
        print(run.stdout.strip())
    print(f"{len(images)} images prepared in {seconds:.1f} s on {os.cpu_count()} cores")
    write_report("prepare_speed", {"images": len(images), "scales": [4, 8, 16], "seconds": seconds,
                                   "cores": os.cpu_count(), "command": " ".join(command[1:])}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
