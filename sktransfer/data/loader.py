"""Batches on their way to the device: read ahead, copied while the model runs.

A background thread reads (and decodes) the next batches of files, PIL images
or texts while the current one is being used. In-memory data (arrays, tensors)
is read inline: the read is a cheap copy, and a second thread would only
contend with the thread that launches the GPU's work for the GIL and the cores.
On CUDA every batch is pinned and copied on a side stream; an inline batch is
read, pinned and its copy started after the current batch is handed over, so
that it overlaps the forward pass the caller has just queued. The same loader
feeds feature extraction and skorch's training loop (as its
``iterator_train``/``iterator_valid``); under a launcher, fitting reads through
:meth:`BatchLoader.shared`, this process's share of every batch.
"""

from __future__ import annotations

import copy
import queue
import threading
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from .launch import share
from .sources import ImageSource

_PREFETCH = 2  # batches read ahead of the one in use
_DONE = object()


class ImageDataset(Dataset):
    """An :class:`ImageSource` (or :class:`TensorSource`) with optional integer targets
    and per-sample loss weights, as a torch ``Dataset``.

    Indexing returns ``(image, target)`` for compatibility with torch tools;
    the batch path is :class:`BatchLoader`, which reads whole batches. With
    ``weights``, batches are ``{"x" or the source's name: inputs,
    "sample_weight": weights}``: skorch passes such a dict to the network's
    ``forward`` as keywords and to ``get_loss`` as ``X``, its documented way of
    carrying sample weights.
    """

    def __init__(self, source: ImageSource, y: Optional[np.ndarray] = None,
                 weights: Optional[np.ndarray] = None):
        self.source = source
        self.y = None if y is None else np.asarray(y)
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        sample = _map(self.source.read([i]), lambda t: t[0])
        return sample, (None if self.y is None else torch.as_tensor(self.y[i]))


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    """Batches per pass over ``n`` samples (a last partial batch is dropped only when
    ``drop_last`` and at least one full batch exists)."""
    return n // batch_size if drop_last and n >= batch_size else -(-n // batch_size)


def _unwrap(dataset):
    """``(ImageDataset, indices)`` for an ImageDataset or (nested) Subsets of one."""
    indices = np.arange(len(dataset))
    while isinstance(dataset, Subset):
        indices = np.asarray(dataset.indices)[indices]
        dataset = dataset.dataset
    if not isinstance(dataset, ImageDataset):
        raise TypeError(f"BatchLoader reads ImageDataset objects, got {type(dataset).__name__}")
    return dataset, indices


def _tensors(batch):
    """The tensors of a batch: a tensor, a list of tensors, or a dict of either."""
    if isinstance(batch, dict):
        return [t for value in batch.values() for t in _tensors(value)]
    return batch if isinstance(batch, list) else [batch]


def _map(batch, fn):
    """``fn`` over every tensor of a batch: a tensor, a list of them (images of several
    sizes), or a dict of either (inputs with sample weights)."""
    if isinstance(batch, dict):
        return {k: _map(v, fn) for k, v in batch.items()}
    return [fn(b) for b in batch] if isinstance(batch, list) else fn(batch)


def _pin(batch):
    # tensors already on a GPU (a CUDA tensor given as X) need no staging
    return _map(batch, lambda t: t.pin_memory() if t.device.type == "cpu" else t)


def _to(batch, device, non_blocking: bool):
    return _map(batch, lambda t: t.to(device, non_blocking=non_blocking))


def _record(batch, stream) -> None:
    for t in _tensors(batch):
        t.record_stream(stream)


