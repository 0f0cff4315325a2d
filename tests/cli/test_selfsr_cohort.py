"""medsr-selfsr -i folder_of_scans/: every scan processed as a single run would, a bad one named in one error line
and the others kept, cohort_summary.csv read back with the csv module, a rerun skipping what is done; a DICOM series
folder still one scan. The fast tests apply an untrained x3 through-plane model (--model: nothing trains)."""

from __future__ import annotations

import csv
import hashlib
import json

import nibabel
import numpy as np
import pydicom
import pytest

from medsr_se.cli import selfsr, selfsr_cohort
from tests.cli.test_selfsr import through_plane_model, tiny_recipe
from tests.io.test_through_plane_geometry import mr_series

R = 3


def small_scan(path, seed: int, shape=(20, 16, 6), zooms=(1.0, 1.0, 1.0 * R)):
    """A smooth random int16 volume whose slices are r = 3 times further apart than its pixels."""
    rng = np.random.default_rng(seed)
    values = 400 + 300 * np.cumsum(np.cumsum(rng.normal(size=shape), 0), 1) / np.prod(shape[:2]) ** 0.5
    image = nibabel.Nifti1Image(np.round(values).astype(np.int16), np.diag([*zooms, 1.0]))
    image.header.set_zooms(zooms)
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(image, str(path))
    return path


@pytest.fixture
def model(tmp_path):
    return through_plane_model(tmp_path / "g3.pth", R)


def selfsr_main(source, out, model, *extra) -> int:
    return selfsr.main(["-i", str(source), "-o", str(out), "--model", str(model), "--device", "cpu", "-q", *extra])


def summary(out) -> list[dict]:
    with open(out / "cohort_summary.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["scan", "status", "result", "r", "slice_thickness_mm", "thickness_source",
                             "iterations", "seconds", "started_from", "error"]
    return rows


def error_lines(capsys) -> list[str]:
    lines = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    return lines


