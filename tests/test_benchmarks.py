"""The benchmark scripts' --quick modes run and report numbers that can be right: times and rates finite and
positive, ratios equal to the ratio of the reported parts, counts equal to what was asked (no thresholds on speed:
those numbers go to BENCHMARKS.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, run_python


def positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def check_train_step(report: dict) -> None:
    assert [row["scale"] for row in report["rows"]] == [4, 8]
    for row in report["rows"]:
        assert positive(row["SEEDSR_s"]) and positive(row["EDSR_s"])
        assert row["SEEDSR_over_EDSR"] == pytest.approx(row["SEEDSR_s"] / row["EDSR_s"])
    x4 = report["rows"][0]
    assert x4["RRDBNet_over_SEEDSR"] == pytest.approx(x4["RRDBNet_s"] / x4["SEEDSR_s"])


def check_gan_iteration(report: dict) -> None:
    assert report["batch"] == 1 and report["gt_size"] == 128  # the quick sizes
    seconds = report["seconds"]
    assert set(seconds) == {"RelativisticGANModel", "ESRGANModel", "perceptual_ours", "perceptual_esrgan"}
    assert all(positive(value) for value in seconds.values())
    assert report["speedup_vs_esrgan"] == pytest.approx(seconds["ESRGANModel"] / seconds["RelativisticGANModel"])
    gflops = report["gflops_per_iteration"]
    assert all(positive(model["total"]) for model in gflops.values())
    assert report["flop_ratio_esrgan_over_ours"] == pytest.approx(gflops["ESRGANModel"]["total"]
                                                                  / gflops["RelativisticGANModel"]["total"])


def check_prepare_speed(report: dict) -> None:
    assert report["images"] == 6 and positive(report["seconds"])


def check_inference(report: dict) -> None:
    cases = sorted((row["arch"], row["scale"], row["tile"]) for row in report["rows"])
    assert cases == [("EDSR", 4, 0), ("SEEDSR", 4, 0), ("SEEDSR", 4, 16)]
    for row in report["rows"]:
        assert positive(row["seconds"])
        assert 50 < row["peak_rss_mib"] < 16 * 1024  # a process with torch loaded, not a unit mix-up


def check_train_memory(report: dict) -> None:
    from basicsr.archs import build_network

    from medsr_se.utils.options import load_recipe

    (row,) = report["rows"]
    assert row["scale"] == 4 and row["batch"] == 2 and row["gt_size"] == 64  # the quick sizes
    assert positive(row["process_peak_mib"]) and positive(row["cpu_iteration_seconds"])
    assert 0 <= row["iteration_mib"] <= row["process_peak_mib"]
    recipe = load_recipe("x4")
    g = build_network({**recipe["network_g"], "num_feat": 8, "num_block": 1})
    d = build_network({**recipe["network_d"], "num_feat": 8})
    assert row["g_plus_d_parameters"] == sum(p.numel() for net in (g, d) for p in net.parameters())


def check_startup(report: dict) -> None:
    assert set(report["median_ms"]) == {"hook on", "hook off"}
    assert all(positive(value) for value in report["median_ms"].values())


def check_loader(report: dict) -> None:
    (row,) = report["rows"]
    assert row["scale"] == 4 and row["workers"] == 2 and 1 <= row["batches_timed"] <= 3
    assert positive(row["loader_samples_per_s"]) and positive(row["demand_samples_per_s"])
    assert row["demand_samples_per_s"] == pytest.approx(row["batch"] / row["step_seconds"])
    assert row["loader_over_demand"] == pytest.approx(row["loader_samples_per_s"] / row["demand_samples_per_s"])


def check_precision(report: dict) -> None:
    speed = report["speed"]
    assert positive(speed["gan_bf16_speedup_over_fp32"])
    assert speed["gan_bf16_speedup_over_fp32"] == pytest.approx(speed["seconds"]["gan_fp32"]
                                                                / speed["seconds"]["gan_bf16"])
    gan = report["gan_bf16"]
    assert gan["gan_iterations"] == 2 and gan["logged_values"] > 0 and gan["non_finite_values"] == 0
    assert 25 < report["inference"]["psnr_bf16_vs_fp32_output"] < float("inf")  # close to fp32, not equal


CHECKS = {"train_step.py": check_train_step, "gan_iteration.py": check_gan_iteration,
          "prepare_speed.py": check_prepare_speed, "inference.py": check_inference,
          "train_memory.py": check_train_memory, "startup.py": check_startup, "loader.py": check_loader,
          "precision.py": check_precision}


QUICK_SCRIPTS = ["train_step.py", "gan_iteration.py", "quality.py", "prepare_speed.py", "inference.py",
                 "train_memory.py", "startup.py", "loader.py", "precision.py", "ablation.py", "discriminator.py",
                 "throughplane.py", "baselines.py"]
EXTRA_ARGUMENTS = {"train_step.py": "--scales 4 8", "train_memory.py": "--scales 4", "loader.py": "--scales 4",
                   "quality.py": "--models seedsr_skip seedsr_gan"}


@pytest.fixture(scope="module")
def quick_reports(tmp_path_factory) -> Path:
    """Every script's --quick run, all in one process (tests/quick_benchmarks.py: one interpreter start-up, not
    one per script); the folder holds ``<script>.json`` and ``<script>.status``."""
    folder = tmp_path_factory.mktemp("quick_benchmarks")
    specs = [f"{script} {EXTRA_ARGUMENTS.get(script, '')}".strip() for script in QUICK_SCRIPTS]
    run = run_python([str(REPO_ROOT / "tests" / "quick_benchmarks.py"), str(folder), *specs], cwd=folder,
                     timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    return folder


def quick_report(folder: Path, script: str) -> dict:
    status = (folder / f"{script}.status").read_text()
    assert status == "ok", f"{script} --quick failed:\n{status[-3000:]}"
    return json.loads((folder / f"{script}.json").read_text())


@pytest.mark.parametrize("script", QUICK_SCRIPTS[:11])
def test_quick_mode_runs_and_reports(script, quick_reports):
    report = quick_report(quick_reports, script)
    assert report["benchmark"] == script.removesuffix(".py") and report["date"]
    CHECKS.get(script, lambda report: None)(report)
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


def test_throughplane_quick_mode_reports_every_method(quick_reports):
    """benchmarks/throughplane.py --quick: r = 4, one seed; each method's PSNR / SSIM (whole and foreground) can be
    right (finite, SSIM at most 1), the seed summary is that one run, and the command's time is positive."""
    report = quick_report(quick_reports, "throughplane.py")
    assert report["benchmark"] == "throughplane" and report["seeds"] == 1 and set(report["rows"]) == {"x4"}
    row = report["rows"]["x4"]
    assert row["thick_slices"] == 25 // 4
    (selfsr_run,) = row["selfsr"]["runs"]
    for result in (row["cubic"], row["linear"], selfsr_run):
        assert all(math.isfinite(result[key]) for key in ("psnr", "psnr_fg", "ssim", "ssim_fg"))
        assert 0 < result["ssim"] <= 1 and 0 < result["ssim_fg"] <= 1
    assert positive(selfsr_run["seconds"])
    assert row["selfsr"]["summary"]["psnr"] == {"mean": selfsr_run["psnr"], "std": 0.0}


