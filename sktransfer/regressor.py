"""FineTunedRegressor: fine-tune a pretrained backbone through skorch, as a scikit-learn regressor."""

from __future__ import annotations

from sklearn.base import BaseEstimator, RegressorMixin

from ._estimator import fit_context
from ._finetuned import FineTunedEstimator
from .fitting.params import StrOptions
from .tasks import Regression


class FineTunedRegressor(FineTunedEstimator, RegressorMixin, BaseEstimator):
    """Fine-tune a pretrained backbone with a new linear head, as a scikit-learn regressor.

    The same recipes, inputs and guarantees as :class:`FineTunedClassifier`
    (freezing, the probe and LP-FT, two stages, weights, saving, ``sample_weight``),
    for continuous targets ``y`` of shape ``(n,)`` or ``(n, k)``: each target is
    standardized inside (as ``TransformedTargetRegressor`` with a ``StandardScaler``
    would) and predictions come back in its units; ``score`` is R^2. The network trains
    with skorch's ``NeuralNetRegressor`` (kept as ``net_``).

    Parameters
    ----------
    backbone : str, default="resnet18"
        A registered backbone name.
    weights : str, path or None, default="DEFAULT"
        Pretrained weights, as for :func:`~sktransfer.get_backbone`.
    loss : {"squared_error", "huber"}, default="squared_error"
        On the standardized targets; Huber's threshold is one standard deviation,
        for targets with outliers.
    freeze_depth : int or "all", default=0
        Backbone stages frozen from the input side, as for
        :class:`FineTunedClassifier`. ``"all"`` fits only the head: ridge regression
        on the frozen features, solved in closed form (no epochs run).
    head_init : {"auto", "random", "probe"}, default="auto"
        ``"probe"`` starts fine-tuning from the ridge probe (LP-FT); ``"auto"``
        as for :class:`FineTunedClassifier`.
    probe_C : float, default=0.01
        Inverse L2 strength of the ridge probe (``alpha = 1 / probe_C`` in
        ``Ridge``'s terms), on the features centered and divided by their root mean
        variance and the standardized targets.
    batchnorm_statistics, head_epochs, finetune_lr_scale, max_epochs, batch_size, lr
        As for :class:`FineTunedClassifier`.
    optimizer, weight_decay, lr_schedule, warmup_fraction, backbone_lr_ratio, augment, ema_decay
        As for :class:`FineTunedClassifier`. Flips (``augment="flip"``) suit targets
        that a mirror image keeps; pass None otherwise (an angle, a position).
    tta
        As for :class:`FineTunedClassifier` (the predicted values of each image
        and its mirror image, averaged): for targets a mirror image keeps.
    early_stopping, validation_fraction, n_iter_no_change
        As for :class:`FineTunedClassifier`; the held-out part is not stratified.
    max_length, sample_rate, clip_seconds, pooling, input_size, resize, device, precision, compile, cache
        As for :class:`FineTunedClassifier`.
    channel_axis, image_shape, value_range
        How numeric arrays are read, as for :class:`PretrainedFeatureExtractor`.
    warm_start : bool, default=False
        Continue training the fitted network (the targets keep their columns and
        the scaling learned by the first fit).
    random_state, verbose
        As for :class:`FineTunedClassifier`.

    Attributes
    ----------
    net_ : TransferRegressorNet
        The fitted skorch net (``net_.module_`` is the torch network,
        ``net_.history`` the training history).
    n_iter_ : int
        Epochs trained by the last ``fit`` (0 with ``freeze_depth="all"``).
    probe_n_iter_ : int or None
        0 when the ridge probe was solved (in closed form), None when it was not.
    weights_id_ : str
        Which pretrained weights the network started from.
    data_config_ : DataConfig
        The preprocessing applied.
    device_ : torch.device
    n_channels_in_, n_features_in_, feature_names_in_
        As for :class:`PretrainedFeatureExtractor`.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import FineTunedRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8)
    >>> y = X.mean(axis=(1, 2, 3)) / 255  # brightness
    >>> reg = FineTunedRegressor("resnet18", weights=None, input_size=32, max_epochs=1,
    ...                          random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        backbone="resnet18",
        weights="DEFAULT",
        *,
        loss="squared_error",
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
        augment="flip",
        ema_decay=None,
        tta=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
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
        self.loss = loss
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
        self.augment = augment
        self.ema_decay = ema_decay
        self.tta = tta
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.max_length = max_length
        self.sample_rate = sample_rate
        self.clip_seconds = clip_seconds
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
        "loss": [StrOptions({"squared_error", "huber"})],
    }
    # what a saved state may hold besides the parameters (the network is rebuilt from
    # ``_network``, the skorch net from it and ``_history``); ``_required_state`` must all
    # be there when it is fitted
    _required_state = ("_target_scaling", "n_iter_", "probe_n_iter_", "weights_id_", "data_config_", "device_",
                       "n_channels_in_", "_input_signature", "_spec", "_history")
    _fitted_state = (*_required_state, "_network", "n_features_in_", "feature_names_in_", "_target_type")
    _targets_state = "_target_scaling"

    def _task(self, y=None) -> Regression:
        return Regression(loss=self.loss)

    @fit_context
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None):
        """Fine-tune on images ``X`` with continuous targets ``y``.

        Parameters are checked first, then the data, then the backbone is loaded.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Training images (any input :class:`PretrainedFeatureExtractor` accepts).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Finite numbers.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each image in the loss; None weighs all alike.
        X_val, y_val : array-like, default=None
            A validation set scored after every epoch (``valid_loss``, on the
            standardized targets), which early stopping then watches. It is not
            trained on.

        Returns
        -------
        self : FineTunedRegressor
        """
        return self._fit(X, y, sample_weight, X_val, y_val)

    def predict(self, X):
        """Predicted targets, in the units and shape of ``y``.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Inputs of the kind seen in ``fit``, with a batch axis.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        return self._task().predict(self._outputs(X), self._target_scaling)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
