"""One input path: every accepted kind of image input, validated and read in batches.

Accepted inputs
---------------
* numpy arrays ``(n, H, W)`` (grayscale), ``(n, H, W, C)`` or ``(n, C, H, W)``
  with ``C`` in {1, 3, 4}; 2-D arrays and DataFrames of flattened pixels
  ``(n, H*W*C)`` when ``image_shape`` says how to unflatten a row;
* torch tensors with the same layouts (``(n, C, H, W)`` being the usual one);
* lists of PIL images;
* lists, 1-D arrays, Series or one-column 2-D containers of file paths
  (``str`` or ``pathlib.Path``): a one-column pandas, polars or pyarrow frame
  (read through narwhals, as scikit-learn reads frames), an ``(n, 1)`` object
  array such as ``ColumnTransformer`` passes on; decoded lazily, in batches,
  by threads.

One image without a batch axis is refused rather than read as a batch of
rows: after a ``fit`` on ``(n, H, W, C)`` arrays, an ``(H, W, C)`` array is
one image, and after a ``fit`` on files an ``(H, W, 3)`` array could be one
color image or ``H`` grayscale ones; the error says to pass ``X[None]`` or
``[image]``.

Values and decoding follow one rule for arrays, tensors, PIL images and files
(:mod:`sktransfer.data.decoding`): ``uint8`` is ``[0, 255]``; ``uint16`` (and
16-bit files) is ``[0, 65535]``, read as ``round(value / 257)``; other integer
dtypes must lie in ``[0, 255]``; floats must lie in ``value_range`` (default
``[0, 1]``) and are rescaled from it; NaN and infinity are rejected. RGBA drops
its alpha channel; grayscale stays one channel until the device expands it.
Images decoded from files or PIL objects are converted to 8-bit RGB, as
torchvision's ``ImageFolder`` does, after their EXIF orientation is applied.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import narwhals.stable.v1 as nw
import numpy as np
import torch
from PIL import Image

from .decoding import decode_file, decode_pil, digest, pil_digest, read_file, sixteen_to_eight
from .files import IMAGE_EXTENSIONS

# Samples per chunk when scanning arrays for NaN, infinity and range, so the
# scan's temporaries stay small whatever n is.
_SCAN_CHUNK = 256
# Arrays up to this size are hashed on the calling thread (about 4 ms at 1 GB/s).
_INLINE_BYTES = 4 << 20
# Decoding and hashing release the GIL: one shared pool sized to the machine.
_WORKERS = min(32, (os.cpu_count() or 1) + 4)
_pool = None
_pool_lock = threading.Lock()


def workers() -> ThreadPoolExecutor:
    """The shared pool of threads that decode and hash images."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="sktransfer-io")
        return _pool

Batch = Union[torch.Tensor, list]
"""A batch: a ``(k, C, H, W)`` tensor, or a list of ``(C, H, W)`` tensors of different sizes."""


@dataclass(frozen=True)
class InputOptions:
    """How to read numeric image arrays (estimator parameters of the same names)."""

    channel_axis: object = "auto"
    image_shape: Optional[tuple] = None
    value_range: Optional[tuple] = (0.0, 1.0)


