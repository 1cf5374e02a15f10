"""Image files in and out: the only place in i2i that decodes or encodes an image file.

What a reader gets is an `Image`: pixels H x W x C (C = 1 gray or 3 RGB) as uint8 or
uint16, the alpha channel apart (or None), EXIF orientation already applied. Nothing is
lost on the way: 16-bit stays 16-bit, gray stays one channel, alpha is kept, so
`write_image` can restore all three. Colour profiles (ICC) are not applied: pixel values
are taken as stored, and the file's profile travels with them (`Image.icc`), so an output
written with it shows the colours of its input (a Display P3 phone photo stays P3).

Decoders. Pillow, torchvision.io and OpenCV decode at about the same speed (within ~15% for
PNG and ~35% for JPEG, far below a network's step; benchmarks/README.md), so correctness
decides. Pillow decodes
every 8-bit file and 16-bit gray: one library, one code path for every PNG/TIFF mode,
palettes with transparency, 1/2/4-bit samples, Adobe-inverted CMYK JPEG, EXIF, and a
clear error for truncated data (ImageFile.LOAD_TRUNCATED_IMAGES stays False).
torchvision.io's image decoders are deprecated since 0.29 (moving to TorchCodec), so i2i
does not build on them. Pillow still reduces 16-bit *colour* PNG and TIFF to 8 bits, so
those (and 16-bit gray+alpha) go to OpenCV's decoder (`cv2`, opencv-python-headless)
after Pillow has read the header and checked the file. The orientation is turned once, by
i2i's own rule (`_orientation`): OpenCV, which would turn a TIFF by its tag, gets the tag as 1.
A PNG whose image data ends early on a row boundary, which Pillow fills with black rows
without a word, is refused (`_png_may_lack_rows`).

Writers: Pillow for 8-bit files; small zlib encoders here for 16-bit PNG and TIFF (every
channel layout exact, since Pillow cannot write 16-bit colour; no extra dependency).
"""
from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import stat
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, NamedTuple

import numpy as np
import PIL.features
import PIL.Image
import torch

from i2i.atomic import atomic_path, write_bytes, write_errors
from i2i.data import file_formats
from i2i.errors import I2IError, ImageReadError, UsageError, one_line

#: AVIF, the web's newer photo format, where this Pillow was built with libavif (its wheels are)
AVIF = PIL.features.check("avif")
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"} | ({".avif"} if AVIF else set())
)
NO_ALPHA_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".bmp"})  # written without the alpha

# Images wider x higher than this are refused from the header, before any pixel is
# decoded (a small file can claim to be 100000 x 100000). It is Pillow's own hard limit
# (2 x PIL.Image.MAX_IMAGE_PIXELS, about 13400 x 13400). Raise it per call with
# `max_pixels=`, or for a whole run with the environment variable I2I_MAX_PIXELS.
DEFAULT_MAX_PIXELS: int = 178_956_970
MAX_PIXELS_ENV = "I2I_MAX_PIXELS"

_PIL_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF") + (("AVIF",) if AVIF else ())
_FORMAT_NAMES = "PNG, JPEG, WebP, BMP, TIFF" + (", AVIF" if AVIF else "")
_EXIF_ORIENTATION = 0x0112

# Our own limit replaces Pillow's warning (which fires at half of Pillow's limit and
# would print a line per large photo); Pillow's hard error stays, and is raised below
# only when a caller asks for a larger `max_pixels`.
warnings.filterwarnings("ignore", category=PIL.Image.DecompressionBombWarning)
# A damaged EXIF block (or TIFF tag) makes Pillow warn in two lines that name no file
# ("Corrupt EXIF data. Expecting to read 12 bytes but only got 7."); the tags it could
# read are used and the image decodes as usual, so the note is noise. Every warning of
# this Pillow module is such a note. A filter, not warnings.catch_warnings: that one
# swaps the process-wide filter list and is not safe in threads (i2i serve decodes in a
# thread pool, translate reads ahead in threads).
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")


@dataclass
class Image:
    """A decoded image: what the file held, ready to be written back the same way."""

    pixels: np.ndarray  # H x W x C, C = 1 (gray) or 3 (RGB), uint8 or uint16; no alpha
    alpha: np.ndarray | None  # H x W, same dtype as pixels, or None
    path: Path | None = None
    icc: bytes | None = None  # the file's ICC colour profile, as stored; see `fitting_icc`
    exif: bytes | None = None  # the file's EXIF block (JPEG, PNG, WebP, AVIF), as stored; see `upright_exif`
    frames: int = 1  # frames or pages the file holds (animated WebP/AVIF, multi-page TIFF): the first is read

    @property
    def bit_depth(self) -> int:
        return bit_depth(self.pixels)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL reports it."""
        return self.pixels.shape[1], self.pixels.shape[0]


def bit_depth(pixels: np.ndarray) -> int:
    """16 for uint16 pixels, else 8: the depth `from_tensor` gives them back at, so an output
    keeps its input's depth (one rule for files, arrays and alphas)."""
    return 16 if pixels.dtype == np.uint16 else 8


class _Problem(Exception):
    """Internal: what is wrong with the file; read_image adds the file name."""


# ----------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> Image:
    """Decode one image file; any problem with the file is an ImageReadError (one line).

    `max_pixels` (default: $I2I_MAX_PIXELS or DEFAULT_MAX_PIXELS) refuses images whose
    header claims more pixels, before decoding them.
    """
    path = Path(path)
    try:
        data = _read_bytes(path)
    except _Problem as problem:
        raise _read_error(path, str(problem)) from None
    return decode_bytes(data, path=path, max_pixels=max_pixels)


def decode_bytes(data: bytes, *, path: Path | None = None, max_pixels: int | None = None) -> Image:
    """Decode an encoded image held in memory, as read_image does with a file's bytes.

    `path` only names the source in errors and in the result.
    """
    limit = _max_pixels(max_pixels)
    try:
        image = _decode(data, limit)
    except _Problem as problem:
        raise _read_error(path, str(problem)) from None
    image.path = path
    return image


_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N"})


class Header(NamedTuple):
    """What a file's header says: its size as Pillow reports it, and the channels `read_image`
    gives it (1: gray, alpha or not; 3: colour)."""

    width: int
    height: int
    channels: int


