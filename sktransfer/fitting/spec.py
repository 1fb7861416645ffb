"""What ``fit`` resolves from an estimator's parameters, handed down as one frozen object.

The estimators validate their parameters, resolve what is left open (the seed
drawn from a ``RandomState``, the device behind ``"auto"``, the precision
behind ``"auto"``, a weights file's content) and pass a :class:`NetworkSpec`
to the layers below, which never read an estimator's attributes. Everything
in it is plain data: strings, numbers and tuples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any, Optional

import torch

from .device import resolve_device, resolve_precision
from .seeding import seed_from
from ..data.inputs import InputOptions
from ..backbones._registry import backbone_modality, local_model_folder
from ..backbones._weights import file_weights_id, is_weights_file


@dataclass(frozen=True)
class NetworkSpec:
    """A resolved network configuration.

    Parameters
    ----------
    backbone : str
        Registered backbone name.
    weights : Any
        As given (``"DEFAULT"``, a weights name, an enum member or None), or
        the absolute path of a weights file.
    weights_identity : str
        What identifies those weights: the weights argument as text, or a
        file's name and content digest (a file rewritten in place is another
        network).
    seed : int or None
        The seed drawn once from ``random_state``.
    stage : int, str or None
    pooling, resize : str
    input_size : (int, int) or None
    inputs : InputOptions
        How numeric arrays are read (``channel_axis``, ``image_shape``,
        ``value_range``).
    device : str
        The resolved device, e.g. ``"cpu"`` or ``"cuda:0"``.
    precision : str
        The resolved compute dtype name, e.g. ``"float32"`` or ``"bfloat16"``.
    compile : bool or "auto"
    batch_size : int or None
    max_length : int or None
        Tokens kept per text (text backbones); None keeps the model's own limit.
    modality : str
        What the backbone takes (its registry entry's modality), so that a fitted
        estimator finds its modality without the registry (a model folder gone).
    sample_rate : int or None
        The rate of waveform arrays (audio backbones).
    clip_seconds : float or None
        The length every clip is made (audio backbones); None keeps the backbone's.
    """

    backbone: str
    weights: Any
    weights_identity: str
    seed: Optional[int]
    stage: Any
    pooling: str
    resize: str
    input_size: Optional[tuple]
    inputs: InputOptions
    device: str
    precision: str
    compile: Any
    batch_size: Optional[int]
    max_length: Optional[int] = None
    modality: str = "image"
    sample_rate: Optional[int] = None
    clip_seconds: Optional[float] = None

    @classmethod
    def of(cls, params: dict) -> "NetworkSpec":
        """Resolve an estimator's validated parameters (``get_params(deep=False)``); draws
        the seed once. Hashes a weights file: call it after every parameter check."""
        device = resolve_device(params["device"])
        weights = params["weights"]
        if is_weights_file(weights):
            path = os.path.abspath(os.path.expanduser(os.fspath(weights)))
            weights, identity = path, (file_weights_id(Path(path)) if os.path.isfile(path) else path)
        else:
            identity = str(weights)
        size = params["input_size"]
        backbone = params["backbone"]
        folder = local_model_folder(backbone)
        if folder is not None:  # found from any working directory; rewritten in place, another model
            backbone = folder
            identity = f"{identity}:{folder_identity(Path(folder))}"
        image_shape, value_range = params["image_shape"], params["value_range"]
        return cls(
            backbone=backbone,
            weights=weights,
            weights_identity=identity,
            seed=seed_from(params["random_state"]),
            stage=params.get("stage"),
            pooling=params["pooling"],
            resize=params["resize"],
            input_size=None if size is None else ((size, size) if isinstance(size, Integral) else tuple(size)),
            inputs=InputOptions(
                params["channel_axis"],
                None if image_shape is None else tuple(image_shape),
                None if value_range is None else tuple(float(v) for v in value_range),
            ),
            device=str(device),
            precision=str(resolve_precision(params["precision"], device)).removeprefix("torch."),
            compile=params["compile"] if params["compile"] == "auto" else bool(params["compile"]),
            batch_size=params["batch_size"],
            max_length=params["max_length"],
            modality=backbone_modality(params["backbone"]),
            sample_rate=params["sample_rate"],
            clip_seconds=None if params["clip_seconds"] is None else float(params["clip_seconds"]),
        )

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.precision)

    @property
    def autocast(self) -> Optional[torch.dtype]:
        """Mixed-precision dtype for training on CUDA; None trains in float32."""
        if self.torch_device.type == "cuda" and self.dtype != torch.float32:
            return self.dtype
        return None

    def backbone_key(self) -> Optional[tuple]:
        """Identifies the loaded backbone (for the memo); None for unseeded random weights."""
        if self.weights is None and self.seed is None:
            return None
        return (self.backbone, self.weights_identity, self.seed if self.weights is None else None)


def folder_identity(folder: Path) -> str:
    """The files of a model folder by name, size and modification time, as a short digest
    (a folder rewritten in place, by a new training run, is another model)."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        h.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return h.hexdigest()[:16]
