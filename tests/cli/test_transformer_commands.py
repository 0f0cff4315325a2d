"""HAT, DAT and DRCT checkpoints (spandrel's networks, tiny) in medsr-evaluate and medsr-export, and ATD's refusal
to export. Oracle: spandrel's own class built from its own keyword arguments (tests.archs.transformers), the
checkpoint's weights loaded, on the LR image reflected by numpy to a multiple of the window, cropped back; the PSNR
computed here from its rounded output. BasicSR's SwinIR in the same commands: tests/cli/test_swinir_commands.py."""

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
from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY
from medsr_se.utils.bicubic import matlab_bicubic
from tests.archs.transformers import WINDOW, spandrel_network, tiny_options
from tests.inference.swinir import built, padded_forward, reference_image

pytest.importorskip("spandrel", reason="the transformers extra is part of the test extra")

SCALE = 2
EXPORTED = ("HATSR", "DATSR", "DRCTSR")  # ATD: refused below


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, object]:
    """{kind: net_g.pth} of the tiny x2 networks, 3 channels, weights moved off their initial values."""
    root = tmp_path_factory.mktemp("transformers")
    paths = {}
    for kind in (*EXPORTED, "ATDSR"):
        options = tiny_options(kind, SCALE, 3)
        torch.save({"params": built(options).state_dict(), NETWORK_OPTIONS_KEY: options}, root / f"{kind}.pth")
        paths[kind] = root / f"{kind}.pth"
    return paths


def oracle(kind: str, path) -> torch.nn.Module:
    """spandrel's own network of the tiny ``kind`` with the checkpoint's weights (strict)."""
    net = spandrel_network(kind, SCALE, 3)
    net.load_state_dict(torch.load(path, weights_only=True)["params"])
    return net


@pytest.mark.parametrize("kind", EXPORTED)
def test_evaluate_gives_the_psnr_of_the_networks_own_forward(kind, checkpoints, retina, tmp_path):
    """One 58 x 46 HR image (LR 29 x 23: no multiple of the window): the method's row in table.csv and
    per_image.csv holds the PSNR of spandrel's network's own output, and its parameter count."""
    data = tmp_path / "data"
    for folder in ("HR", f"LR_x{SCALE}"):
        (data / "test" / folder).mkdir(parents=True)
    hr = np.ascontiguousarray(retina[700:758, 600:646])
    lr = matlab_bicubic(hr, 1 / SCALE)
    cv2.imwrite(str(data / "test" / "HR" / "i0.png"), hr)
    cv2.imwrite(str(data / "test" / f"LR_x{SCALE}" / "i0.png"), lr)
    (data / "manifest.json").write_text(json.dumps({"parameters": {"scales": [SCALE]}}))
    method = kind.lower()
    assert evaluate_cli.main(["--data", str(data), "--model", f"{method}@x{SCALE}={checkpoints[kind]}", "-o",
                              str(tmp_path / "e"), "--no-niqe", "--no-plot", "-q"]) == 0
    net = oracle(kind, checkpoints[kind])
    expected = calculate_psnr(reference_image(net, cv2.imread(str(data / "test" / f"LR_x{SCALE}" / "i0.png")),
                                              WINDOW), hr, SCALE)
    for table in ("per_image.csv", "table.csv"):
        row = next(row for row in csv.DictReader((tmp_path / "e" / table).open()) if row["method"] == method)
        assert float(row["psnr"]) == pytest.approx(expected, abs=1e-6), table
        assert int(row["params"]) == sum(p.numel() for p in net.parameters())


@pytest.mark.slow  # an ONNX export each (~12 s on 2 cores)
@pytest.mark.parametrize("kind", EXPORTED)
def test_export_equals_the_networks_own_forward(kind, checkpoints, tmp_path, capsys):
    """The graph pads inside itself: onnxruntime on sizes that are no multiple of the window gives spandrel's
    network on the reflected input, cropped back."""
    assert export_cli.main(["--model", str(checkpoints[kind]), "-o", str(tmp_path / "g.onnx")]) == 0
    assert f"padded by reflection to multiples of {WINDOW}" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    net = oracle(kind, checkpoints[kind])
    for height, width in ((29, 23), (13, 50)):
        x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height))
        (result,) = session.run(None, {"lr": x.numpy()})
        assert result.shape == (1, 3, SCALE * height, SCALE * width)
        assert np.abs(result - padded_forward(net, x, WINDOW).numpy()).max() < 1e-4


@pytest.mark.slow  # a traced export that fails (~12 s)
def test_atd_export_is_one_error_line_and_nothing_else(checkpoints, tmp_path, capfd):
    """ATD sorts its tokens, which torch's exporter cannot express: one ``error:`` line, exit 2, nothing written.
    The exporter printed its whole TorchScript graph (1,100 lines for the tiny network) to stdout first (its log is
    switched on for every export); now that log is a debug record."""
    assert export_cli.main(["--model", str(checkpoints["ATDSR"]), "-o", str(tmp_path / "atd.onnx")]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: ATDSR cannot be exported to ONNX (opset 17): Unsupported: ")
    assert list(tmp_path.iterdir()) == []
