"""medsr-selfsr's report beside its result (``out/<result>_report.json``) and its last result line: the fields and their
types, the LR consistency recomputed here from the files written (the thick slices' model by hand), -q, an existing
report refused before anything is written, and a trained run's iterations and estimated thickness."""

from __future__ import annotations

import json
import math

import nibabel
import numpy as np
import pytest

from medsr_se.cli import selfsr
from tests.cli.test_selfsr import thick_scan, through_plane_model, tiny_recipe
from tests.evaluation.test_through_plane_consistency import degrade_by_hand

NUMBER = (int, float)


def run_with_model(tmp_path, *extra) -> int:
    scan = thick_scan(tmp_path / "thick.nii.gz")  # 33 x 41 x 8, 2 mm in-plane, 6 mm slices: r = 3
    model = through_plane_model(tmp_path / "g3.pth")
    return selfsr.main(["-i", str(scan), "-o", str(tmp_path / "out"), "--model", str(model), "--device", "cpu",
                        *extra])


def test_the_report_holds_the_run_and_its_lr_consistency(tmp_path, capsys):
    """Every field there with its type; the LR consistency of the result and of cubic B-spline equal what is
    recomputed here from the input and the result files (Gaussian FWHM 3 px summed by hand, mask above 10 % of the
    range; the result as written, rounded to int16, hence 0.05 dB); the last stdout line gives the same numbers and
    the report's path."""
    from scipy import ndimage

    assert run_with_model(tmp_path, "--sheet") == 0
    out = capsys.readouterr().out.strip().splitlines()
    path = tmp_path / "out" / "thick_selfsr_x3_report.json"
    report = json.loads(path.read_text())
    assert report["format"] == "medsr-selfsr report 1"
    source = report["input"]
    assert source["path"] == str((tmp_path / "thick.nii.gz").resolve()) and source["kind"] == "nifti"
    assert source["shape"] == [33, 41, 8] and source["slice_axis"] == 2 and source["spacing_mm"] == [2.0, 2.0, 6.0]
    assert report["result"]["shape"] == [33, 41, 24] and report["result"]["slice_spacing_mm"] == 2.0
    assert report["result"]["resampled"] is False and report["result"]["network_shape"] == [33, 41, 24]
    assert report["result"]["path"] == str((tmp_path / "out" / "thick_selfsr_x3.nii.gz").resolve())
    assert report["r"] == 3
    assert report["slice_profile"] == {
        "kind": "gaussian", "kernel_file": None, "name": "Gaussian FWHM 3 px", "fwhm_mm": 6.0, "fwhm_pixels": 3.0,
        "source": "assumed", "source_detail": report["slice_profile"]["source_detail"]}
    assert report["network"] == {"model": str((tmp_path / "g3.pth").resolve()), "trained_here": False,
                                 "iterations": None, "training_noise": None, "training_precision": None,
                                 "started_from": None}
    seconds = report["seconds"]
    assert seconds["training"] is None and all(isinstance(seconds[k], float) and seconds[k] >= 0
                                               for k in ("application", "lr_consistency", "total"))
    assert seconds["total"] >= seconds["application"] + seconds["lr_consistency"]
    assert report["device"] == "cpu"
    assert set(report["versions"]) == {"medsr_se", "torch", "basicsr"}
    assert all(isinstance(v, str) for v in report["versions"].values())
    assert any("assumed" in note for note in report["notes"]) and any("not trained here" in n for n in report["notes"])

    consistency = report["lr_consistency"]
    assert "cannot show" in consistency["what_it_shows"] and "copies" in consistency["what_it_shows"]
    thick = np.asarray(nibabel.load(str(tmp_path / "thick.nii.gz")).dataobj, np.float64)
    result = np.asarray(nibabel.load(str(tmp_path / "out" / "thick_selfsr_x3.nii.gz")).dataobj, np.float64)
    cubic = ndimage.zoom(thick.astype(np.float32), (1, 1, 3), order=3, mode="nearest", grid_mode=True)
    peak = thick.max() - thick.min()
    mask = thick > thick.min() + 0.1 * peak
    assert consistency["psnr_peak"] == peak and consistency["mask_voxels"] == int(mask.sum())
    for name, candidate in (("result", result), ("cubic_bspline", cubic)):
        squared = (degrade_by_hand(candidate, 2, 3, 3.0) - thick) ** 2
        numbers = consistency[name]
        assert set(numbers) == {"psnr_db_mask", "psnr_db_whole", "rmse_mask", "rmse_whole"}
        assert all(isinstance(v, NUMBER) for v in numbers.values())
        assert numbers["psnr_db_mask"] == pytest.approx(10 * math.log10(peak ** 2 / squared[mask].mean()), abs=0.05)
        assert numbers["psnr_db_whole"] == pytest.approx(10 * math.log10(peak ** 2 / squared.mean()), abs=0.05)
    ours, theirs = consistency["result"], consistency["cubic_bspline"]
    assert out[-1].startswith(f"{path}: LR consistency")
    assert f"{ours['psnr_db_mask']:.2f} dB inside the mask (cubic B-spline {theirs['psnr_db_mask']:.2f} dB" in out[-1]
    assert f"{ours['psnr_db_whole']:.2f} dB over the whole volume (cubic {theirs['psnr_db_whole']:.2f} dB" in out[-1]
    assert out[0].startswith(str(tmp_path / "out" / "thick_selfsr_x3.nii.gz"))
    assert (tmp_path / "out" / "thick_selfsr_x3_sheet.png").stat().st_size > 0


