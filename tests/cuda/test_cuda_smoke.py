"""CUDA smoke suite: ``pytest -m cuda`` (or ``bash benchmarks/gpu.sh``) on a machine with a GPU.

Every test here is skipped without CUDA, so the CPU suite stays green; nothing here has run yet when BENCHMARKS.md
says so. Each test is small (seconds) so that a lent GPU is used for the tables, not for waiting.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from medsr_se.archs.fusion_discriminator_arch import FusionSEDiscriminator
from medsr_se.archs.improved_se import ChannelScale, ChannelScaleInPlace
from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import infer
from medsr_se.inference import upscale
from medsr_se.inference.tiling import tiled_forward
from tests.helpers import REPO_ROOT, in_process_options, run_python, tiny_gan_options, write_options

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
REPORT = Path(os.environ.get("MEDSR_CUDA_REPORT", REPO_ROOT / "benchmarks" / "results" / "cuda_smoke.json"))
HALF_DTYPES = [torch.float16, torch.bfloat16]


def record(key: str, value) -> None:
    """Keep a number in the smoke report (benchmarks/gpu.sh prints it into BENCHMARKS.md)."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(REPORT.read_text()) if REPORT.is_file() else {}
    data[key] = value
    data["device"] = torch.cuda.get_device_name()
    REPORT.write_text(json.dumps(data, indent=1))


def trained_looking(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return net


def test_channel_scale_gradcheck_on_cuda():
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, device="cuda", requires_grad=True)
    scale = torch.rand(2, 3, 1, 1, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(ChannelScale.apply, (x, scale))
    assert torch.autograd.gradcheck(lambda t, s: ChannelScaleInPlace.apply(t.clone(), s), (x, scale))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_generator_and_discriminator_under_autocast(dtype):
    torch.manual_seed(0)
    net_g = SEEDSRGenerator(num_feat=16, num_block=2, upscale=4).cuda()
    net_d = FusionSEDiscriminator(num_feat=16).cuda()
    with torch.autocast("cuda", dtype=dtype):
        sr = net_g(torch.rand(2, 3, 32, 32, device="cuda"))
        logits = net_d(sr)
    assert sr.dtype == dtype
    logits.float().sum().backward()
    for net in (net_g, net_d):
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_half_generator_whole_and_tiled_close_to_fp32(dtype):
    net = trained_looking(SEEDSRGenerator(num_feat=32, num_block=4, upscale=4, img_residual=True)).cuda().eval()
    x = torch.rand(1, 3, 96, 80, device="cuda")
    with torch.no_grad():
        reference = net(x)
        half = net.to(dtype)
        whole = half(x.to(dtype))
        tiled = tiled_forward(half, x.to(dtype), tile=32, tile_pad=4)
    for out in (whole, tiled):
        assert torch.isfinite(out).all()
        assert (out.float() - reference).abs().max() < (0.02 if dtype == torch.float16 else 0.08)


@pytest.mark.parametrize("tf32", [True, False])
def test_tiled_equals_whole_on_cuda(tf32):
    net = trained_looking(SEEDSRGenerator(num_feat=16, num_block=2, upscale=4)).cuda().eval()
    x = torch.rand(2, 3, 37, 29, device="cuda")
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=tf32), torch.no_grad():
        whole = net(x)
        tiled = tiled_forward(net, x, tile=16, tile_pad=4)
    torch.testing.assert_close(tiled, whole, atol=1e-3 if tf32 else 1e-5, rtol=0)


def build_cuda_model(pairs, tmp_path, scale: int, gt_size: int, precision: str = "fp32"):
    from basicsr.models import build_model

    opt = in_process_options(pairs, tmp_path / f"x{scale}", f"cuda_x{scale}", total_iter=100, scale=scale,
                             precision=precision)
    opt["num_gpu"] = 1
    opt["network_g"].update(num_feat=64, num_block=16)
    opt["network_d"]["num_feat"] = 64
    opt["datasets"]["train"]["gt_size"] = gt_size
    return build_model(opt)


