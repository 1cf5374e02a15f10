"""Byte-level checks of PNG and TIFF files, for what the decoders get wrong without a word
(`i2i.data.io` decodes; this only reads headers and chunks):

* a PNG whose zlib stream ends early on a row boundary: Pillow fills the missing rows with 0;
* a TIFF's Orientation tag: OpenCV turns the pixels by it itself, where i2i has one rule;
* a TIFF's pages, counted without Pillow parsing each one.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import NamedTuple

from i2i.errors import one_line

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_IN, _INFLATE_OUT = 1 << 16, 1 << 20  # bytes a step when checking a PNG's image data


def png_data_problem(data: bytes) -> str | None:
    """Why a PNG's image data does not hold all the bytes its header's size needs, or None.
    Inflated in small steps and dropped as it comes; data past what is needed is ignored, as
    Pillow and libpng do."""
    header, pieces = b"", []
    for kind, body in png_chunks(data):
        if kind == b"IHDR":
            header = bytes(body)
        elif kind == b"IDAT":
            pieces.append(body)
        elif pieces:
            break  # the image data ends at the first other chunk, as Pillow reads it
    if len(header) < 13:
        return None  # Pillow decoded it without one: nothing to measure against
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(header[9], 1)  # gray, RGB, palette, gray+alpha, RGBA
    expected = _data_size(width, height, samples * header[8], interlaced=header[12] == 1)
    inflater, size = zlib.decompressobj(), 0
    try:
        for piece in pieces:  # in small steps both ways: memory stays flat whatever the chunk sizes
            for start in range(0, len(piece), _INFLATE_IN):
                rest = piece[start:start + _INFLATE_IN]
                while rest and size < expected:
                    size += len(inflater.decompress(rest, _INFLATE_OUT))
                    rest = inflater.unconsumed_tail
        if size < expected:
            size += len(inflater.flush())  # what the last step held back
    except zlib.error as error:
        return f"corrupt PNG data ({one_line(error)})"
    if size < expected:
        return (f"truncated or corrupt PNG data: the image data ends after {size:,} of the "
                f"{expected:,} bytes a {width}x{height} image needs")
    return None


def _data_size(width: int, height: int, bits_per_pixel: int, *, interlaced: bool) -> int:
    """Bytes of a PNG's inflated image data: rows of one filter byte and packed samples (for
    Adam7 interlacing, the rows of each of its seven reduced images that is not empty)."""
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        columns, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if columns > 0 and rows > 0:
            total += rows * (1 + (columns * bits_per_pixel + 7) // 8)
    return total


def png_chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """(type, body) of each chunk, up to IEND or the end of the data (a body may be cut short)."""
    view, position = memoryview(data), len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        yield kind, view[position + 8:position + 8 + length]
        if kind == b"IEND":
            return
        position += 12 + length


def png_chunks_after_pixels(data: bytes) -> bool:
    """Whether a PNG has chunks other than IDAT between its first IDAT and IEND (text, EXIF,
    ... that Pillow reads only when it loads the pixels); True when unsure (no IEND)."""
    pixels_seen = False
    for kind, _ in png_chunks(data):
        if kind == b"IEND":
            return False
        if kind == b"IDAT":
            pixels_seen = True
        elif pixels_seen:
            return True
    return True


class _TiffLayout(NamedTuple):
    """How a TIFF's header says to read it: byte order, and (BigTIFF or not) the sizes of an
    IFD's entry count, of an entry, and of a value or offset field; where its first IFD is."""

    order: str
    count_size: int
    entry_size: int
    field: int
    first_ifd: int


def _tiff_layout(data: bytes) -> _TiffLayout:
    order = "little" if data[:2] == b"II" else "big"
    big = int.from_bytes(data[2:4], order) == 43  # BigTIFF: 8-byte counts, values and offsets
    count_size, entry_size, field = (8, 20, 8) if big else (2, 12, 4)
    return _TiffLayout(order, count_size, entry_size, field, int.from_bytes(data[8:16] if big else data[4:8], order))


def tiff_pages(data: bytes) -> int:
    """How many pages (IFDs) a TIFF holds, following its chain of IFD offsets without parsing
    the pages' tags: milliseconds for a stack of thousands. The count ends at a link that leaves
    the file, loops back, or lands on no IFD (its first tag not one of the three that can come
    first, 254-256, as the tags are sorted and ImageWidth is required); at least 1."""
    order, count_size, entry_size, link_size, ifd = _tiff_layout(data)
    seen: set[int] = set()
    while ifd and ifd not in seen:
        entries = int.from_bytes(data[ifd:ifd + count_size], order)
        link = ifd + count_size + entries * entry_size
        if not entries or link + link_size > len(data) or \
                int.from_bytes(data[ifd + count_size:ifd + count_size + 2], order) not in (254, 255, 256):
            break
        seen.add(ifd)
        ifd = int.from_bytes(data[link:link + link_size], order)
    return max(1, len(seen))


def tiff_upright(data: bytes) -> bytes:
    """The TIFF with its Orientation tag (274) set to 1 (upright), for OpenCV: its TIFF decoder
    turns the pixels by that tag itself, even with IMREAD_UNCHANGED (which cannot be combined
    with IMREAD_IGNORE_ORIENTATION: it is -1, every bit set), and i2i.data.io turns them once
    more. So OpenCV gets the stored pixels and i2i applies its one rule. Other decoders here
    (Pillow; OpenCV for PNG) do not turn pixels. The data as is when the tag is absent or 1."""
    order, count_size, entry_size, field, ifd = _tiff_layout(data)  # field: an entry's count and value
    first = ifd + count_size
    entries = min(int.from_bytes(data[ifd:first], order), max(len(data) - first, 0) // entry_size)
    for entry in range(first, first + entries * entry_size, entry_size):
        if int.from_bytes(data[entry:entry + 2], order) != 274:
            continue
        size = {1: 1, 3: 2, 4: 4, 16: 8}.get(int.from_bytes(data[entry + 2:entry + 4], order))  # BYTE SHORT LONG LONG8
        value = entry + 4 + field
        if size is None or int.from_bytes(data[value:value + size], order) == 1:
            return data
        upright = bytearray(data)
        upright[value:value + field] = (1).to_bytes(size, order).ljust(field, b"\0")
        return bytes(upright)
    return data
