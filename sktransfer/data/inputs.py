"""One input path: every accepted kind of image input, classified and validated into a source.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import narwhals.stable.v1 as nw
import numpy as np
import torch
from PIL import Image

from .files import IMAGE_EXTENSIONS
from .sources import ImageSource, unusable_images

# Samples per chunk when scanning arrays for NaN, infinity and range, so the
# scan's temporaries stay small whatever n is.
_SCAN_CHUNK = 256


@dataclass(frozen=True)
class InputOptions:
    """How to read numeric image arrays (estimator parameters of the same names)."""

    channel_axis: object = "auto"
    image_shape: Optional[tuple] = None
    value_range: Optional[tuple] = (0.0, 1.0)


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
    if not is_tensor and not x.dtype.isnative:  # big-endian data (a FITS or PGM file read raw, say)
        x = x.astype(x.dtype.newbyteorder("="))
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
    n_features : int or None
        Pixel values per row, for 2-D rows.
    """

    kind: str
    ndim: Optional[int] = None
    channels_last: bool = False
    image_shape: tuple = ()
    n_channels: Optional[int] = None
    n_features: Optional[int] = None


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


def validate_images(X, options: InputOptions, fitted: Optional[InputSignature] = None, *, owner: str,
                    what: str = "X", rows: Optional[Callable] = None):
    """Validate ``X`` as images read with ``options``.

    In ``fit`` (``fitted`` is None) describes ``X``; afterwards checks ``X`` against
    ``fitted``. ``owner`` (the estimator's class name) and ``what`` (``"X"``, or
    ``"X_val"`` for a validation set, checked against the training ``X``) name the
    input in messages. ``rows``, when given, validates 2-D tables of pixels as the
    estimator records them (scikit-learn's ``validate_data``, which keeps
    ``n_features_in_`` and ``feature_names_in_``); without it they are checked as
    numeric arrays.

    Returns
    -------
    source : ImageSource
    signature : InputSignature
    """
    from sklearn.utils import check_array

    fitted_on = f"{owner} was fitted on" if what == "X" else "X holds"
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
            f"{fitted_on} 2-D rows of {fitted.n_features} pixel values; pass the same kind of input"
        )
    if tabular:
        table = (rows or (lambda t: check_array(t, dtype="numeric", accept_sparse=False)))(X)
        source = image_array_source(unflatten(table, options), options)
        signature = InputSignature("rows", n_channels=source.n_channels, n_features=table.shape[1])
    else:
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
