"""Reading weights for the baselines: exifbench checkpoint folders and the authors' ``.pth`` files.

The authors' files are read with ``torch.load(weights_only=True)`` (tensors and plain
containers only). Their layouts differ slightly and are unwrapped here, and nowhere else:

- CNNDetection saves ``{"model": state_dict, "optimizer": ..., "total_steps": int}``;
- NPR's released ``NPR.pth`` is a bare state dict; its ``train.py`` saves one too;
- checkpoints saved from ``nn.DataParallel`` prefix every key with ``module.``;
- PyTorch before 0.4.1 did not save BatchNorm's ``num_batches_tracked`` counters, which only
  matter when training with ``momentum=None``; they are filled with zeros only when a
  checkpoint has none at all.

Every other difference is an error from :func:`harness.checkpoint.load_state_dict_strict`
that names the keys.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from harness.api import CheckpointError
from harness.checkpoint import file_sha256, load_state_dict_strict, read_checkpoint

__all__ = ["read_state_file", "unwrap_state", "fill_batch_counters", "load_weights", "weights_identity"]

StateDict = dict[str, torch.Tensor]


def read_state_file(path: str | Path) -> object:
    """``torch.load(weights_only=True)`` with an error that says what went wrong."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and weights_only errors all mean "not loadable here"
        raise CheckpointError(
            f"cannot read {str(path)!r} as a weights file with torch.load(weights_only=True): {exc}"
        ) from exc


def unwrap_state(obj: object, entries: tuple[str, ...] = ("model", "state_dict")) -> StateDict:
    """The state dict inside an authors' file: its ``model``/``state_dict`` entry or itself,
    with a ``module.`` prefix (``nn.DataParallel``) removed."""
    for entry in entries:
        if isinstance(obj, Mapping) and entry in obj and isinstance(obj[entry], Mapping):
            obj = obj[entry]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError("the file holds no state dict (a mapping of names to tensors)")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def fill_batch_counters(state: StateDict, module: nn.Module) -> StateDict:
    """Add zero ``num_batches_tracked`` entries when the checkpoint has none (PyTorch < 0.4.1)."""
    counters = [k for k in module.state_dict() if k.endswith("num_batches_tracked")]
    if any(k.endswith("num_batches_tracked") for k in state) or not counters:
        return state
    return {**state, **{k: torch.tensor(0, dtype=torch.long) for k in counters}}


def weights_identity(path: str | Path) -> dict:
    """Where weights came from, for a manifest: the path as given and its sha256."""
    p = Path(path)
    return {"path": str(path), "sha256": file_sha256(p / "weights.pt" if p.is_dir() else p)}


def load_weights(module: nn.Module, path: str | Path, detector: str,
                 remap: Callable[[StateDict, nn.Module], StateDict]) -> dict:
    """Load ``path`` strictly into ``module``; returns the manifest (``{}`` for an authors' file).

    A folder is an exifbench checkpoint of ``detector``; a file is an authors' checkpoint,
    unwrapped and passed through ``remap`` (the detector's upstream key mapping).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"{detector}: checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        state, manifest = read_checkpoint(path, detector)
    else:
        try:
            state = unwrap_state(read_state_file(path))
        except CheckpointError as exc:
            raise CheckpointError(f"{detector}: {str(path)!r}: {exc}") from exc
        state, manifest = remap(state, module), {}
    load_state_dict_strict(module, state, source=str(path))
    return manifest
