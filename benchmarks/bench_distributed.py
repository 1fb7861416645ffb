"""Data-parallel fine-tuning through torchrun (issue 25): training images/s of one
``FineTunedClassifier`` fit in a plain process, and launched by ``torch.distributed.run``
in 1 and 2 processes on the CPU (gloo; each process gets its share of the cores); on a
GPU, the distributed path's single-GPU overhead (one process through DDP against the
plain fit: target >= 0.97x) and, with several GPUs, one process per GPU.

Each run is a fresh process (or launch) fitting random-init weights on synthetic images;
its throughput is the training images of an epoch over the median duration of the epochs
after the first (skorch's ``dur``: imports, the process group and warm-up left out). The
configurations take turns, ``--repeats`` times, and the best turn is kept (on a shared
machine, other work only ever slows a run down).

    python benchmarks/bench_distributed.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from _common import save

HERE = Path(__file__).resolve()


def worker(out, device, backbone, size, n, batch, epochs):
    """One fit (in every process of a launch); rank 0 writes its throughput to ``out``."""
    import numpy as np

    from sktransfer import FineTunedClassifier
    from sktransfer.data.launch import is_main_process

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    y = np.arange(n) % 10
    model = FineTunedClassifier(backbone, weights=None, input_size=size, batch_size=batch, max_epochs=epochs,
                                augment=None, device=device, random_state=0, verbose=0).fit(X, y)
    history = model.net_.history
    seconds = history[1:, "dur"]
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else None
    if is_main_process():
        Path(out).write_text(json.dumps({
            "images_per_s": round(n / statistics.median(seconds), 1),
            "epoch_seconds": [round(s, 3) for s in seconds],
            "batches_per_epoch_per_process": history[-1, "train_batch_count"],
            "world_size": world,
        }))


def _run(processes, device, settings, threads):
    """Images/s of one fit: plain (``processes`` None) or launched in ``processes``."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        # one argument, no dashes: torchrun's parser reads options after the script too
        args = [str(HERE), "worker", json.dumps({"out": str(out), "device": device, **settings})]
        command = [sys.executable, *args] if processes is None else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), *args]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        subprocess.run(command, check=True, env=env, capture_output=True, text=True)
        return json.loads(out.read_text())


def _compare(device, runs, settings, repeats, threads):
    """``runs`` ({name: processes or None}) taking turns; the best images/s of each."""
    results = {name: [] for name in runs}
    for _ in range(repeats):
        for name, processes in runs.items():
            results[name].append(_run(processes, device, settings, threads(processes)))
    return {name: {"images_per_s": max(r["images_per_s"] for r in rs),
                   "runs": rs} for name, rs in results.items()}


def run(quick=False, repeats=None):
    repeats = repeats or (1 if quick else 3)
    cores = os.cpu_count()
    cpu_settings = {"backbone": "resnet18", "size": 64, "n": 128 if quick else 512, "batch": 32,
                    "epochs": 2 if quick else 3}
    cpu = _compare("cpu", {"plain": None, "torchrun_1_process": 1, "torchrun_2_processes": 2}, cpu_settings,
                   repeats, threads=lambda processes: max(1, cores // (processes or 1)))
    result = {
        "settings": {**cpu_settings, "repeats": repeats, "cpu_threads": "the cores shared between the processes"},
        "cpu": {
            **cpu,
            "speedup_2_vs_1_process": round(cpu["torchrun_2_processes"]["images_per_s"]
                                            / cpu["torchrun_1_process"]["images_per_s"], 3),
            "torchrun_1_process_ratio_vs_plain": round(cpu["torchrun_1_process"]["images_per_s"]
                                                       / cpu["plain"]["images_per_s"], 3),
        },
    }
    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        gpu_settings = {"backbone": "resnet50", "size": 224, "n": 1024 if quick else 8192, "batch": 64,
                        "epochs": 2 if quick else 3}
        runs = {"plain": None, "torchrun_1_process": 1, **({f"torchrun_{gpus}_processes": gpus} if gpus > 1 else {})}
        gpu = _compare("auto", runs, gpu_settings, repeats, threads=lambda processes: max(1, cores // gpus))
        result["gpu"] = {
            "settings": gpu_settings,
            **gpu,
            "torchrun_1_process_ratio_vs_plain": round(gpu["torchrun_1_process"]["images_per_s"]
                                                       / gpu["plain"]["images_per_s"], 3),
            "target": "torchrun_1_process_ratio_vs_plain >= 0.97",
        }
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(**json.loads(sys.argv[2]))
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        parser.add_argument("--quick", action="store_true")
        parser.add_argument("--repeats", type=int)
        args = parser.parse_args()
        save("distributed", run(args.quick, args.repeats))
