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

from .seeding import seeded
from ..backbones import Backbone, get_backbone
from ..backbones._registry import backbone_factory


class BackboneMemo:
    """The last ``max_entries`` loaded backbones, by the factory that built them and
    :meth:`NetworkSpec.backbone_key` (a name registered again is another backbone).

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
        if key is None:
            with self._lock:
                self.loads += 1
            return load()
        # held while loading: parallel fits of clones (threads) load the weights once
        with self._lock:
            kept = self._entries.get(key)
            if kept is None:
                kept = self._entries[key] = load()
                self.loads += 1
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
            # one deepcopy of the whole dataclass keeps ``stages`` pointing into the copied module
            return copy.deepcopy(kept)

    def clear(self) -> None:
        """Forget every kept backbone and reset the load counter."""
        with self._lock:
            self._entries.clear()
            self.loads = 0


backbone_memo = BackboneMemo()


def load_backbone(spec, memo: bool = True, modality: str = "image") -> Backbone:
    """The backbone ``spec`` names, seeded by ``spec.seed``; through the memo when ``memo``;
    a backbone of another ``modality`` than the caller takes raises."""

    def load():
        with seeded(spec.seed):
            return get_backbone(spec.backbone, weights=spec.weights)

    key = spec.backbone_key()
    key = None if key is None or not memo else (backbone_factory(spec.backbone), *key)
    backbone = backbone_memo.get(key, load)
    if backbone.modality != modality:
        raise ValueError(f"backbone {spec.backbone!r} takes {backbone.modality}, not {modality}")
    return backbone
