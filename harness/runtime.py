"""Starting or joining Ray: the one place that decides which cluster a run uses.

``--address`` or ``RAY_ADDRESS`` joins an existing cluster; otherwise a new local Ray is
started with the machine's CPUs (never one found running on the machine). Ray's own logging to the terminal is kept quiet.
"""
from __future__ import annotations

import os
from typing import Any

__all__ = ["ensure_ray", "cluster_gpus", "shutdown"]


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    import ray

    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    # Workers import the project's packages from the installed distribution, not from the
    # driver's working directory.
    kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False,
                              "configure_logging": True, "logging_level": "warning"}
    if address:
        ray.init(address=address, **kwargs)
    else:
        # "local": a new Ray of this process, never one that happens to run on this machine
        # (without it, ray.init joins the last cluster started here, e.g. someone else's).
        # Ray starts workers at niceness 15, so on a shared machine every other process
        # would come first; the sweep's workers are the work, so they run at normal priority.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, **kwargs)
    return ray


def cluster_gpus() -> float:
    import ray

    return float(ray.cluster_resources().get("GPU", 0.0))


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
