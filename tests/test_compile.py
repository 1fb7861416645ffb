"""compile="auto": eager for a handful of images, compiled when the records say it pays
back, features that agree with eager ones, and a compile failure that falls back."""

import json

import numpy as np
import pytest
import torch

from sktransfer import PretrainedFeatureExtractor
from sktransfer.engine import compile as _compile
from tests.conftest import TINY


def test_a_handful_of_images_runs_eagerly(data, records):
    X, _ = data
    extractor = PretrainedFeatureExtractor(TINY, cache=False).fit(X)
    assert extractor.compile == "auto"
    extractor.transform(X)
    decision = _compile.decisions[-1]
    assert not decision.compiled and decision.reason == "fewer than 8 batches" and decision.images == 48
    assert not hasattr(extractor, "_compiled_trunk") and not records.exists()


def test_eager_when_compiling_would_not_pay_back(rng, records):
    X = rng.integers(0, 256, size=(8 * 32 + 5, 16, 16, 3), dtype=np.uint8)
    PretrainedFeatureExtractor(TINY, cache=False).fit(X).transform(X)
    decision = _compile.decisions[-1]
    # a tiny network: 261 images take milliseconds, against an assumed cold compile of 40 s
    assert not decision.compiled and decision.reason.startswith("would not pay back over the")
    assert decision.compile_seconds_estimate == _compile.COLD_COMPILE_SECONDS["cpu"]
    assert decision.expected_speedup == _compile.EXPECTED_SPEEDUP["cpu"]
    assert 0 < decision.eager_seconds_per_image < 0.01


def test_compiled_when_the_records_say_it_pays_back_and_features_agree(rng, records):
    X = rng.integers(0, 256, size=(8 * 32 + 5, 16, 16, 3), dtype=np.uint8)  # the last batch is padded
    extractor = PretrainedFeatureExtractor(TINY, cache=False).fit(X)
    eager = PretrainedFeatureExtractor(TINY, cache=False, compile=False).fit(X).transform(X)
    spec = extractor._spec
    key = _compile.record_key(spec, extractor._stage_index, extractor.data_config_.input_size, 32)
    # as if this network had compiled in no time before (its speed-up unknown: assumed)
    records.write_text(json.dumps({key: {"compile_seconds": 1e-6}}))
    features = extractor.transform(X)
    decision = _compile.decisions[-1]
    assert decision.compiled and decision.reason.startswith("pays back: ")
    assert "compile time recorded, speed-up assumed" in decision.reason
    # both measured (the speed-up on the two full batches after the compiling one), and
    # recorded for the next decision
    assert decision.compile_seconds > 0 and decision.measured_speedup > 0
    record = json.loads(records.read_text())[key]
    assert record["compile_seconds"] == pytest.approx(decision.compile_seconds, abs=1e-3)
    assert record["speedup"] == pytest.approx(decision.measured_speedup, abs=1e-3)
    np.testing.assert_allclose(features, eager, rtol=1e-4, atol=1e-5)
    # kept for later calls, of any size, at the same batch shape
    np.testing.assert_allclose(extractor.transform(X[:7]), eager[:7], rtol=1e-4, atol=1e-5)
    assert _compile.decisions[-1].reason == "compiled in an earlier call"
    # changing the weights changes the network: the compiled trunk (weights frozen in) is not reused
    with torch.no_grad():
        next(extractor.model_.trunk.parameters()).mul_(0.5)
    changed = extractor.transform(X[:7])
    assert _compile.decisions[-1].reason != "compiled in an earlier call"
    assert not np.allclose(changed, eager[:7])
    assert "_compiled_trunk" not in extractor.__getstate__()


def test_a_compile_failure_falls_back_to_eager_with_a_warning(data, records):
    import torch._inductor.config

    X, _ = data
    eager = PretrainedFeatureExtractor(TINY, compile=False, cache=False).fit(X).transform(X)
    # a batch shape no other test compiles: kernels built in this process are not reused
    extractor = PretrainedFeatureExtractor(TINY, compile=True, cache=False, batch_size=7).fit(X)
    # a machine without a working C++ compiler (a slim container): inductor cannot build its
    # kernels (inductor's own patch restores its config, for the tests that compile after)
    with torch._inductor.config.patch({"cpp.cxx": ("/nonexistent/c++",)}), pytest.warns(
            RuntimeWarning, match="compiling the backbone failed, running it eagerly instead"):
        features = extractor.transform(X)
    np.testing.assert_array_equal(features, eager)
    assert _compile.decisions[-1].reason.startswith("compile failed")
    assert getattr(extractor, "_compiled_trunk", None) is None


def test_the_rule(records):
    # 10,000 images at 10 ms each eagerly (100 s) save 16.7 s at 1.2x
    assert _compile.pays_back(10_000, 0.01, 15.0, 1.2)
    assert not _compile.pays_back(10_000, 0.01, 20.0, 1.2)
    assert not _compile.pays_back(64, 0.01, 1.0, 1.2)
    # no faster compiled (or slower): never, however cheap the compile
    assert not _compile.pays_back(10_000, 0.01, 0.0, 1.0)
    assert not _compile.pays_back(10_000, 0.01, 0.0, 0.9)


def test_a_recorded_speedup_replaces_the_assumed_one(rng, records):
    X = rng.integers(0, 256, size=(8 * 32 + 5, 16, 16, 3), dtype=np.uint8)
    extractor = PretrainedFeatureExtractor(TINY, cache=False).fit(X)
    key = _compile.record_key(extractor._spec, extractor._stage_index, extractor.data_config_.input_size, 32)
    # compiling this network was free before, but gave no speed-up: not worth compiling again
    records.write_text(json.dumps({key: {"compile_seconds": 1e-6, "speedup": 1.0}}))
    extractor.transform(X)
    decision = _compile.decisions[-1]
    assert not decision.compiled and decision.expected_speedup == 1.0
    assert decision.compile_seconds_estimate == 1e-6
    assert not hasattr(extractor, "_compiled_trunk")


def test_records_written_by_an_older_version_are_ignored(rng, records):
    X = rng.integers(0, 256, size=(8 * 32 + 5, 16, 16, 3), dtype=np.uint8)
    extractor = PretrainedFeatureExtractor(TINY, cache=False).fit(X)
    key = _compile.record_key(extractor._spec, extractor._stage_index, extractor.data_config_.input_size, 32)
    records.write_text(json.dumps({key: 1e-6}))  # a bare number, as the first version wrote
    extractor.transform(X)
    decision = _compile.decisions[-1]
    assert not decision.compiled and decision.compile_seconds_estimate == _compile.COLD_COMPILE_SECONDS["cpu"]
