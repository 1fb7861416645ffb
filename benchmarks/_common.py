"""Shared helpers for the benchmarks: machine identity, timing, results files."""

from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """What the figures were measured on."""
    info = {
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": date.today().isoformat(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_id() -> str:
    """File-name friendly id: the GPU model, or ``cpu-<n>core``."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0).lower().replace(" ", "-")
    return f"cpu-{os.cpu_count()}core"


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@contextmanager
def timer(device="cpu"):
    """``with timer(device) as t: ...`` then ``t()`` gives the seconds, GPU work included."""
    sync(device)
    start = time.perf_counter()
    elapsed = []
    yield lambda: elapsed[0]
    sync(device)
    elapsed.append(time.perf_counter() - start)


def save(name: str, result: dict, merge: bool = False) -> Path:
    """Merge ``result`` under ``name`` into ``results/<machine>.json`` and print it.

    A result measured on a subset of its dataset (``result["subset"]``) is kept
    under ``<name>_subset``, next to (not over) the full-data figure. With
    ``merge``, the keys of ``result`` replace those of the saved entry and the
    others stay (a benchmark run one dataset at a time).
    """
    if result.get("subset"):
        name += "_subset"
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{machine_id()}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["machine"] = machine()
    benchmarks = data.setdefault("benchmarks", {})
    benchmarks[name] = {**benchmarks.get(name, {}), **result} if merge else result
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(json.dumps({name: result}, indent=2))
    print(f"saved to {path}")
    return path
