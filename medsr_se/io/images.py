"""Reading and writing the images a user brings: PNG / JPEG / TIFF / PPM / BMP through OpenCV (DICOM and NIfTI
volumes: :mod:`medsr_se.io.volumes`); every write goes through :func:`medsr_se.io.publish.write_atomically`.
Shared by ``medsr-infer``, the Python API and evaluation.

Pixels are numpy arrays as OpenCV stores them: (H, W) gray or (H, W, C) BGR, uint8 or uint16.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from medsr_se.io.publish import WriteError, write_atomically

__all__ = ["IMAGE_SUFFIXES", "SUFFIXES", "WriteError", "encode_image", "read_image", "write_atomically",
           "write_image"]

# The one list of image suffixes (files OpenCV reads as images); dataset preparation and the option checks import it.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".pnm", ".bmp")
# medsr-infer's inputs: the images and DICOM files (.dcm is no OpenCV image: medsr_se.io.volumes reads it)
SUFFIXES = (*IMAGE_SUFFIXES, ".dcm")
# OpenCV refuses images of more pixels than this (CV_IO_MAX_IMAGE_PIXELS, 2^30 by default) with its own error
OPENCV_MAX_PIXELS = int(os.environ.get("CV_IO_MAX_IMAGE_PIXELS", 1 << 30))


def read_image(path: Path) -> np.ndarray:
    """Pixels as stored; ValueError naming the file when OpenCV cannot read it (or refuses its size)."""
    try:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # e.g. a header claiming more pixels than OpenCV allows
        raise ValueError(f"{path}: OpenCV refuses to read it ({_opencv_reason(error)})") from error
    if image is None:
        raise ValueError(f"{path}: cannot read the image (unsupported, corrupt, or larger than OpenCV's limit of "
                         f"{OPENCV_MAX_PIXELS} pixels)")
    return image


def _opencv_reason(error: cv2.error) -> str:
    """OpenCV's reason without its source location."""
    text = " ".join(str(error).split())
    if "CV_IO_MAX_IMAGE_PIXELS" in text:
        return f"its header claims more than OpenCV's limit of {OPENCV_MAX_PIXELS} pixels"
    return text.rpartition(" error: ")[2] or "cv2.error"


def encode_image(pixels: np.ndarray, suffix: str = ".png") -> bytes:
    """The encoded file's bytes; ValueError when OpenCV cannot encode these pixels in that format."""
    ok, buffer = cv2.imencode(suffix, pixels)
    if not ok:
        raise ValueError(f"OpenCV cannot encode a {pixels.dtype} image of shape {pixels.shape} as {suffix}")
    return buffer.tobytes()


def write_image(path: Path, pixels: np.ndarray) -> None:
    """Encode ``pixels`` in the format of ``path``'s suffix and write it atomically (:func:`write_atomically`);
    unlike ``cv2.imwrite``, a failure is an exception naming the file, never a silent ``False``."""
    data = encode_image(pixels, Path(path).suffix.lower() or ".png")
    write_atomically(Path(path), lambda temporary: Path(temporary).write_bytes(data))
