"""Saving and loading: plain-data state, skops with a short trusted list, sktransfer.save/load,
atomic writes, concurrent cache writers, models fitted on a GPU loaded on a CPU."""

from __future__ import annotations

import io
import json
import multiprocessing
import pickle
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import sktransfer
from sktransfer import SKOPS_TRUSTED_TYPES, FineTunedClassifier, PretrainedFeatureExtractor, feature_cache
from sktransfer.persistence.atomic import atomic_path

from .conftest import TINY

sio = pytest.importorskip("skops.io")

PLAIN = (dict, list, tuple, str, int, float, bool, type(None), np.generic)


def _assert_plain(value, path="state"):
    if isinstance(value, np.ndarray):
        assert value.dtype != object or all(isinstance(v, str) for v in value.tolist()), path
        return
    assert isinstance(value, PLAIN), f"{path} is a {type(value).__name__}"
    if isinstance(value, dict):
        for key, item in value.items():
            _assert_plain(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _assert_plain(item, f"{path}[{i}]")


@pytest.fixture
def extractor(uint8_images):
    return PretrainedFeatureExtractor(TINY).fit(uint8_images)


@pytest.fixture
def fitted_classifier(data):
    X, y = data
    return FineTunedClassifier(TINY, max_epochs=2, batch_size=16, augment=None, random_state=0).fit(
        X, np.where(y == 1, "bright", "dark"))


def test_state_is_plain_data_and_each_tensor_is_stored_once(extractor, fitted_classifier):
    for estimator, network in ((extractor, extractor.model_), (fitted_classifier, fitted_classifier.net_.module_)):
        state = estimator.__getstate__()
        _assert_plain(state)
        arrays = state["_network"]["arrays"]
        assert sum(a.nbytes for a in arrays.values()) == sum(
            t.numel() * t.element_size() for t in network.state_dict().values())
    history = fitted_classifier.__getstate__()["_history"]
    assert [entry["epoch"] for entry in history] == [1, 2]
    # the estimator itself is untouched by being saved
    assert hasattr(extractor, "model_") and hasattr(fitted_classifier, "net_")


@pytest.mark.parametrize("dump, load", [(pickle.dumps, pickle.loads),
                                        (lambda e: sio.dumps(e), lambda b: sio.loads(b, trusted=SKOPS_TRUSTED_TYPES))])
def test_round_trips_give_identical_outputs(extractor, fitted_classifier, data, uint8_images, dump, load):
    X, _ = data
    loaded = load(dump(extractor))
    np.testing.assert_array_equal(loaded.transform(uint8_images), extractor.transform(uint8_images))
    loaded = load(dump(fitted_classifier))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted_classifier.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), fitted_classifier.predict(X))
    assert loaded.classes_.tolist() == ["bright", "dark"]
    assert len(loaded.net_.history) == 2
    assert loaded.get_params() == fitted_classifier.get_params()


def test_joblib_round_trip_and_refit_after_loading(fitted_classifier, data, tmp_path):
    X, y = data
    joblib.dump(fitted_classifier, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted_classifier.predict_proba(X))
    # a loaded model fits again as a fresh clone does (with a seed, bit for bit on a CPU)
    np.testing.assert_array_equal(loaded.fit(X, y).predict_proba(X),
                                  clone(fitted_classifier).fit(X, y).predict_proba(X))


