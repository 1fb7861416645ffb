"""One object per modality (image, text, audio) behind one protocol (:class:`~.base.Modality`).

The estimators pick a modality once, from the backbone's registry entry
(:func:`for_backbone`), and hand it everything that depends on the kind of input:
the parameters it does not take, validating ``X`` at fit and against the fitted
signature, the complete source the network reads, the data config, and the frozen
feature network. They compare no modality strings themselves.
"""

from __future__ import annotations

from ..backbones._registry import backbone_modality
from .audio import AudioModality
from .base import Modality
from .image import ImageModality
from .text import TextModality

#: The modality objects, by the name a backbone's registry entry declares.
MODALITIES = {modality.name: modality for modality in (ImageModality(), TextModality(), AudioModality())}


def for_backbone(name: str) -> Modality:
    """The modality of the registered backbone ``name``."""
    return MODALITIES[backbone_modality(name)]


__all__ = ["MODALITIES", "AudioModality", "ImageModality", "Modality", "TextModality", "for_backbone"]
