"""The backbone contract, over the registry: every built-in, EfficientNet-Lite0 and a sample
of timm, each built through ``get_backbone`` as an estimator builds it (as timm's
tests/test_models.py runs every model).

Built on the meta device (shapes without memory or compute) where the architecture allows;
torchvision's RegNets compute their widths from tensors while they are built, so they are
built for real on the CPU and run at 64 px.
"""

import pytest
import torch

from sktransfer import Backbone, get_backbone, list_backbones
from sktransfer.backbones._base import FEATURE_FORMATS
from sktransfer.nn.freezing import freeze_stages

TIMM_SAMPLE = [
    "timm/resnet18", "timm/vit_tiny_patch16_224", "timm/deit_tiny_distilled_patch16_224",
    "timm/convnext_atto", "timm/efficientnet_b0", "timm/mobilenetv3_small_100",
    "timm/swin_tiny_patch4_window7_224", "timm/regnety_002",
]
BUILT_IN = [n for n in list_backbones() if "/" not in n]  # torchvision's and efficientnet_lite0


def _build(name):
    """The backbone with random weights and its output for two images."""
    on_cpu = name.startswith("regnet_")
    with torch.device("cpu" if on_cpu else "meta"):
        backbone = get_backbone(name, weights=None)
        size = (64, 64) if on_cpu and not backbone.fixed_input_size else backbone.data_config.input_size
        with torch.inference_mode():
            out = backbone.module.eval()(torch.zeros(2, 3, *size))
    return backbone, out


@pytest.mark.parametrize("name", BUILT_IN + TIMM_SAMPLE)
def test_backbone_contract(name):
    if name.startswith(("timm/", "efficientnet_lite")):
        pytest.importorskip("timm")
    backbone, out = _build(name)
    assert isinstance(backbone, Backbone)
    assert backbone.modality == "image" and backbone.weights_id == "random"
    # stages: named, unique, with one known output layout each
    names = backbone.stage_names
    assert names and all(isinstance(n, str) and n for n in names) and len(set(names)) == len(names)
    assert len(backbone.stage_formats) == len(names)
    assert set(backbone.stage_formats) <= set(FEATURE_FORMATS)
    # every parameter of the network belongs to exactly one stage, so freezing all of
    # them freezes everything (and freezing k of them, exactly those)
    owner = {}
    for stage_name, stage in backbone.stages:
        for p in stage.parameters():
            assert id(p) not in owner, f"a parameter of {stage_name} is also in {owner[id(p)]}"
            owner[id(p)] = stage_name
    params = list(backbone.module.parameters())
    assert {id(p) for p in params} == set(owner)
    freeze_stages(backbone.stages, len(names))
    assert not any(p.requires_grad for p in params)
    # the output of the last stage has num_features channels in its layout
    fmt = backbone.stage_formats[-1]
    assert out.ndim == (3 if fmt == "NLC" else 4) and out.shape[0] == 2
    assert (out.shape[1] if fmt == "NCHW" else out.shape[-1]) == backbone.num_features
    if fmt == "NLC":  # class/register tokens lead the sequence; patch tokens follow
        assert 0 <= backbone.num_prefix_tokens < out.shape[1]
    else:
        assert backbone.num_prefix_tokens == 0
    # a sequential backbone is its stages, in order
    if backbone.sequential:
        assert [id(m) for m in backbone.module.children()] == [id(s) for _, s in backbone.stages]
    config = backbone.data_config
    assert len(config.input_size) == 2 and all(isinstance(s, int) and s > 0 for s in config.input_size)
    assert len(config.mean) == 3 and len(config.std) == 3 and min(config.std) > 0
    assert 0 < config.crop_pct <= 1
