"""medsr_se.data.slice_profile_notes: the line that says which slice profile a run rests on and where it came
from, and the warning for an assumed thickness. Oracle: the geometry and kernel built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsr_se.data.degradations import kernel_profile
from medsr_se.data.slice_profile_notes import assumed_thickness_warning, slice_profile_note
from medsr_se.io.scans import ASSUMED, Scan, SliceGeometry
from medsr_se.io.volumes import Volume


def scan(source: str) -> Scan:
    volume = Volume(np.zeros((4, 4, 4), np.float32), "nifti", "", "stored", 2, [Path("scan.nii.gz")], None)
    return Scan(volume, SliceGeometry(2, 2.0, 6.0, 4.0 if source == "given" else 6.0, source))


def test_the_note_names_the_spacings_r_the_profile_and_its_source():
    given = scan("given")
    assert slice_profile_note(given, 3) == ("scan.nii.gz: slice spacing 6 mm, in-plane 2 mm -> r = 3; slice profile: "
                                            "Gaussian FWHM 4 mm = 2 px (given)")
    kernel = kernel_profile(np.ones(3), "box.npy")
    assert slice_profile_note(given, 3, kernel, "--slice-profile").endswith(
        "slice profile: kernel box.npy (3 taps) (from --slice-profile)")
    assert assumed_thickness_warning(given) is None


def test_an_assumed_thickness_is_a_warning_that_says_why_it_may_be_wrong():
    warning = assumed_thickness_warning(scan(f"{ASSUMED}: the scan does not say"))
    assert warning == ("scan.nii.gz: the slice thickness is not known, so the slice profile assumes it equals the "
                       "slice spacing (6 mm); with a gap or an overlap between slices that is wrong")
