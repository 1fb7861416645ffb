"""Out-of-memory back-off: a batch that does not fit runs as halves, then quarters...

Every forward (and backward) pass of the library goes through a
:class:`BatchBackoff`: feature extraction, prediction, training and validation.
On ``torch.OutOfMemoryError`` it frees the allocator's cache, doubles the
number of pieces each batch is cut into, warns once per halving, and runs the
batch again; the later batches of the same call keep the smaller size. Only a
batch of one image that still does not fit raises, with a message that says so.
Training accumulates the pieces' gradients, each scaled by its share of the
batch, so the optimizer takes the same step as for the whole batch (up to
floating-point rounding; BatchNorm in batch-statistics mode sees smaller batches).
"""

from __future__ import annotations

import math
import warnings
from typing import Callable

import torch


def _split(x, bounds: list) -> list:
    """``x`` (a tensor, a list of images, a dict of them, or None) cut at ``bounds``
    along the batch axis: every leaf at the same places, so images stay with their
    targets and weights."""
    pieces = len(bounds) - 1
    if x is None:
        return [None] * pieces
    if isinstance(x, dict):
        parts = {k: _split(v, bounds) for k, v in x.items()}
        return [{k: v[i] for k, v in parts.items()} for i in range(pieces)]
    return [x[bounds[i]:bounds[i + 1]] for i in range(pieces)]


def batch_len(x) -> int:
    if isinstance(x, dict):
        return batch_len(next(iter(x.values())))
    return len(x)


class BatchBackoff:
    """Runs ``fn`` over a batch in as many pieces as memory requires.

    Parameters
    ----------
    what : str
        The work, for messages (``"transform"``, ``"training"``...).
    """

    def __init__(self, what: str):
        self.what = what
        self.pieces = 1

    def __call__(self, fn: Callable, *batch, restart: Callable = None) -> list:
        """``[fn(*piece, share) for piece in pieces]``, ``share`` being the piece's fraction
        of the batch; on out-of-memory, ``restart()`` (if given), then again in twice as
        many pieces."""
        n = batch_len(batch[0])
        while True:
            pieces = min(self.pieces, n)
            bounds = [n * i // pieces for i in range(pieces + 1)]
            try:
                parts = zip(*(_split(x, bounds) for x in batch))
                return [fn(*part, batch_len(part[0]) / n) for part in parts]
            except torch.OutOfMemoryError as exc:
                size = math.ceil(n / pieces)
                if size <= 1:
                    raise RuntimeError(
                        f"out of memory during {self.what} even with one image per batch: the "
                        "network and one image do not fit on the device; use a smaller input_size, "
                        "precision='bfloat16', another device, or free memory used by other work"
                    ) from exc
                # leave the handler first: the traceback holds the failed pass's tensors
                message = str(exc).splitlines()[0] if str(exc) else "out of memory"
            self.pieces = pieces * 2
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            warnings.warn(
                f"out of memory during {self.what} with {size} images per batch ({message}); "
                f"continuing with {math.ceil(n / self.pieces)}",
                RuntimeWarning,
                stacklevel=3,
            )
            if restart is not None:
                restart()
