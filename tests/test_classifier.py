"""FineTunedClassifier: scikit-learn behaviour, freezing, schedules, persistence, bad input."""

import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score

from sktransfer import FineTunedClassifier, get_backbone
from sktransfer.training.schedule import lr_factor

from .conftest import TINY


def classifier(**params):
    defaults = {"max_epochs": 2, "batch_size": 8, "lr": 1e-2, "random_state": 0}
    return FineTunedClassifier(TINY, **{**defaults, **params})


def test_grid_search_over_freeze_depth_on_image_files(data, tmp_path):
    X, y = data
    paths = []
    for i, image in enumerate(X):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    search = GridSearchCV(classifier(), {"freeze_depth": [0, 2, 3, "all"], "lr": [1e-2, 3e-3]}, cv=3)
    search.fit(paths, y)
    assert search.best_params_["freeze_depth"] in (0, 2, 3, "all")
    assert search.best_score_ > 0.8
    assert search.score(pd.Series(paths), y) > 0.8


def _trunk_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("statistics", ["pretrained", "batch"])
def test_frozen_stages_are_bit_identical_and_the_rest_trains(data, statistics):
    X, y = data
    before = _trunk_state(get_backbone(TINY).module)
    clf = classifier(freeze_depth=2, max_epochs=3, batchnorm_statistics=statistics).fit(X, y)
    after = _trunk_state(clf.net_.module_.trunk)
    frozen = [k for k in before if k.startswith(("stem.", "block1."))]
    trained = [k for k in before if k.startswith("block2.")]
    assert any("running_mean" in k for k in frozen)  # BatchNorm statistics are covered
    for key in frozen:
        assert torch.equal(before[key], after[key]), key
    for key in trained:
        if key.endswith("num_batches_tracked"):
            continue
        # pretrained statistics stay as loaded; the affine weights train either way
        unchanged = statistics == "pretrained" and "running_" in key
        assert torch.equal(before[key], after[key]) == unchanged, key


def test_pretrained_batchnorm_statistics_keep_trainable_batchnorm_in_eval_mode(data):
    X, y = data
    module = classifier(freeze_depth=2, max_epochs=1).fit(X, y).net_.module_
    module.train()
    block2 = dict(module.stages)["block2"]
    norms = [m for m in block2.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(m.training for m in norms)
    assert block2.training and module.head.training


def test_frozen_stages_stay_in_eval_mode_through_mode_switches(data):
    X, y = data
    module = classifier(freeze_depth=2, max_epochs=1, batchnorm_statistics="batch").fit(X, y).net_.module_

    def modes():
        return {name: all(m.training for m in stage.modules()) for name, stage in module.stages}

    module.train()
    assert modes() == {"stem": False, "block1": False, "block2": True} and module.head.training
    module.eval()
    assert not any(m.training for m in module.modules())
    module.train()
    assert modes() == {"stem": False, "block1": False, "block2": True}
    module.set_frozen(1)  # unfreezing applies the mode anew
    assert modes() == {"stem": False, "block1": True, "block2": True}


def test_freeze_all_trains_only_the_head(data):
    X, y = data
    before = _trunk_state(get_backbone(TINY).module)
    clf = classifier(freeze_depth="all", max_epochs=6).fit(X, y)
    after = _trunk_state(clf.net_.module_.trunk)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert clf.score(X, y) > 0.8
    assert clf.n_iter_ == 0 and clf.probe_n_iter_ > 0  # solved, not trained by epochs


def test_two_stage_schedule(data):
    X, y = data
    clf = classifier(head_epochs=1, max_epochs=3, freeze_depth=1, lr_schedule="constant",
                     finetune_lr_scale=0.1).fit(X, y)
    history = clf.net_.history
    assert history[:, "frozen_stages"] == [3, 1, 1]
    lrs = [[b["lr"] for b in epoch["batches"]] for epoch in history]
    assert lrs[0] == pytest.approx([1e-2] * len(lrs[0]))
    assert lrs[1] + lrs[2] == pytest.approx([1e-3] * (len(lrs[1]) + len(lrs[2])))
    before = _trunk_state(get_backbone(TINY).module)
    after = _trunk_state(clf.net_.module_.trunk)
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("stem."))
    assert not torch.equal(before["block1.0.weight"], after["block1.0.weight"])


