"""The one list of image suffixes (medsr_se.io.images.IMAGE_SUFFIXES) and the places that use it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from medsr_se.io import images
from medsr_se.prepare import sources
from medsr_se.utils import options


@pytest.mark.parametrize("suffix", images.IMAGE_SUFFIXES)
def test_every_image_suffix_is_an_image_opencv_writes_and_reads(tmp_path, suffix):
    """The oracle is OpenCV itself: what the list calls an image must round-trip through cv2 (.dcm must not)."""
    pixels = (np.arange(48 * 40, dtype=np.uint32).reshape(48, 40) % 251).astype(np.uint8)
    if suffix != ".pgm":  # a portable *grey*map is one channel; the others take BGR (OpenCV 5 refuses a gray .ppm)
        pixels = np.dstack([pixels, pixels[::-1], pixels[:, ::-1]])
    assert cv2.imwrite(str(tmp_path / f"x{suffix}"), pixels)
    assert cv2.imread(str(tmp_path / f"x{suffix}"), cv2.IMREAD_UNCHANGED).shape[:2] == (48, 40)


def test_the_other_lists_are_derived_from_the_one():
    assert sources.IMAGE_SUFFIXES is images.IMAGE_SUFFIXES  # dataset preparation: the same list
    assert images.SUFFIXES == (*images.IMAGE_SUFFIXES, ".dcm")  # medsr-infer: the images and DICOM files


@pytest.mark.parametrize("suffix", [".pgm", ".pnm"])
def test_the_option_check_finds_every_kind_the_preparation_writes_or_reads(tmp_path, suffix):
    """Before: options.py had its own list without .pgm / .pnm, so a folder of them had no "first HR image"."""
    cv2.imwrite(str(tmp_path / f"im0001{suffix}"), np.zeros((24, 32), np.uint8))
    assert options._first_hr_shape(str(tmp_path), "disk") == (24, 32)
