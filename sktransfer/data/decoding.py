"""What the network sees, and what keys it: decoding files and PIL images, and image digests.

One rule for every image input (the user guide's "What counts as the same image"):

* **EXIF orientation** is applied to files and PIL images alike (a photo is seen
  upright, as viewers show it); :func:`PIL.ImageOps.exif_transpose` drops the tag,
  so an image already transposed is not turned twice.
* **8-bit modes** become RGB through PIL: a palette image through its own palette,
  alpha (and a palette's transparency) dropped, CMYK, YCbCr, LAB and HSV converted.
* **16-bit** pixels (``uint16`` arrays and tensors, PIL modes ``I;16*``, 16-bit
  grayscale PNG and TIFF files, PGM files with more than 8 bits, which PIL scales to
  16 bits) become 8-bit as ``round(value / 257)``: 65535 is 255, 257 is 1. 16-bit
  *colour* files (RGB/RGBA PNG, TIFF, PPM) are the one exception: Pillow decodes them
  to 8 bits itself (the high byte of PNG and TIFF samples, a rescaling of PPM ones),
  within one level of ``value / 257``.
* **Other integer** pixels (``int32`` PIL mode ``I``, ``int64`` arrays...) must lie
  in ``[0, 255]``; anything else is refused, never clipped.
* **Float** pixels (PIL mode ``F``, float arrays) lie in ``value_range`` (default
  ``[0, 1]``) and are rescaled from it; NaN, infinity and values outside it are
  refused. Float arrays keep their precision; files and PIL images are decoded to
  8-bit RGB (``round(255 * x)``), as every other decoded image, so they need a range:
  with ``value_range=None`` (floats used as they are, for arrays) it is ``[0, 1]``.
* A **multi-frame** file (animated GIF, multi-page TIFF) is its first frame; a PIL
  image passed in is used at the frame it is on.

The digest that keys an image in the feature cache is taken from the same thing:
the bytes of a file (the features computed from a read are stored under the digest
of the bytes that read decoded), the decoded RGB pixels of a PIL image, and the raw
values, dtype, shape and layout of an array.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DIGEST_BYTES = 16
#: Changes whenever a rule above changes what the network sees: part of every cache key.
DECODING_RULES = 2

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ORIENTATION = 0x0112  # the EXIF tag


def digest(tag: bytes, data) -> bytes:
    """The first :data:`DIGEST_BYTES` of SHA-256 over ``tag`` then ``data``."""
    h = hashlib.sha256(tag)
    h.update(data)
    return h.digest()[:DIGEST_BYTES]


def sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """16-bit values as 8-bit, ``round(value / 257)`` (exact at 0 and 65535)."""
    return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)


def float_to_eight(values: np.ndarray, value_range) -> np.ndarray:
    """Float values checked against ``value_range`` (None: ``[0, 1]``), as 8-bit."""
    low, high = value_range or (0.0, 1.0)
    if not np.isfinite(values).all():
        raise ValueError("its float pixels include NaN or infinity")
    lo, hi = float(values.min()), float(values.max())
    if lo < low or hi > high:
        raise ValueError(
            f"its float pixels lie in [{lo:g}, {hi:g}], outside value_range=({low:g}, {high:g}); set "
            "value_range to the range the images use"
        )
    return np.rint((values.astype(np.float64) - low) * (255.0 / (high - low))).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def pil_to_rgb(image: Image.Image, value_range=(0.0, 1.0)) -> np.ndarray:
    """``image`` as the ``(H, W, 3)`` uint8 array the network sees (module rules).

    Raises ValueError naming the problem (the caller adds which image it is).
    """
    # PGM/PPM files with more than 8 bits open as "I", scaled by PIL to 16 bits
    sixteen = image.mode in _SIXTEEN_BIT or (image.mode == "I" and image.format == "PPM")
    if image.getexif().get(_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    mode = image.mode
    if sixteen or mode in ("I", "F"):
        values = np.asarray(image)
        if mode == "F":
            return _gray_to_rgb(float_to_eight(values, value_range))
        if not sixteen and (values.min() < 0 or values.max() > 255):
            raise ValueError(
                f"its 32-bit integer pixels (PIL mode 'I') lie in [{values.min()}, {values.max()}], outside "
                "[0, 255]; pass 16-bit data as PIL mode 'I;16' or a uint16 array"
            )
        return _gray_to_rgb(sixteen_to_eight(values) if sixteen else values.astype(np.uint8))
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # through the palette's alpha, as PIL advises; then dropped
    try:
        return np.array(image.convert("RGB"))  # writable: torch refuses read-only buffers
    except ValueError as exc:  # modes PIL cannot convert ("La"...)
        raise ValueError(f"its PIL mode {mode!r} cannot be converted to RGB ({exc})") from None


def digest_rgb(rgb: np.ndarray) -> bytes:
    """The digest of decoded RGB pixels (what the network sees of a PIL image)."""
    return digest(f"rgb8:{rgb.shape}".encode(), np.ascontiguousarray(rgb).data)


def max_file_bytes() -> int | None:
    """Largest image file read: a bitmap at PIL's decompression-bomb limit of pixels,
    4 channels of 16 bits (None when the limit is off)."""
    pixels = Image.MAX_IMAGE_PIXELS
    return None if pixels is None else int(pixels) * 8 + (1 << 20)


def read_file(path, index, kind: str = "image") -> bytes:
    """The bytes of the ``kind`` file ``path`` (``X[index]``), read once.

    A FIFO, device or folder is refused before any read that could block, and a file
    larger than :func:`max_file_bytes` (a sparse file of terabytes, say) before it is
    read; errors name ``X[index]`` and the path.
    """
    failed = f"X[{index}]: cannot read {kind} file {str(path)!r}"
    limit = max_file_bytes()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise ValueError(f"{failed}: it is a directory, not an image file")
            if not stat.S_ISREG(info.st_mode):
                raise ValueError(f"{failed}: it is not a regular file (a pipe, socket or device), so it is not read")
            if limit is not None and info.st_size > limit:
                raise ValueError(f"{failed}: it holds {info.st_size:,} bytes, more than any image PIL decodes "
                                 f"safely ({limit:,})")
            data = f.read() if limit is None else f.read(limit + 1)
    except FileNotFoundError:
        raise FileNotFoundError(f"X[{index}]: {kind} file not found: {str(path)!r}") from None
    except OSError as exc:
        raise ValueError(f"{failed}: {exc.strerror or exc}") from None
    if limit is not None and len(data) > limit:
        raise ValueError(f"{failed}: it grew past {limit:,} bytes while it was read")
    return data


def decode_file(path, index, value_range=(0.0, 1.0)) -> tuple[np.ndarray, bytes]:
    """Image file ``path`` (``X[index]``) as an ``(H, W, 3)`` uint8 array, and the
    digest of the bytes decoded (one read: no window for the file to change between)."""
    data = read_file(path, index)
    try:
        with Image.open(io.BytesIO(data)) as image:
            return pil_to_rgb(image, value_range), digest(b"file:", data)
    except Image.DecompressionBombError as exc:
        raise ValueError(
            f"X[{index}]: image file {str(path)!r} is too large to decode safely ({exc}); raise "
            "PIL.Image.MAX_IMAGE_PIXELS only for files you trust"
        ) from exc
    except Exception as exc:  # noqa: BLE001 -- decoders raise SyntaxError, EOFError, struct.error...
        raise ValueError(f"X[{index}]: cannot read image file {str(path)!r}: {_reason(exc)}") from exc


def decode_pil(image: Image.Image, index, value_range=(0.0, 1.0)) -> np.ndarray:
    """PIL image ``X[index]`` as an ``(H, W, 3)`` uint8 array."""
    try:
        return pil_to_rgb(image, value_range)
    except Exception as exc:  # noqa: BLE001 -- a lazily loaded image's decoder can raise anything
        raise ValueError(f"X[{index}]: cannot use PIL image: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    """An exception's message, with its type unless it is one of the usual ones."""
    if isinstance(exc, UnidentifiedImageError):  # PIL names the in-memory buffer, not the file
        return "not an image in a format PIL reads (or the file is damaged)"
    if isinstance(exc, (OSError, ValueError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
