"""Runs the ``--quick`` mode of several benchmark scripts one after another in this one process (each as
``python benchmarks/<script> --quick --out <folder>/<script>.json``, through ``runpy`` as ``__main__``), so the
test suite pays the ~10 s start-up of torch, torchvision and basicsr once, not once per script.

    python tests/quick_benchmarks.py OUT_FOLDER "train_step.py --scales 4 8" "quality.py" ...

For each script ``<script>.status`` says ``ok`` or holds the traceback / exit status; the scripts stay
separate in everything but the interpreter (torch's thread count is restored after each).
"""

from __future__ import annotations

import runpy
import shlex
import sys
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT / "benchmarks"


def run_one(spec: str, folder: Path) -> str:
    script, *extra = shlex.split(spec)
    sys.argv = [str(BENCHMARKS / script), "--quick", "--out", str(folder / f"{script}.json"), *extra]
    try:
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    except SystemExit as stop:
        if stop.code not in (0, None):
            return f"exit status {stop.code}"
    except BaseException:  # noqa: BLE001  (any failure is this script's result, reported by its test)
        return traceback.format_exc()
    return "ok"


def main() -> None:
    import torch

    folder = Path(sys.argv[1])
    specs = sys.argv[2:]
    sys.path[:0] = [str(BENCHMARKS), str(REPO_ROOT)]
    threads = torch.get_num_threads()
    for spec in specs:
        status = run_one(spec, folder)
        torch.set_num_threads(threads)
        (folder / f"{shlex.split(spec)[0]}.status").write_text(status)
        print(f"{spec}: {status.splitlines()[-1] if status else status}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
