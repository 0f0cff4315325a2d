"""BasicSR's SwinIR in medsr-infer, medsr-evaluate and medsr-export (issue 31, defect 5; defect 12's clean line):
all three ended in window_partition's RuntimeError (and an empty output folder) on sizes that are no multiple of
the window. Oracle: BasicSR's network on numpy's reflection of the input, cropped back (tests/inference/swinir.py)."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import onnxruntime
import pytest
import torch
from basicsr.metrics import calculate_psnr

from medsr_se.cli import evaluate as evaluate_cli
from medsr_se.cli import export as export_cli
from medsr_se.cli import infer as infer_cli
from medsr_se.inference import onnx_export
from medsr_se.utils.bicubic import matlab_bicubic
from medsr_se.utils.options import dump_yaml
from tests.helpers import run_python
from tests.inference.swinir import padded_forward, reference, reference_image, save_swinir, swinir_options

OPTIONS = swinir_options(8, depths=(2,))


@pytest.fixture(scope="module")
def swinir(tmp_path_factory):
    return save_swinir(tmp_path_factory.mktemp("swinir") / "swinir.pth", OPTIONS)


def noise(height: int, width: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_infer_on_37x29_and_its_tiles(tmp_path, swinir, capsys):
    image = noise(37, 29)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    expected = reference_image(reference(swinir, OPTIONS), image, 8)
    assert infer_cli.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "whole"), "--model", str(swinir),
                           "-q"]) == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "whole" / "a.png")), expected)
    big = noise(70, 83, seed=1)
    cv2.imwrite(str(tmp_path / "big.png"), big)
    assert infer_cli.main(["-i", str(tmp_path / "big.png"), "-o", str(tmp_path / "tiles"), "--model", str(swinir),
                           "--tile", "12"]) == 0
    err = capsys.readouterr().err
    assert "note: --tile 12: SwinIR takes multiples of 8 pixels (attention windows of 8 pixels), so tiles of 16 are "\
           "used" in err
    assert "warning" not in err  # one RSTB: its reach is within the halo, the tiles are exact
    tiled = cv2.imread(str(tmp_path / "tiles" / "big.png")).astype(int)
    assert np.abs(tiled - reference_image(reference(swinir, OPTIONS), big, 8)).max() <= 1  # rounding of 1e-6


def test_infer_says_when_tiles_of_a_deep_swinir_are_not_exact(tmp_path, capsys):
    deep = swinir_options(8, depths=(2, 2, 2))
    model = save_swinir(tmp_path / "deep.pth", deep)
    cv2.imwrite(str(tmp_path / "a.png"), noise(70, 83))
    assert infer_cli.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model", str(model),
                           "--tile", "16"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "SwinIR has windowed attention (window 8)" in warned[0]
    assert "tiles can differ from whole-image inference" in warned[0] and "--tile-pad" in warned[0]


def test_a_too_small_image_is_refused_before_any_work(tmp_path, swinir, capsys):
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), noise(20, 20))
    cv2.imwrite(str(tmp_path / "in" / "b.png"), noise(1, 1))
    assert infer_cli.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(swinir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "b.png: 1x1 pixels is too small for SwinIR" in err
    assert not (tmp_path / "out").exists()


def test_evaluate_on_30x30_lr_images(tmp_path, swinir):
    data = tmp_path / "data"
    for folder in ("HR", "LR_x2"):
        (data / "test" / folder).mkdir(parents=True)
    for index in range(2):
        hr = noise(60, 60, seed=index)
        cv2.imwrite(str(data / "test" / "HR" / f"i{index}.png"), hr)
        cv2.imwrite(str(data / "test" / "LR_x2" / f"i{index}.png"), matlab_bicubic(hr, 0.5))
    (data / "manifest.json").write_text(json.dumps({"parameters": {"scales": [2]}}))
    assert evaluate_cli.main(["--data", str(data), "--model", f"swinir@x2={swinir}", "-o", str(tmp_path / "e"),
                              "--no-niqe", "--no-plot", "-q"]) == 0
    row = next(row for row in csv.DictReader((tmp_path / "e" / "per_image.csv").open())
               if row["method"] == "swinir" and row["image"] == "i0")
    lr = cv2.imread(str(data / "test" / "LR_x2" / "i0.png"))
    expected = calculate_psnr(reference_image(reference(swinir, OPTIONS), lr, 8),
                              cv2.imread(str(data / "test" / "HR" / "i0.png")), 2)
    assert float(row["psnr"]) == pytest.approx(expected, abs=1e-6)
    assert float(row["gflops_per_mp"]) > 0


def test_export_pads_inside_the_graph(tmp_path, swinir, capsys):
    assert export_cli.main(["--model", str(swinir), "-o", str(tmp_path / "s.onnx")]) == 0
    out = capsys.readouterr()
    assert "batch 1" in out.out and "padded by reflection to multiples of 8 (attention windows of 8 pixels)" in out.out
    assert "Warning" not in out.err  # the tracer's warnings are not printed raw
    session = onnxruntime.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    net = reference(swinir, OPTIONS)
    for height, width in ((37, 29), (8, 8), (13, 50)):
        x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height))
        (result,) = session.run(None, {"lr": x.numpy()})
        assert result.shape == (1, 3, 2 * height, 2 * width)
        assert np.abs(result - padded_forward(net, x, 8).numpy()).max() < 1e-4


def test_the_check_catches_a_graph_traced_at_the_built_size(tmp_path, monkeypatch, capsys):
    """SwinIR uses its stored attention mask (a constant) for an input of exactly its img_size: traced there, the
    graph fails at other sizes. The export traces elsewhere (32 x 40 here moves on); forced onto it (a deliberate
    break), the check refuses in one line and writes nothing."""
    model = save_swinir(tmp_path / "s.pth", {**OPTIONS, "img_size": [32, 40]})
    assert export_cli.main(["--model", str(model), "-o", str(tmp_path / "good.onnx"), "-q"]) == 0
    monkeypatch.setattr(onnx_export, "trace_size", lambda net: (32, 40))
    assert export_cli.main(["--model", str(model), "-o", str(tmp_path / "bad.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.onnx: onnxruntime cannot run the exported graph on 1x3x45x37" in err
    assert "Traceback" not in err and "\x1b" not in err and not (tmp_path / "bad.onnx").exists()


@pytest.mark.slow
def test_a_refusal_is_one_clean_line_in_a_fresh_process(tmp_path, swinir):
    """Defect 12: torch's meshgrid warning (raised once per process, when SwinIR is built) was printed raw, as
    file.py:N: UserWarning, before the refusal."""
    cv2.imwrite(str(tmp_path / "tiny.png"), noise(1, 1))
    result = run_python(["-m", "medsr_se.cli.infer", "-i", str(tmp_path / "tiny.png"), "-o", str(tmp_path / "o"),
                         "--model", str(swinir)], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and "Warning" not in result.stderr
    bare = save_swinir(tmp_path / "bare.pth", OPTIONS, stored=False)  # its --opt builds a wider SwinIR
    dump_yaml({"network_g": {**OPTIONS, "embed_dim": 16}}, tmp_path / "wide.yml")
    result = run_python(["-m", "medsr_se.cli.export", "--model", str(bare), "--opt", str(tmp_path / "wide.yml"),
                         "-o", str(tmp_path / "g.onnx")], cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "bare.pth: its weights do not fit SwinIR(" in result.stderr and "Warning" not in result.stderr


def test_a_volume_whose_slices_are_too_small_is_refused_before_any_work(tmp_path, capsys):
    """Volumes are checked slice size by slice size with the images (probed: a 3-voxel in-plane side)."""
    import nibabel

    model = save_swinir(tmp_path / "gray.pth", {**OPTIONS, "in_chans": 1})
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), noise(20, 20, channels=1))
    thin = np.random.default_rng(0).normal(100, 30, (3, 29, 4)).astype(np.float32)
    nibabel.save(nibabel.Nifti1Image(thin, np.diag([0.5, 0.5, 2.0, 1.0])), str(tmp_path / "in" / "thin.nii.gz"))
    assert infer_cli.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "thin.nii.gz: 29x3 pixels is too small for SwinIR" in err
    assert not (tmp_path / "out").exists()
