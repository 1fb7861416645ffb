"""sktransfer: transfer learning as scikit-learn estimators.

The public names are imported on first use (PEP 562), so that ``import sktransfer``
and the command line's ``--help`` do not pay for importing torch.
"""

from importlib import import_module

from ._version import __version__

# public name -> the submodule that defines it
_EXPORTS = {
    "Backbone": ".backbones",
    "DataConfig": ".backbones",
    "WeightsUnavailableError": ".backbones",
    "get_backbone": ".backbones",
    "list_backbones": ".backbones",
    "register_backbone": ".backbones",
    "FeatureCache": ".engine.cache",
    "feature_cache": ".engine.cache",
    "FineTunedClassifier": ".classifier",
    "FineTunedRegressor": ".regressor",
    "PretrainedFeatureExtractor": ".extractor",
    "SKOPS_TRUSTED_TYPES": ".saving",
    "export": ".exporting",
    "is_main_process": ".data.launch",
    "load": ".saving",
    "save": ".saving",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'sktransfer' has no attribute {name!r}") from None
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
