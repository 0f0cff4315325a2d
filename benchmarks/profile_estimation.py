"""Accuracy of the slice-profile estimate (:func:`medsr_se.data.profile_estimation.estimate_fwhm`) on thick
slices simulated from isotropic volumes, against the FWHM used to make them.

    python -m benchmarks.profile_estimation --out benchmarks/results/profile_estimation.json    # ~1 minute
    python -m benchmarks.profile_estimation --quick --out /tmp/pe.json                          # seconds, no nilearn

Ground truth volumes:

- the MNI152 2009a T1 template at 1 mm (197 x 233 x 189) that nilearn's wheel ships
  (``nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz``; only its path is looked up, nilearn is
  not imported): r = 4 and 6 along each axis, also slightly overlapping slices (FWHM 1.2r); with axial slices also
  overlapping ones (FWHM 2r) and r = 4.5;
- nibabel's ``tests/data/anatomical.nii`` (33 x 41 x 25 voxels of 2 mm): r = 2, 3, 4 along each axis (most of them
  too small: the estimator refuses, and the row says why);
- the same resampled to 1 mm (cubic B-spline, ``nibabel.processing.resample_to_output``; 65 x 81 x 49: the tests'
  volume): r = 3 and 4 along each axis, FWHM 0.6r, r, 2r.

Thick slices as the method models them: the Gaussian slice profile of FWHM f and every r-th slice along the axis
(:func:`medsr_se.throughplane.degrade`), f = r (slices touching), f = 0.6·r (a gap), f = 1.2r, 2r (overlapping); each
without noise and with Rician noise of σ = 3 % of the head's mean (voxels above 10 % of the 99th percentile), added to
the thick slices (seeded). The non-integer ratio (r = 4.5) is simulated with
:func:`~medsr_se.data.profile_estimation.sampling_matrix` (degrade() needs an integer r). Each row: the true FWHM, the
estimate, its error, the error of today's assumption (FWHM = slice spacing), what training uses (``used_px``: the
estimate; 0.8 x it where it says a gap; pulled to the spacing where it is up to 1.3 x it, ``ProfileEstimate.hedge``) and
its signed error, the two in-plane axes' estimates, ``reliable``, the Welch segments used and the seconds of the
estimate. ``summary``: median and largest |error| by volume and FWHM / r, and the range of the used FWHM's signed error
over the reliable ones; ``speed``: the median seconds of three estimates on a 256 x 256 x 37 volume (the MNI template
padded in-plane, r = 5).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import nibabel
import numpy as np

from benchmarks.lib.head_cases import anatomical_1mm_image
from benchmarks.lib.reports import write_report
from medsr_se.data.profile_estimation import estimate_fwhm, sampling_matrix
from medsr_se.io.scans import SliceGeometry, ThroughPlaneError
from medsr_se.throughplane import degrade, gaussian_profile

MNI_FILE = "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
NOISE = 0.03  # Rician σ, of the head's mean
GAP = 0.6  # FWHM / spacing of the gap protocol
OVERLAP = 2.0  # FWHM / spacing of overlapping slices (CT: 5 mm slices every 2.5 mm)
SLIGHT_OVERLAP = 1.2  # FWHM / spacing of slightly overlapping slices: where the rule for touching slices errs
ANATOMICAL = Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"


def mni_path() -> Path:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        print("error: nilearn is not installed (pip install nilearn: its wheel ships the MNI152 template; --quick "
              "needs only nibabel)", file=sys.stderr)
        raise SystemExit(2)
    return Path(spec.origin).parent / MNI_FILE


def load(path: Path) -> tuple[np.ndarray, float]:
    image = nibabel.load(str(path))
    return np.asarray(image.dataobj, np.float32), float(image.header.get_zooms()[0])


def head_mean(volume: np.ndarray) -> float:
    return float(volume[volume > 0.1 * np.percentile(volume, 99)].mean())


def thick(volume: np.ndarray, axis: int, ratio: float, fwhm: float) -> np.ndarray:
    """Thick slices along ``axis``: degrade() for an integer ratio, sampling_matrix otherwise."""
    moved = np.moveaxis(volume, axis, 0)
    if float(ratio).is_integer():
        r = int(ratio)
        moved = moved[: moved.shape[0] // r * r]
        lr = degrade(moved.reshape(moved.shape[0], -1), gaussian_profile(fwhm), r)
    else:
        lr = sampling_matrix(moved.shape[0], ratio, fwhm).astype(np.float32) @ moved.reshape(moved.shape[0], -1)
    return np.moveaxis(lr.reshape(-1, *moved.shape[1:]), 0, axis).astype(np.float32)


def rician(values: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    real, imaginary = values + rng.normal(0, sigma, values.shape), rng.normal(0, sigma, values.shape)
    return np.sqrt(real ** 2 + imaginary ** 2).astype(np.float32)


def row(name: str, volume: np.ndarray, spacing: float, axis: int, ratio: float, fwhm: float, noise: float,
        seed: int) -> dict:
    values = thick(volume, axis, ratio, fwhm)
    if noise:
        values = rician(values, noise * head_mean(volume), seed)
    result = {"volume": name, "axis": axis, "r": ratio, "true_fwhm_px": fwhm, "noise": noise,
              "slices": values.shape[axis]}
    geometry = SliceGeometry(axis, spacing, ratio * spacing, ratio * spacing)
    start = time.perf_counter()
    try:
        estimate = estimate_fwhm(values, geometry, name=name)
    except ThroughPlaneError as error:
        return {**result, "refused": str(error), "seconds": time.perf_counter() - start}
    return {**result, "estimate_px": round(estimate.fwhm_pixels, 3),
            "error_pct": round(100 * (estimate.fwhm_pixels / fwhm - 1), 1),
            "assumed_error_pct": round(100 * (ratio / fwhm - 1), 1),
            "used_px": round(estimate.used_pixels, 3),
            "used_error_pct": round(100 * (estimate.used_pixels / fwhm - 1), 1),
            "per_axis_px": [round(v, 3) for v in estimate.per_axis_pixels], "reliable": estimate.reliable,
            "segments": estimate.segments,
            "seconds": round(time.perf_counter() - start, 3)}


def anatomical_1mm() -> tuple[np.ndarray, float]:
    """anatomical.nii resampled to 1 mm (:func:`benchmarks.lib.head_cases.anatomical_1mm_image`)."""
    return np.asarray(anatomical_1mm_image().dataobj, np.float32), 1.0


def cases(quick: bool) -> list[tuple]:
    """(name, loader, axes, ratios, FWHM / r) of the measured volumes."""
    if quick:
        return [("anatomical.nii", lambda: load(ANATOMICAL), (2,), (2,), (1.0, GAP))]
    mni = lambda: load(mni_path())  # noqa: E731
    return [("MNI152 2009a T1", mni, (0, 1, 2), (4, 6), (1.0, GAP)),
            ("MNI152 2009a T1", mni, (2,), (4, 6), (OVERLAP,)),
            ("MNI152 2009a T1", mni, (2,), (4.5,), (1.0, GAP)),
            ("anatomical.nii", lambda: load(ANATOMICAL), (0, 1, 2), (2, 3, 4), (1.0, GAP)),
            ("anatomical.nii at 1 mm", anatomical_1mm, (0, 1, 2), (3, 4), (1.0, GAP, OVERLAP)),
            ("MNI152 2009a T1", mni, (0, 1, 2), (4, 6), (SLIGHT_OVERLAP,))]  # last: the rows above keep their seeds


def summary(rows: list[dict]) -> dict:
    """By volume and FWHM / r: median and largest |error| % over the estimates, the largest over those flagged
    reliable, how many were not reliable, how many refused."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(f"{r['volume']} FWHM = {r['true_fwhm_px'] / r['r']:.2g} r", []).append(r)
    out = {}
    for key, members in groups.items():
        errors = [abs(r["error_pct"]) for r in members if "error_pct" in r]
        reliable = [abs(r["error_pct"]) for r in members if r.get("reliable")]
        used = [r["used_error_pct"] for r in members if r.get("reliable")]
        out[key] = {"rows": len(members), "refused": len(members) - len(errors),
                    "not_reliable": len(errors) - len(reliable),
                    "median_abs_error_pct": round(statistics.median(errors), 1) if errors else None,
                    "max_abs_error_pct": max(errors, default=None),
                    "max_abs_error_pct_reliable": max(reliable, default=None),
                    # what training uses (ProfileEstimate.used_pixels), signed: + too thick
                    "used_error_pct_range_reliable": [min(used), max(used)] if used else None}
    return out


