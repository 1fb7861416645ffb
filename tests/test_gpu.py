"""CUDA code paths: skipped without a GPU, run on the GPU machine."""

import pickle

import numpy as np
import pytest
import torch

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor
from sktransfer.data.inputs import InputOptions, image_array_source
from sktransfer.data.loader import BatchLoader, ImageDataset

from .conftest import TINY

pytestmark = pytest.mark.gpu


def test_loader_delivers_the_same_batches_on_cuda(uint8_images):
    source = image_array_source(uint8_images, InputOptions())
    y = np.arange(len(uint8_images))
    cpu = list(BatchLoader(ImageDataset(source, y), 5, device="cpu"))
    gpu = list(BatchLoader(ImageDataset(source, y), 5, device="cuda"))
    assert len(cpu) == len(gpu) == 3
    for (xc, yc), (xg, yg) in zip(cpu, gpu):
        assert xg.device.type == "cuda" and xg.dtype == torch.uint8
        torch.testing.assert_close(xg.cpu(), xc)
        torch.testing.assert_close(yg.cpu(), yc)


def test_extractor_on_cuda_matches_cpu_within_bfloat16(uint8_images):
    cpu = PretrainedFeatureExtractor("resnet18", weights=None, random_state=0, device="cpu")
    gpu = PretrainedFeatureExtractor("resnet18", weights=None, random_state=0, device="cuda")
    expected = cpu.fit_transform(uint8_images)
    actual = gpu.fit_transform(uint8_images)
    assert actual.dtype == np.float32
    trunk = next(gpu.model_.trunk.parameters())
    assert trunk.dtype == torch.bfloat16
    assert gpu.model_.preprocess.channels_last
    np.testing.assert_allclose(actual, expected, rtol=0.05, atol=0.05)
    fp32 = PretrainedFeatureExtractor("resnet18", weights=None, random_state=0, device="cuda",
                                      precision="float32").fit_transform(uint8_images)
    # cuDNN convolutions use TF32 by default (PyTorch's setting): float32 in name, 10-bit mantissas
    np.testing.assert_allclose(fp32, expected, rtol=1e-2, atol=1e-2)


def test_extractor_reads_tensors_already_on_the_gpu(uint8_images):
    tensor = torch.from_numpy(uint8_images).permute(0, 3, 1, 2).cuda()
    extractor = PretrainedFeatureExtractor(TINY, device="cuda").fit(tensor)
    np.testing.assert_allclose(extractor.transform(tensor), extractor.transform(uint8_images),
                               rtol=1e-5, atol=1e-5)


def test_gpu_fitted_extractor_round_trips(uint8_images):
    extractor = PretrainedFeatureExtractor(TINY, device="cuda").fit(uint8_images)
    loaded = pickle.loads(pickle.dumps(extractor))
    assert loaded.device_.type == "cuda"
    np.testing.assert_array_equal(loaded.transform(uint8_images), extractor.transform(uint8_images))
    # the saved weights are host arrays, loadable on a machine without CUDA
    assert all(isinstance(a, np.ndarray) for a in extractor.__getstate__()["_network"]["arrays"].values())


@pytest.mark.parametrize("precision", ["auto", "float16", "float32"])
def test_classifier_trains_on_cuda(rng, precision):
    X = rng.integers(0, 128, size=(64, 16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 2, size=64)
    X[y == 1] += 100
    clf = FineTunedClassifier(TINY, max_epochs=3, lr=1e-2, batch_size=16, precision=precision,
                              random_state=0).fit(X, y)
    assert clf.device_.type == "cuda"
    assert clf.score(X, y) > 0.8
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


# float32: cuDNN's and inductor's convolutions both use TF32 (PyTorch's default), rounded differently
@pytest.mark.parametrize("precision, tolerance", [("float32", 1e-2), ("auto", 0.05)])
def test_compiled_with_cuda_graphs_when_the_records_say_it_pays_back(rng, records, precision, tolerance):
    import json

    from sktransfer.engine import compile as _compile

    X = rng.integers(0, 256, size=(8 * 32 + 5, 32, 32, 3), dtype=np.uint8)  # the last batch is padded
    params = dict(weights=None, random_state=0, input_size=64, batch_size=32, precision=precision,
                  device="cuda", cache=False)
    eager = PretrainedFeatureExtractor("resnet18", compile=False, **params).fit(X).transform(X)
    extractor = PretrainedFeatureExtractor("resnet18", **params).fit(X)
    key = _compile.record_key(extractor._spec, extractor._stage_index, extractor.data_config_.input_size, 32)
    records.write_text(json.dumps({key: {"compile_seconds": 1e-6}}))
    features = extractor.transform(X)
    decision = _compile.decisions[-1]
    assert decision.compiled and decision.reason.startswith("pays back: ") and decision.compile_seconds > 0
    assert extractor._compiled_trunk.graphs  # CUDA graphs: one static shape, replayed
    np.testing.assert_allclose(features, eager, rtol=tolerance, atol=tolerance)
    # replays of the kept graph: each call's output is its own, not the graph's reused memory
    first, second = extractor.transform(X[:7]), extractor.transform(X[100:107])
    assert _compile.decisions[-1].reason == "compiled in an earlier call"
    np.testing.assert_allclose(first, eager[:7], rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(second, eager[100:107], rtol=tolerance, atol=tolerance)


def test_auto_stays_eager_on_cuda_for_a_handful_of_images(uint8_images, records):
    from sktransfer.engine import compile as _compile

    PretrainedFeatureExtractor(TINY, device="cuda", cache=False).fit(uint8_images).transform(uint8_images)
    assert not _compile.decisions[-1].compiled
    assert not records.exists()


def test_classifier_compiled_trains_on_cuda(rng):
    X = rng.integers(0, 128, size=(64, 16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 2, size=64)
    X[y == 1] += 100
    clf = FineTunedClassifier(TINY, max_epochs=3, lr=1e-2, batch_size=16, compile=True, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.8
    eager = FineTunedClassifier(TINY, max_epochs=3, lr=1e-2, batch_size=16, random_state=0).fit(X, y)
    # fused kernels round differently, so training drifts a little: the same answers, not the same bits
    assert (clf.predict(X) == eager.predict(X)).mean() >= 0.9
