"""Reproducible randomness without touching the caller's global RNG state."""

from __future__ import annotations

import contextlib
from numbers import Integral

import numpy as np
import torch


def seed_from(random_state):
    """An int seed from ``random_state`` (None, int or ``np.random.RandomState``), or None."""
    if random_state is None:
        return None
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(random_state.randint(np.iinfo(np.int32).max))  # a validated RandomState


@contextlib.contextmanager
def seeded(random_state):
    """Seed torch inside the block when ``random_state`` is set; restore the RNG afterwards."""
    seed = seed_from(random_state)
    if seed is None:
        yield None
        return
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield seed
