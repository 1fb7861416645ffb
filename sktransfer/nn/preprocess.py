"""Device-side preprocessing: raw batches in, normalized model inputs out.

Runs as the first layer of every network the estimators build, so it happens
on the estimator's device, batch by batch: conversion to float, resizing to the
backbone's input size, grayscale to RGB, normalization with the weights' own
mean and std, memory format and dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones._base import DataConfig

RESIZE_MODES = ("squash", "center_crop")


def resized_hw(height, width, size, mode, crop_pct):
    """Intermediate size before cropping (``center_crop``) or the target size."""
    if mode == "squash":
        return size
    scale = min(size[0], size[1]) / crop_pct / min(height, width)
    return max(size[0], round(height * scale)), max(size[1], round(width * scale))


class Preprocess(nn.Module):
    """Map uint8 or float image batches to normalized network inputs.

    Parameters
    ----------
    config : DataConfig
        Target size, interpolation, mean and std.
    value_range : tuple of float or None
        ``(low, high)`` of float inputs, mapped to ``[0, 1]``; None means
        floats are already in ``[0, 1]``. uint8 inputs are always ``[0, 255]``.
    resize : {"squash", "center_crop"}
        ``"squash"`` resizes the whole image to the input size;
        ``"center_crop"`` resizes the shorter side to ``size / crop_pct`` and
        crops the center, as the weights' own evaluation transform does.
    channels_last : bool
        Return channels-last tensors (faster convolutions with cuDNN and oneDNN).
    dtype : torch.dtype
        Dtype of the output (the network's parameter dtype).
    """

    def __init__(self, config: DataConfig, value_range=(0.0, 1.0), resize="squash",
                 channels_last=False, dtype=torch.float32):
        super().__init__()
        self.size = tuple(config.input_size)
        self.interpolation = config.interpolation
        self.crop_pct = config.crop_pct
        self.resize = resize
        self.channels_last = channels_last
        self.dtype = dtype
        std = torch.tensor(config.std, dtype=torch.float32).view(1, 3, 1, 1)
        mean = torch.tensor(config.mean, dtype=torch.float32).view(1, 3, 1, 1)
        # (x - low) / (high - low) then (. - mean) / std, folded into x * a + b,
        # once for uint8 inputs and once for float inputs
        for suffix, (low, high) in (("uint8", (0.0, 255.0)), ("float", value_range or (0.0, 1.0))):
            low, high = float(low), float(high)
            self.register_buffer(f"a_{suffix}", 1.0 / ((high - low) * std), persistent=False)
            self.register_buffer(f"b_{suffix}", (-low / (high - low) - mean) / std, persistent=False)

    def _resize(self, x):
        h, w = x.shape[-2:]
        target = resized_hw(h, w, self.size, self.resize, self.crop_pct)
        if (h, w) != tuple(target):
            kwargs = {} if self.interpolation == "nearest" else {"antialias": True, "align_corners": False}
            x = F.interpolate(x, size=target, mode=self.interpolation, **kwargs)
        if tuple(target) != self.size:
            top = (target[0] - self.size[0]) // 2
            left = (target[1] - self.size[1]) // 2
            x = x[..., top:top + self.size[0], left:left + self.size[1]]
        return x

    def _one_size(self, x):
        a, b = (self.a_uint8, self.b_uint8) if x.dtype == torch.uint8 else (self.a_float, self.b_float)
        # One memory layout whatever the source's strides, so that identical images
        # give identical numbers from arrays, files and tensors alike.
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        x = self._resize(x.to(torch.float32, memory_format=layout))
        x = torch.addcmul(b, x, a)  # one pass; broadcasting also expands grayscale to 3 channels
        return x.to(self.dtype, memory_format=layout)

    def forward(self, x):
        if isinstance(x, (list, tuple)):  # images of different sizes
            return torch.cat([self._one_size(image.unsqueeze(0)) for image in x])
        return self._one_size(x)
