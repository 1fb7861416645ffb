"""The torch networks the estimators build around a backbone."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Optional

import torch
from torch import nn

from .freezing import freeze_stages, keep_batchnorm_in_eval, keep_frozen_in_eval
from .pooling import Pool
from .preprocess import Preprocess
from ..backbones._base import Backbone, DataConfig


class FeatureNet(nn.Module):
    """Raw image batches -> preprocessing -> backbone stages -> pooled features."""

    def __init__(self, preprocess: nn.Module, trunk: nn.Module, pool: nn.Module):
        super().__init__()
        self.preprocess = preprocess
        self.trunk = trunk
        self.pool = pool

    def forward(self, x):
        return self.pool(self.trunk(self.preprocess(x)))

    def with_trunk(self, trunk: nn.Module) -> "FeatureNet":
        """The same network around another trunk (a compiled one), sharing the other parts."""
        return FeatureNet(self.preprocess, trunk, self.pool)

    def place(self, device: torch.device, dtype: torch.dtype) -> "FeatureNet":
        """Move to ``device`` with the trunk in ``dtype`` (preprocessing constants stay float32).

        Channels-last tensors: faster convolutions with cuDNN and with oneDNN on CPUs.
        """
        self.to(device)
        self.trunk.to(dtype=dtype, memory_format=torch.channels_last)
        self.preprocess.dtype = dtype
        self.preprocess.channels_last = True
        return self


#: Shortest bucket of padded text lengths; the others double from it.
MIN_BUCKET = 16
#: At most this many buckets (dynamo's default limit of compiled shapes per function): past
#: ``MIN_BUCKET * 2 ** (MAX_BUCKETS - 2)`` tokens, batches pad to the truncation length.
MAX_BUCKETS = 8


def bucket_length(length: int, max_length: int) -> int:
    """The padded length of a batch whose longest text has ``length`` tokens: the next power
    of two from :data:`MIN_BUCKET`, at most ``max_length`` (the truncation length)."""
    bucket = max(MIN_BUCKET, 1 << (length - 1).bit_length())
    if bucket > MIN_BUCKET << (MAX_BUCKETS - 2):
        bucket = max_length
    return max(length, min(bucket, max_length))


def bucket_lengths(max_length: int) -> list:
    """Every padded length a batch truncated at ``max_length`` can have."""
    return sorted({bucket_length(min(MIN_BUCKET << k, max_length), max_length) for k in range(MAX_BUCKETS)})


class TextFeatureNet(nn.Module):
    """Tokenized text batches -> encoder -> pooled features (the model's own pooling).

    ``tokenizer`` (a plain attribute, not a module) turns texts into the batches
    ``forward`` takes, truncated at ``max_length`` tokens.
    """

    def __init__(self, trunk: nn.Module, pool: nn.Module, tokenizer, max_length: int):
        super().__init__()
        self.trunk = trunk
        self.pool = pool
        self.tokenizer = tokenizer
        self.max_length = max_length

    def forward(self, input_ids, attention_mask):
        return self.pool(self.trunk(input_ids, attention_mask), attention_mask)

    def with_trunk(self, trunk: nn.Module) -> "TextFeatureNet":
        """The same network around another trunk (a compiled one), sharing the other parts."""
        return TextFeatureNet(trunk, self.pool, self.tokenizer, self.max_length)

    def bucketed(self, input_ids, attention_mask) -> dict:
        """The batch padded to its :func:`bucket_length` with masked tokens: a compiled
        encoder then sees a few shapes, not one per longest text. The padding goes after
        the tokens, whatever the tokenizer's padding side, so that no real token moves
        (positions count from the left)."""
        length = input_ids.shape[1]
        extra = bucket_length(length, self.max_length) - length
        if extra <= 0:
            return {"input_ids": input_ids, "attention_mask": attention_mask}
        pad_id = getattr(self.tokenizer, "pad_token_id", None) or 0
        return {"input_ids": nn.functional.pad(input_ids, (0, extra), value=pad_id),
                "attention_mask": nn.functional.pad(attention_mask, (0, extra), value=0)}

    def place(self, device: torch.device, dtype: torch.dtype) -> "TextFeatureNet":
        """Move to ``device`` with the encoder in ``dtype`` (pooled features come out float32)."""
        self.to(device)
        self.trunk.to(dtype=dtype)
        return self


@contextlib.contextmanager
def evaluating(module: nn.Module):
    """``module`` in eval mode inside the block, back in its mode after (through its own
    ``train``, so that :class:`ClassifierNet` keeps track of the mode applied)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


#: Per thread: whether the networks' forward passes see mirror images (see :func:`mirrored`).
_VIEW = threading.local()


@contextlib.contextmanager
def mirrored():
    """Inside the block, every :class:`ClassifierNet` run by this thread sees its images
    mirrored left to right (test-time augmentation); other threads' predictions are not
    touched."""
    _VIEW.mirror = True
    try:
        yield
    finally:
        _VIEW.mirror = False


@contextlib.contextmanager
def adapting_batchnorm(stages) -> bool:
    """Inside the block, the BatchNorm layers of ``stages`` forget their statistics and
    re-estimate them from what runs through (a cumulative average, training mode); the
    rest of the network is left as it is. Yields whether there was any such layer.

    Fine-tuning runs these layers in training mode, on the statistics of its batches:
    a head prepared beforehand (a probe, a head-only stage) must see the features they
    give, not those of the pretraining data's statistics, which can be far apart (on
    digits at 32 px through EfficientNet-Lite0, a probe at 0.88 accuracy fell to 0.12
    after one epoch of fine-tuning at a learning rate of 1e-12). AdaBN, Li et al. 2016.
    """
    layers = [m for _, stage in stages for m in stage.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(layer, layer.momentum, layer.training) for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
        layer.train()
    try:
        yield bool(layers)
    finally:
        for layer, momentum, training in saved:
            layer.momentum = momentum
            layer.train(training)


class ClassifierNet(nn.Module):
    """Raw image batches -> preprocessing -> augmentation and ``mix`` (a
    :class:`~sktransfer.nn.augment.BatchMix`, or None; training only) -> backbone
    stages -> pooling -> a new linear head; returns logits. For a text backbone,
    tokenized batches -> encoder -> its pooling -> the head (``tokenizer`` is kept as a
    plain attribute).

    ``set_frozen(k)`` freezes the first ``k`` stages; they stay in eval mode
    whatever ``train()`` is called with. With ``batchnorm_statistics="pretrained"``
    every BatchNorm layer stays in eval mode too.
    """

    def __init__(self, preprocess, augment, trunk, stages, pool, width, n_classes, sequential=False,
                 batchnorm_statistics="batch", mix=None):
        super().__init__()
        self.mix = mix
        self.batchnorm_statistics = batchnorm_statistics
        self.sequential = sequential  # trunk[k:] runs the stages after the k-th
        self.preprocess = preprocess
        self.augment = augment
        self.trunk = trunk
        self.pool = pool
        self.head = nn.Linear(width, n_classes)
        self.stages = list(stages)  # (name, module) views into trunk, not extra registrations
        self.n_frozen = 0
        self._applied_mode = None  # (training, n_frozen) that train() last applied

    def forward(self, x=None, *, stage_input=None, sample_weight=None, input_ids=None, attention_mask=None):
        """Logits from raw images ``x``, from the precomputed ``stage_input`` of the first
        trainable stage (the frozen stages' output, stored once per fit), or from
        tokenized texts (``input_ids``, ``attention_mask``; a text backbone's trunk).
        ``sample_weight`` travels with a batch to the loss and is not used here."""
        if input_ids is not None:
            return self.head(self.pool(self.trunk(input_ids, attention_mask), attention_mask))
        if stage_input is None:
            x = self.preprocess(x)
            stage_input, start = self.augment(x.flip(3) if getattr(_VIEW, "mirror", False) else x), 0
            if self.mix is not None and self.training:  # (an exported graph never meets it)
                stage_input = self.mix(stage_input)
        else:
            start = self.n_frozen
        return self.head(self.pool(self.trunk[start:](stage_input) if start else self.trunk(stage_input)))

    def set_frozen(self, depth: int) -> None:
        """Freeze the first ``depth`` stages (gradients off, eval mode)."""
        freeze_stages(self.stages, depth)
        self.n_frozen = depth
        self.train(self.training)

    def train(self, mode: bool = True):
        # skorch calls train()/eval() before every batch; walking every module of the
        # backbone again costs more than a head-only step, so a mode already applied is
        # not applied again
        if self._applied_mode == (mode, self.n_frozen):
            return self
        super().train(mode)
        keep_frozen_in_eval(self.stages, self.n_frozen)
        if self.batchnorm_statistics == "pretrained":
            keep_batchnorm_in_eval(self.trunk)
        self._applied_mode = (mode, self.n_frozen)
        return self

    def place(self, device: torch.device) -> "ClassifierNet":
        """Move to ``device``, with channels-last convolutions (faster on GPUs and CPUs)."""
        self.to(device)
        self.trunk.to(memory_format=torch.channels_last)
        self.preprocess.channels_last = True
        return self


def _input_size(size, config: DataConfig, fixed: bool, name: str) -> tuple:
    if size is None:
        return tuple(config.input_size)
    if fixed and tuple(size) != tuple(config.input_size):
        raise ValueError(
            f"backbone {name!r} only accepts input_size={tuple(config.input_size)}, got {tuple(size)}"
        )
    return tuple(size)


def stage_index(stage, backbone, name) -> int:
    """Index of the stage features come from: the last one for None, else by index or name."""
    names = backbone.stage_names
    last = len(names) - 1
    if stage is None:
        return last
    if isinstance(stage, str):
        if stage not in names:
            raise ValueError(f"backbone {name!r} has no stage {stage!r}; its stages are {names}")
        index = names.index(stage)
    else:  # a validated int
        if not -len(names) <= stage <= last:
            raise ValueError(
                f"stage={stage} is out of range for backbone {name!r} with {len(names)} stages "
                f"({names})"
            )
        index = stage % len(names)
    if index != last and not backbone.sequential:
        raise ValueError(
            f"backbone {name!r} cannot run a prefix of its stages; only its last stage "
            "(stage=None) is available"
        )
    return index


def data_config_for(spec, backbone: Backbone) -> DataConfig:
    """The backbone's data config at ``spec.input_size``."""
    base = backbone.data_config
    size = _input_size(spec.input_size, base, backbone.fixed_input_size, spec.backbone)
    return DataConfig(size, base.mean, base.std, base.interpolation, base.crop_pct)


def text_config(backbone: Backbone, max_length: Optional[int] = None):
    """A text backbone's :class:`~sktransfer.backbones.TextConfig`, with ``max_length``
    replacing the model's own token limit (more than its positions raises)."""
    config = backbone.data_config
    return config if max_length is None else dataclasses.replace(config, max_length=int(max_length))


def backbone_parts(spec, backbone: Backbone, index: int, config: Optional[DataConfig] = None):
    """Preprocessing, the stages up to ``index`` and the pooling, as ``spec`` (a
    :class:`~sktransfer.fitting.spec.NetworkSpec`) asks; ``config`` replaces the
    backbone's data config (a saved network rebuilt with random weights).

    Returns ``(preprocess, trunk, pool, data_config)``.
    """
    config = config or data_config_for(spec, backbone)
    pool = Pool(spec.pooling, backbone.stage_formats[index], backbone.num_prefix_tokens)
    trunk = backbone.module if index == len(backbone.stages) - 1 else backbone.module[: index + 1]
    return Preprocess(config, spec.inputs.value_range, spec.resize), trunk, pool, config
