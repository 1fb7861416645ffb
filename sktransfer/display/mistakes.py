"""The mistakes of a classifier: its confusion matrix and its most confidently wrong images."""

from __future__ import annotations

from numbers import Integral
from typing import Optional

import numpy as np

from ._base import check_matplotlib_support, _caption, _finish_grid, _image_grid, _show, _thumbnail, _thumbnail_images


def plot_confusion_matrix(y_true, y_pred, *, labels=None, normalize: Optional[str] = None,
                          title: Optional[str] = None, ax=None):
    """Plot a confusion matrix with readable class names and a title.

    scikit-learn's :meth:`~sklearn.metrics.ConfusionMatrixDisplay.from_predictions`,
    with what a saved picture needs: class names longer than three characters
    rotated so that they do not overlap, counts written only while they fit (up to
    30 classes), a figure that grows with the number of classes, and the accuracy
    in the title.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    labels : array-like, optional
        The classes, in the order of the rows and columns; those of ``y_true`` and
        ``y_pred`` (sorted) when None.
    normalize : {"true", "pred", "all"}, optional
        As scikit-learn's: fractions of each true class, of each predicted class,
        or of all samples; counts when None.
    title : str, optional
        The title; the accuracy and the number of samples when None.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    display : sklearn.metrics.ConfusionMatrixDisplay
        With ``figure_``, ``ax_`` and ``confusion_matrix``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sktransfer.display import plot_confusion_matrix
    >>> y_true = ["cat", "dog", "dog", "horse"]
    >>> y_pred = ["cat", "dog", "cat", "horse"]
    >>> display = plot_confusion_matrix(y_true, y_pred)
    >>> display.confusion_matrix.tolist(), display.ax_.get_title()
    ([[1, 0, 0], [1, 1, 0], [0, 0, 1]], 'accuracy 0.750 (4 samples)')
    """
    check_matplotlib_support("plot_confusion_matrix")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score
    from sklearn.utils.multiclass import unique_labels

    labels = unique_labels(y_true, y_pred) if labels is None else np.asarray(labels)
    rotate = max(len(str(label)) for label in labels) > 3
    created = ax is None
    if created:
        side = min(3.5 + 0.35 * len(labels), 16)
        _, ax = plt.subplots(figsize=(side, side))
    display = ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, normalize=normalize, ax=ax, colorbar=False,
        include_values=len(labels) <= 30, values_format=None if normalize is None else ".2f",
        xticks_rotation=45 if rotate else "horizontal")
    if rotate:  # anchored at their ends, under their columns
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
            tick.set_rotation_mode("anchor")
    ax.set_title(title if title is not None
                 else f"accuracy {accuracy_score(y_true, y_pred):.3f} ({len(np.asarray(y_pred))} samples)")
    if created:
        ax.figure.tight_layout()
    return display


