"""medsr-infer never destroys or silently loses data (issue: bad input, faults; README "Safety")."""

from __future__ import annotations

import struct
import subprocess
import zlib
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import infer
from medsr_se.inference import AUTO_TILE, plan_tile, upscale
from medsr_se.io import images as imageio
from medsr_se.utils.bicubic import matlab_bicubic
from tests.helpers import trained_looking


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> str:
    torch.manual_seed(0)  # non-trivial weights: the untrained skip model is bicubic and would hide tiling errors
    net = trained_looking(SEEDSRGenerator(num_feat=4, num_block=1, upscale=2, img_residual=True))
    path = tmp_path_factory.mktemp("model") / "net_g.pth"
    torch.save({"params": net.state_dict()}, path)
    return str(path)


def write_inputs(folder: Path, names: list[str], size: int = 12) -> dict[Path, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        assert cv2.imwrite(str(folder / name), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    return {path: path.read_bytes() for path in sorted(folder.iterdir())}


def run_infer(*args: str) -> int:
    return infer.main(list(args))


def test_output_folder_equal_to_the_input_folder_is_refused_and_inputs_survive(tmp_path, model_file, capsys):
    before = write_inputs(tmp_path / "data", ["a.png", "b.png"])
    assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "data"), "--model", model_file) == 2
    assert run_infer("-i", str(tmp_path / "data" / "a.png"), "-o", str(tmp_path / "data" / "."),
                     "--model", model_file) == 2
    assert {path: path.read_bytes() for path in sorted((tmp_path / "data").iterdir())} == before
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "results would replace inputs" in err and "Traceback" not in err


def test_inputs_sharing_a_stem_are_refused_before_any_work(tmp_path, model_file, capsys):
    write_inputs(tmp_path / "data", ["a.png", "a.tif", "b.png"])
    assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "out"), "--model", model_file) == 2
    assert "would both be written to" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_output_naming_a_file_or_lying_under_one_is_an_error(tmp_path, model_file, capsys):
    write_inputs(tmp_path / "data", ["a.png"])
    (tmp_path / "file").write_text("x")
    assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "file"), "--model", model_file) == 2
    assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "file" / "sub"), "--model", model_file) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "Traceback" not in err and (tmp_path / "file").read_text() == "x"


@contextmanager
def immutable(folder: Path):
    """A folder nothing can be written into, even by root (``chattr +i``)."""
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_failed_write_is_an_error_naming_the_file(tmp_path, model_file, capsys):
    write_inputs(tmp_path / "data", ["a.png"])
    (tmp_path / "out").mkdir()
    with immutable(tmp_path / "out"):
        assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "out"), "--model", model_file) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'out' / 'a.png'}: cannot write it" in err
    assert list((tmp_path / "out").iterdir()) == []


def test_a_write_that_fails_midway_leaves_nothing_at_the_final_path(tmp_path):
    target = tmp_path / "slice.dcm"

    def half_then_disk_full(temporary: Path) -> None:
        temporary.write_bytes(b"DICM" * 100)
        raise OSError(28, "No space left on device")

    with pytest.raises(imageio.WriteError, match="slice.dcm: cannot write it .No space left on device"):
        imageio.write_atomically(target, half_then_disk_full)
    assert list(tmp_path.iterdir()) == []


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (a few hundred bytes: what a hostile or broken file looks like)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def test_a_header_claiming_100000_squared_pixels_is_one_error_line(tmp_path, model_file, capfd):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "huge.png").write_bytes(png_header_only(100000, 100000))
    assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "out"), "--model", model_file) == 2
    err = capfd.readouterr().err
    assert f"error: {tmp_path / 'data' / 'huge.png'}:" in err and "Traceback" not in err
    assert "OpenCV(" not in err  # OpenCV's own log lines are silenced


def test_images_too_large_for_memory_are_tiled_or_refused():
    net = SEEDSRGenerator(num_feat=64, num_block=16, upscale=4)
    gib = 1 << 30
    assert plan_tile(net, 500, 500, 0, 16 * gib) == 0
    assert plan_tile(net, 3000, 3000, 0, 16 * gib) == AUTO_TILE  # whole would need ~70 GiB, tiled ~7 GiB
    with pytest.raises(ValueError, match="12000x12000 needs about .* GiB even tiled"):
        plan_tile(net, 12000, 12000, 0, 16 * gib)
    with pytest.raises(ValueError, match="tile=-5"):
        plan_tile(net, 10, 10, -5, 16 * gib)


def test_auto_tiling_gives_the_whole_image_result(tmp_path, model_file, monkeypatch, capsys):
    write_inputs(tmp_path / "data", ["a.png"], size=300)
    assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "whole"), "--model", model_file) == 0
    monkeypatch.setattr(infer, "memory_budget", lambda device: 10 << 20)  # whole image ~16 MB: tile
    assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "tiled"), "--model", model_file) == 0
    assert "tiling with --tile 128" in capsys.readouterr().err
    whole = cv2.imread(str(tmp_path / "whole" / "a.png"))
    assert np.abs(cv2.imread(str(tmp_path / "tiled" / "a.png")).astype(int) - whole).max() <= 1


def test_negative_tile_and_missing_gpu_are_one_line_errors(tmp_path, model_file, capsys):
    write_inputs(tmp_path / "data", ["a.png"])
    assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "o"), "--model", model_file,
                     "--tile", "-5") == 2
    assert "--tile -5" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "o"), "--model", model_file,
                         "--device", "cuda") == 2
        assert "no CUDA GPU" in capsys.readouterr().err


def test_rgba_keeps_its_alpha(tmp_path, model_file):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (10, 14, 4), dtype=np.uint8)
    image[:, :7, 3] = 0
    net = SEEDSRGenerator(num_feat=4, num_block=1, upscale=2, img_residual=True).eval()
    out = upscale(image, net)
    assert out.shape == (20, 28, 4)
    np.testing.assert_array_equal(out[:, :, 3], matlab_bicubic(np.ascontiguousarray(image[:, :, 3]), 2))
    np.testing.assert_array_equal(out[:, :, :3], upscale(np.ascontiguousarray(image[:, :, :3]), net))

