"""The layers of pyproject.toml's import-linter contract hold (module-level and function-level imports alike),
and the check would see a break: the same contract on a copy of the package with one deliberate upward import
fails, naming it."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import REPO_ROOT, run_python

LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename='pyproject.toml'))"


def lint(root: Path):
    return run_python(["-c", LINT], cwd=root, PYTHONPATH=str(root), MEDSR_SE_NO_AUTOLOAD="1")


def test_the_layers_contract_holds():
    run = lint(REPO_ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 1 kept, 0 broken" in run.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """An arch importing the command-line layer (inside a function, where a plain cycle check saw nothing)."""
    shutil.copytree(REPO_ROOT / "medsr_se", tmp_path / "medsr_se", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    arch = tmp_path / "medsr_se" / "archs" / "srcnn_arch.py"
    arch.write_text(arch.read_text() + "\n\ndef _upward():\n    from medsr_se.cli import console  # noqa: F401\n")
    run = lint(tmp_path)
    assert run.returncode != 0
    assert "medsr_se.archs.srcnn_arch -> medsr_se.cli.console" in run.stdout, run.stdout
