"""medsr-selfsr end to end on nibabel's shipped anatomical.nii made thick-sliced (train through BasicSR's loop, killed
and resumed, NIfTI result; a DICOM series through the trained model), and its one-line errors for bad input."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import nibabel
import numpy as np
import pydicom
import pytest
from nibabel.affines import apply_affine
from scipy import ndimage

from medsr_se.cli import selfsr
from medsr_se.evaluation import sheets
from medsr_se.utils.options import derive, dump_yaml
from tests.helpers import subprocess_env
from tests.io.test_through_plane_geometry import mr_series
from tests.medical import nibabel_data

R = 3


def thick_scan(path, r: int = R):
    """anatomical.nii (33 x 41 x 25, 2 mm isotropic) with slices r times thicker along z: Gaussian of FWHM r slices,
    every r-th slice (centres at input slices r·k + 1 for r = 3), affine's z column · r, origin on the first."""
    source = nibabel.load(str(nibabel_data() / "anatomical.nii"))
    values = np.asarray(source.dataobj, np.float32)
    blurred = ndimage.gaussian_filter1d(values, r / 2.3548, axis=2, mode="nearest")
    first = (r - 1) // 2
    thick = blurred[:, :, first::r][:, :, : values.shape[2] // r]
    affine = source.affine.copy()
    affine[:, 3] = source.affine @ np.array([0, 0, first, 1.0])
    affine[:, 2] *= r
    image = nibabel.Nifti1Image(np.round(thick).astype(np.int16), affine)
    image.header.set_zooms((2.0, 2.0, 2.0 * r))
    nibabel.save(image, str(path))
    return path


def tiny_recipe(path, total_iter: int, checkpoint_every: int):
    options = derive("selfsr", {
        "network_g": {"num_feat": 8, "num_block": 1, "reduction": 4},
        "datasets": {"train": {"batch_size_per_gpu": 2, "num_worker_per_gpu": 0, "persistent_workers": False,
                               "pin_memory": False, "gt_size": 24, "samples_per_epoch": 20}},
        "train": {"total_iter": total_iter, "ema_decay": 0},
        "logger": {"print_freq": 5, "save_checkpoint_freq": checkpoint_every}})
    return dump_yaml(options, path)


@pytest.mark.slow
def test_trains_resumes_after_a_kill_and_writes_nifti_and_dicom(tmp_path):
    scan = thick_scan(tmp_path / "thick.nii.gz")
    recipe = tiny_recipe(tmp_path / "tiny.yml", total_iter=100000, checkpoint_every=5)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "medsr_se.cli.selfsr", "-i", str(scan), "-o", str(out), "-opt", str(recipe),
               "--device", "cpu"]
    states = out / "experiments" / "thick_selfsr_x3" / "training_states"
    process = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(states.glob("*.state")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)  # killed mid-training, after its first saved state
    process.wait()
    saved = max(int(p.stem) for p in states.glob("*.state"))
    assert not (out / "thick_selfsr_x3.nii.gz").exists()
    # the same command again (in this process: one interpreter start less) resumes from that state
    assert selfsr.main([*command[3:], "--iterations", str(saved + 5), "--sheet", "-q"]) == 0
    experiment = out / "experiments" / "thick_selfsr_x3"
    assert not list((out / "experiments").glob("*archived*"))  # a fresh start would have moved the first run aside
    assert (experiment / "models" / f"net_g_{saved}.pth").exists()  # the killed run's checkpoint, kept
    assert (experiment / "models" / f"net_g_{saved + 5}.pth").exists()  # the resumed run went on from it

    source, result = nibabel.load(str(scan)), nibabel.load(str(out / "thick_selfsr_x3.nii.gz"))
    assert result.shape == (33, 41, 8 * R)
    np.testing.assert_allclose(result.header.get_zooms()[:3], (2.0, 2.0, 2.0), rtol=1e-5)
    k = np.arange(8)
    np.testing.assert_allclose(apply_affine(result.affine, np.stack([0 * k, 0 * k, R * k + 1], 1)),
                               apply_affine(source.affine, np.stack([0 * k, 0 * k, k], 1)), atol=1e-4)
    assert np.isfinite(np.asarray(result.dataobj, np.float32)).all()
    assert (out / "thick_selfsr_x3_sheet.png").stat().st_size > 0

    # the trained model reused on a DICOM series of the same ratio (no training)
    series = mr_series(tmp_path / "dicom", count=4, gap=0.3125 * R)
    model = out / "experiments" / "thick_selfsr_x3" / "models" / "net_g_latest.pth"
    assert selfsr.main(["-i", str(series), "-o", str(out), "--model", str(model), "--device", "cpu", "-q"]) == 0
    written = [pydicom.dcmread(str(p)) for p in (out / "dicom_selfsr_x3").iterdir()]
    assert len(written) == 4 * R
    assert {(int(ds.Rows), int(ds.Columns)) for ds in written} == {(64, 64)}
    assert [float(ds.SpacingBetweenSlices) for ds in written] == pytest.approx([0.3125] * 4 * R)
    assert sorted(int(ds.InstanceNumber) for ds in written) == list(range(1, 4 * R + 1))


