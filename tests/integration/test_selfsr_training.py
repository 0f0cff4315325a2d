"""medsr_se.integration.selfsr_training: the recipe with what a scan decides, how many iterations (a number or a
wall-clock budget: medsr_se.integration.training_budget), BasicSR's log lines and the progress of its loop (no
training here; the command's slow tests in tests/cli/test_selfsr*.py train through it)."""

from __future__ import annotations

import json

import pytest

from medsr_se import throughplane as tp
from medsr_se.errors import OptionError
from medsr_se.integration.basicsr_log import basicsr_log_file
from medsr_se.integration.experiment_state import FINGERPRINT_KEY
from medsr_se.integration.selfsr_training import IterationTicks, training_options
from medsr_se.integration.training_budget import (
    DEFAULT_CPU_BUDGET_S,
    MIN_TIMING_S,
    StepTimes,
    application_seconds,
    choose_budget,
)
from medsr_se.models.schedule import milestones_in_iterations
from tests.cli.test_selfsr import R, thick_scan


def test_the_training_options_carry_the_scan_the_thickness_and_its_source(tmp_path):
    """Oracle: the sidecar and the arguments written here."""
    scan_path = thick_scan(tmp_path / "thick.nii.gz")  # 33 x 41 in-plane, r = 3
    (tmp_path / "thick.json").write_text(json.dumps({"SliceThickness": 4.5}))
    options = training_options("selfsr", tp.read_scan(scan_path), R, "thick_selfsr_x3", scan_path=scan_path,
                               iterations=7, device="cpu", nonfinite=0.0)
    train = options["datasets"]["train"]
    assert train["slice_thickness"] == 4.5
    assert train["slice_thickness_source"] == "from the BIDS sidecar thick.json: SliceThickness"
    assert train["volumes"] == [str(scan_path.resolve())] and train["axis"] == 2 and train["nonfinite"] == 0.0
    assert train["gt_size"] % R == 0 and train["gt_size"] <= 33
    assert options["network_g"]["upscale"] == [R, 1] and options["scale"] == R and options["num_gpu"] == 0
    assert options["train"]["total_iter"] == 7 and options["name"] == "thick_selfsr_x3"
    assert FINGERPRINT_KEY in options


def test_a_recipe_that_cannot_be_used_names_the_recipe_parameter(tmp_path):
    """(was: the command's UsageError naming ``-opt``, a flag a Python caller does not have)"""
    scan_path = thick_scan(tmp_path / "thick.nii.gz")
    with pytest.raises(OptionError) as raised:
        training_options("nonexistent", tp.read_scan(scan_path), R, "x", scan_path=scan_path)
    assert str(raised.value).startswith("recipe=nonexistent: ") and raised.value.parameter == "recipe"


# How many iterations: a number, or as many as fit a wall-clock budget (medsr_se.integration.training_budget).
# The timings are injected (a fake clock and fake measurements); the oracle is the arithmetic written out here.

def fake_clock(*readings):
    """A ``clock()`` returning ``readings`` in turn (the last one from then on)."""
    values = list(readings)
    return lambda: values.pop(0) if len(values) > 1 else values[0]


def budget_options(total_iter=2000, milestones=(0.5, 0.75)):
    return {"num_gpu": 0, "train": {"total_iter": total_iter,
                                    "scheduler": {"type": "MultiStepLR", "milestones": list(milestones)}}}


TIMES = StepTimes(setup_s=2.0, iteration_s=0.5, application_s=8.0)


def never_measured(*args):
    raise AssertionError("nothing to measure for a number of iterations")


