"""Plots of what happened, in scikit-learn's Display style.

- :class:`TrainingCurveDisplay`: loss and accuracy per epoch of a fitted
  :class:`~sktransfer.FineTunedClassifier`.
- :class:`EmbeddingDisplay`: extracted features in 2-D (PCA or t-SNE), coloured by
  label, with optional thumbnails of the images.
- :class:`LRFinderDisplay`: the learning-rate range test of
  :meth:`~sktransfer.FineTunedClassifier.lr_find`, with its suggestion.

They follow scikit-learn's displays (``ConfusionMatrixDisplay``, ``RocCurveDisplay``):
a ``from_estimator`` class method computes and plots, the constructor takes computed
values, ``plot(ax=...)`` draws on any axes, and the figure, axes and artists are kept
as attributes. Confusion matrices come from scikit-learn's own
:class:`~sklearn.metrics.ConfusionMatrixDisplay`. matplotlib is an optional extra:
``pip install 'sktransfer[plots]'``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def check_matplotlib_support(caller: str) -> None:
    """Raise ImportError naming the extra to install when matplotlib is missing."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError(f"{caller} needs matplotlib: pip install 'sktransfer[plots]'")


def _axes(ax):
    """``ax``, or the axes of a new figure of the size the line plots share."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 4.2))[1]


def _final_estimator(estimator):
    """The classifier inside a Pipeline or a fitted search, or the estimator itself."""
    estimator = getattr(estimator, "best_estimator_", estimator)
    return estimator[-1] if hasattr(estimator, "steps") else estimator


class TrainingCurveDisplay:
    """Training loss, validation loss and validation accuracy per epoch.

    Validation values exist when the classifier was fitted with ``X_val``,
    ``y_val`` or ``early_stopping=True``.

    Parameters
    ----------
    epoch : array-like of int
        Epoch numbers (from 1).
    train_loss : array-like of float
        Mean training loss of each epoch.
    valid_loss, valid_acc : array-like of float, optional
        Validation loss and accuracy of each epoch.
    estimator_name : str, optional
        Shown in the title.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The losses' axes.
    ax_accuracy_ : matplotlib Axes or None
        The validation accuracy's axes (a twin of ``ax_`` sharing its x axis).
    figure_ : matplotlib Figure
    lines_ : dict of str to matplotlib Line2D
        ``"train_loss"``, and ``"valid_loss"`` and ``"valid_acc"`` when known.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import FineTunedClassifier
    >>> from sktransfer.display import TrainingCurveDisplay
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(24, 32, 32, 3), dtype=np.uint8)
    >>> y = np.array([0, 1] * 12)
    >>> clf = FineTunedClassifier("resnet18", weights=None, input_size=32, max_epochs=2,
    ...                           random_state=0).fit(X[:16], y[:16], X_val=X[16:], y_val=y[16:])
    >>> display = TrainingCurveDisplay.from_estimator(clf)
    >>> sorted(display.lines_)
    ['train_loss', 'valid_acc', 'valid_loss']
    """

    def __init__(self, *, epoch, train_loss, valid_loss=None, valid_acc=None,
                 estimator_name: Optional[str] = None):
        self.epoch = epoch
        self.train_loss = train_loss
        self.valid_loss = valid_loss
        self.valid_acc = valid_acc
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name: Optional[str] = None) -> "TrainingCurveDisplay":
        """Plot the history of a fitted :class:`~sktransfer.FineTunedClassifier`.

        Parameters
        ----------
        estimator : FineTunedClassifier
            Fitted; also inside a Pipeline (last step) or a fitted search
            (its ``best_estimator_``).
        ax : matplotlib Axes, optional
            Where to draw; a new figure when None.
        name : str, optional
            Title; the backbone's name by default.

        Returns
        -------
        display : TrainingCurveDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        model = _final_estimator(estimator)
        net = getattr(model, "net_", None)
        if net is None:
            raise ValueError(f"{type(model).__name__} has no training history: pass a fitted FineTunedClassifier")
        epochs = [e for e in net.history if "train_loss" in e]
        if not epochs:
            raise ValueError("the classifier trained no epochs (freeze_depth='all' solves a linear probe "
                             "instead): there is no curve to draw")

        def column(key):
            values = [e.get(key) for e in epochs]
            return None if any(v is None for v in values) else np.asarray(values, dtype=float)

        display = cls(epoch=np.arange(1, len(epochs) + 1), train_loss=column("train_loss"),
                      valid_loss=column("valid_loss"), valid_acc=column("valid_acc"),
                      estimator_name=name or f"fine-tuned {model.backbone}")
        return display.plot(ax=ax)

    def plot(self, ax=None) -> "TrainingCurveDisplay":
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw the losses; a new figure when None. The accuracy
            gets a twin axes on the right.

        Returns
        -------
        display : TrainingCurveDisplay
            ``self``, with ``ax_``, ``ax_accuracy_``, ``figure_`` and ``lines_``.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        created, ax = ax is None, _axes(ax)
        self.lines_ = {"train_loss": ax.plot(self.epoch, self.train_loss, "o-", label="training loss")[0]}
        if self.valid_loss is not None:
            self.lines_["valid_loss"] = ax.plot(self.epoch, self.valid_loss, "s-", label="validation loss")[0]
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_xticks(self.epoch)
        self.ax_accuracy_ = None
        if self.valid_acc is not None:
            self.ax_accuracy_ = ax.twinx()
            self.lines_["valid_acc"] = self.ax_accuracy_.plot(
                self.epoch, self.valid_acc, "^--", color="C2", label="validation accuracy")[0]
            self.ax_accuracy_.set_ylabel("accuracy")
            self.ax_accuracy_.set_ylim(0, 1.02)
        # below the axes: inside, it would hide a curve
        ax.legend(handles=list(self.lines_.values()), loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=len(self.lines_), fontsize="small", frameon=False)
        if self.estimator_name:
            ax.set_title(self.estimator_name)
        if created:
            ax.figure.tight_layout()
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _thumbnail(item) -> np.ndarray:
    """An image as an array matplotlib can show: paths and PIL images are read."""
    if isinstance(item, np.ndarray):
        return item if item.dtype == np.uint8 else np.clip(item, 0, 1)
    from PIL import Image

    image = item if isinstance(item, Image.Image) else Image.open(item)
    image.thumbnail((64, 64))
    return np.asarray(image.convert("RGB"))


