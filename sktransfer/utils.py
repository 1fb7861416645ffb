"""Tools for plugin authors, under the import path scikit-learn users expect
(as ``sklearn.utils.estimator_checks``): the backbone contract checks of
:mod:`sktransfer.checks`."""

from .checks import BackboneContractError, check_backbone, parametrize_with_backbone_checks

__all__ = ["BackboneContractError", "check_backbone", "parametrize_with_backbone_checks"]
