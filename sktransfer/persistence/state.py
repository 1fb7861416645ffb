"""A fitted estimator's state as plain data, and its network rebuilt from that data.

pickle, joblib, cloudpickle, ``copy.deepcopy`` and skops all save what
``__getstate__`` returns. The estimators return plain data only: their
parameters, numpy arrays of the network's weights (each tensor once), and
dicts, tuples, lists, strings and numbers for the rest (data config, input
signature, resolved spec, training history). Nothing in it is code:
``__setstate__`` builds the architecture again from the registry name (random
initialization, seeded, without touching the caller's RNG) and copies the
stored weights in. A skops file of an estimator therefore needs to trust only
the estimator classes, and loading one never runs a nested pickle.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..fitting.memo import backbone_memo
from ..fitting.seeding import seeded
from ..fitting.spec import NetworkSpec
from .._version import __version__
from ..backbones import AudioConfig, AudioEncoderConfig, Backbone, DataConfig, TextConfig, get_backbone
from ..backbones._registry import backbone_factory
from ..backbones._weights import is_weights_file
from ..data.inputs import InputOptions, InputSignature

STATE_FORMAT = 1  # bumped when a saved state no longer loads into the current code

_RECORDS = {"data_config_": DataConfig, "_input_signature": InputSignature, "_spec": NetworkSpec}


def network_state(module: nn.Module) -> dict:
    """``{"arrays": {name: ndarray}, "aliases": {name: name}}``: ``module``'s state
    dict on the host, a tensor reachable under several names (tied weights) stored
    once. bfloat16 tensors are stored as float32, which holds them exactly."""
    module = getattr(module, "_orig_mod", module)  # a compiled module's own weights
    arrays, aliases, seen = {}, {}, {}
    for name, tensor in module.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
               tuple(tensor.stride()), tensor.dtype)
        if tensor.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensor = tensor.detach().cpu()
        arrays[name] = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
    return {"arrays": arrays, "aliases": aliases}


def load_network_state(module: nn.Module, state: dict, backbone: str) -> None:
    """Copy the weights of :func:`network_state` into ``module`` (same architecture)."""
    arrays = state["arrays"]
    for name, array in arrays.items():
        if not (isinstance(array, np.ndarray) and array.dtype.kind in "biuf"):
            raise ValueError(f"the saved weight {name!r} is a {type(array).__name__}, not a numeric array")
    tensors = {name: torch.from_numpy(a if a.flags.writeable else a.copy()) for name, a in arrays.items()}
    for alias, name in state["aliases"].items():
        if name not in tensors:
            raise ValueError(f"the saved weight {alias!r} is an alias of {name!r}, which the state does not hold")
        tensors[alias] = tensors[name]
    module = getattr(module, "_orig_mod", module)
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"the saved weights do not fit backbone {backbone!r} as it is registered in this "
            f"process (another version of its provider?): {exc}"
        ) from None


def rebuild_backbone(spec: NetworkSpec) -> Backbone:
    """The registered architecture of ``spec.backbone``, randomly initialized: the
    stored weights replace its values, so neither a weights file nor a download is
    needed. A factory whose architecture depends on the weights (torchvision's SWAG
    ViTs take 384-518 px) builds it through its ``architecture(name, weights)``."""
    try:
        factory = backbone_factory(spec.backbone)
        architecture = getattr(factory, "architecture", None)
        if architecture is not None and isinstance(spec.weights, str) and not is_weights_file(spec.weights):
            weights, build = spec.weights, functools.partial(architecture, spec.backbone, spec.weights)
        else:
            weights, build = None, functools.partial(get_backbone, spec.backbone, weights=None)

        def load():
            with seeded(0):
                return build()

        # through the memo: unpickling many copies of an estimator in one process (tasks
        # of a dask worker, a joblib pool's workers) builds the architecture once
        return backbone_memo.get((factory, "architecture", spec.backbone, weights), load)
    except ValueError as exc:
        if os.sep in spec.backbone and not os.path.isdir(spec.backbone):
            raise ValueError(
                f"cannot rebuild the saved network: its model folder {spec.backbone!r} is not on this "
                "machine (a text model is rebuilt from its folder's configuration and tokenizer)"
            ) from None
        raise ValueError(
            f"cannot rebuild the saved network: {exc}. Register the backbone (or install its "
            "plugin) as in the process that fitted the estimator."
        ) from None


def plain(value):
    """``value`` with numpy scalars made Python numbers, recursively (history entries)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _data_config_record(values: dict) -> type:
    """The data config class a saved one was, told by the fields only it has."""
    if "max_length" in values:
        return TextConfig  # a text backbone's
    if "image" in values:
        return AudioConfig  # an audio backbone's, around its image network's
    if "sample_rate" in values:
        return AudioEncoderConfig  # an audio encoder's
    return DataConfig