class MisclassifiedDisplay:
    """The most confidently wrong predictions: images with their true and predicted
    labels and the predicted class's probability.

    fastai's ``plot_top_losses`` for one label per image. Mistakes are ranked by the
    probability of the wrong class predicted: a confident mistake points at a
    mislabelled image, a class the model confuses, or a shortcut it learnt.
    With no mistakes, the figure says so (a script that saves it keeps working).

    Parameters
    ----------
    images : sequence
        The images shown: arrays (``(H, W)`` or ``(H, W, C)``, uint8 or floats
        in [0, 1]), PIL images or paths.
    y_true, y_pred : array-like
        Their true and predicted labels.
    confidence : array-like of float
        The predicted class's probability for each.
    indices : array-like of int, optional
        Where the images are in the data they were chosen from.
    title : str, optional
        The figure's title.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes
        One per image (one carrying the message when there are none).
    figure_ : matplotlib Figure
    images_ : list of matplotlib AxesImage

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sktransfer.display import MisclassifiedDisplay
    >>> images = np.zeros((4, 8, 8), dtype=np.uint8)
    >>> y_proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    >>> y_true = ["a", "a", "b", "b"]
    >>> display = MisclassifiedDisplay.from_predictions(y_true, y_proba, images, classes=["a", "b"])
    >>> display.indices.tolist(), display.y_pred.tolist(), display.confidence.tolist()
    ([1, 2], ['b', 'a'], [0.8, 0.6])
    >>> display.axes_[0].get_title()
    'true a\\npred b, p = 0.80'
    """

    def __init__(self, images, y_true, y_pred, confidence, *, indices=None, title: Optional[str] = None):
        self.images = images
        self.y_true = y_true
        self.y_pred = y_pred
        self.confidence = confidence
        self.indices = indices
        self.title = title

    @classmethod
    def from_predictions(cls, y_true, y_proba, images, *, classes=None, n: int = 9,
                         axes=None) -> "MisclassifiedDisplay":
        """Plot the ``n`` most confident mistakes among predicted probabilities.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_proba : array-like of shape (n_samples, n_classes)
            Predicted probabilities (``predict_proba``); the prediction is the
            most probable class.
        images : images
            The samples' images: arrays (``(n, H, W)``, ``(n, H, W, C)``,
            ``(n, C, H, W)``), tensors, PIL images or paths (also in a Series or
            one column).
        classes : array-like of shape (n_classes,), optional
            The label of each column of ``y_proba`` (a classifier's
            ``classes_``); ``0, ..., n_classes - 1`` when None.
        n : int, default=9
            At most this many images, the most confident first.
        axes : array-like of matplotlib Axes, optional
            At least as many as the images drawn; a new figure when None.

        Returns
        -------
        display : MisclassifiedDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_predictions")
        y_true, y_proba = np.asarray(y_true), np.asarray(y_proba, dtype=float)
        if y_true.ndim != 1 or y_proba.ndim != 2:
            raise ValueError(f"{cls.__name__} needs one label per image (y_true of shape (n,)) and probabilities "
                             f"of shape (n, n_classes); got {y_true.shape} and {y_proba.shape} (a multi-label "
                             "classifier has no single wrong class to show)")
        classes = np.arange(y_proba.shape[1]) if classes is None else np.asarray(classes)
        if len(classes) != y_proba.shape[1]:
            raise ValueError(f"{len(classes)} classes for {y_proba.shape[1]} columns of y_proba")
        images = _thumbnail_images(images)
        if not len(y_true) == len(y_proba) == len(images):
            raise ValueError(f"{len(y_true)} labels, {len(y_proba)} rows of y_proba and {len(images)} images: "
                             "one of each per sample")
        if not (isinstance(n, Integral) and n >= 1):
            raise ValueError(f"n must be a positive int, got {n!r}")
        if not np.isin(y_true, classes).any():
            raise ValueError(f"no label of y_true (such as {np.unique(y_true)[:3].tolist()}) is a class of "
                             f"y_proba's columns {classes.tolist()}: pass classes= (the classifier's classes_)")
        y_pred, confidence = classes[y_proba.argmax(axis=1)], y_proba.max(axis=1)
        wrong = np.flatnonzero(y_pred != y_true)
        shown = wrong[np.argsort(-confidence[wrong], kind="stable")][:n]
        title = (f"{len(shown)} most confident of {len(wrong)} mistakes ({len(y_true)} samples)" if len(wrong)
                 else f"no misclassified samples among {len(y_true)}")
        display = cls([images[i] for i in shown], y_true[shown], y_pred[shown], confidence[shown],
                      indices=shown, title=title)
        return display.plot(axes=axes)

    @classmethod
    def from_estimator(cls, estimator, X, y, *, n: int = 9, axes=None) -> "MisclassifiedDisplay":
        """Predict ``X`` with a fitted classifier and plot its ``n`` most confident mistakes.

        Parameters
        ----------
        estimator : fitted classifier
            With ``predict_proba`` and ``classes_``: a
            :class:`~sktransfer.FineTunedClassifier`, a Pipeline or a fitted search.
        X : images
            Any input the estimator takes; drawn from arrays, tensors, PIL images
            and paths.
        y : array-like of shape (n_samples,)
            True labels.
        n, axes
            As for :meth:`from_predictions`.

        Returns
        -------
        display : MisclassifiedDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        return cls.from_predictions(y, estimator.predict_proba(X), X, classes=estimator.classes_, n=n, axes=axes)

    def plot(self, axes=None) -> "MisclassifiedDisplay":
        """Draw the images in a grid, each under its labels and probability.

        Parameters
        ----------
        axes : array-like of matplotlib Axes, optional
            At least one per image; a new figure when None.

        Returns
        -------
        display : MisclassifiedDisplay
            ``self``, with ``axes_``, ``figure_`` and ``images_``.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        created = axes is None
        axes = _image_grid(len(self.images), axes)
        self.images_ = []
        for ax, image, true, pred, p in zip(axes, self.images, self.y_true, self.y_pred, self.confidence):
            self.images_.append(_show(ax, _thumbnail(image, 128)))
            ax.set_title(_caption(pred, p, true), fontsize="small")
        if not len(self.images):
            axes[0].text(0.5, 0.5, "no misclassified samples", ha="center", va="center")
        return _finish_grid(self, axes, created, self.title)
