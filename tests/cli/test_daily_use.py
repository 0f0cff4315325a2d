"""Daily-use tools (#17): recipes by name and in the wheel, -q / -v, progress, Real-ESRGAN's flags, recursive input,
sheets and plots."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import evaluate as evaluate_cli
from medsr_se.cli import infer
from medsr_se.cli import plot as plot_cli
from medsr_se.utils.options import recipe_names
from tests.helpers import REPO_ROOT, run_python


@pytest.fixture
def model(tmp_path) -> str:
    torch.manual_seed(0)
    net = SEEDSRGenerator(num_feat=8, num_block=2, upscale=2, img_residual=True)
    torch.save({"params": net.state_dict()}, tmp_path / "g.pth")
    return str(tmp_path / "g.pth")


@pytest.fixture
def photos(retina, tmp_path):
    """in/a.png (300 x 300) and in/sub/deeper/b.jpg (40 x 48): a tree of images."""
    (tmp_path / "in" / "sub" / "deeper").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "in" / "a.png"), np.ascontiguousarray(retina[500:800, 500:800, ::-1]))
    cv2.imwrite(str(tmp_path / "in" / "sub" / "deeper" / "b.jpg"), np.ascontiguousarray(retina[600:640, 600:648, ::-1]))
    return tmp_path / "in"


def test_recursive_input_keeps_the_layout_and_real_esrgan_flags(photos, model, tmp_path, capsys):
    out = tmp_path / "out"
    assert infer.main(["-i", str(photos), "-o", str(out), "--model", model, "-s", "3", "--suffix", "out",
                       "--ext", "auto", "--tile", "16", "--tile_pad", "6"]) == 0
    a = cv2.imread(str(out / "a_out.png"))
    b = cv2.imread(str(out / "sub" / "deeper" / "b_out.jpg"))  # same sub-folder, the input's format (auto)
    assert a.shape == (900, 900, 3) and b.shape == (120, 144, 3)  # -s 3: 3 x the input, as Real-ESRGAN's outscale
    capsys.readouterr()
    assert infer.main(["-i", str(photos), "-o", str(photos / "sub"), "--model", model]) == 2
    assert "inside the input folder" in capsys.readouterr().err


def test_quiet_silences_verbose_adds_and_large_images_show_progress(photos, model, tmp_path, capsys):
    assert infer.main(["-i", str(photos / "a.png"), "-o", str(tmp_path / "n"), "--model", model]) == 0
    normal = capsys.readouterr()
    assert "a.png:" in normal.err and "3/3" in normal.err  # 300 x 300, whole: progress per block and stage (2 + 1)
    assert infer.main(["-i", str(photos / "a.png"), "-o", str(tmp_path / "q"), "--model", model, "-q"]) == 0
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    assert infer.main(["-i", str(photos / "a.png"), "-o", str(tmp_path / "v"), "--model", model, "-v"]) == 0
    verbose = capsys.readouterr()
    assert "whole image" in verbose.err and "->" in verbose.err and len(verbose.err) > len(normal.err)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "q" / "a.png")), cv2.imread(str(tmp_path / "v" / "a.png")))


@pytest.mark.slow
def test_evaluate_errors_before_writing_and_shows_progress(tmp_path, capsys, prepared):
    assert evaluate_cli.main(["--data", str(tmp_path / "nothing"), "-o", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --data") and not (tmp_path / "e").exists()
    root, _ = prepared
    torch.save({"params": SEEDSRGenerator(num_feat=8, num_block=1, upscale=4, img_residual=True).state_dict()},
               tmp_path / "x4.pth")
    assert evaluate_cli.main(["--data", str(root), "--model", f"x4={tmp_path / 'x4.pth'}", "-o", str(tmp_path / "e"),
                              "--no-sheets", "--scales", "4", "--no-niqe"]) == 0
    captured = capsys.readouterr()
    assert "x4: 2 test image(s)" in captured.err and "2/2" in captured.err and "| x4 |" in captured.out
    plot = cv2.imread(str(tmp_path / "e" / "per_image_psnr.png"))
    assert plot is not None and plot.shape[0] >= 300 and plot.shape[1] >= 500
    assert evaluate_cli.main(["--data", str(root), "-o", str(tmp_path / "q"), "-q", "--scales", "4", "--no-niqe"]) == 0
    assert capsys.readouterr() == ("", "")


def test_comparison_sheet_has_numbers_and_an_error_map(retina):
    from medsr_se.evaluation.sheets import LINE_HEIGHT, comparison_sheet

    hr = np.ascontiguousarray(retina[300:900, 300:960, ::-1])
    sr = cv2.GaussianBlur(hr, (0, 0), 1.0)
    numbers = {"bicubic": {"psnr": 30.0, "ssim": 0.9, "vessel_f1": 0.5}, "SR": {"psnr": 31.0, "ssim": 0.91}}
    sheet = comparison_sheet(sr, sr, hr, numbers)
    height, width = hr.shape[:2]
    crop = min(height, width) // 6
    zoomed = crop * (width // crop)
    header_height = 4 * LINE_HEIGHT + 8  # name, PSNR, SSIM, vessel F1
    assert sheet.shape == (header_height + height + zoomed, 4 * width, 3)
    header = sheet[:header_height, 3 * width:]
    assert header.max() > 200  # the error map panel is labelled
    errors = sheet[header_height:header_height + height, 3 * width:]
    assert errors.mean() > 5  # blur errors are visible in the map


def test_training_curves_plot(tmp_path, capsys):
    experiment = tmp_path / "experiments" / "run"
    experiment.mkdir(parents=True)
    (experiment / "train_run_20261125.log").write_text(
        "2026-11-25 10:00:00,000 INFO: [run..][epoch:  0, iter:      10, lr:(1.000e-04,)] "
        "[eta: 0:01:00, time (data): 0.100 (0.001)] l_g_l1: 5.0000e-02 l_g_total: 1.0000e-01 \n"
        "2026-11-25 10:00:01,000 INFO: Validation val\n\t # psnr: 30.5000\tBest: 30.5000 @ 10 iter\n"
        "2026-11-25 10:00:02,000 INFO: [run..][epoch:  0, iter:      20, lr:(1.000e-04,)] "
        "[eta: 0:00:30, time (data): 0.100 (0.001)] l_g_l1: 4.0000e-02 l_g_total: 0.9000e-01 \n"
        "2026-11-25 10:00:03,000 INFO: Validation val\n\t # psnr: 31.0000\tBest: 31.0000 @ 20 iter\n")
    from medsr_se.evaluation.plots import read_training_log

    losses, metrics = read_training_log(next(experiment.glob("*.log")))
    assert losses["l_g_l1"] == [(10, 0.05), (20, 0.04)] and metrics["val/psnr"] == [(10, 30.5), (20, 31.0)]
    assert plot_cli.main([str(experiment)]) == 0
    picture = cv2.imread(str(experiment / "curves.png"))
    assert picture is not None and picture.shape[1] > picture.shape[0] > 300
    assert plot_cli.main([str(tmp_path)]) == 2
    assert "no train_*.log" in capsys.readouterr().err


@pytest.mark.slow
def test_recipe_names_and_list(tmp_path):
    assert {"x4", "x8", "x16", "x4_gray", "pretrain_x4", "test_x4"} <= set(recipe_names())
    run = run_python(["-m", "medsr_se.train", "--list-recipes"], cwd=tmp_path)
    assert run.returncode == 0 and "x4_gray" in run.stdout and "x4.yml" in run.stdout
    from medsr_se.utils.options import resolve_option_argument

    resolved = resolve_option_argument(["train.py", "-opt", "x4", "--auto_resume"])
    assert resolved[2].endswith("x4.yml") and resolved[3] == "--auto_resume"
    assert resolve_option_argument(["train.py", "-opt=nope"]) == ["train.py", "-opt=nope"]  # the reader will say


@pytest.mark.slow
def test_the_wheel_carries_the_recipes(tmp_path):
    """pip install medsr-se (no clone): the option files are inside the package and ``-opt x4`` finds them."""
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path / "wheel"), str(REPO_ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("medsr_se-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {f"medsr_se/recipes/{p.name}" for p in (REPO_ROOT / "options").glob("*.yml")} <= names
        assert {f"medsr_se/recipes/baselines/{p.name}" for p in (REPO_ROOT / "options" / "baselines").glob("*.yml")} \
            <= names
        archive.extractall(tmp_path / "site")
    probe = ("import medsr_se.utils.options as o; print(o.recipe_path('x4')); "
             "assert str(o.recipe_path('x4')).endswith('medsr_se/recipes/x4.yml'); "
             "assert str(o.recipe_path('baselines/edsr_x4')).endswith('medsr_se/recipes/baselines/edsr_x4.yml'); "
             "assert o.load_recipe('baselines/edsr_x4')['network_g']['type'] == 'EDSR'")
    env = {"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin", "MEDSR_SE_NO_AUTOLOAD": "1"}
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=env)
    assert run.returncode == 0, run.stderr[-2000:]


def test_prepare_is_quiet_with_q_and_detailed_with_v(photos, model, tmp_path, capsys):
    from medsr_se.cli import prepare as prepare_cli

    arguments = [str(photos), "--scales", "2", "--crop-size", "32", "--step", "32", "--n-test", "1", "--workers", "1"]
    assert prepare_cli.main([*arguments, "-o", str(tmp_path / "q"), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert prepare_cli.main([*arguments, "-o", str(tmp_path / "v"), "-v"]) == 0
    verbose = capsys.readouterr()
    assert "train images" in verbose.out and "test: " in verbose.err


def test_training_curves_with_non_finite_losses_and_the_discriminator_panel(tmp_path):
    """Non-finite losses (nan, inf, -inf as BasicSR prints them) are read and left out of the curves (0.1.x: float('-')
    failed without naming the log); the discriminator's terms get their own panel."""
    experiment = tmp_path / "experiments" / "gan"
    experiment.mkdir(parents=True)
    line = ("2026-12-01 10:00:00,000 INFO: [gan..][epoch:  0, iter:      {i}, lr:(1.000e-04,)] "
            "[eta: 0:01:00, time (data): 0.100 (0.001)] l_g_l1: {l1} l_d_real: 3.4e-01 out_d_real: 1.5e+00 "
            "out_d_fake: -1.2e+00 d_separation: 2.7e+00 d_pairs_ranked: {ranked} \n")
    (experiment / "train_gan_20261201.log").write_text(
        line.format(i=10, l1="5.0e-02", ranked="6.0e-01") + line.format(i=20, l1="nan", ranked="8.0e-01")
        + line.format(i=30, l1="-inf", ranked="9.0e-01") + line.format(i=40, l1="inf", ranked="9.5e-01"))
    from medsr_se.evaluation.plots import read_training_log, split_discriminator_terms

    losses, _ = read_training_log(next(experiment.glob("*.log")))
    assert [v for _, v in losses["l_g_l1"]][3] == float("inf") and losses["l_g_l1"][2][1] == float("-inf")
    generator, discriminator = split_discriminator_terms(losses)
    assert set(discriminator) == {"out_d_real", "out_d_fake", "d_separation", "d_pairs_ranked"}
    assert set(generator) == {"l_g_l1", "l_d_real"}
    assert plot_cli.main([str(experiment)]) == 0
    picture = cv2.imread(str(experiment / "curves.png"))
    assert picture is not None and picture.shape[1] > 2.5 * picture.shape[0]  # two panels side by side
