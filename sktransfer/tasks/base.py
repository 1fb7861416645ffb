"""The protocol every supervised task keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from sklearn.utils.class_weight import compute_sample_weight


def weighted(sample_weight, n_samples: int, extra=None):
    """Per-sample loss weights (``sample_weight`` times ``extra``), scaled to mean 1 so that
    learning rates keep their meaning; None when both are None."""
    if sample_weight is None and extra is None:
        return None
    weights = np.ones(n_samples)
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim == 0:
            weights = np.full(n_samples, float(weights))
        if weights.shape != (n_samples,):
            raise ValueError(
                f"sample_weight.shape == {weights.shape}, expected ({n_samples},): one weight per image"
            )
        bad = ~np.isfinite(weights) | (weights < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"sample_weight must be finite and non-negative; sample {i} has {weights[i]:g}")
    if extra is not None:
        weights = weights * extra
    if not weights.sum() > 0:
        raise ValueError("Sample weights must contain at least one non-zero number: every weight is zero")
    return (weights / weights.mean()).astype(np.float32)


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
    target_type : str
        scikit-learn's name for its targets (``type_of_target``): ``"multiclass"``,
        ``"multilabel-indicator"``, ``"continuous"``; kept by the fitted estimator.
    name, output_name : str
        The task and its output, as an exported graph's metadata names them
        (:func:`sktransfer.export`).
    """

    stratified: bool = False
    net_class: type = None
    target_type: str = ""
    name: str = ""
    output_name: str = ""

    def output_layer(self, fitted) -> torch.nn.Module:
        """The network's outputs -> what the estimator returns (``fitted``: what ``fit``
        learnt of the targets), as a torch module for an exported graph."""
        raise NotImplementedError

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


@dataclass(frozen=True)
class LabelTask(Task):
    """What the two classification tasks share: labels smoothed by ``label_smoothing``,
    classes weighted by ``class_weight`` (scikit-learn's rule, through
    ``compute_sample_weight``), one output per entry of what ``fit`` learns."""

    label_smoothing: float = 0.0
    class_weight: Any = None

    def n_outputs(self, fitted):
        return len(fitted)

    def sample_weights(self, sample_weight, y, n_samples):
        extra = None if self.class_weight is None else compute_sample_weight(self.class_weight, y)
        return weighted(sample_weight, n_samples, extra)
