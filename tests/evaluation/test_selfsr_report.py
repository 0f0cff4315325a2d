"""medsr-selfsr's run report (medsr_se.evaluation.selfsr_report) from the library: where the slice profile came from
for scans read as they come (assumed, BIDS sidecar, the option, DICOM SliceThickness, estimated from the scan, a
kernel), the JSON written once and never over a file, the line and the --sheet caption with the report's numbers."""

from __future__ import annotations

import json
import time

import nibabel
import numpy as np
import pytest

from medsr_se.data.degradations import load_profile
from medsr_se.data.profile_estimation import estimate_thickness
from medsr_se.errors import WriteError
from medsr_se.evaluation import selfsr_report as reports
from medsr_se.evaluation import sheets
from medsr_se.io import scans
from tests.cli.test_selfsr import thick_scan
from tests.io.test_through_plane_geometry import mr_series


def report_of(scan: scans.Scan, r: int, tmp_path, **extra) -> dict:
    values = np.repeat(scan.values, r, axis=scan.geometry.axis)
    run = reports.SelfSRRun(tmp_path / "in", tmp_path / "out.nii.gz", scan, values, r, tmp_path / "g.pth", None, "cpu",
                            reports.StepClock(time.monotonic()), **extra)
    return reports.run_report(run)


def test_the_profile_source_of_each_origin(tmp_path):
    """A NIfTI without a sidecar: assumed; with one: bids_sidecar; given: option (also as a command rewords it);
    a DICOM series with SliceThickness: dicom. Oracle: the files written here and what they say."""
    path = thick_scan(tmp_path / "thick.nii.gz")
    profile = report_of(scans.read_scan(path), 3, tmp_path)["slice_profile"]
    assert profile["source"] == "assumed" and profile["source_detail"].startswith("assumed = slice spacing")
    assert (profile["kind"], profile["fwhm_mm"], profile["fwhm_pixels"]) == ("gaussian", 6.0, 3.0)
    (tmp_path / "thick.json").write_text(json.dumps({"SliceThickness": 4.5}))
    profile = report_of(scans.read_scan(path), 3, tmp_path)["slice_profile"]
    assert profile["source"] == "bids_sidecar" and (profile["fwhm_mm"], profile["fwhm_pixels"]) == (4.5, 2.25)
    given = scans.read_scan(path, slice_thickness=5.0)
    assert report_of(given, 3, tmp_path)["slice_profile"]["source"] == "option"
    reworded = scans.Scan(given.volume, scans.SliceGeometry(2, 2.0, 6.0, 5.0, "from --slice-thickness"))
    assert report_of(reworded, 3, tmp_path)["slice_profile"]["source"] == "option"
    series = scans.read_scan(mr_series(tmp_path / "dicom", count=4, gap=0.3125 * 3, thickness=0.8))
    profile = report_of(series, 3, tmp_path)["slice_profile"]
    assert (profile["source"], profile["fwhm_mm"]) == ("dicom", pytest.approx(0.8))


def test_an_estimated_thickness_is_said_estimated(tmp_path):
    """4 mm slices 2.4 mm thick that do not say so: the estimator's thickness is reported as "estimated" with its
    FWHM (a gap: 0.8 x the estimate, within 15 % of 0.8 x 2.4 mm), and a note says the numbers rest on it."""
    from tests.data.test_profile_estimation import head, thick

    path = tmp_path / "gap.nii.gz"
    nibabel.save(nibabel.Nifti1Image(thick(head(), 2, 4, 2.4), np.diag([1.0, 1.0, 4.0, 1.0])), str(path))
    assumed = scans.read_scan(path)
    assert report_of(assumed, 4, tmp_path)["slice_profile"]["source"] == "assumed"
    report = report_of(estimate_thickness(assumed), 4, tmp_path)
    assert report["slice_profile"]["source"] == "estimated"
    assert abs(report["slice_profile"]["fwhm_mm"] - 0.8 * 2.4) / (0.8 * 2.4) < 0.15  # a gap: 0.8 x the estimate
    assert "0.80 x the estimate" in report["slice_profile"]["source_detail"]
    assert any("estimated from the scan" in note for note in report["notes"])


def test_a_kernel_is_the_option_with_its_file(tmp_path):
    np.save(tmp_path / "box.npy", np.ones(3))
    scan = scans.read_scan(thick_scan(tmp_path / "thick.nii.gz"))
    report = report_of(scan, 3, tmp_path, kernel=load_profile(tmp_path / "box.npy"),
                       kernel_file=tmp_path / "box.npy", kernel_source="--slice-profile")
    profile = report["slice_profile"]
    assert profile["kind"] == "kernel" and profile["source"] == "option"
    assert profile["kernel_file"] == str((tmp_path / "box.npy").resolve()) and profile["fwhm_mm"] is None
    assert profile["source_detail"] == "from --slice-profile"
    assert not any("assumed" in note for note in report["notes"])  # the kernel does not rest on the thickness


