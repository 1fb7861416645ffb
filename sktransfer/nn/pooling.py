"""Pooling a stage's output (maps or token sequences) to one vector per image."""

from __future__ import annotations

import torch
from torch import nn

POOLINGS = ("avg", "max", "avgmax", "catavgmax", "token")


class Pool(nn.Module):
    """Reduce ``NCHW``/``NHWC`` maps or ``NLC`` tokens to ``(n, features)``.

    ``"avg"``/``"max"`` pool over positions (patch tokens for transformers,
    leaving out class/register tokens); ``"avgmax"`` is their mean,
    ``"catavgmax"`` their concatenation (twice the features); ``"token"``
    takes the class token of a transformer.
    """

    def __init__(self, mode: str, feature_format: str, num_prefix_tokens: int = 0):
        super().__init__()
        if mode == "token" and not (feature_format == "NLC" and num_prefix_tokens):
            raise ValueError(
                "pooling='token' needs a transformer backbone with a class token; "
                f"this stage outputs {feature_format} feature maps"
            )
        self.mode = mode
        self.feature_format = feature_format
        self.num_prefix_tokens = num_prefix_tokens

    def width(self, num_features: int) -> int:
        """Output width for a stage with ``num_features`` channels."""
        return 2 * num_features if self.mode == "catavgmax" else num_features

    def forward(self, x):
        if self.feature_format == "NLC":
            if self.mode == "token":
                return x[:, 0]
            x, dims = x[:, self.num_prefix_tokens:], (1,)
        else:
            dims = (2, 3) if self.feature_format == "NCHW" else (1, 2)
        if self.mode == "avg":
            return x.mean(dims)
        if self.mode == "max":
            return x.amax(dims)
        avg, peak = x.mean(dims), x.amax(dims)
        return 0.5 * (avg + peak) if self.mode == "avgmax" else torch.cat([avg, peak], dim=1)


class TextPool(nn.Module):
    """Token outputs ``(n, L, d)`` -> one vector per text, as a backbone's
    :class:`~sktransfer.backbones.TextConfig` says (mean over the real tokens,
    the first token, or their maximum; then unit length when it normalizes)."""

    def __init__(self, config):
        super().__init__()
        self.config = config

    def width(self, num_features: int) -> int:
        return num_features

    def forward(self, tokens, attention_mask):
        pooling = self.config.pooling
        if pooling == "cls":
            out = tokens[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            if pooling == "mean":
                out = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1)
            else:
                out = tokens.masked_fill(mask == 0, torch.finfo(tokens.dtype).min).amax(1)
        return nn.functional.normalize(out.float(), dim=-1) if self.config.normalize else out.float()
