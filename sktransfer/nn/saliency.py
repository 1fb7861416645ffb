"""Grad-CAM (Selvaraju et al., 2017): where in an image a network found its evidence for a class.

The gradient of the class's logit with respect to a stage's feature maps, averaged over
the positions, weights each channel; the rectified weighted sum of the maps is the class
activation map. Torch hooks only: the network is run as it is, in eval mode, and left
unchanged (no parameter gradient is stored, no statistic updated).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .networks import evaluating


@dataclasses.dataclass
class ClassActivationMaps:
    """What :func:`grad_cam` computed for a batch.

    Attributes
    ----------
    maps : list of Tensor
        One ``(k, h, w)`` float32 map per layer asked for, at the layer's resolution,
        non-negative, unscaled.
    logits : Tensor
        The network's outputs, ``(k, n_outputs)``.
    targets : Tensor
        The output explained for each image, ``(k,)``.
    inputs : Tensor
        The preprocessed batch the network ran on, ``(k, 3, H, W)`` float32.
    """

    maps: list
    logits: torch.Tensor
    targets: torch.Tensor
    inputs: torch.Tensor


def grad_cam(network: nn.Module, x, layers: Sequence[nn.Module], feature_format: str,
             targets: Optional[torch.Tensor] = None) -> ClassActivationMaps:
    """Grad-CAM maps of each module in ``layers`` for the raw batch ``x``.

    ``network`` is a :class:`~sktransfer.nn.networks.ClassifierNet` (its ``preprocess``
    output is where the gradients start from); ``feature_format`` (``"NCHW"`` or
    ``"NHWC"``) is the layout of the layers' outputs; ``targets`` holds the output index
    explained for each image (the highest logit when None).
    """
    if feature_format not in ("NCHW", "NHWC"):
        raise ValueError(f"Grad-CAM needs feature maps (NCHW or NHWC); these layers give {feature_format}")
    seen = {}

    def keep_input(module, args, output):
        # a leaf that needs gradients: every later activation joins the graph, even in
        # frozen stages, while the parameters' own gradients are never asked for
        seen["inputs"] = output.detach().float().requires_grad_()
        return seen["inputs"].to(output.dtype)

    def keep(index):
        def hook(module, args, output):
            seen[index] = output
        return hook

    handles = [network.preprocess.register_forward_hook(keep_input)]
    handles += [layer.register_forward_hook(keep(i)) for i, layer in enumerate(layers)]
    try:
        with evaluating(network), torch.enable_grad():
            logits = network(x=x).float()
            chosen = logits.argmax(1) if targets is None else targets.to(logits.device)
            score = logits.gather(1, chosen[:, None]).sum()  # images are independent in eval mode
            activations = [seen[i] for i in range(len(layers))]
            gradients = torch.autograd.grad(score, activations)
    finally:
        for handle in handles:
            handle.remove()
    maps = []
    for activation, gradient in zip(activations, gradients):
        activation, gradient = activation.detach().float(), gradient.float()
        if feature_format == "NHWC":
            activation, gradient = activation.permute(0, 3, 1, 2), gradient.permute(0, 3, 1, 2)
        weights = gradient.mean(dim=(2, 3), keepdim=True)
        maps.append(F.relu((weights * activation).sum(1)).cpu())
    return ClassActivationMaps(maps, logits.detach().cpu(), chosen.cpu(), seen["inputs"].detach().cpu())


def upsample(maps: torch.Tensor, size) -> torch.Tensor:
    """``(k, h, w)`` maps resized to ``size`` (bilinear), each divided by its peak: values in
    ``[0, 1]`` (a map that is zero everywhere stays zero)."""
    maps = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    peak = maps.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, maps / peak.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))
