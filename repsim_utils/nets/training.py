"""Seeded, deterministic training with checkpoints at chosen epochs.

On the CPU the same (model, data, spec, seed) give bitwise-identical weights: the data order and
the input noise come from private generators seeded by ``seed``, never from global state.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from repsim_utils.base.progress import progress_enabled, report_status
from repsim_utils.nets.data import Dataset

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine", "step")
LOSSES = ("cross_entropy", "bce", "mse")


@dataclass(frozen=True)
class TrainSpec:
    """How a network is trained. ``batch_size=0`` means full-batch gradient descent."""

    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    milestones: tuple[int, ...] = ()  # "step": lr x 0.1 at each of these epochs
    checkpoints: tuple[int, ...] = ()  # snapshots besides epoch 0 and the last epoch
    input_noise: float = 0.0  # std of Gaussian noise added to inputs during training
    loss: str = "cross_entropy"
    n_train: int = 0  # train on a fixed random subset of this size (0 = all)
    device: str = "cpu"  # "cpu", "cuda" or "auto" (cuda when available)

    def __post_init__(self) -> None:
        for name, value, allowed in (("optimizer", self.optimizer, OPTIMIZERS),
                                     ("schedule", self.schedule, SCHEDULES),
                                     ("loss", self.loss, LOSSES),
                                     ("device", self.device, ("cpu", "cuda", "auto"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if self.epochs < 0 or self.batch_size < 0 or self.lr <= 0 or self.n_train < 0:
            raise ValueError("epochs, batch_size and n_train must be >= 0 and lr > 0")
        bad = [c for c in self.checkpoints if not 0 <= c <= self.epochs]
        if bad:
            raise ValueError(f"checkpoints {bad} outside 0..{self.epochs}")
        object.__setattr__(self, "checkpoints", tuple(sorted(set(self.checkpoints))))
        object.__setattr__(self, "milestones", tuple(sorted(self.milestones)))

    @property
    def saved_epochs(self) -> tuple[int, ...]:
        return tuple(sorted({0, self.epochs, *self.checkpoints}))


@dataclass
class TrainResult:
    """State dicts at ``spec.saved_epochs`` and the per-epoch history."""

    checkpoints: dict[int, dict[str, torch.Tensor]]
    history: list[dict[str, float | None]] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' asked for, but torch sees no GPU")
    return torch.device(name)


def _loss_fn(name: str, alpha: float):
    # Lazy-training convention: the loss of an alpha-scaled model is divided by alpha^2.
    scale = 1.0 / alpha**2
    if name == "cross_entropy":
        return lambda out, y: scale * nn.functional.cross_entropy(out, y)
    if name == "bce":
        return lambda out, y: scale * nn.functional.binary_cross_entropy_with_logits(
            out.squeeze(-1), y.float())
    return lambda out, y: scale * nn.functional.mse_loss(out.squeeze(-1), y.float())


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str,
             batch_size: int = 2048) -> float:
    """Fraction of correct predictions (argmax, or the sign of a single logit)."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = model(x[i:i + batch_size].to(device)).cpu()
            yb = y[i:i + batch_size]
            if loss == "cross_entropy":
                pred = out.argmax(1)
            else:
                pred = (out.squeeze(-1) > (0.0 if loss == "bce" else 0.5)).long()
            correct += int((pred == yb).sum())
    return correct / max(len(x), 1)


#: Intra-op threads of training on a CPU. Fixed, because a float sum split over another number
#: of threads rounds differently and SGD amplifies it: without this the network trained for a
#: seed would depend on how many runs share the machine (``run --jobs``). One thread costs about
#: 15% of training time on 2 cores at the default shapes; GPU training is not affected.
CPU_TRAIN_THREADS = 1


def train(model: nn.Module, data: Dataset, spec: TrainSpec, seed: int,
          progress: bool | None = None, desc: str = "train") -> TrainResult:
    """Train ``model`` in place; return its state at ``spec.saved_epochs`` and the history.
    On a CPU, with :data:`CPU_TRAIN_THREADS` threads whatever the machine's load."""
    device = resolve_device(spec.device)
    if device.type != "cpu":
        return _train(model, data, spec, seed, progress, desc, device)
    threads = torch.get_num_threads()
    torch.set_num_threads(CPU_TRAIN_THREADS)
    try:
        return _train(model, data, spec, seed, progress, desc, device)
    finally:
        torch.set_num_threads(threads)


def _train(model: nn.Module, data: Dataset, spec: TrainSpec, seed: int, progress: bool | None,
           desc: str, device: torch.device) -> TrainResult:
    model.to(device)
    if spec.n_train:
        data = data.subset(n_train=spec.n_train, seed=seed)
    x, y = data.x_train, data.y_train
    n = len(x)
    bs = n if spec.batch_size == 0 else min(spec.batch_size, n)
    alpha = getattr(model, "alpha", 1.0)
    loss_fn = _loss_fn(spec.loss, alpha)
    params = [p for p in model.parameters() if p.requires_grad]
    if spec.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum,
                              weight_decay=spec.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(spec.epochs, 1))
    elif spec.schedule == "step":
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(spec.milestones))
    else:
        sched = None
    gen = torch.Generator().manual_seed(seed)

    def snapshot() -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    result = TrainResult({0: snapshot()})
    result.history.append({"epoch": 0, "train_loss": None,
                           "test_acc": accuracy(model, data.x_test, data.y_test, spec.loss)})
    show = progress_enabled() if progress is None else progress
    bar = tqdm(range(1, spec.epochs + 1), desc=desc, disable=not show, file=sys.stderr,
               leave=False, dynamic_ncols=True)
    for epoch in bar:
        report_status(f"{desc}: epoch {epoch}/{spec.epochs}")
        model.train()
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            xb, yb = x[idx], y[idx]
            if spec.input_noise > 0:
                xb = xb + spec.input_noise * torch.randn(xb.shape, generator=gen)
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        if sched is not None:
            sched.step()
        row = {"epoch": epoch, "train_loss": total / n}
        if epoch in spec.saved_epochs:
            row["test_acc"] = accuracy(model, data.x_test, data.y_test, spec.loss)
            result.checkpoints[epoch] = snapshot()
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['test_acc']:.3f}")
        result.history.append(row)
    bar.close()
    model.eval()
    return result
