"""The benchmark scripts' --quick modes run (no timing assertions: numbers go to BENCHMARKS.md)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import REPO_ROOT, run_python


@pytest.mark.parametrize("script", ["train_step.py", "gan_iteration.py", "quality.py", "prepare_speed.py",
                                    "inference.py", "train_memory.py", "startup.py", "loader.py", "precision.py"])
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
