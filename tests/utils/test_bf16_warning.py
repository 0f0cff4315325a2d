"""bfloat16 on a CPU without native bfloat16 is slower than float32: one warning, with the reason, in training and
in ``medsr-infer --precision bf16`` (issue 22, defect 19). The CPU is played by replacing the flag reader."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import infer
from medsr_se.utils import precision
from medsr_se.utils.options import fix_options
from tests.logged import command_logging, logs_warning

AVX2_EPYC = {"fpu", "sse2", "avx", "avx2", "fma"}  # no bfloat16 instructions
AVX512_XEON = AVX2_EPYC | {"avx512f", "avx512bw", "avx512_vnni"}
SAPPHIRE_RAPIDS = AVX512_XEON | {"avx512_bf16", "amx_bf16", "amx_tile"}


@pytest.fixture()
def cpu(monkeypatch):
    """Set the flags the CPU reports; the once-per-process memory starts empty."""
    monkeypatch.setattr(precision, "_warned", set())

    def play(flags: set[str]) -> None:
        monkeypatch.setattr(precision, "cpu_flags", lambda: set(flags))

    return play


def test_the_flag_reader_reads_proc_cpuinfo():
    flags = precision.cpu_flags()
    if Path("/proc/cpuinfo").is_file():
        line = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.split(":")[0].strip() in ("flags", "Features"))
        assert flags == set(line.split(":", 1)[1].split())


@pytest.mark.parametrize("flags,slow", [(AVX2_EPYC, True), (AVX512_XEON, True), (SAPPHIRE_RAPIDS, False),
                                        ({"avx512_bf16"}, False), (set(), False)])
def test_slow_only_on_a_cpu_without_native_bfloat16(cpu, flags, slow):
    cpu(flags)
    assert (precision.slow_bf16_reason("cpu") is not None) == slow
    assert precision.slow_bf16_reason("cuda") is None  # a GPU computes bfloat16 natively: no warning


def test_training_warns_once_with_the_reason(cpu, capsys):
    """Shown as a command shows it (log_to_stderr): it failed after a test that ran a command with -q."""
    cpu(AVX512_XEON)
    with command_logging():
        for _ in range(3):  # several parses in one process (train.py and test.py, auto-resume): one warning
            fix_options({"num_gpu": 0, "train": {"precision": "bf16"}})
        err = capsys.readouterr().err
        assert err.count("warning:") == 1 and "train:precision bf16" in err and "avx512_bf16" in err
        fix_options({"num_gpu": 1, "train": {"precision": "bf16"}})  # CUDA
        fix_options({"num_gpu": 0, "train": {"precision": "fp32"}})
        assert capsys.readouterr().err == ""


def test_training_on_a_bf16_cpu_says_nothing(cpu, capsys):
    cpu(SAPPHIRE_RAPIDS)
    with command_logging():
        fix_options({"num_gpu": 0, "train": {"precision": "bf16"}})
    assert capsys.readouterr().err == ""


def test_the_warning_is_logged_and_a_callback_is_deprecated(cpu, caplog):
    """warn_slow_bf16 logs (medsr_se.utils.precision's logger); the callback it took (``emit``, a command's own
    printer) is ignored with a DeprecationWarning, so the message is never printed twice."""
    cpu(AVX2_EPYC)
    printed: list[str] = []
    with pytest.warns(DeprecationWarning, match="emit"), \
            logs_warning(caplog, "medsr_se.utils.precision", r"^--precision bf16: this CPU has no native") as logged:
        message = precision.warn_slow_bf16("cpu", "--precision bf16", printed.append)
    assert logged == [message] and printed == []


@pytest.fixture(scope="module")
def two_images(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("bf16")
    (root / "in").mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(root / "in" / name), np.random.default_rng(0).integers(0, 255, (10, 10, 3), np.uint8))
    torch.manual_seed(0)
    torch.save({"params": SEEDSRGenerator(num_feat=4, num_block=1, upscale=2).state_dict()}, root / "g.pth")
    return root, str(root / "g.pth")


def test_medsr_infer_bf16_warns_once_on_such_a_cpu(cpu, two_images, tmp_path, capsys):
    root, model = two_images
    cpu(AVX2_EPYC)
    assert infer.main(["-i", str(root / "in"), "-o", str(tmp_path / "o"), "--model", model, "--device", "cpu",
                       "--precision", "bf16"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: --precision bf16: this CPU has no native bfloat16") == 1
    cpu(SAPPHIRE_RAPIDS)
    assert infer.main(["-i", str(root / "in"), "-o", str(tmp_path / "p"), "--model", model, "--device", "cpu",
                       "--precision", "bf16"]) == 0
    assert "warning" not in capsys.readouterr().err
