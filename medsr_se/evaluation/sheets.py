"""Comparison sheets: bicubic | each method | HR side by side, each with its numbers in a strip above it, a zoomed
crop of the most detailed window below, and each method's error map; 16-bit images are shown through
:func:`display_8bit`. And medsr-selfsr's sheet of a through-plane result (:func:`sheet_image`): input (slices
repeated) | cubic B-spline | result, for the middle slice across each in-plane axis."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from medsr_se.io.images import write_image
from medsr_se.io.intensity import IntensityModel
from medsr_se.io.scans import Scan, intensity_for
from medsr_se.metrics.fov_metrics import fov_mask


def display_8bit(image: np.ndarray) -> np.ndarray:
    """An 8-bit BGR copy for looking at (16-bit values >> 8, gray replicated)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


def detail_window(hr: np.ndarray, crop: int) -> tuple[int, int]:
    """(top, left) of the crop x crop window inside the field of view with the most detail (Laplacian energy)."""
    gray = cv2.cvtColor(hr, cv2.COLOR_BGR2GRAY) if hr.ndim == 3 else hr
    energy = np.abs(cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F))
    mask = fov_mask(hr)
    best, best_score = (0, 0), -1.0
    step = max(1, crop // 2)
    for top in range(0, max(1, hr.shape[0] - crop + 1), step):
        for left in range(0, max(1, hr.shape[1] - crop + 1), step):
            window = (slice(top, top + crop), slice(left, left + crop))
            if mask[window].all() and energy[window].mean() > best_score:
                best, best_score = (top, left), float(energy[window].mean())
    return best


LINE_HEIGHT = 26  # pixels per header line (labels sit in a strip above each panel, never on the image)
HEADER_MARGIN = 8  # pixels of the header strip below its last line (room for descenders)


def panel_caption(label: str, metrics: dict[str, float] | None) -> list[str]:
    """Header lines: the panel's name, then its PSNR / SSIM (/ vessel F1) against HR when measured."""
    lines = [label]
    if metrics:
        lines += [f"PSNR {metrics['psnr']:.2f} dB", f"SSIM {metrics['ssim']:.4f}"]
        vessel = metrics.get("vessel_f1")
        if vessel is not None and vessel == vessel:  # NaN: the metric does not apply (CT / MRI)
            lines.append(f"vessel F1 {vessel:.3f}")
    return lines


def error_map(sr: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, float]:
    """|SR − HR| (mean over channels) as a colour map, 8-bit BGR: black = no error, brightest = the 99.5th
    percentile of the error or more (returned, in grey levels, for the label)."""
    difference = np.abs(sr.astype(np.float32) - hr.astype(np.float32))
    if difference.ndim == 3:
        difference = difference.mean(axis=2)
    top = max(1.0, float(np.percentile(difference, 99.5)))
    scaled = np.clip(difference * (255.0 / top), 0, 255).astype(np.uint8)
    return cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO), top


def fitted_scale(text: str, width: int, largest: float = 0.8) -> float:
    """The largest font scale (up to ``largest``) at which ``text`` fits ``width`` pixels."""
    text_width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][0]
    return max(0.3, min(largest, (width - 12) / max(1, text_width)))


