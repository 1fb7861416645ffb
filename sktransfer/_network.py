"""The torch networks the estimators build around a backbone."""

from __future__ import annotations

import torch
from torch import nn


class FeatureNet(nn.Module):
    """Raw image batches -> preprocessing -> backbone stages -> pooled features."""

    def __init__(self, preprocess: nn.Module, trunk: nn.Module, pool: nn.Module):
        super().__init__()
        self.preprocess = preprocess
        self.trunk = trunk
        self.pool = pool

    def forward(self, x):
        return self.pool(self.trunk(self.preprocess(x)))

    def place(self, device: torch.device, dtype: torch.dtype) -> "FeatureNet":
        """Move to ``device`` with the trunk in ``dtype`` (preprocessing constants stay float32)."""
        cuda = device.type == "cuda"
        self.to(device)
        self.trunk.to(dtype=dtype, memory_format=torch.channels_last if cuda else torch.contiguous_format)
        self.preprocess.dtype = dtype
        self.preprocess.channels_last = cuda
        return self
