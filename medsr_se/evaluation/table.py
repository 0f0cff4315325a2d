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

import contextlib
import csv
import json
import logging
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import cv2
import numpy as np
import torch
from basicsr.metrics import calculate_psnr, calculate_ssim

from medsr_se.errors import DataError
from medsr_se.evaluation.sheets import display_8bit, method_sheet
from medsr_se.inference import load_generator, upscale
from medsr_se.inference.upscale import check_image, input_channels
from medsr_se.io.images import read_image, write_image
from medsr_se.io.publish import MANIFEST
from medsr_se.metrics.complexity import gflops_per_megapixel, parameter_count
from medsr_se.metrics.fov_metrics import calculate_psnr_fov, calculate_ssim_fov
from medsr_se.metrics.lr_consistency import lr_psnr
from medsr_se.metrics.vessel_metrics import calculate_vessel_f1
from medsr_se.utils.bicubic import matlab_bicubic
from medsr_se.utils.logs import PACKAGE_LOGGER

log = logging.getLogger(__name__)

# PSNR (dB) / SSIM on the STARE test set reported by the seed slides, for reference in the table
PAPER = {4: {"bicubic": (40.03, 0.9512), "SEEDSR-GAN": (42.65, 0.9567)},
         8: {"bicubic": (35.41, 0.9195), "SEEDSR-GAN": (39.88, 0.9330)},
         16: {"bicubic": (31.60, 0.8915), "SEEDSR-GAN": (36.62, 0.9181)}}
METRICS = ("psnr", "ssim", "psnr_y", "ssim_y", "psnr_fov", "ssim_fov", "vessel_f1", "niqe", "lr_psnr", "seconds")
MODEL_COLUMNS = ("params", "gflops_per_mp")  # per method, not per image (bicubic: 0 parameters, GFLOPs not counted)
DEFAULT_METHOD = "SEEDSR-GAN"  # the method name of ``--model x4=...`` (the seed's model)
SEED_NAMES = {"seedsr": "SEEDSR-GAN", "seedsr-gan": "SEEDSR-GAN", "bicubic": "bicubic"}  # PAPER's rows, by name
NIQE_BLOCK = 96  # BasicSR's NIQE statistics are over 96 x 96 blocks; fewer than two blocks give no covariance


FUNDUS_METRICS = ("psnr_fov", "ssim_fov", "vessel_f1")


