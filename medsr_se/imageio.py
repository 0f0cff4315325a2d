"""Reading and writing the images a user brings: PNG / JPEG / TIFF / PPM / BMP through OpenCV, single-frame DICOM
through pydicom (the ``dicom`` extra). Shared by ``medsr-infer``, the Python API and evaluation.

Pixels are numpy arrays as OpenCV stores them: (H, W) gray or (H, W, C) BGR, uint8 or uint16.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".bmp", ".dcm")
SIGNED_OFFSET = 32768  # int16 <-> uint16 for the network; undone before writing


def read_dicom(path: Path):
    """(dataset, pixels as uint8/uint16) of a single-frame monochrome DICOM; signed pixels are offset by 32768."""
    try:
        import pydicom
    except ImportError as error:
        raise ValueError('reading DICOM needs the extra: pip install "medsr-se[dicom]"') from error
    try:
        dataset = pydicom.dcmread(str(path))
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom raises many types for damaged files
        raise ValueError(f"{path}: cannot read the DICOM pixel data ({error})") from error
    if pixels.ndim != 2 or pixels.dtype not in (np.uint8, np.uint16, np.int16):
        raise ValueError(f"{path}: only single-frame monochrome 8/16-bit DICOM is supported "
                         f"(got {pixels.dtype}, shape {pixels.shape})")
    if pixels.dtype == np.int16:
        pixels = (pixels.astype(np.int32) + SIGNED_OFFSET).astype(np.uint16)
    return dataset, pixels


def write_dicom(dataset, result: np.ndarray, scale: int, path: Path) -> None:
    """The input's DICOM with the super-resolved pixels: same pixel type, new size, spacing / scale, new UID."""
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    if dataset.get("PixelRepresentation", 0) == 1:
        result = (result.astype(np.int32) - SIGNED_OFFSET).astype(np.int16)
    dataset.Rows, dataset.Columns = result.shape
    if "PixelSpacing" in dataset:
        dataset.PixelSpacing = [float(v) / scale for v in dataset.PixelSpacing]
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.PixelData = np.ascontiguousarray(result).tobytes()
    dataset.save_as(str(path), enforce_file_format=True)


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: cannot read the image (unsupported or corrupt)")
    return image
