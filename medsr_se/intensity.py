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

from dataclasses import asdict, dataclass

import numpy as np

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
            raise ValueError(f"intensity window [{self.low}, {self.high}]: needs finite low < high")

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
        label = f"{self.kind} {self.name}".strip() if self.name and self.name != self.kind else self.kind
        return f"{label} [{self.low:g}, {self.high:g}] {self.unit}"


def ct_window(spec: str) -> IntensityModel:
    """A CT window in HU from a preset name (``CT_WINDOWS``) or explicit levels ``'LOW,HIGH'``."""
    if spec in CT_WINDOWS:
        low, high = CT_WINDOWS[spec]
        return IntensityModel("window", low, high, "HU", spec)
    try:
        low, high = (float(part) for part in spec.split(","))
    except ValueError as error:
        raise ValueError(f"window {spec!r}: use one of {', '.join(CT_WINDOWS)} or LOW,HIGH in HU") from error
    return IntensityModel("window", low, high, "HU", "custom")


def measured(values: np.ndarray, kind: str = "percentile") -> IntensityModel:
    """'percentile' (0.5th-99.5th) or 'minmax' levels measured on ``values`` (stored units)."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ValueError("no finite values to measure an intensity range on")
    if kind == "percentile":
        low, high = np.percentile(finite, PERCENTILES)
    elif kind == "minmax":
        low, high = finite.min(), finite.max()
    else:
        raise ValueError(f"intensity {kind!r}: use percentile or minmax (or a CT window)")
    if high <= low:
        high = low + 1.0  # a constant image: any positive width maps it to 0
    return IntensityModel(kind, float(low), float(high), "stored", kind)


def for_dtype(dtype: np.dtype) -> IntensityModel:
    """The integer type's full range (uint8 [0, 255], uint16 [0, 65535])."""
    info = np.iinfo(dtype)
    return IntensityModel("dtype", float(info.min), float(info.max), "stored", np.dtype(dtype).name)


def choose(spec: str | None, modality: str, values: np.ndarray | None = None) -> IntensityModel:
    """The intensity model a user asked for with ``--intensity``/``--window`` ``spec`` (None: the modality's
    default, a full CT window for CT, percentiles of ``values`` otherwise)."""
    if spec is None:
        spec = DEFAULT_CT_WINDOW if modality == "CT" else "percentile"
    if spec in ("percentile", "minmax"):
        if values is None:
            raise ValueError(f"intensity {spec}: needs the data to measure on")
        return measured(values, spec)
    return ct_window(spec)