def read_header(path: str | os.PathLike) -> Header | None:
    """The file's `Header`, from its first bytes alone (cheap, for a whole folder), by the
    decoder's own rules (a 16-bit gray+alpha PNG, which Pillow calls RGBA, is gray); None when
    the header cannot be read, or the path is no regular file (opening a pipe would block)."""
    try:
        if not Path(path).is_file():
            return None
        with open(path, "rb") as file:
            head = file.read(32)
            file.seek(0)
            with PIL.Image.open(file, formats=_PIL_FORMATS) as pil:
                layout = _sixteen_bit_layout(pil, head)
                gray = layout == "gray" if layout else pil.mode in _GRAY_MODES
                return Header(pil.width, pil.height, 1 if gray else 3)
    except Exception:  # a bad file: reading it later names the problem
        return None


def _decode(data: bytes, max_pixels: int) -> Image:
    """The file's first frame, upright, with its profile and EXIF; raises _Problem for a bad file."""
    if not data:
        raise _Problem("empty file (0 bytes)")
    pil = _open_pil(data, max_pixels)
    with pil:
        layout = _sixteen_bit_layout(pil, data) or _plain_png_layout(pil, data)
        if layout is not None:
            _verify_pil(data)
            pixels, alpha = _decode_cv2(file_formats.tiff_upright(data) if pil.format == "TIFF" else data,
                                        gray=layout == "gray")
            if pixels.shape[:2] != _stored_size(pil):
                raise _Problem(f"corrupt {pil.format} data (header and pixel data disagree on the size)")
            if alpha is not None and pil.format == "TIFF":
                pixels, alpha = _tiff_alpha(pil, pixels, alpha)
            orientation = _orientation(pil, unloaded=data)
        else:
            try:
                pil.load()
            except Exception as error:  # every decoder error becomes one line
                raise _decoder_problem(error, data, "data") from None
            if pil.format == "PNG" and _png_may_lack_rows(pil):
                problem = file_formats.png_data_problem(data)
                if problem:
                    raise _Problem(problem)
            pixels, alpha = _pil_to_arrays(pil)
            orientation = _orientation(pil)
        icc = pil.info.get("icc_profile") or None
        exif = pil.info.get("exif") if pil.format != "TIFF" else None  # a TIFF's tags are no EXIF block
        frames = _frames(pil, data)
    pixels = _apply_orientation(pixels, orientation)
    if alpha is not None:
        alpha = _apply_orientation(alpha, orientation)
    return Image(pixels, alpha, icc=fitting_icc(icc, pixels.shape[2]),
                 exif=exif if isinstance(exif, bytes) and exif else None, frames=frames)


def _frames(pil: PIL.Image.Image, data: bytes) -> int:
    """How many frames or pages the file holds. A TIFF's pages are counted along its chain of
    page offsets (`file_formats.tiff_pages`), not by Pillow's n_frames, which parses every page's
    tags (seconds for a 10,000-page stack, on every read) and raises for a damaged later page. A
    JPEG's Multi-Picture index (what Canon, Sony and Panasonic cameras add: a large preview, which
    Pillow opens as MPO) is one photo, not frames. 1 where counting fails."""
    if pil.format == "MPO":
        return 1
    if pil.format == "TIFF":
        return file_formats.tiff_pages(data) if getattr(pil, "is_animated", False) else 1
    try:
        return max(1, int(getattr(pil, "n_frames", 1) or 1))
    except Exception:
        return 1


#: an ICC profile's data colour space (header bytes 16-19) for the pixels it can describe
_ICC_SPACES = {b"GRAY": 1, b"RGB ": 3}


def fitting_icc(icc: bytes | None, channels: int) -> bytes | None:
    """`icc` if it is a profile for pixels of this many channels (a gray profile for gray, an
    RGB one for colour), else None: a colorized output drops its input's gray profile, and a
    CMYK JPEG's profile does not describe the RGB pixels it is read as."""
    if not icc or len(icc) < 128 or _ICC_SPACES.get(bytes(icc[16:20])) != channels:
        return None
    return bytes(icc)


_EXIF_IFD, _PIXEL_X, _PIXEL_Y = 0x8769, 0xA002, 0xA003  # the Exif sub-IFD and its image size tags


def upright_exif(exif: bytes | None, width: int, height: int) -> bytes | None:
    """An input's EXIF block made true of an output of `width` x `height` whose pixels are
    already upright: the orientation set to 1 (or an output would be turned twice), the
    pixel size tags updated, the thumbnail dropped (Pillow does not write IFD1); the date,
    camera and GPS tags kept. None for a block Pillow cannot parse."""
    if not exif:
        return None
    try:
        tags = PIL.Image.Exif()
        tags.load(exif)
        if _EXIF_ORIENTATION in tags:
            tags[_EXIF_ORIENTATION] = 1
        sub = tags.get_ifd(_EXIF_IFD)
        for tag, value in ((_PIXEL_X, width), (_PIXEL_Y, height)):
            if tag in sub:
                sub[tag] = value
        return tags.tobytes()
    except Exception:  # a damaged block: the output goes without it
        return None


def check_environment() -> None:
    """Refuse a bad $I2I_MAX_PIXELS in one line (UsageError). The CLI calls this once at start:
    without it, every image read would fail on the setting, one line per image."""
    max_pixels_limit()


def max_pixels_limit() -> int:
    """The pixel limit of a run: $I2I_MAX_PIXELS (digits, `_` allowed; empty counts as unset) or
    DEFAULT_MAX_PIXELS. Anything but a whole number above 0 is a UsageError: 0 or less would
    refuse every image, each as if the file were at fault."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value.replace("_", ""))
    except ValueError:
        limit = 0
    if limit <= 0:
        raise UsageError(f"{MAX_PIXELS_ENV}={value!r} is not a whole number of pixels above 0 "
                         f"(e.g. {MAX_PIXELS_ENV}=400000000, or unset it for {DEFAULT_MAX_PIXELS:,})")
    return limit


def _max_pixels(max_pixels: int | None) -> int:
    """The caller's limit, or the run's; a setting error is raised as itself, never as the
    file's (decode_bytes calls this outside its per-file error handling)."""
    if max_pixels is None:
        return max_pixels_limit()
    if int(max_pixels) <= 0:
        raise UsageError(f"max_pixels must be a whole number above 0, not {max_pixels!r}")
    return int(max_pixels)


