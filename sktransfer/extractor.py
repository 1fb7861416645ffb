"""PretrainedFeatureExtractor: a frozen pretrained backbone as a scikit-learn transformer."""

from __future__ import annotations

import os
import re
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._estimator import TransferEstimator, fit_context
from .engine.cache import FeatureKey
from .engine.compile import AutoCompiler, record_key
from .engine.budgets import batch_size_for
from .engine.features import extract
from .fitting.memo import load_backbone
from .fitting.params import (
    SHARED_PARAMETERS,
    Interval,
    invalid,
)
from .fitting.spec import NetworkSpec
from .nn.networks import stage_index
from .persistence.state import dump_state, load_network_state, rebuild_backbone


class PretrainedFeatureExtractor(TransferEstimator, TransformerMixin, BaseEstimator):
    """Features from a frozen pretrained backbone, as a scikit-learn transformer.

    ``fit`` loads the backbone from the registry; ``transform`` runs images
    through it (eval mode, ``torch.inference_mode``) and pools the chosen
    stage's output to one float32 vector per image.

    Parameters
    ----------
    backbone : str, default="resnet18"
        A registered backbone name (see :func:`~sktransfer.list_backbones`).
    weights : str, path or None, default="DEFAULT"
        ``"DEFAULT"``, a weights name such as ``"IMAGENET1K_V1"``, ``None``
        (random initialization, seeded by ``random_state``) or a local
        ``.pth``/``.pt``/``.safetensors`` file.
    pooling : {"avg", "max", "avgmax", "catavgmax", "token"}, default="avg"
        How a stage's output becomes one vector per image. ``"token"`` takes a
        transformer's class token; ``"catavgmax"`` doubles the features.
    stage : int, str or None, default=None
        Take features from this stage (index or name, see
        ``Backbone.stage_names``) instead of the last one.
    input_size : int, (int, int) or None, default=None
        Resize images to this size instead of the weights' own input size
        (smaller is much faster on a CPU).
    resize : {"squash", "center_crop"}, default="squash"
        ``"squash"`` resizes whole images; ``"center_crop"`` keeps the aspect
        ratio and crops the center like the weights' evaluation transform.
    batch_size : int or None, default=None
        Images per forward pass; None picks one for the device (32 on CPU,
        256 at 224 px on GPU).
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    precision : {"auto", "float32", "bfloat16", "float16"}, default="auto"
        Compute dtype; ``"auto"`` is bfloat16 on CUDA and float32 on CPU.
    channel_axis : {"auto", 1, -1}, default="auto"
        Where 4-D arrays keep their channels; "auto" detects it when only one
        of axis 1 and axis 3 has size 1, 3 or 4.
    image_shape : tuple of int or None, default=None
        Shape to unflatten rows of 2-D inputs (``(8, 8)``, ``(28, 28, 1)``;
        ``-1`` allowed once).
    value_range : (float, float) or None, default=(0.0, 1.0)
        Range of float inputs, rescaled to ``[0, 1]``; values outside it raise.
        None uses float values as they are. uint8 inputs are ``[0, 255]``.
    max_length : int or None, default=None
        Text backbones only: tokens kept per text (longer texts are
        truncated); None keeps the model's own limit (256 for
        all-MiniLM-L6-v2).
    sample_rate : int or None, default=None
        Audio backbones only (``audio/<image backbone>``): the rate, in Hz, of
        waveform arrays (sound files carry their own). Clips are resampled to
        the backbone's rate.
    clip_seconds : float or None, default=None
        Audio backbones only: every clip is made this long (shorter ones padded
        with silence at their end, longer ones keep their middle); None keeps
        the backbone's (2 s).
    cache : bool, default=True
        Reuse features computed before for the same images, configuration and
        weights, across fits, folds, grid points and estimator copies (see
        ``sktransfer.feature_cache``), and reuse loaded weights across fits.
        The key covers the weights as they are at ``transform`` (hashed once,
        and again after any change autograd's version counters see), so
        editing ``model_`` never returns stale features.
    cache_dir : str, path or None, default=None
        Also keep features in this directory, shared with other processes
        (parallel searches) and later sessions.
    compile : "auto" or bool, default="auto"
        ``torch.compile`` the backbone for ``transform``.
        ``"auto"`` runs the first batches eagerly, times them, and compiles
        when the images left would take long enough for the speed-up to pay
        the compile time back within the call (both measured on earlier
        compiles of the same network and shapes, kept beside torch's persistent
        inductor cache, or cold defaults): never for a handful of images. True
        compiles from the first batch, False never. The compiled graph runs at
        one batch shape (the last batch is padded; on CUDA as a CUDA graph) and
        is kept for later calls; features
        agree with eager ones to float tolerance; a compile failure falls back
        to eager with a warning. ``sktransfer.engine.compile.decisions`` records what
        was chosen and why. Text encoders follow the same rule; once compiled,
        their batches (sorted by length) are padded to power-of-two lengths, so
        they compile once per such bucket, which the estimate counts.
    random_state : int, RandomState or None, default=None
        Seeds the random initialization when ``weights=None``; a
        ``RandomState`` gives one seed per ``fit``.
    verbose : int, default=0
        Show a progress bar while transforming when > 0.

    Attributes
    ----------
    model_ : torch.nn.Module
        Preprocessing, the backbone up to ``stage`` and the pooling, on ``device_``.
    device_ : torch.device
        Where ``model_`` runs.
    data_config_ : DataConfig
        The preprocessing applied (the weights' config with ``input_size``).
    weights_id_ : str
        Which weights were loaded.
    n_channels_in_ : int or None
        Channels of the images seen in ``fit`` (1 or 3) for array inputs; None
        for files and PIL images, which are read as RGB.
    n_features_in_ : int
        Only for 2-D inputs: the number of pixel columns.
    feature_names_in_ : ndarray of str
        Only for DataFrames of pixel columns with string names.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import PretrainedFeatureExtractor
    >>> X = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    >>> extractor = PretrainedFeatureExtractor("resnet18", weights=None, input_size=64, random_state=0)
    >>> extractor.fit_transform(X).shape
    (4, 512)
    >>> extractor.get_feature_names_out()[:2]
    array(['resnet18_0', 'resnet18_1'], dtype=object)
    """

    def __init__(
        self,
        backbone="resnet18",
        weights="DEFAULT",
        *,
        pooling="avg",
        stage=None,
        input_size=None,
        resize="squash",
        batch_size=None,
        device="auto",
        precision="auto",
        channel_axis="auto",
        image_shape=None,
        value_range=(0.0, 1.0),
        max_length=None,
        sample_rate=None,
        clip_seconds=None,
        cache=True,
        cache_dir=None,
        compile="auto",
        random_state=None,
        verbose=0,
    ):
        self.backbone = backbone
        self.weights = weights
        self.pooling = pooling
        self.stage = stage
        self.input_size = input_size
        self.resize = resize
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.channel_axis = channel_axis
        self.image_shape = image_shape
        self.value_range = value_range
        self.max_length = max_length
        self.sample_rate = sample_rate
        self.clip_seconds = clip_seconds
        self.cache = cache
        self.cache_dir = cache_dir
        self.compile = compile
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints: dict = {
        **SHARED_PARAMETERS,
        "stage": [Interval(Integral, None, None, closed="neither"), str, None],
        "cache_dir": [str, os.PathLike, None],
    }
    # what a saved state may hold besides the parameters (the network is rebuilt from
    # ``_network``); ``_required_state`` must all be there when it is fitted
    _required_state = ("data_config_", "weights_id_", "device_", "n_channels_in_", "_input_signature",
                       "_n_features_out", "_spec", "_stage_index")
    _fitted_state = (*_required_state, "_network", "n_features_in_", "feature_names_in_")

    def _check_own_params(self, params, owner):
        if params["cache_dir"] is not None and Path(params["cache_dir"]).is_file():
            raise invalid(owner, "cache_dir", params["cache_dir"], "None or a directory path (this is a file)")

    @fit_context
    def fit(self, X, y=None):
        """Load the backbone and validate ``X``.

        Parameters are checked first, then ``X``, then the backbone is loaded.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Images (see the module docs for every accepted kind), or texts for a
            text backbone.
        y : None
            Ignored.

        Returns
        -------
        self : PretrainedFeatureExtractor
        """
        spec = NetworkSpec.of(self.get_params(deep=False))
        modality = self._modality(spec)
        _, signature = self._check_input(X, spec)  # fit learns nothing from X: checked only
        backbone = load_backbone(spec, memo=self.cache, modality=modality.name)
        index = stage_index(spec.stage, backbone, spec.backbone)
        model, config = modality.feature_net(spec, backbone, index)
        self.model_ = model
        self.data_config_ = config
        self.weights_id_ = backbone.weights_id
        self.device_ = spec.torch_device
        self.n_channels_in_ = signature.n_channels
        self._input_signature = signature
        self._n_features_out = modality.features_out(model, backbone, index, config)
        self._spec = spec
        self._stage_index = index
        self.__dict__.pop("_compiled_trunk", None)  # compiled from the network of an earlier fit
        return self

    def transform(self, X):
        """Compute pooled features.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Inputs of the kind seen in ``fit``.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out), float32
        """
        check_is_fitted(self)
        spec, config = self._spec, self.data_config_
        modality = self._modality(spec)
        checked, _ = self._check_input(X, spec, self._input_signature)
        source = modality.source(checked, self.model_, config)
        # the configuration now; the weights are hashed only when the key is called
        key = FeatureKey(spec, config, self._stage_index, self.model_)
        batch_size = batch_size_for(spec.batch_size, self.device_, modality.input_size(config))
        compiler = None  # eager
        if spec.compile:
            shapes, size = modality.compile_shapes(config)
            compiler = AutoCompiler(
                getattr(self, "_compiled_trunk", None), mode=spec.compile, batch_size=batch_size, shapes=shapes,
                key=record_key(spec, self._stage_index, size, batch_size),
                identity=key)  # called only when a compiled trunk is kept or built
        features = extract(
            self.model_, source, self._n_features_out, batch_size=batch_size, device=self.device_,
            key=key if self.cache else None, directory=self.cache_dir, verbose=self.verbose, wrap=compiler,
        )
        if compiler is not None and compiler.trunk is not None:
            self._compiled_trunk = compiler.trunk  # kept for the next call
        elif compiler is not None:
            self.__dict__.pop("_compiled_trunk", None)
        return features

    # -------------------------------------------------------------- persistence

    def get_feature_names_out(self, input_features=None):
        """Names of the feature columns: the backbone's name and the column number.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against ``feature_names_in_`` when the extractor saw named
            pixel columns; the output names do not depend on them.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``"resnet18_0"``, ``"resnet18_1"``, ... (characters other than letters,
            digits and ``_`` become ``_``: ``"timm/convnext_tiny"`` gives
            ``"timm_convnext_tiny_0"``).
        """
        check_is_fitted(self, "_n_features_out")
        _check_feature_names_in(self, input_features, generate_names=False)
        # the network's name, not the class's: columns say where they come from
        prefix = re.sub(r"\W+", "_", self._spec.backbone).strip("_")
        return np.asarray([f"{prefix}_{i}" for i in range(self._n_features_out)], dtype=object)

    def __getstate__(self):
        # plain data only: the network travels as numpy arrays of its weights
        state = dict(super().__getstate__())  # object.__getstate__ gives __dict__ itself
        state.pop("_compiled_trunk", None)  # compiled for this process: compiled again where needed
        return dump_state(state, state.pop("model_", None))

    def __setstate__(self, state):
        state, network = self._restore(state)
        super().__setstate__(state)
        if network is not None:
            spec = self._spec
            model, _ = self._modality(spec).feature_net(spec, rebuild_backbone(spec), self._stage_index, self.data_config_)
            load_network_state(model, network, spec.backbone)
            self.model_ = model

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
