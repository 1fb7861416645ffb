"""Images: arrays, tensors, PIL images and files, through a pretrained vision backbone."""

from __future__ import annotations

import torch
from torch import nn

from ..data.inputs import validate_images
from ..nn.augment import FlipCrop, FlipPolicy
from ..nn.networks import FeatureNet, backbone_parts, data_config_for
from .base import Modality


class ImageModality(Modality):
    """Image inputs (see :mod:`sktransfer.data.inputs` for what is accepted)."""

    name = "image"
    unused = {
        "max_length": (None, "it counts a text model's tokens"),
        "sample_rate": (None, "it reads sound"),
        "clip_seconds": (None, "it cuts sound"),
    }

    def validate(self, X, spec, fitted=None, *, owner, what="X", rows=None):
        return validate_images(X, spec.inputs, fitted, owner=owner, what=what, rows=rows)

    def source(self, checked, network, config):
        return checked  # an ImageSource is complete as validated

    def data_config(self, spec, backbone):
        return data_config_for(spec, backbone)

    def feature_net(self, spec, backbone, stage_index, config=None):
        preprocess, trunk, pool, config = backbone_parts(spec, backbone, stage_index, config)
        model = FeatureNet(preprocess, trunk, pool).eval().requires_grad_(False)
        return model.place(spec.torch_device, spec.dtype), config

    def features_out(self, model, backbone, stage_index, config):
        if stage_index == len(backbone.stages) - 1:
            return super().features_out(model, backbone, stage_index, config)
        # an intermediate stage's width is known only by running it
        device = next(model.trunk.parameters()).device
        with torch.inference_mode():
            probe = torch.zeros((1, 3, *config.input_size), dtype=torch.uint8, device=device)
            out = model.trunk(model.preprocess(probe))
        return model.pool.width(out.shape[1 if model.pool.feature_format == "NCHW" else -1])

    def network_parts(self, spec, backbone, config, augment):
        preprocess, trunk, pool, _ = backbone_parts(spec, backbone, len(backbone.stages) - 1, config)
        if augment in ("trivialaugment", "randaugment"):
            augmentation = FlipPolicy(config.mean, config.std, augment)
        else:
            augmentation = FlipCrop(crop=augment == "flip_crop") if augment else nn.Identity()
        return preprocess, augmentation, trunk, pool

    def frozen_net(self, network, config):
        return FeatureNet(network.preprocess, network.trunk, network.pool)

    def input_size(self, config):
        return tuple(config.input_size)

    def compile_shapes(self, config):
        return 1, tuple(config.input_size)
