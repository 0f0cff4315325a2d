"""The benchmark scripts' --quick modes run and report numbers that can be right: times and rates finite and
positive, ratios equal to the ratio of the reported parts, counts equal to what was asked (no thresholds on speed:
those numbers go to BENCHMARKS.md)."""

from __future__ import annotations

import ast
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


CHECKS = {"train_step": check_train_step, "gan_iteration": check_gan_iteration, "prepare_speed": check_prepare_speed,
          "inference": check_inference, "train_memory": check_train_memory, "startup": check_startup,
          "loader": check_loader, "precision": check_precision}


# the scripts, as modules of the benchmarks package (python -m benchmarks.NAME)
QUICK_SCRIPTS = ["train_step", "gan_iteration", "quality", "prepare_speed", "inference", "train_memory", "startup",
                 "loader", "precision", "ablation", "discriminator", "throughplane", "baselines"]
EXTRA_ARGUMENTS = {"train_step": "--scales 4 8", "train_memory": "--scales 4", "loader": "--scales 4",
                   "quality": "--models seedsr_skip seedsr_gan"}


@pytest.fixture(scope="module")
def quick_reports(tmp_path_factory) -> Path:
    """Every script's --quick run, all in one process (tests/quick_benchmarks.py: one interpreter start-up, not
    one per script); the folder holds ``<name>.json`` and ``<name>.status``."""
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


