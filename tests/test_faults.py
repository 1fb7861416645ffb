"""Faults during work: out of memory, interrupts, unreadable files; and determinism."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted
from torch import nn

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor, register_backbone
from sktransfer.backbones import sequential_backbone
from sktransfer.data.sources import MAX_LISTED

from .conftest import TINY, TINY_CONFIG, tiny_cnn

FAULTY = "test/faulty-cnn"
FAULTS = {"oom_above": None, "interrupt_at": None, "training_calls": 0}


class Faulty(nn.Module):
    """A stage that fails as a device would: out of memory above a batch size (an
    injected allocation failure), or a KeyboardInterrupt at the n-th training call."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        limit = FAULTS["oom_above"]
        if limit is not None and x.shape[0] > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {x.shape[0]} images (injected)")
        if self.training:
            FAULTS["training_calls"] += 1
            if FAULTS["training_calls"] == FAULTS["interrupt_at"]:
                raise KeyboardInterrupt
        return self.inner(x)


def faulty_cnn(name, weights):
    stages = list(tiny_cnn(TINY, weights).stages)
    stages[0] = ("stem", Faulty(stages[0][1]))
    return sequential_backbone(stages, num_features=16, data_config=TINY_CONFIG,
                               stage_formats=("NCHW",) * 3, weights_id="faulty")


register_backbone(FAULTY, faulty_cnn, overwrite=True)


@pytest.fixture(autouse=True)
def no_faults():
    FAULTS.update(oom_above=None, interrupt_at=None, training_calls=0)
    yield
    FAULTS.update(oom_above=None, interrupt_at=None, training_calls=0)


def _messages(record):
    return [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]


def test_transform_halves_the_batch_on_out_of_memory(uint8_images):
    expected = PretrainedFeatureExtractor(FAULTY, batch_size=16, cache=False).fit(uint8_images).transform(uint8_images)
    FAULTS["oom_above"] = 5
    extractor = PretrainedFeatureExtractor(FAULTY, batch_size=16, cache=False).fit(uint8_images)
    with pytest.warns(RuntimeWarning) as record:
        features = extractor.transform(uint8_images)
    assert len(uint8_images) == 12  # one batch: 12 images, then 6, then 3
    assert _messages(record) == [
        f"out of memory during inference with {n} images per batch (CUDA out of memory. Tried to allocate "
        f"{n} images (injected)); continuing with {n // 2}" for n in (12, 6)]
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)


def test_fit_and_predict_back_off_to_the_same_model(data):
    X, y = data
    weights = np.linspace(0.5, 2, len(y))
    # plain SGD: a wrongly scaled gradient changes its steps (Adam would hide the scale)
    params = {"max_epochs": 2, "batch_size": 15, "lr": 0.5, "optimizer": "sgd", "augment": None,
              "random_state": 0}
    expected = FineTunedClassifier(FAULTY, **params).fit(X, y, sample_weight=weights).predict_proba(X)
    FAULTS["oom_above"] = 4
    with pytest.warns(RuntimeWarning) as record:
        clf = FineTunedClassifier(FAULTY, **params).fit(X, y, sample_weight=weights)
    assert [m.split(" (")[0] for m in _messages(record)] == [
        "out of memory during training with 15 images per batch",
        "out of memory during training with 8 images per batch"]
    with pytest.warns(RuntimeWarning) as record:
        proba = clf.predict_proba(X)
    assert len(_messages(record)) == 2 and "during inference" in _messages(record)[0]
    # the pieces' gradients add up to the batch's: the same steps, up to rounding
    np.testing.assert_allclose(proba, expected, rtol=1e-4, atol=1e-5)
    assert clf.n_iter_ == 2


def test_images_of_several_sizes_keep_their_labels_and_weights_when_split(rng):
    sizes = [(12, 12), (16, 10), (9, 14), (16, 16), (11, 8)] * 4
    images = [Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)) for size in sizes]
    y = np.arange(len(images)) % 2
    weights = np.linspace(0.5, 2, len(y))
    params = {"max_epochs": 2, "batch_size": 5, "lr": 0.5, "optimizer": "sgd", "augment": None,
              "random_state": 0}
    expected = FineTunedClassifier(FAULTY, **params).fit(images, y, sample_weight=weights).predict_proba(images)
    FAULTS["oom_above"] = 3  # 5 images: pieces of 2 and 3
    with pytest.warns(RuntimeWarning, match="during training with 5 images per batch"):
        clf = FineTunedClassifier(FAULTY, **params).fit(images, y, sample_weight=weights)
    with pytest.warns(RuntimeWarning, match="during inference"):
        np.testing.assert_allclose(clf.predict_proba(images), expected, rtol=1e-4, atol=1e-5)


