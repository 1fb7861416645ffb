"""The protocol every modality keeps, and the parameter rule they share."""

from __future__ import annotations

from typing import Any, Callable, Optional

from torch import nn

from ..backbones import Backbone
from ..data.inputs import InputSignature
from ..data.sources import Source
from ..fitting.params import InvalidParameterError


class Modality:
    """What depends on the kind of input, for both estimators.

    A modality is stateless: estimators look it up from their backbone's name
    whenever they need it, so it never travels in a fitted state.

    Attributes
    ----------
    name : str
        The registry's name for it (``"image"``, ``"text"``).
    unused : dict
        ``{parameter: (the value it must keep, why)}`` for the estimator parameters
        this modality does not take (another modality's), checked by
        :meth:`check_params` before any data or weights are read.
    """

    name: str = ""
    unused: dict = {}

    def check_params(self, params: dict, owner: str) -> None:
        """Refuse a parameter this modality does not take, set away from the value it must keep."""
        for name, (required, why) in self.unused.items():
            value = params.get(name, required)
            if isinstance(value, list):  # [0, 1] keeps the default (0.0, 1.0) as well
                value = tuple(value)
            if value != required:
                raise InvalidParameterError(
                    f"The {name!r} parameter of {owner} must be {required!r} with {self.article} {self.name} "
                    f"backbone ({why}). Got {params[name]!r} instead."
                )

    @property
    def article(self) -> str:
        return "an" if self.name[:1] in "aeiou" else "a"

    def validate(self, X, spec, fitted: Optional[InputSignature] = None, *, owner: str, what: str = "X",
                 rows: Optional[Callable] = None) -> tuple[Any, InputSignature]:
        """Check ``X`` (at fit when ``fitted`` is None, else against it) before any network is
        built. Returns what :meth:`source` turns into a source, and the input's signature.
        ``rows`` validates 2-D tables as the estimator records them (scikit-learn's
        ``validate_data``)."""
        raise NotImplementedError

    def source(self, checked, network: nn.Module, config) -> Source:
        """The complete source of ``checked`` inputs for ``network`` (its tokenizer, say)."""
        raise NotImplementedError

    def data_config(self, spec, backbone: Backbone):
        """How inputs are prepared for ``backbone`` under ``spec``."""
        raise NotImplementedError

    def feature_net(self, spec, backbone: Backbone, stage_index: int, config=None) -> tuple[nn.Module, Any]:
        """The frozen network from the input to the pooled stage ``stage_index``, on
        ``spec``'s device and dtype, and its data config (``config`` replaces the
        backbone's own, for a saved network rebuilt with random weights)."""
        raise NotImplementedError

    def features_out(self, model: nn.Module, backbone: Backbone, stage_index: int, config) -> int:
        """The width of ``model``'s pooled features."""
        return model.pool.width(backbone.num_features)

    def network_parts(self, spec, backbone: Backbone, config, augment: Optional[str]) -> tuple:
        """``(preprocess, augment, trunk, pool)`` of a network fine-tuned on this modality."""
        raise NotImplementedError

    def frozen_net(self, network: nn.Module, config) -> nn.Module:
        """The feature network inside a fine-tuned ``network`` (its frozen parts as they run)."""
        raise NotImplementedError

    def input_size(self, config) -> Optional[tuple]:
        """The size a batch's inputs take on the device, for choosing batch sizes (None: varies)."""
        return None

    def compile_shapes(self, config) -> tuple[int, tuple]:
        """``(shapes, size)``: how many input shapes a compiled network meets, and the size
        that names them in the compile records."""
        raise NotImplementedError
