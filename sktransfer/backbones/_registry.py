"""The backbone registry: the one place that knows where a backbone comes from.

Names map to factories ``factory(name, weights) -> Backbone``. A name ending in
``/*`` registers a namespace: every ``prefix/<anything>`` goes to its factory
(``timm/*`` is one). Built-in providers and the third-party plugins found in
the ``sktransfer.backbones`` entry-point group are registered on first use of
the registry, not at import time, so ``import sktransfer`` stays fast and a
broken plugin cannot break it.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
import threading
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable, Optional

from ._base import Backbone

ENTRY_POINT_GROUP = "sktransfer.backbones"

BackboneFactory = Callable[[str, Any], Backbone]
MODALITIES = ("image", "text", "audio")


@dataclass(frozen=True)
class _Entry:
    factory: BackboneFactory
    list_names: Optional[Callable[[], Iterable[str]]] = None
    modality: "str | Callable[[str], str]" = "image"


_lock = threading.RLock()
_names: dict[str, _Entry] = {}
_namespaces: dict[str, _Entry] = {}  # "timm/" -> entry
_loaded = False


def register_backbone(
    name: str,
    factory: Optional[BackboneFactory] = None,
    *,
    overwrite: bool = False,
    list_names: Optional[Callable[[], Iterable[str]]] = None,
    modality: "str | Callable[[str], str]" = "image",
):
    """Register a backbone factory under ``name``.

    Parameters
    ----------
    name : str
        The name users pass as ``backbone=``. A name ending in ``"/*"``
        (``"myhub/*"``) registers a namespace: any ``"myhub/<model>"`` is built
        by ``factory``.
    factory : callable, optional
        ``factory(name, weights) -> Backbone``. It receives the full requested
        name and the ``weights`` argument of :func:`get_backbone`. When
        omitted, ``register_backbone`` returns a decorator.
    overwrite : bool, default=False
        Replace an existing registration. Without it, a taken name raises.
    list_names : callable, optional
        For a namespace: returns the names it offers, for
        :func:`list_backbones`.
    modality : {"image", "text", "audio"} or callable, default="image"
        What the factory's backbones take, known before one is built (the
        estimators validate their input first). A namespace whose models take
        different inputs passes ``modality(name) -> str``, which must be cheap
        (``"hf/*"`` reads the model folder's configuration).

    Returns
    -------
    factory : callable
        The registered factory (so it can be used as a decorator).

    Examples
    --------
    >>> import torch
    >>> from sktransfer import Backbone, DataConfig, register_backbone, get_backbone
    >>> from sktransfer.backbones import sequential_backbone
    >>> @register_backbone("doc-tiny", overwrite=True)
    ... def tiny(name, weights):
    ...     stem = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    ...     return sequential_backbone(
    ...         [("stem", stem)], num_features=4, stage_formats=("NCHW",),
    ...         data_config=DataConfig((32, 32), (0.5,) * 3, (0.5,) * 3))
    >>> get_backbone("doc-tiny", weights=None).num_features
    4
    """
    if factory is None:
        return lambda f: register_backbone(name, f, overwrite=overwrite, list_names=list_names, modality=modality)
    if not (callable(modality) or modality in MODALITIES):
        raise ValueError(f"modality must be one of {MODALITIES} or a callable, got {modality!r}")
    if not isinstance(name, str) or not name or name == "/*":
        raise ValueError(f"backbone name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory for {name!r} must be callable, got {type(factory).__name__}")
    _ensure_loaded()
    table, key = (_namespaces, name[:-1]) if name.endswith("/*") else (_names, name)
    with _lock:
        if key in table and not overwrite:
            raise ValueError(
                f"backbone name {name!r} is already registered; "
                "pass overwrite=True to replace it"
            )
        table[key] = _Entry(factory, list_names, modality)
    return factory


def _lookup(name: str) -> _Entry:
    if name in _names:
        return _names[name]
    # the longest namespace that holds the name ("hf/" holds "hf/intfloat/e5-small-v2")
    prefixes = [p for p in _namespaces if name.startswith(p) and len(name) > len(p)]
    if prefixes:
        return _namespaces[max(prefixes, key=len)]
    if "hf/" in _namespaces and is_model_folder(os.path.expanduser(name)):
        return _namespaces["hf/"]  # a local Hugging Face or sentence-transformers model folder
    candidates = list(_names) + [p + "*" for p in _namespaces]
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"unknown backbone {name!r}{hint} "
        "(list_backbones() shows the registered names)"
    )


def is_model_folder(folder: str) -> bool:
    """A Hugging Face model folder: a config naming its model type, and a tokenizer or a
    feature extractor's configuration."""
    try:
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return False
    reads = any(os.path.isfile(os.path.join(folder, f))
             for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "preprocessor_config.json"))
    return isinstance(config, dict) and "model_type" in config and reads