def _thumbnail_images(images):
    """``images`` as something indexable by sample: image arrays (NHWC, uint8 or floats
    in [0, 1]), or a sequence of paths or PIL images. Raises for what cannot be shown."""
    if hasattr(images, "detach"):  # a torch tensor
        images = images.detach().cpu().numpy()
    if hasattr(images, "to_numpy"):  # a pandas or polars Series or one-column frame
        images = images.to_numpy()
    if isinstance(images, (list, tuple)):
        return images
    images = np.asarray(images)
    if images.dtype.kind in "OSU":  # paths, possibly as one column
        return images.reshape(len(images), -1)[:, 0] if images.ndim == 2 else images
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[3] not in (1, 3, 4):
        images = images.transpose(0, 2, 3, 1)  # channels first
    if images.ndim not in (3, 4):
        raise ValueError(f"thumbnails need images shaped (n, H, W) or (n, H, W, C), not {images.shape} "
                         "(flattened rows: pass images= reshaped)")
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if images.dtype.kind in "iu" and images.dtype != np.uint8:
        if images.min() < 0 or images.max() > 255:
            raise ValueError("thumbnails of integer images need values in [0, 255]; pass images= scaled")
        images = images.astype(np.uint8)
    return images


def _spread(points: np.ndarray, k: int, seed: int = 0) -> list[int]:
    """``k`` indices of points far apart (greedy farthest-point), so thumbnails do not pile up."""
    chosen = [int(np.random.default_rng(seed).integers(len(points)))]
    distance = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(min(k, len(points)) - 1):
        chosen.append(int(distance.argmax()))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return chosen


