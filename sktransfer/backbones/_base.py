"""What every backbone provider hands to the estimators."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from torch import nn

#: Layouts a stage's output can have: convolutional maps, channels-last maps
#: (Swin), or token sequences (vision transformers).
FEATURE_FORMATS = ("NCHW", "NHWC", "NLC")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


def optional_import(module: str, what: str, extra: str):
    """Import ``module``, or raise ImportError saying which extra installs it (providers
    import their dependencies when a backbone is built, never at ``import sktransfer``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} need the {module} package: pip install 'sktransfer[{extra}]'") from exc


@dataclass(frozen=True)
class DataConfig:
    """How inputs must be prepared for a backbone's weights.

    Parameters
    ----------
    input_size : tuple of int
        ``(height, width)`` the weights were trained at.
    mean, std : tuple of float
        Per-channel normalization applied to ``[0, 1]`` RGB values.
    interpolation : {"nearest", "bilinear", "bicubic"}
        Resampling used when resizing to ``input_size``.
    crop_pct : float
        Fraction of the resized image kept by a center crop in the weights'
        own evaluation transform (used by ``resize="center_crop"``).

    Examples
    --------
    >>> from sktransfer import DataConfig
    >>> DataConfig(input_size=(224, 224), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    DataConfig(input_size=(224, 224), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation='bilinear', crop_pct=0.875)
    """

    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    crop_pct: float = 0.875

    def __post_init__(self):
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}"
            )
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std must have one value per RGB channel")


@dataclass(frozen=True)
class TextConfig:
    """How a text backbone turns token outputs into one vector per text.

    Parameters
    ----------
    max_length : int
        Tokens kept per text (longer texts are truncated).
    pooling : {"mean", "cls", "max"}
        Mean over the real tokens, the first token, or the maximum.
    normalize : bool
        Scale each vector to unit length (as sentence-transformers models
        with a ``Normalize`` module do).
    max_positions : int or None
        The most tokens the model's position embeddings take; ``max_length``
        may not exceed it.

    Examples
    --------
    >>> from sktransfer.backbones import TextConfig
    >>> TextConfig(max_length=256, pooling="mean", normalize=True).pooling
    'mean'
    """

    max_length: int
    pooling: str = "mean"
    normalize: bool = False
    max_positions: Any = None

    def __post_init__(self):
        if self.max_positions is not None and self.max_length > self.max_positions:
            raise ValueError(f"max_length={self.max_length} exceeds the {self.max_positions} positions "
                             "the model takes")
        if self.pooling not in TEXT_POOLINGS:
            raise ValueError(f"pooling must be one of {TEXT_POOLINGS}, got {self.pooling!r}")


TEXT_POOLINGS = ("mean", "cls", "max")


class _Clips:
    """What every audio config shares: clips of ``clip_seconds`` at ``sample_rate``."""

    sample_rate: int
    clip_seconds: float

    @property
    def clip_samples(self) -> int:
        """Samples in one clip."""
        return int(round(self.sample_rate * self.clip_seconds))


@dataclass(frozen=True)
class AudioConfig(_Clips):
    """How sound becomes the image an audio backbone sees: a log-mel spectrogram.

    Waveforms are resampled to ``sample_rate``, cut or padded to ``clip_seconds``,
    turned into ``n_mels`` mel bands every ``hop_seconds`` (windows of
    ``window_seconds``), log-compressed, standardized with fixed constants
    (``mean``, ``std``: AudioSet's, as the AST recipe uses) and resized to the image
    network's input, frequency on the height axis, time on the width.

    Parameters
    ----------
    image : DataConfig
        The image network's config (its input size and interpolation).
    sample_rate : int, default=16000
        Samples per second the clips are resampled to.
    clip_seconds : float, default=2.0
        The length every clip is made.
    n_mels : int, default=128
        Mel bands.
    window_seconds : float, default=0.025
        Length of the analysis windows.
    hop_seconds : float, default=0.01
        Time between two windows.
    mean, std : float, default=-4.27, 4.57
        Standardization of the log-mel values: ``(x - mean) / (2 std)``.

    Examples
    --------
    >>> from sktransfer import DataConfig
    >>> from sktransfer.backbones import AudioConfig
    >>> AudioConfig(DataConfig((128, 128), (0.5,) * 3, (0.5,) * 3)).sample_rate
    16000
    """

    image: DataConfig
    sample_rate: int = 16000
    clip_seconds: float = 2.0
    n_mels: int = 128
    window_seconds: float = 0.025
    hop_seconds: float = 0.01
    mean: float = -4.27
    std: float = 4.57

    def __post_init__(self):
        if not (self.sample_rate > 0 and self.clip_seconds > 0 and self.n_mels > 0):
            raise ValueError("sample_rate, clip_seconds and n_mels must be positive")

    @property
    def input_size(self) -> tuple:
        """The spectrogram image's size: the image network's input size."""
        return tuple(self.image.input_size)



