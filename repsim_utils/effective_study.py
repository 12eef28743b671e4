"""The effective-weights chapter's pipeline (Ye 2025): class structure of W_eff(x) over
training checkpoints, as a tidy table (one row per network and checkpoint), built on
:mod:`repsim_utils.effective` and :mod:`repsim_utils.class_structure`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from tqdm import tqdm

from . import class_structure as cs
from .data import Dataset
from .effective import effective_weights, identity_error
from .training import progress_enabled
from .zoo import Trained


def probe_set(data: Dataset, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, class-balanced probe set from the test split: ``per_class`` inputs of every
    class (chosen with ``seed``), ordered by class."""
    if per_class < 2:
        raise ValueError(f"per_class must be >= 2, got {per_class}")
    x, y = data.x_test, data.y_test
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        if len(idx) < per_class:
            raise ValueError(f"class {int(c)} has only {len(idx)} test samples, fewer than "
                             f"per_class = {per_class}")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    pick = torch.cat(picks)
    return x[pick], y[pick]


def weights_at(run: Trained, epoch: int, x: torch.Tensor
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(W_eff flattened to (samples, outputs * inputs), b_eff and f(x) (samples, outputs), the
    identity error max |W_eff x + b_eff - f(x)|) of ``run`` at checkpoint ``epoch``, in
    float64."""
    net = run.at(epoch).double()
    x = x.double()
    w, b = effective_weights(net, x)
    with torch.no_grad():
        f = net(x)
    return w.flatten(1).numpy(), b.numpy(), f.numpy(), identity_error(w, b, x, f)


def effective_table(runs: dict[str, Trained], x: torch.Tensor, y: torch.Tensor,
                    k: int = 5) -> tuple[pd.DataFrame, dict[tuple[str, int], np.ndarray]]:
    """Per (network, checkpoint): test accuracy, raw and centred within/between-class cosine of
    W_eff(x), distance ratio, silhouette, k-NN accuracy from W_eff(x), the share of the output
    carried by b_eff (mean ||b_eff|| / mean ||f||) and the identity error. Also returns the
    flattened W_eff per (network, epoch), for embeddings."""
    labels = y.numpy()
    rows, flat = [], {}
    jobs = [(name, run, e) for name, run in runs.items() for e in sorted(run.checkpoints)]
    for name, run, epoch in tqdm(jobs, desc="effective weights", file=sys.stderr,
                                 disable=not progress_enabled()):
        w, b, f, err = weights_at(run, epoch, x)
        flat[name, epoch] = w
        intra, inter = cs.class_cosines(w, labels)
        intra_c, inter_c = cs.class_cosines(w, labels, center=True)
        acc = next(h["test_acc"] for h in run.history if h["epoch"] == epoch)
        rows.append({
            "network": name, "seed": run.seed, "epoch": epoch, "test_acc": acc,
            "cos_intra": intra, "cos_inter": inter,
            "cos_intra_centred": intra_c, "cos_inter_centred": inter_c,
            "distance_ratio": cs.distance_ratio(w, labels),
            "silhouette": cs.silhouette(w, labels),
            "knn": cs.knn_accuracy(w, labels, k=k),
            "bias_share": float(np.linalg.norm(b, axis=1).mean()
                                / np.linalg.norm(f, axis=1).mean()),
            "identity_error": err})
    return pd.DataFrame(rows), flat


def joint_embedding(arrays: Sequence[np.ndarray], normalise: bool = True, seed: int = 0
                    ) -> list[np.ndarray]:
    """2-D PCA coordinates of every array (samples, features), with one PCA fitted on all of
    them together so that the axes are shared across checkpoints. ``normalise`` first centres
    each array over its samples and scales each row to unit norm: the geometry of the centred
    cosine, blind to the growth of the maps' common component and norm during training."""
    if normalise:
        arrays = [a - a.mean(axis=0) for a in arrays]
        arrays = [a / np.linalg.norm(a, axis=1, keepdims=True) for a in arrays]
    pca = PCA(n_components=2, random_state=seed).fit(np.vstack(arrays))
    return [pca.transform(a) for a in arrays]


def class_templates(w: np.ndarray, labels: np.ndarray, n_out: int) -> np.ndarray:
    """Mean over the samples of class c of row c of W_eff(x) (the map that produces the class-c
    logit): (classes, inputs), in the order of the sorted class labels."""
    w = w.reshape(len(w), n_out, -1)
    classes = np.unique(labels)
    return np.stack([w[labels == c, int(c)].mean(axis=0) for c in classes])
