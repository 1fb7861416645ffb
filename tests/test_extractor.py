"""PretrainedFeatureExtractor in pipelines, searches, and persistence."""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sktransfer import PretrainedFeatureExtractor

from .conftest import TINY


def test_quickstart_pipeline_on_array_files_and_series(rng, tmp_path):
    images = rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    y = np.array([0, 1] * 4)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).save(paths[-1])

    pipe = Pipeline([
        ("feat", PretrainedFeatureExtractor("resnet18", weights=None, random_state=0)),
        ("clf", LogisticRegression(max_iter=1000)),
    ])
    pipe.fit(images, y)
    assert pipe.score(images, y) == 1.0  # 512 features separate 8 points
    from_array = pipe[:-1].transform(images)
    from_files = pipe[:-1].transform(paths)
    from_series = pipe[:-1].transform(pd.Series([str(p) for p in paths]))
    assert from_array.shape == (8, 512) and from_array.dtype == np.float32
    np.testing.assert_array_equal(from_files, from_array)
    np.testing.assert_array_equal(from_series, from_array)
    np.testing.assert_array_equal(pipe.predict(paths), pipe.predict(images))


def test_features_are_deterministic_per_random_state(uint8_images):
    a = PretrainedFeatureExtractor("resnet18", weights=None, input_size=32, random_state=1).fit_transform(uint8_images)
    b = PretrainedFeatureExtractor("resnet18", weights=None, input_size=32, random_state=1).fit_transform(uint8_images)
    c = PretrainedFeatureExtractor("resnet18", weights=None, input_size=32, random_state=2).fit_transform(uint8_images)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_seeding_leaves_the_global_rng_alone(uint8_images):
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    PretrainedFeatureExtractor(TINY, weights=None, random_state=0).fit(uint8_images)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_batch_size_does_not_change_features(uint8_images):
    one = PretrainedFeatureExtractor(TINY, batch_size=1).fit_transform(uint8_images)
    many = PretrainedFeatureExtractor(TINY, batch_size=5).fit_transform(uint8_images)
    np.testing.assert_allclose(one, many, rtol=1e-5, atol=1e-6)


