"""Property-based tests of the input path (hypothesis): every valid array gives finite
features of the right shape; every invalid one raises a documented exception."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from sktransfer import PretrainedFeatureExtractor  # noqa: E402

from .conftest import TINY  # noqa: E402

EXAMPLES = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DTYPES = {  # dtype -> the values an image of it may hold (defaults: value_range=(0, 1))
    "uint8": st.integers(0, 255),
    "int16": st.integers(0, 255),
    "int64": st.integers(0, 255),
    "uint16": st.integers(0, 65535),  # 16 bits, read as value / 257
    "float16": st.floats(0, 1, width=16),
    "float32": st.floats(0, 1, width=32),
    "float64": st.floats(0, 1),
}
LAYOUTS = {  # channel_axis -> image shape from (channels, height, width)
    -1: lambda c, h, w: (h, w, c),
    1: lambda c, h, w: (c, h, w),
}


@st.composite
def valid_images(draw):
    dtype = draw(st.sampled_from(sorted(DTYPES)))
    n, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 20)), draw(st.integers(1, 20))
    if draw(st.booleans()):  # (n, H, W) grayscale; a last axis of 1, 3 or 4 could be channels
        w = draw(st.integers(5, 20))
        axis, shape = "auto", (n, h, w)
    else:
        axis = draw(st.sampled_from(sorted(LAYOUTS)))
        shape = (n, *LAYOUTS[axis](draw(st.sampled_from([1, 3, 4])), h, w))
    X = draw(hnp.arrays(np.dtype(dtype), shape, elements=DTYPES[dtype]))
    return X, axis


@given(valid_images())
@EXAMPLES
def test_any_valid_array_gives_finite_features_of_the_right_shape(case):
    X, axis = case
    features = PretrainedFeatureExtractor(TINY, channel_axis=axis, cache=False).fit_transform(X)
    assert features.shape == (len(X), 16) and features.dtype == np.float32
    assert np.isfinite(features).all()


BAD_VALUES = {"f": [np.nan, np.inf, -np.inf, -0.5, 1.5], "i": [-1, 256], "u": [256]}


def _poisoned(draw, X):
    """``X`` with one value that no image may hold, at a drawn place; None for uint8 and
    uint16, which hold no such value."""
    if X.dtype in (np.uint8, np.uint16):
        return None
    X = X.copy()
    X[tuple(draw(st.integers(0, size - 1)) for size in X.shape)] = draw(st.sampled_from(BAD_VALUES[X.dtype.kind]))
    return X


@st.composite
def invalid_images(draw):
    kind = draw(st.sampled_from(["value", "ndim", "channels", "empty", "dtype"]))
    if kind == "value":
        X, axis = draw(valid_images())
        poisoned = _poisoned(draw, X)
        if poisoned is None:  # every uint8 value is valid: an empty batch instead
            return X[:0], axis
        return poisoned, axis
    if kind == "ndim":
        shape = draw(st.sampled_from([(), (5,), (2, 3, 4, 5, 6), (1, 1, 1, 1, 1, 1)]))
        return np.zeros(shape, np.uint8), "auto"
    if kind == "channels":
        channels = draw(st.sampled_from([2, 5, 8]))
        axis = draw(st.sampled_from(sorted(LAYOUTS)))
        h, w = draw(st.integers(5, 9)), draw(st.integers(5, 9))
        return np.zeros((2, *LAYOUTS[axis](channels, h, w)), np.uint8), axis
    if kind == "empty":
        shape = draw(st.sampled_from([(0, 8, 8, 3), (2, 0, 8, 3), (2, 8, 0), (0, 8, 8)]))
        return np.zeros(shape, np.uint8), "auto"
    dtype = draw(st.sampled_from([bool, np.complex64, "U3", "datetime64[s]"]))
    return np.zeros((2, 8, 8, 3), dtype), "auto"


@given(invalid_images())
@EXAMPLES
def test_any_invalid_array_raises_a_documented_exception(case):
    X, axis = case
    with pytest.raises((ValueError, TypeError)):
        PretrainedFeatureExtractor(TINY, channel_axis=axis, cache=False).fit_transform(X)
