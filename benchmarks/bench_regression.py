"""Regression on real images (issue 22): the rotation angle of Fashion-MNIST images.

Each image is rotated by a known angle, drawn uniformly from [-45, 45] degrees (PIL,
bilinear), and the angle is the target. Quality table: raw pixels + RidgeCV, frozen
EfficientNet-Lite0 features (offline ImageNet weights) + StandardScaler + RidgeCV, the
ridge probe (``FineTunedRegressor(freeze_depth="all")``) and fine-tuning
(``FineTunedRegressor``, no flips: a mirror turns the angle's sign). Throughput: one-epoch
fits against a hand-written PyTorch regression loop (same model, AdamW one-cycle, MSE on
standardized targets, batch size), taking turns in the same process (target >= 0.95x on
the CPU).

    python benchmarks/bench_regression.py          # CPU: 3,000 / 1,000 images at 64 px, 3 epochs
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from _common import save, timer
from finetune_fashion_mnist import raw_model, raw_prepare, subset
from sktransfer import FineTunedRegressor, PretrainedFeatureExtractor
from sktransfer.datasets import load_fashion_mnist

ALPHAS = np.logspace(-2, 5, 15)


def rotated(images, rng):
    """The images rotated by angles drawn from [-45, 45] degrees, and the angles."""
    angles = rng.uniform(-45, 45, len(images))
    out = np.stack([np.asarray(Image.fromarray(image).rotate(angle, resample=Image.BILINEAR))
                    for image, angle in zip(images, angles)])
    return out, angles


def raw_regression_loop(X, y, *, epochs, size, batch_size, device="cpu"):
    """The hand-written loop: EfficientNet-Lite0 with one output, MSE on standardized targets."""
    model = raw_model(1, device)
    steps = epochs * (len(X) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=steps, pct_start=0.25)
    Xt = torch.from_numpy(X).unsqueeze(1)
    yt = torch.from_numpy(((y - y.mean()) / y.std()).astype(np.float32)).unsqueeze(1)
    prepare = raw_prepare(device, size)
    with timer(device) as elapsed:
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(Xt))
            for i in range(len(Xt) // batch_size):
                idx = order[i * batch_size:(i + 1) * batch_size]
                loss = nn.functional.mse_loss(model(prepare(Xt[idx])), yt[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    return steps * batch_size / elapsed()


def quality(X_train, a_train, X_test, a_test, size, epochs):
    rows = {}

    def row(name, fit_predict):
        start = time.perf_counter()
        predicted = fit_predict()
        rows[name] = {"r2": round(r2_score(a_test, predicted), 4),
                      "mean_absolute_error_degrees": round(mean_absolute_error(a_test, predicted), 2),
                      "seconds": round(time.perf_counter() - start, 1)}

    flat = len(X_train), -1
    row("raw pixels + RidgeCV", lambda: RidgeCV(alphas=ALPHAS).fit(X_train.reshape(flat), a_train)
        .predict(X_test.reshape(len(X_test), -1)))
    extractor = PretrainedFeatureExtractor("efficientnet_lite0", input_size=size)
    row("frozen features + StandardScaler + RidgeCV", lambda: make_pipeline(
        extractor, StandardScaler(), RidgeCV(alphas=ALPHAS)).fit(X_train, a_train).predict(X_test))
    params = {"input_size": size, "augment": None, "random_state": 0}
    row("freeze_depth='all' (ridge probe, closed form)", lambda: FineTunedRegressor(
        "efficientnet_lite0", freeze_depth="all", **params).fit(X_train, a_train).predict(X_test))
    row(f"fine-tuned, {epochs} epochs", lambda: FineTunedRegressor(
        "efficientnet_lite0", max_epochs=epochs, **params).fit(X_train, a_train).predict(X_test))
    row(f"random-init control, fine-tuned {epochs} epochs", lambda: FineTunedRegressor(
        "efficientnet_lite0", weights=None, max_epochs=epochs, **params).fit(X_train, a_train).predict(X_test))
    return rows


def throughput(X, y, size, batch_size, n, rounds=3):
    """Median images/s of one-epoch fits on ``n`` images, ours and the raw loop taking turns."""
    ours, raw = [], []
    for _ in range(rounds):
        reg = FineTunedRegressor("efficientnet_lite0", max_epochs=1, input_size=size, batch_size=batch_size,
                                 augment=None, device="cpu").fit(X[:n], y[:n])
        ours.append(n // batch_size * batch_size / reg.net_.history[-1, "dur"])
        raw.append(raw_regression_loop(X[:n], y[:n], epochs=1, size=size, batch_size=batch_size))
    return {"images_per_run": n, "rounds": rounds, "sktransfer_images_per_s": [round(v, 1) for v in ours],
            "raw_loop_images_per_s": [round(v, 1) for v in raw],
            "ratio": round(float(np.median(ours) / np.median(raw)), 3), "target_ratio": 0.95}


def run(quick=False, n_train=None, n_test=None, size=64, epochs=None):
    n_train, n_test = n_train or (600 if quick else 3000), n_test or (300 if quick else 1000)
    epochs = epochs or (1 if quick else 3)
    X_train, _, X_test, _ = subset(load_fashion_mnist(), n_train, n_test)
    rng = np.random.default_rng(0)
    X_train, a_train = rotated(X_train, rng)
    X_test, a_test = rotated(X_test, rng)
    return {
        "settings": {"data": "Fashion-MNIST rotated by uniform angles in [-45, 45] degrees",
                     "train_images": n_train, "test_images": n_test, "input_size": size, "epochs": epochs,
                     "backbone": "efficientnet_lite0 (offline ImageNet weights)", "device": "cpu"},
        "subset": True,
        "quality": quality(X_train, a_train, X_test, a_test, size, epochs),
        "throughput": throughput(X_train, a_train, size, 32, n=256 if quick else 640),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    save("regression_rotation", run(parser.parse_args().quick))