class ImageSource:
    """Validated images that can be read in batches.

    Parameters
    ----------
    kind : {"array", "tensor", "pil", "paths"}
    items : ndarray, Tensor or list
        Arrays and tensors are kept in their original layout (no copy).
    n_channels : int or None
        Channels per image (1 or 3) for arrays and tensors; None for images
        decoded to RGB from files or PIL objects.
    channels_last : bool
        Whether ``items`` stores channels on the last axis.
    value_range : (float, float) or None
        The range of float pixels of decoded (PIL mode ``"F"``) images.
    """

    def __init__(self, kind, items, n_channels=None, channels_last=False, value_range=(0.0, 1.0)):
        self.kind = kind
        self.items = items
        self.n_channels = n_channels
        self.channels_last = channels_last
        self.value_range = value_range
        self.decoded_digests = None

    def __len__(self) -> int:
        return len(self.items)

    def keyed(self) -> "ImageSource":
        """A view of this source that keeps, for every file it decodes, the digest of the
        bytes decoded (``decoded_digests``): rows computed from them are stored under what
        was actually read, even if the file changed after :meth:`digests` hashed it."""
        view = ImageSource(self.kind, self.items, self.n_channels, self.channels_last, self.value_range)
        view.decoded_digests = {} if self.kind == "paths" else None
        return view

    def read(self, indices: Sequence[int]) -> Batch:
        """Read the images at ``indices`` as CPU (or the tensor's device) tensors.

        Arrays give one ``(k, C, H, W)`` tensor (uint8 or float32, possibly
        with channels-last strides); files and PIL images of one size are
        stacked, of several sizes returned as a list.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if self.kind == "array":
            return _array_batch(self.items[_selector(indices)], self.channels_last)
        if self.kind == "tensor":
            selector = _selector(indices)
            if not isinstance(selector, slice):
                selector = torch.as_tensor(selector, device=self.items.device)
            return _tensor_batch(self.items[selector], self.channels_last)
        if len(indices) > 1:
            images = list(workers().map(self._decode, indices))
        else:
            images = [self._decode(i) for i in indices]
        failed = [(int(i), image) for i, image in zip(indices, images) if isinstance(image, Exception)]
        if failed:
            raise self._all_failures(failed, indices)
        if all(im.shape == images[0].shape for im in images):
            # numpy, not torch: this may run on a reader thread, where a torch kernel would
            # start a second OpenMP team competing with the compute thread's for the cores
            return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
        return [torch.from_numpy(im).permute(2, 0, 1) for im in images]

    def _decode(self, index):
        """Image ``index`` as an ``(H, W, 3)`` array, or the exception that names why not."""
        try:
            if self.kind != "paths":
                return decode_pil(self.items[index], index, self.value_range)
            image, read = decode_file(self.items[index], index, self.value_range)
        except (ValueError, OSError) as exc:
            return exc
        if self.decoded_digests is not None:
            self.decoded_digests[int(index)] = read
        return image

    def _all_failures(self, failed, indices) -> Exception:
        """One error for the images that cannot be decoded: ``failed`` in this batch and
        those found by decoding the rest of the input, until :data:`MAX_LISTED` are known
        or :data:`SCAN_SECONDS` have passed (the message says when the scan stopped)."""
        done = set(np.asarray(indices).tolist())
        rest = [i for i in range(len(self)) if i not in done]
        problems, start, scanned = list(failed), time.monotonic(), 0
        while scanned < len(rest) and len(problems) < MAX_LISTED and time.monotonic() - start < SCAN_SECONDS:
            chunk = rest[scanned:scanned + 16]
            problems += [(i, r) for i, r in zip(chunk, workers().map(self._decode, chunk)) if isinstance(r, Exception)]
            scanned += len(chunk)
        error = unusable_images(sorted(problems), len(self))
        if scanned < len(rest):
            error.args = (f"{error.args[0]}\n(found by decoding {scanned} of the {len(rest)} other images; "
                          "the rest were not checked)",)
        return error

    def digests(self) -> list:
        """A digest per image of what the network sees of it (see
        :mod:`~sktransfer.data.decoding`): an array's values, dtype, shape and layout; a
        file's bytes; a PIL image's decoded RGB pixels."""
        if self.kind in ("array", "tensor"):
            items = self.items
            tag = f"{self.kind}:{items.dtype}:{tuple(items.shape[1:])}:{self.channels_last}".encode()

            def chunk_digests(start):
                return [digest(tag, row) for row in _row_bytes(items[start:start + _SCAN_CHUNK])]

            starts = range(0, len(items), _SCAN_CHUNK)
            # small inputs inline: pool threads would wait on cores that torch's OpenMP
            # threads still spin on after the last forward pass (seen: 230 ms for 250 KB)
            parts = workers().map(chunk_digests, starts) if _nbytes(items) > _INLINE_BYTES else map(chunk_digests, starts)
            return [d for part in parts for d in part]
        found = list(workers().map(self._file_digest if self.kind == "paths" else self._pil_digest,
                                   range(len(self.items))))
        problems = [(i, d) for i, d in enumerate(found) if isinstance(d, Exception)]
        if problems:
            raise unusable_images(problems, len(self))
        return found

    def _file_digest(self, index):
        """The digest of file ``index``'s bytes, or the exception that names why not."""
        try:
            return digest(b"file:", read_file(self.items[index], index))
        except (OSError, ValueError) as exc:
            return exc

    def _pil_digest(self, index):
        """The digest of PIL image ``index``'s decoded pixels, or the exception that names why not."""
        try:
            return pil_digest(self.items[index], self.value_range)
        except (OSError, ValueError) as exc:
            return ValueError(f"X[{index}]: cannot use PIL image: {exc}")


