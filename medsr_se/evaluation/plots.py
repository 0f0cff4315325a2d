"""Plots as PNG files (matplotlib, the ``plots`` extra): per-image gain of a model over bicubic, and training curves
read from a BasicSR experiment folder's ``train_*.log``.

BasicSR logs a training line every ``print_freq`` iterations and a validation block every ``val_freq``:

    ...[epoch:  3, iter:     500, lr:(1.000e-04,)] [eta: ..., time (data): 0.321 (0.002)] l_g_l1: 1.2e-02 ...
    ... Validation STARE_test
         # psnr: 41.2345	Best: 41.2345 @ 500 iter

Loss values are plotted against their iteration; each validation metric against the iteration of the training
line logged just before it (BasicSR validates right after logging when val_freq is a multiple of print_freq).
The GAN models' discriminator terms (``out_d_real``, ``out_d_fake``, ``d_separation``, ``d_pairs_ranked``: see
:mod:`medsr_se.models.discriminator_watch`) get a panel of their own, with the chance level of ``d_pairs_ranked``.
Non-finite values (``nan``, ``inf``, ``-inf`` in the log) are left out of the curves and counted in the title.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

from medsr_se.errors import DataError

TRAIN_LINE = re.compile(r"\[epoch:\s*\d+, iter:\s*([\d,]+), lr:\(([^)]*)\)\]\s*\[eta:[^\]]*\]\s*(.*)$")
NUMBER = r"[-+]?(?:inf|nan|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
LOSS_TERM = re.compile(rf"(\w+): ({NUMBER})(?=\s|$)")
VALIDATION_HEADER = re.compile(r"Validation (\S+)")
VALIDATION_VALUE = re.compile(rf"# (\w+): ({NUMBER})")
DISCRIMINATOR_TERMS = ("out_d_", "d_")  # name prefixes of the discriminator panel's curves


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise DataError('plots need matplotlib: pip install "medsr-se[plots]"') from error
    return plt


def read_training_log(path: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[tuple[int, float]]]]:
    """({loss name: [(iteration, value)]}, {'dataset/metric': [(iteration, value)]}) from a BasicSR train log."""
    losses: dict[str, list[tuple[int, float]]] = defaultdict(list)
    metrics: dict[str, list[tuple[int, float]]] = defaultdict(list)
    iteration, dataset = 0, None
    for line in path.read_text(errors="replace").splitlines():
        if match := TRAIN_LINE.search(line):
            iteration = int(match.group(1).replace(",", ""))
            for name, value in LOSS_TERM.findall(match.group(3)):
                losses[name].append((iteration, float(value)))
            dataset = None
        elif match := VALIDATION_HEADER.search(line):
            dataset = match.group(1)
        elif dataset and (match := VALIDATION_VALUE.search(line)):
            metrics[f"{dataset}/{match.group(1)}"].append((iteration, float(match.group(2))))
    return dict(losses), dict(metrics)


def training_log(experiment: Path) -> Path:
    """The newest ``train_*.log`` of a BasicSR experiment folder."""
    logs = sorted(experiment.glob("train_*.log"), key=lambda p: p.stat().st_mtime)
    if not logs:
        raise FileNotFoundError(f"{experiment}: no train_*.log (is it a BasicSR experiment folder?)")
    return logs[-1]


def _finite(points: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    kept = [(iteration, value) for iteration, value in points if math.isfinite(value)]
    return ([i for i, _ in kept], [v for _, v in kept]) if kept else ([], [])


def _curves_panel(axis, curves: dict[str, list[tuple[int, float]]], title: str, **style) -> None:
    """One line per curve, non-finite points left out (their count in the title)."""
    dropped = 0
    for name, points in sorted(curves.items()):
        iterations, values = _finite(points)
        dropped += len(points) - len(values)
        axis.plot(iterations, values, label=name, linewidth=1, **style)
    axis.set(title=title + (f" ({dropped} non-finite values not drawn)" if dropped else ""), xlabel="iteration")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)


def split_discriminator_terms(losses: dict) -> tuple[dict, dict]:
    """({generator losses}, {discriminator terms}) by name (``DISCRIMINATOR_TERMS`` prefixes; ``l_d_*`` are losses)."""
    discriminator = {name: points for name, points in losses.items() if name.startswith(DISCRIMINATOR_TERMS)}
    return {name: points for name, points in losses.items() if name not in discriminator}, discriminator


def plot_training_curves(experiment: Path, out: Path) -> Path:
    """Losses (log scale when all positive), the discriminator's terms and validation metrics of ``experiment``
    against iterations, one PNG."""
    log = training_log(experiment)
    losses, metrics = read_training_log(log)
    if not losses and not metrics:
        raise DataError(f"{log}: no training or validation lines yet")
    losses, discriminator = split_discriminator_terms(losses)
    panels = [kind for kind, curves in (("losses", losses), ("discriminator", discriminator),
                                        ("validation", metrics)) if curves]
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    panel_axes = dict(zip(panels, axes[0]))
    if "losses" in panel_axes:
        axis = panel_axes["losses"]
        _curves_panel(axis, losses, f"training losses: {experiment.name}")
        values = [v for points in losses.values() for _, v in points if math.isfinite(v)]
        if values and min(values) > 0:
            axis.set_yscale("log")
    if "discriminator" in panel_axes:
        axis = panel_axes["discriminator"]
        _curves_panel(axis, discriminator, "discriminator: logits, separation, pairs ranked")
        if "d_pairs_ranked" in discriminator:
            axis.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="chance (d_pairs_ranked)")
            axis.legend(fontsize=8)
    if "validation" in panel_axes:
        _curves_panel(panel_axes["validation"], metrics, "validation", marker="o")
    figure.tight_layout()
    return _save(figure, plt, out)


def plot_per_image_gain(rows: list[dict], out: Path) -> Path:
    """Per test image: PSNR of the model and of bicubic (one panel per scale), from medsr-evaluate's rows."""
    scales = sorted({row["scale"] for row in rows})
    plt = _pyplot()
    figure, axes = plt.subplots(len(scales), 1, figsize=(max(6.0, 0.35 * len(rows) / max(1, len(scales)) + 3),
                                                         3.5 * len(scales)), squeeze=False)
    for axis, scale in zip(axes[:, 0], scales):
        by_method: dict[str, dict[str, float]] = defaultdict(dict)
        for row in rows:
            if row["scale"] == scale:
                by_method[row["method"]][row["image"]] = row["psnr"]
        images = sorted(by_method["bicubic"])
        positions = range(len(images))
        width = 0.8 / len(by_method)  # bicubic and every method side by side
        for index, (method, values) in enumerate(sorted(by_method.items())):
            offset = (index - (len(by_method) - 1) / 2) * width
            axis.bar([p + offset for p in positions], [values[i] for i in images], width=width, label=method)
        axis.set_xticks(list(positions), images, rotation=60, fontsize=7)
        low = min(v for values in by_method.values() for v in values.values())
        axis.set_ylim(bottom=max(0.0, low - 2))
        axis.set(title=f"x{scale}: PSNR per test image", ylabel="PSNR (dB)")
        axis.legend(fontsize=8)
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return _save(figure, plt, out)


def _save(figure, plt, out: Path) -> Path:
    from medsr_se.io.publish import write_atomically

    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, lambda temporary: figure.savefig(str(temporary), dpi=100, format="png"))
    plt.close(figure)
    return out
