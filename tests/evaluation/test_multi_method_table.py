"""medsr-evaluate with several methods per scale: one row per method and scale, bicubic always, the seed's numbers
beside its model; the old ``x4=`` spelling gives the table it gave before (rows named SEEDSR-GAN)."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.metrics import calculate_psnr

import medsr_se  # noqa: F401
from medsr_se.cli import evaluate as evaluate_cli
from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY
from tests.helpers import trained_looking, write_pairs

NETWORKS = {
    "seedsr": {"type": "SEEDSRGenerator", "num_feat": 8, "num_block": 1, "img_residual": True},
    "edsr": {"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1},
    "srcnn": {"type": "SRCNN", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_feat2": 4},
}


@pytest.fixture(scope="module")
def setup(retina, tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    for scale in (4, 8):  # the same HR crops (same seed), LR_x4 and LR_x8
        write_pairs(retina, root / "data" / "test", 2, 64, scale, seed=3)
    checkpoints = {}
    for method, options in NETWORKS.items():
        for scale in (4, 8):
            network = {**options, "upscale": scale}
            torch.manual_seed(scale)
            net = trained_looking(build_network(dict(network)), seed=scale, spread=0.1)
            path = root / f"{method}_x{scale}.pth"
            torch.save({"params": net.state_dict(), NETWORK_OPTIONS_KEY: network}, path)
            checkpoints[method, scale] = (path, net)
    return root, checkpoints


def table(path):
    return list(csv.DictReader(path.open()))


def test_three_methods_at_two_scales(setup, tmp_path):
    root, checkpoints = setup
    models = [arg for (method, scale), (path, _) in checkpoints.items()
              for arg in ("--model", f"{method}@x{scale}={path}")]
    assert evaluate_cli.main(["--data", str(root / "data"), *models, "-o", str(tmp_path / "e"), "--scales", "4", "8",
                              "--no-niqe", "--no-plot", "-q"]) == 0
    rows = table(tmp_path / "e" / "table.csv")
    assert sorted((int(r["scale"]), r["method"]) for r in rows) == sorted(
        [(s, m) for s in (4, 8) for m in ("bicubic", "edsr", "seedsr", "srcnn")])
    by_key = {(int(r["scale"]), r["method"]): r for r in rows}
    assert float(by_key[8, "bicubic"]["params"]) == 0 and float(by_key[8, "edsr"]["params"]) == sum(
        p.numel() for p in checkpoints["edsr", 8][1].parameters())
    # the oracle for one row: BasicSR's PSNR of the network's own forward pass, quantised, averaged over the images
    _, net = checkpoints["srcnn", 8]
    psnrs = []
    for name in ("img000.png", "img001.png"):
        lr = cv2.imread(str(root / "data" / "test" / "LR_x8" / name))
        hr = cv2.imread(str(root / "data" / "test" / "HR" / name))
        x = torch.from_numpy(np.ascontiguousarray(lr[:, :, ::-1].transpose(2, 0, 1))).float().div(255)[None]
        with torch.no_grad():
            sr = torch.round(net(x).clamp(0, 1) * 255).squeeze(0).numpy().transpose(1, 2, 0)[:, :, ::-1]
        psnrs.append(calculate_psnr(np.ascontiguousarray(sr), hr, 8))
    assert float(by_key[8, "srcnn"]["psnr"]) == pytest.approx(np.mean(psnrs), abs=1e-6)
    markdown = (tmp_path / "e" / "table.md").read_text()
    assert markdown.count("\n") == 2 + 8 and "| NIQE | LR-PSNR | params | GFLOPs/MP | s/image |" in markdown
    assert "40.03 / 0.9512" in markdown  # the seed's bicubic at x4, beside ours
    sheet = cv2.imread(str(tmp_path / "e" / "sheets" / "x4_img000.png"))
    assert sheet.shape[1] == (1 + 3 + 1 + 3) * 64  # bicubic, 3 methods, HR, 3 error maps


def test_the_old_spelling_gives_the_same_table(setup, tmp_path):
    root, checkpoints = setup
    seed4, seed8 = checkpoints["seedsr", 4][0], checkpoints["seedsr", 8][0]
    common = ["--data", str(root / "data"), "--no-niqe", "--no-plot", "--no-sheets", "-q"]
    assert evaluate_cli.main([*common, "--model", f"x4={seed4}", "--model", f"x8={seed8}", "-o",
                              str(tmp_path / "old")]) == 0
    assert evaluate_cli.main([*common, "--model", f"SEEDSR-GAN@x4={seed4}", "--model", f"SEEDSR-GAN@x8={seed8}",
                              "-o", str(tmp_path / "new")]) == 0
    old, new = table(tmp_path / "old" / "table.csv"), table(tmp_path / "new" / "table.csv")
    assert [r["method"] for r in old] == ["SEEDSR-GAN", "bicubic"] * 2
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in old] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in new]
    assert "42.65 / 0.9567" in (tmp_path / "old" / "table.md").read_text()


@pytest.mark.parametrize("argument, message", [
    ("edsr@=x.pth", "expected [METHOD@]SCALE=CHECKPOINT"), ("bicubic@x4=x.pth", "bicubic is always in the table"),
    ("@x4=x.pth", "expected [METHOD@]SCALE=CHECKPOINT")])
def test_bad_model_arguments(argument, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate_cli.main(["--data", str(tmp_path), "--model", argument])
    assert message in capsys.readouterr().err


def test_a_method_twice_for_a_scale_is_an_error(setup, tmp_path, capsys):
    root, checkpoints = setup
    path = checkpoints["edsr", 4][0]
    assert evaluate_cli.main(["--data", str(root / "data"), "--model", f"edsr@x4={path}", "--model",
                              f"edsr@x4={path}", "-o", str(tmp_path / "e"), "--scales", "4"]) == 2
    assert "edsr@x4: given twice" in capsys.readouterr().err and not (tmp_path / "e").exists()
