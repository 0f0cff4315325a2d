"""medsr-selfsr's training budget: ``--time DURATION`` (a wall-clock budget for the whole command) or ``--iterations
N``, never both; neither: 4 min on a CPU. The note says which budget and where it came from; a progress bar with an
ETA on stderr during training (none with ``-q``), BasicSR's own lines in its log file alone."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
import torch

from medsr_se.cli import selfsr
from medsr_se.integration import training_budget
from medsr_se.integration.training_budget import StepTimes
from medsr_se.utils.durations import parse_duration
from medsr_se.utils.options import load_yaml
from tests.cli.test_selfsr import thick_scan, tiny_recipe

NAME = "thick_selfsr_x3"
IMPORTED = time.monotonic()  # this process started before this module was imported


@pytest.mark.parametrize("text, seconds", [
    ("240", 240), ("180.0", 180), ("90s", 90), ("3m", 180), ("3 min", 180), ("1h", 3600), ("1.5h", 5400),
    ("1h30m", 5400), ("2m30s", 150), (" 45 sec ", 45), (".5m", 30)])
def test_durations_as_a_user_writes_them(text, seconds):
    """Oracle: the arithmetic of each spelling (a bare number is seconds: the benchmark passes ``180.0``)."""
    assert parse_duration(text, "time_budget") == seconds


@pytest.mark.parametrize("text", ["0", "0s", "-1m", "abc", "3x", "1e9h", "", "1m1m", "30s1m", "1 2", "inf", "nan",
                                  "9999999h", "m"])
def test_a_bad_duration_is_one_error_line_naming_time(tmp_path, capsys, text):
    """One ``error: --time ...`` line, exit 2, -o not created (was: argparse's usage and "unrecognized arguments",
    a SystemExit)."""
    scan = thick_scan(tmp_path / "thick.nii.gz")
    out = tmp_path / "out"
    assert selfsr.main(["-i", str(scan), "-o", str(out), f"--time={text}"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --time "), lines
    assert "time_budget" not in lines[0] and not out.exists()


def test_the_budget_of_the_command_counts_from_the_processs_start():
    """medsr-selfsr run as a command counts Python's start-up and imports into --time: the process's age (from
    /proc) is at least the time since this module was imported, which was after the process started."""
    from medsr_se.utils.durations import process_age_s

    assert process_age_s() >= time.monotonic() - IMPORTED > 0


def test_iterations_and_time_together_are_one_error_line(tmp_path, capsys):
    scan = thick_scan(tmp_path / "thick.nii.gz")
    out = tmp_path / "out"
    assert selfsr.main(["-i", str(scan), "-o", str(out), "--iterations", "5", "--time", "3m"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: --iterations and --time: give one of them (a number of iterations or a wall-clock "
                     "budget)"] and not out.exists()


@pytest.fixture
def untrained(tmp_path):
    """train() replaced: an untrained x3 generator is the 'trained' model; the options it was given are kept."""
    from medsr_se.archs.seedsr_arch import SEEDSRGenerator

    model = tmp_path / "g3.pth"
    torch.save({"params": SEEDSRGenerator(1, 1, 8, 1, [3, 1], img_residual=True).state_dict()}, model)
    given = []

    def train(options, output, name, progress=None):
        given.append(options)
        return model

    return given, train


@pytest.mark.parametrize("extra, source", [
    ([], r"training budget: 4 min for the whole run \(the default on a CPU; --time DURATION or --iterations N "
         r"to change it\): (\d+) iterations of ~0\.5 s"),
    (["--time", "1m"], r"training budget: 1 min for the whole run \(--time 1min\): (\d+) iterations of ~0\.5 s"),
    (["--iterations", "5"], r"training budget: (\d+) iterations \(--iterations 5\)")])
def test_the_note_says_which_budget_and_where_it_came_from(tmp_path, capsys, monkeypatch, untrained, extra, source):
    """The library's note (parameters named ``time_budget=``, ``iterations=``) under this command's flags, and the
    options handed to the training carry the iterations it names. The step times are injected: 0.5 s an iteration,
    nothing else, so 4 min leave (216 s - the few seconds elapsed) / 0.5 iterations."""
    given, train = untrained
    monkeypatch.setattr(selfsr, "train", train)
    monkeypatch.setattr(training_budget, "measure_step_times", lambda *args: StepTimes(0.0, 0.5, 0.0))
    scan = thick_scan(tmp_path / "thick.nii.gz")
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "out"), "--device", "cpu", "--slice-thickness", "6",
                        *extra]) == 0
    err = capsys.readouterr().err
    found = re.search(source, err)
    assert found, err
    iterations = int(found.group(1))
    assert given[0]["train"]["total_iter"] == iterations
    if extra[:1] == ["--iterations"]:
        assert iterations == 5
    else:
        budget = 240 if not extra else 60
        assert budget * 0.9 / 0.5 - 20 < iterations <= budget * 0.9 / 0.5  # a few seconds elapsed before


@pytest.mark.slow
def test_a_time_budget_is_kept_with_a_bar_and_its_schedule_fitted(tmp_path, capsys):
    """A tiny run with --time 20s: done within a generous bound; its options file says the total_iter the note
    named (from the budget), and the scheduler BasicSR built (torch's, saved in the training state) put its
    milestones at half and three quarters of it; a progress bar with an ETA on stderr, none of BasicSR's own lines
    there (they are in its log file). -q: nothing on stderr. Oracles: the wall clock, torch's saved scheduler,
    BasicSR's log file."""
    scan = thick_scan(tmp_path / "thick.nii.gz")
    recipe = tiny_recipe(tmp_path / "tiny.yml", total_iter=100000, checkpoint_every=5)
    out = tmp_path / "out"
    start = time.monotonic()
    assert selfsr.main(["-i", str(scan), "-o", str(out), "-opt", str(recipe), "--device", "cpu", "--time", "20s",
                        "--slice-thickness", "6"]) == 0
    assert time.monotonic() - start < 90  # 20 s planned; generous: the CPU may be shared with other jobs
    err = capsys.readouterr().err
    total = int(re.search(r"\(--time 20s\): (\d+) iterations", err).group(1))
    assert load_yaml(out / f"{NAME}.yml")["train"]["total_iter"] == total < 100000
    experiment = out / "experiments" / NAME
    newest = max(experiment.glob("training_states/*.state"), key=lambda p: int(p.stem))
    state = torch.load(newest, map_location="cpu", weights_only=False)
    assert sorted(state["schedulers"][0]["milestones"]) == [round(0.5 * total), round(0.75 * total)]
    assert f"training {total} iterations\n" in err and re.search(rf"\] {total}/{total}, .*ETA:", err), err[-500:]
    assert " INFO: " not in err and "Start training" not in err
    log = next(experiment.glob("train_*.log")).read_text()
    assert "Start training from epoch: 0, iter: 0" in log and f"iters: {total}." in log

    (out / f"{NAME}.nii.gz").unlink()
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "quiet"), "-opt", str(recipe), "--device", "cpu",
                        "--iterations", "3", "--slice-thickness", "6", "-q"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_the_step_times_are_measured_with_basicsrs_own_builders(tmp_path, capsys):
    """measure_step_times on the tiny recipe: positive times, an iteration timed for at least MIN_TIMING_S over at
    least two steps (here: more than 0 s each), BasicSR's lines on neither stream."""
    from medsr_se import throughplane as tp
    from medsr_se.integration.selfsr_training import training_options
    from medsr_se.utils.options import load_recipe

    scan_path = thick_scan(tmp_path / "thick.nii.gz")
    recipe = tiny_recipe(tmp_path / "tiny.yml", total_iter=10, checkpoint_every=5)
    assert load_recipe(recipe)["network_g"]["num_feat"] == 8
    scan = tp.read_scan(scan_path)
    options = training_options(recipe, scan, 3, NAME, scan_path=scan_path, device="cpu")
    times = training_budget.measure_step_times(options, scan.values.shape, scan.geometry.axis)
    assert times.setup_s > 0 and times.iteration_s > 0 and times.application_s > 0
    captured = capsys.readouterr()
    assert captured.err == "" and "INFO" not in captured.out
    assert not (tmp_path / "experiments").exists()


