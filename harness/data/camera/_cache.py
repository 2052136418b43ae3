"""The user cache folder for downloaded camera data (``EXIFBENCH_CACHE`` overrides it)."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """``$EXIFBENCH_CACHE`` or ``~/.cache/exifbench``, created on first use."""
    root = Path(os.environ.get("EXIFBENCH_CACHE") or Path.home() / ".cache" / "exifbench").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root
