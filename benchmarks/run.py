"""Run every benchmark and write results/<machine>.json and the table in README.md.

    python benchmarks/run.py            # the full suite (GPU parts are skipped without CUDA)
    python benchmarks/run.py --quick    # smaller inputs, for a smoke test
    python benchmarks/run.py --only transform grid_search_cache

Every figure is a ratio against a raw-PyTorch (or scikit-learn) reference that the
benchmark runs itself in the same process.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import bench_audio
import bench_cache
import bench_dask
import bench_distributed
import bench_export
import bench_frozen_head
import bench_grid_search
import bench_memory
import bench_quality
import bench_regression
import bench_small_data
import bench_text
import bench_transform
import finetune_fashion_mnist
from _common import RESULTS, save

SUITE = {
    "transform": bench_transform.run,
    "transform_gpu": bench_transform.run_gpu,
    "peak_memory": bench_memory.run,
    "grid_search_cache": bench_grid_search.run,
    "cache_overhead": bench_cache.run,
    "frozen_head_vs_logistic_regression": bench_frozen_head.run,
    "finetune_fashion_mnist": finetune_fashion_mnist.run,
    "text_transform": bench_text.run,
    "regression_rotation": bench_regression.run,
    "speech_digits": bench_audio.run,
    "small_data": bench_small_data.run,
    "dask": bench_dask.run,
    "distributed": bench_distributed.run,
    "export": bench_export.run,
    "quality": bench_quality.run,  # hours on a CPU: last
}
# tables of their own in README.md, not figures of the ratio table (None: a section written by hand)
OWN_TABLE = {"quality": bench_quality.write_table, "small_data": None}

README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _rows(machine_file: Path):
    data = json.loads(machine_file.read_text())
    machine = data["machine"].get("gpu") or f"{data['machine']['cpu_count']}-core CPU"
    for name, result in sorted(data["benchmarks"].items()):
        if name in OWN_TABLE:
            continue
        for path, value in _ratios(result):
            yield f"| {machine} | {name} | {path} | {value} |"


def _ratios(result, prefix=""):
    """The headline figures of a result: ratios, speedups, accuracies, memory."""
    if not isinstance(result, dict):
        return
    for key, value in result.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _ratios(value, path + ".")
        elif any(word in key for word in ("ratio", "speedup", "accuracy", "extra_peak_gb", "images_through")):
            yield path, value


def write_table():
    rows = [row for path in sorted(RESULTS.glob("*.json")) for row in _rows(path)]
    table = "\n".join([BEGIN, "| machine | benchmark | figure | value |", "|---|---|---|---|", *rows, END])
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    README.write_text(text[:start] + table + text[end:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", choices=sorted(SUITE))
    args = parser.parse_args(argv)
    for name in args.only or SUITE:
        result = SUITE[name](quick=args.quick)
        save(name, result)
        if OWN_TABLE.get(name) and not args.quick:
            OWN_TABLE[name]()
    write_table()


if __name__ == "__main__":
    main()
