"""The benchmark scripts' --quick modes run (no timing assertions: numbers go to BENCHMARKS.md)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import REPO_ROOT, run_python


@pytest.mark.parametrize("script", ["train_step.py", "gan_iteration.py", "quality.py", "prepare_speed.py",
                                    "inference.py", "train_memory.py", "startup.py", "loader.py", "precision.py",
                                    "ablation.py", "discriminator.py"])
def test_quick_mode_runs_and_reports(script, tmp_path):
    out = tmp_path / "report.json"
    extra = {"train_step.py": ["--scales", "4", "8"], "train_memory.py": ["--scales", "4", "8"],
             "loader.py": ["--scales", "4"], "quality.py": ["--models", "seedsr_skip", "seedsr_gan"]}.get(script, [])
    run = run_python([str(REPO_ROOT / "benchmarks" / script), "--quick", "--out", str(out), *extra], cwd=tmp_path,
                     timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == script.removesuffix(".py") and report["date"]
    if script == "loader.py":
        row = report["rows"][0]
        assert row["loader_samples_per_s"] > 0 and row["demand_samples_per_s"] > 0
    if script == "precision.py":
        assert report["speed"]["gan_bf16_speedup_over_fp32"] > 0 and report["gan_bf16"]["non_finite_values"] >= 0
        assert "psnr_bf16_vs_fp32_output" in report["inference"]
    if script == "quality.py":
        gan = report["results"]["seedsr_gan"]
        assert gan["gan_iterations"] >= 1 and gan["vgg"] == "random" and "ema_metrics" in gan
    if script == "discriminator.py":
        records = report["results"]["FusionSE, se: improved"][0]["records"]
        assert [r["iteration"] for r in records] == [0, 2, 4] and 0 <= records[-1]["pairs_ranked"] <= 1
        assert report["results"]["FusionSE without BN (0.1.x)"][0]["initial_spread"] < 1e-3
    if script == "ablation.py":
        rows = report["x4"]["rows"]
        assert len(rows) == 7 and all(len(row["runs"]) == 2 for row in rows.values())
        assert all(len(row["summary"]["vessel_f1"]) == 2 for row in rows.values())  # mean and std
        assert set(report["gan_x4"]["rows"]) == {"FusionSEDiscriminator + FusionLoss (recipe)",
                                                 "VGGStyleDiscriminator + FusionLoss",
                                                 "FusionSEDiscriminator + ESRGAN loss"}
        plain = rows["SEEDSR + skip, se: plain"]["runs"][0]["profile_init"]
        assert len(plain["feature_magnitude"]) == report["depth"] and max(plain["se_scale"]) < 1


def test_ablation_edsr_skip_control_starts_as_bicubic():
    """The control of claim 1 starts where SEEDSR with the skip starts: the bicubic image, exactly."""
    import sys

    import torch

    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        import ablation
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    x = torch.rand(1, 3, 8, 8)
    for row in ("EDSR + bicubic skip", "SEEDSR + skip, se: improved"):
        net = ablation.build(row, 4, 8, 2, seed=0)
        torch.testing.assert_close(net(x), ablation.bicubic_upsample(x, 4), atol=1e-6, rtol=0)
