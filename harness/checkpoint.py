"""Checkpoint folders: weights plus a manifest that says where they came from.

A checkpoint is a folder holding ``weights.pt`` (a flat ``dict[str, Tensor]`` saved with
``torch.save`` and read back with ``weights_only=True``) and ``manifest.json``::

    {"format": "exifbench-checkpoint/1", "detector": "spectrum", "params": {...},
     "config": {...}, "data_manifest_sha256": "...", "code_version": "...",
     "weights_sha256": "...", "created": "...", "extra": {...}}

``state.pt`` (optimizer, epoch, RNG) may sit beside it for resuming a training job.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from harness.api import CheckpointError
from harness.files import atomic_path, atomic_write_text, file_sha256

if TYPE_CHECKING:  # torch is imported where weights are read or written: hashing needs none
    import torch

__all__ = ["FORMAT", "write_checkpoint", "read_checkpoint", "read_manifest", "load_state_dict_strict",
           "file_sha256", "path_sha256", "code_version", "data_manifest_sha256"]

FORMAT = "exifbench-checkpoint/1"
WEIGHTS = "weights.pt"
MANIFEST = "manifest.json"


def path_sha256(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (names and contents, sorted)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != "state.pt"):
        h.update(str(f.relative_to(path)).encode())
        h.update(file_sha256(f).encode())
    return h.hexdigest()


def code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("exifbench")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def data_manifest_sha256(sample_ids: list[str], labels: list[int]) -> str:
    """Identifies training data by content: the sorted (sample_id, label) pairs."""
    text = "\n".join(f"{s},{l}" for s, l in sorted(zip(sample_ids, labels)))
    return hashlib.sha256(text.encode()).hexdigest()


def write_checkpoint(folder: str | Path, detector: str, weights: Mapping[str, torch.Tensor], *,
                     params: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None,
                     data_sha256: str = "", extra: Mapping[str, Any] | None = None) -> Path:
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    # Saved through a file object: torch.save names the archive inside the zip after a path it
    # is given (here a random temporary name), so the same weights would make different bytes
    # and a different weights_sha256 (and cache key) every time they are written.
    with atomic_path(folder / WEIGHTS) as tmp, open(tmp, "wb") as f:
        torch.save(tensors, f)
    manifest = {
        "format": FORMAT,
        "detector": detector,
        "params": dict(params or {}),
        "config": dict(config or {}),
        "data_manifest_sha256": data_sha256,
        "code_version": code_version(),
        "weights_sha256": file_sha256(folder / WEIGHTS),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "extra": dict(extra or {}),
    }
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return folder


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"{str(folder)!r} is not an exifbench checkpoint folder: no {MANIFEST}")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r}: unknown checkpoint format {manifest.get('format')!r}")
    return manifest


def read_checkpoint(folder: str | Path, detector: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and manifest of a checkpoint folder, checked to belong to ``detector``."""
    manifest = read_manifest(folder)
    if manifest["detector"] != detector:
        raise CheckpointError(
            f"{str(folder)!r} is a checkpoint of {manifest['detector']!r}, not of {detector!r}"
        )
    weights_path = Path(folder) / WEIGHTS
    if file_sha256(weights_path) != manifest["weights_sha256"]:
        raise CheckpointError(f"{str(weights_path)!r} does not match the sha256 in its manifest (corrupt?)")
    import torch

    return torch.load(weights_path, map_location="cpu", weights_only=True), manifest


def load_state_dict_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str = "") -> None:
    """``load_state_dict(strict=True)`` with an error that names missing/unexpected keys
    and mismatched shapes, so a wrong checkpoint can never run with random weights."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_few(unexpected)}")
        if shapes:
            parts.append("shape mismatch " + ", ".join(
                f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in shapes[:5]))
        raise CheckpointError(f"checkpoint {source or ''} does not fit {type(module).__name__}: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def _few(keys: list[str], n: int = 8) -> str:
    return str(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")