def dump_state(state: dict, network: Optional[nn.Module]) -> dict:
    """Plain data for ``state`` (an estimator's ``__dict__`` without its network) and
    ``network``'s weights; an unfitted estimator (``network`` None) keeps its parameters."""
    state = dict(state, _state_format=STATE_FORMAT, _sktransfer_version=__version__)
    if network is None:
        return state
    state["_network"] = network_state(network)
    state["device_"] = str(state["device_"])
    for name in _RECORDS:
        state[name] = dataclasses.asdict(state[name])
    spec = state["_spec"]
    if not isinstance(spec["weights"], (str, type(None))):  # an enum member: its name says it all
        spec["weights"] = spec["weights_identity"]
    return state


#: Attributes scikit-learn itself keeps on an estimator (``set_output``, metadata routing).
SKLEARN_STATE = frozenset({"_sklearn_output_config", "_metadata_request"})
_FORMAT_KEYS = frozenset({"_state_format", "_sktransfer_version"})


def restore_state(state, owner: str, declared, required) -> tuple[dict, Optional[dict]]:
    """The attributes of a :func:`dump_state` state for an estimator of class ``owner``,
    and the network's weights (None when unfitted).

    Refuses, with a ValueError that says why, a state of another format (before reading
    anything else), one that is not a dict, and one holding an attribute outside
    ``declared`` (the class's parameters and fitted state: an edited file must not
    replace a method or plant an attribute); a fitted state must hold every attribute
    of ``required``. A network fitted on a device missing here moves to the CPU, with a
    warning.
    """
    if not isinstance(state, dict):
        raise ValueError(f"the state of a {owner} must be a dict of attributes, not a {type(state).__name__}")
    state = dict(state)
    fmt, version = state.pop("_state_format", None), state.pop("_sktransfer_version", None)
    if fmt != STATE_FORMAT or "_model_bytes" in state:
        raise ValueError(
            f"this {owner} was saved by sktransfer {version or '0.1 or older'} in state format "
            f"{fmt}; sktransfer {__version__} reads format {STATE_FORMAT}. Load it with the "
            "version that saved it, or fit it again (older files held a nested torch pickle, "
            "which is never loaded: it could run code)."
        )
    unknown = sorted(str(k) for k in set(state) - set(declared) - SKLEARN_STATE - _FORMAT_KEYS)
    if unknown:
        raise ValueError(f"the state holds attributes that {owner} does not declare: {', '.join(unknown[:10])}")
    network = state.pop("_network", None)
    if network is None:
        fitted = sorted(set(required) & set(state))
        if fitted:
            raise ValueError(f"the state holds fitted attributes ({', '.join(fitted[:5])}) but no network")
        return state, None
    missing = sorted(set(required) - set(state))
    if missing:
        raise ValueError(f"the fitted state of a {owner} lacks {', '.join(missing)}")
    if not (isinstance(network, dict) and isinstance(network.get("arrays"), dict)
            and isinstance(network.get("aliases"), dict)):
        raise ValueError("the state's network is not a dict of 'arrays' and 'aliases'")
    for name, record in _RECORDS.items():
        values = state[name]
        if name == "data_config_" and isinstance(values, dict):
            record = _data_config_record(values)
        try:
            if record is AudioConfig:
                values = dict(values, image=DataConfig(**values["image"]))
            state[name] = record(**values)
        except (TypeError, KeyError) as exc:
            raise ValueError(f"the state's {name} is not a {record.__name__}: {exc}") from None
    spec = state["_spec"]
    spec = dataclasses.replace(spec, inputs=InputOptions(**spec.inputs))
    device = torch.device(state["device_"])
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        warnings.warn(
            f"{owner} was fitted on {device}, which is not available here; it now runs on the "
            "CPU in float32",
            UserWarning,
            stacklevel=3,
        )
        device = torch.device("cpu")
        spec = dataclasses.replace(spec, device="cpu", precision="float32")
    state["_spec"], state["device_"] = spec, device
    return state, network
