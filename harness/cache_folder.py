"""The user cache folder: downloaded data, trained demo checkpoints and cached scores.

``EXIFBENCH_CACHE`` overrides the default ``$XDG_CACHE_HOME/exifbench`` (``~/.cache/exifbench``).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a subfolder of it), created on first use."""
    root = os.environ.get("EXIFBENCH_CACHE")
    if root:
        base = Path(root).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "exifbench"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
