"""Backbone providers and the types they return.

The providers are imported when the registry is first used, never at
``import sktransfer`` time.
"""

from ._base import Backbone, DataConfig, sequential_backbone
from ._weights import WeightsUnavailableError, load_backbone_state, read_state_dict

__all__ = [
    "Backbone",
    "DataConfig",
    "WeightsUnavailableError",
    "load_backbone_state",
    "read_state_dict",
    "register_builtin_backbones",
    "sequential_backbone",
]


def register_builtin_backbones(register) -> None:
    """Register the providers that ship with sktransfer through ``register``."""
    from . import efficientnet_lite, timm_models, torchvision_models

    for name in torchvision_models.model_names():
        register(name, torchvision_models.build)
    register("timm/*", timm_models.build, list_names=timm_models.model_names)
    register("efficientnet_lite0", efficientnet_lite.build)
