"""sktransfer: transfer learning as scikit-learn estimators."""

from ._cache import FeatureCache, feature_cache
from ._version import __version__
from .backbones import (
    Backbone,
    DataConfig,
    WeightsUnavailableError,
    get_backbone,
    list_backbones,
    register_backbone,
)
from .classifier import FineTunedClassifier
from .extractor import PretrainedFeatureExtractor
from .saving import SKOPS_TRUSTED_TYPES, load, save

__all__ = [
    "Backbone",
    "DataConfig",
    "FeatureCache",
    "FineTunedClassifier",
    "PretrainedFeatureExtractor",
    "SKOPS_TRUSTED_TYPES",
    "WeightsUnavailableError",
    "feature_cache",
    "get_backbone",
    "list_backbones",
    "load",
    "register_backbone",
    "save",
    "__version__",
]
