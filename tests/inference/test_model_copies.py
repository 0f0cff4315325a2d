"""The networks of one run (medsr_se.inference.model_copies): a reduced-precision copy for 8-bit images, float32
for 16-bit ones; a through-plane checkpoint refused naming the parameter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.errors import CheckpointError
from medsr_se.inference.model_copies import load_models, network_for


def test_a_bf16_copy_for_8_bit_images_only(tmp_path, caplog):
    torch.save({"params": SEEDSRGenerator(num_feat=4, num_block=1, upscale=2).state_dict()}, tmp_path / "m.pth")
    models = load_models(str(tmp_path / "m.pth"), precision="bf16")
    assert next(models["reduced"].parameters()).dtype == torch.bfloat16
    assert next(models["fp32"].parameters()).dtype == torch.float32
    assert network_for(np.zeros((4, 4), np.uint8), models) is models["reduced"]
    with caplog.at_level("INFO", logger="medsr_se"):
        assert network_for(np.zeros((4, 4), np.uint16), models, "a.png") is models["fp32"]
    assert caplog.records[0].getMessage() == \
        "a.png: 16-bit image, computed in fp32 (reduced precision would lose depth)"
    assert list(load_models(str(tmp_path / "m.pth"))) == ["fp32"]


def test_a_through_plane_checkpoint_names_the_parameter(tmp_path):
    torch.save({"params": SEEDSRGenerator(1, 1, num_feat=4, num_block=1, upscale=[4, 1]).state_dict()},
               tmp_path / "t.pth")
    with pytest.raises(CheckpointError, match=r"^checkpoint=.*t.pth: a through-plane model \(upscale \[4, 1\]\)") \
            as caught:
        load_models(str(tmp_path / "t.pth"))
    assert caught.value.parameter == "checkpoint"
