"""The progress display: what it shows, and that ``quiet`` shows nothing."""
from __future__ import annotations

import io

from harness.engine.progress import Progress


def test_progress_line_shows_cells_images_cache_hits_rate_and_eta():
    stream = io.StringIO()
    progress = Progress(total_cells=40, total_images=10, cached=20, stream=stream)
    progress.update(cells=8, images=4, failed=1)
    progress.close()
    line = stream.getvalue().strip().splitlines()[-1]
    for part in ("cells 28/40", "cache hits 20", "failed 1", "images 4/10", "img/s", "ETA"):
        assert part in line, (part, line)


def test_quiet_progress_prints_nothing():
    stream = io.StringIO()
    progress = Progress(total_cells=4, total_images=2, cached=0, quiet=True, stream=stream)
    progress.update(cells=4, images=2)
    progress.close()
    assert stream.getvalue() == ""