@pytest.mark.slow  # every benchmark's --quick mode: trainings and subprocess pipelines
@pytest.mark.parametrize("script", QUICK_SCRIPTS[:11])
def test_quick_mode_runs_and_reports(script, quick_reports):
    report = quick_report(quick_reports, script)
    assert report["benchmark"] == script and report["date"]
    CHECKS.get(script, lambda report: None)(report)
    if script == "quality":
        gan = report["results"]["seedsr_gan"]
        assert gan["gan_iterations"] >= 1 and gan["vgg"] == "random" and "ema_metrics" in gan
    if script == "discriminator":
        records = report["results"]["FusionSE, se: improved"][0]["records"]
        assert [r["iteration"] for r in records] == [0, 2, 4] and 0 <= records[-1]["pairs_ranked"] <= 1
        assert report["results"]["FusionSE without BN (0.1.x)"][0]["initial_spread"] < 1e-3
    if script == "ablation":
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
    import torch

    from benchmarks import ablation

    x = torch.rand(1, 3, 8, 8)
    for row in ("EDSR + bicubic skip", "SEEDSR + skip, se: improved"):
        net = ablation.build(row, 4, 8, 2, seed=0)
        torch.testing.assert_close(net(x), ablation.bicubic_upsample(x, 4), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_throughplane_quick_mode_reports_every_method(quick_reports):
    """python -m benchmarks.throughplane --quick: r = 4, one seed; each method's PSNR / SSIM (whole and foreground)
    can be right (finite, SSIM at most 1), the seed summary is that one run, and the command's time is positive."""
    report = quick_report(quick_reports, "throughplane")
    assert report["benchmark"] == "throughplane" and report["seeds"] == 1 and set(report["rows"]) == {"x4"}
    row = report["rows"]["x4"]
    assert row["thick_slices"] == 25 // 4
    (selfsr_run,) = row["selfsr"]["runs"]
    for result in (row["cubic"], row["linear"], selfsr_run):
        assert all(math.isfinite(result[key]) for key in ("psnr", "psnr_fg", "ssim", "ssim_fg"))
        assert 0 < result["ssim"] <= 1 and 0 < result["ssim_fg"] <= 1
    assert positive(selfsr_run["seconds"])
    assert row["selfsr"]["summary"]["psnr"] == {"mean": selfsr_run["psnr"], "std": 0.0}


@pytest.mark.slow
def test_baselines_quick_runs_every_method_at_equal_budget(quick_reports):
    """python -m benchmarks.baselines --quick: one row per method, trained budget / calibrated cost iterations, the GAN
    rows from their L1 stage, every metric the issue lists."""
    report = quick_report(quick_reports, "baselines")
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
    import torch

    from benchmarks import baselines

    args = baselines.parse_args(["--width", "4", "--depth", "4"])
    lr = torch.rand(1, 3, 5, 6)
    for method in args.methods:
        with torch.no_grad():
            output = baselines.build(method, scale, args, seed=0)(lr)
        assert tuple(output.shape) == (1, 3, 5 * scale, 6 * scale), method


@pytest.mark.slow
def test_baselines_table_from_a_saved_report(quick_reports, capsys):
    """``python -m benchmarks.baselines --table REPORT`` prints the saved run's table without training: bicubic and
    one row per method, the GAN rows' iterations as L1 + GAN, and the CPU seconds each seed trained (from the
    report)."""
    from benchmarks import baselines

    assert baselines.main(["--table", str(quick_reports / "baselines.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines[3:]}
    report = quick_report(quick_reports, "baselines")
    methods = report["x4"]["rows"]
    assert set(rows) == {"bicubic", *methods, *(f"{m}, its L1 stage" for m in ("srgan", "esrgan", "pgan"))}
    run = report["x4"]["rows"]["srgan"]["runs"][0]
    assert rows["srgan"][1] == f"{run['iterations']} + {run['gan_iterations']}"
    assert rows["srgan"][2] == f"{run['cpu_seconds'] + run['gan_cpu_seconds']:.0f}"


BENCHMARKS = REPO_ROOT / "benchmarks"


def absolute_imports(node: ast.AST, package: str) -> list[str]:
    """The modules an ``import`` / ``from ... import`` statement names, relative ones resolved against ``package``
    (``from . import quality`` in benchmarks/x.py -> ``benchmarks.quality``); other nodes: none."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1] if node.level else [])
    module = ".".join(filter(None, [base, node.module or ""]))
    return [module] + [f"{module}.{alias.name}" for alias in node.names]


def layout_breaks(path: Path, root: Path = BENCHMARKS) -> list[str]:
    """What a file under ``root`` (a copy of benchmarks/) must not do, read from its syntax tree: use ``sys.path``
    (edit it or read it), import ``tests``, import a script (``benchmarks.NAME`` or, through a ``sys.path`` edit, a
    bare ``NAME``, NAME a file of benchmarks/ or benchmarks/lib/); only ``benchmarks.lib`` is shared."""
    relative = path.relative_to(root)
    package = ".".join(["benchmarks", *relative.parent.parts])
    local_names = {p.stem for p in (*root.glob("*.py"), *root.glob("lib/*.py"))} - {"__init__"}
    scripts = {p.stem for p in root.glob("*.py")} - {"__init__"}
    breaks = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        line = f"{relative}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (node.value.id, node.attr) == (
                "sys", "path"):
            breaks.append(f"{line}: sys.path")
        if isinstance(node, ast.ImportFrom) and node.module == "sys" and any(a.name == "path" for a in node.names):
            breaks.append(f"{line}: from sys import path")
        for module in absolute_imports(node, package):
            parts = module.split(".")
            if parts[0] == "tests":
                breaks.append(f"{line}: imports {module}")
            elif parts[0] in local_names and (isinstance(node, ast.Import) or not node.level):
                breaks.append(f"{line}: imports {module} by a bare name (a sys.path edit)")
            elif parts[0] == "benchmarks" and len(parts) > 1 and parts[1] in scripts:
                breaks.append(f"{line}: imports the script {'.'.join(parts[:2])}")
    return sorted(set(breaks))


def test_benchmarks_share_code_through_their_library_only():
    """benchmarks/ is a package run as ``python -m benchmarks.NAME``: no file edits sys.path, imports from tests/,
    or imports another script (what the scripts share lives in benchmarks/lib/)."""
    files = sorted(BENCHMARKS.rglob("*.py"))
    assert BENCHMARKS / "__init__.py" in files and BENCHMARKS / "lib" / "__init__.py" in files
    assert [b for path in files for b in layout_breaks(path)] == []


@pytest.mark.parametrize("line, found", [
    ("import tests", "imports tests"),
    ("from tests.helpers import REPO_ROOT", "imports tests.helpers"),
    ("import sys\nsys.path.insert(0, 'x')", "sys.path"),
    ("from sys import path", "from sys import path"),
    ("from benchmarks import quality", "imports the script benchmarks.quality"),
    ("from benchmarks.quality import evaluate", "imports the script benchmarks.quality"),
    ("from . import quality", "imports the script benchmarks.quality"),
    ("from quality import evaluate", "bare name"),
])
def test_layout_check_catches_a_deliberate_break(tmp_path, line, found):
    """The check above is not vacuous: a copy of benchmarks/ with one bad line added to a script fails it."""
    import shutil

    copy = tmp_path / "benchmarks"
    shutil.copytree(BENCHMARKS, copy, ignore=shutil.ignore_patterns("__pycache__", "results"))
    script = copy / "startup.py"
    assert layout_breaks(script, copy) == []
    script.write_text(script.read_text() + "\n" + line + "\n")
    assert any(found in b for b in layout_breaks(script, copy))