def test_quiet_prints_nothing_and_still_writes_the_report(tmp_path, capsys):
    assert run_with_model(tmp_path, "-q") == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert json.loads((tmp_path / "out" / "thick_selfsr_x3_report.json").read_text())["r"] == 3


def test_a_report_without_its_result_is_moved_aside_not_overwritten(tmp_path, capsys):
    """A report whose result is gone (the user deleted the result to run again) neither blocks the run nor is
    overwritten: it is moved aside as ``<report>_archived_<time>`` with a note, and the new report is written
    (was: the run refused, so deleting a result was not enough to run again)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "thick_selfsr_x3_report.json").write_bytes(b"keep me")
    assert run_with_model(tmp_path) == 0
    (archived,) = out.glob("thick_selfsr_x3_report.json_archived_*")
    assert archived.read_bytes() == b"keep me"
    assert json.loads((out / "thick_selfsr_x3_report.json").read_text())["r"] == 3
    assert "moved aside to thick_selfsr_x3_report.json_archived_" in capsys.readouterr().err


def test_an_existing_result_refuses_the_run_and_keeps_its_report(tmp_path, capsys):
    """With the result there, one error line naming it, exit 2; result and report untouched."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "thick_selfsr_x3.nii.gz").write_bytes(b"result")
    (out / "thick_selfsr_x3_report.json").write_bytes(b"keep me")
    assert run_with_model(tmp_path, "--sheet") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "thick_selfsr_x3.nii.gz: exists" in lines[0]
    assert (out / "thick_selfsr_x3_report.json").read_bytes() == b"keep me"
    assert sorted(p.name for p in out.iterdir()) == ["thick_selfsr_x3.nii.gz", "thick_selfsr_x3_report.json"]


@pytest.mark.slow
def test_a_trained_run_reports_its_iterations_and_the_estimated_thickness(tmp_path, capsys):
    """A scan of 4 mm slices 2.4 mm thick that does not say so, trained 2 iterations of a tiny recipe: the report
    says "estimated" with the estimator's FWHM, the iterations, the model trained, the training's seconds."""
    from tests.data.test_profile_estimation import head, thick

    path = tmp_path / "gap.nii.gz"
    nibabel.save(nibabel.Nifti1Image(thick(head(), 2, 4, 2.4), np.diag([1.0, 1.0, 4.0, 1.0])), str(path))
    recipe = tiny_recipe(tmp_path / "tiny.yml", total_iter=2, checkpoint_every=2)
    assert selfsr.main(["-i", str(path), "-o", str(tmp_path / "out"), "-opt", str(recipe), "--iterations", "2",
                        "--device", "cpu", "-q"]) == 0
    report = json.loads((tmp_path / "out" / "gap_selfsr_x4_report.json").read_text())
    assert report["slice_profile"]["source"] == "estimated"
    assert report["slice_profile"]["source_detail"].startswith("estimated from the scan")
    assert abs(report["slice_profile"]["fwhm_mm"] - 0.8 * 2.4) / (0.8 * 2.4) < 0.15  # a gap: 0.8 x the estimate
    assert "0.80 x the estimate" in report["slice_profile"]["source_detail"]
    assert report["network"]["trained_here"] is True and report["network"]["iterations"] == 2
    assert report["network"]["model"].endswith("experiments/gap_selfsr_x4/models/net_g_latest.pth")
    assert isinstance(report["seconds"]["training"], float) and report["seconds"]["training"] > 0
    assert report["seconds"]["total"] > report["seconds"]["training"]


@pytest.mark.slow  # trains, then applies the model
def test_the_report_says_the_noise_the_training_inputs_were_given(tmp_path, capsys):
    """The precision it trained in and why, and the noise matching the run rests on (σ̂ estimated from the scan,
    the σ added to each training LR), are in the report, the noise with a note naming the assumption; a run with a
    model given trained nothing and says null for both."""
    from medsr_se.data.degradations import gaussian_profile, row_weights, sample_rows
    from medsr_se.utils.precision import resolve_auto_precision

    path = thick_scan(tmp_path / "thick.nii.gz")
    recipe = tiny_recipe(tmp_path / "tiny.yml", total_iter=2, checkpoint_every=2)
    assert selfsr.main(["-i", str(path), "-o", str(tmp_path / "out"), "-opt", str(recipe), "--iterations", "2",
                        "--device", "cpu", "-q"]) == 0
    report = json.loads((tmp_path / "out" / "thick_selfsr_x3_report.json").read_text())
    noise = report["network"]["training_noise"]
    assert noise["source"].startswith("estimated from the scan") and noise["sigma"] > 0
    _, weights = row_weights(gaussian_profile(report["slice_profile"]["fwhm_pixels"]), sample_rows(3)[1])
    assert noise["added_to_each_lr"] == pytest.approx(noise["sigma"] * np.sqrt(1 - np.sum(weights ** 2)), rel=1e-9)
    assert any("noise up to the scan's own" in note for note in report["notes"])
    precision, why = resolve_auto_precision(on_gpu=False)  # the recipe says auto: this CPU's flags decide
    assert report["network"]["training_precision"] == {"precision": precision, "source": why}
    model = tmp_path / "out" / "experiments" / "thick_selfsr_x3" / "models" / "net_g_latest.pth"
    assert selfsr.main(["-i", str(path), "-o", str(tmp_path / "again"), "--model", str(model), "--device", "cpu",
                        "-q"]) == 0
    again = json.loads((tmp_path / "again" / "thick_selfsr_x3_report.json").read_text())
    assert again["network"]["training_noise"] is None and again["network"]["training_precision"] is None