@pytest.mark.parametrize("budget_s, total_iter, milestones", [
    (60.0, 82, [41, 62]),      # (60 * 0.9 - 3 - 2 - 8) / 0.5 = 82; 0.5 and 0.75 of it (61.5 rounds to 62)
    (120.0, 190, [95, 142]),   # (108 - 13) / 0.5 = 190; 142.5 rounds to 142 (Python's round)
])
def test_a_time_budget_sets_total_iter_and_the_schedule_follows(budget_s, total_iter, milestones):
    """The iterations that fit the budget: (budget - 10 % margin - elapsed 3 s - setup - application) / iteration;
    the recipe's fractional milestones land at half and three quarters of that number, not of the recipe's 2000
    (a short budget is a short schedule). Oracle: the arithmetic in the parameters."""
    options = budget_options()
    seen = []
    budget = choose_budget(options, (33, 41, 8), 2, time_budget_s=budget_s, device="cpu", started=100.0,
                           clock=fake_clock(103.0), measure=lambda *args: seen.append(args) or TIMES)
    assert budget.total_iter == total_iter and budget.source == "time_budget" and budget.seconds == budget_s
    assert options["train"]["total_iter"] == total_iter and seen == [(options, (33, 41, 8), 2)]
    scheduler = options["train"]["scheduler"]
    assert milestones_in_iterations(scheduler["milestones"], options["train"]["total_iter"]) == milestones


def test_absolute_milestones_scale_with_the_iterations_too():
    """A recipe in BasicSR's spelling (milestones [1000, 1500] of 2000): with 100 iterations they fall at 50 and 75
    (was: at 1000 and 1500, never reached: the first 100 iterations of a 2000-iteration schedule)."""
    for budget in ({"iterations": 100}, {"time_budget_s": 56.0}):  # (56 * 0.9 - 0.4 - 0) / 0.5 = 100
        options = budget_options(milestones=(1000, 1500))
        choose_budget(options, (33, 41, 8), 2, device="cpu", started=0.0, clock=fake_clock(0.4),
                      measure=lambda *args: StepTimes(0.0, 0.5, 0.0), **budget)
        total = options["train"]["total_iter"]
        assert total == 100
        assert milestones_in_iterations(options["train"]["scheduler"]["milestones"], total) == [50, 75]


def test_the_budget_given_else_a_default_on_a_cpu_else_the_recipes_on_a_gpu(monkeypatch):
    """iterations=N: N, nothing measured; neither on a CPU: the default budget, measured; neither on a GPU: the
    recipe's total_iter, nothing measured. Oracle: 240 s of budget, the same arithmetic."""
    from medsr_se.integration import training_budget

    options = budget_options()
    assert choose_budget(options, (33, 41, 8), 2, iterations=7, measure=never_measured).source == "iterations"
    assert options["train"]["total_iter"] == 7
    options = budget_options()
    budget = choose_budget(options, (33, 41, 8), 2, device="cpu", started=0.0, clock=fake_clock(3.0),
                           measure=lambda *args: TIMES)
    assert (budget.source, budget.seconds, budget.total_iter) == ("default", 240.0, (216 - 13) * 2)
    assert budget.seconds == DEFAULT_CPU_BUDGET_S == 240.0
    monkeypatch.setattr(training_budget, "on_gpu", lambda options, device: True)
    options = budget_options()
    budget = choose_budget(options, (33, 41, 8), 2, measure=never_measured)
    assert (budget.source, budget.total_iter, options["train"]["total_iter"]) == ("recipe", 2000, 2000)


def test_a_budget_too_short_or_both_given_names_the_parameter():
    """A budget that leaves no iteration says the least that would do: (3 + 2 + 8 + 10 x 0.5) / 0.9 = 20 s, before
    any training; both iterations= and time_budget=, or a budget of 0, is refused the same way."""
    options = budget_options()
    with pytest.raises(OptionError) as raised:
        choose_budget(options, (33, 41, 8), 2, time_budget_s=10.0, device="cpu", started=0.0,
                      clock=fake_clock(3.0), measure=lambda *args: TIMES)
    assert raised.value.parameter == "time_budget"
    assert str(raised.value).startswith("time_budget=10s: too short") and "give at least 20s" in str(raised.value)
    assert options["train"]["total_iter"] == 2000  # untouched
    for wrong in ({"iterations": 5, "time_budget_s": 60.0}, {"time_budget_s": 0.0}, {"iterations": 0}):
        with pytest.raises(OptionError) as raised:
            choose_budget(budget_options(), (33, 41, 8), 2, measure=never_measured, **wrong)
        assert raised.value.parameter in ("iterations", "time_budget")


