"""The jobs of a folder run (medsr_se.inference.jobs): which files are inputs, and where each result goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsr_se.errors import DataError
from medsr_se.inference.jobs import Job, input_files


def test_input_files_below_a_folder_skip_hidden_and_other_files(tmp_path):
    for name in ("b.png", "sub/a.TIF", "sub/.hidden.png", "notes.txt", "scan.nii.gz", "s/1.dcm"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in input_files(tmp_path)] == \
        ["b.png", "s/1.dcm", "scan.nii.gz", "sub/a.TIF"]
    assert input_files(tmp_path / "b.png") == [tmp_path / "b.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images"):
        input_files(tmp_path / "empty")
    with pytest.raises(DataError, match="input not found: .*missing"):
        input_files(tmp_path / "missing")


def test_targets_keep_the_sub_folder_the_stem_and_the_volume_format():
    root, out = Path("/data"), Path("/out")
    image = Job("image", [root / "eye" / "a.tif"], root)
    assert image.targets(out) == [out / "eye" / "a.png"]
    assert image.targets(out, "sr", "auto") == [out / "eye" / "a_sr.tif"]
    assert Job("nifti", [root / "head.nii.gz"], root).targets(out, "x2") == [out / "head_x2.nii.gz"]
    series = Job("dicom", [root / "p" / "1.dcm", root / "p" / "2.dcm"], root)
    assert series.targets(out) == [out / "p" / "1.dcm", out / "p" / "2.dcm"] and series.name == root / "p"
    assert Job("image", [Path("/else/a.png")], root).targets(out) == [out / "a.png"]  # not below the root
