"""The paper profile at the papers' shapes: MNIST (28x28) and CIFAR-10 (32x32x3) files written in
torchvision's formats, every chapter run by the driver with the paper profile, on CPU, with
overrides that only make it short (one epoch, a few hundred images, fewer draws): the widths,
depths, datasets and positions of the paper profile are kept, so a shape error or a memory
blow-up shows here and not first on a user's GPU machine."""

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml

from repsim_utils import driver

ROOT = Path(__file__).resolve().parents[1]

#: What makes each chapter short; everything else is the paper profile's.
SHORT = {
    "convergent_learning": {"epochs": 1, "seeds": [0, 1, 2], "n_train": 256, "n_samples": 64,
                            "sparse_targets": 2, "lasso_alphas": [0.01], "n_clusters": 4,
                            "download": False, "device": "cpu",
                          "min_accuracy": 0.0},
    "subspace_match": {"epochs": 1, "seeds": [0, 1, 2], "n_train": 256, "n_samples": 48,
                       "n_coords": 2000, "n_draws": 2, "curve_points": 4, "simple_units": 1,
                       "download": False, "device": "cpu",
                          "min_accuracy": 0.0},
    # the CCA family needs more rows than twice the widest layer (measures.check_cca_samples):
    # 513 for the MLP's 256 units (600 MNIST test images), 1,025 for the conv net's 512
    # channels (200 CIFAR images x 16 positions, 1,100 kept)
    "standard_measures": {"epochs": 1, "seeds": [0, 1, 2], "n_train": 256, "n_samples": 600,
                          "max_samples": 1100, "download": False, "device": "cpu",
                          "min_accuracy": 0.0},
    "effective_weights": {"epochs": 1, "seeds": [0, 1, 2], "n_train": 256, "checkpoints": [1],
                          "per_class": 5, "download": False, "device": "cpu",
                          "min_accuracy": 0.0},
    "stitching": {"epochs": 1, "seeds": [0, 1, 2], "n_train": 256, "n_fit": 256,
                  "stitch_epochs": 1, "max_rows": 2000, "download": False, "device": "cpu",
                  "min_accuracy": 0.0},
    "geometry": {"epochs": 20, "seeds": [0, 1, 2], "grid_points": 15, "n_heldout": 100},
}
#: Algorithm 2 over the conv net's 2 x 512 neurons takes minutes on CPU; its shapes are those of
#: any (samples, units) pair, exercised by the MLP run's simple matches.
SHORT_RUN = {("subspace_match", "conv_digits"): {"simple_units": 0}}


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's IDX format: magic (0, 0, 0x08 = uint8, ndim), big-endian dims, the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def write_datasets(root: Path, rng: np.random.Generator) -> None:
    """MNIST (300 train, 600 test) and CIFAR-10 (5 x 60 train, 200 test) at full image size.
    Images carry their class (a bright block at a class-dependent place), so one epoch learns
    something and no layer is dead by construction."""
    def images(labels, shape):
        x = rng.integers(0, 60, size=(len(labels), *shape))
        for i, y in enumerate(labels):
            r, c = divmod(int(y), 5)
            x[i, ..., 4 + 8 * r: 12 + 8 * r, 2 + 5 * c: 7 + 5 * c] = 255
        return x

    for split, n in (("train", 300), ("t10k", 600)):
        labels = np.arange(n) % 10
        write_idx(root / "MNIST" / "raw" / f"{split}-images-idx3-ubyte", images(labels, (28, 28)))
        write_idx(root / "MNIST" / "raw" / f"{split}-labels-idx1-ubyte", labels)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", 60) for i in range(1, 6)] + [("test_batch", 200)]:
        labels = rng.permutation(np.arange(n) % 10)
        x = images(labels, (3, 32, 32)).reshape(n, -1).astype(np.uint8)  # R, G, B planes
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x, "labels": labels.tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class {i}" for i in range(10)]}, f)


#: torchvision checks the CIFAR-10 files against the md5 sums of the real ones, which files
#: written here cannot match; the kernels (other processes) import this through PYTHONPATH.
SITECUSTOMIZE = """
import torchvision.datasets.cifar as _cifar
_cifar.check_integrity = lambda *args, **kwargs: True
"""


@pytest.mark.slow
def test_every_chapter_runs_with_the_paper_profile_at_the_papers_shapes(tmp_path, monkeypatch):
    data = tmp_path / "data"
    write_datasets(data, np.random.default_rng(0))
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("REPSIM_DATA", str(data))
    monkeypatch.setenv("REPSIM_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("REPSIM_PROGRESS", "0")

    table = yaml.safe_load((ROOT / "notebooks" / "runs.yml").read_text())
    for name, chapter in table["chapters"].items():
        chapter["notebook"] = str(ROOT / "notebooks" / chapter["notebook"])
        for rname, run in chapter["runs"].items():
            if run.get("paper") != "skip" and name in SHORT:
                run["paper"] = {**(run.get("paper") or {}), **SHORT[name],
                                **SHORT_RUN.get((name, rname), {})}
    path = tmp_path / "runs.yml"
    path.write_text(yaml.safe_dump(table))

    out = tmp_path / "book"
    records = driver.run("paper", out_dir=out, table=path, options=driver.Options(
        progress=False, heartbeat=0))
    ran = {(r["chapter"], r["run"]) for r in records}
    expected = {(c, r) for c, spec in table["chapters"].items()
                for r, run in spec["runs"].items() if run.get("paper") != "skip"}
    assert ran == expected
    for chapter, run in ran:
        saved = json.loads((out / "executed" / f"{chapter}__{run}.json").read_text())
        params = saved["resolved_parameters"]
        paper = table["chapters"][chapter]["runs"][run].get("paper", {})
        for key in ("dataset", "width", "depth", "positions"):
            if key in paper:  # the papers' shapes were really used
                assert params[key] == paper[key], (chapter, run, key)
        assert saved["profile"] == "paper" and saved["results"]
        nb = json.loads((out / "executed" / f"{chapter}__{run}.ipynb").read_text())
        assert not [o for c in nb["cells"] for o in c.get("outputs", [])
                    if o.get("output_type") == "error"]
    shapes = {r["run"]: r for r in records if r["chapter"] == "subspace_match"}
    assert shapes["conv_digits"]["resolved_parameters"]["dataset"] == "cifar10"
