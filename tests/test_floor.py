"""The probe as the floor of fine-tuning: early stopping counts the network training starts
from as a candidate, the held-out rows are held out of the probe too, and a fit with too
few optimizer steps to move the backbone says so."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from skorch.dataset import ValidSplit
from sklearn.datasets import load_digits

from sktransfer import FineTunedClassifier, FineTunedRegressor

from .conftest import TINY


@pytest.fixture(scope="module")
def digits():
    """300 real handwritten digits (0 to 4), as 8x8 uint8 images."""
    data = load_digits(n_class=5)
    images = np.round(data.images[:300] * (255 / 16)).astype(np.uint8)
    return images, data.target[:300]


def tuned(**params):
    # lr=30: every step wrecks the backbone, so no epoch can beat the start
    defaults = {"head_init": "probe", "early_stopping": True, "lr": 30.0, "max_epochs": 2, "batch_size": 16,
                "augment": None, "random_state": 0}
    return FineTunedClassifier(TINY, **{**defaults, **params})


def test_a_fit_that_cannot_beat_the_probe_returns_the_probe(digits):
    X, y = digits
    X_train, y_train, X_val, y_val = X[:200], y[:200], X[200:], y[200:]
    probe = FineTunedClassifier(TINY, freeze_depth="all", random_state=0).fit(X_train, y_train)
    with pytest.warns(UserWarning, match="only 24 optimizer steps"):
        kept = tuned().fit(X_train, y_train, X_val=X_val, y_val=y_val)
    stopping = dict(kept.net_.callbacks_)["early_stopping"]
    assert min(kept.net_.history[:, "valid_loss"]) > stopping.start_loss_  # no epoch beat the start
    np.testing.assert_allclose(kept.predict_proba(X_val), probe.predict_proba(X_val), atol=1e-5)
    with pytest.warns(UserWarning, match="only 24 optimizer steps"):
        wrecked = tuned(early_stopping=False).fit(X_train, y_train)  # no validation data: no floor
    assert wrecked.score(X_val, y_val) < kept.score(X_val, y_val) - 0.2


def test_the_held_out_rows_are_held_out_of_the_probe_too(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few steps
        kept = tuned(validation_fraction=0.2).fit(X, y)
    split = ValidSplit(0.2, stratified=True, random_state=kept._spec.seed)
    train, valid = (np.asarray(part.indices) for part in split(np.arange(len(y)), y))
    assert len(valid) == 60 and not set(train) & set(valid)
    probe = FineTunedClassifier(TINY, freeze_depth="all", random_state=0)
    np.testing.assert_allclose(kept.predict_proba(X), probe.fit(X[train], y[train]).predict_proba(X), atol=1e-5)
    assert not np.allclose(kept.predict_proba(X), probe.fit(X, y).predict_proba(X), atol=1e-3)


def test_fine_tuning_that_improves_is_kept(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf = tuned(lr=3e-3, max_epochs=6).fit(X, y)
    stopping = dict(clf.net_.callbacks_)["early_stopping"]
    assert stopping.best_epoch_ > 0 and min(clf.net_.history[:, "valid_loss"]) < stopping.start_loss_


def test_too_few_steps_to_move_the_backbone_are_named_with_the_cheaper_recipe(digits):
    X, y = digits
    message = (r"will train the backbone for only 12 optimizer steps \(200 training samples, batch_size=16, "
               r"1 epochs\).*freeze_depth='all' \(the probe, in seconds\) is the cheaper recipe; or raise max_epochs")
    with pytest.warns(UserWarning, match=message):
        FineTunedClassifier(TINY, max_epochs=1, batch_size=16, random_state=0).fit(X[:200], y[:200])
    with pytest.warns(UserWarning, match="only 9 optimizer steps"):
        FineTunedRegressor(TINY, max_epochs=1, batch_size=16, random_state=0).fit(X[:150], y[:150].astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        FineTunedClassifier(TINY, freeze_depth="all").fit(X, y)  # no backbone to move
        FineTunedClassifier(TINY, max_epochs=3, batch_size=16, random_state=0).fit(X, y)  # 54 steps


def test_warm_start_keeps_the_first_fits_early_stopping(digits):
    X, y = digits
    clf = tuned(lr=1e-3, max_epochs=2, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="warm_start=True continues the first fit's training, which ran with "
                                         "early_stopping=True"):
        clf.set_params(early_stopping=False).fit(X, y)
    assert clf.early_stopping is False and len(clf.net_.history) == 2  # the fit changed nothing


def test_a_partial_batch_is_a_step(digits):
    X, y = digits
    with pytest.warns(UserWarning, match="only 3 optimizer steps \\(12 training samples, batch_size=16, 3 epochs\\)"):
        FineTunedClassifier(TINY, max_epochs=3, batch_size=16, random_state=0).fit(X[:12], y[:12] % 2)
