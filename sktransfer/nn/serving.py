"""The torch modules of an exported graph: inputs as production holds them in, what an
estimator returns out (see :func:`sktransfer.export`)."""

from __future__ import annotations

from torch import nn

from .networks import mirrored


class ServingGraph(nn.Module):
    """Input batches -> a fitted network -> ``head`` (the estimator's output mapping).

    Parameters
    ----------
    network : nn.Module
        The fitted network, from raw batches (its preprocessing first).
    head : nn.Module
        From the network's outputs to what the estimator returns.
    channels_last_input : bool
        Inputs are ``(n, H, W, C)`` images, permuted to the network's ``(n, C, H, W)``.
    mirror : bool
        Average the network's outputs on each image and its mirror image, as
        ``tta="flip"`` does when predicting.
    """

    def __init__(self, network: nn.Module, head: nn.Module, channels_last_input: bool, mirror: bool):
        super().__init__()
        self.network = network
        self.head = head
        self.channels_last_input = channels_last_input
        self.mirror = mirror

    def forward(self, inputs):
        x = inputs.permute(0, 3, 1, 2) if self.channels_last_input else inputs
        outputs = self.network(x)
        if self.mirror:
            with mirrored():  # the prediction's own mirror (after preprocessing), traced in
                outputs = (outputs + self.network(x)) / 2
        return self.head(outputs)
