"""Preparation straight from DICOM series and NIfTI volumes, training on them, evaluation at 16 bits."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from medsr_se.cli import evaluate as evaluate_cli
from medsr_se.cli import infer
from medsr_se.cli import prepare as prepare_cli
from medsr_se.io.intensity import ct_window
from medsr_se.prepare import Params, prepare
from medsr_se.prepare.volume_slices import VolumeOptions
from tests.medical import ct_series, nibabel_data
from tests.test_recipe import train_option_file

pytest.importorskip("pydicom", reason="the medical extra is part of the test extra")


@pytest.fixture(scope="module")
def ct_dataset(tmp_path_factory):
    """Three CT series (CT_small.dcm variants) prepared for x4 with the default full window."""
    base = tmp_path_factory.mktemp("ct")
    source = ct_series(base / "dicom", volumes=3, slices=3)
    manifest = prepare(source, base / "datasets" / "CT", Params((4,), 128, 64, gray=False, keep_depth=False),
                       n_test=1, workers=1, progress=False)
    return base, manifest


def test_dicom_folder_prepares_by_volume_with_the_intensity_model(ct_dataset):
    """Before: "no images found" for .dcm."""
    base, manifest = ct_dataset
    assert manifest["modality"] == "CT" and manifest["intensity"]["unit"] == "HU"
    assert (manifest["intensity"]["low"], manifest["intensity"]["high"]) == (-1024, 3071)
    assert manifest["parameters"]["gray"] and manifest["parameters"]["keep_depth"]
    volumes = manifest["volumes"]["volumes"]
    assert set(volumes) == {"patient0", "patient1", "patient2"}
    test_volumes = {stem.rsplit("_", 1)[0] for stem in manifest["split"]["test"]}
    train_volumes = {stem.rsplit("_", 1)[0] for stem in manifest["split"]["train"]}
    assert len(test_volumes) == 1 and not test_volumes & train_volumes  # no patient on both sides
    assert len(manifest["split"]["test"]) == 3 and len(manifest["split"]["train"]) == 6
    hr = cv2.imread(str(next((base / "datasets" / "CT" / "test" / "HR").glob("*.png"))), cv2.IMREAD_UNCHANGED)
    assert hr.dtype == np.uint16 and hr.ndim == 2
    # the stored values are the HU window: CT_small's -896 ... 1167 HU, not a 3 % sliver of the range
    hu = ct_window("full").from_unit(hr / 65535.0)
    assert hu.min() == pytest.approx(-896, abs=1) and hu.max() == pytest.approx(1167, abs=1)


@pytest.mark.slow
def test_training_on_it_records_the_intensity_and_evaluation_reads_16_bits(ct_dataset, tmp_path, capsys):
    """x4_gray trains on the DICOM-prepared data; the checkpoint carries the intensity model, medsr-infer uses it,
    and medsr-evaluate measures the 16-bit gray test split (before: read as 8-bit, "field-of-view mask is empty")."""
    base, _ = ct_dataset
    log = train_option_file("x4_gray.yml", "ct_x4", 2, base,
                            ["datasets:train:gt_size=64", "network_g:num_feat=8", "network_g:num_block=1",
                             "logger:print_freq=1"])
    assert "Validation CT_test" in log
    checkpoint = base / "experiments" / "ct_x4" / "models" / "net_g_2.pth"
    record = torch.load(checkpoint, weights_only=True)["medsr_se_data"]
    assert record["modality"] == "CT" and record["intensity"]["low"] == -1024
    assert evaluate_cli.main(["--data", str(base / "datasets" / "CT"), "--model", f"x4={checkpoint}",
                              "-o", str(tmp_path / "eval"), "--no-niqe"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| x4 |")]
    assert len(rows) == 2 and all("| 3 |" in row for row in rows)
    cells = [[cell.strip() for cell in row.split("|")] for row in rows]
    assert all(row[8:12] == ["–", "–", "–", "–"] for row in cells)  # FOV, vessel and STARE figures: not for CT
    bicubic_psnr = float(cells[0][4])
    assert 20 < bicubic_psnr < 80  # 16-bit values measured at their depth
    sheet = cv2.imread(str(next((tmp_path / "eval" / "sheets").glob("*.png"))))
    assert sheet is not None and sheet.shape[2] == 3
    # inference on a DICOM series uses the checkpoint's window (no --window given)
    assert infer.main(["-i", str(base / "dicom" / "patient0"), "-o", str(tmp_path / "sr"), "--model",
                       str(checkpoint)]) == 0
    assert "intensity window full [-1024, 3071] HU" in capsys.readouterr().err


def test_nifti_preparation_with_a_percentile_window_and_cli_errors(tmp_path, capsys):
    nifti = tmp_path / "mri"
    nifti.mkdir()
    import shutil

    for name in ("anatomical.nii", "example4d.nii.gz"):
        shutil.copy(nibabel_data() / name, nifti / name)
    manifest = prepare(nifti, tmp_path / "MR", Params((2,), 32, 16, gray=True, keep_depth=True), n_test=1,
                       workers=1, progress=False, volume_options=VolumeOptions(intensity="percentile"))
    assert manifest["intensity"]["kind"] == "percentile" and manifest["modality"] == "volume"
    assert set(manifest["volumes"]["volumes"]) == {"anatomical", "example4d"}
    assert json.loads((tmp_path / "MR" / "manifest.json").read_text())["intensity"] == manifest["intensity"]
    assert prepare_cli.main([str(nifti), "-o", str(tmp_path / "x"), "--window", "nope"]) == 2
    assert "error: --window" in capsys.readouterr().err
    assert prepare_cli.main([str(nifti), "-o", str(tmp_path / "x"), "--n-test", "5", "--scales", "2"]) == 2
    assert "count volumes: 2 found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
