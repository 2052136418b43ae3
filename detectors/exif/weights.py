"""Loading SDAIE weights: the authors' released ``.pth`` files and exifbench checkpoint
folders, always with strict key matching (:func:`harness.checkpoint.load_state_dict_strict`).

Authors' formats: the pretext checkpoint ``{'state_net': {'module.backbone.*',
'module.fc1.*' ... 'module.fc14.*'}}`` and the binary detector ``{'state_net':
{'module.diffusionextractor_pretrained.*', 'module.diffusionextractor_random.*',
'module.fc.*'}, 'epoch': ...}``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from harness.api import CheckpointError
from harness.checkpoint import file_sha256, load_state_dict_strict, path_sha256, read_checkpoint, read_manifest
from detectors.exif.model import PAPER, AuthorsBinaryNet, BackboneConfig, BinaryNet, PretextNet, SDAIEBackbone

__all__ = ["RANDOM", "read_authors_state", "infer_config", "load_pretext", "load_backbone", "load_binary",
           "random_backbone", "config_from_params", "source_sha256"]

#: ``backbone="random"``: a seeded, randomly initialised backbone (tests and smoke runs only)
RANDOM = "random"


def read_authors_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_net`` of an authors' ``.pth`` with the DataParallel ``module.`` prefix removed."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a non-checkpoint file
        raise CheckpointError(f"{str(path)!r} is not a torch checkpoint readable with weights_only=True: {exc}") from exc
    state = obj.get("state_net", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{str(path)!r}: expected a dict with 'state_net' (the authors' format)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def infer_config(state: Mapping[str, torch.Tensor], prefix: str) -> BackboneConfig:
    """Width and patch size from the shapes (the transformer's heads are the paper's)."""
    try:
        width = int(state[f"{prefix}group1_b.0.weight"].shape[0])
        patch = int(state[f"{prefix}group1_b.1.weight"].shape[-1])
    except KeyError:
        return PAPER
    return BackboneConfig(width=width, patch_size=patch)


def config_from_params(params: Mapping[str, Any]) -> BackboneConfig:
    fields = BackboneConfig.__dataclass_fields__
    return BackboneConfig(**{k: params[k] for k in fields if k in params})


def random_backbone(config: BackboneConfig, seed: int = 0) -> SDAIEBackbone:
    torch.manual_seed(seed)
    return SDAIEBackbone(config)


def load_pretext(source: str | Path) -> tuple[PretextNet, dict]:
    """The pretext network (backbone + 14 heads) from an authors' ``.pth`` or an
    ``exif-backbone`` checkpoint folder; returns it with its manifest (``{}`` for a .pth)."""
    path = Path(source).expanduser()
    if path.is_dir():
        state, manifest = read_checkpoint(path, "exif-backbone")
        net = PretextNet(config_from_params(manifest["params"]))
    elif path.is_file():
        state, manifest = read_authors_state(path), {}
        net = PretextNet(infer_config(state, "backbone."))
    else:
        raise CheckpointError(f"backbone {str(path)!r} does not exist; train one with `exifbench train exif-backbone`")
    load_state_dict_strict(net, state, str(path))
    return net, manifest


def load_backbone(source: str | Path, config: BackboneConfig | None = None, seed: int = 0) -> SDAIEBackbone:
    """A backbone from an authors' pretext ``.pth``, an ``exif-backbone`` folder, an
    ``exif-oc`` folder (its copy of the backbone), or ``"random"`` (needs ``config``)."""
    if str(source) == RANDOM:
        return random_backbone(config or PAPER, seed)
    path = Path(source).expanduser()
    if path.is_dir() and read_manifest(path).get("detector") == "exif-oc":
        state, manifest = read_checkpoint(path, "exif-oc")
        backbone = SDAIEBackbone(config_from_params(manifest["params"]))
        load_state_dict_strict(backbone, {k[9:]: v for k, v in state.items() if k.startswith("backbone.")}, str(path))
        return backbone
    return load_pretext(path)[0].backbone


def load_binary(source: str | Path) -> tuple[BinaryNet, dict]:
    """The binary detector from an authors' ``.pth`` (only the trained branch and ``fc``
    are kept) or an ``exif-bc`` checkpoint folder."""
    path = Path(source).expanduser()
    if path.is_dir():
        state, manifest = read_checkpoint(path, "exif-bc")
        net = BinaryNet(config_from_params(manifest["params"]))
        load_state_dict_strict(net, state, str(path))
        return net, manifest
    if not path.is_file():
        raise CheckpointError(f"exif-bc checkpoint {str(path)!r} does not exist")
    state = read_authors_state(path)
    config = infer_config(state, "diffusionextractor_random.")
    full = AuthorsBinaryNet(config)
    load_state_dict_strict(full, state, str(path))
    net = BinaryNet(config)
    net.extractor.load_state_dict(full.diffusionextractor_random.state_dict())
    net.fc.load_state_dict(full.fc.state_dict())
    return net, {}


def source_sha256(source: str | Path | None) -> str:
    if source is None or str(source) == RANDOM:
        return ""
    path = Path(source).expanduser()
    return file_sha256(path) if path.is_file() else path_sha256(path)
