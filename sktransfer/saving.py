"""Saving and loading estimators as data: one safetensors file, no code.

:func:`save` writes an estimator's state (see ``__getstate__``) to a single
`safetensors <https://huggingface.co/docs/safetensors>`_ file: every numeric
array (the network's weights, ``classes_``...) as a tensor, and everything else
as JSON in the file's header metadata, under the key ``"sktransfer"``: the
file format, the library version, the estimator class, backbone name, weights
identity, parameters and fitted attributes. :func:`load` reads it back without
evaluating anything: the class comes from a fixed table of this library's
estimators, and the network is rebuilt from the registry.

For pipelines and searches holding these estimators, use skops with
:data:`SKOPS_TRUSTED_TYPES` (see the user guide, "Saving and loading models").
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Union

import numpy as np
import torch

from .data.launch import is_main_process
from .persistence.atomic import atomic_path
from .persistence.state import STATE_FORMAT
from ._version import __version__
from .classifier import FineTunedClassifier
from .extractor import PretrainedFeatureExtractor
from .regressor import FineTunedRegressor

__all__ = ["SKOPS_TRUSTED_TYPES", "load", "save"]

_ESTIMATORS = {cls.__name__: cls for cls in (PretrainedFeatureExtractor, FineTunedClassifier, FineTunedRegressor)}

#: What ``skops.io.load`` must be told to trust for this library's estimators, on
#: top of skops' defaults (builtins, numpy, scikit-learn): the estimator
#: classes, whose state is plain data.
SKOPS_TRUSTED_TYPES = [f"{cls.__module__}.{cls.__qualname__}" for cls in _ESTIMATORS.values()]


def save(estimator: Union[PretrainedFeatureExtractor, FineTunedClassifier, FineTunedRegressor], path) -> Path:
    """Save ``estimator`` to ``path`` as one safetensors file.

    The write is atomic: a temporary file in the same folder, renamed onto
    ``path`` once complete, so ``path`` is never a partial model. Under a
    launcher (``torchrun``), where every process runs the script, only the
    main process writes; the others check the estimator as it does and return
    at once, without waiting for the file (see docs/scaling.rst).

    Machine-local folders stay behind: ``cache_dir`` is saved as None, so a
    model loaded on another machine keeps its features in memory only and never
    reads or writes the saving machine's folder; give it one of its own with
    ``set_params(cache_dir=...)``. (pickle, joblib and skops carry every
    parameter as it is, as they also carry estimators between the processes of
    one machine, a parallel search's workers.)

    Parameters
    ----------
    estimator : PretrainedFeatureExtractor, FineTunedClassifier or FineTunedRegressor
        Fitted or not.
    path : str or path-like
        The file to write (by convention ending in ``.safetensors``).

    Returns
    -------
    path : Path

    Raises
    ------
    TypeError
        For another kind of estimator, or a parameter that JSON cannot hold
        (a ``RandomState`` as ``random_state``, a weights enum member, an
        optimizer class from outside ``torch.optim``): name it by an int or a
        string instead.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sktransfer import PretrainedFeatureExtractor, save, load
    >>> X = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    >>> ext = PretrainedFeatureExtractor("resnet18", weights=None, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "extractor.safetensors")
    >>> _ = save(ext, path)
    >>> np.array_equal(load(path).transform(X), ext.transform(X))
    True
    """
    if type(estimator) not in _ESTIMATORS.values():
        raise TypeError(
            f"save takes a PretrainedFeatureExtractor, FineTunedClassifier or FineTunedRegressor, not "
            f"{type(estimator).__name__}; save pipelines and searches with skops.io.dump"
        )
    tensors: dict = {}
    state = estimator.__getstate__()
    if state.get("cache_dir") is not None:
        state["cache_dir"] = None  # a path of this machine only
    state = _encode(state, tensors, "state")
    spec = state.get("_spec", {})
    header = {
        "format": STATE_FORMAT,
        "sktransfer_version": __version__,
        "estimator": type(estimator).__name__,
        "backbone": estimator.backbone,
        "weights_identity": spec.get("weights_identity"),
        "state": state,
    }
    from safetensors.numpy import save_file

    path = Path(path)
    if not is_main_process():
        return path
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata={"sktransfer": json.dumps(header)})
    return path


def load(path) -> Union[PretrainedFeatureExtractor, FineTunedClassifier, FineTunedRegressor]:
    """Load an estimator written by :func:`save`.

    Nothing in the file is executed: the header is JSON, the tensors are raw
    numbers. A model fitted on a GPU loads on a CPU-only machine (with a
    warning) and runs there in float32.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    estimator : PretrainedFeatureExtractor, FineTunedClassifier or FineTunedRegressor

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        When ``path`` is missing, or is a folder.
    ValueError
        When ``path`` is not a safetensors file written by this library, was
        written in another file format (the message names both versions), or
        holds a state that was edited or damaged: a tensor it names is missing,
        a record is malformed, or it sets an attribute the estimator does not
        declare as fitted state (a file cannot replace a method). The message
        names the file and the problem.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sktransfer import PretrainedFeatureExtractor, save, load
    >>> path = os.path.join(tempfile.mkdtemp(), "unfitted.safetensors")
    >>> _ = save(PretrainedFeatureExtractor("resnet18", pooling="max"), path)
    >>> load(path)
    PretrainedFeatureExtractor(pooling='max')
    """
    from safetensors import SafetensorError, safe_open

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"model file not found: {str(path)!r}") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{str(path)!r} is a directory, not a model file (sktransfer.save writes one "
                                ".safetensors file)")
    if not stat.S_ISREG(mode):  # a pipe would block the reader forever
        raise ValueError(f"{str(path)!r} is not a regular file (a pipe, socket or device), not a model file")
    try:
        with safe_open(os.fspath(path), framework="np") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except SafetensorError as exc:
        raise ValueError(f"{path} is not a safetensors file: {exc}") from None
    if "sktransfer" not in metadata:
        raise ValueError(f"{path} is a safetensors file, but not an sktransfer model (no 'sktransfer' metadata)")
    try:
        header = json.loads(metadata["sktransfer"])
        header["format"], header["state"]
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise ValueError(f"{path} has a malformed sktransfer header: {type(exc).__name__}: {exc}") from None
    if header.get("format") != STATE_FORMAT:
        raise ValueError(
            f"{path} was written by sktransfer {header.get('sktransfer_version')} in file format "
            f"{header.get('format')}; sktransfer {__version__} reads format {STATE_FORMAT}. "
            "Load it with the version that wrote it and fit or save again."
        )
    cls = _ESTIMATORS.get(header.get("estimator"))
    if cls is None:
        raise ValueError(f"{path} holds an unknown estimator {header.get('estimator')!r}")
    estimator = cls.__new__(cls)
    try:
        state = _decode(header["state"], tensors)
        if isinstance(state, dict) and state.get("cache_dir") is not None:
            state["cache_dir"] = None  # a folder of the machine that saved it (files of older releases)
        estimator.__setstate__(state)
    except ValueError as exc:
        raise ValueError(f"{path} cannot be loaded: {exc}") from None
    except (KeyError, TypeError, AttributeError, IndexError, RecursionError, RuntimeError) as exc:
        # a file edited by hand or damaged: say which, not where in the loader it broke
        raise ValueError(f"{path} holds a malformed {cls.__name__} state ({type(exc).__name__}: {exc})") from None
    return estimator


def _encode(value, tensors: dict, path: str):
    """JSON-ready ``value``: numeric arrays moved into ``tensors`` under their ``path``,
    tuples and text arrays tagged so that :func:`_decode` restores their types."""
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, tensors, f"{path}/{k}") for k, v in value.items()}
        # other keys (a class_weight {0: 1.0, 1: 2.0}): a list of pairs
        return {"__items__": [[_encode(k, tensors, f"{path}/key{i}"), _encode(v, tensors, f"{path}/{i}")]
                              for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{path}/{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, tensors, f"{path}/{i}") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            tensors[path] = np.ascontiguousarray(value)
            return {"__tensor__": path}
        if value.ndim == 1 and all(isinstance(v, (str, int, float, bool)) for v in value.tolist()):
            return {"__array__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, type) and issubclass(value, torch.optim.Optimizer) and (
            getattr(torch.optim, value.__name__, None) is value):
        return {"__optimizer__": value.__name__}  # torch's own optimizers, by name
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    name = path.removeprefix("state/")
    raise TypeError(
        f"{name} holds a {type(value).__name__}, which a model file cannot hold; "
        "use an int or a string (or save with skops)"
    )


def _decode(value, tensors: dict):
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        if value["__tensor__"] not in tensors:
            raise ValueError(f"the state names a tensor {value['__tensor__']!r} that the file does not hold")
        return tensors[value["__tensor__"]]
    if "__tuple__" in value:
        return tuple(_decode(v, tensors) for v in value["__tuple__"])
    if "__array__" in value:
        return np.array(value["__array__"], dtype=np.dtype(value["dtype"]))
    if "__items__" in value:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__items__"]}
    if "__optimizer__" in value:
        optimizer = getattr(torch.optim, value["__optimizer__"], None)
        if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
            raise ValueError(f"unknown optimizer {value['__optimizer__']!r} in the model file")
        return optimizer
    return {k: _decode(v, tensors) for k, v in value.items()}