def error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def test_an_isotropic_volume_is_nothing_to_do(tmp_path, capsys):
    assert selfsr.main(["-i", str(nibabel_data() / "anatomical.nii"), "-o", str(tmp_path / "o")]) == 2
    assert "already (nearly) isotropic" in error_line(capsys) and not (tmp_path / "o").exists()


@pytest.mark.parametrize("scale", ["1", "9"])
def test_scale_outside_2_to_8(tmp_path, capsys, scale):
    scan = thick_scan(tmp_path / "thick.nii.gz")
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "o"), "--scale", scale]) == 2
    assert f"--scale {scale}: must be an integer from 2 to 8" in error_line(capsys)


def test_a_2d_image(tmp_path, capsys):
    flat = nibabel.Nifti1Image(np.zeros((16, 16), np.int16), np.eye(4))
    nibabel.save(flat, str(tmp_path / "flat.nii.gz"))
    assert selfsr.main(["-i", str(tmp_path / "flat.nii.gz"), "-o", str(tmp_path / "o")]) == 2
    assert "flat.nii.gz: a 2-D image" in error_line(capsys)
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    assert selfsr.main(["-i", str(tmp_path / "photo.png"), "-o", str(tmp_path / "o")]) == 2
    assert "photo.png: not a volume" in error_line(capsys)


def test_a_4d_volume_needs_axis(tmp_path, capsys):
    assert selfsr.main(["-i", str(nibabel_data() / "example4d.nii.gz"), "-o", str(tmp_path / "o")]) == 2
    line = error_line(capsys)
    assert "example4d.nii.gz: a 4-D volume" in line and "--axis" in line


def test_uneven_dicom_spacing_names_the_gap(tmp_path, capsys):
    series = mr_series(tmp_path / "dicom", count=5, gaps=[0.9375, 0.9375, 1.875, 0.9375])
    assert selfsr.main(["-i", str(series), "-o", str(tmp_path / "o")]) == 2
    assert "uneven slice spacing: 1.875 mm between s3.dcm" in error_line(capsys)


def test_a_model_of_another_scale_and_an_existing_result(tmp_path, capsys):
    import torch

    from medsr_se.archs.seedsr_arch import SEEDSRGenerator

    scan = thick_scan(tmp_path / "thick.nii.gz")
    torch.save({"params": SEEDSRGenerator(1, 1, 8, 1, [4, 1], img_residual=True).state_dict()}, tmp_path / "g4.pth")
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "o"), "--model", str(tmp_path / "g4.pth")]) == 2
    assert "trained with upscale [4, 1], but this scan needs [3, 1]" in error_line(capsys)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "thick_selfsr_x3.nii.gz").write_bytes(b"keep me")
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "o"), "--model", str(tmp_path / "g4.pth")]) == 2
    assert "thick_selfsr_x3.nii.gz: exists" in error_line(capsys)
    assert (tmp_path / "o" / "thick_selfsr_x3.nii.gz").read_bytes() == b"keep me"


