"""Audio encoders from Hugging Face model folders: wav2vec2, HuBERT, WavLM, AST...

Names and where their folders are found: :mod:`~sktransfer.backbones.hf_models`
(``"hf/facebook/wav2vec2-base"``, or a local folder). The folder's own feature
extractor (``preprocessor_config.json``) turns the clips into the model's inputs:
normalized waveforms for wav2vec2 and its kin, filter-bank frames for AST. It
runs as the networks' first layer (:class:`~sktransfer.nn.audio.EncoderFrontEnd`),
so clips are read, resampled to its ``sampling_rate`` and cut as for every audio
backbone (:mod:`sktransfer.data.audio`).

Stages: ``"embeddings"`` (everything outside the transformer layers: the
convolutional feature encoder and feature projection of wav2vec2, AST's patch
embedding, positional embeddings, and the layer norms, including a final one that
runs after the layers), then each transformer layer; ``freeze_depth=1`` freezes
all of the first, the feature encoder with it (the usual first step of fine-tuning
wav2vec2). The
token outputs are averaged over time (``pooling="avg"``; AST's class and
distillation tokens are left out of the average, ``pooling="token"`` takes the
class token).
"""

from __future__ import annotations

from torch import nn

from ._base import AudioEncoderConfig, Backbone
from .hf_models import load_model, model_folder, transformer_layers, weights_available

# tokens before the time (or patch) tokens, by model type
_PREFIX_TOKENS = {"audio-spectrogram-transformer": 2}


class AudioEncoder(nn.Module):
    """A Hugging Face audio encoder as ``input_values -> token outputs (n, L, d)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_values):
        return self.model(input_values=input_values).last_hidden_state


class _Rest(nn.Module):
    """Everything of ``model`` outside its transformer ``layers``, as one stage (a view:
    the modules stay registered where the model keeps them)."""

    def __init__(self, model: nn.Module, layers: nn.ModuleList):
        super().__init__()

        def gather(module, prefix):
            for name, parameter in module.named_parameters(recurse=False):
                self.register_parameter(prefix + name, parameter)
            for name, child in module.named_children():
                if child is layers:
                    continue
                if any(m is layers for m in child.modules()):
                    gather(child, f"{prefix}{name}_")
                else:
                    self.add_module(prefix + name, child)

        gather(model, "")


def build(name: str, weights) -> Backbone:
    """``weights="DEFAULT"``: the folder's weights; ``None``: its architecture, randomly initialized."""
    folder = model_folder(name)
    config, model, extractor = load_model(folder, weights, name, "AutoFeatureExtractor")
    layers = transformer_layers(model)
    stages = [("embeddings", _Rest(model, layers))] + [(f"layer{i}", layer) for i, layer in enumerate(layers)]
    return Backbone(
        module=AudioEncoder(model),
        stages=tuple(stages),
        num_features=int(config.hidden_size),
        data_config=AudioEncoderConfig(sample_rate=int(extractor.sampling_rate)),
        stage_formats=("NLC",) * len(stages),
        num_prefix_tokens=_PREFIX_TOKENS.get(config.model_type, 0),
        modality="audio",
        weights_id=f"{name}:{'pretrained' if weights else 'random'}",
        feature_extractor=extractor,
    )


build.weights_available = weights_available
