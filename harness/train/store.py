"""Checkpoints cached by content: a training job's folder is named by what makes its weights.

:func:`cached_checkpoint` gives a job its folder in the cache (``<cache>/checkpoints/``),
named by the sha256 of: the trainer's name, its parameters and the seed; the training data
by content (sample ids and labels, as in :func:`harness.checkpoint.data_manifest_sha256`);
and the code version: exifbench's version, the trainer's declared ``version`` (a trainable
detector's :attr:`~harness.api.DetectorSpec.version`) and the sha256 of the source of the
module that defines the trainer (its factory). Asking for the same job again gives the same
folder, whose current checkpoint (:func:`harness.train.local.checkpoint_is_current`) means
that nothing is trained; changing any part gives another folder, so a stale checkpoint is
never served. Code that the trainer's module imports (a shared recipe) is covered by the
declared ``version`` only: bump it when such a change alters the weights.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.api import Sample
from harness.cache_folder import cache_dir
from harness.checkpoint import code_version
from harness.train.local import job_fingerprint

__all__ = ["checkpoint_key", "cached_checkpoint", "trainer_code"]


def trainer_code(name: str) -> dict[str, str]:
    """The code version of trainer ``name``: exifbench's version, its declared version and
    the sha256 of its factory's module source (read from the file, not imported)."""
    from harness.plugins import detectors, trainers

    spec = trainers()[name]
    module = spec.factory.split(":", 1)[0]
    found = importlib.util.find_spec(module)
    origin = Path(found.origin) if found is not None and found.origin else None
    source = hashlib.sha256(origin.read_bytes()).hexdigest() if origin is not None and origin.is_file() else ""
    declared = detectors()[name].version if name in detectors() else ""
    return {"exifbench": code_version(), "trainer_version": declared, "module": module, "module_sha256": source}


def checkpoint_key(name: str, params: Mapping[str, Any], samples: Sequence[Sample], seed: int = 0) -> str:
    """The sha256 that names a job's checkpoint folder (see the module docstring)."""
    identity = {"job": job_fingerprint(name, params, samples, seed), "code": trainer_code(name)}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def cached_checkpoint(name: str, params: Mapping[str, Any], samples: Sequence[Sample], seed: int = 0) -> Path:
    """The job's checkpoint folder in the cache (not created: training writes it)."""
    return cache_dir("checkpoints") / f"{name}-{checkpoint_key(name, params, samples, seed)[:20]}"
