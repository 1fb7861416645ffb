"""sktransfer: transfer learning as scikit-learn estimators."""

from importlib.metadata import PackageNotFoundError, version

from ._cache import FeatureCache, feature_cache
from ._registry import get_backbone, list_backbones, register_backbone
from .backbones import Backbone, DataConfig, WeightsUnavailableError
from .classifier import FineTunedClassifier
from .extractor import PretrainedFeatureExtractor

try:
    __version__ = version("sktransfer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

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
