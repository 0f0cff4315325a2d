"""medsr-selfsr's report of one run, ``out/<result name>_report.json`` beside the result: what a researcher can check
without ground truth. The scan (path, shape, spacing, slice axis), r, the slice profile (Gaussian FWHM in mm and in
pixels, or the kernel file) and where it came from, how the network was got (iterations trained, or the model
given), seconds, the device, the versions, and the LR consistency of the result next to cubic B-spline's
(:mod:`medsr_se.evaluation.through_plane_consistency`, whose limits the report states).

    clock = StepClock(started)                  started: when the run began, on time.monotonic()'s clock
    clock.mark(); train(...); clock.lap("training")
    report = run_report(SelfSRRun(...))          a JSON-ready dict (the LR consistency measured here)
    write_report(path, report)                   atomic; an existing file is a WriteError, nothing overwritten
    consistency_line(path, report)               one line: the numbers (result vs cubic) and the path

``slice_profile.source`` is one of :data:`PROFILE_SOURCES`: ``option`` (a slice thickness or a kernel given to the
run), ``dicom`` (DICOM SliceThickness), ``bids_sidecar`` (the NIfTI's BIDS sidecar), ``estimated`` (from the scan:
:mod:`medsr_se.data.profile_estimation`), ``assumed`` (= the slice spacing); ``source_detail`` is the full text.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from medsr_se.data.degradations import SliceProfile, gaussian_profile
from medsr_se.data.noise_matching import ESTIMATED as ESTIMATED_NOISE
from medsr_se.data.noise_matching import top_up_sigma
from medsr_se.data.profile_estimation import ESTIMATED
from medsr_se.errors import WriteError
from medsr_se.evaluation.through_plane_consistency import WHAT_IT_SHOWS, Agreement, lr_consistency
from medsr_se.io.publish import write_atomically
from medsr_se.io.scans import FROM_OPTION, Scan, SliceGeometry
from medsr_se.version import __version__

FORMAT = "medsr-selfsr report 1"  # the report's first field: what its fields are (this module's docstring)
PROFILE_SOURCES = ("option", "dicom", "bids_sidecar", "estimated", "assumed")
REPORT_SUFFIX = "_report.json"


def report_path(output: Path, result_name: str) -> Path:
    """``output/<result name>_report.json``."""
    return Path(output) / f"{result_name}{REPORT_SUFFIX}"


class StepClock:
    """Wall seconds of a run's steps: :meth:`mark` starts a step, :meth:`lap` ends it under a name; :meth:`total`
    since ``started`` (time.monotonic()'s clock: the process's start for a command)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.marked = time.monotonic()
        self.seconds: dict[str, float] = {}

    def mark(self) -> None:
        self.marked = time.monotonic()

    def lap(self, name: str) -> None:
        self.seconds[name] = time.monotonic() - self.marked
        self.marked = time.monotonic()

    def total(self) -> float:
        return time.monotonic() - self.started


@dataclass
class SelfSRRun:
    """What one run did. ``kernel`` / ``kernel_file``: a user's slice profile and its file (None: the Gaussian of
    the scan's thickness); ``kernel_source``: the name it was given under (a command's flag); ``iterations``: those
    trained (None when ``model`` was given); ``device``: where the network ran (:func:`network_device`);
    ``corrected``: the result was corrected to give the input's slices back (data consistency) before it was
    written, so its LR consistency is exact by construction; ``written``: (slices, slice spacing mm) of the file
    written when it was resampled from the network's r·N slices ``values`` (None: it holds them as they are);
    ``training_noise``: (σ̂ in the scan's units, where it came from) of the noise matching of the training pairs
    (:mod:`medsr_se.data.noise_matching`; None: a model was given); ``training_precision``: (the precision the
    training ran in, why: ``train:precision`` and ``train:precision_source``; None: a model was given);
    ``started_from``: {model, sha256} of the file whose weights the training started from (``--shared``; None:
    from scratch or no training)."""

    input_path: Path
    result_path: Path
    scan: Scan
    values: np.ndarray
    r: int
    model: Path
    iterations: int | None
    device: str
    clock: StepClock
    kernel: SliceProfile | None = None
    kernel_file: Path | None = None
    kernel_source: str = "slice_profile"
    corrected: bool = False
    written: tuple[int, float] | None = None
    training_noise: tuple[float, str] | None = None
    training_precision: tuple[str, str] | None = None
    started_from: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def profile(self) -> SliceProfile:
        """The profile the training pairs were made with: the kernel, else the Gaussian of FWHM T / d pixels."""
        return self.kernel if self.kernel is not None else gaussian_profile(self.scan.geometry.fwhm_pixels)


