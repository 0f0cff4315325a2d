"""Option files are plain data (a Python tag runs nothing) and mistakes are caught before the first iteration."""

from __future__ import annotations

import pytest
from yaml.constructor import ConstructorError

from medsr_se.utils.options import OptionError, OptionFileError, check_training_options, load_yaml
from tests.helpers import REPO_ROOT, run_in_process, run_python, tiny_gan_options, write_options

HOSTILE = 'name: !!python/object/apply:os.system ["touch {marker}"]\nmodel_type: SEEDSRModel\n'


def hostile_file(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "hostile.yml"
    path.write_text(HOSTILE.format(marker=marker))
    return path, marker


def test_load_yaml_refuses_python_tags(tmp_path):
    path, marker = hostile_file(tmp_path)
    with pytest.raises(OptionFileError, match="hostile.yml: not a valid option file.*Python tags are refused"):
        load_yaml(path)
    assert not marker.exists()


@pytest.mark.slow
def test_medsr_test_refuses_python_tags_with_one_line_in_a_fresh_process(tmp_path):
    """``python -m medsr_se.test`` launched as a user launches it (its one subprocess test; medsr_se.train's is the
    kill-and-resume run in tests/test_training_runs.py)."""
    path, marker = hostile_file(tmp_path)
    run = run_python(["-m", "medsr_se.test", "-opt", str(path)], cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert f"error: {path}: not a valid option file" in run.stderr and "Traceback" not in run.stderr
    assert not marker.exists()


@pytest.mark.parametrize("module", ["medsr_se.train", "medsr_se.test"])
def test_our_entry_points_refuse_python_tags_with_one_line(tmp_path, module, capsys):
    """Each command's main() in this process: exit status 2, one ``error:`` line naming the file, nothing run."""
    path, marker = hostile_file(tmp_path)
    assert run_in_process(module, ["-opt", str(path)], tmp_path) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: not a valid option file" in err and "Traceback" not in err
    assert not marker.exists()


def test_basicsr_parse_options_refuses_python_tags(tmp_path, monkeypatch):
    """BasicSR's own option parser, as its train.py / test.py call it, with medsr_se loaded (here imported; the
    autoload hook that loads it into BasicSR's own scripts is tests/test_autoload.py's): the YAML constructor's
    refusal, nothing run."""
    from basicsr.utils.options import parse_options

    path, marker = hostile_file(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py", "-opt", str(path)])
    with pytest.raises(Exception) as raised:
        parse_options(str(tmp_path), True)
    chain = [raised.value]
    while chain[-1].__cause__ is not None or chain[-1].__context__ is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    assert any(isinstance(error, ConstructorError) for error in chain), chain  # the subprocess saw it in the traceback
    assert not marker.exists()


def test_shipped_recipes_load_safely():
    for path in sorted((REPO_ROOT / "options").glob("*.yml")):
        assert load_yaml(path)["name"]


def test_upscale_different_from_scale_is_named(pairs_x4):
    options = tiny_gan_options(pairs_x4, "wrong_scale", total_iter=1)
    options["network_g"]["upscale"] = 2
    with pytest.raises(OptionError, match="network_g:upscale is 2 but scale is 4"):
        check_training_options(options)


def test_missing_dataset_and_oversized_gt_are_named(pairs_x4, tmp_path):
    options = tiny_gan_options(pairs_x4, "missing", total_iter=1)
    options["datasets"]["train"]["dataroot_gt"] = str(tmp_path / "nowhere")
    with pytest.raises(OptionError, match="datasets:train:dataroot_gt: no such folder"):
        check_training_options(options)
    options = tiny_gan_options(pairs_x4, "too_big", total_iter=1)
    options["datasets"]["train"]["gt_size"] = 128  # the training crops are 96 px
    with pytest.raises(OptionError, match="datasets:train:gt_size: 128 is larger than the training images"):
        check_training_options(options)


def test_training_stops_before_the_first_iteration_with_one_line(pairs_x4, tmp_path, capsys):
    options = tiny_gan_options(pairs_x4, "wrong_scale", total_iter=2)
    options["network_g"]["upscale"] = 2
    path = write_options(options, tmp_path / "wrong.yml")
    assert run_in_process("medsr_se.train", ["-opt", str(path)], tmp_path) == 2
    err = capsys.readouterr().err
    assert "error: network_g:upscale is 2 but scale is 4" in err and "Traceback" not in err
    assert not (tmp_path / "experiments").exists()  # stopped before BasicSR made the experiment folder
