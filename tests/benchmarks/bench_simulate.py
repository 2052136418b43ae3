"""Throughput of the camera simulator: photos per second at 512x384, one process and on Ray.

Run: ``python tests/benchmarks/bench_simulate.py --photos 40 --cameras 8``. The single-process
figure calls ``make_photo`` in a loop (after one warm-up photo, which pays the imports); the
Ray figure is ``simulate`` end to end, Ray start-up included, and again on the warm cluster.
``--fallback`` uses the generic cameras instead of the darktable database.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness.data.camera import fallback_cameras, load_cameras, make_photo, simulate
from harness.data.camera.simulate import choose_cameras, plan_jobs
from harness.data.camera.scenes import BUILTIN_SCENES


def _single(cameras, photos: int, size: tuple[int, int], out: Path) -> float:
    jobs = plan_jobs(cameras, photos + 1, out, list(BUILTIN_SCENES), 0, size)
    make_photo(jobs[0])
    start = time.perf_counter()
    for job in jobs[1:]:
        make_photo(job)
    return photos / (time.perf_counter() - start)


def _ray(database, n_cameras: int, photos: int, size: tuple[int, int], out: Path) -> float:
    start = time.perf_counter()
    simulate(n_cameras, photos, out, size=size, progress=False, database=database)
    return photos / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 384))
    parser.add_argument("--fallback", action="store_true")
    args = parser.parse_args()
    database = fallback_cameras() if args.fallback else load_cameras()
    size = tuple(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        cams = choose_cameras(database, min(args.cameras, len(database)), 0)
        print(f"single process: {_single(cams, args.photos, size, Path(tmp) / 'single'):.2f} photos/s")
        print(f"ray, cold start: {_ray(database, len(cams), args.photos, size, Path(tmp) / 'cold'):.2f} photos/s")
        print(f"ray, warm: {_ray(database, len(cams), args.photos, size, Path(tmp) / 'warm'):.2f} photos/s")


if __name__ == "__main__":
    main()
