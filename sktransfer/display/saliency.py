"""Grad-CAM maps over the images of a fitted image classifier."""

from __future__ import annotations

from numbers import Integral
from typing import Optional

import numpy as np

from ._base import check_matplotlib_support, _caption, _final_estimator, _finish_grid, _image_grid, _show


def _image_classifier(estimator, caller: str):
    """The fitted fine-tuned image classifier that ``estimator`` is (or holds as a search's
    best, or as a Pipeline's only step): it runs on the images themselves."""
    inner = getattr(estimator, "best_estimator_", estimator)
    if hasattr(inner, "steps") and len(inner.steps) > 1:
        raise ValueError(f"{caller} runs the network on the images themselves: pass the fitted classifier, not a "
                         "Pipeline with steps before it")
    model = _final_estimator(estimator)
    if not (hasattr(model, "net_") and hasattr(model, "classes_")):
        raise ValueError(f"{caller} explains a fitted FineTunedClassifier; got {type(model).__name__}"
                         + ("" if hasattr(model, "_spec") else " (not fitted, or not a fine-tuned classifier)"))
    modality = model._modality(model._spec)
    if modality.name != "image":
        raise ValueError(f"{caller} maps where in an image the evidence lies; {model.backbone!r} is "
                         f"{modality.article} {modality.name} backbone")
    return model


def _stage_layers(module, stage, backbone: str) -> list:
    """``[(index, name, module)]`` of the stage asked for, or of every stage for None."""
    names = [name for name, _ in module.stages]
    if stage is None:
        return [(i, name, layer) for i, (name, layer) in enumerate(module.stages)]
    if isinstance(stage, str) and stage in names:
        index = names.index(stage)
    elif isinstance(stage, Integral) and not isinstance(stage, bool) and -len(names) <= stage < len(names):
        index = stage % len(names)
    else:
        raise ValueError(f"stage={stage!r} is not a stage of {backbone!r}: pass an index or one of {names}")
    return [(index, names[index], module.stages[index][1])]


