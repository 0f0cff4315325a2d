"""The JSON report of every benchmark script: what ran, where and when, then the script's numbers."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from medsr_se.utils.precision import cpu_flags, cpuinfo_value

SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # the CPU features that change these timings


def cpu() -> dict:
    """This machine's CPU as a report names it: ``{"model", "cores", "flags"}`` (the model from /proc/cpuinfo,
    the logical cores, which of :data:`SPEED_FLAGS` it has). Two reports' seconds compare only where these are equal:
    the same model name has come with and without bfloat16 units."""
    return {"model": cpuinfo_value("model name") or platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "flags": [flag for flag in SPEED_FLAGS if flag in cpu_flags()]}


def describe_cpu(description: dict) -> str:
    """``Intel(R) Xeon(R) Processor, 2 cores, avx2 avx512f avx512_bf16 amx_bf16`` for :func:`cpu`'s dict."""
    return (f"{description.get('model')}, {description.get('cores')} cores, "
            f"{' '.join(description.get('flags') or []) or 'none of ' + ' '.join(SPEED_FLAGS)}")


def write_report(name: str, payload: dict, out: Path | None) -> dict:
    """``{"benchmark": name, "date", "torch", "threads", "machine", "cpu", **payload}``, written as JSON to ``out``
    (its folder created) unless ``out`` is None; returns the report."""
    report = {"benchmark": name, "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.machine(), "cpu": cpu(), **payload}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
    return report