_NOT_A_FILE = "not a regular file (a pipe, socket or device), not an image file"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes. A pipe, socket or device (a link to one included) is refused before
    it is read: a FIFO without a writer would block forever, /dev/zero would never end."""
    try:
        # O_NONBLOCK: a FIFO opens at once (for a regular file it changes nothing)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(fd, "rb") as file:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError
            if not stat.S_ISREG(mode):
                raise _Problem(_NOT_A_FILE)
            return file.read()
    except FileNotFoundError:
        raise _Problem("no such file") from None
    except IsADirectoryError:
        raise _Problem("is a folder, not an image file") from None
    except PermissionError:
        raise _Problem("permission denied (cannot read the file)") from None
    except OSError as error:
        if error.errno == errno.ENXIO:  # what opening a socket gives
            raise _Problem(_NOT_A_FILE) from None
        raise _Problem(f"cannot read the file: {error.strerror or error}") from None


def _open_pil(data: bytes, max_pixels: int) -> PIL.Image.Image:
    """Open the header only, and refuse oversized images before any decoding."""
    # Pillow refuses above 2 x MAX_IMAGE_PIXELS on its own; let a caller's larger limit
    # through (only ever raised, never lowered, so concurrent readers are safe).
    pil_limit = PIL.Image.MAX_IMAGE_PIXELS
    if pil_limit is not None and max_pixels > 2 * pil_limit:
        PIL.Image.MAX_IMAGE_PIXELS = max_pixels // 2 + 1
    try:
        pil = PIL.Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    except PIL.UnidentifiedImageError:
        kind = _sniff(data)
        if kind in _PIL_FORMATS or kind == "WebP":  # Pillow says "cannot identify" for a damaged header too
            raise _Problem(f"corrupt {kind} file (its header cannot be parsed)") from None
        if kind is not None:
            raise _Problem(f"an image in {kind} format, which i2i does not read (it reads {_FORMAT_NAMES}): "
                           "convert it to PNG or JPEG first") from None
        raise _Problem(f"not an image (or not a format i2i reads: {_FORMAT_NAMES})") from None
    except PIL.Image.DecompressionBombError:
        raise _Problem(f"image too large (over {max_pixels:,} pixels); {_how_to_raise()}") from None
    except Exception as error:
        raise _decoder_problem(error, data, "header") from None
    width, height = pil.size
    if width * height > max_pixels:
        pil.close()
        raise _Problem(
            f"image too large: {width}x{height} = {width * height:,} pixels, over the "
            f"limit of {max_pixels:,} (a guard against decompression bombs); {_how_to_raise()}"
        )
    if width <= 0 or height <= 0:
        pil.close()
        raise _Problem(f"invalid image size {width}x{height}")
    return pil


#: ISO-BMFF brands (bytes 8-12 of the `ftyp` box) of HEIF files: what iPhones save (.heic)
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


def _sniff(data: bytes) -> str | None:
    """The format a file's first bytes announce, to tell "damaged" from "not an image", and
    an image in a format i2i does not read (HEIC, GIF, ...) from "not an image"."""
    if data.startswith(file_formats.PNG_SIGNATURE):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WebP"
    if data.startswith((b"II*\0", b"MM\0*")):
        return "TIFF"
    if data.startswith(b"BM") and len(data) >= 26:
        return "BMP"
    if data[4:8] == b"ftyp":
        return _heif_kind(data)
    for signature, kind in ((b"GIF8", "GIF"), (b"8BPS", "Photoshop (PSD)"), (b"\xff\x0a", "JPEG XL"),
                            (b"\0\0\0\x0cJXL ", "JPEG XL"), (b"\0\0\0\x0cjP  ", "JPEG 2000")):
        if data.startswith(signature):
            return kind
    return None


def _heif_kind(data: bytes) -> str | None:
    """"AVIF" or "HEIC" for an ISO-BMFF image file, by its major brand or, for the generic
    mif1/msf1 that both may carry as major brand, by the compatible brands of its ftyp box:
    a damaged AVIF so marked is told as a damaged AVIF, not as a HEIC i2i does not read."""
    major, box_size = data[8:12], int.from_bytes(data[:4], "big")
    compatible = {data[i:i + 4] for i in range(16, min(box_size, len(data), 1024) - 3, 4)}
    if major in (b"avif", b"avis") or major in (b"mif1", b"msf1") and compatible & {b"avif", b"avis"}:
        return "AVIF"
    return "HEIC" if major in _HEIF_BRANDS else None


def _how_to_raise() -> str:
    return f"if you trust the file, raise the limit with {MAX_PIXELS_ENV}=N or read_image(max_pixels=N)"


def _sixteen_bit_layout(pil: PIL.Image.Image, data: bytes) -> str | None:
    """"gray" or "colour" for 16-bit files that Pillow would reduce to 8 bits (colour,
    or gray + alpha); None for everything Pillow decodes as stored."""
    if pil.format == "PNG" and data.startswith(file_formats.PNG_SIGNATURE):
        bit_depth, colour_type = data[24], data[25]  # IHDR fields right after the signature
        if bit_depth == 16 and colour_type in (2, 4, 6):  # RGB, gray+alpha, RGBA
            return "gray" if colour_type == 4 else "colour"
        return None
    if pil.format == "TIFF":
        try:
            bits = pil.tag_v2.get(258, (1,))  # BitsPerSample
            bits = max(bits) if isinstance(bits, tuple) else int(bits)
            samples = int(pil.tag_v2.get(277, 1))  # SamplesPerPixel
            photometric = int(pil.tag_v2.get(262, 1))  # 1 gray, 2 RGB
        except Exception:  # a broken tag: let Pillow report it while decoding
            return None
        # 16-bit RGB(A) or gray + alpha; other 16-bit layouts (e.g. CMYK) go to Pillow
        if bits == 16 and samples > 1 and photometric in (1, 2):
            return "colour" if photometric == 2 else "gray"
    return None


def _stored_size(pil: PIL.Image.Image) -> tuple[int, int]:
    """(height, width) of the pixels as the file stores them: for a TIFF whose Orientation tag
    is 5-8, Pillow reports the size of the upright image (width and height swapped)."""
    if pil.format == "TIFF":
        return int(pil.tag_v2.get(257, pil.height)), int(pil.tag_v2.get(256, pil.width))  # ImageLength, ImageWidth
    return pil.height, pil.width


_EXTRA_SAMPLES, _UNSPECIFIED, _ASSOCIATED = 338, 0, 1  # a TIFF's ExtraSamples tag and two of its values


def _tiff_alpha(pil: PIL.Image.Image, pixels: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A 16-bit TIFF's extra channel (OpenCV hands it over raw) taken as Pillow takes an 8-bit
    one's, so a file means the same at both depths: unspecified (0; Photoshop's saved selection)
    is no transparency and is dropped; associated alpha (1: colour stored premultiplied) gives
    straight colour, what i2i's alpha means and what its writers mark (else half-transparent
    parts would come out darker)."""
    try:
        extra = pil.tag_v2.get(_EXTRA_SAMPLES, (2,))
        kind = int(extra[0] if isinstance(extra, tuple) else extra)
    except Exception:  # a broken tag: the channel stays alpha, as before
        return pixels, alpha
    if kind == _UNSPECIFIED:
        return pixels, None
    if kind == _ASSOCIATED:
        return _unpremultiply(pixels, alpha), alpha
    return pixels, alpha