def test_lr_schedules():
    assert lr_factor("constant", 0.7, 0.25) == 1.0
    assert lr_factor("onecycle", 0.0, 0.25) == pytest.approx(1 / 25)
    assert lr_factor("onecycle", 0.25, 0.25) == pytest.approx(1.0)
    assert lr_factor("onecycle", 1.0, 0.25) == pytest.approx(1 / 25e4)
    assert lr_factor("cosine", 0.0, 0.1) == 0.0
    assert lr_factor("cosine", 0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor("cosine", 0.55, 0.1) == pytest.approx(0.5)
    values = [lr_factor("onecycle", t / 100, 0.25) for t in range(101)]
    peak = values.index(max(values))
    assert values[:peak + 1] == sorted(values[:peak + 1])  # rises, then falls
    assert values[peak:] == sorted(values[peak:], reverse=True)


def test_recorded_learning_rates_follow_onecycle(data):
    X, y = data
    clf = classifier(max_epochs=4, warmup_fraction=0.25).fit(X, y)
    lrs = [b["lr"] for epoch in clf.net_.history for b in epoch["batches"]]
    assert lrs[0] == pytest.approx(1e-2 / 25)
    assert max(lrs) == pytest.approx(1e-2, rel=0.05)
    assert lrs[-1] < 1e-2 / 100


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog"]), np.array([3, 7]), np.array([True, False]), np.array(["a", "b", "c"]),
])
def test_labels_of_any_type_round_trip(data, labels):
    X, y = data
    y = labels[np.arange(len(X)) % len(labels)]
    clf = classifier(max_epochs=1).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.unique(y))
    assert set(clf.predict(X)) <= set(labels)
    assert clf.predict(X).dtype == y.dtype
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    decision = clf.decision_function(X)
    assert decision.shape == ((len(X),) if len(labels) == 2 else (len(X), len(labels)))
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], clf.predict(X))


def test_fits_learn_and_cross_validate(data):
    X, y = data
    scores = cross_val_score(classifier(max_epochs=3), X, y, cv=3)
    assert scores.mean() > 0.8


def test_refit_starts_from_pretrained_weights(data):
    X, y = data
    clf = classifier()
    first = clf.fit(X, y).predict_proba(X)
    second = clf.fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)  # no leak from the first fit
    assert clf.n_iter_ == 2


def test_warm_start_continues(data):
    X, y = data
    clf = classifier(warm_start=True)
    first = clf.fit(X, y).predict_proba(X)
    second = clf.fit(X, y).predict_proba(X)
    assert not np.allclose(first, second)
    assert len(clf.net_.history) == 4 and clf.n_iter_ == 2
    # the next warm fit trains as the parameters say now, not as the first fit did
    clf.set_params(max_epochs=1, lr=0.5)
    clf.fit(X, y)
    assert len(clf.net_.history) == 5 and clf.n_iter_ == 1
    assert max(clf.net_.history[-1, "batches", :, "lr"]) > 0.4  # the new peak rate (the first fit's: 0.01)
    with pytest.raises(ValueError, match=r"warm_start=True needs the classes of the first fit \[0, 1\]"):
        clf.fit(X, np.where(y == 1, 2, 0))


