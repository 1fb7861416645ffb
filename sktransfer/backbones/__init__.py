"""Backbones: the registry, the types providers return, and the built-in providers.

The registry (``get_backbone``, ``list_backbones``, ``register_backbone``) is the
one place that knows where a backbone comes from. The providers are imported
when the registry is first used, never at ``import sktransfer`` time.
"""

from ._base import AudioConfig, AudioEncoderConfig, Backbone, DataConfig, TextConfig, sequential_backbone
from ._registry import ENTRY_POINT_GROUP, get_backbone, list_backbones, register_backbone
from ._weights import WeightsUnavailableError, load_backbone_state, read_state_dict

__all__ = [
    "ENTRY_POINT_GROUP",
    "AudioConfig",
    "AudioEncoderConfig",
    "Backbone",
    "DataConfig",
    "TextConfig",
    "WeightsUnavailableError",
    "get_backbone",
    "list_backbones",
    "load_backbone_state",
    "read_state_dict",
    "register_backbone",
    "sequential_backbone",
]


def register_builtin_backbones(register) -> None:
    """Register the providers that ship with sktransfer through ``register`` (called by
    the registry on its first use; not public API)."""
    from . import audio_models, efficientnet_lite, hf_models, text_models, timm_models, torchvision_models

    for name in torchvision_models.model_names():
        register(name, torchvision_models.build)
    register("timm/*", timm_models.build, list_names=timm_models.model_names)
    register("efficientnet_lite0", efficientnet_lite.build)
    register(hf_models.MINILM, text_models.build, modality="text")
    register("hf/*", hf_models.build, modality=hf_models.modality)
    register("audio/*", audio_models.build, modality="audio")
