"""A folder is done whole or not at all (issue 31, defect 6): medsr-infer and medsr-evaluate check every input
against the model (readable, type, channels, size) before the first result is written. A gray and an RGB image
with a 1-channel model published the gray result, then failed on the RGB one."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs import build_network

from medsr_se.cli import evaluate as evaluate_cli
from medsr_se.cli import infer as infer_cli
from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY
from medsr_se.utils.bicubic import matlab_bicubic
from tests.helpers import trained_looking

GRAY = {"type": "MSRResNet", "num_in_ch": 1, "num_out_ch": 1, "num_feat": 8, "num_block": 1, "upscale": 2}


@pytest.fixture
def gray_model(tmp_path) -> str:
    torch.manual_seed(0)
    net = trained_looking(build_network(dict(GRAY)))
    torch.save({"params": net.state_dict(), NETWORK_OPTIONS_KEY: GRAY}, tmp_path / "gray.pth")
    return str(tmp_path / "gray.pth")


def noise(*shape: int, dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 200, shape).astype(dtype)


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("bad,writer,message", [
    ("b_rgb.png", lambda path: cv2.imwrite(str(path), noise(16, 16, 3)),
     "b_rgb.png: the model takes 1-channel images, this one has 3 channels"),
    ("b_rgba.png", lambda path: cv2.imwrite(str(path), noise(16, 16, 4)),
     "b_rgba.png: the model takes 1-channel images, this one has 4 channels"),
    ("b_float.tif", lambda path: cv2.imwrite(str(path), noise(16, 16, dtype=np.float32)),
     "b_float.tif: a float32 array has no implied intensity range"),
    ("b_broken.png", lambda path: path.write_bytes(b"\x89PNG\r\n\x1a\n broken"), "b_broken.png: cannot read"),
])
def test_infer_checks_every_image_before_writing_any(tmp_path, gray_model, capsys, bad, writer, message):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_gray.png"), noise(16, 16))  # sorted first: it was published, then b failed
    writer(folder / bad)
    assert infer_cli.main(["-i", str(folder), "-o", str(tmp_path / "out"), "--model", gray_model]) == 2
    assert message in one_error(capsys)
    assert not (tmp_path / "out").exists()


def test_infer_a_folder_that_passes_is_done_whole(tmp_path, gray_model):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), noise(16, 16))
    cv2.imwrite(str(folder / "b.png"), noise(9, 7, dtype=np.uint16) * 300)
    assert infer_cli.main(["-i", str(folder), "-o", str(tmp_path / "out"), "--model", gray_model, "-q"]) == 0
    assert cv2.imread(str(tmp_path / "out" / "b.png"), cv2.IMREAD_UNCHANGED).shape == (18, 14)


def write_dataset(root, lr_images: dict[str, np.ndarray], scale: int = 2):
    for folder in ("HR", f"LR_x{scale}"):
        (root / "test" / folder).mkdir(parents=True)
    for name, lr in lr_images.items():
        cv2.imwrite(str(root / "test" / f"LR_x{scale}" / name), lr)
        cv2.imwrite(str(root / "test" / "HR" / name), matlab_bicubic(lr, scale))
    (root / "manifest.json").write_text(json.dumps({"parameters": {"scales": [scale]}, "modality": "CT"}))
    return root


def test_evaluate_checks_every_pair_before_writing_anything(tmp_path, gray_model, capsys):
    data = write_dataset(tmp_path / "data", {"a_gray.png": noise(16, 16), "b_rgb.png": noise(16, 16, 3)})
    assert evaluate_cli.main(["--data", str(data), "--model", f"x2={gray_model}", "-o", str(tmp_path / "e"),
                              "--no-niqe", "--no-plot"]) == 2
    err = one_error(capsys)
    assert "LR_x2/b_rgb.png: SEEDSR-GAN: the model takes 1-channel images, this one has 3 channels" in err
    assert not (tmp_path / "e").exists()  # no sheet of a_gray, no empty folder


def test_evaluate_a_lr_image_that_is_not_the_hr_over_the_scale(tmp_path, gray_model, capsys):
    data = write_dataset(tmp_path / "data", {"a.png": noise(16, 16)})
    cv2.imwrite(str(data / "test" / "LR_x2" / "a.png"), noise(15, 16))
    assert evaluate_cli.main(["--data", str(data), "--model", f"x2={gray_model}", "-o", str(tmp_path / "e"),
                              "--no-niqe", "--no-plot"]) == 2
    assert "LR_x2/a.png: (15, 16) is not the HR image's (32, 32) / 2" in one_error(capsys)
    assert not (tmp_path / "e").exists()


def test_evaluate_an_unreadable_image_is_one_line_naming_it(tmp_path, gray_model, capfd):
    """OpenCV's own log line ("[ERROR:0@...] global grfmt_png.cpp ...", written to the process's stderr) came before
    the refusal, and the refusal named both files of the pair."""
    data = write_dataset(tmp_path / "data", {"a.png": noise(16, 16)})
    (data / "test" / "LR_x2" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert evaluate_cli.main(["--data", str(data), "--model", f"x2={gray_model}", "-o", str(tmp_path / "e"),
                              "--no-niqe", "--no-plot"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {data / 'test' / 'LR_x2' / 'a.png'}: cannot read")
    assert "HR" not in err and not (tmp_path / "e").exists()
