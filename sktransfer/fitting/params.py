"""Estimator parameters: declared once, in scikit-learn's style, and checked first in ``fit``.

Each estimator's ``_parameter_constraints`` table is built from scikit-learn's
own constraint classes, so that scikit-learn's ``check_param_validation``
understands it. What a table cannot express (the items of a tuple, the form
of a device string, an optimizer class) is checked by :func:`validate_params`
right after the table, with errors of the same form. Nothing here looks at
data or loads weights: a bad parameter fails before either.
"""

from __future__ import annotations

import enum
import os
from numbers import Integral, Real

import torch

try:  # private in scikit-learn, stable since 1.2; a clear error if a release moves it
    from sklearn.utils._param_validation import (
        Interval,
        InvalidParameterError,
        Options,
        StrOptions,
        validate_parameter_constraints,
    )
except ImportError as exc:  # pragma: no cover - depends on the installed scikit-learn
    import sklearn

    raise ImportError(
        "sktransfer declares its parameters with scikit-learn's constraint classes "
        "(sklearn.utils._param_validation), which this scikit-learn "
        f"({sklearn.__version__}) does not provide; install a scikit-learn version "
        "that pyproject.toml of sktransfer allows"
    ) from exc

from .device import PRECISIONS
from ..backbones._registry import backbone_factory
from ..nn.pooling import POOLINGS
from ..nn.preprocess import RESIZE_MODES

__all__ = [
    "AUDIO_INPUT_PARAMETERS",
    "IMAGE_INPUT_PARAMETERS",
    "Interval",
    "InvalidParameterError",
    "NETWORK_PARAMETERS",
    "RUNTIME_PARAMETERS",
    "SHARED_PARAMETERS",
    "StrOptions",
    "TEXT_INPUT_PARAMETERS",
    "invalid",
    "validate_params",
]

#: Which pretrained network, with which weights, pooled how, seeded how.
NETWORK_PARAMETERS = {
    "backbone": [str],
    "weights": [str, os.PathLike, enum.Enum, None],
    "pooling": [StrOptions(set(POOLINGS))],
    "random_state": ["random_state"],
}

#: How image inputs are read and prepared (the image modality's parameters).
IMAGE_INPUT_PARAMETERS = {
    "input_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
    "resize": [StrOptions(set(RESIZE_MODES))],
    "channel_axis": [StrOptions({"auto"}), Options(Integral, {1, 3, -1})],
    "image_shape": [tuple, list, None],
    "value_range": [tuple, list, None],
}

#: How texts are tokenized (the text modality's parameters).
TEXT_INPUT_PARAMETERS = {
    "max_length": [Interval(Integral, 1, None, closed="left"), None],
}

#: How sound is read (the audio modality's parameters).
AUDIO_INPUT_PARAMETERS = {
    "sample_rate": [Interval(Integral, 1, None, closed="left"), None],
    "clip_seconds": [Interval(Real, 0, None, closed="neither"), None],
}

#: Where and how a network runs.
RUNTIME_PARAMETERS = {
    "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    "device": [str, torch.device],
    "precision": [StrOptions(set(PRECISIONS))],
    "compile": [StrOptions({"auto"}), "boolean"],
    "cache": ["boolean"],
    "verbose": ["verbose"],
}


#: What every estimator takes: the network, each modality's inputs, the runtime (a new
#: modality's table joins here, once).
SHARED_PARAMETERS = {
    **NETWORK_PARAMETERS,
    **IMAGE_INPUT_PARAMETERS,
    **TEXT_INPUT_PARAMETERS,
    **AUDIO_INPUT_PARAMETERS,
    **RUNTIME_PARAMETERS,
}


def invalid(owner: str, name: str, value, expected: str) -> InvalidParameterError:
    """The error for parameter ``name`` of the estimator class ``owner``, in scikit-learn's words."""
    return InvalidParameterError(
        f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead."
    )


def _is_int(value, low=None) -> bool:
    return (isinstance(value, Integral) and not isinstance(value, bool)
            and (low is None or value >= low))


def _check_no_bool_counts(constraints, params, owner):
    # bool is an Integral: scikit-learn's Interval(Integral) lets True pass as 1
    for name, allowed in constraints.items():
        value = params[name]
        counts = "random_state" in allowed or any(isinstance(c, Interval) and c.type is Integral for c in allowed)
        if isinstance(value, bool) and counts and "boolean" not in allowed:
            raise invalid(owner, name, value, "an int, not a bool")


def _check_pair_of_ints(value, owner, name):
    if value is None or _is_int(value):
        return
    if isinstance(value, bool) or len(value) != 2 or not all(_is_int(v, 1) for v in value):
        raise invalid(owner, name, value, "a positive int, a pair of positive ints (height, width) or None")


def _check_image_shape(shape, owner):
    if shape is None:
        return
    free = [v for v in shape if v == -1]
    if not 2 <= len(shape) <= 3 or len(free) > 1 or not all(_is_int(v, 1) or v == -1 for v in shape):
        raise invalid(owner, "image_shape", shape,
                      "None or (H, W) / (H, W, C) / (C, H, W) of positive ints with at most one -1")


def _check_value_range(value, owner):
    if value is None:
        return
    ok = len(value) == 2 and all(isinstance(v, Real) and not isinstance(v, bool) for v in value)
    if not ok or not value[0] < value[1]:
        raise invalid(owner, "value_range", value, "None or a pair of numbers (low, high) with low < high")


def _check_device(device, owner):
    if device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):  # the devices sktransfer is tested on
        raise invalid(owner, "device", device, "'auto', 'cpu', 'cuda', 'cuda:N' or such a torch.device")


def validate_params(constraints: dict, params: dict, owner: str) -> None:
    """Check ``params`` (an estimator's ``get_params(deep=False)``) of the estimator class
    ``owner``: its ``constraints`` table, then what a table cannot express for the shared
    parameters (each estimator checks the rest of its own right after). Reads no data
    and no weights; looks the backbone's name up in the registry."""
    validate_parameter_constraints(constraints, params, owner)
    _check_no_bool_counts(constraints, params, owner)
    backbone_factory(params["backbone"])  # a typo fails here, with close matches
    _check_pair_of_ints(params["input_size"], owner, "input_size")
    _check_image_shape(params["image_shape"], owner)
    _check_value_range(params["value_range"], owner)
    _check_device(params["device"], owner)
    if isinstance(params["weights"], str) and not params["weights"]:
        raise invalid(owner, "weights", params["weights"], "'DEFAULT', a weights name, a file path or None")
