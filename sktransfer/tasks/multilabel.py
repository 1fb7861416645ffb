"""Multi-label classification: a 0/1 indicator matrix, independent sigmoid outputs, binary cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skorch import NeuralNet
from torch import nn

from ..training.net import TransferLoop
from ..training.probe import fit_linear_probe
from .base import LabelTask


class TransferMultiLabelNet(TransferLoop, NeuralNet):
    """skorch's ``NeuralNet`` with the changes of :class:`~sktransfer.training.net.TransferLoop`
    (not ``NeuralNetClassifier``, whose accuracy and ``predict`` take one class per input)."""


@dataclass(frozen=True)
class MultiLabel(LabelTask):
    """Several independent labels per input: ``Y`` of shape ``(n, k)`` holding 0 and 1, as
    scikit-learn's ``MLPClassifier`` takes it.

    What ``fit`` learns is ``classes_ = [0, ..., k - 1]`` (the columns); the network
    outputs one logit per label, trained with binary cross-entropy.

    Parameters
    ----------
    label_smoothing : float, default=0.0
        Targets move this far towards 1/2 (0 becomes ``label_smoothing / 2``).
    class_weight : dict, "balanced" or None, default=None
        As in scikit-learn's multi-output classifiers: the product over the labels
        of each one's weight for its value.
    """

    target_type = "multilabel-indicator"
    net_class = TransferMultiLabelNet
    name, output_name = "multilabel", "probabilities"

    def output_layer(self, fitted):
        return nn.Sigmoid()  # predict_proba: one probability per label

    def check_targets(self, y, n_samples, names=("X", "y")):
        from sklearn.utils import check_array

        y = check_array(y, ensure_2d=True, dtype=None, ensure_all_finite=False, input_name=names[1])
        if y.dtype.kind not in "biuf":
            raise ValueError(f"a 2-D {names[1]} is a multi-label indicator matrix of 0 and 1; got dtype {y.dtype}")
        values = y.astype(np.float64)
        bad = ~np.isin(values, (0.0, 1.0))
        if bad.any():
            i, j = (int(v[0]) for v in np.nonzero(bad))
            raise ValueError(f"a 2-D {names[1]} is a multi-label indicator matrix of 0 and 1; "
                             f"{names[1]}[{i}, {j}] is {y[i, j].item()!r}")
        if len(values) != n_samples:
            raise ValueError(f"{names[0]} has {n_samples} inputs but {names[1]} has {len(values)} rows of labels")
        return values.astype(np.int64)

    def encode(self, y, fitted=None):
        classes = np.arange(y.shape[1])
        if fitted is not None:
            if not np.array_equal(classes, fitted):
                raise ValueError(f"warm_start=True needs the {len(fitted)} label columns of the first fit, "
                                 f"got {y.shape[1]}")
        else:
            constant = [j for j in range(y.shape[1]) if len(np.unique(y[:, j])) < 2]
            if constant:
                j = constant[0]
                raise ValueError(f"label column {j} of y is {int(y[0, j])} for every input: nothing to learn "
                                 f"from it ({len(constant)} such column(s)); drop it, or add inputs of both values")
        return self.encode_known(y, classes), classes

    def encode_validation(self, y_val, y):
        if y_val.shape[1] != y.shape[1]:
            raise ValueError(f"y_val has {y_val.shape[1]} label columns but y has {y.shape[1]}")

    def encode_known(self, y, fitted):
        return (y.astype(np.float32) * (1 - self.label_smoothing) + self.label_smoothing / 2).astype(np.float32)

    def criterion(self):
        return nn.BCEWithLogitsLoss, {"reduction": "none"}

    def probe(self, features, targets, n_outputs, C, weights, init=None):
        # the targets are smoothed already (encode_known)
        return fit_linear_probe(features, targets, n_outputs, C, weights, init=init, multilabel=True)

    # ------------------------------------------------------------------ outputs

    @staticmethod
    def predict_proba(logits: np.ndarray) -> np.ndarray:
        """Each label's probability, independently (rows need not sum to 1)."""
        return 1.0 / (1.0 + np.exp(-logits))

    @staticmethod
    def decision_function(logits: np.ndarray) -> np.ndarray:
        """The logits, one column per label."""
        return logits

    @staticmethod
    def predict(logits: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """The indicator matrix: 1 where a label's probability is at least 0.5."""
        return (logits >= 0).astype(np.int64)
