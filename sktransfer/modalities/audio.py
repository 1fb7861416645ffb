"""Sound: waveforms and sound files, through an image network (as log-mel spectrograms)
or through a Hugging Face audio encoder (as its own feature extractor prepares them)."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..backbones._base import AudioConfig, AudioEncoderConfig
from ..data.audio import audio_signature, validate_audio
from ..nn.audio import EncoderFrontEnd, LogMel
from ..nn.networks import FeatureNet, backbone_parts, data_config_for
from ..nn.pooling import Pool
from .base import Modality


class _Spectrogram:
    """``audio/<image backbone>``: the device-side :class:`~sktransfer.nn.audio.LogMel`
    front end, then the image network's stages; ``input_size`` sizes the spectrogram."""

    def data_config(self, spec, backbone):
        config = backbone.data_config
        image = data_config_for(spec, dataclasses.replace(backbone, data_config=config.image))
        config = dataclasses.replace(config, image=image, clip_seconds=spec.clip_seconds or config.clip_seconds)
        least = LogMel.min_samples(config)
        if config.clip_samples < least:
            raise ValueError(f"clip_seconds={config.clip_seconds:g} makes {config.clip_samples} samples at "
                             f"{config.sample_rate} Hz; a spectrogram needs at least {least} "
                             f"(clip_seconds >= {least / config.sample_rate:.4f})")
        return config

    def feature_net(self, spec, backbone, stage_index, config):
        _, trunk, pool, _ = backbone_parts(spec, backbone, stage_index, config.image)
        return FeatureNet(LogMel(config), trunk, pool)

    def features_out(self, model, backbone, stage_index, config):
        if stage_index == len(backbone.stages) - 1:
            return model.pool.width(backbone.num_features)
        parameter = next(model.trunk.parameters())
        with torch.inference_mode():
            out = model.trunk(torch.zeros((1, 3, *config.input_size), dtype=parameter.dtype, device=parameter.device))
        return model.pool.width(out.shape[1 if model.pool.feature_format == "NCHW" else -1])

    def network_parts(self, spec, backbone, config):
        _, trunk, pool, _ = backbone_parts(spec, backbone, len(backbone.stages) - 1, config.image)
        return LogMel(config), trunk, pool

    def input_size(self, config):
        return tuple(config.input_size)


class _Encoder:
    """A Hugging Face audio encoder: its own feature extractor as the front end
    (:class:`~sktransfer.nn.audio.EncoderFrontEnd`), its token outputs pooled over time."""

    def data_config(self, spec, backbone):
        if spec.input_size is not None:
            raise ValueError(f"input_size={spec.input_size} does not apply to the audio encoder {spec.backbone!r}: "
                             "its feature extractor shapes its inputs (clip_seconds sets the clips' length)")
        config = backbone.data_config
        return dataclasses.replace(config, clip_seconds=spec.clip_seconds or config.clip_seconds)

    def feature_net(self, spec, backbone, stage_index, config):
        return FeatureNet(*self.network_parts(spec, backbone, config))

    def features_out(self, model, backbone, stage_index, config):
        return model.pool.width(backbone.num_features)

    def network_parts(self, spec, backbone, config):
        pool = Pool(spec.pooling, "NLC", backbone.num_prefix_tokens)
        return EncoderFrontEnd(backbone.feature_extractor, config.sample_rate), backbone.module, pool

    def input_size(self, config):
        return None  # the extractor's output size varies by model


_FRONTS = {AudioConfig: _Spectrogram(), AudioEncoderConfig: _Encoder()}


class AudioModality(Modality):
    """Sound inputs (see :mod:`sktransfer.data.audio`), for ``audio/<image backbone>`` and
    Hugging Face audio encoders.

    Clips are read as waveform batches at the backbone's rate and ``clip_seconds`` long;
    the network's first layer makes them what the backbone takes (a log-mel image, or the
    encoder's ``input_values``), on the device. ``sample_rate`` reads waveform arrays. The
    image parameters that read pixels keep their defaults, and ``augment`` does not apply
    (a flip would reverse time).
    """

    name = "audio"
    unused = {
        "max_length": (None, "it counts a text model's tokens"),
        "tta": (None, "a mirrored spectrogram would run time backwards"),
        "cutmix_alpha": (0.0, "cutmix pastes boxes of images; mixup_alpha blends whole inputs"),
        "channel_axis": ("auto", "sound has no channels axis to choose"),
        "image_shape": (None, "sound is not rows of pixels"),
        "value_range": ((0.0, 1.0), "sound is read as float samples"),
        "resize": ("squash", "the spectrogram is resized whole"),
    }

    def validate(self, X, spec, fitted=None, *, owner, what="X", rows=None):
        return validate_audio(X, spec.sample_rate, owner, what), audio_signature()

    def source(self, checked, network, config):
        return checked.configured(config.sample_rate, config.clip_samples)

    def data_config(self, spec, backbone):
        return _FRONTS[type(backbone.data_config)].data_config(spec, backbone)

    def feature_net(self, spec, backbone, stage_index, config=None):
        config = config or self.data_config(spec, backbone)
        model = _FRONTS[type(config)].feature_net(spec, backbone, stage_index, config)
        return model.eval().requires_grad_(False).place(spec.torch_device, spec.dtype), config

    def features_out(self, model, backbone, stage_index, config):
        return _FRONTS[type(config)].features_out(model, backbone, stage_index, config)

    def network_parts(self, spec, backbone, config, augment):
        preprocess, trunk, pool = _FRONTS[type(config)].network_parts(spec, backbone, config)
        return preprocess, nn.Identity(), trunk, pool

    def frozen_net(self, network, config):
        return FeatureNet(network.preprocess, network.trunk, network.pool)

    def input_size(self, config):
        return _FRONTS[type(config)].input_size(config)

    def compile_shapes(self, config):
        return 1, self.input_size(config) or (config.clip_samples,)