def niqe_score(image: np.ndarray, scale: int) -> float:
    """BasicSR's ``calculate_niqe`` (no reference; lower = more natural) on the Y channel, crop_border = scale;
    NaN for an image too small for two of its 96 x 96 blocks."""
    from basicsr.metrics import calculate_niqe

    height, width = (side - 2 * scale for side in image.shape[:2])
    if (height // NIQE_BLOCK) * (width // NIQE_BLOCK) < 2:
        return float("nan")
    values = image.astype(np.float64) * (255.0 / 65535.0) if image.dtype == np.uint16 else image
    with warnings.catch_warnings():  # BasicSR's numpy statistics on flat blocks: noise, not news
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return float(calculate_niqe(values if values.ndim == 3 else values[:, :, None], scale,
                                        input_order="HWC", convert_to="y"))
        except np.linalg.LinAlgError:  # too few textured blocks (a flat or black image): no statistics
            return float("nan")


def image_metrics(sr: np.ndarray, hr: np.ndarray, scale: int, fundus: bool = True, lr: np.ndarray | None = None,
                  niqe: bool = False) -> dict[str, float]:
    """The metrics of ``METRICS`` for one uint8 / uint16 pair (BGR or gray), BasicSR's conventions
    (crop_border = scale); ``fundus`` False leaves the field-of-view and vessel metrics out (NaN); ``lr`` (the
    network's input) adds LR consistency (:func:`medsr_se.metrics.lr_consistency.lr_psnr`), ``niqe`` NIQE."""
    extra = {"niqe": niqe_score(sr, scale) if niqe else float("nan"),
             "lr_psnr": lr_psnr(sr, lr, scale) if lr is not None else float("nan")}
    return {**_reference_metrics(sr, hr, scale, fundus), **extra}


def _reference_metrics(sr: np.ndarray, hr: np.ndarray, scale: int, fundus: bool) -> dict[str, float]:
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


@contextlib.contextmanager
def held_warnings() -> Iterator[set[str]]:
    """The distinct messages (one line each) of the warnings logged under the ``medsr_se`` logger inside the block
    (:mod:`medsr_se.inference.upscale`'s, say), held back instead of shown, to be reported once each after a
    progress bar (:func:`report_warnings`); records of every other level pass on as usual.

    For the block the logger's one handler is a gate (its own handlers and its propagation set aside and restored
    after), so nothing of the held warnings reaches stderr, a command's log or pytest's ``caplog``."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    held: set[str] = set()
    handlers, propagate = logger.handlers[:], logger.propagate

    class Gate(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno == logging.WARNING:
                held.add(" ".join(record.getMessage().split()))
                return
            for handler in [*handlers, *_ancestor_handlers(logger, propagate)]:
                if record.levelno >= handler.level:
                    handler.handle(record)

    logger.handlers, logger.propagate = [Gate()], False
    try:
        yield held
    finally:
        logger.handlers, logger.propagate = handlers, propagate


def _ancestor_handlers(logger: logging.Logger, propagate: bool) -> list[logging.Handler]:
    """The handlers a record logged on ``logger`` reaches above it (``logging.Logger.callHandlers``' walk)."""
    found: list[logging.Handler] = []
    parent = logger.parent if propagate else None
    while parent is not None:
        found += parent.handlers
        parent = parent.parent if parent.propagate else None
    return found


def report_warnings(caught: Counter, scale: int, images: int, warn: Callable[[str], None] | None = None) -> None:
    """Each distinct warning of a scale's images once, after its images: ``x4: 3 of 20 image(s): <message>``,
    logged (a command shows it as a ``warning:`` line), or given to ``warn`` when a caller passes one."""
    for message, count in caught.items():
        line = f"x{scale}: {count} of {images} image(s): {message}"
        if warn is not None:
            warn(line)
        else:
            log.warning("%s", line)


Models = list[tuple[str, str]]  # (method name, checkpoint path), in table order


def models_for_scale(checkpoint: str | Models | None) -> Models:
    """One scale's models: a checkpoint path (the seed's model, :data:`DEFAULT_METHOD`) or (method, path) pairs."""
    if checkpoint is None:
        return []
    return [(DEFAULT_METHOD, checkpoint)] if isinstance(checkpoint, (str, Path)) else list(checkpoint)


def timed(run: Callable[[], np.ndarray], device: str) -> tuple[np.ndarray, float]:
    """``run()`` and its wall time in seconds (CUDA work waited for)."""
    synchronise = torch.cuda.synchronize if str(device).startswith("cuda") and torch.cuda.is_available() else None
    start = time.perf_counter()
    result = run()
    if synchronise:
        synchronise()
    return result, time.perf_counter() - start


def load_models(scale: int, checkpoint: str | Models | None, device: str = "cpu",
                options: Mapping[str, Mapping] | None = None) -> dict[str, torch.nn.Module]:
    """{method: generator} of one scale (``options``: see :func:`evaluate_scale`)."""
    options = options or {}
    return {method: load_generator(path, device=device, options=options.get(method, options.get("*")),
                                   upscale=scale)
            for method, path in models_for_scale(checkpoint)}


def check_test_pairs(data: Path, scale: int, models: Mapping[str, torch.nn.Module]) -> list[str]:
    """The test pairs of a scale (names), every one read and checked before any work (so a run writes all its
    results or none): both images readable, the HR scale times the LR, the LR fit for each model (channels,
    type, size: :func:`medsr_se.inference.upscale.check_image`). The first problem is an error naming the file."""
    hr_dir, lr_dir = data / "test" / "HR", data / "test" / f"LR_x{scale}"
    names = sorted(p.name for p in hr_dir.glob("*.png"))
    if not names or not lr_dir.is_dir():
        raise DataError(f"data={data}: no test pairs for x{scale} in its test folder (run medsr-prepare first)",
                        parameter="data")
    for name in names:
        hr, lr = read_image(hr_dir / name), read_image(lr_dir / name)  # a ValueError naming an unreadable one
        if hr.shape != (lr.shape[0] * scale, lr.shape[1] * scale, *lr.shape[2:]):
            raise DataError(f"{lr_dir / name}: {lr.shape} is not the HR image's {hr.shape} / {scale}")
        for method, model in models.items():
            try:
                check_image(lr.shape, lr.dtype, model)
            except DataError as error:
                raise DataError(f"{lr_dir / name}: {method}: {error}") from error
    return names


def evaluate_scale(data: Path, scale: int, checkpoint: str | Models | None, sheets: Path | None,
                   device: str = "cpu", modality: str = "photo",
                   progress: Callable[[int], Callable[[], None]] | None = None,
                   warn: Callable[[str], None] | None = None, niqe: bool = True,
                   options: Mapping[str, Mapping] | None = None,
                   models: Mapping[str, torch.nn.Module] | None = None) -> list[dict]:
    """Per-image rows (image, scale, method, metrics..., params, gflops_per_mp) for bicubic and each model
    (``checkpoint``: one path, or (method, path) pairs; ``models``: those already loaded). ``options`` maps a
    method (or ``"*"``) to the network_g for a checkpoint that does not record its own. Every pair is checked
    before the first is computed (:func:`check_test_pairs`). Warnings logged on the way (a gray image through a
    colour model, ...) are held (:func:`held_warnings`) and reported once each after the images
    (:func:`report_warnings`), never in the middle of a progress bar."""
    hr_dir, lr_dir = data / "test" / "HR", data / "test" / f"LR_x{scale}"
    models = load_models(scale, checkpoint, device, options) if models is None else models
    names = check_test_pairs(data, scale, models)
    costs = {"bicubic": {"params": 0, "gflops_per_mp": float("nan")}}
    for method, model in models.items():
        costs[method] = {"params": parameter_count(model),
                         "gflops_per_mp": gflops_per_megapixel(model, input_channels(model))}
    step = progress(len(names)) if progress else (lambda: None)
    rows = []
    caught: Counter = Counter()
    for name in names:
        hr = cv2.imread(str(hr_dir / name), cv2.IMREAD_UNCHANGED)
        lr = cv2.imread(str(lr_dir / name), cv2.IMREAD_UNCHANGED)
        if hr is None or lr is None:
            raise DataError(f"cannot read {hr_dir / name} or {lr_dir / name}")
        fundus = modality == "photo" and hr.ndim == 3
        outputs = {"bicubic": timed(lambda lr=lr: matlab_bicubic(lr, scale), "cpu")}
        for method, model in models.items():
            with held_warnings() as held:
                outputs[method] = timed(lambda model=model, lr=lr: upscale(lr, model), device)
            caught.update(held)
        numbers = {}
        for method, (output, seconds) in outputs.items():
            numbers[method] = {**image_metrics(output, hr, scale, fundus, lr, niqe), "seconds": seconds}
            rows.append({"image": Path(name).stem, "scale": scale, "method": method, **numbers[method],
                         **costs[method]})
        if sheets is not None and models:
            sheets.mkdir(parents=True, exist_ok=True)
            sheet = method_sheet(display_8bit(outputs["bicubic"][0]),
                                 {method: display_8bit(outputs[method][0]) for method in models}, display_8bit(hr),
                                 numbers)
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
             **{metric: float(np.mean([r[metric] for r in group])) for metric in METRICS},
             **{column: group[0][column] for column in MODEL_COLUMNS if column in group[0]}}
            for (scale, method), group in sorted(groups.items())]


