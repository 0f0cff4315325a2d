"""Reading and writing the images a user brings: PNG / JPEG / TIFF / PPM / BMP through OpenCV (DICOM and NIfTI
volumes: :mod:`medsr_se.volumes`), and the one checked, atomic writer every output goes through. Shared by
``medsr-infer``, the Python API and evaluation.

Pixels are numpy arrays as OpenCV stores them: (H, W) gray or (H, W, C) BGR, uint8 or uint16.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".bmp", ".dcm")
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


class WriteError(OSError):
    """A file that could not be written; the message names it. Nothing is left at its path."""


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary)`` into a hidden file beside ``path``, flushed to disk, then renamed onto ``path``.

    A failure (full disk, read-only folder, an encoder error) removes the temporary file and raises
    :class:`WriteError` naming ``path``; a reader never sees a partly written file at ``path``.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except Exception as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise WriteError(f"{path}: cannot write it ({reason})") from error


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
