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

__all__ = [
    "Backbone",
    "DataConfig",
    "FeatureCache",
    "FineTunedClassifier",
    "PretrainedFeatureExtractor",
    "WeightsUnavailableError",
    "feature_cache",
    "get_backbone",
    "list_backbones",
    "register_backbone",
    "__version__",
]
