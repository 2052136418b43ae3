"""Peak memory of a sweep (driver plus every Ray process) for 10,000 vs 1,000 small images.

Each size runs in a fresh process with a fresh Ray and an empty score cache. A sampler
thread reads, every 0.2 s, the resident set (RSS) and the proportional set (PSS: shared
pages divided among the processes that map them, so Ray's shared object store is counted
once) of the driver and all its descendants (GCS, raylet, workers, actors) from /proc, and
keeps the peaks of the sums. The goal: peak(10,000) <= 1.3 x peak(1,000).

Two more measurements:

- ``--per-pixel [MPX ...]``: each built-in CPU detector's scoring memory at two image sizes
  (fresh process each), the slope in bytes per pixel, next to what the detector declares;
- ``--photos N``: a sweep of N 24 Mpx photographs (written once) with every built-in CPU
  detector at native size, in a child process whose whole tree (driver, Ray, actors) is
  sampled; it is stopped (and says so) above ``--cap-gib`` or after ``--timeout``. Run it
  from this checkout, or with ``PYTHONPATH`` set to another checkout of the harness to
  measure that one (``--memory-mib`` and ``--oversize`` only where the config knows them).

    python tests/benchmarks/bench_memory.py [--sizes 1000 10000] [--work DIR]
    python tests/benchmarks/bench_memory.py --per-pixel 1 4
    python tests/benchmarks/bench_memory.py --photos 10 [--cap-gib 8] [--timeout 900] [--memory-mib 2048]
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


#: the built-in detectors that run on a CPU without downloaded weights, at their conformance
#: configuration and native size (no centre crop), as their ``memory`` declarations assume
PER_PIXEL_DETECTORS = ("spectrum", "probe", "cnnspot", "npr", "exif-oc", "exif-bc")
NATIVE = {"cnnspot": {"crop": None}, "npr": {"crop": None}}


def _ckpt(work: Path, name: str) -> Path:
    from harness.plugins import detectors
    from harness.testing import synthetic_training_set
    from harness.train.jobs import fit_locally

    out = work / f"ckpt-{name}"
    if not (out / "manifest.json").exists():
        fit_locally(name, dict(detectors()[name].test_params), synthetic_training_set(work / "train", n=8).samples, out)
    return out


def _rss_mib() -> float:
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024


def per_pixel_point(name: str, mpx: float, work: Path) -> dict:
    """Peak memory of scoring one ``mpx`` noise image (3:2) above the process's memory after
    loading the model and scoring a small image; a fresh process per point."""
    import resource

    import numpy as np
    from PIL import Image

    from harness.plugins import detectors

    spec = detectors()[name]
    det = spec.create(**{**dict(spec.test_params), **NATIVE.get(name, {}), "checkpoint": str(_ckpt(work, name))})
    det.load("cpu")
    side = int((mpx * 1e6 / 1.5) ** 0.5)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, int(side * 1.5), 3), dtype=np.uint8))
    det.score_batch([det.preprocess(image.resize((64, 48)))])
    base = _rss_mib()
    det.score_batch([det.preprocess(image)])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"name": name, "mpx": image.size[0] * image.size[1] / 1e6, "delta_mib": peak - base,
            "declared": spec.memory_model({**dict(spec.test_params), **NATIVE.get(name, {})})}


def per_pixel(work: Path, sizes: list[float]) -> None:
    """Measured growth of each detector's scoring memory (two sizes: slope and intercept) next
    to what it declares."""
    for name in PER_PIXEL_DETECTORS:
        _ckpt(work, name)
        points = []
        for mpx in sizes:
            out = subprocess.run([sys.executable, __file__, "--point", name, str(mpx), "--work", str(work)],
                                 capture_output=True, text=True, check=True).stdout
            points.append(json.loads(out.strip().splitlines()[-1]))
        (a, b) = points[0], points[-1]
        slope = (b["delta_mib"] - a["delta_mib"]) * 2 ** 20 / ((b["mpx"] - a["mpx"]) * 1e6)
        declared = [base + linear * p["mpx"] * 1e6 + squared * (p["mpx"] * 1e6) ** 2
                    for p in (a, b) for base, linear, squared in [p["declared"]]]
        print(f"{name}: scoring one image: {a['delta_mib']:.0f} MiB at {a['mpx']:.1f} Mpx, {b['delta_mib']:.0f} MiB at "
              f"{b['mpx']:.1f} Mpx: {slope:.0f} bytes/pixel measured; declared {declared[0] / 2 ** 20:.0f} MiB and "
              f"{declared[1] / 2 ** 20:.0f} MiB (base, bytes/pixel, bytes/pixel^2 = {tuple(b['declared'])})", flush=True)


def make_photos(root: Path, n: int) -> Path:
    """``n`` 24 Mpx (6000 x 4000) JPEGs, binary-folders layout: smooth scenes with sensor-like
    noise (each with its own seed), written once."""
    import numpy as np
    from PIL import Image

    done = root / ".complete"
    if done.exists():
        return root
    for i in range(n):
        rng = np.random.default_rng(i)
        small = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
        big = np.asarray(Image.fromarray(small).resize((6000, 4000), Image.BICUBIC), dtype=np.int16)
        big = big + rng.integers(-6, 7, (4000, 1, 1), dtype=np.int16) + rng.integers(-6, 7, (1, 6000, 1), dtype=np.int16)
        folder = root / "gen" / ("1_fake" if i % 2 else "0_real")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(big.clip(0, 255).astype(np.uint8)).save(folder / f"{i:03d}.jpg", quality=90)
    done.write_text(str(n))
    return root


def photos_config(args, work: Path) -> Path:
    from harness.plugins import detectors

    data = make_photos(work / "photos24", args.photos)
    tables = ""
    for name in PER_PIXEL_DETECTORS:
        if name not in detectors():  # an older checkout
            print(f"{name}: not in this checkout, left out", flush=True)
            continue
        params = {**dict(detectors()[name].test_params), **NATIVE.get(name, {}), "checkpoint": str(_ckpt(work, name))}
        tables += f'[[detectors]]\nname = "{name}"\n' + "".join(f"{k} = {json.dumps(v)}\n" for k, v in params.items()
                                                               if v is not None)
    run = "".join(f"{k} = {json.dumps(v)}\n" for k, v in (("memory_mib", args.memory_mib), ("oversize", args.oversize))
                  if v is not None)
    path = work / "photos.toml"
    path.write_text(f'[run]\nseed = 0\n{run}[[datasets]]\nname = "photos"\nlayout = "binary-folders"\n'
                    f'root = "{data}"\n{tables}[perturbations]\ngrid = ["none"]\n[metrics]\nbootstrap = 0\n')
    return path


def photos_child(args, work: Path) -> None:
    from harness.config import load_sweep
    from harness.engine.score_cache import ScoreCache
    from harness.engine.sweep import run_sweep

    cache = work / "photos.sqlite"
    for path in work.glob("photos.sqlite*"):
        path.unlink()
    result = run_sweep(load_sweep(work / "photos.toml"), work / "photos-run", quiet=True, cache=ScoreCache(cache),
                       leaderboard=False)
    frame = __import__("pandas").read_parquet(work / "photos-run" / "scores.parquet")
    print(json.dumps({"summary": result.summary(), "errors": frame["error"].dropna().str[:90].value_counts().to_dict(),
                      "scored": int(frame["score"].notna().sum())}))


def photos(args, work: Path) -> None:
    """The sweep of ``--photos`` 24 Mpx photographs in a child process (the harness it
    imports: this checkout, or the one ``PYTHONPATH`` names), its process tree sampled; it is
    stopped when it holds more than ``--cap-gib`` or runs past ``--timeout``."""
    import signal

    photos_config(args, work)
    for attempt in range(3):  # on a loaded machine Ray's start can time out: try again
        if _photos_once(args, work, attempt):
            return


def _photos_once(args, work: Path, attempt: int) -> bool:
    import signal

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--photos-child", "--photos", str(args.photos), "--work",
                             str(work)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    peak_rss = peak_pss = 0
    stopped = ""
    while proc.poll() is None:
        sizes = [rss_pss_kib(p) for p in tree(proc.pid)]
        peak_rss = max(peak_rss, sum(r for r, _ in sizes))
        peak_pss = max(peak_pss, sum(p for _, p in sizes))
        elapsed = time.perf_counter() - start
        if peak_rss > args.cap_gib * 2 ** 20 or elapsed > args.timeout:
            stopped = (f"stopped: over the cap of {args.cap_gib} GiB" if peak_rss > args.cap_gib * 2 ** 20
                       else f"stopped: still running after {args.timeout:.0f}s")
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode and "timed out during startup" in err and attempt < 2:
        print(f"Ray did not start (attempt {attempt + 1}); trying again", flush=True)
        return False
    last = out.strip().splitlines()[-1] if out.strip() else err.strip()[-600:]
    print(json.dumps({"photos": args.photos, "memory_mib": args.memory_mib, "oversize": args.oversize,
                      "wall_s": round(elapsed, 1), "peak_rss_gib": round(peak_rss / 2 ** 20, 2),
                      "peak_pss_gib": round(peak_pss / 2 ** 20, 2), "outcome": stopped or last,
                      "load_avg": round(os.getloadavg()[0], 1)}), flush=True)
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--per-pixel", type=float, nargs="*", default=None, metavar="MPX",
                   help="measure each CPU detector's scoring memory at these sizes (default 1 4) and exit")
    p.add_argument("--point", nargs=2, default=None, help=argparse.SUPPRESS)
    p.add_argument("--photos", type=int, default=0, help="instead: a sweep of this many 24 Mpx photographs "
                   "with every CPU detector (see --photos-sweep)")
    p.add_argument("--cap-gib", type=float, default=8.0, help="with --photos: stop the sweep when all its "
                   "processes hold more than this (RSS), and say so")
    p.add_argument("--timeout", type=float, default=900.0, help="with --photos: stop the sweep after this")
    p.add_argument("--memory-mib", type=int, default=None, help="with --photos: [run] memory_mib")
    p.add_argument("--oversize", default=None, help="with --photos: [run] oversize")
    p.add_argument("--photos-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["EXIFBENCH_CACHE"] = str(work / "cache")
    if args.point:
        print(json.dumps(per_pixel_point(args.point[0], float(args.point[1]), work)))
        return
    if args.per_pixel is not None:
        per_pixel(work, args.per_pixel or [1.0, 4.0])
        return
    if args.photos_child:
        photos_child(args, work)
        return
    if args.photos:
        photos(args, work)
        return
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
