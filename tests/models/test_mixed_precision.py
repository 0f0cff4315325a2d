"""train:precision: bf16 steps on the CPU, fp16 refused without CUDA, fp32 checkpoints, the gradient scaler's state."""

from __future__ import annotations

import re

import pytest
import torch

from medsr_se.inference.checkpoint import load_generator
from medsr_se.utils.options import OptionError
from tests.helpers import build_tiny_model, run_in_process, saved_root, tiny_gan_options, write_options

BATCH = {"lq": torch.rand(2, 3, 16, 16), "gt": torch.rand(2, 3, 64, 64)}


@pytest.mark.slow
def test_bf16_steps_on_cpu_change_the_forward_precision_stay_finite_and_keep_fp32_weights(pairs_x4, tmp_path):
    """The option reaches the forward pass: bf16 and fp32 steps from the same weights give different, close losses;
    two bf16 steps log finite values and leave fp32 weights (emulated bf16 on most CPUs: one model, two steps)."""
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = build_tiny_model(pairs_x4, tmp_path / precision, precision=precision)
        model.feed_data(BATCH)
        model.optimize_parameters(1)
        losses[precision] = model.get_current_log()["l_g_total"]
    assert losses["fp32"] != losses["bf16"] and abs(losses["fp32"] - losses["bf16"]) < 0.05 * abs(losses["fp32"])
    model.feed_data(BATCH)  # the bf16 model's second step
    model.optimize_parameters(2)
    log = model.get_current_log()
    assert all(torch.isfinite(torch.tensor(value)) for value in log.values()) and "l_g_total" in log
    assert all(p.dtype == torch.float32 for p in model.net_g.parameters())
    assert all(p.dtype == torch.float32 for p in model.net_g_ema.parameters())


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_fp16_is_refused_on_cpu_and_unknown_precisions_are_named(pairs_x4, tmp_path):
    with pytest.raises(OptionError, match="train:precision fp16 needs a CUDA GPU"):
        build_tiny_model(pairs_x4, tmp_path, precision="fp16")
    with pytest.raises(OptionError, match="train:precision must be one of"):
        build_tiny_model(pairs_x4, tmp_path, precision="half")


@pytest.mark.slow
def test_bf16_run_through_the_command_checkpoints_in_fp32_and_resumes(pairs_x4, tmp_path):
    """Two iterations through ``python -m medsr_se.train`` in bf16 (emulated on most CPUs: the fewest that checkpoint
    once), then two more resumed by a second run (both in this process: tests.helpers.run_in_process): the
    checkpoint holds fp32 weights and the resume reads it."""
    options = tiny_gan_options(pairs_x4, "bf16_run", total_iter=2, checkpoint_every=2, val_every=2)
    options["train"]["precision"] = "bf16"
    options["train"]["fusion_opt"]["vgg_weight"] = 0  # emulated bf16 VGG: the test above runs it; not under test
    options["logger"]["print_freq"] = 1
    path = write_options(options, tmp_path / "bf16.yml")
    assert run_in_process("medsr_se.train", ["-opt", str(path)], tmp_path) == 0
    experiment = tmp_path / "experiments" / "bf16_run"
    log = next(experiment.glob("train_*.log")).read_text()
    losses = [float(v) for v in re.findall(r"l_g_total: ([-+0-9.e]+|nan|inf)", log)]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    net = load_generator(str(experiment / "models" / "net_g_2.pth"))
    assert all(p.dtype == torch.float32 for p in net.parameters())
    options["train"]["total_iter"] = 4
    write_options(options, path)
    assert run_in_process("medsr_se.train", ["-opt", str(path), "--auto_resume"], tmp_path) == 0
    assert (experiment / "training_states" / "4.state").exists()
    resumed_log = max(experiment.glob("train_*.log"), key=lambda log_file: log_file.stat().st_mtime).read_text()
    assert "Resuming training from epoch" in resumed_log and "iter: 2" in resumed_log


def test_gradient_scaler_state_is_saved_and_restored(pairs_x4, tmp_path):
    model = build_tiny_model(pairs_x4, tmp_path)
    model.grad_scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)  # what fp16 training carries
    root = saved_root(tmp_path)
    model.save(epoch=0, current_iter=3)
    state = torch.load(root / "training_states" / "3.state", weights_only=True)
    assert state["grad_scaler"]["scale"] == 1024.0
    resumed = build_tiny_model(pairs_x4, tmp_path / "again")
    resumed.grad_scaler = torch.amp.GradScaler("cpu", init_scale=2.0)
    resumed.resume_training(state)
    assert resumed.grad_scaler.get_scale() == 1024.0
