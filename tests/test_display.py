"""Displays: the values they draw are the estimator's, and they draw where they are told."""

import numpy as np
import pytest
import torch
from torch import nn

from sktransfer import DataConfig, FineTunedClassifier, FineTunedRegressor, PretrainedFeatureExtractor, register_backbone
from sktransfer.backbones import sequential_backbone
from sktransfer.datasets import load_digits_images, load_image_folder, make_image_folder
from sktransfer.nn.networks import evaluating
from sktransfer.display import (
    EmbeddingDisplay,
    MisclassifiedDisplay,
    SaliencyDisplay,
    TrainingCurveDisplay,
    plot_confusion_matrix,
)
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


def test_embedding_legend_sits_outside_the_points(data):
    X, y = data
    display = EmbeddingDisplay.from_features(X.reshape(len(X), -1), y)
    display.figure_.canvas.draw()
    legend = display.ax_.get_legend().get_window_extent()
    assert legend.x0 >= display.ax_.get_window_extent().x1  # right of the axes, not over the points
    assert legend.x1 <= display.figure_.bbox.x1  # and inside the figure


# ------------------------------------------------------------------ confusion matrix

def test_confusion_matrix_counts_rotated_names_and_title():
    y_true = ["airplane", "automobile", "bird", "bird", "airplane"]
    y_pred = ["airplane", "bird", "bird", "bird", "automobile"]
    display = plot_confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(display.confusion_matrix, [[1, 1, 0], [0, 0, 1], [0, 0, 2]])
    ticks = display.ax_.get_xticklabels()
    assert [t.get_text() for t in ticks] == ["airplane", "automobile", "bird"]
    assert all(t.get_rotation() == 45 and t.get_horizontalalignment() == "right" for t in ticks)
    assert display.ax_.get_title() == "accuracy 0.600 (5 samples)"
    # short names stay level; a title and axes of one's own are kept
    fig, ax = plt.subplots()
    short = plot_confusion_matrix([0, 1, 1], [0, 1, 0], labels=[1, 0], normalize="true", title="mine", ax=ax)
    assert short.ax_ is ax and ax.get_title() == "mine"
    assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())
    np.testing.assert_allclose(short.confusion_matrix, [[0.5, 0.5], [0.0, 1.0]])


# ------------------------------------------------------------------ misclassified

def test_misclassified_are_the_most_confident_mistakes_first():
    images = np.arange(5 * 8 * 8, dtype=np.uint8).reshape(5, 8, 8)
    y_true = np.array(["cat", "dog", "dog", "cat", "cat"])
    y_proba = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.45, 0.55], [0.05, 0.95]])
    display = MisclassifiedDisplay.from_predictions(y_true, y_proba, images, classes=["cat", "dog"], n=2)
    assert display.indices.tolist() == [4, 1]  # wrong: 1 (p 0.7), 3 (0.55), 4 (0.95)
    assert display.y_true.tolist() == ["cat", "dog"] and display.y_pred.tolist() == ["dog", "cat"]
    np.testing.assert_allclose(display.confidence, [0.95, 0.7])
    assert [ax.get_title() for ax in display.axes_[:2]] == ["true cat\npred dog, p = 0.95",
                                                             "true dog\npred cat, p = 0.70"]
    np.testing.assert_array_equal(display.images_[0].get_array(), images[4])
    assert display.figure_._suptitle.get_text() == "2 most confident of 3 mistakes (5 samples)"


def test_misclassified_from_estimator_reads_paths(tmp_path, data):
    from PIL import Image

    X, y = data
    clf = FineTunedClassifier(TINY, freeze_depth="all", random_state=0).fit(X[:24], y[:24])
    folder = load_image_folder(make_image_folder(tmp_path / "d", X[24:], y[24:]))
    y_true = folder.target.copy()
    y_true[::3] ^= 1  # mislabelled: mistakes for the model, which learnt the images
    display = MisclassifiedDisplay.from_estimator(clf, folder.paths, y_true, n=4)
    proba = clf.predict_proba(folder.paths)
    wrong = np.flatnonzero(clf.classes_[proba.argmax(1)] != y_true)
    assert len(wrong) >= 4 and len(display.indices) == 4 and set(display.indices) <= set(wrong)
    np.testing.assert_allclose(display.confidence, np.sort(proba[wrong].max(1))[::-1][:4])
    # the pictures are the files' pixels
    with Image.open(folder.paths[display.indices[0]]) as image:
        np.testing.assert_array_equal(display.images_[0].get_array(), np.asarray(image.convert("RGB")))


def test_misclassified_pil_images_are_shown_and_left_as_they_were():
    from PIL import Image

    pictures = [Image.new("RGB", (300, 200), (200, 10, 10)), Image.new("L", (20, 30), 90)]
    display = MisclassifiedDisplay.from_predictions([1, 0], [[0.9, 0.1], [0.2, 0.8]], pictures)
    assert [p.size for p in pictures] == [(300, 200), (20, 30)]
    assert display.images_[0].get_array().shape == (85, 128, 3)  # at most 128 pixels a side
    np.testing.assert_array_equal(display.images_[1].get_array(), np.full((30, 20, 3), 90))


