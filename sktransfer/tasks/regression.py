"""Regression: one or several continuous targets, standardized inside, squared error or Huber."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skorch import NeuralNetRegressor
from torch import nn

from ..training.net import TransferLoop
from ..training.probe import fit_ridge_probe
from .base import Task, weighted


class TransferRegressorNet(TransferLoop, NeuralNetRegressor):
    """skorch's ``NeuralNetRegressor`` with the changes of :class:`~sktransfer.training.net.TransferLoop`."""


@dataclass(frozen=True)
class Regression(Task):
    """Continuous targets ``y`` of shape ``(n,)`` or ``(n, k)``.

    Each target is standardized (its mean removed, divided by its standard deviation;
    a constant target by 1) for training, as ``TransformedTargetRegressor`` with a
    ``StandardScaler`` would, and the
    network's outputs are un-standardized on the way out. What ``fit`` learns is that
    scaling: ``{"mean": (k,), "scale": (k,), "ndim": 1 or 2}``.

    Parameters
    ----------
    loss : {"squared_error", "huber"}, default="squared_error"
        On the standardized targets; Huber's threshold is 1 (one standard deviation).
    """

    loss: str = "squared_error"
    target_type = "continuous"
    net_class = TransferRegressorNet
    name, output_name = "regression", "values"

    def output_layer(self, fitted):
        return Unscale(fitted)

    def check_targets(self, y, n_samples, names=("X", "y")):
        from sklearn.utils import check_array

        y = check_array(y, ensure_2d=False, dtype="numeric", ensure_all_finite=False, input_name=names[1])
        values = y.astype(np.float64)
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"Input {names[1]} contains NaN or infinity: the target at index {i}")
        if len(values) != n_samples:
            raise ValueError(f"{names[0]} has {n_samples} inputs but {names[1]} has {len(values)} targets")
        return values

    def encode(self, y, fitted=None):
        columns = y.reshape(len(y), -1)
        if fitted is not None:
            if columns.shape[1] != len(fitted["mean"]) or y.ndim != fitted["ndim"]:
                raise ValueError(f"warm_start=True needs targets shaped as in the first fit "
                                 f"({len(fitted['mean'])} column(s), {fitted['ndim']}-D), got shape {y.shape}")
            return self.encode_known(y, fitted), fitted
        mean, scale = columns.mean(0), columns.std(0)
        scale[~(scale > 1e-12 * np.maximum(1.0, np.abs(mean)))] = 1.0  # a constant target
        fitted = {"mean": mean, "scale": scale, "ndim": int(y.ndim)}
        return self.encode_known(y, fitted), fitted

    def encode_known(self, y, fitted):
        return ((y.reshape(len(y), -1) - fitted["mean"]) / fitted["scale"]).astype(np.float32)

    def n_outputs(self, fitted):
        return len(fitted["mean"])

    def sample_weights(self, sample_weight, y, n_samples):
        return weighted(sample_weight, n_samples)

    def criterion(self):
        loss = nn.MSELoss if self.loss == "squared_error" else nn.HuberLoss
        return loss, {"reduction": "none"}

    def probe(self, features, targets, n_outputs, C, weights, init=None):
        return fit_ridge_probe(features, targets, C, weights)

    def encode_validation(self, y_val, y):
        if y_val.ndim != y.ndim or y_val.reshape(len(y_val), -1).shape[1] != y.reshape(len(y), -1).shape[1]:
            raise ValueError(f"y_val has shape {y_val.shape}, but y has shape {y.shape}: one column per target")

    @staticmethod
    def predict(outputs: np.ndarray, fitted) -> np.ndarray:
        """The network's standardized outputs in the targets' units and shape."""
        values = outputs * fitted["scale"] + fitted["mean"]
        return values[:, 0] if fitted["ndim"] == 1 else values


class Unscale(nn.Module):
    """Standardized regression outputs -> the targets' units and shape (what
    :meth:`Regression.predict` does, in a graph).

    Parameters
    ----------
    scaling : dict
        ``{"mean": (k,), "scale": (k,), "ndim": 1 or 2}``, as the regression task learns it.
    """

    def __init__(self, scaling: dict):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(scaling["mean"], dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scaling["scale"], dtype=torch.float32))
        self.one_target = scaling["ndim"] == 1

    def forward(self, outputs):
        values = outputs * self.scale + self.mean
        return values[:, 0] if self.one_target else values