@dataclass(frozen=True)
class AudioEncoderConfig(_Clips):
    """How sound reaches an audio encoder (wav2vec2, HuBERT, AST...): clips resampled to
    ``sample_rate``, cut or padded to ``clip_seconds``, then turned into the model's
    inputs by its own feature extractor.

    Parameters
    ----------
    sample_rate : int, default=16000
        The rate the model was trained at (its feature extractor's ``sampling_rate``).
    clip_seconds : float, default=2.0
        The length every clip is made.

    Examples
    --------
    >>> from sktransfer.backbones import AudioEncoderConfig
    >>> AudioEncoderConfig(clip_seconds=1.5).clip_samples
    24000
    """

    sample_rate: int = 16000
    clip_seconds: float = 2.0

    def __post_init__(self):
        if not (self.sample_rate > 0 and self.clip_seconds > 0):
            raise ValueError("sample_rate and clip_seconds must be positive")


@dataclass(frozen=True, eq=False)
class Backbone:
    """A headless pretrained network, as the registry returns it.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a normalized float batch ``(n, 3, H, W)`` to the unpooled output
        of the last stage.
    stages : tuple of (str, torch.nn.Module)
        The network's parts in order from input to output. Freezing ``k``
        stages freezes the parameters and normalization statistics of the
        first ``k`` entries. When ``sequential`` is true, ``module`` is exactly
        these stages applied one after the other, so a prefix of them can run
        on its own (intermediate features, cached frozen prefixes).
    num_features : int
        Channels of the last stage's output (the pooled feature dimension).
    data_config : DataConfig or TextConfig
        Input size and normalization taken from the weights' own metadata; for
        a text backbone, its token limit, pooling and normalization.
    stage_formats : tuple of str
        Output layout of each stage: ``"NCHW"``, ``"NHWC"`` or ``"NLC"``.
    num_prefix_tokens : int, default=0
        Leading class/register tokens in ``"NLC"`` outputs.
    sequential : bool, default=False
        See ``stages``.
    fixed_input_size : bool, default=False
        True when the network only accepts ``data_config.input_size``.
    modality : {"image", "text", "audio"}, default="image"
        The kind of input the backbone consumes. A text backbone's ``module``
        takes ``(input_ids, attention_mask)`` and returns token outputs
        (``"NLC"``); an audio backbone's takes the images its
        :class:`AudioConfig` makes of sound, or, with an
        :class:`AudioEncoderConfig`, what its ``feature_extractor`` makes of
        clips, and returns token outputs.
    weights_id : str, default="random"
        Which weights were loaded (shown in reprs and ``weights_id_``; the
        feature cache keys on a fingerprint of the weights themselves).
    tokenizer : callable or None, default=None
        A text backbone's Hugging Face tokenizer.
    feature_extractor : callable or None, default=None
        An audio encoder's Hugging Face feature extractor (clips in, the
        module's ``input_values`` out).

    Examples
    --------
    >>> from sktransfer import get_backbone
    >>> bb = get_backbone("resnet18", weights=None)
    >>> bb.num_features, [name for name, _ in bb.stages]
    (512, ['stem', 'layer1', 'layer2', 'layer3', 'layer4'])
    """

    module: nn.Module
    stages: tuple[tuple[str, nn.Module], ...]
    num_features: int
    data_config: "DataConfig | TextConfig | AudioConfig | AudioEncoderConfig"
    stage_formats: tuple[str, ...]
    num_prefix_tokens: int = 0
    sequential: bool = False
    fixed_input_size: bool = False
    modality: str = "image"
    weights_id: str = "random"
    tokenizer: Any = None
    feature_extractor: Any = None

    def __post_init__(self):
        if len(self.stage_formats) != len(self.stages):
            raise ValueError("stage_formats needs one entry per stage")
        bad = [f for f in self.stage_formats if f not in FEATURE_FORMATS]
        if bad:
            raise ValueError(f"unknown stage format(s) {bad}; expected one of {FEATURE_FORMATS}")
        if not self.stages:
            raise ValueError("a backbone needs at least one stage")

    @property
    def stage_names(self) -> list[str]:
        """Names of the stages, from input to output."""
        return [name for name, _ in self.stages]


def sequential_backbone(stages, **kwargs) -> Backbone:
    """Build a :class:`Backbone` whose module runs ``stages`` in order.

    Parameters
    ----------
    stages : list of (str, torch.nn.Module)
        The stages, from input to output, with their names.
    **kwargs
        Every other field of :class:`Backbone` (``num_features``,
        ``data_config``, ``stage_formats``...).

    Returns
    -------
    backbone : Backbone
        With ``sequential=True``: a prefix of the stages can run on its own.

    Examples
    --------
    >>> from torch import nn
    >>> from sktransfer import DataConfig
    >>> from sktransfer.backbones import sequential_backbone
    >>> bb = sequential_backbone(
    ...     [("stem", nn.Conv2d(3, 8, 3)), ("head", nn.Conv2d(8, 16, 3))], num_features=16,
    ...     stage_formats=("NCHW", "NCHW"), data_config=DataConfig((32, 32), (0.5,) * 3, (0.5,) * 3))
    >>> bb.stage_names, bb.sequential
    (['stem', 'head'], True)
    """
    module = nn.Sequential()
    for name, stage in stages:
        module.add_module(name, stage)
    return Backbone(module=module, stages=tuple(module.named_children()), sequential=True, **kwargs)
