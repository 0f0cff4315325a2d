"""One image of a preparation, in a worker: read, decode, normalise to 8-bit BGR / gray / kept depth, mod-crop,
MATLAB-bicubic LR at every scale, cut into PNG-encoded pieces (training: overlapping crops; test: whole).

    Params        the options that shape the pieces (scales, crop size and step, gray, keep depth)
    Piece         one HR crop and its LR crops, PNG-encoded
    ImageResult   what a worker returns for one image (pieces, notes, or the error naming it)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from medsr_se.io.images import encode_image
from medsr_se.prepare.sources import BadImageError, SourceImage, decode, read_bytes
from medsr_se.utils.bicubic import matlab_bicubic, mod_crop

PNG_LEVEL = 1


@dataclass(frozen=True)
class Params:
    scales: tuple[int, ...]
    crop_size: int
    step: int
    gray: bool
    keep_depth: bool

    @property
    def modulus(self) -> int:
        return max(self.scales)


@dataclass
class Piece:
    """One HR image (or sub-image) and its LR versions, PNG-encoded."""

    key: str
    hr_png: bytes
    hr_shape: tuple[int, ...]
    lr_png: dict[int, bytes]
    lr_shape: dict[int, tuple[int, ...]]


@dataclass
class ImageResult:
    stem: str
    name: str
    split: str
    sha256: str = ""
    pieces: list[Piece] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""


def normalise_pixels(pixels: np.ndarray, gray: bool, keep_depth: bool) -> tuple[np.ndarray, list[str]]:
    """8-bit BGR by default; ``gray`` keeps/makes one channel, ``keep_depth`` keeps 16-bit values."""
    notes = []
    if pixels.dtype not in (np.uint8, np.uint16):
        raise BadImageError(f"unsupported pixel type {pixels.dtype} (8- or 16-bit integer images only)")
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels, _ = pixels[:, :, :3], notes.append("alpha channel dropped")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.dtype == np.uint16 and not keep_depth:
        pixels = np.round(pixels / 257.0).astype(np.uint8)
        notes.append("16-bit converted to 8-bit (use keep_depth=True to keep it)")
    if gray and pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
        notes.append("colour converted to gray (gray=True)")
    elif not gray and pixels.ndim == 2:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
        notes.append("gray replicated to 3 channels (use gray=True to keep one channel)")
    return np.ascontiguousarray(pixels), notes


def crop_starts(length: int, crop: int, step: int) -> list[int]:
    """Start offsets covering [0, length) with windows of ``crop`` every ``step``, the last flush with the end."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, step))
    if starts[-1] != length - crop:
        starts.append(length - crop)
    return starts


def encode_png(pixels: np.ndarray) -> bytes:
    """A piece as BasicSR's LMDBs hold it: PNG at zlib level :data:`PNG_LEVEL` (what ``meta_info.txt`` records)."""
    try:
        return encode_image(pixels, ".png", compression=PNG_LEVEL)
    except ValueError as error:
        raise BadImageError(f"PNG encoding failed ({error})") from error


def make_pieces(stem: str, hr: np.ndarray, split: str, params: Params) -> list[Piece]:
    """Whole image for test; overlapping sub-images (LR cut at the same place) for train."""
    lrs = {scale: matlab_bicubic(hr, 1 / scale) for scale in params.scales}
    height, width = hr.shape[:2]
    if split == "test":
        windows = [(stem, 0, 0, height, width)]
    else:
        crop_h, crop_w = min(params.crop_size, height), min(params.crop_size, width)
        windows = [(f"{stem}_s{index:03d}", top, left, crop_h, crop_w) for index, (top, left) in enumerate(
            (top, left) for top in crop_starts(height, crop_h, params.step)
            for left in crop_starts(width, crop_w, params.step))]
    pieces = []
    for key, top, left, crop_h, crop_w in windows:
        hr_piece = hr[top:top + crop_h, left:left + crop_w]
        lr_pieces = {s: lr[top // s:(top + crop_h) // s, left // s:(left + crop_w) // s] for s, lr in lrs.items()}
        lr_png = {s: encode_png(p) for s, p in lr_pieces.items()}
        pieces.append(Piece(key, encode_png(hr_piece), hr_piece.shape, lr_png,
                            {s: p.shape for s, p in lr_pieces.items()}))
    return pieces


def process_image(task: tuple[SourceImage, str, Params]) -> ImageResult:
    """Worker: read, decode, normalise, mod-crop, downsample and cut one image. Errors are returned, not raised."""
    image, split, params = task
    result = ImageResult(image.stem, image.name, split)
    try:
        raw = read_bytes(image)
        result.sha256 = hashlib.sha256(raw).hexdigest()
        pixels, result.notes = normalise_pixels(decode(raw, image.name), params.gray, params.keep_depth)
        hr = mod_crop(pixels, params.modulus)
        if min(hr.shape[:2]) < params.modulus:
            raise BadImageError(f"{pixels.shape[1]}x{pixels.shape[0]} is smaller than the largest scale "
                                f"{params.modulus}")
        result.pieces = make_pieces(image.stem, hr, split, params)
    except BadImageError as error:
        message = str(error)
        result.error = message if message.startswith(image.name) else f"{image.name}: {message}"
    return result
