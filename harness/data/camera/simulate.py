"""``simulate``: a folder of simulated, EXIF-labelled photographs, in parallel on Ray.

Every photo is a pure function of (seed, its index, its camera, its scene): its random
generator is seeded with ``(seed, index)``, so the output does not depend on worker count or
order. The folder is a ``real-only`` dataset (images under ``images/``) with a
``manifest.csv`` (path, label 0, generator ``simulated``, family ``camera``, the camera, every
sampled tag and the hidden shot parameters). Simulated photos say so in their EXIF
``Software`` tag and in the manifest's ``generator`` column.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.api import ConfigError
from harness.data.camera.database import Camera, load_cameras
from harness.data.camera.exif_tags import build_exif, expected_exif
from harness.data.camera.pipeline import encode_jpeg, jpeg_qtables
from harness.data.camera.render import Realism, render_photo, shake_length
from harness.data.camera.scenes import BUILTIN_SCENES, load_scene
from harness.data.camera.shot import Shot, sample_shot
from harness.files import atomic_write_bytes

__all__ = ["PhotoJob", "make_photo", "choose_cameras", "plan_jobs", "simulate", "MANIFEST_NAME", "SIMULATOR_VERSION"]

MANIFEST_NAME = "manifest.csv"
#: changes whenever the same (seed, cameras, scenes) give other photos: part of cache keys
#: of simulated folders (2: hand shake, per-pixel noise level, warm AWB; :class:`.render.Realism`)
SIMULATOR_VERSION = 2
_README = ("Simulated photographs (label 0, generator 'simulated'): made by the exifbench camera simulator "
           "from real scene content, with EXIF sampled per shot. They are not camera originals.\n")


@dataclass(frozen=True)
class PhotoJob:
    index: int
    camera: Camera
    scene: str
    seed: int
    path: str  # relative to the output folder
    root: str
    size: tuple[int, int]
    realism: Realism = Realism()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40]


def shot_record(camera: Camera, shot: Shot) -> dict[str, Any]:
    """The manifest columns of one photo: its EXIF as read back, and what the EXIF does not say."""
    return {**expected_exif(camera, shot), "camera": camera.name, "make_raw": camera.make, "model_raw": camera.model,
            "camera_source": camera.source, "cfa": camera.cfa, "demosaic": camera.demosaic,
            "jpeg_quality": camera.jpeg_quality, "subsampling": camera.subsampling, "lighting": shot.lighting,
            "kelvin": round(shot.kelvin, 1), "ev100": round(shot.ev100, 3),
            "exposure_error_ev": round(shot.exposure_error_ev, 4), "wb_preset": shot.wb_preset,
            "tripod": int(shot.tripod), "shake_px": round(shake_length(shot), 3)}


def make_photo(job: PhotoJob) -> dict[str, Any]:
    """Simulate, encode and write one photo; return its manifest row."""
    rng = np.random.default_rng([job.seed, job.index])
    scene = load_scene(job.scene, rng, job.size)
    shot = sample_shot(job.camera, rng, float(scene.mean()) / 255.0)
    image = render_photo(job.camera, scene, shot, rng, job.realism)
    data = encode_jpeg(image, jpeg_qtables(job.camera.jpeg_quality, job.camera.name), job.camera.subsampling,
                       build_exif(job.camera, shot))
    atomic_write_bytes(Path(job.root) / job.path, data)
    return {"path": job.path, "label": 0, "generator": "simulated", "family": "camera",
            "scene": Path(job.scene).name, **shot_record(job.camera, shot)}


def choose_cameras(database: Sequence[Camera], n: int, seed: int) -> list[Camera]:
    """``n`` distinct models, spread over makers (round-robin over shuffled makers)."""
    if n < 1 or n > len(database):
        raise ConfigError(f"--cameras must be between 1 and {len(database)} (the models in the camera database)")
    rng = np.random.default_rng([seed, 0xCA])
    by_make: dict[str, list[Camera]] = {}
    for cam in sorted(database, key=lambda c: (c.make, c.model)):
        by_make.setdefault(cam.make, []).append(cam)
    queues = [[group[i] for i in rng.permutation(len(group))] for group in by_make.values()]
    queues = [queues[i] for i in rng.permutation(len(queues))]
    chosen: list[Camera] = []
    while len(chosen) < n:
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop(0))
    return chosen


def plan_jobs(cameras: Sequence[Camera], photos: int, out: Path, scenes: Sequence[str], seed: int,
              size: tuple[int, int], realism: Realism = Realism()) -> list[PhotoJob]:
    rng = np.random.default_rng([seed, 0x5C])
    scene_of = rng.integers(0, len(scenes), size=photos)
    jobs = []
    for i in range(photos):
        cam = cameras[i % len(cameras)]
        name = f"images/{i:06d}_{_slug(cam.make)}_{_slug(cam.model)}.jpg"
        jobs.append(PhotoJob(i, cam, str(scenes[scene_of[i]]), seed, name, str(out), tuple(size), realism))
    return jobs


def _write_manifest(rows: list[dict[str, Any]], out: Path) -> None:
    with open(out / MANIFEST_NAME, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def simulate(cameras: int | Sequence[Camera], photos: int, out: Path, *, scenes: list[Path] | None = None, seed: int = 0,
             size: tuple[int, int] = (512, 384), address: str | None = None, progress: bool = True,
             database: Sequence[Camera] | None = None, realism: Realism = Realism()) -> Path:
    """Write ``photos`` simulated photos from ``cameras`` camera models into ``out``; return ``out``.

    ``cameras``: how many models to choose (:func:`choose_cameras` with ``seed``), or the
    models themselves, used in the order given (photo ``i`` is by ``cameras[i % n]``).

    ``scenes``: scene photos (their content is used, their camera traces are erased); the
    built-in sample photos when None. ``database``: the camera models to draw from
    (:func:`~harness.data.camera.database.load_cameras` when None). ``realism``: the
    effects added since the simulator's first version (:data:`~.render.REALISM_V1` turns them off).
    """
    from harness.parallel import parallel_map

    if photos < 1:
        raise ConfigError("--photos must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(cameras, int):
        chosen = choose_cameras(list(database) if database is not None else load_cameras(), cameras, seed)
    else:
        chosen = list(cameras)
        if not chosen:
            raise ConfigError("simulate: an empty list of cameras")
    refs = [str(p) for p in scenes] if scenes else list(BUILTIN_SCENES)
    jobs = plan_jobs(chosen, photos, out, refs, seed, size, realism)
    rows = list(parallel_map(make_photo, jobs, address=address, desc="simulate", progress=progress))
    _write_manifest(rows, out)
    (out / "README.txt").write_text(_README)
    return out