def speed(quick: bool) -> dict:
    """Median seconds of three estimates on the MNI template padded to 256 x 256 in-plane, r = 5 (37 slices)."""
    if quick:
        return {}
    volume, _ = load(mni_path())
    padded = np.zeros((256, 256, volume.shape[2]), np.float32)
    padded[:volume.shape[0], :volume.shape[1]] = volume[:256, :256]
    values = thick(padded, 2, 5, 5.0)
    geometry = SliceGeometry(2, 1.0, 5.0, 5.0)
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        estimate_fwhm(values, geometry)
        seconds.append(time.perf_counter() - start)
    return {"shape": list(values.shape), "median_seconds": round(statistics.median(seconds), 3)}


def table(rows: list[dict]) -> str:
    lines = ["| volume | axis | r | noise | true FWHM px | estimate px | error % | assumed = D error % "
             "| in-plane axes px | reliable | s |", "|" + "---|" * 11]
    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['volume']} | {r['axis']} | {r['r']:g} | {r['noise']:g} | {r['true_fwhm_px']:.3g} | "
                         f"refused: {r['refused'].split(': ', 1)[1]} | | | | | |")
            continue
        lines.append(f"| {r['volume']} | {r['axis']} | {r['r']:g} | {r['noise']:g} | {r['true_fwhm_px']:.3g} | "
                     f"{r['estimate_px']:.3g} | {r['error_pct']:+.0f} | {r['assumed_error_pct']:+.0f} | "
                     f"{r['per_axis_px'][0]:.3g} / {r['per_axis_px'][1]:.3g} | {r['reliable']} | {r['seconds']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="the JSON report")
    parser.add_argument("--quick", action="store_true", help="anatomical.nii at r = 2 only: a check that it runs")
    args = parser.parse_args(argv)
    rows = []
    seed = 0
    for name, loader, axes, ratios, fractions in cases(args.quick):
        volume, spacing = loader()
        for axis in axes:
            for ratio in ratios:
                for fwhm in (fraction * ratio for fraction in fractions):
                    for noise in (0.0, NOISE):
                        seed += 1
                        rows.append(row(name, volume, spacing, axis, ratio, fwhm, noise, seed))
                        print(table(rows[-1:]).splitlines()[-1], flush=True)
    report = write_report("profile_estimation", {"rows": rows, "summary": summary(rows), "speed": speed(args.quick)},
                          args.out)
    print(table(rows))
    for key, numbers in report["summary"].items():
        print(f"{key}: {numbers}")
    print(f"speed: {report['speed']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
