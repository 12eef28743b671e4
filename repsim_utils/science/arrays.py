"""The input checks every pairwise formula shares: two activation arrays of shape (samples,
units) over the same samples, refused with their shapes before any work."""

from __future__ import annotations

import numpy as np


def check_pair(a: np.ndarray, b: np.ndarray, min_samples: int = 1) -> None:
    """Raise ValueError unless ``a`` and ``b`` are (samples, units) arrays with the same
    samples, at least ``min_samples`` of them (the arrays are not copied)."""
    if np.ndim(a) != 2 or np.ndim(b) != 2 or len(a) != len(b):
        raise ValueError(f"need (samples, units) arrays with the same samples, got "
                         f"{np.shape(a)} and {np.shape(b)}")
    if len(a) < min_samples:
        raise ValueError(f"need at least {min_samples} samples, got {len(a)}")


def as_pair(a: np.ndarray, b: np.ndarray, min_samples: int = 1
            ) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as float64 arrays, checked by :func:`check_pair`."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    check_pair(a, b, min_samples)
    return a, b


__all__ = ["as_pair", "check_pair"]
