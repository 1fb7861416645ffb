"""The learning-rate range test: a sweep on a copy of the estimator, a suggestion that trains
on real digits, its end when the loss diverges, and its plot."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from sklearn.datasets import load_digits

from sktransfer import FineTunedClassifier, FineTunedRegressor
from sktransfer.backbones.efficientnet_lite import weights_available
from sktransfer.display import LRFinderDisplay
from sktransfer.training.schedule import lr_curve

from .conftest import TINY

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def digits():
    data = load_digits(n_class=5)
    return np.round(data.images[:400] * (255 / 16)).astype(np.uint8), data.target[:400]


@pytest.mark.skipif(not weights_available("efficientnet_lite0"), reason="EfficientNet-Lite0 weights not installed")
def test_the_suggested_rate_trains_where_too_low_and_too_high_do_not(digits):
    X, y = digits
    # a random head at the full rate: the setting whose rate decides everything
    clf = FineTunedClassifier("efficientnet_lite0", input_size=32, batch_size=16, augment=None, random_state=0,
                              head_init="random", backbone_lr_ratio=1.0)
    curve = clf.lr_find(X[:300], y[:300], num_steps=60)
    assert not hasattr(clf, "net_") and clf.lr == 1e-3  # the estimator is left as it was
    assert 5 <= len(curve.lr) <= 60 and len(curve.loss) == len(curve.smoothed_loss) == len(curve.lr)
    np.testing.assert_allclose(np.diff(np.log(curve.lr)), np.log(1e8) / 59)  # 1e-7 to 10 in 60 steps
    scores = {}
    for name, lr in (("low", 1e-6), ("suggested", curve.suggestion), ("high", 3.0)):
        scores[name] = clf.set_params(lr=lr, max_epochs=2).fit(X[:300], y[:300]).score(X[300:], y[300:])
    assert scores["suggested"] > max(scores["low"], scores["high"]) + 0.2, scores


def test_the_sweep_ends_when_the_loss_diverges_and_the_regressor_has_one_too(digits):
    X, y = digits
    curve = FineTunedClassifier(TINY, batch_size=16, random_state=0).lr_find(X, y, end_lr=1e6, num_steps=300)
    assert len(curve.lr) < 300  # stopped at the divergence (a non-finite loss is cut from the curve)
    assert np.isfinite(curve.loss).all() and curve.suggestion < curve.lr[-1]
    values = y.astype(float)
    reg = FineTunedRegressor(TINY, batch_size=16, random_state=0).lr_find(X, values, num_steps=20)
    assert len(reg.lr) <= 20 and np.isfinite(reg.loss).all()


def test_the_sweep_starts_where_the_fit_would_start(digits):
    # 200 digits at batch size 16, 1 epoch: 12 steps, so "auto" starts from the probe
    X, y = digits[0][:200], digits[1][:200]
    settings = {"max_epochs": 1, "batch_size": 16, "augment": None, "random_state": 0}
    auto = FineTunedClassifier(TINY, **settings).lr_find(X, y, num_steps=10)
    random_head = FineTunedClassifier(TINY, head_init="random", **settings).lr_find(X, y, num_steps=10)
    assert random_head.loss[0] > np.log(5) - 0.2  # a random head over 5 classes
    assert auto.loss[0] < random_head.loss[0] - 0.3  # the probe's loss


def test_the_valley_lies_on_the_fall_before_the_divergence():
    lr = np.logspace(-7, 1, 81)
    step = np.log10(lr)
    # flat and noisy, a steady fall from 1e-4 to 1e-1, then an explosion
    loss = 2.0 + 0.01 * np.sin(7 * step) - np.clip(step + 4, 0, 3) * 0.5 + np.where(step > -1, 10 ** (step + 1), 0)
    curve = lr_curve(lr, loss)
    assert 1e-4 < curve.suggestion < 1e-1
    with pytest.raises(ValueError, match="no finite loss"):
        lr_curve(lr[:3], [np.nan] * 3)


def test_bad_arguments_are_refused(digits):
    X, y = digits
    clf = FineTunedClassifier(TINY)
    with pytest.raises(ValueError, match="0 < start_lr < end_lr"):
        clf.lr_find(X, y, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ValueError, match="num_steps >= 5"):
        clf.lr_find(X, y, num_steps=2)
    with pytest.raises(ValueError, match="freeze_depth='all' trains nothing"):
        FineTunedClassifier(TINY, freeze_depth="all").lr_find(X, y)
    with pytest.raises(ValueError, match="freeze_depth=3 freezes every stage: the sweep has nothing to train"):
        FineTunedClassifier(TINY, freeze_depth=3).lr_find(X, y)


def test_the_display_plots_the_curve_and_its_suggestion(digits):
    X, y = digits
    display = LRFinderDisplay.from_estimator(FineTunedClassifier(TINY, batch_size=16, random_state=0), X, y,
                                             num_steps=15)
    assert set(display.lines_) == {"loss", "smoothed_loss", "suggestion"}
    assert display.ax_.get_xscale() == "log" and "suggested lr" in display.lines_["suggestion"].get_label()
    np.testing.assert_array_equal(display.lines_["loss"].get_xdata(), display.lr)
