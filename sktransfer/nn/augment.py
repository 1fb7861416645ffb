"""Train-time augmentation that is safe for most image data: flips and small crops.

Runs on the device, on whole normalized batches, as one affine resampling; it is
the identity in eval mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

AUGMENTATIONS = ("flip", "flip_crop")


class FlipCrop(nn.Module):
    """Random horizontal flips and, with ``crop``, small random crops.

    A crop shifts the image by up to ``max_shift`` of its side in each direction,
    filling the border by reflection: the padded random crop of CIFAR and
    ImageNet recipes, at the network's resolution.

    Parameters
    ----------
    crop : bool, default=False
    max_shift : float, default=0.0625
    """

    def __init__(self, crop: bool = False, max_shift: float = 0.0625):
        super().__init__()
        self.crop = crop
        self.max_shift = max_shift

    def forward(self, x):
        if not self.training:
            return x
        n = x.shape[0]
        options = {"device": x.device, "dtype": torch.float32}
        flip = torch.where(torch.rand(n, **options) < 0.5, -1.0, 1.0)
        if not self.crop:
            return torch.where(flip.view(n, 1, 1, 1) < 0, x.flip(3), x)
        theta = torch.zeros(n, 2, 3, **options)
        theta[:, 0, 0] = flip
        theta[:, 1, 1] = 1.0
        # affine_grid coordinates span [-1, 1]: a shift of s of the side is 2 s
        theta[:, :, 2] = (torch.rand(n, 2, **options) * 2 - 1) * 2 * self.max_shift
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection",
                            align_corners=False)
        return out.to(x.dtype)
