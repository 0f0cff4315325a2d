"""medsr-export of an anisotropic (``upscale: [3, 1]``) generator: onnxruntime matches PyTorch at two sizes."""

from __future__ import annotations

import numpy as np
import onnxruntime
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import export
from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY
from tests.helpers import trained_looking


def test_onnx_of_an_r3_model_matches_pytorch(tmp_path, capsys):
    options = {"num_in_ch": 1, "num_out_ch": 1, "num_feat": 8, "num_block": 2, "upscale": [3, 1],
               "img_residual": True}
    net = trained_looking(SEEDSRGenerator(**options), 3)
    checkpoint = tmp_path / "net_g.pth"
    torch.save({"params_ema": net.state_dict(), NETWORK_OPTIONS_KEY: {"type": "SEEDSRGenerator", **options}},
               checkpoint)
    onnx_file = tmp_path / "g.onnx"
    assert export.main(["--model", str(checkpoint), "-o", str(onnx_file)]) == 0
    assert "x3 (height)" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    for shape in [(1, 1, 20, 24), (2, 1, 17, 33)]:
        lr = torch.rand(*shape)
        (out,) = session.run(None, {"lr": lr.numpy()})
        with torch.no_grad():
            reference = net(lr).numpy()
        assert out.shape == (shape[0], 1, shape[2] * 3, shape[3])
        assert np.abs(out - reference).max() <= 1e-4
