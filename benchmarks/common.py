"""Shared helpers of the benchmark scripts: interleaved timing with medians, JSON reports."""

from __future__ import annotations

import itertools
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def interleaved_medians(steps: dict[str, Callable[[], None]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each step; the steps take turns so drift on a shared machine hits all alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def optimize_step(model, batch: dict, counter: itertools.count) -> Callable[[], None]:
    """One ``feed_data`` + ``optimize_parameters`` of a BasicSR model; iterations numbered by the shared counter."""

    def step() -> None:
        model.feed_data(batch)
        model.optimize_parameters(next(counter))

    return step


def write_report(name: str, payload: dict, out: Path | None) -> dict:
    report = {"benchmark": name, "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.machine(), **payload}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
    return report


def load_recipe(scale: int) -> dict:
    """The option file ``options/x{scale}.yml`` as BasicSR reads it (ordered mapping)."""
    from medsr_se.utils.options import load_recipe as load

    return load(f"x{scale}")


def recipe_for_cpu_training(scale: int, tmp: Path, vgg_weights: str = "random") -> dict:
    """``load_recipe(scale)`` made ready for ``basicsr.models.build_model`` in this process: one CPU process, every
    output path under ``tmp``, the perceptual term's VGG19 from ``vgg_weights`` (a file, or ``random``)."""
    from medsr_se.utils.options import for_in_process_model

    opt = for_in_process_model(load_recipe(scale), tmp)
    opt["train"]["fusion_opt"]["vgg_weights_path"] = vgg_weights
    return opt
