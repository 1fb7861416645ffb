"""Per-epoch and per-step curves: the training history and the learning-rate range test."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ._base import check_matplotlib_support, _axes, _final_estimator


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
