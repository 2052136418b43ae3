"""Peak memory of a sweep (driver plus every Ray process) for 10,000 vs 1,000 small images.

Each size runs in a fresh process with a fresh Ray and an empty score cache. A sampler
thread reads, every 0.2 s, the resident set (RSS) and the proportional set (PSS: shared
pages divided among the processes that map them, so Ray's shared object store is counted
once) of the driver and all its descendants (GCS, raylet, workers, actors) from /proc, and
keeps the peaks of the sums. The goal: peak(10,000) <= 1.3 x peak(1,000).

    python tests/benchmarks/bench_memory.py [--sizes 1000 10000] [--work DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GRID = '["none", "jpeg(quality=80)"]'


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rss_pss_kib(pid: int) -> tuple[int, int]:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    fields = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()[1:] if line.split()[-1] == "kB"}
    return fields.get("Rss", 0), fields.get("Pss", 0)


class PeakSampler(threading.Thread):
    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval, self.peak_rss, self.peak_pss, self.peak_driver, self.processes = interval, 0, 0, 0, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            pids = tree(os.getpid())
            sizes = [rss_pss_kib(p) for p in pids]
            self.peak_rss = max(self.peak_rss, sum(r for r, _ in sizes))
            self.peak_pss = max(self.peak_pss, sum(p for _, p in sizes))
            self.peak_driver = max(self.peak_driver, sizes[0][0])
            self.processes = max(self.processes, len(pids))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def make_images(root: Path, n: int) -> Path:
    """``n`` small PNGs (32 x 32) in the binary-folders layout, half real, half generated."""
    import numpy as np
    from PIL import Image

    if root.exists():
        return root
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / "gen" / ("1_fake" if i % 2 else "0_real")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    return root


def checkpoint(work: Path) -> Path:
    from harness.testing import synthetic_training_set
    from harness.train.jobs import fit_locally

    ckpt = work / "ckpt-spectrum"
    if not (ckpt / "manifest.json").exists():
        fit_locally("spectrum", {"n_bins": 16}, synthetic_training_set(work / "train", n=8).samples, ckpt)
    return ckpt


def child(n: int, work: Path) -> None:
    """One measured sweep over ``n`` images; prints a JSON line."""
    from harness.config import load_sweep
    from harness.engine.score_cache import ScoreCache
    from harness.engine.sweep import run_sweep

    data = make_images(work / f"images{n}", n)
    config = work / f"sweep{n}.toml"
    config.write_text(f'[run]\nseed = 0\nbatch_size = 64\n[[datasets]]\nname = "small"\nlayout = "binary-folders"\n'
                      f'root = "{data}"\n[[detectors]]\nname = "spectrum"\ncheckpoint = "{checkpoint(work)}"\n'
                      f"n_bins = 16\n[perturbations]\ngrid = {GRID}\n")
    cache = work / f"cache{n}.sqlite"
    cache.unlink(missing_ok=True)
    sampler = PeakSampler()
    sampler.start()
    start = time.perf_counter()
    result = run_sweep(load_sweep(config), work / f"run{n}", quiet=True, cache=ScoreCache(cache), leaderboard=False)
    elapsed = time.perf_counter() - start
    sampler.stop()
    print(json.dumps({"n": n, "cells": result.total, "computed": result.computed, "seconds": round(elapsed, 1),
                      "peak_rss_mib": round(sampler.peak_rss / 1024, 1), "peak_pss_mib": round(sampler.peak_pss / 1024, 1),
                      "peak_driver_rss_mib": round(sampler.peak_driver / 1024, 1),
                      "processes": sampler.processes}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["EXIFBENCH_CACHE"] = str(work / "cache")
    if args.child:
        child(args.child, work)
        return
    checkpoint(work)
    results = {}
    for n in args.sizes:
        make_images(work / f"images{n}", n)
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--work", str(work)], env=env,
                             capture_output=True, text=True, check=True).stdout
        results[n] = json.loads(out.strip().splitlines()[-1])
        print(results[n], flush=True)
    small, large = results[min(results)], results[max(results)]
    for key in ("peak_rss_mib", "peak_pss_mib", "peak_driver_rss_mib"):
        print(f"{key}: {large[key]} / {small[key]} = {large[key] / small[key]:.3f} "
              f"(goal <= 1.3 for peak_rss_mib)")


if __name__ == "__main__":
    main()