def test_baselines_quick_runs_every_method_at_equal_budget(quick_reports):
    """benchmarks/baselines.py --quick: one row per method, trained budget / calibrated cost iterations, the GAN
    rows from their L1 stage, every metric the issue lists."""
    report = quick_report(quick_reports, "baselines.py")
    assert report["benchmark"] == "baselines" and report["seeds"] == [0]
    rows, costs = report["x4"]["rows"], report["calibration_cpu_seconds_per_iteration"]
    assert set(rows) == {"srcnn", "vdsr", "edsr", "srresnet", "srgan", "esrgan", "pgan", "seedsr"}
    for method, row in rows.items():
        share = report["gan_start"] if method in ("srgan", "esrgan", "pgan") else 1.0
        assert row["iterations"] == max(1, round(report["cpu_seconds"] * share / costs[f"x4 {method}"]))
        (single,) = row["runs"]
        assert set(single["metrics"]) == {"psnr", "ssim", "psnr_fov", "vessel_f1", "niqe", "lr_psnr"}
        assert all(math.isfinite(single["metrics"][c]) for c in ("psnr", "ssim", "psnr_fov", "lr_psnr"))
        if share < 1:
            assert single["gan_iterations"] >= 1 and "l1_metrics" in single and "ema_metrics" in single
    bicubic = report["x4"]["bicubic"]
    assert bicubic["lr_psnr"] < 58.9 and positive(bicubic["psnr"])


@pytest.mark.parametrize("scale", [4, 8])
def test_baselines_every_row_network_upscales_by_its_scale(scale):
    """The quick mode runs x4 only; every row of the full run (x4 and x8) must build and upscale by its scale
    (BasicSR's RRDBNet given scale 8 returns x4: the first full run died on it after 2 minutes of calibration)."""
    import sys

    import torch

    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        import baselines
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    args = baselines.parse_args(["--width", "4", "--depth", "4"])
    lr = torch.rand(1, 3, 5, 6)
    for method in args.methods:
        with torch.no_grad():
            output = baselines.build(method, scale, args, seed=0)(lr)
        assert tuple(output.shape) == (1, 3, 5 * scale, 6 * scale), method


def test_baselines_table_from_a_saved_report(quick_reports, capsys):
    """``baselines.py --table REPORT`` prints the saved run's table without training: bicubic and one row per
    method, the GAN rows' iterations as L1 + GAN, and the CPU seconds each seed trained (from the report)."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        import baselines
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    assert baselines.main(["--table", str(quick_reports / "baselines.py.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines[3:]}
    report = quick_report(quick_reports, "baselines.py")
    methods = report["x4"]["rows"]
    assert set(rows) == {"bicubic", *methods, *(f"{m}, its L1 stage" for m in ("srgan", "esrgan", "pgan"))}
    run = report["x4"]["rows"]["srgan"]["runs"][0]
    assert rows["srgan"][1] == f"{run['iterations']} + {run['gan_iterations']}"
    assert rows["srgan"][2] == f"{run['cpu_seconds'] + run['gan_cpu_seconds']:.0f}"
