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


# ------------------------------------------------------------------------------------------ the one encoder
def test_the_one_encoder_round_trips_every_pixel_type_the_package_writes():
    """Oracles: OpenCV's decoder and Pillow's (another PNG implementation): the same pixels come back."""
    from io import BytesIO

    from PIL import Image

    rng = np.random.default_rng(0)
    for pixels in (rng.integers(0, 256, (20, 24, 3), dtype=np.uint8), rng.integers(0, 256, (20, 24), dtype=np.uint8),
                   rng.integers(0, 65536, (20, 24), dtype=np.uint16)):
        for compression in (None, 1, 9):
            data = images.encode_image(pixels, ".png", compression)
            np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), pixels)
            decoded = np.array(Image.open(BytesIO(data)))
            np.testing.assert_array_equal(decoded[..., ::-1] if pixels.ndim == 3 else decoded, pixels)


def test_the_pieces_and_sheets_keep_their_bytes():
    """What the preparation's LMDBs and test folders held (PNG level 1) and what the sheets were (OpenCV's defaults),
    byte for byte, as OpenCV's own calls gave them."""
    from medsr_se.prepare.pieces import PNG_LEVEL, encode_png

    pixels = np.random.default_rng(1).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert encode_png(pixels) == cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])[1].tobytes()
    assert images.encode_image(pixels) == cv2.imencode(".png", pixels)[1].tobytes()


@pytest.mark.parametrize("pixels", [np.zeros((0, 4), np.uint8), np.zeros((4, 4, 5), np.uint8),
                                    np.linspace(0, 1, 16).reshape(4, 4), np.full((4, 4), -3, np.int16)])
def test_pixels_a_png_cannot_hold_are_a_write_error_naming_the_file(tmp_path, pixels):
    """Before: OpenCV's own cv2.error (no file named) for no pixels or 5 channels, and a float or int16 image
    silently written as 8 bits (0.0-1.0 -> 0 and 1, -3 -> 0)."""
    target = tmp_path / "out.png"
    with pytest.raises(images.WriteError, match=f"^{target}: cannot write it"):
        images.write_image(target, pixels)
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_is_a_write_error_naming_the_file(tmp_path):
    target = tmp_path / "missing" / "out.png"
    with pytest.raises(images.WriteError, match=f"^{target}: cannot write it"):
        images.write_image(target, np.zeros((4, 4), np.uint8))


def test_no_other_module_encodes_images():
    """One encoder: no module of the package but io/images.py calls cv2.imencode / cv2.imwrite."""
    import ast
    from pathlib import Path

    import medsr_se

    package = Path(medsr_se.__file__).parent
    callers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("imencode", "imwrite")):
                callers.add(path.relative_to(package.parent).as_posix())
    callers.discard("medsr_se/io/images.py")
    assert callers == set(), callers


def test_an_unreadable_image_is_a_data_error_naming_the_file(tmp_path):
    """read_image's refusal is a DataError (a MedSRError, still a ValueError), so a command shows it as one
    ``error:`` line; it was a plain ValueError, which a command now shows with its traceback (a bug's)."""
    from medsr_se.errors import DataError

    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    with pytest.raises(DataError, match=r"broken\.png: cannot read the image") as raised:
        images.read_image(tmp_path / "broken.png")
    assert isinstance(raised.value, ValueError)
