"""One training job in this process: what a Ray task or a Ray Train worker runs.

Shared by :mod:`harness.train.jobs` (one task per job) and :mod:`harness.train.ray_train`
(data-parallel workers), so that neither imports the other.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from harness.api import CheckpointError, Sample
from harness.checkpoint import MANIFEST, data_manifest_sha256, read_manifest
from harness.detector import TrainingSet
from harness.files import atomic_write_text

__all__ = ["job_fingerprint", "trained_on", "checkpoint_is_current", "checkpoint_lock", "fit_locally", "record_job",
           "training_set"]


def job_fingerprint(name: str, params: Mapping[str, Any], samples: Sequence[Sample], seed: int) -> dict:
    return {
        "trainer": name,
        "params": json.loads(json.dumps(dict(params), sort_keys=True, default=str)),
        "seed": seed,
        "data_manifest_sha256": data_manifest_sha256([s.sample_id for s in samples], [s.label for s in samples]),
    }


def trained_on(samples: Sequence[Sample]) -> dict[str, Any]:
    """What a checkpoint has seen: its datasets, the generators of its generated images and
    its counts (a leaderboard separates seen generators from unseen ones)."""
    return {"datasets": sorted({s.dataset for s in samples}),
            "generators": sorted({s.generator for s in samples if s.label == 1}),
            "n_real": sum(1 for s in samples if s.label == 0), "n_fake": sum(1 for s in samples if s.label == 1)}


def checkpoint_is_current(out: Path, fingerprint: Mapping[str, Any]) -> bool:
    """True when ``out`` holds a finished checkpoint of exactly this job."""
    try:
        manifest = read_manifest(out)
    except CheckpointError:
        return False
    return manifest.get("config", {}).get("job") == dict(fingerprint) or manifest.get("extra", {}).get("job") == dict(fingerprint)


@contextmanager
def checkpoint_lock(out: Path, fingerprint: Mapping[str, Any]) -> Iterator[bool]:
    """Hold the lock of the checkpoint folder ``out`` (a file lock beside it,
    ``.<name>.lock``, so it also holds between processes and machines sharing the file
    system): two jobs never write one folder at once. Yields True when the job must run, and
    False when the lock had to be waited for and the other holder left exactly this job's
    checkpoint (it is not trained twice)."""
    from filelock import FileLock, Timeout

    out.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out.parent / f".{out.name}.lock"))
    try:
        lock.acquire(timeout=0)
        waited = False
    except Timeout:
        lock.acquire()
        waited = True
    try:
        yield not (waited and checkpoint_is_current(out, fingerprint))
    finally:
        lock.release()


def _load_sample(sample: Sample):
    from harness.data.decode import load_image

    return load_image(sample.path)


def training_set(samples: Sequence[Sample]) -> TrainingSet:
    """The samples of a job, decoded as every training job decodes them."""
    return TrainingSet(samples, _load_sample)


def fit_locally(name: str, params: Mapping[str, Any], samples: Sequence[Sample], out: str | Path,
                seed: int = 0, device: str = "cpu", where: Mapping[str, Any] | None = None) -> str:
    """Run one training job in this process (what the Ray task runs on its worker), holding
    the folder's :func:`checkpoint_lock`.

    ``where`` (e.g. the Ray node id) is recorded in the manifest's ``extra.where``.
    """
    import torch

    from harness.plugins import trainers

    out = Path(out)
    with checkpoint_lock(out, job_fingerprint(name, params, samples, seed)) as run:
        if not run:
            return str(out)
        torch.manual_seed(seed)
        trainer = trainers()[name].create(**dict(params))
        result = Path(trainer.fit(training_set(samples), out, seed=seed, device=device) or out)
        return record_job(result, name, params, samples, seed, device, where)


def record_job(result: Path, name: str, params: Mapping[str, Any], samples: Sequence[Sample], seed: int,
               device: str, where: Mapping[str, Any] | None = None) -> str:
    """Add the job's fingerprint, device and ``where`` to the manifest of its checkpoint."""
    fingerprint = job_fingerprint(name, params, samples, seed)
    manifest = read_manifest(result)
    manifest.setdefault("extra", {})["job"] = fingerprint
    manifest["extra"]["trained_on"] = trained_on(samples)
    manifest["extra"]["device"] = device
    if where:
        manifest["extra"]["where"] = dict(where)
    atomic_write_text(result / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return str(result)
