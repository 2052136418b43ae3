"""``parallel_map``: a function over items as Ray tasks, results in input order, with progress.

At most a bounded number of tasks is in flight (twice the cluster's CPUs), so memory stays
bounded however many items there are. The function must be importable by the workers (a
module-level function of an installed package).
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterable, Iterator

from harness.progress import Progress
from harness.runtime import ensure_ray

__all__ = ["parallel_map"]


def parallel_map(fn: Callable[[Any], Any], items: Iterable[Any], *, address: str | None = None, desc: str = "",
                 progress: bool = True, num_cpus: float = 1.0) -> Iterator[Any]:
    """Yield ``fn(item)`` for every item, in order, computed by Ray tasks on ``address`` (or a local Ray)."""
    ray = ensure_ray(address)
    items = list(items)
    remote = ray.remote(num_cpus=num_cpus)(fn)
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    source = iter(items)
    pending: deque = deque(remote.remote(item) for _, item in zip(range(window), source))
    bar = Progress(len(items), desc=desc, quiet=not progress)
    try:
        while pending:
            result = ray.get(pending.popleft())
            nxt = next(source, _END)
            if nxt is not _END:
                pending.append(remote.remote(nxt))
            bar.update()
            yield result
    finally:
        for ref in pending:
            ray.cancel(ref)
        bar.close()


_END = object()
