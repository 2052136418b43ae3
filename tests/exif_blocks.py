"""Hypothesis strategies for EXIF blocks written byte by byte (for the fuzz tests).

Pillow writes only well-formed EXIF; these build the TIFF structure directly, so a block
can hold every field type (and invalid ones), extreme and zero numerators and denominators,
counts that disagree with the data, values pointing past the end, truncated IFDs and loops
between IFD offsets. :func:`jpeg_with_exif` puts a block into the APP1 segment of a tiny
JPEG whose pixels are fine, so whatever goes wrong is the EXIF's fault.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from hypothesis import strategies as st
from PIL import Image

__all__ = ["Entry", "Block", "blocks", "jpeg_with_exif", "TAGS"]

#: tags read_exif types (IFD0 and Exif IFD), with the field type cameras write for them
TAGS = {
    0x010F: 2, 0x0110: 2, 0x0131: 2, 0x0132: 2, 0x0112: 3, 0x011A: 5, 0x011B: 5, 0x0128: 3,
    0x829A: 5, 0x829D: 5, 0x8822: 3, 0x8827: 3, 0x9000: 7, 0x9003: 2, 0x9004: 2, 0x9101: 7,
    0x9201: 10, 0x9202: 5, 0x9203: 10, 0x9204: 10, 0x9205: 5, 0x9206: 5, 0x9207: 3, 0x9208: 3,
    0x9209: 3, 0x920A: 5, 0x9214: 3, 0xA000: 7, 0xA001: 3, 0xA002: 4, 0xA003: 4, 0xA300: 7,
    0xA301: 7, 0xA401: 3, 0xA402: 3, 0xA403: 3, 0xA404: 5, 0xA405: 3, 0xA406: 3, 0xA407: 3,
    0xA408: 3, 0xA409: 3, 0xA40A: 3, 0xA432: 5, 0xA434: 2, 0xA433: 2,
}
_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_TWIN = {3: 8, 4: 9, 5: 10, 10: 5}
_U32 = [0, 1, 2, 3, 100, 255, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
_S32 = [0, 1, -1, 2, -2, 100, -100, 2047, 2048, -2048, 3000, 0x7FFFFFFF, -0x80000000]


@dataclass(frozen=True)
class Entry:
    tag: int
    type: int
    count: int
    data: bytes          # the value's bytes as written (may disagree with type and count)


@dataclass(frozen=True)
class Block:
    order: str            # "<" or ">"
    ifd0: tuple[Entry, ...]
    exif: tuple[Entry, ...]
    exif_pointer: str     # "ok", "ifd0" (a loop), "self" (points at itself), "past-end"
    next_ifd: str         # "none", "ifd0" (a loop), "exif", "past-end"
    cut: int | None       # keep only this many bytes of the TIFF block

    def tiff(self) -> bytes:
        return build_tiff(self)


def _values(typ: int, order: str) -> st.SearchStrategy[tuple[int, bytes]]:
    """(count, bytes) of 1-4 values of one field type, extremes favoured."""
    def pack(fmt, vals):
        return len(vals), b"".join(struct.pack(order + fmt, *v) if isinstance(v, tuple) else
                                   struct.pack(order + fmt, v) for v in vals)
    if typ == 2:
        return st.binary(max_size=24).map(lambda b: (len(b), b))
    if typ in (1, 6, 7):
        return st.binary(min_size=1, max_size=8).map(lambda b: (len(b), b))
    if typ == 3:
        return st.lists(st.sampled_from([0, 1, 2, 5, 255, 32767, 32768, 65535]) | st.integers(0, 65535),
                        min_size=1, max_size=4).map(lambda v: pack("H", v))
    if typ == 8:
        return st.lists(st.integers(-32768, 32767), min_size=1, max_size=4).map(lambda v: pack("h", v))
    if typ == 4:
        return st.lists(st.sampled_from(_U32) | st.integers(0, 2**32 - 1), min_size=1, max_size=4).map(
            lambda v: pack("I", v))
    if typ == 9:
        return st.lists(st.sampled_from(_S32) | st.integers(-2**31, 2**31 - 1), min_size=1, max_size=4).map(
            lambda v: pack("i", v))
    if typ == 5:
        part = st.sampled_from(_U32) | st.integers(0, 2**32 - 1)
        return st.lists(st.tuples(part, part), min_size=1, max_size=4).map(lambda v: pack("II", v))
    if typ == 10:
        part = st.sampled_from(_S32) | st.integers(-2**31, 2**31 - 1)
        return st.lists(st.tuples(part, part), min_size=1, max_size=4).map(lambda v: pack("ii", v))
    if typ in (11, 12):
        fmt = "f" if typ == 11 else "d"
        return st.lists(st.floats(width=32 if typ == 11 else 64), min_size=1, max_size=4).map(
            lambda v: pack(fmt, v))
    return st.binary(max_size=12).map(lambda b: (len(b), b))  # an invalid type: any bytes


@st.composite
def entries(draw, order: str, sound: bool = False) -> Entry:
    if sound:  # a tag of the table in its own type (or that type's signed twin), one value
        tag = draw(st.sampled_from(sorted(TAGS)))
        typ = draw(st.sampled_from([TAGS[tag], _TWIN.get(TAGS[tag], TAGS[tag])]))
        count, data = draw(_values(typ, order))
        if typ not in (2, 7):
            unit = _SIZE[typ]
            n = 4 if tag == 0xA432 and len(data) >= 4 * unit else 1
            count, data = n, data[:n * unit]
        return Entry(tag, typ, count, data)
    tag = draw(st.sampled_from(sorted(TAGS)) | st.integers(0, 0xFFFF))
    usual = TAGS.get(tag, 3)
    typ = draw(st.sampled_from([usual] * 6 + list(range(1, 13)) + [0, 13, 0xFFFF]))
    count, data = draw(_values(typ, order))
    wrong = draw(st.sampled_from([None] * 8 + [0, 1, 2, 0xFFFF, 0xFFFFFFFF]) | st.integers(0, 64))
    if wrong is not None:
        count = wrong
    if draw(st.integers(0, 9)) == 0:           # value cut short of what its count says
        data = data[:draw(st.integers(0, len(data)))]
    return Entry(tag, typ, count, data)


@st.composite
def blocks(draw, sound: bool = False) -> Block:
    """EXIF blocks; ``sound``: every entry's type, count and data agree and every offset is
    valid (only the values are extreme), else anything goes."""
    order = draw(st.sampled_from("<>"))
    ifd0 = tuple(draw(st.lists(entries(order, sound), max_size=6, unique_by=_tag if sound else None)))
    exif = tuple(draw(st.lists(entries(order, sound), min_size=1, max_size=14, unique_by=_tag if sound else None)))
    if sound:  # and no tag in both IFDs
        return Block(order, ifd0, tuple(e for e in exif if e.tag not in {f.tag for f in ifd0}), "ok", "none", None)
    pointer = draw(st.sampled_from(["ok"] * 6 + ["ifd0", "self", "past-end"]))
    nxt = draw(st.sampled_from(["none"] * 6 + ["ifd0", "exif", "past-end"]))
    cut = draw(st.none() | st.none() | st.none() | st.integers(0, 400))
    return Block(order, ifd0, exif, pointer, nxt, cut)


def _tag(e: Entry) -> int:
    return e.tag


def _ifd(order: str, entries_: list[tuple[int, int, int, bytes]], at: int, next_at: int) -> bytes:
    """One IFD at offset ``at`` with its out-of-line values right after it."""
    data_at = at + 2 + 12 * len(entries_) + 4
    head, tail = struct.pack(order + "H", len(entries_)), b""
    for tag, typ, count, data in entries_:
        if len(data) <= 4:
            head += struct.pack(order + "HHI", tag, typ, count) + data.ljust(4, b"\0")
        else:
            head += struct.pack(order + "HHII", tag, typ, count, data_at + len(tail))
            tail += data + b"\0" * (len(data) % 2)
    return head + struct.pack(order + "I", next_at) + tail


def _raw(entries_: tuple[Entry, ...]) -> list[tuple[int, int, int, bytes]]:
    return [(e.tag, e.type, e.count, e.data) for e in entries_ if e.tag != 0x8769]


def build_tiff(b: Block) -> bytes:
    o = b.order
    header = (b"II" if o == "<" else b"MM") + struct.pack(o + "HI", 42, 8)
    ifd0_entries = sorted(_raw(b.ifd0) + [(0x8769, 4, 1, b"\0\0\0\0")])
    first = _ifd(o, ifd0_entries, 8, 0)
    exif_at = 8 + len(first)
    exif_ifd = _ifd(o, sorted(_raw(b.exif)), exif_at, 0)
    end = exif_at + len(exif_ifd)
    pointer = {"ok": exif_at, "ifd0": 8, "self": exif_at, "past-end": end + 1000}[b.exif_pointer]
    nxt = {"none": 0, "ifd0": 8, "exif": exif_at, "past-end": end + 5000}[b.next_ifd]
    ifd0_entries = [(t, ty, c, struct.pack(o + "I", pointer) if t == 0x8769 else d) for t, ty, c, d in ifd0_entries]
    first = _ifd(o, ifd0_entries, 8, nxt)
    if b.exif_pointer == "self":  # the Exif IFD names itself as the Exif IFD: a loop one level down
        exif_ifd = _ifd(o, sorted(_raw(b.exif) + [(0x8769, 4, 1, struct.pack(o + "I", exif_at))]), exif_at, 0)
    tiff = header + first + exif_ifd
    return tiff if b.cut is None else tiff[:b.cut]


def jpeg_with_exif(tiff: bytes) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 120, 30)).save(buf, "JPEG")
    jpeg = buf.getvalue()
    app1 = b"Exif\0\0" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]