def network_device(net) -> str:
    """Where a network's parameters are: ``cpu``, or ``cuda:0 (the GPU's name)``."""
    device = next(net.parameters()).device
    if device.type != "cuda":
        return str(device)
    import torch

    return f"{device} ({torch.cuda.get_device_name(device)})"


def profile_source(geometry: SliceGeometry) -> str:
    """Which of :data:`PROFILE_SOURCES` ``geometry.thickness_source`` is (a caller may reword the option's text as
    ``from --its-flag``: any other "from ..." is the option)."""
    text = geometry.thickness_source
    if geometry.thickness_assumed:
        return "assumed"
    if text.startswith(ESTIMATED):
        return "estimated"
    if text.startswith("from DICOM"):
        return "dicom"
    if text.startswith("from the BIDS sidecar"):
        return "bids_sidecar"
    if text == FROM_OPTION or text.startswith("from "):
        return "option"
    raise ValueError(f"profile_source: a thickness source not known here: {text!r}")


def versions() -> dict[str, str | None]:
    def installed(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"medsr_se": __version__, "torch": installed("torch"), "basicsr": installed("basicsr")}


def _slice_profile(run: SelfSRRun) -> dict:
    geometry = run.scan.geometry
    if run.kernel is not None:
        return {"kind": "kernel", "kernel_file": str(Path(run.kernel_file).resolve()) if run.kernel_file else None,
                "name": run.kernel.name, "fwhm_mm": None, "fwhm_pixels": None, "source": "option",
                "source_detail": f"from {run.kernel_source}"}
    return {"kind": "gaussian", "kernel_file": None, "name": run.profile.name, "fwhm_mm": geometry.slice_thickness,
            "fwhm_pixels": geometry.fwhm_pixels, "source": profile_source(geometry),
            "source_detail": geometry.thickness_source}


def _result(run: SelfSRRun) -> dict:
    """The file written, and the network's r·N slices the LR consistency is measured on (the same unless
    resampled)."""
    network_shape = [int(n) for n in run.values.shape]
    network_spacing = run.scan.geometry.slice_spacing / run.r
    shape, spacing = list(network_shape), network_spacing
    if run.written is not None:
        shape[run.scan.geometry.axis], spacing = int(run.written[0]), float(run.written[1])
    return {"path": str(Path(run.result_path).resolve()), "shape": shape, "slice_spacing_mm": spacing,
            "resampled": run.written is not None, "network_shape": network_shape,
            "network_slice_spacing_mm": network_spacing}


def _agreement(agreement: Agreement) -> dict:
    return {"psnr_db_mask": agreement.psnr_db_mask, "psnr_db_whole": agreement.psnr_db_whole,
            "rmse_mask": agreement.rmse_mask, "rmse_whole": agreement.rmse_whole}


def _training_noise(run: SelfSRRun) -> dict | None:
    """σ̂ of the noise matching, the σ added to each training LR (σ_add) and the source (None: no training here)."""
    if run.training_noise is None:
        return None
    sigma, source = run.training_noise
    return {"sigma": sigma, "added_to_each_lr": top_up_sigma(sigma, run.profile, run.r), "source": source,
            "what": "independent Gaussian noise of added_to_each_lr in every training LR, so that its noise equals "
                    "the thick slices' sigma (the slice profile averages the in-plane noise down)"}


def _training_precision(run: SelfSRRun) -> dict | None:
    """The precision the training's forward passes ran in and why (None: no training here)."""
    if run.training_precision is None:
        return None
    precision, source = run.training_precision
    return {"precision": precision, "source": source}


def _notes(run: SelfSRRun, source: str) -> list[str]:
    notes = list(run.notes)
    if source == "assumed":
        notes.append("the slice thickness is assumed = the slice spacing: the training and the LR consistency rest "
                     "on that assumption (a gap or an overlap between slices makes it wrong)")
    elif source == "estimated":
        notes.append("the slice thickness was estimated from the scan: the training and the LR consistency rest on "
                     "that estimate")
    if run.training_noise is not None and run.training_noise[1] == ESTIMATED_NOISE:
        notes.append(f"the training inputs were given noise up to the scan's own, sigma {run.training_noise[0]:.4g} "
                     "in its units, estimated from the scan assuming white noise of one level (its finest in-plane "
                     "detail counts too): the network learns to suppress noise of that level (lr_noise in the "
                     "recipe: 0 switches it off)")
    if run.corrected:
        notes.append("the result was corrected to give the input's slices back (data consistency) before it was "
                     "written: its LR consistency is exact by construction (up to float rounding) and says nothing "
                     "about the network; cubic B-spline's is as usual")
    if run.iterations is None:
        notes.append(f"the network was given ({run.model}), not trained here: the LR consistency uses the slice "
                     "profile above, which need not be the one it was trained with")
    return notes


