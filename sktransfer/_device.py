"""Choosing the device and numeric precision an estimator runs at."""

from __future__ import annotations

import torch

PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def resolve_device(device) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; otherwise as given (a validated
    device parameter), when it exists here."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
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


def inference_batch_size(batch_size, device: torch.device, input_size) -> int:
    """``batch_size`` or, when None, a size that keeps activations modest on ``device``."""
    if batch_size is not None:
        return int(batch_size)
    if device.type != "cuda":
        return 32
    if input_size is None:  # texts
        return 256
    pixels = input_size[0] * input_size[1]
    return int(max(32, min(1024, 256 * (224 * 224) // pixels)))


def resolve_precision(precision, device: torch.device) -> torch.dtype:
    """The compute dtype: ``"auto"`` is bfloat16 (float16 on older GPUs) on CUDA, float32 elsewhere."""
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, precision)
