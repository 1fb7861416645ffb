"""Mixup and cutmix: a training batch mixed with a shuffled copy of itself, the loss taken
against both samples' labels by their shares, eval mode untouched, and where they are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.datasets import load_digits, load_sample_images

from sktransfer import FineTunedClassifier
from sktransfer.fitting.params import InvalidParameterError
from sktransfer.nn.augment import BatchMix

from .conftest import TINY


@pytest.fixture(scope="module")
def photos():
    """16 crops of real photos, as a normalized float batch (n, 3, 64, 64)."""
    images = np.stack([image[i * 48:i * 48 + 64, :64] for image in load_sample_images().images for i in range(8)])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="module")
def digits():
    """240 real handwritten digits (0 to 3), as 8x8 uint8 images."""
    data = load_digits(n_class=4)
    return np.round(data.images[:240] * (255 / 16)).astype(np.uint8), data.target[:240]


def test_mixup_blends_each_image_with_its_partner(photos):
    mix = BatchMix(mixup_alpha=0.4).train()
    torch.manual_seed(0)
    out = mix(photos)
    lam, order = mix.take()
    assert mix.take() is None  # read once
    assert 0 < lam < 1 and sorted(order.tolist()) == list(range(16)) and not torch.equal(order, torch.arange(16))
    torch.testing.assert_close(out, lam * photos + (1 - lam) * photos[order])


def test_cutmix_pastes_a_box_of_the_partner_covering_its_share(photos):
    mix = BatchMix(cutmix_alpha=1.0).train()
    for seed in range(5):
        torch.manual_seed(seed)
        out = mix(photos)
        lam, order = mix.take()
        own = (out == photos).all(dim=1)  # (n, h, w): pixels left as they were
        pasted = (out == photos[order]).all(dim=1)
        assert (own | pasted).all()
        box = (~own[0]).nonzero()  # a partner's pixel that happens to equal the image's own is rare
        if len(box):  # the box is a rectangle, the same in every image
            top, left = box.min(0).values.tolist()
            bottom, right = (box.max(0).values + 1).tolist()
            assert lam == pytest.approx(1 - (bottom - top) * (right - left) / (64 * 64))
            assert pasted[:, top:bottom, left:right].all()


def test_eval_mode_and_batches_of_one_pass_unchanged(photos):
    mix = BatchMix(mixup_alpha=1.0, cutmix_alpha=1.0)
    assert torch.equal(mix.eval()(photos), photos) and mix.take() is None
    assert torch.equal(mix.train()(photos[:1]), photos[:1]) and mix.take() is None


def test_the_loss_of_a_mixed_batch_weighs_both_labels_by_their_share(digits):
    X, y = digits
    clf = FineTunedClassifier(TINY, mixup_alpha=0.4, max_epochs=1, batch_size=32, random_state=0).fit(X, y)
    net, module = clf.net_, clf.net_.module_
    images, targets = clf._prediction_source(X[:32]).read(np.arange(32)), torch.from_numpy(y[:32])
    module.train()
    torch.manual_seed(1)
    logits = net.infer(images)
    lam, order = module.mix.drawn_
    expected = (lam * F.cross_entropy(logits, targets, label_smoothing=0.1)
                + (1 - lam) * F.cross_entropy(logits, targets[order], label_smoothing=0.1))
    torch.testing.assert_close(net.get_loss(logits, targets, X=images, training=True), expected)
    torch.testing.assert_close(net.get_loss(logits, targets, X=images, training=True),
                               F.cross_entropy(logits, targets, label_smoothing=0.1))  # the draw is read once
    module.eval()
    np.testing.assert_allclose(clf.predict_proba(X), clf.predict_proba(X))  # no mixing when predicting


@pytest.mark.parametrize("option", [{"mixup_alpha": 0.4}, {"cutmix_alpha": 1.0},
                                    {"mixup_alpha": 0.4, "cutmix_alpha": 1.0}])
def test_on_digits_the_mixed_labels_are_harder_to_fit_and_the_fit_is_reproducible(digits, option):
    X, y = digits
    clf = FineTunedClassifier(TINY, head_init="probe", max_epochs=3, batch_size=32, augment=None, random_state=0)
    plain = clone(clf).fit(X, y)
    mixed = clone(clf).set_params(**option).fit(X, y)
    # the same batches and starting point: only the mixing differs, and mixed targets
    # cost more to fit than each image's own
    assert (mixed.net_.history[:, "train_loss"][-1] > plain.net_.history[:, "train_loss"][-1] + 0.05)
    np.testing.assert_array_equal(clone(mixed).fit(X, y).predict_proba(X), mixed.predict_proba(X))
    assert mixed.score(X, y) > 0.5  # and it still learns the digits (4 classes)


def test_mixing_is_refused_where_inputs_cannot_be_mixed():
    with pytest.raises(InvalidParameterError, match="'mixup_alpha' parameter .* must be 0.0 with a text backbone"):
        FineTunedClassifier("sentence-transformers/all-MiniLM-L6-v2", mixup_alpha=0.2).fit(["a", "b"], [0, 1])
    with pytest.raises(InvalidParameterError, match="'cutmix_alpha' parameter .* must be 0.0 with an audio backbone"):
        FineTunedClassifier("audio/" + TINY, cutmix_alpha=1.0, sample_rate=8000).fit(
            [np.zeros(80, np.float32)] * 2, [0, 1])
    with pytest.raises(InvalidParameterError, match="'mixup_alpha' parameter"):
        FineTunedClassifier(TINY, mixup_alpha=-0.1).fit(np.zeros((2, 8, 8), np.uint8), [0, 1])


def test_a_warm_start_mixes_as_its_own_parameters_say(digits):
    X, y = digits
    clf = FineTunedClassifier(TINY, mixup_alpha=0.4, warm_start=True, max_epochs=1, batch_size=32, random_state=0)
    assert clf.fit(X, y).net_.module_.mix.mixup_alpha == 0.4
    assert clf.set_params(mixup_alpha=0.0).fit(X, y).net_.module_.mix is None
    assert clf.set_params(cutmix_alpha=1.0).fit(X, y).net_.module_.mix.cutmix_alpha == 1.0
