"""Runs the ``--quick`` mode of several benchmark scripts one after another in this one process (each as
``python -m benchmarks.<name> --quick --out <folder>/<name>.json``, through ``runpy.run_module`` as ``__main__``),
so the test suite pays the ~10 s start-up of torch, torchvision and basicsr once, not once per script.

    python tests/quick_benchmarks.py OUT_FOLDER "train_step --scales 4 8" "quality" ...

(the ``benchmarks`` package must be importable: run from the repository root or with it on PYTHONPATH, as
tests.helpers.run_python does; a name may keep its ``.py``). For each script ``<name>.status`` says ``ok`` or holds
the traceback / exit status; the scripts stay separate in everything but the interpreter (torch's thread count is
restored after each).
"""

from __future__ import annotations

import runpy
import shlex
import sys
import time
import traceback
from pathlib import Path


def module_name(spec: str) -> str:
    """The script's name in a spec (``"train_step --scales 4 8"`` or ``"train_step.py ..."``): ``train_step``."""
    return shlex.split(spec)[0].removesuffix(".py")


def run_one(spec: str, folder: Path) -> str:
    name, extra = module_name(spec), shlex.split(spec)[1:]
    sys.argv = [f"benchmarks.{name}", "--quick", "--out", str(folder / f"{name}.json"), *extra]
    try:
        runpy.run_module(f"benchmarks.{name}", run_name="__main__")
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
    threads = torch.get_num_threads()
    for spec in specs:
        started = time.perf_counter()
        status = run_one(spec, folder)
        torch.set_num_threads(threads)
        (folder / f"{module_name(spec)}.status").write_text(status)
        print(f"{spec}: {status.splitlines()[-1] if status else status} ({time.perf_counter() - started:.1f} s)",
              file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
