"""What ``fit`` resolves from a fine-tuned estimator's training parameters, as one frozen object.

Like :class:`~sktransfer.fitting.spec.NetworkSpec` for the network, a
:class:`TrainingSpec` is resolved once in ``fit``, after every parameter check:
building the skorch net (:func:`~sktransfer.training.net.transfer_net`) reads it and
never the estimator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from ..engine.budgets import batch_size_for

#: ``optimizer`` names: the class and the keyword arguments it gets besides ``lr`` and
#: ``weight_decay``.
OPTIMIZERS = {
    "adamw": (torch.optim.AdamW, ()),
    "adam": (torch.optim.Adam, ()),
    "sgd": (torch.optim.SGD, (("momentum", 0.9), ("nesterov", True))),
}


@dataclass(frozen=True)
class TrainingSpec:
    """A resolved training configuration (the estimator's parameters of the same names;
    see :class:`~sktransfer.FineTunedClassifier`).

    ``batch_size`` is resolved by :func:`~sktransfer.engine.budgets.batch_size_for`,
    ``optimizer`` to a class with its ``optimizer_kwargs``, ``device``, ``seed`` and
    ``autocast`` come from the network's spec, and ``compile`` is a plain bool
    (``"auto"`` trains eagerly).
    """

    freeze_depth: Any
    head_init: str
    probe_C: float
    batchnorm_statistics: str
    head_epochs: int
    finetune_lr_scale: float
    max_epochs: int
    batch_size: int
    lr: float
    optimizer: type
    optimizer_kwargs: tuple
    weight_decay: float
    lr_schedule: str
    warmup_fraction: float
    backbone_lr_ratio: float
    augment: Optional[str]
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    compile: bool
    verbose: int
    seed: Optional[int]
    device: str
    autocast: Optional[torch.dtype]

    @classmethod
    def of(cls, params: dict, network) -> "TrainingSpec":
        """Resolve validated ``params`` (``get_params(deep=False)``) with the network's spec."""
        optimizer, optimizer_kwargs = (OPTIMIZERS[params["optimizer"]] if isinstance(params["optimizer"], str)
                                       else (params["optimizer"], ()))
        return cls(
            freeze_depth=params["freeze_depth"],
            head_init=params["head_init"],
            probe_C=float(params["probe_C"]),
            batchnorm_statistics=params["batchnorm_statistics"],
            head_epochs=int(params["head_epochs"]),
            finetune_lr_scale=float(params["finetune_lr_scale"]),
            max_epochs=int(params["max_epochs"]),
            batch_size=batch_size_for(params["batch_size"], network.torch_device, training=True),
            lr=float(params["lr"]),
            optimizer=optimizer,
            optimizer_kwargs=optimizer_kwargs,
            weight_decay=float(params["weight_decay"]),
            lr_schedule=params["lr_schedule"],
            warmup_fraction=float(params["warmup_fraction"]),
            backbone_lr_ratio=float(params["backbone_lr_ratio"]),
            augment=params["augment"],
            early_stopping=bool(params["early_stopping"]),
            validation_fraction=float(params["validation_fraction"]),
            n_iter_no_change=int(params["n_iter_no_change"]),
            compile=network.compile is True,
            verbose=int(params["verbose"]),
            seed=network.seed,
            device=network.device,
            autocast=network.autocast,
        )
