"""Training a through-plane network on one scan through BasicSR's own loop (what ``medsr-selfsr`` does unless it is
given a model): the recipe with what the scan decides, then BasicSR's ``train_pipeline`` under
``output/experiments/<name>``, resumed only where the saved states were trained on this scan and these options
(:mod:`medsr_se.integration.experiment_state`). How many iterations: ``iterations=``, or as many as fit a
wall-clock budget (:func:`~medsr_se.integration.training_budget.choose_budget`). BasicSR's own log lines go to the
experiment's log file alone (:mod:`medsr_se.integration.basicsr_log`); ``progress`` sees each iteration.

    options = training_options("selfsr", scan, r, name, scan_path=Path("scan.nii.gz"))   checked, fingerprinted
    choose_budget(options, scan.values.shape, scan.geometry.axis, time_budget_s=180)     total_iter that fits
    model = train(options, Path("out"), name)     out/<name>.yml, out/experiments/<name>/models/net_g_latest.pth
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from medsr_se.data.noise_matching import resolve_for_scan
from medsr_se.data.through_plane_dataset import fwhm_jitter
from medsr_se.errors import MedSRError, OptionError
from medsr_se.integration.experiment_state import FINGERPRINT_KEY, may_resume, training_fingerprint
from medsr_se.integration.training_budget import scale_schedule
from medsr_se.io.publish import write_atomically
from medsr_se.io.scans import Scan

log = logging.getLogger(__name__)


def training_options(recipe: str | Path, scan: Scan, r: int, name: str, *, scan_path: Path,
                     slice_profile: Path | None = None, nonfinite: float | None = None,
                     iterations: int | None = None, device: str = "auto") -> dict:
    """The recipe (a shipped name or a path) with what this scan decides: the volume at ``scan_path``, r, the
    generator's [r, 1], a gt_size that r divides, the slice thickness and its source, ``slice_profile`` (a .npy
    kernel) and ``nonfinite``; ``iterations`` as ``total_iter`` when given (the milestones scaled with it:
    :func:`~medsr_se.integration.training_budget.scale_schedule`); no GPU for ``device="cpu"``. Checked
    (:func:`~medsr_se.utils.options.check_training_options`, before anything is written) and with its
    :func:`~medsr_se.integration.experiment_state.training_fingerprint` under ``selfsr_fingerprint``.
    :class:`OptionError` naming ``recipe=`` for a recipe that cannot be read or used."""
    from medsr_se.utils.options import check_training_options, load_recipe

    try:
        options = load_recipe(recipe)
    except (OptionError, OSError) as error:  # not found, not YAML, not readable
        raise OptionError(f"recipe={recipe}: {error}", parameter="recipe") from error
    train_set = options.setdefault("datasets", {}).setdefault("train", {})
    smallest = min(scan.values.shape[a] for a in scan.volume.in_plane_axes)
    gt_size = max(r, min(int(train_set.get("gt_size") or 64), smallest) // r * r)
    train_set.update(volumes=[str(Path(scan_path).resolve())], axis=scan.geometry.axis, gt_size=gt_size,
                     slice_thickness=scan.geometry.slice_thickness,
                     slice_thickness_source=scan.geometry.thickness_source,
                     slice_profile=str(Path(slice_profile).resolve()) if slice_profile else None, nonfinite=nonfinite)
    try:
        sigma, source = resolve_for_scan(train_set.get("lr_noise"), scan.values, scan.geometry.axis, scan.name)
    except OptionError as error:
        raise OptionError(f"recipe={recipe}: datasets:train:{error}", parameter="recipe") from error
    train_set.update(lr_noise=sigma, lr_noise_source=source)  # "auto" resolved: the options file says the σ used
    try:
        fwhm_jitter(train_set)
    except ValueError as error:
        raise OptionError(f"recipe={recipe}: {error}", parameter="recipe") from error
    options["name"] = name
    options["scale"] = r
    options.setdefault("network_g", {})["upscale"] = [r, 1]
    scale_schedule(options, iterations if iterations is not None else options.get("train", {}).get("total_iter"))
    if device == "cpu":
        options["num_gpu"] = 0
    resolve_precision(options, device)
    try:
        check_training_options(options)
    except OptionError as error:
        raise OptionError(f"recipe={recipe}: {error}", parameter="recipe") from error
    options[FINGERPRINT_KEY] = training_fingerprint(options, scan.values, Path(slice_profile) if slice_profile
                                                    else None)
    return options


def resolve_precision(options: dict, device: str) -> None:
    """``train:precision: auto`` -> ``bf16`` or ``fp32`` for the device the training will run on
    (:func:`~medsr_se.utils.precision.resolve_auto_precision`), with ``train:precision_source`` saying why; another
    value stays as the recipe gives it."""
    import torch

    from medsr_se.utils.precision import AUTO, resolve_auto_precision

    train = options.setdefault("train", {})
    if train.get("precision") != AUTO:
        return
    on_gpu = device != "cpu" and options.get("num_gpu", "auto") != 0 and torch.cuda.is_available()
    train["precision"], train["precision_source"] = resolve_auto_precision(on_gpu)


@contextlib.contextmanager
def working_directory(folder: Path) -> Iterator[None]:
    """BasicSR puts experiments/ and finds ``--auto_resume`` states under the working directory."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


