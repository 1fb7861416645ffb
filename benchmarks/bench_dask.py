"""Dask against in-process runs, in one process (docs/scaling.rst's recipes).

- extraction: EfficientNet-Lite0 features of scikit-learn's digits, ``transform`` in
  this process against a LocalCluster (one process and thread per core; a GPU worker
  per GPU) running it partition by partition on a scattered extractor;
- grid search: ``GridSearchCV(FineTunedClassifier)`` over ``freeze_depth``, joblib's
  default backend against ``parallel_backend("dask")`` with ``n_jobs=-1``.

Ratios are in-process seconds over cluster seconds (above 1: the cluster is faster);
the cluster's start-up is timed apart. On a 2-core CPU the cluster cannot beat torch's
own two threads: the figure to watch is the overhead. On a GPU machine the target is
one GPU worker's extraction at >= 0.8x the in-process throughput.

    python benchmarks/bench_dask.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from _common import save


def _cluster(n_workers):
    from distributed import Client, LocalCluster

    # the nanny starts workers with OMP_NUM_THREADS=1: one torch thread per worker process
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=None)
    return cluster, Client(cluster)


def extraction(client, images, input_size, device):
    import dask.array as da

    from sktransfer import PretrainedFeatureExtractor

    extractor = PretrainedFeatureExtractor("efficientnet_lite0", input_size=input_size, device=device,
                                           cache=False).fit(images[:1])
    extractor.transform(images[:64])  # warm-up
    start = time.perf_counter()
    local = extractor.transform(images)
    in_process = time.perf_counter() - start

    chunks = da.from_array(images, chunks=(256,) + images.shape[1:])
    shared = client.scatter(extractor, broadcast=True)
    width = len(extractor.get_feature_names_out())
    features = chunks.map_blocks(lambda block, model: model.transform(block), shared,
                                 drop_axis=list(range(2, images.ndim)), chunks=(chunks.chunks[0], (width,)),
                                 dtype=np.float32)
    features[:64].compute()  # warm-up: the workers build the network
    start = time.perf_counter()
    remote = features.compute()
    on_cluster = time.perf_counter() - start
    return {
        "images": len(images), "input_size": input_size,
        "in_process_seconds": round(in_process, 2), "cluster_seconds": round(on_cluster, 2),
        "in_process_images_per_s": round(len(images) / in_process, 1),
        "cluster_images_per_s": round(len(images) / on_cluster, 1),
        "cluster_vs_in_process_ratio": round(in_process / on_cluster, 3),
        "max_abs_diff": float(np.abs(remote - local).max()),
    }


def grid_search(images, y):
    import joblib
    from sklearn.model_selection import GridSearchCV

    from sktransfer import FineTunedClassifier

    def search(**kwargs):
        model = FineTunedClassifier("efficientnet_lite0", input_size=32, max_epochs=2, augment=None,
                                    random_state=0)
        start = time.perf_counter()
        fitted = GridSearchCV(model, {"freeze_depth": [0, 3, "all"]}, cv=2, **kwargs).fit(images, y)
        return fitted, time.perf_counter() - start

    local, in_process = search()
    with joblib.parallel_backend("dask"):
        remote, on_cluster = search(n_jobs=-1)
    # the workers run one torch thread each; float sums depend on the thread count, so
    # the run to equal is a local one with one thread
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one_thread, _ = search()
    finally:
        torch.set_num_threads(threads)
    scores = remote.cv_results_["mean_test_score"]
    return {
        "fits": 7, "images": len(images),
        "in_process_seconds": round(in_process, 1), "cluster_seconds": round(on_cluster, 1),
        "cluster_vs_in_process_ratio": round(in_process / on_cluster, 3),
        "same_scores_as_local_1_thread": bool(np.array_equal(scores, one_thread.cv_results_["mean_test_score"])),
        "same_best_params_as_local_1_thread": remote.best_params_ == one_thread.best_params_,
        f"max_score_diff_vs_local_{threads}_threads": float(np.abs(scores - local.cv_results_["mean_test_score"]).max()),
    }


def run(quick=False):
    from sktransfer.datasets import load_digits_images

    digits = load_digits_images()
    n = 600 if quick else len(digits.images)
    images, y = digits.images[:n], digits.target[:n]
    gpus = torch.cuda.device_count()
    n_workers = gpus or os.cpu_count()
    start = time.perf_counter()
    cluster, client = _cluster(n_workers)
    startup = time.perf_counter() - start
    try:
        result = {"workers": n_workers, "worker_kind": "GPU" if gpus else "CPU process, 1 thread",
                  "cluster_startup_seconds": round(startup, 1), "subset": quick}
        result["extraction"] = extraction(client, images, 112, "auto")
        if not gpus:
            result["grid_search"] = grid_search(images[: 300 if quick else 600], y[: 300 if quick else 600])
    finally:
        client.close()
        cluster.close()
    if gpus:  # one GPU worker against this process on the same GPU, at the weights' size
        cluster, client = _cluster(1)
        try:
            big = np.repeat(images, max(1, 20000 // n), axis=0)
            result["one_gpu_worker_extraction_224px"] = extraction(client, big, 224, "cuda")
        finally:
            client.close()
            cluster.close()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    save("dask", run(quick=parser.parse_args().quick))
