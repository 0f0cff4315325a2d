"""The intensity model: one documented mapping from stored values to the network's [0, 1] and back.

A network sees values in [0, 1]. How a user's values get there is chosen once, when a dataset is prepared, stored in
its ``manifest.json`` and in every checkpoint trained on it, so training, inference and evaluation agree:

    physical = stored · RescaleSlope + RescaleIntercept        (DICOM; NIfTI's scl_slope / scl_inter; else 1, 0)
    unit     = (physical − low) / (high − low)                  the network's input, clipped to [0, 1]
    physical = low + unit · (high − low)                        the network's output, back in physical units

``low`` / ``high`` are:
- CT, a window in Hounsfield units (HU): ``full`` [-1024, 3071] (the 12-bit CT range: air to dense bone and
  contrast; the default), ``soft-tissue`` (W 400 / L 40: [-160, 240]), ``lung`` (W 1500 / L -600: [-1350, 150]),
  ``bone`` (W 1800 / L 400: [-500, 1300]), ``brain`` (W 80 / L 40: [0, 80]), or explicit levels ``LOW,HIGH``;
- MRI and other modalities without a physical unit: ``percentile`` (the 0.5th and 99.5th percentiles of the
  dataset's values, measured at preparation and recorded) or ``minmax``;
- 8/16-bit photographs: ``dtype``, the type's full range ([0, 255] or [0, 65535]), the behaviour for PNG/JPEG.

Values outside [low, high] are clipped *for the network only*: the number of such values is reported (a warning),
never silently dropped, and a caller that needs them keeps its own copy. Output values lie in [low, high].
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from medsr_se.errors import DataError, OptionError

logger = logging.getLogger(__name__)

CT_WINDOWS = {  # name -> (low, high) in HU
    "full": (-1024.0, 3071.0),
    "soft-tissue": (-160.0, 240.0),
    "lung": (-1350.0, 150.0),
    "bone": (-500.0, 1300.0),
    "brain": (0.0, 80.0),
}
DEFAULT_CT_WINDOW = "full"
PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class IntensityModel:
    """unit = (physical − low) / (high − low) (module docstring).

    Attributes:
        kind: 'window' (CT, HU), 'percentile' or 'minmax' (measured on the data), 'dtype' (integer type's range).
        low / high: physical values mapped to 0 and 1.
        unit: what the physical values are ('HU' for CT; 'stored' for values without a physical unit).
        name: the preset's name ('full', 'lung', ...) or how the levels were chosen.
    """

    kind: str
    low: float
    high: float
    unit: str = "stored"
    name: str = ""

    def __post_init__(self) -> None:
        if not np.isfinite(self.low) or not np.isfinite(self.high) or self.high <= self.low:
            raise OptionError(f"intensity window [{self.low}, {self.high}]: needs finite low < high")

    def to_unit(self, physical: np.ndarray) -> np.ndarray:
        """float32 (physical − low) / (high − low), not clipped."""
        return ((np.asarray(physical, np.float64) - self.low) / (self.high - self.low)).astype(np.float32)

    def from_unit(self, unit: np.ndarray) -> np.ndarray:
        """float64 low + unit · (high − low)."""
        return self.low + np.asarray(unit, np.float64) * (self.high - self.low)

    def outside(self, physical: np.ndarray) -> int:
        """How many values lie outside [low, high] (they reach the network clipped)."""
        values = np.asarray(physical)
        return int(np.count_nonzero((values < self.low) | (values > self.high)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> IntensityModel:
        return cls(str(data["kind"]), float(data["low"]), float(data["high"]), str(data.get("unit", "stored")),
                   str(data.get("name", "")))

    def describe(self) -> str:
        """``window full [-1024, 3071] HU``: how the model was chosen, then its levels."""
        label = f"{self.kind} {self.name}".strip() if self.name and self.name != self.kind else self.kind
        return f"{label} [{self.low:g}, {self.high:g}] {self.unit}"

    def range_text(self) -> str:
        """``[-1024, 3071] HU (window full)``: the levels first, for sentences such as "values lie outside ..."."""
        label = self.describe()[: -len(f" [{self.low:g}, {self.high:g}] {self.unit}")]
        return f"[{self.low:g}, {self.high:g}] {self.unit} ({label})"


LEVELS = 65535  # steps of the 16-bit slices the network is trained on: the finest difference it resolves
FEW_LEVELS = 256  # fewer than 8 bits' worth of levels: the data reach the network as a nearly flat image


def window_fit(model: IntensityModel, values: np.ndarray, where: str) -> str | None:
    """Whether ``values`` keep their contrast through ``model``: they span

        levels = (min(max, high) − max(min, low)) / (high − low) · 65535

    of its 16-bit levels (max / min over the finite values). DataError, naming ``where`` (the window and the
    file), when that is under one level, the data then collapsing to one value (a window far wider than the data,
    or one the data lie outside of); a warning message when under :data:`FEW_LEVELS`; None when they fit, or when
    the data are constant (no window could keep contrast they do not have)."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0 or finite.min() == finite.max():
        return None
    lowest, highest = float(finite.min()), float(finite.max())
    data = f"({lowest:g} to {highest:g})"
    levels = (min(highest, model.high) - max(lowest, model.low)) / (model.high - model.low) * LEVELS
    if levels <= 0:
        raise DataError(f"{where}: all its values {data} lie outside {model.range_text()}: they would collapse "
                        "to one level; give a window that holds them")
    if levels < 1:
        raise DataError(f"{where}: the values {data} span {levels:.2g} of the {LEVELS} levels of "
                        f"{model.range_text()}: they would collapse to one level; give a narrower window")
    if levels < FEW_LEVELS:
        return (f"{where}: the values {data} span only {levels:.3g} of the {LEVELS} levels of "
                f"{model.range_text()}: the network sees a nearly flat image; a narrower window keeps their contrast")
    return None


def ct_window(window: str) -> IntensityModel:
    """A CT window in HU from a preset name (``CT_WINDOWS``) or explicit levels ``'LOW,HIGH'``; an OptionError
    naming ``window=`` for anything else (or levels that are not finite with LOW < HIGH)."""
    if window in CT_WINDOWS:
        low, high = CT_WINDOWS[window]
        return IntensityModel("window", low, high, "HU", window)
    try:
        low, high = (float(part) for part in window.split(","))
    except ValueError as error:
        raise OptionError(f"window={window!r}: use one of {', '.join(CT_WINDOWS)} or LOW,HIGH in HU",
                          parameter="window") from error
    if not np.isfinite(low) or not np.isfinite(high) or high <= low:
        raise OptionError(f"window={window!r}: needs finite LOW < HIGH", parameter="window")
    return IntensityModel("window", low, high, "HU", "custom")


def measured(values: np.ndarray, kind: str = "percentile") -> IntensityModel:
    """'percentile' (0.5th-99.5th) or 'minmax' levels measured on ``values`` (stored units)."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise DataError("no finite values to measure an intensity range on")
    if kind == "percentile":
        low, high = np.percentile(finite, PERCENTILES)
    elif kind == "minmax":
        low, high = finite.min(), finite.max()
    else:
        raise OptionError(f"kind={kind!r}: use percentile or minmax (or a CT window: ct_window)", parameter="kind")
    if high <= low:
        high = low + 1.0  # a constant image: any positive width maps it to 0
    return IntensityModel(kind, float(low), float(high), "stored", kind)


def for_dtype(dtype: np.dtype) -> IntensityModel:
    """The integer type's full range (uint8 [0, 255], uint16 [0, 65535])."""
    info = np.iinfo(dtype)
    return IntensityModel("dtype", float(info.min), float(info.max), "stored", np.dtype(dtype).name)


def choose(spec: str | None, modality: str, values: np.ndarray | None = None) -> IntensityModel:
    """The intensity model ``spec`` names: 'percentile' / 'minmax' (measured on ``values``) or a CT window
    (:func:`ct_window`); None: the modality's default, a full CT window for CT, percentiles of ``values`` otherwise."""
    if spec is None:
        spec = DEFAULT_CT_WINDOW if modality == "CT" else "percentile"
    if spec in ("percentile", "minmax"):
        if values is None:
            raise ValueError(f"intensity {spec}: needs the data to measure on")
        return measured(values, spec)
    return ct_window(spec)


class NonFiniteError(DataError):
    """Values that are NaN or ±inf: they have no intensity, and the network's SE squeeze (a mean over the whole
    image) would spread one of them over its whole slice."""


def replace_nonfinite(values: np.ndarray, name: str, nonfinite: float | None = None) -> np.ndarray:
    """``values`` unchanged when all are finite. Otherwise :class:`NonFiniteError` naming ``name`` and the counts
    (NaN, +inf, -inf) and ``nonfinite=`` (its ``parameter``), or with a finite ``nonfinite`` a copy where they are
    replaced by it, and a warning (logged) that says how many and by what."""
    values = np.asarray(values)
    if values.dtype.kind not in "fc":  # integer and boolean arrays hold only finite values
        return values
    bad = ~np.isfinite(values)
    count = int(np.count_nonzero(bad))
    if not count:
        return values
    kinds = (f"{int(np.count_nonzero(np.isnan(values)))} NaN, {int(np.count_nonzero(values == np.inf))} +inf, "
             f"{int(np.count_nonzero(values == -np.inf))} -inf")
    found = f"{name}: {count} non-finite value(s) of {values.size} ({kinds})"
    if nonfinite is None:
        raise NonFiniteError(f"{found}: the network would spread each over its whole slice; replace them with a "
                             "finite value of your choice: nonfinite=VALUE", parameter="nonfinite")
    if not np.isfinite(nonfinite):
        raise OptionError(f"nonfinite={nonfinite}: the replacement must be a finite number", parameter="nonfinite")
    logger.warning("%s replaced by %g", found, nonfinite)
    return np.where(bad, np.asarray(nonfinite, values.dtype), values)
