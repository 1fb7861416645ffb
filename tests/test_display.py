"""Displays: the values they draw are the estimator's, and they draw where they are told."""

import numpy as np
import pytest

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor
from sktransfer.datasets import load_digits_images, load_image_folder, make_image_folder
from sktransfer.display import EmbeddingDisplay, TrainingCurveDisplay
from tests.conftest import TINY

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_training_curve_draws_the_history(data):
    X, y = data
    clf = FineTunedClassifier(TINY, max_epochs=3, random_state=0).fit(X[:32], y[:32], X_val=X[32:], y_val=y[32:])
    display = TrainingCurveDisplay.from_estimator(clf)
    history = clf.net_.history
    np.testing.assert_allclose(display.lines_["train_loss"].get_ydata(), history[:, "train_loss"])
    np.testing.assert_allclose(display.lines_["valid_acc"].get_ydata(), history[:, "valid_acc"])
    np.testing.assert_array_equal(display.lines_["valid_loss"].get_xdata(), [1, 2, 3])
    # the last epoch's validation accuracy is the fitted model's score on the validation set
    assert display.valid_acc[-1] == pytest.approx(clf.score(X[32:], y[32:]))
    assert display.ax_accuracy_.get_ylabel() == "accuracy" and display.figure_ is display.ax_.figure


def test_training_curve_on_given_axes_without_validation(data):
    X, y = data
    clf = FineTunedClassifier(TINY, max_epochs=2, random_state=0).fit(X, y)
    fig, (left, right) = plt.subplots(1, 2)
    display = TrainingCurveDisplay.from_estimator(clf, ax=right, name="mine")
    assert display.ax_ is right and display.figure_ is fig and display.ax_accuracy_ is None
    assert sorted(display.lines_) == ["train_loss"] and right.get_title() == "mine"
    assert not left.lines


def test_training_curve_refuses_what_has_no_curve(data):
    X, y = data
    probe = FineTunedClassifier(TINY, freeze_depth="all", random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="trained no epochs"):
        TrainingCurveDisplay.from_estimator(probe)
    with pytest.raises(ValueError, match="no training history"):
        TrainingCurveDisplay.from_estimator(PretrainedFeatureExtractor(TINY))


def test_embedding_is_the_pca_of_the_features_coloured_by_class(data):
    from sklearn.decomposition import PCA

    X, y = data
    extractor = PretrainedFeatureExtractor(TINY).fit(X)
    display = EmbeddingDisplay.from_estimator(extractor, X, y)
    expected = PCA(n_components=2).fit_transform(extractor.transform(X).astype(np.float64))
    np.testing.assert_allclose(np.abs(display.embedding), np.abs(expected), rtol=1e-5, atol=1e-6)
    assert [s.get_label() for s in display.scatters_] == ["0", "1"]
    assert sum(len(s.get_offsets()) for s in display.scatters_) == len(X)
    assert display.ax_.get_xlabel() == "principal component 1"


def test_embedding_tsne_with_thumbnails_read_from_paths(tmp_path):
    digits = load_digits_images()
    data = load_image_folder(make_image_folder(tmp_path / "d", digits.images[:30], digits.target[:30]))
    features = PretrainedFeatureExtractor(TINY).fit_transform(data.paths)
    display = EmbeddingDisplay.from_features(features, data.target, method="tsne", images=data.paths,
                                             thumbnails=5, random_state=0)
    assert display.embedding.shape == (30, 2) and len(display.thumbnails_) == 5
    assert display.ax_.get_xlabel() == "t-SNE dimension 1"
    # the thumbnails sit at distinct points
    assert len({tuple(t.xy) for t in display.thumbnails_}) == 5


def test_embedding_errors_name_the_problem():
    features = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match="'pca' or 'tsne'"):
        EmbeddingDisplay.from_features(features, method="umap")
    with pytest.raises(ValueError, match="pass images="):
        EmbeddingDisplay.from_features(features, thumbnails=3)
    with pytest.raises(ValueError, match="3 labels for 10 points"):
        EmbeddingDisplay.from_features(features, [0, 1, 0])
    with pytest.raises(ValueError, match="at least 2 rows"):
        EmbeddingDisplay.from_features(features[:1])


def test_thumbnails_from_the_inputs_the_extractor_takes(tmp_path):
    import pandas as pd
    import torch

    digits = load_digits_images()
    images = digits.images[:12]
    data = load_image_folder(make_image_folder(tmp_path / "d", images, digits.target[:12]))
    rgb_first = np.repeat(images[:, None], 3, axis=1)  # (n, 3, 8, 8)
    for X in (torch.from_numpy(images), pd.Series(list(data.paths), index=range(100, 112)),
              pd.DataFrame({"path": data.paths}), data.paths.reshape(-1, 1), rgb_first,
              images.astype(np.uint16)):
        extractor = PretrainedFeatureExtractor(TINY).fit(X)
        display = EmbeddingDisplay.from_estimator(extractor, X, thumbnails=3)
        assert len(display.thumbnails_) == 3
    with pytest.raises(ValueError, match="flattened rows"):
        EmbeddingDisplay.from_features(np.zeros((12, 4)) + np.arange(12)[:, None], images=images.reshape(12, -1),
                                       thumbnails=2)
