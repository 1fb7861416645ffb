"""Exporting a fitted estimator for serving: one ONNX file, or a torch.export program.

:func:`export` builds the graph from the estimator (its preprocessing, its fitted
network, its output mapping) and the metadata that describe it; writing the file is
:mod:`sktransfer.persistence.export`'s. See the user guide's "Deploying a model".
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Union

import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._estimator import TransferEstimator
from ._finetuned import FineTunedEstimator
from ._version import __version__
from .backbones import AudioConfig, AudioEncoderConfig, TextConfig
from .nn.serving import ServingGraph
from .persistence.export import Graph, check_suffix, write

if TYPE_CHECKING:
    from .classifier import FineTunedClassifier
    from .extractor import PretrainedFeatureExtractor
    from .regressor import FineTunedRegressor

__all__ = ["export"]

#: Models whose inputs cannot enter a graph, by their data config: why, and what to do.
_REFUSED = {
    TextConfig: "a text model: its tokenizer, which turns strings into token ids, is Python code outside torch and cannot be "
                "part of the graph. Serve the estimator itself (sktransfer.save / sktransfer.load), or export the "
                "encoder with its model folder's own tools (Hugging Face optimum: optimum-cli export onnx) and "
                "tokenize with the same tokenizer before it",
    AudioEncoderConfig: "an audio encoder: its front end is its model folder's feature extractor (numpy, outside "
                        "torch), which cannot be part of the graph. Serve the estimator itself (sktransfer.save / "
                        "sktransfer.load); audio/<image backbone> models, whose spectrogram runs in torch, export",
}


def _input(estimator) -> tuple:
    """``(name, per-row shape, dtype, channels last, metadata)`` of the graph's input."""
    config, spec = estimator.data_config_, estimator._spec
    if type(config) in _REFUSED:
        raise ValueError(f"cannot export {spec.backbone!r}, {_REFUSED[type(config)]}")
    if isinstance(config, AudioConfig):
        metadata = {"input_layout": "NL", "sample_rate": config.sample_rate, "clip_samples": config.clip_samples}
        return "waveforms", (config.clip_samples,), torch.float32, False, metadata
    height, width = config.input_size
    channels = estimator.n_channels_in_ or 3  # files and PIL images are read as RGB
    metadata = {"input_layout": "NHWC", "input_size": [height, width], "interpolation": config.interpolation,
                "resize": spec.resize}
    return "images", (height, width, channels), torch.uint8, True, metadata


def serving_graph(estimator) -> Graph:
    """The graph of a fitted ``estimator`` and what describes it (see :func:`export`)."""
    if not isinstance(estimator, TransferEstimator):
        hint = (" For a Pipeline, export its sktransfer step (the graph then returns what that step does) and "
                "convert the scikit-learn steps after it with their own tools (skl2onnx)"
                if hasattr(estimator, "steps") else "")
        raise TypeError(f"export takes a fitted PretrainedFeatureExtractor, FineTunedClassifier or "
                        f"FineTunedRegressor, not a {type(estimator).__name__}.{hint}")
    check_is_fitted(estimator)
    estimator._prediction_spec(estimator._spec)  # tta as it is now: checked, as predicting would
    input_name, shape, dtype, channels_last, metadata = _input(estimator)
    metadata = {"estimator": type(estimator).__name__, "backbone": estimator._spec.backbone,
                "weights_id": estimator.weights_id_, **metadata}
    if isinstance(estimator, FineTunedEstimator):
        task = estimator._task()
        network, head = estimator.net_.module_, task.output_layer(getattr(estimator, estimator._targets_state))
        output_name, mirror = task.output_name, estimator.tta == "flip"
        metadata.update(task=task.name, tta=estimator.tta or "none")
        if hasattr(estimator, "classes_"):
            metadata["classes"] = estimator.classes_.tolist()
    else:
        network, head, output_name, mirror = estimator.model_, nn.Identity(), "features", False
        metadata.update(task="features")
    # a copy on the CPU in float32, in one memory layout (torch.export's archive expects
    # whole tensors), every layer in eval mode (nn.Module.train itself: the fine-tuned
    # network's own train() skips a mode it believes applied)
    network = copy.deepcopy(getattr(network, "_orig_mod", network))
    network.to("cpu", torch.float32, memory_format=torch.contiguous_format)
    network.preprocess.dtype, network.preprocess.channels_last = torch.float32, False
    module = ServingGraph(network, head, channels_last, mirror).requires_grad_(False)
    nn.Module.train(module, False)
    metadata.update(output=output_name, sktransfer_version=__version__)
    return Graph(module, input_name, shape, dtype, output_name, metadata)


