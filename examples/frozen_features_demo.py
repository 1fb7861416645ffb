"""Frozen pretrained features + LogisticRegression on real data, with no network.

EfficientNet-Lite0 (real ImageNet weights, installed as a package) turns images
into 1280 features; a StandardScaler + LogisticRegression is fitted on them and
compared with the same classifier on raw pixels. Datasets: scikit-learn's digits
(always) and a subset of Fashion-MNIST when its files are installed
(``apt-get install dataset-fashion-mnist``). Takes one to two minutes on a
2-core CPU.

Run: ``python examples/frozen_features_demo.py [--input-size 112] [--fashion-train 5000]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sktransfer import PretrainedFeatureExtractor
from sktransfer.datasets import load_fashion_mnist


def flatten(X):
    return X.reshape(len(X), -1)


def evaluate(name, X_train, y_train, X_test, y_test, *, value_range, input_size, C):
    raw = make_pipeline(FunctionTransformer(flatten), StandardScaler(),
                        LogisticRegression(C=C, max_iter=3000))
    transfer = make_pipeline(
        PretrainedFeatureExtractor("efficientnet_lite0", input_size=input_size,
                                   value_range=value_range),
        StandardScaler(),
        LogisticRegression(C=C, max_iter=3000),
    )
    print(f"\n{name}: {len(X_train)} train / {len(X_test)} test images of {X_train.shape[1:]}")
    for label, model in (("raw pixels + LogisticRegression", raw),
                         (f"EfficientNet-Lite0 features @{input_size}px + LogisticRegression", transfer)):
        start = time.perf_counter()
        model.fit(X_train, y_train)
        accuracy = model.score(X_test, y_test)
        print(f"  {label:<62} accuracy {accuracy:.3f}   ({time.perf_counter() - start:5.1f} s)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", type=int, default=112,
                        help="resolution fed to the network (224 is the weights' own; 112 is 4x faster)")
    parser.add_argument("--fashion-train", type=int, default=5000)
    parser.add_argument("--fashion-test", type=int, default=2000)
    args = parser.parse_args(argv)

    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=0.25, stratify=digits.target, random_state=0)
    # digits are floats in [0, 16]: value_range says so
    evaluate("scikit-learn digits", X_train, y_train, X_test, y_test,
             value_range=(0, 16), input_size=args.input_size, C=0.1)

    try:
        fashion = load_fashion_mnist()
    except FileNotFoundError as exc:
        print(f"\nFashion-MNIST skipped: {exc}")
        return
    rng = np.random.default_rng(0)
    train = rng.choice(len(fashion.X_train), args.fashion_train, replace=False)
    test = rng.choice(len(fashion.X_test), args.fashion_test, replace=False)
    evaluate("Fashion-MNIST (random subset)", fashion.X_train[train], fashion.y_train[train],
             fashion.X_test[test], fashion.y_test[test],
             value_range=None, input_size=args.input_size, C=0.01)


if __name__ == "__main__":
    main()