def test_no_mistakes_draws_a_message_and_bad_input_is_named():
    images = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    proba = np.eye(3)
    fig, axes = plt.subplots(1, 2)
    display = MisclassifiedDisplay.from_predictions([0, 1, 2], proba, images, axes=axes)
    assert len(display.indices) == 0 and display.axes_[0].texts[0].get_text() == "no misclassified samples"
    assert display.figure_ is fig
    with pytest.raises(ValueError, match="multi-label"):
        MisclassifiedDisplay.from_predictions(np.eye(3), proba, images)
    with pytest.raises(ValueError, match="2 classes for 3 columns"):
        MisclassifiedDisplay.from_predictions([0, 1, 2], proba, images, classes=["a", "b"])
    with pytest.raises(ValueError, match="one of each per sample"):
        MisclassifiedDisplay.from_predictions([0, 1], proba[:2], images)
    with pytest.raises(ValueError, match=r"no label of y_true \(such as \['a', 'b'\]\) is a class of y_proba's columns \[0, 1, 2\]"):
        MisclassifiedDisplay.from_predictions(["a", "b", "a"], proba, images)
    with pytest.raises(ValueError, match="positive int"):
        MisclassifiedDisplay.from_predictions([0, 1, 2], proba, images, n=0)
    with pytest.raises(ValueError, match="3 images need 3 axes"):
        MisclassifiedDisplay.from_predictions([1, 2, 0], proba, images, axes=axes)


# ------------------------------------------------------------------ saliency

def _brightness(name, weights):
    """A network whose maps are known: grey level (the channels' mean), then 2x2 averages."""
    grey = nn.Conv2d(3, 1, 1, bias=False)
    nn.init.constant_(grey.weight, 1 / 3)
    return sequential_backbone([("grey", nn.Sequential(grey, nn.ReLU())), ("pooled", nn.AvgPool2d(2))],
                               num_features=1, stage_formats=("NCHW", "NCHW"), weights_id="brightness",
                               data_config=DataConfig((16, 24), mean=(0.0,) * 3, std=(1.0,) * 3))


register_backbone("test/brightness", _brightness, overwrite=True)


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_grad_cam_of_a_known_network_is_its_brightness_map(rng, pooling):
    """Class 1 images carry a bright square: Grad-CAM of class 1 is the 2x2-averaged grey
    level, upsampled and scaled to its peak; class 0 (darker) has no positive evidence.
    Under max pooling the gradient reaches one position only: its mean over the positions
    weighs the whole map all the same."""
    X = rng.integers(0, 40, size=(40, 16, 24, 3), dtype=np.uint8)
    y = np.arange(40) % 2
    corners = rng.integers(0, [12, 20], size=(40, 2))
    for i in np.flatnonzero(y):
        X[i, corners[i, 0]:corners[i, 0] + 4, corners[i, 1]:corners[i, 1] + 4] = 255
    clf = FineTunedClassifier("test/brightness", pooling=pooling, freeze_depth="all", random_state=0).fit(X, y)
    assert clf.score(X, y) == 1.0
    shown = np.flatnonzero(y)[:4]
    display = SaliencyDisplay.from_estimator(clf, X[shown], target=1)
    grey = torch.from_numpy(X[shown]).float().mean(-1)[:, None] / 255
    expected = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(grey, 2), size=(16, 24),
                                               mode="bilinear", align_corners=False)[:, 0].numpy()
    expected /= expected.max(axis=(1, 2), keepdims=True)
    assert display.stage == "pooled" and display.saliency.shape == (4, 16, 24)
    np.testing.assert_allclose(display.saliency, expected, rtol=1e-5, atol=1e-6)
    for k, i in enumerate(shown):  # the peak is on the square
        row, col = np.unravel_index(display.saliency[k].argmax(), (16, 24))
        assert corners[i, 0] <= row < corners[i, 0] + 4 and corners[i, 1] <= col < corners[i, 1] + 4
    # the images are the network's view of the inputs
    np.testing.assert_allclose(display.images, X[shown] / 255, atol=1e-6)
    darker = SaliencyDisplay.from_estimator(clf, X[shown], target=0)
    assert darker.saliency.max() == 0 and darker.axes_[0].texts[0].get_text() == "no positive evidence"


