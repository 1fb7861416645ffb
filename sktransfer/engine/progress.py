"""Progress display for long loops (tqdm when installed, plain lines otherwise)."""

from __future__ import annotations

import sys
import time


def progress(iterable, *, enabled: bool, desc: str):
    """Wrap ``iterable`` (with ``len``) in a progress display when ``enabled``."""
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _lines(iterable, desc)
    return tqdm(iterable, desc=desc, leave=False)


def _lines(iterable, desc):
    total = len(iterable)
    start = time.perf_counter()
    step = max(1, total // 10)
    for i, item in enumerate(iterable, 1):
        yield item
        if i % step == 0 or i == total:
            print(f"{desc}: {i}/{total} batches, {time.perf_counter() - start:.1f} s",
                  file=sys.stderr, flush=True)
