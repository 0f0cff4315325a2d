"""Reading and writing the images a user brings: PNG / JPEG / TIFF / PPM / BMP through OpenCV (DICOM and NIfTI
volumes: :mod:`medsr_se.io.volumes`); every write goes through :func:`medsr_se.io.publish.write_atomically`, and
every image medsr-se encodes (PNG pieces of a dataset, sheets, results) through :func:`encode_image`.
Shared by ``medsr-infer``, the Python API and evaluation.

Pixels are numpy arrays as OpenCV stores them: (H, W) gray or (H, W, C) BGR, uint8 or uint16.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from medsr_se.errors import DataError
from medsr_se.io.publish import WriteError, write_atomically

__all__ = ["IMAGE_SUFFIXES", "PNG_DTYPES", "SUFFIXES", "WriteError", "encode_image", "read_image", "write_atomically",
           "write_image"]

# The one list of image suffixes (files OpenCV reads as images); dataset preparation and the option checks import it.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".pnm", ".bmp")
# medsr-infer's inputs: the images and DICOM files (.dcm is no OpenCV image: medsr_se.io.volumes reads it)
SUFFIXES = (*IMAGE_SUFFIXES, ".dcm")
# OpenCV refuses images of more pixels than this (CV_IO_MAX_IMAGE_PIXELS, 2^30 by default) with its own error
OPENCV_MAX_PIXELS = int(os.environ.get("CV_IO_MAX_IMAGE_PIXELS", 1 << 30))


def read_image(path: Path) -> np.ndarray:
    """Pixels as stored; DataError (a ValueError) naming the file when OpenCV cannot read it (or refuses its
    size)."""
    try:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # e.g. a header claiming more pixels than OpenCV allows
        raise DataError(f"{path}: OpenCV refuses to read it ({_opencv_reason(error)})") from error
    if image is None:
        raise DataError(f"{path}: cannot read the image (unsupported, corrupt, or larger than OpenCV's limit of "
                        f"{OPENCV_MAX_PIXELS} pixels)")
    return image


def _opencv_reason(error: cv2.error) -> str:
    """OpenCV's reason without its source location."""
    text = " ".join(str(error).split())
    if "CV_IO_MAX_IMAGE_PIXELS" in text:
        return f"its header claims more than OpenCV's limit of {OPENCV_MAX_PIXELS} pixels"
    return text.rpartition(" error: ")[2] or "cv2.error"


# what each format holds (OpenCV converts anything else to 8 bits with only a log line: refused here instead)
PNG_DTYPES = (np.uint8, np.uint16)


def encode_image(pixels: np.ndarray, suffix: str = ".png", compression: int | None = None) -> bytes:
    """The encoded file's bytes: the one image encoder of medsr-se (every PNG it writes comes from here).

    ``compression``: the PNG zlib level 0-9 (``cv2.IMWRITE_PNG_COMPRESSION``; None: OpenCV's defaults, which give
    other bytes than any explicit level). ValueError saying why when these pixels cannot be encoded in that format:
    no pixels, a channel count other than 1, 3 or 4, a PNG of another type than uint8 / uint16 (OpenCV would
    quietly write it as 8 bits)."""
    suffix = suffix.lower()
    if suffix == ".png" and pixels.dtype not in PNG_DTYPES:
        raise ValueError(f"a PNG holds 8- or 16-bit unsigned integer pixels, not {pixels.dtype}")
    parameters = [] if compression is None else [cv2.IMWRITE_PNG_COMPRESSION, int(compression)]
    try:
        ok, buffer = cv2.imencode(suffix, pixels, parameters)
    except cv2.error as error:  # no pixels, 2 or 5 channels, ...: OpenCV asserts
        raise ValueError(f"OpenCV cannot encode a {pixels.dtype} image of shape {pixels.shape} as {suffix} "
                         f"({_opencv_reason(error)})") from error
    if not ok:
        raise ValueError(f"OpenCV cannot encode a {pixels.dtype} image of shape {pixels.shape} as {suffix}")
    return buffer.tobytes()


def write_image(path: Path, pixels: np.ndarray, compression: int | None = None) -> None:
    """Encode ``pixels`` in the format of ``path``'s suffix (:func:`encode_image`) and write it atomically
    (:func:`write_atomically`). Unlike ``cv2.imwrite``, a failure is never a silent ``False``: pixels the format
    cannot hold, or a file that cannot be written, are a :class:`WriteError` naming the file."""
    path = Path(path)
    try:
        data = encode_image(pixels, path.suffix.lower() or ".png", compression)
    except ValueError as error:
        raise WriteError(f"{path}: cannot write it ({error})") from error
    write_atomically(path, lambda temporary: Path(temporary).write_bytes(data))
