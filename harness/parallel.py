"""``parallel_map``: a function over items as Ray tasks, results in input order, with progress.

At most a bounded number of tasks is in flight (twice the cluster's CPUs), so memory stays
bounded however many items there are. The function must be importable by the workers (a
module-level function of an installed package).
"""
from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator, TextIO

from harness.runtime import ensure_ray

__all__ = ["parallel_map", "ProgressBar"]


class ProgressBar:
    """``desc  done/total [####....] rate/s ETA``, redrawn in place on a terminal, every 10 s otherwise."""

    def __init__(self, total: int, desc: str = "", enabled: bool = True, stream: TextIO | None = None):
        self.total, self.desc, self.enabled = total, desc, enabled
        self.stream = stream or sys.stderr
        self.done, self.start, self._last = 0, time.monotonic(), 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.done / elapsed
        filled = int(20 * self.done / max(self.total, 1))
        eta = f"{(self.total - self.done) / rate:.0f}s" if rate > 0 else "?"
        return f"{self.desc} {self.done}/{self.total} [{'#' * filled}{'.' * (20 - filled)}] {rate:.1f}/s ETA {eta}"

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last >= (0.2 if self._tty else 10.0) or self.done == self.total):
            self._last = now
            print(self.line(), end="\r" if self._tty else "\n", file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self._tty:
            print(file=self.stream, flush=True)


def parallel_map(fn: Callable[[Any], Any], items: Iterable[Any], *, address: str | None = None, desc: str = "",
                 progress: bool = True, num_cpus: float = 1.0) -> Iterator[Any]:
    """Yield ``fn(item)`` for every item, in order, computed by Ray tasks on ``address`` (or a local Ray)."""
    ray = ensure_ray(address)
    items = list(items)
    remote = ray.remote(num_cpus=num_cpus)(fn)
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    source = iter(items)
    pending: deque = deque(remote.remote(item) for _, item in zip(range(window), source))
    bar = ProgressBar(len(items), desc, progress)
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
