"""A serving graph written as one file: ONNX, or a torch.export program (``.pt2``).

The graph (a torch module, see :func:`sktransfer.export`) is traced with a dynamic
batch, run once on random inputs of another batch size and compared with itself in
eager mode, then written atomically with its metadata. What goes into the graph is
decided above this layer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..backbones._base import optional_import
from .atomic import atomic_path

__all__ = ["OPSET", "SUFFIXES", "Graph", "check_suffix", "write"]

#: The ONNX opset of every exported file: torch's exporter's own (no version conversion),
#: which onnxruntime runs from 1.17 on.
OPSET = 20

#: The files :func:`write` writes, told by their suffix.
SUFFIXES = (".onnx", ".pt2")

#: ONNX keeps a model in one protobuf message, which cannot exceed 2 GB.
ONNX_MAX_BYTES = 2**31 - 2**27

#: The largest output difference the check after tracing accepts: ``ATOL + RTOL * |expected|``.
ATOL, RTOL = 1e-4, 1e-4


@dataclass(frozen=True)
class Graph:
    """A module to write and what describes it.

    Parameters
    ----------
    module : nn.Module
        On the CPU, in float32 and eval mode; takes one batch, returns one array.
    input_name, output_name : str
        Their names in the file.
    input_shape : tuple of int
        The shape of one input row (the batch dimension is dynamic).
    input_dtype : torch.dtype
        ``torch.uint8`` (images) or ``torch.float32``.
    metadata : dict
        JSON-able values, kept in the file (``metadata_props`` of ONNX, the extra file
        ``sktransfer.json`` of a ``.pt2``).
    """

    module: nn.Module
    input_name: str
    input_shape: tuple
    input_dtype: torch.dtype
    output_name: str
    metadata: dict

    def example(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` random inputs: uint8 images, or quiet noise for float inputs."""
        generator = torch.Generator().manual_seed(seed)
        shape = (n, *self.input_shape)
        if self.input_dtype == torch.uint8:
            return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
        return 0.1 * torch.randn(shape, generator=generator)


def check_suffix(path) -> Path:
    """``path`` as a Path, or a ValueError when its suffix names no format of :data:`SUFFIXES`."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ValueError(f"export writes .onnx or .pt2 files, chosen by the path's suffix; got {str(path)!r}")
    return path


def _onnx(graph: Graph, example: torch.Tensor):
    """The ONNX model of ``graph`` (torch.export, then onnxscript), checked by onnx."""
    onnx = optional_import("onnx", "ONNX export", "export")
    optional_import("onnxscript", "ONNX export", "export")
    size = sum(t.numel() * t.element_size() for t in graph.module.state_dict().values())
    if size > ONNX_MAX_BYTES:
        raise ValueError(f"the network's {size / 2**30:.1f} GB of weights exceed ONNX's 2 GB limit for one file; "
                         "export to a .pt2 file instead")
    program = torch.onnx.export(graph.module, (example,), dynamo=True, opset_version=OPSET, verbose=False,
                                input_names=[graph.input_name], output_names=[graph.output_name],
                                dynamic_shapes=({0: "batch"},))
    proto = program.model_proto
    proto.doc_string = (f"sktransfer {graph.metadata.get('estimator', 'model')}: {graph.input_name} -> "
                        f"{graph.output_name}; metadata_props describe both")
    onnx.helper.set_model_props(proto, {key: value if isinstance(value, str) else json.dumps(value)
                                        for key, value in {**graph.metadata, "opset": OPSET}.items()})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _run_onnx(proto, inputs: torch.Tensor, input_name: str) -> np.ndarray:
    ort = optional_import("onnxruntime", "Checking an ONNX export", "export")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {input_name: inputs.numpy()})[0]


def _check(graph: Graph, run) -> None:
    """Refuse an artifact whose outputs, run by ``run`` on a batch of another size than the
    traced one, differ from the module's own."""
    inputs = graph.example(3, seed=1)
    with torch.inference_mode():
        expected = graph.module(inputs).numpy()
        got = np.asarray(run(inputs))
    if got.shape != expected.shape or not np.all(np.abs(got - expected) <= ATOL + RTOL * np.abs(expected)):
        difference = np.abs(got - expected).max() if got.shape == expected.shape else f"shape {got.shape}"
        raise RuntimeError(f"the exported graph does not reproduce the network (largest difference {difference}, "
                           f"expected shape {expected.shape}); nothing was written")


def write(graph: Graph, path) -> Path:
    """Write ``graph`` to ``path`` (its suffix chooses ONNX or ``.pt2``), atomically, once
    its traced form reproduces the module at another batch size."""
    path = check_suffix(path)
    example = graph.example(2)  # torch.export makes a batch of 1 a constant: trace with 2
    if path.suffix == ".onnx":
        proto = _onnx(graph, example)
        _check(graph, lambda inputs: _run_onnx(proto, inputs, graph.input_name))
        with atomic_path(path) as tmp:
            tmp.write_bytes(proto.SerializeToString())
        return path
    program = torch.export.export(graph.module, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},),
                                  strict=False)
    _check(graph, lambda inputs: program.module()(inputs).numpy())
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.export.save(program, f, extra_files={"sktransfer.json": json.dumps(graph.metadata)})
    return path
