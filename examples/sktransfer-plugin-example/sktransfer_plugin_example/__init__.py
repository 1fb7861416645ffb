"""A minimal sktransfer plugin: one small convolutional backbone, ``example/tiny-net``.

A real plugin builds its architecture, loads its pretrained weights (from a file that
ships with the package, or a cache) and describes both in a :class:`sktransfer.Backbone`.
"""

import torch
from torch import nn

from sktransfer import DataConfig
from sktransfer.backbones import sequential_backbone

CONFIG = DataConfig(input_size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def _block(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


def tiny_net(name, weights):
    """The backbone factory: ``factory(name, weights) -> sktransfer.Backbone``.

    ``weights="DEFAULT"`` stands for pretrained weights (here, a fixed seed);
    ``None`` is random initialization. Unknown weights raise ``ValueError``
    naming the valid ones, as the built-in providers do.
    """
    if weights not in (None, "DEFAULT"):
        raise ValueError(f"unknown weights {weights!r} for backbone {name!r}; valid names: ['DEFAULT']")
    with torch.random.fork_rng(devices=[]):
        if weights == "DEFAULT":
            torch.manual_seed(2024)
        stages = [("stem", _block(3, 16)), ("stage1", _block(16, 32)), ("stage2", _block(32, 64))]
        return sequential_backbone(
            stages,
            num_features=64,
            data_config=CONFIG,
            stage_formats=("NCHW",) * 3,
            weights_id="example:seed2024" if weights else "random",
        )
