"""STARE-shaped archives made of real fundus pixels, for the benchmarks (loader, prepare_speed), the tests (which
import it from here) and trying ``medsr-prepare-stare`` without the STARE download.

Every image is a random square crop of a fundus photograph (e.g. ``skimage.data.retina()``), resized to STARE's
700 x 605 and named ``imNNNN`` as in STARE. ``write_stare_zip`` writes an archive like ``all-images.zip`` (plain
``imNNNN.ppm``), ``write_stare_tar`` one like STARE's subsets (a tar of ``imNNNN.ppm.gz``).
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

STARE_SIZE = (605, 700)  # height, width of every STARE photograph
STARE_MISSING = (17, 100, 200, 300, 400)  # with 402 numbers: 397 images, as many as STARE has


def stare_like_images(photo_rgb: np.ndarray, count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``imNNNN`` -> 605 x 700 x 3 BGR uint8 images cut from ``photo_rgb`` (H x W x 3 RGB, larger than 1000²)."""
    rng = np.random.default_rng(seed)
    images = {}
    for number in range(1, count + 1):
        size = int(rng.integers(500, 1000))
        top, left = rng.integers(0, photo_rgb.shape[0] - size, size=2)
        crop = photo_rgb[top:top + size, left:left + size, ::-1]
        images[f"im{number:04d}"] = cv2.resize(crop, STARE_SIZE[::-1], interpolation=cv2.INTER_AREA)
    return images


def ppm_bytes(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".ppm", image)
    if not ok:
        raise ValueError(f"OpenCV could not encode an image of shape {image.shape} as PPM")
    return buffer.tobytes()


def write_stare_zip(images: dict[str, np.ndarray], path: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Like STARE's ``all-images.zip``: plain ``imNNNN.ppm`` members (plus ``extra`` name -> bytes members)."""
    with zipfile.ZipFile(path, "w") as archive:
        for stem, image in images.items():
            archive.writestr(f"{stem}.ppm", ppm_bytes(image))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def write_stare_tar(images: dict[str, np.ndarray], path: Path, truncate: set[str] = frozenset(),
                    extra: dict[str, bytes] | None = None) -> Path:
    """Like STARE's subsets: a tar of ``imNNNN.ppm.gz``; stems in ``truncate`` get a cut-off gzip member."""
    members = {f"{stem}.ppm.gz": gzip.compress(ppm_bytes(image), compresslevel=1) for stem, image in images.items()}
    for stem in truncate:
        data = members[f"{stem}.ppm.gz"]
        members[f"{stem}.ppm.gz"] = data[: len(data) // 2]
    members.update(extra or {})
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def write_stare_shaped_zip(photo_rgb: np.ndarray, path: Path, numbers: int = 402, seed: int = 0) -> tuple[Path, int]:
    """``all-images.zip`` with STARE's numbering: ``imNNNN`` for N in 1..numbers except ``STARE_MISSING``
    (402 numbers give STARE's 397 images). Returns (path, image count)."""
    images = stare_like_images(photo_rgb, numbers, seed)
    for number in STARE_MISSING:
        images.pop(f"im{number:04d}", None)
    return write_stare_zip(images, path), len(images)
