"""The camera simulator: EXIF-labelled photographs for the EXIF pretext task.

``simulate(cameras, photos, out)`` writes a ``real-only`` folder of simulated photographs
with a manifest; the camera database comes from darktable and lensfun (:mod:`.database`),
each shot is sampled by :mod:`.shot`, rendered by :mod:`.render` through the pipeline of
:mod:`.pipeline`, and labelled with EXIF by :mod:`.exif_tags`.
"""
from __future__ import annotations

from harness.data.camera.database import Camera, Lens, fallback_cameras, load_cameras
from harness.data.camera.exif_tags import SOFTWARE, build_exif, expected_exif
from harness.data.camera.render import render_photo
from harness.data.camera.shot import Shot, sample_shot
from harness.data.camera.simulate import make_photo, simulate

__all__ = ["Camera", "Lens", "Shot", "SOFTWARE", "load_cameras", "fallback_cameras", "sample_shot", "render_photo",
           "build_exif", "expected_exif", "make_photo", "simulate"]
