"""Tools for plugin authors: does a backbone keep the contract the estimators rely on?

:func:`check_backbone` builds a backbone (a registered name or a factory) and
checks, in order, each rule below, raising :class:`BackboneContractError` that
names the first one broken:

1. the factory returns a :class:`~sktransfer.Backbone` of a modality the
   estimators take;
2. its :class:`~sktransfer.DataConfig` is complete (input size, three means
   and positive standard deviations, crop fraction), or, for a text backbone,
   its :class:`~sktransfer.backbones.TextConfig` and tokenizer are, and its
   stages give tokens, or, for an audio backbone, its
   :class:`~sktransfer.backbones.AudioConfig` and the image config inside it
   are, or its :class:`~sktransfer.backbones.AudioEncoderConfig` and feature
   extractor;
3. its stages are named, unique, and own every parameter of the module exactly
   once (so freezing by depth freezes exactly those stages), and a sequential
   backbone is its stages in order;
4. on a batch of two images at the data config's size (two texts for a text
   backbone; two spectrogram images for an audio one, two clips through an
   audio encoder's feature extractor), the stages run in the
   order listed (a stage may not run at all, as the head norm that timm keeps in
   a ConvNeXt's last group) and the last one's output has ``num_features``
   channels in its declared layout;

and, when built on the CPU (``device="cpu"``, the default):

5. eval mode is deterministic (two passes give equal outputs);
6. in training mode (BatchNorm on its statistics, as the classifier trains),
   the module returns a tensor, and with the first ``k`` stages frozen a
   backward pass reaches every later stage and no frozen one;
7. a :class:`~sktransfer.PretrainedFeatureExtractor` on it fits and transforms
   (images, texts or waveforms) on the CPU, and pickle and skops (when installed) round trips give the same
   features.

``device="meta"`` checks 1-4 on shapes alone, without memory or compute (for
large networks in a test suite); a network that computes on tensors while it is
built is built on the CPU, then moved to the meta device. Text backbones and
audio encoders are always checked on the CPU (attention masks are read as
values; a feature extractor makes CPU tensors).
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Iterable, Union

import numpy as np
import torch

from .backbones import AudioConfig, AudioEncoderConfig, Backbone, DataConfig, TextConfig, get_backbone, register_backbone
from .backbones._base import FEATURE_FORMATS
from .backbones._registry import backbone_modality
from .nn.freezing import freeze_stages, keep_batchnorm_in_eval

__all__ = ["BackboneContractError", "check_backbone", "parametrize_with_backbone_checks"]

MODALITIES = ("image", "text", "audio")  # what the estimators take
TEXTS = ["A short text.", "A second text, somewhat longer than the first one."]


class BackboneContractError(AssertionError):
    """A backbone breaks a rule of the contract; the message names the rule and the backbone.

    An ``AssertionError``, so that pytest shows it as a failed check.

    Examples
    --------
    >>> from sktransfer.utils import BackboneContractError
    >>> issubclass(BackboneContractError, AssertionError)
    True
    """


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise BackboneContractError(f"backbone {name!r}: {message}")


def check_backbone(backbone: Union[str, Callable], weights: Any = None, *, device: str = "cpu") -> Backbone:
    """Check that a backbone keeps the contract of :mod:`sktransfer.checks`.

    Parameters
    ----------
    backbone : str or callable
        A registered name, or a factory ``factory(name, weights) -> Backbone``
        (registered for the check as ``"check/<factory name>"``, which stays
        in the registry).
    weights : str, path or None, default=None
        The weights to build with; None (random) needs no files.
    device : {"cpu", "meta"}, default="cpu"
        ``"meta"`` checks the structure and shapes only.

    Returns
    -------
    backbone : Backbone
        As built.

    Raises
    ------
    BackboneContractError
        The first broken rule, with the backbone's name.

    Examples
    --------
    >>> from sktransfer.utils import check_backbone
    >>> check_backbone("resnet18", device="meta").num_features
    512
    """
    if device not in ("cpu", "meta"):
        raise ValueError(f"device must be 'cpu' or 'meta', got {device!r}")
    name = backbone
    if callable(backbone):
        name = f"check/{getattr(backbone, '__name__', type(backbone).__name__)}"
        register_backbone(name, backbone, overwrite=True)
    if device == "meta" and backbone_modality(name) == "text":
        device = "cpu"  # attention masks are read as values: text encoders do not run on meta tensors
    built = _build(name, weights, device)
    if device == "meta" and built.feature_extractor is not None:
        # an audio encoder's extractor makes CPU tensors, and its normalizations do not run on meta ones
        device, built = "cpu", _build(name, weights, "cpu")
    with torch.device(device):
        _check_kind(built, name)
        _check_data_config(built, name)
        _check_stages(built, name)
        _check_forward(built, name)
    if device == "cpu":
        _check_determinism(built, name)
        _check_freezing(built, name)
        _check_estimator(name, weights)
    return built


def _build(name, weights, device):
    if device == "cpu":
        return get_backbone(name, weights=weights)
    try:
        with torch.device("meta"):
            return get_backbone(name, weights=weights)
    except (RuntimeError, NotImplementedError):
        # built from computed tensors (torchvision's RegNets derive widths while building)
        built = get_backbone(name, weights=weights)
        built.module.to("meta")
        return built


def parametrize_with_backbone_checks(names: Iterable[str]):
    """A pytest ``parametrize`` mark over backbone names, for a test calling
    :func:`check_backbone` (as scikit-learn's ``parametrize_with_checks``).

    Parameters
    ----------
    names : iterable of str
        Registered names, e.g. ``list_backbones("myhub/*")``.

    Returns
    -------
    mark : pytest.MarkDecorator
        Parametrizes the argument ``backbone_name``, one test id per name.

    Examples
    --------
    >>> from sktransfer.utils import check_backbone, parametrize_with_backbone_checks
    >>> @parametrize_with_backbone_checks(["resnet18"])
    ... def test_my_backbones(backbone_name):
    ...     check_backbone(backbone_name, device="meta")
    """
    import pytest

    names = list(names)
    if not names:  # a plugin that failed to load lists nothing: fail, do not skip
        raise ValueError("no backbone names to check (did the plugin's entry point load? see the "
                         "RuntimeWarning of sktransfer's registry)")
    return pytest.mark.parametrize("backbone_name", names, ids=names)


def _check_kind(backbone, name) -> None:
    _require(isinstance(backbone, Backbone), name, f"the factory returned a {type(backbone).__name__}, "
             "not a sktransfer.Backbone")
    _require(backbone.modality in MODALITIES, name,
             f"modality {backbone.modality!r} is not one the estimators take {MODALITIES}")
    _require(isinstance(backbone.num_features, int) and backbone.num_features > 0, name,
             f"num_features must be a positive int, got {backbone.num_features!r}")


def _check_data_config(backbone, name) -> None:
    config = backbone.data_config
    if backbone.modality == "text":
        _require(isinstance(config, TextConfig), name, f"a text backbone's data_config is a "
                 f"{type(config).__name__}, not a TextConfig")
        _require(isinstance(config.max_length, int) and config.max_length > 0, name,
                 f"data_config.max_length must be a positive int, got {config.max_length!r}")
        _require(callable(backbone.tokenizer), name, "a text backbone needs a tokenizer")
        _require(all(f == "NLC" for f in backbone.stage_formats), name, "a text backbone's stages give tokens (NLC)")
        return
    if backbone.modality == "audio" and isinstance(config, AudioEncoderConfig):
        _require(config.sample_rate > 0 and config.clip_seconds > 0, name,
                 "an AudioEncoderConfig needs a positive sample_rate and clip_seconds")
        _require(callable(backbone.feature_extractor), name, "an audio encoder needs a feature_extractor")
        _require(all(f == "NLC" for f in backbone.stage_formats), name, "an audio encoder's stages give tokens (NLC)")
        return
    if backbone.modality == "audio":
        _require(isinstance(config, AudioConfig), name, f"an audio backbone's data_config is a "
                 f"{type(config).__name__}, not an AudioConfig or an AudioEncoderConfig")
        _require(config.sample_rate > 0 and config.clip_seconds > 0 and config.n_mels > 0, name,
                 "an AudioConfig needs a positive sample_rate, clip_seconds and n_mels")
        config = config.image  # the spectrogram image's: checked as an image backbone's
    _require(isinstance(config, DataConfig), name, f"data_config is a {type(config).__name__}, not a DataConfig")
    size = config.input_size
    _require(len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size), name,
             f"data_config.input_size must be two positive ints (height, width), got {size!r}")
    _require(len(config.mean) == 3 and len(config.std) == 3, name,
             "data_config.mean and std need one value per RGB channel")
    _require(min(config.std) > 0, name, f"data_config.std must be positive, got {config.std!r}")
    _require(0 < config.crop_pct <= 1, name, f"data_config.crop_pct must lie in (0, 1], got {config.crop_pct!r}")


def _check_stages(backbone, name) -> None:
    names = backbone.stage_names
    _require(all(isinstance(n, str) and n for n in names) and len(set(names)) == len(names), name,
             f"stage names must be unique non-empty strings, got {names}")
    owner: dict = {}
    for stage_name, stage in backbone.stages:
        for p in stage.parameters():
            _require(id(p) not in owner, name, f"a parameter of stage {stage_name!r} is also in {owner.get(id(p))!r}")
            owner[id(p)] = stage_name
    loose = [n for n, p in backbone.module.named_parameters() if id(p) not in owner]
    _require(not loose, name, f"parameters in no stage (freezing would miss them): {loose[:5]}")
    in_module = {id(p) for p in backbone.module.parameters()}
    outside = [stage for p_id, stage in owner.items() if p_id not in in_module]
    _require(not outside, name, f"stages {sorted(set(outside))} hold parameters that are not in the module")
    if backbone.sequential:
        _require([id(m) for m in backbone.module.children()] == [id(s) for _, s in backbone.stages], name,
                 "sequential=True, but the module is not its stages in order")
    _require(backbone.num_prefix_tokens == 0 or backbone.stage_formats[-1] == "NLC", name,
             "num_prefix_tokens applies to token ('NLC') outputs only")


def _forward(backbone, grad=False):
    """The last stage's output for two images, and the order in which stages first ran."""
    order: list = []
    # every submodule: a stage of a non-sequential network is a grouping that is never called
    hooks = [module.register_forward_pre_hook(lambda m, a, i=i: order.append(i) if i not in order else None)
             for i, (_, stage) in enumerate(backbone.stages) for module in stage.modules()]
    if backbone.modality == "text":
        tokens = backbone.tokenizer(TEXTS, padding=True, return_tensors="pt")
        inputs = (tokens["input_ids"], tokens["attention_mask"])
    elif isinstance(backbone.data_config, AudioEncoderConfig):
        clips = np.random.default_rng(0).uniform(-0.5, 0.5, (2, backbone.data_config.clip_samples))
        values = backbone.feature_extractor(list(clips), sampling_rate=backbone.data_config.sample_rate,
                                            return_tensors="pt")["input_values"]
        inputs = (values.to(next(backbone.module.parameters()).device),)  # the extractor's are on the CPU
    else:
        x = torch.zeros(2, 3, *backbone.data_config.input_size)
        if x.device.type != "meta":
            x = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
        inputs = (x,)
    try:
        with torch.set_grad_enabled(grad), torch.inference_mode(not grad):
            return backbone.module(*inputs), order
    finally:
        for hook in hooks:
            hook.remove()


def _check_forward(backbone, name) -> None:
    backbone.module.eval()
    out, order = _forward(backbone)
    # a stage may not run at all (a provider's head norm that the features skip)
    _require(order == sorted(order), name,
             f"stages ran in the order {[backbone.stage_names[i] for i in order]}, "
             f"not as listed {backbone.stage_names}")
    fmt = backbone.stage_formats[-1]
    _require(fmt in FEATURE_FORMATS and out.ndim == (3 if fmt == "NLC" else 4) and out.shape[0] == 2, name,
             f"the last stage's output has shape {tuple(out.shape)} for 2 images, not a {fmt} batch")
    width = out.shape[1] if fmt == "NCHW" else out.shape[-1]
    _require(width == backbone.num_features, name,
             f"num_features is {backbone.num_features}, but the last stage gives {width} ({fmt})")
    if fmt == "NLC":
        _require(0 <= backbone.num_prefix_tokens < out.shape[1], name,
                 f"num_prefix_tokens={backbone.num_prefix_tokens} leaves no patch tokens")


def _check_determinism(backbone, name) -> None:
    first, _ = _forward(backbone)
    second, _ = _forward(backbone)
    _require(torch.equal(first, second), name, "two passes in eval mode gave different outputs")


def _check_freezing(backbone, name) -> None:
    """In training mode, as the classifier trains (BatchNorm on its statistics); the
    module's mode and trainable flags are put back afterwards."""
    flags = [p.requires_grad for p in backbone.module.parameters()]
    backbone.module.train()
    keep_batchnorm_in_eval(backbone.module)
    try:
        _check_gradients(backbone, name)
    finally:
        backbone.module.eval()
        for p, flag in zip(backbone.module.parameters(), flags):
            p.requires_grad_(flag)
        backbone.module.zero_grad(set_to_none=True)


def _check_gradients(backbone, name) -> None:
    stages = backbone.stages
    for depth in sorted({1, len(stages) - 1} - {0}):
        freeze_stages(stages, depth)
        backbone.module.zero_grad(set_to_none=True)
        out, ran = _forward(backbone, grad=True)
        _require(torch.is_tensor(out), name, f"in training mode the module returns a {type(out).__name__}, "
                 "not a tensor (an auxiliary output?)")
        if not out.requires_grad:  # every stage that runs is frozen
            _require(max(ran) < depth, name, f"no gradient reaches the output with {depth} stages frozen")
            continue
        out.float().square().mean().backward()
        for i, (stage_name, stage) in enumerate(stages):
            got = [p.grad is not None for p in stage.parameters()]
            if i < depth:
                _require(not any(got), name, f"stage {stage_name!r} got gradients while frozen (depth {depth})")
            elif got and i in ran:
                _require(any(got), name, f"no gradient reached stage {stage_name!r} with {depth} stages frozen")


def _check_estimator(name, weights) -> None:
    from . import SKOPS_TRUSTED_TYPES, PretrainedFeatureExtractor

    rng = np.random.default_rng(0)
    inputs = {"image": rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8), "text": TEXTS,
              "audio": list(rng.uniform(-0.5, 0.5, (2, 8000)).astype(np.float32))}
    images = inputs[backbone_modality(name)]
    audio = {"sample_rate": 16000} if backbone_modality(name) == "audio" else {}
    extractor = PretrainedFeatureExtractor(name, weights=weights, device="cpu", cache=False, random_state=0, **audio)
    features = extractor.fit_transform(images)
    _require(np.isfinite(features).all(), name, "the extractor gave non-finite features")
    loaded = pickle.loads(pickle.dumps(extractor))
    _require(np.array_equal(loaded.transform(images), features), name,
             "a pickled extractor gives other features after loading")
    try:
        import skops.io as sio
    except ImportError:
        return
    loaded = sio.loads(sio.dumps(extractor), trusted=SKOPS_TRUSTED_TYPES)
    _require(np.array_equal(loaded.transform(images), features), name,
             "an extractor saved with skops gives other features after loading")
