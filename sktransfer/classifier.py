"""FineTunedClassifier: fine-tune a pretrained backbone through skorch, as a scikit-learn classifier."""

from __future__ import annotations

import os
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit
from skorch.helper import predefined_split
from skorch.history import History
from torch import nn

from .engine.cache import FeatureKey
from .engine.device import inference_batch_size
from .engine.features import extract, run
from .fitting.memo import load_backbone
from .fitting.params import IMAGE_PARAMETERS, Interval, StrOptions, invalid, validate_params
from .training.probe import fit_linear_probe
from .fitting.seeding import seeded
from .fitting.spec import NetworkSpec
from ._version import DOC_LINK_TEMPLATE
from .persistence.state import dump_state, load_network_state, plain, rebuild_backbone, restore_state, restores_on_error
from .training.net import SCHEDULES, HeadFirst, LRSchedule, Progress, TransferNet
from .backbones._registry import backbone_modality
from .data.inputs import InputSignature, validate_images
from .data.text import TextSource, validate_texts
from .data.loader import BatchLoader, ImageDataset
from .data.sources import TensorSource
from .nn.augment import AUGMENTATIONS, FlipCrop
from .nn.freezing import resolve_freeze_depth
from .nn.networks import (
    ClassifierNet,
    FeatureNet,
    TextFeatureNet,
    adapting_batchnorm,
    backbone_parts,
    data_config_for,
    evaluating,
    text_config,
)
from .nn.pooling import TextPool