def test_the_default_budget_is_never_an_error_a_warning_says_how_long_instead(caplog, monkeypatch):
    """A scan whose application alone outlasts the default 4 min (250 s here): no error; training still gets a
    quarter of the budget (60 s / 0.5 s = 120 iterations) and a warning says so, with the run's expected length:
    3 + 2 + 250 + 60 s = 5 min 15 s. Oracle: the arithmetic."""
    import logging

    monkeypatch.setattr(logging.getLogger("medsr_se"), "handlers", [])  # no command's flags shown in the record
    caplog.set_level(logging.WARNING, logger="medsr_se")  # an earlier command's -q (ERROR) must not hide it
    options = budget_options()
    budget = choose_budget(options, (33, 41, 8), 2, device="cpu", started=0.0, clock=fake_clock(3.0),
                           measure=lambda *args: StepTimes(2.0, 0.5, 250.0))
    assert (budget.source, budget.total_iter, options["train"]["total_iter"]) == ("default", 120, 120)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "the default budget of 4 min cannot be kept" in warning and "120 iterations anyway, about 5 min 15 s" \
        in warning and "time_budget=DURATION or iterations=N" in warning


def test_the_application_estimate_scales_the_timed_batches_to_every_slice():
    """The mean time of a sagittal batch x voxels of all sagittal and coronal slices / voxels of a batch: a
    10 x 20 x 6 volume (slice axis 2), batches of 4 slices of 6 x 20 -> 10 x 6 x 20 + 20 x 6 x 10 = 2400 voxels
    for 480 a batch: 5 batches. Oracle: a fake clock on which the batches are timed from 0 s: 1.0 s after two
    (less than MIN_TIMING_S = 2 s: one more), 2.4 s after three: 0.8 s a batch, 4 s in all; 3 volumes along a
    4th axis: 12 s."""
    from medsr_se.archs.seedsr_arch import SEEDSRGenerator

    assert MIN_TIMING_S == 2.0
    net = SEEDSRGenerator(1, 1, 8, 1, [2, 1], reduction=4)
    # clock readings: the start; after the second call; after the third; the final one for the mean
    seconds = application_seconds(net, (10, 20, 6), 2, 4, fake_clock(0.0, 1.0, 2.4, 2.4))
    assert seconds == pytest.approx(4.0)
    assert application_seconds(net, (10, 20, 6, 3), 2, 4, fake_clock(0.0, 1.0, 2.4, 2.4)) == pytest.approx(12.0)


def test_the_progress_sees_each_iteration_of_basicsrs_loop():
    """IterationTicks, as the model's update_learning_rate calls it (iteration k begins: k - 1 done): the bar is
    made at the first iteration with the iterations left (a run resumed from iteration 4 of 10: 6), one step per
    finished iteration, the last at the end of the loop."""
    made, steps = [], []

    def progress(total):
        made.append(total)
        return lambda: steps.append(1)

    ticks = IterationTicks(progress, 10)
    for current_iter in range(5, 11):
        ticks(current_iter)
    assert made == [6] and len(steps) == 5
    ticks.finish()
    assert len(steps) == 6


def test_basicsrs_log_lines_go_to_the_log_file_alone(tmp_path, capsys):
    """BasicSR's get_root_logger inside basicsr_log_file: its lines in the file, none on stderr (BasicSR itself
    adds a stream on stderr); outside, BasicSR sets its logger up again as it would. Oracle: the file, capsys."""
    from basicsr.utils import get_root_logger
    from basicsr.utils import logger as basicsr_logger

    log_file = tmp_path / "experiment" / "train.log"
    with basicsr_log_file(log_file):
        assert not log_file.exists()  # opened at the first line, after BasicSR made the folder
        log_file.parent.mkdir()
        get_root_logger(log_file=str(tmp_path / "other.log")).info("a line of BasicSR's")
    assert "INFO: a line of BasicSR's" in log_file.read_text()
    assert capsys.readouterr().err == "" and not (tmp_path / "other.log").exists()
    assert "basicsr" not in basicsr_logger.initialized_logger


