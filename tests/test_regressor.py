"""FineTunedRegressor: continuous targets through the same recipes, inputs and files as the classifier."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline

import sktransfer
from sktransfer import FineTunedRegressor, PretrainedFeatureExtractor

from .conftest import TINY

PARAMS = {"max_epochs": 10, "augment": None, "lr": 1e-2, "batch_size": 16, "random_state": 0}


@pytest.fixture
def brightness(rng):
    """64 images whose brightness is the target (in tenths of a grey level)."""
    offset = rng.integers(0, 128, 64)
    X = (rng.integers(0, 128, (64, 16, 16, 3)) + offset[:, None, None, None]).astype(np.uint8)
    return X, offset / 10.0 + 100.0


def test_fine_tuning_learns_a_continuous_target_in_its_units(brightness):
    X, y = brightness
    reg = FineTunedRegressor(TINY, **PARAMS).fit(X, y)
    assert reg.score(X, y) > 0.9  # R^2
    predictions = reg.predict(X)
    assert predictions.shape == (64,) and abs(predictions.mean() - y.mean()) < 1.0  # un-standardized
    assert reg.n_iter_ == 10 and "valid_loss" not in reg.net_.history[-1]


def test_the_probe_is_ridge_in_closed_form(brightness):
    X, y = brightness
    probe = FineTunedRegressor(TINY, freeze_depth="all", probe_C=1.0).fit(X, y)
    assert probe.n_iter_ == 0 and probe.probe_n_iter_ == 0
    features = PretrainedFeatureExtractor(TINY).fit_transform(X)
    # the same problem by scikit-learn: features centered and divided by their root mean
    # variance, standardized targets, alpha = 1 / C
    z = (features - features.mean(0)) / np.sqrt(features.var(0).mean())
    target = (y - y.mean()) / y.std()
    expected = Ridge(alpha=1.0).fit(z, target).predict(z) * y.std() + y.mean()
    np.testing.assert_allclose(probe.predict(X), expected, rtol=1e-4, atol=1e-3)


def test_several_targets_and_huber(brightness):
    X, y = brightness
    Y = np.stack([y, -3 * y + 7], axis=1)
    reg = FineTunedRegressor(TINY, loss="huber", **PARAMS).fit(X, Y)
    assert reg.predict(X).shape == (64, 2)
    assert reg.score(X, Y) > 0.8
    assert clone(reg).set_params(loss="squared_error").fit(X, Y).score(X, Y) > 0.8


def test_sample_weight_zero_removes_a_sample(brightness):
    X, y = brightness
    y_bad = y.copy()
    y_bad[:8] = 1e4  # outliers, weighed out
    weights = np.r_[np.zeros(8), np.ones(56)]
    reg = FineTunedRegressor(TINY, freeze_depth="all").fit(X, y_bad, sample_weight=weights)
    assert reg.score(X[8:], y[8:]) > 0.5


def test_pipeline_grid_search_cross_validation_clone_pickle_and_files(brightness, tmp_path):
    X, y = brightness
    search = GridSearchCV(FineTunedRegressor(TINY, freeze_depth="all"), {"probe_C": [0.01, 1.0]}, cv=2).fit(X, y)
    assert search.best_score_ > 0.5 and len(search.cv_results_["params"]) == 2
    scores = cross_val_score(Pipeline([("reg", FineTunedRegressor(TINY, **PARAMS))]), X, y, cv=2)
    assert scores.shape == (2,) and (scores > 0.5).all()
    reg = search.best_estimator_
    expected = reg.predict(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), expected)
    loaded = sktransfer.load(sktransfer.save(reg, tmp_path / "reg.safetensors"))
    assert isinstance(loaded, FineTunedRegressor)
    np.testing.assert_array_equal(loaded.predict(X), expected)
    sio = pytest.importorskip("skops.io")
    sio.dump(reg, tmp_path / "reg.skops")
    np.testing.assert_array_equal(
        sio.load(tmp_path / "reg.skops", trusted=sktransfer.SKOPS_TRUSTED_TYPES).predict(X), expected)


def test_warm_start_keeps_the_scaling_and_columns(brightness):
    X, y = brightness
    reg = FineTunedRegressor(TINY, warm_start=True, **{**PARAMS, "max_epochs": 2}).fit(X, y)
    scaling = {k: np.copy(v) for k, v in reg._target_scaling.items()}
    reg.fit(X, y + 50)  # continues: the first fit's scaling stays
    np.testing.assert_array_equal(reg._target_scaling["mean"], scaling["mean"])
    assert len(reg.net_.history) == 4
    with pytest.raises(ValueError, match="warm_start=True needs targets shaped as in the first fit"):
        reg.fit(X, np.stack([y, y], axis=1))


@pytest.mark.parametrize("y, message", [
    (np.r_[np.nan, np.ones(63)], r"Input y contains NaN or infinity: the target at index 0"),
    (np.r_[np.ones(5), np.inf, np.ones(58)], r"the target at index 5"),
    (np.array(["a"] * 64), "dtype='numeric' is not compatible|could not convert"),
    (np.ones(10), r"X has 64 inputs but y has 10 targets"),
])
def test_bad_targets_are_named(brightness, y, message):
    X, _ = brightness
    with pytest.raises(ValueError, match=message):
        FineTunedRegressor(TINY, **PARAMS).fit(X, y)


def test_a_validation_set_and_early_stopping(brightness):
    X, y = brightness
    reg = FineTunedRegressor(TINY, early_stopping=True, n_iter_no_change=2, **{**PARAMS, "max_epochs": 6})
    reg.fit(X[:48], y[:48], X_val=X[48:], y_val=y[48:])
    assert "valid_loss" in reg.net_.history[-1]
    with pytest.raises(ValueError, match="y_val has shape"):
        reg.fit(X[:48], y[:48], X_val=X[48:], y_val=np.stack([y[48:], y[48:]], axis=1))


def test_the_command_line_predicts_values(brightness, tmp_path):
    import csv
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    X, y = brightness
    reg = FineTunedRegressor("resnet18", weights=None, input_size=16, **{**PARAMS, "max_epochs": 1})
    reg.fit(X, np.stack([y, 2 * y], axis=1))
    model = sktransfer.save(reg, tmp_path / "reg.safetensors")
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(X[i]).save(folder / f"{i}.png")
    script = Path(sys.executable).with_name("sktransfer")
    result = subprocess.run([str(script), "predict", str(model), str(folder), "-q"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert list(rows[0]) == ["path", "prediction_0", "prediction_1"]
    expected = reg.predict([str(folder / f"{i}.png") for i in range(4)])
    np.testing.assert_allclose([[float(r["prediction_0"]), float(r["prediction_1"])] for r in rows], expected,
                               rtol=1e-5)
