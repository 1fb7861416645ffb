"""A linear probe solved to convergence: the head on frozen features as a convex problem.

Multinomial logistic regression with an L2 penalty, in scikit-learn's
parametrisation (``C`` times the sum of the weighted per-sample losses, plus
half the squared norm of the weights), solved full-batch by L-BFGS with a
strong-Wolfe line search on the features' device. The features are centered
and divided by one global scale (the root mean variance of the features), so
that ``C`` means the same for any backbone while the features keep their
relative scales (per-feature standardisation, which amplifies near-constant
features, measured worse on every data set tried); the solution is folded back
into a plain linear layer on the raw features.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

# Stopping rule: the largest gradient entry below 1e-4, or a step that changes the
# loss or the weights by less than 1e-6. Tighter rules doubled the iterations without
# changing a single test prediction on digits and Fashion-MNIST.
_TOLERANCE_GRAD = 1e-4
_TOLERANCE_CHANGE = 1e-6


def fit_linear_probe(features: torch.Tensor, y: torch.Tensor, n_classes: int, C: float,
                     weights: Optional[torch.Tensor] = None, label_smoothing: float = 0.0,
                     max_iter: int = 500, init=None):
    """Solve ``min C * sum_i w_i * CE(x_i W^T + b, y_i) + ||W||^2 / 2`` (weights scaled to mean 1).

    Parameters
    ----------
    features : Tensor of shape (n, d)
    y : LongTensor of shape (n,)
        Class indices in ``[0, n_classes)``.
    n_classes : int
    C : float
        Inverse regularisation strength, as in ``LogisticRegression``.
    weights : Tensor of shape (n,), optional
        Per-sample weights (mean 1).
    label_smoothing : float, default=0.0
        Of the cross-entropy, as in ``torch.nn.functional.cross_entropy``
        (still a convex problem).
    max_iter : int, default=500
        L-BFGS iterations at most.
    init : (Tensor, Tensor), optional
        ``(W, b)`` on the raw features to start from (a warm start).

    Returns
    -------
    W : Tensor of shape (n_classes, d)
    b : Tensor of shape (n_classes,)
    n_iter : int
        L-BFGS iterations run.
    """
    X = features.detach().float()
    n = len(X)
    w = torch.ones(n, device=X.device) if weights is None else weights.detach().float().to(X.device)
    mean = (w[:, None] * X).sum(0) / w.sum()
    scale = ((w[:, None] * (X - mean) ** 2).sum(0) / w.sum()).mean().sqrt().clamp_min(1e-12)
    Z = (X - mean) / scale
    y = y.to(X.device)
    if init is None:
        V = torch.zeros(n_classes, X.shape[1], device=X.device)
        c = torch.zeros(n_classes, device=X.device)
    else:  # from raw-feature weights to the scaled problem's
        V = init[0].detach().float().to(X.device) * scale
        c = init[1].detach().float().to(X.device) + init[0].detach().float().to(X.device) @ mean
    V.requires_grad_(True)
    c.requires_grad_(True)
    optimizer = torch.optim.LBFGS([V, c], lr=1, max_iter=max_iter, history_size=20,
                                  tolerance_grad=_TOLERANCE_GRAD, tolerance_change=_TOLERANCE_CHANGE,
                                  line_search_fn="strong_wolfe")
    penalty = 1.0 / (C * float(w.sum()))  # the objective divided by C * sum(w)

    def closure():
        optimizer.zero_grad()
        losses = F.cross_entropy(Z @ V.T + c, y, reduction="none", label_smoothing=label_smoothing)
        loss = (losses * w).mean() + 0.5 * penalty * (V * V).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    n_iter = optimizer.state[V]["n_iter"]
    V, c = V.detach(), c.detach()
    W = V / scale
    return W, c - W @ mean, int(n_iter)
