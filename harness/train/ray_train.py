"""Data-parallel training on Ray Train: one trainer's ``fit`` in N workers, DDP between them.

:func:`harness.train.jobs.run_training` (and so ``exifbench train``) calls
:func:`fit_data_parallel` when a trainer's parameters ask for ``workers = N`` with N > 1.
Every worker runs the trainer's own ``fit`` (its loop and its step function, unchanged)
with a :class:`Replica` that tells it its place in the job. A trainer takes part by
accepting ``replica`` in ``fit`` (and saying so with ``data_parallel = True``) and by using
it for the few things that differ between one process and one of N:

- ``rank`` and ``world_size``: which shard of the data and which random stream are its own;
- ``wrap(model)``: ``ray.train.torch.prepare_model``, i.e. DistributedDataParallel, whose
  ``backward`` averages the gradients over the workers (each worker's batch is 1/N of the
  global one, so the step sees the gradient of the whole batch's mean loss);
- ``mean(values)``: a mean over the workers (the logged losses);
- ``gather(obj)``: every worker's object in rank order (the random states to save);
- rank 0 alone writes the checkpoint folder: weights, manifest, loss curve and ``state.pt``.

:data:`SINGLE_PROCESS` is the replica of an ordinary run: every operation is the identity,
so a trainer behaves exactly as before when it runs alone.

Resuming: the checkpoint folder's ``state.pt`` is the only training state, as for one
process: a rerun of the same command continues from it, and Ray Train restarts a failed
worker group once (``FailureConfig(max_failures=1)``), whose workers resume from it too. No
checkpoint is reported to Ray Train: ``ray.train.report(..., checkpoint=...)`` would copy
the folder into Ray's storage, a second copy of the same state. The folder must be at a
path every worker sees (one machine, or storage shared by the nodes).

Ray API used (Ray Train V2, the default in Ray 2.60): ``ray.train.torch.TorchTrainer`` with
``ray.train.ScalingConfig(num_workers=N, use_gpu=...)`` and ``ray.train.RunConfig(name,
storage_path, failure_config, logging_config)``; ``Result.return_value`` (rank 0's return);
in the workers ``ray.train.get_context().get_world_rank()`` / ``get_world_size()``,
``ray.train.torch.get_device()`` and ``prepare_model``. The process group is gloo on CPU
and NCCL on GPU (TorchTrainer's default). V2 refuses ``resume_from_checkpoint``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from harness.api import ConfigError, Sample
from harness.train.local import checkpoint_lock, job_fingerprint, record_job, training_set

__all__ = ["Replica", "SINGLE_PROCESS", "RayTrainReplica", "fit_data_parallel", "resolve_use_gpu"]


class Replica:
    """This process's place in a training job; this base class is a job of one process."""

    rank: int = 0
    world_size: int = 1

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def gather(self, obj: Any) -> list[Any]:
        return [obj]


SINGLE_PROCESS = Replica()


class RayTrainReplica(Replica):
    """A Ray Train worker: its rank, DDP through ``prepare_model``, collectives through
    ``torch.distributed`` (the process group Ray Train set up)."""

    def __init__(self) -> None:
        import ray.train
        from ray.train.torch import get_device

        context = ray.train.get_context()
        self.rank, self.world_size = context.get_world_rank(), context.get_world_size()
        self.device = get_device()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from ray.train.torch import prepare_model

        return prepare_model(model)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        total = values.to(self.device)
        dist.all_reduce(total)
        return (total / self.world_size).cpu()

    def gather(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        objects: list[Any] = [None] * self.world_size
        dist.all_gather_object(objects, obj)
        return objects


def resolve_use_gpu(use_gpu: bool | None, num_gpus: float | None, workers: int) -> bool:
    """GPU workers or CPU workers: ``use_gpu`` if given, else ``num_gpus > 0`` if given, else
    whether the cluster has GPUs. Refuses GPU workers the cluster cannot all place (Ray
    would wait for them forever)."""
    from harness.runtime import cluster_gpus

    available = cluster_gpus()
    if use_gpu is None:
        use_gpu = num_gpus > 0 if num_gpus is not None else available > 0
    if use_gpu and available < workers:
        raise ConfigError(f"workers={workers} on GPUs needs {workers} GPUs, the Ray cluster has {available:g}: "
                          "set workers to at most that, or use_gpu = false to train on CPU workers")
    return bool(use_gpu)


def fit_data_parallel(name: str, params: Mapping[str, Any], samples: Sequence[Sample], out: str | Path, *,
                      seed: int = 0, num_gpus: float | None = None) -> Path:
    """Train ``name`` with ``params["workers"]`` Ray Train workers into the checkpoint folder
    ``out``; Ray must be running (:func:`harness.runtime.ensure_ray`). The manifest
    records ``extra.where`` = workers, GPU or not, and the process-group backend."""
    from ray.train import FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    workers = _data_parallel_workers(name, params)
    use_gpu = resolve_use_gpu(params.get("use_gpu"), num_gpus, workers)
    out = Path(out).resolve()
    config = {"name": name, "params": dict(params), "samples": list(samples), "out": str(out), "seed": seed}
    with checkpoint_lock(out, job_fingerprint(name, params, samples, seed)) as run:
        if not run:
            return out
        with tempfile.TemporaryDirectory(prefix="exifbench-ray-train-") as storage:
            result = TorchTrainer(
                _train_worker, train_loop_config=config,
                scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
                run_config=RunConfig(name=f"exifbench-{name}", storage_path=storage,
                                     failure_config=FailureConfig(max_failures=1),
                                     logging_config=LoggingConfig(log_level="WARNING")),
            ).fit()
        where = {"workers": workers, "use_gpu": use_gpu, "backend": "nccl" if use_gpu else "gloo"}
        return Path(record_job(Path(result.return_value), name, params, samples, seed,
                               device="cuda" if use_gpu else "cpu", where=where))


def _data_parallel_workers(name: str, params: Mapping[str, Any]) -> int:
    """The number of workers, once the trainer is known to take part and its parameters
    are valid (checked here, before any worker starts)."""
    from harness.api import resolve_factory
    from harness.plugins import trainers

    spec = trainers()[name]
    if not getattr(resolve_factory(spec.factory), "data_parallel", False):
        raise ConfigError(f"{name} does not train data-parallel: remove `workers` from its [params]")
    spec.create(**dict(params))
    workers = int(params["workers"])
    if workers < 1:  # one worker is allowed here: the process-group path with one rank
        raise ConfigError(f"{name}: workers={workers}; data-parallel training needs at least 1")
    return workers


def _train_worker(config: dict) -> str:
    """What every Ray Train worker runs: the trainer's ``fit`` as one replica."""
    from harness.plugins import trainers

    replica = RayTrainReplica()
    trainer = trainers()[config["name"]].create(**config["params"])
    result = trainer.fit(training_set(config["samples"]), config["out"], seed=config["seed"],
                         device=str(replica.device), replica=replica)
    return str(result)
