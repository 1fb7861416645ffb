"""Every torchvision classification model as a headless, staged backbone.

Each family below says how its network splits into stages from input to
output. The classifier (``fc``/``classifier``/``head(s)`` and auxiliary heads)
is left out; the last stage's output is the unpooled feature map, pooled by
the estimators.
"""

from __future__ import annotations

import os
import re

import torch
import torchvision
from torch import nn
from torchvision.models import get_model, get_model_weights, list_models

from ._base import Backbone, DataConfig, sequential_backbone
from ._weights import is_weights_file, load_backbone_state, read_state_dict, require_download


class _ViTEmbedding(nn.Module):
    """Patch projection, class token and position embedding of a torchvision ViT."""

    def __init__(self, vit: torchvision.models.VisionTransformer):
        super().__init__()
        self.conv_proj = vit.conv_proj
        self.class_token = vit.class_token
        self.pos_embedding = vit.encoder.pos_embedding
        self.dropout = vit.encoder.dropout

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.dropout(x + self.pos_embedding)


def _seq(model, *names):
    return nn.Sequential(*(model.get_submodule(n) for n in names))


def _children(container, prefix=""):
    return [(f"{prefix}{name}", child) for name, child in container.named_children()]


def _append(stages, *extra):
    name, last = stages[-1]
    stages[-1] = (name, nn.Sequential(last, *extra))
    return stages


def _split_at_pools(features):
    """VGG/AlexNet: one stage per block ending in a max-pool."""
    stages, block = [], []
    for layer in features:
        block.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            stages.append((f"block{len(stages) + 1}", nn.Sequential(*block)))
            block = []
    if block:
        stages.append((f"block{len(stages) + 1}", nn.Sequential(*block)))
    return stages


def _resnet(m):
    return [("stem", _seq(m, "conv1", "bn1", "relu", "maxpool"))] + [
        (f"layer{i}", m.get_submodule(f"layer{i}")) for i in range(1, 5)
    ]


def _regnet(m):
    return [("stem", m.stem)] + _children(m.trunk_output)


def _densenet(m):
    f = m.features
    stages = [("stem", _seq(f, "conv0", "norm0", "relu0", "pool0"))]
    for i in range(1, 5):
        parts = [f"denseblock{i}"] + ([f"transition{i}"] if i < 4 else ["norm5"])
        stages.append((f"block{i}", _seq(f, *parts)))
    return _append(stages, nn.ReLU())


def _features(m):
    return _children(m.features, "features")


def _mnasnet(m):
    layers = list(m.layers)
    return (
        [("stem", nn.Sequential(*layers[:8]))]
        + [(f"stack{i}", layers[8 + i]) for i in range(6)]
        + [("conv_head", nn.Sequential(*layers[14:]))]
    )


def _shufflenet(m):
    return [("stem", _seq(m, "conv1", "maxpool"))] + [
        (n, m.get_submodule(n)) for n in ("stage2", "stage3", "stage4", "conv5")
    ]


def _googlenet(m):
    return [
        ("stem", _seq(m, "conv1", "maxpool1", "conv2", "conv3", "maxpool2")),
        ("inception3", _seq(m, "inception3a", "inception3b", "maxpool3")),
        ("inception4", _seq(m, *(f"inception4{c}" for c in "abcde"), "maxpool4")),
        ("inception5", _seq(m, "inception5a", "inception5b")),
    ]


def _inception(m):
    return [
        ("stem", _seq(m, "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
                      "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2")),
        ("mixed5", _seq(m, "Mixed_5b", "Mixed_5c", "Mixed_5d")),
        ("mixed6", _seq(m, *(f"Mixed_6{c}" for c in "abcde"))),
        ("mixed7", _seq(m, "Mixed_7a", "Mixed_7b", "Mixed_7c")),
    ]


def _swin(m):
    return _append(_children(m.features, "features"), m.norm, m.permute)


def _maxvit(m):
    return [("stem", m.stem)] + [(f"block{i}", b) for i, b in enumerate(m.blocks)]


def _vit(m):
    return _append([("embedding", _ViTEmbedding(m))] + _children(m.encoder.layers), m.encoder.ln)


def _last_conv_channels(m):
    return [c for c in m.features.modules() if isinstance(c, nn.Conv2d)][-1].out_channels


def _fc_in(m):
    return m.fc.in_features


def _last_linear_in(m):
    return m.classifier[-1].in_features


# name pattern -> (stage builder, width of the last stage's output, stage output
# format, number of prefix tokens, whether only the configured input size works)
_FAMILIES = [
    (r"resnet\d+|resnext|wide_resnet", _resnet, _fc_in, "NCHW", 0, False),
    (r"regnet_", _regnet, _fc_in, "NCHW", 0, False),
    (r"densenet", _densenet, lambda m: m.classifier.in_features, "NCHW", 0, False),
    (r"efficientnet_|mobilenet_v2|convnext_", _features, _last_linear_in, "NCHW", 0, False),
    (r"mobilenet_v3", _features, lambda m: m.classifier[0].in_features, "NCHW", 0, False),
    (r"squeezenet", _features, lambda m: m.classifier[1].in_channels, "NCHW", 0, False),
    (r"mnasnet", _mnasnet, _last_linear_in, "NCHW", 0, False),
    (r"shufflenet_v2", _shufflenet, _fc_in, "NCHW", 0, False),
    (r"googlenet$", _googlenet, _fc_in, "NCHW", 0, False),
    (r"inception_v3$", _inception, _fc_in, "NCHW", 0, False),
    (r"vgg|alexnet$", lambda m: _split_at_pools(m.features), _last_conv_channels, "NCHW", 0, False),
    (r"swin_", _swin, lambda m: m.head.in_features, "NHWC", 0, False),
    (r"maxvit_", _maxvit, lambda m: m.classifier[3].in_features, "NCHW", 0, True),
    (r"vit_", _vit, lambda m: m.hidden_dim, "NLC", 1, True),
]

