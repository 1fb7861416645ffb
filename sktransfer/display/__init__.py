"""Plots of what happened, in scikit-learn's Display style.

- :class:`TrainingCurveDisplay`: loss and accuracy per epoch of a fitted
  :class:`~sktransfer.FineTunedClassifier`.
- :class:`EmbeddingDisplay`: extracted features in 2-D (PCA or t-SNE), coloured by
  label, with optional thumbnails of the images.
- :class:`LRFinderDisplay`: the learning-rate range test of
  :meth:`~sktransfer.FineTunedClassifier.lr_find`, with its suggestion.
- :class:`MisclassifiedDisplay`: the most confidently wrong predictions, with their
  images (fastai's ``plot_top_losses``).
- :class:`SaliencyDisplay`: Grad-CAM maps over the images of a fitted image classifier.
- :func:`plot_confusion_matrix`: scikit-learn's confusion matrix with readable class
  names and a title.

They follow scikit-learn's displays (``ConfusionMatrixDisplay``, ``RocCurveDisplay``):
a ``from_estimator`` class method computes and plots, the constructor takes computed
values, ``plot(ax=...)`` draws on any axes, and the figure, axes and artists are kept
as attributes. Confusion matrices come from scikit-learn's own
:class:`~sklearn.metrics.ConfusionMatrixDisplay`. matplotlib is an optional extra:
``pip install 'sktransfer[plots]'``.
"""

from ._base import check_matplotlib_support
from .curves import LRFinderDisplay, TrainingCurveDisplay
from .embedding import EmbeddingDisplay
from .mistakes import MisclassifiedDisplay, plot_confusion_matrix
from .saliency import SaliencyDisplay

__all__ = [
    "EmbeddingDisplay",
    "LRFinderDisplay",
    "MisclassifiedDisplay",
    "SaliencyDisplay",
    "TrainingCurveDisplay",
    "check_matplotlib_support",
    "plot_confusion_matrix",
]
