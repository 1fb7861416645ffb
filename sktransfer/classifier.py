"""FineTunedClassifier: fine-tune a pretrained backbone through skorch, as a scikit-learn classifier."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ._estimator import fit_context
from ._finetuned import FineTunedEstimator
from .fitting.params import Interval, StrOptions
from .tasks import Classification, MultiLabel


class FineTunedClassifier(FineTunedEstimator, ClassifierMixin, BaseEstimator):
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
    head_init : {"auto", "random", "probe"}, default="auto"
        How the new head starts in one-stage fine-tuning. ``"random"``: a
        random linear head. ``"probe"``: the linear probe solved on the
        frozen network's features (multinomial logistic regression, see
        ``probe_C``), then fine-tuning from it (LP-FT, Kumar et al., ICLR
        2022), for one more inference pass over the training images. With
        AdamW at full rate a converged head can destabilize the backbone in
        short runs; pair it with a lower backbone rate (measurements in
        benchmarks/README.md). ``"auto"``: ``"probe"`` when the backbone
        will take fewer than 20 optimizer steps (training samples //
        ``batch_size`` x epochs through the backbone, counted for each
        ``fit``; a warm start keeps its head) at a backbone rate of at most
        0.1 of the head's (``backbone_lr_ratio="auto"`` gives it), where a
        random head at full rate ends below the probe; ``"random"`` otherwise.
    probe_C : float, default=0.01
        Inverse L2 strength of the linear probe, as ``LogisticRegression``'s
        ``C``, on the features centered and divided by their root mean
        variance. The probe minimizes the classifier's own loss
        (cross-entropy with ``label_smoothing``, weighted by
        ``sample_weight`` and ``class_weight``) plus that penalty. The
        default measured best on digits and Fashion-MNIST; tune it with
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
        beforehand. ``"pretrained"`` measured better (benchmarks/README.md).
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
    backbone_lr_ratio : float or "auto", default="auto"
        Backbone learning rate relative to the head's (e.g. 0.1 for gentler
        fine-tuning). ``"auto"``: 0.1 when the backbone will take fewer than
        20 optimizer steps (as for ``head_init``), 1.0 otherwise. The two
        ``"auto"`` together keep a short fit near the probe (600 images, one
        epoch: 0.70 against 0.62 with a random head at full rate;
        benchmarks/README.md).
    label_smoothing : float, default=0.1
        Cross-entropy label smoothing (multi-label targets move this far towards 1/2).
    augment : {"flip", "flip_crop", "trivialaugment", "randaugment"} or None, default="flip"
        Train-time augmentation on the device: random horizontal flips, plus
        with ``"flip_crop"`` small random crops (shifts of up to 1/16 of the
        side, reflected at the border), with ``"trivialaugment"`` one
        random operation per image at a random strength (torchvision's
        ``TrivialAugmentWide``: colour, contrast, geometry...), or with
        ``"randaugment"`` two at strength 9 (torchvision's ``RandAugment``).
        None turns it off, e.g. where mirrored images change meaning (text,
        some digits).
    mixup_alpha : float, default=0.0
        Mixup: each training batch is blended with a shuffled copy of itself,
        ``lam * x + (1 - lam) * x[order]`` with ``lam`` drawn from
        Beta(``mixup_alpha``, ``mixup_alpha``) for the batch, and the loss is
        ``lam`` times each image's loss against its own labels plus ``1 - lam``
        times against its partner's. 0 turns it off; 0.2-1.0 are usual.
        Not with text backbones.
    cutmix_alpha : float, default=0.0
        Cutmix: a box of a shuffled copy of the batch, covering ``1 - lam`` of
        each image, is pasted in, and the loss mixes labels by area as for
        mixup. With both alphas above 0, each batch gets one or the other at
        even odds (as timm's ``Mixup``). 0 turns it off. Image backbones only.
    ema_decay : float or None, default=None
        Keep an exponential moving average of the weights while training
        (updated after every step, with a warm-up: the weight of the past is
        ``min(ema_decay, (1 + t) / (10 + t))`` at step ``t``) and end with it:
        the fitted network, the validation loss early stopping watches, and
        the weights it keeps, are the average's. None trains without.
    tta : {"flip"} or None, default=None
        Test-time augmentation in ``predict``, ``predict_proba`` and
        ``decision_function``: the network's outputs (logits) for each image and
        its mirror image, averaged. Read when predicting: ``set_params(tta=...)``
        on a fitted model needs no refit. Images only; it costs a second pass.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified by class for
        single-label targets), or use the
        ``X_val``, ``y_val`` passed to ``fit``, and stop when the validation
        loss has not improved for ``n_iter_no_change`` epochs, restoring the
        best weights. The network training starts from is the first
        candidate: with ``head_init="probe"`` the fitted model's validation
        loss is never above the probe's (fitted without the held-out rows),
        whatever fine-tuning does; its accuracy there, or on new data, can be.
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
    sample_rate, clip_seconds
        Audio backbones only (``audio/<image backbone>``): how sound is read, as
        for :class:`PretrainedFeatureExtractor`. With an audio backbone,
        ``augment`` does not apply.
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
        compiling the training graph measured slower than eager steps on a
        CPU and no faster on a GPU (``finetune_fashion_mnist`` rows of
        ``benchmarks/results/*.json``); the extractor's ``"auto"`` compiles
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
        the pretrained weights (classes must not change). The network trains
        in place: a warm-start fit that raises while training keeps the
        weights it reached. ``early_stopping`` cannot change between warm
        fits (the first fit's validation setup continues).
    random_state : int, RandomState or None, default=None
        Seeds the head, the shuffling, augmentation, dropout and the validation
        split; results are reproducible on a CPU. The caller's global torch RNG
        state is left untouched.
    verbose : int, default=0
        1 prints skorch's epoch table; 2 adds a progress bar per epoch.

    Attributes
    ----------
    classes_ : ndarray
        The class labels; for multi-label targets, the label columns ``[0, ..., k - 1]``.
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

    def __init__(
        self,
        backbone="resnet18",
        weights="DEFAULT",
        *,
        freeze_depth=0,
        head_init="auto",
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
        backbone_lr_ratio="auto",
        label_smoothing=0.1,
        augment="flip",
        mixup_alpha=0.0,
        cutmix_alpha=0.0,
        ema_decay=None,
        tta=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        class_weight=None,
        max_length=None,
        sample_rate=None,
        clip_seconds=None,
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
        self.sample_rate = sample_rate
        self.clip_seconds = clip_seconds
        self.augment = augment
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.ema_decay = ema_decay
        self.tta = tta
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

    _parameter_constraints: dict = {
        **FineTunedEstimator._parameter_constraints,
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "mixup_alpha": [Interval(Real, 0, None, closed="left")],
        "cutmix_alpha": [Interval(Real, 0, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    # what a saved state may hold besides the parameters (the network is rebuilt from
    # ``_network``, the skorch net from it and ``_history``); ``_required_state`` must all
    # be there when it is fitted
    _required_state = ("classes_", "n_iter_", "probe_n_iter_", "weights_id_", "data_config_", "device_",
                       "n_channels_in_", "_input_signature", "_spec", "_history")
    _fitted_state = (*_required_state, "_network", "n_features_in_", "feature_names_in_", "_target_type")
    _targets_state = "classes_"

    def _task(self, y=None):
        """Multi-label for a 2-D ``y`` of several columns (an indicator matrix), else
        single-label; after fit, the task fitted."""
        if y is None:
            multilabel = getattr(self, "_target_type", "multiclass") == MultiLabel.target_type
        else:
            shape = np.asarray(y).shape  # y may be any array-like (not only numpy's)
            multilabel = len(shape) == 2 and shape[1] > 1
        task = MultiLabel if multilabel else Classification
        return task(label_smoothing=self.label_smoothing, class_weight=self.class_weight)

    @fit_context
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None):
        """Fine-tune on images ``X`` with labels ``y``.

        Parameters are checked first, then the data, then the backbone is loaded.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Training images (any input :class:`PretrainedFeatureExtractor` accepts).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels: ints, strings or bools; at least two classes. Or a
            multi-label indicator matrix of 0 and 1 (one column per label, each
            taking both values): the labels are then independent, with sigmoid
            outputs and binary cross-entropy, as ``MLPClassifier`` does.
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
        return self._fit(X, y, sample_weight, X_val, y_val)

    def predict_proba(self, X):
        """Class probabilities (rows sum to 1), in the order of ``classes_``; for
        multi-label targets, each label's probability (independent).

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Inputs of the kind seen in ``fit``, with a batch axis.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes) or (n_samples, n_labels)
        """
        return self._task().predict_proba(self._outputs(X))

    def decision_function(self, X):
        """Logits; for two classes, the logit margin of ``classes_[1]`` over ``classes_[0]``;
        for multi-label targets, one logit per label.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Inputs of the kind seen in ``fit``, with a batch axis.

        Returns
        -------
        scores : ndarray of shape (n_samples,), (n_samples, n_classes) or (n_samples, n_labels)
        """
        return self._task().decision_function(self._outputs(X))

    def predict(self, X):
        """Predicted class labels; for multi-label targets, the indicator matrix (a label
        where its probability is at least 0.5).

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Inputs of the kind seen in ``fit``, with a batch axis.

        Returns
        -------
        labels : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        return self._task().predict(self._outputs(X), self.classes_)
