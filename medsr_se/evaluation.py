"""The seed's results table (model vs bicubic, PSNR/SSIM) on a prepared test split: the API behind
``medsr-evaluate`` (:mod:`medsr_se.cli.evaluate`).

For each scale: bicubic = MATLAB-style ``imresize(LR, s)`` (the resize the preparation used, so bicubic is
measured exactly as the LR was made), SR = the checkpoint's generator (``params_ema`` if present). Metrics are
BasicSR's ``calculate_psnr`` / ``calculate_ssim`` (crop_border = scale) on RGB and on Y, and the FOV-masked
versions of :mod:`medsr_se.metrics.fov_metrics`, and vessel fidelity (:mod:`medsr_se.metrics.vessel_metrics`),
averaged over the test images. 16-bit images (CT / MRI slices) are measured at their stored depth (values scaled by
255/65535 into BasicSR's 0-255 convention, not quantised to 8 bits); the field-of-view and vessel metrics apply to
fundus photographs only (3-channel images of a dataset whose manifest says ``modality: photo``) and are "–" for
CT / MRI, which have no fundus disc. Writes ``table.md``, ``table.csv``,
``per_image.csv`` and, per test image, a comparison sheet (bicubic | SR | HR with a zoomed crop) under ``sheets/``.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from basicsr.metrics import calculate_psnr, calculate_ssim

from medsr_se.bicubic import matlab_bicubic
from medsr_se.imageio import write_image
from medsr_se.inference import load_generator, upscale
from medsr_se.metrics.fov_metrics import calculate_psnr_fov, calculate_ssim_fov, fov_mask
from medsr_se.metrics.vessel_metrics import calculate_vessel_f1

# PSNR (dB) / SSIM on the STARE test set reported by the seed slides, for reference in the table
PAPER = {4: {"bicubic": (40.03, 0.9512), "SEEDSR-GAN": (42.65, 0.9567)},
         8: {"bicubic": (35.41, 0.9195), "SEEDSR-GAN": (39.88, 0.9330)},
         16: {"bicubic": (31.60, 0.8915), "SEEDSR-GAN": (36.62, 0.9181)}}
METRICS = ("psnr", "ssim", "psnr_y", "ssim_y", "psnr_fov", "ssim_fov", "vessel_f1")


FUNDUS_METRICS = ("psnr_fov", "ssim_fov", "vessel_f1")


def image_metrics(sr: np.ndarray, hr: np.ndarray, scale: int, fundus: bool = True) -> dict[str, float]:
    """Every metric of ``METRICS`` for one uint8 / uint16 pair (BGR or gray), BasicSR's conventions
    (crop_border = scale); ``fundus`` False leaves the field-of-view and vessel metrics out (NaN)."""
    if sr.dtype == np.uint16 or hr.dtype == np.uint16:  # stored depth, on BasicSR's 0-255 scale
        sr, hr = (x.astype(np.float64) * (255.0 / 65535.0) for x in (sr, hr))
    metrics = {
        "psnr": calculate_psnr(sr, hr, scale), "ssim": calculate_ssim(sr, hr, scale),
        "psnr_y": calculate_psnr(sr, hr, scale, test_y_channel=True),
        "ssim_y": calculate_ssim(sr, hr, scale, test_y_channel=True),
    }
    if not fundus:
        return {**metrics, **{name: float("nan") for name in FUNDUS_METRICS}}
    return {**metrics, "psnr_fov": calculate_psnr_fov(sr, hr, scale), "ssim_fov": calculate_ssim_fov(sr, hr, scale),
            "vessel_f1": calculate_vessel_f1(sr, hr, scale)}


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
    """bicubic | SR | HR | |SR − HR| error map, each with its name and numbers in a strip above it (the text scaled
    to fit the panel), and below each
    a zoom of the most detailed window inside the field of view, magnified to the panel's width (8-bit BGR)."""
    height, width = hr.shape[:2]
    crop = max(16, min(height, width) // 6)
    zoom = max(1, width // crop)
    top, left = detail_window(hr, crop)
    metrics = metrics or {}
    errors, brightest = error_map(sr, hr)
    named = (("bicubic", bicubic), ("SR", sr), ("HR", hr), (f"|SR - HR|, bright = {brightest:.0f}+ levels", errors))
    captions = [panel_caption(label, metrics.get(label)) for label, _ in named]
    header_height = LINE_HEIGHT * max(len(lines) for lines in captions) + 8
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


def report_warnings(caught: Counter, scale: int, images: int, warn: Callable[[str], None] | None) -> None:
    """Each distinct warning of a scale's images once, after its images: ``x4: 3 of 20 image(s): <message>``,
    through ``warn`` (the command's console), else as one Python warning."""
    for message, count in caught.items():
        line = f"x{scale}: {count} of {images} image(s): {message}"
        if warn is not None:
            warn(line)
        else:
            warnings.warn(line, stacklevel=3)


def evaluate_scale(data: Path, scale: int, checkpoint: str | None, sheets: Path | None,
                   device: str = "cpu", modality: str = "photo",
                   progress: Callable[[int], Callable[[], None]] | None = None,
                   warn: Callable[[str], None] | None = None) -> list[dict]:
    """Per-image rows (image, scale, method, metrics...) for bicubic and, if given, the model. Warnings raised
    on the way (a gray image through a colour model, ...) are gathered and reported once each after the images
    (:func:`report_warnings`), never in the middle of a progress bar."""
    hr_dir, lr_dir = data / "test" / "HR", data / "test" / f"LR_x{scale}"
    names = sorted(p.name for p in hr_dir.glob("*.png"))
    if not names or not lr_dir.is_dir():
        raise FileNotFoundError(f"no test pairs for x{scale} in {data}/test (run medsr-prepare-stare first)")
    model = load_generator(checkpoint, device=device, upscale=scale) if checkpoint else None
    step = progress(len(names)) if progress else (lambda: None)
    rows = []
    caught: Counter = Counter()
    for name in names:
        hr = cv2.imread(str(hr_dir / name), cv2.IMREAD_UNCHANGED)
        lr = cv2.imread(str(lr_dir / name), cv2.IMREAD_UNCHANGED)
        if hr is None or lr is None:
            raise FileNotFoundError(f"cannot read {hr_dir / name} or {lr_dir / name}")
        fundus = modality == "photo" and hr.ndim == 3
        bicubic = matlab_bicubic(lr, scale)
        outputs = {"bicubic": bicubic}
        if model is not None:
            with warnings.catch_warnings(record=True) as raised:
                warnings.simplefilter("always")
                outputs["SEEDSR-GAN"] = upscale(lr, model)
            caught.update({str(warning.message) for warning in raised})
        for method, output in outputs.items():
            rows.append({"image": Path(name).stem, "scale": scale, "method": method,
                         **image_metrics(output, hr, scale, fundus)})
        if sheets is not None and model is not None:
            sheets.mkdir(parents=True, exist_ok=True)
            numbers = {"bicubic": rows[-2], "SR": rows[-1]}
            sheet = comparison_sheet(*(display_8bit(x) for x in (bicubic, outputs["SEEDSR-GAN"], hr)), numbers)
            write_image(sheets / f"x{scale}_{Path(name).stem}.png", sheet)
        step()
    report_warnings(caught, scale, len(names), warn)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean of every metric per (scale, method)."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["scale"], row["method"]), []).append(row)
    return [{"scale": scale, "method": method, "images": len(group),
             **{metric: float(np.mean([r[metric] for r in group])) for metric in METRICS}}
            for (scale, method), group in sorted(groups.items())]


def number(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals; '–' for a metric that does not apply (NaN)."""
    return "–" if value != value else f"{value:.{digits}f}"


def markdown_table(summary: list[dict]) -> str:
    lines = ["| scale | method | images | PSNR | SSIM | PSNR-Y | SSIM-Y | PSNR-FOV | SSIM-FOV | vessel F1 "
             "| paper PSNR / SSIM |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in summary:
        paper = PAPER.get(row["scale"], {}).get(row["method"]) if row.get("modality", "photo") == "photo" else None
        paper_text = f"{paper[0]:.2f} / {paper[1]:.4f}" if paper else "–"
        lines.append(f"| x{row['scale']} | {row['method']} | {row['images']} | {row['psnr']:.2f} | {row['ssim']:.4f} "
                     f"| {row['psnr_y']:.2f} | {row['ssim_y']:.4f} | {number(row['psnr_fov'], 2)} "
                     f"| {number(row['ssim_fov'], 4)} | {number(row['vessel_f1'], 3)} | {paper_text} |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def evaluate(data: Path, checkpoints: dict[int, str], output: Path, scales: list[int] | None = None,
             sheets: bool = True, device: str = "cpu",
             progress: Callable[[int, int], Callable[[], None]] | None = None, plot: bool = True,
             warn: Callable[[str], None] | None = None) -> list[dict]:
    """Evaluate, write the table files into ``output`` and return the summary rows.

    ``progress(scale, images)`` returns the function called after each image; ``warn(line)`` gets each distinct
    warning of a scale once, after its images (default: one Python warning each); ``plot`` writes
    ``per_image_psnr.png`` (model vs bicubic per test image) when a model was evaluated and matplotlib is there."""
    if not (data / "test" / "HR").is_dir():
        raise FileNotFoundError(f"--data {data}: not a prepared dataset (no test/HR folder; run medsr-prepare-stare "
                                "first)")
    manifest_path = data / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if scales is None:
        scales = sorted(set(manifest.get("parameters", {}).get("scales", [])) | set(checkpoints))
    if not scales:
        raise ValueError(f"--data {data}: no manifest.json says which scales it has; give --scales")
    for scale in scales:  # every input is checked before any work or output
        if not (data / "test" / f"LR_x{scale}").is_dir():
            raise FileNotFoundError(f"--data {data}: no test/LR_x{scale} (prepared scales: "
                                    f"{manifest.get('parameters', {}).get('scales', 'unknown')})")
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    for scale in scales:
        per_scale = (lambda total, scale=scale: progress(scale, total)) if progress else None
        rows += evaluate_scale(data, scale, checkpoints.get(scale), output / "sheets" if sheets else None, device,
                               manifest.get("modality", "photo"), per_scale, warn)
    summary = [{**row, "modality": manifest.get("modality", "photo")} for row in summarise(rows)]
    (output / "table.md").write_text(markdown_table(summary))
    write_csv(summary, output / "table.csv")
    write_csv(rows, output / "per_image.csv")
    if plot and checkpoints:
        from medsr_se.plots import plot_per_image_gain

        plot_per_image_gain(rows, output / "per_image_psnr.png")
    return summary