def test_the_recipes_noise_matching_is_resolved_to_the_scans_sigma(tmp_path):
    """``lr_noise: auto`` (the shipped recipe's) becomes σ̂ in the scan's own units, with its source, in the options
    file: what the run used is written down, not re-estimated. Oracle: white noise of σ = 30 added to a scan
    (numpy), the estimate within 15 % (the anatomy's finest detail counts too); a number stays the recipe's; 0 is
    off; anything else names the recipe and lr_noise."""
    # a smooth blob: its own Haar band is ~0, so the estimate is the noise's
    import nibabel
    import numpy as np

    from medsr_se.data.noise_matching import ESTIMATED, FROM_RECIPE, OFF
    from medsr_se.utils.options import derive, dump_yaml

    x, y, z = np.meshgrid(np.arange(48), np.arange(44), np.arange(10), indexing="ij")
    smooth = 1000.0 * np.exp(-((x - 24) ** 2 + (y - 22) ** 2) / 300.0 - (z - 5) ** 2 / 40.0)  # no fine detail
    noisy = smooth + np.random.default_rng(0).normal(0, 30.0, smooth.shape)
    path = tmp_path / "noisy.nii.gz"
    image = nibabel.Nifti1Image(noisy.astype(np.float32), np.diag([2.0, 2.0, 6.0, 1.0]))
    nibabel.save(image, str(path))
    scan = tp.read_scan(path)
    train = training_options("selfsr", scan, R, "n", scan_path=path, iterations=2)["datasets"]["train"]
    assert train["lr_noise_source"] == ESTIMATED
    assert train["lr_noise"] == pytest.approx(30.0, rel=0.15)
    for value, source_text in ((12.5, FROM_RECIPE), (0, OFF)):
        recipe = dump_yaml(derive("selfsr", {"datasets": {"train": {"lr_noise": value}}}), tmp_path / "r.yml")
        train = training_options(recipe, scan, R, "n", scan_path=path, iterations=2)["datasets"]["train"]
        assert (train["lr_noise"], train["lr_noise_source"]) == (value, source_text)
    recipe = dump_yaml(derive("selfsr", {"datasets": {"train": {"lr_noise": "loud"}}}), tmp_path / "bad.yml")
    with pytest.raises(OptionError, match=r"^recipe=.*bad.yml: datasets:train:lr_noise='loud'") as raised:
        training_options(recipe, scan, R, "n", scan_path=path, iterations=2)
    assert raised.value.parameter == "recipe"
    recipe = dump_yaml(derive("selfsr", {"datasets": {"train": {"fwhm_jitter": 2}}}), tmp_path / "bad.yml")
    with pytest.raises(OptionError, match=r"^recipe=.*bad.yml: datasets:train:fwhm_jitter 2: a fraction"):
        training_options(recipe, scan, R, "n", scan_path=path, iterations=2)  # before anything is written


@pytest.mark.parametrize("flags, expected", [({"avx2", "avx512_bf16"}, "bf16"), ({"avx2", "amx_bf16"}, "bf16"),
                                             ({"avx2", "avx512f"}, "fp32"), (set(), "fp32")])
def test_precision_auto_is_bf16_only_on_a_cpu_that_computes_in_it(tmp_path, monkeypatch, flags, expected):
    """The recipe's ``train:precision: auto`` on a CPU: bf16 autocast where the CPU has native bfloat16 (its flags
    played by replacing ``cpu_flags``), fp32 where bfloat16 would be emulated; the options file says which and why.
    A recipe's explicit precision stays as it is."""
    from medsr_se.utils import precision
    from medsr_se.utils.options import derive, dump_yaml

    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    scan_path = thick_scan(tmp_path / "thick.nii.gz")
    scan = tp.read_scan(scan_path)
    train = training_options("selfsr", scan, R, "x", scan_path=scan_path, iterations=2, device="cpu")["train"]
    assert train["precision"] == expected and train["precision_source"].startswith("auto: this CPU")
    assert ("avx512_bf16" in train["precision_source"] or "amx_bf16" in train["precision_source"])
    given = dump_yaml(derive("selfsr", {"train": {"precision": "fp32"}}), tmp_path / "fp32.yml")
    train = training_options(given, scan, R, "x", scan_path=scan_path, iterations=2, device="cpu")["train"]
    assert train["precision"] == "fp32" and "precision_source" not in train