def stage_input_budget() -> int:
    """Bytes the stored outputs of frozen stages may take: a quarter of the available
    memory, at most 8 GiB."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX
        available = 8 << 30
    return min(8 << 30, available // 4)


OPTIMIZERS = {
    "adamw": (torch.optim.AdamW, {}),
    "adam": (torch.optim.Adam, {}),
    "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
}


def _optimizer(optimizer):
    return OPTIMIZERS[optimizer] if isinstance(optimizer, str) else (optimizer, {})


def training_weights(sample_weight, class_weight, y, n_samples):
    """Per-sample loss weights (``sample_weight`` times the ``class_weight`` of each label),
    scaled to mean 1 so that learning rates keep their meaning; None when unweighted."""
    if sample_weight is None and class_weight is None:
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
    if class_weight is not None:
        weights = weights * compute_sample_weight(class_weight, y)
    if not weights.sum() > 0:
        raise ValueError("Sample weights must contain at least one non-zero number: every weight is zero")
    return (weights / weights.mean()).astype(np.float32)


def _labels(y, n_samples, names=("X", "y")):
    y = column_or_1d(y, warn=True)
    if len(y) != n_samples:
        raise ValueError(f"{names[0]} has {n_samples} images but {names[1]} has {len(y)} labels")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y)
        if bad.any():
            i = int(np.argmax(bad))
            what = "NaN" if np.isnan(y[i]) else "infinity"
            raise ValueError(f"Input y contains {what}: label at index {i}")
    if y.dtype.kind == "O":
        missing = [i for i, v in enumerate(y) if v is None or (isinstance(v, float) and np.isnan(v))]
        if missing:
            raise ValueError(f"Input y contains NaN: label at index {missing[0]} is missing")
    check_classification_targets(y)
    return y


class FineTunedClassifier(ClassifierMixin, BaseEstimator):
    """Fine-tune a pretrained backbone with a new linear head, as a scikit-learn classifier.

    ``fit`` builds a fresh network from the registry's pretrained weights
    (unless ``warm_start``), adds a linear head sized to the classes, and trains
    it with a skorch ``NeuralNetClassifier`` (kept as ``net_``): callbacks,
    history and device handling are skorch's. Inputs go through the same path
    as :class:`PretrainedFeatureExtractor`.

    Parameters
    ----------
    backbone : str, default="resnet18"
        A registered backbone name.
    weights : str, path or None, default="DEFAULT"
        Pretrained weights, as for :func:`~sktransfer.get_backbone`.
    freeze_depth : int or "all", default=0
        Backbone stages frozen from the input side: their parameters get no
        gradients and their BatchNorm layers stay in eval mode, so weights and
        running statistics are unchanged by training. ``"all"`` fits only the
        head, as a linear probe solved to convergence (no epochs run).
    head_init : {"random", "probe"}, default="random"
        How the new head starts in one-stage fine-tuning. ``"random"``: a
        random linear head. ``"probe"``: the linear probe solved on the
        frozen network's features (multinomial logistic regression, see
        ``probe_C``), then fine-tuning from it (LP-FT, Kumar et al., ICLR
        2022), for one more inference pass over the training images. With
        AdamW at full rate a converged head destabilized the backbone in
        short runs (600 digits, 2 epochs: 0.10 against 0.95 for a random
        head; with ``backbone_lr_ratio=0.1``, 0.92); pair it with a lower
        backbone rate. Measurements in benchmarks/README.md.
    probe_C : float, default=0.01
        Inverse L2 strength of the linear probe, as ``LogisticRegression``'s
        ``C``, on the features centered and divided by their root mean
        variance. The probe minimizes the classifier's own loss
        (cross-entropy with ``label_smoothing``, weighted by
        ``sample_weight`` and ``class_weight``) plus that penalty. 0.01
        measured best on digits and Fashion-MNIST; tune it with
        ``GridSearchCV`` (the features are cached, so each value costs only
        the solve).
    batchnorm_statistics : {"pretrained", "batch"}, default="pretrained"
        What BatchNorm layers normalize with while fine-tuning.
        ``"pretrained"`` keeps the pretrained running statistics (the layers
        stay in inference mode, as Keras' transfer-learning guide advises;
        their affine weights still train): the features the head was
        prepared on do not shift when training starts. ``"batch"`` is
        PyTorch's training mode (each batch's statistics, running averages
        updated); the trainable stages' statistics are then first
        re-estimated on the training images when a head is prepared
        beforehand. On digits at 32 px, 3 epochs: 0.991 against 0.938.
    head_epochs : int, default=0
        Two-stage schedule: the head starts from the linear probe, the first
        ``head_epochs`` epochs train only the head (backbone frozen), the
        remaining epochs unfreeze down to ``freeze_depth`` with a restarted
        schedule peaking at ``finetune_lr_scale`` times the rates. 0 trains
        in one stage.
    finetune_lr_scale : float, default=0.1
        Learning-rate multiplier of the second stage when ``head_epochs > 0``.
    max_epochs : int, default=10
        Epochs per ``fit`` call.
    batch_size : int or None, default=None
        Images per step; None picks 32 on CPU and 128 on GPU.
    lr : float, default=1e-3
        Peak learning rate of the head (and of the backbone, times
        ``backbone_lr_ratio``).
    optimizer : {"adamw", "adam", "sgd"} or torch.optim.Optimizer class, default="adamw"
        ``"sgd"`` uses Nesterov momentum 0.9; a class gets only ``lr`` and
        ``weight_decay``.
    weight_decay : float, default=0.01
        Decoupled for AdamW, L2 for the others.
    lr_schedule : {"onecycle", "cosine", "constant"}, default="onecycle"
        Per-batch learning-rate schedule over each stage.
    warmup_fraction : float, default=0.25
        Fraction of each stage spent warming up.
    backbone_lr_ratio : float, default=1.0
        Backbone learning rate relative to the head's (e.g. 0.1 for gentler
        fine-tuning).
    label_smoothing : float, default=0.1
        Cross-entropy label smoothing.
    augment : {"flip", "flip_crop"} or None, default="flip"
        Train-time augmentation on the device: random horizontal flips, plus
        with ``"flip_crop"`` small random crops (shifts of up to 1/16 of the
        side, reflected at the border). None turns it off, e.g. where mirrored
        images change meaning (text, some digits).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified), or use the
        ``X_val``, ``y_val`` passed to ``fit``, and stop when the validation
        loss has not improved for ``n_iter_no_change`` epochs, restoring the
        best weights.
    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping, in (0, 1).
    n_iter_no_change : int, default=5
        Epochs without a better validation loss before early stopping ends
        training.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn's classifiers:
        ``{label: weight}``, or ``"balanced"`` for weights inversely
        proportional to class frequencies. Multiplies ``sample_weight``.
    max_length : int or None, default=None
        Text backbones only: tokens kept per text (longer texts are
        truncated, batches padded to their longest text); None keeps the
        model's own limit. With a text backbone, ``augment`` does not apply
        and ``pooling`` and ``input_size`` keep their defaults.
    pooling : {"avg", "max", "avgmax", "catavgmax", "token"}, default="avg"
        Pooling of the last stage before the head.
    input_size : int, (int, int) or None, default=None
        Resolution fed to the network; None uses the weights' own.
    resize : {"squash", "center_crop"}, default="squash"
        ``"squash"`` resizes whole images; ``"center_crop"`` keeps the aspect
        ratio and crops the center like the weights' evaluation transform.
    device : str or torch.device, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    precision : {"auto", "float32", "bfloat16", "float16"}, default="auto"
        Autocast dtype on CUDA ("auto": bfloat16, or float16 with loss scaling
        on GPUs without bfloat16); training on the CPU is always float32.
    compile : "auto" or bool, default="auto"
        True: ``torch.compile`` the network for training and prediction
        (skorch's ``compile``). ``"auto"`` and False train and predict eagerly:
        compiling the training graph of EfficientNet-Lite0 took 93 s on a 2-core
        CPU for steps 0.88x as fast, and 30 s on an H200 for 4,991 images/s
        against 5,088 eagerly; the extractor's ``"auto"`` compiles
        ``transform`` where it pays back.
    cache : bool, default=True
        Without augmentation, run the frozen part of the network once per fit
        instead of once per epoch: with ``freeze_depth="all"`` the head trains
        on pooled features (shared with other fits through
        ``sktransfer.feature_cache``); with another ``freeze_depth`` on a
        backbone whose stages run one after the other, the trainable stages
        train on the stored output of the last frozen one when it fits in
        memory (a quarter of the available memory, at most 8 GiB).
    channel_axis, image_shape, value_range
        How numeric arrays are read, as for :class:`PretrainedFeatureExtractor`.
    warm_start : bool, default=False
        Continue training the fitted network instead of starting again from
        the pretrained weights (classes must not change).
    random_state : int, RandomState or None, default=None
        Seeds the head, the shuffling, augmentation, dropout and the validation
        split; results are reproducible on a CPU. The caller's global torch RNG
        state is left untouched.
    verbose : int, default=0
        1 prints skorch's epoch table; 2 adds a progress bar per epoch.

    Attributes
    ----------
    classes_ : ndarray
        The class labels.
    net_ : TransferNet
        The fitted skorch net (``net_.module_`` is the torch network,
        ``net_.history`` the training history).
    n_iter_ : int
        Epochs trained by the last ``fit`` (0 with ``freeze_depth="all"``).
    probe_n_iter_ : int or None
        L-BFGS iterations of the linear probe in the last ``fit``; None when
        no probe was solved.
    weights_id_ : str
        Which pretrained weights the network started from.
    data_config_ : DataConfig
        The preprocessing applied (the weights' config with ``input_size``).
    device_ : torch.device
    n_channels_in_, n_features_in_, feature_names_in_
        As for :class:`PretrainedFeatureExtractor`.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import FineTunedClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8)
    >>> y = np.array(["cat", "dog"] * 8)
    >>> clf = FineTunedClassifier("resnet18", weights=None, input_size=32, max_epochs=1,
    ...                           random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape, clf.predict_proba(X[:3]).sum(axis=1).round(6).tolist()
    ((3,), [1.0, 1.0, 1.0])
    """

    # the HTML repr's "?" icon opens this class's page of the API reference
    _doc_link_module = "sktransfer"
    _doc_link_template = DOC_LINK_TEMPLATE

    def __init__(
        self,
        backbone="resnet18",
        weights="DEFAULT",
        *,
        freeze_depth=0,
        head_init="random",
        probe_C=0.01,
        batchnorm_statistics="pretrained",
        head_epochs=0,
        finetune_lr_scale=0.1,
        max_epochs=10,
        batch_size=None,
        lr=1e-3,
        optimizer="adamw",
        weight_decay=0.01,
        lr_schedule="onecycle",
        warmup_fraction=0.25,
        backbone_lr_ratio=1.0,
        label_smoothing=0.1,
        augment="flip",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        class_weight=None,
        max_length=None,
        pooling="avg",
        input_size=None,
        resize="squash",
        device="auto",
        precision="auto",
        compile="auto",
        cache=True,
        channel_axis="auto",
        image_shape=None,
        value_range=(0.0, 1.0),
        warm_start=False,
        random_state=None,
        verbose=0,
    ):
        self.backbone = backbone
        self.weights = weights
        self.freeze_depth = freeze_depth
        self.head_init = head_init
        self.probe_C = probe_C
        self.batchnorm_statistics = batchnorm_statistics
        self.head_epochs = head_epochs
        self.finetune_lr_scale = finetune_lr_scale
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.warmup_fraction = warmup_fraction
        self.backbone_lr_ratio = backbone_lr_ratio
        self.label_smoothing = label_smoothing
        self.max_length = max_length
        self.augment = augment
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.pooling = pooling
        self.input_size = input_size
        self.resize = resize
        self.device = device
        self.precision = precision
        self.compile = compile
        self.cache = cache
        self.channel_axis = channel_axis
        self.image_shape = image_shape
        self.value_range = value_range
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    # what a saved state may hold besides the parameters (the network is rebuilt from
    # ``_network``, the skorch net from it and ``_history``); ``_required_state`` must all
    # be there when it is fitted
    _required_state = ("classes_", "n_iter_", "probe_n_iter_", "weights_id_", "data_config_", "device_",
                       "n_channels_in_", "_input_signature", "_spec", "_history")
    _fitted_state = (*_required_state, "_network", "n_features_in_", "feature_names_in_")

    _parameter_constraints: dict = {
        **IMAGE_PARAMETERS,
        "freeze_depth": [Interval(Integral, 0, None, closed="left"), StrOptions({"all"})],
        "head_init": [StrOptions({"probe", "random"})],
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
        "backbone_lr_ratio": [Interval(Real, 0, None, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
        "augment": [StrOptions(set(AUGMENTATIONS)), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "warm_start": ["boolean"],
    }

    # ------------------------------------------------------------------ fitting

    def _check_params(self):
        validate_params(self)
        if backbone_modality(self.backbone) == "text":
            for name, default in (("pooling", "avg"), ("input_size", None)):
                if getattr(self, name) != default:
                    raise invalid(self, name, f"{default!r} with a text backbone, which pools as its model says")
        elif self.max_length is not None:
            raise invalid(self, "max_length", "None with an image backbone (it counts a text model's tokens)")
        if isinstance(self.optimizer, type) and not issubclass(self.optimizer, torch.optim.Optimizer):
            raise invalid(self, "optimizer", f"one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer subclass")
        if self.head_epochs >= self.max_epochs:
            raise invalid(
                self, "head_epochs",
                f"less than max_epochs={self.max_epochs}, leaving epochs to fine-tune the "
                "backbone (or use freeze_depth='all')",
            )

    def _build_net(self, spec, backbone, n_classes, config=None):
        depth = resolve_freeze_depth(self.freeze_depth, backbone.stage_names)
        if backbone.modality == "text":  # augment applies to images only
            preprocess, augment, trunk, pool = nn.Identity(), nn.Identity(), backbone.module, TextPool(config)
        else:
            preprocess, trunk, pool, _ = backbone_parts(spec, backbone, len(backbone.stages) - 1, config)
            augment = FlipCrop(crop=self.augment == "flip_crop") if self.augment else nn.Identity()
        module = ClassifierNet(
            preprocess,
            augment,
            trunk,
            backbone.stages,
            pool,
            pool.width(backbone.num_features),
            n_classes,
            sequential=backbone.sequential,
            batchnorm_statistics=self.batchnorm_statistics,
        )
        module.tokenizer = backbone.tokenizer
        module.set_frozen(depth)
        device = spec.torch_device
        module.place(device)
        optimizer_cls, optimizer_kwargs = _optimizer(self.optimizer)
        batch_size = spec.batch_size or (128 if device.type == "cuda" else 32)
        epochs = self.max_epochs
        segments = [(0, epochs, 1.0)]
        if self.head_epochs:
            segments = [(0, self.head_epochs, 1.0), (self.head_epochs, epochs, self.finetune_lr_scale)]
        callbacks = [("lr_schedule", LRSchedule(
            self.lr_schedule, self.warmup_fraction,
            # skorch puts the matched "trunk.*" group first, the rest (the head) last
            base_lrs=[self.lr * self.backbone_lr_ratio, self.lr], segments=segments))]
        if self.head_epochs:
            callbacks.append(("head_first", HeadFirst(self.head_epochs, depth)))
        if self.early_stopping:
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.n_iter_no_change, load_best=True)))
        if self.verbose >= 2:
            callbacks.append(("progress", Progress()))
        return TransferNet(
            module,
            criterion=nn.CrossEntropyLoss,
            criterion__label_smoothing=float(self.label_smoothing),
            criterion__reduction="none",  # per-sample losses, weighted in get_loss
            optimizer=optimizer_cls,
            optimizer__weight_decay=float(self.weight_decay),
            optimizer__param_groups=[("trunk.*", {"lr": self.lr * self.backbone_lr_ratio})],
            **{f"optimizer__{k}": v for k, v in optimizer_kwargs.items()},
            lr=float(self.lr),
            max_epochs=epochs,
            batch_size=batch_size,
            iterator_train=BatchLoader,
            iterator_train__shuffle=True,
            iterator_train__drop_last=True,
            iterator_train__device=str(device),
            iterator_train__seed=spec.seed,
            iterator_valid=BatchLoader,
            iterator_valid__device=str(device),
            train_split=self._internal_split(spec),
            callbacks=callbacks,
            classes=list(range(n_classes)),
            device=str(device),
            autocast_dtype=spec.autocast,
            compile=spec.compile is True,
            verbose=self.verbose,
        )

    def _internal_split(self, spec):
        if not self.early_stopping:
            return None
        return ValidSplit(self.validation_fraction, stratified=True, random_state=spec.seed)

    @restores_on_error
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None):
        """Fine-tune on images ``X`` with labels ``y``.

        Parameters are checked first, then the data, then the backbone is loaded.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Training images (any input :class:`PretrainedFeatureExtractor` accepts).
        y : array-like of shape (n_samples,)
            Class labels: ints, strings or bools; at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each image in the loss (times its
            ``class_weight``); None weighs all images alike.
        X_val, y_val : array-like, default=None
            A validation set (the same kind of input as ``X``, labels among
            ``y``'s classes), scored after every epoch: ``valid_loss`` and
            ``valid_acc`` join the history and the epoch table, and early
            stopping watches it instead of holding out part of ``X``. It is
            not trained on.

        Returns
        -------
        self : FineTunedClassifier
        """
        self._check_params()
        spec = NetworkSpec.of(self)
        continuing = self.warm_start and hasattr(self, "net_")
        if backbone_modality(self.backbone) == "text":
            # tokenized with the backbone's tokenizer, known once it is loaded
            source, signature = TextSource(validate_texts(X, type(self).__name__), None, 0), InputSignature("text")
        else:
            source, signature = validate_images(self, X, spec.inputs,
                                                self._input_signature if continuing else None)
        y = _labels(y, len(source))
        validation = self._check_validation(X_val, y_val, y, signature, spec)
        if continuing:
            if not np.array_equal(np.unique(y), self.classes_):
                raise ValueError(
                    f"warm_start=True needs the classes of the first fit {self.classes_.tolist()}, "
                    f"got {np.unique(y).tolist()}"
                )
            encoded = np.searchsorted(self.classes_, y)
        else:
            encoder = LabelEncoder().fit(y)
            if len(encoder.classes_) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs at least 2 classes in y; got only one class: "
                    f"{encoder.classes_[0]!r}"
                )
            encoded = encoder.transform(y)
        weights = training_weights(sample_weight, self.class_weight, y, len(source))
        epochs_before = len(self.net_.history) if continuing else 0
        with seeded(spec.seed):
            if continuing:
                net = self.net_
            else:
                backbone = load_backbone(spec, memo=self.cache, modality=backbone_modality(self.backbone))
                config = text_config(backbone, self.max_length) if signature.kind == "text" else None
                net = self._build_net(spec, backbone, len(encoder.classes_), config)
                net.initialize()
                self.classes_ = encoder.classes_
                self.n_channels_in_ = signature.n_channels
                self._input_signature = signature
                self.weights_id_ = backbone.weights_id
                self.data_config_ = config or data_config_for(spec, backbone)
            self._spec = spec
            module = net.module_
            if signature.kind == "text":
                source.tokenizer, source.max_length = module.tokenizer, self.data_config_.max_length
            # the head of freeze_depth="all", and the start of a two-stage schedule, is the
            # probe: a head-only stage from a random head collapsed (0.59 against 0.95 for
            # one stage on 600 digits in 2 epochs)
            probe = module.n_frozen == len(module.stages) or self.head_init == "probe" or self.head_epochs
            self.probe_n_iter_ = self._fit_probe(module, source, spec, encoded, weights, continuing) if probe else None
            if module.n_frozen < len(module.stages):
                inputs = self._training_inputs(module, source, spec)
                validation = self._validation_set(validation, module, spec, weighted=weights is not None)
                # the held-out images live only while training: the fitted net keeps no data
                net.train_split = self._internal_split(spec) if validation is None else predefined_split(validation)
                try:
                    net.partial_fit(ImageDataset(inputs, encoded.astype(np.int64), weights), encoded)
                finally:
                    net.train_split = self._internal_split(spec)
            self.net_ = net
        self.device_ = spec.torch_device
        # epochs that ran to their end (an interrupted one has no train_loss)
        self.n_iter_ = sum("train_loss" in entry for entry in self.net_.history[epochs_before:])
        if getattr(net, "interrupted_", False):
            self._warn_interrupted(net)
        return self

    def _warn_interrupted(self, net) -> None:
        stopping = dict(net.callbacks_).get("early_stopping")
        if stopping is not None and stopping.misses_ >= stopping.patience:
            return  # skorch's early stopping ends training with a KeyboardInterrupt of its own
        if stopping is not None and stopping.best_model_weights_ is not None:
            kept = f"the weights of epoch {stopping.best_epoch_}, the best validation loss so far"
        else:
            kept = "the weights reached when it stopped"
        warnings.warn(
            f"fit was interrupted (KeyboardInterrupt) after {self.n_iter_} of {self.max_epochs} "
            f"epochs; the classifier is fitted with {kept}",
            UserWarning,
            stacklevel=3,
        )

    def _frozen_features(self, module, source, spec) -> np.ndarray:
        """Pooled features of every image, as the head will meet them.

        The frozen stages run as they are (eval mode, through the feature cache when
        ``cache``). The BatchNorm layers of stages that fine-tuning will train first
        re-estimate their statistics on these images, in one pass in a random order
        that also gives the features (see :func:`~sktransfer.nn.networks.adapting_batchnorm`).
        """
        device, autocast = spec.torch_device, spec.autocast
        if source.kind == "text":
            frozen, size = TextFeatureNet(module.trunk, module.pool, module.tokenizer,
                                          self.data_config_.max_length), None
        else:
            frozen, size = FeatureNet(module.preprocess, module.trunk, module.pool), self.data_config_.input_size
        batch_size = inference_batch_size(spec.batch_size, device, size)
        trainable = module.stages[module.n_frozen:] if self.batchnorm_statistics == "batch" else []
        with evaluating(module), adapting_batchnorm(trainable) as adapting:
            if not adapting:
                key = FeatureKey(spec, self.data_config_, len(module.stages) - 1, frozen, autocast) if self.cache else None
                return extract(frozen, source, module.head.in_features, device=device, key=key,
                               autocast_dtype=autocast, batch_size=batch_size)
            # batch statistics: mixed classes in every batch, and no batch of one image
            n = len(source)
            while n % batch_size == 1 and batch_size < n:
                batch_size += 1
            order = np.random.default_rng(spec.seed).permutation(n)
            features = run(frozen, source, order, batch_size=batch_size, device=device, autocast_dtype=autocast)
            out = np.empty(tuple(features.shape), dtype=np.float32)
            out[order] = features.numpy()
            return out

    def _fit_probe(self, module, source, spec, y, weights, continuing) -> int:
        """Solve the linear probe on the frozen features and make it the head."""
        device = spec.torch_device
        features = torch.from_numpy(self._frozen_features(module, source, spec)).to(device)
        head = module.head
        W, b, n_iter = fit_linear_probe(
            features, torch.as_tensor(y, dtype=torch.int64), head.out_features, self.probe_C,
            None if weights is None else torch.from_numpy(weights), float(self.label_smoothing),
            init=(head.weight, head.bias) if continuing else None,
        )
        with torch.no_grad():
            head.weight.copy_(W)
            head.bias.copy_(b)
        return n_iter

    def _check_validation(self, X_val, y_val, y, signature, spec):
        """``(source, labels)`` of a validation set checked with the training data (before
        the backbone loads), or None."""
        if X_val is None and y_val is None:
            return None
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be passed together")
        if signature.kind == "text":
            source = TextSource(validate_texts(X_val, type(self).__name__), None, 0)
        else:
            source, _ = validate_images(self, X_val, spec.inputs, signature, what="X_val")
        y_val = _labels(y_val, len(source), names=("X_val", "y_val"))
        classes = np.unique(y)
        unknown = ~np.isin(y_val, classes)
        if unknown.any():
            i = int(np.argmax(unknown))
            raise ValueError(f"y_val[{i}] = {y_val[i:i + 1].tolist()[0]!r} is not one of the classes of y "
                             f"{classes.tolist()}")
        return source, y_val

    def _validation_set(self, validation, module, spec, weighted):
        """The checked validation set as the network's validation dataset, or None."""
        if validation is None:
            return None
        source, y_val = validation
        if source.kind == "text":
            source.tokenizer, source.max_length = module.tokenizer, self.data_config_.max_length
        weights = np.ones(len(source), dtype=np.float32) if weighted else None
        encoded = np.searchsorted(self.classes_, y_val).astype(np.int64)
        return ImageDataset(self._training_inputs(module, source, spec), encoded, weights)

    def _training_inputs(self, module, source, spec):
        """What the net trains on: the images, or the output of the frozen stages computed
        once, when it fits in memory."""
        depth = module.n_frozen
        if not self.cache or self.augment or depth == 0 or self.head_epochs or not module.sequential:
            return source
        device, autocast = spec.torch_device, spec.autocast
        batch_size = inference_batch_size(spec.batch_size, device, self.data_config_.input_size)
        prefix = nn.Sequential(module.preprocess, module.trunk[:depth])
        dtype = autocast or torch.float32
        options = {"batch_size": batch_size, "device": device, "autocast_dtype": autocast, "out_dtype": dtype}
        stored = run(prefix, source, np.arange(len(source)), max_bytes=stage_input_budget(), **options)
        return source if stored is None else TensorSource("stage_input", stored)

    # --------------------------------------------------------------- predicting

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self)
        if self._input_signature.kind == "text":
            module = self.net_.module_
            source = TextSource(validate_texts(X, type(self).__name__), module.tokenizer, self.data_config_.max_length)
        else:
            source, _ = validate_images(self, X, self._spec.inputs, self._input_signature)
        return self.net_.forward(ImageDataset(source)).double().numpy()

    def predict_proba(self, X):
        """Class probabilities (rows sum to 1), in the order of ``classes_``.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Images of the kind seen in ``fit``, with a batch axis.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        logits = self._logits(X)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def decision_function(self, X):
        """Logits; for two classes, the logit margin of ``classes_[1]`` over ``classes_[0]``.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Images of the kind seen in ``fit``, with a batch axis.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Images of the kind seen in ``fit``, with a batch axis.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        winners = self._logits(X).argmax(axis=1)
        return self.classes_[winners]

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
        state, network = restore_state(state, type(self))
        history = state.pop("_history", None)
        super().__setstate__(state)
        if network is not None:
            spec = self._spec
            with seeded(0):  # the new head's random values are replaced: leave the caller's RNG alone
                net = self._build_net(spec, rebuild_backbone(spec), len(self.classes_), self.data_config_)
                net.initialize()
            load_network_state(net.module_, network, spec.backbone)
            net.history = History(history)
            self.net_ = net

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
