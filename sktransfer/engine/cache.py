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
* the version of the decoding rules and of the cache's file format, and
* a digest of what the network sees of the image (:mod:`sktransfer.data.decoding`):
  an array's values, dtype, shape and layout, the bytes of a file as read for
  decoding, a PIL image's decoded pixels,

so a changed image, weight or parameter misses, and cross-validation folds
(subsets of one dataset) hit. The cache lives in memory, bounded in bytes
(least recently used rows are evicted), and optionally in a directory
(``cache_dir``) that other processes and later sessions share.

A directory's files are checked when read: each chunk keeps a checksum of every
row beside the image digests, and a chunk that is truncated, short, malformed
or has a row that does not match its checksum is discarded (deleted, with a
warning naming the file) and its rows computed again. The cache also steps
aside, for a configuration, when checking it costs more per image than the
network takes to compute one (a tiny network, a fast GPU), or a noticeable share
of it that the hits so far have not paid back (:meth:`FeatureCache.use`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import threading
import uuid
import warnings
import weakref
from collections import OrderedDict, defaultdict
from contextlib import suppress
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..persistence.atomic import atomic_path
from .._version import __version__
from ..data.decoding import DECODING_RULES, DIGEST_BYTES
from ..data.launch import is_main_process
from ..data.sources import workers

#: The layout of a ``cache_dir`` chunk: bumped when it changes (part of every key).
CACHE_FORMAT = 2
#: Calls, and images, of a configuration measured before the cache may step aside.
TRIAL_CALLS = 3
TRIAL_IMAGES = 1000
#: Calls stepped aside (for want of hits) before the cache tries again; doubles each time.
RETRY_CALLS = 8


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

    Hashing a network's weights (SHA-1 per tensor, in parallel) costs tens to
    hundreds of milliseconds on a CPU, so the digest is kept and reused
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


class FeatureKey:
    """The cache key of the features ``model`` computes under ``spec``.

    ``configuration`` (resolved values only) is computed once per configuration and
    names the costs the cache measures; calling the key adds the weights as they are
    now (a fingerprint, see :func:`weights_fingerprint`), only when the cache is used.
    """

    def __init__(self, spec, data_config, stage_index: int, model: nn.Module, autocast=None):
        self.configuration = _configuration(spec, data_config, stage_index, str(autocast))
        self.model = model

    def __call__(self) -> str:
        h = hashlib.sha256(self.configuration.encode())
        h.update(weights_fingerprint(self.model).encode())
        return h.hexdigest()[:32]


def feature_key(spec, data_config, stage_index: int, model: nn.Module, autocast=None) -> str:
    """The cache key of the features ``model`` computes under ``spec`` (see :class:`FeatureKey`)."""
    return FeatureKey(spec, data_config, stage_index, model, autocast)()


@functools.lru_cache(maxsize=64)  # computed once per configuration, not per call
def _configuration(spec, data_config, stage_index: int, autocast: str) -> str:
    text = json.dumps({
        "sktransfer": __version__,
        "backbone": spec.backbone,
        "stage": stage_index,
        "pooling": spec.pooling,
        "data_config": dataclasses.asdict(data_config),
        "resize": spec.resize,
        "value_range": spec.inputs.value_range,
        "device": spec.torch_device.type,
        "autocast": autocast,
        "decoding": DECODING_RULES,
        "cache_format": CACHE_FORMAT,
    }, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _checksum(row: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(row, dtype=np.float32).data, digest_size=DIGEST_BYTES).digest()


class DamagedChunk(Exception):
    """A ``cache_dir`` chunk that cannot be trusted (the message says why)."""


class _Chunk:
    """One chunk of a ``cache_dir``: ``<name>.features.npy`` (float32 rows) and
    ``<name>.digests.npy`` (per row: the image's digest, then the row's checksum),
    written in that order, each atomically. Rows are read with plain reads (no memory
    map: a file truncated by someone else cannot crash the reader) and checked."""

    def __init__(self, folder: Path, name: str):
        self.name = name
        self.features, self.digests = _chunk_files(folder, name)
        try:
            table = np.load(self.digests, allow_pickle=False)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, EOFError) as exc:
            raise DamagedChunk(f"its digests cannot be read ({exc})") from None
        if table.dtype != np.uint8 or table.ndim != 2 or table.shape[1] != 2 * DIGEST_BYTES:
            raise DamagedChunk(f"its digests have dtype {table.dtype} and shape {table.shape}")
        self.image_digests = [bytes(d) for d in table[:, :DIGEST_BYTES]]
        self.checksums = [bytes(d) for d in table[:, DIGEST_BYTES:]]
        try:
            with open(self.features, "rb") as f:
                header = _HEADERS.get(np.lib.format.read_magic(f))
                if header is None:
                    raise ValueError("an unknown .npy version")
                shape, fortran, dtype = header(f)
                self.offset = f.tell()
        except FileNotFoundError:
            raise
        except (OSError, ValueError, EOFError) as exc:
            raise DamagedChunk(f"its features cannot be read ({exc})") from None
        if dtype.kind != "f" or dtype.itemsize != 4 or len(shape) != 2 or fortran or shape[0] != len(table):
            raise DamagedChunk(f"it holds {dtype} features of shape {shape} for {len(table)} digests")
        self.width, self.dtype = shape[1], dtype
        expected = self.offset + shape[0] * shape[1] * 4
        if os.path.getsize(self.features) != expected:
            raise DamagedChunk(f"its features file holds {os.path.getsize(self.features)} bytes, not {expected}")

    def read(self, rows) -> np.ndarray:
        """The rows at ``rows`` (sorted), each checked against its checksum."""
        out = np.empty((len(rows), self.width), dtype=np.float32)
        size = self.width * 4
        with open(self.features, "rb") as f:
            start = 0
            while start < len(rows):  # one read per run of consecutive rows
                stop = start + 1
                while stop < len(rows) and rows[stop] == rows[stop - 1] + 1:
                    stop += 1
                f.seek(self.offset + rows[start] * size)
                data = f.read((stop - start) * size)
                if len(data) != (stop - start) * size:
                    raise DamagedChunk("it is shorter than its header says")
                out[start:stop] = np.frombuffer(data, dtype=self.dtype).reshape(stop - start, self.width)
                start = stop
        for position, row in enumerate(rows):
            if _checksum(out[position]) != self.checksums[row]:
                raise DamagedChunk(f"row {row} does not match its checksum")
        return out


_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _chunk_files(folder: Path, name: str) -> tuple:
    return folder / f"{name}.features.npy", folder / f"{name}.digests.npy"


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
        self._set_aside_chunks: set = set()  # chunk files damaged or unreadable, not read again here
        self._costs: dict = {}
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
        """Drop every cached row (not the files of a ``cache_dir``), the measured costs,
        and reset the counters."""
        with self._lock:
            self._rows.clear()
            self._bytes = 0
            self._disk_index.clear()
            self._set_aside_chunks.clear()
            self._costs.clear()
            self.hits = self.misses = self.computed = 0

    def use(self, configuration: str, kind: str) -> bool:
        """Whether a call with inputs of ``kind`` under ``configuration`` uses the cache.

        After a trial of :data:`TRIAL_CALLS` calls and :data:`TRIAL_IMAGES` images,
        the cache steps aside when checking and storing an image has cost at least
        what the network takes to compute one (no hit can pay for that), or more than
        2 % of it without the hits so far paying for it (``hit rate x compute <
        overhead``). Stepped aside for want of hits, it tries again on the 8th call,
        then the 16th after that, the 32nd...: hits that come later (a grid search
        after a few new inputs) still count, at a cost that shrinks to nothing. (A
        ``cache_dir`` is never stepped aside: its rows serve later sessions too.)

        Parameters
        ----------
        configuration : str
            The configuration's digest (``FeatureKey.configuration``).
        kind : str
            The kind of input (``"array"``, ``"paths"``, ``"text"``...).

        Returns
        -------
        use : bool
        """
        with self._lock:
            costs = self._costs.get((configuration, kind))
            if costs is None or costs["calls"] < TRIAL_CALLS or costs["looked"] < TRIAL_IMAGES:
                return True
            overhead = costs["overhead"] / costs["looked"]
            compute = costs["compute"] / max(costs["computed"], 1)
            if overhead >= compute:
                return False
            if overhead <= 0.02 * compute or costs["hits"] / costs["looked"] * compute > overhead:
                return True
            costs["aside"] += 1
            if costs["aside"] < costs["retry"]:
                return False
            costs["aside"], costs["retry"] = 0, costs["retry"] * 2
            return True

    def measured(self, configuration: str, kind: str, looked: int, hits: int, overhead: float, computed: int,
                 compute: float) -> None:
        """Add what a call cost to the tally :meth:`use` reads.

        Parameters
        ----------
        configuration : str
            The configuration's digest.
        kind : str
            The kind of input.
        looked, hits : int
            Images looked up, and found.
        overhead : float
            Seconds spent on the cache: digests, lookups, stores.
        computed : int
            Images the network computed.
        compute : float
            Seconds the network took for them.
        """
        with self._lock:
            costs = self._costs.setdefault((configuration, kind), dict(
                dict.fromkeys(("calls", "looked", "hits", "overhead", "computed", "compute", "aside"), 0),
                retry=RETRY_CALLS))
            for name, value in (("calls", 1), ("looked", looked), ("hits", hits), ("overhead", overhead),
                                ("computed", computed), ("compute", compute)):
                costs[name] += value

    def lookup(self, key: str, digests, directory=None) -> dict:
        """Rows already known for ``digests``.

        Parameters
        ----------
        key : str
            The configuration's key (see :func:`feature_key`).
        digests : list of bytes
            One content digest per image.
        directory : str or path, optional
            Also look in this ``cache_dir``; its rows are checked as they are read.

        Returns
        -------
        found : dict of int to ndarray
            ``{position in digests: feature row}`` for the images found.
        """
        found = {}
        prefix = key.encode()
        with self._lock:
            for i, digest in enumerate(digests):
                row = self._rows.get(prefix + digest)
                if row is not None:
                    self._rows.move_to_end(prefix + digest)
                    found[i] = row
        if directory is not None and len(found) < len(digests):
            found.update(self._read_disk(key, digests, found, directory))
        with self._lock:  # parallel transforms (threads) share the counters
            self.hits += len(found)
            self.misses += len(digests) - len(found)
        return found

    def _read_disk(self, key, digests, found, directory) -> dict:
        index = self._disk(directory, key)
        wanted = defaultdict(list)  # chunk -> [(row, position)]
        for i, digest in enumerate(digests):
            if i not in found and digest in index:
                chunk, row = index[digest]
                wanted[chunk].append((row, i))
        rows = {}
        for chunk, pairs in wanted.items():
            pairs.sort()
            try:
                values = chunk.read([row for row, _ in pairs])
            except FileNotFoundError:  # discarded, or cleaned up, by another process
                continue
            except DamagedChunk as exc:
                self._set_aside(chunk.features.parent, chunk.name, str(exc), damaged=True)
                continue
            except OSError as exc:  # unreadable here and now (permissions, I/O): not deleted
                self._set_aside(chunk.features.parent, chunk.name, exc.strerror or str(exc), damaged=False)
                continue
            for (_, i), value in zip(pairs, values):
                rows[i] = value
            self._remember(key, [digests[i] for _, i in pairs], values)
        return rows

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
            a partial chunk), from the main process only under a launcher
            (``torchrun``, whose processes all compute the same rows).
        """
        with self._lock:
            self.computed += len(digests)
        self._remember(key, digests, rows)
        if directory is not None and len(digests) and is_main_process():
            self._write(Path(directory) / key, digests, rows)

    def _remember(self, key, digests, rows):
        # bytes keys, not tuples: no allocation the garbage collector tracks, which would
        # bring its full passes (a quarter of a second with torch loaded) on sooner
        prefix = key.encode()
        with self._lock:
            for digest, row in zip(digests, rows):
                if prefix + digest in self._rows:
                    continue
                row = np.array(row)  # own the memory, not a view of the batch
                self._rows[prefix + digest] = row
                self._bytes += row.nbytes
            while self._bytes > self.max_bytes and self._rows:
                _, old = self._rows.popitem(last=False)
                self._bytes -= old.nbytes

    @staticmethod
    def _write(folder: Path, digests, rows):
        folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex  # chunks of concurrent writers never share a name
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        table = np.frombuffer(b"".join(d + _checksum(r) for d, r in zip(digests, rows)), np.uint8)
        # readers only ever see whole files, and the digests file, written last, marks a
        # chunk as complete
        for suffix, array in (("features", rows), ("digests", table.reshape(len(digests), -1))):
            with atomic_path(folder / f"{name}.{suffix}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, array)

    def _disk(self, directory, key) -> dict:
        """``{digest: (chunk, row)}`` for every complete chunk in ``directory/key``; a chunk
        that cannot be read is discarded."""
        folder = Path(directory) / key
        if not folder.is_dir():
            return {}
        names = sorted(name for name in (p.name[: -len(".digests.npy")] for p in folder.glob("*.digests.npy"))
                       if str(_chunk_files(folder, name)[0]) not in self._set_aside_chunks)
        cached = self._disk_index.get(folder)
        if cached is not None and cached[0] == names:
            return cached[1]
        index = {}
        for name in names:
            try:
                chunk = _Chunk(folder, name)
            except FileNotFoundError:  # discarded by another process since the listing
                continue
            except DamagedChunk as exc:
                self._set_aside(folder, name, str(exc), damaged=True)
                continue
            for row, digest in enumerate(chunk.image_digests):
                index[digest] = (chunk, row)
        self._disk_index[folder] = (names, index)
        return index

    def _set_aside(self, folder: Path, name: str, reason: str, damaged: bool) -> None:
        """Stop reading a chunk in this process, with a warning naming its file; a damaged
        one is deleted (its rows are computed again and stored anew), an unreadable one
        (permissions, an I/O error) is left for others."""
        features, digests = _chunk_files(folder, name)
        self._set_aside_chunks.add(str(features))
        if damaged:
            warnings.warn(f"feature cache file {str(features)!r} is damaged ({reason}); it is discarded and "
                          "its rows are computed again", RuntimeWarning, stacklevel=5)
            for path in (digests, features):  # the digests first: a chunk is complete only with both
                with suppress(OSError):
                    path.unlink()
        else:
            warnings.warn(f"feature cache file {str(features)!r} cannot be read ({reason}); its rows are "
                          "computed again", RuntimeWarning, stacklevel=5)


feature_cache = FeatureCache()