def test_out_of_memory_with_one_image_is_a_clear_error(uint8_images):
    FAULTS["oom_above"] = 0
    extractor = PretrainedFeatureExtractor(FAULTY, batch_size=4, cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(RuntimeError, match="out of memory during inference even with one image per batch"):
            extractor.fit(uint8_images).transform(uint8_images)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_keyboard_interrupt_leaves_a_fitted_classifier(data, early_stopping):
    X, y = data
    FAULTS["interrupt_at"] = 7  # 3 batches an epoch: the first batch of epoch 3
    clf = FineTunedClassifier(FAULTY, max_epochs=4, batch_size=12 if early_stopping else 16, lr=1e-2,
                              augment=None, early_stopping=early_stopping, validation_fraction=0.25,
                              random_state=0)
    kept = ("the weights of epoch \\d, the best validation loss so far" if early_stopping
            else "the weights reached when it stopped")
    with pytest.warns(UserWarning, match=f"interrupted \\(KeyboardInterrupt\\) after 2 of 4 epochs; .*{kept}"):
        clf.fit(X, y)
    check_is_fitted(clf)
    assert clf.n_iter_ == 2
    assert clf.predict(X).shape == (48,) and clf.score(X, y) > 0.5


@pytest.fixture
def folder(tmp_path):
    paths = []
    for i in range(12):
        path = tmp_path / f"{i:02d}.png"
        Image.fromarray(np.full((8, 8, 3), 20 * i, np.uint8)).save(path)
        paths.append(path)
    return paths


def test_every_undecodable_file_is_named_in_one_error(folder):
    folder[2].write_bytes(b"not an image")
    folder[7].write_bytes(folder[7].read_bytes()[:30])  # truncated
    folder[11].write_bytes(b"")
    extractor = PretrainedFeatureExtractor(TINY, batch_size=4, cache=False).fit(folder[:2])
    with pytest.raises(ValueError) as error:
        extractor.transform(folder)
    message = str(error.value)
    assert message.startswith("3 of 12 images cannot be used:")
    for i in (2, 7, 11):
        assert f"X[{i}]: cannot read image file {str(folder[i])!r}" in message
    assert message.count("X[") == 3


def test_every_missing_path_is_named_before_decoding(folder):
    for i in (1, 4):
        folder[i].unlink()
    folder[9].unlink()
    folder[9].mkdir()
    with pytest.raises(ValueError, match="3 of 12 images cannot be used") as error:
        PretrainedFeatureExtractor(TINY).fit(folder)
    assert "X[1]: image file not found" in str(error.value) and "X[9]:" in str(error.value)
    folder[9].rmdir()
    with pytest.raises(FileNotFoundError, match="3 of 12 images cannot be used"):
        PretrainedFeatureExtractor(TINY).fit(folder)


def test_the_search_for_more_bad_files_stops_at_the_listed_number(tmp_path):
    paths = []
    for i in range(40):
        paths.append(tmp_path / f"{i:02d}.png")
        paths[-1].write_bytes(b"broken")
    extractor = PretrainedFeatureExtractor(TINY, batch_size=4, cache=False)
    extractor.fit(_one_image(tmp_path))
    with pytest.raises(ValueError) as error:
        extractor.transform(paths)
    message = str(error.value)
    assert message.count("cannot read image file") == MAX_LISTED
    assert message.startswith(f"{MAX_LISTED} of 40 images cannot be used")
    assert message.endswith("(found by decoding 16 of the 36 other images; the rest were not checked)")


def _one_image(tmp_path):
    path = tmp_path / "good.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    return [path]


def test_long_lists_of_bad_files_are_cut(tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(MAX_LISTED + 5)]
    with pytest.raises(FileNotFoundError) as error:
        PretrainedFeatureExtractor(TINY).fit(paths)
    assert str(error.value).count("image file not found") == MAX_LISTED
    assert str(error.value).endswith("... and 5 more")


def test_two_cpu_fits_with_a_seed_give_identical_predictions(data):
    X, y = data
    clf = FineTunedClassifier(TINY, max_epochs=2, batch_size=16, augment="flip_crop", head_init="probe",
                              early_stopping=True, random_state=3)
    first = clone(clf).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(clone(clf).fit(X, y).predict_proba(X), first)
    extractor = PretrainedFeatureExtractor(TINY, weights=None, random_state=3)
    np.testing.assert_array_equal(clone(extractor).fit_transform(X), clone(extractor).fit_transform(X))


def test_a_fit_that_fails_leaves_the_estimator_as_it_was(data, folder):
    X, y = data
    clf = FineTunedClassifier(TINY, max_epochs=1, batch_size=16, augment=None, random_state=0).fit(X, y)
    expected = clf.predict_proba(X)
    folder[5].write_bytes(b"not an image")
    labels = np.array(["a", "b"] * 6)
    with pytest.raises(ValueError, match=r"X\[5\]: cannot read image file"):
        clf.fit(folder, labels)  # fails while training, after the labels were read
    assert clf.classes_.tolist() == [0, 1] and clf._input_signature.kind == "array"
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
