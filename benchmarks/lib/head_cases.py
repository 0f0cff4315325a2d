"""The cases of the through-plane benchmarks (``python -m benchmarks.throughplane``, ``benchmarks.selfsr_speed``): an
isotropic head volume as ground truth (the MNI152 2009a T1 at 1 mm from nilearn's wheel, or nibabel's anatomical.nii),
thick slices simulated from it along one axis (:mod:`benchmarks.lib.thick_slices`), and what is measured on a result
(PSNR, SSIM inside the head, LR-PSNR against the input slices and against the slices before the noise).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.lib import thick_slices as ts

MNI_FILE = Path("datasets") / "data" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"  # inside nilearn's package
CROP_MARGIN = 2  # voxels around the head's bounding box
METRICS = ("psnr", "ssim", "lr_psnr", "lr_psnr_clean")


class UsageError(ValueError):
    """A bad option or input; one line naming it."""


@dataclass
class GroundTruth:
    values: np.ndarray  # float32, isotropic, cropped
    affine: np.ndarray  # of ``values``
    spacing: float  # mm
    source: str
    source_shape: tuple[int, ...]
    box: list[tuple[int, int]] | None  # the crop, in source voxels


@dataclass(frozen=True)
class Config:
    r: int
    axis: int
    profile: str
    noise: float

    @property
    def name(self) -> str:
        return f"x{self.r} axis {self.axis} {self.profile} noise {self.noise:g}"


@dataclass
class Case:
    """One configuration made: the truth cut to r·N, the input slices (noisy where asked) and their file."""

    config: Config
    truth: np.ndarray
    affine: np.ndarray
    thick: np.ndarray
    path: Path
    fwhm: float  # voxels
    sigma: float  # Rician sigma (0: none)
    mask: np.ndarray  # the head on the truth's grid
    lr_mask: np.ndarray  # the head on the thick grid
    data_range: float
    noise_lr_psnr: float | None  # the noisy input slices against the noise-free ones
    clean: np.ndarray  # the thick slices before the noise (= thick without noise)


# ------------------------------------------------------------------------------------------------------ ground truth
def mni_path() -> Path:
    """nilearn's MNI152 2009a T1 (found through ``importlib.util.find_spec``; nilearn is never imported)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("--volume mni: nilearn is not installed in this environment (a benchmark-only dependency: "
                         "pip install nilearn), or give --volume anatomical")
    path = Path(next(iter(spec.submodule_search_locations))) / MNI_FILE
    if not path.is_file():
        raise UsageError(f"--volume mni: {path}: not in this nilearn (its wheel ships the MNI152 2009a template there)")
    return path


def anatomical_path() -> Path:
    import nibabel

    return Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"


def anatomical_1mm_image():
    """anatomical.nii resampled to 1 mm voxels (cubic B-spline, ``nibabel.processing.resample_to_output``; 65 x 81 x
    49): the tests' head volume, and the volume where the slice-profile estimate errs most with touching slices."""
    import nibabel
    from nibabel.processing import resample_to_output

    return resample_to_output(nibabel.load(str(anatomical_path())), (1.0, 1.0, 1.0), order=3)


VOLUMES = ("mni", "anatomical", "anatomical-1mm")


def load_ground_truth(volume: str, crop: bool) -> GroundTruth:
    """The isotropic volume (its voxel sizes from the NIfTI header; :class:`UsageError` if they differ), cut to the
    head's bounding box (:data:`CROP_MARGIN` voxels around) when ``crop``. ``volume``: one of :data:`VOLUMES`."""
    import nibabel

    path = mni_path() if volume == "mni" else anatomical_path()
    image = anatomical_1mm_image() if volume == "anatomical-1mm" else nibabel.load(str(path))
    values = np.asarray(image.dataobj, np.float32)
    zooms = [float(z) for z in image.header.get_zooms()[:3]]
    if values.ndim != 3 or not np.allclose(zooms, zooms[0], rtol=1e-3):
        raise UsageError(f"--volume {volume}: {path}: not a 3-D isotropic volume (shape {values.shape}, voxels "
                         f"{zooms} mm)")
    box = ts.bounding_box(ts.head_mask(values), CROP_MARGIN) if crop else None
    affine = image.affine
    if box is not None:
        affine = ts.crop_affine(affine, box)
        values = values[tuple(slice(start, stop) for start, stop in box)]
    return GroundTruth(np.ascontiguousarray(values), affine, zooms[0], str(path), image.shape, box)


def make_case(gt: GroundTruth, config: Config, work: Path, noise_seed: int) -> Case:
    """The configuration's truth (cut to r·N along the axis) and thick input, written as ``work/<name>.nii.gz``
    (float32, the thick grid's affine)."""
    import nibabel

    r, axis = config.r, config.axis
    truth = ts.cut(gt.values, axis, r)
    fwhm = ts.fwhm_pixels(config.profile, r)
    clean = ts.simulate(truth, axis, r, fwhm)
    mask = ts.head_mask(truth)
    sigma = config.noise * float(gt.values[ts.head_mask(gt.values)].mean())
    thick = ts.rician(clean, sigma, noise_seed) if sigma > 0 else clean
    data_range = float(truth.max() - truth.min())
    lr_mask = clean > ts.FOREGROUND * truth.max()
    noise_psnr = ts.psnr(thick, clean, lr_mask, data_range) if sigma > 0 else None
    affine = np.array(gt.affine, np.float64)  # the cut keeps voxel 0: the truth's affine is the volume's
    path = work / f"thick_x{r}_axis{axis}_{config.profile}_noise{config.noise:g}.nii.gz"
    nibabel.save(nibabel.Nifti1Image(thick, ts.thick_affine(affine, axis, r)), str(path))
    return Case(config, truth, affine, thick, path, fwhm, sigma, mask, lr_mask, data_range, noise_psnr, clean)


def evaluate(result: np.ndarray, case: Case) -> dict:
    """PSNR and SSIM inside the head, and the LR consistency (module docstring)."""
    if result.shape != case.truth.shape:
        raise RuntimeError(f"a result of shape {result.shape}; the truth is {case.truth.shape}")
    c = case.config
    return {"psnr": ts.psnr(result, case.truth, case.mask, case.data_range),
            "ssim": ts.ssim(result, case.truth, case.mask, case.data_range),
            "lr_psnr": ts.lr_consistency(result, case.thick, case.lr_mask, c.axis, c.r, case.fwhm, case.data_range),
            "lr_psnr_clean": ts.lr_consistency(result, case.clean, case.lr_mask, c.axis, c.r, case.fwhm,
                                               case.data_range)}
