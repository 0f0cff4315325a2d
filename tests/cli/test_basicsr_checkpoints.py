"""Checkpoints of BasicSR's own models (SRModel + EDSR, ESRGANModel + RRDBNet), trained a few iterations through
``python -m medsr_se.train`` on CPU, load in medsr-evaluate, medsr-infer and medsr-export and give the output of
BasicSR's network built from the option file (the oracle: ``build_network`` + the saved weights)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.metrics import calculate_psnr

import medsr_se  # noqa: F401
from medsr_se.cli import evaluate as evaluate_cli
from medsr_se.cli import export as export_cli
from medsr_se.cli import infer as infer_cli
from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY
from medsr_se.utils.options import derive, load_yaml
from tests.helpers import run_in_process, write_options, write_pairs
from tests.inference.swinir import padded_forward, swinir_options
from tests.inference.swinir import reference_image as swinir_reference_image

pytestmark = pytest.mark.slow  # trainings / subprocess pipelines (the fast loop: pytest -m "not slow")

SCALE = 4


def tiny(recipe: str, name: str, pairs: dict[str, Path]) -> dict:
    """A shipped baseline recipe shrunk to CPU seconds (3 iterations, tiny widths, disk data, no VGG loss)."""
    options = derive(recipe, {
        "name": name, "num_gpu": 0,
        "datasets": {"train": {"dataroot_gt": str(pairs["train"] / "HR"),
                               "dataroot_lq": str(pairs["train"] / f"LR_x{SCALE}"), "io_backend": {"type": "disk"},
                               "gt_size": 32, "num_worker_per_gpu": 0, "persistent_workers": False,
                               "batch_size_per_gpu": 2, "pin_memory": False},
                     "val": {"dataroot_gt": str(pairs["val"] / "HR"),
                             "dataroot_lq": str(pairs["val"] / f"LR_x{SCALE}")}},
        "train": {"total_iter": 3, "scheduler": {"milestones": [100]}},
        "val": {"val_freq": 1000},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 3, "use_tb_logger": False}})
    options["train"].pop("perceptual_opt", None)  # VGG19 weights are absent here
    return options


@pytest.fixture(scope="module")
def trained(retina, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """{method: (option file, net_g_latest.pth)} for EDSR (SRModel), RRDBNet (ESRGANModel) and SwinIR
    (SwinIRModel), each trained by ``python -m medsr_se.train`` run in this process (tests.helpers.run_in_process:
    three interpreter starts less)."""
    root = tmp_path_factory.mktemp("basicsr_models")
    pairs = {"train": write_pairs(retina, root / "train", 4, 64, SCALE, seed=1),
             "val": write_pairs(retina, root / "val", 1, 64, SCALE, seed=2)}
    write_pairs(retina, root / "data" / "test", 2, 64, SCALE, seed=3)
    edsr = tiny("baselines/edsr_x4", "edsr_tiny", pairs)
    edsr["network_g"].update(num_feat=8, num_block=1)
    esrgan = tiny("baselines/esrgan_x4", "esrgan_tiny", pairs)
    esrgan["network_g"].update(num_feat=8, num_block=1, num_grow_ch=4)
    esrgan["network_d"] = {"type": "UNetDiscriminatorSN_basicsr", "num_in_ch": 3, "num_feat": 4}
    swinir = tiny("baselines/edsr_x4", "swinir_tiny", pairs)  # BasicSR's SwinIRModel (it pads to its window)
    swinir.update(model_type="SwinIRModel", network_g=swinir_options(8, upscale=SCALE))
    result = {}
    for method, options in (("edsr", edsr), ("esrgan", esrgan), ("swinir", swinir)):
        path = write_options(options, root / f"{method}.yml")
        assert run_in_process("medsr_se.train", ["-opt", str(path)], root) == 0, method
        result[method] = (path, root / "experiments" / f"{method}_tiny" / "models" / "net_g_latest.pth")
    result["data"] = (root / "data", root / "data")
    return result


def reference(option_file: Path, checkpoint: Path) -> torch.nn.Module:
    net = build_network(dict(load_yaml(option_file)["network_g"]))
    net.load_state_dict(torch.load(checkpoint, weights_only=True)["params_ema"])
    return net.eval()


def reference_image(net: torch.nn.Module, bgr: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1))).float().div(255).unsqueeze(0)
    with torch.no_grad():
        out = torch.round(net(x).clamp(0, 1) * 255).squeeze(0).numpy().transpose(1, 2, 0)[:, :, ::-1]
    return np.ascontiguousarray(out).astype(np.uint8)


def test_basicsr_checkpoints_work_in_every_command(trained, tmp_path, capsys):
    data = trained["data"][0]
    lr = cv2.imread(str(data / "test" / f"LR_x{SCALE}" / "img000.png"))
    models = []
    for method in ("edsr", "esrgan"):
        option_file, checkpoint = trained[method]
        saved = torch.load(checkpoint, weights_only=True)
        assert saved[NETWORK_OPTIONS_KEY] == dict(load_yaml(option_file)["network_g"])  # the compat patch
        net = reference(option_file, checkpoint)
        out = tmp_path / method
        assert infer_cli.main(["-i", str(data / "test" / f"LR_x{SCALE}" / "img000.png"), "-o", str(out),
                               "--model", str(checkpoint), "-q"]) == 0
        np.testing.assert_array_equal(cv2.imread(str(out / "img000.png")), reference_image(net, lr))
        assert infer_cli.main(["-i", str(data / "test" / f"LR_x{SCALE}" / "img000.png"), "-o", str(out / "t"),
                               "--model", str(checkpoint), "--tile", "8", "-q"]) == 0  # halo tiles
        tiled = cv2.imread(str(out / "t" / "img000.png")).astype(int)
        assert np.abs(tiled - reference_image(net, lr)).max() <= 1
        assert export_cli.main(["--model", str(checkpoint), "-o", str(out / "net.onnx"), "-q"]) == 0
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out / "net.onnx"), providers=["CPUExecutionProvider"])
        x = torch.rand(1, 3, 13, 11)
        with torch.no_grad():
            assert np.abs(session.run(None, {"lr": x.numpy()})[0] - net(x).numpy()).max() < 1e-4
        models += ["--model", f"{method}@x{SCALE}={checkpoint}"]
    assert evaluate_cli.main(["--data", str(data), *models, "-o", str(tmp_path / "e"), "--scales", str(SCALE),
                              "--no-niqe", "--no-sheets", "--no-plot", "-q"]) == 0
    rows = list(csv.DictReader((tmp_path / "e" / "table.csv").open()))
    assert sorted(row["method"] for row in rows) == ["bicubic", "edsr", "esrgan"]
    per_image = [row for row in csv.DictReader((tmp_path / "e" / "per_image.csv").open())
                 if row["method"] == "edsr" and row["image"] == "img000"]
    hr = cv2.imread(str(data / "test" / "HR" / "img000.png"))
    expected = calculate_psnr(reference_image(reference(*trained["edsr"]), lr), hr, SCALE)
    assert float(per_image[0]["psnr"]) == pytest.approx(expected, abs=1e-6)


def test_a_checkpoint_without_its_options_needs_opt(trained, tmp_path, capsys):
    option_file, checkpoint = trained["edsr"]
    saved = torch.load(checkpoint, weights_only=True)
    del saved[NETWORK_OPTIONS_KEY]
    bare = tmp_path / "bare.pth"
    torch.save(saved, bare)
    image = trained["data"][0] / "test" / f"LR_x{SCALE}" / "img000.png"
    assert infer_cli.main(["-i", str(image), "-o", str(tmp_path / "o"), "--model", str(bare)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bare}:" in err and "--opt" in err and not (tmp_path / "o").exists()
    assert infer_cli.main(["-i", str(image), "-o", str(tmp_path / "o"), "--model", str(bare), "--opt",
                           str(option_file), "-q"]) == 0
    net = reference(option_file, checkpoint)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "o" / "img000.png")),
                                  reference_image(net, cv2.imread(str(image))))
    assert infer_cli.main(["-i", str(image), "-o", str(tmp_path / "p"), "--model", str(bare), "--opt",
                           str(tmp_path / "missing.yml")]) == 2
    assert "missing.yml" in capsys.readouterr().err


def test_a_swinir_trained_by_basicsr_works_on_any_size(trained, tmp_path, capsys):
    """Issue 31, defect 5: BasicSR's own SwinIRModel checkpoint (network_g stored by the plugin) on an LR crop
    that is no multiple of its window, in medsr-infer (whole and tiled) and medsr-export; oracle: BasicSR's network
    on numpy's reflection of the crop, cropped back (what SwinIRModel.test does)."""
    option_file, checkpoint = trained["swinir"]
    lr = cv2.imread(str(trained["data"][0] / "test" / f"LR_x{SCALE}" / "img000.png"))[:13, :11]
    cv2.imwrite(str(tmp_path / "crop.png"), lr)
    expected = swinir_reference_image(reference(option_file, checkpoint), lr, 8)
    for name, extra in (("whole", []), ("tiled", ["--tile", "8"])):
        assert infer_cli.main(["-i", str(tmp_path / "crop.png"), "-o", str(tmp_path / name), "--model",
                               str(checkpoint), "-q", *extra]) == 0
        assert np.abs(cv2.imread(str(tmp_path / name / "crop.png")).astype(int) - expected).max() <= 1
    assert export_cli.main(["--model", str(checkpoint), "-o", str(tmp_path / "s.onnx"), "-q"]) == 0
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 13, 11)
    reference_out = padded_forward(reference(option_file, checkpoint), x, 8).numpy()
    assert np.abs(session.run(None, {"lr": x.numpy()})[0] - reference_out).max() < 1e-4
