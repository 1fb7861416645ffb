"""Loaded backbones kept for the next fit, so that clones in a search do not reload weights.

Reading and decoding pretrained weights (and random initialization of a large
network) costs more than copying a network in memory. The memo keeps the
last few backbones as loaded, untouched, and hands every fit its own deep
copy: a fitted estimator owns its network, and nothing it does (casting,
training, editing weights) reaches the memo or another estimator.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Callable, Optional

from ._seeding import seeded
from .backbones import Backbone, get_backbone


class BackboneMemo:
    """The last ``max_entries`` loaded backbones, by :meth:`NetworkSpec.backbone_key`.

    Parameters
    ----------
    max_entries : int, default=2
    """

    def __init__(self, max_entries: int = 2):
        self.max_entries = max_entries
        self.loads = 0  # backbones built by a provider, for tests and benchmarks
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Optional[tuple], load: Callable[[], Backbone]) -> Backbone:
        """A private copy of the backbone for ``key``, loading it with ``load()`` on a miss;
        a None key loads every time and keeps nothing."""
        with self._lock:
            kept = self._entries.get(key) if key is not None else None
            if kept is not None:
                self._entries.move_to_end(key)
        if kept is None:
            kept = load()
            with self._lock:
                self.loads += 1
                if key is None:
                    return kept
                self._entries[key] = kept
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        # one deepcopy of the whole dataclass keeps ``stages`` pointing into the copied module
        return copy.deepcopy(kept)

    def clear(self) -> None:
        """Forget every kept backbone and reset the load counter."""
        with self._lock:
            self._entries.clear()
            self.loads = 0


backbone_memo = BackboneMemo()


def load_backbone(spec, memo: bool = True) -> Backbone:
    """The backbone ``spec`` names, seeded by ``spec.seed``; through the memo when ``memo``."""

    def load():
        with seeded(spec.seed):
            return get_backbone(spec.backbone, weights=spec.weights)

    backbone = backbone_memo.get(spec.backbone_key(), load) if memo else load()
    if backbone.modality != "image":
        raise ValueError(f"backbone {spec.backbone!r} takes {backbone.modality}, not images")
    return backbone
