"""The progress display of long runs (sweeps, simulated photographs), built on ``tqdm``.

It shows the work done of the total, the throughput, the time elapsed and the ETA; a sweep
adds its cells (done of all, of which cache hits) and failures before its images. On a
terminal the line is redrawn in place twice a second; otherwise (a log file, CI) a new line
is written every 10 s and at the end, never a carriage return. ``quiet`` shows nothing.
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["Progress"]

_SWEEP_FORMAT = ("cells {cells}/{total_cells} (cache hits {cached}, failed {failed}) | {desc} {n_fmt}/{total_fmt} | "
                 "{rate_fmt} | {elapsed} | ETA {remaining}")


class Progress(tqdm):
    """``total`` units of work (images, items); ``update(n)`` reports ``n`` more done.

    For a sweep, ``cells`` is the number of cells and ``cached`` those the cache already
    holds; ``update(n, cells=..., failed=...)`` then also counts cells finished and failed.
    """

    monitor_interval = 0  # lines are written when work is reported, never from a background thread

    def __init__(self, total: int, *, desc: str = "", unit: str = "it", quiet: bool = False,
                 stream: TextIO | None = None, cells: int | None = None, cached: int = 0) -> None:
        stream = stream or sys.stderr
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._lines = 0
        self.total_cells, self.cached, self.cells, self.failed = cells, cached, cached, 0
        super().__init__(total=total, desc=desc, unit=unit, file=stream, disable=quiet, smoothing=0, miniters=0,
                         mininterval=0.5 if self._tty else 10.0, dynamic_ncols=self._tty,
                         bar_format=_SWEEP_FORMAT if cells is not None else None)

    def update(self, n: int = 1, *, cells: int = 0, failed: int = 0) -> bool | None:
        self.cells += cells
        self.failed += failed
        return super().update(n)

    @property
    def format_dict(self) -> dict[str, Any]:
        return {**super().format_dict, "cells": self.cells, "total_cells": self.total_cells, "cached": self.cached,
                "failed": self.failed}

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if self._tty:
            return super().display(msg, pos)
        if msg == "":  # tqdm clearing its line: nothing to clear in a log
            return True
        # Each line ends when the next begins, and tqdm's close writes the last newline.
        self.fp.write(("\n" if self._lines else "") + (str(self) if msg is None else msg))
        self.fp.flush()
        self._lines += 1
        return True
