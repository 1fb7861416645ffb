"""The feature cache and the frozen-part fast paths: hits, misses, invalidation, equal results."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sktransfer import FeatureCache, FineTunedClassifier, PretrainedFeatureExtractor, feature_cache
from sktransfer.fitting.memo import backbone_memo

from .conftest import TINY


pytestmark = pytest.mark.usefixtures("empty_cache")


def computed():
    return feature_cache.stats()["computed"]


def test_second_transform_is_served_from_the_cache(uint8_images):
    extractor = PretrainedFeatureExtractor(TINY).fit(uint8_images)
    first = extractor.transform(uint8_images)
    assert computed() == 12
    second = extractor.transform(uint8_images)
    assert computed() == 12
    np.testing.assert_array_equal(first, second)
    stats = feature_cache.stats()
    assert stats["hits"] == 12 and stats["misses"] == 12 and stats["rows"] == 12


def test_subsets_clones_and_refits_hit(uint8_images):
    extractor = PretrainedFeatureExtractor(TINY)
    full = extractor.fit_transform(uint8_images)
    assert computed() == 12
    part = clone(extractor).fit(uint8_images[3:7]).transform(uint8_images[3:7])
    np.testing.assert_array_equal(part, full[3:7])
    assert computed() == 12


def test_a_changed_image_misses_alone(uint8_images):
    extractor = PretrainedFeatureExtractor(TINY).fit(uint8_images)
    before = extractor.transform(uint8_images)
    changed = uint8_images.copy()
    changed[5, 0, 0, 0] ^= 1
    after = extractor.transform(changed)
    assert computed() == 13
    assert not np.array_equal(after[5], before[5])
    np.testing.assert_array_equal(np.delete(after, 5, 0), np.delete(before, 5, 0))


@pytest.mark.parametrize("change", [
    {"pooling": "max"}, {"input_size": 12}, {"stage": 1}, {"resize": "center_crop"},
    {"backbone": "resnet18", "weights": None, "random_state": 0, "input_size": 32},
    {"precision": "bfloat16"},
])
def test_every_part_of_the_configuration_is_in_the_key(uint8_images, change):
    base = PretrainedFeatureExtractor(TINY)
    base.fit_transform(uint8_images)
    other = clone(base).set_params(**change)
    features = other.fit(uint8_images).transform(uint8_images)
    assert computed() == 24
    reference = clone(other).set_params(cache=False).fit(uint8_images).transform(uint8_images)
    np.testing.assert_allclose(features, reference, rtol=1e-5, atol=1e-5)


def test_value_range_is_in_the_key(uint8_images):
    floats = uint8_images.astype(np.float32)
    a = PretrainedFeatureExtractor(TINY, value_range=(0, 255)).fit(floats)
    b = PretrainedFeatureExtractor(TINY, value_range=(0, 510)).fit(floats)
    assert not np.allclose(a.transform(floats), b.transform(floats))
    assert computed() == 24


def test_weight_files_are_keyed_by_content(tmp_path, uint8_images):
    path = tmp_path / "weights.pth"
    torch.manual_seed(0)
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), path)
    params = {"weights": str(path), "input_size": 32}
    first = PretrainedFeatureExtractor("resnet18", **params).fit_transform(uint8_images)
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet18().state_dict(), path)  # same name, new content
    second = PretrainedFeatureExtractor("resnet18", **params).fit_transform(uint8_images)
    assert computed() == 24
    assert not np.allclose(first, second)


def test_unseeded_random_weights_never_share_features(uint8_images):
    params = {"weights": None, "input_size": 32}
    a = PretrainedFeatureExtractor("resnet18", **params).fit(uint8_images).transform(uint8_images)
    b = PretrainedFeatureExtractor("resnet18", **params).fit(uint8_images).transform(uint8_images)
    assert computed() == 24
    assert not np.allclose(a, b)


def test_random_state_instances_give_their_own_weights_and_features(uint8_images):
    """Item 2: the seed is drawn from a RandomState once per fit; keys use what was drawn."""
    params = {"weights": None, "input_size": 32}
    a = PretrainedFeatureExtractor("resnet18", random_state=np.random.RandomState(0), **params)
    b = PretrainedFeatureExtractor("resnet18", random_state=np.random.RandomState(1), **params)
    fa, fb = a.fit_transform(uint8_images), b.fit_transform(uint8_images)
    assert computed() == 24 and not np.allclose(fa, fb)
    expected = PretrainedFeatureExtractor("resnet18", cache=False, random_state=np.random.RandomState(1),
                                          **params).fit_transform(uint8_images)
    np.testing.assert_array_equal(fb, expected)
    again = a.fit_transform(uint8_images)  # the same instance, drawn from again: new weights
    assert not np.allclose(again, fa)
    seeded = PretrainedFeatureExtractor("resnet18", random_state=0, **params)
    np.testing.assert_array_equal(seeded.fit_transform(uint8_images), clone(seeded).fit_transform(uint8_images))


def test_cache_off(uint8_images):
    extractor = PretrainedFeatureExtractor(TINY, cache=False).fit(uint8_images)
    np.testing.assert_array_equal(extractor.transform(uint8_images), extractor.transform(uint8_images))
    assert computed() == 0


def test_files_are_keyed_by_content(tmp_path, uint8_images):
    from PIL import Image

    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for image, path in zip(uint8_images, paths):
        Image.fromarray(image).save(path)
    extractor = PretrainedFeatureExtractor(TINY).fit(paths)
    extractor.transform(paths)
    assert computed() == 3
    Image.fromarray(uint8_images[7]).save(paths[1])  # rewritten in place
    after = extractor.transform(paths)
    assert computed() == 4
    np.testing.assert_allclose(after[1], extractor.transform(uint8_images[7:8])[0], rtol=1e-5, atol=1e-6)


def test_memory_bound_evicts_least_recently_used(uint8_images):
    cache = FeatureCache(max_bytes=5 * 16 * 4)  # five rows of 16 float32
    digests = [bytes([i]) * 16 for i in range(8)]
    rows = np.arange(8 * 16, dtype=np.float32).reshape(8, 16)
    cache.store("k", digests, rows)
    assert cache.stats()["rows"] == 5 and cache.stats()["bytes"] == 5 * 64
    found = cache.lookup("k", digests)
    assert sorted(found) == [3, 4, 5, 6, 7]
    np.testing.assert_array_equal(found[4], rows[4])
    assert cache.lookup("other key", digests) == {}


def test_directory_cache_survives_clearing_memory(tmp_path, uint8_images):
    extractor = PretrainedFeatureExtractor(TINY, cache_dir=tmp_path).fit(uint8_images)
    expected = extractor.transform(uint8_images)
    assert len(list(tmp_path.glob("*/*.digests.npy"))) == 1
    feature_cache.clear()  # as a new process would start
    (folder,) = tmp_path.iterdir()
    (folder / "partial.features.npy").write_bytes(b"half-written")
    np.testing.assert_array_equal(extractor.transform(uint8_images), expected)
    assert computed() == 0 and feature_cache.stats()["hits"] == 12


def test_grid_search_runs_the_backbone_once_per_image(rng):
    X = rng.integers(0, 256, size=(30, 16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 2, size=30)
    pipe = Pipeline([("feat", PretrainedFeatureExtractor(TINY)), ("clf", LogisticRegression())])
    GridSearchCV(pipe, {"clf__C": [0.1, 1.0, 10.0, 100.0]}, cv=3).fit(X, y)
    assert computed() == 30  # 4 x 3 fits and the refit: every image through the network once
    feature_cache.clear()
    GridSearchCV(pipe.set_params(feat__cache=False), {"clf__C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert computed() == 0


# ------------------------------------------------------------- fine-tuning fast paths


class Counter:
    """Counts the images that run through a module."""

    def __init__(self, module):
        self.images = 0
        module.register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.images += len(args[0])


class Counting(FineTunedClassifier):
    """Counts the images through the first stage over a whole fit."""

    def _network(self, spec, training, backbone, n_outputs, config):
        self.stem_counter_ = Counter(backbone.module.stem)
        return super()._network(spec, training, backbone, n_outputs, config)


# with a random head, the frozen part runs once over the 48 images, whether it ends in
# pooled features (the probe of freeze_depth="all") or in a stored stage output
@pytest.mark.parametrize("freeze_depth, stem_runs", [("all", 48), (2, 48), (1, 48), (0, 4 * 48)])
def test_frozen_part_runs_once_per_fit_and_matches_the_image_path(data, freeze_depth, stem_runs):
    X, y = data
    params = {"freeze_depth": freeze_depth, "head_init": "random", "augment": None, "max_epochs": 4,
              "batch_size": 8, "lr": 1e-2, "random_state": 0}
    fast = Counting(TINY, **params).fit(X, y)
    slow = FineTunedClassifier(TINY, cache=False, **params).fit(X, y)
    assert fast.stem_counter_.images == stem_runs
    np.testing.assert_allclose(fast.predict_proba(X), slow.predict_proba(X), rtol=1e-4, atol=1e-5)


def test_probe_adds_one_pass_and_augmentation_or_two_stages_keep_the_image_path(data):
    X, y = data
    runs = {}
    for name, params in {"probe": {"freeze_depth": 1, "augment": None, "head_init": "probe"},
                         "flip": {"freeze_depth": 1, "augment": "flip", "head_init": "random"},
                         "two stages": {"freeze_depth": 1, "augment": None, "head_epochs": 1}}.items():
        feature_cache.clear()  # the probes of the first and last fits would share features
        runs[name] = Counting(TINY, max_epochs=2, batch_size=8, random_state=0, **params).fit(X, y).stem_counter_.images
    # the probe's pass, then the stored stage input (probe) or the images each epoch
    assert runs == {"probe": 48 + 48, "flip": 2 * 48, "two stages": 48 + 2 * 48}


def test_frozen_features_are_shared_with_the_extractor_on_cpu(data):
    X, y = data
    PretrainedFeatureExtractor(TINY).fit_transform(X)
    assert computed() == 48
    FineTunedClassifier(TINY, freeze_depth="all", augment=None, max_epochs=2).fit(X, y)
    assert computed() == 48


def test_each_fitted_estimator_owns_its_network_and_weights_load_once(uint8_images):
    """Item 3: equal extractors load the weights once but never share a module."""
    first = PretrainedFeatureExtractor(TINY).fit(uint8_images)
    second = clone(first).fit(uint8_images)
    assert backbone_memo.loads == 1
    assert second.model_ is not first.model_
    shared = {p.data_ptr() for p in first.model_.parameters()} & {p.data_ptr() for p in second.model_.parameters()}
    assert not shared
    expected = first.transform(uint8_images)
    second.model_.double()  # casting one leaves the other alone
    assert next(first.model_.parameters()).dtype == torch.float32
    np.testing.assert_array_equal(first.transform(uint8_images), expected)
    FineTunedClassifier(TINY, max_epochs=1, batch_size=8).fit(uint8_images, np.arange(12) % 2)
    assert backbone_memo.loads == 1  # the classifier trained its own copy...
    np.testing.assert_array_equal(clone(first).fit(uint8_images).transform(uint8_images), expected)  # ...only


def test_memo_loads_once_under_threads_and_follows_re_registration(uint8_images):
    from concurrent.futures import ThreadPoolExecutor

    from sktransfer import register_backbone

    from .conftest import tiny_cnn

    extractor = PretrainedFeatureExtractor("test/memo-net")
    register_backbone("test/memo-net", tiny_cnn, overwrite=True)
    with ThreadPoolExecutor(4) as pool:
        fitted = list(pool.map(lambda _: clone(extractor).fit(uint8_images), range(8)))
    assert backbone_memo.loads == 1 and len({id(e.model_) for e in fitted}) == 8

    def wider(name, weights):  # another network under the same name
        backbone = tiny_cnn(name, weights)
        return type(backbone)(**{**vars(backbone), "weights_id": "tiny:wider"})

    register_backbone("test/memo-net", wider, overwrite=True)
    assert clone(extractor).fit(uint8_images).weights_id_ == "tiny:wider"


def test_edited_weights_never_return_stale_features(uint8_images):
    """Item 3: the cache key follows the weights as they are at transform time."""
    extractor = PretrainedFeatureExtractor(TINY).fit(uint8_images)
    before = extractor.transform(uint8_images)
    conv = extractor.model_.trunk.stem[0]
    with torch.no_grad():
        conv.weight.mul_(-1)
    after = extractor.transform(uint8_images)
    assert computed() == 24
    reference = PretrainedFeatureExtractor(TINY, cache=False).fit(uint8_images)
    with torch.no_grad():
        reference.model_.trunk.stem[0].weight.mul_(-1)
    np.testing.assert_array_equal(after, reference.transform(uint8_images))
    assert not np.allclose(after, before)
    # loading a state dict (here: the original weights back) is a change too, and the
    # original weights' features are still cached
    original = PretrainedFeatureExtractor(TINY, cache=False).fit(uint8_images).model_.state_dict()
    extractor.model_.load_state_dict(original)
    np.testing.assert_array_equal(extractor.transform(uint8_images), before)
    assert computed() == 24
    extractor.model_.trunk.stem[1].running_mean.add_(0.5)  # a buffer, written in place
    assert not np.allclose(extractor.transform(uint8_images), before)
    assert computed() == 36


def test_stored_stage_outputs_stop_at_the_memory_budget(uint8_images):
    from sktransfer.engine.features import run
    from sktransfer.data.inputs import validate_images

    extractor = PretrainedFeatureExtractor(TINY).fit(uint8_images)
    source, _ = validate_images(uint8_images, extractor._spec.inputs, owner="PretrainedFeatureExtractor")
    options = {"batch_size": 4, "device": torch.device("cpu")}
    full = run(extractor.model_, source, np.arange(12), **options)
    assert full.shape == (12, 16)
    assert run(extractor.model_, source, np.arange(12), max_bytes=12 * 16 * 4 - 1, **options) is None
    torch.testing.assert_close(run(extractor.model_, source, np.arange(12), max_bytes=12 * 16 * 4, **options),
                               full, rtol=0, atol=0)