def _nbytes(items) -> int:
    return items.numel() * items.element_size() if torch.is_tensor(items) else items.nbytes


def _row_bytes(chunk):
    """The raw bytes of each image of an array or tensor chunk (any dtype, bfloat16 included)."""
    if torch.is_tensor(chunk):
        chunk = chunk.detach().cpu().contiguous()
        return [row.reshape(-1).view(torch.uint8).numpy().data for row in chunk]
    return [row.data for row in np.ascontiguousarray(chunk)]


def _selector(indices: np.ndarray):
    """A slice for a run of consecutive indices (a view, no copy: the usual case in
    ``transform``, and a single-threaded gather that can cost more than the forward
    pass on a GPU), else the indices themselves."""
    if len(indices) and (np.diff(indices) == 1).all():
        return slice(int(indices[0]), int(indices[-1]) + 1)
    return indices


def _array_batch(chunk: np.ndarray, channels_last: bool) -> torch.Tensor:
    if not chunk.flags.writeable:  # torch warns on read-only memory (e.g. a memmap view)
        chunk = chunk.copy()
    if chunk.dtype == np.uint16:
        chunk = sixteen_to_eight(chunk)
    elif chunk.dtype != np.uint8:
        chunk = chunk.astype(np.float32 if chunk.dtype.kind == "f" else np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(chunk))
    if x.ndim == 3:
        return x.unsqueeze(1)
    if channels_last:
        x = x.permute(0, 3, 1, 2)  # a view: the device copy stays NHWC, i.e. channels_last
    return x[:, :3] if x.shape[1] == 4 else x


