"""The shape of the code: layer, independence and acyclicity contracts (pyproject.toml,
``[tool.importlinter]``), checked by ``lint-imports`` on every test run."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> list[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "lint-imports is not installed: it comes with the test extra (pip install -e '.[test]')"
    return [exe, "--no-cache"]


def test_import_contracts_are_kept():
    result = subprocess.run(_lint_imports(), cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_harness_package_is_named_in_the_layer_contract():
    """A new subpackage of harness must be placed in a layer, or the layers check nothing about it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in config if c["type"] == "layers")["layers"]
    named = {m.strip() for layer in layers for part in layer.split("|") for m in part.split(":")}
    top = {f"harness.{p.stem if p.is_file() else p.name}" for p in (ROOT / "harness").iterdir()
           if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    unplaced = top - named
    assert not unplaced, f"place these in the layers contract of pyproject.toml: {sorted(unplaced)}"