def test_sheet_panels_show_input_cubic_and_result_under_their_titles():
    """The --sheet: per row (one per in-plane axis) a title strip, then input with each slice repeated r times |
    scipy's cubic B-spline | the result, every panel the middle slice enlarged by the same whole factor. Oracle:
    the views cut from the arrays here with numpy / scipy, not through the function's own helpers."""
    from medsr_se import throughplane as tp

    rng = np.random.default_rng(0)
    source = rng.random((6, 9, 4)).astype(np.float32) * 100  # slice axis 2, r = 3
    result = rng.random((6, 9, 12)).astype(np.float32) * 100
    intensity = tp.intensity_for(source)
    image = sheets.sheet_image(source, result, 2, 3, intensity)
    cubic = ndimage.zoom(source, (1, 1, 3), order=3, mode="nearest", grid_mode=True)
    enlarge = (image.shape[0] - 2 * (sheets.LABEL_HEIGHT + 2)) // (2 * 12)  # two rows of 12 slices each
    assert enlarge >= 2
    top = 0
    for across in (0, 1):
        cut = (slice(None),) * across + (source.shape[across] // 2,)
        views = [np.repeat(source, 3, axis=2)[cut], cubic[cut], result[cut]]  # (other in-plane, slices)
        views = [np.clip((v.T - source.min()) / (source.max() - source.min()), 0, 1) for v in views]  # slices down
        height, width = views[0].shape
        strip = image[top:top + sheets.LABEL_HEIGHT]
        panels = image[top + sheets.LABEL_HEIGHT:top + sheets.LABEL_HEIGHT + height * enlarge]
        for index, view in enumerate(views):
            panel = panels[:, index * width * enlarge:(index + 1) * width * enlarge]
            np.testing.assert_array_equal(panel[::enlarge, ::enlarge], np.round(view * 255).astype(np.uint8))
            assert strip[:, index * width * enlarge:(index + 1) * width * enlarge].any()  # a title above it
        top += sheets.LABEL_HEIGHT + height * enlarge + 2
    assert top == image.shape[0]


@pytest.mark.slow
def test_nonfinite_voxels_are_one_line_or_replaced_with_a_warning(tmp_path, capsys):
    """A NIfTI with a NaN and an inf: without --nonfinite one line naming the file and the counts, exit 2, nothing
    written; with --nonfinite 0 the same scan trains (dataset included) and the result is finite, the warning
    says how many were replaced. Oracle: the counts put in here."""
    data = nibabel.load(str(nibabel_data() / "anatomical.nii")).get_fdata().astype(np.float32)[:, :, ::3].copy()
    data[5, 6, 2], data[7, 8, 3] = np.nan, np.inf
    affine = np.diag([2.0, 2.0, 6.0, 1.0])
    source = tmp_path / "holes.nii.gz"
    nibabel.save(nibabel.Nifti1Image(data, affine), str(source))
    out = tmp_path / "out"
    assert selfsr.main(["-i", str(source), "-o", str(out), "--iterations", "1", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holes.nii.gz: 2 non-finite value(s)" in err and "1 NaN, 1 +inf" in err
    assert "--nonfinite" in err and not out.exists()
    assert selfsr.main(["-i", str(source), "-o", str(out), "--iterations", "2", "--nonfinite", "0",
                        "--device", "cpu"]) == 0
    assert "2 non-finite value(s) of" in capsys.readouterr().err
    result = nibabel.load(str(out / "holes_selfsr_x3.nii.gz")).get_fdata()
    assert result.shape == (33, 41, 27) and np.isfinite(result).all()
    assert selfsr.main(["-i", str(source), "-o", str(tmp_path / "o2"), "--nonfinite", "nan"]) == 2
    assert "--nonfinite nan: the replacement must be a finite number" in capsys.readouterr().err


def test_medsr_infer_with_scale_and_a_through_plane_model_points_to_selfsr(tmp_path, capsys):
    """medsr-infer --scale R with a through-plane model (upscale [R, 1]) is the one line pointing to medsr-selfsr,
    as without --scale (was: "trained with upscale=[4, 1], but upscale=4 was asked for")."""
    import cv2
    import torch

    from medsr_se.archs.seedsr_arch import SEEDSRGenerator
    from medsr_se.cli import infer

    model = tmp_path / "tp.pth"
    torch.save({"params": SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=[4, 1]).state_dict()}, model)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((16, 16), np.uint8))
    for extra in ([], ["--scale", "4"]):
        assert infer.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model", str(model),
                           "--device", "cpu", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "through-plane model" in err and "medsr-selfsr" in err
        assert not (tmp_path / "out").exists()


def through_plane_model(path, r: int = R, channels: int = 1, upscale=None):
    """An untrained SEEDSRGenerator (upscale [r, 1] unless given) with the image skip: no training needed."""
    import torch

    from medsr_se.archs.seedsr_arch import SEEDSRGenerator

    torch.manual_seed(0)
    net = SEEDSRGenerator(channels, channels, num_feat=8, num_block=1, upscale=upscale or [r, 1], img_residual=True)
    torch.save({"params": net.state_dict()}, path)
    return path


def test_the_slice_profile_and_where_it_came_from_are_said(tmp_path, capsys):
    """The note names the profile and its source: the BIDS sidecar beside the NIfTI, --slice-thickness,
    --slice-profile, or "assumed = slice spacing" with a warning that says to give --slice-thickness (was: the
    thickness silently taken = the slice spacing, the sidecar never read). Oracle: the sidecar written here."""
    import json

    scan = thick_scan(tmp_path / "thick.nii.gz")  # 2 mm in-plane, 6 mm slices
    model = through_plane_model(tmp_path / "g3.pth")
    np.save(tmp_path / "box.npy", np.ones(3))

    def run(out: str, *extra) -> str:
        assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / out), "--model", str(model), "--device", "cpu",
                            *extra]) == 0
        return capsys.readouterr().err

    err = run("assumed")
    assert "slice profile: Gaussian FWHM 6 mm = 3 px (assumed = slice spacing: the scan does not say" in err
    assert f"warning: {scan}: the slice thickness is not known" in err and "--slice-thickness" in err
    (tmp_path / "thick.json").write_text(json.dumps({"SliceThickness": 4, "SpacingBetweenSlices": 6}))
    err = run("sidecar")
    assert "slice profile: Gaussian FWHM 4 mm = 2 px (from the BIDS sidecar thick.json: SliceThickness)" in err
    assert "warning" not in err
    err = run("option", "--slice-thickness", "5")
    assert "slice profile: Gaussian FWHM 5 mm = 2.5 px (from --slice-thickness)" in err and "warning" not in err
    (tmp_path / "thick.json").unlink()
    err = run("kernel", "--slice-profile", str(tmp_path / "box.npy"))
    assert f"slice profile: kernel {tmp_path / 'box.npy'} (3 taps) (from --slice-profile)" in err
    assert "warning" not in err


