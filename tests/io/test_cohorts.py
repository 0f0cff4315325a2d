"""What a cohort folder is (medsr_se.io.cohorts): which folders stay one DICOM series, which entries are scans, what
is skipped and why, and the clashes refused before any work. Only names and a few bytes are read: the files here are
placeholders except the DICOM slices (pydicom's MR_small.dcm), whose 'DICM' preamble is what is looked for."""

from __future__ import annotations

import json
import os

import pytest

from medsr_se.errors import DataError
from medsr_se.io import cohorts, scans
from tests.io.test_through_plane_geometry import mr_series


def touch(path, data: bytes = b"placeholder"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def listed(folder, **kwargs) -> list[str]:
    return [scan.relative.as_posix() for scan in cohorts.list_cohort(folder, **kwargs).scans]


def skipped(folder, **kwargs) -> dict[str, str]:
    return {path.as_posix(): why for path, why in cohorts.list_cohort(folder, **kwargs).skipped}


def test_a_dicom_series_folder_stays_one_series_whatever_it_holds_besides(tmp_path):
    """As read_scan reads it: a folder with DICOM slices is one series, with a dcm2niix .nii / .nii.gz, a
    sub-folder or a README beside them; so is a folder of files that may only be slices (read_scan's error)."""
    series = mr_series(tmp_path / "series", count=3)
    assert not cohorts.is_cohort_folder(series)
    touch(series / "converted.nii.gz")
    touch(series / "converted.nii")
    touch(series / "README")
    touch(series / "extra" / "other.nii.gz")
    assert not cohorts.is_cohort_folder(series)
    assert scans.series_files(series)  # the reader still finds its slices there
    touch(tmp_path / "pngs" / "a.bin")
    assert not cohorts.is_cohort_folder(tmp_path / "pngs")  # nothing else it could be: the series error, as before
    assert not cohorts.is_cohort_folder(tmp_path / "pngs" / "a.bin")
    assert not cohorts.is_cohort_folder(tmp_path / "missing")


def test_nifti_files_and_series_sub_folders_sorted_the_rest_skipped_with_why(tmp_path):
    folder = tmp_path / "cohort"
    for name in ("b.nii.gz", "a.nii", "README", "a.json", "notes.docx", ".DS_Store", "participants.tsv"):
        touch(folder / name)
    mr_series(folder / "ct1", count=3)
    (folder / "empty").mkdir()
    assert cohorts.is_cohort_folder(folder)  # notes.docx and the .tsv are not DICOM: they do not make it a series
    assert listed(folder) == ["a.nii", "b.nii.gz", "ct1"]
    assert skipped(folder) == {".DS_Store": "hidden", "README": "not a scan", "a.json": "not a scan",
                               "notes.docx": "not a scan", "participants.tsv": "not a scan",
                               "empty": "an empty folder"}


def test_a_bids_tree_is_recursed_its_raw_scans_only_and_paths_kept(tmp_path):
    root = tmp_path / "bids"
    touch(root / "dataset_description.json", json.dumps({"Name": "t", "BIDSVersion": "1.8.0"}).encode())
    touch(root / "CHANGES")  # no suffix: a name a series could have; not DICOM, so the root stays a cohort
    for subject in ("sub-02", "sub-01"):
        touch(root / subject / "anat" / f"{subject}_T1w.nii.gz")
        touch(root / subject / "anat" / f"{subject}_T1w.json")
    touch(root / "sub-01" / "ses-2" / "anat" / "sub-01_ses-2_T2w.nii.gz")
    mr_series(root / "sourcedata" / "sub-01", count=3)  # the same scans as DICOM
    touch(root / "derivatives" / "other" / "sub-01_T1w_brain.nii.gz")
    assert listed(root) == ["sub-01/anat/sub-01_T1w.nii.gz", "sub-01/ses-2/anat/sub-01_ses-2_T2w.nii.gz",
                            "sub-02/anat/sub-02_T1w.nii.gz"]
    why = skipped(root)
    assert why["sourcedata"] == why["derivatives"] == "not raw data at a BIDS root"
    touch(tmp_path / "plain" / "derivatives" / "x.nii.gz")  # not a BIDS root: a folder like any other
    assert listed(tmp_path / "plain") == ["derivatives/x.nii.gz"]


def test_equal_names_in_different_folders_do_not_clash_in_one_folder_they_are_refused(tmp_path):
    for patient in ("pA", "pB"):
        touch(tmp_path / "ok" / patient / "scan.nii.gz")
    assert listed(tmp_path / "ok") == ["pA/scan.nii.gz", "pB/scan.nii.gz"]
    cases = {"nii_and_nii_gz": ("a.nii", "a.nii.gz"), "case": ("A.nii.gz", "a.nii.gz"), "series": ("a", "a.nii.gz")}
    for case, (first, second) in cases.items():
        folder = tmp_path / case
        for name in (first, second):
            mr_series(folder / name, count=3) if name == "a" else touch(folder / name)
        with pytest.raises(DataError) as refused:
            cohorts.list_cohort(folder)
        assert f"{first} and {second} would both write results named a_selfsr_" in str(refused.value), case


def test_no_scans_is_an_error_naming_the_folder_and_what_was_skipped(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no scans in it \(expected NIfTI"):
        cohorts.list_cohort(tmp_path / "empty")
    touch(tmp_path / "readme" / "README")
    with pytest.raises(DataError, match="skipped not a scan: README"):
        cohorts.list_cohort(tmp_path / "readme")


def test_the_output_folder_results_and_earlier_outputs_inside_are_not_scans(tmp_path):
    """-o inside the cohort, an earlier cohort's output (its summary), a single run's result and experiments:
    a rerun must not take medsr-selfsr's own results for scans."""
    folder = tmp_path / "cohort"
    touch(folder / "a.nii.gz")
    touch(folder / "out" / "a_selfsr_x3.nii.gz")
    touch(folder / "old_out" / cohorts.SUMMARY)
    touch(folder / "old_out" / "a_selfsr_x3.nii.gz")
    touch(folder / "b_selfsr_x4.nii.gz")
    touch(folder / "b_selfsr_0.9mm.nii.gz")
    mr_series(folder / "c_selfsr_x2", count=3)
    touch(folder / "experiments" / "b_selfsr_x4" / "models" / "net_g_latest.pth")
    assert listed(folder, exclude=folder / "out") == ["a.nii.gz"]
    why = skipped(folder, exclude=folder / "out")
    assert why["out"] == "the output folder"
    assert {why[name] for name in ("old_out", "b_selfsr_x4.nii.gz", "b_selfsr_0.9mm.nii.gz", "c_selfsr_x2",
                                   "experiments")} == {"medsr-selfsr's output"}


def test_a_scan_reached_through_a_link_is_listed_once_by_its_own_path(tmp_path):
    folder = tmp_path / "cohort"
    touch(folder / "sub" / "a.nii.gz")
    os.symlink("sub", folder / "alias")  # sorts before sub/
    os.symlink("..", folder / "sub" / "up")  # a loop
    assert listed(folder) == ["sub/a.nii.gz"]
    why = skipped(folder)
    assert why["alias/a.nii.gz"] == "the same as sub/a.nii.gz"
    assert why["sub/up"] == "a link to a folder above it"
