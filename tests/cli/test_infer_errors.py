"""medsr-infer's errors: a user's mistake is one ``error:`` line under this command's flags, a bug keeps its
traceback (it was ``except (FileNotFoundError, ValueError, CheckpointError, OSError)``: any numpy ValueError or
OSError of our own became ``error:`` and exit 2); what the library logs names the file and the flags too."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import infer
from medsr_se.errors import MedSRError
from medsr_se.inference import tiling
from medsr_se.io import nifti, volumes
from tests.medical import bicubic_skip_model, ct_series


@pytest.fixture
def image_run(tmp_path):
    """(arguments of a run on one 12 x 12 RGB image with an x2 SEEDSR model, the image's path)."""
    torch.save({"params": SEEDSRGenerator(num_feat=4, num_block=1, upscale=2).state_dict()}, tmp_path / "m.pth")
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), np.random.default_rng(0).integers(0, 255, (12, 12, 3), np.uint8))
    return ["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "m.pth")], \
        tmp_path / "in" / "a.png"


def nifti_run(tmp_path) -> list[str]:
    nibabel = pytest.importorskip("nibabel", reason="the medical extra is part of the test extra")
    (tmp_path / "scan").mkdir()
    values = np.random.default_rng(0).random((12, 10, 3)).astype(np.float32)
    nibabel.save(nibabel.Nifti1Image(values, np.eye(4)), str(tmp_path / "scan" / "v.nii"))
    return ["-i", str(tmp_path / "scan"), "-o", str(tmp_path / "out"), "--model",
            bicubic_skip_model(tmp_path / "g.pth"), "--intensity", "minmax"]


@pytest.mark.parametrize("bug", [ValueError("a bug: operands could not be broadcast"), OSError(5, "a bug: I/O")])
def test_a_bug_in_an_image_job_keeps_its_traceback(image_run, monkeypatch, bug):
    """Oracle: the exception raised inside the network call comes out of main() as itself."""
    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(tiling, "tiled_forward", broken)
    with pytest.raises(type(bug), match="a bug") as caught:
        infer.main(image_run[0])
    assert caught.value is bug and not isinstance(caught.value, MedSRError)


def test_a_bug_in_a_volume_job_keeps_its_traceback(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug: axis 3 is out of bounds")

    monkeypatch.setattr(volumes, "upscale_volume", broken)
    with pytest.raises(ValueError, match="a bug"):
        infer.main(nifti_run(tmp_path))


def test_an_os_error_on_a_given_path_is_one_line(tmp_path, monkeypatch, capsys):
    arguments = nifti_run(tmp_path)
    source = tmp_path / "scan" / "v.nii"

    def unreadable(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(nifti, "read_nifti", unreadable)
    assert infer.main(arguments) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and f"Permission denied: '{source}'" in err


def test_a_library_parameter_is_shown_as_the_flag(image_run, capsys):
    """tiling refuses tile_pad=2 for SEEDSR (an OptionError naming ``tile_pad``): the command says --tile-pad."""
    arguments, image = image_run
    assert infer.main([*arguments, "--tile", "8", "--tile-pad", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {image}: --tile-pad 2: must be at least 4") and err.count("\n") == 1
    assert "tile_pad" not in err


def test_every_parameter_maps_to_a_flag_of_the_command():
    flags = {flag for action in infer.build_parser()._actions for flag in action.option_strings}
    assert all(set(shown.split("/")) <= flags for shown in infer.FLAGS.values()), infer.FLAGS


def test_an_image_warning_names_its_file(tmp_path, capsys):
    """A gray image through a colour model: upscale's warning, one line naming the image it is about."""
    torch.save({"params": SEEDSRGenerator(num_feat=4, num_block=1, upscale=2).state_dict()}, tmp_path / "m.pth")
    (tmp_path / "in").mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / "in" / name), np.full((8, 8), 99, np.uint8))
    assert infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "m.pth")]) \
        == 0
    warned = [line[line.index("warning: "):] for line in capsys.readouterr().err.splitlines()
              if "gray image through a model" in line]  # (the folder's progress bar may precede it on its line)
    assert warned == [f"warning: {tmp_path / 'in' / name}: a gray image through a model trained on 3-channel (colour) "
                      "images: the result is the mean of its three outputs and may show artefacts; a gray model "
                      "(options/x4_gray.yml) suits it" for name in ("a.png", "b.png")]


def test_a_volume_says_its_clipped_values_once_not_per_slice(tmp_path, capsys):
    """Every slice of the CT series has values outside the brain window: one warning for the volume."""
    series = ct_series(tmp_path / "ct", volumes=1, slices=3) / "patient0"
    assert infer.main(["-i", str(series), "-o", str(tmp_path / "out"), "--model", bicubic_skip_model(tmp_path / "g"),
                       "--window", "brain"]) == 0
    outside = [line for line in capsys.readouterr().err.splitlines() if "lie outside" in line]
    assert len(outside) == 1 and outside[0].startswith(f"warning: {series}: ")


def test_a_tile_pad_too_small_for_the_auto_tiled_image_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """A small image runs whole, a large one is tiled automatically: tile_pad 2 is refused for the large one
    before the small one is written (it was written, then the run failed: a folder half done)."""
    torch.save({"params": SEEDSRGenerator(num_feat=4, num_block=1, upscale=2).state_dict()}, tmp_path / "m.pth")
    (tmp_path / "in").mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "in" / "a_small.png"), rng.integers(0, 255, (12, 12, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "in" / "b_large.png"), rng.integers(0, 255, (300, 300, 3), np.uint8))
    monkeypatch.setattr(infer, "memory_budget", lambda device: 10 << 20)  # 300 x 300 whole: ~16 MB, so tiles
    assert infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "m.pth"),
                       "--tile-pad", "2"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'in' / 'b_large.png'}: --tile-pad 2: must be at least 4 LR pixels for an " \
        "exact result\n"
    assert not (tmp_path / "out").exists()
