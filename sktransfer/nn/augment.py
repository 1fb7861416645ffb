"""Train-time augmentation on the device: flips and small crops (safe for most image
data), flips and TrivialAugment or RandAugment (stronger), and mixup / cutmix, which
mix the images of a batch (and the loss of their labels). The identity in eval mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

AUGMENTATIONS = ("flip", "flip_crop", "trivialaugment", "randaugment")


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


class FlipPolicy(nn.Module):
    """Random horizontal flips, then an automatic augmentation policy of torchvision,
    drawn for each image: ``"trivialaugment"`` (Müller and Hutter, 2021;
    ``TrivialAugmentWide``: one operation at a random strength) or ``"randaugment"``
    (Cubuk et al., 2020; ``RandAugment``: two operations at strength 9 of 31). The
    operations: colour, contrast, sharpness, posterize, solarize, equalize, rotation,
    shear, translation...

    Works on the normalized batch: each image is taken back to 8-bit pixels with ``mean``
    and ``std``, augmented on its own, and normalized again (channels-last).

    Parameters
    ----------
    mean, std : sequence of 3 floats
        The normalization the batch went through (the backbone's data config).
    policy : {"trivialaugment", "randaugment"}, default="trivialaugment"
    """

    def __init__(self, mean, std, policy: str = "trivialaugment"):
        super().__init__()
        from torchvision.transforms import v2

        self.flip = FlipCrop()
        self.operation = {"trivialaugment": v2.TrivialAugmentWide, "randaugment": v2.RandAugment}[policy]()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        if not self.training:
            return x
        flipped = self.flip(x).float()
        pixels = ((flipped * self.std + self.mean).clamp(0, 1) * 255).round().to(torch.uint8)
        augmented = torch.stack([self.operation(image) for image in pixels]).float() / 255
        return ((augmented - self.mean) / self.std).to(x.dtype).contiguous(memory_format=torch.channels_last)


class BatchMix(nn.Module):
    """Mixup (Zhang et al., 2018) and cutmix (Yun et al., 2019) of a training batch.

    Each training batch is mixed with a random permutation of itself, with a weight
    ``lam`` drawn from Beta(alpha, alpha): mixup blends whole images,
    ``lam * x + (1 - lam) * x[order]``; cutmix pastes a box of ``x[order]`` covering
    ``1 - lam`` of the image into ``x`` (``lam`` is then the share left uncovered, as
    the clipped box leaves it). With both alphas above 0, each batch is one or the
    other, at even odds (timm's ``Mixup``). The draw is kept in ``drawn_`` for the
    loss, which weighs each sample's loss against its own and its partner's targets
    by ``lam`` (the cross-entropy of the mixed labels): read it once with :meth:`take`.
    Batches of one, and eval mode, pass unchanged.

    Parameters
    ----------
    mixup_alpha, cutmix_alpha : float, default=0.0
        The Beta distributions' parameter; 0 turns that mix off.
    """

    def __init__(self, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0):
        super().__init__()
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.drawn_ = None

    def take(self):
        """``(lam, order)`` of the last training batch mixed, once; None when it was not."""
        drawn, self.drawn_ = self.drawn_, None
        return drawn

    @torch.compiler.disable  # draws on the host and keeps the draw: no graph to capture
    def forward(self, x):
        self.drawn_ = None
        if not self.training or len(x) < 2:
            return x
        cut = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or bool(torch.rand(()) < 0.5))
        alpha = self.cutmix_alpha if cut else self.mixup_alpha
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        order = torch.randperm(len(x), device=x.device)
        if cut:
            x, lam = _cut(x, order, lam)
        else:
            x = x * lam + x[order] * (1 - lam)
        self.drawn_ = (lam, order)
        return x


def _cut(x, order, lam):
    """``x`` with a box of ``x[order]`` covering about ``1 - lam`` of its area pasted in (the
    box's centre uniform, clipped at the borders), and the share of ``x`` left."""
    height, width = x.shape[-2:]
    ratio = (1 - lam) ** 0.5
    cy, cx = (int(v) for v in (torch.randint(height, ()), torch.randint(width, ())))
    half_h, half_w = int(height * ratio) // 2, int(width * ratio) // 2
    top, bottom = max(cy - half_h, 0), min(cy + half_h, height)
    left, right = max(cx - half_w, 0), min(cx + half_w, width)
    out = x.clone()
    out[..., top:bottom, left:right] = x[order][..., top:bottom, left:right]
    return out, 1 - (bottom - top) * (right - left) / (height * width)
