"""An exponential moving average of the weights during training, as a skorch callback."""

from __future__ import annotations

import torch
from skorch.callbacks import Callback


class WeightAverage(Callback):
    """Keep an exponential moving average (EMA) of the network's weights while it trains,
    and make it the network's weights wherever they are judged.

    After each training step the average moves towards the weights by ``1 - d``, with
    ``d = min(decay, (1 + t) / (10 + t))`` at step ``t`` (TensorFlow's and timm's warm-up,
    so a short fit is not held at its starting weights). Every floating tensor of the
    network is averaged (parameters, and BatchNorm statistics); frozen ones stay as
    they are. The network holds the average during each epoch's validation and
    at each epoch's end (early stopping, placed after this callback, keeps averaged
    weights), and training resumes from its own weights at the next step. When training
    ends, interrupted or not, the network keeps the average.

    Parameters
    ----------
    decay : float
        In (0, 1): the weight of the past at each step (timm's default 0.9998 suits
        long runs; 0.99-0.999 runs of a few hundred steps).
    """

    def __init__(self, decay: float):
        self.decay = decay

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.steps_ = 0
        module = net.module_
        self.sources_ = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
        # the network's floating tensors, written in place when it takes the average
        self.tensors_ = [t.detach() for t in self.sources_]
        self.average_ = [t.clone() for t in self.tensors_]  # starts where training starts
        self.trained_ = None  # the network's own weights while it holds the average

    def _hold(self, net, average: bool) -> None:
        """Put the average (``average``) or the network's own weights in the network."""
        if self.average_ is None or (self.trained_ is not None) == average:
            return
        with torch.no_grad():
            if average:
                self.trained_ = [t.clone() for t in self.tensors_]
                torch._foreach_copy_(self.tensors_, self.average_)
            else:
                torch._foreach_copy_(self.tensors_, self.trained_)
                self.trained_ = None

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        self._hold(net, average=not training)

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        decay = min(self.decay, (1 + self.steps_) / (10 + self.steps_))
        # a frozen parameter equals its average: only what can have moved (trainable
        # parameters, buffers such as BatchNorm statistics) is updated
        moving = [(a, t) for a, t, s in zip(self.average_, self.tensors_, self.sources_)
                  if s.requires_grad or not isinstance(s, torch.nn.Parameter)]
        with torch.no_grad():
            torch._foreach_lerp_([a for a, _ in moving], [t for _, t in moving], 1 - decay)
        self.steps_ += 1

    def on_epoch_end(self, net, **kwargs):
        self._hold(net, average=True)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self._hold(net, average=True)
        self.sources_ = self.tensors_ = self.average_ = self.trained_ = None  # the fitted net keeps no copy
