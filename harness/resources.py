"""Data that ships with the package: the benchmark catalogue and the leaderboard specs.

They live in the repository's top-level ``datasets/`` and ``leaderboards/`` folders (data,
not Python packages: an importable ``datasets`` would shadow Hugging Face's). The build maps
them into the distribution as ``harness._catalogue`` and ``harness._leaderboards``
(``[tool.setuptools.package-dir]`` in pyproject.toml), so an installed wheel reads them with
:mod:`importlib.resources`.
"""
from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["catalogue_files", "leaderboard_files"]


def _packaged(package: str, folder: str) -> Traversable:
    try:
        return files(package)
    except ModuleNotFoundError:
        # An editable install cannot import a folder mapped into a package from outside it
        # when that folder has no __init__.py (setuptools issue 4943), and adding one would make
        # `datasets` importable from the repository root. An editable install runs the source
        # tree itself, so the folder is the one beside the package.
        return Path(str(files("harness"))).parent / folder


def catalogue_files() -> Traversable:
    """The catalogue folder: one TOML per benchmark, the zoo recipe and its curation list."""
    return _packaged("harness._catalogue", "datasets")


def leaderboard_files() -> Traversable:
    """The leaderboard specs folder (``default.toml``)."""
    return _packaged("harness._leaderboards", "leaderboards")
