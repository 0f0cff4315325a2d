"""The benchmark scripts' --quick modes run and report numbers that can be right: times and rates finite and
positive, ratios equal to the ratio of the reported parts, counts equal to what was asked (no thresholds on speed:
those numbers go to BENCHMARKS.md)."""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import numpy as np
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
                 "loader", "precision", "ablation", "discriminator", "throughplane", "baselines", "selfsr_speed"]
EXTRA_ARGUMENTS = {"train_step": "--scales 4 8", "train_memory": "--scales 4", "loader": "--scales 4",
                   "quality": "--models seedsr_skip seedsr_gan",
                   "throughplane": "--profiles nogap gap --noise 0.03 --precision fp32 --se none",
                   "selfsr_speed": "--variants recipe workers-1 workers-0 fp32 bf16"}


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


THROUGHPLANE_QUICK_CONFIGS = ["x4 axis 2 nogap noise 0.03", "x4 axis 2 gap noise 0.03"]


@pytest.mark.slow
def test_throughplane_quick_mode_reports_every_method(quick_reports):
    """python -m benchmarks.throughplane --quick (both profiles, with noise; seconds): nibabel's anatomical.nii,
    r = 4 along z; per configuration a cubic, a linear and a medsr-selfsr row, their metrics finite, each gain the
    difference to cubic's row, the thickness medsr-selfsr used the one it assumes (the spacing: not told), the noise
    sigma 3 % of the head's mean, the precision and SE blocks those --precision and --se asked for."""
    report = quick_report(quick_reports, "throughplane")
    assert report["benchmark"] == "throughplane" and report["complete"] and report["volume"] == "anatomical"
    assert report["seeds"] == 1 and report["iterations"] == 10 and not report["tell_thickness"]
    assert [c["name"] for c in report["configs"]] == THROUGHPLANE_QUICK_CONFIGS
    for config in report["configs"]:
        assert config["truth_shape"] == [33, 41, 24] and config["thick_shape"] == [33, 41, 6]  # 25 cut to 4·6
        assert config["slice_spacing_mm"] == 8.0 and config["fwhm_mm"] == (8.0 if config["profile"] == "nogap" else 4.8)
        assert config["rician_sigma"] == pytest.approx(config["noise"] * report["head_mean"])
        assert config["noise"] == 0.03 and 20 < config["noise_lr_psnr"] < 60
        rows = {row["method"]: row for row in report["rows"] if row["config"] == config["name"]}
        assert list(rows) == ["cubic", "linear", "selfsr"]
        for row in rows.values():
            assert all(math.isfinite(row[m]) for m in ("psnr", "ssim", "lr_psnr")) and 0 < row["ssim"] <= 1
            assert row["seconds"] >= 0
            for m in ("psnr", "ssim", "lr_psnr"):
                assert row.get(f"gain_{m}", 0.0) == pytest.approx(row[m] - rows["cubic"][m])
        assert positive(rows["selfsr"]["seconds"]) and rows["selfsr"]["iterations"] == 10
        assert rows["selfsr"]["slice_thickness_mm"] == 8.0
        assert rows["selfsr"]["thickness_source"].startswith("assumed = slice spacing")
        assert rows["selfsr"]["precision"] == "fp32" and report["precision"] == "fp32"  # --precision reached it
        assert rows["selfsr"]["se"] == "none" and report["se"] == "none"  # and --se (the options file it trained by)


