"""Single-label classification: one class per input, softmax outputs, cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d
from torch import nn

from ..training.net import TransferNet
from ..training.probe import fit_linear_probe
from .base import LabelTask


@dataclass(frozen=True)
class Classification(LabelTask):
    """One label per input (ints, strings or bools; at least two classes).

    What ``fit`` learns is ``classes_``, the sorted labels; the network outputs one
    logit per class.

    Parameters
    ----------
    label_smoothing : float, default=0.0
        Of the cross-entropy (and of the probe's).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn's classifiers.
    """

    stratified = True
    target_type = "multiclass"
    net_class = TransferNet
    name, output_name = "classification", "probabilities"

    def output_layer(self, fitted):
        return nn.Softmax(dim=1)  # predict_proba

    def net_kwargs(self, n_outputs):
        return {"classes": list(range(n_outputs))}

    def check_targets(self, y, n_samples, names=("X", "y")):
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(f"{names[0]} has {n_samples} images but {names[1]} has {len(y)} labels")
        if y.dtype.kind == "f":
            bad = ~np.isfinite(y)
            if bad.any():
                i = int(np.argmax(bad))
                what = "NaN" if np.isnan(y[i]) else "infinity"
                raise ValueError(f"Input {names[1]} contains {what}: label at index {i}")
        if y.dtype.kind == "O":
            missing = [i for i, v in enumerate(y) if v is None or (isinstance(v, float) and np.isnan(v))]
            if missing:
                raise ValueError(f"Input {names[1]} contains NaN: label at index {missing[0]} is missing")
        check_classification_targets(y)
        return y

    def encode(self, y, fitted=None):
        classes = np.unique(y)
        if fitted is not None:
            if not np.array_equal(classes, fitted):
                raise ValueError(
                    f"warm_start=True needs the classes of the first fit {fitted.tolist()}, got {classes.tolist()}"
                )
            classes = fitted
        elif len(classes) < 2:
            raise ValueError(f"a classifier needs at least 2 classes in y; got only one class: {classes[0]!r}")
        return self.encode_known(y, classes), classes

    def encode_validation(self, y_val, y):
        classes = np.unique(y)
        unknown = ~np.isin(y_val, classes)
        if unknown.any():
            i = int(np.argmax(unknown))
            raise ValueError(f"y_val[{i}] = {y_val[i:i + 1].tolist()[0]!r} is not one of the classes of y "
                             f"{classes.tolist()}")

    def encode_known(self, y, fitted):
        return np.searchsorted(fitted, y).astype(np.int64)

    def criterion(self):
        return nn.CrossEntropyLoss, {"label_smoothing": float(self.label_smoothing), "reduction": "none"}

    def probe(self, features, targets, n_outputs, C, weights, init=None):
        return fit_linear_probe(features, targets, n_outputs, C, weights, float(self.label_smoothing), init=init)

    # ------------------------------------------------------------------ outputs

    @staticmethod
    def predict_proba(logits: np.ndarray) -> np.ndarray:
        """Softmax probabilities (rows sum to 1)."""
        logits = logits - logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    @staticmethod
    def decision_function(logits: np.ndarray) -> np.ndarray:
        """Logits; for two classes, the margin of the second class over the first."""
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    @staticmethod
    def predict(logits: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """The class with the highest logit."""
        return classes[logits.argmax(axis=1)]
