"""Peak memory of a CPU transform: 10,000 28x28 images at 224 px (target 6b).

Runs in a fresh subprocess. The baseline is the resident memory after the model is
built and warmed up; the peak is the kernel's high-water mark during ``transform``
(reset just before it through /proc/self/clear_refs). Holding the batch as float
at 224 px would take 10,000 x 3 x 224 x 224 x 4 bytes = 6.0 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

from _common import save

CHILD = textwrap.dedent("""
    import json, time, numpy as np
    from sktransfer import PretrainedFeatureExtractor

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

    X = np.random.default_rng(0).integers(0, 256, size=({n}, 28, 28), dtype=np.uint8)
    extractor = PretrainedFeatureExtractor({backbone!r}, weights=None, random_state=0, input_size=224,
                                           cache=False).fit(X[:1])
    extractor.transform(X[:64])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark
    base = status("VmRSS")
    start = time.perf_counter()
    features = extractor.transform(X)
    seconds = time.perf_counter() - start
    print(json.dumps({{"baseline_rss_bytes": base, "peak_rss_bytes": status("VmHWM"),
                      "seconds": round(seconds, 1), "shape": list(features.shape)}}))
""")


def run(quick=False, backbone="resnet18"):
    n = 2000 if quick else 10000
    out = subprocess.run([sys.executable, "-c", CHILD.format(n=n, backbone=backbone)],
                         capture_output=True, text=True, check=True)
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    extra = measured["peak_rss_bytes"] - measured["baseline_rss_bytes"]
    return {
        "backbone": backbone, "images": n, "input_size": 224, "device": "cpu",
        "extra_peak_gb": round(extra / 1e9, 3), "target_gb": 1.5,
        "float_dataset_at_224_would_be_gb": round(n * 3 * 224 * 224 * 4 / 1e9, 2),
        "transform_seconds": measured["seconds"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backbone", default="resnet18")
    args = parser.parse_args()
    save("peak_memory", run(args.quick, args.backbone))
