"""Training jobs on Ray: one remote task per job, on a GPU worker when the cluster has one.

``run_training`` is what ``exifbench train`` and the demo call. The job runs ``fit`` of a
registered trainer (every trainable detector is one) inside a Ray task that asks for
``num_gpus`` GPUs when the cluster advertises them, and on CPU otherwise. The checkpoint
folder it writes is the job's result; a job whose ``out`` already holds a checkpoint of the
same trainer, parameters and data is not run again (``force=True`` reruns it).

A trainer whose parameters hold ``workers = N`` with N > 1 trains data-parallel on N Ray
Train workers instead (:mod:`harness.train.ray_train`; ``use_gpu``, default: whether the
cluster has GPUs, picks GPU or CPU workers). ``use_gpu = false`` also keeps a one-process
job off the GPUs.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.api import CheckpointError, Sample
from harness.detector import TrainingSet
from harness.train.checkpoint import data_manifest_sha256, read_manifest

__all__ = ["run_training", "checkpoint_is_current", "fit_locally", "record_job", "training_set"]

log = logging.getLogger(__name__)


def _job_fingerprint(name: str, params: Mapping[str, Any], samples: Sequence[Sample], seed: int) -> dict:
    return {
        "trainer": name,
        "params": json.loads(json.dumps(dict(params), sort_keys=True, default=str)),
        "seed": seed,
        "data_manifest_sha256": data_manifest_sha256([s.sample_id for s in samples], [s.label for s in samples]),
    }


def checkpoint_is_current(out: Path, fingerprint: Mapping[str, Any]) -> bool:
    """True when ``out`` holds a finished checkpoint of exactly this job."""
    try:
        manifest = read_manifest(out)
    except CheckpointError:
        return False
    return manifest.get("config", {}).get("job") == dict(fingerprint) or manifest.get("extra", {}).get("job") == dict(fingerprint)


def _load_sample(sample: Sample):
    from harness.data.decode import load_image

    return load_image(sample.path)


def training_set(samples: Sequence[Sample]) -> TrainingSet:
    """The samples of a job, decoded as every training job decodes them."""
    return TrainingSet(samples, _load_sample)


def fit_locally(name: str, params: Mapping[str, Any], samples: Sequence[Sample], out: str | Path,
                seed: int = 0, device: str = "cpu", where: Mapping[str, Any] | None = None) -> str:
    """Run one training job in this process (what the Ray task runs on its worker).

    ``where`` (e.g. the Ray node id) is recorded in the manifest's ``extra.where``.
    """
    import torch

    from harness.plugins import trainers

    torch.manual_seed(seed)
    trainer = trainers()[name].create(**dict(params))
    out = Path(out)
    result = Path(trainer.fit(training_set(samples), out, seed=seed, device=device) or out)
    return record_job(result, name, params, samples, seed, device, where)


def record_job(result: Path, name: str, params: Mapping[str, Any], samples: Sequence[Sample], seed: int,
               device: str, where: Mapping[str, Any] | None = None) -> str:
    """Add the job's fingerprint, device and ``where`` to the manifest of its checkpoint."""
    from harness.train.checkpoint import read_manifest as _read, MANIFEST

    fingerprint = _job_fingerprint(name, params, samples, seed)
    manifest = _read(result)
    manifest.setdefault("extra", {})["job"] = fingerprint
    manifest["extra"]["device"] = device
    if where:
        manifest["extra"]["where"] = dict(where)
    (result / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return str(result)


def run_training(name: str, params: Mapping[str, Any], samples: Sequence[Sample], out: str | Path, *,
                 seed: int = 0, num_gpus: float | None = None, address: str | None = None,
                 force: bool = False) -> Path:
    """Train ``name`` on ``samples`` into the checkpoint folder ``out`` as a Ray job.

    ``num_gpus=None`` asks for one GPU when the cluster has any, none otherwise. The
    checkpoint's manifest records where the job ran (``extra.where``: Ray node id, GPUs; for a
    data-parallel job, workers and backend).
    """
    out = Path(out)
    fingerprint = _job_fingerprint(name, params, samples, seed)
    if not force and checkpoint_is_current(out, fingerprint):
        log.info("training %s: %s is current, not retrained", name, out)
        return out
    from harness.engine.ray_runtime import cluster_gpus, ensure_ray

    ray = ensure_ray(address)
    if int(params.get("workers", 1)) > 1:
        from harness.train.ray_train import fit_data_parallel

        return fit_data_parallel(name, params, samples, out, seed=seed, num_gpus=num_gpus)
    if num_gpus is None and params.get("use_gpu") is not None:
        num_gpus = 1.0 if params["use_gpu"] else 0.0
    gpus = (1.0 if cluster_gpus() >= 1 else 0.0) if num_gpus is None else float(num_gpus)

    @ray.remote(num_gpus=gpus, num_cpus=1, max_retries=1)
    def job(samples_, out_):
        import torch

        # A node may advertise a GPU that this process cannot use (no CUDA): train on CPU then.
        device = "cuda" if gpus > 0 and torch.cuda.is_available() else "cpu"
        where = {"node_id": ray.get_runtime_context().get_node_id(), "num_gpus": gpus}
        return fit_locally(name, params, samples_, out_, seed=seed, device=device, where=where)

    return Path(ray.get(job.remote(list(samples), str(out))))
