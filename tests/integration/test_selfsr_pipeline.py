"""medsr-selfsr's run as a library (medsr_se.integration.selfsr_pipeline), called as a Python caller would, with no
command around it: nothing is made under the output folder before produce(), an existing file is refused naming
it (the result itself as ResultExists, which a cohort run reads as done already), and what the run writes and says
names the parameters, not medsr-selfsr's flags. The command over it: tests/cli/test_selfsr*.py."""

from __future__ import annotations

import json
import logging
import pickle

import nibabel
import numpy as np
import pytest

from medsr_se.errors import OptionError
from medsr_se.evaluation.selfsr_report import StepClock
from medsr_se.inference.through_plane import apply_network, load_through_plane_model
from medsr_se.integration import selfsr_pipeline as pipeline
from tests.cli.test_selfsr import R, thick_scan, through_plane_model


@pytest.fixture
def scan(tmp_path):
    return thick_scan(tmp_path / "thick.nii.gz")


def test_a_plan_makes_nothing_and_names_what_the_run_will_write(tmp_path, scan):
    """Oracle: the names the module docstring gives (the grid's r from the 6 mm slices and 2 mm pixels), and the
    file system: the output folder is not there after planning."""
    out = tmp_path / "out" / "deeper"
    plan = pipeline.plan_run(scan, out, slice_thickness=6.0, labels=None, sheet=True, recipe="selfsr", device="cpu")
    pipeline.finish_plan(plan, iterations=3)
    assert plan.r == R and plan.experiment == "thick_selfsr_x3"
    assert (plan.result, plan.report, plan.sheet, plan.labels) == (
        out / "thick_selfsr_x3.nii.gz", out / "thick_selfsr_x3_report.json", out / "thick_selfsr_x3_sheet.png", None)
    assert plan.training["train"]["total_iter"] == 3
    assert plan.training["datasets"]["train"]["slice_thickness_source"] == "from slice_thickness"  # not a flag
    assert not (tmp_path / "out").exists()


def test_an_existing_result_is_result_exists_and_another_file_output_exists(tmp_path, scan):
    """Oracle: the files put there by the test; the message names the parameter (a command maps it)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "thick_selfsr_x3_sheet.png").write_text("keep")
    with pytest.raises(pipeline.OutputExists) as refused:
        pipeline.plan_run(scan, out, slice_thickness=6.0, model=through_plane_model(tmp_path / "g3.pth"), sheet=True)
    assert not isinstance(refused.value, pipeline.ResultExists) and isinstance(refused.value, OptionError)
    assert refused.value.path == out / "thick_selfsr_x3_sheet.png" and refused.value.parameter == "output"
    assert "choose another output=FOLDER (nothing was overwritten)" in str(refused.value)
    (out / "thick_selfsr_x3.nii.gz").write_text("a result")  # the result is checked first
    with pytest.raises(pipeline.ResultExists) as done:
        pipeline.plan_run(scan, out, model=tmp_path / "g3.pth", given_as={"output": "-o"})
    assert done.value.path == out / "thick_selfsr_x3.nii.gz" and str(done.value).endswith(
        "choose another -o (nothing was overwritten)")
    copy = pickle.loads(pickle.dumps(done.value))
    assert type(copy) is pipeline.ResultExists and (copy.path, str(copy)) == (done.value.path, str(done.value))
    assert sorted(p.read_text() for p in out.iterdir()) == ["a result", "keep"]  # nothing written over


def test_produce_writes_what_the_plan_named_and_says_parameters(tmp_path, scan, caplog):
    """A model given, a label map, --data-consistency's parameter: the result on the grid of 2.5 mm slices, its
    labels, the report; the notes name ``slice_thickness=`` (a Python caller has no flags). Oracles: the target
    spacing asked for (M = floor(N·D / t) = floor(8 · 6 / 2.5) = 19 slices of 2.5 mm in the header, by hand from
    the formula in medsr_se/io/slice_grid.py's docstring) and the files on disk."""
    image = nibabel.load(str(scan))
    seg = tmp_path / "seg.nii.gz"
    labels = np.zeros(image.shape, np.int16)
    labels[8:20, 10:30, 2:6] = 4
    nibabel.save(nibabel.Nifti1Image(labels, image.affine), str(seg))
    model = through_plane_model(tmp_path / "g3.pth")
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="medsr_se"):
        plan = pipeline.plan_run(scan, out, target_spacing=2.5, labels=seg, model=model, device="cpu",
                                 data_consistency=True)
        net = load_through_plane_model(model, plan.r, "cpu")
        pipeline.finish_plan(plan)
        out.mkdir()
        values, _ = apply_network(plan.scan.values, plan.scan.geometry, net)
        report = pipeline.produce(plan, values, net, model, StepClock(0.0))
    assert plan.result == out / "thick_selfsr_2.5mm.nii.gz" and plan.labels == out / "thick_selfsr_2.5mm_labels.nii.gz"
    written = nibabel.load(str(plan.result))
    assert written.shape[2] == 19 and written.header.get_zooms()[2] == pytest.approx(2.5)
    assert nibabel.load(str(plan.labels)).shape == written.shape
    assert json.loads(plan.report.read_text()) == report and report["r"] == 3
    assert report["result"]["resampled"] and report["result"]["shape"][2] == 19
    assert any("corrected to give the input's slices back" in note for note in report["notes"]), report["notes"]
    messages = [record.getMessage() for record in caplog.records]
    assert any("give slice_thickness=MM" in message for message in messages), messages
    assert any(message.startswith("data consistency applied") for message in messages), messages
    assert not any("--" in message for message in messages), messages
