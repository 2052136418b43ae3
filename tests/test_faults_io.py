"""Faults of the machine while a sweep writes: an output folder it cannot write, a disk that
fills up under the run's files or under the score cache. Each gives one clear error (no
traceback), leaves the cache intact (SQLite's integrity check passes, every committed batch
is there), and a re-run once space is back completes, reusing what was cached.

Full disks are real ones where the test may mount a small tmpfs (root on Linux): it is
filled with a filler file to leave a few KiB, and the filler is deleted to give the space
back. Elsewhere the same fault is injected at the writer (``OSError(ENOSPC)``).
"""
from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.config import load_sweep
from harness.engine.plan import make_plan
from tests.helpers import spectrum_checkpoint, write_binary_folders, write_sweep_config

GRID = ["none", "jpeg(quality=70)", "resize(scale=0.5)"]


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("faults_io")
    data = write_binary_folders(tmp / "data", n=8)
    ckpt = spectrum_checkpoint(tmp, n_bins=16, n=8, seed=2)
    # chunks of one image (3 cells): the cache commits a batch per image
    return write_sweep_config(tmp / "sweep.toml", run={"seed": 0, "batch_size": 3, "cpu_actors": 1},
                              datasets=[{"name": "tiny", "layout": "binary-folders", "root": data}],
                              detectors=[{"name": "spectrum", "checkpoint": ckpt, "n_bins": 16}], grid=GRID)


def _can_mount() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "geteuid") and os.geteuid() == 0


class Tmpfs:
    """A tmpfs of ``size`` bytes at ``path``; ``fill(leave)`` leaves ``leave`` bytes free."""

    def __init__(self, path: Path, size: int, read_only: bool = False):
        path.mkdir(parents=True, exist_ok=True)
        opts = f"size={size},mode=0777" + (",ro" if read_only else "")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
        self.path, self.filler = path, path / "filler"

    def fill(self, leave: int) -> None:
        st = os.statvfs(self.path)
        with open(self.filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))

    def free(self) -> None:
        self.filler.unlink()

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def tmpfs(tmp_path):
    if not _can_mount():
        pytest.skip("mounting a tmpfs needs root on Linux; test_disk_full_injected_* covers the fault elsewhere")
    mounts: list[Tmpfs] = []

    def make(name: str, size: int, read_only: bool = False) -> Tmpfs:
        mounts.append(Tmpfs(tmp_path / name, size, read_only))
        return mounts[-1]

    yield make
    for m in mounts:
        m.unmount()


def sweep(config: Path, out: Path, cache: Path, monkeypatch) -> int:
    monkeypatch.setenv("EXIFBENCH_CACHE", str(cache))
    return main(["sweep", str(config), "--out", str(out), "--quiet"])


def cache_rows(cache: Path) -> dict[str, tuple]:
    """The cache's rows, once its integrity check has passed."""
    with sqlite3.connect(cache / "scores.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute("SELECT key, score, error FROM scores").fetchall()
    assert len(rows) == len({k for k, _, _ in rows})
    return {k: (s, e) for k, s, e in rows}


def check_complete_run(out: Path, config: Path, cache: Path) -> dict:
    """Every cell of the plan scored, and the same score as in the cache."""
    keys = [c.key for c in make_plan(load_sweep(config)).cells]
    stored = cache_rows(cache)
    assert set(keys) <= set(stored) and all(stored[k][1] is None for k in keys)
    frame = pd.read_parquet(out / "scores.parquet")
    assert len(frame) == len(keys) and frame["error"].isna().all()
    assert sorted(frame["score"]) == sorted(stored[k][0] for k in keys)
    assert (out / "metrics.csv").is_file() and (out / "leaderboard.md").is_file()
    return json.loads((out / "run.json").read_text())["cells"]


# --- an output folder that cannot be written --------------------------------------------

def test_unwritable_output_folder_fails_before_any_work(config, tmp_path, tmpfs, monkeypatch, capsys):
    """A read-only file system (root ignores permission bits, so a read-only mount it is)."""
    folder = tmpfs("readonly", 1 << 20, read_only=True)
    code = sweep(config, folder.path / "run", tmp_path / "cache", monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and "cannot write the output folder" in err and "Read-only file system" in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "cache" / "scores.sqlite").exists()  # refused before the cache was opened


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes whatever the mode says")
def test_output_folder_without_write_permission_fails_before_any_work(config, tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code = sweep(config, locked / "run", tmp_path / "cache", monkeypatch)
    finally:
        locked.chmod(0o755)
    err = capsys.readouterr().err
    assert code == 2 and "cannot write the output folder" in err and "Permission denied" in err, err


# --- a disk that fills up -------------------------------------------------------------------

@pytest.mark.ray
def test_disk_full_under_the_run_folder_then_rerun(config, tmp_path, tmpfs, monkeypatch, capsys):
    disk = tmpfs("disk", 4 << 20)
    disk.fill(leave=16 << 10)  # room for the probe and a few small files, not for the run
    out, cache = disk.path / "run", tmp_path / "cache"
    assert sweep(config, out, cache, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "free some space" in err and "Traceback" not in err, err
    n_cells = len(make_plan(load_sweep(config)).cells)
    assert len(cache_rows(cache)) == n_cells  # every cell was committed before the run's files
    disk.free()
    assert sweep(config, out, cache, monkeypatch) == 0
    assert check_complete_run(out, config, cache) == {"total": n_cells, "cached": n_cells, "computed": 0, "failed": 0}


@pytest.mark.ray
def test_disk_full_under_the_score_cache_then_rerun(config, tmp_path, tmpfs, monkeypatch, capsys):
    from harness.data import identities

    # the file identity table lives in the cache folder too; kept off the small disk here,
    # where the score cache is under test (a table that cannot be written: tests/test_layouts.py)
    table = identities._Table(tmp_path / "identities.sqlite")
    monkeypatch.setattr(identities, "_table", lambda: table)
    disk = tmpfs("cache", 1 << 20)
    disk.fill(leave=96 << 10)  # the WAL outgrows it after a few batches
    out, cache = tmp_path / "run", disk.path / "exifbench"
    assert sweep(config, out, cache, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "cannot write the score cache" in err and "disk is full" in err and "Traceback" not in err, err
    kept = cache_rows(cache)
    n_cells = len(make_plan(load_sweep(config)).cells)
    assert 0 < len(kept) < n_cells and all(e is None for _, e in kept.values())
    disk.free()
    assert sweep(config, out, cache, monkeypatch) == 0
    assert check_complete_run(out, config, cache) == {"total": n_cells, "cached": len(kept),
                                                       "computed": n_cells - len(kept), "failed": 0}


@pytest.mark.ray
def test_disk_full_injected_at_the_scores_writer_then_rerun(config, tmp_path, monkeypatch, capsys):
    """The same fault where no tmpfs can be mounted: the Parquet writer raises ENOSPC."""
    import pyarrow.parquet as pq

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out, cache = tmp_path / "run", tmp_path / "cache"
    with monkeypatch.context() as patch:
        patch.setattr(pq.ParquetWriter, "write_table", full)
        assert sweep(config, out, cache, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "free some space" in err and "Traceback" not in err, err
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    n_cells = len(make_plan(load_sweep(config)).cells)
    assert len(cache_rows(cache)) == n_cells
    assert sweep(config, out, cache, monkeypatch) == 0
    assert check_complete_run(out, config, cache) == {"total": n_cells, "cached": n_cells, "computed": 0, "failed": 0}
