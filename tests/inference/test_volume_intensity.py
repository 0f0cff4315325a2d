"""A volume's intensity model (medsr_se.inference.volume_intensity): the choice in its order, and a window the
values collapse in refused naming the parameter that chose it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from medsr_se.errors import DataError
from medsr_se.inference.checkpoint import TrainingData
from medsr_se.inference.jobs import Job
from medsr_se.inference.volume_intensity import check_intensities, intensity_source, volume_intensity
from medsr_se.io.volumes import Volume

RECORDED = {"kind": "window", "low": 0.0, "high": 500.0, "unit": "HU", "name": "custom"}


def volume(values: np.ndarray, modality: str = "CT", unit: str = "HU") -> Volume:
    return Volume(values.astype(np.float32), "nifti", modality, unit, 2, [Path("scan.nii")], None)


def test_the_choice_window_then_measure_then_the_checkpoint_then_the_default():
    ct = volume(np.linspace(-1000, 1000, 64).reshape(4, 4, 4))
    recorded = TrainingData(intensity=RECORDED)
    assert (volume_intensity(ct, recorded, "brain", None).low, volume_intensity(ct, recorded, "brain").high) == (0, 80)
    minmax = volume_intensity(ct, recorded, measure="minmax")
    assert (minmax.low, minmax.high) == (-1000, 1000)
    assert volume_intensity(ct, recorded).high == 500 and volume_intensity(ct, TrainingData()).name == "full"
    mr = volume(np.arange(1000.0).reshape(10, 10, 10), "MR", "stored")
    low, high = np.percentile(np.arange(1000.0), [0.5, 99.5])
    assert (volume_intensity(mr, TrainingData()).low, volume_intensity(mr, TrainingData()).high) == \
        pytest.approx((low, high))
    assert intensity_source(recorded, "brain") == "window=brain"
    assert intensity_source(recorded, measure="minmax") == "measure=minmax"
    assert intensity_source(recorded, checkpoint="m.pth") == "the checkpoint's intensity model (m.pth)"
    assert intensity_source(TrainingData()) == "the default intensity model"


def test_a_collapsing_window_names_its_parameter_a_wide_one_warns(caplog):
    jobs = [Job("nifti", [Path("scan.nii")], Path("."), volume(np.linspace(-900, 1100, 64).reshape(4, 4, 4)))]
    with pytest.raises(DataError, match=r"^window=-1e9,1e9: scan.nii: .*collapse to one level") as caught:
        check_intensities(jobs, TrainingData(), window="-1e9,1e9")
    assert caught.value.parameter == "window"
    with caplog.at_level(logging.WARNING, logger="medsr_se"):
        check_intensities(jobs, TrainingData(), window="-1e6,1e6")
    assert [record.getMessage()[:26] for record in caplog.records] == ["window=-1e6,1e6: scan.nii:"]
    assert jobs[0].intensity.low == -1e6
