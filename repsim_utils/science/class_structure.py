"""How well a representation z (samples, features) groups samples by class: the measures of
the effective-weights chapter (Ye 2025), applied to flattened W_eff(x), to raw inputs, or to
any other per-sample vectors.

- cosine similarity within and between classes, raw or centred (the mean over samples removed
  first: raw cosines of ReLU-network quantities share a large common component, so they rise
  for all pairs together);
- the mean cosine between class means of the unit-normalised vectors (between-class
  similarity that, unlike the centred between-class cosine, is not fixed by the within-class
  one: centred vectors sum to zero, so their mean pairwise cosine is pinned);
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
    unit = _unit_rows(z)
    cos = unit @ unit.T
    same, different = _pair_masks(labels)
    return float(cos[same].mean()), float(cos[different].mean())


def _unit_rows(z: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(z, axis=1)
    if np.any(norms == 0):
        raise ValueError(f"{int(np.sum(norms == 0))} samples have a zero vector: cosine "
                         f"similarity is undefined for them")
    return z / norms[:, None]


def class_mean_cosine(z: np.ndarray, labels: np.ndarray) -> float:
    """Mean over pairs of distinct classes c != d of cos(m_c, m_d), with m_c the mean of the
    unit-normalised vectors z_i / ||z_i|| of class c. Falls as the classes' directions
    diverge."""
    z, labels = _check(z, labels)
    unit = _unit_rows(z)
    classes = np.unique(labels)
    means = _unit_rows(np.stack([unit[labels == c].mean(axis=0) for c in classes]))
    cos = means @ means.T
    return float(cos[~np.eye(len(classes), dtype=bool)].mean())


def measures(z: np.ndarray, labels: np.ndarray, k: int = 5) -> dict[str, float]:
    """Every class-structure measure of this module for one representation, as one table row:
    cosines within / between classes (raw and centred), between class means, distance ratio,
    silhouette and k-NN accuracy."""
    intra, inter = class_cosines(z, labels)
    intra_c, inter_c = class_cosines(z, labels, center=True)
    return {"cos_intra": intra, "cos_inter": inter, "cos_intra_centred": intra_c,
            "cos_inter_centred": inter_c, "class_mean_cos": class_mean_cosine(z, labels),
            "distance_ratio": distance_ratio(z, labels), "silhouette": silhouette(z, labels),
            "knn": knn_accuracy(z, labels, k=k)}


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


__all__ = ["class_cosines", "class_mean_cosine", "distance_ratio", "knn_accuracy", "measures",
           "silhouette"]
