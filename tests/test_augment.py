"""TrivialAugment and RandAugment: random operations drawn for each image in training, the
identity in eval mode, pixels kept valid, reproducible fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_sample_images, load_digits

from sktransfer import FineTunedClassifier
from sktransfer.nn.augment import FlipPolicy

from .conftest import TINY

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


POLICIES = ("trivialaugment", "randaugment")


@pytest.mark.parametrize("policy", POLICIES)
def test_each_image_gets_its_own_operation_and_stays_a_valid_image(policy):
    photos = np.stack([image[:64, :64] for image in load_sample_images().images] * 8)  # 16 real photos
    x = torch.from_numpy(photos).permute(0, 3, 1, 2).float() / 255
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    normalized = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
    augment = FlipPolicy(MEAN, STD, policy)
    torch.manual_seed(0)
    out = augment.train()(normalized)
    assert out.shape == normalized.shape and out.is_contiguous(memory_format=torch.channels_last)
    pixels = out * std + mean
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    changed = [not (torch.allclose(o, n, atol=0.02) or torch.allclose(o, n.flip(2), atol=0.02))
               for o, n in zip(out, normalized)]
    assert sum(changed) >= 8  # most images got more than a flip (an identity draw is possible)
    assert torch.equal(augment.eval()(normalized), normalized)


@pytest.mark.parametrize("policy", POLICIES)
def test_a_fit_with_it_is_reproducible(policy):
    digits = load_digits(n_class=3)
    X, y = np.round(digits.images[:96] * (255 / 16)).astype(np.uint8), digits.target[:96]
    clf = FineTunedClassifier(TINY, augment=policy, max_epochs=2, batch_size=16, random_state=0)
    first = clone(clf).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(clone(clf).fit(X, y).predict_proba(X), first)
    plain = clone(clf).set_params(augment="flip").fit(X, y).predict_proba(X)
    assert not np.allclose(first, plain, atol=1e-4)