def local_model_folder(name: str) -> Optional[str]:
    """The absolute path of the local model folder ``name`` stands for, or None (a
    registered name wins over a folder of the same name)."""
    _ensure_loaded()
    folder = os.path.expanduser(name)
    with _lock:
        taken = name in _names or any(name.startswith(p) and len(name) > len(p) for p in _namespaces)
    return None if taken or not is_model_folder(folder) else os.path.abspath(folder)


def backbone_factory(name: str) -> BackboneFactory:
    """The factory registered for ``name``; an unknown name raises ``ValueError`` with
    close matches. Builds nothing (estimators check their ``backbone`` with it first)."""
    _ensure_loaded()
    with _lock:
        return _lookup(name).factory


def backbone_modality(name: str) -> str:
    """What the backbone registered as ``name`` takes (``"image"``, ``"text"`` or
    ``"audio"``), without building it; an unknown name raises ``ValueError`` with close
    matches."""
    _ensure_loaded()
    with _lock:
        modality = _lookup(name).modality
    if callable(modality):
        modality = modality(name)
        if modality not in MODALITIES:
            raise TypeError(f"the modality registered for {name!r} says {modality!r}, not one of {MODALITIES}")
    return modality


def get_backbone(name: str, weights: Any = "DEFAULT") -> Backbone:
    """Build the backbone registered as ``name``.

    Parameters
    ----------
    name : str
        A registered name, e.g. ``"resnet18"``, ``"efficientnet_lite0"`` or
        ``"timm/convnext_tiny"``.
    weights : str, path, or None, default="DEFAULT"
        ``"DEFAULT"`` for the provider's recommended pretrained weights, a
        weights name such as ``"IMAGENET1K_V1"``, ``None`` for random
        initialization, or the path of a local ``.pth``/``.pt``/
        ``.safetensors`` state dict (head keys are ignored).

    Returns
    -------
    backbone : Backbone

    Raises
    ------
    ValueError
        Unknown name (with close matches) or unknown weights name (with the
        valid ones).
    WeightsUnavailableError
        Pretrained weights are not cached and cannot be downloaded.

    Examples
    --------
    >>> from sktransfer import get_backbone
    >>> get_backbone("resnet18", weights=None).data_config.input_size
    (224, 224)
    """
    if not isinstance(name, str):
        raise TypeError(f"backbone must be a registered name (str), got {type(name).__name__}")
    backbone = backbone_factory(name)(name, weights)
    if not isinstance(backbone, Backbone):
        raise TypeError(
            f"the factory registered for {name!r} returned {type(backbone).__name__}, "
            "not a sktransfer.Backbone"
        )
    if backbone.modality != backbone_modality(name):
        raise TypeError(
            f"the factory registered for {name!r} built a {backbone.modality} backbone, but was "
            f"registered with modality={backbone_modality(name)!r}"
        )
    return backbone


def list_backbones(pattern: Optional[str] = None) -> list[str]:
    """Names of the registered backbones, sorted.

    Parameters
    ----------
    pattern : str, optional
        Shell-style wildcard filter (``"resnet*"``, ``"*efficientnet*"``),
        matched case-insensitively. Namespaces contribute the names their
        providers list (``timm/...`` when timm is installed).

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from sktransfer import list_backbones
    >>> list_backbones("resnet*")
    ['resnet101', 'resnet152', 'resnet18', 'resnet34', 'resnet50']
    """
    _ensure_loaded()
    with _lock:
        names = list(_names)
        providers = [(p, e.list_names) for p, e in _namespaces.items() if e.list_names]
    for prefix, lister in providers:
        names.extend(prefix + n for n in lister())
    if pattern is not None:
        pattern = pattern.lower()
        names = [n for n in names if fnmatch.fnmatchcase(n.lower(), pattern)]
    return sorted(set(names))


def _load_plugins() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name!r} = {ep.value!r} in group {ENTRY_POINT_GROUP!r}"
        try:
            factory = ep.load()
            register_backbone(ep.name, factory, modality=getattr(factory, "modality", "image"))
        except Exception as exc:  # a broken plugin must never break the library
            warnings.warn(
                f"sktransfer skipped backbone plugin {ep.name!r} ({where}): "
                f"{type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=3,
            )


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        _loaded = True  # set first: registering below re-enters this function
        from . import register_builtin_backbones

        register_builtin_backbones(register_backbone)
        _load_plugins()
