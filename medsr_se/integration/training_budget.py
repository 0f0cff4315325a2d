"""How long ``medsr-selfsr`` trains: a number of iterations, or as many as fit a wall-clock budget for the whole
run, with the learning-rate schedule laid over whichever it is (a short budget is a short schedule, not the first
part of a long one).

    budget = choose_budget(options, scan.values.shape, axis, time_budget_s=180, started=t0)
    options["train"]["total_iter"] == budget.total_iter         (milestones stay fractions of it)

Where the number comes from (``budget.source``):

    iterations     ``iterations=N``: N
    time_budget    ``time_budget_s=``: as many as fit (below)
    default        neither, on a CPU: :data:`DEFAULT_CPU_BUDGET_S`, as many as fit
    recipe         neither, on a GPU: the recipe's ``train:total_iter``

Fitting a budget B (seconds from ``started``, a ``time.monotonic()`` value): :func:`measure_step_times` builds the
recipe's dataset and model with BasicSR's own ``build_dataset`` / ``build_model`` in this process and times them
(setup s), a few training steps of the recipe's batch (iteration i, a batch drawn serially included), and the
network on one batch of the scan's sagittal slices (scaled to every sagittal and coronal slice: application a);
then

    total_iter = floor((B − elapsed − margin·B − s − a) / i),   margin = :data:`MARGIN`

(elapsed: the time since ``started``, the measurement included). Milestones given as fractions of
``total_iter`` (the shipped recipe's) follow it (:mod:`medsr_se.models.schedule`); absolute milestones (BasicSR's
spelling) are turned into fractions of the recipe's ``total_iter`` first, so they scale too. A budget that leaves
no iteration is an :class:`~medsr_se.errors.OptionError` naming ``time_budget`` with the least that would do;
the default budget is never an error: where the scan is too large for it on this machine, the training still gets
:data:`DEFAULT_MIN_TRAINING_SHARE` of it, and a warning says the run will take longer and about how long.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from medsr_se.errors import OptionError
from medsr_se.utils.durations import format_duration

log = logging.getLogger(__name__)
DEFAULT_CPU_BUDGET_S = 240.0  # 4 min: a 256 x 256 x 40 scan in under 5 min on 2 CPU cores (docs/through-plane.md)
MARGIN = 0.1  # of the budget, kept free: timing noise, Python's start-up, writing the result
DEFAULT_MIN_TRAINING_SHARE = 0.25  # of the default budget, for training, when setup and application leave less
MIN_TIMING_S = 2.0  # steps and batches are timed for at least this long (and at least two), averaged: on a
# busy CPU one step alone can be many times slower or faster than the next
SOURCES = {"iterations": "iterations={n}", "time_budget": "time_budget={budget}",
           "default": "the default on a CPU; time_budget=DURATION or iterations=N to change it",
           "recipe": "the recipe's train:total_iter on a GPU; time_budget=DURATION or iterations=N to change it"}


@dataclass(frozen=True)
class StepTimes:
    """Seconds measured in this process for the recipe, the scan and the machine."""

    setup_s: float  # building the dataset and the model once (the training does it again)
    iteration_s: float  # one training iteration: a batch drawn serially and one step
    application_s: float  # the network on every sagittal and coronal slice


@dataclass(frozen=True)
class TrainingBudget:
    total_iter: int
    source: str  # iterations | time_budget | default | recipe
    seconds: float | None = None  # the wall-clock budget; None: a number of iterations
    times: StepTimes | None = None

    def describe(self) -> str:
        """The note: how many iterations, from where (parameters named as ``iterations=`` / ``time_budget=``)."""
        budget = format_duration(self.seconds or 0)
        source = SOURCES[self.source].format(n=self.total_iter, budget=budget.replace(" ", ""))
        if self.times is None:
            return f"training budget: {self.total_iter} iterations ({source})"
        t = self.times
        return (f"training budget: {budget} for the whole run ({source}): {self.total_iter} iterations of "
                f"~{t.iteration_s:.3g} s (measured here; setup ~{t.setup_s:.2g} s, applying the network "
                f"~{format_duration(t.application_s)}), the learning-rate schedule fitted to them")


def iterations_within(budget_s: float, elapsed_s: float, times: StepTimes, margin: float = MARGIN) -> int:
    """floor((budget − elapsed − margin·budget − setup − application) / iteration), at least 0."""
    left = budget_s * (1 - margin) - elapsed_s - times.setup_s - times.application_s
    return max(0, math.floor(left / times.iteration_s)) if times.iteration_s > 0 else 0


def least_budget_s(elapsed_s: float, times: StepTimes, iterations: int, margin: float = MARGIN) -> float:
    """The budget in which ``iterations`` would fit (the inverse of :func:`iterations_within`)."""
    return (elapsed_s + times.setup_s + times.application_s + iterations * times.iteration_s) / (1 - margin)


def scale_schedule(options: dict, total_iter: int | None) -> None:
    """``train:total_iter`` = ``total_iter`` (None: the recipe's); absolute MultiStepLR milestones (all below the
    recipe's total_iter) become fractions of it, so the schedule keeps its shape over any ``total_iter`` (the same
    iterations for the recipe's own; fractions stay as they are)."""
    train = options.setdefault("train", {})
    recipe_total = int(train.get("total_iter") or 0)
    scheduler = train.get("scheduler") or {}
    milestones = scheduler.get("milestones")
    absolute = milestones and all(isinstance(m, int) and not isinstance(m, bool) for m in milestones)
    if absolute and recipe_total > 0 and all(0 < m < recipe_total for m in milestones):
        scheduler["milestones"] = [m / recipe_total for m in milestones]
    if total_iter is not None:
        train["total_iter"] = int(total_iter)


def on_gpu(options: dict, device: str) -> bool:
    """Whether the training runs on a GPU: ``device`` auto or cuda, one visible, the recipe's num_gpu not 0."""
    import torch

    return device != "cpu" and torch.cuda.is_available() and options.get("num_gpu", "auto") != 0


def choose_budget(options: dict, values_shape: Sequence[int], axis: int, *, iterations: int | None = None,
                  time_budget_s: float | None = None, device: str = "auto", started: float | None = None,
                  clock: Callable[[], float] = time.monotonic,
                  measure: Callable[..., StepTimes] | None = None) -> TrainingBudget:
    """How many iterations to train (module docstring), set in ``options`` (:func:`scale_schedule`) and said in one
    note. ``values_shape`` / ``axis``: the scan's voxel array shape and slice axis (for the application's cost);
    ``started``: when the budget began (a ``clock()`` value; default: now); ``measure``: a stand-in for
    :func:`measure_step_times` (same arguments). :class:`OptionError` naming ``iterations`` / ``time_budget``: both
    given, a value out of range, a budget that leaves no iteration."""
    started = clock() if started is None else started
    if iterations is not None and time_budget_s is not None:
        raise OptionError(f"iterations={iterations} and time_budget={time_budget_s:g}s: give one of them (a number "
                          "of iterations or a wall-clock budget)", parameter="time_budget")
    if iterations is not None and iterations < 1:
        raise OptionError(f"iterations={iterations}: must be at least 1", parameter="iterations")
    if time_budget_s is not None and not (math.isfinite(time_budget_s) and time_budget_s > 0):
        raise OptionError(f"time_budget={time_budget_s}: must be a number of seconds above 0",
                          parameter="time_budget")
    if iterations is not None:
        budget = TrainingBudget(iterations, "iterations")
    elif time_budget_s is None and on_gpu(options, device):
        budget = TrainingBudget(int(options["train"]["total_iter"]), "recipe")
    else:
        source = "time_budget" if time_budget_s is not None else "default"
        seconds = time_budget_s if time_budget_s is not None else DEFAULT_CPU_BUDGET_S
        times = (measure or measure_step_times)(options, values_shape, axis)
        elapsed = clock() - started
        fitting = iterations_within(seconds, elapsed, times)
        costs = (f"~{elapsed + times.setup_s:.0f} s to read and set up, ~{times.application_s:.0f} s to apply the "
                 f"network, ~{times.iteration_s:.2g} s an iteration")
        if fitting < 1 and source == "time_budget":
            least = math.ceil(least_budget_s(elapsed, times, 10))
            raise OptionError(f"time_budget={seconds:g}s: too short for this scan here ({costs}): give at least "
                              f"{least}s (10 iterations) or a number of iterations", parameter="time_budget")
        floor = max(1, math.floor(DEFAULT_MIN_TRAINING_SHARE * seconds / times.iteration_s))
        if source == "default" and fitting < floor:
            fitting = floor
            longer = least_budget_s(elapsed, times, fitting, margin=0)
            log.warning(f"the default budget of {format_duration(seconds)} cannot be kept for this scan here "
                        f"({costs}): training {fitting} iterations anyway, about {format_duration(longer)} in all; "
                        "give time_budget=DURATION or iterations=N to choose")
        budget = TrainingBudget(fitting, source, seconds, times)
    scale_schedule(options, budget.total_iter)
    log.info(budget.describe())
    return budget


def trial_options(options: dict) -> dict:
    """``options`` as BasicSR's ``parse_options`` completes them for a training (no distribution, one process),
    enough for ``build_dataset`` / ``build_model``; nothing is written (no experiment folder, no checkpoint)."""
    import torch

    trial = copy.deepcopy(options)
    trial.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False)
    if trial.get("num_gpu", "auto") == "auto":
        trial["num_gpu"] = torch.cuda.device_count()
    for phase, dataset in trial.get("datasets", {}).items():
        dataset.update(phase=phase.split("_")[0], scale=trial.get("scale"))
    trial.setdefault("path", {})["resume_state"] = None
    return trial


