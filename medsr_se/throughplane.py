"""Through-plane super-resolution of thick-slice CT / MRI, trained on the scan itself (SMORE, Zhao et al., IEEE TMI
2021): the Python API behind ``medsr-selfsr``, in one place.

The pieces live by layer: the degradation in :mod:`medsr_se.data.degradations`, reading a scan in
:mod:`medsr_se.io.scans`, applying a network in :mod:`medsr_se.inference.through_plane`; this module hands their
names on.

A scan with in-plane spacing d and slice spacing D (slice thickness T, the FWHM of the slice profile) has sharp
in-plane slices and blurry sagittal / coronal ones. The in-plane slices are the high-resolution examples:

    r     = round(D / d)                                     the through-plane scale (2..8)
    LR    = every r-th row of (HR * profile along the rows)  profile: Gaussian, FWHM = T / d in-plane pixels,
                                                              or a user kernel (.npy, taps in in-plane pixels)

LR row k samples the blurred HR at row r·k + (r − 1)/2 (half-pixel centres: LR row k covers HR rows r·k ..
r·k + r − 1, the convention of the network's image skip, so its output row r·k + (r − 1)/2 is at input row k).
A gap (T < D) or an overlap (T > D) between slices only changes the profile: the subsampling is D, the blur T (as
ECLARE documents). T is ``slice_thickness`` if given, else the scan's (DICOM SliceThickness; for a NIfTI, which
has none, SliceThickness of the BIDS sidecar ``scan.json`` that dcm2niix writes beside ``scan.nii.gz``), else
*assumed* = D; ``SliceGeometry.thickness_source`` says which (:func:`read_scan`). Both in-plane axes give pairs
(a slice and its transpose). The trained 2-D network (``SEEDSRGenerator(upscale=[r, 1])``) is then applied to every
sagittal and every coronal slice, whose height is the slice axis, and the two results are averaged. The result has
r·N slices of spacing D / r; slice j is at input slice index (j + 0.5) / r − 0.5, so input slice k is output slice
r·k + (r − 1)/2.

    from medsr_se import throughplane as tp
    scan = tp.read_scan("scan.nii.gz")                           # values, geometry (spacings, slice axis)
    lr, hr = tp.training_pair(hr_slice, tp.gaussian_profile(scan.geometry.fwhm_pixels), scan.geometry.scale)
    values, geometry = tp.apply_network(scan.values, scan.geometry, net)   # r·N slices, spacing D / r
    values, spacing = tp.super_resolve(array, (0.8, 0.8, 4.0), net)          # any array with its voxel size
    net = tp.load_through_plane_model("net_g_latest.pth", r)                 # checked: upscale [r, 1], gray
    fixed = tp.make_consistent(values, scan.values, scan.geometry.axis, profile, r)  # fixed.values: A x' = y
    tp.write_result(scan, values, r, "out/scan_x4.nii.gz", "description")   # NIfTI, or a derived DICOM series
    grid = tp.choose_grid(scan.geometry, n, scan.name, target_spacing=0.9)  # any spacing: r = ceil(D / 0.9)
    tp.write_result(scan, tp.to_grid(values, axis, grid), grid.scale, "out/scan_0.9mm.nii.gz", "description")

Errors name the parameter they are about (``scale=9: ...``, ``error.parameter == "scale"``).
"""

from medsr_se.data.degradations import (
    FWHM_PER_SIGMA,
    MAX_PROFILE_TAPS,
    MIN_FWHM_PIXELS,
    PROFILE_SIGMAS,
    SliceProfile,
    blur_rows,
    check_kernel_layout,
    degrade,
    gaussian_profile,
    kernel_profile,
    load_profile,
    sample_rows,
    training_pair,
)
from medsr_se.inference.data_consistency import Consistency, consistency_operator, make_consistent
from medsr_se.inference.slice_resampling import to_grid
from medsr_se.inference.through_plane import (
    APPLY_BATCH,
    apply_network,
    geometry_from_spacing,
    load_through_plane_model,
    super_resolve,
)
from medsr_se.io.scans import (
    ASSUMED,
    FROM_OPTION,
    MAX_SCALE,
    MIN_SCALE,
    Scan,
    SliceGeometry,
    ThroughPlaneError,
    check_series_plane,
    choose_scale,
    dicom_thickness,
    in_plane_slices,
    intensity_for,
    read_scan,
    series_files,
    sidecar_of,
    sidecar_thickness,
    write_result,
)
from medsr_se.io.slice_grid import SliceGrid, choose_grid

__all__ = ["APPLY_BATCH", "ASSUMED", "Consistency", "FROM_OPTION", "FWHM_PER_SIGMA", "MAX_PROFILE_TAPS", "MAX_SCALE",
           "MIN_FWHM_PIXELS", "MIN_SCALE", "PROFILE_SIGMAS", "Scan", "SliceGeometry", "SliceGrid", "SliceProfile",
           "ThroughPlaneError", "apply_network", "blur_rows", "check_kernel_layout", "check_series_plane",
           "choose_grid", "choose_scale", "consistency_operator", "degrade", "dicom_thickness", "gaussian_profile",
           "geometry_from_spacing", "in_plane_slices", "intensity_for", "kernel_profile", "load_profile",
           "load_through_plane_model", "make_consistent", "read_scan", "sample_rows", "series_files", "sidecar_of",
           "sidecar_thickness", "super_resolve", "to_grid", "training_pair", "write_result"]
