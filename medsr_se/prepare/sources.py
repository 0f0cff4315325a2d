"""Reading the images of a dataset download: a zip, a tar (any compression) or a folder.

STARE's full set is ``all-images.zip`` of ``imNNNN.ppm``; its subsets are tars of ``imNNNN.ppm.gz``. Folders of
png / jpg / tif / ppm (DRIVE, CHASE_DB1, HRF, an extracted STARE) work the same way. Every image is identified by
its stem (``im0001``); members that are not images are listed as ignored, and two members with the same stem are
an error (a split by stem would be ambiguous).
"""

from __future__ import annotations

import gzip
import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from medsr_se.errors import DataError
from medsr_se.io.images import IMAGE_SUFFIXES


class BadImageError(DataError):
    """An archive member or file that cannot be read or decoded; the message names it."""


@dataclass(frozen=True)
class SourceImage:
    stem: str
    container: str  # the zip / tar holding it, "" for a plain file
    member: str  # name inside the container, or the file path
    gzipped: bool

    @property
    def name(self) -> str:
        """How the user finds it: ``archive.tar:im0001.ppm.gz`` or the file path."""
        return f"{self.container}:{self.member}" if self.container else self.member


def _image_stem(name: str) -> tuple[str, bool] | None:
    """(stem, gzipped) for an image file name, None for anything else."""
    base = os.path.basename(name)
    if base.startswith(".") or "__MACOSX" in name:
        return None
    gzipped = base.lower().endswith(".gz")
    if gzipped:
        base = base[:-3]
    stem, suffix = os.path.splitext(base)
    return (stem, gzipped) if suffix.lower() in IMAGE_SUFFIXES and stem else None


def _member_names(source: Path) -> tuple[str, list[str]]:
    """(container, names of the files in it) for a folder, zip or tar."""
    if source.is_dir():
        return "", sorted(str(p) for p in source.rglob("*") if p.is_file())
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            return str(source), [info.filename for info in archive.infolist() if not info.is_dir()]
    if tarfile.is_tarfile(source):
        try:
            with tarfile.open(source, "r:*") as archive:
                return str(source), [member.name for member in archive.getmembers() if member.isfile()]
        except (tarfile.TarError, EOFError, OSError) as error:
            raise BadImageError(f"{source}: cannot list the archive ({error})") from error
    raise DataError(f"{source}: not a folder, zip or tar archive")


def list_images(source: Path) -> tuple[list[SourceImage], list[str]]:
    """The images of ``source`` sorted by stem, and the names that were ignored (not images). FileNotFoundError when
    ``source`` does not exist; :class:`~medsr_se.errors.DataError` naming the file for a source that cannot be
    prepared (not an archive, no images, a name that cannot be a key, two images of one stem)."""
    if not source.exists():
        raise FileNotFoundError(f"input not found: {source}")
    container, names = _member_names(source)
    images: dict[str, SourceImage] = {}
    ignored = []
    for name in names:
        parsed = _image_stem(name)
        if parsed is None:
            ignored.append(name)
            continue
        stem, gzipped = parsed
        image = SourceImage(stem, container, name, gzipped)
        if "." in stem or not stem.isascii() or any(c.isspace() for c in stem):
            raise DataError(f"{image.name}: the name {stem!r} cannot be a BasicSR LMDB key (ASCII, no dots or "
                             "spaces); rename the file")
        if stem in images:
            raise DataError(f"two images with the stem {stem!r}: {images[stem].name} and {image.name}")
        images[stem] = image
    if not images:
        raise DataError(f"{source}: no images found (looked for {', '.join(IMAGE_SUFFIXES)}, optionally .gz)")
    return [images[stem] for stem in sorted(images)], sorted(ignored)


_open_archives: dict[str, zipfile.ZipFile | tarfile.TarFile] = {}


def _archive(container: str) -> zipfile.ZipFile | tarfile.TarFile:
    """One open handle per archive and process (workers reuse it for every member)."""
    if container not in _open_archives:
        is_zip = zipfile.is_zipfile(container)
        _open_archives[container] = zipfile.ZipFile(container) if is_zip else tarfile.open(container, "r:*")
    return _open_archives[container]


def read_bytes(image: SourceImage) -> bytes:
    """The image file's bytes (gunzipped); BadImageError naming the member when that fails."""
    try:
        if not image.container:
            raw = Path(image.member).read_bytes()
        else:
            archive = _archive(image.container)
            if isinstance(archive, zipfile.ZipFile):
                raw = archive.read(image.member)
            else:
                handle = archive.extractfile(image.member)
                raw = handle.read()
                if len(raw) != archive.getmember(image.member).size:
                    raise EOFError("archive ends inside this member")
        return gzip.decompress(raw) if image.gzipped else raw
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, gzip.BadGzipFile, KeyError) as error:
        raise BadImageError(f"{image.name}: truncated or corrupt ({error})") from error


def decode(raw: bytes, name: str) -> np.ndarray:
    """Pixels as stored (uint8 / uint16, 1, 3 or 4 channels, BGR order); BadImageError when undecodable."""
    pixels = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED) if raw else None
    if pixels is None:
        raise BadImageError(f"{name}: cannot decode the image (truncated or corrupt)")
    return pixels