def test_grad_cam_of_the_last_stage_is_the_head_weighted_maps(data):
    """For the last stage under average pooling, the gradient of a logit is the head's row
    over the positions: Grad-CAM is ReLU(sum_k w_ck A_k), the CAM of Zhou et al. 2016."""
    X, y = data
    clf = FineTunedClassifier(TINY, max_epochs=2, random_state=0).fit(X, y)
    module = clf.net_.module_
    display = SaliencyDisplay.from_estimator(clf, X[:6], y[:6])
    with torch.no_grad(), evaluating(module):
        activations = module.trunk(module.preprocess(torch.from_numpy(X[:6]).permute(0, 3, 1, 2)))
        predicted = module.head(module.pool(activations)).argmax(1)
        cam = torch.relu(torch.einsum("nk,nkhw->nhw", module.head.weight[predicted], activations))
    expected = torch.nn.functional.interpolate(cam[:, None], size=(16, 16), mode="bilinear",
                                               align_corners=False)[:, 0].numpy()
    expected /= expected.max(axis=(1, 2), keepdims=True)
    assert display.stage == "block2"
    np.testing.assert_allclose(display.saliency, expected, rtol=1e-4, atol=1e-5)
    proba = clf.predict_proba(X[:6])
    assert [ax.get_title() for ax in display.axes_] == [
        f"true {t}\npred {c}, p = {p:.2f}" for t, c, p in zip(y[:6], proba.argmax(1), proba.max(1))]


@pytest.mark.parametrize("freeze_depth", [0, 1, "all"])
def test_saliency_leaves_the_model_as_it_was(data, freeze_depth):
    X, y = data
    clf = FineTunedClassifier(TINY, freeze_depth=freeze_depth, max_epochs=2, random_state=0).fit(X, y)
    module = clf.net_.module_
    before = {k: v.clone() for k, v in module.state_dict().items()}
    proba, training = clf.predict_proba(X), module.training
    flags = [p.requires_grad for p in module.parameters()]
    grads = [None if p.grad is None else p.grad.clone() for p in module.parameters()]
    display = SaliencyDisplay.from_estimator(clf, X[:5], stage="block1")
    assert display.stage == "block1" and display.saliency.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert module.training == training and [p.requires_grad for p in module.parameters()] == flags
    for p, g in zip(module.parameters(), grads):
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)


def test_saliency_default_stage_is_the_last_with_positions_and_targets_are_checked(data):
    X, y = data
    # at 4 pixels, block1 and block2 give 1x1 maps (nothing to localize): the stem is taken
    clf = FineTunedClassifier(TINY, input_size=4, freeze_depth="all", random_state=0).fit(X, y)
    display = SaliencyDisplay.from_estimator(clf, X[:3], target=[0, 1, 0])
    assert display.stage == "stem" and display.saliency.shape == (3, 4, 4)
    assert [t.splitlines()[0].split(",")[0] for t in display.titles] == ["class 0", "class 1", "class 0"]
    assert SaliencyDisplay.from_estimator(clf, X[:3], stage=-1).stage == "block2"
    with pytest.raises(ValueError, match=r"target \[7\] not among the classes \[0, 1\]"):
        SaliencyDisplay.from_estimator(clf, X[:3], target=7)
    with pytest.raises(ValueError, match=r"one per image \(3\); got shape \(2,\)"):
        SaliencyDisplay.from_estimator(clf, X[:3], target=[0, 1])
    with pytest.raises(ValueError, match="stage='head' is not a stage of 'test/tiny-cnn'"):
        SaliencyDisplay.from_estimator(clf, X[:3], stage="head")
    with pytest.raises(ValueError, match="stage=3 is not a stage"):
        SaliencyDisplay.from_estimator(clf, X[:3], stage=3)
    with pytest.raises(ValueError, match="2 labels in y for 3 images"):
        SaliencyDisplay.from_estimator(clf, X[:3], y[:2])


def test_saliency_refuses_what_it_cannot_explain(data):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = data
    with pytest.raises(ValueError, match="explains a fitted FineTunedClassifier; got FineTunedRegressor"):
        SaliencyDisplay.from_estimator(FineTunedRegressor(TINY, freeze_depth="all").fit(X, y * 1.0), X[:2])
    with pytest.raises(ValueError, match="got PretrainedFeatureExtractor"):
        SaliencyDisplay.from_estimator(PretrainedFeatureExtractor(TINY).fit(X), X[:2])
    with pytest.raises(ValueError, match="not fitted"):
        SaliencyDisplay.from_estimator(FineTunedClassifier(TINY), X[:2])
    clf = FineTunedClassifier(TINY, freeze_depth="all")
    with pytest.raises(ValueError, match="not a Pipeline with steps before it"):
        SaliencyDisplay.from_estimator(make_pipeline(FunctionTransformer(), clf).fit(X, y), X[:2])
    waves = [np.sin(np.arange(4000) * f).astype(np.float32) for f in (0.1, 0.3) * 4]
    audio = FineTunedClassifier("audio/" + TINY, sample_rate=8000, freeze_depth="all").fit(waves, [0, 1] * 4)
    with pytest.raises(ValueError, match="'audio/test/tiny-cnn' is an audio backbone"):
        SaliencyDisplay.from_estimator(audio, waves[:2])
