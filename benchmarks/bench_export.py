"""ONNX export (issue 24): an exported FineTunedClassifier run by onnxruntime on the CPU against
the estimator's own ``predict_proba``, in the same process.

EfficientNet-Lite0 (the packaged ImageNet weights) at 224 px, its probe as the head
(``freeze_depth="all"``), random uint8 images at the input size. Reports the export's
seconds and file size, the largest difference from ``predict_proba`` (target <= 1e-4),
and images/s of ``predict_proba`` and of an onnxruntime session (CPU provider, default
threads, the estimator's batch size), as the median of rounds taking turns, and their ratio.

    python benchmarks/bench_export.py            # 512 images
    python benchmarks/bench_export.py --quick    # 64 images
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import save, timer
from sktransfer import FineTunedClassifier, export


def run(quick=False, n_images=None, backbone="efficientnet_lite0", size=224, batch_size=32, rounds=3):
    import onnxruntime

    n = n_images or (64 if quick else 512)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    y = (X.mean((1, 2, 3)) > X.mean()).astype(int)
    model = FineTunedClassifier(backbone, input_size=size, freeze_depth="all", batch_size=batch_size, device="cpu",
                                compile=False, random_state=0).fit(X[:64], y[:64])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        with timer() as export_seconds:
            export(model, path)
        megabytes = path.stat().st_size / 2**20
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def onnx_proba(images):
        return np.concatenate([session.run(None, {"images": images[i:i + batch_size]})[0]
                               for i in range(0, len(images), batch_size)])

    difference = float(np.abs(onnx_proba(X) - model.predict_proba(X)).max())  # also the warm-up
    rates = {"predict_proba": [], "onnxruntime": []}
    for _ in range(rounds):  # taking turns: a slow spell of a shared machine hits both
        for name, predict in (("predict_proba", model.predict_proba), ("onnxruntime", onnx_proba)):
            start = time.perf_counter()
            predict(X)
            rates[name].append(n / (time.perf_counter() - start))
    ours, theirs = (statistics.median(rates[name]) for name in ("predict_proba", "onnxruntime"))
    return {
        f"{backbone}@{size}": {
            "images": n, "export_seconds": round(export_seconds(), 1), "onnx_megabytes": round(megabytes, 1),
            "max_abs_difference_vs_predict_proba": difference, "target_max_abs_difference": 1e-4,
            "predict_proba_images_per_s": round(ours, 1), "onnxruntime_images_per_s": round(theirs, 1),
            "onnxruntime_speedup_vs_predict_proba": round(theirs / ours, 3),
        },
        "settings": {"batch_size": batch_size, "rounds": rounds, "head": "probe (freeze_depth='all')",
                     "onnxruntime": onnxruntime.__version__, "provider": "CPUExecutionProvider, default threads"},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--images", type=int, default=None, help="images to predict (default 512; 64 with --quick)")
    args = parser.parse_args()
    save("export", run(args.quick, n_images=args.images))