@pytest.mark.parametrize("name,write,says", [
    ("strings.npy", lambda path: np.save(path, np.array(["1", "2", "1"])), "not numeric"),
    ("complex.npy", lambda path: np.save(path, np.array([1 + 1j, 2, 1])), "complex"),
    ("kernel.txt", lambda path: path.write_text("1 2 1\n"), "not a .npy file"),
])
def test_a_bad_slice_profile_is_one_error_line(tmp_path, capsys, name, write, says):
    """(was: a ValueError traceback for strings; a complex kernel accepted with numpy's ComplexWarning; "pickled
    data" for a text file)"""
    scan = thick_scan(tmp_path / "thick.nii.gz")
    write(tmp_path / name)
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "o"), "--slice-profile", str(tmp_path / name)]) == 2
    line = error_line(capsys)
    assert str(tmp_path / name) in line and says in line and "pickled" not in line
    assert not (tmp_path / "o").exists()


def test_a_series_without_image_position_is_refused_before_any_work(tmp_path, capsys):
    """A DICOM series with SpacingBetweenSlices but no ImagePositionPatient: one line naming a slice file and the
    attribute, nothing created (was: trained / applied, then AttributeError while writing the result)."""
    series = mr_series(tmp_path / "dicom", count=4, gap=0.3125 * R)
    for path in series.iterdir():
        dataset = pydicom.dcmread(str(path))
        dataset.SpacingBetweenSlices = 0.3125 * R
        del dataset.ImagePositionPatient
        dataset.save_as(str(path), enforce_file_format=True)
    model = through_plane_model(tmp_path / "g3.pth")
    assert selfsr.main(["-i", str(series), "-o", str(tmp_path / "o"), "--model", str(model), "--device", "cpu"]) == 2
    line = error_line(capsys)
    assert f"{series}{'/'}" in line and ": no ImagePositionPatient" in line
    assert not (tmp_path / "o").exists()


