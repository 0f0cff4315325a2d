"""Plots as PNG files (matplotlib, the ``plots`` extra): per-image gain of a model over bicubic, and training curves
read from a BasicSR experiment folder's ``train_*.log``.

BasicSR logs a training line every ``print_freq`` iterations and a validation block every ``val_freq``:

    ...[epoch:  3, iter:     500, lr:(1.000e-04,)] [eta: ..., time (data): 0.321 (0.002)] l_g_l1: 1.2e-02 ...
    ... Validation STARE_test
         # psnr: 41.2345	Best: 41.2345 @ 500 iter

Loss values are plotted against their iteration; each validation metric against the iteration of the training
line logged just before it (BasicSR validates right after logging when val_freq is a multiple of print_freq).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

TRAIN_LINE = re.compile(r"\[epoch:\s*\d+, iter:\s*([\d,]+), lr:\(([^)]*)\)\]\s*\[eta:[^\]]*\]\s*(.*)$")
LOSS_TERM = re.compile(r"(\w+): ([-+0-9.eE]+|nan|inf)")
VALIDATION_HEADER = re.compile(r"Validation (\S+)")
VALIDATION_VALUE = re.compile(r"# (\w+): ([-+0-9.eE]+|nan|inf)")


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ValueError('plots need matplotlib: pip install "medsr-se[plots]"') from error
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


def plot_training_curves(experiment: Path, out: Path) -> Path:
    """Losses (log scale) and validation metrics of ``experiment`` against iterations, one PNG."""
    losses, metrics = read_training_log(training_log(experiment))
    if not losses and not metrics:
        raise ValueError(f"{experiment}: its log has no training or validation lines yet")
    plt = _pyplot()
    columns = 2 if metrics else 1
    figure, axes = plt.subplots(1, columns, figsize=(7 * columns, 4.5), squeeze=False)
    loss_axis = axes[0][0]
    for name, points in sorted(losses.items()):
        iterations, values = zip(*points)
        loss_axis.plot(iterations, values, label=name, linewidth=1)
    loss_axis.set(title=f"training log: {experiment.name} (losses, D outputs)", xlabel="iteration", ylabel="value")
    if losses and all(v > 0 for points in losses.values() for _, v in points):
        loss_axis.set_yscale("log")
    loss_axis.legend(fontsize=8)
    loss_axis.grid(alpha=0.3)
    if metrics:
        metric_axis = axes[0][1]
        for name, points in sorted(metrics.items()):
            iterations, values = zip(*points)
            metric_axis.plot(iterations, values, marker="o", label=name, linewidth=1)
        metric_axis.set(title="validation", xlabel="iteration", ylabel="value")
        metric_axis.legend(fontsize=8)
        metric_axis.grid(alpha=0.3)
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
        for offset, (method, values) in zip((-0.2, 0.2), sorted(by_method.items())):
            axis.bar([p + offset for p in positions], [values[i] for i in images], width=0.4, label=method)
        axis.set_xticks(list(positions), images, rotation=60, fontsize=7)
        low = min(v for values in by_method.values() for v in values.values())
        axis.set_ylim(bottom=max(0.0, low - 2))
        axis.set(title=f"x{scale}: PSNR per test image", ylabel="PSNR (dB)")
        axis.legend(fontsize=8)
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return _save(figure, plt, out)


def _save(figure, plt, out: Path) -> Path:
    from medsr_se.imageio import write_atomically

    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, lambda temporary: figure.savefig(str(temporary), dpi=100, format="png"))
    plt.close(figure)
    return out
