"""Sound through image networks: ``audio/<image backbone>`` (``audio/efficientnet_lite0``...).

The published recipe for transfer to sound (Gong et al., AST, 2021; Kong et al., PANNs,
2020; Palanisamy et al., 2020): a log-mel spectrogram is an image, and a network
pretrained on ImageNet, given it, learns sound faster than one from scratch. The
backbone is the image backbone itself, with its weights and stages; its data config is
an :class:`~sktransfer.backbones.AudioConfig`, which the estimators' device-side front end
(:class:`~sktransfer.nn.audio.LogMel`) follows. Any image backbone's name works after
``audio/``; they are not listed one by one by ``list_backbones``.
"""

from __future__ import annotations

import dataclasses

from ._base import AudioConfig, Backbone

PREFIX = "audio/"


def build(name: str, weights) -> Backbone:
    """The image backbone ``name`` names after ``audio/``, as an audio backbone."""
    from ._registry import backbone_modality, get_backbone

    image_name = name[len(PREFIX):]
    if backbone_modality(image_name) != "image":
        raise ValueError(f"{name!r}: an audio backbone is built on an image backbone, and {image_name!r} is not one")
    image = get_backbone(image_name, weights=weights)
    return dataclasses.replace(image, data_config=AudioConfig(image.data_config), modality="audio",
                               weights_id=f"audio:{image.weights_id}")