def test_the_model_says_what_it_is_when_it_does_not_fit(tmp_path, capsys):
    """An in-plane model is named one, with what medsr-selfsr needs, and no --scale hint (it cannot help; was:
    "give --scale to choose r"); a through-plane model of another r points to --scale with its r; a 3-channel
    through-plane model is refused before the network meets a 1-channel scan."""
    scan = thick_scan(tmp_path / "thick.nii.gz")

    def refused(model) -> str:
        assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "o"), "--model", str(model)]) == 2
        return error_line(capsys)

    line = refused(through_plane_model(tmp_path / "x4.pth", upscale=4))
    assert "an in-plane model (x4 on both axes)" in line and "through-plane model (upscale [r, 1])" in line
    assert "trained by medsr-selfsr" in line and "--scale" not in line
    line = refused(through_plane_model(tmp_path / "r4.pth", r=4))
    assert "trained with upscale [4, 1], but this scan needs [3, 1]" in line and "--scale 4" in line
    line = refused(through_plane_model(tmp_path / "rgb.pth", channels=3))
    assert "3-channel" in line and "1-channel" in line
    assert not (tmp_path / "o").exists()


def test_an_unsaid_thickness_is_estimated_from_the_scan_and_said(tmp_path, monkeypatch, capsys):
    """A NIfTI of 4 mm slices 2.4 mm thick (a gap) that does not say its thickness: the training options get the
    thickness estimated from the scan, hedged to the thinner side as it says a gap (0.8 x, within 15 % of 0.8 x
    2.4 mm; the assumption, 4 mm, is 67 % off the truth), its source says so, and a warning line says the result
    rests on an estimate. Oracle: the FWHM the slices were made with. --slice-thickness skips the estimate."""
    from tests.data.test_profile_estimation import head, thick

    truth_fwhm_mm, r = 2.4, 4
    values = thick(head(), 2, r, truth_fwhm_mm)
    path = tmp_path / "gap.nii.gz"
    nibabel.save(nibabel.Nifti1Image(values, np.diag([1.0, 1.0, float(r), 1.0])), str(path))
    seen = []

    def stop(options, *args, **kwargs):
        seen.append(options["datasets"]["train"])
        raise selfsr.UsageError("stopped before training (test)")

    monkeypatch.setattr(selfsr, "train", stop)
    assert selfsr.main(["-i", str(path), "-o", str(tmp_path / "out"), "--device", "cpu", "--iterations", "1"]) == 2
    train = seen[-1]
    hedged_truth = 0.8 * truth_fwhm_mm
    assert abs(train["slice_thickness"] - hedged_truth) / hedged_truth < 0.15, train["slice_thickness"]
    assert train["slice_thickness_source"].startswith("estimated from the scan")
    assert "0.80 x the estimate" in train["slice_thickness_source"]
    err = capsys.readouterr().err
    assert "gap.nii.gz: the slice thickness is not in the scan; estimated from it: FWHM" in err, err
    assert err.startswith("warning: "), err
    assert selfsr.main(["-i", str(path), "-o", str(tmp_path / "out"), "--device", "cpu", "--iterations", "1",
                        "--slice-thickness", "2.4"]) == 2
    assert seen[-1]["slice_thickness"] == 2.4 and seen[-1]["slice_thickness_source"] == "from --slice-thickness"


