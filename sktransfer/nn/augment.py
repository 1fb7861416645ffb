"""Train-time augmentation on the device: flips and small crops (safe for most image
data), or flips and TrivialAugment (stronger). The identity in eval mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

AUGMENTATIONS = ("flip", "flip_crop", "trivialaugment")


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


class FlipTrivialAugment(nn.Module):
    """Random horizontal flips, then TrivialAugment (Müller and Hutter, 2021; torchvision's
    ``TrivialAugmentWide``): for each image, one operation drawn at random (colour,
    contrast, sharpness, posterize, solarize, equalize, rotation, shear, translation...) at
    a random strength.

    Works on the normalized batch: each image is taken back to 8-bit pixels with ``mean``
    and ``std``, augmented on its own, and normalized again (channels-last).

    Parameters
    ----------
    mean, std : sequence of 3 floats
        The normalization the batch went through (the backbone's data config).
    """

    def __init__(self, mean, std):
        super().__init__()
        from torchvision.transforms import v2

        self.flip = FlipCrop()
        self.operation = v2.TrivialAugmentWide()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        if not self.training:
            return x
        flipped = self.flip(x).float()
        pixels = ((flipped * self.std + self.mean).clamp(0, 1) * 255).round().to(torch.uint8)
        augmented = torch.stack([self.operation(image) for image in pixels]).float() / 255
        return ((augmented - self.mean) / self.std).to(x.dtype).contiguous(memory_format=torch.channels_last)
