"""Compute a frozen backbone's work once: a feature cache shared by every estimator.

A frozen network maps the same image to the same features in every fit, fold
and grid point. Features are cached per image, under a key made of

* the configuration: sktransfer's version, backbone, stage, pooling,
  preprocessing (input size, mean, std, interpolation, resize mode, value
  range), device type and autocast dtype;
* a fingerprint of the network's weights as they are when it runs (every
  parameter and buffer: name, dtype, shape and bytes), so weights edited after
  ``fit``, another seed, or a weights file rewritten in place all miss. The
  digest is computed once and reused while no tensor has been replaced, moved
  or written in place (autograd's version counters); a write through
  ``.data``, which bypasses those counters, is not seen; and
* a SHA-256 of the image's own bytes, dtype, shape and layout,

so a changed image, weight or parameter misses, and cross-validation folds
(subsets of one dataset) hit. The cache lives in memory, bounded in bytes
(least recently used rows are evicted), and optionally in a directory
(``cache_dir``) that other processes and later sessions share.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import uuid
import weakref
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._atomic import atomic_path
from ._version import __version__
from .data.inputs import workers

DIGEST_BYTES = 16


def _tensor_digest(item) -> bytes:
    name, tensor = item
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    digest = hashlib.sha1(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
    digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return digest.digest()


_fingerprints: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_fingerprints_lock = threading.Lock()


def weights_fingerprint(module: nn.Module) -> str:
    """A digest of every parameter and buffer of ``module``: name, dtype, shape, bytes.

    Hashing costs about 40 ms for ResNet-18 and 300 ms for ResNet-50 on two CPU
    cores (SHA-1 per tensor, in parallel), so the digest is kept and reused
    while every tensor is the same object, at the same address, with the same
    autograd version counter: replacing, casting, moving, loading a state dict
    or writing in place (under ``torch.no_grad()``) all count as a change.
    """
    tensors = [*module.named_parameters(), *module.named_buffers()]
    state = tuple((name, id(t), t.data_ptr(), t._version, t.dtype, t.device) for name, t in tensors)
    with _fingerprints_lock:
        kept = _fingerprints.get(module)
    if kept is not None and kept[0] == state:
        return kept[1]
    digest = hashlib.sha1()
    for part in workers().map(_tensor_digest, tensors):
        digest.update(part)
    with _fingerprints_lock:
        _fingerprints[module] = (state, digest.hexdigest())
    return digest.hexdigest()


def feature_key(spec, data_config, stage_index: int, model: nn.Module, autocast=None) -> str:
    """The cache key of the features ``model`` computes under ``spec``: configuration
    (resolved values only) and the weights as they are now."""
    text = json.dumps({
        "sktransfer": __version__,
        "backbone": spec.backbone,
        "stage": stage_index,
        "pooling": spec.pooling,
        "data_config": dataclasses.asdict(data_config),
        "resize": spec.resize,
        "value_range": spec.inputs.value_range,
        "device": spec.torch_device.type,
        "autocast": str(autocast),
        "weights": weights_fingerprint(model),
    }, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class FeatureCache:
    """Per-image feature rows, least recently used evicted beyond ``max_bytes``.

    The process-wide instance is ``sktransfer.feature_cache``. Its counters
    say how much work the cache saved: ``hits`` and ``misses`` count images
    looked up, ``computed`` counts images that went through a backbone.

    Parameters
    ----------
    max_bytes : int, default=1 GiB
        Memory bound for the cached rows.

    Examples
    --------
    >>> from sktransfer import feature_cache
    >>> feature_cache.max_bytes = 512 * 2**20
    >>> sorted(feature_cache.stats())
    ['bytes', 'computed', 'hits', 'misses', 'rows']
    """

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = max_bytes
        self._rows: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._disk_index: dict = {}
        self.hits = self.misses = self.computed = 0

    def stats(self) -> dict:
        """Counters and size.

        Returns
        -------
        stats : dict
            ``hits``, ``misses`` (images looked up), ``computed`` (images run
            through a network), ``rows`` and ``bytes`` held in memory.
        """
        return {"hits": self.hits, "misses": self.misses, "computed": self.computed,
                "rows": len(self._rows), "bytes": self._bytes}

    def clear(self) -> None:
        """Drop every cached row (not the files of a ``cache_dir``) and reset the counters."""
        with self._lock:
            self._rows.clear()
            self._bytes = 0
            self._disk_index.clear()
            self.hits = self.misses = self.computed = 0

    def lookup(self, key: str, digests, directory=None) -> dict:
        """Rows already known for ``digests``.

        Parameters
        ----------
        key : str
            The configuration's key (see :func:`feature_key`).
        digests : list of bytes
            One content digest per image.
        directory : str or path, optional
            Also look in this ``cache_dir``.

        Returns
        -------
        found : dict of int to ndarray
            ``{position in digests: feature row}`` for the images found.
        """
        found = {}
        disk = self._disk(directory, key) if directory is not None else {}
        with self._lock:
            for i, digest in enumerate(digests):
                row = self._rows.get((key, digest))
                if row is not None:
                    self._rows.move_to_end((key, digest))
                    found[i] = row
        for i, digest in enumerate(digests):
            if i not in found and digest in disk:
                chunk, index = disk[digest]
                found[i] = np.array(chunk[index])
                self._remember(key, [digest], found[i][None])
        with self._lock:  # parallel transforms (threads) share the counters
            self.hits += len(found)
            self.misses += len(digests) - len(found)
        return found

    def store(self, key: str, digests, rows: np.ndarray, directory=None) -> None:
        """Keep freshly computed rows, in memory and in ``directory``.

        Parameters
        ----------
        key : str
            The configuration's key.
        digests : list of bytes
            One content digest per row.
        rows : ndarray of shape (len(digests), n_features)
            The features.
        directory : str or path, optional
            Also write them to this ``cache_dir`` (atomically: readers never see
            a partial chunk).
        """
        with self._lock:
            self.computed += len(digests)
        self._remember(key, digests, rows)
        if directory is not None and len(digests):
            self._write(Path(directory) / key, digests, rows)

    def _remember(self, key, digests, rows):
        with self._lock:
            for digest, row in zip(digests, rows):
                if (key, digest) in self._rows:
                    continue
                row = np.array(row)  # own the memory, not a view of the batch
                self._rows[(key, digest)] = row
                self._bytes += row.nbytes
            while self._bytes > self.max_bytes and self._rows:
                _, old = self._rows.popitem(last=False)
                self._bytes -= old.nbytes

    @staticmethod
    def _write(folder: Path, digests, rows):
        folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex  # chunks of concurrent writers never share a name
        # readers only ever see whole files, and the digests file, written last, marks a
        # chunk as complete
        for suffix, array in (("features", rows.astype(np.float32)),
                              ("digests", np.frombuffer(b"".join(digests), np.uint8).reshape(len(digests), -1))):
            with atomic_path(folder / f"{name}.{suffix}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, array)

    def _disk(self, directory, key) -> dict:
        """``{digest: (features memmap, row)}`` for every complete chunk in ``directory/key``."""
        folder = Path(directory) / key
        if not folder.is_dir():
            return {}
        chunks = sorted(p.name[: -len(".digests.npy")] for p in folder.glob("*.digests.npy"))
        cached = self._disk_index.get(folder)
        if cached is not None and cached[0] == chunks:
            return cached[1]
        index = {}
        for chunk in chunks:
            digests = np.load(folder / f"{chunk}.digests.npy")
            features = np.load(folder / f"{chunk}.features.npy", mmap_mode="r")
            for row, digest in enumerate(digests):
                index[digest.tobytes()] = (features, row)
        self._disk_index[folder] = (chunks, index)
        return index


feature_cache = FeatureCache()
