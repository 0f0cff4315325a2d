"""Where results may go (medsr_se.inference.output_policy), called as a library: refusals name the parameter to
change (``output=``, ``overwrite=``), never a command's flag; a damaged DICOM has no series, a bug surfaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsr_se.errors import OptionError
from medsr_se.inference.jobs import Job, collect_jobs, input_files
from medsr_se.inference.output_policy import check_free, check_outputs, series_uid


def image_jobs(folder: Path, names: list[str]) -> list[Job]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"pixels")
    return collect_jobs(input_files(folder), 2, folder)


def test_refusals_name_the_parameter(tmp_path):
    jobs = image_jobs(tmp_path / "in", ["a.png"])
    with pytest.raises(OptionError, match=r"^output=.*in: is the folder of the input") as caught:
        check_outputs(jobs, tmp_path / "in", tmp_path / "in" / "a.png")
    assert caught.value.parameter == "output"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"old")
    with pytest.raises(OptionError, match=r"a.png exists \(use overwrite=True to replace it\)$") as caught:
        check_outputs(jobs, tmp_path / "out", tmp_path / "in")
    assert caught.value.parameter == "overwrite" and "--" not in str(caught.value)
    check_outputs(jobs, tmp_path / "out", tmp_path / "in", overwrite=True)
    (tmp_path / "out" / "b.png").mkdir()
    with pytest.raises(OptionError, match="is a folder; overwrite=True replaces files only"):
        check_free(tmp_path / "out" / "b.png", overwrite=True)


def test_two_inputs_sharing_a_stem_are_refused(tmp_path):
    jobs = image_jobs(tmp_path / "in", ["a.png", "a.tif"])
    with pytest.raises(OptionError, match=r"a.png and .*a.tif would both be written to .*a.png"):
        check_outputs(jobs, tmp_path / "out", tmp_path / "in")
    check_outputs(jobs, tmp_path / "out", tmp_path / "in", ext="auto")  # a.png and a.tif: two results


def test_series_uid_of_a_damaged_file_is_none_and_a_bug_surfaces(tmp_path, monkeypatch):
    """overwrite looks up the series of each file it replaces: a file that is no readable DICOM has none (it is
    replaced alone); before, a bug there (any exception) was taken for such a file too."""
    pydicom = pytest.importorskip("pydicom", reason="the medical extra is part of the test extra")
    from tests.medical import pydicom_file

    raw = pydicom_file("CT_small.dcm").read_bytes()
    (tmp_path / "garbage.dcm").write_bytes(b"not dicom at all")
    (tmp_path / "cut.dcm").write_bytes(raw[:100])
    (tmp_path / "ct.dcm").write_bytes(raw)
    assert series_uid(tmp_path / "garbage.dcm") is None and series_uid(tmp_path / "cut.dcm") is None
    assert series_uid(tmp_path / "ct.dcm") == pydicom.dcmread(str(pydicom_file("CT_small.dcm"))).SeriesInstanceUID

    def bug(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(pydicom, "dcmread", bug)
    with pytest.raises(TypeError, match="a bug"):
        series_uid(tmp_path / "ct.dcm")