@pytest.mark.slow
def test_throughplane_table_from_a_saved_quick_report(quick_reports, capsys):
    """``python -m benchmarks.throughplane --table REPORT``: one markdown line per row of the saved report, its
    numbers those of the row (2 decimals, SSIM 4), cubic's gains blank."""
    from benchmarks import throughplane

    assert throughplane.main(["--table", str(quick_reports / "throughplane.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("anatomical 33 x 41 x 25 voxels of 2 mm; medsr-selfsr 10 iterations")
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[4:]]
    report = quick_report(quick_reports, "throughplane")
    assert len(cells) == len(report["rows"]) == 3 * len(THROUGHPLANE_QUICK_CONFIGS)
    for line, row in zip(cells, report["rows"]):
        assert line[:2] == [row["config"], row["method"]]
        assert line[2:6] == [f"{row['psnr']:.2f}", f"{row['ssim']:.4f}", f"{row['lr_psnr']:.2f}",
                             f"{row['lr_psnr_clean']:.2f}"]
        assert line[7] == ("–" if row["method"] == "cubic" else f"{row['gain_psnr']:+.2f}")


def gaussian_weight(offset: np.ndarray, fwhm: float) -> np.ndarray:
    return np.exp(-0.5 * (offset / (fwhm / (2 * np.sqrt(2 * np.log(2))))) ** 2)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("r", [3, 4, 6])
def test_throughplane_thick_slice_j_lies_at_r_j_plus_half_r_minus_1(tmp_path, axis, r):
    """The simulation of a one-hot truth (voxel p along ``axis``): thick slice j holds the normalised Gaussian weight
    of p seen from r·j + (r − 1)/2 (numpy oracle), and the written NIfTI puts slice j where the truth has voxel
    r·j + (r − 1)/2 (nibabel's apply_affine on an oblique affine); nothing but the NIfTI is written (no sidecar: the
    thickness is not told)."""
    import nibabel
    from nibabel.affines import apply_affine

    from benchmarks import throughplane as bench

    shape = [3, 4, 2]
    shape[axis] = 8 * r
    truth = np.zeros(shape, np.float32)
    p = 4 * r + 1
    index = [1, 2, 1]
    index[axis] = p
    truth[tuple(index)] = 1.0
    rotation = np.array([[0.8, -0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]]) * 1.5
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = rotation, [10.0, -20.0, 5.0]
    gt = bench.GroundTruth(truth, affine, 1.5, "one-hot", truth.shape, None)
    case = bench.make_case(gt, bench.Config(r, axis, "nogap", 0.0), tmp_path, 0)
    centres = r * np.arange(8) + (r - 1) / 2
    everywhere = np.arange(-200, 200)
    expected = np.array([gaussian_weight(p - c, r) / gaussian_weight(everywhere - c, r).sum() for c in centres])
    image = nibabel.load(str(case.path))
    thick = np.asarray(image.dataobj)
    index[axis] = slice(None)
    np.testing.assert_allclose(thick[tuple(index)], expected, atol=1e-5)
    others = thick.copy()
    others[tuple(index)] = 0
    assert not others.any()  # nothing outside that column
    for j in range(8):
        voxel = [0.0, 0.0, 0.0]
        voxel[axis] = j
        truth_voxel = list(voxel)
        truth_voxel[axis] = r * j + (r - 1) / 2
        np.testing.assert_allclose(apply_affine(image.affine, voxel), apply_affine(affine, truth_voxel), atol=1e-5)
    assert image.header.get_zooms()[axis] == pytest.approx(1.5 * r)
    assert [f.name for f in tmp_path.iterdir()] == [case.path.name]


@pytest.mark.parametrize("profile, fwhm", [("gap", 0.6 * 6), ("nogap", 6.0), ("overlap", 1.2 * 6)])
def test_throughplane_slice_profile_has_the_fwhm_asked(profile, fwhm):
    """The response of one thick slice (r = 6) to a one-hot truth at every position, fitted by a Gaussian
    (scipy's curve_fit): its FWHM is 0.6 x the spacing for "gap", the spacing for "nogap", 1.2 x for "overlap",
    centred on r·j + 2.5."""
    from scipy.optimize import curve_fit

    from benchmarks.lib import thick_slices as ts

    r, n = 6, 36
    truth = np.zeros((n, n, 1), np.float32)
    truth[np.arange(n), np.arange(n), 0] = 1.0  # column p holds a one-hot at p
    response = ts.simulate(truth, 0, r, ts.fwhm_pixels(profile, r))[3, :, 0]  # thick slice 3 seen by each p

    def gaussian(x, peak, centre, sigma):
        return peak * np.exp(-0.5 * ((x - centre) / sigma) ** 2)

    (_, centre, sigma), _ = curve_fit(gaussian, np.arange(n, dtype=float), response, p0=[response.max(), 20, 2])
    assert 2 * np.sqrt(2 * np.log(2)) * abs(sigma) == pytest.approx(fwhm, rel=1e-3)
    assert centre == pytest.approx(r * 3 + (r - 1) / 2, abs=1e-3)


def test_throughplane_lr_consistency_of_cubic_matches_a_numpy_reference():
    """LR-PSNR of the truth's own cubic interpolation: the result degraded again (an explicit numpy matrix of
    Gaussian weights, borders repeated), against the input slices over the head on the thick grid."""
    from scipy import ndimage

    from benchmarks.lib import thick_slices as ts

    rng = np.random.default_rng(3)
    truth = ndimage.gaussian_filter(rng.random((7, 6, 32)), 1.5).astype(np.float32) * 100
    r, fwhm, axis = 4, 2.4, 2
    thick = ts.simulate(truth, axis, r, fwhm)
    cubic = ts.interpolate(thick, axis, r, 3)
    lr_mask = thick > np.median(thick)
    data_range = float(truth.max() - truth.min())
    n = truth.shape[axis]
    weights = np.zeros((n // r, n))
    for j in range(n // r):
        centre = r * j + (r - 1) / 2
        taps = np.arange(-40, n + 40)
        np.add.at(weights[j], np.clip(taps, 0, n - 1), gaussian_weight(taps - centre, fwhm))
    weights /= weights.sum(axis=1, keepdims=True)
    degraded = np.einsum("jk,abk->abj", weights, cubic.astype(np.float64))
    error = (degraded - thick)[lr_mask]
    expected = 10 * np.log10(data_range**2 / np.mean(error**2))
    assert ts.lr_consistency(cubic, thick, lr_mask, axis, r, fwhm, data_range) == pytest.approx(expected, abs=1e-3)
    assert 20 < expected < 80  # cubic is not the inverse of the degradation, nor far from it


def test_throughplane_rician_noise_is_3_percent_of_the_head_mean(tmp_path):
    """The noise level: sigma = 0.03 x the mean of the voxels above 10 % of the maximum (numpy); far above sigma,
    Rician noise is close to Gaussian of that sigma; the same seed gives the same noise."""
    from benchmarks import throughplane as bench
    from benchmarks.lib import thick_slices as ts

    truth = np.zeros((40, 40, 24), np.float32)
    truth[4:36, 4:36, :] = 200.0
    truth[10:20, 10:20, :] = 100.0
    truth[0, 0, 0] = 15.0  # below 10 % of the maximum: not the head
    head_mean = truth[truth > 20.0].mean()
    gt = bench.GroundTruth(truth, np.eye(4), 1.0, "blocks", truth.shape, None)
    case = bench.make_case(gt, bench.Config(4, 2, "nogap", 0.03), tmp_path, 7)
    assert case.sigma == pytest.approx(0.03 * head_mean)
    inside = ts.simulate(truth, 2, 4, 4.0)[20:36, 20:36, 1:5]  # 200 everywhere
    noisy = case.thick[20:36, 20:36, 1:5]
    assert np.std(noisy - inside) == pytest.approx(case.sigma, rel=0.1)
    np.testing.assert_array_equal(ts.rician(inside, 5.0, 1), ts.rician(inside, 5.0, 1))


@pytest.mark.parametrize("tell", [False, True])
def test_throughplane_eclare_command_tells_the_relative_thickness_only_when_asked(tmp_path, tell):
    """run-eclare's command: the thick NIfTI, --n-patches, --gpu-id, --batch-size 128 (its README's), and with
    --tell-thickness the Gaussian profile and --relative-slice-thickness = the FWHM in in-plane voxels (ECLARE's
    README: thickness / in-plane spacing; 0.6 x 4 for "gap" at r = 4), never the mm; an option its --help does not
    list is the row's error, not a guess."""
    from benchmarks import throughplane as bench

    truth = np.ones((4, 4, 16), np.float32)
    case = bench.make_case(bench.GroundTruth(truth, np.diag([2.0, 2.0, 2.0, 1.0]), 2.0, "ones", truth.shape, None),
                           bench.Config(4, 2, "gap", 0.0), tmp_path, 0)
    args = bench.parse_args(["--eclare-patches", "64", *(["--tell-thickness"] if tell else [])])
    options = {"--in-fpath", "--out-dir", "--gpu-id", "--n-patches", "--batch-size", "--relative-slice-thickness",
               "--relative-slice-profile-type", "--suffix"}  # run-eclare 1.0.1's --help lists these (and more)
    command = bench.eclare_command(tmp_path / "venv", options, case, args, tmp_path / "out")
    pairs = dict(zip(command[1::2], command[2::2]))
    assert command[0] == str(tmp_path / "venv" / "bin" / "run-eclare")
    assert pairs == {"--in-fpath": str(case.path), "--out-dir": str(tmp_path / "out"), "--gpu-id": "-1",
                     "--n-patches": "64", "--batch-size": "128",
                     **({"--relative-slice-thickness": "2.4", "--relative-slice-profile-type": "gaussian"} if tell
                        else {})}
    with pytest.raises(RuntimeError, match="lists no --n-patches"):
        bench.eclare_command(tmp_path / "venv", options - {"--n-patches"}, case, args, tmp_path / "out")


@pytest.mark.parametrize("consistency", [False, True])
def test_throughplane_passes_data_consistency_to_selfsr_only_when_asked(tmp_path, consistency):
    """--data-consistency reaches medsr-selfsr's command line (and the report's table header says so); without it
    the command line is as before. The flag given is one medsr-selfsr's parser takes."""
    from benchmarks import throughplane as bench
    from medsr_se.cli import selfsr

    truth = np.ones((4, 4, 16), np.float32)
    case = bench.make_case(bench.GroundTruth(truth, np.diag([2.0, 2.0, 2.0, 1.0]), 2.0, "ones", truth.shape, None),
                           bench.Config(4, 2, "gap", 0.0), tmp_path, 0)
    args = bench.parse_args(["--data-consistency"] if consistency else [])
    arguments = bench.selfsr_arguments(case, args, 2.0, tmp_path / "recipe.yml", tmp_path / "out")
    assert arguments.count("--data-consistency") == int(consistency)
    assert selfsr.build_parser().parse_args(arguments).data_consistency is consistency
    report = {"volume": "ones", "shape": [4, 4, 16], "spacing_mm": 2.0, "iterations": 10, "seeds": 1, "rows": [],
              "data_consistency": args.data_consistency}
    assert ("--data-consistency" in bench.format_table(report).splitlines()[0]) is consistency


def test_throughplane_crop_is_the_head_box_with_its_margin_on_the_same_world_grid():
    """--crop: the box of the voxels above 10 % of the maximum, 2 voxels wider where the volume allows (the head
    touching a face is cut there), and the cropped affine puts voxel 0 where the full one has the box's corner
    (nibabel's apply_affine)."""
    from nibabel.affines import apply_affine

    from benchmarks.lib import thick_slices as ts
    from benchmarks.lib.head_cases import CROP_MARGIN

    values = np.full((30, 20, 25), 1.0, np.float32)  # background below 10 %
    values[5:12, 0:8, 10:25] = 100.0
    box = ts.bounding_box(ts.head_mask(values), CROP_MARGIN)
    assert box == [(3, 14), (0, 10), (8, 25)]
    affine = np.array([[0.0, -1.0, 0.0, 50.0], [1.2, 0.0, 0.0, -3.0], [0.0, 0.0, 0.9, 7.0], [0, 0, 0, 1]])
    cropped = ts.crop_affine(affine, box)
    for voxel in ([0, 0, 0], [2, 5, 7]):
        corner = np.add(voxel, [start for start, _ in box])
        np.testing.assert_allclose(apply_affine(cropped, voxel), apply_affine(affine, corner))


def test_throughplane_anatomical_1mm_volume_is_the_subject_on_a_1mm_grid_of_the_same_world():
    """--volume anatomical-1mm: 1 mm voxels, and the voxel at the world point of a voxel of nibabel's 2 mm
    anatomical.nii holds that voxel's value (a cubic B-spline passes through its samples)."""
    import nibabel
    from nibabel.affines import apply_affine

    from benchmarks.lib.head_cases import anatomical_path, load_ground_truth

    source = nibabel.load(str(anatomical_path()))
    values = np.asarray(source.dataobj, np.float32)
    gt = load_ground_truth("anatomical-1mm", crop=False)
    assert gt.spacing == 1.0 and gt.values.shape == (65, 81, 49)
    for voxel in ([10, 20, 12], [16, 30, 5], [25, 11, 20]):
        fine = apply_affine(np.linalg.inv(gt.affine), apply_affine(source.affine, voxel))
        index = tuple(np.round(fine).astype(int))
        np.testing.assert_allclose(fine, index, atol=1e-6)
        assert gt.values[index] == pytest.approx(values[tuple(voxel)], rel=1e-3, abs=1e-2)


@pytest.mark.parametrize("arguments, message", [
    (["--scales", "1"], "error: --scales 1:"),
    (["--noise", "-0.1"], "error: --noise -0.1:"),
    (["--iterations", "0"], "error: --iterations 0:"),
    (["--eclare-venv", "{tmp}/no_venv"], "error: --eclare-venv {tmp}/no_venv: no bin/run-eclare"),
    (["--out", "{tmp}"], "error: --out {tmp}: a folder"),
    (["--volume", "mni"], "error: --volume mni: nilearn is not installed"),
    (["--table", "{tmp}/missing.json"], "error: --table {tmp}/missing.json: cannot read"),
    (["--table", "{tmp}/other.json"], "error: --table {tmp}/other.json: not a report of this benchmark"),
])
def test_throughplane_bad_option_is_one_line_and_status_2(tmp_path, capsys, monkeypatch, arguments, message):
    """Each mistake: one ``error:`` line naming the option, status 2, before any work (no report written); nilearn
    missing is simulated (importlib.util.find_spec answering None)."""
    import importlib.util

    from benchmarks import throughplane as bench

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "nilearn"
                        else find_spec(name, *rest))
    (tmp_path / "other.json").write_text(json.dumps({"benchmark": "baselines"}))
    arguments = [a.format(tmp=tmp_path) for a in arguments]
    out = [] if "--out" in arguments or "--table" in arguments else ["--out", str(tmp_path / "report.json")]
    assert bench.main([*arguments, *out]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(message.format(tmp=tmp_path)) and "\n" not in error
    assert not (tmp_path / "report.json").exists()


@pytest.mark.slow
def test_baselines_quick_runs_every_method_at_equal_budget(quick_reports):
    """python -m benchmarks.baselines --quick: one row per method, trained budget / calibrated cost iterations, the GAN
    rows from their L1 stage, every metric the issue lists."""
    report = quick_report(quick_reports, "baselines")
    assert report["benchmark"] == "baselines" and report["seeds"] == [0]
    rows, costs = report["x4"]["rows"], report["calibration_cpu_seconds_per_iteration"]
    assert set(rows) == {"srcnn", "vdsr", "edsr", "srresnet", "srgan", "esrgan", "pgan", "seedsr",
                         "swinir", "hat", "dat", "drct", "atd"}
    for method in rows:  # every row's inference costs, measured before the training
        cost = report["inference_costs"][f"x4 {method}"]
        assert cost["parameters"] > 0 and positive(cost["gflops_per_mp"]) and positive(cost["s_per_image"])
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
    lr = torch.rand(1, 3, 9, 11)  # odd sides, as large as reflection to DAT's multiple of 16 needs
    for method in args.methods:
        with torch.no_grad():
            output = baselines.build(method, scale, args, seed=0).eval()(lr)  # DAT: BatchNorm on pooled maps
        assert tuple(output.shape) == (1, 3, 9 * scale, 11 * scale), method


@pytest.mark.slow
def test_baselines_table_from_a_saved_report(quick_reports, capsys):
    """``python -m benchmarks.baselines --table REPORT`` prints the saved run's table without training: bicubic and
    one row per method, the GAN rows' iterations as L1 + GAN, and the CPU seconds each seed trained (from the
    report)."""
    from benchmarks import baselines

    assert baselines.main(["--table", str(quick_reports / "baselines.json")]) == 0
    first_table = capsys.readouterr().out.strip().split("\n\n")[0]  # then the inference costs' table
    lines = first_table.splitlines()
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


def tiny_case(tmp_path):
    from benchmarks import throughplane as bench

    truth = np.ones((4, 4, 16), np.float32)
    return bench.make_case(bench.GroundTruth(truth, np.diag([2.0, 2.0, 2.0, 1.0]), 2.0, "ones", truth.shape, None),
                           bench.Config(4, 2, "gap", 0.0), tmp_path, 0)


@pytest.mark.parametrize("factor", [0.8, 1.27])
def test_throughplane_thickness_factor_tells_selfsr_that_multiple_of_the_truth(tmp_path, factor):
    """--tell-thickness --thickness-factor F: medsr-selfsr's parser reads F x the true thickness (tiny_case: a gap,
    FWHM 0.6 x r = 2.4 voxels of 2 mm = 4.8 mm); the factor is refused without --tell-thickness, at 0 or below, and
    --table with --summary is refused."""
    from benchmarks import throughplane as bench
    from medsr_se.cli import selfsr

    args = bench.parse_args(["--tell-thickness", "--thickness-factor", str(factor)])
    parsed = selfsr.build_parser().parse_args(bench.selfsr_arguments(tiny_case(tmp_path), args, 2.0,
                                                                     tmp_path / "r.yml", tmp_path / "out"))
    assert float(parsed.slice_thickness) == pytest.approx(4.8 * factor)
    for wrong in (["--thickness-factor", "0.8"], ["--tell-thickness", "--thickness-factor", "0"],
                  ["--table", "a.json", "--summary", "b.json"]):
        with pytest.raises(SystemExit):
            bench.parse_args(wrong)


@pytest.mark.parametrize("budget", [[], ["--iterations", "50"], ["--time", "90"], ["--default-budget"]])
def test_throughplane_gives_selfsr_the_budget_asked(tmp_path, budget):
    """--default-budget gives medsr-selfsr neither --iterations nor --time (its own default, as a user runs it);
    otherwise the benchmark's 300 iterations, or what was given. medsr-selfsr's parser takes the line."""
    from benchmarks import throughplane as bench
    from medsr_se.cli import selfsr

    args = bench.parse_args(budget)
    parsed = selfsr.build_parser().parse_args(bench.selfsr_arguments(tiny_case(tmp_path), args, 2.0,
                                                                     tmp_path / "r.yml", tmp_path / "out"))
    expected = {(): (300, None), ("--iterations", "50"): (50, None), ("--time", "90"): (None, "90.0"),
                ("--default-budget",): (None, None)}[tuple(budget)]
    assert (parsed.iterations, parsed.time) == expected
    with pytest.raises(SystemExit):
        bench.parse_args(["--default-budget", "--iterations", "10"])


@pytest.mark.slow  # quick benchmark runs (medsr-selfsr trained in this process)
def test_throughplane_resume_keeps_done_configurations_and_refuses_other_settings(tmp_path, capsys):
    """--resume: the configurations a report holds are kept (their rows too) and not run again; a report made with
    other settings (here another --lr-noise) is refused naming the setting, and nothing is run."""
    from benchmarks import throughplane as bench

    out = tmp_path / "report.json"
    args = bench.parse_args(["--quick", "--out", str(out)])
    bench.run(args)
    first = json.loads(out.read_text())
    assert [c["name"] for c in first["configs"]] == ["x4 axis 2 nogap noise 0"]
    again = bench.parse_args(["--quick", "--out", str(out), "--resume", "--profiles", "nogap", "gap"])
    second = bench.run(again)
    assert [c["name"] for c in second["configs"]] == ["x4 axis 2 nogap noise 0", "x4 axis 2 gap noise 0"]
    assert second["rows"][:3] == first["rows"]  # kept as they were, not run again
    assert "1 configuration(s) kept" in capsys.readouterr().err
    other = bench.parse_args(["--quick", "--out", str(out), "--resume", "--lr-noise", "0"])
    with pytest.raises(bench.UsageError, match="other settings.*lr_noise"):
        bench.run(other)
    unchanged = json.loads(out.read_text())
    assert (unchanged["configs"], unchanged["rows"]) == (json.loads(json.dumps(second["configs"])),
                                                         json.loads(json.dumps(second["rows"])))


def test_throughplane_rerun_selfsr_replaces_only_medsr_selfsr_rows(tmp_path):
    """--resume --rerun-selfsr: medsr-selfsr's row of each configuration chosen is run again (a new row: its own
    seconds), every other row is kept as it was, and configurations not chosen keep theirs too; without --resume it
    is refused."""
    from benchmarks import throughplane as bench

    out = tmp_path / "report.json"
    first = bench.run(bench.parse_args(["--quick", "--out", str(out), "--profiles", "nogap", "gap"]))
    first = json.loads(json.dumps(first["rows"]))
    again = bench.run(bench.parse_args(["--quick", "--out", str(out), "--resume", "--rerun-selfsr", "--profiles",
                                        "gap"]))
    rows = {(row["config"], row["method"]): row for row in again["rows"]}
    before = {(row["config"], row["method"]): row for row in first}
    assert rows.keys() == before.keys()
    changed = {key for key in rows if rows[key] != before[key]}
    assert changed == {("x4 axis 2 gap noise 0", "selfsr")}
    with pytest.raises(SystemExit):
        bench.parse_args(["--quick", "--out", str(out), "--rerun-selfsr"])


def test_throughplane_lr_consistency_clean_does_not_reward_keeping_the_noise(tmp_path):
    """With noise, LR-PSNR (against the noisy input) is highest for a result that keeps the noise: the truth itself
    scores about the noise's own PSNR there. LR-PSNR clean (against the slices before the noise) scores the truth far
    higher. Without noise the two are equal. Oracle: the noise's PSNR from the case (numpy)."""
    from benchmarks import throughplane as bench

    truth = np.zeros((40, 40, 24), np.float32)
    truth[4:36, 4:36, :] = 200.0
    truth[10:20, 10:20, :] = 100.0
    gt = bench.GroundTruth(truth, np.eye(4), 1.0, "blocks", truth.shape, None)
    noisy = bench.make_case(gt, bench.Config(4, 2, "nogap", 0.03), tmp_path, 7)
    scores = bench.evaluate(noisy.truth, noisy)
    assert scores["lr_psnr"] == pytest.approx(noisy.noise_lr_psnr, abs=1.0)
    assert scores["lr_psnr_clean"] > scores["lr_psnr"] + 15
    clean = bench.make_case(gt, bench.Config(4, 2, "nogap", 0.0), tmp_path, 7)
    scores = bench.evaluate(np.roll(clean.truth, 1, axis=0), clean)
    assert scores["lr_psnr_clean"] == scores["lr_psnr"]


FAKE_ECLARE = '''#!{python}
"""A stand-in for run-eclare: cubic B-spline along the slice axis onto the truth's grid, taking
FIXED + PER_PATCH * patches seconds (sleeping), its command line appended to calls.txt."""
import sys, time
from pathlib import Path
import nibabel, numpy as np
from scipy import ndimage
OPTIONS = ["--in-fpath", "--out-dir", "--gpu-id", "--n-patches", "--batch-size", "--relative-slice-thickness",
           "--relative-slice-profile-type"]
if "--help" in sys.argv:
    print(" ".join(OPTIONS)); sys.exit(0)
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
with open(Path(__file__).parent / "calls.txt", "a") as calls:
    calls.write(" ".join(sys.argv[1:]) + "\\n")
time.sleep(0.05 + 0.0002 * int(args["--n-patches"]))
image = nibabel.load(args["--in-fpath"])
zooms = image.header.get_zooms()[:3]
axis = int(np.argmax(zooms)); r = int(round(zooms[axis] / min(zooms)))
values = np.asarray(image.dataobj, np.float32)
result = ndimage.zoom(values, [r if a == axis else 1 for a in range(3)], order=3, grid_mode=True, mode="nearest")
affine = image.affine.copy()
affine[:, 3] = image.affine @ np.array([-(r - 1) / (2 * r) if a == axis else 0 for a in range(3)] + [1.0])
affine[:3, axis] /= r
out = Path(args["--out-dir"]); out.mkdir(parents=True, exist_ok=True)
name = Path(args["--in-fpath"]).name.removesuffix(".nii.gz")
nibabel.save(nibabel.Nifti1Image(result, affine), str(out / f"{{name}}_eclare.nii.gz"))
'''


def fake_eclare_venv(tmp_path):
    import stat
    import sys

    venv = tmp_path / "eclare_venv"
    (venv / "bin").mkdir(parents=True)
    script = venv / "bin" / "run-eclare"
    script.write_text(FAKE_ECLARE.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return venv


def test_throughplane_eclare_patches_for_a_time_are_whole_batches_that_fit():
    """fixed + per_patch · patches ≤ the time, patches a multiple of the batch (128), at least one batch."""
    from benchmarks import throughplane as bench

    cost = bench.EclareCost(100.0, 0.1, ((128, 112.8, 20.0), (1280, 228.0, 21.0)), "c")
    assert cost.patches_for(300.0) == 1920  # floor(200 / 12.8) = 15 batches
    assert 100 + 0.1 * 1920 <= 300 < 100 + 0.1 * (1920 + 128)
    assert cost.patches_for(50.0) == 128  # even one batch is over: one batch, its row says the seconds it took
    assert bench.EclareCost.from_json(cost.as_json()) == cost


def summary_report(path: Path, configs: dict[str, list[dict]], **settings) -> Path:
    """A saved throughplane report with ``configs`` {name: rows} (each row's config filled in)."""
    def entry(name: str) -> dict:
        words = name.split()
        return {"name": name, "r": int(words[0][1:]), "axis": int(words[2]), "profile": words[3],
                "noise": float(words[5])}

    rows = [{"config": name, **row} for name, config_rows in configs.items() for row in config_rows]
    path.write_text(json.dumps({"benchmark": "throughplane", "volume": "mni", "default_budget": True, **settings,
                                "configs": [entry(name) for name in configs], "rows": rows}))
    return path


def test_throughplane_summary_is_a_line_per_configuration_over_reports(tmp_path, capsys):
    """--summary A B: the configurations of both, by r, axis, profile and noise; each method's PSNR / SSIM as the
    reports hold them, "–" where a method was not run, and ours − ECLARE at the largest time factor worked out
    here; "error" where ECLARE's run failed. Reports run with other settings, or holding the same configuration,
    are refused in one line."""
    from benchmarks import throughplane as bench

    cubic = {"method": "cubic", "psnr": 25.0, "ssim": 0.8, "seconds": 1.0}
    ours = {"method": "selfsr", "psnr": 27.25, "ssim": 0.9, "seconds": 220.4, "gain_psnr": 2.25, "gain_ssim": 0.1}
    eclare4 = {"method": "eclare x4", "psnr": 26.5, "ssim": 0.875, "seconds": 800.0, "patches": 22272,
               "time_factor": 4.0}
    eclare1 = {"method": "eclare x1", "psnr": 15.0, "ssim": 0.3, "seconds": 201.0, "patches": 1152,
               "time_factor": 1.0}
    gap = summary_report(tmp_path / "gap.json", {"x6 axis 2 gap noise 0": [cubic, ours, eclare1, eclare4]})
    failed = {"method": "eclare x4", "error": "run-eclare wrote no *_eclare.nii.gz"}
    nogap = summary_report(tmp_path / "nogap.json", {"x6 axis 2 nogap noise 0.03": [cubic, ours, failed],
                                                     "x4 axis 1 nogap noise 0": [cubic]})
    assert bench.main(["--summary", str(gap), str(nogap)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "ECLARE x1" in lines[0] and "ours − ECLARE x4" in lines[0]
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| x4 axis 1 nogap noise 0", "| x6 axis 2 nogap noise 0.03", "| x6 axis 2 gap noise 0"]
    assert lines[2].endswith("| 25.00 / 0.8000 | – | – | – | – | – | – |")
    assert "| 27.25 / 0.9000 (220) | +2.25 / +0.100 | – | error | – |" in lines[3]  # a failed run is not hidden
    assert lines[4].endswith("| 1,152: 15.00 / 0.3000 (201) | 22,272: 26.50 / 0.8750 (800) | +0.75 dB / +0.025 |")

    told = summary_report(tmp_path / "told.json", {"x4 axis 0 gap noise 0": [cubic]}, tell_thickness=True)
    again = summary_report(tmp_path / "again.json", {"x6 axis 2 gap noise 0": [cubic]})
    for other, message in ((told, "run with other settings"), (again, "x6 axis 2 gap noise 0 is in an earlier")):
        assert bench.main(["--summary", str(gap), str(other)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --summary {other}: ") and message in err and len(err.splitlines()) == 1


def test_throughplane_eclare_cost_refitted_through_every_run():
    """EclareCost.with_run: the least-squares line through all runs, worked out by hand; a run on the line leaves
    it as it was. (On a Xeon the two short calibration runs said 0.029 s per patch and a 21,760-patch run took
    0.024: without the refit "4x our time" gave ECLARE 3.4x.)"""
    from benchmarks import throughplane as bench

    on_line = bench.EclareCost(100.0, 0.1, ((128, 112.8, 20.0), (1280, 228.0, 21.0)), "c").with_run(12800, 1380.0, 25)
    assert on_line.fixed_s == pytest.approx(100.0) and on_line.per_patch_s == pytest.approx(0.1)
    assert len(on_line.runs) == 3 and on_line.runs[-1] == (12800, 1380.0, 25)
    # runs (100, 30), (200, 40), (300, 56): mean (200, 42), slope 2600 / 20000 = 0.13, intercept 42 - 26 = 16
    refit = bench.EclareCost(0.0, 0.1, ((100, 30.0, 1.0), (200, 40.0, 1.0)), "c").with_run(300, 56.0, 1.0)
    assert refit.per_patch_s == pytest.approx(0.13) and refit.fixed_s == pytest.approx(16.0)
    assert bench.EclareCost.from_json(refit.as_json()) == refit


def test_throughplane_eclare_cost_from_another_report_refits_through_both(tmp_path, capsys):
    """--eclare-cost-from R: the cost line is refitted through this report's runs and R's (a run in both counted
    once), worked out by hand; R without a cost line is one error line naming it; without --eclare-match the option
    is refused."""
    from benchmarks import throughplane as bench
    from benchmarks.lib.reports import cpu

    own = bench.EclareCost(0.0, 0.1, ((100, 30.0, 1.0), (200, 40.0, 1.0)), "mine")
    other = summary_report(tmp_path / "other.json", {"x6 axis 2 nogap noise 0": []}, cpu=cpu(),
                           eclare_cost=bench.EclareCost(0.0, 0.2, ((200, 40.0, 1.0), (300, 56.0, 1.0)), "o").as_json())
    report = {"eclare_cost": own.as_json()}
    bench.cost_with_runs_from(report, bench.eclare_cost_from(other))
    refit = bench.EclareCost.from_json(report["eclare_cost"])
    # runs (100, 30), (200, 40), (300, 56): slope 2600 / 20000 = 0.13, intercept 42 - 26 = 16
    assert refit.per_patch_s == pytest.approx(0.13) and refit.fixed_s == pytest.approx(16.0)
    assert len(refit.runs) == 3 and refit.config == "mine"
    assert capsys.readouterr().err == ""  # the same CPU: nothing to say
    bare = summary_report(tmp_path / "bare.json", {"x6 axis 2 nogap noise 0": []})
    with pytest.raises(bench.UsageError, match=f"--eclare-cost-from {bare}: the report holds no ECLARE cost line"):
        bench.eclare_cost_from(bare)
    with pytest.raises(SystemExit):
        bench.parse_args(["--quick", "--eclare-cost-from", str(other)])
    assert "--eclare-cost-from: give it with --eclare-match" in capsys.readouterr().err


ANOTHER_CPU = {"model": "AMD EPYC 7B13", "cores": 2, "flags": ["avx2"]}
A_COST_LINE = {"fixed_s": 0.0, "per_patch_s": 0.2, "runs": [[200, 40.0, 1.0], [300, 56.0, 1.0]], "config": "o"}


def test_reports_name_the_cpu_as_lscpu_does():
    """Every benchmark report names its CPU: the model and flags lscpu prints (an independent reader of the CPU),
    the logical cores os.cpu_count() counts; the same model name has come with and without bfloat16 units."""
    import os
    import shutil
    import subprocess

    from benchmarks.lib.reports import SPEED_FLAGS, write_report

    assert shutil.which("lscpu"), "lscpu (util-linux) is the oracle of this test"
    printed = subprocess.run(["lscpu"], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}).stdout
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in printed.splitlines())}
    named = write_report("any", {"rows": []}, None)["cpu"]
    assert named["model"] == fields["Model name"]
    assert named["flags"] == [flag for flag in SPEED_FLAGS if flag in fields["Flags"].split()]
    assert named["cores"] == os.cpu_count()


def test_throughplane_seconds_measured_on_another_cpu_are_refused(tmp_path, capsys):
    """ECLARE's cost line from a report of another CPU (--eclare-cost-from), or a report of another CPU continued
    (--resume), is refused naming the option, the file and both CPUs: its seconds do not hold here (an EPYC's cost
    line would give ECLARE another multiple of our time on a Xeon). A report naming no CPU (written before reports
    did) is taken to be from this one, and a warning says so."""
    from benchmarks import throughplane as bench
    from benchmarks.lib.reports import cpu

    elsewhere = summary_report(tmp_path / "epyc.json", {"x4 axis 0 nogap noise 0": []}, eclare_cost=A_COST_LINE,
                               cpu=ANOTHER_CPU)
    expected = f"--eclare-cost-from {elsewhere}: measured on another CPU (AMD EPYC 7B13, 2 cores, avx2; this one: "
    with pytest.raises(bench.UsageError, match=re.escape(f"{expected}{cpu()['model']}, {cpu()['cores']} cores")):
        bench.eclare_cost_from(elsewhere)
    unnamed = summary_report(tmp_path / "old.json", {"x4 axis 0 nogap noise 0": []}, eclare_cost=A_COST_LINE)
    assert bench.eclare_cost_from(unnamed) == bench.EclareCost.from_json(A_COST_LINE)
    warning = capsys.readouterr().err
    assert warning.startswith(f"warning: --eclare-cost-from {unnamed} names no CPU") and "taken to be" in warning
    with pytest.raises(bench.UsageError, match=f"--resume {elsewhere}: measured on another CPU"):
        bench.earlier_report(elsewhere)
    assert bench.earlier_report(tmp_path / "not_yet.json") is None  # --resume into a new file: a fresh run


@pytest.mark.parametrize("option, content, message", [
    ("--eclare-cost-from", None, "cannot read a JSON report"),
    ("--eclare-cost-from", "#!/bin/sh\necho hi\n", "cannot read a JSON report"),
    ("--eclare-cost-from", {}, "the report holds no ECLARE cost line"),
    ("--eclare-cost-from", {"cpu": ANOTHER_CPU, "eclare_cost": {}}, "the report holds no ECLARE cost line"),
    ("--eclare-cost-from", {"cpu": ANOTHER_CPU, "eclare_cost": A_COST_LINE}, "measured on another CPU"),
    ("--eclare-cost-from", {"cpu": "x86_64", "eclare_cost": A_COST_LINE}, "measured on another CPU ('x86_64'"),
    ("--resume", "#!/bin/sh\necho hi\n", "cannot read a JSON report"),
    ("--resume", '{"benchmark": "baselines"}', "not a report of this benchmark"),
    ("--resume", {"cpu": ANOTHER_CPU}, "measured on another CPU"),
])
def test_throughplane_bad_report_given_is_refused_before_the_volume_loads(tmp_path, capsys, monkeypatch, option,
                                                                         content, message):
    """A missing file, a shell script, another benchmark's report, a report without a cost line or from another CPU
    given to --eclare-cost-from or --resume: one error line naming the option and the file, status 2, before the
    volume is loaded (both were read only after it) and nothing written."""
    from benchmarks import throughplane as bench

    def no_loading(*args, **kwargs):
        raise AssertionError("the volume was loaded before the report given was checked")

    monkeypatch.setattr(bench, "load_ground_truth", no_loading)
    given = tmp_path / "given.json"
    if isinstance(content, str):
        given.write_text(content)
    elif isinstance(content, dict):
        summary_report(given, {"x4 axis 2 nogap noise 0": []}, **content)
    before = given.read_bytes() if given.exists() else None
    out = tmp_path / "report.json"
    arguments = ["--resume", "--out", str(given)] if option == "--resume" else [
        "--eclare-venv", str(fake_eclare_venv(tmp_path)), "--eclare-match", "1", "--eclare-cost-from", str(given),
        "--out", str(out)]
    assert bench.main(["--quick", *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {option} {given}: {message}") and "\n" not in error
    assert not out.exists() and (given.read_bytes() if given.exists() else None) == before


@pytest.mark.slow  # quick benchmark runs (medsr-selfsr trained in this process)
def test_throughplane_eclare_at_matched_times_and_added_to_a_table_made_without_it(tmp_path):
    """A table made without ECLARE, then --resume --eclare-match 1 4: the kept rows stay as they were (medsr-selfsr
    is not run again), ECLARE's cost is measured once (two runs), and each "eclare x<F>" row gets the patches that
    fit F x that configuration's medsr-selfsr seconds (the arithmetic of EclareCost), told the true profile with
    --tell-eclare. A third run with the same options runs nothing."""
    from benchmarks import throughplane as bench

    out, venv = tmp_path / "report.json", fake_eclare_venv(tmp_path)
    first = bench.run(bench.parse_args(["--quick", "--out", str(out)]))
    assert [r["method"] for r in first["rows"]] == ["cubic", "linear", "selfsr"]
    with_eclare = ["--quick", "--out", str(out), "--resume", "--eclare-venv", str(venv), "--eclare-match", "1", "4",
                   "--tell-eclare"]
    second = bench.run(bench.parse_args(with_eclare))
    assert second["rows"][:3] == json.loads(json.dumps(first["rows"]))
    rows = {r["method"]: r for r in second["rows"]}
    assert set(rows) == {"cubic", "linear", "selfsr", "eclare x1", "eclare x4"}
    cost = bench.EclareCost.from_json(second["eclare_cost"])
    assert [run[0] for run in cost.runs] == [*bench.ECLARE_CALIBRATION_PATCHES, rows["eclare x1"]["patches"],
                                             rows["eclare x4"]["patches"]]
    (n1, s1, _), (n2, s2, _) = cost.runs[:2]  # the calibration: the line through its two runs
    per_patch = max((s2 - s1) / (n2 - n1), 1e-6)
    calibrated = bench.EclareCost(max(s1 - per_patch * n1, 0.0), per_patch, cost.runs[:2], cost.config)
    for factor, cost_used in ((1, calibrated), (4, calibrated.with_run(*cost.runs[2]))):  # refitted after x1
        entry = rows[f"eclare x{factor}"]
        assert "error" not in entry, entry.get("error")
        assert entry["patches"] == cost_used.patches_for(factor * rows["selfsr"]["seconds"])
        assert entry["target_seconds"] == pytest.approx(factor * rows["selfsr"]["seconds"]) and entry["told"]
        assert math.isfinite(entry["psnr"]) and "gain_psnr" in entry
    calls = (venv / "bin" / "calls.txt").read_text().splitlines()
    assert len(calls) == 4 and all("--relative-slice-thickness 4" in call for call in calls)  # nogap, r = 4
    third = bench.run(bench.parse_args(with_eclare))
    assert len((venv / "bin" / "calls.txt").read_text().splitlines()) == 4
    assert json.loads(json.dumps(third["rows"])) == json.loads(json.dumps(second["rows"]))


@pytest.mark.slow  # five medsr-selfsr processes
def test_selfsr_speed_quick_times_every_variant(quick_reports):
    """python -m benchmarks.selfsr_speed --quick: one run per variant, each the whole command with the recipe changed
    as the variant says; iterations per second = the report's iterations / its training seconds."""
    report = quick_report(quick_reports, "selfsr_speed")
    assert [run["variant"] for run in report["runs"]] == ["recipe", "workers-1", "workers-0", "fp32", "bf16"]
    for run in report["runs"]:
        assert run["iterations"] == 4 and positive(run["training_s"]) and run["total_s"] > run["training_s"]
        assert run["iterations_per_s"] == pytest.approx(run["iterations"] / run["training_s"])
        assert run["precision"]["precision"] in ("fp32", "bf16") and run["precision"]["source"]
    assert set(report["median"]) == {"recipe", "workers-1", "workers-0", "fp32", "bf16"}
    precisions = {run["variant"]: run["precision"]["precision"] for run in report["runs"]}
    assert precisions["fp32"] == "fp32" and precisions["bf16"] == "bf16"  # the variant reached the training


def test_selfsr_speed_without_nilearn_is_one_error_line(monkeypatch, capsys):
    """The MNI T1 comes from nilearn's wheel (a benchmark-only dependency): without it, one line naming the fix,
    exit status 2, no traceback."""
    import importlib.util

    from benchmarks import selfsr_speed

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nilearn" else real(name, *a))
    assert selfsr_speed.main(["--iterations", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --volume mni: nilearn is not installed")


@pytest.mark.parametrize("option", ["--calibration", "--table"])
@pytest.mark.parametrize("content", [None, "{not json", '{"benchmark": "throughplane"}'])
def test_baselines_a_bad_saved_report_is_one_error_line(tmp_path, option, content):
    """A missing, unreadable or foreign report given to --calibration / --table: one ``error:`` line naming the
    option and the file, before any training (it was a traceback)."""
    from benchmarks import baselines

    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as stopped:
        baselines.main([option, str(path), "--scales", "4", "--methods", "seedsr", "--out", str(tmp_path / "o.json")])
    message = str(stopped.value.code)
    assert message.startswith(f"error: {option} {path}: ") and "\n" not in message
    assert not (tmp_path / "o.json").exists()
