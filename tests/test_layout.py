"""The package has BasicSR's anatomy, no import cycle, and one version."""

from __future__ import annotations

import ast
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


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """medsr_se modules that ``path`` imports anywhere (module level or inside functions)."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: drop level - 1 trailing parts of this package
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # `from a.b import c`: an edge to a.b.c where c is a module, else to a.b
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    found.discard(this)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    known = {module_name(path) for path in files}
    return {module_name(path): imported_modules(path, known) for path in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_the_package():
    graph = import_graph()
    assert "medsr_se.archs.seedsr_arch" in graph["medsr_se.utils.registration"]  # the walk sees function-level imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_one_version():
    assert medsr_se.__version__ == importlib.metadata.version("medsr-se")
    setup_text = (PACKAGE_DIR.parent / "setup.py").read_text()
    assert medsr_se.__version__ not in setup_text  # read from medsr_se/version.py, not written twice


def test_readme_layout_names_every_module():
    """README's Layout section lists every module of the package under its folder (a moved or added module that
    the section does not name fails here)."""
    readme = (PACKAGE_DIR.parent / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    folders: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        head = line[:15].strip()
        if head.endswith("/") and line.startswith("  "):
            current = head
        folders[current] = folders.get(current, "") + " " + line
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        folder = "" if path.parent == PACKAGE_DIR else f"{path.parent.name}/"
        assert path.name in folders.get(folder, ""), f"README layout does not list {folder}{path.name}"
