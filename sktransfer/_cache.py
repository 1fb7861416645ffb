"""Compute a frozen backbone's work once: a feature cache shared by every estimator.

A frozen network maps the same image to the same features in every fit, fold
and grid point. Features are cached per image, under a key made of

* the configuration: sktransfer's version, backbone, weights (by content for
  files), stage, pooling, preprocessing (input size, mean, std, interpolation,
  resize mode, value range), compute dtype and device type; and
* a SHA-256 of the image's own bytes, dtype, shape and layout,

so a changed image, weight file or parameter misses, and cross-validation
folds (subsets of one dataset) hit. The cache lives in memory, bounded in
bytes (least recently used rows are evicted), and optionally in a directory
(``cache_dir``) that other processes and later sessions share.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ._version import __version__

DIGEST_BYTES = 16


def config_key(**parts) -> str:
    """A stable key for the configuration ``parts`` (any JSON-serializable values)."""

    text = json.dumps({"sktransfer": __version__, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def feature_key(estimator, weights_id, stage, data_config, compute, device_type):
    """The cache key of ``estimator``'s features, or None when they are not reproducible
    (random weights without a ``random_state``)."""
    if estimator.weights is None and estimator.random_state is None:
        return None
    return config_key(
        backbone=estimator.backbone, weights=weights_id,
        random_state=estimator.random_state if estimator.weights is None else None,
        stage=stage, pooling=estimator.pooling, data_config=data_config,
        resize=estimator.resize, value_range=estimator.value_range,
        compute=compute, device=device_type,
    )


class FeatureCache:
    """Per-image feature rows, least recently used evicted beyond ``max_bytes``.

    The process-wide instance is ``sktransfer.feature_cache``. Its counters
    say how much work the cache saved: ``hits`` and ``misses`` count images
    looked up, ``computed`` counts images that went through a backbone.

    It also keeps the last ``max_networks`` frozen networks that extractors
    built, so that fitting an equal extractor again (a clone in a grid search,
    a fold of a cross-validation) does not rebuild and reload the backbone:
    fitted extractors with equal parameters share one network.

    Parameters
    ----------
    max_bytes : int, default=1 GiB
        Memory bound for the cached rows.
    max_networks : int, default=2
        Frozen networks kept for reuse.

    Examples
    --------
    >>> from sktransfer import feature_cache
    >>> feature_cache.max_bytes = 512 * 2**20
    >>> sorted(feature_cache.stats())
    ['bytes', 'computed', 'hits', 'misses', 'rows']
    """

    def __init__(self, max_bytes: int = 1 << 30, max_networks: int = 2):
        self.max_bytes = max_bytes
        self.max_networks = max_networks
        self._networks: OrderedDict = OrderedDict()
        self._rows: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._disk_index: dict = {}
        self.hits = self.misses = self.computed = 0

    def stats(self) -> dict:
        """Counters and size: ``hits``, ``misses``, ``computed``, ``rows``, ``bytes``."""
        return {"hits": self.hits, "misses": self.misses, "computed": self.computed,
                "rows": len(self._rows), "bytes": self._bytes}

    def clear(self) -> None:
        """Drop every cached row and network (not the files of a ``cache_dir``) and reset
        the counters."""
        with self._lock:
            self._networks.clear()
            self._rows.clear()
            self._bytes = 0
            self._disk_index.clear()
            self.hits = self.misses = self.computed = 0

    def network(self, key, build):
        """The network built for ``key``, or ``build()``'s result, kept for next time."""
        with self._lock:
            if key in self._networks:
                self._networks.move_to_end(key)
                return self._networks[key]
        built = build()
        with self._lock:
            self._networks[key] = built
            while len(self._networks) > self.max_networks:
                self._networks.popitem(last=False)
        return built

    def lookup(self, key: str, digests, directory=None) -> dict:
        """Rows already known for ``digests``: ``{position: row}``."""
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
        """Keep freshly computed ``rows`` (one per digest), in memory and in ``directory``."""
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
        name = uuid.uuid4().hex
        # write to temporary names, then rename: readers only ever see whole chunks,
        # and the digests file, renamed last, marks a chunk as complete
        for suffix, array in (("features", rows.astype(np.float32)),
                              ("digests", np.frombuffer(b"".join(digests), np.uint8).reshape(len(digests), -1))):
            tmp = folder / f".{name}.{suffix}.tmp.npy"
            np.save(tmp, array)
            os.replace(tmp, folder / f"{name}.{suffix}.npy")

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