def _unpremultiply(pixels: np.ndarray, alpha: np.ndarray, band: int = 256) -> np.ndarray:
    """Premultiplied colour back to straight colour (rounded; 0 where alpha is 0), a band of rows
    at a time so the float copies of a huge image stay small."""
    top = float(np.iinfo(pixels.dtype).max)
    out = np.empty_like(pixels)
    for start in range(0, len(pixels), band):
        rows = slice(start, start + band)
        a = alpha[rows, :, None].astype(np.float64)
        straight = np.rint(pixels[rows] * (top / np.maximum(a, 1.0)))
        out[rows] = np.where(a > 0, np.clip(straight, 0, top), 0)
    return out


def _plain_png_layout(pil: PIL.Image.Image, data: bytes) -> str | None:
    """"gray" or "colour" for 8-bit gray, RGB and RGBA PNGs without a tRNS colour key, which
    OpenCV decodes straight into the array (Pillow holds RGB as 4 bytes a pixel and copies it
    twice more on the way to numpy: 3.3x the memory of the pixels for a huge image). Without
    OpenCV (an SR-only install may lack it) Pillow decodes them."""
    if pil.format != "PNG" or not data.startswith(file_formats.PNG_SIGNATURE) or "transparency" in pil.info:
        return None
    if _opencv() is None:
        return None
    bit_depth, colour_type = data[24], data[25]
    if bit_depth == 8 and colour_type in (0, 2, 6):
        return "gray" if colour_type == 0 else "colour"
    return None


def _verify_pil(data: bytes) -> None:
    """For PNG, check chunk lengths and CRCs (cheap, no inflating): catches truncated and
    damaged files before OpenCV, whose libpng would print its own error lines."""
    try:
        with PIL.Image.open(io.BytesIO(data), formats=_PIL_FORMATS) as pil:
            pil.verify()
    except Exception as error:
        raise _decoder_problem(error, data, "data") from None


def _png_may_lack_rows(pil: PIL.Image.Image) -> bool:
    """Whether a PNG that Pillow decoded may miss rows. Pillow takes a zlib stream that ends
    early (on a row boundary) for the end of the image, and leaves the rows it did not get 0
    (its new images are zeroed) without a word. It decodes rows top to bottom, so a last row
    that is not all 0 was decoded and so were all the others; interlaced rows come in 7 passes.
    This spares most images `file_formats.png_data_problem`, which costs 50-70% of a decode."""
    if pil.info.get("interlace"):
        return True
    return not np.asarray(pil.crop((0, pil.height - 1, pil.width, pil.height))).any()


@functools.cache
def _opencv():  # -> the cv2 module, or None
    """OpenCV, or None when it is not installed (an SR-only install may lack it). Its log is set to
    fatal errors only (unless $OPENCV_LOG_LEVEL says otherwise, for the whole process): a damaged
    TIFF would print OpenCV's and libtiff's lines before i2i's own one line naming the file."""
    try:
        import cv2
    except ImportError:
        return None
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None and "OPENCV_LOG_LEVEL" not in os.environ:
        logging.setLogLevel(logging.LOG_LEVEL_FATAL)
    return cv2


def _decode_cv2(data: bytes, *, gray: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit colour PNG/TIFF, which Pillow cannot keep at 16 bits, and plain 8-bit PNG."""
    cv2 = _opencv()
    if cv2 is None:
        raise _Problem("16-bit colour images need OpenCV: pip install opencv-python-headless")
    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except Exception as error:
        raise _decoder_problem(error, data, "data") from None
    if decoded is None or decoded.size == 0 or decoded.dtype not in (np.uint8, np.uint16):
        raise _Problem("corrupt or truncated image data (OpenCV could not decode it)")
    if decoded.ndim == 2:
        return decoded[..., None], None
    channels = decoded.shape[2]
    if channels == 2:  # gray + alpha
        return np.ascontiguousarray(decoded[..., :1]), np.ascontiguousarray(decoded[..., 1])
    if channels == 3:  # BGR -> RGB in place: no second copy
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB, dst=decoded), None
    alpha = np.ascontiguousarray(decoded[..., 3]) if channels == 4 else None
    if gray:  # OpenCV expands gray+alpha to BGRA with B = G = R
        return np.ascontiguousarray(decoded[..., :1]), alpha
    return np.ascontiguousarray(decoded[..., 2::-1]), alpha  # BGR -> RGB


def pil_to_arrays(pil: PIL.Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """An in-memory PIL image -> (H x W x C uint8/uint16 pixels, alpha or None), taken as
    `read_image` takes a decoded file (modes, transparency, 16-bit gray) but not turned by
    its EXIF orientation. An unsupported mode is a one-line UsageError; a lazily opened file
    whose pixels cannot be decoded (truncated, corrupt) an ImageReadError naming the file."""
    try:
        pil.load()  # Image.open decodes nothing until the pixels are asked for
    except Exception as error:
        filename = getattr(pil, "filename", "")
        problem = _decoder_problem(error, b"", "data", kind=pil.format)
        if filename:
            raise _read_error(Path(filename), str(problem)) from None
        raise ImageReadError(f"PIL image: {problem}") from None
    try:
        return _pil_to_arrays(pil)
    except _Problem as problem:
        raise UsageError(f"PIL image: {problem}") from None


def _pil_to_arrays(pil: PIL.Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """A loaded PIL image -> (HxWxC uint8/uint16 pixels, alpha or None), copies we own."""
    mode = pil.mode
    transparency = pil.info.get("transparency")
    try:
        if mode.startswith("I"):  # 16-bit gray (I;16, big-endian I;16B, ...) or 32-bit
            values = np.asarray(pil)
            if values.dtype.itemsize > 2 or values.dtype.kind == "i":
                if values.size and (values.min() < 0 or values.max() > 65535):
                    raise _Problem(f"integer samples outside 0..65535 are not supported (mode {mode})")
            gray = values.astype(np.uint16)
            alpha = None
            if isinstance(transparency, int):  # tRNS: one gray value is transparent
                alpha = np.where(gray == transparency, 0, 65535).astype(np.uint16)
            return gray[..., None], alpha
        if mode == "F":
            raise _Problem("floating-point samples are not supported (convert to 8 or 16 bits)")
        if mode in ("1", "L") and transparency is None:
            return np.array(pil.convert("L"))[..., None], None
        if mode == "RGB" and transparency is None:
            return np.array(pil), None
        if mode in ("L", "LA", "La"):
            with_alpha = np.asarray(pil.convert("LA"))
            return np.ascontiguousarray(with_alpha[..., :1]), np.ascontiguousarray(with_alpha[..., 1])
        has_alpha = transparency is not None or mode in ("RGBA", "RGBa", "PA")
        if mode == "P" and not has_alpha:
            return np.array(pil.convert("RGB")), None
        if has_alpha:
            rgba = np.asarray(pil.convert("RGBA"))
            return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
        return np.array(pil.convert("RGB")), None  # CMYK (Adobe-inverted too), YCbCr, RGBX
    except _Problem:
        raise
    except Exception as error:
        raise _Problem(f"unsupported colour mode {mode} ({one_line(error)})") from None


def _orientation(pil: PIL.Image.Image, unloaded: bytes | None = None) -> int:
    """EXIF orientation 1..8; a missing or broken EXIF block counts as 1 (upright).

    `unloaded`: the file's bytes when Pillow has read only the header (OpenCV decoded
    the pixels). Pillow's PNG getexif() then decodes the whole image again when no eXIf
    chunk precedes the pixel data, only to read the chunks that follow them; when just
    pixel data follows (the usual case), pil.info already holds all it would find.
    """
    try:
        if unloaded is not None and pil.format == "PNG" and not file_formats.png_chunks_after_pixels(unloaded):
            exif = PIL.Image.Image.getexif(pil)  # the EXIF/XMP of pil.info, no decoding
        else:
            exif = pil.getexif()
        value = int(exif.get(_EXIF_ORIENTATION, 1))
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn the stored pixels upright, as ImageOps.exif_transpose does (H, W first)."""
    if orientation == 1:
        return array
    if orientation == 2:
        array = array[:, ::-1]  # mirrored left-right
    elif orientation == 3:
        array = array[::-1, ::-1]  # rotated 180
    elif orientation == 4:
        array = array[::-1]  # mirrored top-bottom
    elif orientation == 5:
        array = array.swapaxes(0, 1)  # transpose
    elif orientation == 6:
        array = np.rot90(array, -1)  # rotated 90 clockwise to be upright
    elif orientation == 7:
        array = array.swapaxes(0, 1)[::-1, ::-1]  # transverse
    elif orientation == 8:
        array = np.rot90(array, 1)  # rotated 90 counter-clockwise to be upright
    return np.ascontiguousarray(array)