def export(estimator: Union["PretrainedFeatureExtractor", "FineTunedClassifier", "FineTunedRegressor"], path) -> Path:
    """Write a fitted estimator as one graph for serving: ONNX, or a torch.export program.

    The graph holds the preprocessing, the fitted network (on the CPU, in float32,
    in eval mode) and the mapping to what the estimator returns:

    - ``FineTunedClassifier``: ``predict_proba`` (softmax; a sigmoid per label for
      multi-label targets), averaged over mirror images when ``tta="flip"``;
    - ``FineTunedRegressor``: ``predict`` in the targets' units (the standardization
      is undone in the graph), shape ``(n,)`` for one target;
    - ``PretrainedFeatureExtractor``: ``transform``.

    Its input is a uint8 batch ``(n, H, W, C)`` (named ``images``) at the model's
    input size ``data_config_.input_size``, with the channels ``fit`` saw (1 or 3;
    RGB for files and PIL images); for ``audio/<image backbone>`` models, a float32
    batch ``(n, samples)`` (``waveforms``) of ``clip_seconds`` at the backbone's rate.
    The batch size is dynamic. On such inputs the graph's outputs equal the
    estimator's to float32 precision; every export is run once on random inputs
    and compared with the network before anything is written.

    The ONNX file uses opset 20 (``sktransfer.persistence.export.OPSET``) and
    carries ``metadata_props`` (JSON values): ``estimator``, ``task``
    (``classification``, ``multilabel``, ``regression`` or ``features``),
    ``classes`` (the labels in the order of the output's columns),
    ``input_layout``, ``input_size``, ``interpolation`` and ``resize`` (or
    ``sample_rate`` and ``clip_samples``), ``output``, ``tta``, ``backbone``,
    ``weights_id``, ``sktransfer_version`` and ``opset``. A ``.pt2`` file (load it
    with ``torch.export.load``) carries the same but ``opset``, as
    ``sktransfer.json`` in its extra files.

    The write is atomic: ``path`` is never a partial file.

    Parameters
    ----------
    estimator : PretrainedFeatureExtractor, FineTunedClassifier or FineTunedRegressor
        Fitted. A Pipeline is refused: export its sktransfer step.
    path : str or path-like
        The file to write; its suffix chooses the format: ``.onnx`` or ``.pt2``.

    Returns
    -------
    path : Path
        The file written, as a ``Path``.

    Raises
    ------
    TypeError
        ``estimator`` is not one of the three estimators (a Pipeline, say).
    sklearn.exceptions.NotFittedError
        ``estimator`` is not fitted.
    ValueError
        ``path`` ends in neither ``.onnx`` nor ``.pt2``; a text model or an audio
        encoder (their front end is Python code outside torch); an ONNX file over
        2 GB; a parameter read when predicting (``tta``) is invalid.
    ImportError
        For an ONNX file, onnx, onnxscript or onnxruntime is missing
        (``pip install 'sktransfer[export]'``).
    RuntimeError
        The exported graph does not reproduce the network (then nothing is written),
        or torch's ONNX exporter fails on this network (``torch.onnx.OnnxExporterError``).

    Examples
    --------
    >>> import numpy as np, tempfile, os, onnxruntime
    >>> from sktransfer import FineTunedClassifier, export
    >>> X = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    >>> y = np.arange(32) % 2
    >>> clf = FineTunedClassifier("resnet18", weights=None, input_size=32, freeze_depth="all").fit(X, y)
    >>> path = export(clf, os.path.join(tempfile.mkdtemp(), "model.onnx"))
    >>> session = onnxruntime.InferenceSession(path)
    >>> proba = session.run(None, {"images": X[:5]})[0]
    >>> bool(np.abs(proba - clf.predict_proba(X[:5])).max() < 1e-4)
    True
    >>> session.get_modelmeta().custom_metadata_map["classes"]
    '[0, 1]'
    """
    path = check_suffix(path)  # a usage error, before any work
    return write(serving_graph(estimator), path)
