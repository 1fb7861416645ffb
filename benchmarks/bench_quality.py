"""Transfer quality of the recipes: datasets x recipes, mean and spread over seeds (issue 9).

Datasets: scikit-learn's digits (1,347 / 450, 8x8 scaled to uint8, 32 px) and, when its
files are present, a Fashion-MNIST subset (5,000 / 2,000, 112 px), with EfficientNet-Lite0
and its offline ImageNet weights; and the docstrings of installed libraries labelled by
library, with all-MiniLM-L6-v2 (the recipes of examples/text_classification.py). Every fine-tuning recipe runs the same ``max_epochs``
(3) with ``augment=None``; only what the recipe names differs from the defaults.

    python benchmarks/bench_quality.py                 # both datasets, 3 seeds
    python benchmarks/bench_quality.py --only digits --seeds 1
    python benchmarks/bench_quality.py --only fashion --seeds 1 --skip "one-stage, batchnorm"
    python benchmarks/bench_quality.py --only digits --recipes "one-stage, ema" "two-stage"

On a 2-core CPU one Fashion-MNIST fine-tune (5,000 images, 3 epochs at 112 px) takes about
eight minutes, so the full table is a few hours there; ``--seeds`` and ``--skip`` trim it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from _common import RESULTS, machine_id, save

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from finetune_fashion_mnist import subset
from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor, feature_cache
from sktransfer.datasets import load_fashion_mnist

EPOCHS = 3
README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- quality:begin -->", "<!-- quality:end -->"


def digits_data(seed=0):
    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    X_train, X_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=450, stratify=digits.target, random_state=seed)
    return X_train, y_train, X_test, y_test


def fashion_data(n_train=5000, n_test=2000):
    return subset(load_fashion_mnist(), n_train, n_test)


def _flat(X):
    return X.reshape(len(X), -1) / 255.0


def recipes(input_size, seed):
    """name -> an unfitted model; the fine-tuning rows share every setting but the one named."""

    def tuned(**params):
        return FineTunedClassifier("efficientnet_lite0", input_size=input_size, random_state=seed,
                                   **{"max_epochs": EPOCHS, "augment": None, **params})

    return {
        "raw pixels + LogisticRegression": make_pipeline(
            FunctionTransformer(_flat), LogisticRegression(max_iter=2000)),
        "frozen features + LogisticRegression": make_pipeline(
            PretrainedFeatureExtractor("efficientnet_lite0", input_size=input_size),
            LogisticRegression(max_iter=2000)),
        'freeze_depth="all" (solved probe)': tuned(freeze_depth="all"),
        "one-stage fine-tune (default)": tuned(),
        'one-stage, batchnorm_statistics="batch" (the old default)': tuned(batchnorm_statistics="batch"),
        "two-stage: probe, head_epochs=1, then fine-tune at 0.1x": tuned(head_epochs=1),
        "two-stage, finetune_lr_scale=0.3": tuned(head_epochs=1, finetune_lr_scale=0.3),
        "two-stage, finetune_lr_scale=1.0": tuned(head_epochs=1, finetune_lr_scale=1.0),
        "two-stage, finetune_lr_scale=1.0, max_epochs=4 (3 epochs fine-tuning)": tuned(
            head_epochs=1, finetune_lr_scale=1.0, max_epochs=4),
        'probe, then fine-tune (head_init="probe")': tuned(head_init="probe"),
        'probe, then fine-tune, backbone_lr_ratio=0.1': tuned(head_init="probe", backbone_lr_ratio=0.1),
        "one-stage, ema_decay=0.99": tuned(ema_decay=0.99),
        "one-stage, mixup_alpha=0.2": tuned(mixup_alpha=0.2),
        "one-stage, cutmix_alpha=1.0": tuned(cutmix_alpha=1.0),
        'one-stage, augment="randaugment"': tuned(augment="randaugment"),
        "random-init control (weights=None), default recipe": tuned(weights=None),
    }


def evaluate(data, input_size, seeds, skip=(), only=()):
    X_train, y_train, X_test, y_test = data
    rows = {}
    for seed in seeds:
        for name, model in recipes(input_size, seed).items():
            if any(name.startswith(prefix) for prefix in skip) or (only and not name.startswith(tuple(only))):
                continue
            start = time.perf_counter()
            accuracy = float(model.fit(X_train, y_train).score(X_test, y_test))
            row = rows.setdefault(name, {"accuracy": [], "seconds": []})
            row["accuracy"].append(round(accuracy, 4))
            row["seconds"].append(round(time.perf_counter() - start, 1))
            print(f"  seed {seed} {name:<55} {accuracy:.4f} {row['seconds'][-1]:7.1f} s", flush=True)
    return summarized(rows)


def summarized(rows):
    """``rows`` with the number of seeds, mean and spread of each recipe's accuracies."""
    for row in rows.values():
        row["seeds"] = len(row["accuracy"])
        row["mean_accuracy"] = round(float(np.mean(row["accuracy"])), 4)
        row["std_accuracy"] = round(float(np.std(row["accuracy"])), 4)
    return rows


