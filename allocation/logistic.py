"""Bayesian logistic regression with a Gaussian prior: MAP by Newton, Laplace covariance."""

from __future__ import annotations

import numpy as np
from scipy.special import expit


def fit_laplace(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    start: np.ndarray | None = None,
    max_iter: int = 25,
    tol: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mode and covariance of θ for y ~ Bernoulli(σ(xθ)), θ ~ N(m, diag(1/prec)).

    ``y`` may be soft (in [0, 1]): the cross-entropy gradient is the same, which is how the
    survival soft labels of open assignments enter the fit.
    """
    theta = np.array(prior_mean if start is None else start, dtype=float)
    prec = np.diag(prior_precision)
    hessian = prec
    for _ in range(max_iter):
        p = expit(x @ theta)
        grad = x.T @ (weights * (p - y)) + prior_precision * (theta - prior_mean)
        hessian = (x.T * (weights * p * (1.0 - p))) @ x + prec
        step = np.linalg.solve(hessian, grad)
        # damped Newton: a far-off start (new vocabulary, extreme soft labels) must not overshoot
        biggest = float(np.max(np.abs(step)))
        if biggest > 2.0:
            step *= 2.0 / biggest
        theta -= step
        if float(np.max(np.abs(step))) < tol:
            break
    p = expit(x @ theta)
    hessian = (x.T * (weights * p * (1.0 - p))) @ x + prec
    return theta, np.linalg.inv(hessian)
