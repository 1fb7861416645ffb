"""Small data (issue 23): 600 Fashion-MNIST training images (60 a class) at 32 px, tested on
1,000 others, EfficientNet-Lite0 with its offline ImageNet weights.

The recipes a user reaches for, each at 1 and 3 epochs over several seeds: the linear
probe (``freeze_depth="all"``, the cheapest thing the library offers and the floor the
others are judged against), the default fine-tune (whose ``"auto"`` head and backbone rate
start from the probe at a tenth of the rate below 20 backbone steps), a random head and
LP-FT at the full rate, the default with early stopping (the probe kept when no epoch
beats it on the held-out 10 %), with an exponential moving average of the weights, with
mixup, with cutmix, and with TrivialAugment or RandAugment; the default's models are also
scored with test-time flips (``tta="flip"``, no refit).
Prints a table and saves
``small_data`` in ``results/<machine>.json``.

    python benchmarks/bench_small_data.py              # 3 seeds, about 15 minutes on 2 cores
    python benchmarks/bench_small_data.py --seeds 1
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from _common import save
from sktransfer import FineTunedClassifier
from sktransfer.datasets import load_fashion_mnist

PER_CLASS, TEST, SIZE = 60, 1000, 32
RECIPES = {
    'probe (freeze_depth="all")': {"freeze_depth": "all"},
    'default fine-tune (head_init, backbone_lr_ratio "auto")': {},
    'random head at full rate (head_init="random", backbone_lr_ratio=1.0)': {"head_init": "random",
                                                                            "backbone_lr_ratio": 1.0},
    'LP-FT at full rate (head_init="probe", backbone_lr_ratio=1.0)': {"head_init": "probe", "backbone_lr_ratio": 1.0},
    "default + early_stopping (the probe as the floor)": {"early_stopping": True},
    "default, ema_decay=0.99": {"ema_decay": 0.99},
    "default, mixup_alpha=0.2": {"mixup_alpha": 0.2},
    "default, cutmix_alpha=1.0": {"cutmix_alpha": 1.0},
    'default, augment="trivialaugment"': {"augment": "trivialaugment"},
    'default, augment="randaugment"': {"augment": "randaugment"},
}


def data(seed=0):
    fashion = load_fashion_mnist()
    rng = np.random.default_rng(seed)
    train = np.concatenate([rng.choice(np.flatnonzero(fashion.y_train == c), PER_CLASS, replace=False)
                            for c in range(10)])
    test = rng.choice(len(fashion.X_test), TEST, replace=False)
    return fashion.X_train[train], fashion.y_train[train], fashion.X_test[test], fashion.y_test[test]


def run(quick=False, seeds=3, epochs=(1, 3)):
    try:
        X_train, y_train, X_test, y_test = data()
    except FileNotFoundError as exc:
        return {"skipped": str(exc)}
    rows, batch_size = {}, None
    for seed in range(1 if quick else seeds):
        for name, params in RECIPES.items():
            for n_epochs in (epochs if "freeze_depth" not in params else (0,)):
                model = FineTunedClassifier("efficientnet_lite0", input_size=SIZE, random_state=seed,
                                            **({"max_epochs": n_epochs} if n_epochs else {}), **params)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # the few-steps warning, measured here
                    accuracy = float(model.fit(X_train, y_train).score(X_test, y_test))
                key = name if not n_epochs else f"{name}, {n_epochs} epoch{'s' if n_epochs > 1 else ''}"
                row = rows.setdefault(key, {"accuracy": [], "seconds": []})
                row["accuracy"].append(round(accuracy, 4))
                row["seconds"].append(round(time.perf_counter() - start, 1))
                if n_epochs:
                    batch_size = model.net_.batch_size
                print(f"seed {seed} {key:<60} {accuracy:.4f} {row['seconds'][-1]:6.1f} s", flush=True)
                if not params and n_epochs:  # test-time flips on the same fitted model: no refit
                    flipped = float(model.set_params(tta="flip").score(X_test, y_test))
                    tta_row = rows.setdefault(f"{key}, tta='flip'", {"accuracy": [], "seconds": []})
                    tta_row["accuracy"].append(round(flipped, 4))
                    tta_row["seconds"].append(0.0)
                    print(f"seed {seed} {key + ', tta=flip':<60} {flipped:.4f}", flush=True)
    for row in rows.values():
        row["mean_accuracy"] = round(float(np.mean(row["accuracy"])), 4)
        row["std_accuracy"] = round(float(np.std(row["accuracy"])), 4)
    return {"settings": {"train": 10 * PER_CLASS, "test": TEST, "input_size": SIZE, "seeds": len(
        rows[next(iter(rows))]["accuracy"]), "backbone": "efficientnet_lite0 (offline ImageNet weights)",
        "batch_size": batch_size, "note": "defaults but for what each recipe names"}, "recipes": rows, "subset": quick}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    save("small_data", run(args.quick, args.seeds))
