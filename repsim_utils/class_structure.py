"""How well a representation z (samples, features) groups samples by class: the measures of
the effective-weights chapter (Ye 2025), applied to flattened W_eff(x), to raw inputs, or to
any other per-sample vectors.

- cosine similarity within and between classes, raw or centred (the mean over samples removed
  first: raw cosines of ReLU-network quantities share a large common component, so they rise
  for all pairs together);
- the ratio of mean within-class to mean between-class Euclidean distance;
- the silhouette score (cosine distance; Rousseeuw 1987, scikit-learn);
- the cross-validated k-nearest-neighbour accuracy of predicting the class.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier


def _check(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(z, dtype=np.float64)
    labels = np.asarray(labels)
    if z.ndim != 2 or labels.shape != (len(z),):
        raise ValueError(f"need z of shape (samples, features) and one label per sample, got "
                         f"{z.shape} and {labels.shape}")
    if len(np.unique(labels)) < 2:
        raise ValueError("need samples of at least two classes")
    return z, labels


def _pair_masks(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    different = labels[:, None] != labels[None, :]
    return same, different


def class_cosines(z: np.ndarray, labels: np.ndarray, center: bool = False
                  ) -> tuple[float, float]:
    """(mean cosine over pairs of distinct samples of one class, mean over pairs of different
    classes). ``center=True`` removes the mean over samples first. A zero vector has no
    direction: it raises ValueError."""
    z, labels = _check(z, labels)
    if center:
        z = z - z.mean(axis=0)
    norms = np.linalg.norm(z, axis=1)
    if np.any(norms == 0):
        raise ValueError(f"{int(np.sum(norms == 0))} samples have a zero vector: cosine "
                         f"similarity is undefined for them")
    unit = z / norms[:, None]
    cos = unit @ unit.T
    same, different = _pair_masks(labels)
    return float(cos[same].mean()), float(cos[different].mean())


def distance_ratio(z: np.ndarray, labels: np.ndarray) -> float:
    """Mean Euclidean distance within classes / mean distance between classes (< 1: classes
    are tighter than the whole)."""
    z, labels = _check(z, labels)
    dist = squareform(pdist(z))
    same, different = _pair_masks(labels)
    return float(dist[same].mean() / dist[different].mean())


def silhouette(z: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient with cosine distance, in [-1, 1]."""
    z, labels = _check(z, labels)
    return float(silhouette_score(z, labels, metric="cosine"))


def knn_accuracy(z: np.ndarray, labels: np.ndarray, k: int = 5, folds: int = 5,
                 seed: int = 0) -> float:
    """Stratified ``folds``-fold cross-validated accuracy of a k-nearest-neighbour classifier
    (Euclidean distance) predicting the class from z."""
    z, labels = _check(z, labels)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(k), z, labels, cv=cv).mean())


__all__ = ["class_cosines", "distance_ratio", "knn_accuracy", "silhouette"]