def _tensor_batch(chunk: torch.Tensor, channels_last: bool) -> torch.Tensor:
    chunk = chunk.detach()
    if chunk.dtype == torch.uint16:
        chunk = ((chunk.to(torch.int32) + 128) // 257).to(torch.uint8)  # as sixteen_to_eight
    elif chunk.dtype != torch.uint8:
        chunk = chunk.to(torch.float32 if chunk.is_floating_point() else torch.uint8)
    if chunk.ndim == 3:
        return chunk.unsqueeze(1)
    if channels_last:
        chunk = chunk.permute(0, 3, 1, 2)
    return chunk[:, :3] if chunk.shape[1] == 4 else chunk


MAX_LISTED = 20  # unusable images named in one error
SCAN_SECONDS = 30.0  # decoding spent looking for more of them once one failed


def unusable_images(problems: list, total: int) -> Exception:
    """One exception for ``problems`` (``(index, exception)`` pairs, each message
    starting with ``X[index]``): the first :data:`MAX_LISTED` listed, and how many
    in all. FileNotFoundError when every problem is a missing file, else ValueError."""
    if len(problems) == 1:
        return problems[0][1]
    lines = [str(exc) for _, exc in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"... and {len(problems) - MAX_LISTED} more")
    message = f"{len(problems)} of {total} images cannot be used:\n  " + "\n  ".join(lines)
    missing = all(isinstance(exc, FileNotFoundError) for _, exc in problems)
    return (FileNotFoundError if missing else ValueError)(message)


# ----------------------------------------------------------------------------
# validation


def _shape_error(shape, what):
    return ValueError(
        f"expected images shaped (n, H, W), (n, H, W, C) or (n, C, H, W) with C in "
        f"{{1, 3, 4}}, got {what} of shape {tuple(shape)}"
    )


def _channel_layout(shape, channel_axis) -> bool:
    """Return True if a 4-D ``shape`` has channels last, False if first."""
    if channel_axis == "auto":
        first, last = shape[1] in (1, 3, 4), shape[3] in (1, 3, 4)
        if first and last:
            raise ValueError(
                f"cannot tell whether images shaped {tuple(shape)} store channels first or "
                "last; pass channel_axis=1 (channels first) or channel_axis=-1 (channels last)"
            )
        if not (first or last):
            raise ValueError(
                f"images shaped {tuple(shape)} have no channel axis of size 1, 3 or 4 "
                "(grayscale, RGB or RGBA) at position 1 or 3"
            )
        return last
    axis, last = (1, False) if channel_axis == 1 else (3, True)  # a validated parameter
    if shape[axis] not in (1, 3, 4):
        raise ValueError(
            f"images shaped {tuple(shape)} have {shape[axis]} channels on axis {axis}; "
            "expected 1 (grayscale), 3 (RGB) or 4 (RGBA)"
        )
    return last


def _check_values(x, is_float, value_range):
    """Scan ``x`` in chunks; raise naming the first sample with a bad value."""
    low, high = (0, 255) if not is_float else (value_range or (-np.inf, np.inf))
    for start in range(0, len(x), _SCAN_CHUNK):
        chunk = x[start:start + _SCAN_CHUNK]
        if isinstance(chunk, np.ndarray):
            if chunk.dtype.kind == "u" and chunk.dtype.itemsize > 1:
                chunk = chunk.astype(np.int64)  # torch lacks reductions on wide unsigned ints
            elif not chunk.flags.writeable:
                chunk = chunk.copy()  # torch refuses read-only buffers (e.g. memmaps)
            chunk = torch.from_numpy(chunk)
        flat = chunk.detach().reshape(len(chunk), -1)
        if is_float:
            finite = torch.isfinite(flat).all(dim=1)
            if not bool(finite.all()):
                i = int(torch.argmin(finite.to(torch.uint8)))
                bad = "NaN" if bool(torch.isnan(flat[i]).any()) else "infinity"
                raise ValueError(f"Input X contains {bad}: sample {start + i} has non-finite values")
        lo, hi = flat.amin(dim=1), flat.amax(dim=1)
        outside = (lo < low) | (hi > high)
        if bool(outside.any()):
            i = int(torch.argmax(outside.to(torch.uint8)))
            found = f"sample {start + i} has values in [{lo[i].item():g}, {hi[i].item():g}]"
            if is_float:
                raise ValueError(
                    f"{found}, outside value_range={tuple(value_range)}; float images must lie "
                    "in value_range (default [0, 1]): rescale them, pass uint8, or set "
                    "value_range, e.g. value_range=(0, 255)"
                )
            raise ValueError(f"{found}; integer images must lie in [0, 255] (uint8 range); 16-bit "
                             "images are uint16 arrays, read as value / 257")


def image_array_source(x, options: InputOptions, what="array") -> ImageSource:
    """Validate a numpy array or torch tensor of images (3-D or 4-D)."""
    is_tensor = torch.is_tensor(x)
    kind = _dtype_kind(x)
    if kind == "c":
        raise ValueError("Complex data not supported: images must be real-valued")
    if kind == "b":
        raise TypeError("boolean arrays are not images; convert them, e.g. X.astype(np.uint8) * 255")
    if kind not in "uif":
        raise TypeError(f"image {what}s must be numeric, got dtype {x.dtype}")
    if x.ndim not in (3, 4):
        raise _shape_error(x.shape, f"a {x.ndim}-D {what}")
    if x.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(x.shape)}) while a minimum of 1 is required."
        )
    if 0 in x.shape[1:]:
        raise ValueError(f"images must not be empty, got {what} of shape {tuple(x.shape)}")
    channels_last = x.ndim == 4 and _channel_layout(x.shape, options.channel_axis)
    # uint8 and uint16 use their whole range (16 bits read as value / 257)
    if x.dtype not in ((torch.uint8, torch.uint16) if is_tensor else (np.uint8, np.uint16)):
        _check_values(x, kind == "f", options.value_range)
    channels = 1 if x.ndim == 3 else x.shape[3 if channels_last else 1]
    return ImageSource(
        "tensor" if is_tensor else "array",
        x,
        n_channels=3 if channels == 4 else channels,
        channels_last=channels_last,
    )


