"""The start-up hook: BasicSR's own entry points find medsr_se with no ``import medsr_se`` anywhere."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import basicsr
import pytest

from tests.helpers import run_python, subprocess_env, tiny_gan_options, write_options


def test_pth_file_is_installed_next_to_the_packages():
    assert importlib.util.find_spec("medsr_se_autoload") is not None
    installed = [Path(entry) / "medsr_se_autoload.pth" for entry in sys.path if entry]
    assert any(path.is_file() for path in installed), "pip install did not put medsr_se_autoload.pth in place"


@pytest.mark.slow
def test_plain_python_start_imports_nothing_heavy(tmp_path):
    run = run_python(["-c", "import sys; print('torch' in sys.modules, 'basicsr' in sys.modules, "
                            "[type(f).__name__ for f in sys.meta_path][0])"], cwd=tmp_path)
    assert run.stdout.split() == ["False", "False", "BasicsrFinder"], run.stderr


@pytest.mark.slow
def test_import_basicsr_alone_registers_everything(tmp_path):
    code = ("import basicsr\n"
            "from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY\n"
            "print(ARCH_REGISTRY.get('SEEDSRGenerator').__name__, ARCH_REGISTRY.get('FusionSEDiscriminator').__name__,"
            " LOSS_REGISTRY.get('FusionLoss').__name__, MODEL_REGISTRY.get('RelativisticGANModel').__name__,"
            " 'calculate_psnr_fov' in METRIC_REGISTRY)")
    run = run_python(["-c", code], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["SEEDSRGenerator", "FusionSEDiscriminator", "FusionLoss", "RelativisticGANModel",
                                  "True"]


@pytest.mark.slow
def test_switched_off_by_environment_variable(tmp_path):
    code = ("import sys, torchvision.transforms._functional_tensor as renamed\n"
            "sys.modules['torchvision.transforms.functional_tensor'] = renamed\n"
            "import basicsr\n"
            "from basicsr.utils.registry import ARCH_REGISTRY\n"
            "print('SEEDSRGenerator' in ARCH_REGISTRY, 'medsr_se' in sys.modules)")
    run = run_python(["-c", code], cwd=tmp_path, MEDSR_SE_NO_AUTOLOAD="1")
    assert run.stdout.split() == ["False", "False"], run.stderr


@pytest.mark.slow
def test_broken_hook_target_is_one_warning(tmp_path):
    broken = tmp_path / "shadow" / "medsr_se"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('deliberately broken')\n")
    code = "try:\n    import basicsr\nexcept ImportError:\n    pass\nprint('still running')"
    run = run_python(["-c", code], cwd=tmp_path, PYTHONPATH=str(tmp_path / "shadow"))
    assert run.returncode == 0 and run.stdout.strip() == "still running"
    assert run.stderr.count("medsr_se autoload") == 1 and "deliberately broken" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_script_calling_train_pipeline_trains(pairs_x4, tmp_path):
    options = write_options(tiny_gan_options(pairs_x4, "pipeline_run", total_iter=4, checkpoint_every=4,
                                             val_every=4), tmp_path / "o.yml")
    script = tmp_path / "my_train.py"
    script.write_text("import os\nfrom basicsr.train import train_pipeline\n\n"
                      "if __name__ == '__main__':\n    train_pipeline(os.getcwd())\n")
    run = subprocess.run([sys.executable, str(script), "-opt", str(options)], cwd=tmp_path, env=subprocess_env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "experiments" / "pipeline_run" / "models" / "net_g_latest.pth").exists()


@pytest.mark.slow
def test_basicsr_train_py_from_a_source_copy(pairs_x4, tmp_path):
    """BasicSR's unchanged train.py, as in a clone: ``python basicsr/train.py -opt ...`` from the clone's root."""
    clone = tmp_path / "BasicSR"
    (clone / "basicsr").mkdir(parents=True)
    shutil.copy(Path(basicsr.__file__).with_name("train.py"), clone / "basicsr" / "train.py")
    options = write_options(tiny_gan_options(pairs_x4, "clone_run", total_iter=4, checkpoint_every=4,
                                             val_every=4), tmp_path / "o.yml")
    run = subprocess.run([sys.executable, "basicsr/train.py", "-opt", str(options)], cwd=clone,
                         env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    log = next((clone / "experiments" / "clone_run").glob("train_*.log")).read_text()
    assert "Model [RelativisticGANModel] is created." in log and "# psnr:" in log


@pytest.mark.slow
def test_basicsr_train_py_applies_the_option_fix_ups(pairs_x4, tmp_path):
    """Issue 22 (18): a shipped recipe with ``num_worker_per_gpu: 0`` keeps its ``persistent_workers: true``, which
    PyTorch refuses without worker processes ("persistent_workers option needs num_workers > 0"); the validation
    loader, which BasicSR always builds with 0 workers, too. ``medsr_se.train`` turned the flag off; BasicSR's own
    train.py must get the same fix-ups (medsr_se.utils.options.fix_options, installed by medsr_se.integration)."""
    clone = tmp_path / "BasicSR"
    (clone / "basicsr").mkdir(parents=True)
    shutil.copy(Path(basicsr.__file__).with_name("train.py"), clone / "basicsr" / "train.py")
    options = tiny_gan_options(pairs_x4, "fixup_run", total_iter=2, checkpoint_every=2, val_every=2)
    options["datasets"]["train"]["persistent_workers"] = True  # the recipe's value
    options["datasets"]["val"]["persistent_workers"] = True
    write_options(options, tmp_path / "o.yml")
    run = subprocess.run([sys.executable, "basicsr/train.py", "-opt", str(tmp_path / "o.yml")], cwd=clone,
                         env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    log = next((clone / "experiments" / "fixup_run").glob("train_*.log")).read_text()
    assert "# psnr:" in log