def measure_step_times(options: dict, values_shape: Sequence[int], axis: int,
                       clock: Callable[[], float] = time.perf_counter) -> StepTimes:
    """The recipe's dataset and model built with BasicSR's ``build_dataset`` / ``build_model`` (BasicSR's log
    lines dropped), timed: setup, training steps for at least :data:`MIN_TIMING_S` (after one untimed step), and
    the network on one batch of sagittal slices, scaled by voxel count to every sagittal and coronal slice."""
    import torch
    from basicsr.data import build_dataset
    from basicsr.models import build_model

    from medsr_se.inference.through_plane import APPLY_BATCH
    from medsr_se.integration.basicsr_log import basicsr_log_file

    trial = trial_options(options)
    train_set = trial["datasets"]["train"]
    with basicsr_log_file(None):
        start = clock()
        dataset = build_dataset(train_set)
        model = build_model(trial)
        setup = clock() - start

        def synchronised() -> float:
            if model.device.type == "cuda":
                torch.cuda.synchronize(model.device)
            return clock()

        batch_size = int(train_set.get("batch_size_per_gpu", 1)) * max(1, int(trial["num_gpu"]))
        start = clock()
        batch = torch.utils.data.default_collate([dataset[i % len(dataset)] for i in range(batch_size)])
        drawing = clock() - start
        model.feed_data(batch)
        first = int(trial["train"].get("net_d_init_iters") or 0) + 1  # a GAN's full steps (G and D)
        model.optimize_parameters(first)  # untimed: first-call allocations
        steps, start = 0, synchronised()
        while steps < 2 or synchronised() - start < MIN_TIMING_S:
            model.optimize_parameters(first + 1 + steps)
            steps += 1
        iteration = (synchronised() - start) / steps + drawing
        application = application_seconds(model.get_bare_model(model.net_g), values_shape, axis, APPLY_BATCH,
                                           synchronised)
    return StepTimes(setup, iteration, application)


