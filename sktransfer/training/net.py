"""The skorch net that fine-tunes, and building it from a :class:`~.spec.TrainingSpec`.

``TransferNet`` is skorch's ``NeuralNetClassifier`` with these changes (the mixin
``TransferLoop``, which other tasks put on other skorch nets), made through
skorch's extension points (its step methods, ``infer``, ``get_loss``) except one, each
override saying why:

* forward passes under autocast (bfloat16/float16) on CUDA, loss in float32,
  gradient scaling for float16;
* per-batch losses are read back to the host once, at the end of each epoch,
  instead of one ``.item()`` synchronization per batch (which keeps the CPU
  from queueing work ahead of the GPU); with a ``ProgressBar``, which shows
  each batch's loss, they are read per batch as in skorch; and a batch is counted
  by what it holds (images of several sizes included): these two need the one
  override of skorch's epoch loop (``run_single_epoch``), which has no hook for them;
* the loss is weighted per sample when a batch carries ``sample_weight``, and taken
  against both targets of a mixed batch (mixup / cutmix);
* a batch that runs out of device memory is split into pieces whose gradients
  add up to the batch's (:class:`~sktransfer.engine.backoff.BatchBackoff`);
* a ``KeyboardInterrupt`` is recorded (``interrupted_``) for the estimator to
  report, where skorch alone ends training silently;
* batches come from :class:`~sktransfer.data.loader.BatchLoader`;
* inside :meth:`TransferLoop.sharing` (a fit under a launcher), training is
  data-parallel (:mod:`.distributed`): each process runs its share of every batch,
  training steps go through DDP, and every batch's loss (and, in validation, its
  predictions and targets) is that of the whole batch, the same on every process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from copy import deepcopy
from typing import Optional

import numpy as np
import torch
from skorch import NeuralNet, NeuralNetClassifier
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit, unpack_data
from skorch.utils import TeeGenerator

from ..data.launch import is_main_process
from ..data.loader import BatchLoader
from ..engine.backoff import BatchBackoff, batch_len
from .averaging import WeightAverage
from .schedule import HeadFirst, LRSchedule


class Progress(ProgressBar):
    """skorch's progress bar, counting the batches the loader yields (it drops a last
    incomplete training batch; under a launcher, a process runs its share of each)."""

    def _get_batches_per_epoch_phase(self, net, dataset, training):
        return 0 if dataset is None else net.batches_per_epoch(dataset, training)


class TransferLoop:
    """The changes to skorch's training of this module's docs, as a mixin left of a skorch
    net class (a task picks which: :class:`TransferNet` for classification).

    Parameters
    ----------
    autocast_dtype : torch.dtype or None
        Mixed-precision dtype on CUDA; None trains in float32.
    """

    cuda_dependent_attributes_ = NeuralNet.cuda_dependent_attributes_ + ["scaler_"]
    #: The :class:`~.distributed.World` of a data-parallel fit, inside :meth:`sharing`.
    world_ = None

    def __init__(self, module, *args, autocast_dtype=None, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.autocast_dtype = autocast_dtype

    def _autocast(self):
        device = torch.device(self.device)
        enabled = self.autocast_dtype is not None and device.type == "cuda"
        return torch.autocast(device.type, dtype=self.autocast_dtype or torch.float32, enabled=enabled)

    def infer(self, x, **fit_params):
        # override: skorch has no autocast; the loss is then computed in float32
        with self._autocast():
            out = super().infer(x, **fit_params)
        return out.float()

    def initialize(self):
        # override: state skorch does not have (gradient scaler, back-off, how losses are read)
        super().initialize()
        fp16 = self.autocast_dtype == torch.float16 and torch.device(self.device).type == "cuda"
        self.scaler_ = torch.amp.GradScaler("cuda") if fp16 else None
        self.train_backoff_ = BatchBackoff("training")
        self.eval_backoff_ = BatchBackoff("inference")
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        # override: per-call state (interrupted, the back-off's batch size)
        self.interrupted_ = False
        # a batch size halved for memory holds for the call that needed it
        self.train_backoff_, self.eval_backoff_ = BatchBackoff("training"), BatchBackoff("inference")
        return super().partial_fit(X, y, classes=classes, **fit_params)

    def forward(self, X, training=False, device="cpu"):
        # override: a prediction starts at the full batch size again
        self.eval_backoff_ = BatchBackoff("inference")
        return super().forward(X, training=training, device=device)

    @contextlib.contextmanager
    def sharing(self, world):
        """Inside the block, with a :class:`~.distributed.World` (None: no change), training
        is data-parallel across its processes."""
        self.world_ = world
        try:
            yield self
        finally:
            self.world_ = None
            vars(self).pop("_replica", None)  # the DDP wrapper holds the process group: not kept

    def _shared(self, iterator):
        """``iterator`` (a BatchLoader) as this process reads it."""
        return iterator if self.world_ is None else iterator.shared(self.world_.rank, self.world_.size)

    def batches_per_epoch(self, dataset, training: bool = True) -> int:
        """The batches this process runs in a pass over ``dataset``."""
        return len(self._shared(self.get_iterator(dataset, training=training)))

    @contextlib.contextmanager
    def _replicated(self):
        """Inside the block, in a data-parallel fit, ``module_`` is its DDP wrapper (skorch's
        ``infer`` calls ``module_``), built again when the trainable parameters change (a
        two-stage schedule unfreezes stages, and DDP averages the gradients of the
        parameters that were trainable when it was built)."""
        world = self.world_
        if world is None:
            yield
            return
        plain = self.module_
        key = tuple(p.requires_grad for p in plain.parameters())
        if vars(self).get("_replica", (None,))[0] != key:
            self._replica = (key, world.replicate(plain))
        self.module_ = self._replica[1]
        try:
            with world.communicating("in a training step"):
                yield
        finally:
            self.module_ = plain

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # override: skorch's partial_fit swallows a KeyboardInterrupt; record it for the estimator
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = True  # skorch's partial_fit ends training here, quietly
            raise

    def train_step_single(self, batch, share=1.0, **fit_params):
        """Forward and backward of one batch, or of a ``share`` of one (see ``train_step``)."""
        self._set_training(True)
        Xi, yi = batch
        with self._replicated():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
            scaled = loss * share if share != 1.0 else loss
            (self.scaler_.scale(scaled) if self.scaler_ is not None else scaled).backward()
        return {"loss": loss, "y_pred": y_pred, "share": share}

    def train_step(self, batch, **fit_params):
        # override: out-of-memory pieces, and gradient scaling (no optimizer closure:
        # GradScaler cannot step through one)
        def zero_grad():
            self._zero_grad_optimizer(set_to_none=True)

        zero_grad()
        Xi, yi = batch
        if self.world_ is None:
            steps = self.train_backoff_(
                lambda x, y, share: self.train_step_single((x, y), share, **fit_params), Xi, yi, restart=zero_grad)
        else:  # no pieces: each backward all-reduces, and the processes must run as many
            try:
                steps = [self.train_step_single(batch, **fit_params)]
            except torch.OutOfMemoryError as exc:
                raise torch.OutOfMemoryError(
                    f"out of memory in a data-parallel training step ({batch_len(Xi)} images on this process): a "
                    "launched fit does not split batches (every process runs the same exchanges); lower "
                    f"batch_size ({exc})") from exc
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
        # override: out-of-memory pieces
        def piece(x, y, share):
            step = super(TransferLoop, self).validation_step((x, y), **fit_params)
            return dict(step, share=share)

        return _joined(self.eval_backoff_(piece, *unpack_data(batch)))

    def evaluation_step(self, batch, training=False):
        # override: out-of-memory pieces
        def piece(x, share):
            return super(TransferLoop, self).evaluation_step((x, None), training)

        parts = self.eval_backoff_(piece, unpack_data(batch)[0])
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _steps(self, iterator, step_fn, training, notify=True, **fit_params):
        """``(batch, step, size)`` for each batch of ``iterator``: what the callbacks see of
        it, ``step_fn``'s result and the number of samples. In a data-parallel fit, this
        process runs its share of each batch, and the step's loss is that of the whole
        batch (so are, in evaluation, the predictions and the targets: scores of the whole)."""
        world = self.world_
        iterator = self._shared(iterator)
        sizes = iterator.global_sizes() if world is not None else None
        for k, batch in enumerate(iterator):
            if notify:
                self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            if world is None:
                yield batch, step, batch_len(batch[0])
                continue
            step["loss"] = world.mean(step["loss"], batch_len(batch[0]), sizes[k])
            if not training:
                step["y_pred"] = world.gather(step["y_pred"], sizes[k])
                batch = (batch[0], None if batch[1] is None else world.gather(batch[1], sizes[k]))
            yield batch, step, sizes[k]

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # override, skorch's loop with three changes it has no extension point for: a batch
        # is counted by batch_len (skorch's get_len miscounts a list of images of different
        # sizes, and refuses the dict that carries their weights); without a progress
        # bar to show each batch's loss, the losses stay on the device until the epoch
        # ends and come back in one copy (skorch's .item() per batch synchronizes); and
        # batches are shared between the processes of a data-parallel fit (_steps)
        if iterator is None:
            return
        live = any(isinstance(cb, ProgressBar) for _, cb in self.callbacks_)
        records, losses = [], []
        for batch, step, size in self._steps(iterator, step_fn, training, **fit_params):
            loss = step["loss"].detach()
            if live:
                self.history.record_batch(prefix + "_loss", loss.item())
            self.history.record_batch(prefix + "_batch_size", size)
            records.append(self.history[-1]["batches"][-1])
            losses.append(loss)
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if records and not live:
            for record, value in zip(records, torch.stack(losses).float().cpu().tolist()):
                record[prefix + "_loss"] = value
        self.history.record(prefix + "_batch_count", len(records))

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # override: per-sample weights (the criterion returns per-sample losses, reduction="none",
        # averaged over a sample's outputs when it has several: labels, targets), and in
        # training, a mixed batch's loss: each sample's against its own targets and its
        # partner's, weighted by the share of each in the mixed input
        weights = X.get("sample_weight") if isinstance(X, Mapping) else None
        drawn = self._drawn_mix() if training else None
        if drawn is None:
            return self._weighted_loss(y_pred, y_true, weights)
        lam, order = drawn
        partner = None if weights is None else weights[order]
        return (lam * self._weighted_loss(y_pred, y_true, weights)
                + (1 - lam) * self._weighted_loss(y_pred, y_true[order], partner))

    def _weighted_loss(self, y_pred, y_true, weights):
        losses = self.criterion_(y_pred.float(), y_true)
        if losses.ndim > 1:
            losses = losses.reshape(len(losses), -1).mean(1)
        return (losses * weights).mean() if weights is not None else losses.mean()

    def _drawn_mix(self):
        """The mix the module drew for the batch it last ran in training, or None."""
        module = getattr(self.module_, "module", self.module_)  # a data-parallel fit's DDP wraps it
        mix = getattr(module, "mix", None)
        return None if mix is None else mix.take()


class TransferNet(TransferLoop, NeuralNetClassifier):
    """skorch's ``NeuralNetClassifier`` with autocast, batched loss read-back, memory back-off,
    sample weights and our loader (see the module's docs)."""


def _joined(steps: list) -> dict:
    """One step's ``{"loss", "y_pred"}`` from the steps of its pieces."""
    if len(steps) == 1:
        return {"loss": steps[0]["loss"], "y_pred": steps[0]["y_pred"]}
    return {"loss": sum(step["loss"] * step["share"] for step in steps),
            "y_pred": torch.cat([step["y_pred"] for step in steps])}


def transfer_net(module, spec, task, extra_callbacks=()) -> TransferNet:
    """The skorch net that fine-tunes ``module`` (a
    :class:`~sktransfer.nn.networks.ClassifierNet`, frozen as ``spec.freeze_depth`` says)
    as the :class:`~.spec.TrainingSpec` ``spec`` says, for ``task``; ``extra_callbacks``
    (``(name, callback)`` pairs) run after the others."""
    backbone_lr = spec.lr * spec.backbone_lr_ratio
    callbacks = [("lr_schedule", _schedule(spec))]
    if spec.head_epochs:
        callbacks.append(("head_first", HeadFirst(spec.head_epochs, module.n_frozen)))
    if spec.ema_decay is not None:  # before early stopping, which then keeps averaged weights
        callbacks.append(("ema", WeightAverage(spec.ema_decay)))
    if spec.early_stopping:
        callbacks.append(("early_stopping", KeepBest(
            monitor="valid_loss", patience=spec.n_iter_no_change, load_best=True)))
    verbose = spec.verbose if is_main_process() else 0  # under a launcher, one epoch log: rank 0's
    if verbose >= 2:
        callbacks.append(("progress", Progress()))
    callbacks.extend(extra_callbacks)
    criterion, criterion_kwargs = task.criterion()
    return task.net_class(
        module,
        criterion=criterion,
        **{f"criterion__{k}": v for k, v in criterion_kwargs.items()},
        optimizer=spec.optimizer,
        optimizer__weight_decay=spec.weight_decay,
        optimizer__param_groups=[("trunk.*", {"lr": backbone_lr})],
        **{f"optimizer__{k}": v for k, v in spec.optimizer_kwargs},
        lr=spec.lr,
        max_epochs=spec.max_epochs,
        batch_size=spec.batch_size,
        iterator_train=BatchLoader,
        iterator_train__shuffle=True,
        iterator_train__drop_last=True,
        iterator_train__device=spec.device,
        iterator_train__seed=spec.seed,
        iterator_valid=BatchLoader,
        iterator_valid__device=spec.device,
        train_split=internal_split(spec, task),
        callbacks=callbacks,
        **task.net_kwargs(module.head.out_features),
        device=spec.device,
        autocast_dtype=spec.autocast,
        compile=spec.compile,
        verbose=verbose,
    )


def _schedule(spec) -> LRSchedule:
    segments = [(0, spec.max_epochs, 1.0)]
    if spec.head_epochs:
        segments = [(0, spec.head_epochs, 1.0), (spec.head_epochs, spec.max_epochs, spec.finetune_lr_scale)]
    # skorch puts the matched "trunk.*" group first, the rest (the head) last
    return LRSchedule(spec.lr_schedule, spec.warmup_fraction, base_lrs=[spec.lr * spec.backbone_lr_ratio, spec.lr],
                      segments=segments)


def continue_net(net, spec) -> None:
    """Make a fitted net's next (warm-start) fit train as ``spec`` says now: its epochs,
    batch size, learning rates and averaging decay, not the first fit's."""
    net.set_params(max_epochs=spec.max_epochs, batch_size=spec.batch_size, callbacks__lr_schedule=_schedule(spec))
    if spec.ema_decay is not None:
        net.set_params(callbacks__ema__decay=spec.ema_decay)


def internal_split(spec, task):
    """The validation split held out of the training data for early stopping, or None."""
    if not spec.early_stopping:
        return None
    return ValidSplit(spec.validation_fraction, stratified=task.stratified, random_state=spec.seed)


def held_out_rows(spec, task, targets) -> Optional[tuple]:
    """``(training rows, validation rows)`` of the split early stopping holds out, or None.
    Chosen before anything is fitted, so that the probe, too, is fitted without the rows
    it will be judged on."""
    split = internal_split(spec, task)
    if split is None:
        return None
    train, valid = split(np.arange(len(targets)), targets)
    return np.asarray(train.indices), np.asarray(valid.indices)


def validation_loss(net, dataset) -> float:
    """The network's loss on ``dataset`` as skorch records ``valid_loss`` (the mean over
    batches weighted by their sizes)."""
    total = count = 0.0
    for _, step, n in net._steps(net.get_iterator(dataset, training=False), net.validation_step, False, notify=False):
        total += float(step["loss"]) * n
        count += n
    return total / count


class KeepBest(EarlyStopping):
    """skorch's early stopping on the validation loss, with the network training starts
    from as the first candidate.

    The start (the probe, with ``head_init="probe"``) is kept when no epoch improves on
    its validation loss: fine-tuning can only improve on where it started.
    ``start_loss_`` is that loss.
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        _, valid = net.get_split_datasets(X, y)
        if valid is None:
            return
        self.start_loss_ = validation_loss(net, valid)
        self.dynamic_threshold_ = self._calc_new_threshold(self.start_loss_)
        self.best_epoch_ = net.history[-1, "epoch"] if len(net.history) else 0
        self.best_model_weights_ = deepcopy(net.module_.state_dict())
