"""On a dask.distributed cluster (a LocalCluster of 2 worker processes): grid searches through
joblib's dask backend give the local results, also when a worker dies in the middle;
extraction over a dask array or a dask dataframe column matches the in-memory transform
and builds the backbone once per worker, not once per partition."""

import gc
import importlib
import logging
import os
import pickle
import signal
import threading
import time
import weakref

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor
from tests.conftest import TINY

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

GRID = {"freeze_depth": [0, 1, "all"], "lr": [1e-3, 3e-3]}


class RegisterTestBackbones(distributed.WorkerPlugin):
    """Worker processes (a restarted one too) import the tests' conftest, which registers
    the tiny backbone, as an installed plugin package would be imported."""

    def setup(self, worker):
        importlib.import_module("tests.conftest")


def _memo_loads():
    from sktransfer.fitting.memo import backbone_memo

    return backbone_memo.loads


def _clear_memo():
    from sktransfer.fitting.memo import backbone_memo

    backbone_memo.clear()


@pytest.fixture(scope="module")
def client():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        client.register_plugin(RegisterTestBackbones())
        yield client


def _search(X, y, **kwargs):
    return GridSearchCV(FineTunedClassifier(TINY, max_epochs=2, random_state=0), GRID, cv=2, **kwargs).fit(X, y)


def test_a_grid_search_on_the_cluster_equals_the_local_one(client, data):
    X, y = data
    local = _search(X, y)
    with joblib.parallel_backend("dask"):
        remote = _search(X, y, n_jobs=-1)
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(remote.best_estimator_.predict_proba(X), local.best_estimator_.predict_proba(X))
    assert sum(client.run(_memo_loads).values()) > 0  # the fits ran on the workers


def test_a_worker_killed_during_a_search_is_replaced_and_the_result_is_the_same(client, data):
    X, y = data
    local = _search(X, y)
    pids = client.run(os.getpid)
    outcome = {}

    def search():
        try:
            with joblib.parallel_backend("dask"):
                outcome["search"] = _search(X, y, n_jobs=-1)
        except BaseException as exc:  # reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=search)
    thread.start()
    deadline = time.monotonic() + 120
    while not any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(next(iter(pids.values())), signal.SIGKILL)  # mid-search: tasks are running
    thread.join(timeout=600)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    client.wait_for_workers(2, timeout=120)
    assert len(set(client.run(os.getpid).values()) - set(pids.values())) == 1  # the nanny started a new one
    assert outcome["search"].best_params_ == local.best_params_
    np.testing.assert_array_equal(outcome["search"].cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])


def test_extraction_over_a_dask_array_builds_the_backbone_once_per_worker(client, data):
    X, _ = data
    extractor = PretrainedFeatureExtractor(TINY).fit(X)
    images = da.from_array(X, chunks=(12, 16, 16, 3))  # 4 partitions
    client.run(_clear_memo)
    shared = client.scatter(extractor, broadcast=True)  # one copy per worker, not one per task
    features = images.map_blocks(lambda block, model: model.transform(block), shared, drop_axis=[2, 3],
                                 chunks=(images.chunks[0], (len(extractor.get_feature_names_out()),)), dtype=np.float32)
    np.testing.assert_allclose(features.compute(), extractor.transform(X), atol=1e-6)
    assert sorted(client.run(_memo_loads).values()) == [1, 1]

    # also when each task carries its own copy of the extractor (no scatter): the copies
    # unpickled in one worker share the architecture built once
    client.run(_clear_memo)
    naive = images.map_blocks(extractor.transform, drop_axis=[2, 3],
                              chunks=(images.chunks[0], (len(extractor.get_feature_names_out()),)), dtype=np.float32)
    np.testing.assert_allclose(naive.compute(), extractor.transform(X), atol=1e-6)
    assert max(client.run(_memo_loads).values()) == 1


def test_a_fitted_estimator_pickles_without_its_data_and_frees_its_network(data):
    X, y = data
    X = np.repeat(X, 10, axis=0)
    y = np.repeat(y, 10)
    clf = FineTunedClassifier(TINY, max_epochs=1, random_state=0).fit(X, y)
    weights = sum(p.numel() * 4 for p in clf.net_.module_.state_dict().values())
    size = len(pickle.dumps(clf))
    assert size < weights + 64 * 1024 < X.nbytes / 4  # the weights and little else
    network = weakref.ref(clf.net_.module_)
    del clf
    gc.collect()
    assert network() is None  # nothing global holds a fitted network: memory goes back between fits


def test_workers_spread_over_the_gpus_and_resolve_auto_on_their_machine(client):
    from sktransfer.fitting.device import resolve_device, worker_gpu_index

    assert [worker_gpu_index(i, 4) for i in range(6)] == [0, 1, 2, 3, 0, 1]
    assert worker_gpu_index("gpu-worker-a", 3) == worker_gpu_index("gpu-worker-a", 3) < 3
    # each worker resolves "auto" in its task: the CPU here, its own GPU on a multi-GPU machine
    import torch

    n_gpus = torch.cuda.device_count()
    for address, info in client.scheduler_info()["workers"].items():
        device = client.submit(lambda: str(resolve_device("auto")), workers=[address], pure=False).result()
        expected = "cpu" if n_gpus == 0 else "cuda" if n_gpus == 1 else f"cuda:{worker_gpu_index(info['name'], n_gpus)}"
        assert device == expected

