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

``run_training_jobs`` runs several jobs at once: every job whose checkpoint is not current
becomes its Ray task at the same time, so they run in parallel as far as the cluster's CPUs
and GPUs allow (each asks for one CPU, and one GPU where the cluster has GPUs).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.api import Sample
from harness.train.local import checkpoint_is_current, fit_locally, job_fingerprint, record_job, training_set

__all__ = ["run_training", "run_training_jobs", "TrainingJob", "JobOutcome", "checkpoint_is_current", "fit_locally",
           "record_job", "training_set"]

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
    from harness.runtime import ensure_ray
    from harness.train.ray_train import fit_data_parallel

    ray = ensure_ray(address)
    if int(params.get("workers", 1)) > 1:
        return fit_data_parallel(name, params, samples, out, seed=seed, num_gpus=num_gpus)
    ref = _submit(ray, TrainingJob(name, params, tuple(samples), out, seed), _job_gpus(params, num_gpus))
    return Path(ray.get(ref)[0])


@dataclass(frozen=True)
class TrainingJob:
    """One training job: trainer ``name`` with ``params`` on ``samples`` into the folder ``out``."""

    name: str
    params: Mapping[str, Any]
    samples: tuple[Sample, ...]
    out: Path
    seed: int = 0


@dataclass(frozen=True)
class JobOutcome:
    """What became of a job: ``trained`` is False when its checkpoint was current (nothing
    ran); ``seconds`` is the time of its ``fit`` on the worker (0 when not trained)."""

    job: TrainingJob
    trained: bool
    seconds: float = 0.0


def run_training_jobs(jobs: Sequence[TrainingJob], *, num_gpus: float | None = None, address: str | None = None,
                      force: bool = False, after: Sequence[Sequence[int]] | None = None) -> list[JobOutcome]:
    """Run ``jobs`` in parallel as Ray tasks; a job whose ``out`` holds a current checkpoint
    is not run. Ray starts only when a job must run. ``num_gpus`` as in :func:`run_training`.
    Jobs into the same folder run once. Outcomes in the order of ``jobs``.

    ``after[i]``: the indices of the jobs that job ``i`` needs (it reads their checkpoints):
    it is submitted as soon as they have finished, while the others run on, so a short
    chain of jobs overlaps a long one. A data-parallel job (``workers`` > 1) runs on its own
    Ray Train workers, in the driver, once every task submitted before it has finished."""
    after = [tuple(a) for a in after] if after is not None else [()] * len(jobs)
    if len(after) != len(jobs) or any(not 0 <= k < len(jobs) or k == i for i, a in enumerate(after) for k in a):
        raise ValueError("after: one tuple of other jobs' indices per job")
    first = {}  # one run per folder: two equal jobs would write the same folder at once
    for i, j in enumerate(jobs):
        first.setdefault(Path(j.out).resolve(), i)
    same = {i: first[Path(j.out).resolve()] for i, j in enumerate(jobs)}
    todo = {i for i in first.values() if force or not checkpoint_is_current(
        Path(jobs[i].out), job_fingerprint(jobs[i].name, jobs[i].params, jobs[i].samples, jobs[i].seed))}
    if not todo:
        return [JobOutcome(j, trained=False) for j in jobs]
    from harness.runtime import ensure_ray
    from harness.train.ray_train import fit_data_parallel

    ray = ensure_ray(address)
    done = {i for i in range(len(jobs)) if same[i] not in todo}
    seconds: dict[int, float] = {}
    running: dict[Any, int] = {}
    waiting = sorted(todo)
    while waiting or running:
        ready = [i for i in waiting if all(same[k] in done for k in after[i])]
        for i in ready:
            if int(jobs[i].params.get("workers", 1)) > 1:
                if running:  # it takes the cluster's workers: after the tasks in flight
                    continue
                j, start = jobs[i], time.monotonic()
                fit_data_parallel(j.name, j.params, j.samples, j.out, seed=j.seed, num_gpus=num_gpus)
                seconds[i] = time.monotonic() - start
                done.add(i)
            else:
                running[_submit(ray, jobs[i], _job_gpus(jobs[i].params, num_gpus))] = i
            waiting.remove(i)
        if not running:
            if waiting and not any(all(same[k] in done for k in after[i]) for i in waiting):
                raise ValueError(f"after: jobs {waiting} wait for each other")
            continue
        (ref,), _ = ray.wait(list(running), num_returns=1)
        i = running.pop(ref)
        seconds[i] = ray.get(ref)[1]
        done.add(i)
    return [JobOutcome(j, same[i] == i and i in seconds, seconds.get(i, 0.0)) for i, j in enumerate(jobs)]


def _job_gpus(params: Mapping[str, Any], num_gpus: float | None) -> float:
    """The GPUs of a one-process job: ``num_gpus`` if given, else 0 or 1 by ``use_gpu``, else
    one when the cluster has any GPU."""
    from harness.runtime import cluster_gpus

    if num_gpus is None and params.get("use_gpu") is not None:
        num_gpus = 1.0 if params["use_gpu"] else 0.0
    return (1.0 if cluster_gpus() >= 1 else 0.0) if num_gpus is None else float(num_gpus)


def _fit_task(name: str, params: Mapping[str, Any], samples: Sequence[Sample], out: str, seed: int,
              gpus: float) -> tuple[str, float]:
    """What a job's Ray task runs: the trainer's ``fit`` on this worker; (checkpoint, seconds)."""
    import ray
    import torch

    start = time.monotonic()
    # A node may advertise a GPU that this process cannot use (no CUDA): train on CPU then.
    device = "cuda" if gpus > 0 and torch.cuda.is_available() else "cpu"
    where = {"node_id": ray.get_runtime_context().get_node_id(), "num_gpus": gpus}
    return fit_locally(name, params, samples, out, seed=seed, device=device, where=where), time.monotonic() - start


def _submit(ray: Any, job: TrainingJob, gpus: float) -> Any:
    remote = ray.remote(num_gpus=gpus, num_cpus=1, max_retries=1)(_fit_task)
    return remote.remote(job.name, dict(job.params), list(job.samples), str(job.out), job.seed, gpus)
