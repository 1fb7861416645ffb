"""The training loop's parts around skorch: the net subclass, LR schedules, two-stage freezing.

``TransferNet`` is skorch's ``NeuralNetClassifier`` with three changes:

* forward passes under autocast (bfloat16/float16) on CUDA, loss in float32,
  gradient scaling for float16;
* per-batch losses are read back to the host once, at the end of each epoch,
  instead of one ``.item()`` synchronization per batch (which keeps the CPU
  from queueing work ahead of the GPU); with a ``ProgressBar``, which shows
  each batch's loss, they are read per batch as in skorch;
* the loss is weighted per sample when a batch carries ``sample_weight``;
* a batch that runs out of device memory is split into pieces whose gradients
  add up to the batch's (:class:`~sktransfer.engine.backoff.BatchBackoff`);
* a ``KeyboardInterrupt`` is recorded (``interrupted_``) for the estimator to
  report, where skorch alone ends training silently;
* batches come from :class:`~sktransfer.data.loader.BatchLoader`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, ProgressBar
from skorch.dataset import get_len, unpack_data
from skorch.utils import TeeGenerator

from ..engine.backoff import BatchBackoff, batch_len
from ..data.loader import num_batches

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
        self.batches_per_epoch_ = num_batches(
            len(dataset_train), net.batch_size, getattr(net, "iterator_train__drop_last", False)
        )

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


class Progress(ProgressBar):
    """skorch's progress bar, counting the batches the loader yields (it drops a last
    incomplete training batch)."""

    def _get_batches_per_epoch_phase(self, net, dataset, training):
        if dataset is None:
            return 0
        drop_last = training and net.get_params().get("iterator_train__drop_last", False)
        return num_batches(get_len(dataset), self._get_batch_size(net, training), drop_last)


class TransferNet(NeuralNetClassifier):
    """skorch's NeuralNetClassifier with autocast, batched loss read-back and our loader.

    Parameters
    ----------
    autocast_dtype : torch.dtype or None
        Mixed-precision dtype on CUDA; None trains in float32.
    """

    cuda_dependent_attributes_ = NeuralNetClassifier.cuda_dependent_attributes_ + ["scaler_"]

    def __init__(self, module, *args, autocast_dtype=None, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.autocast_dtype = autocast_dtype

    def _autocast(self):
        device = torch.device(self.device)
        enabled = self.autocast_dtype is not None and device.type == "cuda"
        return torch.autocast(device.type, dtype=self.autocast_dtype or torch.float32, enabled=enabled)

    def infer(self, x, **fit_params):
        with self._autocast():
            out = super().infer(x, **fit_params)
        return out.float()

    def initialize(self):
        super().initialize()
        fp16 = self.autocast_dtype == torch.float16 and torch.device(self.device).type == "cuda"
        self.scaler_ = torch.amp.GradScaler("cuda") if fp16 else None
        self.train_backoff_ = BatchBackoff("training")
        self.eval_backoff_ = BatchBackoff("inference")
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        self.interrupted_ = False
        # a batch size halved for memory holds for the call that needed it
        self.train_backoff_, self.eval_backoff_ = BatchBackoff("training"), BatchBackoff("inference")
        return super().partial_fit(X, y, classes=classes, **fit_params)

    def forward(self, X, training=False, device="cpu"):
        self.eval_backoff_ = BatchBackoff("inference")
        return super().forward(X, training=training, device=device)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = True  # skorch's partial_fit ends training here, quietly
            raise

    def train_step_single(self, batch, share=1.0, **fit_params):
        """Forward and backward of one batch, or of a ``share`` of one (see ``train_step``)."""
        self._set_training(True)
        Xi, yi = batch
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        scaled = loss * share if share != 1.0 else loss
        (self.scaler_.scale(scaled) if self.scaler_ is not None else scaled).backward()
        return {"loss": loss, "y_pred": y_pred, "share": share}

    def train_step(self, batch, **fit_params):
        # no optimizer closure: GradScaler cannot step through one
        def zero_grad():
            self._zero_grad_optimizer(set_to_none=True)

        zero_grad()
        Xi, yi = batch
        steps = self.train_backoff_(
            lambda x, y, share: self.train_step_single((x, y), share, **fit_params), Xi, yi, restart=zero_grad)
        if self.scaler_ is not None:
            self.scaler_.unscale_(self.optimizer_)
        self.notify("on_grad_computed", named_parameters=TeeGenerator(self.get_all_learnable_params()),
                    batch=batch, training=True)
        if self.scaler_ is not None:
            self.scaler_.step(self.optimizer_)
            self.scaler_.update()
        else:
            self.optimizer_.step()
        return _joined(steps)

    def validation_step(self, batch, **fit_params):
        def piece(x, y, share):
            step = super(TransferNet, self).validation_step((x, y), **fit_params)
            return dict(step, share=share)

        return _joined(self.eval_backoff_(piece, *unpack_data(batch)))

    def evaluation_step(self, batch, training=False):
        def piece(x, share):
            return super(TransferNet, self).evaluation_step((x, None), training)

        parts = self.eval_backoff_(piece, unpack_data(batch)[0])
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch's loop; without a progress bar to show each batch's loss, the losses stay
        # on the device until the epoch ends and come back in one copy
        if iterator is None:
            return
        live = any(isinstance(cb, ProgressBar) for _, cb in self.callbacks_)
        records, losses = [], []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            loss = step["loss"].detach()
            if live:
                self.history.record_batch(prefix + "_loss", loss.item())
            self.history.record_batch(prefix + "_batch_size", batch_len(batch[0]))
            records.append(self.history[-1]["batches"][-1])
            losses.append(loss)
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if records and not live:
            for record, value in zip(records, torch.stack(losses).float().cpu().tolist()):
                record[prefix + "_loss"] = value
        self.history.record(prefix + "_batch_count", len(records))

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # the criterion returns per-sample losses (reduction="none")
        losses = self.criterion_(y_pred.float(), y_true)
        weights = X.get("sample_weight") if isinstance(X, Mapping) else None
        return (losses * weights).mean() if weights is not None else losses.mean()


def _joined(steps: list) -> dict:
    """One step's ``{"loss", "y_pred"}`` from the steps of its pieces."""
    if len(steps) == 1:
        return {"loss": steps[0]["loss"], "y_pred": steps[0]["y_pred"]}
    return {"loss": sum(step["loss"] * step["share"] for step in steps),
            "y_pred": torch.cat([step["y_pred"] for step in steps])}
