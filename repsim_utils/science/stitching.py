"""Model stitching: one network's front, an affine stitching layer, another network's back.

For networks A and B and a hidden layer l, the stitched network is

    x  ->  back_B( S( front_A(x) ) ),   S(h) = h W + c,

where ``front_A`` is A up to and including layer l and ``back_B`` is B after its layer l
(Lenc & Vedaldi 2015; Bansal, Nakkiran & Barak 2021; Csiszárik et al. 2021). For a conv layer S
is a 1x1 convolution: the same affine map of channels at every position. Two ways to fit S:

- **direct matching** (Csiszárik et al. 2021): the least-squares affine map from A's layer l to
  B's layer l on the same inputs, W, c = argmin sum_i ||a_i W + c - b_i||^2 (one row per input
  for a dense layer, per (input, position) for a conv layer), in closed form
  (:func:`fit_affine`);
- **task-loss matching** (Bansal et al. 2021; Csiszárik et al. 2021): S trained on the task's
  cross-entropy with A's front and B's back frozen, started from the direct match
  (:func:`train_stitch`).

The **stitching penalty** is B's own accuracy minus the stitched network's, on held-out inputs
(:func:`penalty`). A network stitched to itself by direct matching is itself (S = identity), so
its penalty is 0: the ceiling, a sanity check. The references that can fail are the chapter's:
a sender that is untrained, a sender layer of another depth, and a sender that is noise with
only the class structure of the inputs (:class:`ClassNoise`; Smith et al. 2025 stitched such
noise into MNIST models), none of which shares a representation with B.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from repsim_utils.nets.models import Network
from repsim_utils.nets.training import CPU_TRAIN_THREADS
from repsim_utils.science.regression import AffineFit, fit_affine


def split(net: Network, layer: str) -> tuple[nn.Sequential, nn.Sequential]:
    """(front, back) of ``net`` at ``layer``: the layers up to and including it, and the rest
    (shared modules, not copies; a clear error lists the layer names)."""
    net.layer(layer)  # the error that names the layers
    if net.reference is not None:
        raise ValueError("stitching needs a plain network (alpha = 1): the centred model "
                         "alpha (h(x; w) - h(x; w0)) is not a stack of layers")
    names = [name for name, _ in net.layers.named_children()]
    k = names.index(layer) + 1
    mods = list(net.layers.children())
    return nn.Sequential(*mods[:k]), nn.Sequential(*mods[k:])


class Stitch(nn.Module):
    """The affine stitching layer S(h) = h W + c, on (batch, units) or, as a 1x1 convolution,
    on (batch, channels, height, width)."""

    def __init__(self, w: np.ndarray, c: np.ndarray) -> None:
        super().__init__()
        # copies: a stitch trained from another must not share (and change) its memory
        self.weight = nn.Parameter(torch.tensor(np.array(w, dtype=np.float32)))
        self.bias = nn.Parameter(torch.tensor(np.array(c, dtype=np.float32)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.ndim == 4:  # channels are the units, the same map at every position
            return torch.einsum("bphw,pq->bqhw", h, self.weight) + self.bias[:, None, None]
        return h @ self.weight + self.bias


class Stitched(nn.Module):
    """back(stitch(front(x))), the front and back frozen (their parameters are not trained)."""

    def __init__(self, front: nn.Module, stitch: Stitch, back: nn.Module) -> None:
        super().__init__()
        self.front, self.stitch, self.back = front, stitch, back

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.back(self.stitch(self.front(x)))


@torch.no_grad()
def features(module: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """``module(x)`` in batches, in eval mode, on the module's device (float32, on the CPU)."""
    module.eval()
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    return torch.cat([module(x[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(x), batch_size)])


def rows(h: torch.Tensor) -> np.ndarray:
    """A layer's output as (samples, units): inputs for a dense layer, (input, position) pairs
    for a conv layer, whose channels are the units."""
    if h.ndim == 4:
        return h.permute(0, 2, 3, 1).reshape(-1, h.shape[1]).numpy()
    if h.ndim != 2:
        raise ValueError(f"expected a (batch, units) or (batch, channels, h, w) layer, got "
                         f"shape {tuple(h.shape)}")
    return h.numpy()


def _kept_rows(n: int, max_rows: int | None, seed: int) -> np.ndarray | None:
    """The rows a fit keeps: all (None) up to ``max_rows``, else a sorted random subset drawn
    from ``seed``, the same for every layer with as many rows."""
    if max_rows is None or n <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))


def sender_fit(sender: torch.Tensor, max_rows: int | None = None, seed: int = 0) -> AffineFit:
    """The per-sender work of :func:`direct_match` (:class:`~repsim_utils.science.regression.
    AffineFit` of the sender's rows), to reuse for every receiver."""
    a = rows(sender)
    keep = _kept_rows(len(a), max_rows, seed)
    return AffineFit(a if keep is None else a[keep])


