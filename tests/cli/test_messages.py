"""A command's flags in the library's errors and log lines (medsr_se.cli.messages): ``tile_pad=2`` shown as
``--tile-pad 2``, ``overwrite=True`` as ``--overwrite``; whole words only; an OSError is the user's only when it
names a path they gave."""

from __future__ import annotations

import logging

from medsr_se.cli.messages import about_given_path, error_line, show_flags, with_flags
from medsr_se.errors import OptionError
from medsr_se.utils.logs import log_to_stderr

FLAGS = {"tile": "--tile", "tile_pad": "--tile-pad", "overwrite": "--overwrite", "scale": "--scale"}


def test_parameters_become_flags_as_whole_words():
    assert with_flags("tile_pad=16 makes them exact, tile=0 uses none", FLAGS) == \
        "--tile-pad 16 makes them exact, --tile 0 uses none"
    untouched = "trained with upscale=4; medsr_se.x.scale=2"
    assert with_flags(untouched, FLAGS) == untouched
    assert with_flags("a.png exists (use overwrite=True to replace it)", FLAGS) == \
        "a.png exists (use --overwrite to replace it)"
    assert with_flags("tile=3", {}) == "tile=3"


def test_an_error_line_shows_its_parameter_under_the_flag():
    assert error_line(OptionError("tile_pad=2: must be at least 4", parameter="tile_pad"), FLAGS) == \
        "--tile-pad 2: must be at least 4"
    assert error_line(OptionError("a.png: tile_pad=2: must be at least 4", parameter="tile_pad"), FLAGS) == \
        "a.png: --tile-pad 2: must be at least 4"
    assert error_line(OptionError("b.png exists and is a folder; overwrite=True replaces files only",
                                  parameter="overwrite"), FLAGS) == \
        "b.png exists and is a folder; --overwrite replaces files only"


def test_logged_lines_show_flags(capsys):
    log_to_stderr()
    show_flags(FLAGS)
    logging.getLogger("medsr_se.inference.example").warning("tiles differ; tile_pad=%d makes them exact", 16)
    assert capsys.readouterr().err == "warning: tiles differ; --tile-pad 16 makes them exact\n"
    log_to_stderr()  # a new handler: shown as the library says it
    logging.getLogger("medsr_se.inference.example").warning("tile_pad=16")
    assert capsys.readouterr().err == "warning: tile_pad=16\n"


def test_an_os_error_is_the_users_when_it_names_a_given_path(tmp_path):
    given = (tmp_path / "in", None, "model.pth")
    assert about_given_path(PermissionError(13, "Permission denied", str(tmp_path / "in" / "a.png")), given)
    assert about_given_path(FileNotFoundError("checkpoint not found: model.pth"), given)
    assert not about_given_path(OSError(5, "Input/output error"), given)
    assert not about_given_path(OSError(28, "No space left on device", "/dev/shm/x"), given)


def test_an_option_path_is_not_a_parameter():
    from medsr_se.cli.messages import with_flags

    flags = {"slice_thickness": "--slice-thickness", "test_list": "--test-list"}
    assert with_flags("datasets:train:slice_thickness 2 -> 3; give slice_thickness=3 or test_list",
                      flags) == "datasets:train:slice_thickness 2 -> 3; give --slice-thickness 3 or --test-list"
