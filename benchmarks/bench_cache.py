"""The feature cache's own costs (issue 20): reading a checked ``cache_dir``, and stepping aside.

1. ``warm``: 2,000 images (32x32 RGB) through ResNet-18 at 32 px (random weights, seeded):
   ``transform`` with the cache off, cold (computing and writing a ``cache_dir``), warm in
   memory, and warm on disk only (a new session: memory emptied, every row read back from
   the ``cache_dir`` and checked against its checksum). Run it on an older checkout with
   ``--label before`` (``PYTHONPATH=<checkout>``) to measure what verification costs.
2. ``tiny``: a network cheaper than the cache (one 3x3 convolution on 8x8 digits): 200
   ``transform`` calls on 500 new images each (no hit is possible), cache on against off,
   taking turns call by call in the same process. The cache must step aside (target
   >= 0.98x over the whole run, its first calls, which measure, included).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time

import numpy as np
import torch
from torch import nn

from _common import save
from sktransfer import DataConfig, PretrainedFeatureExtractor, feature_cache, register_backbone
from sktransfer.backbones import sequential_backbone

TINY = "bench/one-conv"


def _one_conv(name, weights):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        stage = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    return sequential_backbone([("conv", stage)], num_features=8, stage_formats=("NCHW",),
                               data_config=DataConfig((8, 8), mean=(0.5,) * 3, std=(0.25,) * 3),
                               weights_id="bench:fixed")


register_backbone(TINY, _one_conv, overwrite=True)


def _seconds(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def warm(n=2000):
    X = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    params = {"weights": None, "random_state": 0, "input_size": 32, "device": "cpu", "compile": False}
    off = PretrainedFeatureExtractor("resnet18", cache=False, **params).fit(X)
    with tempfile.TemporaryDirectory() as folder:
        on = PretrainedFeatureExtractor("resnet18", cache_dir=folder, **params).fit(X)
        feature_cache.clear()
        start = time.perf_counter()
        on.transform(X)
        cold = time.perf_counter() - start
        memory = _seconds(lambda: on.transform(X))

        def from_disk():
            feature_cache.clear()
            on.transform(X)

        disk = _seconds(from_disk)
    uncached = _seconds(lambda: off.transform(X), repeat=2)
    return {
        "settings": {"images": n, "backbone": "resnet18", "input_size": 32, "device": "cpu"},
        "cache_off_seconds": round(uncached, 3), "cold_seconds": round(cold, 3),
        "warm_memory_seconds": round(memory, 4), "warm_disk_seconds": round(disk, 4),
        "warm_disk_us_per_image": round(disk / n * 1e6, 1),
        "warm_disk_speedup_vs_cache_off": round(uncached / disk, 1),
        "cold_ratio_vs_cache_off": round(uncached / cold, 3),
    }


def tiny(calls=200, per_call=500):
    from sklearn.datasets import load_digits

    digits = load_digits().images.astype(np.float32)
    rng = np.random.default_rng(0)

    def new_images():  # digits with fresh noise: never seen by the cache
        return np.clip(digits[rng.integers(0, len(digits), per_call)] + rng.random((per_call, 8, 8)), 0, 17)

    params = {"value_range": (0, 17), "device": "cpu", "compile": False}
    on = PretrainedFeatureExtractor(TINY, **params).fit(new_images())
    off = PretrainedFeatureExtractor(TINY, cache=False, **params).fit(new_images())
    feature_cache.clear()
    # a full garbage collection scans every object torch and scikit-learn made (about a fifth
    # of a second here) and lands in whichever call crosses the threshold: frozen, it scans
    # only what the timed calls make
    gc.collect()
    gc.freeze()
    times = {"on": [], "off": []}
    sides = [("on", on), ("off", off)]
    for call in range(calls):  # taking turns call by call, each going first every other call
        X = new_images()
        for name, extractor in sides[::1 if call % 2 else -1]:
            start = time.perf_counter()
            extractor.transform(X)
            times[name].append(time.perf_counter() - start)
    gc.unfreeze()
    on_s, off_s = sum(times["on"]), sum(times["off"])
    return {
        "settings": {"backbone": "one 3x3 convolution, 8 channels", "input_size": 8, "calls": calls,
                     "images_per_call": per_call, "hits_possible": False},
        "cache_on_seconds": round(on_s, 3), "cache_off_seconds": round(off_s, 3),
        "ratio_vs_cache_off": round(off_s / on_s, 3), "target_ratio": 0.98,
        "median_call_ratio_vs_cache_off": round(float(np.median(times["off"]) / np.median(times["on"])), 3),
        "first_call_ratio_vs_cache_off": round(times["off"][0] / times["on"][0], 3),
    }


def run(quick=False, label="after"):
    return {label: {"warm": warm(500 if quick else 2000), "tiny": tiny(20 if quick else 200)}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--label", default="after", help="the key the figures are saved under")
    args = parser.parse_args()
    save("cache_overhead", run(args.quick, args.label), merge=True)
