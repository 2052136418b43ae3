"""Builders the tests share: tiny images and datasets, a spectrum checkpoint, config files,
the awkward-file recipes, and the test session's local Ray.

Plain functions only; fixtures live in ``tests/conftest.py``. A test module imports what it
needs from here, never from another test module.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pytest
from PIL import Image

from harness.testing import synthetic_pair_images

__all__ = ["RAY_CPUS", "start_local_ray", "write_binary_folders", "solid", "noise_image", "spectrum_checkpoint",
           "exif_photo", "write_sweep_config", "write_train_config", "write_protocol_config", "Maker", "AWKWARD", "save_bytes", "rgb_noise",
           "bomb_png", "rotated_jpeg"]

#: CPUs of the test session's Ray; engine tests count pipeline actors by it
RAY_CPUS = 2


def start_local_ray(num_cpus: int = RAY_CPUS) -> Any:
    """A new local Ray of this process (or the running one), never a cluster named by
    ``RAY_ADDRESS``; the ``ray_session`` fixture is the only caller besides a test that has
    to bring the session's Ray back after replacing it."""
    from harness.runtime import ensure_ray

    os.environ.pop("RAY_ADDRESS", None)
    return ensure_ray(num_cpus=num_cpus)


# --- images and datasets -------------------------------------------------------------

def write_binary_folders(root: Path, generators=("gana", "ganb"), n: int = 6, seed: int = 0) -> Path:
    """``root/<gen>/{0_real,1_fake}/*.png`` from the conformance kit's synthetic images."""
    for g, gen in enumerate(generators):
        images, labels = synthetic_pair_images(n, size=64, seed=seed + g)
        for i, (img, label) in enumerate(zip(images, labels)):
            folder = root / gen / ("1_fake" if label else "0_real")
            folder.mkdir(parents=True, exist_ok=True)
            img.save(folder / f"{i:03d}.png")
    return root


def solid(color=(10, 200, 30), size=(32, 24), mode="RGB") -> Image.Image:
    return Image.new(mode, size, color)


