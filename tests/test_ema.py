"""The exponential moving average of the weights (``ema_decay``): the fitted network is the
average of the weights training went through, early stopping judges and keeps averaged
weights, and training itself runs as it would without."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss
from skorch.callbacks import Callback

from sktransfer import FineTunedClassifier, FineTunedRegressor
from sktransfer._estimator import fit_context
from sktransfer.fitting.params import InvalidParameterError

from .conftest import TINY


@pytest.fixture(scope="module")
def digits():
    """240 real handwritten digits (0 to 3), as 8x8 uint8 images."""
    data = load_digits(n_class=4)
    return np.round(data.images[:240] * (255 / 16)).astype(np.uint8), data.target[:240]


class Trajectory(Callback):
    """The head's weights where training starts and after each training step."""

    def on_train_begin(self, net, **kwargs):
        self.weights_ = [net.module_.head.weight.detach().clone()]

    def on_batch_end(self, net, training=None, **kwargs):
        if training:
            self.weights_.append(net.module_.head.weight.detach().clone())


def fitted_with_trajectory(clf, X, y):
    trajectory = Trajectory()
    fit_context(type(clf)._fit)(clf, X, y, extra_callbacks=[("trajectory", trajectory)])
    return clf, trajectory.weights_


def test_the_fitted_weights_are_the_average_of_the_steps(digits):
    X, y = digits
    decay = 0.9
    clf, steps = fitted_with_trajectory(
        FineTunedClassifier(TINY, ema_decay=decay, max_epochs=3, batch_size=32, random_state=0), X, y)
    assert len(steps) == 1 + 3 * 7  # the start, then 7 steps an epoch (240 // 32)
    average = steps[0].clone()
    for t, weights in enumerate(steps[1:]):
        average += (1 - min(decay, (1 + t) / (10 + t))) * (weights - average)
    head = clf.net_.module_.head.weight.detach()
    torch.testing.assert_close(head, average, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(head, steps[-1], atol=1e-4)  # not the last step's weights
    # training ran as without the average: the same steps, the same training losses
    plain, plain_steps = fitted_with_trajectory(
        FineTunedClassifier(TINY, max_epochs=3, batch_size=32, random_state=0), X, y)
    torch.testing.assert_close(torch.stack(plain_steps), torch.stack(steps))
    np.testing.assert_allclose(plain.net_.history[:, "train_loss"], clf.net_.history[:, "train_loss"], rtol=1e-6)
    torch.testing.assert_close(plain.net_.module_.head.weight.detach(), steps[-1])
    assert not np.allclose(plain.predict_proba(X), clf.predict_proba(X), atol=1e-4)


def test_early_stopping_judges_and_keeps_the_averaged_weights(digits):
    X, y = digits
    clf = FineTunedClassifier(TINY, ema_decay=0.8, early_stopping=True, n_iter_no_change=10, max_epochs=4,
                              label_smoothing=0.0, batch_size=32, random_state=0)
    clf.fit(X[:160], y[:160], X_val=X[160:], y_val=y[160:])
    recorded = clf.net_.history[:, "valid_loss"]
    start = dict(clf.net_.callbacks_)["early_stopping"].start_loss_
    # the model kept is the best candidate, and its loss on the validation data is what
    # was recorded for it: validation ran on the average
    kept = log_loss(y[160:], clf.predict_proba(X[160:]), labels=clf.classes_)
    assert kept == pytest.approx(min(start, *recorded), rel=1e-4)


def test_the_regressor_averages_too_and_bad_decays_are_refused(digits):
    X, y = digits
    y = y.astype(float)
    plain = FineTunedRegressor(TINY, max_epochs=2, batch_size=32, random_state=0).fit(X, y)
    averaged = FineTunedRegressor(TINY, ema_decay=0.9, max_epochs=2, batch_size=32, random_state=0).fit(X, y)
    assert not np.allclose(plain.predict(X), averaged.predict(X), atol=1e-4)
    for decay in (0.0, 1.0, 1.5, "high"):
        with pytest.raises(InvalidParameterError, match="'ema_decay' parameter"):
            FineTunedClassifier(TINY, ema_decay=decay).fit(X[:4], [0, 1, 0, 1])


def test_a_warm_start_keeps_the_average_on_or_off_as_the_first_fit_had_it(digits):
    X, y = digits
    clf = FineTunedClassifier(TINY, ema_decay=0.9, warm_start=True, max_epochs=1, batch_size=32, random_state=0)
    clf.fit(X, y)
    clf.set_params(ema_decay=0.5).fit(X, y)  # another decay: the next fit's average uses it
    assert dict(clf.net_.callbacks_)["ema"].decay == 0.5 and clf.n_iter_ == 1
    with pytest.raises(ValueError, match="which ran with ema_decay=0.5; keep an average on"):
        clf.set_params(ema_decay=None).fit(X, y)
