"""The JSON report of every benchmark script: what ran, where and when, then the script's numbers."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch


def write_report(name: str, payload: dict, out: Path | None) -> dict:
    """``{"benchmark": name, "date", "torch", "threads", "machine", **payload}``, written as JSON to ``out`` (its
    folder created) unless ``out`` is None; returns the report."""
    report = {"benchmark": name, "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.machine(), **payload}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
    return report
