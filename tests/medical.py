"""Real CT / MR files that pydicom and nibabel ship, and series built from them, for the volume tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator


def nibabel_data() -> Path:
    import nibabel

    return Path(os.path.dirname(nibabel.__file__)) / "tests" / "data"


def pydicom_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file(name))


def bicubic_skip_model(path: Path, scale: int = 2, channels: int = 1) -> str:
    """An untrained SEEDSRGenerator with the image skip: exactly torch's bicubic upsampling ("identity-like")."""
    torch.manual_seed(0)
    net = SEEDSRGenerator(channels, channels, num_feat=8, num_block=1, upscale=scale, img_residual=True)
    torch.save({"params": net.state_dict()}, path)
    return str(path)


def torch_bicubic(values: np.ndarray, scale: int) -> np.ndarray:
    from medsr_se.archs.seedsr_arch import bicubic_upsample

    tensor = torch.from_numpy(np.ascontiguousarray(values, np.float32))[None, None]
    return bicubic_upsample(tensor, scale)[0, 0].numpy()


def ct_series(folder: Path, volumes: int = 3, slices: int = 3) -> Path:
    """``volumes`` CT series of ``slices`` slices each from pydicom's CT_small.dcm (rolled / flipped per slice so
    slices differ), each in its own sub-folder with its own SeriesInstanceUID and slice positions 2.5 mm apart."""
    import pydicom
    from pydicom.uid import generate_uid

    source = pydicom.dcmread(str(pydicom_file("CT_small.dcm")))
    pixels = source.pixel_array
    for volume in range(volumes):
        series_uid, series_folder = generate_uid(), folder / f"patient{volume}"
        series_folder.mkdir(parents=True)
        for index in range(slices):
            dataset = source.copy()
            image = np.roll(pixels, 7 * index + 13 * volume, axis=1)
            image = image[::-1] if (index + volume) % 2 else image
            dataset.PixelData = np.ascontiguousarray(image).tobytes()
            dataset.SeriesInstanceUID, dataset.SOPInstanceUID = series_uid, generate_uid()
            dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
            position = [float(v) for v in source.ImagePositionPatient]
            dataset.ImagePositionPatient = [position[0], position[1], position[2] + 2.5 * index]
            dataset.InstanceNumber = index + 1
            dataset.save_as(str(series_folder / f"slice{slices - index}.dcm"), enforce_file_format=True)
    return folder


def mr_series(folder: Path) -> Path:
    """nibabel's two-file MR series (0.dcm / 1.dcm), named so that name order is the reverse of slice order."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(nibabel_data() / "0.dcm", folder / "b.dcm")  # z = -75.1 (first along the normal)
    shutil.copy(nibabel_data() / "1.dcm", folder / "a.dcm")  # z = -72.1
    return folder


def dicom_world(dataset, rows, columns) -> np.ndarray:
    """Patient coordinates (mm) of pixel (row, column) from ImagePositionPatient, ImageOrientationPatient and
    PixelSpacing as pydicom reads them (DICOM PS3.3 C.7.6.2.1.1): position + column·Δc·X + row·Δr·Y."""
    position = np.asarray(dataset.ImagePositionPatient, float)
    orientation = np.asarray(dataset.ImageOrientationPatient, float)
    x, y = orientation[:3], orientation[3:]
    row_spacing, column_spacing = (float(v) for v in dataset.PixelSpacing)
    rows, columns = np.asarray(rows, float)[..., None], np.asarray(columns, float)[..., None]
    return position + columns * column_spacing * x + rows * row_spacing * y