def number(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals; '–' for a metric that does not apply (NaN)."""
    return "–" if value != value else f"{value:.{digits}f}"


def paper_numbers(scale: int, method: str, modality: str = "photo") -> tuple[float, float] | None:
    """The seed's reported (PSNR, SSIM) for this row (bicubic and SEEDSR-GAN on STARE photographs), else None."""
    name = SEED_NAMES.get(method.lower())
    return PAPER.get(scale, {}).get(name) if modality == "photo" and name else None


def parameters_text(count: float | None) -> str:
    if count is None or count != count:
        return "–"
    return "0" if count == 0 else f"{count / 1e6:.2f} M" if count >= 1e5 else f"{count / 1e3:.1f} k"


def markdown_table(summary: list[dict]) -> str:
    """One row per (scale, method): BasicSR's PSNR / SSIM, the FOV and vessel metrics, NIQE (lower = more
    natural), LR consistency (dB; the HR image scores ~58.9), parameters, GFLOPs per output megapixel, seconds per
    image on the evaluating device, and the seed's reported numbers where it has them."""
    lines = ["| scale | method | images | PSNR | SSIM | PSNR-Y | SSIM-Y | PSNR-FOV | SSIM-FOV | vessel F1 | NIQE "
             "| LR-PSNR | params | GFLOPs/MP | s/image | paper PSNR / SSIM |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in summary:
        paper = paper_numbers(row["scale"], row["method"], row.get("modality", "photo"))
        paper_text = f"{paper[0]:.2f} / {paper[1]:.4f}" if paper else "–"
        lines.append(f"| x{row['scale']} | {row['method']} | {row['images']} | {row['psnr']:.2f} | {row['ssim']:.4f} "
                     f"| {row['psnr_y']:.2f} | {row['ssim_y']:.4f} | {number(row['psnr_fov'], 2)} "
                     f"| {number(row['ssim_fov'], 4)} | {number(row['vessel_f1'], 3)} "
                     f"| {number(row.get('niqe', float('nan')), 2)} | {number(row.get('lr_psnr', float('nan')), 2)} "
                     f"| {parameters_text(row.get('params'))} | {number(row.get('gflops_per_mp', float('nan')), 1)} "
                     f"| {number(row.get('seconds', float('nan')), 3)} | {paper_text} |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def evaluate(data: Path, checkpoints: Mapping[int, str | Models], output: Path, scales: list[int] | None = None,
             sheets: bool = True, device: str = "cpu",
             progress: Callable[[int, int], Callable[[], None]] | None = None, plot: bool = True,
             warn: Callable[[str], None] | None = None, niqe: bool = True,
             options: Mapping[str, Mapping] | None = None) -> list[dict]:
    """Evaluate, write the table files into ``output`` and return the summary rows.

    ``checkpoints`` maps a scale to one checkpoint (the seed's model, named :data:`DEFAULT_METHOD`) or to
    (method, checkpoint) pairs: one row per method and scale, bicubic always; ``niqe`` False leaves NIQE out (it
    costs ~0.7 s per 600 x 600 image and method on one CPU core); ``options``: see :func:`evaluate_scale`.

    ``progress(scale, images)`` returns the function called after each image; each distinct warning of a scale is
    reported once, after its images (:func:`report_warnings`: logged, or given to ``warn(line)``); ``plot`` writes
    ``per_image_psnr.png`` (model vs bicubic per test image) when a model was evaluated and matplotlib is there."""
    if not (data / "test" / "HR").is_dir():
        raise DataError(f"data={data}: not a prepared dataset (no test/HR folder; run medsr-prepare first)",
                        parameter="data")
    manifest_path = data / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if scales is None:
        scales = sorted(set(manifest.get("parameters", {}).get("scales", [])) | set(checkpoints))
    if not scales:
        raise DataError(f"data={data}: no manifest.json says which scales it has; give scales=", parameter="data")
    for scale in scales:  # every input is checked before any work or output
        if not (data / "test" / f"LR_x{scale}").is_dir():
            raise DataError(f"data={data}: no test/LR_x{scale} (prepared scales: "
                            f"{manifest.get('parameters', {}).get('scales', 'unknown')})", parameter="data")
    models = {scale: load_models(scale, checkpoints.get(scale), device, options) for scale in scales}
    for scale in scales:
        check_test_pairs(data, scale, models[scale])
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    for scale in scales:
        per_scale = (lambda total, scale=scale: progress(scale, total)) if progress else None
        rows += evaluate_scale(data, scale, checkpoints.get(scale), output / "sheets" if sheets else None, device,
                               manifest.get("modality", "photo"), per_scale, warn, niqe, options, models[scale])
    summary = [{**row, "modality": manifest.get("modality", "photo")} for row in summarise(rows)]
    (output / "table.md").write_text(markdown_table(summary))
    write_csv(summary, output / "table.csv")
    write_csv(rows, output / "per_image.csv")
    if plot and checkpoints:
        from medsr_se.evaluation.plots import plot_per_image_gain

        plot_per_image_gain(rows, output / "per_image_psnr.png")
    return summary