def application_seconds(net, values_shape: Sequence[int], axis: int, batch: int,
                        clock: Callable[[], float]) -> float:
    """The network on every sagittal and coronal slice of a volume of ``values_shape`` (slice axis ``axis``; each
    3-D volume along further axes on its own), estimated from batches of the first in-plane orientation (after an
    untimed one; the mean of at least two, timed for at least :data:`MIN_TIMING_S`: one call alone is at the mercy
    of whatever else the CPU does) in proportion to the voxels."""
    import torch

    in_plane = [a for a in (0, 1, 2) if a != axis]
    volumes = math.prod(values_shape[3:])
    height, width, count = values_shape[axis], values_shape[in_plane[1]], values_shape[in_plane[0]]
    parameter = next(net.parameters())
    slices = torch.rand(min(batch, count), 1, height, width, device=parameter.device, dtype=parameter.dtype)
    was_training = net.training
    net.eval()
    with torch.no_grad():
        net(slices)
        calls, start = 0, clock()
        while calls < 2 or clock() - start < MIN_TIMING_S:
            net(slices)
            calls += 1
        seconds = (clock() - start) / calls
    net.train(was_training)
    per_voxel = seconds / slices.numel()
    voxels = sum(values_shape[across] * height * values_shape[other] for across, other in (in_plane, in_plane[::-1]))
    return per_voxel * voxels * volumes
