"""Choosing the device and numeric precision an estimator runs at."""

from __future__ import annotations

import torch

PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def resolve_device(device) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; otherwise as given (validated)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available")
    return resolved


def resolve_precision(precision, device: torch.device) -> torch.dtype:
    """The compute dtype: ``"auto"`` is bfloat16 (float16 on older GPUs) on CUDA, float32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, precision)
