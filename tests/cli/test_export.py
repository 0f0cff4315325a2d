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