def test_only_user_errors_are_one_line_a_bug_keeps_its_traceback(tmp_path, monkeypatch, capsys):
    """main() turns a MedSRError of any kind (here a DataError), and an OSError about a path the user named (-o),
    into one ``error:`` line and exit 2 (was: a traceback for both, as neither was among the classes it listed); a
    TypeError, IndexError, numpy's ValueError or an OSError about another path is a bug and propagates (as
    before). Oracle: the exceptions raised here, at the step that makes -o."""
    import errno

    from medsr_se.errors import DataError

    scan = thick_scan(tmp_path / "thick.nii.gz")
    model = through_plane_model(tmp_path / "g3.pth")
    out = tmp_path / "out"

    def main_raising(error: BaseException) -> int:
        def make_folder_checked(*args):
            raise error

        monkeypatch.setattr(selfsr, "make_folder_checked", make_folder_checked)
        return selfsr.main(["-i", str(scan), "-o", str(out), "--model", str(model), "--device", "cpu", "-q"])

    bugs = [TypeError("unsupported operand type(s)"), IndexError("index 3 is out of bounds for axis 0"),
            ValueError("operands could not be broadcast together"),
            OSError(errno.ENOENT, "No such file or directory", "/nonexistent/medsr_se_internal.bin")]
    for bug in bugs:
        with pytest.raises(type(bug)) as raised:
            main_raising(bug)
        assert raised.value is bug and "error:" not in capsys.readouterr().err
    assert main_raising(DataError("thick.nii.gz: cannot be used")) == 2
    assert error_line(capsys) == "error: thick.nii.gz: cannot be used"
    assert main_raising(PermissionError(errno.EACCES, "Permission denied", str(out))) == 2
    assert error_line(capsys) == f"error: {out}: Permission denied"


def test_the_librarys_parameters_are_shown_as_this_commands_flags(tmp_path, capsys):
    """io.scans names ``slice_thickness=`` (a parameter); medsr-selfsr's user reads ``--slice-thickness``, as before
    the library named parameters. Oracle: the flags given here."""
    scan = thick_scan(tmp_path / "thick.nii.gz")
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "o"), "--slice-thickness", "0"]) == 2
    assert error_line(capsys) == "error: --slice-thickness 0.0: must be a positive number of mm"
    (tmp_path / "thick.json").write_text("{not json")
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "o")]) == 2
    line = error_line(capsys)
    assert line.startswith(f"error: {tmp_path / 'thick.json'}: not valid JSON") and "give --slice-thickness MM" in line
    assert "slice_thickness" not in line and not (tmp_path / "o").exists()


def test_every_parameter_an_error_mentions_is_shown_as_its_flag(tmp_path, monkeypatch, capsys):
    """The error's own parameter and any other it names as advice (``give scale=4``) both appear as this command's
    flags, as in the other commands (medsr_se.cli.messages.error_line; was: only the error's own parameter)."""
    from medsr_se.errors import CheckpointError

    def refused(*args, **kwargs):
        raise CheckpointError("model=/x/r4.pth: trained for r = 4; give scale=4 to apply it", parameter="model")

    monkeypatch.setattr(selfsr, "run", refused)
    assert selfsr.main(["-i", str(tmp_path / "thick.nii.gz"), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == "error: --model /x/r4.pth: trained for r = 4; give --scale 4 to apply it"
