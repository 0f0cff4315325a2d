"""``medsr-selfsr -i cohort/ --shared``: each scan's training starts from the model trained on the cohort's scan
before it with the same r (the first of each r from scratch). Oracle: BasicSR's own training log, which names the
file it loaded the generator's weights from, and the options file BasicSR trained by."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from medsr_se.cli import selfsr
from tests.cli.test_selfsr import tiny_recipe
from tests.cli.test_selfsr_cohort import error_lines, small_scan, summary


def loaded_from(experiment) -> list[str]:
    """The files BasicSR's log says it loaded the generator from (its own words: ``Loading ... model from X``)."""
    [log] = experiment.glob("train_*.log")
    return [line.split(" model from ", 1)[1].split(",")[0].strip() for line in log.read_text().splitlines()
            if "Loading" in line and " model from " in line]


def shared_cohort(tmp_path):
    """a and c: slices 3 pixels apart (r = 3); b: 2 apart (r = 2)."""
    folder = tmp_path / "cohort"
    small_scan(folder / "a.nii.gz", seed=1, shape=(32, 28, 8))
    small_scan(folder / "b.nii.gz", seed=2, shape=(32, 28, 12), zooms=(1.0, 1.0, 2.0))
    small_scan(folder / "c.nii.gz", seed=3, shape=(32, 28, 8))
    return folder


def run_shared(folder, out, recipe, *extra) -> int:
    return selfsr.main(["-i", str(folder), "-o", str(out), "-opt", str(recipe), "--device", "cpu",
                        "--iterations", "2", "--shared", *extra])  # not -q: the notes are checked


@pytest.mark.slow  # four tiny trainings through BasicSR's loop
def test_each_scan_starts_from_the_model_of_the_scan_before_it_with_its_r(tmp_path, capsys):
    folder, out = shared_cohort(tmp_path), tmp_path / "out"
    recipe = tiny_recipe(tmp_path / "tiny.yml", total_iter=2, checkpoint_every=2)
    assert run_shared(folder, out, recipe) == 0
    model_a = (out / "experiments" / "a_selfsr_x3" / "models" / "net_g_latest.pth").resolve()
    assert loaded_from(out / "experiments" / "a_selfsr_x3") == []  # the first of r = 3: from scratch
    assert loaded_from(out / "experiments" / "b_selfsr_x2") == []  # the first of r = 2: from scratch
    assert loaded_from(out / "experiments" / "c_selfsr_x3") == [str(model_a)]  # BasicSR loaded a's weights
    rows = {row["scan"]: row for row in summary(out)}
    assert [rows[name]["started_from"] for name in ("a.nii.gz", "b.nii.gz", "c.nii.gz")] == ["", "", str(model_a)]
    report_c = json.loads((out / "c_selfsr_x3_report.json").read_text())
    assert report_c["network"]["started_from"] == {"model": str(model_a),
                                                   "sha256": hashlib.sha256(model_a.read_bytes()).hexdigest()}
    assert "starting from the model of the scan before it" in capsys.readouterr().err

    # a rerun after c's result is removed: a is done already and passes on the model its report names
    (out / "c_selfsr_x3.nii.gz").unlink()
    assert run_shared(folder, out, recipe) == 0
    assert {row["scan"]: row["status"] for row in summary(out)} == {
        "a.nii.gz": "skipped: done already", "b.nii.gz": "skipped: done already", "c.nii.gz": "done"}
    assert {row["scan"]: row for row in summary(out)}["c.nii.gz"]["started_from"] == str(model_a)

    # a's model gone: c trains from scratch, and a note says why
    shutil.rmtree(out / "experiments" / "a_selfsr_x3")
    (out / "c_selfsr_x3.nii.gz").unlink()
    capsys.readouterr()
    assert run_shared(folder, out, recipe) == 0
    assert "a.nii.gz: the model its report names is not in" in capsys.readouterr().err
    assert {row["scan"]: row for row in summary(out)}["c.nii.gz"]["started_from"] == ""


@pytest.mark.parametrize("case", ["one_scan", "with_model"])
def test_shared_where_it_cannot_work_is_one_line_exit_2_nothing_made(tmp_path, capsys, case):
    folder = tmp_path / "cohort"
    scan = small_scan(folder / "a.nii.gz", seed=1)
    given = scan if case == "one_scan" else folder
    extra = ["--model", str(scan)] if case == "with_model" else []
    assert selfsr.main(["-i", str(given), "-o", str(tmp_path / "out"), "--shared", "-q", *extra]) == 2
    [line] = error_lines(capsys)
    assert {"one_scan": "--shared: for a folder of scans", "with_model": "--shared and --model"}[case] in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # three tiny trainings
def test_a_start_model_that_does_not_fit_or_lies_outside_the_output_is_not_used(tmp_path, capsys):
    """A rerun with a recipe of another network width: the model passed on does not load into it, so the scan
    trains from scratch with a warning naming why (was: BasicSR's size-mismatch traceback stopped the cohort). An
    output folder copied elsewhere never starts from a model in the original folder."""
    folder, out = shared_cohort(tmp_path), tmp_path / "out"
    (folder / "b.nii.gz").unlink()
    assert run_shared(folder, out, tiny_recipe(tmp_path / "tiny.yml", total_iter=2, checkpoint_every=2)) == 0
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    wider = tiny_recipe(tmp_path / "wider.yml", total_iter=2, checkpoint_every=2)
    wider.write_text(wider.read_text().replace("num_feat: 8", "num_feat: 16"))
    (out / "c_selfsr_x3.nii.gz").unlink()
    capsys.readouterr()
    assert run_shared(folder, out, wider) == 0
    err = capsys.readouterr().err
    assert "--shared: the model of a.nii.gz cannot start this scan's training" in err and "num_feat: 8" in err
    assert loaded_from(out / "experiments" / "c_selfsr_x3") == []  # from scratch, by BasicSR's own log
    assert {row["scan"]: row for row in summary(out)}["c.nii.gz"]["started_from"] == ""

    shutil.rmtree(copy / "experiments" / "a_selfsr_x3")  # the copy's own model of a is gone; the original's is not
    (copy / "c_selfsr_x3.nii.gz").unlink()
    assert run_shared(folder, copy, tiny_recipe(tmp_path / "tiny.yml", total_iter=2, checkpoint_every=2)) == 0
    assert loaded_from(copy / "experiments" / "c_selfsr_x3") == []
    assert "a.nii.gz: the model its report names is not in" in capsys.readouterr().err


@pytest.mark.slow  # one tiny training
def test_a_cohort_of_one_scan_says_nothing_is_passed_on(tmp_path, capsys):
    folder = tmp_path / "cohort"
    small_scan(folder / "a.nii.gz", seed=1, shape=(32, 28, 8))
    assert run_shared(folder, tmp_path / "out", tiny_recipe(tmp_path / "tiny.yml", total_iter=2,
                                                            checkpoint_every=2)) == 0
    assert "--shared: the cohort holds one scan, so no model is passed on" in capsys.readouterr().err
