"""The preparation's messages name the Python parameter (``crop_size=250 ...``, ``error.parameter``), never a flag
a Python caller does not have; ``medsr-prepare`` shows its own flags instead (the same lines as before). Only
MedSRError and OSError become one ``error:`` line: a bug keeps its traceback."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

import medsr_se
from medsr_se.cli import prepare as prepare_cli
from medsr_se.prepare import Params, PrepareError, orchestration, prepare
from medsr_se.prepare.split import split_by_volume
from medsr_se.prepare.volume_slices import VolumeOptions

FLAG = re.compile(r"(?<![\w-])--?[a-z]")  # a command-line flag (--crop-size, -o)
SMALL = Params((2,), 64, 64, False, False)


@pytest.fixture()
def photos(tmp_path) -> Path:
    """Three small 8-bit colour images (different, so that every one is a real image)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        cv2.imwrite(str(folder / f"{name}.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return folder


def refused(source: Path, output: Path, params: Params = SMALL, **kwargs) -> PrepareError:
    with pytest.raises(PrepareError) as raised:
        prepare(source, output, params, n_test=1, workers=1, progress=False, **kwargs)
    assert not FLAG.search(str(raised.value)), str(raised.value)
    return raised.value


@pytest.mark.parametrize("params, parameter, start", [
    (Params((3,), 64, 64, False, False), "scales", "scales=3: not one of 2, 4, 8, 16"),
    (Params((4,), 250, 192, False, False), "crop_size", "crop_size=250 and step=192 must be positive multiples"),
    (Params((4,), 256, 190, False, False), "step", "crop_size=256 and step=190 must be positive multiples"),
])
def test_bad_params_name_the_parameter(photos, tmp_path, params, parameter, start):
    error = refused(photos, tmp_path / "out", params)
    assert str(error).startswith(start) and error.parameter == parameter


@pytest.mark.parametrize("options, parameter, start", [
    (VolumeOptions(window="lung", intensity="minmax"), "window", "window=lung and intensity=minmax: both choose"),
    (VolumeOptions(window="nope"), "window", "window=nope: "),
    (VolumeOptions(intensity="median"), "intensity", "intensity=median: use one of percentile, minmax"),
    (VolumeOptions(axis=5), "axis", "axis=5: "),
    (VolumeOptions(window="lung"), "window", "window=lung: applies to CT/MRI volumes"),
])
def test_bad_volume_options_name_the_parameter_before_any_work(photos, tmp_path, options, parameter, start):
    error = refused(photos, tmp_path / "out", volume_options=options)
    assert str(error).startswith(start) and error.parameter == parameter
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_an_output_that_is_a_file_or_exists_names_the_parameters(photos, tmp_path):
    (tmp_path / "file").write_text("x")
    error = refused(photos, tmp_path / "file")
    assert str(error).startswith(f"output={tmp_path / 'file'}: is a file") and error.parameter == "output"
    (tmp_path / "existing").mkdir()
    error = refused(photos, tmp_path / "existing")
    assert "already exists; pass overwrite=True to replace it" in str(error)


def test_a_bad_image_names_the_skip_bad_parameter(photos, tmp_path):
    (photos / "c.png").write_bytes(b"\x89PNG broken")
    error = refused(photos, tmp_path / "out")
    assert str(error).startswith(f"{photos / 'c.png'}: cannot decode") and "pass skip_bad=True" in str(error)


def test_the_split_names_n_test_and_test_list():
    with pytest.raises(PrepareError) as raised:
        split_by_volume({"p0": ["p0_0000"], "p1": ["p1_0000"]}, 5, 0, None)
    assert raised.value.parameter == "n_test" and str(raised.value) == (
        "n_test=5: must be between 1 and 1 for 2 volumes (for volumes, n_test and test_list count volumes: 2 found)")
    with pytest.raises(PrepareError) as raised:
        split_by_volume({"p0": ["p0_0000"], "p1": ["p1_0000"]}, 1, 0, ["p0", "p1"])
    assert raised.value.parameter == "test_list" and str(raised.value).startswith("test_list: names all 2 volumes")


def test_the_notes_of_the_manifest_name_the_parameter(tmp_path):
    folder = tmp_path / "gray16"
    folder.mkdir()
    for index in range(2):
        cv2.imwrite(str(folder / f"g{index}.png"), np.full((64, 64), 1000 * (index + 1), np.uint16))
    manifest = prepare(folder, tmp_path / "out", SMALL, n_test=1, workers=1, progress=False)
    assert manifest["notes"]["g0"] == ["16-bit converted to 8-bit (use keep_depth=True to keep it)",
                                       "gray replicated to 3 channels (use gray=True to keep one channel)"]


# ------------------------------------------------------------------------------------------------- the command
def prepare_command(source: Path, output: Path, *extra: str) -> int:
    return prepare_cli.main([str(source), "-o", str(output), "--scales", "2", "--crop-size", "64", "--step", "64",
                             "--workers", "1", "--n-test", "1", *extra])


def error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, lines
    return lines[0]


def test_every_flag_of_the_mapping_is_one_the_command_has():
    options = {option for action in prepare_cli.build_parser()._actions for option in action.option_strings}
    assert set(prepare_cli.FLAGS.values()) <= options


@pytest.mark.parametrize("extra, line", [
    (["--scales", "3"], "error: --scales 3: not one of 2, 4, 8, 16"),
    (["--step", "63"], "error: --crop-size 64 and --step 63 must be positive multiples of the largest scale 2"),
    (["--window", "lung", "--intensity", "minmax"], "error: --window lung and --intensity minmax: both choose the "
                                                    "intensity model (one would be ignored); give one"),
    (["--window", "lung"], "error: --window lung: applies to CT/MRI volumes (DICOM, NIfTI); "),
])
def test_the_command_shows_its_flags(photos, tmp_path, capsys, extra, line):
    """The library's parameters under the command's flags: the lines a command user saw before."""
    assert prepare_command(photos, tmp_path / "out", *extra) == 2
    assert error_line(capsys).startswith(line)


def test_the_hints_show_flags_too(photos, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert prepare_command(photos, tmp_path / "out") == 2
    assert error_line(capsys) == (f"error: {tmp_path / 'out'} already exists; pass --overwrite to replace it (it is "
                                  "kept until the new dataset is complete)")
    (photos / "c.png").write_bytes(b"\x89PNG broken")
    assert prepare_command(photos, tmp_path / "other") == 2
    assert error_line(capsys).endswith("(pass --skip-bad to leave such images out)")


def test_the_command_shows_the_notes_with_flags(tmp_path, capsys):
    folder = tmp_path / "gray16"
    folder.mkdir()
    for index in range(2):
        cv2.imwrite(str(folder / f"g{index}.png"), np.full((64, 64), 1000 * (index + 1), np.uint16))
    assert prepare_command(folder, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "note: 2 image(s): 16-bit converted to 8-bit (use --keep-depth to keep it)" in err
    assert "note: 2 image(s): gray replicated to 3 channels (use --gray to keep one channel)" in err


@pytest.mark.parametrize("failure", [ValueError("operands could not be broadcast together"),
                                     TypeError("'NoneType' object is not subscriptable")])
def test_a_bug_keeps_its_traceback(photos, tmp_path, monkeypatch, failure):
    """Before: any ValueError of the listing (a numpy bug as well as a bad source) became "error: ..." and exit 2."""
    def broken(source):
        raise failure

    monkeypatch.setattr(orchestration, "list_images", broken)
    with pytest.raises(type(failure), match=str(failure)):
        prepare_command(photos, tmp_path / "out")


def test_a_bug_in_reading_volumes_keeps_its_traceback(tmp_path, monkeypatch):
    """Before: a ValueError of the DICOM reader (any, a bug too) was an unreadable file: an error line, or with
    skip_bad the file left out."""
    pytest.importorskip("pydicom", reason="the medical extra is part of the test extra")
    from medsr_se.io import dicom_reading
    from tests.medical import ct_series

    source = ct_series(tmp_path / "scans", volumes=2, slices=1)

    def broken(paths):
        raise ValueError("setting an array element with a sequence")

    monkeypatch.setattr(dicom_reading, "read_dicom_volumes", broken)
    for extra in ([], ["--skip-bad"]):
        with pytest.raises(ValueError, match="setting an array element"):
            prepare_command(source, tmp_path / "out", *extra)


def test_python_warnings_are_debug_lines_and_quiet_silences_them(photos, tmp_path, capsys, monkeypatch):
    """A Python warning met during a run (another library's: medsr_se reports through logging) is one debug line,
    shown with ``-v`` only; ``-q`` silences it through the logger's level (no ``catch_warnings`` around the run), and
    the process's warning filters are left as they were."""
    listing = orchestration.list_images
    raised_in = str(Path(medsr_se.__file__).parent / "prepare" / "sources.py")

    def warning_listing(source):
        warnings.warn_explicit("a warning\n  met on the way", UserWarning, raised_in, 1)
        return listing(source)

    monkeypatch.setattr(orchestration, "list_images", warning_listing)
    filters = list(warnings.filters)
    assert prepare_command(photos, tmp_path / "a", "-v") == 0
    assert [line for line in capsys.readouterr().err.splitlines() if "met on" in line] == [
        "a warning met on the way"]
    for run, verbosity in (("b", []), ("c", ["-q"])):
        assert prepare_command(photos, tmp_path / run, *verbosity) == 0
        assert "met on" not in capsys.readouterr().err
    assert warnings.filters == filters


def test_an_os_error_on_a_path_the_user_did_not_give_keeps_its_traceback(photos, tmp_path, monkeypatch, capsys):
    """Before: any OSError became "error: ...: cannot write the dataset"; now only one about the source, the
    output (or the folder it is made in), or a write without a file name (a full disk)."""
    elsewhere = PermissionError(13, "Permission denied", "/usr/lib/some-library/cache")

    def failing(*args, **kwargs):
        raise elsewhere

    monkeypatch.setattr(prepare_cli, "prepare", failing)
    with pytest.raises(PermissionError, match="some-library"):
        prepare_command(photos, tmp_path / "out")
    for error, line in [(OSError(28, "No space left on device"), f"error: {tmp_path / 'out'}: cannot write the "
                         "dataset (No space left on device); nothing was published"),
                        (FileNotFoundError(f"input not found: {photos}"), f"error: input not found: {photos}")]:
        def failing(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(prepare_cli, "prepare", failing)
        assert prepare_command(photos, tmp_path / "out") == 2
        assert error_line(capsys) == line
