"""Test-time augmentation: the outputs of each image and its mirror image, averaged, read
when predicting; refused where a mirror image means nothing."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sktransfer import FineTunedClassifier, FineTunedRegressor
from sktransfer.fitting.params import InvalidParameterError

from .conftest import TINY


@pytest.fixture(scope="module")
def digits():
    data = load_digits(n_class=4)
    return np.round(data.images[:160] * (255 / 16)).astype(np.uint8), data.target[:160]


def test_flip_averages_each_image_with_its_mirror_without_a_refit(digits):
    X, y = digits
    clf = FineTunedClassifier(TINY, max_epochs=2, batch_size=16, random_state=0).fit(X, y)
    plain, mirror = clf.decision_function(X), clf.decision_function(X[:, :, ::-1])
    assert not np.allclose(plain, mirror, atol=1e-3)  # digits are not symmetric: the pass matters
    clf.set_params(tta="flip")
    np.testing.assert_allclose(clf.decision_function(X), (plain + mirror) / 2, atol=1e-5)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax((plain + mirror) / 2, axis=1)])
    # a mirror-symmetric image gets what it got without
    symmetric = np.concatenate([X[:, :, :4], X[:, :, :4][:, :, ::-1]], axis=2)
    np.testing.assert_allclose(clf.decision_function(symmetric), clf.set_params(tta=None).decision_function(symmetric),
                               atol=1e-5)
    reg = FineTunedRegressor(TINY, max_epochs=1, batch_size=16, random_state=0).fit(X, y.astype(float))
    values = (reg.predict(X) + reg.predict(X[:, :, ::-1])) / 2
    np.testing.assert_allclose(reg.set_params(tta="flip").predict(X), values, atol=1e-5)


def test_tta_is_refused_where_there_is_no_mirror_image():
    with pytest.raises(InvalidParameterError, match="'tta' parameter of FineTunedClassifier must be None with a text"):
        FineTunedClassifier("sentence-transformers/all-MiniLM-L6-v2", tta="flip").fit(["a", "b"], [0, 1])
    with pytest.raises(InvalidParameterError, match="'tta' parameter .* must be None with an audio backbone"):
        FineTunedClassifier("audio/" + TINY, tta="flip", sample_rate=8000).fit([np.zeros(80, np.float32)] * 2, [0, 1])
    with pytest.raises(InvalidParameterError, match="'tta' parameter"):
        FineTunedClassifier(TINY, tta="rotate").fit(np.zeros((2, 8, 8), np.uint8), [0, 1])


def test_tta_set_after_fit_is_checked_when_predicting(digits):
    X, y = digits
    clf = FineTunedClassifier(TINY, max_epochs=1, batch_size=16, random_state=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="'tta' parameter"):
        clf.set_params(tta="rotate").predict(X)
    waves = [np.random.default_rng(i).uniform(-0.5, 0.5, 800).astype(np.float32) for i in range(8)]
    sound = FineTunedClassifier("audio/" + TINY, freeze_depth="all", sample_rate=8000).fit(waves, np.arange(8) % 2)
    with pytest.raises(InvalidParameterError, match="'tta' parameter .* must be None with an audio backbone"):
        sound.set_params(tta="flip").predict(waves)


def test_a_model_saved_before_a_parameter_existed_loads_with_its_default(digits):
    X, y = digits
    clf = FineTunedClassifier(TINY, freeze_depth="all").fit(X, y)
    state = clf.__getstate__()
    for newer in ("tta", "sample_rate", "clip_seconds"):
        del state[newer]
    restored = FineTunedClassifier.__new__(FineTunedClassifier)
    restored.__setstate__(state)
    assert restored.tta is None and restored.sample_rate is None
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


def test_the_command_line_predicts_with_and_without_flips(digits, tmp_path):
    import csv
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    import sktransfer

    X, y = digits
    clf = FineTunedClassifier("resnet18", weights=None, input_size=16, freeze_depth="all", random_state=0).fit(X, y)
    model = sktransfer.save(clf, tmp_path / "digits.safetensors")
    folder = tmp_path / "images"
    folder.mkdir()
    paths = []
    for i in range(6):
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(X[i]).save(paths[-1])
    script = str(Path(sys.executable).with_name("sktransfer"))
    probabilities = {}
    for tta in ("flip", "none"):
        result = subprocess.run([script, "predict", str(model), str(folder), "--tta", tta, "-q"], capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        rows = list(csv.DictReader(result.stdout.splitlines()))
        probabilities[tta] = np.array([[float(r[f"proba_{c}"]) for c in clf.classes_] for r in rows])
    np.testing.assert_allclose(probabilities["none"], clf.predict_proba(paths), atol=1e-5)
    np.testing.assert_allclose(probabilities["flip"], clf.set_params(tta="flip").predict_proba(paths), atol=1e-5)
    assert not np.allclose(probabilities["flip"], probabilities["none"], atol=1e-4)
