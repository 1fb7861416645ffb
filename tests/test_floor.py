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
from sktransfer.backbones.efficientnet_lite import weights_available

from .conftest import TINY


@pytest.fixture(scope="module")
def digits():
    """300 real handwritten digits (0 to 4), as 8x8 uint8 images."""
    data = load_digits(n_class=5)
    images = np.round(data.images[:300] * (255 / 16)).astype(np.uint8)
    return images, data.target[:300]


def tuned(**params):
    # lr=30: every step wrecks the backbone, so no epoch can beat the start
    defaults = {"head_init": "probe", "early_stopping": True, "lr": 30.0, "max_epochs": 2, "batch_size": 32,
                "augment": None, "random_state": 0}
    return FineTunedClassifier(TINY, **{**defaults, **params})


def test_a_fit_that_cannot_beat_the_probe_returns_the_probe(digits):
    X, y = digits
    X_train, y_train, X_val, y_val = X[:200], y[:200], X[200:], y[200:]
    probe = FineTunedClassifier(TINY, freeze_depth="all", random_state=0).fit(X_train, y_train)
    with pytest.warns(UserWarning, match="only 12 optimizer steps"):
        kept = tuned().fit(X_train, y_train, X_val=X_val, y_val=y_val)
    stopping = dict(kept.net_.callbacks_)["early_stopping"]
    assert min(kept.net_.history[:, "valid_loss"]) > stopping.start_loss_  # no epoch beat the start
    np.testing.assert_allclose(kept.predict_proba(X_val), probe.predict_proba(X_val), atol=1e-5)
    with pytest.warns(UserWarning, match="only 12 optimizer steps"):
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


def spec_for(**params):
    from sktransfer.fitting.spec import NetworkSpec
    from sktransfer.training.spec import TrainingSpec

    clf = FineTunedClassifier(TINY, batch_size=32, device="cpu", **params)
    return TrainingSpec.of(clf.get_params(deep=False), NetworkSpec.of(clf.get_params(deep=False)))


def test_auto_starts_from_the_probe_and_moves_the_backbone_gently_below_20_steps():
    # 600 samples at batch size 32: 18 steps an epoch
    one_epoch = spec_for(max_epochs=1).resolved(600)
    assert (one_epoch.head_init, one_epoch.backbone_lr_ratio) == ("probe", 0.1)
    three_epochs = spec_for(max_epochs=3).resolved(600)  # 54 steps
    assert (three_epochs.head_init, three_epochs.backbone_lr_ratio) == ("random", 1.0)
    assert spec_for(max_epochs=2).resolved(600).head_init == "random"  # 36 steps
    two_stage = spec_for(max_epochs=2, head_epochs=1).resolved(600)  # 18 steps through the backbone
    assert two_stage.backbone_lr_ratio == 0.1
    assert spec_for(max_epochs=1).resolved(600, processes=1, continuing=True).head_init == "random"
    assert spec_for(max_epochs=2).resolved(600, processes=2).head_init == "probe"  # 18 steps of 64
    chosen = spec_for(max_epochs=1, head_init="random", backbone_lr_ratio=0.5).resolved(600)
    assert (chosen.head_init, chosen.backbone_lr_ratio) == ("random", 0.5)  # what a user sets stays
    # never a probe head under a full-rate backbone in a short fit (600 images, 1 epoch: 0.283)
    assert spec_for(max_epochs=1, backbone_lr_ratio=1.0).resolved(600).head_init == "random"
    assert spec_for(max_epochs=1, backbone_lr_ratio=0.05).resolved(600).head_init == "probe"


def test_a_probe_alone_holds_no_rows_out(digits):
    X, y = digits  # 30 images of 5 classes: a 10 % split could not hold one of each
    clf = FineTunedClassifier(TINY, freeze_depth="all", early_stopping=True).fit(X[:30], y[:30])
    full = FineTunedClassifier(TINY, freeze_depth="all").fit(X[:30], y[:30])
    np.testing.assert_allclose(clf.predict_proba(X), full.predict_proba(X), atol=1e-6)


@pytest.mark.skipif(not weights_available("efficientnet_lite0"), reason="EfficientNet-Lite0 weights not installed")
def test_a_short_default_fit_stays_near_the_probe_where_a_random_head_falls_below(digits):
    X, y = digits
    X_train, y_train, X_test, y_test = X[:200], y[:200], X[200:], y[200:]
    common = {"input_size": 32, "max_epochs": 2, "random_state": 0}
    probe = FineTunedClassifier("efficientnet_lite0", freeze_depth="all", **common).fit(X_train, y_train)
    with pytest.warns(UserWarning, match="so it starts from the frozen features' linear probe and trains the "
                                         "backbone at 0.1 of the head's rate"):
        default = FineTunedClassifier("efficientnet_lite0", **common).fit(X_train, y_train)
    assert default.probe_n_iter_ > 0
    rates = default.net_.history[-1, "batches", -1]["lr"], default.net_.optimizer_.param_groups[0]["lr"]
    assert rates[1] == pytest.approx(0.1 * rates[0])  # the backbone's group, at a tenth of the head's
    with pytest.warns(UserWarning, match="fine-tuning then often ends below"):
        random_head = FineTunedClassifier("efficientnet_lite0", head_init="random", backbone_lr_ratio=1.0,
                                          **common).fit(X_train, y_train)
    scores = [model.score(X_test, y_test) for model in (probe, default, random_head)]
    assert scores[1] >= scores[0] - 0.01 and scores[1] > scores[2] + 0.05, scores
