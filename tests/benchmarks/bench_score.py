"""``exifbench score`` on a folder and on the same images as a zip: wall time of a first run
(empty score cache) and of a second (everything cached: nothing is computed), and whether
the two sources give identical rows.

Work: N generated photos (512 x 384 JPEG, in two subfolders) scored by two detectors
(``spectrum`` and ``cnnspot``, CPU test presets, checkpoints trained here in seconds).
Every run is the ``exifbench score`` command in a fresh process (Python start, reading and
hashing the images, the actors' start and model loading when something is computed, the
writing of the table), with its own cache folder per source, so the folder's and the zip's
first runs both start cold. The runs join one local Ray that this script starts first
(``--address``, as on a cluster), so Ray's own start, tens of seconds on a loaded machine,
is in none of them:

    folder, first    exifbench score PHOTOS      --config score.toml --out folder-1.csv --address A  (cache 1 empty)
    folder, second   exifbench score PHOTOS      --config score.toml --out folder-2.csv --address A  (cache 1)
    zip, first       exifbench score PHOTOS.zip  --config score.toml --out zip-1.csv    --address A  (cache 2 empty)
    zip, second      exifbench score PHOTOS.zip  --config score.toml --out zip-2.csv    --address A  (cache 2)

Prints each command, its wall time and its summary line (cells computed and from cache),
the second/first ratios, and checks that every output has the same sha256 and scores per
image.

    python tests/benchmarks/bench_score.py [--n 300] [--work DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

DETECTORS = {"spectrum": {"n_bins": 64}, "cnnspot": {"crop": 64}}  # CPU presets, as bench_sweep.py


def make_photos(root: Path, n: int, seed: int = 0) -> Path:
    """``root/{a,b}/*.jpg``: smooth synthetic scenes up-scaled to 512 x 384 with noise."""
    from harness.testing import synthetic_pair_images

    rng = np.random.default_rng(seed)
    images, _ = synthetic_pair_images((n + 1) // 2, size=128, seed=seed)
    for i, img in enumerate(images[:n]):
        big = np.asarray(img.resize((512, 384), Image.Resampling.BICUBIC), dtype=np.float64)
        big = np.clip(big + rng.normal(0, 4, big.shape), 0, 255).astype(np.uint8)
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(big).save(folder / f"{i:05d}.jpg", quality=90)
    return root


def write_config(work: Path) -> Path:
    """``score.toml``: the two detectors with checkpoints trained on the conformance kit's images."""
    from harness.plugins import detectors
    from harness.testing import synthetic_training_set
    from harness.train.jobs import fit_locally

    import tomli_w

    train = synthetic_training_set(work / "train", n=16, seed=0)
    tables = []
    for name, extra in DETECTORS.items():
        params = dict(detectors()[name].test_params)
        ckpt = work / f"ckpt-{name}"
        if not (ckpt / "manifest.json").exists():
            fit_locally(name, params, train.samples, ckpt)
        tables.append({"name": name, **{k: v for k, v in {**params, **extra}.items() if v is not None},
                       "checkpoint": str(ckpt)})
    path = work / "score.toml"
    path.write_text(tomli_w.dumps({"detectors": tables}))
    return path


def start_ray(attempts: int = 5) -> str:
    """A local Ray for every run to join; its start is retried (Ray gives a node 30 s to come
    up, which a loaded machine can miss)."""
    from harness.runtime import ensure_ray

    for attempt in range(attempts):
        try:
            return ensure_ray().get_runtime_context().gcs_address
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception on a slow start
            print(f"Ray did not start ({exc}); again", file=sys.stderr)
            import ray

            ray.shutdown()
    sys.exit("Ray did not start")


def run(cmd: list[str], cache: Path) -> tuple[float, str, int]:
    env = {**os.environ, "EXIFBENCH_CACHE": str(cache)}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    summary = next((l for l in done.stdout.splitlines() if "cells computed" in l), done.stdout.strip())
    return wall, summary, done.returncode


def by_image(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    name = table["path"].str.replace("::", "/").map(lambda p: Path(p).name)
    return table.assign(name=name).sort_values(["name", "detector"], ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-score-"))
    shutil.rmtree(work / "photos", ignore_errors=True)
    for cache in ("cache-folder", "cache-zip"):
        shutil.rmtree(work / cache, ignore_errors=True)
    photos = make_photos(work / "photos", args.n)
    archive = Path(shutil.make_archive(str(work / "photos"), "zip", root_dir=photos))
    config = write_config(work)
    exe = shutil.which("exifbench", path=str(Path(sys.executable).parent)) or "exifbench"
    address = start_ray()
    times = {}
    for source, target, cache in (("folder", photos, "cache-folder"), ("zip", archive, "cache-zip")):
        for attempt in ("1", "2"):
            out = work / f"{source}-{attempt}.csv"
            cmd = [exe, "score", str(target), "--config", str(config), "--out", str(out), "--quiet",
                   "--address", address]
            wall, summary, code = run(cmd, work / cache)
            times[source, attempt] = wall
            print(f"{source}, run {attempt}: {wall:6.1f} s  exit {code}  {summary}")
            print(f"    EXIFBENCH_CACHE={work / cache} exifbench {' '.join(cmd[1:])}")
    for source in ("folder", "zip"):
        print(f"{source}: second / first = {times[source, '2'] / times[source, '1']:.3f}")
    print(f"zip first / folder first = {times['zip', '1'] / times['folder', '1']:.3f}")
    reference = by_image(work / "folder-1.csv")
    for other in ("folder-2", "zip-1", "zip-2"):
        table = by_image(work / f"{other}.csv")
        same = (table["sha256"].equals(reference["sha256"]) and table["score"].equals(reference["score"])
                and table["detector"].equals(reference["detector"]))
        print(f"{other}: {len(table)} rows, identical sha256 and scores to folder-1: {same}")
    print(f"n = {args.n} images x {len(DETECTORS)} detectors; work folder {work}")


if __name__ == "__main__":
    main()