def test_random_state_reproduces_and_leaves_global_rng(data):
    X, y = data
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    a = classifier(random_state=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(torch.rand(2), expected)
    b = classifier(random_state=3).fit(X, y).predict_proba(X)
    c = classifier(random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_early_stopping_holds_out_data_and_stops(data):
    X, y = data
    # a converged probe and a negligible learning rate: the validation loss soon stops improving
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # stopping early is not an interrupt
        clf = classifier(early_stopping=True, validation_fraction=0.25, n_iter_no_change=2,
                         max_epochs=30, lr=1e-12, freeze_depth=2).fit(X, y)
    history = clf.net_.history
    assert clf.n_iter_ == len(history) < 30
    assert all("valid_loss" in epoch for epoch in history)
    assert history[-1, "batches", 0, "train_batch_size"] == 8
    n_train = sum(b["train_batch_size"] for b in history[-1, "batches"] if "train_batch_size" in b)
    assert n_train == 32  # 36 training samples, the last partial batch dropped


@pytest.mark.parametrize("optimizer", ["sgd", "adam", torch.optim.RMSprop])
@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_optimizers_and_schedules_train(data, optimizer, schedule):
    X, y = data
    clf = classifier(optimizer=optimizer, lr_schedule=schedule, max_epochs=3, lr=3e-3).fit(X, y)
    losses = clf.net_.history[:, "train_loss"]
    assert losses[-1] < losses[0]


def test_backbone_lr_ratio_zero_keeps_backbone_weights(data):
    X, y = data
    before = dict(get_backbone(TINY).module.named_parameters())
    clf = classifier(backbone_lr_ratio=0.0, weight_decay=0.1).fit(X, y)
    for name, param in clf.net_.module_.trunk.named_parameters():
        assert torch.equal(param.detach(), before[name].detach()), name


def test_joblib_round_trip(data, tmp_path):
    X, y = data
    clf = classifier().fit(X, np.where(y == 1, "bright", "dark"))
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_verbose_prints_the_epoch_table(data, capsys):
    X, y = data
    classifier(verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "epoch" in out and "train_loss" in out
    classifier(verbose=0).fit(X, y)
    assert capsys.readouterr().out == ""


def test_clone_keeps_params_only(data):
    X, y = data
    clf = classifier(freeze_depth="all").fit(X, y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not hasattr(copy, "net_")


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("y, error, message", [
    (np.zeros(48), ValueError, r"needs at least 2 classes in y; got only one class: np\.float64\(0\.0\)|only one class"),
    (np.r_[np.nan, np.ones(47)], ValueError, r"Input y contains NaN: label at index 0"),
    (np.array([None] + ["a", "b"] * 23 + ["a"], dtype=object), ValueError, r"Input y contains NaN: label at index 0 is missing"),
    (np.r_[np.ones(47), np.inf], ValueError, r"Input y contains infinity: label at index 47"),
    (np.ones(47), ValueError, r"X has 48 images but y has 47 labels"),
    (np.linspace(0, 1, 48), ValueError, r"Unknown label type"),
])
def test_bad_labels(data, y, error, message):
    X, _ = data
    with pytest.raises(error, match=message):
        classifier().fit(X, y)


# What the constraints table cannot say; scikit-learn's check_param_validation covers the rest.
@pytest.mark.parametrize("params, message", [
    ({"freeze_depth": 4}, r"freeze_depth=4 is out of range: the backbone has 3 stages \(stem, block1, block2\)"),
    ({"head_epochs": 2, "max_epochs": 2}, r"'head_epochs' parameter .* less than max_epochs=2"),
    ({"optimizer": dict}, r"'optimizer' parameter .* torch.optim.Optimizer subclass"),
    ({"class_weight": {0: 1.0, 7: 2.0}}, r"class_weight|classes"),
])
def test_bad_parameters(data, params, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        classifier(**params).fit(X, y)


@pytest.mark.parametrize("params", [
    {"early_stopping": "yes"}, {"compile": "no"}, {"cache": "no"}, {"verbose": "2"}, {"freeze_depth": "al"},
    {"freeze_depth": 1.5}, {"optimizer": "lamb"}, {"lr": 0}, {"augment": True}, {"warm_start": 1},
])
def test_parameters_are_checked_before_data_and_weights(params):
    from sklearn.utils._param_validation import InvalidParameterError

    clf = classifier(weights="/nonexistent/weights.pth", **params)
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=rf"The '{name}' parameter of FineTunedClassifier"):
        clf.fit("not images", [0, 1])


def test_predict_before_fit(data):
    X, _ = data
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(classifier(), method)(X)


def test_channels_differ_from_training(data):
    X, y = data
    clf = classifier(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"X has 1-channel images, but FineTunedClassifier was fitted on 3-channel"):
        clf.predict(X[..., :1])


def test_too_few_samples_for_a_validation_split(data):
    X, y = data
    with pytest.raises(ValueError, match=r"test_size|split|samples"):
        classifier(early_stopping=True, validation_fraction=0.01).fit(X[:6], y[:6])


def test_augmentation_flips_and_crops_only_in_training():
    from sktransfer.nn.augment import FlipCrop

    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    for crop in (False, True):
        module = FlipCrop(crop=crop).eval()
        assert torch.equal(module(x), x)
    torch.manual_seed(0)
    flipped = FlipCrop().train()(x.repeat(32, 1, 1, 1))
    originals = sum(torch.equal(a, b) for a, b in zip(flipped, x.repeat(32, 1, 1, 1)))
    mirrors = sum(torch.equal(a, b.flip(2)) for a, b in zip(flipped, x.repeat(32, 1, 1, 1)))
    assert originals + mirrors == 64 and 10 < mirrors < 54
    cropped = FlipCrop(crop=True, max_shift=0.25).train()(x.repeat(8, 1, 1, 1))
    assert cropped.shape == (16, 3, 4, 4) and not torch.equal(cropped, x.repeat(8, 1, 1, 1))


# ------------------------------------------------------------------- weights (item 7)


def test_sample_weight_scales_the_loss_and_only_relative_weights_matter(data):
    X, y = data
    plain = classifier(max_epochs=2).fit(X, y).predict_proba(X)
    doubled = classifier(max_epochs=2).fit(X, y, sample_weight=np.full(48, 2.0)).predict_proba(X)
    np.testing.assert_array_equal(doubled, plain)
    without_class_1 = classifier(max_epochs=8).fit(X, y, sample_weight=np.where(y == 1, 0.0, 1.0))
    assert (without_class_1.predict(X) == 0).all()  # class 1 never entered the loss


def test_class_weight_steers_predictions(data):
    X, y = data
    assert classifier(max_epochs=8).fit(X, y).score(X, y) == 1.0
    heavy_0 = classifier(max_epochs=8, class_weight={0: 1000, 1: 1e-4}).fit(X, y)
    assert (heavy_0.predict(X) == 0).all()
    # "balanced" weighs each class by the inverse of its count: on an imbalanced subset, the
    # same as passing those weights by hand
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:6]]
    Xi, yi = X[keep], y[keep]
    n0, n1 = np.bincount(yi)
    balanced = classifier(class_weight="balanced").fit(Xi, yi).predict_proba(Xi)
    manual = classifier().fit(Xi, yi, sample_weight=np.where(yi == 1, n0 / n1, 1.0)).predict_proba(Xi)
    np.testing.assert_allclose(balanced, manual, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sample_weight, message", [
    (np.ones(47), r"sample_weight.shape == \(47,\), expected \(48,\)"),
    (np.r_[np.ones(47), -1.0], r"finite and non-negative; sample 47 has -1"),
    (np.r_[np.nan, np.ones(47)], r"finite and non-negative; sample 0 has nan"),
    (np.zeros(48), r"at least one non-zero"),
])
def test_bad_sample_weights(data, sample_weight, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        classifier().fit(X, y, sample_weight=sample_weight)


def test_weights_route_through_cross_validate_and_adaboost(data):
    import sklearn
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.model_selection import KFold, cross_validate

    X, y = data
    weights = np.linspace(0.5, 2.0, 48)
    cv = KFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        clf = classifier().set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        routed = cross_validate(clf, X, y, params={"sample_weight": weights}, cv=cv,
                                return_estimator=True)
    for (train, test), fitted in zip(cv.split(X), routed["estimator"]):
        by_hand = classifier().fit(X[train], y[train], sample_weight=weights[train])
        np.testing.assert_array_equal(fitted.predict_proba(X[test]), by_hand.predict_proba(X[test]))
    boosted = AdaBoostClassifier(classifier(max_epochs=2), n_estimators=2, random_state=0).fit(X, y)
    assert boosted.score(X, y) > 0.9


def test_progress_bar_shows_each_batch_loss(data, monkeypatch):
    from skorch.callbacks import ProgressBar

    X, y = data
    shown = []
    on_batch_end = ProgressBar.on_batch_end

    def spy(self, net, **kwargs):  # what the bar is about to display
        shown.append(self._get_postfix_dict(net))
        return on_batch_end(self, net, **kwargs)

    monkeypatch.setattr(ProgressBar, "on_batch_end", spy)
    clf = classifier(max_epochs=1, verbose=2, batch_size=10).fit(X, y)
    losses = [b["train_loss"] for b in clf.net_.history[-1]["batches"]]
    assert [p["train_loss"] for p in shown] == losses and len(losses) == 4  # 48 // 10
    assert all(isinstance(v, float) and 0 < v < 5 for v in losses)
    assert dict(clf.net_.callbacks_)["progress"].pbar_.total == 4


def test_a_validation_set_is_scored_each_epoch_without_changing_training(data):
    X, y = data
    plain = FineTunedClassifier(TINY, max_epochs=2, random_state=0).fit(X[:32], y[:32])
    watched = FineTunedClassifier(TINY, max_epochs=2, random_state=0).fit(X[:32], y[:32], X_val=X[32:],
                                                                          y_val=y[32:])
    np.testing.assert_array_equal(plain.predict_proba(X), watched.predict_proba(X))
    last = watched.net_.history[-1]
    assert sum(b.get("valid_batch_size", 0) for b in last["batches"]) == 16
    assert last["valid_acc"] == pytest.approx(watched.score(X[32:], y[32:]))
    assert watched.net_.train_split is None  # the held-out images are not kept by the fitted model


def test_early_stopping_watches_the_validation_set_instead_of_holding_out(data):
    X, y = data
    clf = FineTunedClassifier(TINY, max_epochs=2, early_stopping=True, random_state=0)
    clf.fit(X[:40], y[:40], X_val=X[40:], y_val=y[40:])
    assert sum(b.get("valid_batch_size", 0) for b in clf.net_.history[-1]["batches"]) == 8
    clf.fit(X[:40], y[:40])  # without X_val: validation_fraction of X, stratified
    assert sum(b.get("valid_batch_size", 0) for b in clf.net_.history[-1]["batches"]) == 4


def test_validation_set_errors(data):
    X, y = data
    clf = FineTunedClassifier(TINY, max_epochs=1, random_state=0)
    with pytest.raises(ValueError, match="X_val and y_val must be passed together"):
        clf.fit(X, y, X_val=X[:4])
    with pytest.raises(ValueError, match=r"y_val\[2\] = 7 is not one of the classes of y \[0, 1\]"):
        clf.fit(X, y, X_val=X[:4], y_val=[0, 1, 7, 0])
    with pytest.raises(ValueError, match="X_val has 4 images but y_val has 3 labels"):
        clf.fit(X, y, X_val=X[:4], y_val=[0, 1, 0])
    # a validation set unlike the training images is named as such, before any training
    with pytest.raises(ValueError, match=r"X_val has 1-channel images, but X holds 3-channel images"):
        clf.fit(X, y, X_val=X[:4, ..., 0], y_val=y[:4])
    with pytest.raises(ValueError, match=r"X_val has shape \(16, 16, 3\): one image of the kind X holds"):
        clf.fit(X, y, X_val=X[0], y_val=y[:1])
    # checked with the data, whatever the recipe (the probe of freeze_depth="all" does not use it)
    probe = FineTunedClassifier(TINY, freeze_depth="all", random_state=0)
    with pytest.raises(ValueError, match="X_val and y_val must be passed together"):
        probe.fit(X, y, X_val=X[:4])
    with pytest.raises(ValueError, match=r"y_val\[0\] = 'zzz' is not one of the classes"):
        probe.fit(X, y, X_val=X[:2], y_val=["zzz", "zzz"])
