"""Defensive image decoding: every file either becomes an 8-bit RGB image or a short reason.

Pillow identifies a file by its content, never by its name. One outcome per kind of file:

=========================  ==========================================================
file                        outcome
=========================  ==========================================================
zero-byte                   error ``empty file``
not an image (text, HTML)   error ``not an image``
truncated                   error ``corrupt or truncated image (...)``
corrupt (bad stream)        error ``corrupt or truncated image (...)``
wrongly named               decoded by its content and scored (``data check`` reports
(extension lies)            the mismatch)
more than ``MAX_PIXELS``    error ``image too large (WxH > N pixels)``, refused from the
(decompression bomb)        header before any pixel is decoded
HEIC/HEIF                   decoded through ``pillow-heif`` when installed (extra
                            ``exifbench[heif]``); otherwise error ``HEIC/HEIF needs ...``
CMYK                        converted to RGB (Pillow; Adobe's inverted CMYK JPEGs too)
palette                     converted to RGB (through RGBA when it has a transparent
                            index, whose alpha is then dropped)
grey, 1-bit                 converted to RGB (grey replicated)
grey + alpha                converted to RGB, alpha dropped
16-bit grey                 scaled to 8 bits (``v * 255 / 65535``, rounded), then RGB
16-bit RGB(A)               Pillow keeps the most significant byte, then as 8-bit
alpha (RGBA, LA, PA)        alpha dropped, the colour under transparent pixels kept,
                            as ``convert("RGB")`` in the published evaluation code
animated (GIF, WebP, APNG)  the first frame; a multi-picture JPEG (MPO) its first image
EXIF orientation            not applied (the published code does not);
                            ``apply_orientation=True`` (``--apply-orientation``) applies it
tiny (down to 1x1)          decoded and scored: a detector's own preprocessing pads or
                            resizes it
extremely elongated         decoded and scored
=========================  ==========================================================
"""
from __future__ import annotations

import io
import signal
import struct  # a few Pillow plugins raise struct.error on a short header
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from harness.api import DecodeError
from harness.data.sources import open_binary, read_bytes

__all__ = ["MAX_PIXELS", "HEIF_AVAILABLE", "time_limit", "load_image", "decode_bytes", "to_rgb", "probe", "probe_bytes", "sniff_format"]

#: 128 Mpx: above every benchmark image and every current camera but medium format; a
#: larger header is refused before decoding (Pillow's own limit is raised to match, so the
#: two agree on what a bomb is).
MAX_PIXELS = 1 << 27
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False

try:  # HEIC/HEIF support when the optional package is installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_AVAILABLE = True
except ImportError:  # pragma: no cover - optional dependency
    HEIF_AVAILABLE = False

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_HEIF_MISSING = "HEIC/HEIF needs the optional package pillow-heif (pip install 'exifbench[heif]')"


class _TimedOut(BaseException):  # not an Exception: no library's ``except Exception`` swallows it
    pass


@contextmanager
def time_limit(seconds: float | None, path: str | Path | None = None) -> Iterator[None]:
    """Raise :class:`DecodeError` (``took longer than N s``) when the block runs longer than
    ``seconds`` (None or 0: no limit).

    A real-time interval timer (``SIGALRM``) interrupts the block between Python bytecodes, so
    it stops a slow read (a stalled network file system) and Pillow's decoders, which feed
    their C code in blocks from Python. It needs the main thread of a POSIX process (where
    Ray runs an actor's calls); elsewhere the block runs without a limit. A timer already
    set by the caller is restored afterwards.
    """
    usable = (seconds and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    armed = [True]

    def expired(signum, frame):
        if armed[0]:
            raise _TimedOut

    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expired)
    outer = (0.0, 0.0)
    try:
        outer = signal.setitimer(signal.ITIMER_REAL, seconds)  # inside the try: it may fire at once
        yield
    except _TimedOut:
        raise DecodeError(f"took longer than {seconds:g} s to read and decode ([run] decode_timeout_s)", path) from None
    finally:
        armed[0] = False
        while True:  # the timer may fire on the way out: disarming is retried until it holds
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except _TimedOut:
                continue
        if outer[0] > 0:  # the caller's own timer, less the time spent here (at least a tick)
            signal.setitimer(signal.ITIMER_REAL, max(outer[0] - (time.monotonic() - start), 1e-3), outer[1])


def load_image(path: str | Path, apply_orientation: bool = False, timeout: float | None = None) -> Image.Image:
    """Read and decode a file, or an archive member (a sample path of
    :mod:`harness.data.sources`), into an 8-bit RGB PIL image, or raise :class:`DecodeError`
    (also when reading and decoding take longer than ``timeout`` seconds: :func:`time_limit`)."""
    with time_limit(timeout, path):
        try:
            data = read_bytes(path)
        except OSError as exc:
            raise DecodeError(f"unreadable file ({exc.strerror or exc})", path) from exc
        return decode_bytes(data, apply_orientation=apply_orientation, path=path)


def decode_bytes(data: bytes, apply_orientation: bool = False, path: str | Path | None = None) -> Image.Image:
    """Decode the bytes of one file (see the module table for each kind of file)."""
    if not data:
        raise DecodeError("empty file", path)
    try:
        with warnings.catch_warnings():
            # the warning fires between MAX_PIXELS and twice that; _check_size refuses those
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            _check_size(img, path)
            img.load()
        if apply_orientation:
            img = ImageOps.exif_transpose(img)
        return to_rgb(img)
    except DecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"image too large (decompression bomb, > {MAX_PIXELS} pixels)", path) from exc
    except UnidentifiedImageError as exc:
        raise DecodeError(_unidentified_reason(data), path) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error) as exc:
        raise DecodeError(f"corrupt or truncated image ({str(exc)[:60]})", path) from exc


def _unidentified_reason(data: bytes) -> str:
    if not _is_heif(data):
        return "not an image"
    return "corrupt or truncated image (HEIF)" if HEIF_AVAILABLE else _HEIF_MISSING


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


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
    if img.mode.startswith("I;16"):
        arr = np.asarray(img, dtype=np.float64)
        return _grey(arr * (255.0 / 65535.0))
    if img.mode == "I":  # 32-bit integer: 16-bit data in practice (older PNG and TIFF readers)
        arr = np.asarray(img, dtype=np.float64)
        return _grey(arr * (255.0 / 65535.0) if arr.max(initial=0) > 255 else arr)
    if img.mode == "F":
        return _grey(np.asarray(img, dtype=np.float64))
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def _grey(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L").convert("RGB")


def sniff_format(data: bytes) -> str:
    """The format the bytes are in (lower case, ``""`` when unknown), from the header only."""
    if _is_heif(data):
        return "heif"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                return (img.format or "").lower()
    except Exception:  # noqa: BLE001 - unknown means unknown
        return ""


def probe(path: str | Path) -> dict:
    """Format, size and EXIF presence from the header, without decoding pixels (a file or
    an archive member)."""
    try:
        with open_binary(path) as f:
            return probe_bytes(f)
    except OSError:
        return dict(_NO_INFO)


_NO_INFO = {"format": "", "width": 0, "height": 0, "has_exif": False}


def probe_bytes(data: bytes | BinaryIO) -> dict:
    """:func:`probe` of bytes already read (or of an open binary file)."""
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(source) as img:
                return {
                    "format": (img.format or "").lower(),
                    "width": img.size[0],
                    "height": img.size[1],
                    "has_exif": bool(img.getexif()),
                }
    except Exception:  # noqa: BLE001 - a bad file is recorded when it is decoded
        return dict(_NO_INFO)
