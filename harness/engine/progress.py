"""A progress line: cells and images done, cache hits, failures, images per second, elapsed, ETA.

Redrawn in place on a terminal (twice a second), printed every 10 s otherwise; ``quiet``
prints nothing. The sweep's end summary (computed, cached, failed) is ``SweepResult.summary``.
"""
from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Counts what the engine reports; ``images`` counts images whose cells are all done."""

    def __init__(self, total_cells: int, total_images: int, cached: int, quiet: bool = False, stream=None):
        self.total_cells, self.total_images, self.cached = total_cells, total_images, cached
        self.cells = cached
        self.images = 0
        self.failed = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self._last = 0.0
        self._tty = getattr(self.stream, "isatty", lambda: False)()

    def update(self, cells: int = 0, images: int = 0, failed: int = 0) -> None:
        self.cells += cells
        self.images += images
        self.failed += failed
        now = time.monotonic()
        if now - self._last >= (0.5 if self._tty else 10.0):
            self._last = now
            self._print(end="\r" if self._tty else "\n")

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.images / elapsed
        left = self.total_images - self.images
        eta = f"{left / rate:5.0f}s" if rate > 0 else "    ?"
        return (f"cells {self.cells}/{self.total_cells} (cache hits {self.cached}, failed {self.failed}) | "
                f"images {self.images}/{self.total_images} | {rate:6.1f} img/s | {elapsed:5.0f}s | ETA {eta}")

    def _print(self, end: str) -> None:
        if not self.quiet:
            print(self.line(), end=end, file=self.stream, flush=True)

    def close(self) -> None:
        self._print(end="\n")