def direct_match(sender: torch.Tensor, receiver: torch.Tensor, max_rows: int | None = None,
                 seed: int = 0, fit: AffineFit | None = None) -> Stitch:
    """The direct-matching stitch (:func:`fit_affine`) from a sender layer's outputs to a
    receiver layer's outputs on the same inputs; for conv layers at most ``max_rows``
    (input, position) rows drawn at random (``seed``), since the fit needs only a few times
    more rows than channels. ``fit``: the sender's :func:`sender_fit` (same ``max_rows`` and
    ``seed``), computed once for all its receivers."""
    if sender.shape[0] != receiver.shape[0] or sender.shape[2:] != receiver.shape[2:]:
        raise ValueError(f"sender {tuple(sender.shape)} and receiver {tuple(receiver.shape)} "
                         f"must have the same inputs and positions")
    b = rows(receiver)
    keep = _kept_rows(len(b), max_rows, seed)
    fit = fit or sender_fit(sender, max_rows, seed)
    return Stitch(*fit.solve(b if keep is None else b[keep]))


@dataclass(frozen=True)
class ClassNoise:
    """A sender that is noise with only the class structure of the inputs (the control of Smith
    et al. 2025): for an input of class y, mu_y + z with mu_c ~ N(0, I) per class and
    z ~ N(0, I), both of the shape of one input's layer output, times ``scale`` (per unit, so
    that the noise has the real layer's spread). A stitch fitted on it reads the class off the
    noise; it shares no representation with any network."""

    means: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def like(cls, h: torch.Tensor, n_classes: int, seed: int) -> ClassNoise:
        """Class means drawn from ``seed``, scaled to the spread of the real layer ``h``
        (batch, units) or (batch, channels, height, width) per unit."""
        g = torch.Generator().manual_seed(seed)
        means = torch.randn((n_classes, *h.shape[1:]), generator=g)
        dims = (0, 2, 3) if h.ndim == 4 else (0,)
        return cls(means, h.std(dim=dims, keepdim=True)[0] / np.sqrt(2.0))  # var(mu + z) = 2

    def draw(self, labels: torch.Tensor, seed: int) -> torch.Tensor:
        """One noise sample per label; fresh noise for another ``seed``, same class means."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn((len(labels), *self.means.shape[1:]), generator=g)
        return (self.means[labels] + z) * self.scale


def accuracy_and_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      batch_size: int = 1024) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on (x, y)."""
    out = features(model, x, batch_size)
    return (float((out.argmax(1) == y).float().mean()),
            float(nn.functional.cross_entropy(out, y)))


def train_stitch(stitch: Stitch, sender: torch.Tensor, back: nn.Module, y: torch.Tensor,
                 epochs: int, seed: int, lr: float = 1e-3, batch_size: int = 64) -> Stitch:
    """Task-loss matching (Bansal et al. 2021; Csiszárik et al. 2021): a copy of ``stitch``
    trained with Adam on the cross-entropy of ``back(stitch(h))`` for the sender outputs
    ``sender`` (fixed: the front is frozen, so its outputs are computed once) and labels ``y``,
    the back frozen; minibatches in an order drawn from ``seed``, on one CPU thread, so the
    result is reproducible."""
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    out = Stitch(stitch.weight.detach().numpy(), stitch.bias.detach().numpy())
    if epochs == 0:
        return out
    back.eval()
    frozen = [p.requires_grad for p in back.parameters()]
    back.requires_grad_(False)
    opt = torch.optim.Adam(out.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    # the thread count of training (nets.training): a float sum split over another number of
    # threads rounds differently, so the stitch would depend on the machine's load
    threads = torch.get_num_threads()
    torch.set_num_threads(CPU_TRAIN_THREADS)
    try:
        for _ in range(epochs):
            for idx in torch.randperm(len(sender), generator=g).split(batch_size):
                opt.zero_grad()
                nn.functional.cross_entropy(back(out(sender[idx])), y[idx]).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
        for p, r in zip(back.parameters(), frozen, strict=True):
            p.requires_grad_(r)
    return out


def penalty(receiver: tuple[float, float], stitched: tuple[float, float]) -> tuple[float, float]:
    """The stitching penalty: (receiver's accuracy - stitched accuracy, stitched cross-entropy -
    receiver's), both > 0 when stitching costs performance (Bansal et al. 2021)."""
    return receiver[0] - stitched[0], stitched[1] - receiver[1]


def check_stitchable(sender_shape: Sequence[int], receiver_shape: Sequence[int]) -> bool:
    """Whether an affine (1x1) stitch can map a layer of shape ``sender_shape`` (per input) to
    one of ``receiver_shape``: the same spatial positions (any number of units)."""
    return len(sender_shape) == len(receiver_shape) and tuple(sender_shape[1:]) == tuple(
        receiver_shape[1:])


__all__ = ["AffineFit", "ClassNoise", "Stitch", "Stitched", "accuracy_and_loss", "check_stitchable",
           "direct_match", "features", "fit_affine", "penalty", "rows", "sender_fit", "split",
           "train_stitch"]
