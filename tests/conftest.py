"""Shared fixtures: a tiny registered backbone that keeps the suite fast on a CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sktransfer import DataConfig, register_backbone
from sktransfer.backbones import sequential_backbone

TINY = "test/tiny-cnn"
TINY_CONFIG = DataConfig((16, 16), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def _block(c_in, c_out, stride):
    conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU())


def tiny_cnn(name, weights):
    """Three conv stages; "DEFAULT" weights are a fixed seed, None is random."""
    if weights not in (None, "DEFAULT"):
        raise ValueError(f"unknown weights {weights!r} for backbone {name!r}; valid names: ['DEFAULT']")

    def build():
        return sequential_backbone(
            [("stem", _block(3, 8, 2)), ("block1", _block(8, 16, 2)), ("block2", _block(16, 16, 1))],
            num_features=16,
            data_config=TINY_CONFIG,
            stage_formats=("NCHW",) * 3,
            weights_id="tiny:fixed" if weights else "random",
        )

    if weights is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        backbone = build()
    # Give BatchNorm statistics values that differ from the identity, as pretrained ones do.
    for module in backbone.module.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.fill_(-0.05)
            module.running_var.fill_(0.5)
    return backbone


register_backbone(TINY, tiny_cnn, overwrite=True)


@pytest.fixture
def empty_cache():
    """An empty feature cache (counters, measured costs) and backbone memo, before and after."""
    from sktransfer import feature_cache
    from sktransfer.fitting.memo import backbone_memo

    feature_cache.clear()
    backbone_memo.clear()
    yield
    feature_cache.clear()
    backbone_memo.clear()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def data(rng):
    """48 bright or dark images and their labels: learnable in a couple of epochs."""
    X = rng.integers(0, 128, size=(48, 16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 2, size=48)
    X[y == 1] += 100
    return X, y


@pytest.fixture
def uint8_images(rng):
    return rng.integers(0, 256, size=(12, 20, 24, 3), dtype=np.uint8)


@pytest.fixture
def records(tmp_path, monkeypatch):
    """An empty inductor cache folder of its own, where ``compile="auto"`` keeps its
    compile-time records."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    return tmp_path / "sktransfer-compile-seconds.json"


def pytest_collection_modifyitems(config, items):
    """GPU tests run where CUDA is available and are skipped, with a reason, elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