def run_report(run: SelfSRRun) -> dict:
    """The report (module docstring) as a JSON-ready dict; measures the LR consistency (seconds under
    ``seconds.lr_consistency``)."""
    scan, geometry = run.scan, run.scan.geometry
    run.clock.mark()
    consistency = lr_consistency(scan.values, run.values, run.profile, run.r, geometry.axis)
    run.clock.lap("lr_consistency")
    profile = _slice_profile(run)
    spacing = [geometry.slice_spacing if a == geometry.axis else geometry.in_plane_spacing for a in range(3)]
    seconds = {"training": run.clock.seconds.get("training"), "application": run.clock.seconds.get("application"),
               "lr_consistency": run.clock.seconds["lr_consistency"], "total": run.clock.total()}
    return {
        "format": FORMAT,
        "input": {"path": str(Path(run.input_path).resolve()), "kind": scan.volume.kind,
                  "shape": [int(n) for n in scan.values.shape], "spacing_mm": spacing, "slice_axis": geometry.axis,
                  "in_plane_spacing_mm": geometry.in_plane_spacing, "slice_spacing_mm": geometry.slice_spacing},
        "result": _result(run),
        "r": run.r,
        "slice_profile": profile,
        "network": {"model": str(Path(run.model).resolve()), "trained_here": run.iterations is not None,
                    "iterations": run.iterations, "training_noise": _training_noise(run),
                    "training_precision": _training_precision(run), "started_from": run.started_from},
        "seconds": seconds,
        "device": run.device,
        "versions": versions(),
        "lr_consistency": {
            "result": _agreement(consistency.result), "cubic_bspline": _agreement(consistency.cubic),
            "psnr_peak": consistency.data_range, "mask_threshold": consistency.threshold,
            "mask_voxels": consistency.mask_voxels, "voxels": consistency.voxels,
            "mask": "input voxels above min + 10 % of (max - min): the head / body (10 % of the maximum when the "
                    "minimum is 0); counted on the input's thick-slice grid",
            "measured_on": "the network's r·N slices (result.network_shape) in the scan's units, before they are "
                           "resampled to another slice spacing (result.resampled) and stored in the scan's data "
                           "type (an integer type rounds each voxel by at most 0.5)",
            "what_it_shows": WHAT_IT_SHOWS},
        "notes": _notes(run, profile["source"]),
    }


def write_report(path: Path, report: dict) -> None:
    """``report`` as indented JSON at ``path``, written atomically (:func:`~medsr_se.io.publish.write_atomically`);
    :class:`WriteError` naming ``path`` when it exists (nothing is overwritten) or cannot be written."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise WriteError(f"{path}: exists; remove it or choose another output folder (nothing was overwritten)")
    text = json.dumps(report, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    write_atomically(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def _db(numbers: dict, where: str) -> str:
    """``numbers``' PSNR ``where`` ("mask" / "whole") as text: "35.41 dB", "exact" (RMSE 0), or "n/a" (undefined)."""
    value, rmse = numbers[f"psnr_db_{where}"], numbers.get(f"rmse_{where}")
    if value is not None:
        return f"{value:.2f} dB"
    return "exact" if rmse == 0 else "n/a"


def _gain(ours: dict, cubic: dict, where: str, before: str = ", ", after: str = "") -> str:
    """The PSNR difference ours − cubic ``where``, when both are numbers."""
    mine, theirs = ours[f"psnr_db_{where}"], cubic[f"psnr_db_{where}"]
    return "" if mine is None or theirs is None else f"{before}{mine - theirs:+.2f}{after}"


def consistency_line(path: Path, report: dict) -> str:
    """``path: LR consistency ...``: the result's PSNR inside the mask and over the whole volume, each with cubic
    B-spline's and the difference."""
    ours, cubic = report["lr_consistency"]["result"], report["lr_consistency"]["cubic_bspline"]
    return (f"{path}: LR consistency (the result degraded again vs the input slices) {_db(ours, 'mask')} inside the "
            f"mask (cubic B-spline {_db(cubic, 'mask')}{_gain(ours, cubic, 'mask')}), {_db(ours, 'whole')} over the "
            f"whole volume (cubic {_db(cubic, 'whole')}{_gain(ours, cubic, 'whole')})")


def sheet_caption(report: dict) -> list[str]:
    """Two lines for the --sheet: the LR consistency inside the mask, cubic B-spline's and the result's."""
    ours, cubic = report["lr_consistency"]["result"], report["lr_consistency"]["cubic_bspline"]
    return ["LR consistency inside the mask (the result degraded again vs the input slices):",
            f"cubic B-spline {_db(cubic, 'mask')}  |  medsr-selfsr {_db(ours, 'mask')}"
            f"{_gain(ours, cubic, 'mask', ' (', ' dB)')}"]