def _dtype_kind(x) -> str:
    if torch.is_tensor(x):
        if x.is_complex():
            return "c"
        if x.dtype == torch.bool:
            return "b"
        if x.is_floating_point():
            return "f"
        return "u" if x.dtype == torch.uint8 else "i"
    return x.dtype.kind


def _is_path(item) -> bool:
    return isinstance(item, (str, os.PathLike))


def _item_kind(item):
    if isinstance(item, Image.Image):
        return "PIL image"
    if _is_path(item):
        return "file path"
    return type(item).__name__


def list_source(items, options: InputOptions = InputOptions()) -> ImageSource:
    """Validate a list of PIL images or of file paths (``options.value_range`` reads
    float PIL images)."""
    items = list(items)
    if not items:
        raise ValueError("Found 0 images (an empty list) while a minimum of 1 is required.")
    first = _item_kind(items[0])
    if first not in ("PIL image", "file path"):
        raise TypeError(f"X[0] is a {first}; lists must hold PIL images or file paths (str or pathlib.Path)")
    for i, item in enumerate(items):
        kind = _item_kind(item)
        if kind != first:
            raise TypeError(
                f"X[{i}] is a {kind} but X[0] is a {first}; all items must be of one kind"
            )
    if first == "PIL image":
        return ImageSource("pil", items, value_range=options.value_range)
    paths = [Path(p).expanduser() for p in items]
    problems = []
    for i, path in enumerate(paths):
        if not path.exists():
            problems.append((i, FileNotFoundError(f"X[{i}]: image file not found: {str(path)!r}")))
        elif path.is_dir():
            problems.append((i, ValueError(f"X[{i}]: {str(path)!r} is a directory, not an image file")))
    if problems:
        error = unusable_images(problems, len(paths))
        if len(problems) == len(paths) and not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in paths):
            error.args = (f"{error.args[0]}\n(strings are image file paths for an image backbone; "
                          "for texts, use a text backbone such as "
                          "'sentence-transformers/all-MiniLM-L6-v2')",)
        raise error
    return ImageSource("paths", [str(p) for p in paths], value_range=options.value_range)


def is_tabular(x) -> bool:
    """2-D numeric data (arrays, frames, sparse matrices): flattened pixels."""
    if hasattr(x, "tocsr") or type(x).__module__.startswith("scipy.sparse"):
        return True
    return isinstance(nw.from_native(x, pass_through=True, eager_only=True), nw.DataFrame) or (
        isinstance(x, np.ndarray) and x.ndim == 2)


def _is_text(column) -> bool:
    """A column of strings or paths (objects only when their first item is one)."""
    dtype = column.dtype
    if dtype == nw.String or dtype == nw.Categorical:
        return True
    return dtype == nw.Object and len(column) > 0 and _is_path(column[0])


def path_column(x):
    """The items of a one-column container of paths: a frame (pandas, polars, pyarrow...)
    or Series of strings, or an ``(n, 1)`` array of strings/objects; else None.

    A frame or array of several text columns raises: only one can hold the paths.
    """
    native = nw.from_native(x, pass_through=True, eager_only=True, allow_series=True)
    if isinstance(native, nw.Series):
        return native.to_list() if _is_text(native) else None
    if isinstance(native, nw.DataFrame):
        text = [name for name in native.columns if _is_text(native.get_column(name))]
        if not text:
            return None
        if len(native.columns) > 1:
            raise ValueError(
                f"X is a frame of {len(native.columns)} columns, {len(text)} of them text "
                f"({', '.join(map(str, text[:5]))}); pass the one column of image paths, "
                f"e.g. X[[{str(text[0])!r}]]"
            )
        return native.get_column(native.columns[0]).to_list()
    if isinstance(x, np.ndarray) and x.ndim == 2 and x.size and (
            x.dtype.kind in "SU" or (x.dtype.kind == "O" and _is_path(x.flat[0]))):
        if x.shape[1] != 1:
            raise ValueError(
                f"X is a {x.shape} array of strings; pass one column of image paths, "
                "shaped (n,) or (n, 1)"
            )
        return x[:, 0].tolist()
    return None


