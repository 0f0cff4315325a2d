"""The benchmarks' one timer: medians of a clock over calls made after a warm-up, several steps taking turns.

``interleaved_medians`` times wall seconds (``time.perf_counter``) of steps that take turns, so that drift on a shared
machine hits all alike; ``cpu_seconds_per_call`` is the same timer on one step with the process CPU clock
(``time.process_time``: a busy machine slows every measured process alike).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_medians(steps: dict[str, Callable[[], object]], repeats: int, warmup: int = 2,
                        clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median seconds of ``clock`` per call of each step: ``warmup`` unmeasured calls of each, then ``repeats``
    rounds in which every step is called once, in turn (so drift on a shared machine hits all alike)."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = clock()
            step()
            samples[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def cpu_seconds_per_call(step: Callable[[], object], calls: int, warmup: int = 3) -> float:
    """Median process CPU seconds of ``step`` over ``calls`` calls after ``warmup`` unmeasured ones (at most
    ``calls``: --quick makes one of each)."""
    return interleaved_medians({"step": step}, calls, min(warmup, calls), clock=time.process_time)["step"]
