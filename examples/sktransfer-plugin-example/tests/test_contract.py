"""The plugin's own test: sktransfer's contract check over its backbones."""

from sktransfer import list_backbones
from sktransfer.utils import check_backbone, parametrize_with_backbone_checks


@parametrize_with_backbone_checks(list_backbones("example/*"))
def test_backbone_contract(backbone_name):
    check_backbone(backbone_name)
