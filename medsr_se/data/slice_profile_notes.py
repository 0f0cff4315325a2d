"""What a through-plane run says about the slice profile its training pairs rest on: the scan's spacings, r, and the
profile with where it came from; and, when the slice thickness is only assumed, why that may be wrong. Both are
returned as text for the caller to show (a command adds how its user gives a thickness).

    slice_profile_note(scan, r)          "scan.nii.gz: slice spacing 6 mm, in-plane 2 mm -> r = 3; slice profile:
                                          Gaussian FWHM 6 mm = 3 px (assumed = slice spacing: ...)"
    assumed_thickness_warning(scan)      None, or "scan.nii.gz: the slice thickness is not known, so ..."
"""

from __future__ import annotations

from medsr_se.data.degradations import SliceProfile
from medsr_se.io.scans import Scan


def slice_profile_note(scan: Scan, r: int, kernel: SliceProfile | None = None,
                       kernel_source: str = "slice_profile") -> str:
    """One line: the slice and in-plane spacing, r, and the slice profile: ``kernel`` (a user's, said to come
    from ``kernel_source``: the name its caller took it under) or the Gaussian of FWHM = the slice thickness, with
    ``geometry.thickness_source``."""
    geometry = scan.geometry
    if kernel is not None:
        profile = f"{kernel.name} (from {kernel_source})"
    else:
        profile = (f"Gaussian FWHM {geometry.slice_thickness:g} mm = {geometry.fwhm_pixels:.3g} px "
                   f"({geometry.thickness_source})")
    return (f"{scan.name}: slice spacing {geometry.slice_spacing:g} mm, in-plane {geometry.in_plane_spacing:g} mm "
            f"-> r = {r}; slice profile: {profile}")


def assumed_thickness_warning(scan: Scan) -> str | None:
    """None when the scan's slice thickness is known (given, read or estimated); when it is assumed = the slice
    spacing (:attr:`~medsr_se.io.scans.SliceGeometry.thickness_assumed`), why the profile may be wrong: a gap or
    an overlap between slices."""
    geometry = scan.geometry
    if not geometry.thickness_assumed:
        return None
    return (f"{scan.name}: the slice thickness is not known, so the slice profile assumes it equals the slice "
            f"spacing ({geometry.slice_spacing:g} mm); with a gap or an overlap between slices that is wrong")
