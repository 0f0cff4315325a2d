"""Real BasicSR training runs through ``python -m medsr_se.train`` on CPU (tiny networks, real fundus crops): the one
end-to-end kill-and-resume run and the one DDP run launch processes; the others run the command in this process."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import run_in_process, subprocess_env, tiny_gan_options, write_options

pytestmark = pytest.mark.slow  # trainings / subprocess pipelines (the fast loop: pytest -m "not slow")


def latest_log(experiment: Path) -> str:
    logs = sorted(experiment.glob("train_*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1].read_text()


def test_train_validate_kill_and_auto_resume(pairs_x4, tmp_path):
    options = write_options(tiny_gan_options(pairs_x4, "resume_run", total_iter=400, checkpoint_every=10,
                                             val_every=10), tmp_path / "opt.yml")
    experiment = tmp_path / "experiments" / "resume_run"
    states = experiment / "training_states"
    command = [sys.executable, "-m", "medsr_se.train", "-opt", str(options)]

    process = subprocess.Popen(command, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    try:
        while not (states / "20.state").exists():
            assert process.poll() is None, f"training died early:\n{process.stderr.read()[-3000:]}"
            assert time.time() < deadline, "no checkpoint at iteration 20 within 240 s"
            time.sleep(0.2)
    finally:
        process.kill()
        process.wait()
    killed_at = max(int(p.stem) for p in states.glob("*.state"))
    assert killed_at < 400
    first_log = latest_log(experiment)
    assert re.search(r"Validation retina_val\s+# psnr: [\d.]+", first_log)
    assert re.search(r"# ssim: 0\.\d+", first_log)
    assert "l_g_gan" in first_log and "l_d_real" in first_log

    override = ["--force_yml", "train:total_iter=40", "--auto_resume"]
    resumed = subprocess.run(command + override, cwd=tmp_path, env=subprocess_env(), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = latest_log(experiment)
    assert f"iter: {killed_at}." in log.split("Resuming training from epoch: ")[1].splitlines()[0]
    start_iters = [int(i) for i in re.findall(r"Start training from epoch: \d+, iter: (\d+)", log)]
    assert start_iters == [killed_at], "resumed run did not continue from the last saved state"
    assert not list(tmp_path.glob("experiments/resume_run_archived_*")), "auto_resume archived the experiment"
    assert (experiment / "models" / "net_g_latest.pth").exists()
    assert (experiment / "models" / "net_g_40.pth").exists()
    saved = torch.load(experiment / "models" / "net_g_latest.pth", weights_only=True)
    assert set(saved) == {"params", "params_ema", "medsr_se_network_g", "medsr_se_data"}
    assert saved["medsr_se_network_g"]["type"] == "SEEDSRGenerator"


def test_resume_state_path_on_cpu(pairs_x4, tmp_path):
    """An explicit path:resume_state (a GPU-less machine) continues from that iteration. Both runs are
    ``python -m medsr_se.train`` in this process (the subprocess launch is the kill-and-resume test's)."""
    options = tiny_gan_options(pairs_x4, "explicit_resume", total_iter=10, checkpoint_every=10, val_every=100)
    first = write_options(options, tmp_path / "first.yml")
    assert run_in_process("medsr_se.train", ["-opt", str(first)], tmp_path) == 0
    state = tmp_path / "experiments" / "explicit_resume" / "training_states" / "10.state"
    assert state.exists()
    # the GAN trains: D's logits for HR and SR differ in the log (0.1.x: equal to 4 digits), its check is logged
    logged = re.findall(r"out_d_real: ([-\d.e+]+) out_d_fake: ([-\d.e+]+) d_separation: ([-\d.e+]+) "
                        r"d_pairs_ranked: ([\d.e+-]+)", latest_log(tmp_path / "experiments" / "explicit_resume"))
    assert len(logged) == 2 and all(real != fake and float(gap) != 0 for real, fake, gap, _ in logged), logged
    options.update(name="explicit_resume_2")
    options["train"]["total_iter"] = 12
    options["path"]["resume_state"] = str(state)
    options["path"]["models"] = None
    second = write_options(options, tmp_path / "second.yml")
    # the networks of iteration 10 are looked up in the new experiment's models folder, as BasicSR does
    models = tmp_path / "experiments" / "explicit_resume_2" / "models"
    models.mkdir(parents=True)
    for net in ("net_g_10.pth", "net_d_10.pth"):
        (models / net).write_bytes((tmp_path / "experiments" / "explicit_resume" / "models" / net).read_bytes())
    assert run_in_process("medsr_se.train", ["-opt", str(second)], tmp_path) == 0
    log = latest_log(tmp_path / "experiments" / "explicit_resume_2")
    assert "Resuming training from epoch: " in log and "iter: 10." in log.split("Resuming training from epoch: ")[1]
    assert (models / "net_g_latest.pth").exists()


def test_ddp_two_processes_on_cpu(pairs_x4, tmp_path):
    options = tiny_gan_options(pairs_x4, "ddp_run", total_iter=6, checkpoint_every=6, val_every=6)
    options["datasets"]["train"]["dataset_enlarge_ratio"] = 10  # 6 images on 2 ranks: 1 batch an epoch otherwise
    path = write_options(options, tmp_path / "ddp.yml")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "medsr_se.train", "-opt", str(path), "--launcher", "pytorch"],
                         cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    experiment = tmp_path / "experiments" / "ddp_run"
    log = latest_log(experiment)
    assert "World size (gpu number): 2" in log
    assert "DistributedDataParallel - FusionSEDiscriminator" in log
    assert re.search(r"iter:\s+5, lr:.*l_g_total", log)
    assert re.search(r"Validation retina_val\s+# psnr", log)
    assert (experiment / "training_states" / "6.state").exists()
    assert (experiment / "models" / "net_g_latest.pth").exists()


def test_missing_vgg_weights_end_the_run_with_the_message(pairs_x4, tmp_path, capsys):
    """A user without the VGG19 file gets one message naming it (exit 2), not a traceback (in this process: the
    command's status and what it printed)."""
    options = tiny_gan_options(pairs_x4, "no_vgg", total_iter=2, checkpoint_every=2, val_every=2)
    missing = tmp_path / "weights" / "vgg19-dcbb9e9d.pth"
    options["train"]["fusion_opt"]["vgg_weights_path"] = str(missing)
    path = write_options(options, tmp_path / "no_vgg.yml")
    assert run_in_process("medsr_se.train", ["-opt", str(path)], tmp_path) == 2
    err = capsys.readouterr().err
    assert f"error: vgg_weights_path: no file at {missing}" in err
    assert "Traceback" not in err
