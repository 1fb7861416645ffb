"""Learning-rate schedules, the two-stage freezing schedule and the learning-rate range test,
as skorch callbacks."""

from __future__ import annotations

import math

import numpy as np
from skorch.callbacks import Callback

SCHEDULES = ("onecycle", "cosine", "constant")


def lr_factor(schedule: str, progress: float, warmup: float) -> float:
    """Multiplier of the peak learning rate at ``progress`` in [0, 1] of a training segment.

    ``"onecycle"``: cosine rise from 1/25 to 1 over the ``warmup`` fraction, then
    cosine decay to 1/25e4 (PyTorch's ``OneCycleLR`` shape). ``"cosine"``: linear
    warm-up from 0 over ``warmup``, then cosine decay to 0. ``"constant"``: 1.
    """
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "onecycle":
        start, end = 1 / 25, 1 / 25e4
        if progress < warmup:
            return start + (1 - start) * (1 - math.cos(math.pi * progress / warmup)) / 2
        rest = (progress - warmup) / max(1e-12, 1 - warmup)
        return end + (1 - end) * (1 + math.cos(math.pi * rest)) / 2
    if progress < warmup:
        return progress / warmup
    rest = (progress - warmup) / max(1e-12, 1 - warmup)
    return (1 + math.cos(math.pi * rest)) / 2


class LRSchedule(Callback):
    """Set every param group's learning rate before each training batch.

    The head's rate is recorded in the batch history as ``"lr"``.

    ``segments`` lists ``(first_epoch, end_epoch, scale)``: the schedule restarts at
    each segment and peaks at ``scale`` times the group's base rate.
    """

    def __init__(self, schedule, warmup, base_lrs, segments):
        self.schedule = schedule
        self.warmup = warmup
        self.base_lrs = base_lrs
        self.segments = segments

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.offset_ = len(net.history)  # a warm start replays the schedule

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self.batches_per_epoch_ = net.batches_per_epoch(dataset_train)

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        epoch = len(net.history) - 1 - self.offset_
        position = epoch + (len(net.history[-1]["batches"]) - 1) / self.batches_per_epoch_
        for first, end, scale in self.segments:
            if first <= epoch < end:
                factor = scale * lr_factor(self.schedule, (position - first) / (end - first), self.warmup)
                break
        else:  # epochs past the plan (warm starts) keep the final rate
            first, end, scale = self.segments[-1]
            factor = scale * lr_factor(self.schedule, 1.0, self.warmup)
        for group, base in zip(net.optimizer_.param_groups, self.base_lrs):
            group["lr"] = base * factor
        net.history.record_batch("lr", self.base_lrs[-1] * factor)


class HeadFirst(Callback):
    """Two-stage transfer learning: train only the head for ``head_epochs``, then unfreeze
    down to ``freeze_depth``. Records ``"frozen_stages"`` in the epoch history."""

    def __init__(self, head_epochs, freeze_depth):
        self.head_epochs = head_epochs
        self.freeze_depth = freeze_depth

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.offset_ = len(net.history)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        module = net.module_
        epoch = len(net.history) - 1 - self.offset_
        module.set_frozen(len(module.stages) if epoch < self.head_epochs else self.freeze_depth)
        net.history.record("frozen_stages", module.n_frozen)


class LRRange(Callback):
    """The learning-rate range test (Smith, 2017; fastai's and Lightning's ``lr_find``):
    training step ``k`` of ``num_steps`` runs at ``start * (end / start) ** (k / (num_steps - 1))``
    times each param group's base rate, and training stops after the last step, at a
    non-finite loss, or once the loss, smoothed as :func:`lr_curve` smooths it, exceeds
    ``diverge`` times its lowest (one noisy batch does not end the sweep). Records
    ``lrs_`` and ``losses_``.

    Runs after :class:`LRSchedule` with a constant schedule (which resets the rates to
    their bases before every batch).
    """

    def __init__(self, start: float, end: float, num_steps: int, diverge: float = 4.0, beta: float = 0.98):
        self.start = start
        self.end = end
        self.num_steps = num_steps
        self.diverge = diverge
        self.beta = beta

    def initialize(self):
        self.lrs_, self.losses_ = [], []
        self.average_, self.lowest_ = 0.0, math.inf
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        lr = self.start * (self.end / self.start) ** (len(self.lrs_) / max(1, self.num_steps - 1))
        for group in net.optimizer_.param_groups:
            group["lr"] *= lr
        self.lrs_.append(lr)

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if not training:
            return
        last = float(loss.detach())
        self.losses_.append(last)
        self.average_ = self.beta * self.average_ + (1 - self.beta) * last
        smoothed = self.average_ / (1 - self.beta ** len(self.losses_))
        self.lowest_ = min(self.lowest_, smoothed)
        if len(self.losses_) >= self.num_steps or not math.isfinite(last) or smoothed > self.diverge * self.lowest_:
            raise KeyboardInterrupt  # skorch ends training on it, quietly


def lr_curve(lrs, losses, beta: float = 0.98):
    """The range test's curve and a suggested rate.

    The losses are smoothed by an exponential moving average (``beta``, bias-corrected, as
    fastai does); the suggestion is fastai's "valley": the longest stretch over which the
    smoothed loss keeps falling (its longest decreasing subsequence), and the rate two
    thirds of the way down it, past the noisy first steps and short of the divergence.

    Returns
    -------
    curve : sklearn.utils.Bunch
        ``lr``, ``loss``, ``smoothed_loss`` (arrays) and ``suggestion`` (float).
    """
    from sklearn.utils import Bunch

    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    finite = np.isfinite(losses)
    end = len(losses) if finite.all() else int(np.argmin(finite))
    lrs, losses = lrs[:end], losses[:end]
    if len(losses) == 0:
        raise ValueError("the learning-rate sweep gave no finite loss: lower start_lr")
    average, smoothed = 0.0, np.empty(len(losses))
    for k, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        smoothed[k] = average / (1 - beta ** (k + 1))
    # longest decreasing subsequence: run[i] is the length of the longest one ending at i
    run, longest_end = np.ones(len(smoothed), dtype=int), 0
    for i in range(1, len(smoothed)):
        earlier = smoothed[:i] > smoothed[i]
        if earlier.any():
            run[i] = run[:i][earlier].max() + 1
        if run[i] > run[longest_end]:
            longest_end = i
    start = longest_end - run[longest_end] + 1
    third = (longest_end - start) / 3
    suggestion = lrs[start + int(2 * third)]
    return Bunch(lr=lrs, loss=losses, smoothed_loss=smoothed, suggestion=float(suggestion))
