"""How much work runs at once: batch sizes, and the memory stored intermediate outputs may take."""

from __future__ import annotations

import os

import torch


def batch_size_for(batch_size, device: torch.device, input_size=None, *, training: bool = False) -> int:
    """The one batch-size rule: ``batch_size`` when given, else a size for ``device``.

    Training: 128 images (or texts) on CUDA, 32 elsewhere. Inference, where no
    gradients are kept: 32 on a CPU; on CUDA 256 at 224 x 224 px, scaled by the
    pixels of ``input_size`` (between 32 and 1,024; 256 for texts, ``input_size`` None).
    """
    if batch_size is not None:
        return int(batch_size)
    if device.type != "cuda":
        return 32
    if training:
        return 128
    if input_size is None:
        return 256
    pixels = input_size[0] * input_size[1]
    return int(max(32, min(1024, 256 * (224 * 224) // pixels)))


def memory_budget() -> int:
    """Bytes that stored intermediate outputs (the frozen stages' output, kept for a fit)
    may take: a quarter of the available memory, at most 8 GiB."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX
        available = 8 << 30
    return min(8 << 30, available // 4)
