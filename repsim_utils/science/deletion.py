"""Principal-component deletion, the sensitivity test of Ding, Denain & Steinhardt (2021),
*Grounding representation similarity with statistical testing*: remove a layer's top k
principal components and ask whether a similarity measure changes as much as what a linear
probe can read from the layer.

- :func:`top_components`: the layer's mean and its top principal directions V (units x k),
  from the centred SVD;
- :func:`delete_components`: x - (x - mean) V V^T, the layer without those directions (its
  rows keep the mean and every lower component);
- :func:`probe_accuracy`: a least-squares linear probe, argmax of [x, 1] W with
  W = argmin ||[x, 1] W - Y||_F on one-hot labels Y (LAPACK ``gelsd``, its default cut-off of
  small singular values), fitted on one set of rows and scored on another.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def top_components(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (units,), V (units, k)): the mean of the (samples, units) layer ``a`` and its top
    ``k`` principal directions, orthonormal columns ordered by variance."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"expected a (samples, units) layer, got shape {a.shape}")
    if not 0 < k < min(a.shape):
        raise ValueError(f"k = {k} components: expected 0 < k < min(samples, units) = "
                         f"{min(a.shape)} (deleting every component leaves only the mean)")
    mean = a.mean(0)
    _, _, vt = linalg.svd(a - mean, full_matrices=False)
    return mean, vt[:k].T


def delete_components(x: np.ndarray, mean: np.ndarray, v: np.ndarray) -> np.ndarray:
    """x - (x - mean) V V^T: the rows of ``x`` (samples, units) without the directions V
    (:func:`top_components`), measured from ``mean``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(mean) or v.shape[0] != len(mean):
        raise ValueError(f"rows of {x.shape[1:]} units against a basis of {v.shape[0]} units")
    c = x - mean
    return x - (c @ v) @ v.T


def _design(x: np.ndarray) -> np.ndarray:
    return np.hstack([np.asarray(x, dtype=np.float64), np.ones((len(x), 1))])


def probe_accuracy(x_fit: np.ndarray, y_fit: np.ndarray, x_test: np.ndarray,
                   y_test: np.ndarray) -> float:
    """Accuracy on (``x_test``, ``y_test``) of the least-squares linear probe fitted on
    (``x_fit``, ``y_fit``): one-hot targets, an intercept, predictions by argmax."""
    y_fit, y_test = np.asarray(y_fit), np.asarray(y_test)
    if len(x_fit) != len(y_fit) or len(x_test) != len(y_test):
        raise ValueError("every row needs a label: "
                         f"{len(x_fit)} fit rows and {len(y_fit)} labels, "
                         f"{len(x_test)} test rows and {len(y_test)} labels")
    classes = np.unique(y_fit)
    targets = (y_fit[:, None] == classes[None, :]).astype(np.float64)
    w = linalg.lstsq(_design(x_fit), targets, lapack_driver="gelsd")[0]
    predicted = classes[(_design(x_test) @ w).argmax(1)]
    return float(np.mean(predicted == y_test))


__all__ = ["delete_components", "probe_accuracy", "top_components"]
