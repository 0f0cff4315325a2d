"""The benchmark scripts' --quick modes run (no timing assertions: numbers go to BENCHMARKS.md)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO_ROOT, run_python


@pytest.mark.parametrize("script", ["train_step.py", "gan_iteration.py", "quality.py", "prepare_speed.py",
                                    "inference.py", "train_memory.py", "startup.py"])
def test_quick_mode_runs_and_reports(script, tmp_path):
    out = tmp_path / "report.json"
    extra = ["--scales", "4", "8"] if script in ("train_step.py", "train_memory.py") else []
    run = run_python([str(REPO_ROOT / "benchmarks" / script), "--quick", "--out", str(out), *extra], cwd=tmp_path,
                     timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == script.removesuffix(".py") and report["date"]
