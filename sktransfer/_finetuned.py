"""What the fine-tuned estimators share: fitting a backbone with a new head through skorch.

:class:`FineTunedEstimator` holds the whole ``fit`` (probe, frozen parts computed once,
validation sets, training, interrupts) and persistence; a subclass names its task
(:mod:`sktransfer.tasks`) and turns the network's outputs into its predictions.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import torch
from skorch.helper import predefined_split
from skorch.history import History
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.utils.data import Subset

from ._estimator import TransferEstimator, fit_context
from .data.loader import ImageDataset
from .data.sources import TensorSource
from .engine.cache import FeatureKey
from .engine.budgets import batch_size_for, memory_budget
from .engine.features import extract, run
from .fitting.memo import load_backbone
from .fitting.params import (
    SHARED_PARAMETERS,
    Interval,
    StrOptions,
    invalid,
)
from .fitting.seeding import seeded
from .fitting.spec import NetworkSpec
from .nn.augment import AUGMENTATIONS, BatchMix
from .nn.freezing import resolve_freeze_depth
from .nn.networks import ClassifierNet, adapting_batchnorm, evaluating, mirrored
from .persistence.state import dump_state, load_network_state, plain, rebuild_backbone
from .training.distributed import World
from .training.net import continue_net, held_out_rows, internal_split, transfer_net
from .training.schedule import SCHEDULES, LRRange, lr_curve
from .training.spec import GENTLE_RATIO, MIN_BACKBONE_STEPS, OPTIMIZERS, TrainingSpec

#: The parameters of every fine-tuned estimator beyond the network's, the inputs' and the runtime's.
TRAINING_PARAMETERS = {
    "freeze_depth": [Interval(Integral, 0, None, closed="left"), StrOptions({"all"})],
    "head_init": [StrOptions({"auto", "probe", "random"})],
    "probe_C": [Interval(Real, 0, None, closed="neither")],
    "batchnorm_statistics": [StrOptions({"pretrained", "batch"})],
    "head_epochs": [Interval(Integral, 0, None, closed="left")],
    "finetune_lr_scale": [Interval(Real, 0, None, closed="neither")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "optimizer": [StrOptions(set(OPTIMIZERS)), type],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "lr_schedule": [StrOptions(set(SCHEDULES))],
    "warmup_fraction": [Interval(Real, 0, 1, closed="left")],
    "backbone_lr_ratio": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
    "augment": [StrOptions(set(AUGMENTATIONS)), None],
    "ema_decay": [Interval(Real, 0, 1, closed="neither"), None],
    "tta": [StrOptions({"flip"}), None],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "warm_start": ["boolean"],
}


class FineTunedEstimator(TransferEstimator):
    """Base of the fine-tuned estimators (left of ``BaseEstimator``).

    Subclasses define ``_task(y=None)`` (the task object of their parameters, for the
    targets ``y`` at fit, for what was fitted otherwise), ``_targets_state`` (the fitted
    attribute holding what ``fit`` learns from ``y``) and their prediction methods, which
    read :meth:`_outputs`. ``_target_type`` keeps the fitted task's ``target_type``.
    """

    _parameter_constraints: dict = {
        **SHARED_PARAMETERS,
        **TRAINING_PARAMETERS,
    }

    def _check_own_params(self, params, owner):
        optimizer = params["optimizer"]
        if isinstance(optimizer, type) and not issubclass(optimizer, torch.optim.Optimizer):
            raise invalid(owner, "optimizer", optimizer, f"one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer "
                          "subclass")
        if params["head_epochs"] >= params["max_epochs"]:
            raise invalid(owner, "head_epochs", params["head_epochs"],
                          f"less than max_epochs={params['max_epochs']}, leaving epochs to fine-tune the backbone "
                          "(or use freeze_depth='all')")

    def _task(self, y=None):
        raise NotImplementedError

    # ------------------------------------------------------------------ fitting

    def _fit(self, X, y, sample_weight=None, X_val=None, y_val=None, extra_callbacks=(), quiet=False,
             auto_params=None):
        """The whole fit, after the fit context checked every parameter (``extra_callbacks``:
        skorch callbacks for this fit only, as :meth:`lr_find` adds its sweep, which ends
        it by an interrupt, says nothing of its few steps (``quiet``) and settles ``"auto"``
        as the fit of the parameters it stands for would, ``auto_params``)."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        params, task = self.get_params(deep=False), self._task(y)
        spec = NetworkSpec.of(params)
        world = World.join(spec.torch_device)  # None outside a launcher (torchrun)
        modality = self._modality(spec)
        training = TrainingSpec.of(params, spec)
        continuing = self.warm_start and hasattr(self, "net_")
        if continuing:
            self._check_continuing(training)
        if continuing and task.target_type != getattr(self, "_target_type", task.target_type):
            raise ValueError(f"warm_start=True needs targets of the first fit's kind ({self._target_type}); "
                             f"got {task.target_type} targets")
        checked, signature = self._check_input(X, spec, self._input_signature if continuing else None)
        y = task.check_targets(y, len(checked))
        validation = self._check_validation(X_val, y_val, y, signature, spec, task)
        targets, fitted = task.encode(y, getattr(self, self._targets_state) if continuing else None)
        if world is not None:  # one seed: the same initial weights, validation rows and batch orders everywhere
            seed = world.agree(len(checked), targets, spec.seed)
            spec, training = replace(spec, seed=seed), replace(training, seed=seed)
        weights = task.sample_weights(sample_weight, y, len(checked))
        epochs_before = len(self.net_.history) if continuing else 0
        # the rows early stopping holds out, chosen before anything is fitted (the probe
        # included; a probe alone holds none out); "auto" settles for the rows left to train on
        held_out = (None if validation is not None or training.freeze_depth == "all"
                    else held_out_rows(training, task, targets))
        n_train = len(checked) if held_out is None else len(held_out[0])
        processes = 1 if world is None else world.size
        if auto_params is None:
            settled = training.resolved(n_train, processes, continuing)
        else:  # lr_find's trial: as the fit it stands for, with that fit's held-out rows
            basis = TrainingSpec.of(auto_params, spec)
            rows = None if validation is not None else held_out_rows(basis, task, targets)
            settled = basis.resolved(len(checked) if rows is None else len(rows[0]), processes, continuing)
        training = replace(training, head_init=settled.head_init, backbone_lr_ratio=settled.backbone_lr_ratio)
        with seeded(spec.seed):
            if continuing:
                net = self.net_
                continue_net(net, training)
                net.module_.mix = self._mix(training)
            else:
                backbone = load_backbone(spec, memo=self.cache, modality=modality.name)
                config = modality.data_config(spec, backbone)
                net = transfer_net(self._network(spec, training, backbone, task.n_outputs(fitted), config),
                                   training, task, extra_callbacks)
                net.initialize()
                setattr(self, self._targets_state, fitted)
                self._target_type = task.target_type
                self.n_channels_in_ = signature.n_channels
                self._input_signature = signature
                self.weights_id_ = backbone.weights_id
                self.data_config_ = config
            self._spec = spec
            module = net.module_
            source = modality.source(checked, module, self.data_config_)
            # the head of freeze_depth="all", and the start of a two-stage schedule, is the
            # probe: a head-only stage from a random head collapses (benchmarks/README.md)
            training_all = module.n_frozen == len(module.stages)
            rows = None if training_all else held_out
            fitted_rows = slice(None) if rows is None else rows[0]
            if not (training_all or quiet):
                self._warn_few_steps(n_train, training, processes)
            probe = training_all or training.head_init == "probe" or training.head_epochs
            self.probe_n_iter_ = (self._fit_probe(module, source, spec, training, task, targets, weights, continuing,
                                                  fitted_rows, world) if probe else None)
            if not training_all:
                inputs = self._training_inputs(module, source, spec, training)
                validation = self._validation_set(validation, module, spec, training, task, weighted=weights is not None)
                dataset = ImageDataset(inputs, targets, weights)
                if rows is not None:  # held out before the probe, which did not see them either
                    validation = Subset(dataset, rows[1])
                # the held-out images live only while training: the fitted net keeps no data
                net.train_split = None if validation is None else predefined_split(validation)
                if world is not None:  # the processes draw their own augmentations
                    torch.manual_seed(spec.seed + world.rank)
                try:
                    with net.sharing(world):
                        net.partial_fit(dataset if rows is None else Subset(dataset, rows[0]), targets[fitted_rows])
                finally:
                    net.train_split = internal_split(training, task)
            if world is not None:  # the same weights everywhere, and no process ends before the others
                world.broadcast(module)
            self.net_ = net
        self.device_ = spec.torch_device
        # epochs that ran to their end (an interrupted one has no train_loss)
        self.n_iter_ = sum("train_loss" in entry for entry in self.net_.history[epochs_before:])
        if getattr(net, "interrupted_", False) and not quiet:
            self._warn_interrupted(net, epochs_before)
        return self

    def _check_continuing(self, training) -> None:
        """Refuse a warm start that would switch on or off what the fitted net's callbacks do."""
        callbacks = dict(self.net_.callbacks_)
        if training.early_stopping != ("early_stopping" in callbacks):
            raise ValueError(f"warm_start=True continues the first fit's training, which ran with "
                             f"early_stopping={not training.early_stopping}; keep it, or set warm_start=False")
        if (training.ema_decay is not None) != ("ema" in callbacks):
            first = f"ema_decay={callbacks['ema'].decay}" if "ema" in callbacks else "ema_decay=None"
            raise ValueError(f"warm_start=True continues the first fit's training, which ran with {first}; keep an "
                             "average on (any decay) or off as it was, or set warm_start=False")

    @staticmethod
    def _mix(training):
        """The batch mixing ``training`` asks for, or None."""
        return BatchMix(training.mixup_alpha, training.cutmix_alpha) if training.mixes else None

    def _network(self, spec, training, backbone, n_outputs, config) -> ClassifierNet:
        """The torch network to fine-tune: the modality's parts around the backbone and a new
        head, frozen to ``training.freeze_depth``, on the device."""
        parts = self._modality(spec).network_parts(spec, backbone, config, training.augment)
        module = ClassifierNet(*parts[:3], backbone.stages, parts[3], parts[3].width(backbone.num_features), n_outputs,
                               sequential=backbone.sequential, batchnorm_statistics=training.batchnorm_statistics,
                               mix=self._mix(training))
        module.tokenizer = backbone.tokenizer
        module.set_frozen(resolve_freeze_depth(training.freeze_depth, backbone.stage_names))
        return module.place(spec.torch_device)

    def lr_find(self, X, y, sample_weight=None, *, start_lr: float = 1e-7, end_lr: float = 10.0,
                num_steps: int = 100):
        """Sweep the learning rate up, one training step at each rate, and suggest one.

        The learning-rate range test (Smith, 2017), as fastai's ``lr_find`` and Lightning's
        ``Tuner.lr_find`` run it: a copy of this estimator (its parameters, including
        ``freeze_depth``, ``head_init`` and ``backbone_lr_ratio``, ``"auto"`` settled as
        ``fit`` would settle it on ``X`` for ``max_epochs``) trains for up to
        ``num_steps`` batches with rates growing exponentially from ``start_lr`` to
        ``end_lr``, and stops early once the loss diverges (non-finite, or four times its
        lowest). The estimator itself is left as it was. Plot the curve with
        :class:`~sktransfer.display.LRFinderDisplay`.

        Parameters
        ----------
        X, y, sample_weight
            Training data, as :meth:`fit` takes it.
        start_lr, end_lr : float, default=1e-7, 10.0
            The first and last rate of the sweep (the head's; the backbone's is
            ``backbone_lr_ratio`` times it).
        num_steps : int, default=100
            Training steps (batches) in the sweep, at least 5.

        Returns
        -------
        curve : sklearn.utils.Bunch
            ``lr`` and ``loss`` (the rate and training loss of each step),
            ``smoothed_loss`` (an exponential moving average) and ``suggestion``:
            a good ``lr`` to start from, two thirds of the way down the longest
            stretch over which the smoothed loss keeps falling (fastai's "valley").

        Examples
        --------
        >>> import numpy as np
        >>> from sktransfer import FineTunedClassifier
        >>> X = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
        >>> y = np.arange(64) % 2
        >>> model = FineTunedClassifier("resnet18", weights=None, input_size=32, batch_size=16)
        >>> curve = model.lr_find(X, y, num_steps=12)
        >>> len(curve.lr) <= 12 and 1e-7 <= curve.suggestion <= 10
        True
        """
        from sklearn.base import clone

        if not (isinstance(start_lr, Real) and isinstance(end_lr, Real) and 0 < start_lr < end_lr):
            raise ValueError(f"lr_find needs 0 < start_lr < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}")
        if not (isinstance(num_steps, Integral) and num_steps >= 5):
            raise ValueError(f"lr_find needs num_steps >= 5 (an int), got {num_steps!r}")
        self._check_params()
        if self.freeze_depth == "all":
            raise ValueError("freeze_depth='all' trains nothing: its probe is solved in closed form, without a "
                             "learning rate")
        sweep = LRRange(float(start_lr), float(end_lr), int(num_steps))
        # a constant schedule at rate 1 gives every group its base ratio; the sweep scales it
        trial = clone(self).set_params(lr=1.0, lr_schedule="constant", max_epochs=int(num_steps), head_epochs=0,
                                       early_stopping=False, ema_decay=None, warm_start=False)
        fit_context(type(trial)._fit)(trial, X, y, sample_weight, extra_callbacks=[("lr_find", sweep)], quiet=True,
                                      auto_params=self.get_params(deep=False))
        if not sweep.losses_:
            raise ValueError(f"freeze_depth={self.freeze_depth!r} freezes every stage: the sweep has nothing to "
                             "train (the probe is solved in closed form, without a learning rate)")
        return lr_curve(sweep.lrs_, sweep.losses_)

    def _warn_few_steps(self, n_train, training, processes) -> None:
        """Warn when the backbone will take too few optimizer steps to move, saying what the
        defaults do about it and naming the cheaper recipe."""
        if not training.few_steps(n_train, processes):
            return
        steps = training.backbone_steps(n_train, processes)
        chosen = []  # what "auto" did about it
        if self.head_init == "auto" and training.head_init == "probe":
            chosen.append("starts from the frozen features' linear probe")
        if self.backbone_lr_ratio == "auto" and training.backbone_lr_ratio == GENTLE_RATIO:
            chosen.append(f"trains the backbone at {GENTLE_RATIO} of the head's rate")
        done = (f"; so it {' and '.join(chosen)} (the 'auto' defaults), which stays near the probe" if len(chosen) == 2
                else f"; so it {chosen[0]} (the 'auto' default)" if chosen
                else ", and fine-tuning then often ends below the frozen features' linear probe")
        warnings.warn(
            f"{type(self).__name__} will train the backbone for only {steps} optimizer steps ({n_train} training "
            f"samples, batch_size={training.batch_size}, {training.max_epochs - training.head_epochs} epochs): "
            f"fewer than {MIN_BACKBONE_STEPS}{done}. freeze_depth='all' (the probe, in seconds) is the cheaper "
            "recipe; or raise max_epochs",
            UserWarning,
            stacklevel=5,  # the caller of fit, through _fit and the fit context
        )

    def _warn_interrupted(self, net, epochs_before) -> None:
        stopping = dict(net.callbacks_).get("early_stopping")
        if stopping is not None and stopping.misses_ >= stopping.patience:
            return  # skorch's early stopping ends training with a KeyboardInterrupt of its own
        if stopping is not None and stopping.best_model_weights_ is not None:
            kept = (f"the weights of epoch {stopping.best_epoch_}" if stopping.best_epoch_ > epochs_before
                    else "the weights it started from") + ", the best validation loss so far"
        elif "ema" in dict(net.callbacks_):
            kept = "the moving average of the weights when it stopped"
        else:
            kept = "the weights reached when it stopped"
        warnings.warn(
            f"fit was interrupted (KeyboardInterrupt) after {self.n_iter_} of {self.max_epochs} "
            f"epochs; the {type(self).__name__} is fitted with {kept}",
            UserWarning,
            stacklevel=5,  # the caller of fit, through _fit and the fit context
        )

    def _frozen_features(self, module, source, spec, training, rows, world) -> np.ndarray:
        """Pooled features of the inputs ``rows`` (indices or a slice), as the head will meet them.

        The frozen stages run as they are (eval mode, through the feature cache when
        ``cache``). The BatchNorm layers of stages that fine-tuning will train first
        re-estimate their statistics on these rows (not on rows held out for validation),
        in one pass in a random order that also gives the features (see
        :func:`~sktransfer.nn.networks.adapting_batchnorm`). In a data-parallel fit each
        process computes a share of the rows (not through the cache; the statistics it
        keeps are its own until training starts from rank 0's) and every process gets
        all of them.
        """
        device, autocast, modality = spec.torch_device, spec.autocast, self._modality(spec)
        frozen = modality.frozen_net(module, self.data_config_)
        batch_size = batch_size_for(spec.batch_size, device, modality.input_size(self.data_config_))
        trainable = module.stages[module.n_frozen:] if training.batchnorm_statistics == "batch" else []
        rows = np.arange(len(source))[rows]
        with evaluating(module), adapting_batchnorm(trainable) as adapting:
            if not adapting and world is None:
                key = FeatureKey(spec, self.data_config_, len(module.stages) - 1, frozen, autocast) if self.cache else None
                return extract(frozen, source, module.head.in_features, device=device, key=key,
                               autocast_dtype=autocast, batch_size=batch_size)[rows]
            # batch statistics: a random order (mixed classes in every batch), no batch of one input
            order = np.random.default_rng(spec.seed).permutation(rows) if adapting else rows
            mine = order if world is None else world.share(order)
            while adapting and len(mine) % batch_size == 1 and batch_size < len(mine):
                batch_size += 1
            features = run(frozen, source, mine, batch_size=batch_size, device=device, autocast_dtype=autocast)
            if world is not None:
                features = world.gather(features, len(order))
            position = np.empty(len(source), dtype=np.int64)
            position[rows] = np.arange(len(rows))
            out = np.empty(tuple(features.shape), dtype=np.float32)
            out[position[order]] = features.numpy()
            return out

    def _fit_probe(self, module, source, spec, training, task, targets, weights, continuing, rows, world) -> int:
        """Solve the linear probe on the frozen features of ``rows`` and make it the head (in
        a data-parallel fit, every process solves it on the features of every row)."""
        device = spec.torch_device
        features = torch.from_numpy(self._frozen_features(module, source, spec, training, rows, world)).to(device)
        head = module.head
        W, b, n_iter = task.probe(
            features, torch.as_tensor(targets[rows]), head.out_features, training.probe_C,
            None if weights is None else torch.from_numpy(weights[rows]),
            init=(head.weight, head.bias) if continuing else None,
        )
        with torch.no_grad():
            head.weight.copy_(W)
            head.bias.copy_(b)
        return n_iter

    def _check_validation(self, X_val, y_val, y, signature, spec, task):
        """``(checked inputs, targets)`` of a validation set checked with the training data
        (before the backbone loads), or None."""
        if X_val is None and y_val is None:
            return None
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be passed together")
        checked, _ = self._check_input(X_val, spec, signature, what="X_val")
        y_val = task.check_targets(y_val, len(checked), names=("X_val", "y_val"))
        task.encode_validation(y_val, y)
        return checked, y_val

    def _validation_set(self, validation, module, spec, training, task, weighted):
        """The checked validation set as the network's validation dataset, or None."""
        if validation is None:
            return None
        checked, y_val = validation
        source = self._modality(spec).source(checked, module, self.data_config_)
        weights = np.ones(len(source), dtype=np.float32) if weighted else None
        targets = task.encode_known(y_val, getattr(self, self._targets_state))
        return ImageDataset(self._training_inputs(module, source, spec, training), targets, weights)

    def _training_inputs(self, module, source, spec, training):
        """What the net trains on: the inputs, or the output of the frozen stages computed
        once, when it fits in memory."""
        depth = module.n_frozen
        if (not self.cache or training.augment or training.mixes or depth == 0 or training.head_epochs
                or not module.sequential):
            return source
        device, autocast = spec.torch_device, spec.autocast
        batch_size = batch_size_for(spec.batch_size, device, self._modality(spec).input_size(self.data_config_))
        prefix = nn.Sequential(module.preprocess, module.trunk[:depth])
        dtype = autocast or torch.float32
        options = {"batch_size": batch_size, "device": device, "autocast_dtype": autocast, "out_dtype": dtype}
        stored = run(prefix, source, np.arange(len(source)), max_bytes=memory_budget(), **options)
        return source if stored is None else TensorSource("stage_input", stored)

    # --------------------------------------------------------------- predicting

    def _prediction_source(self, X):
        """``X`` checked against what ``fit`` saw, as the fitted network reads it."""
        check_is_fitted(self)
        checked, _ = self._check_input(X, self._spec, self._input_signature)
        return self._modality(self._spec).source(checked, self.net_.module_, self.data_config_)

    def _outputs(self, X) -> np.ndarray:
        """The network's outputs for ``X`` (float64), as the task reads them."""
        source = self._prediction_source(X)
        outputs = self.net_.forward(ImageDataset(source)).double()
        if self.tta == "flip":
            with mirrored():
                outputs = (outputs + self.net_.forward(ImageDataset(source)).double()) / 2
        return outputs.numpy()

    # -------------------------------------------------------------- persistence

    def __getstate__(self):
        # plain data only: the network travels as numpy arrays of its weights, the skorch
        # net as its history (the optimizer's moments are not kept: see the user guide)
        state = dict(super().__getstate__())  # object.__getstate__ gives __dict__ itself
        net = state.pop("net_", None)
        if net is not None:
            state["_history"] = plain(list(net.history))
        return dump_state(state, None if net is None else net.module_)

    def __setstate__(self, state):
        state, network = self._restore(state)
        history = state.pop("_history", None)
        super().__setstate__(state)
        if network is not None:
            spec = self._spec
            # the rates a warm start would train at are settled again by its fit
            training = TrainingSpec.of(self.get_params(deep=False), spec).resolved(None)
            n_outputs = self._task().n_outputs(getattr(self, self._targets_state))
            with seeded(0):  # the new head's random values are replaced: leave the caller's RNG alone
                module = self._network(spec, training, rebuild_backbone(spec), n_outputs, self.data_config_)
                net = transfer_net(module, training, self._task())
                net.initialize()
            load_network_state(net.module_, network, spec.backbone)
            net.history = History(history)
            self.net_ = net

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
