"""The protocol every supervised task keeps."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch


class Task:
    """What depends on the kind of target, for the fine-tuned estimators.

    A task is built in ``fit`` from the estimator's parameters and holds no fitted
    state: what ``fit`` learns about the targets (``classes_``, say) stays on the
    estimator, as plain data, and is handed back to the methods that need it.

    Attributes
    ----------
    stratified : bool
        Whether a validation split held out of the training data keeps the targets'
        proportions.
    net_class : type
        The skorch net that trains for it (``TransferLoop`` on a skorch net class).
    """

    stratified: bool = False
    net_class: type = None

    def net_kwargs(self, n_outputs: int) -> dict:
        """Keyword arguments of ``net_class`` that depend on the task."""
        return {}

    def check_targets(self, y, n_samples: int, names=("X", "y")) -> np.ndarray:
        """``y`` checked for ``n_samples`` inputs (``names`` name both in messages)."""
        raise NotImplementedError

    def encode(self, y: np.ndarray, fitted=None) -> tuple[np.ndarray, object]:
        """``(targets the network trains on, what fit learns from y)``; with ``fitted``
        (a warm start), ``y`` must agree with it."""
        raise NotImplementedError

    def encode_validation(self, y_val: np.ndarray, y: np.ndarray) -> None:
        """Refuse validation targets that the training targets ``y`` do not allow."""

    def encode_known(self, y: np.ndarray, fitted) -> np.ndarray:
        """Targets already checked against ``fitted``, as the network trains on them."""
        raise NotImplementedError

    def n_outputs(self, fitted) -> int:
        """Outputs of the head."""
        raise NotImplementedError

    def sample_weights(self, sample_weight, y: np.ndarray, n_samples: int) -> Optional[np.ndarray]:
        """Per-sample loss weights, scaled to mean 1; None when unweighted."""
        raise NotImplementedError

    def criterion(self) -> tuple[type, dict]:
        """The loss module's class and keyword arguments (per-sample losses, ``reduction="none"``)."""
        raise NotImplementedError

    def probe(self, features: torch.Tensor, targets: torch.Tensor, n_outputs: int, C: float,
              weights: Optional[torch.Tensor], init=None):
        """The head solved to convergence on frozen ``features``: ``(W, b, n_iter)``."""
        raise NotImplementedError