def unflatten(x: np.ndarray, options: InputOptions) -> np.ndarray:
    """Reshape validated 2-D rows to images with ``image_shape``."""
    if options.image_shape is None:
        raise ValueError(
            f"got 2-D data of shape {x.shape}: rows of flattened pixels need image_shape "
            "to become images, e.g. image_shape=(8, 8) or (28, 28, 1); pass images as "
            "(n, H, W[, C]) arrays otherwise"
        )
    shape = tuple(options.image_shape)
    try:
        images = x.reshape((x.shape[0], *shape))
    except ValueError:
        raise ValueError(
            f"rows of {x.shape[1]} values cannot be reshaped to image_shape={shape}"
        ) from None
    return images


def image_source(x, options: InputOptions) -> ImageSource:
    """Validate any accepted non-tabular input and describe it."""
    if torch.is_tensor(x):
        return image_array_source(x, options, what="tensor")
    native = nw.from_native(x, pass_through=True, eager_only=True, series_only=True)
    if isinstance(native, nw.Series):  # a Series of numbers: a 1-D array
        x = native.to_numpy()
    if isinstance(x, Image.Image):
        raise TypeError("X is a single PIL image; pass a list of images, e.g. [image]")
    if isinstance(x, (str, os.PathLike)):
        raise TypeError("X is a single path; pass a list of paths, e.g. [path]")
    if isinstance(x, np.ndarray):
        if x.ndim == 1 and x.dtype.kind in "OSU":
            return list_source(x.tolist(), options)
        if x.dtype.kind == "O":
            try:
                x = x.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"could not read object array as numbers: {exc}") from exc
        return image_array_source(x, options)
    if isinstance(x, (list, tuple)):
        return list_source(x, options)
    raise TypeError(
        f"unsupported input type {type(x).__name__}: pass a numpy array, torch tensor, "
        "list of PIL images, or list/Series of file paths"
    )


def _as_array(X):
    """Array-likes and nested lists of numbers as ndarrays; other inputs unchanged."""
    if isinstance(X, (list, tuple)):
        if not X or _item_kind(X[0]) in ("PIL image", "file path"):
            return X
        try:
            return np.asarray(X)
        except ValueError as exc:
            raise ValueError(
                f"X is a list of arrays or numbers that do not stack into one array ({exc}); "
                "pass images of one size as an (n, H, W[, C]) array, or files/PIL images"
            ) from None
    frame = nw.from_native(X, pass_through=True, eager_only=True, allow_series=True) is not X
    if hasattr(X, "__array__") and not (frame or torch.is_tensor(X) or isinstance(X, (np.ndarray, Image.Image))):
        return np.asarray(X)
    return X


@dataclass(frozen=True)
class InputSignature:
    """What ``fit`` saw, for checking later inputs against it.

    Parameters
    ----------
    kind : {"array", "files", "rows", "text"}
        Arrays or tensors of images; files or PIL images (decoded to RGB);
        2-D rows of flattened pixels; or texts (for a text backbone).
    ndim : int or None
        Axes of the array inputs (3 or 4).
    channels_last : bool
        Where 4-D arrays kept their channels.
    image_shape : tuple
        The shape of one image as given (e.g. ``(H, W, C)``), for arrays.
    n_channels : int or None
        Channels the network received (1 or 3); None for files.
    """

    kind: str
    ndim: Optional[int] = None
    channels_last: bool = False
    image_shape: tuple = ()
    n_channels: Optional[int] = None