def markdown(result: dict) -> str:
    """The datasets x recipes table: mean accuracy ± std over seeds, and mean seconds."""
    datasets = [name for name, rows in result.items() if isinstance(rows, dict) and name != "settings"]
    order = list(recipes(32, 0))  # the JSON file sorts its keys: show the recipes as defined
    recipes_seen = sorted({recipe for name in datasets for recipe in result[name]},
                          key=lambda r: order.index(r) if r in order else len(order))
    lines = ["| recipe | " + " | ".join(datasets) + " |", "|---" * (len(datasets) + 1) + "|"]
    for recipe in recipes_seen:
        cells = []
        for name in datasets:
            row = result[name].get(recipe)
            cells.append("not run" if row is None else
                         f"{row['mean_accuracy']:.4f} ± {row['std_accuracy']:.4f} "
                         f"({row['seeds']} seeds, {np.mean(row['seconds']):.0f} s)")
        lines.append(f"| {recipe} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_table(machine_file=None):
    """Put the quality table of ``machine_file`` (this machine's) into benchmarks/README.md."""
    machine_file = Path(machine_file or RESULTS / f"{machine_id()}.json")
    result = json.loads(machine_file.read_text())["benchmarks"]["quality"]
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    README.write_text(text[:start] + "\n".join([BEGIN, markdown(result), END]) + text[end:])


def run(quick=False, seeds=3, datasets=("digits", "fashion", "text"), skip=(), only=()):
    """``{dataset: {recipe: {accuracy, seconds, mean_accuracy, std_accuracy}}}``; with ``only``
    (recipe name prefixes), those recipes' rows join the dataset's saved ones."""
    seeds = range(1 if quick else seeds)
    result = {"settings": {"backbone": "efficientnet_lite0 (offline ImageNet weights)", "max_epochs": EPOCHS,
                           "augment": None}, "subset": quick}
    feature_cache.clear()
    if "digits" in datasets:
        result["digits@32px (1347/450)"] = evaluate(digits_data(), 32, seeds, skip, only)
    if "fashion" in datasets:
        try:
            data = fashion_data(1000, 500) if quick else fashion_data()
        except FileNotFoundError as exc:
            result["fashion"] = f"skipped: {exc}"
        else:
            name = f"fashion-mnist@112px ({len(data[0])}/{len(data[2])})"
            result[name] = evaluate(data, 112, seeds, skip, only)
    if "text" in datasets:
        # the recipes of examples/text_classification.py, which prints the same table
        try:
            from text_classification import evaluate as evaluate_text
            docs, rows = evaluate_text(seeds)
        except ImportError as exc:
            result["library docstrings"] = f"skipped: {exc}"
        else:
            result[f"library docstrings, MiniLM ({len(docs.data)} texts, 70/30 splits)"] = summarized(rows)
    if only:
        saved = RESULTS / f"{machine_id()}.json"
        before = json.loads(saved.read_text())["benchmarks"].get("quality", {}) if saved.exists() else {}
        for name, rows in result.items():
            if isinstance(rows, dict) and isinstance(before.get(name), dict) and name != "settings":
                result[name] = {**before[name], **rows}
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=["digits", "fashion", "text"],
                        default=["digits", "fashion", "text"])
    parser.add_argument("--skip", nargs="*", default=[], help="recipes whose names start with these")
    parser.add_argument("--recipes", nargs="*", default=[],
                        help="run only recipes whose names start with these (their rows join the saved ones)")
    args = parser.parse_args()
    save("quality", run(args.quick, args.seeds, tuple(args.only), tuple(args.skip), tuple(args.recipes)), merge=True)
    write_table()