@pytest.mark.parametrize("scale,gt_size", [(4, 128), (16, 320)])
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_gan_iterations_without_host_syncs(pairs_x4, tmp_path, scale, gt_size, precision):
    model = build_cuda_model(pairs_x4, tmp_path, scale, gt_size, precision)
    batch = {"lq": torch.rand(4, 3, gt_size // scale, gt_size // scale), "gt": torch.rand(4, 3, gt_size, gt_size)}
    model.feed_data(batch)
    model.optimize_parameters(1)  # optimizer state, cuDNN autotuning
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for iteration in range(2, 22):
                model.optimize_parameters(iteration)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message).lower()]
    assert not syncs, syncs[:3]
    log = model.get_current_log()
    assert all(np.isfinite(value) for value in log.values())
    record(f"gan_iteration_x{scale}_{precision}_batch4_max_memory_reserved_GiB",
           torch.cuda.max_memory_reserved() / 2**30)


def test_fp16_save_resume_step(pairs_x4, tmp_path):
    model = build_cuda_model(pairs_x4, tmp_path, 4, 128, "fp16")
    batch = {"lq": torch.rand(2, 3, 32, 32), "gt": torch.rand(2, 3, 128, 128)}
    for iteration in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(iteration)
    root = tmp_path / "x4"
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "training_states").mkdir(exist_ok=True)
    model.save(epoch=0, current_iter=2)
    state = torch.load(root / "training_states" / "2.state", map_location="cpu", weights_only=True)
    assert "grad_scaler" in state
    resumed = build_cuda_model(pairs_x4, tmp_path / "resumed", 4, 128, "fp16")
    resumed.resume_training(state)
    assert resumed.grad_scaler.get_scale() == model.grad_scaler.get_scale()
    assert all(s["step"].device.type == "cpu" for o in resumed.optimizers for s in o.state.values())
    resumed.feed_data(batch)
    resumed.optimize_parameters(3)
    assert all(np.isfinite(v) for v in resumed.get_current_log().values())


def test_compile_with_inductor_equals_eager():
    net = trained_looking(SEEDSRGenerator(num_feat=16, num_block=2, upscale=4, img_residual=True)).cuda()
    compiled = torch.compile(net, fullgraph=True)
    x = torch.rand(2, 3, 24, 24, device="cuda")
    torch.testing.assert_close(compiled(x), net(x), atol=1e-4, rtol=1e-4)


def test_torchrun_nccl_one_process_with_resume(pairs_x4, tmp_path):
    options = tiny_gan_options(pairs_x4, "nccl", total_iter=4, checkpoint_every=2, val_every=4)
    options["num_gpu"] = 1
    path = write_options(options, tmp_path / "nccl.yml")
    command = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "medsr_se.train",
               "-opt", str(path), "--launcher", "pytorch"]
    first = run_python(command, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    options["train"]["total_iter"] = 6
    write_options(options, path)
    second = run_python([*command, "--auto_resume"], cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert (tmp_path / "experiments" / "nccl" / "training_states" / "6.state").exists()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_medsr_infer_on_cuda_fp16_tiled(tmp_path, dtype):
    net = trained_looking(SEEDSRGenerator(num_feat=16, num_block=2, upscale=4, img_residual=True))
    torch.save({"params": net.state_dict()}, tmp_path / "g.pth")
    peak = np.iinfo(dtype).max
    image = (np.random.default_rng(0).random((70, 90, 3)) * peak).astype(dtype)
    (tmp_path / "in").mkdir()
    assert cv2.imwrite(str(tmp_path / "in" / "a.png"), image)
    assert infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "g.pth"),
                       "--device", "cuda", "--fp16", "--tile", "32"]) == 0
    out = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)
    reference = upscale(image, net.eval())
    assert out.dtype == dtype and out.shape == reference.shape
    assert np.abs(out.astype(np.int64) - reference).max() <= 0.01 * peak
