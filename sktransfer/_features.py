"""Running a frozen network over a whole input: the one feature path of both estimators."""

from __future__ import annotations

import contextlib
from typing import Optional

import numpy as np
import torch
from torch import nn

from ._backoff import BatchBackoff
from ._cache import feature_cache
from .data.inputs import ImageSource
from .data.loader import BatchLoader, ImageDataset
from ._progress import progress


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


def run(model: nn.Module, source: ImageSource, indices, *, batch_size, device, autocast_dtype=None,
        verbose=0, out_dtype=torch.float32, max_bytes=None) -> Optional[torch.Tensor]:
    """``model`` applied to the images at ``indices``, gathered on the host.

    On CUDA the results are copied into pinned memory without a synchronization
    per batch, so the host keeps queueing work ahead of the GPU. A batch that
    runs out of memory runs again in pieces (:class:`~sktransfer._backoff.BatchBackoff`). With
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


def extract(model: nn.Module, source: ImageSource, width: int, *, batch_size, device, key=None,
            directory=None, autocast_dtype=None, verbose=0, wrap=None) -> np.ndarray:
    """Pooled float32 features ``(n, width)``; with a ``key``, only uncached inputs run.

    Texts run sorted by length, so that each batch pads to similar lengths (the
    features go back to the input's order). ``wrap(model, n)``, when given, returns
    what runs in place of ``model`` over the ``n`` images left to compute (the
    ``compile="auto"`` policy)."""
    n = len(source)
    out = np.empty((n, width), dtype=np.float32)
    digests, missing = None, np.arange(n)
    if key is not None:
        digests = source.digests()
        found = feature_cache.lookup(key, digests, directory)
        for i, row in found.items():
            out[i] = row
        missing = np.array([i for i in range(n) if i not in found], dtype=np.int64)
    if source.kind == "text":
        missing = missing[np.argsort([len(source.items[i]) for i in missing], kind="stable")]
    if len(missing):
        runner = model if wrap is None else wrap(model, len(missing))
        computed = run(runner, source, missing, batch_size=batch_size, device=device,
                       autocast_dtype=autocast_dtype, verbose=verbose).numpy()
        out[missing] = computed
        if key is not None:
            feature_cache.store(key, [digests[i] for i in missing], computed, directory)
    return out