def test_the_benchmark_passes_time_on_alone(tmp_path, monkeypatch):
    """benchmarks/throughplane.py --time SECONDS: medsr-selfsr gets --time (as the benchmark spells it, "180.0")
    and no --iterations, and takes them (was: both, which medsr-selfsr refuses). Oracle: medsr-selfsr's own
    parser and checks on the arguments the benchmark built."""
    from benchmarks import throughplane as bench

    seen = []

    def fake_main(arguments):
        seen.append(arguments)
        raise SystemExit("stop here (test)")

    truth = np.ones((4, 4, 16), np.float32)
    case = bench.make_case(bench.GroundTruth(truth, np.diag([2.0, 2.0, 2.0, 1.0]), 2.0, "ones", truth.shape, None),
                           bench.Config(4, 2, "nogap", 0.0), tmp_path, 0)
    args = bench.parse_args(["--quick", "--time", "180"])
    monkeypatch.setattr(selfsr, "main", fake_main)
    with pytest.raises(SystemExit, match="stop here"):
        bench.run_selfsr(case, 0, args, 2.0, tmp_path)
    (arguments,) = seen
    assert "--iterations" not in arguments and arguments[arguments.index("--time") + 1] == "180.0"
    parsed = selfsr.build_parser().parse_args(arguments)
    selfsr.check_arguments(parsed)
    assert parsed.time == 180.0
