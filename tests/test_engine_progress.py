"""The progress display: what it shows, and that ``quiet`` shows nothing."""
from __future__ import annotations

import io

from harness.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _sweep(stream, quiet=False, total_cells=40, total_images=10, cached=20) -> Progress:
    return Progress(total_images, desc="images", unit="img", quiet=quiet, stream=stream, cells=total_cells,
                    cached=cached)


def test_progress_line_shows_cells_images_cache_hits_rate_and_eta():
    stream = io.StringIO()
    progress = _sweep(stream)
    progress.update(4, cells=8, failed=1)
    progress.close()
    line = stream.getvalue().strip().splitlines()[-1]
    for part in ("cells 28/40", "cache hits 20", "failed 1", "images 4/10", "img/s", "ETA"):
        assert part in line, (part, line)


def test_quiet_progress_prints_nothing():
    stream = io.StringIO()
    progress = _sweep(stream, quiet=True, total_cells=4, total_images=2, cached=0)
    progress.update(2, cells=4)
    progress.close()
    assert stream.getvalue() == ""


def test_without_a_terminal_progress_is_whole_lines_without_carriage_returns():
    stream = io.StringIO()
    progress = _sweep(stream)
    progress.update(4, cells=8)
    progress.close()
    text = stream.getvalue()
    assert "\r" not in text and text.endswith("\n") and "" not in text.splitlines()


def test_on_a_terminal_progress_is_redrawn_in_place():
    stream = _Terminal()
    progress = _sweep(stream)
    progress.update(4, cells=8)
    progress.close()
    text = stream.getvalue()
    assert text.startswith("\r") and text.count("\n") == 1 and "images 4/10" in text.rsplit("\r", 1)[-1]


def test_progress_of_plain_items_shows_done_of_total_with_rate():
    stream = io.StringIO()
    progress = Progress(5, desc="simulate", stream=stream)
    for _ in range(5):
        progress.update()
    progress.close()
    line = stream.getvalue().strip().splitlines()[-1]
    assert line.startswith("simulate") and "5/5" in line and "it/s" in line
