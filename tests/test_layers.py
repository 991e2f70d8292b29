"""The package's layers hold: each imports only those below it (import-linter's contract in
pyproject.toml, which CI also runs as `lint-imports`), and a planted upward import breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """import-linter on the package copied to `tree` (it analyses what `import ftbench` finds)."""
    if shutil.which("lint-imports") is None:
        pytest.skip("import-linter is not installed: pip install -e '.[test]'")
    return subprocess.run(
        ["lint-imports", "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": str(Path(sys.executable).parent) + ":/usr/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src" / "ftbench", tmp_path / "ftbench")
    return tmp_path


def test_the_layers_are_kept(tree: Path) -> None:
    run = lint_imports(tree)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "KEPT" in run.stdout


def test_a_planted_upward_import_breaks_them(tree: Path) -> None:
    # core, the bottom layer, reaching up into the report: what the contract exists to stop.
    spec = tree / "ftbench" / "core" / "spec.py"
    spec.write_text(
        spec.read_text() + "\n\ndef _planted():\n    from ftbench.report import tables\n"
    )
    run = lint_imports(tree)
    assert run.returncode == 1
    assert "ftbench.core is not allowed to import ftbench.report" in run.stdout
    assert "ftbench.core.spec -> ftbench.report.tables" in run.stdout
