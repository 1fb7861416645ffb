"""Multi-label classification: FineTunedClassifier on a 0/1 indicator matrix, as MLPClassifier takes one."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.metrics import f1_score, hamming_loss
from sklearn.model_selection import GridSearchCV

import sktransfer
from sktransfer import FineTunedClassifier

from .conftest import TINY

PARAMS = {"max_epochs": 10, "augment": None, "lr": 1e-2, "batch_size": 16, "random_state": 0}


@pytest.fixture
def labelled(rng):
    """64 images with two learnable labels: bright, and red over green."""
    offset = rng.integers(0, 128, 64)
    X = (rng.integers(0, 128, (64, 16, 16, 3)) + offset[:, None, None, None]).astype(np.uint8)
    red = rng.integers(0, 2, 64)
    X[red == 1, :, :, 0] = 255
    X[red == 0, :, :, 1] = 255
    Y = np.stack([(offset > 64).astype(int), red], axis=1)
    return X, Y


def test_independent_labels_with_sigmoid_outputs(labelled):
    X, Y = labelled
    clf = FineTunedClassifier(TINY, **PARAMS).fit(X, Y)
    assert clf.classes_.tolist() == [0, 1]
    proba = clf.predict_proba(X)
    assert proba.shape == (64, 2) and ((proba >= 0) & (proba <= 1)).all()
    assert not np.allclose(proba.sum(1), 1)  # independent, not a softmax
    predictions = clf.predict(X)
    assert predictions.shape == (64, 2) and set(np.unique(predictions)) <= {0, 1}
    np.testing.assert_array_equal(predictions, (proba >= 0.5).astype(int))
    np.testing.assert_array_equal(clf.decision_function(X) >= 0, predictions == 1)
    # scikit-learn's multi-label metrics take the predictions as they are
    assert f1_score(Y, predictions, average="macro") > 0.9 and hamming_loss(Y, predictions) < 0.1
    assert clf.score(X, Y) > 0.85  # subset accuracy, as ClassifierMixin.score gives


def test_the_probe_solves_independent_logistic_regressions(labelled):
    X, Y = labelled
    probe = FineTunedClassifier(TINY, freeze_depth="all").fit(X, Y)
    assert probe.n_iter_ == 0 and probe.probe_n_iter_ > 0
    assert (probe.predict(X) == Y).mean() > 0.85


def test_grid_search_pickle_and_files(labelled, tmp_path):
    X, Y = labelled
    search = GridSearchCV(FineTunedClassifier(TINY, freeze_depth="all"), {"probe_C": [0.01, 1.0]}, cv=2,
                          scoring="f1_macro").fit(X, Y)
    clf = search.best_estimator_
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), expected)
    loaded = sktransfer.load(sktransfer.save(clf, tmp_path / "labels.safetensors"))
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_single_label_after_multi_label_is_a_new_fit(labelled):
    X, Y = labelled
    clf = FineTunedClassifier(TINY, **{**PARAMS, "max_epochs": 1}).fit(X, Y)
    clf.fit(X, Y[:, 1])
    assert clf.predict(X).shape == (64,) and clf.predict_proba(X).shape == (64, 2)
    np.testing.assert_allclose(clf.predict_proba(X).sum(1), 1)


@pytest.mark.parametrize("change, message", [
    (lambda Y: np.where(Y == 1, 2, 0), r"multi-label indicator matrix of 0 and 1; y\[\d+, \d+\] is 2"),
    (lambda Y: Y.astype(float) * 0.5, r"multi-label indicator matrix of 0 and 1; y\[\d+, \d+\] is 0.5"),
    (lambda Y: np.c_[Y, np.zeros(len(Y), int)], r"label column 2 of y is 0 for every input"),
    (lambda Y: np.c_[Y, np.ones(len(Y), int)], r"label column 2 of y is 1 for every input"),
])
def test_a_two_dimensional_y_that_is_not_an_indicator_matrix_is_refused(labelled, change, message):
    X, Y = labelled
    with pytest.raises(ValueError, match=message):
        FineTunedClassifier(TINY, **PARAMS).fit(X, change(Y))


def test_warm_start_needs_the_same_label_columns(labelled):
    X, Y = labelled
    clf = FineTunedClassifier(TINY, warm_start=True, **{**PARAMS, "max_epochs": 1}).fit(X, Y)
    clf.fit(X, Y)
    assert len(clf.net_.history) == 2
    with pytest.raises(ValueError, match="needs the 2 label columns of the first fit"):
        clf.fit(X, np.c_[Y, Y[:, :1]])
    with pytest.raises(ValueError, match=r"targets of the first fit's kind \(multilabel-indicator\); got multiclass"):
        clf.fit(X, Y[:, 0])


def test_the_command_line_predicts_labels_and_refuses_to_evaluate_them(labelled, tmp_path):
    import csv
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    X, Y = labelled
    clf = FineTunedClassifier("resnet18", weights=None, input_size=16, **{**PARAMS, "max_epochs": 1}).fit(X, Y)
    model = sktransfer.save(clf, tmp_path / "labels.safetensors")
    folder = tmp_path / "images" / "a"
    folder.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(X[i]).save(folder / f"{i}.png")
    script = str(Path(sys.executable).with_name("sktransfer"))
    result = subprocess.run([script, "predict", str(model), str(folder), "-q"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert list(rows[0]) == ["path", "label_0", "label_1", "proba_0", "proba_1"]
    paths = [str(folder / f"{i}.png") for i in range(4)]
    np.testing.assert_array_equal([[int(r["label_0"]), int(r["label_1"])] for r in rows], clf.predict(paths))
    evaluate = subprocess.run([script, "evaluate", str(model), str(folder.parent)], capture_output=True, text=True,
                              timeout=300)
    assert evaluate.returncode == 2 and "multi-label classifier" in evaluate.stderr
