"""Fine-tune EfficientNet-Lite0 (offline ImageNet weights) on Fashion-MNIST through the public API.

Uses FineTunedClassifier's defaults plus only ``max_epochs`` and ``input_size``,
and runs the same recipe as a hand-written PyTorch loop in the same process
(same model and weights, AdamW, one-cycle, label smoothing 0.1, flips, same
batch size) as the reference. Reports test accuracy, wall time and the
training-throughput ratio. On a CPU, pass a subset (``--train``/``--test``).

    python benchmarks/finetune_fashion_mnist.py            # GPU: full data, 5 epochs, 112 px
    python benchmarks/finetune_fashion_mnist.py            # CPU: 3,000 / 2,000 images, 3 epochs
    python benchmarks/finetune_fashion_mnist.py --throughput-only 5   # only the one-epoch rates
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from _common import RESULTS, machine_id, save, sync, timer
from sktransfer import FineTunedClassifier, get_backbone
from sktransfer.datasets import load_fashion_mnist


def subset(data, n_train, n_test, seed=0):
    rng = np.random.default_rng(seed)
    train = rng.permutation(len(data.X_train))[:n_train]
    test = rng.permutation(len(data.X_test))[:n_test]
    return data.X_train[train], data.y_train[train], data.X_test[test], data.y_test[test]


def raw_model(outputs, device):
    """EfficientNet-Lite0 (offline ImageNet weights) with a new linear head, channels-last."""
    torch.manual_seed(0)
    backbone = get_backbone("efficientnet_lite0").module
    model = nn.Sequential(backbone, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1280, outputs)).to(device)
    return model.to(memory_format=torch.channels_last)  # faster on GPUs and CPUs alike


def raw_prepare(device, size):
    """Host uint8 (n, 1, 28, 28) batches -> the network's float input on ``device``."""
    def prepare(xb):
        xb = xb.to(device, non_blocking=True).float() / 255
        xb = F.interpolate(xb, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        xb = ((xb - 0.5) / 0.5).expand(-1, 3, -1, -1)
        return xb.contiguous(memory_format=torch.channels_last)

    return prepare


def raw_loop(X_train, y_train, X_test, y_test, *, epochs, size, batch_size, device):
    """What one would write by hand: the same model, recipe, batch size and channels-last layout."""
    model = raw_model(10, device)
    cuda = torch.device(device).type == "cuda"
    steps = epochs * (len(X_train) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=steps,
                                                   pct_start=0.25)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    X = torch.from_numpy(X_train).unsqueeze(1)
    y = torch.from_numpy(y_train.astype(np.int64))
    if cuda:
        X, y = X.pin_memory(), y.pin_memory()
    prepare = raw_prepare(device, size)

    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
    with timer(device) as elapsed:
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(X))
            for i in range(len(X) // batch_size):
                idx = order[i * batch_size:(i + 1) * batch_size]
                xb, yb = prepare(X[idx]), y[idx].to(device, non_blocking=True)
                xb = torch.where(torch.rand(len(xb), 1, 1, 1, device=device) < 0.5, xb.flip(3), xb)
                with autocast:
                    loss = loss_fn(model(xb).float(), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    train_seconds = elapsed()
    model.eval()
    correct = 0
    with torch.inference_mode(), autocast:
        Xt = torch.from_numpy(X_test).unsqueeze(1)
        for i in range(0, len(Xt), 256):
            pred = model(prepare(Xt[i:i + 256])).argmax(1).cpu().numpy()
            correct += int((pred == y_test[i:i + 256]).sum())
    sync(device)
    return {"accuracy": correct / len(X_test), "train_seconds": round(train_seconds, 2),
            "train_images_per_s": round(epochs * (len(X_train) // batch_size) * batch_size / train_seconds, 1)}


def run(quick=False, n_train=None, n_test=None, epochs=None, input_size=112, reference=True):
    """Fine-tune and score; on a CPU (or with ``quick``) a subset by default."""
    cpu = not torch.cuda.is_available()
    n_train = n_train or (1000 if quick else 3000 if cpu else 60000)
    n_test = n_test or (500 if quick else 2000 if cpu else 10000)
    epochs = epochs or (1 if quick else 3 if cpu else 5)
    X_train, y_train, X_test, y_test = subset(load_fashion_mnist(), n_train, n_test)
    device = "cpu" if cpu else "cuda"
    clf = FineTunedClassifier("efficientnet_lite0", max_epochs=epochs, input_size=input_size, verbose=1)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    train_seconds = sum(clf.net_.history[:, "dur"])
    accuracy = clf.score(X_test, y_test)
    total = time.perf_counter() - start
    images = sum(b["train_batch_size"] for e in clf.net_.history for b in e["batches"])
    result = {
        "settings": {"backbone": "efficientnet_lite0", "weights": "DEFAULT (offline ImageNet)",
                     "max_epochs": epochs, "input_size": input_size,
                     "train_images": len(X_train), "test_images": len(X_test), "device": device,
                     "batch_size": clf.net_.batch_size, "other parameters": "library defaults"},
        "sktransfer": {"test_accuracy": round(accuracy, 4), "fit_seconds": round(fit_seconds, 2),
                       "train_seconds": round(train_seconds, 2),
                       "train_images_per_s": round(images / train_seconds, 1),
                       "fit_plus_score_seconds": round(total, 2)},
        "subset": len(X_train) < 60000,
        "target": "test accuracy >= 0.95 on the full data; training throughput >= 0.9x the raw loop",
    }
    if reference:
        raw = raw_loop(X_train, y_train, X_test, y_test, epochs=epochs, size=input_size,
                       batch_size=clf.net_.batch_size, device=device)
        result["raw_pytorch_loop"] = raw
        result["whole_run_throughput_ratio"] = round(
            result["sktransfer"]["train_images_per_s"] / raw["train_images_per_s"], 3)
        result["throughput"] = alternating_throughput(X_train, y_train, input_size, clf.net_.batch_size,
                                                      device, n=640 if cpu else 20480)
        result["throughput"]["compile_true"] = compiled_throughput(
            X_train, y_train, input_size, clf.net_.batch_size, n=320 if cpu else 20480,
            raw_rate=float(np.median(result["throughput"]["raw_loop_images_per_s"])))
    return result


def compiled_throughput(X, y, input_size, batch_size, n, raw_rate):
    """``compile=True`` (skorch compiles the network) against ``compile="auto"`` (eager) in the
    same process: each one's second epoch in images/s, and the compile cost as the compiled
    first epoch's extra seconds; also against the raw loop's rate measured before."""
    rates, extra = {}, None
    for mode in ("auto", True):
        clf = FineTunedClassifier("efficientnet_lite0", max_epochs=2, input_size=input_size,
                                  batch_size=batch_size, compile=mode).fit(X[:n], y[:n])
        first, second = clf.net_.history[0, "dur"], clf.net_.history[1, "dur"]
        rates[mode] = n // batch_size * batch_size / second
        extra = first - second
    return {"images": n, "images_per_s": round(rates[True], 1), "eager_images_per_s": round(rates["auto"], 1),
            "ratio_vs_eager": round(rates[True] / rates["auto"], 3),
            "ratio_vs_eager_raw_loop": round(rates[True] / raw_rate, 3),
            "first_epoch_extra_seconds": round(extra, 1)}


def alternating_throughput(X, y, input_size, batch_size, device, n, rounds=3):
    """Median images/s of one-epoch runs on ``n`` images, ours and the raw loop taking turns,
    so that a slow spell of a shared machine hits both sides alike."""
    ours, raw = [], []
    for _ in range(rounds):
        clf = FineTunedClassifier("efficientnet_lite0", max_epochs=1, input_size=input_size,
                                  batch_size=batch_size).fit(X[:n], y[:n])
        ours.append(n // batch_size * batch_size / clf.net_.history[-1, "dur"])
        raw.append(raw_loop(X[:n], y[:n], X[:batch_size], y[:batch_size], epochs=1, size=input_size,
                            batch_size=batch_size, device=device)["train_images_per_s"])
    return {"images_per_run": n, "rounds": rounds,
            "sktransfer_images_per_s": [round(v, 1) for v in ours],
            "raw_loop_images_per_s": raw,
            "ratio": round(float(np.median(ours) / np.median(raw)), 3), "target_ratio": 0.9}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int)
    parser.add_argument("--test", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--input-size", type=int, default=112)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--throughput-only", type=int, default=None, metavar="ROUNDS",
                        help="only the alternating one-epoch throughput, over ROUNDS rounds (the saved "
                             "entry's other figures stay)")
    args = parser.parse_args(argv)
    if args.throughput_only:
        cpu = not torch.cuda.is_available()
        X, y, _, _ = subset(load_fashion_mnist(), 640 if cpu else 20480, 1)
        throughput = alternating_throughput(X, y, args.input_size, 32 if cpu else 128, "cpu" if cpu else "cuda",
                                            n=len(X), rounds=args.throughput_only)
        name = "finetune_fashion_mnist" + ("_subset" if cpu else "")
        saved = RESULTS / f"{machine_id()}.json"
        before = json.loads(saved.read_text())["benchmarks"].get(name, {}) if saved.exists() else {}
        if "compile_true" in before.get("throughput", {}):  # measured by a whole run: kept
            throughput["compile_true"] = before["throughput"]["compile_true"]
        save("finetune_fashion_mnist", {"throughput": throughput, "subset": cpu}, merge=True)
        return
    result = run(args.quick, args.train, args.test, args.epochs, args.input_size, not args.skip_reference)
    save("finetune_fashion_mnist", result)


if __name__ == "__main__":
    main()