def _decoder_problem(error: BaseException, data: bytes, part: str, *, kind: str | None = None) -> _Problem:
    """A decoder's exception as a short phrase: truncated, or corrupt <format> <part>
    (`kind`: the format when known, else sniffed from `data`)."""
    text = one_line(error)
    lowered = text.lower()
    if isinstance(error, EOFError) or "truncated" in lowered or "incomplete" in lowered:
        return _Problem("truncated file (image data ends early)")
    return _Problem(f"corrupt {kind or _sniff(data) or 'image'} {part} ({text})")


def shown_path(path: str | os.PathLike) -> str:
    """A path as i2i's one-line messages write it: a line break in a name shown as \\n."""
    return str(path).replace("\r", "\\r").replace("\n", "\\n")


def file_problem(path: str | os.PathLike, error: BaseException) -> str:
    """'path: problem' on one line naming the file once, for the lists of bad files (translate,
    inspect, derive). The reader's errors begin with the path as `shown_path` writes it; only
    the rest is folded (one_line would also fold two spaces in a name and name it twice)."""
    shown, raw = shown_path(path), str(error)
    if raw.startswith(f"{shown}: "):
        return f"{shown}: {one_line(raw[len(shown) + 2:])}"
    text = one_line(error, typed=not isinstance(error, I2IError))
    return text if shown in text else f"{shown}: {text}"


def _read_error(path: Path | None, problem: str) -> ImageReadError:
    name = "(image bytes)" if path is None else shown_path(path)
    error = ImageReadError(f"{name}: {' '.join(problem.split())}")
    error.path = path  # for callers that list bad files
    return error


# ----------------------------------------------------------------------------- writing


