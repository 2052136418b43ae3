"""Run records: the provenance of a sweep, written as ``RUN_DIR/run.json``.

Keys: ``run_id``; ``created``; ``config`` (the parsed TOML) and ``config_path``;
``versions`` (python, platform, exifbench, the libraries the numbers depend on, and every
distribution that provides exifbench plugins);
``git_commit`` (of the working tree the code ran from, or null); ``seed``;
``datasets`` (name, layout, root, n_samples, n_real, n_fake, and ``data_sha256``, a hash of
the sorted sample ids and labels); ``detectors`` (display name, name, params, params hash,
weights sha256, threshold, ``trained_on``: generators and datasets of its checkpoints);
``bootstrap`` (replicates, level, seed, method); ``perturbations`` (canonical specs and plugin versions); ``memory`` (``[run] memory_mib``, the
``oversize`` policy, a chunk's pixel budget, and per detector its declared memory growth, its
largest input in pixels and the cells whose image was beyond it);
``cells`` (total, cached, computed, failed); ``engine`` (seconds until the models had loaded,
busy seconds of preparation and of scoring, wall seconds of the compute phase, their overlap
ratio, chunks, and where each detector's model ran: node id, pid, device); ``elapsed_s``.
"""
from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["new_run_id", "versions", "git_commit", "write_run_json"]


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def versions() -> dict[str, str]:
    """The versions of Python, the libraries the numbers depend on, and every distribution
    that provides exifbench plugins (third-party ones included)."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    plugins = {ep.dist.name for ep in metadata.entry_points(group="exifbench") if ep.dist is not None}
    for dist in ("exifbench", "torch", "torchvision", "ray", "numpy", "scipy", "scikit-learn", "statsmodels", "pillow",
                 "pandas", *sorted(plugins - {"exifbench"})):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    return res.stdout.strip() + ("-dirty" if dirty else "")


def write_run_json(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record, indent=2, sort_keys=False, default=str))
