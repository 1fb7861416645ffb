"""What ``fit`` resolves from a fine-tuned estimator's training parameters, as one frozen object.

Like :class:`~sktransfer.fitting.spec.NetworkSpec` for the network, a
:class:`TrainingSpec` is resolved once in ``fit``, after every parameter check:
building the skorch net (:func:`~sktransfer.training.net.transfer_net`) reads it and
never the estimator.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional, Union

import torch

from ..data.loader import num_batches
from ..engine.budgets import batch_size_for

#: Fewer optimizer steps than this through the backbone and fine-tuning from a random head
#: at the full rate ends below the probe (600 Fashion-MNIST images, 18 steps: 0.616 against
#: 0.706), where from 25 steps it did not (speech, 25: 0.894 against 0.731; Fashion-MNIST,
#: 36: 0.740; benchmarks/README.md): ``"auto"`` then starts from the probe and moves the
#: backbone at :data:`GENTLE_RATIO` of the head's rate.
MIN_BACKBONE_STEPS = 20
GENTLE_RATIO = 0.1

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

    ``head_init`` and ``backbone_lr_ratio`` may be ``"auto"`` until :meth:`resolved`
    settles them for the training set; ``batch_size`` is resolved by
    :func:`~sktransfer.engine.budgets.batch_size_for`,
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
    backbone_lr_ratio: Union[float, str]
    augment: Optional[str]
    ema_decay: Optional[float]
    mixup_alpha: float
    cutmix_alpha: float
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    compile: bool
    verbose: int
    seed: Optional[int]
    device: str
    autocast: Optional[torch.dtype]

    @property
    def mixes(self) -> bool:
        """Whether training batches are mixed (mixup or cutmix)."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def backbone_steps(self, n_train: int, processes: int = 1) -> int:
        """Optimizer steps through the backbone on ``n_train`` samples (a data-parallel fit
        of ``processes`` steps once per that many batches)."""
        return (self.max_epochs - self.head_epochs) * num_batches(n_train, self.batch_size * processes, True)

    def few_steps(self, n_train: Optional[int], processes: int = 1) -> bool:
        """Whether the backbone takes fewer than :data:`MIN_BACKBONE_STEPS` steps (None: unknown, no)."""
        return n_train is not None and self.backbone_steps(n_train, processes) < MIN_BACKBONE_STEPS

    def resolved(self, n_train: Optional[int], processes: int = 1, continuing: bool = False) -> "TrainingSpec":
        """This spec with ``"auto"`` settled for ``n_train`` training samples: with too few
        steps to move the backbone (:meth:`few_steps`), train it at :data:`GENTLE_RATIO` of
        the head's rate and start from the probe (not when continuing a fitted head, nor
        under a backbone rate above that); otherwise a random head and one rate. A warm
        start settles for its own steps."""
        few = self.few_steps(n_train, processes)
        ratio = self.backbone_lr_ratio
        if ratio == "auto":
            ratio = GENTLE_RATIO if few else 1.0
        head = self.head_init
        if head == "auto":  # a probe head under a full-rate backbone in a short fit wrecks it
            head = "probe" if few and not continuing and ratio <= GENTLE_RATIO else "random"
        return replace(self, head_init=head, backbone_lr_ratio=ratio)

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
            backbone_lr_ratio=(params["backbone_lr_ratio"] if params["backbone_lr_ratio"] == "auto"
                               else float(params["backbone_lr_ratio"])),
            augment=params["augment"],
            ema_decay=None if params["ema_decay"] is None else float(params["ema_decay"]),
            # a classifier's options (the regressor has no labels to mix)
            mixup_alpha=float(params.get("mixup_alpha", 0.0)),
            cutmix_alpha=float(params.get("cutmix_alpha", 0.0)),
            early_stopping=bool(params["early_stopping"]),
            validation_fraction=float(params["validation_fraction"]),
            n_iter_no_change=int(params["n_iter_no_change"]),
            compile=network.compile is True,
            verbose=int(params["verbose"]),
            seed=network.seed,
            device=network.device,
            autocast=network.autocast,
        )