def write_image(
    path: str | os.PathLike,
    pixels: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    quality: int = 95,
    icc: bytes | None = None,
    exif: bytes | None = None,
) -> None:
    """Write an image atomically; the format follows the extension.

    `pixels`: H x W, H x W x 1 (gray) or H x W x 3 (RGB), uint8 or uint16 (H x W x 2 / x 4
    are taken as gray/RGB + alpha when `alpha` is None). Depth: uint16 is kept in PNG and
    TIFF and rounded to 8 bits for JPEG, WebP and BMP. Alpha: kept in PNG, WebP and TIFF,
    dropped for JPEG and BMP (they cannot hold it). WebP has no gray: gray is stored as
    RGB; 16-bit gray+alpha TIFF and gray+alpha AVIF are stored as RGBA (Pillow cannot read the
    former, AVIF has no such layout). AVIF (where Pillow has it) is 8-bit, as WebP.
    `quality` (1-100) is for JPEG (>= 90 also keeps full colour resolution, 4:4:4) and
    WebP (100 = lossless). `icc`: an ICC colour profile (e.g. the input's `Image.icc`),
    embedded in PNG, JPEG, WebP, AVIF and TIFF when it fits the channels written (`fitting_icc`).
    `exif`: an input's EXIF block (`Image.exif`), written true of this image (`upright_exif`)
    into PNG, JPEG, WebP and AVIF files.

    The file appears complete or not at all: it is written to a temporary file in the
    same folder, then renamed over `path`; on any failure the temporary file is removed
    and an existing `path` is left untouched. Parent folders are created.
    """
    path = Path(path)
    extension = path.suffix.lower()
    if extension not in IMAGE_EXTENSIONS:
        raise I2IError(
            f"{path}: cannot write images with extension {extension or '(none)'!r}; "
            f"use one of {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    pixels, alpha = _check_arrays(pixels, alpha)
    exif = upright_exif(exif, pixels.shape[1], pixels.shape[0])
    if extension == ".png":  # streamed straight into the file: no second copy of a huge image
        with write_errors(path), atomic_path(path) as tmp, open(tmp, "wb") as file:
            write_png(file, pixels, alpha, icc=icc, exif=exif)
        return
    try:
        data = _encode(extension, pixels, alpha, quality, icc, exif)
    except I2IError:
        raise
    except Exception as error:  # e.g. WebP is limited to 16383 x 16383
        raise I2IError(f"{path}: cannot encode as {extension[1:].upper()} ({one_line(error)})") from None
    write_bytes(path, data)


def encode_image(extension: str, pixels: np.ndarray, alpha: np.ndarray | None = None, *, quality: int = 95,
                 icc: bytes | None = None, exif: bytes | None = None) -> bytes:
    """The bytes `write_image` writes for a file with this extension (e.g. for an HTTP reply)."""
    pixels, alpha = _check_arrays(pixels, alpha)
    return _encode(extension.lower(), pixels, alpha, quality, icc, upright_exif(exif, pixels.shape[1], pixels.shape[0]))


def native_byte_order(array: np.ndarray) -> np.ndarray:
    """The array in this machine's byte order: a big-endian uint16 ('>u2', as FITS or
    np.frombuffer of a PNG's bytes give) holds the same values, but is not np.uint16."""
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _check_arrays(pixels: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate and normalise to (HxWxC with C in 1/3, alpha HxW of the same dtype)."""
    pixels = native_byte_order(np.asarray(pixels))
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"pixels must be uint8 or uint16, not {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4) or 0 in pixels.shape:
        raise ValueError(f"pixels must be H x W x C with C in 1..4, not shape {pixels.shape}")
    if pixels.shape[2] in (2, 4):
        if alpha is not None:
            raise ValueError("pixels already hold an alpha channel and alpha= was given too")
        pixels, alpha = pixels[..., :-1], pixels[..., -1]
    if alpha is not None:
        alpha = native_byte_order(np.asarray(alpha))
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[..., 0]
        if alpha.shape != pixels.shape[:2]:
            raise ValueError(f"alpha must be H x W = {pixels.shape[:2]}, not {alpha.shape}")
        alpha = to_dtype(alpha, pixels.dtype)
    return np.ascontiguousarray(pixels), None if alpha is None else np.ascontiguousarray(alpha)


def to_dtype(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """uint8 <-> uint16 with exact scaling (x 257) and rounding."""
    array = native_byte_order(array)
    if array.dtype == dtype:
        return array
    if dtype == np.uint16 and array.dtype == np.uint8:
        return array.astype(np.uint16) * 257
    if dtype == np.uint8 and array.dtype == np.uint16:
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)  # = round(x / 257)
    raise ValueError(f"alpha must be uint8 or uint16, not {array.dtype}")


def _encode(extension: str, pixels: np.ndarray, alpha: np.ndarray | None, quality: int,
            icc: bytes | None = None, exif: bytes | None = None) -> bytes:
    """`exif`: already made true of these pixels (`upright_exif`)."""
    sixteen = pixels.dtype == np.uint16
    if extension == ".png":
        return encode_png(pixels, alpha, icc=icc, exif=exif)
    if extension in (".tif", ".tiff") and sixteen:
        if alpha is not None and pixels.shape[2] == 1:  # Pillow cannot open 16-bit gray+alpha TIFF
            pixels = np.repeat(pixels, 3, axis=2)
        return encode_tiff16(pixels if alpha is None else np.dstack([pixels, alpha]),
                             icc=fitting_icc(icc, pixels.shape[2]))
    if extension in NO_ALPHA_EXTENSIONS:
        alpha = None
    if sixteen:  # formats without 16-bit samples
        pixels = to_dtype(pixels, np.uint8)
    if alpha is not None:
        alpha = to_dtype(alpha, pixels.dtype)
        if extension == ".avif" and pixels.shape[2] == 1:  # AVIF has no gray+alpha: Pillow would store RGBA
            pixels = np.repeat(pixels, 3, axis=2)
    pil = _to_pil(pixels, alpha)
    metadata = {"icc_profile": icc} if (icc := fitting_icc(icc, 3 if extension == ".webp" else pixels.shape[2])) else {}
    if exif and (extension in (".webp", ".avif") or extension in (".jpg", ".jpeg") and len(exif) <= _JPEG_MAX_EXIF):
        metadata["exif"] = exif
    buffer = io.BytesIO()
    if extension in (".jpg", ".jpeg"):
        pil.save(buffer, "JPEG", quality=quality, subsampling="4:4:4" if quality >= 90 else "4:2:0", **metadata)
    elif extension == ".webp":  # gray is stored as RGB: only an RGB profile fits
        pil.save(buffer, "WEBP", quality=quality, lossless=quality >= 100, **metadata)
    elif extension == ".bmp":  # Pillow writes no profile into a BMP
        pil.save(buffer, "BMP")
    elif extension == ".avif":
        pil.save(buffer, "AVIF", quality=quality, **metadata)
    else:
        pil.save(buffer, "TIFF", compression="tiff_adobe_deflate", **metadata)
    return buffer.getvalue()


_JPEG_MAX_EXIF = 65533  # what one APP1 segment holds; Pillow refuses a longer block


def _to_pil(pixels: np.ndarray, alpha: np.ndarray | None) -> PIL.Image.Image:
    if alpha is None:
        return PIL.Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    return PIL.Image.fromarray(np.dstack([pixels, alpha]))  # LA or RGBA


def write_png(file: BinaryIO, pixels: np.ndarray, alpha: np.ndarray | None = None, *, band: int = 256,
              icc: bytes | None = None, exif: bytes | None = None) -> None:
    """PNG (gray, gray+alpha, RGB or RGBA; 8 or 16 bits as the dtype) written to `file` a band
    of rows at a time, so a huge image never exists a second time in memory (Pillow copies it
    and then holds the whole compressed file). `alpha`, of the pixels' dtype, is interleaved band
    by band. `icc`: a colour profile, kept when it fits (`fitting_icc`); `exif`: an EXIF block,
    written as it is."""
    height, width, channels = pixels.shape
    png = PngWriter(file, height, width, channels + (alpha is not None), pixels.dtype, band=band, icc=icc,
                    exif=exif)
    for top in range(0, height, band):
        rows = pixels[top:top + band]
        png.write(rows if alpha is None else np.dstack([rows, alpha[top:top + band]]))
    png.close()


class PngWriter:
    """A PNG written as its rows arrive, top to bottom: what lets a translated huge image go to
    its file a band at a time (`stream_png`) instead of existing whole in memory.

    Our own encoder because Pillow cannot write 16-bit colour and needs the whole image: the
    "Sub" row filter (vectorised; on the Set14 photos 1-10% smaller files than Pillow's
    adaptive filters, and about 2x faster), zlib level 6 as Pillow uses.
    """

    def __init__(self, file: BinaryIO, height: int, width: int, channels: int, dtype: np.dtype, *,
                 band: int = 256, icc: bytes | None = None, exif: bytes | None = None) -> None:
        self.file, self.height, self.width, self.band = file, height, width, band
        self.depth = np.dtype(dtype).itemsize  # 1 or 2 bytes a sample
        self.stride = channels * self.depth  # bytes a pixel: Sub subtracts the byte this far to the left
        self.rows_written = 0
        self.compressor = zlib.compressobj(6)
        header = width.to_bytes(4, "big") + height.to_bytes(4, "big")
        file.write(file_formats.PNG_SIGNATURE)
        self._chunk(b"IHDR", header + bytes([8 * self.depth, {1: 0, 2: 4, 3: 2, 4: 6}[channels], 0, 0, 0]))
        if (icc := fitting_icc(icc, 1 if channels <= 2 else 3)) is not None:  # name, method 0, zlib data
            self._chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))
        if exif:  # the TIFF structure, without the "Exif\0\0" a JPEG's APP1 starts with
            self._chunk(b"eXIf", exif.removeprefix(b"Exif\0\0"))

    def write(self, rows: np.ndarray) -> None:
        """The next rows, h x W x C (alpha, if any, as the last channel), filtered and compressed
        `band` rows at a time so the encoder's own buffers stay small."""
        if rows.shape[1] * rows.shape[2] * self.depth != self.width * self.stride:
            raise ValueError(f"rows of shape {rows.shape} do not fit a PNG {self.width} wide, {self.stride} bytes a pixel")
        if self.rows_written + len(rows) > self.height:
            raise ValueError(f"more than the PNG's {self.height} rows")
        for top in range(0, len(rows), self.band):
            part = rows[top:top + self.band]
            raw = np.ascontiguousarray(part, dtype=">u2" if self.depth == 2 else np.uint8).view(np.uint8)
            raw = raw.reshape(len(part), self.width * self.stride)
            scanlines = np.empty((len(part), self.width * self.stride + 1), np.uint8)
            scanlines[:, 0] = 1  # filter type Sub
            scanlines[:, 1:self.stride + 1] = raw[:, :self.stride]
            np.subtract(raw[:, self.stride:], raw[:, :-self.stride], out=scanlines[:, self.stride + 1:])  # modulo 256
            compressed = self.compressor.compress(memoryview(scanlines).cast("B"))
            if compressed:
                self._chunk(b"IDAT", compressed)
        self.rows_written += len(rows)

    def close(self) -> None:
        """The last compressed data and the end marker; every row must have been written."""
        if self.rows_written != self.height:
            raise ValueError(f"{self.rows_written} of the PNG's {self.height} rows were written")
        self._chunk(b"IDAT", self.compressor.flush())
        self._chunk(b"IEND", b"")

    def _chunk(self, kind: bytes, body: bytes | memoryview) -> None:
        crc = zlib.crc32(body, zlib.crc32(kind))
        self.file.write(len(body).to_bytes(4, "big") + kind)
        self.file.write(body)
        self.file.write(crc.to_bytes(4, "big"))


class PngRows:
    """The rows of one image handed over top to bottom with the image's full height (see
    `i2i.infer.images.StreamResult`), written to an open file: the header at the first rows."""

    def __init__(self, file: BinaryIO, icc: bytes | None = None, exif: bytes | None = None) -> None:
        self.file, self.icc, self.exif = file, icc, exif
        self.png: PngWriter | None = None

    def __call__(self, rows: np.ndarray, height: int) -> None:
        if self.png is None:
            self.png = PngWriter(self.file, height, rows.shape[1], rows.shape[2], rows.dtype, icc=self.icc,
                                 exif=upright_exif(self.exif, rows.shape[1], height))
        self.png.write(rows)


@contextlib.contextmanager
def stream_png(path: str | os.PathLike, icc: bytes | None = None, exif: bytes | None = None) -> Iterator[PngRows]:
    """Write a PNG as its rows are computed, atomically as `write_image`: the file appears
    complete or not at all, and a failed write is one line naming it. `icc`, `exif` as
    `write_image`'s."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise I2IError(f"{path}: only PNG files can be written a band at a time")
    with write_errors(path), atomic_path(path) as tmp, open(tmp, "wb") as file:
        rows = PngRows(file, icc, exif)
        yield rows
        if rows.png is None:
            raise I2IError(f"{path}: no rows were computed for the file")
        rows.png.close()


def encode_png(pixels: np.ndarray, alpha: np.ndarray | None = None, *, icc: bytes | None = None,
               exif: bytes | None = None) -> bytes:
    """`write_png` into memory (H x W x C, C 1-4, uint8 or uint16)."""
    buffer = io.BytesIO()
    write_png(buffer, pixels, alpha, icc=icc, exif=exif)
    return buffer.getvalue()


def encode_tiff16(samples: np.ndarray, *, icc: bytes | None = None) -> bytes:
    """A 16-bit TIFF (gray, gray+alpha, RGB or RGBA by channel count) from H x W x C uint16.

    Pillow cannot write 16-bit colour TIFF. This is a baseline little-endian TIFF: one
    Deflate-compressed strip with the horizontal-differencing predictor, alpha marked as
    unassociated (ExtraSamples = 2), readable by libtiff, Pillow, OpenCV and tifffile. `icc`:
    an ICC profile stored as it is (InterColorProfile tag); the caller checks that it fits.
    """
    height, width, channels = samples.shape
    predicted = samples.astype("<u2")
    predicted[:, 1:] -= samples[:, :-1].astype("<u2")  # Predictor 2, modulo 2**16
    strip = zlib.compress(predicted.tobytes(), 6)
    if len(strip) > 2**32 - 1024:
        raise I2IError("image too large for a classic TIFF (over 4 GiB compressed); use PNG")
    bits_offset = 8 + len(strip)  # BitsPerSample array after the strip, when > 4 bytes
    icc_offset = bits_offset + 2 * channels
    icc_offset += icc_offset % 2  # the profile and the IFD start on word boundaries
    ifd_offset = icc_offset + len(icc or b"")
    ifd_offset += ifd_offset % 2

    def short(value: int) -> bytes:
        return value.to_bytes(2, "little") + b"\0\0"

    def long(value: int) -> bytes:
        return value.to_bytes(4, "little")

    bits = b"".join((16).to_bytes(2, "little") for _ in range(channels))
    bits_value = bits.ljust(4, b"\0") if channels <= 2 else long(bits_offset)
    entries = [  # (tag, type 3 SHORT / 4 LONG, count, 4-byte value or offset), sorted by tag
        (256, 4, 1, long(width)),
        (257, 4, 1, long(height)),
        (258, 3, channels, bits_value),
        (259, 3, 1, short(8)),  # Adobe Deflate
        (262, 3, 1, short(2 if channels >= 3 else 1)),  # RGB or BlackIsZero
        (273, 4, 1, long(8)),  # StripOffsets
        (277, 3, 1, short(channels)),
        (278, 4, 1, long(height)),  # RowsPerStrip: one strip
        (279, 4, 1, long(len(strip))),
        (284, 3, 1, short(1)),  # PlanarConfiguration: interleaved
        (317, 3, 1, short(2)),  # Predictor: horizontal differencing
    ]
    if channels in (2, 4):
        entries.append((338, 3, 1, short(2)))  # ExtraSamples: unassociated alpha
    if icc:
        entries.append((34675, 7, len(icc), long(icc_offset)))  # InterColorProfile, UNDEFINED bytes
    ifd = len(entries).to_bytes(2, "little")
    ifd += b"".join(
        tag.to_bytes(2, "little") + kind.to_bytes(2, "little") + long(count) + value
        for tag, kind, count, value in entries
    )
    header = b"II" + (42).to_bytes(2, "little") + long(ifd_offset)
    body = (header + strip + (bits if channels > 2 else b"")).ljust(icc_offset, b"\0") + (icc or b"")
    return body.ljust(ifd_offset, b"\0") + ifd + long(0)


# ----------------------------------------------------------------------------- listing


def list_images(root: str | os.PathLike, *, recursive: bool = True,
                unread: dict[str, int] | None = None) -> list[Path]:
    """Image files under `root` by extension (case-insensitive), sorted.

    Other files (MANIFEST.json, README) and hidden names (.DS_Store, macOS "._x.jpg",
    our own temporary files) are ignored. A file path is returned as [path] whatever its
    extension: the user named it, so reading it will say what is wrong with it. So is a
    broken link with an image name: reading it says so, where skipping it would say nothing.
    `unread`: counts, by extension, the image files i2i does not read (`UNREAD_EXTENSIONS`) in
    the same walk, for `unread_note` (a huge folder is not walked twice).
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise I2IError(f"{root}: no such file or folder")
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root):
        # prune hidden folders (.git, .ipynb_checkpoints); nothing below when not recursive
        subfolders[:] = [name for name in subfolders if recursive and not name.startswith(".")]
        base = Path(folder)
        for name in files:
            if name.startswith("."):
                continue
            extension = os.path.splitext(name)[1].lower()
            if extension in IMAGE_EXTENSIONS:
                candidate = base / name
                if candidate.is_file() or candidate.is_symlink():
                    found.append(candidate)
            elif unread is not None and extension in UNREAD_EXTENSIONS:
                unread[extension] = unread.get(extension, 0) + 1
    return sorted(found)


#: image files i2i does not read, by extension: what a folder of them is told instead of "no images"
UNREAD_EXTENSIONS: frozenset[str] = frozenset(
    {".heic", ".heif", ".gif", ".psd", ".jxl", ".jp2", ".j2k", ".ico", ".svg", ".exr", ".hdr", ".tga",
     ".ppm", ".pgm", ".pbm", ".pnm", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".raw"}
    | ({".avif"} if not AVIF else set())
)


def unread_images_note(root: str | os.PathLike, *, recursive: bool = True) -> str:
    """What `list_images` left out of `root` as image files i2i does not read, e.g. "12 .heic
    files i2i does not read: convert them to PNG or JPEG"; "" when there are none."""
    root = Path(root)
    if not root.is_dir():
        return ""
    counts: dict[str, int] = {}
    list_images(root, recursive=recursive, unread=counts)
    return unread_note(counts)


def unread_note(counts: dict[str, int]) -> str:
    """`unread_images_note`'s words for the counts `list_images(..., unread=counts)` made."""
    if not counts:
        return ""
    found = ", ".join(f"{n} {ext} file{'s' if n > 1 else ''}" for ext, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{found} i2i does not read: convert them to PNG or JPEG"


def no_images_hint(root: str | os.PathLike, *, recursive: bool = True) -> str:
    """" (why)" for a folder where images were expected and `list_images` found none: image files
    in formats i2i does not read (an iPhone's HEIC photos, which "no images" would deny), or a
    BasicSR LMDB database; "" when neither explains it."""
    if (Path(root) / "data.mdb").is_file():
        return (" (an LMDB database, BasicSR's io_backend: lmdb, which i2i does not read: give the folder of "
                "image files it was made from)")
    note = unread_images_note(root, recursive=recursive)
    return f" ({note})" if note else ""


# ----------------------------------------------------------------------------- tensors


def to_tensor(image: Image | np.ndarray) -> torch.Tensor:
    """Pixels (no alpha) as float32 C x H x W in [0, 1]: uint8 / 255, uint16 / 65535;
    floats (what augmentation returns for 16-bit images) are clipped to [0, 1]."""
    pixels = native_byte_order(image.pixels if isinstance(image, Image) else np.asarray(image))
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.dtype in (np.uint8, np.uint16):
        scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
        array = pixels.astype(np.float32) / np.float32(scale)
    elif np.issubdtype(pixels.dtype, np.floating):
        array = np.clip(pixels.astype(np.float32, copy=False), 0.0, 1.0)
    else:
        raise ValueError(f"pixels must be uint8, uint16 or float, not {pixels.dtype}")
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def from_tensor(tensor: torch.Tensor, bit_depth: int = 8) -> np.ndarray:
    """C x H x W (or H x W) floats in [0, 1] -> H x W x C uint8 or uint16 (clipped, rounded)."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, not {bit_depth}")
    values = torch.as_tensor(tensor).detach().to("cpu", torch.float32)
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise ValueError(f"expected a C x H x W tensor, not shape {tuple(values.shape)}")
    top = 65535.0 if bit_depth == 16 else 255.0
    values = torch.nan_to_num(values, nan=0.0).clamp(0.0, 1.0).mul(top).round()
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    return values.permute(1, 2, 0).numpy().astype(dtype)
