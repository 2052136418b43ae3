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

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.api import Sample
from harness.train.local import checkpoint_is_current, fit_locally, job_fingerprint, record_job, training_set

__all__ = ["run_training", "checkpoint_is_current", "fit_locally", "record_job", "training_set"]

log = logging.getLogger(__name__)


def run_training(name: str, params: Mapping[str, Any], samples: Sequence[Sample], out: str | Path, *,
                 seed: int = 0, num_gpus: float | None = None, address: str | None = None,
                 force: bool = False) -> Path:
    """Train ``name`` on ``samples`` into the checkpoint folder ``out`` as a Ray job.

    ``num_gpus=None`` asks for one GPU when the cluster has any, none otherwise. The
    checkpoint's manifest records where the job ran (``extra.where``: Ray node id, GPUs; for a
    data-parallel job, workers and backend).
    """
    out = Path(out)
    fingerprint = job_fingerprint(name, params, samples, seed)
    if not force and checkpoint_is_current(out, fingerprint):
        log.info("training %s: %s is current, not retrained", name, out)
        return out
    from harness.runtime import cluster_gpus, ensure_ray
    from harness.train.ray_train import fit_data_parallel

    ray = ensure_ray(address)
    if int(params.get("workers", 1)) > 1:
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