# Networks whose pretrained weights expect inputs scaled to [-1, 1]: torchvision
# converts ImageNet-normalized inputs inside the model (``transform_input``);
# normalizing with mean = std = 0.5 directly is the same computation.
_TRANSFORM_INPUT = ("googlenet", "inception_v3")


def _family(name):
    for pattern, *spec in _FAMILIES:
        if re.match(pattern, name):
            return spec
    return None


def model_names() -> list[str]:
    """torchvision classification models that have a stage definition here."""
    return [n for n in list_models(module=torchvision.models) if _family(n) is not None]


def headless(name: str, model: nn.Module, **kwargs):
    """Split torchvision's classification ``model`` into a staged backbone.

    The classifier is left out; ``kwargs`` go to :class:`~sktransfer.Backbone`.
    """
    builder, width, fmt, prefix_tokens, fixed = _family(name)
    stages = builder(model)
    formats = [fmt] * len(stages)
    if name.startswith("swin_"):
        formats[-1] = "NCHW"  # the last stage ends with the permute to NCHW
    return sequential_backbone(
        stages,
        num_features=width(model),
        stage_formats=tuple(formats),
        num_prefix_tokens=prefix_tokens,
        fixed_input_size=fixed,
        **kwargs,
    )


def _resolve_weights(name, weights):
    """Map ``weights`` to ``(enum or None, reference enum for the data config)``."""
    enum_cls = get_model_weights(name)
    if weights is None or is_weights_file(weights):
        return None, enum_cls.DEFAULT
    if isinstance(weights, enum_cls):
        return weights, weights
    if isinstance(weights, str):
        tag = weights.split(".")[-1]  # accepts "IMAGENET1K_V1" and "ResNet18_Weights.IMAGENET1K_V1"
        if tag == "DEFAULT":
            return enum_cls.DEFAULT, enum_cls.DEFAULT
        if tag in enum_cls.__members__:
            return enum_cls[tag], enum_cls[tag]
    valid = ["DEFAULT", *(m for m in enum_cls.__members__ if m != "DEFAULT")]
    raise ValueError(
        f"unknown weights {weights!r} for backbone {name!r}; valid names: {valid}, "
        "None (random init) or a path to a .pth/.pt/.safetensors file"
    )


def _data_config(name, ref, pretrained):
    preset = ref.transforms()
    crop = preset.crop_size[0]
    mean, std = tuple(preset.mean), tuple(preset.std)
    if pretrained and name in _TRANSFORM_INPUT:
        mean = std = (0.5, 0.5, 0.5)
    return DataConfig(
        input_size=(crop, crop),
        mean=mean,
        std=std,
        interpolation=preset.interpolation.value,
        crop_pct=crop / preset.resize_size[0],
    )


def _architecture_kwargs(name, ref):
    kwargs = {"num_classes": len(ref.meta["categories"])}
    if name.startswith("vit_"):
        kwargs["image_size"] = ref.meta["min_size"][0]  # SWAG weights use 384-518 px
    if name in _TRANSFORM_INPUT:
        kwargs.update(transform_input=False, aux_logits=True, init_weights=True)
    return kwargs


def _cache_path(enum) -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(enum.url))


def weights_available(name: str) -> bool:
    """Whether the default weights of ``name`` are in torch's download cache."""
    return os.path.isfile(_cache_path(get_model_weights(name).DEFAULT))


def _download_state_dict(name, enum):
    cache, filename = os.path.split(_cache_path(enum))
    if not os.path.isfile(os.path.join(cache, filename)):
        require_download(
            f"weights {enum} for backbone {name!r}",
            enum.url,
            cache,
            local_file_hint=f"/path/to/{filename}",
        )
    return enum.get_state_dict(progress=False, check_hash=True)


def build(name: str, weights="DEFAULT", load: bool = True):
    """Build torchvision's ``name`` as a :class:`~sktransfer.Backbone`; with ``load=False``,
    the architecture ``weights`` need (a SWAG ViT's image size), randomly initialized."""
    enum, ref = _resolve_weights(name, weights)
    model = get_model(name, weights=None, **_architecture_kwargs(name, ref))
    if not load:
        return headless(name, model, data_config=_data_config(name, ref, pretrained=False), weights_id="random")
    if weights is None:
        weights_id = "random"
    elif enum is not None:
        state, weights_id = _download_state_dict(name, enum), str(enum)
    else:
        state, weights_id = read_state_dict(weights)
    backbone = headless(
        name,
        model,
        data_config=_data_config(name, ref, pretrained=weights is not None),
        weights_id=weights_id,
    )
    if weights is not None:
        load_backbone_state(model, state, backbone.module, source=weights_id)
    return backbone


def architecture(name: str, weights) -> Backbone:
    """The architecture that ``weights`` need, randomly initialized, loading nothing: a saved
    model is rebuilt with it before its own weights are copied in."""
    return build(name, weights, load=False)


build.architecture = architecture


build.weights_available = weights_available
