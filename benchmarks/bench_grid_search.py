"""GridSearchCV over Pipeline(extractor, LogisticRegression): the feature cache's effect (target 5).

Four values of C, cv=3, on scikit-learn's digits through EfficientNet-Lite0 (offline
ImageNet weights). Counts the images that go through the backbone (a global forward
hook) and times the search with the cache on and off, in the same process.
"""

from __future__ import annotations

import argparse
import time

import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from _common import save
from sktransfer import PretrainedFeatureExtractor, feature_cache
from sktransfer.nn.networks import FeatureNet


def search(X, y, cache, input_size):
    pipe = Pipeline([
        ("feat", PretrainedFeatureExtractor("efficientnet_lite0", input_size=input_size,
                                            value_range=(0, 16), cache=cache)),
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(max_iter=2000)),
    ])
    images = []

    def count(module, args):
        if isinstance(module, FeatureNet):
            images.append(len(args[0]) if not isinstance(args[0], list) else len(args[0]))

    hook = torch.nn.modules.module.register_module_forward_pre_hook(count)
    feature_cache.clear()
    start = time.perf_counter()
    try:
        fitted = GridSearchCV(pipe, {"clf__C": [0.01, 0.1, 1.0, 10.0]}, cv=3).fit(X, y)
    finally:
        hook.remove()
    return {"seconds": round(time.perf_counter() - start, 1), "images_through_backbone": sum(images),
            "best_C": fitted.best_params_["clf__C"], "best_cv_accuracy": round(fitted.best_score_, 4)}


def run(quick=False):
    digits = load_digits()
    n = 600 if quick else len(digits.images)
    X, y = digits.images[:n], digits.target[:n]
    input_size = 112
    cached = search(X, y, True, input_size)
    uncached = search(X, y, False, input_size)
    return {
        "settings": {"backbone": "efficientnet_lite0", "input_size": input_size, "images": n,
                     "grid": "4 values of C", "cv": 3, "fits": 13},
        "cache_on": cached, "cache_off": uncached,
        "distinct_images": n,
        "speedup": round(uncached["seconds"] / cached["seconds"], 2), "target_speedup": 3.0,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    save("grid_search_cache", run(parser.parse_args().quick))
