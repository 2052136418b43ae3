"""Defensive image decoding: every file either becomes an RGB image or a short reason.

Outcomes (one per kind of file):
- zero-byte, non-image, truncated or corrupt file: :class:`DecodeError` with a reason;
- larger than ``MAX_PIXELS``: refused from the header, before any pixel is decoded;
- palette, grey, grey+alpha, CMYK, 16-bit: converted to 8-bit RGB;
- alpha: dropped, as the published code does with ``convert("RGB")``;
- animated: the first frame;
- EXIF orientation: not applied unless ``apply_orientation=True`` (the published
  evaluation code does not apply it either).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from harness.api import DecodeError

__all__ = ["MAX_PIXELS", "load_image", "decode_bytes", "probe"]

MAX_PIXELS = 16384 * 16384  # 268 Mpx: larger than any benchmark image, refused as a bomb
ImageFile.LOAD_TRUNCATED_IMAGES = False

try:  # HEIC/HEIF support when the optional package is installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - optional dependency
    pass


def load_image(path: str | Path, apply_orientation: bool = False) -> Image.Image:
    """Read and decode a file into an 8-bit RGB PIL image, or raise :class:`DecodeError`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DecodeError(f"unreadable file ({exc.strerror or exc})", path) from exc
    return decode_bytes(data, apply_orientation=apply_orientation, path=path)


def decode_bytes(data: bytes, apply_orientation: bool = False, path: str | Path | None = None) -> Image.Image:
    if not data:
        raise DecodeError("empty file", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            _check_size(img, path)
            img.load()
            if apply_orientation:
                img = ImageOps.exif_transpose(img)
            return to_rgb(img)
    except DecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError("image too large (decompression bomb)", path) from exc
    except UnidentifiedImageError as exc:
        raise DecodeError("not an image", path) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DecodeError(f"corrupt or truncated image ({str(exc)[:60]})", path) from exc


def _check_size(img: Image.Image, path) -> None:
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise DecodeError(f"image too large ({w}x{h} > {MAX_PIXELS} pixels)", path)
    if w < 1 or h < 1:
        raise DecodeError("image has no pixels", path)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (16-bit grey is scaled, not clipped)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "F":
        arr = np.clip(np.asarray(img), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def probe(path: str | Path) -> dict:
    """Format, size and EXIF presence from the header, without decoding pixels."""
    try:
        with Image.open(path) as img:
            return {
                "format": (img.format or "").lower(),
                "width": img.size[0],
                "height": img.size[1],
                "has_exif": bool(img.getexif()),
            }
    except Exception:  # noqa: BLE001 - a bad file is recorded when it is decoded
        return {"format": "", "width": 0, "height": 0, "has_exif": False}
