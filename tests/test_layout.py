"""The package has BasicSR's anatomy and one version (its layers: tests/test_layers.py)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

import medsr_se

PACKAGE_DIR = Path(medsr_se.__file__).resolve().parent

EXPECTED_HOMES = {
    ARCH_REGISTRY: ("medsr_se.archs", ["SEEDSRGenerator", "FusionSEDiscriminator"]),
    LOSS_REGISTRY: ("medsr_se.losses", ["FusionLoss"]),
    MODEL_REGISTRY: ("medsr_se.models", ["RelativisticGANModel", "SEEDSRModel"]),
    DATASET_REGISTRY: ("medsr_se.data", ["PairedMedicalImageDataset"]),
    METRIC_REGISTRY: ("medsr_se.metrics", ["calculate_psnr_fov", "calculate_ssim_fov", "calculate_vessel_f1"]),
}


def test_registered_classes_live_in_the_matching_subpackage():
    for registry, (home, names) in EXPECTED_HOMES.items():
        for name in names:
            assert registry.get(name).__module__.startswith(home + "."), (name, registry.get(name).__module__)


def test_one_version():
    assert medsr_se.__version__ == importlib.metadata.version("medsr-se")
    setup_text = (PACKAGE_DIR.parent / "setup.py").read_text()
    assert medsr_se.__version__ not in setup_text  # read from medsr_se/version.py, not written twice


def test_design_page_names_every_module():
    """docs/design.md's Layout section lists every module of the package under its folder (a moved or added module
    that the section does not name fails here)."""
    design = (PACKAGE_DIR.parent / "docs" / "design.md").read_text()
    block = design.split("## Layout", 1)[1].split("```", 2)[1]
    folders: dict[str, str] = {}  # "" (medsr_se/ itself), "archs/", "integration/patches/" ... -> their lines
    current = None
    for line in block.splitlines():
        first = line.split()[0] if line.strip() else ""
        if not line.startswith(" "):  # a top-level entry: medsr_se/ itself, or outside the package
            current = "" if first == "medsr_se/" else None
        elif line.startswith("  ") and not line.startswith("   ") and first.endswith("/"):
            current = first  # a sub-package, named by its path inside medsr_se/
        if current is not None:
            folders[current] = folders.get(current, "") + " " + line
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        folder = "" if path.parent == PACKAGE_DIR else f"{path.parent.relative_to(PACKAGE_DIR).as_posix()}/"
        assert path.name in folders.get(folder, ""), f"docs/design.md layout does not list {folder}{path.name}"
