"""What the displays share: matplotlib as an optional extra, axes, image thumbnails and grids."""

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


def _thumbnail(item, size: int = 64) -> np.ndarray:
    """An image as an array matplotlib can show: paths and PIL images are read, at most
    ``size`` pixels a side."""
    if isinstance(item, np.ndarray):
        return item if item.dtype == np.uint8 else np.clip(item, 0, 1)
    from PIL import Image

    # a copy of a PIL image: thumbnail() shrinks it in place
    with item.copy() if isinstance(item, Image.Image) else Image.open(item) as image:
        image.thumbnail((size, size))
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


def _image_grid(n: int, axes=None) -> np.ndarray:
    """Axes for ``n`` images: square-ish in a new figure, or ``axes`` (at least ``n``);
    every axes has its frame and ticks off."""
    import matplotlib.pyplot as plt

    if axes is None:
        ncols = max(1, int(np.ceil(np.sqrt(n))))
        nrows = max(1, -(-n // ncols))
        _, axes = plt.subplots(nrows, ncols, figsize=(2.3 * ncols, 2.5 * nrows + 0.4), squeeze=False)
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) < max(n, 1):
        raise ValueError(f"{n} images need {n} axes; got {len(axes)}")
    for ax in axes:
        ax.set_axis_off()
    return axes


def _finish_grid(display, axes, created: bool, title: Optional[str]):
    """Title and tighten a figure the display made; keep ``axes_`` and ``figure_``."""
    figure = axes[0].figure
    if created:
        if title:
            figure.suptitle(title)
        figure.tight_layout()
    display.axes_, display.figure_ = axes, figure
    return display


def _show(ax, image):
    """Draw an image (``(H, W)`` grey or ``(H, W, C)``, uint8 or floats in [0, 1]) as it is."""
    top = 255 if image.dtype == np.uint8 else 1
    return ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=top)


def _caption(label, p: float, true=None, kind: str = "pred") -> str:
    """A class and its probability, under the true label when one is known."""
    return ("" if true is None else f"true {true}\n") + f"{kind} {label}, p = {p:.2f}"
