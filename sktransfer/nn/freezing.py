"""Freezing the first stages of a backbone: no gradients, and BatchNorm kept in eval mode.

skorch's ``Freezer`` only turns gradients off; BatchNorm layers in frozen parts
then keep updating their running statistics in training mode. Here frozen
stages stay in eval mode, so their weights and statistics are bit-identical
after training.
"""

from __future__ import annotations

from torch import nn


def resolve_freeze_depth(freeze_depth, stage_names) -> int:
    """Number of frozen stages for ``freeze_depth`` (a validated int >= 0 or ``"all"``):
    at most the backbone's number of stages."""
    n = len(stage_names)
    if freeze_depth == "all":
        return n
    if freeze_depth > n:
        raise ValueError(
            f"freeze_depth={freeze_depth} is out of range: the backbone has {n} stages "
            f"({', '.join(stage_names)}), so use 0..{n} or 'all'"
        )
    return int(freeze_depth)


def freeze_stages(stages, depth: int) -> None:
    """Turn gradients off for the first ``depth`` stages and on for the others."""
    for i, (_, stage) in enumerate(stages):
        stage.requires_grad_(i >= depth)


def keep_frozen_in_eval(stages, depth: int) -> None:
    """Put the first ``depth`` stages in eval mode (call after ``module.train()``)."""
    for _, stage in stages[:depth]:
        stage.eval()


def keep_batchnorm_in_eval(module) -> None:
    """Put every BatchNorm layer of ``module`` in eval mode: their statistics stay the
    pretrained ones while their affine weights keep training (call after ``module.train()``)."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()