def test_skops_pipelines_and_searches_need_only_the_documented_types(uint8_images, data):
    X, y = data
    pipe = make_pipeline(PretrainedFeatureExtractor(TINY), LogisticRegression()).fit(X, y)
    search = GridSearchCV(FineTunedClassifier(TINY, max_epochs=1, batch_size=16, augment=None),
                          {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    for model in (pipe, search.best_estimator_):
        payload = sio.dumps(model)
        assert set(sio.get_untrusted_types(data=payload)) <= set(SKOPS_TRUSTED_TYPES)
        loaded = sio.loads(payload, trusted=SKOPS_TRUSTED_TYPES)
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


class Payload:
    """What an attacker hides in a model file: it leaves a mark when it runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __setstate__(self, state):
        Path(state["marker"]).touch()

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


class Impostor:
    """Dumps a chosen state under its own name; the file is then renamed to an estimator."""

    def __init__(self, state):
        self.state = state

    def __getstate__(self):
        return self.state


def _skops_tampered(obj, edit) -> bytes:
    """``obj`` dumped by skops, with its schema passed through ``edit``."""
    source = zipfile.ZipFile(io.BytesIO(sio.dumps(obj)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "schema.json":
                content = json.dumps(edit(json.loads(content))).encode()
            target.writestr(name, content)
    return out.getvalue()


def _as_extractor(schema):
    schema["__class__"], schema["__module__"] = "PretrainedFeatureExtractor", "sktransfer.extractor"
    return schema


def test_malicious_skops_files_are_refused_and_nothing_runs(extractor, tmp_path):
    marker = tmp_path / "ran"
    state = extractor.__getstate__()

    # a payload in the weights, in a file that claims to be an extractor
    poisoned = dict(state, _network={**state["_network"], "arrays": {
        **state["_network"]["arrays"], "trunk.stem.0.weight": Payload(marker)}})
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="Payload"):
        sio.loads(_skops_tampered(Impostor(poisoned), _as_extractor), trusted=SKOPS_TRUSTED_TYPES)

    # a tampered type name: the estimator node now names a callable that runs commands
    def to_popen(schema):
        schema["__class__"], schema["__module__"] = "Popen", "subprocess"
        return schema

    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="subprocess.Popen"):
        sio.loads(_skops_tampered(extractor, to_popen), trusted=SKOPS_TRUSTED_TYPES)

    # the old layout: a nested pickle in bytes, which skops trusts; the estimator refuses it
    legacy = dict(state, _model_bytes=pickle.dumps(Payload(marker)))
    with pytest.raises(ValueError, match="nested torch pickle, which is never loaded"):
        sio.loads(_skops_tampered(Impostor(legacy), _as_extractor), trusted=SKOPS_TRUSTED_TYPES)

    # weights that are not numbers (bytes are trusted by skops): refused by name
    wrong = dict(state, _network={**state["_network"], "arrays": {
        **state["_network"]["arrays"], "trunk.stem.0.weight": pickle.dumps(Payload(marker))}})
    with pytest.raises(ValueError, match="'trunk.stem.0.weight' is a bytes, not a numeric array"):
        sio.loads(_skops_tampered(Impostor(wrong), _as_extractor), trusted=SKOPS_TRUSTED_TYPES)
    assert not marker.exists()


def _as_if_fitted_on_cuda(state):
    """What a fit on a GPU (in bfloat16) records."""
    state = dict(state, device_="cuda:0")
    state["_spec"] = dict(state["_spec"], device="cuda:0", precision="bfloat16")
    return state


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the load path of a CPU-only machine")
@pytest.mark.parametrize("kind", ["extractor", "classifier"])
def test_gpu_fitted_models_load_on_a_cpu(extractor, fitted_classifier, data, kind):
    X, _ = data
    estimator = extractor if kind == "extractor" else fitted_classifier
    state = _as_if_fitted_on_cuda(estimator.__getstate__())
    loaded = type(estimator).__new__(type(estimator))
    with pytest.warns(UserWarning, match="fitted on cuda:0, which is not available here"):
        loaded.__setstate__(state)
    assert loaded.device_ == torch.device("cpu") and loaded._spec.precision == "float32"
    if kind == "extractor":
        assert next(loaded.model_.trunk.parameters()).dtype == torch.float32
        np.testing.assert_array_equal(loaded.transform(X), extractor.transform(X))
    else:
        assert next(loaded.net_.module_.parameters()).device.type == "cpu"
        np.testing.assert_array_equal(loaded.predict_proba(X), fitted_classifier.predict_proba(X))


def test_save_and_load_round_trip(extractor, fitted_classifier, data, tmp_path):
    X, _ = data
    for estimator, output in ((extractor, "transform"), (fitted_classifier, "predict_proba")):
        path = sktransfer.save(estimator, tmp_path / "model.safetensors")
        loaded = sktransfer.load(path)
        assert type(loaded) is type(estimator) and loaded.get_params() == estimator.get_params()
        np.testing.assert_array_equal(getattr(loaded, output)(X), getattr(estimator, output)(X))
    assert sktransfer.load(path).classes_.tolist() == ["bright", "dark"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]  # no temporary left
    unfitted = FineTunedClassifier(TINY, head_init="probe", image_shape=(1, -1))
    loaded = sktransfer.load(sktransfer.save(unfitted, tmp_path / "unfitted.safetensors"))
    assert loaded.get_params() == unfitted.get_params() and not hasattr(loaded, "net_")


def test_save_file_is_safetensors_with_json_metadata(fitted_classifier, tmp_path):
    from safetensors import safe_open

    path = sktransfer.save(fitted_classifier, tmp_path / "model.safetensors")
    with safe_open(path, framework="np") as f:
        header = json.loads(f.metadata()["sktransfer"])
        names = list(f.keys())
    assert header["format"] == 1 and header["estimator"] == "FineTunedClassifier"
    assert header["backbone"] == TINY and header["weights_identity"] == "DEFAULT"
    assert header["sktransfer_version"] == sktransfer.__version__
    assert "state/_network/arrays/trunk.stem.0.weight" in names


def test_load_refuses_foreign_and_incompatible_files(fitted_classifier, tmp_path):
    from safetensors.numpy import save_file

    with pytest.raises(ValueError, match="is not a safetensors file"):
        (tmp_path / "model.pkl").write_bytes(pickle.dumps(fitted_classifier))
        sktransfer.load(tmp_path / "model.pkl")
    save_file({"w": np.zeros(3, np.float32)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not an sktransfer model"):
        sktransfer.load(tmp_path / "other.safetensors")
    path = sktransfer.save(fitted_classifier, tmp_path / "model.safetensors")
    from safetensors import safe_open

    with safe_open(path, framework="np") as f:
        header, tensors = json.loads(f.metadata()["sktransfer"]), {k: f.get_tensor(k) for k in f.keys()}
    header.update(format=99, sktransfer_version="9.0")
    save_file(tensors, tmp_path / "future.safetensors", metadata={"sktransfer": json.dumps(header)})
    with pytest.raises(ValueError, match=r"sktransfer 9.0 in file format 99; sktransfer .* reads format 1"):
        sktransfer.load(tmp_path / "future.safetensors")


def test_save_names_what_a_file_cannot_hold(data, tmp_path):
    X, y = data
    clf = FineTunedClassifier(TINY, random_state=np.random.RandomState(0))
    with pytest.raises(TypeError, match="random_state holds a RandomState"):
        sktransfer.save(clf, tmp_path / "model.safetensors")
    with pytest.raises(TypeError, match="not LogisticRegression"):
        sktransfer.save(LogisticRegression(), tmp_path / "model.safetensors")
    assert not list(tmp_path.iterdir())


def test_atomic_writes_keep_the_old_file_when_interrupted(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old model")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half a new")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_pickle_of_a_resnet18_classifier_is_about_its_weights(rng):
    X = rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    clf = FineTunedClassifier("resnet18", weights=None, max_epochs=1, batch_size=4, augment=None,
                              random_state=0).fit(X, np.arange(8) % 2)
    weights = sum(t.numel() * t.element_size() for t in clf.net_.module_.state_dict().values())
    assert len(pickle.dumps(clf)) <= 1.1 * weights


def _write_features(directory, seed):
    """One process's work: features of the same images into the same cache folder."""
    from .conftest import TINY  # registers the tiny backbone in the spawned process

    X = np.random.default_rng(0).integers(0, 255, (64, 16, 16, 3), dtype=np.uint8)
    for _ in range(3):
        sktransfer.feature_cache.clear()
        PretrainedFeatureExtractor(TINY, cache_dir=directory, batch_size=8).fit(X).transform(X[seed::2])
        sktransfer.feature_cache.clear()
        PretrainedFeatureExtractor(TINY, cache_dir=directory, batch_size=8).fit(X).transform(X)


def test_two_processes_writing_one_cache_dir_leave_no_corrupt_entry(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_features, args=(tmp_path, seed)) for seed in (0, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    files = list(tmp_path.rglob("*"))
    assert not [f for f in files if f.name.endswith(".tmp")]
    for f in files:
        if f.suffix == ".npy":
            np.load(f)  # every file whole
    X = np.random.default_rng(0).integers(0, 255, (64, 16, 16, 3), dtype=np.uint8)
    feature_cache.clear()
    cached = PretrainedFeatureExtractor(TINY, cache_dir=tmp_path).fit(X).transform(X)
    assert feature_cache.stats()["misses"] == 0
    fresh = PretrainedFeatureExtractor(TINY, cache=False).fit(X).transform(X)
    np.testing.assert_allclose(cached, fresh, rtol=1e-5, atol=1e-6)


def test_files_get_the_usual_permissions(extractor, tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        path = sktransfer.save(extractor, tmp_path / "model.safetensors")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_save_holds_class_weights_devices_and_torch_optimizers(data, tmp_path):
    X, y = data
    clf = FineTunedClassifier(TINY, max_epochs=1, batch_size=16, augment=None, class_weight={0: 1.0, 1: 2.0},
                              optimizer=torch.optim.SGD, device=torch.device("cpu"), random_state=0).fit(X, y)
    loaded = sktransfer.load(sktransfer.save(clf, tmp_path / "model.safetensors"))
    assert loaded.class_weight == {0: 1.0, 1: 2.0} and loaded.optimizer is torch.optim.SGD
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_loading_leaves_the_callers_random_state_alone(fitted_classifier):
    payload = pickle.dumps(fitted_classifier)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    pickle.loads(payload)
    assert torch.equal(torch.rand(3), expected)


def test_saved_models_rebuild_the_architecture_their_weights_need():
    from sktransfer.fitting.spec import NetworkSpec
    from sktransfer.persistence.state import rebuild_backbone

    for weights, tokens in (("IMAGENET1K_SWAG_E2E_V1", 577), ("IMAGENET1K_V1", 197)):
        spec = NetworkSpec.of(PretrainedFeatureExtractor("vit_b_16", weights=weights, device="cpu").get_params())
        with torch.device("meta"):
            module = rebuild_backbone(spec).module
        assert dict(module.named_parameters())["embedding.pos_embedding"].shape[1] == tokens