class BatchLoader:
    """Iterate over ``(images, targets)`` batches of an :class:`ImageDataset` on ``device``.

    Parameters
    ----------
    dataset : ImageDataset or torch.utils.data.Subset of one
    batch_size : int
    shuffle : bool, default=False
        Draw a new order every epoch from ``seed``.
    device : str or torch.device, default="cpu"
    seed : int or None, default=None
    drop_last : bool, default=False
        Skip a last incomplete batch (used in training, where a batch of one
        sample would break BatchNorm).
    """

    def __init__(self, dataset, batch_size, shuffle=False, device="cpu", seed=None, drop_last=False):
        self.dataset, self.indices = _unwrap(dataset)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.device = torch.device(device)
        self.drop_last = drop_last
        self._rng = np.random.default_rng(seed)
        self.rank, self.world_size = 0, 1

    def shared(self, rank: int, world_size: int) -> "BatchLoader":
        """This loader as process ``rank`` of ``world_size`` reads it (a data-parallel fit).

        Every process draws the same order (the same ``seed``, one permutation per
        epoch, as ``DistributedSampler`` with ``set_epoch``) and cuts it into global
        batches of ``batch_size * world_size``; each is cut into ``world_size``
        contiguous pieces and this process reads piece ``rank``. Together the
        processes read, step by step, the batches of one process at ``batch_size *
        world_size``. Without ``drop_last``, a last global batch too small to give
        every process a sample joins the one before. The view draws from this
        loader's generator: views made epoch after epoch see new orders.
        """
        if len(self.indices) < world_size:
            raise ValueError(f"{len(self.indices)} samples cannot be shared by {world_size} processes: each "
                             "needs at least one; launch fewer processes or pass more data")
        view = copy.copy(self)
        view.rank, view.world_size = rank, world_size
        return view

    def __len__(self):
        return len(self._bounds())

    def _bounds(self) -> list:
        """``(start, stop)`` of each global batch in an epoch's order."""
        n, size = len(self.indices), self.batch_size * self.world_size
        bounds = [(i, min(i + size, n)) for i in range(0, num_batches(n, size, self.drop_last) * size, size)]
        if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < self.world_size:
            bounds[-2:] = [(bounds[-2][0], bounds[-1][1])]
        return bounds

    def global_sizes(self) -> list:
        """The number of samples of each global batch (every process's pieces together), in order."""
        return [stop - start for start, stop in self._bounds()]

    def _batches(self):
        order = self._rng.permutation(self.indices) if self.shuffle else self.indices
        return [share(order[start:stop], self.rank, self.world_size) for start, stop in self._bounds()]

    def _read(self, idx):
        x = self.dataset.source.read(idx)
        y = None if self.dataset.y is None else torch.from_numpy(self.dataset.y[idx])
        if self.dataset.weights is not None:
            weights = self.dataset.weights[torch.as_tensor(idx)]
            x = {**x, "sample_weight": weights} if isinstance(x, dict) else {"x": x, "sample_weight": weights}
        return x, y

    def __iter__(self):
        batches = self._batches()
        cuda = self.device.type == "cuda"
        if self.dataset.source.kind in ("array", "tensor"):  # in memory: read inline
            if cuda:
                yield from self._inline_cuda_iter(batches)
            else:
                for idx in batches:
                    yield self._read(idx)
            return
        pending: queue.Queue = queue.Queue(maxsize=_PREFETCH)
        stop = threading.Event()

        def produce():
            try:
                for idx in batches:
                    item = self._read(idx)
                    if cuda:
                        item = tuple(None if t is None else _pin(t) for t in item)
                    while not stop.is_set():
                        try:
                            pending.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                pending.put(_DONE)
            except BaseException as exc:  # handed to the consumer, never lost
                pending.put(exc)

        thread = threading.Thread(target=produce, daemon=True, name="sktransfer-reader")
        thread.start()
        try:
            yield from (self._cuda_iter(pending) if cuda else self._host_iter(pending))
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    pending.get(timeout=0.1)
                except queue.Empty:
                    pass
            thread.join()

    @staticmethod
    def _take(pending):
        item = pending.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def _host_iter(self, pending):
        while (item := self._take(pending)) is not _DONE:
            yield tuple(None if t is None else _to(t, self.device, False) for t in item)

    def _cuda_copies(self):
        """``(start, ready)``: ``start(item)`` copies a pinned batch to the device on a side
        stream; ``ready(copied)`` makes the compute stream wait for it."""
        copy_stream = torch.cuda.Stream(self.device)
        compute = torch.cuda.current_stream(self.device)

        def start(item):
            with torch.cuda.stream(copy_stream):
                return tuple(None if t is None else _to(t, self.device, True) for t in item)

        def ready(copied):
            compute.wait_stream(copy_stream)
            for t in copied:
                if t is not None:
                    _record(t, compute)
            return copied

        return start, ready

    def _cuda_iter(self, pending):
        start, ready = self._cuda_copies()
        item = self._take(pending)
        ahead = None if item is _DONE else start(item)
        while ahead is not None:
            current = ready(ahead)
            item = self._take(pending)
            ahead = None if item is _DONE else start(item)
            yield current

    def _inline_cuda_iter(self, batches):
        # pinned buffers come from torch's caching host allocator, reused once their copy is done
        start, ready = self._cuda_copies()

        def stage(idx):
            return start(tuple(None if t is None else _pin(t) for t in self._read(idx)))

        ahead = stage(batches[0]) if batches else None
        for idx in batches[1:]:
            current = ready(ahead)
            yield current
            ahead = stage(idx)  # while the GPU runs what the caller queued for ``current``
        if ahead is not None:
            yield ready(ahead)