def with_header(image: np.ndarray, lines: list[str], height: int) -> np.ndarray:
    header = np.zeros((height, image.shape[1], 3), np.uint8)
    for index, text in enumerate(lines):
        cv2.putText(header, text, (6, 20 + LINE_HEIGHT * index), cv2.FONT_HERSHEY_SIMPLEX,
                    fitted_scale(text, image.shape[1]), (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([header, image])


def comparison_sheet(bicubic: np.ndarray, sr: np.ndarray, hr: np.ndarray,
                     metrics: dict[str, dict[str, float]] | None = None) -> np.ndarray:
    """bicubic | SR | HR | |SR − HR| error map: :func:`method_sheet` with the one method named "SR"."""
    return method_sheet(bicubic, {"SR": sr}, hr, metrics)


def method_sheet(bicubic: np.ndarray, outputs: dict[str, np.ndarray], hr: np.ndarray,
                 metrics: dict[str, dict[str, float]] | None = None) -> np.ndarray:
    """bicubic | one panel per method (``outputs``, in order) | HR | one |method − HR| error map per method, each
    with its name and numbers (``metrics[name]``) in a strip above it (the text scaled to fit the panel), and below
    each a zoom of the most detailed window inside the field of view, magnified to the panel's width (8-bit BGR)."""
    height, width = hr.shape[:2]
    crop = max(16, min(height, width) // 6)
    zoom = max(1, width // crop)
    top, left = detail_window(hr, crop)
    metrics = metrics or {}
    named = [("bicubic", bicubic), *outputs.items(), ("HR", hr)]
    for method, sr in outputs.items():
        errors, brightest = error_map(sr, hr)
        named.append((f"|{method} - HR|, bright = {brightest:.0f}+ levels", errors))
    captions = [panel_caption(label, metrics.get(label)) for label, _ in named]
    header_height = LINE_HEIGHT * max(len(lines) for lines in captions) + HEADER_MARGIN
    panels = []
    for (_, image), caption in zip(named, captions):
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
        detail = cv2.resize(image[top:top + crop, left:left + crop], None, fx=zoom, fy=zoom,
                            interpolation=cv2.INTER_NEAREST)
        cv2.rectangle(image, (left, top), (left + crop, top + crop), (0, 255, 255), 2)
        pad = np.zeros((detail.shape[0], width, 3), np.uint8)
        pad[:, : min(detail.shape[1], width)] = detail[:, :width]
        panels.append(with_header(np.vstack([image, pad]), caption, header_height))
    return np.hstack(panels)


# ------------------------------------------------------------------------------------- through-plane (medsr-selfsr)
SHEET_MIN_HEIGHT = 400  # pixels: the sheet of a small scan is enlarged (nearest) to at least this height
PANEL_TITLES = ("input (slices repeated)", "cubic B-spline", "medsr-selfsr")
SHEET_MIN_PANEL_WIDTH = 200  # pixels: narrow views are enlarged so that each panel's title fits above it
LABEL_HEIGHT = 36  # pixels of the title strip above each row of panels (two lines of text)


def sheet_image(source: np.ndarray, result: np.ndarray, axis: int, r: int,
                intensity: IntensityModel, caption: list[str] | None = None) -> np.ndarray:
    """medsr-selfsr's sheet as a uint8 image. ``source``: the 3-D scan (slice axis ``axis``); ``result``: its r·N-slice
    result. One row per in-plane axis (the middle slice across it; title ``across axis A, slice M``), three
    panels per row: the input with each slice repeated r times | cubic B-spline (scipy) | the result; each voxel a
    block of ``enlarge`` pixels (nearest), the same for every panel. ``caption``: lines of text in a strip below
    (:func:`caption_strip`)."""
    from scipy import ndimage

    zoom = [1.0] * 3
    zoom[axis] = r
    volumes_shown = (np.repeat(source, r, axis=axis), ndimage.zoom(source, zoom, order=3, mode="nearest",
                                                                   grid_mode=True), result)
    rows = []
    for across in (a for a in (0, 1, 2) if a != axis):
        middle = source.shape[across] // 2
        views = [np.clip(intensity.to_unit(np.moveaxis(volume, (across, axis), (0, 1))[middle]), 0, 1)
                 for volume in volumes_shown]
        rows.append((f"across axis {across}, slice {middle}", views))
    height = sum(views[0].shape[0] for _, views in rows)
    narrowest = min(views[0].shape[1] for _, views in rows)
    enlarge = max(1, -(-SHEET_MIN_HEIGHT // height), -(-SHEET_MIN_PANEL_WIDTH // narrowest))
    images = [labelled_row(title, views, enlarge) for title, views in rows]
    width = max(image.shape[1] for image in images)
    sheet = np.vstack([np.pad(image, ((0, 2), (0, width - image.shape[1]))) for image in images])
    return np.vstack([sheet, caption_strip(caption, width)]) if caption else sheet


CAPTION_LINE_HEIGHT = 18  # pixels per line of the strip below a through-plane sheet


def caption_strip(lines: list[str], width: int) -> np.ndarray:
    """``lines`` of white text on black, ``width`` pixels wide (uint8), each scaled down to fit when it must."""
    import cv2

    strip = np.zeros((CAPTION_LINE_HEIGHT * len(lines) + 6, width), np.uint8)
    for index, text in enumerate(lines):
        cv2.putText(strip, text, (4, CAPTION_LINE_HEIGHT * (index + 1) - 4), cv2.FONT_HERSHEY_SIMPLEX,
                    fitted_scale(text, width, 0.4), 255, 1, cv2.LINE_AA)
    return strip


def labelled_row(title: str, views: list[np.ndarray], enlarge: int) -> np.ndarray:
    """Three views in [0, 1] side by side (uint8, each voxel ``enlarge`` x ``enlarge`` pixels) under a strip of two
    text lines: the row's ``title``, then each panel's title above it."""
    import cv2

    panels = [np.kron(np.round(view * 255).astype(np.uint8), np.ones((enlarge, enlarge), np.uint8))
              for view in views]
    strip = np.zeros((LABEL_HEIGHT, sum(panel.shape[1] for panel in panels)), np.uint8)
    cv2.putText(strip, title, (4, LABEL_HEIGHT // 2 - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1, cv2.LINE_AA)
    left = 0
    for panel_title, panel in zip(PANEL_TITLES, panels):
        cv2.putText(strip, panel_title, (left + 4, LABEL_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1,
                    cv2.LINE_AA)
        left += panel.shape[1]
    return np.vstack([strip, np.hstack(panels)])


def write_sheet(scan: Scan, values: np.ndarray, r: int, path: Path, caption: list[str] | None = None) -> None:
    """:func:`sheet_image` of the scan's first 3-D volume (``caption`` below it), written atomically as a PNG
    (:func:`medsr_se.io.images.write_image`: a :class:`~medsr_se.errors.WriteError` naming ``path`` on failure)."""
    first = (...,) + (0,) * (scan.values.ndim - 3)
    image = sheet_image(scan.values[first], values[first], scan.geometry.axis, r, intensity_for(scan.values),
                        caption)
    write_image(path, image)