class IterationTicks:
    """An observer of BasicSR's loop (:func:`~medsr_se.models.iteration_observers.observing_iterations`) that calls
    ``progress(total)`` (a function to call per finished iteration, e.g. a command's progress bar) as the first
    iteration begins, when the iterations left to ``total_iter`` are known (a resumed run starts from its state)."""

    def __init__(self, progress: Callable[[int], Callable[[], None]] | None, total_iter: int) -> None:
        self.progress, self.total_iter = progress, total_iter
        self.step: Callable[[], None] | None = None

    def __call__(self, current_iter: int) -> None:
        if self.step is not None:
            self.step()  # the iteration before this one is done
        elif self.progress is not None:
            self.step = self.progress(self.total_iter - current_iter + 1)

    def finish(self) -> None:
        """The loop has ended: its last iteration is done."""
        if self.step is not None:
            self.step()
            self.step = None


def train(options: dict, output: Path, name: str,
          progress: Callable[[int], Callable[[], None]] | None = None) -> Path:
    """BasicSR's training loop (medsr_se.train's pipeline) on ``options`` (:func:`training_options`), written to
    ``output/<name>.yml``; the trained ``net_g_latest.pth``. BasicSR's log lines go to the experiment's
    ``train_<name>_<time>.log`` alone; ``progress(total)``, when given, is called as the first iteration begins
    with the number of iterations to run and returns a function called once per finished iteration.

    ``--auto_resume`` only where :func:`~medsr_se.integration.experiment_state.may_resume` finds the saved states
    trained on this scan and these options; otherwise BasicSR moves the experiment folder aside
    (``<name>_archived_<time>``) and trains from iteration 0. A training that stops before BasicSR made the
    experiment folder leaves no options file behind that this call wrote. :class:`MedSRError` when the training
    stops (BasicSR's pipeline has said why, in an ``error:`` line) or ends without a model."""
    import basicsr.train
    from basicsr.utils import get_time_str

    from medsr_se.integration.basicsr_log import basicsr_log_file
    from medsr_se.integration.pipeline import run_pipeline
    from medsr_se.models.iteration_observers import observing_iterations
    from medsr_se.utils.options import check_training_options, dump_yaml

    experiment = output / "experiments" / name
    resume = may_resume(experiment, options[FINGERPRINT_KEY])
    option_file = output.resolve() / f"{name}.yml"
    new_file = not option_file.exists()
    write_atomically(option_file, lambda temporary: dump_yaml(options, temporary))
    log_file = output.resolve() / "experiments" / name / f"train_{name}_{get_time_str()}.log"
    log.info(f"training {options['train'].get('total_iter')} iterations through BasicSR's loop "
             f"(options: {option_file}; log: {log_file})")
    ticks = IterationTicks(progress, int(options["train"]["total_iter"]))
    argv = sys.argv[:]
    sys.argv[:] = ["medsr-selfsr", "-opt", str(option_file), *(["--auto_resume"] if resume else [])]
    try:
        with working_directory(output), basicsr_log_file(log_file), observing_iterations(ticks):
            status = run_pipeline(basicsr.train, "train_pipeline", check_training_options)
        if status:
            raise MedSRError("training stopped (the message above)")
        ticks.finish()
    except BaseException:
        if new_file and not experiment.exists():
            option_file.unlink(missing_ok=True)
        raise
    finally:
        sys.argv[:] = argv
    model = experiment / "models" / "net_g_latest.pth"
    if not model.is_file():
        raise MedSRError(f"training ended without {model}")
    return model
