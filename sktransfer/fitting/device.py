"""Choosing the device and numeric precision an estimator runs at."""

from __future__ import annotations

import sys
import zlib
from typing import Optional

import torch

from ..data.launch import local_rank

PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def resolve_device(device) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; otherwise as given (a validated
    device parameter), when it exists here. Under a launcher (torchrun), ``"auto"`` and
    ``"cuda"`` mean this process's own GPU (see :func:`_launched_gpu`)."""
    if device == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if str(device) in ("auto", "cuda") and torch.cuda.is_available():
        index = _launched_gpu()
        if index is None and device == "auto":
            index = _dask_worker_gpu()
        return torch.device("cuda" if index is None else f"cuda:{index}")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    return resolved


def worker_gpu_index(worker_name, n_gpus: int) -> int:
    """The GPU a dask worker named ``worker_name`` takes among ``n_gpus``: its index for
    the integer names LocalCluster gives, a hash of the name otherwise."""
    index = worker_name if isinstance(worker_name, int) else zlib.crc32(str(worker_name).encode())
    return index % n_gpus


def _launched_gpu() -> Optional[int]:
    """Under a launcher, the GPU of this process: ``LOCAL_RANK``'s, or the only one it sees
    when each process is shown one (``CUDA_VISIBLE_DEVICES``, as ``dask_cuda`` and SLURM's
    GPU binding do): two processes of a run never share a GPU by default, and a launch
    inside a dask worker does not fight the worker's choice."""
    index = local_rank()
    if index is None:
        return None
    count = torch.cuda.device_count()
    if count == 1:
        return 0
    if index >= count:
        raise ValueError(f"this process has LOCAL_RANK={index} but sees {count} GPUs: launch at most one process "
                         f"per GPU (torchrun --nproc_per_node {count}), or pass device='cpu'")
    return index


def _dask_worker_gpu() -> Optional[int]:
    """On a dask worker that sees several GPUs (a plain LocalCluster on a multi-GPU
    machine), the one it should use, so that workers do not all crowd onto cuda:0.
    dask_cuda's LocalCUDACluster shows each worker one GPU instead: then "cuda" is it."""
    distributed = sys.modules.get("distributed")  # never imported here: only when in use
    if distributed is None or torch.cuda.device_count() < 2:
        return None
    try:
        worker = distributed.get_worker()
    except ValueError:  # not running in a worker's task
        return None
    return worker_gpu_index(worker.name, torch.cuda.device_count())


def resolve_precision(precision, device: torch.device) -> torch.dtype:
    """The compute dtype: ``"auto"`` is bfloat16 (float16 on older GPUs) on CUDA, float32 elsewhere."""
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, precision)
