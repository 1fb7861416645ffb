"""Loading pretrained weights: local files, download caches, and offline failures."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")

# Seconds to wait for a TCP connection before declaring the weights host unreachable.
_PROBE_TIMEOUT = 3.0


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither cached locally nor downloadable.

    Raised instead of hanging or silently falling back to random weights. The
    message names the file that is missing, where it is looked for, and how to
    provide it.

    Examples
    --------
    >>> from sktransfer import WeightsUnavailableError
    >>> issubclass(WeightsUnavailableError, RuntimeError)
    True
    """


def is_weights_file(weights) -> bool:
    """Whether ``weights`` names a local file rather than a weights tag."""
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and (
        weights.lower().endswith(WEIGHT_FILE_SUFFIXES) or os.sep in weights or "/" in weights
    )


def file_weights_id(path: Path) -> str:
    """Identify a weights file by content, for cache keys and reprs."""
    digest = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return f"file:{path.name}:{digest.hexdigest()}"


def read_state_dict(path) -> tuple[dict[str, torch.Tensor], str]:
    """Read a state dict from ``.pth``/``.pt``/``.bin``/``.safetensors``.

    Common checkpoint wrappers (``{"state_dict": ...}``, ``{"model": ...}``)
    and the ``module.`` prefix that ``DataParallel`` adds are removed.
    Pickled files are read with ``weights_only=True``: no code runs.

    Parameters
    ----------
    path : str or path
        The file.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        The tensors, on the CPU.
    weights_id : str
        Names the file by its content (``file:<name>:<digest>``).

    Examples
    --------
    >>> import tempfile, torch
    >>> from sktransfer.backbones import read_state_dict
    >>> path = tempfile.mkdtemp() + "/w.pth"
    >>> torch.save({"state_dict": {"module.weight": torch.ones(2)}}, path)
    >>> state, weights_id = read_state_dict(path)
    >>> list(state), weights_id.startswith("file:w.pth:")
    (['weight'], True)
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {str(path)!r}")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:
            raise ValueError(f"could not read weights file {str(path)!r}: {exc}") from exc
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"could not read weights file {str(path)!r}: {exc}") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(
            f"weights file {str(path)!r} does not hold a state dict (a mapping of names to tensors)"
        )
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state, file_weights_id(path)


def _list_keys(keys, limit=10) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_backbone_state(
    model: nn.Module, state_dict: dict, backbone: nn.Module, source: str
) -> None:
    """Load ``state_dict`` into ``model``, checking only the backbone's tensors.

    Keys of the head (what ``model`` has beyond ``backbone``) are ignored, so
    checkpoints with any number of classes load.

    Parameters
    ----------
    model : torch.nn.Module
        The full network the checkpoint was written for.
    state_dict : dict of str to torch.Tensor
        The checkpoint's tensors, named as in ``model``.
    backbone : torch.nn.Module
        The headless part of ``model`` (sharing its tensors) that must load
        completely.
    source : str
        Where the weights come from, for error messages.

    Raises
    ------
    ValueError
        Listing missing backbone keys and unexpected keys, or tensors whose
        shapes do not fit.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sktransfer.backbones import load_backbone_state
    >>> body = nn.Linear(2, 2)
    >>> model = nn.Sequential(body, nn.Linear(2, 5))
    >>> state = {"0.weight": torch.eye(2), "0.bias": torch.zeros(2), "1.weight": torch.ones(9, 2)}
    >>> load_backbone_state(model, state, body, source="example")  # the head's shape is ignored
    >>> body.weight.tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    model_state = model.state_dict(keep_vars=True)
    kept = {id(t) for t in backbone.state_dict(keep_vars=True).values()}
    backbone_keys = {k for k, t in model_state.items() if id(t) in kept}
    missing = backbone_keys - state_dict.keys()
    unexpected = state_dict.keys() - model_state.keys()
    if missing or unexpected:
        parts = [f"weights from {source} do not match the backbone"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_list_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_list_keys(unexpected)}")
        raise ValueError("; ".join(parts))
    try:
        model.load_state_dict({k: state_dict[k] for k in backbone_keys}, strict=False)
    except RuntimeError as exc:
        raise ValueError(f"weights from {source} do not fit the backbone: {exc}") from exc


def _host_reachable(host: str, port: int = 443, timeout: float = _PROBE_TIMEOUT) -> bool:
    # A daemon thread bounds the wait even when name resolution itself stalls.
    result = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def offline_requested() -> bool:
    """True when the user asked for no network use (``SKTRANSFER_OFFLINE`` or ``HF_HUB_OFFLINE``)."""
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("SKTRANSFER_OFFLINE", "HF_HUB_OFFLINE")
    )


def require_download(what: str, url: str, cache_path: str, local_file_hint: str) -> None:
    """Fail fast when ``what`` is not cached and its host cannot be reached.

    Called only when the weights are missing from ``cache_path``; returns when
    a download can be attempted.
    """
    host = urlparse(url).hostname or url
    if offline_requested():
        reason = "offline mode is set (SKTRANSFER_OFFLINE / HF_HUB_OFFLINE)"
    elif _host_reachable(host):
        return
    else:
        reason = f"{host} cannot be reached"
    raise WeightsUnavailableError(
        f"{what} are not in the local cache ({cache_path}) and {reason}. "
        f"Either pass a local file, e.g. weights={local_file_hint!r}, copy the file from "
        f"{url} to {cache_path} on a machine with network access, or use weights=None "
        "for random initialization."
    )