class EmbeddingDisplay:
    """Features in two dimensions, coloured by label.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, 2)
        The 2-D coordinates.
    y : array-like of shape (n_samples,), optional
        Labels that colour the points (one legend entry per class).
    images : sequence, optional
        The samples' images (arrays, PIL images or paths), for thumbnails.
    method : str, default="pca"
        How ``embedding`` was made, for the axis labels.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    scatters_ : list of matplotlib PathCollection
        One per class (one in all without ``y``).
    thumbnails_ : list of matplotlib AnnotationBbox
        The thumbnails drawn.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import PretrainedFeatureExtractor
    >>> from sktransfer.display import EmbeddingDisplay
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(20, 32, 32, 3), dtype=np.uint8)
    >>> extractor = PretrainedFeatureExtractor("resnet18", weights=None, random_state=0).fit(X)
    >>> display = EmbeddingDisplay.from_estimator(extractor, X, y=[0, 1] * 10, thumbnails=4)
    >>> display.embedding.shape, len(display.scatters_), len(display.thumbnails_)
    ((20, 2), 2, 4)
    """

    def __init__(self, embedding, *, y=None, images=None, method: str = "pca"):
        self.embedding = embedding
        self.y = y
        self.images = images
        self.method = method

    @classmethod
    def from_features(cls, features, y=None, *, method: str = "pca", images=None, thumbnails: int = 0,
                      random_state=None, ax=None) -> "EmbeddingDisplay":
        """Reduce ``features`` to 2-D and plot them.

        Parameters
        ----------
        features : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), optional
            Labels that colour the points.
        method : {"pca", "tsne"}, default="pca"
            :class:`~sklearn.decomposition.PCA` (linear, fast) or
            :class:`~sklearn.manifold.TSNE` (neighbourhoods, slower).
        images : sequence, optional
            The samples' images, for ``thumbnails``.
        thumbnails : int, default=0
            How many images to draw at their points, chosen far apart.
        random_state : int, RandomState or None, default=None
            Seeds t-SNE and the thumbnails' choice.
        ax : matplotlib Axes, optional

        Returns
        -------
        display : EmbeddingDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_features")
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or len(features) < 2:
            raise ValueError(f"features must be 2-D with at least 2 rows, got shape {features.shape}")
        if method == "pca":
            from sklearn.decomposition import PCA

            embedding = PCA(n_components=2, random_state=random_state).fit_transform(features)
        elif method == "tsne":
            from sklearn.manifold import TSNE

            embedding = TSNE(n_components=2, init="pca", perplexity=min(30.0, (len(features) - 1) / 3),
                             random_state=random_state).fit_transform(features)
        else:
            raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
        if thumbnails and images is None:
            raise ValueError("thumbnails need the images: pass images=")
        if thumbnails:
            images = _thumbnail_images(images)
            if len(images) != len(features):
                raise ValueError(f"{len(images)} images for {len(features)} rows of features")
        seed = random_state if isinstance(random_state, int) else 0
        return cls(embedding, y=y, images=images, method=method).plot(ax=ax, thumbnails=thumbnails, seed=seed)

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, method: str = "pca", thumbnails: int = 0,
                       random_state=None, ax=None) -> "EmbeddingDisplay":
        """Extract features of ``X`` with a fitted transformer and plot them in 2-D.

        Parameters
        ----------
        estimator : fitted transformer
            A :class:`~sktransfer.PretrainedFeatureExtractor`, or any fitted
            estimator (a Pipeline of them) with ``transform``.
        X : images
            Any input the estimator takes. Thumbnails are drawn from arrays
            (``(n, H, W)``, ``(n, H, W, C)``, ``(n, C, H, W)``), tensors, PIL
            images and paths (also in a Series or one column).
        y, method, thumbnails, random_state, ax
            As for :meth:`from_features`.

        Returns
        -------
        display : EmbeddingDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        return cls.from_features(estimator.transform(X), y, method=method, images=X if thumbnails else None,
                                 thumbnails=thumbnails, random_state=random_state, ax=ax)

    def plot(self, ax=None, *, thumbnails: int = 0, seed: int = 0, zoom: float = 1.0) -> "EmbeddingDisplay":
        """Draw the points (and ``thumbnails`` images from ``images``).

        Parameters
        ----------
        ax : matplotlib Axes, optional
        thumbnails : int, default=0
            How many images to draw at their points, chosen far apart.
        seed : int, default=0
            Which point the thumbnails' choice starts from.
        zoom : float, default=1.0
            Thumbnail scale (1 shows a 64-pixel image at about 32 points).

        Returns
        -------
        display : EmbeddingDisplay
            ``self``, with ``ax_``, ``figure_``, ``scatters_`` and ``thumbnails_``.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt
        from matplotlib.offsetbox import AnnotationBbox, OffsetImage

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 5))
        points = np.asarray(self.embedding)
        if self.y is None:
            self.scatters_ = [ax.scatter(points[:, 0], points[:, 1], s=12, alpha=0.8)]
        else:
            y = np.asarray(self.y)
            if len(y) != len(points):
                raise ValueError(f"y has {len(y)} labels for {len(points)} points")
            self.scatters_ = [ax.scatter(points[y == c, 0], points[y == c, 1], s=12, alpha=0.8, label=str(c))
                              for c in np.unique(y)]
            ax.legend(title="class", fontsize="small", markerscale=1.5, loc="best")
        self.thumbnails_ = []
        for i in _spread(points, thumbnails, seed) if thumbnails else []:
            image = _thumbnail(self.images[i])
            box = OffsetImage(image, zoom=zoom * 32 / max(image.shape[:2]),
                              cmap="gray" if image.ndim == 2 else None)
            self.thumbnails_.append(ax.add_artist(AnnotationBbox(box, points[i], frameon=True, pad=0.1)))
        label = {"pca": "principal component", "tsne": "t-SNE dimension"}.get(self.method, self.method)
        ax.set_xlabel(f"{label} 1")
        ax.set_ylabel(f"{label} 2")
        self.ax_, self.figure_ = ax, ax.figure
        return self


class LRFinderDisplay:
    """Training loss against the learning rate, from a range test, and the suggested rate.

    Parameters
    ----------
    lr, loss : array-like of float
        The rate and the training loss of each step of the sweep.
    smoothed_loss : array-like of float, optional
        The loss smoothed along the sweep (drawn over the raw one).
    suggestion : float, optional
        The suggested rate (a marked point).
    estimator_name : str, optional
        Shown in the title.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    lines_ : dict
        ``"loss"``, ``"smoothed_loss"`` and ``"suggestion"`` artists (those drawn).

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sktransfer.display import LRFinderDisplay
    >>> lr = np.logspace(-6, 0, 30)
    >>> loss = 2 - np.tanh(np.log10(lr) + 3) + np.where(lr > 0.1, 5 * lr, 0)
    >>> LRFinderDisplay(lr=lr, loss=loss, suggestion=1e-3).plot().ax_.get_xscale()
    'log'
    """

    def __init__(self, *, lr, loss, smoothed_loss=None, suggestion: Optional[float] = None,
                 estimator_name: Optional[str] = None):
        self.lr = lr
        self.loss = loss
        self.smoothed_loss = smoothed_loss
        self.suggestion = suggestion
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, X, y, *, ax=None, name: Optional[str] = None,
                       **lr_find_params) -> "LRFinderDisplay":
        """Run :meth:`~sktransfer.FineTunedClassifier.lr_find` on ``X``, ``y`` and plot it.

        Parameters
        ----------
        estimator : FineTunedClassifier or FineTunedRegressor
            Fitted or not: it is left as it is (the sweep trains a copy).
        X, y : training data
        ax : matplotlib Axes, optional
            Where to draw; a new figure when None.
        name : str, optional
            Title; the backbone's name by default.
        **lr_find_params
            ``start_lr``, ``end_lr``, ``num_steps``, ``sample_weight``.

        Returns
        -------
        display : LRFinderDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        curve = estimator.lr_find(X, y, **lr_find_params)
        display = cls(lr=curve.lr, loss=curve.loss, smoothed_loss=curve.smoothed_loss, suggestion=curve.suggestion,
                      estimator_name=name or f"learning-rate range test, {estimator.backbone}")
        return display.plot(ax=ax)

    def plot(self, ax=None) -> "LRFinderDisplay":
        """Draw the curve (log-scaled rates) and mark the suggestion.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw; a new figure when None.

        Returns
        -------
        display : LRFinderDisplay
            ``self``, with ``ax_``, ``figure_`` and ``lines_``.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        created, ax = ax is None, _axes(ax)
        smoothed = self.smoothed_loss is not None
        self.lines_ = {"loss": ax.plot(self.lr, self.loss, color="C0", alpha=0.35 if smoothed else 1.0,
                                       label="training loss")[0]}
        if smoothed:
            self.lines_["smoothed_loss"] = ax.plot(self.lr, self.smoothed_loss, color="C0", label="smoothed")[0]
        if self.suggestion is not None:
            curve = np.asarray(self.smoothed_loss if smoothed else self.loss, dtype=float)
            at = curve[int(np.argmin(np.abs(np.log(np.asarray(self.lr, dtype=float)) - np.log(self.suggestion))))]
            self.lines_["suggestion"] = ax.plot([self.suggestion], [at], "o", color="C3",
                                                label=f"suggested lr = {self.suggestion:.2g}")[0]
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.legend(fontsize="small", frameon=False)
        if self.estimator_name:
            ax.set_title(self.estimator_name)
        if created:
            ax.figure.tight_layout()
        self.ax_, self.figure_ = ax, ax.figure
        return self