def voxels(path) -> np.ndarray:
    return np.asarray(nibabel.load(str(path)).dataobj)


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_two_good_scans_a_corrupt_one_and_a_readme_then_a_rerun(tmp_path, model, capsys):
    folder = tmp_path / "cohort"
    small_scan(folder / "a.nii.gz", seed=1)
    (folder / "a.json").write_text(json.dumps({"SliceThickness": 2.5}))  # a's BIDS sidecar
    small_scan(folder / "b.nii.gz", seed=2)
    (folder / "bad.nii.gz").write_bytes(b"\x1f\x8b not a NIfTI, cut short")
    (folder / "README").write_text("scans of the cohort")
    out = tmp_path / "out"
    assert selfsr_main(folder, out, model) == selfsr_cohort.SOME_FAILED == 1
    errors = error_lines(capsys)
    assert len(errors) == 1 and str(folder / "bad.nii.gz") in errors[0]
    rows = {row["scan"]: row for row in summary(out)}
    assert list(rows) == ["a.nii.gz", "b.nii.gz", "bad.nii.gz"]  # README: not a scan, not a row
    assert [rows[s]["status"] for s in rows] == ["done", "done", "failed"]
    assert rows["a.nii.gz"]["result"] == "a_selfsr_x3.nii.gz" and rows["b.nii.gz"]["result"] == "b_selfsr_x3.nii.gz"
    assert rows["a.nii.gz"]["r"] == rows["b.nii.gz"]["r"] == "3"
    assert (rows["a.nii.gz"]["slice_thickness_mm"], rows["b.nii.gz"]["slice_thickness_mm"]) == ("2.5", "3")
    assert "sidecar a.json" in rows["a.nii.gz"]["thickness_source"]
    assert rows["b.nii.gz"]["thickness_source"].startswith("assumed = slice spacing")
    assert rows["a.nii.gz"]["iterations"] == "" and float(rows["a.nii.gz"]["seconds"]) >= 0  # --model; 0.0 s can be
    assert rows["bad.nii.gz"]["result"] == "" and "bad.nii.gz" in rows["bad.nii.gz"]["error"]
    # each scan as a single run of it writes it (the oracle: medsr-selfsr -i scan.nii.gz)
    assert selfsr_main(folder / "a.nii.gz", tmp_path / "single", model) == 0
    single = tmp_path / "single" / "a_selfsr_x3.nii.gz"
    np.testing.assert_array_equal(voxels(out / "a_selfsr_x3.nii.gz"), voxels(single))
    capsys.readouterr()

    kept = {name: md5(out / name) for name in ("a_selfsr_x3.nii.gz", "b_selfsr_x3.nii.gz")}
    assert selfsr.main(["-i", str(folder), "-o", str(out), "--model", str(model), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("done already") == 2 and err.count("error: ") == 1
    assert {name: md5(out / name) for name in kept} == kept
    again = {row["scan"]: row for row in summary(out)}
    assert [again[s]["status"] for s in again] == ["skipped: done already"] * 2 + ["failed"]
    for scan in ("a.nii.gz", "b.nii.gz"):  # what the run that made it reported
        assert {k: again[scan][k] for k in ("result", "r", "slice_thickness_mm", "thickness_source")} == {
            k: rows[scan][k] for k in ("result", "r", "slice_thickness_mm", "thickness_source")}


def test_a_dicom_series_folder_is_still_one_scan(tmp_path, model, capsys):
    series = mr_series(tmp_path / "series", count=4, gap=0.3125 * R)
    (series / "converted.nii").write_bytes(b"dcm2niix's output beside the slices")
    assert selfsr_main(series, tmp_path / "out", model, "--scale", str(R)) == 0
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["series_selfsr_x3", "series_selfsr_x3_report.json"]
    assert len(list((tmp_path / "out" / "series_selfsr_x3").iterdir())) == 4 * R


def test_a_folder_of_series_sub_folders_and_nested_scans_of_one_name(tmp_path, model, capsys):
    folder = tmp_path / "cohort"
    for name in ("ct2", "ct1"):
        mr_series(folder / name, count=4, gap=0.3125 * R)
    for patient in ("pA", "pB"):
        small_scan(folder / patient / "scan.nii.gz", seed=ord(patient[-1]))
    out = tmp_path / "out"
    assert selfsr.main(["-i", str(folder), "-o", str(out), "--model", str(model), "--device", "cpu",
                        "--scale", str(R), "--time", "2m"]) == 0
    err = capsys.readouterr().err
    assert f"note: --scale {R}: the same for every scan" in err and "note: --time 2m: each scan's budget" in err
    rows = summary(out)
    assert [(row["scan"], row["status"], row["result"]) for row in rows] == [
        ("ct1", "done", "ct1_selfsr_x3"), ("ct2", "done", "ct2_selfsr_x3"),
        ("pA/scan.nii.gz", "done", "pA/scan_selfsr_x3.nii.gz"), ("pB/scan.nii.gz", "done", "pB/scan_selfsr_x3.nii.gz")]
    uids = set()
    for name in ("ct1", "ct2"):
        written = [pydicom.dcmread(str(p)) for p in (out / f"{name}_selfsr_x3").iterdir()]
        assert len(written) == 4 * R
        uids |= {ds.SeriesInstanceUID for ds in written}
    assert len(uids) == 2  # two series, one result each
    a, b = (voxels(out / patient / "scan_selfsr_x3.nii.gz") for patient in ("pA", "pB"))
    assert not np.array_equal(a, b)  # each its own scan's


@pytest.mark.parametrize("case", ["clash", "empty", "output_is_input", "bad_time", "labels"])
def test_mistakes_found_before_any_scan_are_one_line_exit_2_nothing_made(tmp_path, model, capsys, case):
    folder = tmp_path / "cohort"
    folder.mkdir()
    scans = {"clash": ["a.nii", "a.nii.gz"], "empty": []}.get(case, ["a.nii.gz"])
    for seed, name in enumerate(scans):
        small_scan(folder / name, seed=seed)
    out = folder if case == "output_is_input" else tmp_path / "out"
    extra = {"bad_time": ["--time", "soon"], "labels": ["--labels", str(folder / "a.nii.gz")]}.get(case, [])
    assert selfsr_main(folder, out, model, *extra) == 2
    [line] = error_lines(capsys)
    says = {"clash": "a.nii and a.nii.gz would both write results named a_selfsr_",
            "empty": f"{folder}: no scans in it", "output_is_input": "the cohort folder itself",
            "bad_time": "--time soon", "labels": "a label map belongs to one scan"}[case]
    assert says in line
    assert not (tmp_path / "out").exists() and sorted(p.name for p in folder.iterdir()) == scans


def test_a_bug_keeps_its_traceback_after_the_summary_says_where_it_stopped(tmp_path, model, monkeypatch):
    folder = tmp_path / "cohort"
    for name in ("a", "b", "c"):
        small_scan(folder / f"{name}.nii.gz", seed=ord(name))
    applied = selfsr.apply_network

    def second_fails(values, *args, **kwargs):
        if (tmp_path / "out" / "a_selfsr_x3.nii.gz").exists():
            raise RuntimeError("a bug")
        return applied(values, *args, **kwargs)

    monkeypatch.setattr(selfsr, "apply_network", second_fails)
    with pytest.raises(RuntimeError, match="a bug"):
        selfsr_main(folder, tmp_path / "out", model)
    assert [(row["scan"], row["status"], row["error"]) for row in summary(tmp_path / "out")] == [
        ("a.nii.gz", "done", ""), ("b.nii.gz", "failed", "stopped by RuntimeError"), ("c.nii.gz", "not reached", "")]


@pytest.mark.slow
def test_each_scan_trains_its_own_model_in_one_process(tmp_path):
    """Two trainings through BasicSR's loop in one process, each in its own experiment folder under the scan's
    output folder, the iterations in the summary."""
    folder = tmp_path / "cohort"
    small_scan(folder / "x" / "a.nii.gz", seed=1, shape=(32, 28, 8))
    small_scan(folder / "b.nii.gz", seed=2, shape=(32, 28, 8))
    recipe = tiny_recipe(tmp_path / "tiny.yml", total_iter=4, checkpoint_every=2)
    out = tmp_path / "out"
    assert selfsr.main(["-i", str(folder), "-o", str(out), "-opt", str(recipe), "--device", "cpu", "-q",
                        "--iterations", "3"]) == 0
    rows = summary(out)
    assert [(row["scan"], row["status"], row["iterations"]) for row in rows] == [
        ("b.nii.gz", "done", "3"), ("x/a.nii.gz", "done", "3")]
    for experiment in (out / "experiments" / "b_selfsr_x3", out / "x" / "experiments" / "a_selfsr_x3"):
        assert (experiment / "models" / "net_g_latest.pth").is_file()
