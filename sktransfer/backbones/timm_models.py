"""Any timm model as ``timm/<name>`` (optional: ``pip install 'sktransfer[timm]'``)."""

from __future__ import annotations

import difflib
from pathlib import Path

import torch
from torch import nn

from ._base import INTERPOLATIONS, Backbone, DataConfig, optional_import
from ._weights import file_weights_id, is_weights_file, require_download

PREFIX = "timm/"


def _timm():
    return optional_import("timm", "timm backbones", "timm")


def model_names() -> list[str]:
    """timm's architecture names, or none when timm is not installed."""
    try:
        return _timm().list_models()
    except ImportError:
        return []


class _ForwardFeatures(nn.Module):
    """A timm model's unpooled ``forward_features`` output."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_features(x)


class _Stage(nn.Module):
    """One of timm's parameter groups: its modules, and the parameters that sit on the
    model itself (a ViT's class token and position embedding belong to its stem), so
    that freezing the group freezes them too."""

    def __init__(self, modules, parameters):
        super().__init__()
        self.parts = nn.ModuleList(modules)
        self.loose = nn.ParameterList(parameters)


def _stages(timm, model):
    matcher = model.group_matcher(coarse=True)
    modules = timm.models.group_modules(model, matcher, return_values=True)
    parameters = timm.models.group_parameters(model, matcher, return_values=True)
    stages = []
    for i in sorted(set(modules) | set(parameters)):
        owned = {id(p) for m in modules.get(i, []) for p in m.parameters()}
        loose = [p for p in parameters.get(i, []) if id(p) not in owned]
        stages.append((f"group{i}", _Stage(modules.get(i, []), loose)))
    return tuple(stages)


def _pretrained_tag(timm, arch, weights):
    tags = [n.partition(".")[2] for n in timm.list_pretrained(f"{arch}.*")]
    if weights == "DEFAULT" and tags:
        return tags[0]  # timm lists an architecture's default weights first
    if weights in tags:
        return weights
    raise ValueError(
        f"unknown weights {weights!r} for backbone {PREFIX}{arch}; valid names: "
        f"{['DEFAULT', *tags] if tags else '(none: this model has no pretrained weights)'}, "
        "None (random init) or a path to a .pth/.pt/.safetensors file"
    )


def _cached_file(cfg):
    """A locally cached weights file for ``cfg``, if any (never touches the network)."""
    hub_id = cfg.get("hf_hub_id")
    if not hub_id:
        return None
    from huggingface_hub import try_to_load_from_cache

    for filename in (cfg.get("hf_hub_filename"), "model.safetensors", "pytorch_model.bin"):
        if filename:
            path = try_to_load_from_cache(hub_id, filename)
            if isinstance(path, str):
                return path
    return None


def _from_file(timm, spec, path, weights_id):
    try:
        model = timm.create_model(
            spec, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": path}
        )
    except RuntimeError as exc:
        raise ValueError(f"weights from {path!r} do not match {PREFIX}{spec}: {exc}") from exc
    return model, weights_id


def weights_available(name: str) -> bool:
    """Whether the default pretrained weights of ``name`` are in the Hugging Face cache."""
    timm, arch = _timm(), name.removeprefix(PREFIX)
    try:
        spec = f"{arch}.{_pretrained_tag(timm, arch, 'DEFAULT')}"
    except ValueError:  # no pretrained weights at all
        return False
    return _cached_file(timm.models.get_pretrained_cfg(spec).to_dict()) is not None


def _create(timm, arch, weights):
    """Create the headless model with its weights; returns ``(model, weights_id)``."""
    if weights is None:
        return timm.create_model(arch, pretrained=False, num_classes=0), "random"
    if is_weights_file(weights):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {str(path)!r}")
        return _from_file(timm, arch, str(path), file_weights_id(path))
    spec = f"{arch}.{_pretrained_tag(timm, arch, weights)}"
    cfg = timm.models.get_pretrained_cfg(spec).to_dict()
    cached = _cached_file(cfg)
    if cached is not None:
        return _from_file(timm, spec, cached, f"timm:{spec}")
    require_download(
        f"weights {spec} for backbone {PREFIX}{arch}",
        cfg.get("url") or f"https://huggingface.co/{cfg.get('hf_hub_id')}",
        "the Hugging Face hub cache",
        local_file_hint="/path/to/model.safetensors",
    )
    return timm.create_model(spec, pretrained=True, num_classes=0), f"timm:{spec}"


def build(name: str, weights="DEFAULT") -> Backbone:
    """Build ``timm/<arch>`` with timm's ``num_classes=0`` and its data config."""
    timm = _timm()
    arch = name[len(PREFIX):]
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(PREFIX + c) for c in close)}?" if close else ""
        raise ValueError(f"unknown backbone {name!r}: timm has no model {arch!r}{hint}")
    model, weights_id = _create(timm, arch, weights)
    model.eval()
    cfg = timm.data.resolve_data_config(model=model)
    size = tuple(cfg["input_size"][1:])
    interpolation = cfg.get("interpolation", "bilinear")
    module = _ForwardFeatures(model)
    # One forward tells the output layout (maps or token sequences) for any family.
    with torch.inference_mode():
        out = module(torch.zeros(1, 3, *size))
    if out.ndim == 3:
        fmt = "NLC"
    else:
        fmt = "NHWC" if getattr(model, "output_fmt", "NCHW") == "NHWC" else "NCHW"
    stages = _stages(timm, model)
    return Backbone(
        module=module,
        stages=stages,
        num_features=out.shape[-1] if fmt in ("NLC", "NHWC") else out.shape[1],
        data_config=DataConfig(
            input_size=size,
            mean=tuple(cfg["mean"]),
            std=tuple(cfg["std"]),
            interpolation=interpolation if interpolation in INTERPOLATIONS else "bilinear",
            crop_pct=cfg.get("crop_pct", 0.875),
        ),
        stage_formats=(fmt,) * len(stages),
        num_prefix_tokens=getattr(model, "num_prefix_tokens", 0) if fmt == "NLC" else 0,
        fixed_input_size=bool(model.pretrained_cfg.get("fixed_input_size", False)),
        weights_id=weights_id,
    )


build.weights_available = weights_available
