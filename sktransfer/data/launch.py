"""Which process this is, when a launcher runs one script in several processes.

``torchrun`` (``python -m torch.distributed.run``), and the launchers built on it, start
every process of a data-parallel run with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in
its environment; a script may also have initialized a ``torch.distributed`` process
group itself. Read here, and nowhere else, so that the loader (which share of the data a
process reads), the device (which GPU), the feature cache and the writers (who writes)
agree. Outside a launcher this process is the only one, and the main one.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch.distributed as dist


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def launched() -> bool:
    """Whether this process is one of a launched run: a ``torch.distributed`` process group
    is initialized, or the launcher's ``RANK`` and ``WORLD_SIZE`` are set."""
    return _initialized() or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def rank() -> int:
    """This process's rank among the launched ones; 0 outside a launcher."""
    if _initialized():
        return dist.get_rank()
    return int(os.environ["RANK"]) if launched() else 0


def local_rank() -> Optional[int]:
    """This process's rank among those of its machine (``LOCAL_RANK``), or None outside a
    launcher. A process group started without it (``torch.multiprocessing.spawn`` on one
    machine) counts its global rank."""
    if not launched():
        return None
    return int(os.environ.get("LOCAL_RANK", rank()))


def is_main_process() -> bool:
    """Whether this process is the one that writes: always outside a launcher, rank 0
    under one.

    Under ``torchrun`` every process runs the whole script; model files
    (:func:`sktransfer.save`), ``cache_dir`` features and messages come from rank 0
    only. A script guards its own writes and prints the same way.

    Returns
    -------
    main : bool

    Examples
    --------
    >>> from sktransfer import is_main_process
    >>> is_main_process()  # not launched by torchrun
    True
    """
    return rank() == 0


def share(items, rank: int, world_size: int) -> np.ndarray:
    """Piece ``rank`` of ``items`` cut into ``world_size`` contiguous, nearly equal pieces
    (the first ``len(items) % world_size`` one longer): in rank order, the pieces are
    ``items`` again."""
    return np.array_split(np.asarray(items), world_size)[rank]


def share_sizes(n: int, world_size: int) -> list:
    """The length of every process's :func:`share` of ``n`` items, in rank order."""
    return [n // world_size + (r < n % world_size) for r in range(world_size)]
