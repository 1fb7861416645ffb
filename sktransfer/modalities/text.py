"""Texts: a column of strings, through a pretrained text encoder."""

from __future__ import annotations

from torch import nn

from ..data.inputs import InputSignature
from ..data.text import TextSource, validate_texts
from ..nn.networks import TextFeatureNet, bucket_lengths, text_config
from ..nn.pooling import TextPool
from .base import Modality


class TextModality(Modality):
    """Text inputs (see :mod:`sktransfer.data.text`), tokenized batch by batch.

    A text encoder pools as its model folder says and truncates at ``max_length``;
    the image parameters keep their defaults, and ``augment`` does not apply.
    """

    name = "text"
    unused = {
        "stage": (None, "its last layer, pooled as the model says"),
        "pooling": ("avg", "it pools as its model folder says"),
        "input_size": (None, "see max_length"),
        "resize": ("squash", "texts are not resized"),
        "channel_axis": ("auto", "texts have no channels"),
        "image_shape": (None, "texts are not rows of pixels"),
        "value_range": ((0.0, 1.0), "texts have no pixel values"),
        "sample_rate": (None, "it reads sound"),
        "tta": (None, "a text has no mirror image"),
        "mixup_alpha": (0.0, "token ids cannot be blended"),
        "cutmix_alpha": (0.0, "token ids cannot be blended"),
        "clip_seconds": (None, "it cuts sound"),
    }

    def validate(self, X, spec, fitted=None, *, owner, what="X", rows=None):
        return validate_texts(X, owner, what=what), InputSignature("text")

    def source(self, checked, network, config):
        return TextSource(checked, network.tokenizer, config.max_length)

    def data_config(self, spec, backbone):
        return text_config(backbone, spec.max_length)

    def feature_net(self, spec, backbone, stage_index, config=None):
        config = config or self.data_config(spec, backbone)
        model = TextFeatureNet(backbone.module, TextPool(config), backbone.tokenizer, config.max_length)
        return model.eval().requires_grad_(False).place(spec.torch_device, spec.dtype), config

    def network_parts(self, spec, backbone, config, augment):
        return nn.Identity(), nn.Identity(), backbone.module, TextPool(config)

    def frozen_net(self, network, config):
        return TextFeatureNet(network.trunk, network.pool, network.tokenizer, config.max_length)

    def compile_shapes(self, config):
        # compiled batches are padded to a few bucket lengths: one compile each
        return len(bucket_lengths(config.max_length)), (config.max_length,)