def test_a_resampled_result_is_said_and_measured_on_the_networks_slices(tmp_path):
    """A result resampled to another slice spacing: its shape and spacing are the file's, the network's r·N slices
    (what the LR consistency is measured on) beside them."""
    scan = scans.read_scan(thick_scan(tmp_path / "thick.nii.gz"))  # 8 slices of 6 mm, r = 3
    result = report_of(scan, 3, tmp_path, written=(19, 2.5))["result"]
    assert result["shape"] == [33, 41, 19] and result["slice_spacing_mm"] == 2.5 and result["resampled"] is True
    assert result["network_shape"] == [33, 41, 24] and result["network_slice_spacing_mm"] == 2.0
    plain = report_of(scan, 3, tmp_path)["result"]
    assert plain["shape"] == plain["network_shape"] == [33, 41, 24] and plain["resampled"] is False


def test_written_once_as_json_never_over_a_file(tmp_path):
    scan = scans.read_scan(thick_scan(tmp_path / "thick.nii.gz"))
    report = report_of(scan, 3, tmp_path)
    target = tmp_path / "r_report.json"
    reports.write_report(target, report)
    assert json.loads(target.read_text()) == report
    with pytest.raises(WriteError, match="r_report.json: exists"):
        reports.write_report(target, {"other": 1})
    assert json.loads(target.read_text()) == report
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_the_line_and_the_sheet_caption_give_the_reports_numbers():
    report = {"lr_consistency": {"result": {"psnr_db_mask": 35.4121, "psnr_db_whole": 38.0},
                                 "cubic_bspline": {"psnr_db_mask": 31.2, "psnr_db_whole": None}}}
    line = reports.consistency_line("out/x_report.json", report)
    assert line.startswith("out/x_report.json: LR consistency")
    assert "35.41 dB inside the mask (cubic B-spline 31.20 dB, +4.21)" in line
    assert "38.00 dB over the whole volume (cubic n/a)" in line
    caption = reports.sheet_caption(report)
    assert caption[1] == "cubic B-spline 31.20 dB  |  medsr-selfsr 35.41 dB (+4.21 dB)"
    exact = {"lr_consistency": {"result": {"psnr_db_mask": None, "psnr_db_whole": None, "rmse_mask": 0.0,
                                           "rmse_whole": 0.0},
                                "cubic_bspline": {"psnr_db_mask": 30.0, "psnr_db_whole": 31.0}}}
    assert "exact inside the mask (cubic B-spline 30.00 dB)" in reports.consistency_line("r.json", exact)
    assert reports.sheet_caption(exact)[1] == "cubic B-spline 30.00 dB  |  medsr-selfsr exact"


def test_the_sheet_caption_is_a_strip_below_the_same_sheet():
    """With a caption the sheet is the same image with a strip of text below it (one line of CAPTION_LINE_HEIGHT
    pixels per line), as wide."""
    from medsr_se.io.scans import intensity_for

    rng = np.random.default_rng(0)
    source = rng.random((6, 9, 4)).astype(np.float32) * 100
    result = rng.random((6, 9, 12)).astype(np.float32) * 100
    plain = sheets.sheet_image(source, result, 2, 3, intensity_for(source))
    captioned = sheets.sheet_image(source, result, 2, 3, intensity_for(source), ["line one", "line two"])
    np.testing.assert_array_equal(captioned[:plain.shape[0]], plain)
    strip = captioned[plain.shape[0]:]
    assert strip.shape == (2 * sheets.CAPTION_LINE_HEIGHT + 6, plain.shape[1])
    assert strip[:sheets.CAPTION_LINE_HEIGHT].any() and strip[sheets.CAPTION_LINE_HEIGHT:].any()


def test_the_device_is_where_the_parameters_are(monkeypatch):
    """``cpu`` for a CPU network; for a CUDA one its index and the GPU's name (torch's answer stubbed here: no GPU
    needed)."""
    import torch

    net = torch.nn.Linear(2, 2)
    assert reports.network_device(net) == "cpu"

    class OnGpu(torch.nn.Module):
        def parameters(self, recurse: bool = True):
            yield type("P", (), {"device": torch.device("cuda", 1)})()

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: f"Card {device.index}")
    assert reports.network_device(OnGpu()) == "cuda:1 (Card 1)"