def test_grid_search_over_pooling(rng):
    X = rng.integers(0, 256, size=(24, 16, 16, 3), dtype=np.uint8)
    y = (X.mean(axis=(1, 2, 3)) > X.mean()).astype(int)
    pipe = Pipeline([("feat", PretrainedFeatureExtractor(TINY)), ("clf", LogisticRegression(max_iter=500))])
    search = GridSearchCV(pipe, {"feat__pooling": ["avg", "max", "catavgmax"]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["feat__pooling"] in {"avg", "max", "catavgmax"}
    assert len(search.cv_results_["mean_test_score"]) == 3
    widths = {p: PretrainedFeatureExtractor(TINY, pooling=p).fit_transform(X).shape[1]
              for p in ("avg", "max", "avgmax", "catavgmax")}
    assert widths == {"avg": 16, "max": 16, "avgmax": 16, "catavgmax": 32}


def test_pooling_values(uint8_images):
    avg = PretrainedFeatureExtractor(TINY, pooling="avg").fit_transform(uint8_images)
    peak = PretrainedFeatureExtractor(TINY, pooling="max").fit_transform(uint8_images)
    both = PretrainedFeatureExtractor(TINY, pooling="avgmax").fit_transform(uint8_images)
    cat = PretrainedFeatureExtractor(TINY, pooling="catavgmax").fit_transform(uint8_images)
    assert (peak >= avg - 1e-6).all()
    np.testing.assert_allclose(both, (avg + peak) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cat, np.hstack([avg, peak]), rtol=1e-5, atol=1e-6)


def test_joblib_and_pickle_round_trips(uint8_images, tmp_path):
    fitted = PretrainedFeatureExtractor("resnet18", weights=None, input_size=32, random_state=0).fit(uint8_images)
    expected = fitted.transform(uint8_images)
    joblib.dump(fitted, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").transform(uint8_images), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).transform(uint8_images), expected)


def test_clone_and_params():
    extractor = PretrainedFeatureExtractor("resnet18", weights=None, pooling="max", stage=2)
    cloned = clone(extractor)
    assert cloned.get_params() == extractor.get_params()
    assert not hasattr(cloned, "model_")
    cloned.set_params(pooling="avg")
    assert cloned.pooling == "avg" and extractor.pooling == "max"


def test_set_output_pandas(uint8_images):
    frame = PretrainedFeatureExtractor(TINY).set_output(transform="pandas").fit_transform(uint8_images)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns[:2]) == ["test_tiny_cnn_0", "test_tiny_cnn_1"]  # named after the backbone
    assert frame.shape == (12, 16)


def test_intermediate_stages(uint8_images):
    by_index = PretrainedFeatureExtractor("resnet18", weights=None, stage=2, input_size=32, random_state=0)
    by_name = PretrainedFeatureExtractor("resnet18", weights=None, stage="layer2", input_size=32, random_state=0)
    a, b = by_index.fit_transform(uint8_images), by_name.fit_transform(uint8_images)
    assert a.shape == (12, 128)
    np.testing.assert_array_equal(a, b)
    assert PretrainedFeatureExtractor(TINY, stage=0).fit_transform(uint8_images).shape == (12, 8)
    assert PretrainedFeatureExtractor(TINY, stage=-1).fit_transform(uint8_images).shape == (12, 16)


def test_vit_token_pooling_and_fixed_input_size(uint8_images):
    vit = PretrainedFeatureExtractor("vit_b_32", weights=None, pooling="token", random_state=0)
    assert vit.fit_transform(uint8_images[:2]).shape == (2, 768)
    with pytest.raises(ValueError, match=r"only accepts input_size=\(224, 224\), got \(64, 64\)"):
        PretrainedFeatureExtractor("vit_b_32", weights=None, input_size=64).fit(uint8_images)


def test_swin_intermediate_stage_is_channels_last(uint8_images):
    # Swin's inner stages output NHWC maps; pooling must average over H and W.
    swin = PretrainedFeatureExtractor("swin_t", weights=None, stage=3, input_size=64, random_state=0)
    assert swin.fit_transform(uint8_images[:2]).shape == (2, 192)


def test_input_size_changes_the_resolution(uint8_images):
    small = PretrainedFeatureExtractor(TINY, input_size=8).fit(uint8_images)
    assert small.data_config_.input_size == (8, 8)
    assert not np.allclose(small.transform(uint8_images),
                           PretrainedFeatureExtractor(TINY).fit_transform(uint8_images))


def test_center_crop_ignores_the_borders(rng):
    X = rng.integers(0, 256, size=(4, 16, 32, 3), dtype=np.uint8)
    changed = X.copy()
    changed[:, :, :6] = 0  # outside the central square
    crop = PretrainedFeatureExtractor(TINY, resize="center_crop")
    np.testing.assert_array_equal(crop.fit_transform(X), crop.fit_transform(changed))
    squash = PretrainedFeatureExtractor(TINY, resize="squash")
    assert not np.allclose(squash.fit_transform(X), squash.fit_transform(changed))


# What the constraints table cannot say; scikit-learn's check_param_validation covers the rest.
@pytest.mark.parametrize(
    "params, message",
    [
        ({"backbone": "resnt18"}, r"unknown backbone 'resnt18'; did you mean 'resnet18'"),
        ({"backbone": TINY, "weights": "IMAGENET"}, r"unknown weights 'IMAGENET'.*\['DEFAULT'\]"),
        ({"backbone": TINY, "pooling": "token"}, r"pooling='token' needs a transformer"),
        ({"backbone": TINY, "stage": 3}, r"stage=3 is out of range .* 3 stages"),
        ({"backbone": TINY, "stage": "layer9"}, r"has no stage 'layer9'; its stages are \['stem'"),
        ({"backbone": TINY, "device": "gpu"}, r"'device' parameter .* must be 'auto', 'cpu', 'cuda'"),
        ({"backbone": TINY, "input_size": (8,)}, r"'input_size' parameter .* pair of positive ints"),
        ({"backbone": TINY, "value_range": (1, 0)}, r"'value_range' parameter .* low < high"),
        ({"backbone": TINY, "image_shape": (8, -1, -1)}, r"'image_shape' parameter .* at most one -1"),
        ({"backbone": TINY, "cache_dir": __file__}, r"'cache_dir' parameter .* \(this is a file\)"),
    ],
)
def test_bad_parameters(params, message, uint8_images):
    with pytest.raises(ValueError, match=message):
        PretrainedFeatureExtractor(**params).fit(uint8_images)


@pytest.mark.parametrize("params", [
    {"compile": "no"}, {"cache": "no"}, {"verbose": "2"}, {"pooling": "mean"}, {"resize": "pad"},
    {"batch_size": 0}, {"precision": "half"}, {"random_state": "x"}, {"backbone": 18},
    {"batch_size": True}, {"input_size": True}, {"stage": False}, {"random_state": True},
])
def test_parameters_are_checked_before_data_and_weights(params):
    # the data are not images and the weights file does not exist: only a parameter error
    # can come first
    from sklearn.utils._param_validation import InvalidParameterError

    extractor = PretrainedFeatureExtractor(**{"backbone": TINY, "weights": "/nonexistent/weights.pth", **params})
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=rf"The '{name}' parameter of PretrainedFeatureExtractor"):
        extractor.fit("not images")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unknown_backbone_is_reported_before_the_data_are_read():
    with pytest.raises(ValueError, match=r"unknown backbone 'resnt18'; did you mean 'resnet18'"):
        PretrainedFeatureExtractor("resnt18").fit("not images")


def test_cuda_request_without_cuda(uint8_images):
    with pytest.raises(ValueError, match=r"device='cuda' was requested but CUDA is not available"):
        PretrainedFeatureExtractor(TINY, device="cuda").fit(uint8_images)


def test_transform_before_fit(uint8_images):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        PretrainedFeatureExtractor(TINY).transform(uint8_images)


def test_compiled_backbone_gives_the_same_features(uint8_images):
    plain = PretrainedFeatureExtractor(TINY, cache=False).fit_transform(uint8_images)
    compiled = PretrainedFeatureExtractor(TINY, cache=False, compile=True).fit(uint8_images)
    np.testing.assert_allclose(compiled.transform(uint8_images), plain, rtol=1e-4, atol=1e-5)
    loaded = pickle.loads(pickle.dumps(compiled))
    np.testing.assert_allclose(loaded.transform(uint8_images), plain, rtol=1e-4, atol=1e-5)
