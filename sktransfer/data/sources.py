"""Sources: validated inputs that read themselves in batches, and the one protocol they share.

A source is what the loader (:mod:`sktransfer.data.loader`) and the feature path
(:mod:`sktransfer.engine.features`) read. Every source has

* ``kind``: a short name (``"array"``, ``"tensor"``, ``"pil"``, ``"paths"``, ``"text"``,
  ``"stage_input"``...), which the cache also uses to tell inputs apart in its costs;
* ``len(source)``: the number of samples;
* ``read(indices)``: a batch of those samples, as the network's input (a tensor, a list
  of tensors of different sizes, or a dict of keyword tensors);
* ``digests()``: one digest per sample of what the network sees of it (the feature
  cache's key; sources that are never cached need not have it);
* ``keyed()``: the source to read while the cache is in use (images decoded from files
  record the digest of the bytes they read, ``decoded_digests``).

:class:`ImageSource` (arrays, tensors, PIL images, files) and :class:`TensorSource`
(precomputed network inputs) are here; :class:`~sktransfer.data.text.TextSource` holds texts.
Validation, which builds them, is :mod:`sktransfer.data.inputs`.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, Sequence, Union

import numpy as np
import torch

from .decoding import decode_file, decode_pil, digest, digest_rgb, read_file, sixteen_to_eight

# Samples hashed per task of the shared pool.
_SCAN_CHUNK = 256
# Arrays up to this size are hashed on the calling thread.
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


class Source(Protocol):
    """What every source provides (see the module's docs); the feature cache also calls
    ``digests()`` and ``keyed()`` on the sources it keys (images and texts)."""

    kind: str

    def __len__(self) -> int: ...

    def read(self, indices: Sequence[int]): ...


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
            # threads still spin on after the last forward pass (benchmarks/bench_cache.py)
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
            return digest_rgb(decode_pil(self.items[index], index, self.value_range))
        except (OSError, ValueError) as exc:
            return exc


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


def unusable_images(problems: list, total: int, noun: str = "images") -> Exception:
    """One exception for ``problems`` (``(index, exception)`` pairs, each message
    starting with ``X[index]``): the first :data:`MAX_LISTED` listed, and how many
    ``noun`` in all. FileNotFoundError when every problem is a missing file, else ValueError."""
    if len(problems) == 1:
        return problems[0][1]
    lines = [str(exc) for _, exc in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"... and {len(problems) - MAX_LISTED} more")
    message = f"{len(problems)} of {total} {noun} cannot be used:\n  " + "\n  ".join(lines)
    missing = all(isinstance(exc, FileNotFoundError) for _, exc in problems)
    return (FileNotFoundError if missing else ValueError)(message)


class TensorSource:
    """Precomputed network inputs read as ``{name: rows}`` batches.

    ``name`` is the keyword the network's ``forward`` takes them under
    (``stage_input``): the outputs of frozen stages, computed once per fit
    instead of once per epoch.
    """

    def __init__(self, name: str, tensor: torch.Tensor):
        self.name = name
        self.tensor = tensor
        self.kind = "tensor"

    def __len__(self):
        return len(self.tensor)

    def read(self, indices):
        return {self.name: self.tensor[torch.as_tensor(np.asarray(indices, dtype=np.int64))]}
