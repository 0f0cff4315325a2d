"""medsr-export: ONNX with dynamic sizes, checked against PyTorch with onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import export


@pytest.mark.parametrize("channels,scale,skip", [(3, 4, True), (1, 2, False)])
def test_onnx_round_trip_at_two_sizes(tmp_path, channels, scale, skip):
    torch.manual_seed(scale)
    net = SEEDSRGenerator(channels, channels, num_feat=8, num_block=2, upscale=scale, img_residual=skip).eval()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0, 0.05)
    checkpoint = tmp_path / "net_g.pth"
    torch.save({"params_ema": net.state_dict()}, checkpoint)
    onnx_file = tmp_path / "g.onnx"
    assert export.main(["--model", str(checkpoint), "-o", str(onnx_file)]) == 0
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    for shape in [(1, channels, 20, 24), (3, channels, 33, 17)]:
        lr = torch.rand(*shape)
        (out,) = session.run(None, {"lr": lr.numpy()})
        with torch.no_grad():
            reference = net(lr).numpy()
        assert out.shape == (shape[0], channels, shape[2] * scale, shape[3] * scale)
        assert np.abs(out - reference).max() <= 1e-4


def test_export_errors(tmp_path, capsys):
    assert export.main(["--model", str(tmp_path / "none.pth"), "-o", str(tmp_path / "g.onnx")]) == 2
    assert "none.pth" in capsys.readouterr().err


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    net = SEEDSRGenerator(num_feat=16, num_block=2, upscale=2)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0, 0.05)
    torch.save({"params": net.state_dict()}, tmp_path / "net_g.pth")
    return str(tmp_path / "net_g.pth")


def test_a_model_failing_its_check_is_not_left_at_the_output(tmp_path, checkpoint, capsys):
    output = tmp_path / "g.onnx"
    assert export.main(["--model", checkpoint, "-o", str(output), "--tolerance", "0"]) != 0
    assert "onnxruntime differs from PyTorch" in capsys.readouterr().err
    assert not output.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["net_g.pth"]


def test_export_to_a_folder_or_an_unwritable_place_is_one_error(tmp_path, checkpoint, capsys):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    assert export.main(["--model", checkpoint, "-o", str(tmp_path / "folder")]) == 2
    assert export.main(["--model", checkpoint, "-o", str(tmp_path / "file" / "g.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "Traceback" not in err
