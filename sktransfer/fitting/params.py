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

from ..engine.device import PRECISIONS
from ..backbones._registry import backbone_factory
from ..nn.pooling import POOLINGS
from ..nn.preprocess import RESIZE_MODES

__all__ = [
    "IMAGE_PARAMETERS",
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "validate_params",
]

#: Parameters both estimators share: the backbone, how images are read and
#: prepared, where and how the network runs.
IMAGE_PARAMETERS = {
    "backbone": [str],
    "weights": [str, os.PathLike, enum.Enum, None],
    "pooling": [StrOptions(set(POOLINGS))],
    "input_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
    "resize": [StrOptions(set(RESIZE_MODES))],
    "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    "device": [str, torch.device],
    "precision": [StrOptions(set(PRECISIONS))],
    "channel_axis": [StrOptions({"auto"}), Options(Integral, {1, 3, -1})],
    "image_shape": [tuple, list, None],
    "value_range": [tuple, list, None],
    "compile": [StrOptions({"auto"}), "boolean"],
    "cache": ["boolean"],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def invalid(estimator, name: str, expected: str) -> InvalidParameterError:
    """The error for parameter ``name`` of ``estimator``, in scikit-learn's words."""
    value = getattr(estimator, name)
    return InvalidParameterError(
        f"The {name!r} parameter of {type(estimator).__name__} must be {expected}. "
        f"Got {value!r} instead."
    )


def _is_int(value, low=None) -> bool:
    return (isinstance(value, Integral) and not isinstance(value, bool)
            and (low is None or value >= low))


def _check_no_bool_counts(estimator):
    # bool is an Integral: scikit-learn's Interval(Integral) lets True pass as 1
    for name, constraints in estimator._parameter_constraints.items():
        value = getattr(estimator, name)
        counts = "random_state" in constraints or any(
            isinstance(c, Interval) and c.type is Integral for c in constraints)
        if isinstance(value, bool) and counts and "boolean" not in constraints:
            raise invalid(estimator, name, "an int, not a bool")


def _check_pair_of_ints(estimator, name):
    value = getattr(estimator, name)
    if value is None or _is_int(value):
        return
    if isinstance(value, bool) or len(value) != 2 or not all(_is_int(v, 1) for v in value):
        raise invalid(estimator, name, "a positive int, a pair of positive ints (height, width) or None")


def _check_image_shape(estimator):
    shape = estimator.image_shape
    if shape is None:
        return
    free = [v for v in shape if v == -1]
    if not 2 <= len(shape) <= 3 or len(free) > 1 or not all(_is_int(v, 1) or v == -1 for v in shape):
        raise invalid(estimator, "image_shape",
                      "None or (H, W) / (H, W, C) / (C, H, W) of positive ints with at most one -1")


def _check_value_range(estimator):
    value = estimator.value_range
    if value is None:
        return
    ok = len(value) == 2 and all(isinstance(v, Real) and not isinstance(v, bool) for v in value)
    if not ok or not value[0] < value[1]:
        raise invalid(estimator, "value_range", "None or a pair of numbers (low, high) with low < high")


def _check_device(estimator):
    device = estimator.device
    if device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):  # the devices sktransfer is tested on
        raise invalid(estimator, "device", "'auto', 'cpu', 'cuda', 'cuda:N' or such a torch.device")


def validate_params(estimator) -> None:
    """Check every parameter of ``estimator``: its constraints table, then what the
    table cannot express for the shared parameters (each estimator checks the
    rest of its own right after)."""
    validate_parameter_constraints(
        estimator._parameter_constraints, estimator.get_params(deep=False), type(estimator).__name__
    )
    _check_no_bool_counts(estimator)
    backbone_factory(estimator.backbone)  # a typo fails here, with close matches
    _check_pair_of_ints(estimator, "input_size")
    _check_image_shape(estimator)
    _check_value_range(estimator)
    _check_device(estimator)
    if isinstance(estimator.weights, str) and not estimator.weights:
        raise invalid(estimator, "weights", "'DEFAULT', a weights name, a file path or None")
