"""Checkpoint folders: weights plus a manifest that says where they came from.

A checkpoint is a folder holding its weights, a flat ``dict[str, Tensor]``, as ``weights.pt``
(``torch.save``, read back with ``weights_only=True``) or ``weights.safetensors``
(``write_checkpoint(..., weights_format="safetensors")``: no pickle at all), and ``manifest.json``::

    {"format": "exifbench-checkpoint/1", "detector": "spectrum", "weights_file": "weights.pt", "params": {...},
     "config": {...}, "data_manifest_sha256": "...", "code_version": "...",
     "weights_sha256": "...", "created": "...", "extra": {...}}

``state.pt`` (optimizer, epoch, RNG) may sit beside it for resuming a training job.
``weights_file`` (absent in older manifests: ``weights.pt``) is a bare name inside the folder;
any other (``../x``, an absolute path) is refused. A weights file that is a pickle carrying
code is refused by :func:`load_tensors`, never run.
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

__all__ = ["FORMAT", "write_checkpoint", "read_checkpoint", "read_manifest", "load_tensors", "load_state_dict_strict",
           "file_sha256", "path_sha256", "code_version", "data_manifest_sha256"]

FORMAT = "exifbench-checkpoint/1"
WEIGHTS = "weights.pt"
SAFETENSORS = "weights.safetensors"
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
                     data_sha256: str = "", extra: Mapping[str, Any] | None = None,
                     weights_format: str = "pt") -> Path:
    import torch

    if weights_format not in ("pt", "safetensors"):
        raise CheckpointError(f"weights_format must be 'pt' or 'safetensors', not {weights_format!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    name = SAFETENSORS if weights_format == "safetensors" else WEIGHTS
    # Saved through a file object: torch.save names the archive inside the zip after a path it
    # is given (here a random temporary name), so the same weights would make different bytes
    # and a different weights_sha256 (and cache key) every time they are written.
    with atomic_path(folder / name) as tmp, open(tmp, "wb") as f:
        if weights_format == "safetensors":
            from safetensors.torch import save

            f.write(save(tensors))
        else:
            torch.save(tensors, f)
    manifest = {
        "format": FORMAT,
        "detector": detector,
        "weights_file": name,
        "params": dict(params or {}),
        "config": dict(config or {}),
        "data_manifest_sha256": data_sha256,
        "code_version": code_version(),
        "weights_sha256": file_sha256(folder / name),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "extra": dict(extra or {}),
    }
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return folder


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"{str(folder)!r} is not an exifbench checkpoint folder: no {MANIFEST}")
    _inside(folder, path)
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{str(path)!r} is not a JSON manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r}: unknown checkpoint format "
                              f"{manifest.get('format') if isinstance(manifest, dict) else manifest!r:.80}")
    return manifest


def read_checkpoint(folder: str | Path, detector: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and manifest of a checkpoint folder, checked to belong to ``detector``."""
    manifest = read_manifest(folder)
    if manifest["detector"] != detector:
        raise CheckpointError(
            f"{str(folder)!r} is a checkpoint of {manifest['detector']!r}, not of {detector!r}"
        )
    weights_path = Path(folder) / _weights_name(manifest, folder)
    _inside(folder, weights_path)
    if not weights_path.is_file() or file_sha256(weights_path) != manifest.get("weights_sha256"):
        raise CheckpointError(f"{str(weights_path)!r} is missing or does not match the sha256 in its manifest (corrupt?)")
    return load_tensors(weights_path), manifest


def _inside(folder, path: Path) -> None:
    """A checkpoint's files are its own: a link that leads out of its folder (a weights file
    linked to some other file of the machine) is refused. The folder itself may be a link."""
    if path.is_symlink() and not path.resolve().is_relative_to(Path(folder).resolve()):
        raise CheckpointError(f"{str(path)!r} is a link that leads out of its checkpoint folder "
                              f"(to {str(path.resolve())!r}); a checkpoint's files must be inside it")


def _weights_name(manifest: Mapping[str, Any], folder) -> str:
    """The weights file a manifest names: a bare name inside its folder, nothing else."""
    name = str(manifest.get("weights_file", WEIGHTS))
    if name not in (WEIGHTS, SAFETENSORS):
        raise CheckpointError(f"{str(folder)!r}: the manifest names weights {name!r}; a checkpoint's weights are "
                              f"{WEIGHTS} or {SAFETENSORS} inside its folder")
    return name


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat dict of tensors from a ``.safetensors`` file or a torch file read with
    ``weights_only=True``: a pickle that would run code is refused (CheckpointError), never run."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip, safetensors and weights_only errors all mean "not loadable here"
        raise CheckpointError(f"cannot read {str(path)!r} as weights (tensors only; a pickle that carries code "
                              f"is refused): {str(exc).splitlines()[0][:300]}") from exc


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