def _one_image_error(fitted: InputSignature, X, options: InputOptions, what: str, fitted_on: str) -> None:
    """Refuse one image without a batch axis, or an input that may be one, checked against
    ``fitted`` (2-D inputs are rows of pixels when ``image_shape`` is set)."""
    shape = tuple(getattr(X, "shape", ()))
    advice = f"pass one image with a batch axis, {what}[None] (or as a list, [image])"
    rows = len(shape) == 2 and options.image_shape is not None
    if fitted.kind == "array" and len(shape) == fitted.ndim - 1 and not rows:
        one = fitted.image_shape
        channel_axis = -1 if fitted.channels_last else 0
        if len(shape) == 2 or shape[channel_axis] == one[channel_axis]:
            raise ValueError(
                f"{what} has shape {shape}: one image of the kind {fitted_on} "
                f"({fitted.ndim}-D batches shaped (n, {', '.join(map(str, one))})); {advice}"
            )
    colour = len(shape) == 3 and shape[-1] in (3, 4)
    if fitted.kind == "array" and fitted.ndim == 3 and colour and fitted.image_shape[-1] not in (3, 4):
        raise ValueError(
            f"{what} of shape {shape} could be one color image or {shape[0]} grayscale images "
            f"like the (n, H, W) batches {fitted_on}; {advice}"
        )
    if fitted.kind == "files" and len(shape) == 3 and (shape[-1] in (1, 3, 4) or shape[0] in (3, 4)):
        raise ValueError(
            f"{what} of shape {shape} could be one image or {shape[0]} grayscale images; {advice}, "
            f"or a batch of grayscale images with a channel axis, {what}[..., None]"
        )


def validate_images(estimator, X, options: InputOptions, fitted: Optional[InputSignature] = None, *,
                    what: str = "X"):
    """Validate ``X`` as images read with ``options``.

    In ``fit`` (``fitted`` is None) describes ``X``; afterwards checks ``X``
    against ``fitted``. ``estimator`` is used only as scikit-learn's
    ``validate_data`` uses it, for 2-D rows (``n_features_in_``,
    ``feature_names_in_``). ``what`` names the input in messages: a
    validation set (``"X_val"``) is checked against the training ``X``.

    Returns
    -------
    source : ImageSource
    signature : InputSignature
    """
    from sklearn.utils.validation import validate_data

    name = type(estimator).__name__
    fitted_on = f"{name} was fitted on" if what == "X" else "X holds"
    paths = path_column(X)
    X = _as_array(X) if paths is None else paths
    if fitted is not None:
        _one_image_error(fitted, X, options, what, fitted_on)
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind not in "OSU":
        raise ValueError(
            f"Expected images, got a 1-D array of shape {X.shape}. Reshape your data to "
            "(n, H, W[, C]) images, or to (n, H*W*C) rows and set image_shape."
        )
    tabular = is_tabular(X)
    if fitted is not None and fitted.kind == "rows" and not tabular:
        raise ValueError(
            f"{fitted_on} 2-D rows of {estimator.n_features_in_} pixel values; "
            "pass the same kind of input"
        )
    if tabular:
        rows = validate_data(estimator, X, reset=fitted is None, dtype="numeric", accept_sparse=False)
        source = image_array_source(unflatten(rows, options), options)
        signature = InputSignature("rows", n_channels=source.n_channels)
    else:
        if fitted is None:
            for attr in ("n_features_in_", "feature_names_in_"):
                if hasattr(estimator, attr):
                    delattr(estimator, attr)
        source = image_source(X, options)
        if source.kind in ("array", "tensor"):
            signature = InputSignature("array", X.ndim, source.channels_last, tuple(X.shape[1:]),
                                       source.n_channels)
        else:
            signature = InputSignature("files")
    if fitted is not None and None not in (source.n_channels, fitted.n_channels) and (
        source.n_channels != fitted.n_channels
    ):
        raise ValueError(
            f"{what} has {source.n_channels}-channel images, but {fitted_on} "
            f"{fitted.n_channels}-channel images"
        )
    return source, signature
