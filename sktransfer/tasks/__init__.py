"""One object per supervised task behind one protocol (:class:`~.base.Task`).

A task owns what depends on the kind of target: checking and encoding ``y``, the
number of outputs of the head, the loss, the linear probe, and turning the network's
outputs into ``predict`` / ``predict_proba`` / ``decision_function``. The fine-tuned
estimators build their task from their parameters in ``fit`` and hold no branch on it.
"""

from __future__ import annotations

from .base import Task
from .classification import Classification
from .multilabel import MultiLabel
from .regression import Regression

__all__ = ["Classification", "MultiLabel", "Regression", "Task"]
