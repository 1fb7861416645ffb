"""Running a frozen network over a whole input: the one feature path of both estimators."""

from __future__ import annotations

import contextlib
import time
from typing import Optional

import numpy as np
import torch
from torch import nn

from .backoff import BatchBackoff
from .cache import feature_cache
from ..data.sources import Source
from ..data.loader import BatchLoader, ImageDataset
from .progress import progress


@contextlib.contextmanager
def inference(device: torch.device, autocast_dtype=None):
    """``inference_mode``, cuDNN autotuning, and autocast when asked, on ``device``."""
    cuda = device.type == "cuda"
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = saved or cuda  # input sizes repeat: tune kernels once
    try:
        with torch.inference_mode(), torch.autocast(
            device.type, dtype=autocast_dtype or torch.float32, enabled=cuda and autocast_dtype is not None
        ):
            yield
    finally:
        torch.backends.cudnn.benchmark = saved


def run(model: nn.Module, source: Source, indices, *, batch_size, device, autocast_dtype=None,
        verbose=0, out_dtype=torch.float32, max_bytes=None) -> Optional[torch.Tensor]:
    """``model`` applied to the images at ``indices``, gathered on the host.

    On CUDA the results are copied into pinned memory without a synchronization
    per batch, so the host keeps queueing work ahead of the GPU. A batch that
    runs out of memory runs again in pieces (:class:`~sktransfer.engine.backoff.BatchBackoff`). With
    ``max_bytes``, returns None as soon as the first batch shows that the
    whole output would be larger.
    """
    loader = BatchLoader(torch.utils.data.Subset(ImageDataset(source), indices), batch_size, device=device)
    on_cuda = device.type == "cuda"
    out, position = None, 0
    backoff = BatchBackoff("inference")
    with inference(device, autocast_dtype):
        for x, _ in progress(loader, enabled=verbose > 0, desc="running the frozen network"):
            # tokenized text comes as a dict of the network's keyword arguments
            parts = backoff(lambda part, share: model(**part) if isinstance(part, dict) else model(part), x)
            result = parts[0] if len(parts) == 1 else torch.cat(parts)
            if out is None:
                row_bytes = result[0].numel() * out_dtype.itemsize
                if max_bytes is not None and row_bytes * len(indices) > max_bytes:
                    return None
                out = torch.empty((len(indices), *result.shape[1:]), dtype=out_dtype, pin_memory=on_cuda)
            out[position:position + len(result)].copy_(result, non_blocking=on_cuda)
            position += len(result)
    if on_cuda:
        torch.cuda.synchronize(device)
    return out


def extract(model: nn.Module, source: Source, width: int, *, batch_size, device, key=None,
            directory=None, autocast_dtype=None, verbose=0, wrap=None) -> np.ndarray:
    """Pooled float32 features ``(n, width)``; with a ``key`` (a
    :class:`~sktransfer.engine.cache.FeatureKey`), only uncached inputs run.

    Rows computed from files are stored under the digest of the bytes decoded, so a
    file that changes while it is read never lends its new features to its old key.
    Where checking the in-memory cache has not paid on earlier calls with the same
    configuration (see :meth:`~sktransfer.FeatureCache.use`), it steps aside.

    Texts run sorted by length, so that each batch pads to similar lengths (the
    features go back to the input's order). ``wrap(model, n)``, when given, returns
    what runs in place of ``model`` over the ``n`` images left to compute (the
    ``compile="auto"`` policy)."""
    n = len(source)
    out = np.empty((n, width), dtype=np.float32)
    digests, missing, overhead = None, np.arange(n), 0.0
    configuration = None if key is None else key.configuration
    if key is not None and directory is None and not feature_cache.use(configuration, source.kind):
        key = None
    if key is not None:
        key = key()  # the weights' fingerprint (once per network): only when the cache is used
        start = time.perf_counter()
        source = source.keyed()
        digests = source.digests()
        found = feature_cache.lookup(key, digests, directory)
        for i, row in found.items():
            out[i] = row
        missing = np.array([i for i in range(n) if i not in found], dtype=np.int64)
        overhead = time.perf_counter() - start
    if source.kind == "text":
        missing = missing[np.argsort([len(source.items[i]) for i in missing], kind="stable")]
    compute = 0.0
    if len(missing):
        start = time.perf_counter()
        runner = model if wrap is None else wrap(model, len(missing))
        computed = run(runner, source, missing, batch_size=batch_size, device=device,
                       autocast_dtype=autocast_dtype, verbose=verbose).numpy()
        compute = time.perf_counter() - start
        out[missing] = computed
    if key is None:
        return out
    if len(missing):
        start = time.perf_counter()
        read = source.decoded_digests or {}
        feature_cache.store(key, [read.get(int(i), digests[i]) for i in missing], computed, directory)
        overhead += time.perf_counter() - start
    feature_cache.measured(configuration, source.kind, looked=n, hits=n - len(missing), overhead=overhead,
                           computed=len(missing), compute=compute)
    return out