def _class_activation_maps(model, X, target, stage):
    """Grad-CAM of a fitted image classifier for ``X``, through its own input path.

    Returns ``(images, saliency, targets, proba, stage)``: the network's view of each
    image (``(n, H, W, 3)`` in [0, 1]), its map at that size scaled to its peak, the
    class index mapped, that class's probability and the stage's name.
    """
    import torch

    from ..nn.saliency import grad_cam, upsample

    module = model.net_.module_
    module = getattr(module, "_orig_mod", module)  # compiled: hooks need the eager module
    layers = _stage_layers(module, stage, model.backbone)
    source = model._prediction_source(X)  # the estimator's own input path
    n = len(source)
    targets = None
    if target is not None:
        positions = {label: i for i, label in enumerate(model.classes_)}
        wanted = np.asarray(target, dtype=object)
        if wanted.ndim > 1 or wanted.size not in (1, n):
            raise ValueError(f"target must be one label, or one per image ({n}); got shape {wanted.shape}")
        wanted = np.broadcast_to(wanted.ravel(), (n,))
        unknown = [t for t in dict.fromkeys(wanted.tolist()) if t not in positions]
        if unknown:
            raise ValueError(f"target {unknown} not among the classes {model.classes_.tolist()}")
        targets = torch.as_tensor([positions[t] for t in wanted])
    device, step = torch.device(model.device_), model.net_.batch_size
    parts = []
    for start in range(0, n, step):
        batch = source.read(np.arange(start, min(start + step, n)))
        batch = [b.to(device) for b in batch] if isinstance(batch, list) else batch.to(device)
        parts.append(grad_cam(module, batch, [layer for _, _, layer in layers], module.pool.feature_format,
                              None if targets is None else targets[start:start + step]))
    maps = [torch.cat([part.maps[k] for part in parts]) for k in range(len(layers))]
    # the last stage that can tell positions apart (a 1x1 map is the same everywhere)
    k = max((k for k, m in enumerate(maps) if m.shape[1] * m.shape[2] > 1), default=len(maps) - 1)
    logits = torch.cat([part.logits for part in parts]).double().numpy()
    chosen = torch.cat([part.targets for part in parts]).numpy()
    inputs = torch.cat([part.inputs for part in parts])
    # back from the network's normalization to pixels in [0, 1]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (model.data_config_.mean, model.data_config_.std))
    images = (inputs * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    proba = model._task().predict_proba(logits)[np.arange(n), chosen]
    return images, upsample(maps[k], inputs.shape[-2:]).numpy(), chosen, proba, layers[k][1]


class SaliencyDisplay:
    """Grad-CAM maps over images: where a fitted image classifier found its evidence.

    Grad-CAM (Selvaraju et al., 2017) weights each channel of a stage's feature
    maps by the mean gradient of the class's logit, sums them and keeps the
    positive part; the map, scaled to its peak, is drawn over the image as the
    network saw it (resized and cropped by the estimator's own preprocessing).

    Parameters
    ----------
    images : ndarray of shape (n, H, W, 3)
        The images the network saw, floats in [0, 1].
    saliency : ndarray of shape (n, H, W)
        The maps, in [0, 1].
    titles : sequence of str, optional
        One per image.
    stage : str, optional
        The stage the maps come from, for the figure's title.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes
    figure_ : matplotlib Figure
    overlays_ : list of matplotlib AxesImage
        The maps drawn over the images.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import FineTunedClassifier
    >>> from sktransfer.display import SaliencyDisplay
    >>> X = np.random.default_rng(0).integers(0, 256, size=(12, 48, 48, 3), dtype=np.uint8)
    >>> clf = FineTunedClassifier("resnet18", weights=None, input_size=64, freeze_depth="all").fit(X, [0, 1] * 6)
    >>> display = SaliencyDisplay.from_estimator(clf, X[:4], target=1)
    >>> display.saliency.shape, display.stage, len(display.overlays_)
    ((4, 64, 64), 'layer4', 4)
    """

    def __init__(self, images, saliency, *, titles=None, stage: Optional[str] = None):
        self.images = images
        self.saliency = saliency
        self.titles = titles
        self.stage = stage

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, target=None, stage=None, alpha: float = 0.5,
                       axes=None) -> "SaliencyDisplay":
        """Compute Grad-CAM maps of a fitted image classifier for ``X`` and plot them.

        The network runs in eval mode through the estimator's own input path and
        is left as it was: no weight, statistic or gradient of it changes. Test-time
        flips (``tta``) are not applied: the map explains the image as it is.

        Parameters
        ----------
        estimator : FineTunedClassifier
            Fitted, on an image backbone; also a fitted search or a Pipeline of it
            alone.
        X : images
            Any input the estimator takes (a few: one panel each).
        y : array-like of shape (n_samples,), optional
            True labels, written over the images.
        target : label or array-like of labels, optional
            The class whose evidence is mapped, for all images or one per image;
            the predicted class (the highest output) when None.
        stage : int or str, optional
            The stage whose maps are weighted (an index or a name of the
            backbone's stages). None takes the last stage whose maps have more
            than one position: later stages are more specific to the class,
            earlier ones finer (at small input sizes the last stages are 1x1).
        alpha : float, default=0.5
            Opacity of the maps.
        axes : array-like of matplotlib Axes, optional
            At least one per image; a new figure when None.

        Returns
        -------
        display : SaliencyDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        model = _image_classifier(estimator, f"{cls.__name__}.from_estimator")
        images, saliency, chosen, proba, stage_name = _class_activation_maps(model, X, target, stage)
        if y is not None and len(y) != len(images):
            raise ValueError(f"{len(y)} labels in y for {len(images)} images")
        truth = [None] * len(images) if y is None else np.asarray(y)
        kind = "pred" if target is None else "class"
        titles = [_caption(model.classes_[c], p, t, kind) for c, p, t in zip(chosen, proba, truth)]
        return cls(images, saliency, titles=titles, stage=stage_name).plot(axes=axes, alpha=alpha)

    def plot(self, axes=None, *, alpha: float = 0.5, cmap: str = "jet") -> "SaliencyDisplay":
        """Draw each map over its image.

        Parameters
        ----------
        axes : array-like of matplotlib Axes, optional
            At least one per image; a new figure when None.
        alpha : float, default=0.5
            Opacity of the maps where they peak (they fade out where they are
            weak, leaving the image visible).
        cmap : str, default="jet"
            Colour map of the maps (red: strongest evidence).

        Returns
        -------
        display : SaliencyDisplay
            ``self``, with ``axes_``, ``figure_`` and ``overlays_``.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        created = axes is None
        axes = _image_grid(len(self.images), axes)
        titles = self.titles if self.titles is not None else [None] * len(self.images)
        self.overlays_ = []
        for ax, image, saliency, title in zip(axes, self.images, self.saliency, titles):
            _show(ax, np.asarray(image))
            # opaque where the evidence is: the image stays visible elsewhere
            self.overlays_.append(ax.imshow(saliency, cmap=cmap, alpha=alpha * np.asarray(saliency), vmin=0, vmax=1))
            if not np.any(saliency):  # a blank panel is an answer, not a failure: say which
                ax.text(0.5, 0.04, "no positive evidence", transform=ax.transAxes, ha="center", va="bottom",
                        fontsize="x-small", color="white", bbox={"facecolor": "black", "alpha": 0.6, "lw": 0})
            if title:
                ax.set_title(title, fontsize="small")
        return _finish_grid(self, axes, created, self.stage and f"Grad-CAM, stage {self.stage!r}")
