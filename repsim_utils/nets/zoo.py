"""Trained networks, each trained once and cached on disk; untrained baselines beside them.

A cache entry is keyed by a SHA-256 of everything that determines the trained weights: the
dataset, the model spec, the training spec, the seed, and the versions of torch and of this
package. Entries are written atomically and carry a digest of their tensors, so a run killed
mid-write leaves nothing a later run would trust, and a corrupted or truncated entry is detected,
reported and rebuilt. Loading uses ``torch.load(..., weights_only=True)``.

Several chapters share the same networks: ask for the same ``Recipe`` and seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from repsim_utils import __version__
from repsim_utils.base.atomic import atomic_open
from repsim_utils.base.paths import cache_dir
from repsim_utils.nets.data import Dataset, load
from repsim_utils.nets.models import ConvSpec, MLPSpec, ModelSpec, Network, build
from repsim_utils.nets.training import TrainSpec, train

log = logging.getLogger(__name__)
FORMAT = 2  # 2: CPU training with a fixed thread count (training.CPU_TRAIN_THREADS)
#: The start of the warning about a rebuilt entry; the driver repeats it on the console.
CACHE_WARNING = "repsim model cache: entry"


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained network, except its seed."""

    dataset: str
    model: ModelSpec
    train: TrainSpec

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.dataset,
                "model": {"kind": type(self.model).__name__, **dataclasses.asdict(self.model)},
                "train": dataclasses.asdict(self.train)}


@dataclass
class Trained:
    """A trained network with its checkpoints and training history."""

    recipe: Recipe
    seed: int
    key: str
    model: Network
    checkpoints: dict[int, dict[str, torch.Tensor]]
    history: list[dict[str, float]]

    def at(self, epoch: int) -> Network:
        """A copy of the network as it was at checkpoint ``epoch`` (eval mode)."""
        if epoch not in self.checkpoints:
            raise KeyError(f"no checkpoint at epoch {epoch}; saved: {sorted(self.checkpoints)}")
        net = _fresh(self.recipe, self.seed)
        net.load_state_dict(self.checkpoints[epoch])
        return net.eval()

    @property
    def test_accuracy(self) -> float:
        return self.history[-1]["test_acc"]


def cache_key(recipe: Recipe, seed: int) -> str:
    material = {"format": FORMAT, "recipe": recipe.describe(), "seed": int(seed),
                "torch": torch.__version__, "repsim_utils": __version__}
    blob = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _dataset(recipe: Recipe) -> Dataset:
    return load(recipe.dataset)


def _n_out(data: Dataset, recipe: Recipe) -> int:
    return 1 if recipe.train.loss in ("bce", "mse") else data.n_classes


def _fresh(recipe: Recipe, seed: int) -> Network:
    data = _dataset(recipe)
    return build(recipe.model, data.input_shape, _n_out(data, recipe), seed)


def untrained(recipe: Recipe, seed: int) -> Network:
    """The baseline: same architecture, initialised from ``seed``, never trained (eval mode)."""
    return _fresh(recipe, seed).eval()


def _digest(checkpoints: dict[int, dict[str, torch.Tensor]]) -> str:
    h = hashlib.sha256()
    for epoch in sorted(checkpoints):
        for name, t in sorted(checkpoints[epoch].items()):
            h.update(f"{epoch}/{name}/{tuple(t.shape)}/{t.dtype}".encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _entry_path(key: str) -> Path:
    return cache_dir() / f"{key}.pt"


class CacheError(OSError):
    """The model cache cannot hold what it must (read-only, full): one line naming the folder."""


def _read(path: Path, key: str, delete: bool = True) -> dict[str, Any] | None:
    """The cached payload, or None when the entry is unusable (with a warning, and deleted when
    ``delete``)."""
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
        checkpoints = {int(k): v for k, v in payload["checkpoints"].items()}
        if payload.get("key") != key or payload.get("digest") != _digest(checkpoints):
            raise ValueError("key or digest mismatch")
    except Exception as err:  # truncated zip, unpickling error, missing field...
        if not delete:
            return None
        warnings.warn(f"{CACHE_WARNING} {path.name} is corrupted ({type(err).__name__}: {err}); "
                      f"it is deleted and the network retrained", RuntimeWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        return None
    payload["checkpoints"] = checkpoints
    return payload


def trained(recipe: Recipe, seed: int, progress: bool | None = None) -> Trained:
    """The network of ``recipe`` trained from ``seed``: loaded from the cache, else trained and
    cached."""
    key = cache_key(recipe, seed)
    path = _entry_path(key)
    # entries are written atomically: one that is there and whole needs no lock to be read
    # (a read-only cache that holds every network is usable)
    payload = _read(path, key, delete=False) if path.exists() else None
    if payload is None:
        # one lock per network: two runs (or two drivers) needing it train it once
        with _locked(path):
            payload = _read(path, key) if path.exists() else None
            if payload is None:
                payload = _train_and_store(recipe, seed, key, path, progress)
    checkpoints = payload["checkpoints"]
    model = _fresh(recipe, seed)
    model.load_state_dict(checkpoints[recipe.train.epochs])
    return Trained(recipe, seed, key, model.eval(), checkpoints, list(payload["history"]))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the entry's lock; a cache folder that cannot be written is a :class:`CacheError`
    that says how to fix it."""
    lock = FileLock(str(path) + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as err:
        raise CacheError(f"the model cache {path.parent} cannot be written "
                         f"({err.strerror or err}) and network {path.stem} is not in it; make "
                         f"it writable or set REPSIM_CACHE to a writable folder") from None
    try:
        yield
    finally:
        lock.release()


def _train_and_store(recipe: Recipe, seed: int, key: str, path: Path,
                     progress: bool | None) -> dict[str, Any]:
    log.info("training %s seed %d (cache key %s)", recipe.dataset, seed, key)
    net = _fresh(recipe, seed)
    result = train(net, _dataset(recipe), recipe.train, seed, progress=progress,
                   desc=f"{recipe.dataset} {type(recipe.model).__name__} seed {seed}")
    payload = {"format": FORMAT, "key": key, "seed": seed,
               "recipe": json.dumps(recipe.describe()),
               "checkpoints": {str(k): v for k, v in result.checkpoints.items()},
               "history": result.history, "digest": _digest(result.checkpoints)}
    # serialised in memory first: a full disk is then an OSError of the write (errno 28), not
    # torch's "unexpected pos" from inside its zip writer
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    try:
        with atomic_open(path, "wb") as f:
            f.write(buffer.getbuffer())
    except OSError as err:
        raise CacheError(f"could not store network {key} in the model cache {path.parent} "
                         f"({err.strerror or err}; a full disk? REPSIM_CACHE moves the "
                         f"cache)") from None
    payload["checkpoints"] = result.checkpoints
    return payload


def is_cached(recipe: Recipe, seed: int) -> bool:
    return _entry_path(cache_key(recipe, seed)).exists()


__all__ = ["CacheError", "ConvSpec", "MLPSpec", "Recipe", "Trained", "TrainSpec", "cache_key",
           "is_cached", "trained", "untrained"]