def noise_image(size=(80, 60), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def spectrum_checkpoint(folder: Path, n_bins: int = 32, n: int = 8, seed: int = 0) -> str:
    """A `spectrum` checkpoint trained on the conformance kit's synthetic images (seconds)."""
    from harness.testing import synthetic_training_set
    from harness.train.jobs import fit_locally

    train = synthetic_training_set(folder / "train", n=n, seed=seed)
    return fit_locally("spectrum", {"n_bins": n_bins}, train.samples, folder / "ckpt")


def exif_photo(path: Path, rng: np.random.Generator, make: str, fnumber: float, iso: int, size=(48, 40)) -> Path:
    """A JPEG whose pixels depend on the camera (noise level), with EXIF tags."""
    base = np.full((size[1], size[0], 3), 120.0) + rng.normal(0, 30 if make == "Canon" else 3, (size[1], size[0], 3))
    image = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = make, f"{make} X{iso % 3}"
    ifd = exif.get_ifd(0x8769)
    ifd[0x829D], ifd[0x8827], ifd[0x9209] = fnumber, iso, 16 if make == "Canon" else 0
    image.save(path, quality=95, exif=exif)
    return path


# --- config files ----------------------------------------------------------------------

def _toml_value(value: Any) -> Any:
    """Paths as strings, recursively; anything TOML cannot hold (None) fails in tomli_w."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _toml_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_toml_value(v) for v in value]
    return value


def _write_toml(path: Path, tables: Mapping[str, Any]) -> Path:
    import tomli_w

    path = Path(path)
    path.write_text(tomli_w.dumps(_toml_value({k: v for k, v in tables.items() if v is not None})))
    return path


def write_sweep_config(path: Path, *, datasets: Sequence[Mapping[str, Any]], detectors: Sequence[Mapping[str, Any]],
                       grid: Sequence[str] | None = None, suite: str | None = None,
                       run: Mapping[str, Any] | None = None) -> Path:
    """A sweep config file (the README's "A sweep config"): ``[run]`` when given, one
    ``[[datasets]]`` and ``[[detectors]]`` table per mapping, ``[perturbations]`` with the
    ``grid`` and ``suite`` given. Path values are written as strings."""
    perturbations = {k: v for k, v in (("grid", list(grid) if grid is not None else None), ("suite", suite))
                     if v is not None}
    return _write_toml(path, {"run": run, "datasets": list(datasets), "detectors": list(detectors),
                              "perturbations": perturbations or None})


def write_train_config(path: Path, *, datasets: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None = None,
                       run: Mapping[str, Any] | None = None) -> Path:
    """A training config file: ``[run]`` when given, ``[[datasets]]`` tables, ``[params]``."""
    return _write_toml(path, {"run": run, "datasets": list(datasets), "params": params})


def write_protocol_config(path: Path, *, protocol: Mapping[str, Any], datasets: Sequence[Mapping[str, Any]],
                          detectors: Sequence[Mapping[str, Any]], run: Mapping[str, Any] | None = None,
                          metrics: Mapping[str, Any] | None = None) -> Path:
    """A protocol config file (the README's "Cross-generator protocols"): ``[protocol]``,
    ``[[datasets]]`` tables (each with its ``role``), ``[[detectors]]``, ``[run]`` and
    ``[metrics]`` when given."""
    return _write_toml(path, {"protocol": dict(protocol), "run": run, "metrics": metrics, "datasets": list(datasets),
                              "detectors": list(detectors)})


# --- awkward files: each kind has one documented decode outcome ----------------------------

#: a maker returns (file suffix, bytes); rng gives each file its own content
Maker = Callable[[np.random.Generator], tuple[str, bytes]]


def rgb_noise(rng: np.random.Generator, w: int = 48, h: int = 40) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def save_bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _jpeg(rng) -> bytes:
    return save_bytes(rgb_noise(rng), "JPEG", quality=90)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(rng) -> bytes:
    """A PNG whose header claims 40000 x 40000 pixels (1.6 Gpx) with almost no data."""
    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    row = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", row) + _png_chunk(b"IEND", b"")


def _corrupt_jpeg(rng) -> bytes:
    data = bytearray(_jpeg(rng))
    start = data.index(b"\xff\xda")  # scrambled start-of-scan header
    data[start + 2:start + 12] = b"\xff" * 10
    return bytes(data)


def rotated_jpeg(rng) -> bytes:
    """A 48 x 40 JPEG whose EXIF orientation (6) says: rotate by 90 degrees."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return save_bytes(rgb_noise(rng), "JPEG", exif=exif.tobytes())


def _animated(rng) -> bytes:
    frames = [rgb_noise(rng).convert("P") for _ in range(3)]
    return save_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)


def _grey16(rng) -> bytes:
    return save_bytes(Image.fromarray(rng.integers(0, 65536, (40, 48), dtype=np.uint16)), "PNG")


def _rgb16(rng) -> bytes:
    import cv2

    ok, enc = cv2.imencode(".png", rng.integers(0, 65536, (40, 48, 3), dtype=np.uint16))
    return enc.tobytes()


def _heic(rng) -> bytes:
    pytest.importorskip("pillow_heif")
    return save_bytes(rgb_noise(rng), "HEIF", quality=90)


AWKWARD: dict[str, tuple[str, Maker]] = {
    # kind: (outcome, maker); outcome "ok" = decoded to RGB, else the start of the reason
    "zero-byte": ("empty file", lambda rng: (".jpg", b"")),
    "non-image": ("not an image", lambda rng: (".jpg", b"<html><body>403 Forbidden</body></html>")),
    "truncated": ("corrupt or truncated", lambda rng: (".jpg", _jpeg(rng)[:300])),
    "corrupt": ("corrupt or truncated", lambda rng: (".jpg", _corrupt_jpeg(rng))),
    "bomb": ("image too large", lambda rng: (".png", bomb_png(rng))),
    "wrong-name": ("ok", lambda rng: (".jpg", save_bytes(rgb_noise(rng), "PNG"))),
    "cmyk": ("ok", lambda rng: (".jpg", save_bytes(rgb_noise(rng).convert("CMYK"), "JPEG"))),
    "palette": ("ok", lambda rng: (".png", save_bytes(rgb_noise(rng).convert("P"), "PNG"))),
    "palette-transparent": ("ok", lambda rng: (".gif", save_bytes(rgb_noise(rng).convert("P"), "GIF", transparency=0))),
    "grey": ("ok", lambda rng: (".png", save_bytes(rgb_noise(rng).convert("L"), "PNG"))),
    "grey-alpha": ("ok", lambda rng: (".png", save_bytes(rgb_noise(rng).convert("LA"), "PNG"))),
    "bilevel": ("ok", lambda rng: (".png", save_bytes(rgb_noise(rng).convert("1"), "PNG"))),
    "grey-16bit": ("ok", lambda rng: (".png", _grey16(rng))),
    "rgb-16bit": ("ok", lambda rng: (".png", _rgb16(rng))),
    "alpha": ("ok", lambda rng: (".png", save_bytes(rgb_noise(rng).convert("RGBA"), "PNG"))),
    "animated": ("ok", lambda rng: (".gif", _animated(rng))),
    "exif-rotated": ("ok", lambda rng: (".jpg", rotated_jpeg(rng))),
    "tiny": ("ok", lambda rng: (".png", save_bytes(rgb_noise(rng, 1, 1), "PNG"))),
    "elongated": ("ok", lambda rng: (".png", save_bytes(rgb_noise(rng, 2000, 2), "PNG"))),
    "webp": ("ok", lambda rng: (".webp", save_bytes(rgb_noise(rng), "WEBP", quality=80))),
    "heic": ("ok", lambda rng: (".heic", _heic(rng))),
}
