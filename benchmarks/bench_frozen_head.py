"""Frozen EfficientNet-Lite0 on Fashion-MNIST: FineTunedClassifier(freeze_depth="all") against
features + StandardScaler + LogisticRegression (target 4).

Both start from raw images with an empty feature cache and are timed end to end (fit and
test-set accuracy). The classifier runs the backbone once per image and trains only its
head on the pooled features. On a CPU, pass a subset.
"""

from __future__ import annotations

import argparse
import time

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _common import save
from finetune_fashion_mnist import subset
from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor, feature_cache, get_backbone
from sktransfer.datasets import load_fashion_mnist


def timed(model, X_train, y_train, X_test, y_test):
    feature_cache.clear()
    start = time.perf_counter()
    accuracy = model.fit(X_train, y_train).score(X_test, y_test)
    return {"test_accuracy": round(float(accuracy), 4), "seconds": round(time.perf_counter() - start, 1)}


def run(quick=False, n_train=None, n_test=None, input_size=112):
    n_train = n_train or (1000 if quick else 5000)
    n_test = n_test or (500 if quick else 2000)
    X_train, y_train, X_test, y_test = subset(load_fashion_mnist(), n_train, n_test)
    get_backbone("efficientnet_lite0")  # imports and first loads are paid before either clock starts
    ours = timed(FineTunedClassifier("efficientnet_lite0", freeze_depth="all", augment=None,
                                     input_size=input_size, random_state=0),
                 X_train, y_train, X_test, y_test)
    theirs = timed(make_pipeline(PretrainedFeatureExtractor("efficientnet_lite0", input_size=input_size),
                                 StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)),
                   X_train, y_train, X_test, y_test)
    return {
        "settings": {"backbone": "efficientnet_lite0", "input_size": input_size, "train_images": n_train,
                     "test_images": n_test, "classifier": "defaults + freeze_depth='all', augment=None"},
        "subset": n_train < 60000 or n_test < 10000,
        "frozen_fine_tuned_classifier": ours,
        "features_scaler_logistic_regression": theirs,
        "time_ratio": round(ours["seconds"] / theirs["seconds"], 3),
        "target": "accuracy >= 0.90 (full data) in less time than the LogisticRegression pipeline",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--train", type=int)
    parser.add_argument("--test", type=int)
    parser.add_argument("--input-size", type=int, default=112)
    args = parser.parse_args()
    save("frozen_head_vs_logistic_regression", run(args.quick, args.train, args.test, args.input_size))
