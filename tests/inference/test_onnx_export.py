"""ONNX export as a library (medsr_se.inference.onnx_export): a graph that fails its check names ``tolerance=`` and
leaves nothing at the output and logs no warning of its own (the exporter's are torch's)."""

from __future__ import annotations

import logging

import pytest

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.errors import CheckpointError
from medsr_se.inference.onnx_export import export_checked

pytest.importorskip("onnxruntime", reason="the onnx extra is part of the test extra")


def test_a_failed_check_names_the_tolerance_and_writes_nothing(tmp_path, caplog):
    net = SEEDSRGenerator(num_feat=4, num_block=1, upscale=2)
    with caplog.at_level(logging.DEBUG, logger="medsr_se"), \
            pytest.raises(CheckpointError, match=r"g.onnx: onnxruntime differs .*tolerance=-1") as caught:
        export_checked(net, tmp_path / "g.onnx", tolerance=-1)
    assert caught.value.parameter == "tolerance" and list(tmp_path.iterdir()) == []
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert export_checked(net, tmp_path / "g.onnx") < 1e-4 and (tmp_path / "g.onnx").is_file()


def test_a_network_onnx_cannot_express_is_a_checkpoint_error_and_writes_nothing(tmp_path):
    """ATD sorts its tokens (a stable sort): the exporter's own error was a traceback of the traced graph."""
    pytest.importorskip("spandrel", reason="the transformers extra is part of the test extra")
    from basicsr.utils.registry import ARCH_REGISTRY

    from tests.archs.transformers import tiny_options

    options = dict(tiny_options("ATDSR"))
    net = ARCH_REGISTRY.get(options.pop("type"))(**options)
    with pytest.raises(CheckpointError, match=r"^ATDSR cannot be exported to ONNX \(opset 17\): Unsupported: .*Sort"):
        export_checked(net, tmp_path / "atd.onnx")
    assert list(tmp_path.iterdir()) == []
