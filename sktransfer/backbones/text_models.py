"""Text encoders from Hugging Face model folders (optional: ``pip install 'sktransfer[text]'``).

Names and where their folders are found: :mod:`~sktransfer.backbones.hf_models`.

Built on ``transformers`` (``AutoModel``, ``AutoTokenizer``) directly rather than
through sentence-transformers: one dependency less on the inference path, and
the library keeps its own batching (sorted by nothing, padded to each batch's
longest text), device placement, autocast and caching. A sentence-transformers
folder's own pooling (``1_Pooling/config.json``), normalization (a
``Normalize`` module) and ``max_seq_length`` are read from its files, so the
embeddings are the model's own.

Stages: the embeddings, then each transformer layer; ``freeze_depth`` counts
them in that order.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from ._base import Backbone, TextConfig
from .hf_models import load_model, model_folder, transformer_layers, weights_available

_POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
                  "pooling_mode_max_tokens": "max"}


def _pooling(folder: Path, module: dict) -> str:
    config = json.loads((folder / module["path"] / "config.json").read_text())
    modes = [key for key, on in config.items() if key.startswith("pooling_mode") and on]
    if len(modes) != 1 or modes[0] not in _POOLING_MODES:
        raise ValueError(f"the model in {str(folder)!r} pools with {modes}; sktransfer reproduces one of "
                         f"{sorted(_POOLING_MODES)} only, so its embeddings would not be the model's own")
    return _POOLING_MODES[modes[0]]


def _text_config(folder: Path, tokenizer, positions: int) -> TextConfig:
    """Pooling, normalization and token limit from a sentence-transformers folder; a
    plain Hugging Face folder gets mean pooling, no normalization, the tokenizer's limit.
    The limit never exceeds what the position embeddings hold (``positions``). Modules
    whose output sktransfer does not reproduce (Dense layers, lower-casing...) raise."""
    pooling, normalize, limit = "mean", False, getattr(tokenizer, "model_max_length", positions)
    modules = folder / "modules.json"
    if modules.is_file():
        for module in json.loads(modules.read_text()):
            kind = module.get("type", "").rsplit(".", 1)[-1]
            if kind == "Normalize":
                normalize = True
            elif kind == "Pooling":
                pooling = _pooling(folder, module)
            elif kind != "Transformer":
                raise ValueError(f"the model in {str(folder)!r} has a {kind} module, which sktransfer does "
                                 "not reproduce: its embeddings would not be the model's own")
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        settings = json.loads(st_config.read_text())
        if settings.get("do_lower_case"):
            raise ValueError(f"the model in {str(folder)!r} lower-cases its input, which sktransfer does not")
        limit = settings.get("max_seq_length") or limit
    return TextConfig(max_length=int(min(limit, positions)), pooling=pooling, normalize=normalize,
                      max_positions=positions)


def _positions(config) -> int:
    """Tokens the position embeddings hold (RoBERTa-style models keep two for padding)."""
    positions = int(getattr(config, "max_position_embeddings", 512))
    return positions - 2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else positions


class TextEncoder(nn.Module):
    """A Hugging Face encoder as ``(input_ids, attention_mask) -> token outputs (n, L, d)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def build(name: str, weights) -> Backbone:
    """``weights="DEFAULT"``: the folder's weights; ``None``: its architecture, randomly initialized."""
    folder = model_folder(name)
    config, model, tokenizer = load_model(folder, weights, name, "AutoTokenizer")
    layers = transformer_layers(model)
    stages = [("embeddings", model.embeddings)] + [(f"layer{i}", layer) for i, layer in enumerate(layers)]
    return Backbone(
        module=TextEncoder(model),
        stages=tuple(stages),
        num_features=int(config.hidden_size),
        data_config=_text_config(folder, tokenizer, _positions(config)),
        stage_formats=("NLC",) * len(stages),
        modality="text",
        weights_id=f"{name}:{'pretrained' if weights else 'random'}",
        tokenizer=tokenizer,
    )


build.weights_available = weights_available
