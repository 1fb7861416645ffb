"""Extracted features in two dimensions, coloured by label, with thumbnails."""

from __future__ import annotations

import numpy as np

from ._base import check_matplotlib_support, _spread, _thumbnail, _thumbnail_images


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
            Where to draw; a new figure (with room for the legend) when None.
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

        created = ax is None
        if created:
            _, ax = plt.subplots(figsize=(6.8, 5))
        points = np.asarray(self.embedding)
        if self.y is None:
            self.scatters_ = [ax.scatter(points[:, 0], points[:, 1], s=12, alpha=0.8)]
        else:
            y = np.asarray(self.y)
            if len(y) != len(points):
                raise ValueError(f"y has {len(y)} labels for {len(points)} points")
            self.scatters_ = [ax.scatter(points[y == c, 0], points[y == c, 1], s=12, alpha=0.8, label=str(c))
                              for c in np.unique(y)]
            # right of the axes: inside, it would hide points (one column per 20 classes)
            ax.legend(title="class", fontsize="small", markerscale=1.5, loc="upper left", bbox_to_anchor=(1.02, 1),
                      borderaxespad=0, frameon=False, ncol=-(-len(self.scatters_) // 20))
        self.thumbnails_ = []
        for i in _spread(points, thumbnails, seed) if thumbnails else []:
            image = _thumbnail(self.images[i])
            box = OffsetImage(image, zoom=zoom * 32 / max(image.shape[:2]),
                              cmap="gray" if image.ndim == 2 else None)
            self.thumbnails_.append(ax.add_artist(AnnotationBbox(box, points[i], frameon=True, pad=0.1)))
        label = {"pca": "principal component", "tsne": "t-SNE dimension"}.get(self.method, self.method)
        ax.set_xlabel(f"{label} 1")
        ax.set_ylabel(f"{label} 2")
        if created:
            ax.figure.tight_layout()  # makes room for the legend
        self.ax_, self.figure_ = ax, ax.figure
        return self
