"""PretrainedFeatureExtractor: a frozen pretrained backbone as a scikit-learn transformer."""

from __future__ import annotations

import io
import os
import warnings
from numbers import Integral
from pathlib import Path

import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._cache import feature_cache, feature_key
from ._device import resolve_device, resolve_precision
from ._features import extract
from .data.inputs import validate_images
from .nn.networks import FeatureNet, backbone_parts, check_modality, stage_index
from .backbones import get_backbone
from ._seeding import seed_from, seeded
from .backbones._weights import file_weights_id, is_weights_file


def check_cache_dir(cache_dir):
    """``cache_dir`` must be None or a path that is not an existing file."""
    if cache_dir is None:
        return
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir must be None or a directory path, got {cache_dir!r}")
    if Path(cache_dir).exists() and not Path(cache_dir).is_dir():
        raise ValueError(f"cache_dir must be a directory; {str(cache_dir)!r} is a file")


def check_batch_size(batch_size):
    """Validate a ``batch_size`` parameter (None means automatic)."""
    if batch_size is None:
        return
    if not isinstance(batch_size, Integral) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")


def inference_batch_size(batch_size, device: torch.device, input_size) -> int:
    """``batch_size`` or, when None, a size that keeps activations modest on ``device``."""
    if batch_size is not None:
        return int(batch_size)
    if device.type != "cuda":
        return 32
    pixels = input_size[0] * input_size[1]
    return int(max(32, min(1024, 256 * (224 * 224) // pixels)))


class PretrainedFeatureExtractor(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
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
    cache : bool, default=True
        Reuse features computed before for the same images and configuration,
        across fits, folds, grid points and estimator copies (see
        ``sktransfer.feature_cache``). Off when ``weights=None`` without a
        ``random_state`` (every fit draws new weights).
    cache_dir : str, path or None, default=None
        Also keep features in this directory, shared with other processes
        (parallel searches) and later sessions.
    compile : bool, default=False
        ``torch.compile`` the backbone (worth it for long transforms on a GPU;
        the first call compiles).
    random_state : int or None, default=None
        Seeds the random initialization when ``weights=None``.
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
    cache_key_ : str or None
        Key of this configuration in the feature cache (None: not cacheable).
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
    array(['pretrainedfeatureextractor0', 'pretrainedfeatureextractor1'], dtype=object)
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
        cache=True,
        cache_dir=None,
        compile=False,
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
        self.cache = cache
        self.cache_dir = cache_dir
        self.compile = compile
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        """Load the backbone and validate ``X``.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Images (see the module docs for every accepted kind).
        y : None
            Ignored.

        Returns
        -------
        self : PretrainedFeatureExtractor
        """
        check_batch_size(self.batch_size)
        check_cache_dir(self.cache_dir)
        seed_from(self.random_state)  # validated even when pretrained weights ignore it
        device = resolve_device(self.device)
        dtype = resolve_precision(self.precision, device)
        validate_images(self, X, reset=True)
        if self.cache and (self.weights is not None or self.random_state is not None):
            fitted = feature_cache.network(self._network_key(device, dtype), lambda: self._build(device, dtype))
        else:
            fitted = self._build(device, dtype)
        for name, value in fitted.items():
            setattr(self, name, value)
        self.device_ = device
        return self

    def _network_key(self, device, dtype):
        weights = self.weights
        if is_weights_file(weights):  # by content: a file rewritten in place is another network
            path = Path(weights).expanduser()
            weights = file_weights_id(path) if path.is_file() else str(path)  # missing: _build raises
        return repr((self.backbone, weights, self.random_state if self.weights is None else None,
                     self.stage, self.input_size, self.resize, self.value_range, self.pooling,
                     str(device), str(dtype), self.compile))

    def _build(self, device, dtype) -> dict:
        """Load the backbone and assemble the frozen network; returns the fitted attributes."""
        with seeded(self.random_state):
            backbone = get_backbone(self.backbone, weights=self.weights)
        check_modality(backbone, self.backbone)
        index = stage_index(self.stage, backbone, self.backbone)
        preprocess, trunk, pool, config = backbone_parts(self, backbone, index)
        model = FeatureNet(preprocess, trunk, pool).eval().requires_grad_(False).place(device, dtype)
        if index == len(backbone.stages) - 1:
            width = backbone.num_features
        else:  # an intermediate stage's width is known only by running it
            with torch.inference_mode():
                probe = torch.zeros((1, 3, *config.input_size), dtype=torch.uint8, device=device)
                stage_out = model.trunk(model.preprocess(probe))
                width = stage_out.shape[1 if pool.feature_format == "NCHW" else -1]
        if self.compile:
            model.trunk.compile()
        return {
            "model_": model,
            "data_config_": config,
            "weights_id_": backbone.weights_id,
            "_n_features_out": pool.width(width),
            "cache_key_": feature_key(self, backbone.weights_id, index, config, str(dtype), device.type),
        }

    def transform(self, X):
        """Compute pooled features.

        Parameters
        ----------
        X : array-like, tensor, list of PIL images or of paths
            Images of the kind seen in ``fit``.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out), float32
        """
        check_is_fitted(self)
        source = validate_images(self, X, reset=False)
        return extract(
            self.model_, source, self._n_features_out,
            batch_size=inference_batch_size(self.batch_size, self.device_, self.data_config_.input_size),
            device=self.device_, key=self.cache_key_ if self.cache else None,
            directory=self.cache_dir, verbose=self.verbose,
        )

    def __getstate__(self):
        state = self.__dict__.copy()
        if "model_" in state:
            buffer = io.BytesIO()
            torch.save(state.pop("model_"), buffer)
            state["_model_bytes"] = buffer.getvalue()
        return state

    def __setstate__(self, state):
        payload = state.pop("_model_bytes", None)
        self.__dict__.update(state)
        if payload is None:
            return
        device = state["device_"]
        if device.type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"{type(self).__name__} was fitted on {device}, which is not available here; "
                "it now runs on the CPU in float32",
                UserWarning,
                stacklevel=2,
            )
            device = torch.device("cpu")
        model = torch.load(io.BytesIO(payload), map_location=device, weights_only=False)
        if device != state["device_"]:
            model.place(device, torch.float32)
            if self.__dict__.get("cache_key_") is not None:
                # float32 on another device gives other numbers than the fitted network
                self.cache_key_ = f"{self.cache_key_}:loaded-on-{device.type}-float32"
        if self.compile:
            model.trunk.compile()
        self.model_ = model
        self.device_ = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
